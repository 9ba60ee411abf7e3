//! A restarted node is recognised by its new generation, whether or not the
//! others noticed it was gone, and its old self never wins.

use std::time::Duration;

use kv_gossip::sim::{Sim, SimConfig, seed_from_env};
use kv_gossip::{Event, Liveness};

fn everyone_sees_generation(sim: &Sim, k: usize, generation: u64) -> bool {
    let id = sim.id(k);
    (0..sim.len()).filter(|&o| o != k).all(|o| {
        sim.node(o)
            .and_then(|g| g.member(id))
            .is_some_and(|m| m.version.generation == generation && m.liveness == Liveness::Alive)
    })
}

#[test]
fn restart_after_being_marked_down() {
    let mut sim = Sim::new(SimConfig::new(seed_from_env(13)), 15);
    assert!(
        sim.run_until(Duration::from_secs(60), Sim::converged)
            .is_some()
    );
    sim.crash(5);
    assert!(
        sim.run_until(Duration::from_secs(120), |s| s.all_see(5, Liveness::Down))
            .is_some()
    );
    sim.take_events();
    sim.restart(5);
    let back = sim.run_until(Duration::from_secs(60), |s| {
        everyone_sees_generation(s, 5, 2)
    });
    assert!(back.is_some(), "restart not recognised");
    let id = sim.id(5);
    let events = sim.take_events();
    for o in (0..15).filter(|&o| o != 5) {
        assert!(
            events
                .iter()
                .any(|e| e.node == o && e.event == Event::Restarted { id, generation: 2 }),
            "node {o} saw no restart"
        );
        assert!(
            events
                .iter()
                .any(|e| e.node == o && e.event == Event::Up { id }),
            "node {o} saw no up"
        );
    }
}

#[test]
fn quick_restart_beats_the_old_higher_heartbeat() {
    let mut sim = Sim::new(SimConfig::new(seed_from_env(14)), 15);
    assert!(
        sim.run_until(Duration::from_secs(60), Sim::converged)
            .is_some()
    );
    // Let the old incarnation build a large heartbeat, then reboot it
    // before anyone can notice: its heartbeat restarts from zero.
    sim.run_for(Duration::from_secs(100));
    sim.restart(5);
    let back = sim.run_until(Duration::from_secs(60), |s| {
        everyone_sees_generation(s, 5, 2)
    });
    assert!(back.is_some(), "new generation lost to the old heartbeat");
    assert!(
        sim.run_until(Duration::from_secs(30), Sim::converged)
            .is_some()
    );
}
