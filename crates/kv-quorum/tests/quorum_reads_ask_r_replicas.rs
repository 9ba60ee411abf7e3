//! Reads with [`ReadFanout::Quorum`] ask R replicas, replace one that fails
//! at once, ask the rest when the quorum is slow (speculative retry), and
//! take turns among the replicas so read repair reaches all of them.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns are test code too

mod common;

use std::time::Duration;

use common::{Fault, Sim, b, config, home, leave_third_replica_stale, seeds};
use kv_quorum::{Coordinator, QuorumConfig, ReadFanout, RequestOptions};
use kv_types::NodeId;

const SPECULATE_AFTER: Duration = Duration::from_millis(20);

fn quorum_reads() -> QuorumConfig {
    QuorumConfig {
        read_fanout: ReadFanout::Quorum {
            speculate_after: SPECULATE_AFTER,
        },
        ..config()
    }
}

fn all_reads() -> QuorumConfig {
    QuorumConfig {
        read_fanout: ReadFanout::All,
        ..config()
    }
}

/// Five nodes, a coordinator on the first home replica of "k", and "k"
/// written and settled.
fn written(seed: u64, config: QuorumConfig) -> (Sim, Vec<NodeId>, Coordinator) {
    let sim = Sim::new(seed, 5);
    let h = home(&sim, b"k");
    let c = sim.coordinator(h[0], config);
    sim.put(&c, "k", "v", None, RequestOptions::default())
        .unwrap();
    sim.settle();
    (sim, h, c)
}

/// Requests replicas handle for one read, after the key was written and
/// every message settled.
fn requests_per_read(seed: u64, config: QuorumConfig) -> u64 {
    let (sim, _, c) = written(seed, config);
    let opts = RequestOptions::default();
    let before = sim.delivered();
    let got = sim.get(&c, "k", opts).unwrap();
    assert_eq!(got.siblings, vec![b("v")], "seed {seed}");
    sim.settle();
    sim.delivered() - before
}

#[test]
fn a_quorum_read_asks_r_replicas_and_an_all_read_asks_n() {
    for seed in seeds(1700, 10) {
        assert_eq!(requests_per_read(seed, quorum_reads()), 2, "seed {seed}");
        assert_eq!(requests_per_read(seed, all_reads()), 3, "seed {seed}");
    }
}

#[test]
fn a_failed_replica_is_replaced_at_once() {
    for seed in seeds(1800, 10) {
        let (sim, h, c) = written(seed, quorum_reads());
        let opts = RequestOptions::default();
        // Down, but not yet suspected by the failure detector: the
        // coordinator still asks it, and the refusal brings in the spare.
        for &node in &h[1..] {
            sim.partition(node);
            let start = sim.now_ms();
            let got = sim.get(&c, "k", opts).unwrap();
            assert_eq!(got.siblings, vec![b("v")], "seed {seed}");
            let took = sim.now_ms() - start;
            assert!(
                took < SPECULATE_AFTER.as_millis() as u64,
                "the spare was asked after {took} ms, not at the refusal (seed {seed})"
            );
            sim.heal(node);
        }
    }
}

#[test]
fn a_slow_replica_triggers_a_speculative_read() {
    for seed in seeds(1900, 10) {
        let (sim, h, c) = written(seed, quorum_reads());
        let opts = RequestOptions::default();
        // Each of the other two in turn is slower than the request timeout
        // (100 ms); whichever the read asks first, it answers in time.
        for &slow in &h[1..] {
            sim.set_fault(
                slow,
                Fault {
                    slow_ms: 200,
                    ..Fault::default()
                },
            );
            for _ in 0..2 {
                let start = sim.now_ms();
                let got = sim.get(&c, "k", opts).unwrap();
                assert_eq!(got.siblings, vec![b("v")], "seed {seed}");
                let took = sim.now_ms() - start;
                assert!(
                    took < SPECULATE_AFTER.as_millis() as u64 + 20,
                    "read took {took} ms (seed {seed})"
                );
            }
            sim.set_fault(slow, Fault::default());
            sim.settle();
        }
    }
}

#[test]
fn reads_take_turns_so_repair_reaches_every_replica() {
    for seed in seeds(2000, 10) {
        let sim = Sim::new(seed, 5);
        let h = home(&sim, b"k");
        let c = sim.coordinator(h[0], quorum_reads());
        let opts = RequestOptions::default();
        leave_third_replica_stale(&sim, &c, &h, "k");
        // Two reads from the same coordinator ask both other replicas
        // between them; read repair brings the stale one up to date.
        for _ in 0..2 {
            let got = sim.get(&c, "k", opts).unwrap();
            assert_eq!(got.siblings, vec![b("new")], "seed {seed}");
            sim.settle();
        }
        assert_eq!(sim.stored(h[2], "k"), vec![b("new")], "seed {seed}");
    }
}
