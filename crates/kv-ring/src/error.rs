//! The ring's error type.

use kv_types::NodeId;

use crate::Token;

/// What can go wrong when building or changing a ring.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RingError {
    /// A node with this id is already on the ring.
    #[error("node {node} is already on the ring")]
    DuplicateNode {
        /// The node named twice.
        node: NodeId,
    },
    /// No node with this id is on the ring.
    #[error("node {node} is not on the ring")]
    UnknownNode {
        /// The node asked for.
        node: NodeId,
    },
    /// A node's weight is zero.
    #[error("node {node} has weight 0; weights start at 1")]
    ZeroWeight {
        /// The node.
        node: NodeId,
    },
    /// A node's weight is above [`crate::MAX_WEIGHT`].
    #[error("node {node} has weight {weight}, above the limit {max}")]
    WeightTooLarge {
        /// The node.
        node: NodeId,
        /// The weight given.
        weight: u32,
        /// The limit.
        max: u32,
    },
    /// A node has no tokens.
    #[error("node {node} has no tokens")]
    NoTokens {
        /// The node.
        node: NodeId,
    },
    /// A node has more tokens than [`crate::MAX_TOKENS_PER_NODE`].
    #[error("node {node} would have {tokens} tokens, above the limit {max}")]
    TooManyTokens {
        /// The node.
        node: NodeId,
        /// How many tokens it has or would get.
        tokens: usize,
        /// The limit.
        max: usize,
    },
    /// A node lists the same token twice.
    #[error("node {node} lists token {token} twice")]
    DuplicateToken {
        /// The node.
        node: NodeId,
        /// The repeated token.
        token: Token,
    },
    /// The ring would hold more than [`crate::MAX_NODES`] nodes.
    #[error("the ring would hold {nodes} nodes, above the limit {max}")]
    TooManyNodes {
        /// How many nodes it would hold.
        nodes: usize,
        /// The limit.
        max: usize,
    },
    /// A zone label is longer than [`crate::MAX_ZONE_LEN`] bytes.
    #[error("node {node} has a zone label of {len} bytes, above the limit {max}")]
    ZoneTooLong {
        /// The node.
        node: NodeId,
        /// The label's length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A preference list longer than [`crate::MAX_REPLICAS`] was asked for.
    #[error("asked for {n} replicas, above the limit {max}")]
    TooManyReplicas {
        /// How many were asked for.
        n: usize,
        /// The limit.
        max: usize,
    },
    /// The configured vnodes per unit of weight is 0 or above
    /// [`crate::MAX_TOKENS_PER_NODE`].
    #[error("vnodes per weight unit is {vnodes}; it must be 1 to {max}")]
    BadVnodeCount {
        /// The value given.
        vnodes: u32,
        /// The limit.
        max: u32,
    },
    /// A serialized ring carries a format version this code does not read.
    #[error("ring format version {found} is not supported (this code reads {supported})")]
    UnsupportedVersion {
        /// The version found.
        found: u32,
        /// The version this code reads and writes.
        supported: u32,
    },
}
