//! The context a put answers with covers what the writer read and its own
//! write, never a concurrent write it did not read: writing again with it
//! keeps the other client's acknowledged write.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns are test code too

mod common;

use common::{Sim, b, config, seeds};
use kv_quorum::{Consistency, RequestOptions};

const ALL: RequestOptions = RequestOptions::with(Consistency::All);

/// Client 1 reads, client 2 blind-writes "X" through node `x_via`, client
/// 1 writes "Y" with its read context and then "Z" with the context that
/// put answered. Returns the values left after everything settled.
fn read_blind_write_write_again(seed: u64, x_via: usize) -> Vec<bytes::Bytes> {
    let sim = Sim::new(seed, 3);
    let cs = sim.coordinators(&config());
    sim.put(&cs[0], "k", "base", None, ALL).unwrap();
    let read = sim.get(&cs[0], "k", ALL).unwrap();
    sim.put(&cs[x_via], "k", "X", None, ALL).unwrap();
    sim.settle();
    let c1 = sim.put(&cs[0], "k", "Y", Some(&read.context), ALL).unwrap();
    sim.put(&cs[0], "k", "Z", Some(&c1.context), ALL).unwrap();
    sim.settle();
    let mut got = sim.get(&cs[1], "k", ALL).unwrap().siblings;
    got.sort();
    got
}

#[test]
fn writing_with_a_put_context_keeps_a_concurrent_write_from_another_issuer() {
    for seed in seeds(2100, 5) {
        // X is issued by node 2, Y and Z by node 1: the put context is
        // exactly "base" and Y, so Z supersedes Y and keeps X.
        let got = read_blind_write_write_again(seed, 1);
        assert_eq!(got, vec![b("X"), b("Z")], "seed {seed}");
    }
}

#[test]
fn writing_with_a_put_context_keeps_a_concurrent_write_from_the_same_issuer() {
    for seed in seeds(2200, 5) {
        // X and Y are both issued by node 1, X first: a version vector
        // cannot cover Y's dot without X's, so the put context carries Y's
        // dot on its own; Z supersedes exactly "base" and Y and keeps X
        // (not Y too, as an extra sibling).
        let got = read_blind_write_write_again(seed, 0);
        assert_eq!(got, vec![b("X"), b("Z")], "seed {seed}");
    }
}

#[test]
fn a_chain_of_writes_through_one_issuer_supersedes_only_its_own_writes() {
    for seed in seeds(2400, 5) {
        // Client 1 keeps writing with each put's context while client 2's
        // blind write sits between its reads on the same issuer: every one
        // of client 1's dots is past a gap, yet each write supersedes the
        // one before it, and X survives.
        let sim = Sim::new(seed, 3);
        let cs = sim.coordinators(&config());
        let read = sim.get(&cs[0], "k", ALL).unwrap();
        sim.put(&cs[0], "k", "X", None, ALL).unwrap();
        let mut context = read.context;
        for i in 0..40 {
            let value = format!("v{i}");
            context = sim
                .put(&cs[0], "k", &value, Some(&context), ALL)
                .unwrap()
                .context;
        }
        sim.settle();
        let mut got = sim.get(&cs[2], "k", ALL).unwrap().siblings;
        got.sort();
        assert_eq!(got, vec![b("X"), b("v39")], "seed {seed}");
    }
}

#[test]
fn writing_with_a_put_context_supersedes_the_writers_own_write() {
    for seed in seeds(2300, 5) {
        let sim = Sim::new(seed, 3);
        let cs = sim.coordinators(&config());
        let p = sim.put(&cs[0], "k", "one", None, ALL).unwrap();
        sim.put(&cs[0], "k", "two", Some(&p.context), ALL).unwrap();
        sim.settle();
        assert_eq!(
            sim.get(&cs[2], "k", ALL).unwrap().siblings,
            vec![b("two")],
            "seed {seed}"
        );
    }
}
