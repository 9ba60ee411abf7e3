//! Peer messages: what nodes send each other.
//!
//! Replica operations travel as kv-quorum's own typed messages, and the
//! Merkle exchange of anti-entropy as kv-merkle's (each carries its own
//! protocol version). Gossip travels as the bytes kv-gossip encodes, which
//! carry their own version and checksum, so this crate does not need to know
//! gossip's types.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

pub use kv_merkle::{DiffRequest, DiffResponse};
pub use kv_quorum::{ReplicaRequest, ReplicaResponse};

/// A request from one node to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerRequest {
    /// A coordinator's request to a replica (reads, writes, repairs, hints).
    Replica(ReplicaRequest),
    /// One encoded gossip message; answered with [`PeerResponse::GossipAck`].
    Gossip(Bytes),
    /// One step of a Merkle diff against the receiver's tree (anti-entropy);
    /// answered with [`PeerResponse::Merkle`].
    Merkle(DiffRequest),
}

/// A node's answer to a [`PeerRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerResponse {
    /// The replica's answer.
    Replica(ReplicaResponse),
    /// The gossip message was taken (not necessarily applied: gossip
    /// tolerates loss).
    GossipAck,
    /// The answer to one step of a Merkle diff.
    Merkle(DiffResponse),
    /// The request could not be handled at all (malformed, or the node is
    /// shutting down).
    Error(String),
}
