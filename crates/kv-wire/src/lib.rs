//! The wire protocol: length-prefixed postcard frames, the handshake, and the
//! message types that clients and nodes exchange.
//!
//! A connection carries [frames](frame). The first frame each way is the
//! [handshake]; after it, every frame holds one [`Envelope`]: a
//! request id and a body. Ids let many requests be in flight on one
//! connection and their answers come back in any order.
//!
//! Architecture invariant: kv-wire describes bytes and types; it opens no
//! sockets and spawns no tasks. The node and the client own the I/O.
//!
//! The node-to-node messages (module `peer`) are behind the `peer` feature, off
//! by default: they carry kv-quorum's and kv-merkle's types, which a client
//! of the store has no use for.

pub mod client;
pub mod frame;
pub mod handshake;
#[cfg(feature = "peer")]
pub mod peer;

use serde::{Deserialize, Serialize};

pub use frame::{FRAME_LEN_MAX_DEFAULT, WireCodec, WireError};
pub use handshake::{
    BALANCE_NAME_LEN_MAX, CLUSTER_NAME_LEN_MAX, ClusterSettings, Hello, HelloReply,
    PROTOCOL_VERSION, Role,
};

/// One message on a connection after the handshake: a request id and a body.
///
/// A request and its answer carry the same id. Ids are chosen by the side
/// that sends the request and need only be unique among its requests in
/// flight on that connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// Matches an answer to its request.
    pub id: u64,
    /// The message.
    pub body: T,
}
