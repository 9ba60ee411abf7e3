//! The shape of a tree: fan-out and depth, and hence its bucket count.
//!
//! The shape is part of the protocol: two trees can only be compared when
//! their shapes are equal, and the diff's opening message carries it.

use serde::{Deserialize, Serialize};

use crate::MerkleError;
use crate::digest::key_position;

/// Most bucket bits a tree may have: 2^24 buckets is 512 MiB of leaf
/// digests, already far more than one ring range of one node needs.
pub const BUCKET_BITS_MAX: u32 = 24;

/// Most fan-out bits per level: fan-out 256. Wider levels waste bytes in the
/// diff, since every differing node ships all its children.
pub const FAN_OUT_BITS_MAX: u8 = 8;

/// The shape of a tree: `2^fan_out_bits` children per inner node and `depth`
/// levels below the root, hence `2^(fan_out_bits * depth)` leaf buckets.
///
/// Level 0 is the root; level `depth` holds the buckets. Node `i` of level
/// `l` has children `i * fan_out .. (i + 1) * fan_out` at level `l + 1`.
///
/// The default, fan-out 16 and depth 4 (65,536 buckets), is sized for about
/// a million keys: ~15 keys a bucket. Choosing the shape trades three costs:
/// a diff takes `depth + 1` round trips at least; each differing key costs
/// about `depth * fan_out` digests of sibling hashes plus the other items of
/// its bucket; the tree holds `buckets * 32 * fan_out / (fan_out - 1)` bytes
/// (2.2 MiB for the default). See ARCHITECTURE.md for the figures.
///
/// Deserializing checks the limits too, so a shape read off the wire or
/// from a file is always valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawConfig")]
pub struct TreeConfig {
    fan_out_bits: u8,
    depth: u8,
}

/// The serialized form, checked by [`TreeConfig::new`] on the way in.
#[derive(Deserialize)]
struct RawConfig {
    fan_out_bits: u8,
    depth: u8,
}

impl TryFrom<RawConfig> for TreeConfig {
    type Error = MerkleError;

    fn try_from(raw: RawConfig) -> Result<Self, MerkleError> {
        TreeConfig::new(raw.fan_out_bits, raw.depth)
    }
}

impl Default for TreeConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl TreeConfig {
    /// Fan-out 16, depth 4: 65,536 buckets, for about a million keys.
    pub const DEFAULT: TreeConfig = TreeConfig {
        fan_out_bits: 4,
        depth: 4,
    };

    /// A shape with fan-out `2^fan_out_bits` and `depth` levels below the
    /// root. Fails unless `1 <= fan_out_bits <= FAN_OUT_BITS_MAX`,
    /// `depth >= 1` and `fan_out_bits * depth <= BUCKET_BITS_MAX`.
    pub fn new(fan_out_bits: u8, depth: u8) -> Result<Self, MerkleError> {
        let invalid = |reason| MerkleError::InvalidConfig {
            fan_out_bits,
            depth,
            reason,
        };
        if fan_out_bits == 0 || fan_out_bits > FAN_OUT_BITS_MAX {
            return Err(invalid("fan_out_bits must be in 1..=8"));
        }
        if depth == 0 {
            return Err(invalid("depth must be at least 1"));
        }
        if u32::from(fan_out_bits) * u32::from(depth) > BUCKET_BITS_MAX {
            return Err(invalid("fan_out_bits * depth must be at most 24"));
        }
        Ok(Self {
            fan_out_bits,
            depth,
        })
    }

    /// Log2 of the fan-out.
    pub fn fan_out_bits(&self) -> u8 {
        self.fan_out_bits
    }

    /// Children per inner node.
    pub fn fan_out(&self) -> u32 {
        1 << self.fan_out_bits
    }

    /// Levels below the root; the buckets are level `depth`.
    pub fn depth(&self) -> u8 {
        self.depth
    }

    /// Log2 of the bucket count.
    pub fn bucket_bits(&self) -> u32 {
        u32::from(self.fan_out_bits) * u32::from(self.depth)
    }

    /// Number of leaf buckets.
    pub fn buckets(&self) -> u32 {
        1 << self.bucket_bits()
    }

    /// Number of nodes at `level` (1 at the root), or 0 below the buckets.
    pub fn nodes_at(&self, level: u8) -> u32 {
        if level > self.depth {
            return 0;
        }
        1 << (u32::from(self.fan_out_bits) * u32::from(level))
    }

    /// The bucket of `key`: the top `bucket_bits` bits of
    /// [`key_position`](crate::key_position).
    pub fn bucket_of(&self, key: &[u8]) -> u32 {
        // bucket_bits is in 1..=24, so the shift is in 40..=63 and the result
        // fits in u32.
        (key_position(key) >> (64 - self.bucket_bits())) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_outside_the_limits_are_refused() {
        assert!(TreeConfig::new(0, 4).is_err());
        assert!(TreeConfig::new(9, 1).is_err());
        assert!(TreeConfig::new(4, 0).is_err());
        assert!(TreeConfig::new(5, 5).is_err());
        assert!(TreeConfig::new(8, 3).is_ok());
        assert!(TreeConfig::new(1, 24).is_ok());
    }

    #[test]
    fn default_shape_has_65536_buckets() {
        let c = TreeConfig::default();
        assert_eq!(c.fan_out(), 16);
        assert_eq!(c.buckets(), 65_536);
        assert_eq!(c.nodes_at(0), 1);
        assert_eq!(c.nodes_at(4), 65_536);
        assert_eq!(c.nodes_at(5), 0);
    }

    #[test]
    fn deserializing_checks_the_limits() {
        let bytes = postcard::to_allocvec(&TreeConfig::DEFAULT).unwrap();
        assert_eq!(bytes, [4, 4]);
        let ok: TreeConfig = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(ok, TreeConfig::DEFAULT);
        assert!(postcard::from_bytes::<TreeConfig>(&[0, 200]).is_err());
        assert!(postcard::from_bytes::<TreeConfig>(&[5, 5]).is_err());
    }

    #[test]
    fn buckets_stay_in_range() {
        let c = TreeConfig::new(1, 1).unwrap();
        for i in 0..100u32 {
            assert!(c.bucket_of(&i.to_le_bytes()) < 2);
        }
    }
}
