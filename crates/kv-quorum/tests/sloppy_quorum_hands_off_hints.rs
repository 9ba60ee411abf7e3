//! Sloppy quorums: with a home replica down, a stand-in takes the write with
//! a hint; the hint is delivered when the owner recovers, then removed.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns are test code too

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::{Sim, b, config, home, seeds};
use kv_quorum::{
    Consistency, HintLimits, HintStore, Mode, Placement, QuorumConfig, QuorumError, ReplicaFailure,
    RequestOptions, SiblingSet, WriteContext,
};
use kv_types::{MemStorage, NodeId};

fn sloppy() -> QuorumConfig {
    QuorumConfig {
        mode: Mode::Sloppy,
        ..config()
    }
}

fn stand_in(sim: &Sim, key: &str) -> NodeId {
    sim.ring.fallbacks(key.as_bytes(), 3).next().unwrap()
}

const ALL: RequestOptions = RequestOptions::with(Consistency::All);

#[test]
fn hint_is_delivered_on_recovery_and_the_owner_then_holds_the_value() {
    for seed in seeds(1000, 10) {
        let sim = Sim::new(seed, 5);
        let h = home(&sim, b"k");
        let down = h[2];
        sim.crash(down);
        let c = sim.coordinator(h[0], sloppy());
        // ALL succeeds: two home replicas plus the stand-in.
        sim.put(&c, "k", "v", None, ALL)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let fb = stand_in(&sim, "k");
        assert_eq!(sim.replica(fb).hints().stats().count, 1, "seed {seed}");
        assert!(sim.stored(down, "k").is_empty());

        // While the owner is down, replay delivers nothing and keeps the hint.
        let report = sim.run(sim.replayer(fb).replay_to(down)).unwrap();
        assert_eq!((report.delivered, report.failed), (0, 1), "seed {seed}");
        assert_eq!(sim.replica(fb).hints().stats().count, 1);

        sim.heal(down);
        let report = sim.run(sim.replayer(fb).replay_alive(&sim)).unwrap();
        assert_eq!(report.delivered, 1, "seed {seed}");
        assert_eq!(sim.stored(down, "k"), vec![b("v")]);
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
        assert!(sim.stored(fb, "k").is_empty());
    }
}

#[test]
fn strict_mode_refuses_what_sloppy_mode_accepts() {
    let sim = Sim::new(1100, 5);
    let h = home(&sim, b"k");
    sim.crash(h[1]);
    sim.crash(h[2]);
    let strict = sim.coordinator(h[0], config());
    let err = sim.put(&strict, "k", "v", None, RequestOptions::default());
    assert_eq!(
        err.unwrap_err(),
        QuorumError::Unavailable {
            required: 2,
            alive: 1
        }
    );
    let sloppy = sim.coordinator(h[0], sloppy());
    sim.put(&sloppy, "k", "v", None, RequestOptions::default())
        .unwrap();
}

#[test]
fn a_sloppy_read_counts_what_stand_ins_keep_as_hints() {
    let sim = Sim::new(1250, 5);
    let h = home(&sim, b"k");
    sim.crash(h[1]);
    sim.crash(h[2]);
    let c = sim.coordinator(h[0], sloppy());
    sim.put(&c, "k", "v", None, ALL).unwrap();
    // The last home replica dies too; the two stand-ins still answer a read
    // of two from their hints.
    sim.crash(h[0]);
    let other = sim.coordinator(h[1], sloppy());
    let got = sim.get(&other, "k", RequestOptions::with(Consistency::Explicit(2)));
    assert_eq!(got.unwrap().siblings, vec![b("v")]);
}

#[test]
fn a_full_hint_store_is_a_clear_error_with_a_metric() {
    let limits = HintLimits {
        count_max: 1,
        bytes_max: 1 << 20,
    };
    let sim = Sim::with_hint_limits(1200, 4, limits);
    // Two keys with the same home replicas, hence the same single stand-in
    // (4 nodes, N=3).
    let first = "k0";
    let fb = stand_in(&sim, first);
    let second = (1u32..)
        .map(|i| format!("k{i}"))
        .find(|k| stand_in(&sim, k) == fb)
        .unwrap();
    let owner = home(&sim, first.as_bytes())[2];
    sim.crash(owner);
    let c = sim.coordinator(home(&sim, first.as_bytes())[0], sloppy());
    sim.put(&c, first, "a", None, ALL).unwrap();
    let err = sim.put(&c, &second, "b", None, ALL).unwrap_err();
    assert!(
        matches!(err, QuorumError::HintStoreFull { node, acked: 2, required: 3 } if node == fb),
        "{err:?}"
    );
    let stats = sim.replica(fb).hints().stats();
    assert_eq!((stats.count, stats.rejected_total), (1, 1));
    // Merging into an existing hint needs no new slot.
    sim.put(&c, first, "a2", None, ALL).unwrap();
}

