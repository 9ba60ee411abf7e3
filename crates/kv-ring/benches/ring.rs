//! Criterion benchmarks of the ring's hot paths (group `ring`, merged into
//! `target/bench/ring.json` by `cargo xtask bench ring`).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use kv_ring::{NewNode, Ring, RingConfig, key_hash};
use kv_types::NodeId;

fn ring_of(nodes: u64, zones: u64) -> Ring {
    let nodes =
        (0..nodes).map(|i| NewNode::new(NodeId(i + 1), 1).in_zone(format!("z{}", i % zones)));
    match Ring::with_nodes(RingConfig::default(), nodes) {
        Ok(ring) => ring,
        Err(e) => panic!("building the bench ring: {e}"),
    }
}

fn bench(c: &mut Criterion) {
    let plain = ring_of(100, 1);
    let zoned = ring_of(100, 3);
    let keys: Vec<Vec<u8>> = (0..1024)
        .map(|i| format!("user:{i}").into_bytes())
        .collect();
    let mut group = c.benchmark_group("ring");
    let mut i = 0usize;
    group.bench_function("preference_list_n3_100nodes", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            black_box(plain.preference_list(black_box(&keys[i]), 3))
        })
    });
    group.bench_function("preference_list_n3_100nodes_3zones", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            black_box(zoned.preference_list(black_box(&keys[i]), 3))
        })
    });
    group.bench_function("key_hash_16b", |b| {
        b.iter(|| black_box(key_hash(black_box(b"user:0123456789a"))))
    });
    group.bench_function("join_101st_node", |b| {
        b.iter(|| {
            let mut r = plain.clone();
            black_box(r.join(NewNode::new(NodeId(1000), 1)))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
