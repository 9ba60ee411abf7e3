//! Errors of the quorum layer: what a coordinator answers and why.

use kv_types::{NodeId, StorageError};
use serde::{Deserialize, Serialize};

use crate::record::RecordError;

/// Why a coordinated request did not succeed.
///
/// A failed write either guarantees that nothing was written, or says the
/// write may have been applied somewhere and may still become visible
/// (through replication, read repair, hint replay or anti-entropy), so the
/// client must not assume it failed. [`nothing_written`] tells them apart.
///
/// Guarantee nothing was written: [`Unavailable`] (sent nowhere, or every
/// issuer refused before storing), [`TooManySiblings`], [`StateTooLarge`]
/// (the issuer refused before storing), [`InvalidConsistency`],
/// [`InvalidConfig`], [`InvalidContext`] (checked before anything is sent).
///
/// May have been applied: [`Indeterminate`], [`Timeout`],
/// [`HintStoreFull`] (the issuer had already stored the write; only the
/// hint a stand-in should keep was refused), [`Replica`], [`Protocol`] and
/// [`Storage`] (a replica's failure says nothing of the others). A node
/// must report these as "outcome unknown", never as "unavailable".
///
/// [`nothing_written`]: QuorumError::nothing_written
/// [`Unavailable`]: QuorumError::Unavailable
/// [`TooManySiblings`]: QuorumError::TooManySiblings
/// [`StateTooLarge`]: QuorumError::StateTooLarge
/// [`InvalidConsistency`]: QuorumError::InvalidConsistency
/// [`InvalidConfig`]: QuorumError::InvalidConfig
/// [`InvalidContext`]: QuorumError::InvalidContext
/// [`Indeterminate`]: QuorumError::Indeterminate
/// [`Timeout`]: QuorumError::Timeout
/// [`HintStoreFull`]: QuorumError::HintStoreFull
/// [`Replica`]: QuorumError::Replica
/// [`Protocol`]: QuorumError::Protocol
/// [`Storage`]: QuorumError::Storage
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuorumError {
    /// Fewer replicas are reachable than the request needs; nothing was
    /// written.
    #[error("unavailable: {required} replicas required, {alive} reachable")]
    Unavailable {
        /// Replicas the request needed.
        required: usize,
        /// Replicas that could be used.
        alive: usize,
    },
    /// Every replica answered but fewer than W acknowledged the write; it
    /// reached `acked` of them and may still become visible.
    #[error("write indeterminate: {acked} of {required} required acknowledgements")]
    Indeterminate {
        /// Replicas that stored the write.
        acked: usize,
        /// Acknowledgements required.
        required: usize,
    },
    /// The timeout passed before enough replicas answered. For a write, the
    /// write may still become visible.
    #[error("timed out with {acked} of {required} required answers")]
    Timeout {
        /// Replicas that answered successfully in time.
        acked: usize,
        /// Answers required.
        required: usize,
    },
    /// The write would leave more concurrent siblings than allowed; nothing
    /// was written. Read the key and write back with its context to
    /// resolve them.
    #[error("key would hold {count} siblings, more than the limit of {max}")]
    TooManySiblings {
        /// Siblings the write would have left.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The write would leave the key's state larger than allowed; nothing
    /// was written. Write a smaller value, or read the key and write back
    /// with its context to supersede siblings.
    #[error(
        "key's state would take {bytes} bytes, more than the limit of {max}; nothing was written"
    )]
    StateTooLarge {
        /// Bytes the state would have taken.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// A per-request consistency level asks for 0 or more than N replicas.
    #[error("consistency asks for {requested} replicas, but it must be between 1 and n = {n}")]
    InvalidConsistency {
        /// Replicas asked for.
        requested: usize,
        /// The replication factor.
        n: usize,
    },
    /// The cluster configuration is inconsistent.
    #[error("invalid quorum configuration: {detail}")]
    InvalidConfig {
        /// What is wrong.
        detail: String,
    },
    /// A causal context given back by a client does not decode.
    #[error("invalid causal context: {detail}")]
    InvalidContext {
        /// What is wrong.
        detail: String,
    },
    /// A stand-in node's hint store is full, so a sloppy write fell short of
    /// W. The write WAS stored by its issuer and reached `acked` replicas in
    /// all: it may still become visible, so this is "maybe applied", not
    /// "unavailable".
    #[error(
        "hint store of node {node} is full; write reached {acked} of {required} replicas and may still become visible"
    )]
    HintStoreFull {
        /// The node whose hint store refused.
        node: NodeId,
        /// Replicas that stored the write.
        acked: usize,
        /// Acknowledgements required.
        required: usize,
    },
    /// A replica failed the request for a reason of its own.
    #[error("replica {node} failed: {failure}")]
    Replica {
        /// The replica.
        node: NodeId,
        /// What it reported.
        failure: ReplicaFailure,
    },
    /// A replica answered with a response that does not fit the request.
    #[error("replica {node} answered a {request} request with the wrong response")]
    Protocol {
        /// The replica.
        node: NodeId,
        /// The request kind.
        request: &'static str,
    },
    /// The local storage (e.g. the hint store) failed.
    #[error("local storage failed: {detail}")]
    Storage {
        /// The storage error, as text so this enum stays `Clone`.
        detail: String,
    },
}

