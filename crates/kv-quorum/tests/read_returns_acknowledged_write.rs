//! With R + W > N, strict mode and no faults, a read after an acknowledged
//! write returns it, whichever node coordinates each request.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns are test code too

mod common;

use bytes::Bytes;
use common::{Sim, config, seeds};
use kv_quorum::{Consistency, RequestOptions};

fn check(seed: u64, read: Consistency, write: Consistency) {
    let sim = Sim::new(seed, 5);
    let coordinators = sim.coordinators(&config());
    let mut model = std::collections::BTreeMap::new();
    for step in 0..60u64 {
        let key = format!("key-{}", sim.random(8));
        let c = &coordinators[sim.random(5) as usize];
        let ctx = sim
            .run(c.get(key.as_bytes(), RequestOptions::with(read)))
            .unwrap_or_else(|e| panic!("seed {seed} step {step}: read failed: {e}"));
        let expected = model
            .get(&key)
            .map(|v: &Bytes| vec![v.clone()])
            .unwrap_or_default();
        assert_eq!(ctx.siblings, expected, "seed {seed} step {step}: {key}");
        let value = Bytes::from(format!("{key}@{step}"));
        let c = &coordinators[sim.random(5) as usize];
        sim.run(c.put(
            key.as_bytes(),
            value.clone(),
            Some(&ctx.context),
            RequestOptions::with(write),
        ))
        .unwrap_or_else(|e| panic!("seed {seed} step {step}: write failed: {e}"));
        model.insert(key, value);
    }
}

#[test]
fn quorum_reads_see_quorum_writes() {
    for seed in seeds(100, 10) {
        check(seed, Consistency::Quorum, Consistency::Quorum);
    }
}

#[test]
fn read_one_sees_write_all_and_read_all_sees_write_one() {
    for seed in seeds(200, 5) {
        check(seed, Consistency::One, Consistency::All);
        check(seed, Consistency::All, Consistency::One);
    }
}
