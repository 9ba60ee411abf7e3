//! A node never marks itself down, even cut off from everyone, and refutes
//! others' claims that it has left.

use std::time::Duration;

use kv_gossip::sim::{Sim, SimConfig, seed_from_env};
use kv_gossip::{Event, Liveness, MemberState, Status};

#[test]
fn isolated_node_marks_others_down_but_never_itself() {
    let mut cfg = SimConfig::new(seed_from_env(15));
    cfg.loss = 0.2;
    let n = 10;
    let mut sim = Sim::new(cfg, n);
    assert!(
        sim.run_until(Duration::from_secs(60), Sim::converged)
            .is_some()
    );
    sim.partition(&[4]);
    sim.run_for(Duration::from_secs(120));

    let me = sim.id(4);
    let g = sim.node(4).expect("running");
    assert_eq!(g.state_of(me), Some(MemberState::Alive));
    for o in (0..n).filter(|&o| o != 4) {
        assert!(sim.sees(4, o, Liveness::Down), "4 should see {o} down");
    }
    let events = sim.take_events();
    assert!(
        !events.iter().any(|e| e.node == 4
            && matches!(e.event, Event::Down { id } | Event::Suspected { id } if id == me)),
        "a node judged itself"
    );
}

#[test]
fn removed_while_cut_off_refutes_after_heal() {
    let mut sim = Sim::new(SimConfig::new(seed_from_env(16)), 10);
    assert!(
        sim.run_until(Duration::from_secs(60), Sim::converged)
            .is_some()
    );
    sim.partition(&[4]);
    let id = sim.id(4);
    assert!(
        sim.run_until(Duration::from_secs(120), |s| s.sees(0, 4, Liveness::Down))
            .is_some()
    );
    sim.node_mut(0)
        .expect("running")
        .remove_dead(id)
        .expect("4 is down at 0");
    assert!(
        sim.run_until(Duration::from_secs(60), |s| {
            (0..10)
                .filter(|&o| o != 4)
                .all(|o| s.node(o).and_then(|g| g.state_of(id)) == Some(MemberState::Left))
        })
        .is_some(),
        "removal did not spread"
    );
    sim.heal();
    // Node 4 hears it has left, outbids the claim, and is a member again.
    let back = sim.run_until(Duration::from_secs(120), |s| {
        (0..10).all(|o| {
            s.node(o)
                .and_then(|g| g.member(id))
                .is_some_and(|m| m.meta.status == Status::Normal && m.liveness == Liveness::Alive)
        })
    });
    assert!(back.is_some(), "node 4 did not refute its removal");
}
