//! The key hash and the 64-bit token space it lands in.
//!
//! # The key hash, version 1
//!
//! [`key_hash`] is part of the stored data's layout: a key's position on the
//! ring decides which nodes hold it, so the function must never change
//! between versions, compilers or platforms. It is defined here byte by byte
//! and pinned by golden values in the tests:
//!
//! 1. FNV-1a, 64-bit: `h = 0xcbf2_9ce4_8422_2325`; for each byte `b` of the
//!    key, in order: `h ^= b; h = h * 0x0000_0100_0000_01b3` (wrapping).
//! 2. The MurmurHash3 `fmix64` finaliser, so that keys differing only in
//!    their last byte still land far apart:
//!    `h ^= h >> 33; h *= 0xff51_afd7_ed55_8ccd; h ^= h >> 33;
//!    h *= 0xc4ce_b9fe_1a85_ec53; h ^= h >> 33` (wrapping multiplies).
//!
//! The key is read one byte at a time, so the result does not depend on the
//! platform's endianness or word size. FNV-1a was chosen over BLAKE3 or xxh3
//! because it is a dozen lines anyone can reimplement from this comment, it
//! needs no dependency, and for the short keys a store sees it costs a few
//! nanoseconds; the finaliser fixes FNV's weak avalanche in the high bits.
//! It is not keyed: a client that wants to can craft keys that all land on
//! one node, as it can with any public placement function.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A point on the ring: a position in the 64-bit hash space.
///
/// Nodes own tokens; a key belongs to the first token at or clockwise after
/// its [`key_hash`]. Its text form is 16 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Token(pub u64);

impl Token {
    /// The raw position.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({self})")
    }
}

pub(crate) const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The position of `key` on the ring (key hash version 1; see the module
/// documentation for the exact algorithm).
///
/// ```
/// use kv_ring::{key_hash, Token};
/// assert_eq!(key_hash(b""), Token(0xefd0_1f60_ba99_2926));
/// ```
pub fn key_hash(key: &[u8]) -> Token {
    Token(fmix64(fnv1a(FNV_OFFSET, key)))
}

/// FNV-1a 64 over `bytes`, continuing from state `h` (start at
/// `FNV_OFFSET`).
pub(crate) fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// The MurmurHash3 64-bit finaliser: a bijection that spreads every input
/// bit over the whole word.
pub(crate) fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_core_matches_the_published_vectors() {
        // FNV-1a 64 test vectors from the reference (isthe.com/chongo/tech/comp/fnv):
        // "" -> cbf29ce484222325, "a" -> af63dc4c8601ec8c, "foobar" -> 85944171f73967e8.
        // fmix64 is a bijection, so checking it on these inputs pins both steps.
        let fnv = |key: &[u8]| fnv1a(FNV_OFFSET, key);
        assert_eq!(fnv(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn fmix64_fixes_zero_and_mixes() {
        assert_eq!(fmix64(0), 0);
        assert_ne!(fmix64(1), 1);
    }
}
