//! The seams to the outside: replica messages, the transport that carries
//! them, the timer, placement on the ring and liveness.
//!
//! kv-quorum has no network code and no async runtime. The node implements
//! these traits (TCP through kv-wire, a tokio timer, adapters over kv-ring
//! and kv-gossip); tests and benchmarks implement them in memory.

use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use kv_types::NodeId;
use serde::{Deserialize, Serialize};

use crate::error::ReplicaFailure;
use crate::version::{Dot, SiblingSet, WriteContext};

/// A request from a coordinator to one replica. Serde-serializable: the wire
/// crate carries it inside its frames.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplicaRequest {
    /// Read the key's state. Answered with [`ReplicaResponse::Found`].
    Get {
        /// The key.
        key: Bytes,
    },
    /// Apply a client write and issue its dot under this replica's actor
    /// (see [`Replica::with_actor`](crate::Replica::with_actor)): the first
    /// phase of every put. The context is clamped to the replica's own
    /// clock (see [`SiblingSet::update`]); a write that would exceed
    /// `max_siblings` or `state_bytes_max` is refused before anything is
    /// stored. Answered with
    /// [`ReplicaResponse::Written`] carrying the resulting state, which the
    /// coordinator then replicates.
    Write {
        /// The key.
        key: Bytes,
        /// What the write supersedes: the context the client read (empty
        /// for a blind write).
        context: WriteContext,
        /// The value, or `None` for a delete.
        value: Option<Bytes>,
        /// Refuse if the result would hold more siblings than this.
        max_siblings: u32,
        /// Refuse if the result would take more bytes than this, as
        /// measured by [`SiblingSet::size_bytes`].
        state_bytes_max: u32,
    },
    /// Merge a state into the replica's own: the second phase of a put, read
    /// repair, and hint delivery. Answered with [`ReplicaResponse::Ack`].
    Replicate {
        /// The key.
        key: Bytes,
        /// The state to merge.
        set: SiblingSet,
    },
    /// Keep a state as a hint for a home replica that is down (sloppy
    /// quorum). Answered with [`ReplicaResponse::Ack`] once the hint is in
    /// the hint store (handed to the kernel, and fsynced as the node's
    /// durability mode says), or [`ReplicaFailure::HintStoreFull`].
    ReplicateHinted {
        /// The key.
        key: Bytes,
        /// The state to keep.
        set: SiblingSet,
        /// The home replica the state is meant for.
        intended_owner: NodeId,
    },
}

impl ReplicaRequest {
    /// A short name of the request kind, for errors and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ReplicaRequest::Get { .. } => "get",
            ReplicaRequest::Write { .. } => "write",
            ReplicaRequest::Replicate { .. } => "replicate",
            ReplicaRequest::ReplicateHinted { .. } => "replicate-hinted",
        }
    }
}

/// A replica's answer. Serde-serializable like the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplicaResponse {
    /// The key's state; empty when the replica holds nothing for it.
    Found {
        /// The state.
        set: SiblingSet,
    },
    /// The state after a [`ReplicaRequest::Write`].
    Written {
        /// The state, including the new write.
        set: SiblingSet,
        /// The new write's dot.
        dot: Dot,
    },
    /// The state was merged or the hint stored.
    Ack,
    /// The replica refused the request.
    Failed(ReplicaFailure),
}

/// Why a message could not be exchanged with a replica.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The request was not sent (no connection); it cannot have taken
    /// effect.
    #[error("node {node} is unreachable")]
    Unreachable {
        /// The node.
        node: NodeId,
    },
    /// The request may have been delivered but no answer came back (the
    /// connection broke); it may have taken effect.
    #[error("exchange with node {node} was lost: {detail}")]
    Lost {
        /// The node.
        node: NodeId,
        /// What happened.
        detail: String,
    },
}

/// Carries [`ReplicaRequest`]s to replicas, the local one included.
///
/// Contract: `call` starts delivery before it returns; dropping the returned
/// future abandons only the answer, never the request. The coordinator
/// relies on this to answer once W replicas acknowledged while the rest of
/// the N writes (and asynchronous read repairs) still go out. A tokio
/// implementation spawns the exchange and returns the receiving end of a
/// oneshot; calls to the local node should short-circuit to the local
/// [`Replica`](crate::Replica) without serialization.
pub trait ReplicaTransport: Send + Sync {
    /// Sends `req` to `to` and resolves with its answer.
    fn call(
        &self,
        to: NodeId,
        req: ReplicaRequest,
    ) -> BoxFuture<'static, Result<ReplicaResponse, TransportError>>;
}

/// Time, for timeouts, without tying this crate to a runtime.
pub trait Timer: Send + Sync {
    /// A future that resolves once `duration` has passed.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

/// Where keys live: the ring, as the coordinator needs it.
///
/// The node adapts kv-ring to this; [`StaticRing`](crate::StaticRing) is a
/// simple implementation for tests. Object safe.
pub trait Placement: Send + Sync {
    /// The key's home replicas: up to `n` distinct nodes, in preference
    /// order. Fewer only when the cluster has fewer nodes.
    fn preference_list(&self, key: &[u8], n: usize) -> Vec<NodeId>;

    /// The nodes after the first `n` home replicas, in ring order, distinct
    /// and excluding the home replicas: stand-ins for sloppy quorums.
    fn fallbacks(&self, key: &[u8], n: usize) -> Box<dyn Iterator<Item = NodeId> + '_>;
}

/// Which nodes are believed alive; gossip's failure detector implements it.
pub trait Liveness: Send + Sync {
    /// Whether `node` is believed alive now.
    fn is_alive(&self, node: NodeId) -> bool;
}

/// A [`Liveness`] that believes every node alive.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllAlive;

impl Liveness for AllAlive {
    fn is_alive(&self, _node: NodeId) -> bool {
        true
    }
}
