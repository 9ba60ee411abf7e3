//! `MemStorage`: an in-memory [`Storage`] for tests and simulations.

use std::collections::BTreeMap;
use std::sync::RwLock;

use crate::record::{Key, Record};
use crate::storage::{KeyRange, RecordIter, Storage, StorageError};

/// A [`Storage`] kept in a `BTreeMap`. Nothing is durable.
///
/// `range` takes a snapshot of the matching entries, so the iterator never
/// holds the lock.
#[derive(Debug, Default)]
pub struct MemStorage {
    map: RwLock<BTreeMap<Key, Record>>,
}

impl MemStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of keys held, tombstones included.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<Key, Record>> {
        // A panic while holding the lock cannot leave the map half-updated
        // (every update is one `insert`), so a poisoned lock is still usable.
        self.map.read().unwrap_or_else(|e| e.into_inner())
    }
}

impl Storage for MemStorage {
    fn get(&self, key: &[u8]) -> Result<Option<Record>, StorageError> {
        Ok(self.read().get(key).cloned())
    }

    fn put(&self, key: Key, record: Record) -> Result<(), StorageError> {
        self.map
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, record);
        Ok(())
    }

    fn range(&self, range: KeyRange) -> Result<RecordIter<'_>, StorageError> {
        let snapshot: Vec<_> = self
            .read()
            .range((range.start, range.end))
            .map(|(k, r)| Ok((k.clone(), r.clone())))
            .collect();
        Ok(Box::new(snapshot.into_iter()))
    }

    fn sync(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    #[test]
    fn put_get_range() {
        let s = MemStorage::new();
        s.put(
            Bytes::from_static(b"b"),
            Record::value(&b"2"[..], Bytes::new()),
        )
        .unwrap();
        s.put(
            Bytes::from_static(b"a"),
            Record::value(&b"1"[..], Bytes::new()),
        )
        .unwrap();
        s.put(Bytes::from_static(b"c"), Record::tombstone(Bytes::new()))
            .unwrap();
        assert_eq!(s.get(b"a").unwrap().unwrap().value.unwrap(), &b"1"[..]);
        assert!(s.get(b"c").unwrap().unwrap().is_tombstone());
        assert!(s.get(b"z").unwrap().is_none());
        let keys: Vec<_> = s
            .range(KeyRange::half_open(&b"a"[..], &b"c"[..]))
            .unwrap()
            .map(|r| r.unwrap().0)
            .collect();
        assert_eq!(
            keys,
            vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")]
        );
    }
}
