//! The tree: XOR set digests of buckets, aggregated level by level.
//!
//! ```text
//! level 0            [root]                      root = XOR of every item hash
//!                   /  ...  \
//! level 1       [n0] ... [n15]                   node = XOR of its children
//!                 ...
//! level depth  [b0] [b1] ... [b65535]            bucket = XOR of its item hashes
//! ```
//!
//! Every node holds the XOR of the item hashes of all keys below it, so an
//! update of one key XORs `old ^ new` into its bucket and into each ancestor:
//! `depth + 1` XORs of 32 bytes and one bucket-function hash, with no rescan.
//! XOR is commutative and its own inverse, so the tree depends only on the
//! set of items, never on the order in which they were applied, and a
//! rebuild gives exactly the tree that incremental updates maintain.
//!
//! Why XOR at the inner levels rather than a hash of the children: both give
//! O(depth) updates, but a hash of children costs a BLAKE3 pass over
//! `fan_out * 32` bytes per level per update, while XOR costs 32 byte-XORs.
//! Comparison stays sound: two nodes covering different item sets have equal
//! digests only if the item hashes in the symmetric difference XOR to zero,
//! which for BLAKE3 outputs happens with probability 2^-256 per comparison.
//! The weakness shared with Riak's TicTac trees is adversarial: someone who
//! can choose many keys *and* make replicas diverge on exactly those could
//! solve for a cancelling set (linear algebra over GF(2)); the store does not
//! let clients do the latter.
//!
//! The tree holds no keys. A caller that removes or replaces an item must
//! pass the item hash it had (the node reads the old record's version before
//! writing anyway); passing a wrong one corrupts the digest until a rebuild.

use std::fmt;

use crate::{Digest, MerkleError, TreeConfig};

/// A Merkle tree over the items of one key range: bucket digests and their
/// XOR aggregates up to the root.
#[derive(Clone, PartialEq, Eq)]
pub struct MerkleTree {
    config: TreeConfig,
    /// `levels[l]` holds the `config.nodes_at(l)` digests of level `l`;
    /// `levels[0]` is the root, `levels[depth]` the buckets.
    levels: Vec<Vec<Digest>>,
}

impl fmt::Debug for MerkleTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The digests themselves would be megabytes of output.
        f.debug_struct("MerkleTree")
            .field("config", &self.config)
            .field("root", &self.root())
            .finish_non_exhaustive()
    }
}

impl MerkleTree {
    /// An empty tree (every digest zero).
    pub fn new(config: TreeConfig) -> Self {
        let levels = (0..=config.depth())
            .map(|l| vec![Digest::ZERO; config.nodes_at(l) as usize])
            .collect();
        Self { config, levels }
    }

    /// Builds a tree from items in strictly increasing key order, such as a
    /// storage scan of the range. Recovery uses this; see [`TreeBuilder`]
    /// for fallible sources.
    pub fn from_sorted<K, I>(config: TreeConfig, items: I) -> Result<Self, MerkleError>
    where
        K: AsRef<[u8]>,
        I: IntoIterator<Item = (K, Digest)>,
    {
        let mut builder = TreeBuilder::new(config);
        for (key, hash) in items {
            builder.push(key.as_ref(), hash)?;
        }
        Ok(builder.finish())
    }

    /// The tree's shape.
    pub fn config(&self) -> TreeConfig {
        self.config
    }

    /// The root digest: the XOR of every item hash in the tree.
    pub fn root(&self) -> Digest {
        self.levels[0][0]
    }

    /// The digest of node `index` at `level`, if it exists.
    pub fn node(&self, level: u8, index: u32) -> Option<Digest> {
        self.levels
            .get(usize::from(level))?
            .get(index as usize)
            .copied()
    }

    /// The digests of the children of node `index` at `level`, in order, if
    /// the node exists and is not a bucket.
    pub fn children(&self, level: u8, index: u32) -> Option<&[Digest]> {
        if level >= self.config.depth() || index >= self.config.nodes_at(level) {
            return None;
        }
        let f = self.config.fan_out() as usize;
        let start = index as usize * f;
        self.levels
            .get(usize::from(level) + 1)?
            .get(start..start + f)
    }

    /// The digest of `bucket`, if it exists.
    pub fn bucket(&self, bucket: u32) -> Option<Digest> {
        self.node(self.config.depth(), bucket)
    }

