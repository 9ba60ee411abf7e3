//! Membership entries: what every node knows about every other node.

use serde::{Deserialize, Serialize};

use kv_types::NodeId;

/// A node's incarnation and progress: the higher pair wins a merge.
///
/// `generation` is bumped by a restart, so a rebooted node's small heartbeat
/// still beats everything its old self ever said. `heartbeat` is bumped by
/// the node itself every gossip interval and whenever its metadata changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Version {
    /// Incarnation of the node; a restart makes it larger.
    pub generation: u64,
    /// Counter the node advances every interval.
    pub heartbeat: u64,
}

/// The lifecycle state a node declares about itself and gossips.
///
/// Only the node itself (or an operator removing a dead node) changes it, so
/// it spreads like any other fact. Whether the node is reachable is a local
/// judgement, kept apart in [`Liveness`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Status {
    /// Started, not yet serving its ranges.
    Joining,
    /// Serving: a full member of the ring.
    Normal,
    /// Handing its ranges off before it goes (decommission in progress).
    Leaving,
    /// Gone for good: owns nothing; other nodes forget it after a while.
    Left,
}

/// What this node's failure detector thinks of a peer; never gossiped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Liveness {
    /// Its heartbeat is advancing.
    Alive,
    /// Its heartbeat has stalled past the suspect threshold.
    Suspect,
    /// Its heartbeat has stalled past the down threshold.
    Down,
}

/// The combined view a caller usually wants: declared status, overridden
/// by local liveness when the node is not responding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum MemberState {
    /// Declared `Joining` and responding.
    Joining,
    /// Declared `Normal` and responding.
    Alive,
    /// Heartbeat stalled past the suspect threshold.
    Suspect,
    /// Heartbeat stalled past the down threshold.
    Down,
    /// Declared `Leaving` and responding.
    Leaving,
    /// Declared `Left`.
    Left,
}

/// The slowly changing part of an entry: addresses, placement, status.
///
/// It travels only when the receiver's copy is older than `version`, so a
/// steady cluster gossips heartbeats, not token lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberMeta {
    /// The heartbeat value at which the owner last changed this metadata.
    pub version: u64,
    /// Declared lifecycle status.
    pub status: Status,
    /// Where the node listens for gossip, e.g. `"10.0.0.5:7001"`.
    pub gossip_addr: String,
    /// Where the node listens for clients.
    pub client_addr: String,
    /// Failure zone (rack or data centre), used to spread replicas.
    pub zone: String,
    /// Relative capacity; the ring gives a node tokens in proportion.
    pub weight: u32,
    /// Ring tokens, at most [`MAX_TOKENS`](crate::MAX_TOKENS).
    pub tokens: Vec<u64>,
    /// What the member runs with, in the application's words (kvnode: N,
    /// R, W and mode), so that an operator can compare members; at most
    /// [`MAX_SETTINGS_LEN`](crate::MAX_SETTINGS_LEN) bytes. Gossip carries
    /// it and never reads it.
    pub settings: String,
}

/// One node as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The node.
    pub id: NodeId,
    /// The newest (generation, heartbeat) heard.
    pub version: Version,
    /// Addresses, zone, weight, tokens and declared status.
    pub meta: MemberMeta,
    /// This node's failure detector's verdict.
    pub liveness: Liveness,
}

impl Member {
    /// Declared status combined with local liveness.
    pub fn state(&self) -> MemberState {
        match (self.meta.status, self.liveness) {
            (Status::Left, _) => MemberState::Left,
            (_, Liveness::Down) => MemberState::Down,
            (_, Liveness::Suspect) => MemberState::Suspect,
            (Status::Joining, Liveness::Alive) => MemberState::Joining,
            (Status::Normal, Liveness::Alive) => MemberState::Alive,
            (Status::Leaving, Liveness::Alive) => MemberState::Leaving,
        }
    }

    /// Whether the node is declared a member and is responding: the nodes a
    /// coordinator may send to.
    pub fn is_up(&self) -> bool {
        self.liveness == Liveness::Alive && self.meta.status != Status::Left
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn higher_generation_beats_any_heartbeat() {
        let old = Version {
            generation: 1,
            heartbeat: 1_000_000,
        };
        let new = Version {
            generation: 2,
            heartbeat: 0,
        };
        assert!(new > old);
    }

    #[test]
    fn left_wins_over_liveness() {
        let mut m = Member {
            id: NodeId(1),
            version: Version {
                generation: 1,
                heartbeat: 1,
            },
            meta: MemberMeta {
                version: 0,
                status: Status::Left,
                gossip_addr: String::new(),
                client_addr: String::new(),
                zone: String::new(),
                weight: 1,
                tokens: Vec::new(),
                settings: String::new(),
            },
            liveness: Liveness::Down,
        };
        assert_eq!(m.state(), MemberState::Left);
        m.meta.status = Status::Normal;
        assert_eq!(m.state(), MemberState::Down);
        m.liveness = Liveness::Alive;
        assert_eq!(m.state(), MemberState::Alive);
        assert!(m.is_up());
    }
}
