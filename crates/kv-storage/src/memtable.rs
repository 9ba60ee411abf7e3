//! The memtable: the newest writes, ordered, in memory.
//!
//! A `BTreeMap` from key to an 8-byte slot, behind a `RwLock`, with the
//! records themselves packed in an arena of 1 MiB chunks. Only the write
//! leader inserts (one batch at a time, see `engine`), so the write lock is
//! uncontended by writers and readers share the read lock. Reads copy the
//! value out (about 100 bytes in the common case), so nothing a reader holds
//! pins the arena.
//!
//! Why an arena: a map of `Bytes` values costs about 280 bytes of memory per
//! 116-byte entry (map slot, handles, one allocation per value); packed, it
//! is about 200, so a memtable of a given budget holds 1.4 times more
//! entries and flushes, and compacts, less often.
//!
//! Arena record (integers little-endian):
//!
//! ```text
//! +---------+------+--------------+------+---------------+-------+
//! | seq u64 | kind | meta_len u32 | meta | value_len u32 | value |   (no value_len, value for a tombstone)
//! +---------+------+--------------+------+---------------+-------+
//! ```
//!
//! Each entry keeps its sequence number, so that merges with older tables
//! pick the newest version without relying on the order of sources.
//!
//! Arena chunks are recycled: when a flushed memtable is dropped, its chunks
//! go to a [`ChunkPool`] that the next memtable draws from. Fresh chunks cost
//! a page fault and the kernel zeroing each page on first touch, which was
//! about 4% of a node's CPU under a write-heavy load; recycled ones are
//! already resident. The pool keeps at most one memtable budget.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::collections::btree_map;
use std::ops::Bound;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use kv_types::{Key, Record};

use crate::codec::Entry;
use crate::error::LsmError;
use crate::sstable::TableWriter;

/// Longest key stored inside the map node rather than behind a pointer.
const INLINE_KEY_LEN_MAX: usize = 30;

/// A memtable key: short keys (the common case: 16-byte hashes, small ids)
/// live inside the B-tree node, so a search does not miss the cache once
/// per key it compares; long keys stay shared `Bytes`.
///
/// `Ord` is the byte order of the key, the same as `[u8]`'s, which makes
/// `Borrow<[u8]>` lawful: lookups take a plain `&[u8]`.
#[derive(Clone)]
enum MemKey {
    Inline {
        len: u8,
        buf: [u8; INLINE_KEY_LEN_MAX],
    },
    Shared(Bytes),
}

impl MemKey {
    fn new(key: Bytes) -> Self {
        if key.len() <= INLINE_KEY_LEN_MAX {
            let mut buf = [0u8; INLINE_KEY_LEN_MAX];
            buf[..key.len()].copy_from_slice(&key);
            Self::Inline {
                len: key.len() as u8,
                buf,
            }
        } else {
            Self::Shared(key)
        }
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            Self::Inline { len, buf } => &buf[..*len as usize],
            Self::Shared(b) => b,
        }
    }

    fn to_bytes(&self) -> Bytes {
        match self {
            Self::Inline { .. } => Bytes::copy_from_slice(self.as_slice()),
            Self::Shared(b) => b.clone(),
        }
    }
}

impl Borrow<[u8]> for MemKey {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for MemKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for MemKey {}

impl PartialOrd for MemKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for MemKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

impl std::fmt::Debug for MemKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_slice())
    }
}

/// Bytes charged per key for its map slot: a 40-byte key and an 8-byte
/// slot, in B-tree nodes about two-thirds full on random inserts.
pub(crate) const SLOT_OVERHEAD_BYTES: usize = 80;
/// Largest arena chunk; a larger record gets a chunk of its own. Small
/// memtables use chunks of a sixteenth of their budget.
const CHUNK_BYTES: usize = 1 << 20;

const KIND_VALUE: u8 = 0;
const KIND_TOMBSTONE: u8 = 1;

/// Where a record lives in the arena.
#[derive(Debug, Clone, Copy)]
struct Slot {
    chunk: u32,
    offset: u32,
}

/// Arena chunks of flushed memtables, kept for the next ones.
#[derive(Debug)]
pub(crate) struct ChunkPool {
    chunks: Mutex<Vec<Vec<u8>>>,
    /// Bytes of chunks kept at most; past it, chunks are freed.
    bytes_max: usize,
}

