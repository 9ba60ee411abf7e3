//! Read repair: replicas that answered a read with an older version, or
//! nothing, receive the merged version.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns are test code too

mod common;

use bytes::Bytes;
use common::{Sim, config, home, seeds};
use kv_quorum::{Consistency, QuorumConfig, ReadRepair, RequestOptions};

fn stale_then_read(seed: u64, mode: ReadRepair) -> (Sim, Vec<kv_types::NodeId>) {
    let sim = Sim::new(seed, 5);
    let h = home(&sim, b"k");
    let cfg = QuorumConfig {
        read_repair: mode,
        ..config()
    };
    let c = sim.coordinator(h[0], cfg);
    let opts = RequestOptions::default();
    sim.run(c.put(b"k", Bytes::from_static(b"old"), None, opts))
        .unwrap();
    sim.settle();
    // h[2] misses the second write.
    sim.crash(h[2]);
    let got = sim.run(c.get(b"k", opts)).unwrap();
    sim.run(c.put(b"k", Bytes::from_static(b"new"), Some(&got.context), opts))
        .unwrap();
    sim.settle();
    sim.heal(h[2]);
    let stale = sim.replica(h[2]).read(b"k").unwrap();
    assert_eq!(
        stale.values().collect::<Vec<_>>(),
        vec![&Bytes::from_static(b"old")]
    );
    let got = sim
        .run(c.get(b"k", RequestOptions::with(Consistency::All)))
        .unwrap();
    assert_eq!(
        got.siblings,
        vec![Bytes::from_static(b"new")],
        "seed {seed}"
    );
    (sim, h)
}

fn current(sim: &Sim, node: kv_types::NodeId) -> Vec<Bytes> {
    sim.replica(node)
        .read(b"k")
        .unwrap()
        .values()
        .cloned()
        .collect()
}

#[test]
fn blocking_read_repair_is_done_before_the_reply() {
    for seed in seeds(1300, 10) {
        let (sim, h) = stale_then_read(seed, ReadRepair::Blocking);
        // No settle: the repair finished before `get` answered.
        assert_eq!(
            current(&sim, h[2]),
            vec![Bytes::from_static(b"new")],
            "seed {seed}"
        );
    }
}

#[test]
fn async_read_repair_arrives_after_the_reply() {
    for seed in seeds(1400, 10) {
        let (sim, h) = stale_then_read(seed, ReadRepair::Async);
        sim.settle();
        assert_eq!(
            current(&sim, h[2]),
            vec![Bytes::from_static(b"new")],
            "seed {seed}"
        );
    }
}

#[test]
fn repair_off_leaves_the_stale_replica() {
    let (sim, h) = stale_then_read(1500, ReadRepair::Off);
    sim.settle();
    assert_eq!(current(&sim, h[2]), vec![Bytes::from_static(b"old")]);
}

#[test]
fn a_replica_with_nothing_is_repaired_too() {
    let sim = Sim::new(1600, 3);
    let h = home(&sim, b"k");
    let cfg = QuorumConfig {
        read_repair: ReadRepair::Blocking,
        ..config()
    };
    let c = sim.coordinator(h[0], cfg);
    sim.crash(h[1]);
    sim.run(c.put(
        b"k",
        Bytes::from_static(b"v"),
        None,
        RequestOptions::default(),
    ))
    .unwrap();
    sim.settle();
    sim.heal(h[1]);
    assert!(sim.replica(h[1]).read(b"k").unwrap().siblings().is_empty());
    sim.run(c.get(b"k", RequestOptions::with(Consistency::All)))
        .unwrap();
    assert_eq!(current(&sim, h[1]), vec![Bytes::from_static(b"v")]);
}
