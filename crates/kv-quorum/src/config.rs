//! Cluster-wide quorum settings, per-request consistency, and their limits.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::QuorumError;

/// Default replication factor N.
pub const DEFAULT_N: usize = 3;
/// Default read quorum R.
pub const DEFAULT_R: usize = 2;
/// Default write quorum W.
pub const DEFAULT_W: usize = 2;
/// Default time a coordinator waits for a quorum.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default bound on siblings per key. Riak warns at 25 and refuses at 100;
/// we refuse earlier because every read returns them all.
pub const DEFAULT_MAX_SIBLINGS: usize = 32;
/// Default bound on the bytes of one key's state (every sibling and its
/// clock), as [`SiblingSet::size_bytes`](crate::SiblingSet::size_bytes)
/// counts them. A key's whole state travels in one kv-wire frame (replicate,
/// read repair, hint replay, anti-entropy), whose limit is 16 MiB. Half of
/// that leaves room for the key, the message envelope, and for a read
/// repair that merges two replicas' diverged states of up to this size
/// each; sixteen 1 MiB siblings (above 8 MiB) are refused on write.
pub const DEFAULT_STATE_BYTES_MAX: usize = 8 << 20;
/// Default hard bound on the bytes of one key's state: what a 16 MiB
/// kv-wire frame carries with room for the key and the message envelope.
/// Unlike [`DEFAULT_STATE_BYTES_MAX`], it holds for merges too: a replica
/// refuses a merge that would grow a key past it, and a read returns only
/// the siblings that fit it. A node derives it from its frame limit.
pub const DEFAULT_STATE_BYTES_HARD_MAX: usize = 15 << 20;
/// Default wait before a quorum read also asks the replicas it skipped.
/// Well above a healthy replica's answer time on one network (well under a
/// millisecond), well below the request timeout.
pub const DEFAULT_SPECULATE_AFTER: Duration = Duration::from_millis(20);
/// Largest replication factor accepted: version vectors and fan-out grow
/// with it, and nothing in a Dynamo-style store needs more.
pub const MAX_N: usize = 16;

/// What happens when home replicas are down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// Consistency first: only the N home replicas count; fewer than the
    /// quorum alive answers [`QuorumError::Unavailable`].
    Strict,
    /// Availability first: the next healthy nodes on the ring stand in for
    /// dead home replicas, keeping the write as a hint for its owner.
    Sloppy,
}

/// When a read repairs the stale replicas it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadRepair {
    /// Send repairs and answer without waiting for them.
    Async,
    /// Wait (up to the request timeout) for repairs before answering, so a
    /// later read from the same replicas sees at least this version
    /// (monotonic reads).
    Blocking,
    /// Never repair on reads.
    Off,
}

/// Which replicas a read asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadFanout {
    /// Ask every live home replica and answer with the first R, as Dynamo
    /// and Riak do: a slow replica costs nothing and every read compares
    /// every copy, at the price of N - R replica reads no answer needs.
    All,
    /// Ask R replicas (the coordinator's own first, the others in turn),
    /// as Cassandra does. A replica that fails is replaced at once by one
    /// not yet asked; if the quorum is not in after `speculate_after`, the
    /// rest are asked too (speculative retry). Read repair covers the
    /// replicas asked; anti-entropy covers the others.
    Quorum {
        /// Wait before asking the replicas skipped.
        speculate_after: Duration,
    },
}

impl Default for ReadFanout {
    fn default() -> Self {
        Self::Quorum {
            speculate_after: DEFAULT_SPECULATE_AFTER,
        }
    }
}

/// How many replicas a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Consistency {
    /// One replica.
    One,
    /// A majority of N: `N / 2 + 1`.
    Quorum,
    /// All N replicas.
    All,
    /// An explicit number, from 1 to N.
    Explicit(u8),
}

impl Consistency {
    /// The number of replicas this asks for out of `n`, or
    /// [`QuorumError::InvalidConsistency`] when it is 0 or more than `n`.
    pub fn required(self, n: usize) -> Result<usize, QuorumError> {
        let k = match self {
            Consistency::One => 1,
            Consistency::Quorum => n / 2 + 1,
            Consistency::All => n,
            Consistency::Explicit(k) => usize::from(k),
        };
        if k == 0 || k > n {
            return Err(QuorumError::InvalidConsistency { requested: k, n });
        }
        Ok(k)
    }
}

/// Per-request choices; `None` fields take the cluster default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestOptions {
    /// Replicas needed for this request: R for reads, W for writes.
    pub consistency: Option<Consistency>,
    /// How long to wait for them.
    pub timeout: Option<Duration>,
}

impl RequestOptions {
    /// Cluster defaults for everything.
    pub const DEFAULT: Self = Self {
        consistency: None,
        timeout: None,
    };

    /// Options asking for `consistency`.
    pub const fn with(consistency: Consistency) -> Self {
        Self {
            consistency: Some(consistency),
            timeout: None,
        }
    }
}