#[test]
fn the_hint_store_refuses_what_would_pass_its_byte_bound() {
    let mut set = SiblingSet::new();
    set.update(
        &WriteContext::new(),
        NodeId(1),
        Some(Bytes::from(vec![7u8; 1000])),
    )
    .unwrap();
    let limits = HintLimits {
        count_max: 1000,
        bytes_max: 4096,
    };
    let store = HintStore::open(Arc::new(MemStorage::new()), limits).unwrap();
    let mut accepted = 0;
    let err = loop {
        match store.add(NodeId(9), format!("k{accepted}").as_bytes(), &set) {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted < 100, "the byte bound was never reached");
    };
    assert!(
        matches!(
            err,
            ReplicaFailure::HintStoreFull {
                bytes_max: 4096,
                ..
            }
        ),
        "{err:?}"
    );
    let stats = store.stats();
    // Each hint is over 1000 bytes, so a few fit and the next would not;
    // far under the count bound, the refusal was the byte bound's.
    assert!(
        (2..=4).contains(&accepted),
        "{accepted} hints of 1000 bytes"
    );
    assert!(stats.bytes <= limits.bytes_max, "{stats:?}");
    assert!(
        stats.bytes + stats.bytes / accepted > limits.bytes_max,
        "{stats:?}"
    );
    assert_eq!((stats.count, stats.rejected_total), (accepted, 1));
}

#[test]
fn hint_counts_survive_a_restart() {
    let storage = Arc::new(MemStorage::new());
    let limits = HintLimits {
        count_max: 2,
        bytes_max: 1 << 20,
    };
    let store = HintStore::open(storage.clone(), limits).unwrap();
    let mut set = SiblingSet::new();
    set.update(
        &WriteContext::new(),
        NodeId(1),
        Some(Bytes::from_static(b"v")),
    )
    .unwrap();
    store.add(NodeId(9), b"a", &set).unwrap();
    store.add(NodeId(8), b"b", &set).unwrap();
    assert!(store.add(NodeId(9), b"c", &set).is_err());
    store.remove_delivered(NodeId(8), b"b", &set).unwrap();
    let reopened = HintStore::open(storage, limits).unwrap();
    assert_eq!(reopened.stats().count, 1);
    assert_eq!(reopened.stats().bytes, store.stats().bytes);
    assert_eq!(reopened.owners(), vec![NodeId(9)]);
    reopened.add(NodeId(9), b"c", &set).unwrap();
    assert!(reopened.add(NodeId(7), b"d", &set).is_err());
}

#[test]
fn a_replay_round_delivers_at_most_one_batch() {
    let sim = Sim::new(1260, 5);
    let owner = sim.nodes[4];
    let keys: Vec<String> = (0u32..)
        .map(|i| format!("k{i}"))
        .filter(|k| home(&sim, k.as_bytes()).contains(&owner))
        .take(40)
        .collect();
    sim.crash(owner);
    let mut by_stand_in = std::collections::BTreeMap::<NodeId, usize>::new();
    for k in &keys {
        let c = sim.coordinator(home(&sim, k.as_bytes())[0], sloppy());
        sim.put(&c, k, "v", None, ALL).unwrap();
        *by_stand_in.entry(stand_in(&sim, k)).or_default() += 1;
    }
    sim.heal(owner);
    // The simulation's replayer delivers batches of 16.
    let (&fb, &held) = by_stand_in.iter().max_by_key(|e| *e.1).unwrap();
    assert!(held > 16, "need more than one batch, got {held}");
    let first = sim.run(sim.replayer(fb).replay_to(owner)).unwrap();
    assert_eq!(first.delivered, 16);
    assert_eq!(sim.replica(fb).hints().stats().count, held - 16);
    while sim.replica(fb).hints().stats().count > 0 {
        sim.run(sim.replayer(fb).replay_to(owner)).unwrap();
    }
    for k in &keys {
        if stand_in(&sim, k) == fb {
            assert_eq!(sim.stored(owner, k), vec![b("v")]);
        }
    }
}
