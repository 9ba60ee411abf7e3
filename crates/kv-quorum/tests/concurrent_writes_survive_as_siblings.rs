//! Concurrent writes all survive as siblings; a write with the merged
//! context resolves them; the sibling count is bounded.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns are test code too

mod common;

use bytes::Bytes;
use common::{Sim, config, seeds};
use futures::future::join_all;
use kv_quorum::{QuorumConfig, QuorumError, RequestOptions};

#[test]
fn concurrent_puts_become_siblings_and_none_is_dropped() {
    for seed in seeds(300, 10) {
        let sim = Sim::new(seed, 5);
        let coordinators: Vec<_> = sim
            .nodes
            .iter()
            .map(|&id| sim.coordinator(id, config()))
            .collect();
        let opts = RequestOptions::default();
        sim.run(coordinators[0].put(b"k", Bytes::from_static(b"base"), None, opts))
            .unwrap();
        let read = sim.run(coordinators[0].get(b"k", opts)).unwrap();
        // Every node writes at once, all from the same context.
        let writes = coordinators.iter().enumerate().map(|(i, c)| {
            let ctx = read.context.clone();
            async move {
                c.put(b"k", Bytes::from(format!("v{i}")), Some(&ctx), opts)
                    .await
            }
        });
        for r in sim.run(join_all(writes)) {
            r.unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        }
        sim.settle();
        let all = RequestOptions::with(kv_quorum::Consistency::All);
        let got = sim.run(coordinators[1].get(b"k", all)).unwrap();
        let mut values: Vec<_> = got.siblings.clone();
        values.sort();
        let expected: Vec<Bytes> = (0..5).map(|i| Bytes::from(format!("v{i}"))).collect();
        assert_eq!(values, expected, "seed {seed}");

        // A write with the context of that read supersedes all of them.
        sim.run(coordinators[2].put(
            b"k",
            Bytes::from_static(b"resolved"),
            Some(&got.context),
            opts,
        ))
        .unwrap();
        let got = sim.run(coordinators[3].get(b"k", opts)).unwrap();
        assert_eq!(
            got.siblings,
            vec![Bytes::from_static(b"resolved")],
            "seed {seed}"
        );
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
        sim.run(c.put(b"k", Bytes::from(format!("{i}")), None, opts))
            .unwrap();
    }
    let err = sim
        .run(c.put(b"k", Bytes::from_static(b"x"), None, opts))
        .unwrap_err();
    assert_eq!(err, QuorumError::TooManySiblings { count: 4, max: 3 });
    // Nothing was stored by the refused write.
    let got = sim.run(c.get(b"k", opts)).unwrap();
    assert_eq!(got.siblings.len(), 3);
    // Resolving with the context is always allowed.
    sim.run(c.put(b"k", Bytes::from_static(b"one"), Some(&got.context), opts))
        .unwrap();
    assert_eq!(sim.run(c.get(b"k", opts)).unwrap().siblings.len(), 1);
}
