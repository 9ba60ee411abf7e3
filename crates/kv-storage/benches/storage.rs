//! Criterion micro-benchmarks of the engine's parts: memtable, block search,
//! Bloom filter. Group `storage`, merged into target/bench/storage.json.

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use kv_storage::bench_internals::{BenchBlock, BenchBloom, BenchMemTable};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random_keys(n: usize, seed: u64) -> Vec<Bytes> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let mut k = [0u8; 16];
            rng.fill(&mut k);
            Bytes::copy_from_slice(&k)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("storage");

    let keys = random_keys(100_000, 1);
    let mem = BenchMemTable::default();
    let value = Bytes::from(vec![1u8; 100]);
    for (i, k) in keys.iter().enumerate() {
        mem.insert(k.clone(), value.clone(), i as u64);
    }
    let mut i = 0usize;
    g.bench_function("memtable_get_100k", |b| {
        b.iter(|| {
            i = (i + 1) % keys.len();
            mem.contains(&keys[i])
        })
    });
    let fresh = random_keys(1_000_000, 2);
    let mut j = 0usize;
    let mut seq = 1_000_000u64;
    g.bench_function("memtable_insert", |b| {
        b.iter(|| {
            j = (j + 1) % fresh.len();
            seq += 1;
            mem.insert(fresh[j].clone(), value.clone(), seq);
        })
    });

    let mut block_keys = random_keys(32, 3);
    block_keys.sort();
    let block = BenchBlock::new(&block_keys, 100);
    let mut k = 0usize;
    g.bench_function("block_search_32", |b| {
        b.iter(|| {
            k = (k + 1) % block_keys.len();
            block.contains(&block_keys[k])
        })
    });

    let bloom = BenchBloom::new(&keys, 0.01);
    let absent = random_keys(10_000, 4);
    let mut a = 0usize;
    g.bench_function("bloom_absent_key", |b| {
        b.iter(|| {
            a = (a + 1) % absent.len();
            bloom.may_contain(&absent[a])
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