/// Cluster-wide defaults of a [`Coordinator`](crate::Coordinator).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumConfig {
    /// Replication factor: replicas of every key.
    pub n: usize,
    /// Default read quorum.
    pub r: usize,
    /// Default write quorum.
    pub w: usize,
    /// Strict or sloppy quorums.
    pub mode: Mode,
    /// Default time to wait for a quorum.
    pub timeout: Duration,
    /// Siblings a key may hold before writes that would add one are refused.
    pub max_siblings: usize,
    /// Bytes a key's state may take before client writes that would grow
    /// it are refused; at most `state_bytes_hard_max`.
    pub state_bytes_max: usize,
    /// Bytes of one key's state that a frame carries: a read returns only
    /// the siblings that fit (and says how many it left out), and read
    /// repair sends states one by one when their merge would not fit. The
    /// replicas must run with the same bound
    /// ([`Replica::with_state_bytes_hard_max`](crate::Replica::with_state_bytes_hard_max)).
    pub state_bytes_hard_max: usize,
    /// Read-repair policy.
    pub read_repair: ReadRepair,
    /// Which replicas a read asks.
    pub read_fanout: ReadFanout,
}

impl Default for QuorumConfig {
    /// N=3, R=2, W=2, strict, 2 s, 32 siblings, 8 MiB a key on writes (15 MiB
    /// hard), asynchronous read repair,
    /// reads asking R replicas with a speculative retry after 20 ms.
    fn default() -> Self {
        Self {
            n: DEFAULT_N,
            r: DEFAULT_R,
            w: DEFAULT_W,
            mode: Mode::Strict,
            timeout: DEFAULT_TIMEOUT,
            max_siblings: DEFAULT_MAX_SIBLINGS,
            state_bytes_max: DEFAULT_STATE_BYTES_MAX,
            state_bytes_hard_max: DEFAULT_STATE_BYTES_HARD_MAX,
            read_repair: ReadRepair::Async,
            read_fanout: ReadFanout::default(),
        }
    }
}

impl QuorumConfig {
    /// Checks `1 <= r, w <= n <= MAX_N`, `max_siblings >= 1` and
    /// `1 <= state_bytes_max <= state_bytes_hard_max <= u32::MAX`.
    pub fn validate(&self) -> Result<(), QuorumError> {
        if self.n == 0 || self.n > MAX_N {
            return Err(QuorumError::InvalidConfig {
                detail: format!("n = {} must be between 1 and {MAX_N}", self.n),
            });
        }
        for (name, k) in [("r", self.r), ("w", self.w)] {
            if k == 0 || k > self.n {
                return Err(QuorumError::InvalidConfig {
                    detail: format!("{name} = {k} must be between 1 and n = {}", self.n),
                });
            }
        }
        if self.max_siblings == 0 {
            return Err(QuorumError::InvalidConfig {
                detail: "max_siblings must be at least 1".to_owned(),
            });
        }
        if u32::try_from(self.state_bytes_hard_max).is_err() {
            return Err(QuorumError::InvalidConfig {
                detail: format!(
                    "state_bytes_hard_max = {} must be at most {}",
                    self.state_bytes_hard_max,
                    u32::MAX
                ),
            });
        }
        if self.state_bytes_max == 0 || self.state_bytes_max > self.state_bytes_hard_max {
            return Err(QuorumError::InvalidConfig {
                detail: format!(
                    "state_bytes_max = {} must be between 1 and state_bytes_hard_max = {}",
                    self.state_bytes_max, self.state_bytes_hard_max
                ),
            });
        }
        if let ReadFanout::Quorum { speculate_after } = self.read_fanout
            && (speculate_after.is_zero() || speculate_after >= self.timeout)
        {
            return Err(QuorumError::InvalidConfig {
                detail: format!(
                    "speculate_after ({speculate_after:?}) must be above zero and below the timeout ({:?})",
                    self.timeout
                ),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consistency_levels_resolve_against_n() {
        assert_eq!(Consistency::One.required(3).unwrap(), 1);
        assert_eq!(Consistency::Quorum.required(3).unwrap(), 2);
        assert_eq!(Consistency::Quorum.required(4).unwrap(), 3);
        assert_eq!(Consistency::All.required(3).unwrap(), 3);
        assert_eq!(Consistency::Explicit(2).required(3).unwrap(), 2);
        assert!(matches!(
            Consistency::Explicit(4).required(3),
            Err(QuorumError::InvalidConsistency { requested: 4, n: 3 })
        ));
        assert!(Consistency::Explicit(0).required(3).is_err());
    }

    #[test]
    fn config_limits_are_checked() {
        assert!(QuorumConfig::default().validate().is_ok());
        let bad = [
            QuorumConfig {
                n: 0,
                ..Default::default()
            },
            QuorumConfig {
                n: MAX_N + 1,
                ..Default::default()
            },
            QuorumConfig {
                r: 4,
                ..Default::default()
            },
            QuorumConfig {
                w: 0,
                ..Default::default()
            },
            QuorumConfig {
                max_siblings: 0,
                ..Default::default()
            },
            QuorumConfig {
                state_bytes_max: 0,
                ..Default::default()
            },
            QuorumConfig {
                state_bytes_max: DEFAULT_STATE_BYTES_HARD_MAX + 1,
                ..Default::default()
            },
            QuorumConfig {
                read_fanout: ReadFanout::Quorum {
                    speculate_after: Duration::ZERO,
                },
                ..Default::default()
            },
            QuorumConfig {
                read_fanout: ReadFanout::Quorum {
                    speculate_after: DEFAULT_TIMEOUT,
                },
                ..Default::default()
            },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?} accepted");
        }
    }
}
