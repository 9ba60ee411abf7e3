//! Writes, overwrites and deletes read back the same through memtables,
//! flushes, compactions and reopens.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns panic on failure, as tests do

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::{key, open, small_options, value};
use kv_storage::LsmStorage;
use kv_types::{KeyRange, Record, Storage};

#[test]
fn writes_read_back_across_flushes_compactions_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let n = 3000;
    {
        let db = open(dir.path(), small_options());
        for i in 0..n {
            db.put(key(i), value(i, 1)).unwrap();
        }
        for i in (0..n).step_by(3) {
            db.put(key(i), value(i, 2)).unwrap();
        }
        for i in (0..n).step_by(5) {
            db.delete(key(i), Bytes::from_static(b"tomb")).unwrap();
        }
        let s = db.stats();
        assert!(s.flushes > 0, "{s:?}");
        for i in 0..n {
            let got = db.get(&key(i)).unwrap().unwrap();
            let want = if i % 5 == 0 {
                Record::tombstone(Bytes::from_static(b"tomb"))
            } else if i % 3 == 0 {
                value(i, 2)
            } else {
                value(i, 1)
            };
            assert_eq!(got, want, "key {i}");
        }
        db.close().unwrap();
    }
    let db = open(dir.path(), small_options());
    assert_eq!(db.get(&key(1)).unwrap(), Some(value(1, 1)));
    assert_eq!(db.get(&key(3)).unwrap(), Some(value(3, 2)));
    assert!(db.get(&key(10)).unwrap().unwrap().is_tombstone());
    assert_eq!(db.get(b"absent").unwrap(), None);
    let all: Vec<_> = db.scan(KeyRange::all()).map(|r| r.unwrap()).collect();
    assert_eq!(all.len(), n as usize);
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0));

    // A full compaction with a watermark at the last sequence forgets every
    // tombstone; with 0 it keeps them.
    db.compact(0).unwrap();
    assert!(db.get(&key(10)).unwrap().unwrap().is_tombstone());
    db.compact(db.sequence()).unwrap();
    assert_eq!(db.get(&key(10)).unwrap(), None);
    assert_eq!(db.get(&key(3)).unwrap(), Some(value(3, 2)));
    assert_eq!(db.stats().tables, 1);
    let live = db.scan(KeyRange::all()).count();
    assert_eq!(live, (0..n).filter(|i| i % 5 != 0).count());
}

#[test]
fn bare_tombstones_go_at_the_bottom_when_asked_and_others_wait() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), small_options().drop_bare_tombstones(true));
    for i in 0..100 {
        db.put(key(i), value(i, 1)).unwrap();
    }
    for i in 0..50 {
        // Even keys get a bare tombstone, odd ones a tombstone with metadata.
        let meta = if i % 2 == 0 {
            Bytes::new()
        } else {
            Bytes::from_static(b"ctx")
        };
        db.delete(key(i), meta).unwrap();
    }
    db.compact(0).unwrap();
    assert_eq!(db.get(&key(0)).unwrap(), None, "bare tombstone kept");
    assert_eq!(
        db.get(&key(1)).unwrap(),
        Some(Record::tombstone(Bytes::from_static(b"ctx"))),
        "a tombstone with metadata waits for the watermark"
    );
    assert_eq!(db.get(&key(50)).unwrap(), Some(value(50, 1)));
    assert_eq!(db.scan(KeyRange::all()).count(), 75);

    // Without the option, bare tombstones wait for the watermark too.
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), small_options());
    db.put(key(0), value(0, 1)).unwrap();
    db.delete(key(0), Bytes::new()).unwrap();
    db.compact(0).unwrap();
    assert_eq!(
        db.get(&key(0)).unwrap(),
        Some(Record::tombstone(Bytes::new()))
    );
}

#[test]
fn usable_as_a_shared_trait_object_with_concurrent_writers() {
    let dir = tempfile::tempdir().unwrap();
    let db: Arc<dyn Storage> = Arc::new(LsmStorage::open(dir.path(), small_options()).unwrap());
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let db = db.clone();
            std::thread::spawn(move || {
                for i in 0..500 {
                    db.put(key(t * 1000 + i), value(i, t)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for t in 0..4 {
        for i in 0..500 {
            assert_eq!(db.get(&key(t * 1000 + i)).unwrap(), Some(value(i, t)));
        }
    }
    let r: Vec<_> = db
        .range(KeyRange::half_open(key(1000), key(1010)))
        .unwrap()
        .map(|r| r.unwrap().0)
        .collect();
    assert_eq!(r, (1000..1010).map(key).collect::<Vec<_>>());
}

#[test]
fn oversized_input_is_refused_and_closed_engine_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), small_options());
    let big = Bytes::from(vec![0u8; kv_storage::KEY_LEN_MAX + 1]);
    let e = db.put(big, value(1, 1)).unwrap_err();
    assert!(
        matches!(e, kv_storage::LsmError::TooLarge { what: "key", .. }),
        "{e}"
    );
    db.close().unwrap();
    let e = db.put(key(1), value(1, 1)).unwrap_err();
    assert!(matches!(e, kv_storage::LsmError::Closed { .. }), "{e}");
    // Reads still work after close.
    assert_eq!(db.get(&key(1)).unwrap(), None);
}

#[test]
fn a_closed_engine_answers_reads_with_what_it_holds() {
    // Close refuses writes; reads go on, and answer what is stored: never a
    // false "not found".
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), small_options());
    db.put(key(1), value(1, 1)).unwrap();
    db.put(key(2), value(2, 1)).unwrap();
    db.flush().unwrap();
    db.put(key(3), value(3, 1)).unwrap();
    db.close().unwrap();
    // Key 1 and 2 from a table, key 3 from the memtable.
    for i in 1..=3 {
        assert_eq!(db.get(&key(i)).unwrap(), Some(value(i, 1)), "key {i}");
    }
    assert_eq!(db.get(&key(4)).unwrap(), None);
    assert_eq!(db.scan(KeyRange::all()).count(), 3);
}
