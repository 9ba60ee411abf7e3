//! The handshake: the first frame each way on every connection.
//!
//! ```text
//! opener                                   acceptor
//!   | -- Hello { magic, version, cluster, role, node } --> |
//!   | <-- HelloReply::Welcome { version, node }  --------- |  or
//!   | <-- HelloReply::Refused { reason }, then close ----- |
//! ```
//!
//! The acceptor refuses a peer whose magic, protocol version or cluster name
//! differs from its own, so that two clusters on one network, or two
//! incompatible releases, never exchange data by mistake.

use kv_types::NodeId;
use serde::{Deserialize, Serialize};

/// The protocol version this build speaks. Bumped on any incompatible change
/// to a message.
pub const PROTOCOL_VERSION: u16 = 1;

/// Magic bytes that open every `Hello`, so that a stray client of another
/// protocol is told apart from a peer of another version.
pub const MAGIC: [u8; 4] = *b"DKV\0";

/// Bound on a cluster name's length, in bytes.
pub const CLUSTER_NAME_LEN_MAX: usize = 128;

/// Who opens the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// An application client: sends client requests.
    Client,
    /// Another node: sends replica, gossip, hint and Merkle requests.
    Peer,
}

/// The opener's first frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Always [`MAGIC`].
    pub magic: [u8; 4],
    /// The opener's [`PROTOCOL_VERSION`].
    pub version: u16,
    /// The cluster the opener belongs to or wants to talk to.
    pub cluster: String,
    /// Client or peer.
    pub role: Role,
    /// The opener's node id, when it is a node.
    pub node: Option<NodeId>,
}

impl Hello {
    /// A hello from this build.
    pub fn new(cluster: &str, role: Role, node: Option<NodeId>) -> Self {
        Self {
            magic: MAGIC,
            version: PROTOCOL_VERSION,
            cluster: cluster.to_owned(),
            role,
            node,
        }
    }

    /// Checks this hello against the acceptor's cluster; `Err` holds the
    /// reason to send back.
    pub fn check(&self, cluster: &str) -> Result<(), String> {
        if self.magic != MAGIC {
            return Err("not a dynamo-kv client (bad magic)".to_owned());
        }
        if self.version != PROTOCOL_VERSION {
            return Err(format!(
                "protocol version {} is not supported; this node speaks {}",
                self.version, PROTOCOL_VERSION
            ));
        }
        if self.cluster.len() > CLUSTER_NAME_LEN_MAX {
            return Err(format!(
                "cluster name of {} bytes exceeds {CLUSTER_NAME_LEN_MAX}",
                self.cluster.len()
            ));
        }
        if self.cluster != cluster {
            return Err(format!(
                "cluster {:?} does not match this node's cluster {cluster:?}",
                self.cluster
            ));
        }
        Ok(())
    }
}

/// The acceptor's answer to a [`Hello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloReply {
    /// Accepted: messages may follow.
    Welcome {
        /// The acceptor's protocol version.
        version: u16,
        /// The acceptor's node id.
        node: NodeId,
    },
    /// Refused; the acceptor closes the connection after sending this.
    Refused {
        /// Why, for the opener's error message.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_checks() {
        let ok = Hello::new("prod", Role::Client, None);
        assert_eq!(ok.check("prod"), Ok(()));
        let err = ok.check("staging").unwrap_err();
        assert!(err.contains("staging"), "{err}");

        let mut old = ok.clone();
        old.version = PROTOCOL_VERSION + 1;
        assert!(old.check("prod").unwrap_err().contains("protocol version"));

        let mut alien = ok;
        alien.magic = *b"HTTP";
        assert!(alien.check("prod").unwrap_err().contains("magic"));
    }
}
