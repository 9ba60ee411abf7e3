//! Laws of version vectors and sibling sets, by property test: merge is
//! commutative, associative and idempotent; `descends` is a partial order;
//! and sibling sets agree with a simple model of which writes survive.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns are test code too

use std::collections::BTreeSet;

use bytes::Bytes;
use kv_quorum::{SiblingSet, VersionVector};
use kv_types::NodeId;
use proptest::prelude::*;

fn vv() -> impl Strategy<Value = VersionVector> {
    proptest::collection::vec((0u64..5, 0u64..6), 0..6)
        .prop_map(|e| e.into_iter().map(|(a, c)| (NodeId(a), c)).collect())
}

/// `v` with each listed actor's counter raised by its increment.
fn bumped(v: &VersionVector, steps: &[(u64, u64)]) -> VersionVector {
    let mut by: std::collections::BTreeMap<u64, u64> = v.iter().map(|(a, c)| (a.0, c)).collect();
    for (a, inc) in steps {
        *by.entry(*a).or_insert(0) += inc;
    }
    by.into_iter().map(|(a, c)| (NodeId(a), c)).collect()
}

/// Increments on a vector: actors 0..5, each by 0..3 (0 leaves it as it is).
fn steps() -> impl Strategy<Value = Vec<(u64, u64)>> {
    proptest::collection::vec((0u64..5, 0u64..3), 0..4)
}

/// Three vectors, each the one before with some increments: c >= b >= a.
fn chain() -> impl Strategy<Value = (VersionVector, VersionVector, VersionVector)> {
    (vv(), steps(), steps()).prop_map(|(a, s1, s2)| {
        let b = bumped(&a, &s1);
        let c = bumped(&b, &s2);
        (a, b, c)
    })
}

/// A base and two increments of it by different actors, so the two are
/// concurrent.
fn forks() -> impl Strategy<Value = (VersionVector, VersionVector, VersionVector)> {
    (vv(), 0u64..5, 1u64..5, 1u64..3, 1u64..3).prop_map(|(base, x, d, i, j)| {
        let y = (x + d) % 5;
        let a = bumped(&base, &[(x, i)]);
        let b = bumped(&base, &[(y, j)]);
        (base, a, b)
    })
}

fn merged(a: &VersionVector, b: &VersionVector) -> VersionVector {
    let mut m = a.clone();
    m.merge(b);
    m
}

/// Histories of writes on a few replicas with occasional syncs, so that the
/// resulting sibling sets are reachable states, not arbitrary data.
#[derive(Debug, Clone)]
enum Op {
    /// Replica `r` applies a write with the context of replica `ctx_of`'s
    /// current state (or a blind write).
    Write { r: usize, ctx_of: Option<usize> },
    /// Replica `to` merges replica `from`'s state.
    Sync { from: usize, to: usize },
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        (0usize..3, proptest::option::of(0usize..3))
            .prop_map(|(r, ctx_of)| Op::Write { r, ctx_of }),
        (0usize..3, 0usize..3).prop_map(|(from, to)| Op::Sync { from, to }),
    ];
    proptest::collection::vec(op, 0..25)
}

/// Runs `ops`; also returns, per replica, the model: the set of write ids
/// not yet superseded that the replica knows of.
fn run(ops: &[Op]) -> (Vec<SiblingSet>, Vec<BTreeSet<u64>>) {
    let mut sets = vec![SiblingSet::new(); 3];
    // Model: each write has an id; `seen[r]` is every write id replica r
    // knows, `live[r]` those not superseded. `covers[w]` = ids write w saw.
    let mut seen: Vec<BTreeSet<u64>> = vec![BTreeSet::new(); 3];
    let mut dead: Vec<BTreeSet<u64>> = vec![BTreeSet::new(); 3];
    let mut next = 0u64;
    for op in ops {
        match *op {
            Op::Write { r, ctx_of } => {
                let (ctx, saw) = match ctx_of {
                    Some(c) => (sets[c].clock().clone(), seen[c].clone()),
                    None => (VersionVector::new(), BTreeSet::new()),
                };
                next += 1;
                sets[r]
                    .update(
                        &ctx.clone().into(),
                        NodeId(r as u64),
                        Some(Bytes::from(next.to_string())),
                    )
                    .unwrap();
                // The issuer clamps a context to what it has seen itself:
                // a write supersedes only what both the client and the
                // issuer saw; the rest stays alive, to be superseded by a
                // later write.
                let saw: BTreeSet<u64> = saw.intersection(&seen[r]).copied().collect();
                dead[r].extend(saw);
                seen[r].insert(next);
            }
            Op::Sync { from, to } => {
                let f = sets[from].clone();
                sets[to].merge(&f);
                let (s, d) = (seen[from].clone(), dead[from].clone());
                seen[to].extend(s);
                dead[to].extend(d);
            }
        }
    }
    let live = (0..3)
        .map(|r| seen[r].difference(&dead[r]).copied().collect())
        .collect();
    (sets, live)
}

