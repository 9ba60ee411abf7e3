//! Quorum bookkeeping: a pure counter of answers, apart from the async code
//! that collects them (as Garage keeps its quorum logic apart from RPC).

/// Where a quorum stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuorumState {
    /// Enough successes.
    Reached,
    /// Not yet reached, and enough answers are outstanding to reach it.
    Waiting,
    /// Cannot be reached even if every outstanding answer succeeds.
    Impossible,
}

/// Counts successes and failures of requests sent to replicas.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumTracker {
    required: usize,
    outstanding: usize,
    ok: usize,
    failed: usize,
}

impl QuorumTracker {
    /// A quorum of `required` successes, `already_ok` of them already in
    /// hand, with `sent` answers outstanding.
    pub fn new(required: usize, already_ok: usize, sent: usize) -> Self {
        Self {
            required,
            outstanding: sent,
            ok: already_ok,
            failed: 0,
        }
    }

    /// One outstanding request succeeded.
    pub fn success(&mut self) {
        self.outstanding = self.outstanding.saturating_sub(1);
        self.ok += 1;
    }

    /// One outstanding request failed.
    pub fn failure(&mut self) {
        self.outstanding = self.outstanding.saturating_sub(1);
        self.failed += 1;
    }

    /// Successes so far.
    pub fn ok(&self) -> usize {
        self.ok
    }

    /// Failures so far.
    pub fn failed(&self) -> usize {
        self.failed
    }

    /// Answers still outstanding.
    pub fn outstanding(&self) -> usize {
        self.outstanding
    }

    /// Successes required.
    pub fn required(&self) -> usize {
        self.required
    }

    /// Where the quorum stands.
    pub fn state(&self) -> QuorumState {
        if self.ok >= self.required {
            QuorumState::Reached
        } else if self.ok + self.outstanding < self.required {
            QuorumState::Impossible
        } else {
            QuorumState::Waiting
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_is_reached_or_becomes_impossible() {
        let mut q = QuorumTracker::new(2, 0, 3);
        assert_eq!(q.state(), QuorumState::Waiting);
        q.failure();
        assert_eq!(q.state(), QuorumState::Waiting);
        q.success();
        assert_eq!(q.state(), QuorumState::Waiting);
        q.success();
        assert_eq!(q.state(), QuorumState::Reached);

        let mut q = QuorumTracker::new(2, 1, 1);
        q.failure();
        assert_eq!(q.state(), QuorumState::Impossible);
        assert_eq!((q.ok(), q.failed(), q.outstanding()), (1, 1, 0));
        assert_eq!(QuorumTracker::new(1, 1, 0).state(), QuorumState::Reached);
    }
}
