//! Leaving and left spread like any other fact, and a left node is not
//! reported down when it stops.

use std::time::Duration;

use kv_gossip::sim::{Sim, SimConfig, seed_from_env};
use kv_gossip::{Event, MemberState, Status};

fn all_others_see(sim: &Sim, k: usize, state: MemberState) -> bool {
    let id = sim.id(k);
    (0..sim.len())
        .filter(|&o| o != k && sim.is_running(o))
        .all(|o| sim.node(o).and_then(|g| g.state_of(id)) == Some(state))
}

#[test]
fn leave_then_left_spread_and_stopping_is_not_a_failure() {
    let mut cfg = SimConfig::new(seed_from_env(17));
    cfg.loss = 0.05;
    let mut sim = Sim::new(cfg, 12);
    assert!(
        sim.run_until(Duration::from_secs(60), Sim::converged)
            .is_some()
    );
    let id = sim.id(3);

    sim.node_mut(3).expect("running").leave();
    assert!(
        sim.run_until(Duration::from_secs(30), |s| all_others_see(
            s,
            3,
            MemberState::Leaving
        ))
        .is_some()
    );
    sim.node_mut(3).expect("running").set_status(Status::Left);
    assert!(
        sim.run_until(Duration::from_secs(30), |s| all_others_see(
            s,
            3,
            MemberState::Left
        ))
        .is_some()
    );
    sim.take_events();
    sim.crash(3);
    sim.run_for(Duration::from_secs(120));
    assert!(all_others_see(&sim, 3, MemberState::Left));
    let events = sim.take_events();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e.event, Event::Down { id: d } if d == id)),
        "a node that left was reported down"
    );
}
