//! Incremental Merkle trees over key ranges, and a message-driven diff for anti-entropy.
//!
//! Replicas that missed writes for a long time must find exactly what
//! differs without shipping their whole data set. A replica keeps a
//! [`MerkleTree`] per key range it holds and compares it with the other
//! replicas of that range (kvnode today keeps one tree over all of its
//! keys):
//!
//! - every entry contributes an [`item_hash`] of its key and version
//!   metadata (BLAKE3), to the bucket [`TreeConfig::bucket_of`] its key
//!   hashes to;
//! - a bucket's digest is the XOR of its items' hashes and every inner node
//!   the XOR of its children, so [`MerkleTree::update`] is O(depth) with no
//!   rescan, the tree never depends on the order of updates, and
//!   [`MerkleTree::from_sorted`] rebuilds exactly the same tree for
//!   recovery (see [`tree`] for why XOR, and its limits);
//! - a diff is a pure state machine: a [`DiffInitiator`] sends
//!   [`DiffRequest`]s, the peer answers each with [`respond`], and the
//!   initiator ends with the exact [`KeyDiff`]s, level by level from the
//!   root, then key by key in the differing buckets. The tree holds no keys;
//!   the last stage reads them from a caller's [`LeafSource`].
//!   Every message is bounded by [`DiffLimits`] (see [`message`]);
//!   [`run_diff`] drives a whole diff over a synchronous exchange.
//!
//! The crate is pure and synchronous: no I/O, no async runtime, and it does
//! not know how its messages travel.
//!
//! # Example
//!
//! Two replicas of the same range, one of which missed a write:
//!
//! ```
//! use kv_merkle::{DiffInitiator, DiffKind, DiffLimits, MemReplica, Step, TreeConfig, respond};
//!
//! # fn main() -> Result<(), kv_merkle::MerkleError> {
//! let config = TreeConfig::default();
//! let (mut a, mut b) = (MemReplica::new(config), MemReplica::new(config));
//! for i in 0..1000u32 {
//!     let key = format!("user:{i}");
//!     a.put(key.as_bytes(), b"v1");
//!     b.put(key.as_bytes(), b"v1");
//! }
//! a.put(b"user:7", b"v2"); // B missed this write
//!
//! // A asks, B answers; any transport could carry these messages.
//! let limits = DiffLimits::default();
//! let (mut diff, mut request) = DiffInitiator::start(&a.tree, limits)?;
//! let outcome = loop {
//!     let response = respond(&b.tree, &b.keys, &limits, &request)?;
//!     match diff.on_response(&a.tree, &a.keys, response)? {
//!         Step::Send(next) => request = next,
//!         Step::Done(outcome) => break outcome,
//!     }
//! };
//! assert_eq!(outcome.differences.len(), 1);
//! assert_eq!(outcome.differences[0].key, b"user:7");
//! assert!(matches!(outcome.differences[0].kind, DiffKind::Different { .. }));
//! assert!(outcome.stats.round_trips <= u32::from(config.depth()) + 1);
//! # Ok(())
//! # }
//! ```

mod config;
mod diff;
mod digest;
mod error;
pub mod message;
mod source;
pub mod tree;

pub use config::{BUCKET_BITS_MAX, FAN_OUT_BITS_MAX, TreeConfig};
pub use diff::{DiffInitiator, DiffKind, DiffOutcome, DiffStats, KeyDiff, Step, respond, run_diff};
pub use digest::{DIGEST_LEN, Digest, item_hash, key_position};
pub use error::{MerkleError, SourceError};
pub use message::{
    BucketItems, DiffLimits, DiffRequest, DiffResponse, ITEM_OVERHEAD, Item, PROTOCOL_VERSION,
};
pub use source::{ItemIter, LeafSource, MemLeafSource, MemReplica, SourceItem};
pub use tree::{MerkleTree, TreeBuilder};
