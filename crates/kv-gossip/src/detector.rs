//! Failure detection from heartbeats that stop advancing.
//!
//! Each node records, per peer, the local times at which that peer's
//! heartbeat advanced. Two detectors read those arrivals:
//!
//! - [`Detector::Fixed`]: suspect after a fixed silence, down after a longer
//!   one.
//! - [`Detector::PhiAccrual`]: the accrual detector of Hayashibara et al. as
//!   Cassandra uses it. Inter-arrival times are taken as exponentially
//!   distributed with the mean of a bounded window of recent samples, and
//!   `phi = silence / mean * log10(e)`, the minus log10 of the chance that a
//!   live peer stays this silent. The threshold thus widens by itself when
//!   the network is lossy and heartbeats arrive unevenly.
//!
//! Which one is the default is decided by measurement (`cargo xtask bench
//! gossip`); see the crate doc for the numbers.

use std::collections::VecDeque;
use std::time::Duration;

use crate::member::Liveness;

/// Most inter-arrival samples kept per peer for phi accrual.
pub const MAX_ARRIVAL_WINDOW: usize = 1000;

/// How a node turns heartbeat silence into a verdict.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Detector {
    /// Fixed silence thresholds.
    Fixed {
        /// Silence after which a peer is suspected.
        suspect_after: Duration,
        /// Silence after which a peer is marked down.
        down_after: Duration,
    },
    /// Phi accrual with exponential inter-arrival times.
    PhiAccrual {
        /// Phi at which a peer is suspected.
        suspect_phi: f64,
        /// Phi at which a peer is marked down (Cassandra's
        /// `phi_convict_threshold`, 8 by default).
        down_phi: f64,
        /// Samples kept per peer, at most [`MAX_ARRIVAL_WINDOW`].
        window: usize,
        /// Mean assumed before any sample, and the floor of the mean, so a
        /// burst of arrivals cannot make the detector hair-triggered.
        min_mean: Duration,
        /// Gaps longer than this are not samples: they are outages (the
        /// peer was down), and would otherwise blunt detection afterwards.
        max_sample: Duration,
    },
}

impl Detector {
    /// The fixed detector scaled to a gossip interval: suspect after 5
    /// intervals of silence, down after 10.
    pub fn fixed_for(interval: Duration) -> Self {
        Detector::Fixed {
            suspect_after: interval * 5,
            down_after: interval * 10,
        }
    }

    /// The phi accrual detector scaled to a gossip interval: suspect at
    /// phi 3, down at phi 5. Cassandra convicts at 8; 5 detects a crash in
    /// about 17 s instead of 25 s with no false downs up to 20% loss in the
    /// simulator (`cargo xtask bench gossip -- --sweep`).
    pub fn phi_for(interval: Duration) -> Self {
        Detector::PhiAccrual {
            suspect_phi: 3.0,
            down_phi: 5.0,
            window: 100,
            min_mean: interval / 2,
            max_sample: interval * 10,
        }
    }
}

/// Heartbeat arrivals of one peer, as this node saw them.
#[derive(Debug, Clone)]
pub(crate) struct Arrivals {
    last: Duration,
    samples: VecDeque<Duration>,
    sum: Duration,
}

impl Arrivals {
    /// Arrivals starting at `now` (first heard, or restarted).
    pub(crate) fn new(now: Duration) -> Self {
        Self {
            last: now,
            samples: VecDeque::new(),
            sum: Duration::ZERO,
        }
    }

    /// Records that the peer's heartbeat advanced at `now`.
    pub(crate) fn record(&mut self, now: Duration, detector: &Detector) {
        let gap = now.saturating_sub(self.last);
        self.last = now;
        if let Detector::PhiAccrual {
            window, max_sample, ..
        } = *detector
        {
            if gap > max_sample || gap.is_zero() {
                return;
            }
            let window = window.clamp(1, MAX_ARRIVAL_WINDOW);
            while self.samples.len() >= window {
                if let Some(old) = self.samples.pop_front() {
                    self.sum = self.sum.saturating_sub(old);
                }
            }
            self.samples.push_back(gap);
            self.sum += gap;
        }
    }

    /// Phi at `now` for a detector whose mean is floored at `min_mean`.
    pub(crate) fn phi(&self, now: Duration, min_mean: Duration) -> f64 {
        let silence = now.saturating_sub(self.last).as_secs_f64();
        let mean = if self.samples.is_empty() {
            min_mean.as_secs_f64()
        } else {
            (self.sum.as_secs_f64() / self.samples.len() as f64).max(min_mean.as_secs_f64())
        };
        if mean <= 0.0 {
            return f64::INFINITY;
        }
        silence / mean * std::f64::consts::LOG10_E
    }

    /// The verdict at `now`.
    pub(crate) fn verdict(&self, now: Duration, detector: &Detector) -> Liveness {
        match *detector {
            Detector::Fixed {
                suspect_after,
                down_after,
            } => {
                let silence = now.saturating_sub(self.last);
                if silence >= down_after {
                    Liveness::Down
                } else if silence >= suspect_after {
                    Liveness::Suspect
                } else {
                    Liveness::Alive
                }
            }
            Detector::PhiAccrual {
                suspect_phi,
                down_phi,
                min_mean,
                ..
            } => {
                let phi = self.phi(now, min_mean);
                if phi >= down_phi {
                    Liveness::Down
                } else if phi >= suspect_phi {
                    Liveness::Suspect
                } else {
                    Liveness::Alive
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn fixed_goes_suspect_then_down() {
        let d = Detector::fixed_for(S);
        let a = Arrivals::new(Duration::ZERO);
        assert_eq!(a.verdict(S * 4, &d), Liveness::Alive);
        assert_eq!(a.verdict(S * 5, &d), Liveness::Suspect);
        assert_eq!(a.verdict(S * 10, &d), Liveness::Down);
    }

    #[test]
    fn phi_widens_with_slower_arrivals() {
        let d = Detector::phi_for(S);
        let mut fast = Arrivals::new(Duration::ZERO);
        let mut slow = Arrivals::new(Duration::ZERO);
        for i in 1..=50u32 {
            fast.record(S * i, &d);
            slow.record(S * 3 * i, &d);
        }
        // Ten seconds of silence is damning after one-second arrivals but
        // ordinary after three-second ones.
        assert_eq!(fast.verdict(S * 50 + S * 20, &d), Liveness::Down);
        assert_eq!(slow.verdict(S * 150 + S * 10, &d), Liveness::Alive);
        assert!(fast.phi(S * 60, S / 2) > slow.phi(S * 160, S / 2));
    }

    #[test]
    fn window_is_bounded_and_outages_are_not_samples() {
        let d = Detector::PhiAccrual {
            suspect_phi: 5.0,
            down_phi: 8.0,
            window: 10,
            min_mean: S / 2,
            max_sample: S * 10,
        };
        let mut a = Arrivals::new(Duration::ZERO);
        for i in 1..=100u32 {
            a.record(S * i, &d);
        }
        assert_eq!(a.samples.len(), 10);
        a.record(S * 1000, &d);
        assert_eq!(a.sum, S * 10, "an outage must not become a sample");
    }
}
