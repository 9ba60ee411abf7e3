//! Strict quorums: too few home replicas answers `Unavailable`; a write that
//! reached some replicas but fewer than W is indeterminate, not failed.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns are test code too

mod common;

use common::{Fault, Sim, b, config, home, seeds};
use kv_quorum::{Consistency, QuorumError, RequestOptions};

const DEFAULT: RequestOptions = RequestOptions::DEFAULT;

#[test]
fn two_of_three_down_answers_unavailable() {
    for seed in seeds(500, 5) {
        let sim = Sim::new(seed, 5);
        let h = home(&sim, b"k");
        sim.crash(h[1]);
        sim.crash(h[2]);
        let c = sim.coordinator(h[0], config());
        let unavailable = QuorumError::Unavailable {
            required: 2,
            alive: 1,
        };
        assert_eq!(
            sim.put(&c, "k", "v", None, DEFAULT),
            Err(unavailable.clone()),
            "seed {seed}"
        );
        assert_eq!(sim.get(&c, "k", DEFAULT), Err(unavailable), "seed {seed}");
        // Nothing was written anywhere.
        for &n in &h {
            assert!(sim.stored(n, "k").is_empty());
        }
        // ONE still works on the survivor.
        let one = RequestOptions::with(Consistency::One);
        sim.put(&c, "k", "v", None, one).unwrap();
        assert!(sim.get(&c, "k", one).unwrap().is_found());
    }
}

#[test]
fn write_short_of_w_is_indeterminate() {
    let sim = Sim::new(600, 3);
    let h = home(&sim, b"k");
    // Cut off but not yet suspected: the coordinator tries and fails.
    sim.partition(h[1]);
    sim.partition(h[2]);
    let c = sim.coordinator(h[0], config());
    let err = sim.put(&c, "k", "v", None, DEFAULT).unwrap_err();
    assert_eq!(
        err,
        QuorumError::Indeterminate {
            acked: 1,
            required: 2
        }
    );
    // It did reach one replica, so a read of all three, once the others
    // heal, sees it: the write was not failed.
    sim.heal(h[1]);
    sim.heal(h[2]);
    let got = sim
        .get(&c, "k", RequestOptions::with(Consistency::All))
        .unwrap();
    assert_eq!(got.siblings, vec![b("v")]);
}

#[test]
fn silent_replicas_make_the_write_time_out_with_its_ack_count() {
    let sim = Sim::new(700, 3);
    let h = home(&sim, b"k");
    for &n in &h[1..] {
        sim.set_fault(
            n,
            Fault {
                drop: 1.0,
                ..Fault::default()
            },
        );
    }
    let c = sim.coordinator(h[0], config());
    let start = sim.now_ms();
    let err = sim.put(&c, "k", "v", None, DEFAULT).unwrap_err();
    assert_eq!(
        err,
        QuorumError::Timeout {
            acked: 1,
            required: 2
        }
    );
    assert_eq!(sim.now_ms() - start, 100, "answers exactly at the timeout");
}

#[test]
fn slow_replicas_still_make_the_quorum_within_the_timeout() {
    let sim = Sim::new(800, 3);
    let h = home(&sim, b"k");
    sim.set_fault(
        h[1],
        Fault {
            slow_ms: 30,
            ..Fault::default()
        },
    );
    sim.set_fault(
        h[2],
        Fault {
            slow_ms: 500,
            ..Fault::default()
        },
    );
    let c = sim.coordinator(h[0], config());
    sim.put(&c, "k", "v", None, DEFAULT).unwrap();
    let err = sim
        .put(&c, "k", "w", None, RequestOptions::with(Consistency::All))
        .unwrap_err();
    assert_eq!(
        err,
        QuorumError::Timeout {
            acked: 2,
            required: 3
        }
    );
}

#[test]
fn consistency_beyond_n_is_refused() {
    let sim = Sim::new(900, 3);
    let c = sim.coordinator(sim.nodes[0], config());
    let err = sim
        .get(&c, "k", RequestOptions::with(Consistency::Explicit(4)))
        .unwrap_err();
    assert_eq!(err, QuorumError::InvalidConsistency { requested: 4, n: 3 });
}

#[test]
fn a_write_fails_over_to_the_next_issuer() {
    let sim = Sim::new(950, 5);
    let h = home(&sim, b"k");
    // A coordinator outside the preference list, whose first choice of
    // issuer is cut off without the failure detector knowing.
    let outsider = *sim.nodes.iter().find(|n| !h.contains(n)).unwrap();
    sim.partition(h[0]);
    let c = sim.coordinator(outsider, config());
    sim.put(&c, "k", "v", None, DEFAULT).unwrap();
    let actors: Vec<_> = sim
        .replica(h[1])
        .read(b"k")
        .unwrap()
        .clock()
        .iter()
        .collect();
    assert_eq!(
        actors,
        vec![(h[1], 1)],
        "the second home replica issued the dot"
    );
}
