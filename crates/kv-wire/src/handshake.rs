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
//! incompatible releases, never exchange data by mistake. A node also
//! refuses a peer that runs with other [`ClusterSettings`] (another N, another
//! ring configuration): the two would place and count replicas differently.

use kv_types::NodeId;
use serde::{Deserialize, Serialize};

/// The protocol version this build speaks. Bumped on any incompatible change
/// to a message.
///
/// 2: `Hello` carries the opener's [`ClusterSettings`].
/// 3: a read's `Response::Value` says how many siblings it left out.
/// 4: every frame carries a CRC-32 of its payload (see [`crate::frame`]); a
/// peer of an older version then fails on its first frame with a checksum
/// or framing error rather than a version mismatch.
pub const PROTOCOL_VERSION: u16 = 4;

/// Magic bytes that open every `Hello`, so that a stray client of another
/// protocol is told apart from a peer of another version.
pub const MAGIC: [u8; 4] = *b"DKV\0";

/// Bound on a cluster name's length, in bytes.
pub const CLUSTER_NAME_LEN_MAX: usize = 128;

/// Bound on [`ClusterSettings::balance`]'s length, in bytes.
pub const BALANCE_NAME_LEN_MAX: usize = 32;

/// The settings every node of a cluster must share, because they decide
/// where a key's replicas are and how many there are: N and the ring's
/// configuration. A node refuses a peer whose settings differ, naming both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSettings {
    /// N: replicas per key.
    pub replicas: u8,
    /// Ring tokens per unit of weight.
    pub vnodes_per_weight: u32,
    /// What the ring's token allocation balances, as kv-ring names it.
    pub balance: String,
}

impl std::fmt::Display for ClusterSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "N={}, {} vnodes per weight, {} balance",
            self.replicas, self.vnodes_per_weight, self.balance
        )
    }
}

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
    /// The opener's cluster settings, when it is a node.
    pub settings: Option<ClusterSettings>,
}

impl Hello {
    /// A client's hello from this build.
    pub fn client(cluster: &str) -> Self {
        Self {
            magic: MAGIC,
            version: PROTOCOL_VERSION,
            cluster: cluster.to_owned(),
            role: Role::Client,
            node: None,
            settings: None,
        }
    }

    /// A node's hello from this build.
    pub fn peer(cluster: &str, node: NodeId, settings: ClusterSettings) -> Self {
        Self {
            role: Role::Peer,
            node: Some(node),
            settings: Some(settings),
            ..Self::client(cluster)
        }
    }

    /// Checks this hello against the acceptor's cluster and settings; `Err`
    /// holds the reason to send back.
    pub fn check(&self, cluster: &str, settings: &ClusterSettings) -> Result<(), String> {
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
        if self.role == Role::Peer {
            match &self.settings {
                None => return Err("a peer must state its cluster settings".to_owned()),
                Some(theirs) if theirs.balance.len() > BALANCE_NAME_LEN_MAX => {
                    return Err(format!(
                        "ring balance name of {} bytes exceeds {BALANCE_NAME_LEN_MAX}",
                        theirs.balance.len()
                    ));
                }
                Some(theirs) if theirs != settings => {
                    return Err(format!(
                        "cluster settings differ: this node runs with {settings}, \
                         the connecting node with {theirs}; N and the ring \
                         configuration must be the same on every node"
                    ));
                }
                Some(_) => {}
            }
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

    fn settings(replicas: u8) -> ClusterSettings {
        ClusterSettings {
            replicas,
            vnodes_per_weight: 64,
            balance: "global".to_owned(),
        }
    }

    #[test]
    fn hello_checks() {
        let ok = Hello::client("prod");
        assert_eq!(ok.check("prod", &settings(3)), Ok(()));
        let err = ok.check("staging", &settings(3)).unwrap_err();
        assert!(err.contains("staging"), "{err}");

        let mut old = ok.clone();
        old.version = PROTOCOL_VERSION + 1;
        let err = old.check("prod", &settings(3)).unwrap_err();
        assert!(err.contains("protocol version"), "{err}");

        let mut alien = ok;
        alien.magic = *b"HTTP";
        let err = alien.check("prod", &settings(3)).unwrap_err();
        assert!(err.contains("magic"), "{err}");
    }

    #[test]
    fn a_peer_with_other_settings_is_refused_naming_both() {
        let peer = Hello::peer("prod", NodeId(7), settings(1));
        assert_eq!(peer.check("prod", &settings(1)), Ok(()));
        let err = peer.check("prod", &settings(3)).unwrap_err();
        assert!(err.contains("N=1") && err.contains("N=3"), "{err}");

        let mut other_ring = settings(3);
        other_ring.vnodes_per_weight = 16;
        let err = Hello::peer("prod", NodeId(7), other_ring)
            .check("prod", &settings(3))
            .unwrap_err();
        assert!(
            err.contains("16 vnodes") && err.contains("64 vnodes"),
            "{err}"
        );

        let mut silent = peer;
        silent.settings = None;
        let err = silent.check("prod", &settings(1)).unwrap_err();
        assert!(err.contains("settings"), "{err}");
    }

    #[test]
    fn a_client_needs_no_settings() {
        // Clients do not place replicas; their hello carries none.
        assert_eq!(Hello::client("prod").check("prod", &settings(5)), Ok(()));
    }
}
