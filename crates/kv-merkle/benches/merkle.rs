//! Criterion benchmarks of kv-merkle (group `merkle`): the hashes every
//! write pays, one incremental update, and a whole diff with k = 100.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use kv_merkle::{DiffLimits, MemReplica, MerkleError, TreeConfig, item_hash, respond, run_diff};

const KEYS: u32 = 200_000;

fn key(i: u32) -> Vec<u8> {
    format!("key-{i:08}").into_bytes()
}

fn replica(config: TreeConfig, changed_every: Option<u32>) -> MemReplica {
    let mut r = MemReplica::new(config);
    for i in 0..KEYS {
        let version: &[u8] = match changed_every {
            Some(n) if i % n == 0 => b"v2",
            _ => b"v1",
        };
        r.put(&key(i), version);
    }
    r
}

fn benches(c: &mut Criterion) {
    let config = TreeConfig::default();
    let mut g = c.benchmark_group("merkle");

    g.bench_function("item_hash", |b| {
        b.iter(|| item_hash(black_box(b"key-00012345"), black_box(b"vv:node-3:12345:1")))
    });
    g.bench_function("bucket_of", |b| {
        b.iter(|| config.bucket_of(black_box(b"key-00012345")))
    });

    let keys: Vec<Vec<u8>> = (0..4096).map(|i| key(i * 48)).collect();
    let (old, new) = (item_hash(b"k", b"1"), item_hash(b"k", b"2"));
    let mut tree = replica(config, None).tree;
    let mut i = 0;
    g.bench_function("update", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            tree.update(black_box(&keys[i]), Some(old), Some(new));
        })
    });

    // Every 2,000th key of 200,000 changed: k = 100.
    let a = replica(config, None);
    let remote = replica(config, Some(KEYS / 100));
    let limits = DiffLimits::default();
    g.sample_size(20);
    g.bench_function("diff_k100_200k_keys", |b| {
        b.iter(|| {
            let outcome = run_diff(&a.tree, &a.keys, limits, |request| {
                respond(&remote.tree, &remote.keys, &limits, request)
            })
            .map_err(|e: MerkleError| e.to_string())
            .expect("diff runs");
            assert_eq!(outcome.differences.len(), 100);
            outcome
        })
    });
    g.finish();
}

criterion_group!(merkle, benches);
criterion_main!(merkle);