impl ChunkPool {
    /// A pool that keeps at most `bytes_max` bytes of chunks.
    pub(crate) fn new(bytes_max: usize) -> Arc<Self> {
        Arc::new(Self {
            chunks: Mutex::new(Vec::new()),
            bytes_max,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        // A Vec of empty buffers stays consistent whatever panicked.
        self.chunks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An empty chunk of exactly `capacity` bytes, recycled if one is kept.
    fn take(&self, capacity: usize) -> Vec<u8> {
        let recycled = {
            let mut chunks = self.lock();
            match chunks.last() {
                Some(c) if c.capacity() == capacity => chunks.pop(),
                _ => None,
            }
        };
        recycled.unwrap_or_else(|| Vec::with_capacity(capacity))
    }

    /// Keeps the chunks of `capacity` bytes, up to the bound; frees the rest.
    fn give(&self, chunks: impl IntoIterator<Item = Vec<u8>>, capacity: usize) {
        let mut kept = self.lock();
        for mut c in chunks {
            if c.capacity() != capacity || (kept.len() + 1) * capacity > self.bytes_max {
                continue;
            }
            c.clear();
            kept.push(c);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[derive(Debug)]
struct Tables {
    map: BTreeMap<MemKey, Slot>,
    arena: Arena,
}

/// The records, back to back in chunks.
#[derive(Debug)]
struct Arena {
    chunks: Vec<Vec<u8>>,
    chunk_bytes: usize,
    pool: Arc<ChunkPool>,
}

impl Drop for Arena {
    fn drop(&mut self) {
        self.pool
            .give(std::mem::take(&mut self.chunks), self.chunk_bytes);
    }
}

/// A record read from the arena, borrowing it.
struct RawRecord<'a> {
    seq: u64,
    value: Option<&'a [u8]>,
    meta: &'a [u8],
}

impl RawRecord<'_> {
    fn to_record(&self) -> Record {
        let copy = |b: &[u8]| {
            if b.is_empty() {
                Bytes::new()
            } else {
                Bytes::copy_from_slice(b)
            }
        };
        Record {
            value: self.value.map(copy),
            meta: copy(self.meta),
        }
    }
}

fn u32_at(b: &[u8], at: usize) -> usize {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a) as usize
}

impl Arena {
    /// Appends a record; returns its slot and the bytes newly taken for it
    /// (a chunk's capacity, or 0).
    fn push(&mut self, seq: u64, record: &Record) -> (Slot, usize) {
        let len = 8 + 1 + 4 + record.meta.len() + record.value.as_ref().map_or(0, |v| 4 + v.len());
        let mut allocated = 0;
        let fits = self
            .chunks
            .last()
            .is_some_and(|c| c.capacity() - c.len() >= len);
        if !fits {
            let chunk = if len <= self.chunk_bytes {
                self.pool.take(self.chunk_bytes)
            } else {
                Vec::with_capacity(len)
            };
            allocated = chunk.capacity();
            self.chunks.push(chunk);
        }
        let chunk = self.chunks.len() - 1;
        let c = &mut self.chunks[chunk];
        let offset = c.len();
        c.extend_from_slice(&seq.to_le_bytes());
        match &record.value {
            Some(v) => {
                c.push(KIND_VALUE);
                c.extend_from_slice(&(record.meta.len() as u32).to_le_bytes());
                c.extend_from_slice(&record.meta);
                c.extend_from_slice(&(v.len() as u32).to_le_bytes());
                c.extend_from_slice(v);
            }
            None => {
                c.push(KIND_TOMBSTONE);
                c.extend_from_slice(&(record.meta.len() as u32).to_le_bytes());
                c.extend_from_slice(&record.meta);
            }
        }
        let slot = Slot {
            chunk: chunk as u32,
            offset: offset as u32,
        };
        (slot, allocated)
    }

    /// The record at `slot`. Slots only ever point at records `push` wrote
    /// whole, so the reads are in bounds.
    fn record(&self, slot: Slot) -> RawRecord<'_> {
        let c = &self.chunks[slot.chunk as usize];
        let at = slot.offset as usize;
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&c[at..at + 8]);
        let kind = c[at + 8];
        let meta_len = u32_at(c, at + 9);
        let meta = &c[at + 13..at + 13 + meta_len];
        let value = (kind == KIND_VALUE).then(|| {
            let v_at = at + 13 + meta_len;
            let v_len = u32_at(c, v_at);
            &c[v_at + 4..v_at + 4 + v_len]
        });
        RawRecord {
            seq: u64::from_le_bytes(seq),
            value,
            meta,
        }
    }
}

/// An ordered map of the newest writes, and the WAL segment holding them.
#[derive(Debug)]
pub(crate) struct MemTable {
    tables: RwLock<Tables>,
    bytes: AtomicUsize,
    wal_id: u64,
}

impl MemTable {
    /// An empty memtable for WAL segment `wal_id`, whose budget is
    /// `budget_bytes`.
    pub(crate) fn new(wal_id: u64, budget_bytes: usize) -> Self {
        Self::with_pool(wal_id, budget_bytes, ChunkPool::new(0))
    }

