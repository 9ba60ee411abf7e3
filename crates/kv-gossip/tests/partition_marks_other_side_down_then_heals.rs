//! A partition makes each side mark the other down; after healing, every
//! view agrees again.

use std::time::Duration;

use kv_gossip::Liveness;
use kv_gossip::sim::{Sim, SimConfig, seed_from_env};

#[test]
fn partition_marks_other_side_down_then_heals() {
    let mut cfg = SimConfig::new(seed_from_env(12));
    cfg.loss = 0.05;
    let n = 20;
    let mut sim = Sim::new(cfg, n);
    assert!(
        sim.run_until(Duration::from_secs(60), Sim::converged)
            .is_some()
    );

    // The seeds (0, 1, 2) all land on side A, so side B must heal without a
    // seed of its own.
    let side_a: Vec<usize> = (0..8).collect();
    sim.partition(&side_a);
    let split = sim.run_until(Duration::from_secs(120), |s| {
        (0..n).all(|o| {
            (0..n).filter(|&x| x != o).all(|x| {
                let want = if (o < 8) == (x < 8) {
                    Liveness::Alive
                } else {
                    Liveness::Down
                };
                s.sees(o, x, want)
            })
        })
    });
    assert!(split.is_some(), "sides did not mark each other down");
    sim.run_for(Duration::from_secs(60));

    sim.heal();
    let healed = sim.run_until(Duration::from_secs(120), Sim::converged);
    assert!(healed.is_some(), "views did not agree after healing");
}
