//! Peer messages: what nodes send each other.
//!
//! Replica operations travel as kv-quorum's own typed messages. Gossip
//! travels as the bytes kv-gossip encodes, which carry their own version and
//! checksum, so this crate does not need to know gossip's types.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

pub use kv_quorum::{ReplicaRequest, ReplicaResponse};

/// A request from one node to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerRequest {
    /// A coordinator's request to a replica (reads, writes, repairs, hints).
    Replica(ReplicaRequest),
    /// One encoded gossip message; answered with [`PeerResponse::GossipAck`].
    Gossip(Bytes),
}

/// A node's answer to a [`PeerRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerResponse {
    /// The replica's answer.
    Replica(ReplicaResponse),
    /// The gossip message was taken (not necessarily applied: gossip
    /// tolerates loss).
    GossipAck,
    /// The request could not be handled at all (malformed, or the node is
    /// shutting down).
    Error(String),
}
