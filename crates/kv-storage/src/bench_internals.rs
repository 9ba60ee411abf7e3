//! Thin handles on internal parts, for the criterion benchmarks only; not a
//! stable API.

use bytes::Bytes;
use fastbloom::BloomFilter;
use kv_types::Record;

use crate::codec::{self, Entry};
use crate::memtable::MemTable;
use crate::sstable::{self, BlockView};

/// A memtable.
#[derive(Debug)]
pub struct BenchMemTable(MemTable);

impl Default for BenchMemTable {
    fn default() -> Self {
        Self(MemTable::new(0, 64 << 20))
    }
}

impl BenchMemTable {
    /// Inserts `key` with `value` at sequence `seq`.
    pub fn insert(&self, key: Bytes, value: Bytes, seq: u64) {
        self.0.apply([Entry {
            key,
            seq,
            record: Record::value(value, Bytes::new()),
        }]);
    }

    /// Whether `key` is held.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.0.get(key).is_some()
    }
}

/// One encoded data block.
#[derive(Debug)]
pub struct BenchBlock(Vec<u8>);

impl BenchBlock {
    /// Encodes `keys` (sorted) with `value_len`-byte values as one block.
    pub fn new(keys: &[Bytes], value_len: usize) -> Self {
        let mut block = Vec::new();
        let mut offsets = Vec::new();
        let value = Bytes::from(vec![7u8; value_len]);
        for (i, k) in keys.iter().enumerate() {
            offsets.push(block.len() as u32);
            codec::encode_entry(
                &mut block,
                k,
                i as u64,
                &Record::value(value.clone(), Bytes::new()),
            );
        }
        for o in &offsets {
            block.extend_from_slice(&o.to_le_bytes());
        }
        block.extend_from_slice(&(offsets.len() as u32).to_le_bytes());
        Self(block)
    }

    /// Whether the block holds `key` (binary search over the offsets).
    pub fn contains(&self, key: &[u8]) -> bool {
        BlockView::new(&self.0)
            .and_then(|v| v.lower_bound(key))
            .is_some_and(|(_, found)| found)
    }
}

/// A Bloom filter built as the tables build theirs.
#[derive(Debug)]
pub struct BenchBloom(BloomFilter);

impl BenchBloom {
    /// A filter of `keys` at false-positive rate `fp`.
    pub fn new(keys: &[Bytes], fp: f64) -> Self {
        let mut b = BloomFilter::with_false_pos(fp).expected_items(keys.len().max(1));
        for k in keys {
            b.insert_hash(sstable::bloom_hash(k));
        }
        Self(b)
    }

    /// Whether `key` may be in the filter (hashing included).
    pub fn may_contain(&self, key: &[u8]) -> bool {
        self.0.contains_hash(sstable::bloom_hash(key))
    }
}