    /// An empty memtable whose arena draws chunks from, and returns them
    /// to, `pool`.
    pub(crate) fn with_pool(wal_id: u64, budget_bytes: usize, pool: Arc<ChunkPool>) -> Self {
        Self {
            tables: RwLock::new(Tables {
                map: BTreeMap::new(),
                arena: Arena {
                    chunks: Vec::new(),
                    chunk_bytes: chunk_bytes(budget_bytes),
                    pool,
                },
            }),
            bytes: AtomicUsize::new(0),
            wal_id,
        }
    }

    /// The WAL segment whose records this memtable holds.
    pub(crate) fn wal_id(&self) -> u64 {
        self.wal_id
    }

    /// Memory held, in bytes: arena chunks allocated plus an estimate per
    /// map slot.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.read().map.is_empty()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.read().map.len()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Tables> {
        // Updates append to the arena before they publish a slot in the
        // map, so a panic elsewhere cannot leave a slot pointing at a
        // half-written record: a poisoned lock is still consistent.
        self.tables.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Inserts a batch; a version with a lower sequence number never
    /// replaces a newer one.
    pub(crate) fn apply(&self, batch: impl IntoIterator<Item = Entry>) {
        let mut t = self.tables.write().unwrap_or_else(|e| e.into_inner());
        let Tables { map, arena } = &mut *t;
        let mut added = 0usize;
        for e in batch {
            // One descent of the tree per entry, whether it is new or not.
            match map.entry(MemKey::new(e.key)) {
                btree_map::Entry::Occupied(mut o) => {
                    if arena.record(*o.get()).seq > e.seq {
                        continue;
                    }
                    // The overwritten record stays in the arena until the
                    // memtable is flushed; its bytes stay counted.
                    let (slot, allocated) = arena.push(e.seq, &e.record);
                    added += allocated;
                    *o.get_mut() = slot;
                }
                btree_map::Entry::Vacant(v) => {
                    let (slot, allocated) = arena.push(e.seq, &e.record);
                    added += allocated
                        + SLOT_OVERHEAD_BYTES
                        + match v.key() {
                            MemKey::Shared(b) => b.len(),
                            MemKey::Inline { .. } => 0,
                        };
                    v.insert(slot);
                }
            }
        }
        self.bytes.fetch_add(added, Ordering::Relaxed);
    }

    /// The newest version of `key` held here.
    pub(crate) fn get(&self, key: &[u8]) -> Option<(u64, Record)> {
        let t = self.read();
        let slot = *t.map.get(key)?;
        let r = t.arena.record(slot);
        Some((r.seq, r.to_record()))
    }

    /// Up to `limit` entries in `(start, end)`, in key order.
    pub(crate) fn chunk(&self, start: &Bound<Key>, end: &Bound<Key>, limit: usize) -> Vec<Entry> {
        let t = self.read();
        let bounds = (bound_ref(start), bound_ref(end));
        if range_is_empty(&bounds) {
            return Vec::new();
        }
        t.map
            .range::<[u8], _>(bounds)
            .take(limit)
            .map(|(k, slot)| {
                let r = t.arena.record(*slot);
                Entry {
                    key: k.to_bytes(),
                    seq: r.seq,
                    record: r.to_record(),
                }
            })
            .collect()
    }

