//! The memtable: the newest writes, ordered, in memory.
//!
//! A `BTreeMap` behind a `RwLock`. Only the write leader inserts (one batch
//! at a time, see `engine`), so the write lock is uncontended by writers and
//! readers share the read lock. Each entry keeps its sequence number, so that
//! merges with older tables can pick the newest version without relying on
//! the order of sources.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::RwLock;
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// Bytes charged per entry on top of key, value and metadata: the map slot
/// (a 40-byte key and a 72-byte sequence number and record), B-tree nodes
/// being about two-thirds full on random inserts, and the value
/// allocation's header. Measured: about 280 bytes of RSS per entry of a
/// 16-byte key and a 100-byte value.
pub(crate) const ENTRY_OVERHEAD_BYTES: usize = 160;

/// An ordered map of the newest writes, and the WAL segment holding them.
#[derive(Debug)]
pub(crate) struct MemTable {
    map: RwLock<BTreeMap<MemKey, (u64, Record)>>,
    bytes: AtomicUsize,
    wal_id: u64,
}

impl MemTable {
    pub(crate) fn new(wal_id: u64) -> Self {
        Self {
            map: RwLock::new(BTreeMap::new()),
            bytes: AtomicUsize::new(0),
            wal_id,
        }
    }

    /// The WAL segment whose records this memtable holds.
    pub(crate) fn wal_id(&self) -> u64 {
        self.wal_id
    }

    /// Approximate memory held, in bytes.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.read().len()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<MemKey, (u64, Record)>> {
        // Every update is a single `insert`, so a panic elsewhere cannot leave
        // the map half-updated: a poisoned lock is still consistent.
        self.map.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Inserts a batch; a version with a lower sequence number never
    /// replaces a newer one.
    pub(crate) fn apply(&self, batch: impl IntoIterator<Item = Entry>) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        let mut added = 0usize;
        for e in batch {
            let size = e.key.len() + e.record.len_bytes() + ENTRY_OVERHEAD_BYTES;
            match map.get_mut(e.key.as_ref()) {
                Some(old) if old.0 > e.seq => {}
                Some(old) => {
                    // The old value's bytes are not subtracted: an overwrite
                    // may free less than it seems while readers hold clones,
                    // and over-counting only flushes a little early.
                    added += e.record.len_bytes();
                    *old = (e.seq, e.record);
                }
                None => {
                    added += size;
                    map.insert(MemKey::new(e.key), (e.seq, e.record));
                }
            }
        }
        self.bytes.fetch_add(added, Ordering::Relaxed);
    }

    /// The newest version of `key` held here.
    pub(crate) fn get(&self, key: &[u8]) -> Option<(u64, Record)> {
        self.read().get(key).cloned()
    }

    /// Up to `limit` entries in `(start, end)`, in key order.
    pub(crate) fn chunk(&self, start: &Bound<Key>, end: &Bound<Key>, limit: usize) -> Vec<Entry> {
        let map = self.read();
        let bounds = (bound_ref(start), bound_ref(end));
        if range_is_empty(&bounds) {
            return Vec::new();
        }
        map.range::<[u8], _>(bounds)
            .take(limit)
            .map(|(k, (seq, r))| Entry {
                key: k.to_bytes(),
                seq: *seq,
                record: r.clone(),
            })
            .collect()
    }

    /// Adds every entry to `w`, in key order, without copying them (used
    /// to flush an immutable memtable, which no writer touches any more).
    pub(crate) fn write_to(&self, w: &mut TableWriter) -> Result<(), LsmError> {
        for (k, (seq, r)) in self.read().iter() {
            w.add(k.as_slice(), *seq, r)?;
        }
        Ok(())
    }
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
    fn newer_sequence_wins_whatever_the_order() {
        let m = MemTable::new(1);
        m.apply([e("a", 2, "new"), e("a", 1, "old")]);
        assert_eq!(m.get(b"a").unwrap().1.value.unwrap(), &b"new"[..]);
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn chunks_respect_bounds_and_limit() {
        let m = MemTable::new(1);
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
