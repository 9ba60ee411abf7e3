//! A compaction drops a tombstone under the watermark only when it merges
//! the oldest table: a merge of newer tables that dropped it would let an
//! older table's value come back to life.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns panic on failure, as tests do

mod common;

use bytes::Bytes;
use common::{key, open, small_options, value};
use kv_storage::Options;
use kv_types::Record;

fn options() -> Options {
    let mut o = small_options().background_compaction(false);
    // Two small tables of one tier are enough for a compaction, which then
    // leaves the large oldest table out.
    o.tier_fanout = 2;
    o
}

#[test]
fn a_compaction_of_newer_tables_keeps_tombstones_under_the_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), options());
    // The oldest table: large enough to sit in a higher size tier.
    for i in 0..1000 {
        db.put(key(i), value(i, 1)).unwrap();
    }
    db.compact(0).unwrap();
    assert_eq!(db.stats().tables, 1);
    let meta = Bytes::from_static(b"ctx");
    db.delete(key(1), meta.clone()).unwrap();
    db.flush().unwrap();
    db.put(key(5000), value(5000, 1)).unwrap();
    db.flush().unwrap();
    assert_eq!(db.stats().tables, 3);

    // Every tombstone is now under the watermark.
    db.set_tombstone_watermark(db.sequence());
    db.settle().unwrap();
    assert_eq!(
        db.stats().tables,
        2,
        "the two small tables merged, the oldest stayed out"
    );
    assert_eq!(
        db.get(&key(1)).unwrap(),
        Some(Record::tombstone(meta)),
        "a merge above the oldest table dropped a tombstone"
    );
    assert_eq!(db.get(&key(2)).unwrap(), Some(value(2, 1)));

    // A merge that reaches the oldest table drops it, and the value with it.
    db.compact(db.sequence()).unwrap();
    assert_eq!(db.stats().tables, 1);
    assert_eq!(db.get(&key(1)).unwrap(), None);
    assert_eq!(db.get(&key(5000)).unwrap(), Some(value(5000, 1)));
}
