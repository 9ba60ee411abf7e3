//! A crashed node is marked down by every other node, and only it.

use std::time::Duration;

use kv_gossip::Liveness;
use kv_gossip::sim::{Sim, SimConfig, seed_from_env};

#[test]
fn crashed_node_is_marked_down_everywhere() {
    let mut cfg = SimConfig::new(seed_from_env(11));
    cfg.loss = 0.02;
    let mut sim = Sim::new(cfg, 20);
    let boot = sim.run_until(Duration::from_secs(60), Sim::converged);
    assert!(boot.is_some(), "cluster did not converge");
    sim.run_for(Duration::from_secs(20));

    sim.crash(7);
    let took = sim.run_until(Duration::from_secs(120), |s| s.all_see(7, Liveness::Down));
    assert!(took.is_some(), "crash not detected everywhere in 120 s");
    for o in (0..20).filter(|&o| o != 7) {
        for s in (0..20).filter(|&s| s != 7) {
            assert!(
                sim.sees(o, s, Liveness::Alive),
                "{o} does not see {s} alive"
            );
        }
    }
}
