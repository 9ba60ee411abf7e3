//! Client messages: what an application sends to any node, and the answers.
//!
//! A client never names replicas: the node it talks to coordinates. Reads
//! return every concurrent sibling with an opaque causal context; a write
//! that passes the context back supersedes what the reader saw.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use kv_types::NodeId;

/// How many replicas must answer, per request. `None` in a request means the
/// cluster's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Consistency {
    /// One replica.
    One,
    /// A majority of the N replicas.
    Quorum,
    /// All N replicas.
    All,
    /// An explicit count, between 1 and N.
    Count(u8),
}

/// A client's request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Read a key.
    Get {
        /// The key.
        key: Bytes,
        /// Replicas that must answer; `None` for the cluster default R.
        consistency: Option<Consistency>,
    },
    /// Write a value.
    Put {
        /// The key.
        key: Bytes,
        /// The value.
        value: Bytes,
        /// The context of the read this write follows, if any.
        context: Option<Bytes>,
        /// Replicas that must acknowledge; `None` for the default W.
        consistency: Option<Consistency>,
    },
    /// Delete a key (writes a tombstone).
    Delete {
        /// The key.
        key: Bytes,
        /// The context of the read this delete follows, if any.
        context: Option<Bytes>,
        /// Replicas that must acknowledge; `None` for the default W.
        consistency: Option<Consistency>,
    },
    /// Cluster membership and ring shares, as this node sees them.
    Status,
    /// Diagnostic: a digest of the key's local state on each of its N home
    /// replicas, asked directly and without read repair, so a test can tell
    /// whether the replicas have converged. Answered with
    /// [`Response::ReplicaDigests`]. It costs one replica read per home
    /// replica and is not meant for applications.
    ReplicaDigests {
        /// The key.
        key: Bytes,
    },
}

/// A node's answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The key's value, or its concurrent siblings.
    Value {
        /// One value, or several concurrent ones.
        siblings: Vec<Bytes>,
        /// Pass this back with the next write of the key.
        context: Bytes,
        /// Siblings left out because all of them would not fit a frame;
        /// usually 0. The context covers only the siblings returned: a
        /// write with it supersedes them and keeps the others, which the
        /// next read returns.
        omitted: u32,
    },
    /// The key holds nothing (or only deletes).
    NotFound {
        /// Pass this back with the next write of the key.
        context: Bytes,
    },
    /// The write was acknowledged by enough replicas.
    Written {
        /// The context of the state the write produced; passing it with the
        /// next write of the key supersedes this one.
        context: Bytes,
    },
    /// Membership and ring shares.
    Status(StatusReply),
    /// The answer to [`Request::ReplicaDigests`]: one entry per home
    /// replica, in preference order.
    ReplicaDigests(Vec<ReplicaDigest>),
    /// The request failed.
    Error(ErrorReply),
}

/// What went wrong, as a code a program can match and a message a person can
/// read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    /// The kind of failure.
    pub code: ErrorCode,
    /// A sentence for people.
    pub message: String,
}

/// Kinds of failure a client can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ErrorCode {
    /// Too few replicas are reachable; nothing was written.
    Unavailable,
    /// The write reached some replicas but not enough; it may still become
    /// visible. Retry with the same context, or read to find out.
    Indeterminate,
    /// Replicas did not answer in time.
    Timeout,
    /// The request is invalid (bad consistency, oversized key or value).
    InvalidRequest,
    /// The key has more concurrent siblings, or more bytes of them, than
    /// the bound; nothing was written. Read and resolve.
    TooManySiblings,
    /// The node is overloaded or shutting down; retry elsewhere. Not sent
    /// by this version.
    Overloaded,
    /// Storage failed on the coordinator or a replica. A write may have
    /// been applied.
    Storage,
    /// Anything else. A write may have been applied.
    Internal,
}

/// One home replica's local state of a key, as a digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaDigest {
    /// The replica.
    pub node: NodeId,
    /// BLAKE3 of the replica's state of the key (its version vector and
    /// siblings, postcard-encoded); equal digests mean equal states. `None`
    /// when the replica could not be asked.
    pub digest: Option<[u8; 32]>,
    /// Why the replica could not be asked, when it could not.
    pub error: Option<String>,
}

/// Membership and ring shares as one node sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct StatusReply {
    /// The node that answered.
    pub node: Option<NodeId>,
    /// The cluster's name.
    pub cluster: String,
    /// Replication settings: N, R, W.
    pub n: u8,
    /// Default read quorum.
    pub r: u8,
    /// Default write quorum.
    pub w: u8,
    /// "strict" or "sloppy".
    pub mode: String,
    /// Every member this node knows.
    pub members: Vec<MemberStatus>,
    /// Hints this node holds for home replicas that were down.
    pub hints_pending: u64,
    /// Hints this node refused because its hint store was full, since start.
    pub hints_rejected_total: u64,
    /// Hints this node handed back to their owners, since start.
    pub hints_delivered_total: u64,
    /// Keys in this node's Merkle index (all the keys it stores, while
    /// anti-entropy is on).
    pub merkle_keys: u64,
}

/// One member, as the answering node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberStatus {
    /// Its id.
    pub node: NodeId,
    /// Where clients reach it.
    pub client_addr: String,
    /// Its zone, if any.
    pub zone: Option<String>,
    /// Its capacity weight.
    pub weight: u32,
    /// "alive", "suspect", "down", ...
    pub state: String,
    /// Its share of the ring's hash space, in parts per million.
    pub ring_share_ppm: u32,
    /// What it runs with, as it gossips it (kvnode: N, R, W, mode and
    /// durability); empty until its metadata arrives.
    pub settings: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Envelope;
    use proptest::prelude::*;

    fn bytes() -> impl Strategy<Value = Bytes> {
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from)
    }

    fn consistency() -> impl Strategy<Value = Option<Consistency>> {
        prop_oneof![
            Just(None),
            Just(Some(Consistency::One)),
            Just(Some(Consistency::Quorum)),
            Just(Some(Consistency::All)),
            any::<u8>().prop_map(|n| Some(Consistency::Count(n))),
        ]
    }

    fn request() -> impl Strategy<Value = Request> {
        prop_oneof![
            (bytes(), consistency())
                .prop_map(|(key, consistency)| Request::Get { key, consistency }),
            (
                bytes(),
                bytes(),
                proptest::option::of(bytes()),
                consistency()
            )
                .prop_map(|(key, value, context, consistency)| Request::Put {
                    key,
                    value,
                    context,
                    consistency
                }),
            (bytes(), proptest::option::of(bytes()), consistency()).prop_map(
                |(key, context, consistency)| Request::Delete {
                    key,
                    context,
                    consistency
                }
            ),
            Just(Request::Status),
            bytes().prop_map(|key| Request::ReplicaDigests { key }),
        ]
    }

    proptest! {
        #[test]
        fn requests_round_trip(id: u64, body in request()) {
            let env = Envelope { id, body };
            let bytes = postcard::to_stdvec(&env).unwrap();
            let back: Envelope<Request> = postcard::from_bytes(&bytes).unwrap();
            prop_assert_eq!(back, env);
        }

        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
            // Either a valid message or an error; never a panic.
            let _ = postcard::from_bytes::<Envelope<Request>>(&data);
        }
    }
}
