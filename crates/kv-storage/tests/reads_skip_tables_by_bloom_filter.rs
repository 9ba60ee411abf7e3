//! A read of a key inside a table's key range but absent from it is answered
//! by the table's Bloom filter, without reading a data block.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns panic on failure, as tests do

mod common;

use common::{key, open, small_options, value};
use kv_storage::Options;

fn options() -> Options {
    let mut o = small_options().background_compaction(false);
    // So low that no absent key below is a false positive; the filter's
    // seed is fixed, so the outcome is too.
    o.bloom_false_positive_rate = 1e-6;
    o
}

#[test]
fn absent_keys_inside_a_tables_range_read_no_block() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), options());
    for i in (0..2000).step_by(2) {
        db.put(key(i), value(i, 1)).unwrap();
    }
    db.flush().unwrap();
    drop(db);
    // A fresh block cache: every block read from a table lands in it.
    let db = open(dir.path(), options());
    assert!(db.stats().tables >= 1);
    assert_eq!(db.stats().block_cache_bytes, 0);
    for i in (1..2000).step_by(2) {
        assert_eq!(db.get(&key(i)).unwrap(), None, "key {i}");
    }
    assert_eq!(
        db.stats().block_cache_bytes,
        0,
        "reads of absent keys read data blocks: the Bloom filter was not used"
    );
    // The observable works: a key that is there is read from a block.
    assert_eq!(db.get(&key(1000)).unwrap(), Some(value(1000, 1)));
    assert!(db.stats().block_cache_bytes > 0);
}
