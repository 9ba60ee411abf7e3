//! Under random faults (crashes, power cuts, partitions unknown to the
//! failure detector, slow nodes, dropped messages), strict quorums with R + W > N never lose
//! an acknowledged write and never invent one: every successful read sees
//! every write acknowledged before it, and only values someone wrote.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns are test code too

mod common;

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use common::{Fault, Sim, config, seeds};
use kv_quorum::{QuorumConfig, RequestOptions};

fn inject(sim: &Sim) {
    let node = sim.nodes[sim.random(sim.nodes.len() as u64) as usize];
    match sim.random(6) {
        // Every write is durable in this simulation, so a power cut loses
        // nothing; the node comes back as a replica rebuilt from storage.
        0 if sim.random(2) == 0 => {
            sim.power_cut(node);
        }
        0 => sim.crash(node),
        1 => sim.partition(node),
        2 => sim.set_fault(
            node,
            Fault {
                slow_ms: 20 + sim.random(150),
                ..Fault::default()
            },
        ),
        3 => sim.set_fault(
            node,
            Fault {
                drop: 0.3,
                ..Fault::default()
            },
        ),
        _ => sim.heal(node),
    }
}

#[test]
fn acknowledged_blind_writes_survive_random_faults() {
    for seed in seeds(2000, 12) {
        let sim = Sim::new(seed, 5);
        // Blind writes never supersede each other, so every acknowledged
        // one must survive as a sibling; lift the bound for that.
        let cfg = QuorumConfig {
            max_siblings: 10_000,
            ..config()
        };
        let coords = sim.coordinators(&cfg);
        let opts = RequestOptions::default();
        let mut acked: BTreeMap<String, BTreeSet<Bytes>> = BTreeMap::new();
        let mut attempted: BTreeMap<String, BTreeSet<Bytes>> = BTreeMap::new();
        let mut reads_ok = 0;
        for step in 0..150u64 {
            if sim.random(4) == 0 {
                inject(&sim);
            }
            let key = format!("k{}", sim.random(4));
            let c = &coords[sim.random(5) as usize];
            if sim.random(2) == 0 {
                let v = Bytes::from(format!("{key}@{step}"));
                attempted.entry(key.clone()).or_default().insert(v.clone());
                if sim
                    .run(c.put(key.as_bytes(), v.clone(), None, opts))
                    .is_ok()
                {
                    acked.entry(key).or_default().insert(v);
                }
            } else if let Ok(got) = sim.run(c.get(key.as_bytes(), opts)) {
                reads_ok += 1;
                let seen: BTreeSet<Bytes> = got.siblings.into_iter().collect();
                let must = acked.get(&key).cloned().unwrap_or_default();
                let may = attempted.get(&key).cloned().unwrap_or_default();
                assert!(
                    seen.is_superset(&must),
                    "seed {seed} step {step}: lost {:?}",
                    must.difference(&seen).collect::<Vec<_>>()
                );
                assert!(
                    seen.is_subset(&may),
                    "seed {seed} step {step}: invented a value"
                );
            }
        }
        // Some work must have got through, or the test checks nothing.
        assert!(
            reads_ok > 10,
            "seed {seed}: only {reads_ok} reads succeeded"
        );
        assert!(
            acked.values().map(BTreeSet::len).sum::<usize>() > 10,
            "seed {seed}"
        );
    }
}
