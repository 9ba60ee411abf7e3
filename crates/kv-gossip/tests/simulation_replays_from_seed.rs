//! The same seed replays the same run, event for event.

use std::time::Duration;

use kv_gossip::sim::{Sim, SimConfig, SimEvent};

fn run(seed: u64) -> Vec<SimEvent> {
    let mut cfg = SimConfig::new(seed);
    cfg.loss = 0.1;
    let mut sim = Sim::new(cfg, 12);
    sim.run_for(Duration::from_secs(20));
    sim.partition(&[0, 5, 6]);
    sim.crash(9);
    sim.run_for(Duration::from_secs(40));
    sim.heal();
    sim.restart(9);
    sim.run_for(Duration::from_secs(40));
    sim.take_events()
}

#[test]
fn same_seed_same_events() {
    let a = run(99);
    assert!(!a.is_empty());
    assert_eq!(a, run(99));
    assert_ne!(a, run(100));
}
