//! Client contexts are untrusted: whatever a client sends (counters at
//! `u64::MAX`, counters far ahead, thousands of actors), no write panics or
//! overflows, no acknowledged write disappears unless a later write's
//! context covered it, and the key stays writable.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns are test code too

mod common;

use bytes::Bytes;
use common::{Sim, b, config};
use kv_quorum::{
    CausalContext, Consistency, Dot, QuorumConfig, QuorumError, RequestOptions, WriteContext,
};
use kv_types::NodeId;
use proptest::prelude::*;

const ALL: RequestOptions = RequestOptions::with(Consistency::All);

#[derive(Debug, Clone)]
enum Ctx {
    Blind,
    /// The context of the latest read.
    LastRead,
    /// The context the latest put answered.
    LastPut,
    Forged(Vec<(u64, u64)>),
    /// `count` actors, each at `u64::MAX`.
    ManyActors(u64),
}

#[derive(Debug, Clone)]
enum Op {
    Write { via: usize, ctx: Ctx },
    Read { via: usize },
}

fn counter() -> impl Strategy<Value = u64> {
    prop_oneof![Just(u64::MAX), Just(u64::MAX - 1), 0u64..8, any::<u64>()]
}

fn actor() -> impl Strategy<Value = u64> {
    // Mostly the real actors 1..=3, sometimes anything.
    prop_oneof![3 => 1u64..4, 1 => any::<u64>()]
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let ctx = prop_oneof![
        Just(Ctx::Blind),
        Just(Ctx::LastRead),
        Just(Ctx::LastPut),
        proptest::collection::vec((actor(), counter()), 0..6).prop_map(Ctx::Forged),
        (1u64..3000).prop_map(Ctx::ManyActors),
    ];
    let op = prop_oneof![
        3 => (0usize..3, ctx).prop_map(|(via, ctx)| Op::Write { via, ctx }),
        1 => (0usize..3).prop_map(|via| Op::Read { via }),
    ];
    proptest::collection::vec(op, 1..20)
}

fn cfg() -> QuorumConfig {
    QuorumConfig {
        max_siblings: 64,
        ..config()
    }
}

fn check(ops: &[Op]) -> Result<(), TestCaseError> {
    let sim = Sim::new(7, 3);
    let cs = sim.coordinators(&cfg());
    let mut last_read = CausalContext::default();
    let mut last_put = CausalContext::default();
    // Acknowledged writes: (op index, value, dot); and every write's
    // context as sent, by op index.
    let mut acked: Vec<(usize, Bytes, Dot)> = Vec::new();
    let mut sent: Vec<(usize, WriteContext)> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Read { via } => {
                last_read = sim.get(&cs[*via], "k", ALL).unwrap().context;
            }
            Op::Write { via, ctx } => {
                let ctx = match ctx {
                    Ctx::Blind => CausalContext::default(),
                    Ctx::LastRead => last_read.clone(),
                    Ctx::LastPut => last_put.clone(),
                    Ctx::Forged(entries) => CausalContext::from_clock(
                        &entries.iter().map(|&(a, c)| (NodeId(a), c)).collect(),
                    ),
                    Ctx::ManyActors(n) => CausalContext::from_clock(
                        &(1..=*n).map(|a| (NodeId(a), u64::MAX)).collect(),
                    ),
                };
                sent.push((i, ctx.decode().unwrap()));
                let value = b(&format!("v{i}"));
                match sim.run(cs[*via].put(b"k", value.clone(), Some(&ctx), ALL)) {
                    Ok(reply) => {
                        last_put = reply.context;
                        sim.settle();
                        let state = sim.replica(NodeId(*via as u64 + 1)).read(b"k").unwrap();
                        let own = state
                            .siblings()
                            .iter()
                            .find(|s| s.value.as_ref() == Some(&value));
                        prop_assert!(own.is_some(), "write {} not stored by its issuer", i);
                        acked.push((i, value, own.unwrap().dot));
                    }
                    // Refusals must say nothing was written.
                    Err(e @ QuorumError::TooManySiblings { .. }) => {
                        prop_assert!(e.nothing_written());
                    }
                    Err(e) => prop_assert!(false, "write {} failed: {}", i, e),
                }
            }
        }
    }
    sim.settle();
    let got = sim.get(&cs[0], "k", ALL).unwrap();
    for (i, value, dot) in &acked {
        let covered_later = sent.iter().any(|(j, c)| j > i && c.contains(*dot));
        prop_assert!(
            got.siblings.contains(value) || covered_later,
            "acknowledged write {} ({:?}) lost without a later context covering it",
            i,
            dot
        );
    }
    // Every replica agrees, and no clock grew past the real actors.
    for &id in &sim.nodes {
        let state = sim.replica(id).read(b"k").unwrap();
        prop_assert!(state.clock().iter().all(|(a, _)| (1..=3).contains(&a.0)));
        prop_assert!(state.clock().iter().all(|(_, c)| c <= ops.len() as u64));
    }
    // Still writable: blind, then resolving everything with a read.
    for c in &cs {
        sim.put(c, "k", "after", None, ALL).unwrap();
    }
    let read = sim.get(&cs[1], "k", ALL).unwrap();
    sim.put(&cs[2], "k", "final", Some(&read.context), ALL)
        .unwrap();
    sim.settle();
    prop_assert_eq!(
        sim.get(&cs[0], "k", ALL).unwrap().siblings,
        vec![b("final")]
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]
    #[test]
    fn arbitrary_contexts_never_lose_acknowledged_writes_or_poison_the_key(ops in ops()) {
        check(&ops)?;
    }
}

#[test]
fn a_context_at_u64_max_for_the_issuer_does_not_overflow() {
    let ops = [Op::Write {
        via: 0,
        ctx: Ctx::Forged(vec![(1, u64::MAX)]),
    }];
    check(&ops).unwrap();
}

#[test]
fn a_context_far_ahead_for_another_actor_does_not_hide_its_later_writes() {
    let ops = [
        Op::Write {
            via: 0,
            ctx: Ctx::Forged(vec![(2, 1_000)]),
        },
        Op::Write {
            via: 1,
            ctx: Ctx::Blind,
        },
    ];
    check(&ops).unwrap();
}

#[test]
fn thousands_of_fake_actors_do_not_grow_the_key() {
    let ops = [
        Op::Write {
            via: 0,
            ctx: Ctx::ManyActors(2_999),
        },
        Op::Write {
            via: 2,
            ctx: Ctx::Blind,
        },
    ];
    check(&ops).unwrap();
}
