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
//!   (Cassandra-style); "Token allocation" below says how and why.
//! - **Zones.** Nodes may carry a zone label (datacenter, rack).
//!   [`Ring::preference_list`] walks clockwise taking one node per new zone,
//!   then fills with distinct nodes; [`Ring::successors`] continues the same
//!   order for sloppy-quorum fallbacks.
//! - **Exact movement.** [`Ring::add_node`] and [`Ring::remove_node`] return
//!   the exact [`RangeMove`]s, `(from, to)` per range, so that rebalancing
//!   can stream those ranges and nothing else (kvnode does not stream yet). A join only ever moves ranges *to* the
//!   new node; a leave only *from* the leaving node.
//!   [`Ring::replica_changes`] gives the same for replica sets of size `n`
//!   (what a replicated store streams), and [`Ring::owned_ranges`] /
//!   [`Ring::replicated_ranges`] what one node holds.
//! - **Serialization.** The ring is serde-serializable as a [`RingState`] (a format
//!   version, the [`RingConfig`], and the [`NodeSpec`]s); a ring rebuilt from
//!   the same specs in any order is identical ([`Ring::from_specs`]).
//!
//! The crate is pure and synchronous: no I/O, no threads, no clock.
//!
//! # Token allocation
//!
//! Random tokens leave the most loaded of 100 equal nodes owning 15 to 30 %
//! more than the mean, unless each node carries thousands of them. Dynamo's
//! later scheme (the ring cut into Q equal fixed partitions) balances well
//! but moves partitions between nodes by a central plan, which two
//! concurrent joins learnt by gossip could contradict. We do what
//! Cassandra's token allocator does, simplified: each node owns its own
//! tokens (so joins never conflict), and a joining node's tokens are a
//! *deterministic function of the ring it sees and of its own id and weight*,
//! chosen greedily to take load from the nodes that have the most:
//!
//! 1. On an empty ring the node's `T = weight * vnodes_per_weight` tokens
//!    are evenly spaced, starting from a point derived from its id.
//! 2. Otherwise its target is `2^64 * weight / (total weight + weight)`
//!    positions. For each of its `T` tokens in turn, it takes the node with
//!    the highest load per unit of weight (ties: lower id), picks that
//!    node's largest range (scored with a small id-seeded jitter, below),
//!    and places a token inside it so as to take
//!    `min(still needed / tokens left, range width - 1)` positions from the
//!    start of the range. Loads are updated and the next token is placed.
//!
//! Every token therefore takes one slice from one over-loaded node; a join
//! moves exactly the new node's share (the optimum) and nothing between
//! other nodes. Load-per-weight comparisons use exact integer cross
//! products, so the result is the same on every platform.
//!
//! **Zones.** By default ([`Balance::Global`]) allocation balances primary
//! ownership over the whole ring. With zones and a replica in every zone,
//! a node's storage is its share of its *zone's* sub-ring, which global
//! balancing leaves about 1.2x uneven; [`Balance::PerZone`] runs the same
//! greedy step on the joiner's zone only (its tokens against its
//! zone-mates'), bringing that to about 1.01x. [`Balance`] gives the
//! measured trade-off.
//!
//! **Concurrent joins.** Two nodes that join at the same time each compute
//! tokens from the ring before the other; gossip then carries both specs
//! and every node rebuilds the same ring (specs are sorted by id, and a
//! token claimed twice goes to the lower id). Nothing conflicts, and no key
//! is lost: together the two joiners own at least what one alone would.
//! Balance can suffer: a new token always takes the *start* of a range, so
//! two joiners aiming at the same range split one slice between them. To
//! make that rare, a range's score is its width scaled by `1 + j/1024`,
//! `j < 256` drawn from the joiner's id and the range's start, so joiners
//! prefer different ranges of the same node. On a tiny ring, where a joiner
//! must cut every range there is (one node, say), both cut the same ones
//! and the higher id may get as little as half its share: join nodes one
//! at a time when the ring is small.
//!
//! **Leaves.** A leaving node's ranges go to the owners of the next tokens
//! clockwise; nothing is re-allocated, so a leave moves exactly the leaver's
//! share, but the nodes that inherit may end above their share (the figures
//! show about 1.2x after one of 11 leaves). Leaving the last node that
//! joined undoes its join exactly: each slice returns to the node it came
//! from.
//!
//! # Preference lists
//!
//! A key's *preference order* lists every node once. Start at the entry
//! owning the key's hash and walk the tokens clockwise:
//!
//! 1. **Zones first.** Take each node whose zone has not been taken yet,
//!    until every zone has been taken once (or the walk has gone all the way
//!    round).
//! 2. **Then fill.** Walk again from the start, and take each node not yet
//!    taken, in the order met.
//!
//! `preference_list(key, n)` is the first `n` of this order: its replicas
//! span `min(n, zones)` distinct zones before any zone repeats, and with no
//! zones at all (one unnamed zone) it is the classic "first n distinct nodes
//! clockwise". [`Ring::successors`] yields the whole order lazily, so the
//! nodes after the first `n` are the fallbacks a sloppy quorum uses, in the
//! order it should try them.
//!
//! ## Speed
//!
//! A lookup is one binary search over the sorted token table and a short
//! walk; the result lives in a fixed array inside [`PreferenceList`]
//! (at most [`MAX_REPLICAS`] entries), so the hot path does not allocate.
//! The walk is long only when a zone is rare: to find its first node the
//! walk may pass most of the ring.
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
pub use diff::ReplicaChange;
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
    Balance, DEFAULT_VNODES_PER_WEIGHT, MAX_LOOKUP_BUCKETS, NewNode, NodeSpec, RING_FORMAT_VERSION,
    Ring, RingConfig, RingState,
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
