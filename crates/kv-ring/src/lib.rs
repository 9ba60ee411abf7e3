//! Consistent hashing with weighted virtual nodes and zone-aware replica placement.
//!
//! A [`Ring`] places keys on nodes. Keys are hashed onto a 64-bit space by
//! [`key_hash`] (a fixed, documented function: see module [`hash`]). Each
//! node owns a set of [`Token`]s (its virtual nodes) and, as primary, every
//! range `(previous token, its token]` that ends at one of them.
//!
//! - **Weights.** A node's weight is its capacity; its share of the ring
//!   follows its weight because tokens are *allocated*, not drawn at random:
//!   [`Ring::allocate_tokens`] is a deterministic, greedy function of the
//!   ring and the joining node that takes slices from the most loaded nodes
//!   (Cassandra-style). The module docs of `alloc` (below) say why.
//! - **Zones.** Nodes may carry a zone label (datacenter, rack).
//!   [`Ring::preference_list`] walks clockwise taking one node per new zone,
//!   then fills with distinct nodes; [`Ring::successors`] continues the same
//!   order for sloppy-quorum fallbacks.
//! - **Exact movement.** [`Ring::add_node`] and [`Ring::remove_node`] return
//!   the exact [`RangeMove`]s, `(from, to)` per range, so rebalancing streams
//!   those ranges and nothing else. A join only ever moves ranges *to* the
//!   new node; a leave only *from* the leaving node.
//! - **Gossip.** The ring is serde-serializable as a [`RingState`] (a format
//!   version, the [`RingConfig`], and the [`NodeSpec`]s); a ring rebuilt from
//!   the same specs in any order is identical ([`Ring::from_specs`]).
//!
//! The crate is pure and synchronous: no I/O, no threads, no clock.
//!
//! # Token allocation
//!
//! Random token placement leaves the most loaded of 100 equal nodes with
//! 15-30 % more than its share. Instead, the first node's tokens are evenly
//! spaced and every later node's `weight * vnodes_per_weight` tokens each
//! cut a slice from the start of the largest range of the node that is most
//! loaded per unit of weight, sized so the newcomer ends at exactly its
//! weighted share. A join thus moves the optimum amount (the new node's
//! share) and only towards the new node. Concurrent joins computed from the
//! same ring never conflict: specs merge by node id and a doubly claimed
//! token goes to the lower id.
//!
//! # Example
//!
//! ```
//! use kv_ring::{NewNode, Ring, RingConfig};
//! use kv_types::NodeId;
//!
//! # fn main() -> Result<(), kv_ring::RingError> {
//! let mut ring = Ring::with_nodes(
//!     RingConfig::default(),
//!     (1..=6).map(|i| NewNode::new(NodeId(i), 1).in_zone(format!("dc{}", i % 3))),
//! )?;
//!
//! // Three replicas, in three different zones.
//! let replicas = ring.preference_list(b"user:42", 3)?;
//! assert_eq!(replicas.len(), 3);
//!
//! // A seventh node joins: only ranges moving to it change hands.
//! let moves = ring.join(NewNode::new(NodeId(7), 1).in_zone("dc0"))?;
//! assert!(moves.iter().all(|m| m.to == NodeId(7)));
//! let moved: f64 = moves.iter().map(|m| m.range.fraction()).sum();
//! assert!((moved - ring.share(NodeId(7))?).abs() < 1e-9);
//!
//! // What gossip carries rebuilds the same ring.
//! let again = Ring::from_specs(ring.config(), ring.nodes().iter().rev().cloned())?;
//! assert_eq!(again, ring);
//! # Ok(())
//! # }
//! ```

mod alloc;
mod diff;
mod error;
pub mod hash;
mod placement;
mod range;
mod ring;

pub use error::RingError;
pub use hash::{Token, key_hash};
pub use placement::{PreferenceList, Successors};
pub use range::{RangeMove, TokenRange};
pub use ring::{
    DEFAULT_VNODES_PER_WEIGHT, NewNode, NodeSpec, RING_FORMAT_VERSION, Ring, RingConfig, RingState,
};

/// The most nodes a ring holds. Node indices are kept in `u32`s; the bound
/// keeps the token table (at most `MAX_NODES * MAX_TOKENS_PER_NODE` entries)
/// within reach of a single machine's memory.
pub const MAX_NODES: usize = 4096;

/// The most tokens (virtual nodes) one node may hold. With the default of
/// 64 per unit of weight, that allows weights up to 64.
pub const MAX_TOKENS_PER_NODE: usize = 4096;

/// The highest weight a node may have.
pub const MAX_WEIGHT: u32 = 1024;

/// The longest preference list [`Ring::preference_list`] returns; it is held
/// inline, so this bounds its size.
pub const MAX_REPLICAS: usize = 16;

/// The longest zone label, in bytes.
pub const MAX_ZONE_LEN: usize = 64;
