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

/// Crashes every home replica of `key`.
fn crash_home(sim: &Sim, key: &str) -> Vec<NodeId> {
    let h = home(sim, key.as_bytes());
    for &id in &h {
        sim.crash(id);
    }
    h
}

/// Heals `nodes` and replays every node's hints to them.
fn heal_and_hand_off(sim: &Sim, nodes: &[NodeId]) {
    for &id in nodes {
        sim.heal(id);
    }
    for &id in &sim.nodes {
        let view = sim.view(id);
        sim.run(sim.replayer(id).replay_alive(&view)).unwrap();
    }
    sim.settle();
}

#[test]
fn a_sloppy_write_succeeds_with_every_home_replica_down() {
    for seed in seeds(1300, 20) {
        // Six nodes, N=3: three stand-ins for three dead home replicas.
        let sim = Sim::new(seed, 6);
        let h = crash_home(&sim, "k");
        let coordinator = stand_in(&sim, "k");
        let c = sim.coordinator(coordinator, sloppy());
        sim.put(&c, "k", "v", None, RequestOptions::default())
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        sim.settle();
        heal_and_hand_off(&sim, &h);
        for &id in &h {
            assert_eq!(sim.stored(id, "k"), vec![b("v")], "seed {seed}, node {id}");
        }
        for &id in &sim.nodes {
            assert_eq!(
                sim.replica(id).hints().stats().count,
                0,
                "seed {seed}, node {id}"
            );
        }
    }
}

#[test]
fn strict_mode_still_refuses_without_a_home_replica() {
    let sim = Sim::new(1350, 6);
    crash_home(&sim, "k");
    let c = sim.coordinator(stand_in(&sim, "k"), config());
    let err = sim
        .put(&c, "k", "v", None, RequestOptions::default())
        .unwrap_err();
    assert!(
        matches!(err, QuorumError::Unavailable { alive: 0, .. }),
        "{err:?}"
    );
    assert!(err.nothing_written());
}

#[test]
fn a_stand_in_never_reuses_a_dot_after_its_hints_were_delivered() {
    for seed in seeds(1400, 10) {
        let sim = Sim::new(seed, 6);
        let issuer = stand_in(&sim, "k");
        let c = sim.coordinator(issuer, sloppy());
        // Blind writes through the same stand-in, each while every home
        // replica is down and each handed off before the next.
        for value in ["a", "b"] {
            let h = crash_home(&sim, "k");
            sim.put(&c, "k", value, None, RequestOptions::default())
                .unwrap_or_else(|e| panic!("seed {seed}, {value}: {e}"));
            sim.settle();
            heal_and_hand_off(&sim, &h);
        }
        // Both blind writes survive, as siblings, on every home replica.
        for &id in &home(&sim, b"k") {
            let mut stored = sim.stored(id, "k");
            stored.sort();
            assert_eq!(stored, vec![b("a"), b("b")], "seed {seed}, node {id}");
        }
    }
}

/// Two keys for each of the placements `classes` tells apart: the keys
/// `k0, k1, ...` in order, by which flags `classes` raises for their home.
fn keys_placed<const C: usize>(sim: &Sim, classes: impl Fn(&[NodeId]) -> [bool; C]) -> Vec<String> {
    let mut found: Vec<Vec<String>> = vec![Vec::new(); C];
    for i in 0u32..10_000 {
        let key = format!("k{i}");
        let flags = classes(&home(sim, key.as_bytes()));
        for (class, _) in flags.iter().enumerate().filter(|(_, on)| **on) {
            if found[class].len() < 2 {
                found[class].push(key.clone());
            }
        }
        if found.iter().all(|f| f.len() == 2) {
            break;
        }
    }
    assert!(
        found.iter().all(|f| f.len() == 2),
        "no key for some placement"
    );
    found.concat()
}

#[test]
fn both_sides_of_a_partition_take_writes_and_every_one_survives_the_heal() {
    for seed in seeds(1500, 20) {
        let sim = Sim::new(seed, 6);
        // Two halves of three, each with W=2 nodes: the home replicas of
        // one key, and the rest. Keys whose home replicas all sit on the
        // first side, and keys split across both.
        let left = home(&sim, b"k0");
        let right: Vec<NodeId> = sim
            .nodes
            .iter()
            .copied()
            .filter(|id| !left.contains(id))
            .collect();
        let (left, right) = (&left[..], &right[..]);
        let keys = keys_placed(&sim, |h| {
            let on_left = h.iter().filter(|id| left.contains(id)).count();
            [on_left == 3, on_left == 1, on_left == 2]
        });
        sim.split(left);
        let opts = RequestOptions::default();
        let mut acked = Vec::new();
        for i in 0..36 {
            let side = if i % 2 == 0 { left } else { right };
            let coordinator = side[sim.random(3) as usize];
            let c = sim.coordinator(coordinator, sloppy());
            let key = keys[(i / 2) % keys.len()].clone();
            let value = format!("v{i}");
            sim.put(&c, &key, &value, None, opts)
                .unwrap_or_else(|e| panic!("seed {seed}: {key}={value} via {coordinator}: {e}"));
            acked.push((side, key, value));
        }
        sim.settle();
        // Before the heal, a sloppy read sees what its own side wrote.
        for (side, key, value) in &acked {
            let c = sim.coordinator(side[sim.random(3) as usize], sloppy());
            let got = sim
                .get(&c, key, opts)
                .unwrap_or_else(|e| panic!("seed {seed}: {key} on its side: {e}"));
            assert!(
                got.siblings.contains(&b(value)),
                "seed {seed}: {key}={value} unseen on its own side: {:?}",
                got.siblings
            );
        }
        sim.rejoin();
        heal_and_hand_off(&sim, &[]);
        let reader = sim.coordinator(sim.nodes[0], sloppy());
        for (_, key, value) in &acked {
            let got = sim
                .get(&reader, key, ALL)
                .unwrap_or_else(|e| panic!("seed {seed}: {key}: {e}"));
            assert!(
                got.siblings.contains(&b(value)),
                "seed {seed}: {key}={value} lost after the heal: {:?}",
                got.siblings
            );
        }
        for &id in &sim.nodes {
            assert_eq!(
                sim.replica(id).hints().stats().count,
                0,
                "seed {seed}, node {id}"
            );
        }
    }
}