    /// Adds every entry to `w`, in key order, without copying them (used
    /// to flush an immutable memtable, which no writer touches any more).
    pub(crate) fn write_to(&self, w: &mut TableWriter) -> Result<(), LsmError> {
        let t = self.read();
        for (k, slot) in &t.map {
            let r = t.arena.record(*slot);
            w.add_parts(k.as_slice(), r.seq, r.value, r.meta)?;
        }
        Ok(())
    }
}

/// Chunk size for a memtable budget: a sixteenth of it, within bounds.
fn chunk_bytes(budget_bytes: usize) -> usize {
    (budget_bytes / 16).clamp(1024, CHUNK_BYTES)
}

fn bound_ref(b: &Bound<Bytes>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_ref()),
        Bound::Excluded(k) => Bound::Excluded(k.as_ref()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// `BTreeMap::range` panics on an inverted or doubly-excluded equal range;
/// such a range is simply empty here.
pub(crate) fn range_is_empty(b: &(Bound<&[u8]>, Bound<&[u8]>)) -> bool {
    match b {
        (Bound::Included(s), Bound::Included(e)) => s > e,
        (Bound::Included(s) | Bound::Excluded(s), Bound::Excluded(e))
        | (Bound::Excluded(s), Bound::Included(e)) => s >= e,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(k: &str, seq: u64, v: &str) -> Entry {
        Entry {
            key: Bytes::copy_from_slice(k.as_bytes()),
            seq,
            record: Record::value(Bytes::copy_from_slice(v.as_bytes()), Bytes::new()),
        }
    }

    #[test]
    fn keys_stay_small_and_records_round_trip() {
        assert!(std::mem::size_of::<MemKey>() <= 40);
        let m = MemTable::new(1, 64 << 20);
        let long = Bytes::from(vec![b'k'; 100]);
        let big = Record::value(vec![9u8; CHUNK_BYTES + 10], &b"meta"[..]);
        m.apply([
            Entry {
                key: long.clone(),
                seq: 1,
                record: Record::tombstone(&b"t"[..]),
            },
            Entry {
                key: Bytes::from_static(b"big"),
                seq: 2,
                record: big.clone(),
            },
        ]);
        assert_eq!(m.get(&long).unwrap(), (1, Record::tombstone(&b"t"[..])));
        assert_eq!(m.get(b"big").unwrap(), (2, big));
        assert!(m.bytes() > CHUNK_BYTES);
    }

    #[test]
    fn flushed_memtables_hand_their_chunks_to_the_next() {
        let budget = 16 * 1024;
        let chunk = chunk_bytes(budget);
        let pool = ChunkPool::new(budget);
        let fill = |m: &MemTable| m.apply((0..200).map(|i| e(&format!("k{i:04}"), i, "v")));
        let first = MemTable::with_pool(1, budget, pool.clone());
        fill(&first);
        // An oversized record gets a chunk of its own, which is not kept.
        first.apply([Entry {
            key: Bytes::from_static(b"big"),
            seq: 1000,
            record: Record::value(vec![0u8; chunk * 2], Bytes::new()),
        }]);
        let used = first.read().arena.chunks.len() - 1;
        assert!(used >= 2, "the test needs several chunks, got {used}");
        drop(first);
        assert_eq!(pool.len(), used);

        let second = MemTable::with_pool(2, budget, pool.clone());
        fill(&second);
        assert_eq!(pool.len(), 0, "the next memtable drew every kept chunk");
        assert_eq!(second.get(b"k0007").unwrap().1.value.unwrap(), &b"v"[..]);
        assert!(
            second
                .read()
                .arena
                .chunks
                .iter()
                .all(|c| c.capacity() == chunk),
            "recycled chunks keep their size"
        );
        drop(second);

        // The pool keeps at most its budget.
        let small = ChunkPool::new(chunk);
        let third = MemTable::with_pool(3, budget, small.clone());
        fill(&third);
        drop(third);
        assert_eq!(small.len(), 1);
    }

    #[test]
    fn newer_sequence_wins_whatever_the_order() {
        let m = MemTable::new(1, 64 << 20);
        m.apply([e("a", 2, "new"), e("a", 1, "old")]);
        assert_eq!(m.get(b"a").unwrap().1.value.unwrap(), &b"new"[..]);
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn chunks_respect_bounds_and_limit() {
        let m = MemTable::new(1, 64 << 20);
        m.apply((0..10).map(|i| e(&format!("k{i}"), i, "v")));
        let c = m.chunk(
            &Bound::Excluded(Bytes::from_static(b"k2")),
            &Bound::Unbounded,
            3,
        );
        let keys: Vec<_> = c.iter().map(|e| e.key.clone()).collect();
        assert_eq!(keys, vec!["k3", "k4", "k5"]);
        let inverted = m.chunk(
            &Bound::Included(Bytes::from_static(b"k5")),
            &Bound::Excluded(Bytes::from_static(b"k1")),
            10,
        );
        assert!(inverted.is_empty());
    }
}
