//! Every limit of the engine holds: sizes of keys, values and metadata,
//! immutable memtables waiting for a flush, and the number of tables.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns panic on failure, as tests do

mod common;

use bytes::Bytes;
use common::{key, small_options, value};
use kv_storage::{KEY_LEN_MAX, LsmError, LsmStorage, META_LEN_MAX, Options, VALUE_LEN_MAX};
use kv_types::{Record, Storage, StorageError};

#[test]
fn oversized_keys_values_and_metadata_are_refused_with_their_limit() {
    let dir = tempfile::tempdir().unwrap();
    let db = LsmStorage::open(dir.path(), small_options()).unwrap();
    let at_limit = Bytes::from(vec![1u8; KEY_LEN_MAX]);
    db.put(at_limit.clone(), value(1, 1)).unwrap();
    assert_eq!(db.get(&at_limit).unwrap(), Some(value(1, 1)));
    let cases = [
        (
            Bytes::from(vec![1u8; KEY_LEN_MAX + 1]),
            value(1, 1),
            "key",
            KEY_LEN_MAX,
        ),
        (
            key(1),
            Record::value(vec![0u8; VALUE_LEN_MAX + 1], Bytes::new()),
            "value",
            VALUE_LEN_MAX,
        ),
        (
            key(1),
            Record::tombstone(vec![0u8; META_LEN_MAX + 1]),
            "meta",
            META_LEN_MAX,
        ),
    ];
    for (k, r, what_want, max_want) in cases {
        match db.put(k.clone(), r.clone()).unwrap_err() {
            LsmError::TooLarge { what, max, .. } => assert_eq!((what, max), (what_want, max_want)),
            e => panic!("{e}"),
        }
        // Through the trait, the same limit as StorageError::TooLarge.
        let e = Storage::put(&db, k, r).unwrap_err();
        assert!(
            matches!(e, StorageError::TooLarge { what, .. } if what == what_want),
            "{e}"
        );
    }
}

#[test]
fn writers_stall_rather_than_queue_more_immutable_memtables_than_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = small_options().memtable_bytes(8 * 1024);
    opts.immutable_memtables_max = 1;
    let db = LsmStorage::open(dir.path(), opts).unwrap();
    let mut flushed = 0;
    for i in 0..3000 {
        db.put(key(i), value(i, 1)).unwrap();
        let s = db.stats();
        assert!(s.immutable_memtables <= 1, "after put {i}: {s:?}");
        flushed = s.flushes;
    }
    assert!(flushed > 10, "the test never rotated: {flushed} flushes");
}

#[test]
fn compaction_keeps_the_table_count_within_tables_max() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts: Options = small_options().background_compaction(false);
    opts.tables_max = 5;
    let db = LsmStorage::open(dir.path(), opts).unwrap();
    for round in 0..12 {
        for i in 0..50 {
            db.put(key(round * 1000 + i), value(i, round)).unwrap();
        }
        db.flush().unwrap();
    }
    assert!(db.stats().tables >= 12, "{:?}", db.stats());
    db.settle().unwrap();
    let s = db.stats();
    assert!(s.tables <= 5, "{s:?}");
    assert!(s.compactions > 0);
    assert_eq!(db.get(&key(11 * 1000 + 7)).unwrap(), Some(value(7, 11)));
}

#[test]
fn a_directory_is_open_in_one_engine_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let db = LsmStorage::open(dir.path(), small_options()).unwrap();
    db.put(key(1), value(1, 1)).unwrap();
    match LsmStorage::open(dir.path(), small_options()) {
        Err(LsmError::Locked { dir: locked }) => assert_eq!(locked, dir.path()),
        other => panic!("a second engine opened the directory: {other:?}"),
    }
    // The first engine is unharmed, and the directory opens again once it
    // is gone.
    assert_eq!(db.get(&key(1)).unwrap(), Some(value(1, 1)));
    drop(db);
    let again = LsmStorage::open(dir.path(), small_options()).unwrap();
    assert_eq!(again.get(&key(1)).unwrap(), Some(value(1, 1)));
}
