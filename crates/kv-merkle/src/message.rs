//! The diff's messages and the limits that bound them.
//!
//! One diff is a sequence of round trips, each one request from the
//! initiator and one response from the responder. The responder keeps no
//! state between them, so any transport (and any number of concurrent
//! diffs) can carry them:
//!
//! ```text
//!  initiator (tree A)                                   responder (tree B)
//!  Root { version, config, root(A) }            ───▶   root(B) == root(A)?
//!                                               ◀───   InSync               (done)
//!                                               ◀───   Children { level-1 digests of B }
//!  Children { level l, nodes: [i, ..] }         ───▶   (the level-l nodes whose
//!                                               ◀───    digests differ)
//!                                                      Children { fan_out digests per node }
//!  ... one level per round trip, down to the buckets (level `depth`) ...
//!  Items { buckets: [b, ..], after: key? }      ───▶
//!                                               ◀───   Items { [ {bucket, [(key, hash), ..]} ],
//!                                                              truncated }
//!  ... again with `after` = the last key listed, while `truncated` ...
//! ```
//!
//! With every level fitting one message, a diff takes `depth + 1` round
//! trips: `depth` to walk down (the root check rides on the first) and one
//! for the items. Limits that split a level or a bucket list over more
//! messages add round trips, and [`DiffStats::round_trips`](crate::DiffStats::round_trips) counts them.
//!
//! Under postcard (varints for integers and lengths; `u8` and digests raw)
//! the messages are laid out as follows; the enum tag comes first:
//!
//! ```text
//! Root request       0 | version:varint | fan_out_bits:u8 | depth:u8 | root:[32]
//! Children request   1 | level:u8 | n:varint | n x node:varint
//! Items request      2 | n:varint | n x bucket:varint | 0 | 1 key_len:varint key
//! InSync             0
//! Children response  1 | n:varint | n x digest:[32]
//! Items response     2 | n:varint | n x ( bucket:varint | m:varint |
//!                                          m x ( key_len:varint | key | hash:[32] ) )
//!                      | truncated:u8
//! ```
//!
//! Messages are serde types. The transport (kv-wire) encodes them with
//! postcard inside its own length-prefixed, checksummed frames, so this
//! layer carries no checksum of its own; it carries [`PROTOCOL_VERSION`] in
//! the opening `Root` request, and the responder refuses another version or
//! another tree shape. Every message is bounded by [`DiffLimits`], and both
//! sides check every message they receive against them.

use serde::{Deserialize, Serialize};

use crate::{DIGEST_LEN, Digest, MerkleError, TreeConfig};

/// Version of the diff protocol (messages, item hash, bucket function).
pub const PROTOCOL_VERSION: u16 = 1;

/// Bytes counted per item on top of its key and hash, for the length prefix
/// of the key (a postcard varint of a `u32`-sized length takes at most 5).
pub const ITEM_OVERHEAD: usize = 5;

/// A request from the diff's initiator to its responder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DiffRequest {
    /// Opens the diff: the responder compares roots and, if they differ,
    /// answers with the digests of its level-1 nodes.
    Root {
        /// The initiator's [`PROTOCOL_VERSION`].
        version: u16,
        /// The initiator's tree shape; must equal the responder's.
        config: TreeConfig,
        /// The initiator's root digest.
        root: Digest,
    },
    /// Asks for the digests of the children of `nodes` at `level`.
    Children {
        /// The level of the nodes listed (`< depth`).
        level: u8,
        /// Node indices at that level, at most
        /// [`DiffLimits::nodes_per_request_max`].
        nodes: Vec<u32>,
    },
    /// Asks for the items of `buckets`, in the order listed.
    Items {
        /// Bucket indices, at most [`DiffLimits::buckets_per_request_max`].
        buckets: Vec<u32>,
        /// Resume point in the first bucket: list only keys after this one.
        after: Option<Vec<u8>>,
    },
}

/// A response from the diff's responder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DiffResponse {
    /// The roots are equal: nothing differs.
    InSync,
    /// `fan_out` child digests for each node asked for, in the order asked.
    Children {
        /// The digests.
        digests: Vec<Digest>,
    },
    /// Items of a prefix of the buckets asked for.
    Items {
        /// The buckets, in the order asked.
        buckets: Vec<BucketItems>,
        /// When set, the last bucket listed may have more items after its
        /// last one, and buckets after it were not listed: ask again from
        /// there. When clear, every bucket asked for is listed in full.
        truncated: bool,
    },
}

impl DiffResponse {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            DiffResponse::InSync => "InSync",
            DiffResponse::Children { .. } => "Children",
            DiffResponse::Items { .. } => "Items",
        }
    }
}

/// The items of one bucket (or of a part of it) in a response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketItems {
    /// The bucket.
    pub bucket: u32,
    /// Its items, in strictly increasing key order.
    pub items: Vec<Item>,
}

/// One entry: a key and its item hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// The key.
    pub key: Vec<u8>,
    /// Its [`item_hash`](crate::item_hash).
    pub hash: Digest,
}

impl Item {
    /// Bytes this item counts against
    /// [`DiffLimits::item_bytes_per_message_max`].
    pub fn cost(&self) -> usize {
        item_cost(self.key.len())
    }
}

pub(crate) fn item_cost(key_len: usize) -> usize {
    key_len + DIGEST_LEN + ITEM_OVERHEAD
}

