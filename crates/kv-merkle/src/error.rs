//! The crate's error type.

use crate::TreeConfig;

/// What a caller-supplied [`LeafSource`](crate::LeafSource) reports when it
/// cannot list a bucket (for instance, a storage read failed).
pub type SourceError = Box<dyn std::error::Error + Send + Sync>;

/// Everything that can go wrong in building a tree or running a diff.
///
/// Errors from a diff mean the peer or the source broke the protocol; the
/// diff should be abandoned and retried later, not patched up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MerkleError {
    /// A tree shape outside the limits.
    #[error("invalid tree shape: fan_out_bits {fan_out_bits}, depth {depth}: {reason}")]
    InvalidConfig {
        /// The requested log2 fan-out.
        fan_out_bits: u8,
        /// The requested depth.
        depth: u8,
        /// Which limit it breaks.
        reason: &'static str,
    },
    /// Diff limits too small for the tree shape.
    #[error("diff limit {limit} = {value} is too small, needs at least {needed}")]
    LimitTooSmall {
        /// The limit's name.
        limit: &'static str,
        /// Its value.
        value: u32,
        /// The least workable value.
        needed: u32,
    },
    /// Keys given out of order, or twice, where strictly increasing keys are
    /// required (the builder, or a source listing a bucket).
    #[error("keys out of order: {key:?} after {previous:?}")]
    KeysOutOfOrder {
        /// The key before.
        previous: Vec<u8>,
        /// The key that is not greater than it.
        key: Vec<u8>,
    },
    /// The peer speaks another diff protocol version.
    #[error("protocol version mismatch: ours {ours}, theirs {theirs}")]
    VersionMismatch {
        /// Our [`PROTOCOL_VERSION`](crate::PROTOCOL_VERSION).
        ours: u16,
        /// The peer's.
        theirs: u16,
    },
    /// The peer's tree has another shape.
    #[error("tree shape mismatch: ours {ours:?}, theirs {theirs:?}")]
    ConfigMismatch {
        /// Our shape.
        ours: TreeConfig,
        /// The peer's.
        theirs: TreeConfig,
    },
    /// A request names a level that has no children.
    #[error("level {level} has no children in a tree of depth {depth}")]
    LevelOutOfRange {
        /// The level asked for.
        level: u8,
        /// The tree's depth.
        depth: u8,
    },
    /// A request names a node or bucket that does not exist.
    #[error("node {index} out of range at level {level} ({nodes} nodes)")]
    NodeOutOfRange {
        /// The level.
        level: u8,
        /// The index asked for.
        index: u32,
        /// Nodes at that level.
        nodes: u32,
    },
    /// A request lists more nodes or buckets than the limits allow, or none.
    #[error("request lists {count} entries, allowed 1..={max}")]
    RequestSize {
        /// Entries listed.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A single item is larger than a whole response may be.
    #[error("item with a {key_len}-byte key exceeds the {max}-byte response limit")]
    ItemTooLarge {
        /// The key's length.
        key_len: usize,
        /// `item_bytes_per_message_max`.
        max: u32,
    },
    /// The response does not answer the request that was sent.
    #[error("unexpected response: expected {expected}, got {got}")]
    UnexpectedResponse {
        /// What the request called for.
        expected: &'static str,
        /// What came back.
        got: &'static str,
    },
    /// A response carries the wrong number of digests.
    #[error("response carries {got} digests, expected {expected}")]
    WrongDigestCount {
        /// Children of the nodes asked for.
        expected: usize,
        /// Digests received.
        got: usize,
    },
    /// A response lists buckets that were not asked for, or out of turn.
    #[error("response lists bucket {got}, expected {expected:?}")]
    UnexpectedBucket {
        /// The bucket expected at this place, if any.
        expected: Option<u32>,
        /// The bucket listed.
        got: u32,
    },
    /// A complete (not truncated) items response that leaves out buckets.
    #[error("items response lists {listed} of {asked} buckets without being truncated")]
    MissingBuckets {
        /// Buckets asked for.
        asked: usize,
        /// Buckets listed.
        listed: usize,
    },
    /// A listed key does not belong to the bucket it is listed under.
    #[error("key {key:?} listed under bucket {listed}, belongs to bucket {actual}")]
    WrongBucket {
        /// The key.
        key: Vec<u8>,
        /// The bucket it was listed under.
        listed: u32,
        /// The bucket the bucket function gives.
        actual: u32,
    },
    /// A truncated items response that lists no item, which would loop.
    #[error("truncated items response without any item")]
    NoProgress,
    /// The diff needed more round trips than allowed.
    #[error("diff exceeded {max} round trips")]
    TooManyRoundTrips {
        /// `round_trips_max`.
        max: u32,
    },
    /// [`DiffInitiator::on_response`](crate::DiffInitiator::on_response)
    /// called after the diff finished.
    #[error("the diff has already finished")]
    Finished,
    /// The leaf source failed to list a bucket.
    #[error("leaf source failed on bucket {bucket}")]
    Source {
        /// The bucket being listed.
        bucket: u32,
        /// The source's error.
        #[source]
        source: SourceError,
    },
}