fn values(s: &SiblingSet) -> BTreeSet<u64> {
    s.values()
        .map(|v| std::str::from_utf8(v).unwrap().parse().unwrap())
        .collect()
}

type Model = std::collections::BTreeMap<u64, u64>;

fn model(pairs: &[(u64, u64)]) -> Model {
    let mut m = Model::new();
    for &(a, c) in pairs {
        if c > 0 {
            let e = m.entry(a).or_insert(0);
            *e = (*e).max(c);
        }
    }
    m
}

fn pairs() -> impl Strategy<Value = Vec<(u64, u64)>> {
    proptest::collection::vec((0u64..8, 0u64..6), 0..10)
}

proptest! {
    #[test]
    fn vv_agrees_with_a_map_model(a in pairs(), b in pairs(), observe in pairs()) {
        let mut va: VersionVector = a.iter().map(|&(x, c)| (NodeId(x), c)).collect();
        let vb: VersionVector = b.iter().map(|&(x, c)| (NodeId(x), c)).collect();
        for &(x, c) in &observe {
            va.observe(NodeId(x), c);
        }
        let ma = model(&[a.as_slice(), observe.as_slice()].concat());
        let mb = model(&b);
        let as_model = |v: &VersionVector| -> Model { v.iter().map(|(x, c)| (x.0, c)).collect() };
        prop_assert_eq!(as_model(&va), ma.clone());
        let descends = mb.iter().all(|(x, c)| ma.get(x).copied().unwrap_or(0) >= *c);
        prop_assert_eq!(va.descends(&vb), descends);
        let mut merged = va.clone();
        merged.merge(&vb);
        let mut mm = ma.clone();
        for (x, c) in mb {
            let e = mm.entry(x).or_insert(0);
            *e = (*e).max(c);
        }
        prop_assert_eq!(as_model(&merged), mm);
        // Encoding round trips, and a decoded vector is normalised.
        let bytes = postcard::to_allocvec(&merged).unwrap();
        prop_assert_eq!(postcard::from_bytes::<VersionVector>(&bytes).unwrap(), merged);
    }

    #[test]
    fn vv_merge_is_commutative_associative_idempotent(a in vv(), b in vv(), c in vv()) {
        prop_assert_eq!(merged(&a, &b), merged(&b, &a));
        prop_assert_eq!(merged(&merged(&a, &b), &c), merged(&a, &merged(&b, &c)));
        prop_assert_eq!(merged(&a, &a), a.clone());
        // The merge is the least upper bound.
        let m = merged(&a, &b);
        prop_assert!(m.descends(&a) && m.descends(&b));
    }

    #[test]
    fn descends_is_a_partial_order((a, b, c) in chain()) {
        // `chain` gives c >= b >= a, each step some increments (possibly
        // none), so every law below is exercised on every case, equal
        // vectors included.
        prop_assert!(a.descends(&a));
        prop_assert!(b.descends(&a) && c.descends(&b));
        // Transitivity.
        prop_assert!(c.descends(&a));
        // Antisymmetry: each way only when equal.
        prop_assert_eq!(a.descends(&b), a == b);
        prop_assert_eq!(b.descends(&c), b == c);
        prop_assert_eq!(a.descends(&c), a == c);
    }

    #[test]
    fn concurrent_vectors_descend_neither_way((base, x, y) in forks()) {
        // Two increments of different actors on one base: neither sees the
        // other, and their merge sees both.
        prop_assert!(!x.descends(&y) && !y.descends(&x));
        prop_assert!(x.descends(&base) && y.descends(&base));
        let m = merged(&x, &y);
        prop_assert!(m.descends(&x) && m.descends(&y));
        prop_assert!(m != x && m != y);
    }

    #[test]
    fn sibling_set_merge_is_commutative_associative_idempotent(ops in ops()) {
        let (s, _) = run(&ops);
        let m = |x: &SiblingSet, y: &SiblingSet| { let mut z = x.clone(); z.merge(y); z };
        prop_assert_eq!(m(&s[0], &s[1]), m(&s[1], &s[0]));
        prop_assert_eq!(m(&m(&s[0], &s[1]), &s[2]), m(&s[0], &m(&s[1], &s[2])));
        prop_assert_eq!(m(&s[0], &s[0]), s[0].clone());
        let all = m(&m(&s[0], &s[1]), &s[2]);
        for x in &s {
            prop_assert!(all.covers(x));
        }
    }

    #[test]
    fn surviving_siblings_match_the_model(ops in ops()) {
        let (sets, live) = run(&ops);
        for r in 0..3 {
            prop_assert_eq!(values(&sets[r]), live[r].clone(), "replica {}", r);
        }
        // After everyone syncs, exactly the writes nobody superseded remain.
        let mut all = SiblingSet::new();
        for s in &sets { all.merge(s); }
        let union_live: BTreeSet<u64> = {
            let mut full = ops.clone();
            for from in 0..3 { full.push(Op::Sync { from, to: 0 }); }
            run(&full).1[0].clone()
        };
        prop_assert_eq!(values(&all), union_live);
    }
}
