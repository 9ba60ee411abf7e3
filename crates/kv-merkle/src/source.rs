//! Where the diff's leaf stage finds the keys of a bucket.
//!
//! The tree holds only digests, so the last stage of a diff asks a
//! [`LeafSource`] for the items of each differing bucket. A node serves them
//! from storage (for instance from an index ordered by `(bucket, key)`, as
//! Riak's key store orders by segment); [`MemLeafSource`] keeps them in
//! memory for tests, examples and benchmarks.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::{Digest, MerkleTree, SourceError, TreeConfig, item_hash};

/// One entry of a bucket: a key and its item hash.
pub type SourceItem = (Vec<u8>, Digest);

/// The items of one bucket, as a source lists them.
pub type ItemIter<'a> = Box<dyn Iterator<Item = Result<SourceItem, SourceError>> + 'a>;

/// Lists the items of a bucket, for the leaf stage of a diff.
pub trait LeafSource {
    /// The items of `bucket` whose key is strictly greater than `after` (all
    /// of them when `None`), in strictly increasing key order.
    ///
    /// The item hashes must be the ones the tree was given, and the keys
    /// exactly those whose [`TreeConfig::bucket_of`] is `bucket`; the diff
    /// checks the order and, for remote items, the bucket.
    fn bucket_items(&self, bucket: u32, after: Option<&[u8]>) -> ItemIter<'_>;
}

/// An in-memory [`LeafSource`]: every key's item hash, ordered by bucket and
/// then key.
#[derive(Debug, Clone)]
pub struct MemLeafSource {
    config: TreeConfig,
    items: BTreeMap<(u32, Vec<u8>), Digest>,
}

impl MemLeafSource {
    /// An empty source for trees of shape `config`.
    pub fn new(config: TreeConfig) -> Self {
        Self {
            config,
            items: BTreeMap::new(),
        }
    }

    /// The shape whose buckets this source lists.
    pub fn config(&self) -> TreeConfig {
        self.config
    }

    /// Sets the item hash of `key` (`None` removes it); returns the hash it
    /// had, ready for [`MerkleTree::update`](crate::MerkleTree::update).
    pub fn set(&mut self, key: &[u8], hash: Option<Digest>) -> Option<Digest> {
        let at = (self.config.bucket_of(key), key.to_vec());
        match hash {
            Some(h) => self.items.insert(at, h),
            None => self.items.remove(&at),
        }
    }

    /// The item hash of `key`, if present.
    pub fn get(&self, key: &[u8]) -> Option<Digest> {
        let at = (self.config.bucket_of(key), key.to_vec());
        self.items.get(&at).copied()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Every `(key, item hash)`, ordered by bucket, then key.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], Digest)> + '_ {
        self.items.iter().map(|((_, k), h)| (k.as_slice(), *h))
    }
}

impl LeafSource for MemLeafSource {
    fn bucket_items(&self, bucket: u32, after: Option<&[u8]>) -> ItemIter<'_> {
        let start = match after {
            Some(k) => Bound::Excluded((bucket, k.to_vec())),
            None => Bound::Included((bucket, Vec::new())),
        };
        // (bucket + 1, []) is the least entry of the next bucket; buckets are
        // below 2^24, so the sum cannot overflow.
        let end = Bound::Excluded((bucket + 1, Vec::new()));
        Box::new(
            self.items
                .range((start, end))
                .map(|((_, k), h)| Ok((k.clone(), *h))),
        )
    }
}

/// A [`MerkleTree`] and the [`MemLeafSource`] behind it, kept in step: the
/// index supplies the old item hash every update needs. For tests, examples
/// and benchmarks; a node keeps its tree beside its storage instead.
#[derive(Debug, Clone)]
pub struct MemReplica {
    /// The tree.
    pub tree: MerkleTree,
    /// The key index its diff reads.
    pub keys: MemLeafSource,
}

impl MemReplica {
    /// An empty replica with trees of shape `config`.
    pub fn new(config: TreeConfig) -> Self {
        Self {
            tree: MerkleTree::new(config),
            keys: MemLeafSource::new(config),
        }
    }

    /// Writes `key` at `version`.
    pub fn put(&mut self, key: &[u8], version: &[u8]) {
        self.set(key, Some(item_hash(key, version)));
    }

    /// Sets the item hash of `key`; `None` purges the key.
    pub fn set(&mut self, key: &[u8], hash: Option<Digest>) {
        let old = self.keys.set(key, hash);
        self.tree.update(key, old, hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_keeps_tree_and_index_in_step() {
        let config = TreeConfig::new(2, 2).unwrap();
        let mut r = MemReplica::new(config);
        r.put(b"a", b"1");
        r.put(b"a", b"2");
        r.put(b"b", b"1");
        r.set(b"b", None);
        let rebuilt = MerkleTree::from_sorted(config, [(b"a", item_hash(b"a", b"2"))]).unwrap();
        assert_eq!(r.tree, rebuilt);
        assert_eq!(r.keys.len(), 1);
    }

    #[test]
    fn lists_one_bucket_in_key_order_after_a_cursor() {
        let config = TreeConfig::new(1, 1).unwrap();
        let mut s = MemLeafSource::new(config);
        for i in 0..50u32 {
            s.set(&i.to_be_bytes(), Some(Digest::ZERO));
        }
        for bucket in 0..2 {
            let keys: Vec<Vec<u8>> = s.bucket_items(bucket, None).map(|r| r.unwrap().0).collect();
            assert!(keys.windows(2).all(|w| w[0] < w[1]));
            assert!(keys.iter().all(|k| config.bucket_of(k) == bucket));
            let rest: Vec<Vec<u8>> = s
                .bucket_items(bucket, Some(&keys[2]))
                .map(|r| r.unwrap().0)
                .collect();
            assert_eq!(rest, keys[3..]);
        }
        assert_eq!(s.len(), 50);
        assert_eq!(s.set(&1u32.to_be_bytes(), None), Some(Digest::ZERO));
        assert_eq!(s.get(&1u32.to_be_bytes()), None);
    }
}
