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
