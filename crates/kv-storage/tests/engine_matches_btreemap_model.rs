//! Property test: the engine behaves like a `BTreeMap` through random puts,
//! deletes, gets, range scans, flushes, compactions and reopenings.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns panic on failure, as tests do

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;
use common::small_options;
use kv_storage::LsmStorage;
use kv_types::{KeyRange, Record};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Put(u8, u16),
    Delete(u8),
    Get(u8),
    Range(u8, u8),
    Flush,
    Compact,
    CompactForgettingTombstones,
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (any::<u8>(), any::<u16>()).prop_map(|(k, v)| Op::Put(k, v)),
        3 => any::<u8>().prop_map(Op::Delete),
        4 => any::<u8>().prop_map(Op::Get),
        2 => (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Op::Range(a, b)),
        1 => Just(Op::Flush),
        1 => Just(Op::Compact),
        1 => Just(Op::CompactForgettingTombstones),
        1 => Just(Op::Reopen),
    ]
}

fn key(k: u8) -> Bytes {
    // Keys of varied lengths, some sharing long prefixes.
    Bytes::from(format!("k{}{}", "p".repeat((k % 5) as usize * 4), k))
}

fn record(k: u8, v: u16) -> Record {
    Record::value(
        Bytes::from(format!("{v}-{}", "v".repeat((v % 300) as usize))),
        Bytes::from(vec![k; (v % 4) as usize]),
    )
}

fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = small_options();
    opts.memtable_bytes = 8192;
    let mut db = Some(LsmStorage::open(dir.path(), opts.clone()).unwrap());
    let mut model: BTreeMap<Bytes, Record> = BTreeMap::new();
    for op in ops {
        let d = db.as_ref().unwrap();
        match op {
            Op::Put(k, v) => {
                d.put(key(k), record(k, v)).unwrap();
                model.insert(key(k), record(k, v));
            }
            Op::Delete(k) => {
                let meta = Bytes::from(vec![k]);
                d.delete(key(k), meta.clone()).unwrap();
                model.insert(key(k), Record::tombstone(meta));
            }
            Op::Get(k) => assert_eq!(d.get(&key(k)).unwrap(), model.get(&key(k)).cloned()),
            Op::Range(a, b) => {
                // Inverted ranges are allowed and empty.
                let (lo, hi) = (key(a), key(b));
                let got: Vec<_> = d
                    .scan(KeyRange {
                        start: Bound::Included(lo.clone()),
                        end: Bound::Excluded(hi.clone()),
                    })
                    .map(|r| r.unwrap())
                    .collect();
                let want: Vec<_> = model
                    .iter()
                    .filter(|(k, _)| **k >= lo && **k < hi)
                    .map(|(k, r)| (k.clone(), r.clone()))
                    .collect();
                assert_eq!(got, want);
            }
            Op::Flush => d.flush().unwrap(),
            Op::Compact => d.compact(0).unwrap(),
            Op::CompactForgettingTombstones => {
                d.compact(d.sequence()).unwrap();
                model.retain(|_, r| !r.is_tombstone());
            }
            Op::Reopen => {
                db.take().unwrap().close().unwrap();
                db = Some(LsmStorage::open(dir.path(), opts.clone()).unwrap());
            }
        }
    }
    let d = db.as_ref().unwrap();
    let all: Vec<_> = d.scan(KeyRange::all()).map(|r| r.unwrap()).collect();
    let want: Vec<_> = model.into_iter().collect();
    assert_eq!(all, want);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_btreemap(ops in prop::collection::vec(op(), 1..300)) {
        run(ops);
    }
}

#[test]
fn tombstone_over_flushed_value_survives_partial_compaction() {
    // A tombstone must keep hiding an older value in a table that a merge
    // did not include.
    run(vec![
        Op::Put(1, 1),
        Op::Flush,
        Op::Delete(1),
        Op::Flush,
        Op::Put(2, 2),
        Op::Flush,
        Op::Get(1),
        Op::Reopen,
        Op::Get(1),
        Op::CompactForgettingTombstones,
        Op::Get(1),
    ]);
}
