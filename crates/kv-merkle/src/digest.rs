//! Digests: the hash every item contributes, and the bucket function.
//!
//! Both functions are part of the cross-node protocol: two replicas can only
//! compare trees if they hash items and place keys exactly alike. They are
//! versioned by the 32-byte BLAKE3 keys below (`.../v1`) and pinned by golden
//! tests (`tests/bucket_function_is_stable.rs`); changing either is a
//! protocol change that needs a new key and a new [`crate::PROTOCOL_VERSION`].
//!
//! ```text
//! item_hash(key, version) = BLAKE3-keyed(ITEM_HASH_KEY,
//!                             u64-LE(len(key)) || key || version)   (32 bytes)
//!
//! key_position(key)       = u64-BE(first 8 bytes of
//!                             BLAKE3-keyed(BUCKET_FN_KEY, key))
//! bucket(key)             = key_position(key) >> (64 - bucket_bits)
//! ```
//!
//! The length prefix keeps `("ab", "c")` and `("a", "bc")` apart. The bucket
//! function uses its own key (not plain `blake3(key)`) so that it is
//! independent of any other use of the key's hash, such as the ring's
//! placement: a tree over one ring range must still spread its keys over all
//! of its buckets. A bucket is the top bits of the position, so the node that
//! holds a key at any level of the tree is a prefix of its bucket.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Bytes in a [`Digest`].
pub const DIGEST_LEN: usize = 32;

/// BLAKE3 key of the item hash, version 1 (exactly 32 ASCII bytes).
const ITEM_HASH_KEY: &[u8; 32] = b"dynamo-kv/kv-merkle/item-hash/v1";

/// BLAKE3 key of the bucket function, version 1 (exactly 32 ASCII bytes).
const BUCKET_FN_KEY: &[u8; 32] = b"dynamo-kv/kv-merkle/bucket-fn/v1";

/// A 32-byte digest: the hash of one item, or the XOR of the item hashes
/// under a node of the tree.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct Digest(pub [u8; DIGEST_LEN]);

impl Digest {
    /// The digest of an empty set of items.
    pub const ZERO: Digest = Digest([0; DIGEST_LEN]);

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; DIGEST_LEN] {
        &self.0
    }

    /// Whether this is [`Digest::ZERO`].
    pub fn is_zero(&self) -> bool {
        self.0 == [0; DIGEST_LEN]
    }

    /// The bytewise XOR of two digests: adds or removes an item from a set
    /// digest (XOR is its own inverse, so both are the same operation).
    #[must_use]
    pub fn xor(self, other: Digest) -> Digest {
        let mut out = self;
        out.xor_in(&other);
        out
    }

    pub(crate) fn xor_in(&mut self, other: &Digest) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a ^= b;
        }
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Eight hex digits are enough to tell digests apart in a log line.
        write!(f, "Digest(")?;
        for b in &self.0[..4] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "..)")
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// The hash an entry contributes to its tree: BLAKE3 (keyed, see the module
/// doc) of the key and its version metadata.
///
/// `version` is whatever identifies the entry's state: for the store, the
/// record's version vector and tombstone flag. Two replicas hold the same
/// entry exactly when these bytes are equal; values are not hashed because a
/// version names its value.
pub fn item_hash(key: &[u8], version: &[u8]) -> Digest {
    // Most items are small: hashing one stack buffer in a single call skips
    // the incremental hasher's set-up, which costs more than the hashing.
    const SMALL: usize = 256;
    let len = 8 + key.len() + version.len();
    if len <= SMALL {
        let mut buf = [0u8; SMALL];
        buf[..8].copy_from_slice(&(key.len() as u64).to_le_bytes());
        buf[8..8 + key.len()].copy_from_slice(key);
        buf[8 + key.len()..len].copy_from_slice(version);
        return Digest(*blake3::keyed_hash(ITEM_HASH_KEY, &buf[..len]).as_bytes());
    }
    let mut h = blake3::Hasher::new_keyed(ITEM_HASH_KEY);
    h.update(&(key.len() as u64).to_le_bytes());
    h.update(key);
    h.update(version);
    Digest(*h.finalize().as_bytes())
}

/// The 64-bit position of `key` in the bucket space; a tree with `b` bucket
/// bits puts the key in bucket `key_position(key) >> (64 - b)`.
pub fn key_position(key: &[u8]) -> u64 {
    let h = blake3::keyed_hash(BUCKET_FN_KEY, key);
    let mut first = [0u8; 8];
    first.copy_from_slice(&h.as_bytes()[..8]);
    u64::from_be_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xor_is_its_own_inverse() {
        let a = item_hash(b"a", b"1");
        let b = item_hash(b"b", b"1");
        assert_eq!(a.xor(b).xor(b), a);
        assert!(a.xor(a).is_zero());
        assert!(!a.is_zero());
    }

    #[test]
    fn small_and_large_items_hash_alike() {
        // The one-shot path for small items must equal the incremental one.
        let key = vec![b'k'; 200];
        for version_len in [0, 40, 48, 49, 300] {
            let version = vec![b'v'; version_len];
            let mut h = blake3::Hasher::new_keyed(ITEM_HASH_KEY);
            h.update(&(key.len() as u64).to_le_bytes());
            h.update(&key);
            h.update(&version);
            assert_eq!(item_hash(&key, &version).0, *h.finalize().as_bytes());
        }
    }

    #[test]
    fn length_prefix_separates_key_from_version() {
        assert_ne!(item_hash(b"ab", b"c"), item_hash(b"a", b"bc"));
    }

    #[test]
    fn display_is_full_hex_and_debug_is_short() {
        let d = Digest([0xab; DIGEST_LEN]);
        assert_eq!(d.to_string(), "ab".repeat(DIGEST_LEN));
        assert_eq!(format!("{d:?}"), "Digest(abababab..)");
    }
}
