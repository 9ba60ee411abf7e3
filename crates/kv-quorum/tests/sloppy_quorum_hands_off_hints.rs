//! Sloppy quorums: with a home replica down, a stand-in takes the write with
//! a hint; the hint is delivered when the owner recovers, then removed.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns are test code too

mod common;

use bytes::Bytes;
use common::{Sim, config, home, seeds};
use kv_quorum::{
    Consistency, HintLimits, Mode, Placement, QuorumConfig, QuorumError, RequestOptions,
};
use kv_types::NodeId;

fn sloppy() -> QuorumConfig {
    QuorumConfig {
        mode: Mode::Sloppy,
        ..config()
    }
}

fn stand_in(sim: &Sim, key: &[u8]) -> NodeId {
    sim.ring.fallbacks(key, 3).next().unwrap()
}

#[test]
fn hint_is_delivered_on_recovery_and_the_owner_then_holds_the_value() {
    for seed in seeds(1000, 10) {
        let sim = Sim::new(seed, 5);
        let h = home(&sim, b"k");
        let down = h[2];
        sim.crash(down);
        let c = sim.coordinator(h[0], sloppy());
        // ALL succeeds: two home replicas plus the stand-in.
        sim.run(c.put(
            b"k",
            Bytes::from_static(b"v"),
            None,
            RequestOptions::with(Consistency::All),
        ))
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let fb = stand_in(&sim, b"k");
        assert_eq!(sim.replica(fb).hints().stats().count, 1, "seed {seed}");
        assert!(sim.replica(down).read(b"k").unwrap().siblings().is_empty());

        // While the owner is down, replay delivers nothing and keeps the hint.
        let report = sim.run(sim.replayer(fb).replay_to(down)).unwrap();
        assert_eq!((report.delivered, report.failed), (0, 1), "seed {seed}");
        assert_eq!(sim.replica(fb).hints().stats().count, 1);

        sim.heal(down);
        let report = sim.run(sim.replayer(fb).replay_alive(&sim)).unwrap();
        assert_eq!(report.delivered, 1, "seed {seed}");
        let held = sim.replica(down).read(b"k").unwrap();
        assert_eq!(
            held.values().collect::<Vec<_>>(),
            vec![&Bytes::from_static(b"v")]
        );
        let stats = sim.replica(fb).hints().stats();
        assert_eq!((stats.count, stats.bytes, stats.delivered_total), (0, 0, 1));
        assert!(
            sim.replica(fb)
                .hints()
                .pending(down, 10)
                .unwrap()
                .is_empty()
        );
        // The stand-in never stored the key as its own.
        assert!(sim.replica(fb).read(b"k").unwrap().siblings().is_empty());
    }
}

#[test]
fn strict_mode_refuses_what_sloppy_mode_accepts() {
    let sim = Sim::new(1100, 5);
    let h = home(&sim, b"k");
    sim.crash(h[1]);
    sim.crash(h[2]);
    let v = Bytes::from_static(b"v");
    let strict = sim.coordinator(h[0], config());
    let err = sim
        .run(strict.put(b"k", v.clone(), None, RequestOptions::default()))
        .unwrap_err();
    assert_eq!(
        err,
        QuorumError::Unavailable {
            required: 2,
            alive: 1
        }
    );
    let sloppy = sim.coordinator(h[0], sloppy());
    sim.run(sloppy.put(b"k", v, None, RequestOptions::default()))
        .unwrap();
    // A sloppy read of two counts the home survivor and a stand-in.
    assert!(sim.run(sloppy.get(b"k", RequestOptions::default())).is_ok());
}

#[test]
fn a_full_hint_store_is_a_clear_error_with_a_metric() {
    let limits = HintLimits {
        count_max: 1,
        bytes_max: 1 << 20,
    };
    let sim = Sim::with_hint_limits(1200, 4, limits);
    // Find two keys whose only possible stand-in is the same node: with 4
    // nodes and N=3 every key has exactly one fallback.
    let mut keys = (0u32..).map(|i| format!("k{i}"));
    let first = keys.next().unwrap();
    let fb = stand_in(&sim, first.as_bytes());
    let owner = home(&sim, first.as_bytes())[2];
    let second = keys
        .find(|k| stand_in(&sim, k.as_bytes()) == fb && home(&sim, k.as_bytes()).contains(&owner))
        .unwrap();
    sim.crash(owner);
    let all = RequestOptions::with(Consistency::All);
    let coordinator = sim.coordinator(home(&sim, first.as_bytes())[0], sloppy());
    sim.run(coordinator.put(first.as_bytes(), Bytes::from_static(b"a"), None, all))
        .unwrap();
    let err = sim
        .run(coordinator.put(second.as_bytes(), Bytes::from_static(b"b"), None, all))
        .unwrap_err();
    assert!(
        matches!(err, QuorumError::HintStoreFull { node, acked: 2, required: 3 } if node == fb),
        "{err:?}"
    );
    let stats = sim.replica(fb).hints().stats();
    assert_eq!((stats.count, stats.rejected_total), (1, 1));
    // Merging into an existing hint needs no new slot.
    sim.run(coordinator.put(first.as_bytes(), Bytes::from_static(b"a2"), None, all))
        .unwrap();
}

#[test]
fn a_sloppy_read_counts_what_stand_ins_keep_as_hints() {
    let sim = Sim::new(1250, 5);
    let h = home(&sim, b"k");
    sim.crash(h[1]);
    sim.crash(h[2]);
    let c = sim.coordinator(h[0], sloppy());
    let all = RequestOptions::with(Consistency::All);
    sim.run(c.put(b"k", Bytes::from_static(b"v"), None, all))
        .unwrap();
    // The last home replica dies too; ONE from the stand-ins still finds
    // the value in their hints.
    sim.crash(h[0]);
    let other = sim.coordinator(h[1], sloppy());
    let got = sim
        .run(other.get(b"k", RequestOptions::with(Consistency::Explicit(2))))
        .unwrap();
    assert_eq!(got.siblings, vec![Bytes::from_static(b"v")]);
}

#[test]
fn hint_counts_survive_a_restart() {
    use std::sync::Arc;

    let storage = Arc::new(kv_types::MemStorage::new());
    let limits = HintLimits {
        count_max: 2,
        bytes_max: 1 << 20,
    };
    let store = kv_quorum::HintStore::open(storage.clone(), limits).unwrap();
    let mut set = kv_quorum::SiblingSet::new();
    set.update(
        &kv_quorum::VersionVector::new(),
        NodeId(1),
        Some(Bytes::from_static(b"v")),
    );
    store.add(NodeId(9), b"a", &set).unwrap();
    store.add(NodeId(8), b"b", &set).unwrap();
    assert!(store.add(NodeId(9), b"c", &set).is_err());
    store.remove_delivered(NodeId(8), b"b", &set).unwrap();
    let reopened = kv_quorum::HintStore::open(storage, limits).unwrap();
    assert_eq!(reopened.stats().count, 1);
    assert_eq!(reopened.stats().bytes, store.stats().bytes);
    assert_eq!(reopened.owners(), vec![NodeId(9)]);
    reopened.add(NodeId(9), b"c", &set).unwrap();
    assert!(reopened.add(NodeId(7), b"d", &set).is_err());
}
