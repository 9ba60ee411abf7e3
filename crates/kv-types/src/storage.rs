//! The `Storage` seam: what a node needs from its local engine.

use std::ops::Bound;

use bytes::Bytes;

use crate::record::{Key, Record};

/// An ordered range of keys, as two bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    /// The lower bound.
    pub start: Bound<Key>,
    /// The upper bound.
    pub end: Bound<Key>,
}

impl KeyRange {
    /// Every key.
    pub fn all() -> Self {
        Self {
            start: Bound::Unbounded,
            end: Bound::Unbounded,
        }
    }

    /// Keys in `[start, end)`.
    pub fn half_open(start: impl Into<Bytes>, end: impl Into<Bytes>) -> Self {
        Self {
            start: Bound::Included(start.into()),
            end: Bound::Excluded(end.into()),
        }
    }

    /// Whether `key` lies inside this range.
    pub fn contains(&self, key: &[u8]) -> bool {
        let above_start = match &self.start {
            Bound::Included(s) => key >= s.as_ref(),
            Bound::Excluded(s) => key > s.as_ref(),
            Bound::Unbounded => true,
        };
        let below_end = match &self.end {
            Bound::Included(e) => key <= e.as_ref(),
            Bound::Excluded(e) => key < e.as_ref(),
            Bound::Unbounded => true,
        };
        above_start && below_end
    }
}

/// An ordered iterator over `(key, record)` pairs, tombstones included.
pub type RecordIter<'a> = Box<dyn Iterator<Item = Result<(Key, Record), StorageError>> + Send + 'a>;

/// A node's local, ordered, durable map from keys to [`Record`]s.
///
/// Implementations are named after their backend (`LsmStorage` in
/// `kv-storage`, [`MemStorage`](crate::MemStorage) here). The trait is object
/// safe so that the node can hold an `Arc<dyn Storage>`.
///
/// Tombstones are records like any other: `get` returns them and `range`
/// yields them, because only the layer above knows when a delete may be
/// forgotten.
pub trait Storage: Send + Sync {
    /// The record stored for `key`, tombstones included.
    fn get(&self, key: &[u8]) -> Result<Option<Record>, StorageError>;

    /// Stores `record` under `key`, replacing what was there.
    ///
    /// When this returns `Ok`, the write is as durable as the engine's
    /// configured durability promises.
    fn put(&self, key: Key, record: Record) -> Result<(), StorageError>;

    /// The records in `range`, in key order.
    fn range(&self, range: KeyRange) -> Result<RecordIter<'_>, StorageError>;

    /// Makes every write accepted so far durable, whatever the configured
    /// durability.
    fn sync(&self) -> Result<(), StorageError>;
}

/// Why a [`Storage`] operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The operating system refused a read or a write.
    #[error("storage I/O failed: {0}")]
    Io(#[from] std::io::Error),
    /// Stored data failed a check; it is not returned, since it may be wrong.
    #[error("stored data is corrupt: {detail}")]
    Corruption {
        /// What failed, and where.
        detail: String,
    },
    /// The engine has been closed or has failed and refuses further work.
    #[error("storage is closed")]
    Closed,
    /// A key or value is larger than the engine accepts.
    #[error("{what} of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// "key" or "value".
        what: &'static str,
        /// The size given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// An engine-specific failure.
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_range_bounds() {
        let r = KeyRange::half_open(&b"b"[..], &b"d"[..]);
        assert!(!r.contains(b"a"));
        assert!(r.contains(b"b"));
        assert!(r.contains(b"c"));
        assert!(!r.contains(b"d"));
        assert!(KeyRange::all().contains(b""));
    }
}
