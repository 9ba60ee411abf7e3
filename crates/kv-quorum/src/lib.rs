//! The coordinator: replication, quorums, version vectors, hinted handoff, read repair.
//!
//! Any node coordinates a request for any key: it takes the key's N home
//! replicas from a [`Placement`], sends the request to them in parallel
//! through a [`ReplicaTransport`], and answers once R (reads) or W (writes)
//! have, within a timeout measured by a [`Timer`]. Values carry dotted
//! version vectors ([`SiblingSet`]): concurrent writes are kept as siblings,
//! and a write that passes back the [`CausalContext`] of a read supersedes
//! what that read saw. In [`Mode::Strict`] only home replicas count; in
//! [`Mode::Sloppy`] healthy stand-ins take writes for dead home replicas
//! with a hint, replayed by [`HintReplayer`]. Reads ask R replicas (or all,
//! see [`ReadFanout`]) and repair the stale ones among them.
//!
//! The pure parts (versions in [`version`], quorum counting in [`quorum`],
//! the record format in [`record`]) are plain data apart from the async
//! coordinator.
//!
//! Architecture invariant: no network code and no async runtime here; the
//! transport, timer, placement and liveness are seams the node fills in.

mod config;
mod coordinator;
mod error;
mod in_process;
mod placement;
pub mod quorum;
pub mod record;
mod replica;
mod transport;
pub mod version;

pub use config::{
    Consistency, DEFAULT_MAX_SIBLINGS, DEFAULT_N, DEFAULT_R, DEFAULT_SPECULATE_AFTER,
    DEFAULT_STATE_BYTES_HARD_MAX, DEFAULT_STATE_BYTES_MAX, DEFAULT_TIMEOUT, DEFAULT_W, MAX_N, Mode,
    QuorumConfig, ReadFanout, ReadRepair, RequestOptions,
};
pub use coordinator::{
    CONTEXT_BYTES_MAX, CONTEXT_FORMAT_VERSION, CausalContext, Coordinator, DEFAULT_REPLAY_BATCH,
    GetReply, HintReplayer, PutReply, ReplayReport,
};
pub use error::{QuorumError, ReplicaFailure};
pub use in_process::{InProcessTransport, NoTimer};
pub use placement::{STATIC_RING_VNODES, StaticRing};
pub use replica::{
    DEFAULT_HINT_BYTES_MAX, DEFAULT_HINT_COUNT_MAX, HintLimits, HintStats, HintStore, LOCK_STRIPES,
    MergeStats, Replica,
};
pub use transport::{
    AllAlive, Liveness, Placement, ReplicaRequest, ReplicaResponse, ReplicaTransport, Timer,
    TransportError,
};
pub use version::{
    CONTEXT_DOTS_MAX, Dot, DotsExhausted, Sibling, SiblingSet, VersionVector, WriteContext,
};
