//! Each node's share of the ring follows its weight, and equal nodes stay
//! balanced, with the default vnode count.
#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

mod common;

use kv_ring::{NewNode, Ring, RingConfig};
use kv_types::NodeId;
use proptest::prelude::*;

fn worst_weight_error(ring: &Ring) -> f64 {
    let total = ring.total_weight() as f64;
    ring.shares()
        .iter()
        .zip(ring.nodes())
        .map(|((_, share), n)| {
            let want = f64::from(n.weight) / total;
            (share - want).abs() / want
        })
        .fold(0.0, f64::max)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn shares_follow_weights(weights in prop::collection::vec(1u32..=8, 1..=20)) {
        let ring = Ring::with_nodes(
            RingConfig::default(),
            weights.iter().enumerate().map(|(i, &w)| NewNode::new(NodeId(i as u64 + 1), w)),
        ).unwrap();
        let err = worst_weight_error(&ring);
        prop_assert!(err <= 0.05, "worst relative error {err} for weights {weights:?}");
        let sum: f64 = ring.shares().iter().map(|s| s.1).sum();
        prop_assert!((sum - 1.0).abs() < 1e-9);
    }
}

#[test]
fn one_two_four_is_within_five_percent() {
    let ring = Ring::with_nodes(
        RingConfig::default(),
        [1, 2, 4]
            .iter()
            .enumerate()
            .map(|(i, &w)| NewNode::new(NodeId(i as u64 + 1), w)),
    )
    .unwrap();
    let err = worst_weight_error(&ring);
    assert!(err <= 0.05, "{:?}", ring.shares());
}

#[test]
fn fifty_equal_nodes_are_balanced() {
    let ring = Ring::with_nodes(
        RingConfig::default(),
        (1..=50).map(|i| NewNode::new(NodeId(i), 1)),
    )
    .unwrap();
    let max = ring.shares().iter().map(|s| s.1).fold(0.0, f64::max);
    assert!(max * 50.0 <= 1.05, "imbalance {}", max * 50.0);
}

/// Each node's share of the keys it holds a replica of, with `n` replicas.
fn replica_loads(ring: &Ring, n: usize) -> Vec<f64> {
    ring.nodes()
        .iter()
        .map(|node| {
            let ranges = ring.replicated_ranges(node.id, n).unwrap();
            ranges.iter().map(|r| r.fraction()).sum()
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// With a replica in every zone, a node stores its zone-mates' keys'
    /// share of its zone; per-zone balancing makes that follow weights.
    #[test]
    fn per_zone_balance_makes_replica_load_follow_weights_within_zones(
        nodes in prop::collection::vec((1u32..=4, 0u8..3), 3..=24),
    ) {
        let plan: Vec<common::Plan> = nodes
            .iter()
            .enumerate()
            .map(|(i, &(w, z))| (i as u64 + 1, w, Some(z)))
            .collect();
        let ring = common::build_with(&plan, common::config(64, true));
        let n = ring.zone_count();
        for (node, load) in ring.nodes().iter().zip(replica_loads(&ring, n)) {
            let zone_weight: u32 = ring
                .nodes()
                .iter()
                .filter(|m| m.zone == node.zone)
                .map(|m| m.weight)
                .sum();
            let want = f64::from(node.weight) / f64::from(zone_weight);
            let err = (load - want).abs() / want;
            prop_assert!(err <= 0.05, "node {} load {load} want {want}", node.id);
        }
    }
}

#[test]
fn three_zones_three_replicas_balance_storage_per_zone() {
    let plan: Vec<common::Plan> = (1..=30).map(|i| (i, 1, Some((i % 3) as u8))).collect();
    let ring = common::build_with(&plan, common::config(64, true));
    let loads = replica_loads(&ring, 3);
    let mean = loads.iter().sum::<f64>() / loads.len() as f64;
    let max = loads.iter().copied().fold(0.0, f64::max);
    assert!(max / mean <= 1.05, "replica load max/mean {}", max / mean);
}