    /// Replaces the item of `key`: `old` is the hash it had (`None` if the
    /// key was absent), `new` the hash it has now (`None` if it is gone).
    ///
    /// A store delete writes a tombstone, which is a new version, so it is
    /// `update(key, Some(old), Some(tombstone))`; `None` for `new` is for
    /// tombstones purged for good.
    pub fn update(&mut self, key: &[u8], old: Option<Digest>, new: Option<Digest>) {
        let mut delta = old.unwrap_or(Digest::ZERO);
        delta.xor_in(&new.unwrap_or(Digest::ZERO));
        if delta.is_zero() {
            return;
        }
        let mut index = self.config.bucket_of(key);
        let bits = self.config.fan_out_bits();
        for level in self.levels.iter_mut().rev() {
            // `index` is the key's node at this level: a prefix of its
            // bucket, always in range by construction.
            if let Some(d) = level.get_mut(index as usize) {
                d.xor_in(&delta);
            }
            index >>= bits;
        }
    }

    /// Adds an item for a key that had none.
    pub fn insert(&mut self, key: &[u8], hash: Digest) {
        self.update(key, None, Some(hash));
    }

    /// Removes the item `hash` of `key`.
    pub fn remove(&mut self, key: &[u8], hash: Digest) {
        self.update(key, Some(hash), None);
    }
}

/// Builds a [`MerkleTree`] from items pushed in strictly increasing key
/// order, e.g. from a fallible storage scan. The order check catches a key
/// listed twice, which XOR would otherwise silently cancel.
#[derive(Debug)]
pub struct TreeBuilder {
    tree: MerkleTree,
    previous: Option<Vec<u8>>,
}

impl TreeBuilder {
    /// An empty builder for a tree of shape `config`.
    pub fn new(config: TreeConfig) -> Self {
        Self {
            tree: MerkleTree::new(config),
            previous: None,
        }
    }

    /// Adds the item of `key`; fails if `key` is not greater than the
    /// previous key.
    pub fn push(&mut self, key: &[u8], hash: Digest) -> Result<(), MerkleError> {
        match &mut self.previous {
            Some(prev) if prev.as_slice() >= key => {
                return Err(MerkleError::KeysOutOfOrder {
                    previous: prev.clone(),
                    key: key.to_vec(),
                });
            }
            Some(prev) => {
                prev.clear();
                prev.extend_from_slice(key);
            }
            None => self.previous = Some(key.to_vec()),
        }
        // Only the buckets now; `finish` aggregates the inner levels once.
        let depth = usize::from(self.tree.config.depth());
        let bucket = self.tree.config.bucket_of(key) as usize;
        if let Some(d) = self.tree.levels[depth].get_mut(bucket) {
            d.xor_in(&hash);
        }
        Ok(())
    }

    /// The finished tree.
    pub fn finish(mut self) -> MerkleTree {
        let f = self.tree.config.fan_out() as usize;
        for level in (0..self.tree.levels.len() - 1).rev() {
            let (upper, lower) = self.tree.levels.split_at_mut(level + 1);
            for (node, children) in upper[level].iter_mut().zip(lower[0].chunks_exact(f)) {
                *node = children.iter().fold(Digest::ZERO, |acc, c| acc.xor(*c));
            }
        }
        self.tree
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item_hash;

    #[test]
    fn every_ancestor_holds_the_xor_of_its_children() {
        let config = TreeConfig::new(2, 3).unwrap();
        let mut t = MerkleTree::new(config);
        for i in 0..200u32 {
            let k = i.to_be_bytes();
            t.insert(&k, item_hash(&k, b"v"));
        }
        for level in 0..config.depth() {
            for i in 0..config.nodes_at(level) {
                let xor = t
                    .children(level, i)
                    .unwrap()
                    .iter()
                    .fold(Digest::ZERO, |a, c| a.xor(*c));
                assert_eq!(Some(xor), t.node(level, i));
            }
        }
        assert!(!t.root().is_zero());
    }

    #[test]
    fn update_then_undo_restores_the_empty_tree() {
        let mut t = MerkleTree::new(TreeConfig::default());
        let (a, b) = (item_hash(b"k", b"1"), item_hash(b"k", b"2"));
        t.insert(b"k", a);
        t.update(b"k", Some(a), Some(b));
        t.remove(b"k", b);
        assert_eq!(t, MerkleTree::new(TreeConfig::default()));
    }

    #[test]
    fn builder_refuses_repeated_or_unordered_keys() {
        let mut b = TreeBuilder::new(TreeConfig::default());
        b.push(b"b", Digest::ZERO).unwrap();
        assert!(matches!(
            b.push(b"b", Digest::ZERO),
            Err(MerkleError::KeysOutOfOrder { .. })
        ));
        assert!(b.push(b"a", Digest::ZERO).is_err());
        assert!(b.push(b"c", Digest::ZERO).is_ok());
    }

    #[test]
    fn children_of_buckets_and_missing_nodes_are_none() {
        let t = MerkleTree::new(TreeConfig::default());
        assert!(t.children(4, 0).is_none());
        assert!(t.children(0, 1).is_none());
        assert_eq!(t.children(0, 0).map(<[Digest]>::len), Some(16));
        assert!(t.node(5, 0).is_none());
    }
}
