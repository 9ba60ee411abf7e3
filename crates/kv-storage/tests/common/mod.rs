//! Helpers shared by the integration tests of kv-storage.
#![allow(dead_code, unreachable_pub)]

use bytes::Bytes;
use kv_storage::{Durability, LsmStorage, Options};
use kv_types::Record;

/// Small options: tiny memtables and blocks so that a few thousand writes
/// exercise flushes, compactions and many blocks.
pub fn small_options() -> Options {
    let mut o = Options::default()
        .durability(Durability::None)
        .memtable_bytes(16 * 1024)
        .block_bytes(512)
        .block_cache_bytes(64 * 1024);
    o.tables_max = 8;
    o
}

pub fn open(dir: &std::path::Path, opts: Options) -> LsmStorage {
    LsmStorage::open(dir, opts).expect("open storage")
}

pub fn key(i: u64) -> Bytes {
    Bytes::from(format!("key-{i:08}"))
}

pub fn value(i: u64, version: u64) -> Record {
    Record::value(
        Bytes::from(format!(
            "value-{i}-{version}-{}",
            "x".repeat((i % 50) as usize)
        )),
        Bytes::from(format!("vv{version}")),
    )
}

/// The seed of a randomized test: `KV_SEED` if set, else `default`; printed
/// so that a failure can be replayed.
pub fn seed(default: u64) -> u64 {
    let s = std::env::var("KV_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    eprintln!("seed: {s} (replay with KV_SEED={s})");
    s
}
