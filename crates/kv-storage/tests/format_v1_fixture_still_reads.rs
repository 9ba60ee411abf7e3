//! Format fixture: a small database written by format version 1 (WAL,
//! SSTable, manifest), checked in under `tests/fixtures/v1`, that this and
//! every later version must still read.
//!
//! `KV_WRITE_FIXTURE=1 cargo test -p kv-storage --test
//! format_v1_fixture_still_reads` rewrites the fixture; do that only when
//! adding a new format version, never to make this test pass.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns panic on failure, as tests do

use std::path::{Path, PathBuf};

use bytes::Bytes;
use kv_storage::{Durability, LsmStorage, Options};
use kv_types::{KeyRange, Record};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1")
}

fn options() -> Options {
    Options::default()
        .durability(Durability::Sync)
        .memtable_bytes(64 * 1024)
        .block_bytes(256)
        .background_compaction(false)
}

/// What the fixture holds once recovered: keys 0..100 live, every seventh
/// deleted, keys 100..110 written after the flush (so only in the WAL).
fn expected() -> Vec<(Bytes, Record)> {
    (0..110u32)
        .map(|i| {
            let k = Bytes::from(format!("fixture-key-{i:04}"));
            let meta = Bytes::from(format!("vv:{i}"));
            let r = if i < 100 && i % 7 == 0 {
                Record::tombstone(meta)
            } else {
                Record::value(
                    Bytes::from(format!("value {i} {}", "z".repeat(i as usize % 13))),
                    meta,
                )
            };
            (k, r)
        })
        .collect()
}

fn write_fixture(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    let db = LsmStorage::open(dir, options()).unwrap();
    for (i, (k, r)) in expected().into_iter().enumerate() {
        if i == 100 {
            db.flush().unwrap();
        }
        if r.is_tombstone() {
            db.put(k.clone(), Record::value(&b"overwritten"[..], Bytes::new()))
                .unwrap();
        }
        db.put(k, r).unwrap();
    }
    db.close().unwrap();
}

#[test]
fn format_v1_fixture_still_reads() {
    let fixture = fixture_dir();
    if std::env::var_os("KV_WRITE_FIXTURE").is_some() {
        write_fixture(&fixture);
    }
    let names: Vec<String> = std::fs::read_dir(&fixture)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().any(|n| n.ends_with(".sst")), "{names:?}");
    assert!(names.iter().any(|n| n.ends_with(".wal")), "{names:?}");
    assert!(names.iter().any(|n| n == "MANIFEST"), "{names:?}");

    // Opening recovers (replays the WAL, rewrites the manifest), so work
    // on a copy and leave the checked-in files as they are.
    let dir = tempfile::tempdir().unwrap();
    for name in &names {
        std::fs::copy(fixture.join(name), dir.path().join(name)).unwrap();
    }
    let db = LsmStorage::open(dir.path(), options()).unwrap();
    let want = expected();
    for (k, r) in &want {
        assert_eq!(db.get(k).unwrap().as_ref(), Some(r), "{k:?}");
    }
    let all: Vec<_> = db.scan(KeyRange::all()).map(|r| r.unwrap()).collect();
    assert_eq!(all, want);
}
