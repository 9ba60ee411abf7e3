//! A join or leave reports exactly the ranges that change primary owner, and
//! every one of them involves the node that joined or left.
#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

mod common;

use common::{build, build_with, config, model_owner, new_node, plans, probes};
use kv_ring::{RangeMove, Ring, Token};
use kv_types::NodeId;
use proptest::prelude::*;

/// Checks `moves` against the model at every probe: a position changes
/// owner exactly when a move covers it, with that move's (from, to).
fn check_moves(before: &Ring, after: &Ring, moves: &[RangeMove], extra: &[u64]) {
    let mut pts = probes(before, extra);
    pts.extend(probes(after, &[]));
    for h in pts {
        let (old, new) = (model_owner(before, h), model_owner(after, h));
        let covering: Vec<&RangeMove> = moves.iter().filter(|m| m.range.contains(h)).collect();
        if old == new || old.is_none() || new.is_none() {
            assert!(
                covering.is_empty(),
                "{h:?} did not change owner but {covering:?} covers it"
            );
        } else {
            assert_eq!(
                covering.len(),
                1,
                "{h:?} changed {old:?}->{new:?}; covered by {covering:?}"
            );
            assert_eq!(
                (Some(covering[0].from), Some(covering[0].to)),
                (old, new),
                "at {h:?}"
            );
        }
    }
}

fn moved_fraction(moves: &[RangeMove]) -> f64 {
    moves.iter().map(|m| m.range.fraction()).sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn a_join_moves_only_to_the_new_node(
        plan in plans(8),
        weight in 1u32..=4,
        vnodes in 1u32..=8,
        per_zone in any::<bool>(),
        extra in prop::collection::vec(any::<u64>(), 32),
    ) {
        let before = build_with(&plan, config(vnodes, per_zone));
        let mut after = before.clone();
        let joiner = NodeId(5000);
        let moves = after.join(new_node((joiner.0, weight, Some(0)))).unwrap();
        prop_assert!(moves.iter().all(|m| m.to == joiner && m.from != joiner), "{moves:?}");
        check_moves(&before, &after, &moves, &extra);
        // Everything the new node owns came from somewhere: the optimum.
        let share = after.share(joiner).unwrap();
        prop_assert!((moved_fraction(&moves) - share).abs() < 1e-9);
    }

    #[test]
    fn a_leave_moves_only_from_the_leaving_node(
        plan in plans(8),
        pick in any::<prop::sample::Index>(),
        vnodes in 1u32..=8,
        per_zone in any::<bool>(),
        extra in prop::collection::vec(any::<u64>(), 32),
    ) {
        let before = build_with(&plan, config(vnodes, per_zone));
        let leaver = before.nodes()[pick.index(before.len())].id;
        let share = before.share(leaver).unwrap();
        let mut after = before.clone();
        let moves = after.remove_node(leaver).unwrap();
        prop_assert!(moves.iter().all(|m| m.from == leaver && m.to != leaver), "{moves:?}");
        check_moves(&before, &after, &moves, &extra);
        if after.is_empty() {
            prop_assert!(moves.is_empty());
        } else {
            prop_assert!((moved_fraction(&moves) - share).abs() < 1e-9);
        }
    }

    #[test]
    fn primary_moves_between_any_two_rings_match_the_model(
        a in plans(5),
        b in plans(5),
        extra in prop::collection::vec(any::<u64>(), 32),
    ) {
        let (a, b) = (build(&a, 3), build(&b, 2));
        let moves = Ring::primary_moves(&a, &b);
        check_moves(&a, &b, &moves, &extra);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn leaving_right_after_joining_undoes_the_join(plan in plans(8), w in 1u32..=4) {
        let before = build(&plan, 4);
        let mut ring = before.clone();
        let joined = ring.join(new_node((5000, w, None))).unwrap();
        let left = ring.remove_node(NodeId(5000)).unwrap();
        prop_assert_eq!(&ring, &before);
        let mut back: Vec<RangeMove> = left
            .iter()
            .map(|m| RangeMove { range: m.range, from: m.to, to: m.from })
            .collect();
        back.sort_by_key(|m| m.range);
        let mut joined = joined;
        joined.sort_by_key(|m| m.range);
        prop_assert_eq!(back, joined);
    }
}

#[test]
fn joining_an_empty_ring_moves_nothing() {
    let mut ring = build(&[], 4);
    let moves = ring.join(new_node((1, 1, None))).unwrap();
    assert!(moves.is_empty());
    assert_eq!(ring.owner_of_token(Token(0)), Some(NodeId(1)));
}

#[test]
fn replacing_the_only_node_moves_the_whole_ring() {
    let a = build(&[(1, 1, None)], 2);
    let b = build(&[(2, 1, None)], 2);
    let moves = Ring::primary_moves(&a, &b);
    let total: f64 = moves.iter().map(|m| m.range.fraction()).sum();
    assert!((total - 1.0).abs() < 1e-12, "{moves:?}");
    assert!(
        moves
            .iter()
            .all(|m| m.from == NodeId(1) && m.to == NodeId(2))
    );
}

/// Checks `changes` against the model at every probe: a position's replica
/// set changes exactly when a change covers it, with those lists.
fn check_replica_changes(
    before: &Ring,
    after: &Ring,
    n: usize,
    changes: &[kv_ring::ReplicaChange],
    extra: &[u64],
) {
    let mut pts = probes(before, extra);
    pts.extend(probes(after, &[]));
    for h in pts {
        let mut old = common::model_order(before, h);
        let mut new = common::model_order(after, h);
        old.truncate(n);
        new.truncate(n);
        let covering: Vec<_> = changes.iter().filter(|c| c.range.contains(h)).collect();
        let (mut so, mut sn) = (old.clone(), new.clone());
        so.sort();
        sn.sort();
        if so == sn || old.is_empty() || new.is_empty() {
            assert!(
                covering.is_empty(),
                "{h:?} kept {old:?} but {covering:?} covers it"
            );
        } else {
            assert_eq!(
                covering.len(),
                1,
                "{h:?}: {old:?} -> {new:?}; covered by {covering:?}"
            );
            assert_eq!(
                (&covering[0].before[..], &covering[0].after[..]),
                (&old[..], &new[..])
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn replica_changes_match_the_model_and_involve_only_the_joiner_or_leaver(
        plan in plans(7),
        n in 1usize..=4,
        pick in any::<prop::sample::Index>(),
        per_zone in any::<bool>(),
        extra in prop::collection::vec(any::<u64>(), 16),
    ) {
        let before = build_with(&plan, config(3, per_zone));
        let mut joined = before.clone();
        let joiner = NodeId(5000);
        joined.join(new_node((joiner.0, 1, Some(2)))).unwrap();
        let changes = Ring::replica_changes(&before, &joined, n).unwrap();
        check_replica_changes(&before, &joined, n, &changes, &extra);
        for c in &changes {
            prop_assert!(c.gained().all(|g| g == joiner), "{c:?}");
        }
        let leaver = before.nodes()[pick.index(before.len())].id;
        let mut left = before.clone();
        left.remove_node(leaver).unwrap();
        let changes = Ring::replica_changes(&before, &left, n).unwrap();
        check_replica_changes(&before, &left, n, &changes, &extra);
        for c in &changes {
            prop_assert!(c.lost().all(|l| l == leaver), "{c:?}");
        }
    }
}
