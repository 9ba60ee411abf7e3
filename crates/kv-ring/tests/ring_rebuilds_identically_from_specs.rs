//! What gossip carries (the node specs) rebuilds the same ring in any order,
//! through serde, and concurrent joins merge without conflict.
#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

mod common;

use common::{build, plans};
use kv_ring::{
    NewNode, NodeSpec, RING_FORMAT_VERSION, Ring, RingConfig, RingError, RingState, Token,
};
use kv_types::NodeId;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_order_gives_the_same_ring(
        plan in plans(10),
        vnodes in 1u32..=8,
        seed in any::<u64>(),
    ) {
        let ring = build(&plan, vnodes);
        let mut specs: Vec<NodeSpec> = ring.nodes().to_vec();
        // A cheap deterministic shuffle, also of each node's tokens.
        let mut s = seed | 1;
        for i in (1..specs.len()).rev() {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            specs.swap(i, (s >> 33) as usize % (i + 1));
        }
        for spec in &mut specs {
            spec.tokens.reverse();
        }
        let again = Ring::from_specs(ring.config(), specs).unwrap();
        prop_assert_eq!(&again, &ring);
    }

    #[test]
    fn serde_round_trips(plan in plans(6)) {
        let ring = build(&plan, 4);
        let text = serde_json::to_string(&ring).unwrap();
        let back: Ring = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(back, ring);
    }

    #[test]
    fn allocation_is_deterministic(plan in plans(8), id in 2000u64..3000, w in 1u32..=4) {
        let ring = build(&plan, 8);
        prop_assert_eq!(
            ring.allocate_tokens(&NewNode::new(NodeId(id), w)).unwrap(),
            ring.clone().allocate_tokens(&NewNode::new(NodeId(id), w)).unwrap()
        );
    }

    #[test]
    fn concurrent_joins_merge_without_conflict(plan in plans(8), a in 2000u64..3000) {
        let base = build(&plan, 16);
        let b = a + 1;
        let ta = base.allocate_tokens(&NewNode::new(NodeId(a), 1)).unwrap();
        let tb = base.allocate_tokens(&NewNode::new(NodeId(b), 1)).unwrap();
        let spec = |id, tokens| NodeSpec { id: NodeId(id), weight: 1, zone: None, tokens };
        let mut one = base.clone();
        one.add_node(spec(a, ta.clone())).unwrap();
        one.add_node(spec(b, tb.clone())).unwrap();
        let mut two = base.clone();
        two.add_node(spec(b, tb)).unwrap();
        two.add_node(spec(a, ta)).unwrap();
        prop_assert_eq!(&one, &two);
        // Nothing is lost: together the two joiners own at least what one
        // of them planned to take (a slice both aimed at goes to one of
        // them). How it splits between them is not promised: on a small
        // ring both may aim at the very same slices (see `alloc` docs).
        let fair = 1.0 / one.total_weight() as f64;
        let both = one.share(NodeId(a)).unwrap() + one.share(NodeId(b)).unwrap();
        prop_assert!(both >= 0.95 * fair, "joiners got {both}, one alone would get {fair}");
        let sum: f64 = one.shares().iter().map(|s| s.1).sum();
        prop_assert!((sum - 1.0).abs() < 1e-9);
    }
}

#[test]
fn a_token_claimed_twice_goes_to_the_lower_id() {
    let spec = |id, t: &[u64]| NodeSpec {
        id: NodeId(id),
        weight: 1,
        zone: None,
        tokens: t.iter().map(|&t| Token(t)).collect(),
    };
    let ring = Ring::from_specs(
        RingConfig::default(),
        [spec(9, &[100, 500]), spec(3, &[100, 900])],
    )
    .unwrap();
    assert_eq!(ring.owner_of_token(Token(100)), Some(NodeId(3)));
    assert_eq!(ring.owner_of_token(Token(50)), Some(NodeId(3)));
    assert_eq!(ring.owner_of_token(Token(101)), Some(NodeId(9)));
    let total: f64 = ring.shares().iter().map(|s| s.1).sum();
    assert!((total - 1.0).abs() < 1e-12);
}

#[test]
fn all_tokens_equal_gives_the_whole_ring_to_the_lowest_id() {
    let spec = |id| NodeSpec {
        id: NodeId(id),
        weight: 1,
        zone: None,
        tokens: vec![Token(42)],
    };
    let ring = Ring::from_specs(RingConfig::default(), [spec(2), spec(1)]).unwrap();
    assert_eq!(ring.share(NodeId(1)).unwrap(), 1.0);
    assert_eq!(ring.share(NodeId(2)).unwrap(), 0.0);
    assert!(ring.owned_ranges(NodeId(1)).unwrap()[0].is_full());
}

#[test]
fn an_unknown_format_version_is_refused() {
    let mut state = build(&[(1, 1, None)], 2).to_state();
    state.version = RING_FORMAT_VERSION + 1;
    let text = serde_json::to_string(&state).unwrap();
    let err = serde_json::from_str::<Ring>(&text).unwrap_err();
    assert!(err.to_string().contains("version"), "{err}");
    assert_eq!(
        Ring::try_from(state).unwrap_err(),
        RingError::UnsupportedVersion {
            found: RING_FORMAT_VERSION + 1,
            supported: RING_FORMAT_VERSION
        }
    );
}

#[test]
fn a_state_is_what_serde_writes() {
    let ring = build(&[(1, 1, Some(0)), (2, 2, None)], 2);
    let state: RingState = ring.to_state();
    assert_eq!(state.nodes, ring.nodes());
    assert_eq!(
        serde_json::to_value(&ring).unwrap(),
        serde_json::to_value(&state).unwrap()
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn adding_a_node_equals_rebuilding_from_specs(
        plan in plans(6),
        id in 1u64..2000,
        own in prop::collection::vec(any::<u64>(), 0..4),
        stolen in prop::collection::vec(any::<prop::sample::Index>(), 1..4),
    ) {
        let mut ring = build(&plan, 4);
        prop_assume!(!ring.contains(NodeId(id)));
        // Claim some tokens other nodes already hold, to exercise the tie rule.
        let all: Vec<Token> = ring.nodes().iter().flat_map(|n| n.tokens.clone()).collect();
        let mut tokens: Vec<Token> = stolen.iter().map(|i| all[i.index(all.len())]).collect();
        tokens.extend(own.into_iter().map(Token));
        tokens.sort();
        tokens.dedup();
        let spec = NodeSpec { id: NodeId(id), weight: 1, zone: Some("x".into()), tokens };
        let mut specs = ring.nodes().to_vec();
        specs.push(spec.clone());
        ring.add_node(spec).unwrap();
        prop_assert_eq!(ring, Ring::from_specs(common::config(4, false), specs).unwrap());
    }
}
