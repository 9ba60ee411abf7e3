//! Read repair: replicas that answered a read with an older version, or
//! nothing, receive the merged version.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns are test code too

mod common;

use common::{Sim, b, config, home, leave_third_replica_stale, seeds};
use kv_quorum::{Consistency, QuorumConfig, ReadRepair, RequestOptions};
use kv_types::NodeId;

fn coordinator_config(mode: ReadRepair) -> QuorumConfig {
    QuorumConfig {
        read_repair: mode,
        ..config()
    }
}

/// Makes the third home replica miss a write, then reads all three.
fn stale_then_read(seed: u64, mode: ReadRepair) -> (Sim, Vec<NodeId>) {
    let sim = Sim::new(seed, 5);
    let h = home(&sim, b"k");
    let c = sim.coordinator(h[0], coordinator_config(mode));
    leave_third_replica_stale(&sim, &c, &h, "k");
    let got = sim
        .get(&c, "k", RequestOptions::with(Consistency::All))
        .unwrap();
    assert_eq!(got.siblings, vec![b("new")], "seed {seed}");
    (sim, h)
}

#[test]
fn blocking_read_repair_is_done_before_the_reply() {
    for seed in seeds(1300, 10) {
        let (sim, h) = stale_then_read(seed, ReadRepair::Blocking);
        // No settle: the repair finished before `get` answered.
        assert_eq!(sim.stored(h[2], "k"), vec![b("new")], "seed {seed}");
    }
}

#[test]
fn async_read_repair_answers_without_waiting_for_the_repair() {
    for seed in seeds(1450, 10) {
        // The simulation runs `get` only until it answers; the repair it
        // sent is then still in flight (every message takes virtual time).
        let (sim, h) = stale_then_read(seed, ReadRepair::Async);
        assert_eq!(
            sim.stored(h[2], "k"),
            vec![b("old")],
            "seed {seed}: the read waited for its repair"
        );
        sim.settle();
        assert_eq!(sim.stored(h[2], "k"), vec![b("new")], "seed {seed}");
    }
}

#[test]
fn async_read_repair_arrives_after_the_reply() {
    for seed in seeds(1400, 10) {
        let (sim, h) = stale_then_read(seed, ReadRepair::Async);
        sim.settle();
        assert_eq!(sim.stored(h[2], "k"), vec![b("new")], "seed {seed}");
    }
}

#[test]
fn repair_off_leaves_the_stale_replica() {
    let (sim, h) = stale_then_read(1500, ReadRepair::Off);
    sim.settle();
    assert_eq!(sim.stored(h[2], "k"), vec![b("old")]);
}

#[test]
fn a_replica_with_nothing_is_repaired_too() {
    let sim = Sim::new(1600, 3);
    let h = home(&sim, b"k");
    let c = sim.coordinator(h[0], coordinator_config(ReadRepair::Blocking));
    sim.crash(h[1]);
    sim.put(&c, "k", "v", None, RequestOptions::default())
        .unwrap();
    sim.settle();
    sim.heal(h[1]);
    assert!(sim.stored(h[1], "k").is_empty());
    sim.get(&c, "k", RequestOptions::with(Consistency::All))
        .unwrap();
    assert_eq!(sim.stored(h[1], "k"), vec![b("v")]);
}