/// Bounds on one diff: message sizes, the differences collected, and round
/// trips. Both sides should use the same values; each side enforces its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffLimits {
    /// Most digests in one `Children` response (so a request names at most
    /// this divided by the fan-out nodes). Default 4,096: 128 KiB.
    pub digests_per_message_max: u32,
    /// Most buckets one `Items` request names. Default 1,024.
    pub buckets_per_request_max: u32,
    /// Most item bytes ([`Item::cost`]) in one `Items` response, and so the
    /// largest key the diff can carry. Default 256 KiB.
    pub item_bytes_per_message_max: u32,
    /// The initiator stops once it has found this many differing keys and
    /// reports the outcome as incomplete; repair them and diff again.
    /// Default 100,000.
    pub differences_max: u32,
    /// Most round trips in one diff. Default 10,000.
    pub round_trips_max: u32,
}

impl Default for DiffLimits {
    fn default() -> Self {
        Self {
            digests_per_message_max: 4096,
            buckets_per_request_max: 1024,
            item_bytes_per_message_max: 256 * 1024,
            differences_max: 100_000,
            round_trips_max: 10_000,
        }
    }
}

impl DiffLimits {
    /// Most nodes one `Children` request may name for a tree of `config`.
    pub fn nodes_per_request_max(&self, config: TreeConfig) -> u32 {
        self.digests_per_message_max / config.fan_out()
    }

    /// Checks the limits are workable for `config`: a request can name at
    /// least one node and one bucket, and a response can carry one item with
    /// an empty key, one difference and one round trip.
    pub fn check(&self, config: TreeConfig) -> Result<(), MerkleError> {
        let floors = [
            (
                "digests_per_message_max",
                self.digests_per_message_max,
                config.fan_out(),
            ),
            ("buckets_per_request_max", self.buckets_per_request_max, 1),
            (
                "item_bytes_per_message_max",
                self.item_bytes_per_message_max,
                item_cost(0) as u32,
            ),
            ("differences_max", self.differences_max, 1),
            ("round_trips_max", self.round_trips_max, 1),
        ];
        for (limit, value, needed) in floors {
            if value < needed {
                return Err(MerkleError::LimitTooSmall {
                    limit,
                    value,
                    needed,
                });
            }
        }
        Ok(())
    }

    /// An upper bound on the postcard encoding of any request or response
    /// that obeys these limits (varints of `u32` values and lengths take at
    /// most 5 bytes).
    pub fn message_bytes_max(&self, config: TreeConfig) -> usize {
        const VARINT: usize = 5;
        let tag = 1;
        let nodes = self.nodes_per_request_max(config) as usize;
        let buckets = self.buckets_per_request_max as usize;
        let item_bytes = self.item_bytes_per_message_max as usize;
        let root_request = tag + 3 + 2 + DIGEST_LEN;
        let children_request = tag + 1 + VARINT + nodes * VARINT;
        // The resume key was listed in an earlier response, so it fits the
        // item budget.
        let items_request = tag + VARINT + buckets * VARINT + 1 + item_bytes;
        let children_response = tag + VARINT + self.digests_per_message_max as usize * DIGEST_LEN;
        let items_response = tag + VARINT + buckets * 2 * VARINT + item_bytes + 1;
        [
            root_request,
            children_request,
            items_request,
            children_response,
            items_response,
        ]
        .into_iter()
        .max()
        .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_limits_are_workable_for_every_shape() {
        for bits in 1..=8 {
            let c = TreeConfig::new(bits, 1).unwrap();
            DiffLimits::default().check(c).unwrap();
        }
    }

    #[test]
    fn limits_below_their_floors_are_refused() {
        let c = TreeConfig::default();
        let l = DiffLimits {
            digests_per_message_max: 15,
            ..DiffLimits::default()
        };
        assert!(matches!(
            l.check(c),
            Err(MerkleError::LimitTooSmall { needed: 16, .. })
        ));
        let l = DiffLimits {
            item_bytes_per_message_max: 10,
            ..DiffLimits::default()
        };
        assert!(l.check(c).is_err());
    }

    #[test]
    fn postcard_layout_matches_the_picture() {
        let root = DiffRequest::Root {
            version: PROTOCOL_VERSION,
            config: TreeConfig::DEFAULT,
            root: Digest([7; DIGEST_LEN]),
        };
        let bytes = postcard::to_allocvec(&root).unwrap();
        assert_eq!(bytes[..4], [0, 1, 4, 4]);
        assert_eq!(bytes.len(), 4 + DIGEST_LEN);
        let items = DiffResponse::Items {
            buckets: vec![BucketItems {
                bucket: 300,
                items: vec![Item {
                    key: b"k".to_vec(),
                    hash: Digest([9; DIGEST_LEN]),
                }],
            }],
            truncated: true,
        };
        let bytes = postcard::to_allocvec(&items).unwrap();
        assert_eq!(bytes[..7], [2, 1, 0xac, 0x02, 1, 1, b'k']);
        assert_eq!(bytes.len(), 7 + DIGEST_LEN + 1);
        assert_eq!(bytes.last(), Some(&1));
    }

    #[test]
    fn default_messages_stay_under_a_few_hundred_kib() {
        let max = DiffLimits::default().message_bytes_max(TreeConfig::default());
        assert!(max < 300 * 1024, "{max}");
    }
}
