//! A new node knows only seed addresses; it learns everyone, everyone
//! learns it, and its later token changes spread as metadata events.

use std::time::Duration;

use kv_gossip::Event;
use kv_gossip::sim::{Sim, SimConfig, seed_from_env};

#[test]
fn new_node_joins_through_seeds_and_its_tokens_spread() {
    let mut cfg = SimConfig::new(seed_from_env(18));
    cfg.loss = 0.05;
    let mut sim = Sim::new(cfg, 10);
    assert!(
        sim.run_until(Duration::from_secs(60), Sim::converged)
            .is_some()
    );
    sim.take_events();

    let k = sim.add_node();
    let id = sim.id(k);
    assert!(
        sim.run_until(Duration::from_secs(60), Sim::converged)
            .is_some(),
        "new node not integrated"
    );
    assert_eq!(sim.node(k).expect("running").members().count(), 11);
    let events = sim.take_events();
    for o in 0..10 {
        assert!(
            events
                .iter()
                .any(|e| e.node == o && e.event == Event::Joined { id }),
            "node {o} saw no join"
        );
    }

    let tokens = vec![1, 2, 3, u64::MAX];
    sim.node_mut(k)
        .expect("running")
        .set_tokens(tokens.clone())
        .expect("within bounds");
    let spread = sim.run_until(Duration::from_secs(30), |s| {
        (0..10).all(|o| {
            s.node(o)
                .and_then(|g| g.member(id))
                .is_some_and(|m| m.meta.tokens == tokens)
        })
    });
    assert!(spread.is_some(), "tokens did not spread");
    let events = sim.take_events();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event == Event::MetaChanged { id })
            .count(),
        10
    );
}
