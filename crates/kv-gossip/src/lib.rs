//! Gossip membership and failure detection.
//!
//! No node depends on a central one to learn who is alive. Each node keeps a
//! membership list ([`Member`]: id, addresses, zone, weight, ring tokens,
//! declared [`Status`], heartbeat and generation) and every interval bumps
//! its own heartbeat and exchanges state with a few random peers, digest
//! first and then only the newer entries (see [`message`]). The higher
//! [`Version`] (generation, heartbeat) wins a merge, so a restarted node,
//! which bumps its generation, is never mistaken for its old self. Seeds
//! (addresses) bootstrap a new node.
//!
//! Failure detection reads heartbeats that stop advancing ([`Detector`]):
//! a stalled member is suspected, then marked down, and comes back up when
//! its heartbeat moves again. A node never judges itself.
//!
//! The protocol is sans-IO: [`Gossiper`] reads time from a
//! [`kv_types::Clock`], sends through a small [`Transport`] trait and draws
//! from a seeded RNG, so [`sim`] runs whole clusters on virtual time and
//! replays any run from its seed.
//!
//! # Driving it
//!
//! The node calls `tick` every `interval`, `handle` for every message that
//! arrives, and drains events; its transport hands encoded messages to the
//! network task through a bounded queue and drops them when it is full.
//!
//! ```
//! use std::sync::{Arc, mpsc};
//!
//! use kv_gossip::{Event, GossipConfig, GossipMessage, Gossiper, Status, Transport};
//! use kv_types::{MonotonicClock, NodeId};
//!
//! struct Outbox(mpsc::SyncSender<(String, Vec<u8>)>);
//!
//! impl Transport for Outbox {
//!     fn send(&self, to: &str, msg: GossipMessage) {
//!         // Fire and forget: a full queue or an unencodable message is a
//!         // lost message, which gossip tolerates.
//!         if let Ok(bytes) = msg.encode() {
//!             let _ = self.0.try_send((to.to_owned(), bytes));
//!         }
//!     }
//! }
//!
//! let (tx, rx) = mpsc::sync_channel(64);
//! let mut cfg = GossipConfig::new(NodeId(1), 1, "127.0.0.1:7001");
//! cfg.client_addr = "127.0.0.1:8001".into();
//! cfg.seeds = vec!["127.0.0.1:7002".into()];
//! cfg.tokens = vec![42, 4242];
//! let mut g = Gossiper::new(cfg, Arc::new(MonotonicClock::new()), Outbox(tx))?;
//! g.set_status(Status::Normal);
//! g.tick();
//! let (to, bytes) = rx.try_recv().expect("a Syn to the seed");
//! assert_eq!(to, "127.0.0.1:7002");
//! // The seed would now call `handle(GossipMessage::decode(&bytes)?)`.
//! assert_eq!(GossipMessage::decode(&bytes)?.from, NodeId(1));
//! for event in g.drain_events() {
//!     if let Event::Down { id } = event {
//!         println!("{id} is down");
//!     }
//! }
//! # Ok::<(), kv_gossip::GossipError>(())
//! ```
//!
//! # Limits
//!
//! [`MAX_MESSAGE_BYTES`] per message, [`MAX_TOKENS`] per member, bounded
//! digests and updates per message, peers per round ([`MAX_FANOUT`]),
//! members known and queued events; see [`GossipConfig`].
//!
//! # Measured (`cargo xtask bench gossip`)
//!
//! See ARCHITECTURE.md for the figures and for why phi accrual is the
//! default detector.
//!
//! Architecture invariant: this crate never opens a socket nor reads the
//! wall clock; it does not depend on tokio.

mod detector;
mod gossiper;
mod member;
pub mod message;
pub mod sim;

pub use detector::{Detector, MAX_ARRIVAL_WINDOW};
pub use gossiper::{
    DEFAULT_MAX_DIGESTS, DEFAULT_MAX_EVENTS, DEFAULT_MAX_MEMBERS, DEFAULT_MAX_UPDATES, Event,
    GossipConfig, Gossiper, MAX_ADDR_LEN, MAX_FANOUT, MAX_SEEDS, MAX_SETTINGS_LEN, MAX_TOKENS,
    MAX_ZONE_LEN, Stats, Transport, default_detector,
};
pub use member::{Liveness, Member, MemberMeta, MemberState, Status, Version};
pub use message::{GossipMessage, MAX_MESSAGE_BYTES, PeerAddr};

use kv_types::NodeId;

/// What can go wrong in gossip.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GossipError {
    /// A message is larger than allowed.
    #[error("gossip message of {len} bytes exceeds the limit of {max}")]
    MessageTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A message is too short to hold a version and a checksum.
    #[error("gossip message of {len} bytes is truncated")]
    Truncated {
        /// Its length.
        len: usize,
    },
    /// A message's checksum does not match its bytes.
    #[error("gossip message checksum mismatch: got {got:#010x}, expected {expected:#010x}")]
    ChecksumMismatch {
        /// The checksum carried.
        got: u32,
        /// The checksum computed.
        expected: u32,
    },
    /// A message has a wire version this code does not speak.
    #[error("gossip wire version {got} unsupported (expected {expected})")]
    UnsupportedVersion {
        /// The version carried.
        got: u8,
        /// The version spoken.
        expected: u8,
    },
    /// A message's body does not parse.
    #[error("gossip message does not decode: {reason}")]
    Decode {
        /// The parser's complaint.
        reason: String,
    },
    /// A message could not be encoded.
    #[error("gossip message does not encode: {reason}")]
    Encode {
        /// The serializer's complaint.
        reason: String,
    },
    /// A member would carry more ring tokens than allowed.
    #[error("{count} ring tokens exceed the limit of {max}")]
    TooManyTokens {
        /// Tokens given.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A string field is longer than allowed.
    #[error("{field} of {len} bytes exceeds the limit of {max}")]
    FieldTooLong {
        /// The field.
        field: String,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A configuration field is out of range.
    #[error("invalid gossip config {field}: {reason}")]
    InvalidConfig {
        /// The field.
        field: String,
        /// Why.
        reason: String,
    },
    /// The member is not known (or is this node).
    #[error("member {id} is not known")]
    UnknownMember {
        /// The member.
        id: NodeId,
    },
    /// The member is not down, so it may not be removed.
    #[error("member {id} is not down")]
    NotDown {
        /// The member.
        id: NodeId,
    },
}
