//! Every key gets n distinct nodes, spread over as many zones as exist, in
//! the documented order; `successors` continues that order.
#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

mod common;

use std::collections::BTreeSet;

use common::{build, model_order, plans};
use kv_ring::{MAX_REPLICAS, Ring, Token};
use kv_types::NodeId;
use proptest::prelude::*;

fn zones_of(ring: &Ring, nodes: &[NodeId]) -> usize {
    nodes
        .iter()
        .map(|&id| ring.node(id).unwrap().zone.clone())
        .collect::<BTreeSet<_>>()
        .len()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn lists_are_distinct_zone_spread_and_match_the_model(
        plan in plans(10),
        vnodes in 1u32..=6,
        per_zone in any::<bool>(),
        hashes in prop::collection::vec(any::<u64>(), 16),
    ) {
        let ring = common::build_with(&plan, common::config(vnodes, per_zone));
        for h in hashes {
            let model = model_order(&ring, Token(h));
            for n in 0..=MAX_REPLICAS.min(ring.len() + 2) {
                let list = ring.preference_list_for_token(Token(h), n).unwrap();
                let want = n.min(ring.len());
                prop_assert_eq!(list.len(), want);
                let distinct: BTreeSet<NodeId> = list.iter().copied().collect();
                prop_assert_eq!(distinct.len(), want, "duplicates in {:?}", list);
                prop_assert_eq!(zones_of(&ring, &list), want.min(ring.zone_count()));
                prop_assert_eq!(&list[..], &model[..want]);
            }
            let all: Vec<NodeId> = ring.successors_for_token(Token(h)).collect();
            prop_assert_eq!(&all, &model);
            prop_assert_eq!(all.len(), ring.len());
        }
    }

    #[test]
    fn the_first_node_is_the_owner(plan in plans(10), key in any::<Vec<u8>>()) {
        let ring = build(&plan, 4);
        let list = ring.preference_list(&key, 1).unwrap();
        prop_assert_eq!(list.first().copied(), ring.owner(&key));
    }
}

#[test]
fn zones_come_before_a_second_replica_in_the_same_zone() {
    // Nine nodes in zone a, one in zone b: every list of 2 includes the
    // lone node of zone b.
    let mut plan: Vec<common::Plan> = (1..=9).map(|i| (i, 1, Some(0))).collect();
    plan.push((10, 1, Some(1)));
    let ring = build(&plan, 8);
    for i in 0..200 {
        let key = format!("k{i}");
        let list = ring.preference_list(key.as_bytes(), 2).unwrap();
        assert!(list.contains(&NodeId(10)), "{key}: {list:?}");
    }
}

#[test]
fn without_zones_the_list_is_the_first_distinct_nodes_clockwise() {
    let plan: Vec<common::Plan> = (1..=5).map(|i| (i, 1, None)).collect();
    let ring = build(&plan, 4);
    assert_eq!(ring.zone_count(), 1);
    for i in 0..100u64 {
        let h = Token(i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut walk = Vec::new();
        let mut entries: Vec<(u64, NodeId)> = common::entries(&ring);
        let start = entries.iter().position(|e| e.0 >= h.0).unwrap_or(0);
        entries.rotate_left(start);
        for (_, id) in entries {
            if !walk.contains(&id) {
                walk.push(id);
            }
        }
        let list = ring.preference_list_for_token(h, 3).unwrap();
        assert_eq!(&list[..], &walk[..3]);
    }
}

#[test]
fn an_empty_ring_has_empty_lists() {
    let ring = build(&[], 4);
    assert!(ring.preference_list(b"k", 3).unwrap().is_empty());
    assert_eq!(ring.successors(b"k").count(), 0);
    assert_eq!(ring.owner(b"k"), None);
}
