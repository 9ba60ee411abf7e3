//! A power cut loses what a node's storage had not made durable, unlike a
//! crash that keeps the replica's memory. With durable writes nothing is
//! lost, hints included; without, the node comes back missing its writes
//! and under a fresh actor, and the quorum's other replicas give them back.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns are test code too

mod common;

use common::{Sim, SimDurability, b, config, home, seeds};
use kv_quorum::{Consistency, Mode, Placement, QuorumConfig, ReadRepair, RequestOptions};

const ALL: RequestOptions = RequestOptions::with(Consistency::All);

fn blocking_repair() -> QuorumConfig {
    QuorumConfig {
        read_repair: ReadRepair::Blocking,
        ..config()
    }
}

#[test]
fn a_power_cut_loses_unsynced_writes_and_the_quorum_restores_them() {
    for seed in seeds(3000, 10) {
        let sim = Sim::with_durability(seed, 5, SimDurability::OnSync);
        let h = home(&sim, b"k");
        let c = sim.coordinator(h[0], blocking_repair());
        sim.put(&c, "k", "v", None, ALL).unwrap();
        let lost = sim.power_cut(h[0]);
        assert_eq!(lost, 1, "seed {seed}");
        sim.heal(h[0]);
        // The replica's memory went with the power: unlike `crash`, the
        // write is gone from the node...
        assert!(sim.stored(h[0], "k").is_empty(), "seed {seed}");
        // The reborn issuer took a fresh actor: a blind write it issues now,
        // knowing nothing of "v", cannot reuse the dot of the lost write
        // (with the old actor the others would take "w" as already seen).
        sim.put(&c, "k", "w", None, ALL).unwrap();
        sim.settle();
        // The others kept "v" and give it back: a read sees both, and its
        // repair leaves both everywhere.
        let other = sim.coordinator(h[1], blocking_repair());
        let mut got = sim.get(&other, "k", ALL).unwrap().siblings;
        got.sort();
        assert_eq!(got, vec![b("v"), b("w")], "seed {seed}");
        for node in &h {
            let mut got = sim.stored(*node, "k");
            got.sort();
            assert_eq!(got, vec![b("v"), b("w")], "seed {seed} node {node:?}");
        }
    }
}

#[test]
fn a_power_cut_after_a_sync_loses_nothing() {
    let sim = Sim::with_durability(3100, 5, SimDurability::OnSync);
    let h = home(&sim, b"k");
    let c = sim.coordinator(h[0], config());
    sim.put(&c, "k", "v", None, ALL).unwrap();
    sim.sync_storage(h[0]);
    assert_eq!(sim.power_cut(h[0]), 0);
    sim.heal(h[0]);
    assert_eq!(sim.stored(h[0], "k"), vec![b("v")]);
}

#[test]
fn with_every_write_durable_a_power_cut_keeps_data_and_hints() {
    let sim = Sim::with_durability(3200, 5, SimDurability::EveryWrite);
    let h = home(&sim, b"k");
    sim.crash(h[2]);
    let sloppy = QuorumConfig {
        mode: Mode::Sloppy,
        ..config()
    };
    let c = sim.coordinator(h[0], sloppy);
    sim.put(&c, "k", "v", None, ALL).unwrap();
    let stand_in = sim.ring.fallbacks(b"k", 3).next().unwrap();
    assert_eq!(sim.replica(stand_in).hints().stats().count, 1);

    assert_eq!(sim.power_cut(h[0]), 0);
    assert_eq!(sim.power_cut(stand_in), 0);
    sim.heal(h[0]);
    sim.heal(stand_in);
    assert_eq!(sim.stored(h[0], "k"), vec![b("v")]);
    // The rebuilt stand-in counted its hint again from storage, and hands
    // it off once the owner is back.
    assert_eq!(sim.replica(stand_in).hints().stats().count, 1);
    sim.heal(h[2]);
    let report = sim.run(sim.replayer(stand_in).replay_alive(&sim)).unwrap();
    assert_eq!(report.delivered, 1);
    assert_eq!(sim.stored(h[2], "k"), vec![b("v")]);
}
