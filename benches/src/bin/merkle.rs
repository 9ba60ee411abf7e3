//! Figures for kv-merkle: build and update cost, and what a diff of two
//! million-key replicas exchanges, next to sending every key and hash.
//!
//! `cargo xtask bench merkle [-- --keys N --fan-out-bits B --depth D]`
//! (default: 1,000,000 keys, the default tree shape). Replica B is a copy of A that
//! differs in exactly k keys (a third changed, a third missing, a third
//! extra); the diff runs in process, every message is postcard-encoded and
//! counted in both directions, and the keys it finds are checked against
//! the k planted ones: a wrong answer fails the run.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use kv_benches::{Mark, Report};
use kv_merkle::{
    DiffKind, DiffLimits, Digest, Item, MemReplica, MerkleTree, TreeConfig, item_hash, respond,
    run_diff,
};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

const SEED: u64 = 0x6d65_726b_6c65;
const BUILD_RUNS: usize = 5;

fn key(i: u32) -> Vec<u8> {
    format!("key-{i:08}").into_bytes()
}

/// Stand-in for a version vector: what the store would hash with the key.
fn version(i: u32, generation: u32) -> Vec<u8> {
    format!("vv:node-{}:{}:{generation}", i % 7, i).into_bytes()
}

struct DiffFigures {
    bytes: usize,
    round_trips: u32,
    messages: usize,
    largest_message: usize,
    ms: f64,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn measure_diff(
    a: &MemReplica,
    b: &MemReplica,
    limits: DiffLimits,
    expected: &BTreeMap<Vec<u8>, (Option<Digest>, Option<Digest>)>,
) -> Result<DiffFigures, String> {
    let started = Instant::now();
    let mut bytes = 0;
    let mut messages = 0;
    let mut largest_message = 0;
    let mut count = |len: usize| {
        bytes += len;
        messages += 1;
        largest_message = largest_message.max(len);
    };
    let outcome = run_diff(&a.tree, &a.keys, limits, |request| {
        count(postcard::to_allocvec(request)?.len());
        let response = respond(&b.tree, &b.keys, &limits, request)?;
        count(postcard::to_allocvec(&response)?.len());
        Ok::<_, BoxError>(response)
    })
    .map_err(|e| e.to_string())?;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    if !outcome.complete {
        return Err("diff stopped at differences_max".into());
    }
    let found: BTreeMap<Vec<u8>, (Option<Digest>, Option<Digest>)> = outcome
        .differences
        .iter()
        .map(|d| {
            let pair = match d.kind {
                DiffKind::OnlyLocal { local } => (Some(local), None),
                DiffKind::OnlyRemote { remote } => (None, Some(remote)),
                DiffKind::Different { local, remote } => (Some(local), Some(remote)),
            };
            (d.key.clone(), pair)
        })
        .collect();
    if found.len() != outcome.differences.len() || &found != expected {
        let missed = expected.keys().filter(|k| !found.contains_key(*k)).count();
        let extra = found.keys().filter(|k| !expected.contains_key(*k)).count();
        return Err(format!(
            "diff found {} keys, expected {}: {missed} missed, {extra} extra",
            outcome.differences.len(),
            expected.len()
        ));
    }
    Ok(DiffFigures {
        bytes,
        round_trips: outcome.stats.round_trips,
        messages,
        largest_message,
        ms,
    })
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|s| s.parse::<u32>().ok())
    };
    let n = arg("--keys").unwrap_or(1_000_000);
    let default = TreeConfig::default();
    let bits = arg("--fan-out-bits").map_or(default.fan_out_bits(), |b| b as u8);
    let depth = arg("--depth").map_or(default.depth(), |d| d as u8);
    let result = TreeConfig::new(bits, depth)
        .map_err(|e| e.to_string())
        .and_then(|config| figures(n, config));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("merkle figures failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn figures(n: u32, config: TreeConfig) -> Result<(), String> {
    let limits = DiffLimits::default();
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let mut report = Report::new("merkle");
    let scale = if n == 1_000_000 {
        "1M".to_owned()
    } else {
        n.to_string()
    };
    println!(
        "kv-merkle: {n} keys, fan-out {}, depth {}, {} buckets (~{:.1} keys a bucket)\n",
        config.fan_out(),
        config.depth(),
        config.buckets(),
        f64::from(n) / f64::from(config.buckets())
    );

    let items: Vec<(Vec<u8>, Vec<u8>)> = (0..n).map(|i| (key(i), version(i, 1))).collect();

    // Full build from an ordered scan, hashing every (key, version) as a
    // recovery rebuild would.
    let mut build_ms = Vec::new();
    let mut tree = MerkleTree::new(config);
    for _ in 0..BUILD_RUNS {
        let started = Instant::now();
        tree = MerkleTree::from_sorted(config, items.iter().map(|(k, v)| (k, item_hash(k, v))))
            .map_err(|e| e.to_string())?;
        build_ms.push(started.elapsed().as_secs_f64() * 1e3);
    }
    report.add(
        "build_1m_ms",
        &format!("full build, {scale} keys (median of {BUILD_RUNS})"),
        median(build_ms),
        "ms",
    );

    // One incremental update, in random key order so the tree is not
    // walked in cache-friendly order: first with the item hashes given
    // (the tree's own cost), then hashing old and new versions too.
    let mut order: Vec<u32> = (0..n).collect();
    order.shuffle(&mut rng);
    let hashes: Vec<(Digest, Digest)> = order
        .iter()
        .map(|&i| {
            let k = key(i);
            (item_hash(&k, &version(i, 1)), item_hash(&k, &version(i, 2)))
        })
        .collect();
    let keys: Vec<Vec<u8>> = order.iter().map(|&i| key(i)).collect();
    let started = Instant::now();
    for (k, (old, new)) in keys.iter().zip(&hashes) {
        tree.update(black_box(k), Some(*old), Some(*new));
    }
    let update_ns = started.elapsed().as_secs_f64() * 1e9 / f64::from(n);
    let versions: Vec<(Vec<u8>, Vec<u8>)> = order
        .iter()
        .map(|&i| (version(i, 2), version(i, 3)))
        .collect();
    let started = Instant::now();
    for (k, (old, new)) in keys.iter().zip(&versions) {
        tree.update(
            black_box(k),
            Some(item_hash(k, old)),
            Some(item_hash(k, new)),
        );
    }
    let update_hashing_ns = started.elapsed().as_secs_f64() * 1e9 / f64::from(n);
    black_box(tree.root());
    drop((hashes, versions, keys, order));
    report.add(
        "update_ns",
        "incremental update (item hashes given)",
        update_ns,
        "ns",
    );
    report.add(
        "update_with_hashing_ns",
        "incremental update, hashing old and new",
        update_hashing_ns,
        "ns",
    );
    let digests = (0..=config.depth())
        .map(|l| u64::from(config.nodes_at(l)))
        .sum::<u64>();
    report.add(
        "tree_bytes",
        "tree memory (digests only)",
        (digests * 32) as f64,
        "bytes",
    );

    // Replica A, and the full listing it would otherwise send.
    let mut a = MemReplica::new(config);
    for (k, v) in &items {
        a.set(k, Some(item_hash(k, v)));
    }
    let listing: Vec<Item> = a
        .keys
        .iter()
        .map(|(key, hash)| Item {
            key: key.to_vec(),
            hash,
        })
        .collect();
    let full_listing_bytes = postcard::to_allocvec(&listing)
        .map_err(|e| e.to_string())?
        .len();
    drop(listing);
    report.add(
        "full_listing_bytes",
        &format!("full listing: every key and hash, {scale}"),
        full_listing_bytes as f64,
        "bytes",
    );

    for k in [1u32, 100, 10_000] {
        if k > n {
            continue;
        }
        let mut b = a.clone();
        let mut expected = BTreeMap::new();
        let mut picked: Vec<u32> = (0..n).collect();
        let (picked, _) = picked.partial_shuffle(&mut rng, k as usize);
        for (j, &i) in picked.iter().enumerate() {
            let old = a.keys.get(&key(i));
            match j % 3 {
                // B took a newer write.
                0 => {
                    let new = item_hash(&key(i), &version(i, 9));
                    b.set(&key(i), Some(new));
                    expected.insert(key(i), (old, Some(new)));
                }
                // B lacks the key.
                1 => {
                    b.set(&key(i), None);
                    expected.insert(key(i), (old, None));
                }
                // B has a key A never saw.
                _ => {
                    let extra = key(n + i);
                    let new = item_hash(&extra, &version(n + i, 1));
                    b.set(&extra, Some(new));
                    expected.insert(extra, (None, Some(new)));
                }
            }
        }
        let d = measure_diff(&a, &b, limits, &expected).map_err(|e| format!("k = {k}: {e}"))?;
        let ratio = d.bytes as f64 / full_listing_bytes as f64;
        report.add(
            &format!("diff_k{k}_bytes"),
            &format!("diff k={k}: bytes, both directions"),
            d.bytes as f64,
            "bytes",
        );
        let ratio_label = format!("diff k={k}: bytes / full listing");
        let rt_label = format!("diff k={k}: round trips");
        let depth_plus_one = f64::from(config.depth()) + 1.0;
        if k == 100 {
            report.add_marked(
                "diff_k100_ratio",
                &ratio_label,
                ratio,
                "x",
                Mark::AtMost(0.01),
            );
            report.add_marked(
                "diff_k100_round_trips",
                &rt_label,
                f64::from(d.round_trips),
                "",
                Mark::AtMost(depth_plus_one),
            );
        } else {
            report.add(&format!("diff_k{k}_ratio"), &ratio_label, ratio, "x");
            report.add(
                &format!("diff_k{k}_round_trips"),
                &rt_label,
                f64::from(d.round_trips),
                "",
            );
        }
        report.add(
            &format!("diff_k{k}_messages"),
            &format!("diff k={k}: messages"),
            d.messages as f64,
            "",
        );
        report.add(
            &format!("diff_k{k}_largest_message_bytes"),
            &format!("diff k={k}: largest message"),
            d.largest_message as f64,
            "bytes",
        );
        report.add(
            &format!("diff_k{k}_ms"),
            &format!("diff k={k}: time in process"),
            d.ms,
            "ms",
        );
    }
    report.finish().map_err(|e| e.to_string())?;
    Ok(())
}
