//! Concurrent writes all survive as siblings; a write with the merged
//! context resolves them; the sibling count is bounded.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns are test code too

mod common;

use common::{Sim, b, config, seeds};
use futures::future::join_all;
use kv_quorum::{Consistency, QuorumConfig, QuorumError, RequestOptions};

#[test]
fn concurrent_puts_become_siblings_and_none_is_dropped() {
    for seed in seeds(300, 10) {
        let sim = Sim::new(seed, 5);
        let coordinators = sim.coordinators(&config());
        let opts = RequestOptions::default();
        sim.put(&coordinators[0], "k", "base", None, opts).unwrap();
        let read = sim.get(&coordinators[0], "k", opts).unwrap();
        // Every node writes at once, all from the same context.
        let writes = coordinators
            .iter()
            .enumerate()
            .map(|(i, c)| c.put(b"k", b(&format!("v{i}")), Some(&read.context), opts));
        for r in sim.run(join_all(writes)) {
            r.unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        }
        sim.settle();
        let got = sim
            .get(
                &coordinators[1],
                "k",
                RequestOptions::with(Consistency::All),
            )
            .unwrap();
        let mut values = got.siblings.clone();
        values.sort();
        let expected: Vec<_> = (0..5).map(|i| b(&format!("v{i}"))).collect();
        assert_eq!(values, expected, "seed {seed}");

        // A write with the context of that read supersedes all of them.
        sim.put(&coordinators[2], "k", "resolved", Some(&got.context), opts)
            .unwrap();
        let got = sim.get(&coordinators[3], "k", opts).unwrap();
        assert_eq!(got.siblings, vec![b("resolved")], "seed {seed}");
    }
}

#[test]
fn too_many_siblings_is_a_clear_error() {
    let sim = Sim::new(400, 3);
    let config = QuorumConfig {
        max_siblings: 3,
        ..config()
    };
    let c = sim.coordinator(sim.nodes[0], config);
    let opts = RequestOptions::default();
    for i in 0..3 {
        sim.put(&c, "k", &i.to_string(), None, opts).unwrap();
    }
    let err = sim.put(&c, "k", "x", None, opts).unwrap_err();
    assert_eq!(err, QuorumError::TooManySiblings { count: 4, max: 3 });
    // Nothing was stored by the refused write.
    let got = sim.get(&c, "k", opts).unwrap();
    assert_eq!(got.siblings.len(), 3);
    // Resolving with the context is always allowed.
    sim.put(&c, "k", "one", Some(&got.context), opts).unwrap();
    assert_eq!(sim.get(&c, "k", opts).unwrap().siblings, vec![b("one")]);
}