impl QuorumError {
    /// Whether this error guarantees that the request wrote nothing
    /// anywhere, so a client may report a plain failure. `false` means the
    /// write may have been applied (see the type doc).
    pub fn nothing_written(&self) -> bool {
        matches!(
            self,
            QuorumError::Unavailable { .. }
                | QuorumError::TooManySiblings { .. }
                | QuorumError::StateTooLarge { .. }
                | QuorumError::InvalidConsistency { .. }
                | QuorumError::InvalidConfig { .. }
                | QuorumError::InvalidContext { .. }
        )
    }
}

/// A replica's own reason for refusing a request; carried on the wire.
///
/// Every variant answering a `Write` means this replica stored nothing for
/// it; `HintStoreFull` answering `ReplicateHinted` means no hint was kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicaFailure {
    /// The write would exceed the sibling bound.
    #[error("{count} siblings exceed the limit of {max}")]
    TooManySiblings {
        /// Siblings the write would have left.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The write would exceed the byte bound of a key's state.
    #[error("state of {bytes} bytes exceeds the limit of {max}")]
    StateTooLarge {
        /// Bytes the state would have taken.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// The replica's actor has issued every dot it can for the key; the
    /// node must give the replica a fresh actor.
    #[error("actor {actor} has no dot left for this key")]
    DotsExhausted {
        /// The exhausted actor.
        actor: NodeId,
    },
    /// The hint store is at its count or byte bound.
    #[error("hint store full: {count}/{count_max} hints, {bytes}/{bytes_max} bytes")]
    HintStoreFull {
        /// Hints held.
        count: usize,
        /// Bound on hints.
        count_max: usize,
        /// Bytes held.
        bytes: usize,
        /// Bound on bytes.
        bytes_max: usize,
    },
    /// The replica's storage failed.
    #[error("storage: {detail}")]
    Storage {
        /// The storage error, as text.
        detail: String,
    },
    /// The replica found a stored record it cannot trust.
    #[error("corrupt record: {detail}")]
    Corrupt {
        /// The decode error, as text.
        detail: String,
    },
}

impl From<StorageError> for ReplicaFailure {
    fn from(e: StorageError) -> Self {
        ReplicaFailure::Storage {
            detail: e.to_string(),
        }
    }
}

impl From<RecordError> for ReplicaFailure {
    fn from(e: RecordError) -> Self {
        ReplicaFailure::Corrupt {
            detail: e.to_string(),
        }
    }
}

impl From<StorageError> for QuorumError {
    fn from(e: StorageError) -> Self {
        QuorumError::Storage {
            detail: e.to_string(),
        }
    }
}
