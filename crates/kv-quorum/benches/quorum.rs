//! Criterion benchmarks of the quorum layer (group `quorum`): coordinator
//! overhead per get and per put with in-memory replicas and a direct
//! in-process transport (no network, no serialization), and the cost of
//! merging version vectors and sibling sets with 3, 10 and 100 actors.

use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use futures::executor::block_on;
use kv_quorum::{
    AllAlive, CausalContext, Coordinator, HintLimits, InProcessTransport, NoTimer, QuorumConfig,
    Replica, RequestOptions, SiblingSet, StaticRing, VersionVector, WriteContext,
};
use kv_types::NodeId;

const KEYS: usize = 1024;

fn cluster() -> Coordinator {
    let ids: Vec<NodeId> = (1..=3).map(NodeId).collect();
    let replicas = ids
        .iter()
        .map(|&id| Arc::new(Replica::in_memory(id, HintLimits::default())));
    Coordinator::new(
        ids[0],
        QuorumConfig::default(),
        Arc::new(StaticRing::new(ids.iter().copied())),
        Arc::new(AllAlive),
        Arc::new(InProcessTransport::new(replicas)),
        Arc::new(NoTimer),
    )
    .expect("default config is valid")
}

fn keys() -> Vec<Bytes> {
    (0..KEYS)
        .map(|i| Bytes::from(format!("key-{i:06}")))
        .collect()
}

fn coordinator(c: &mut Criterion) {
    let mut g = c.benchmark_group("quorum");
    let value = Bytes::from(vec![7u8; 100]);
    let opts = RequestOptions::default();

    let coord = cluster();
    let keys = keys();
    for k in &keys {
        block_on(coord.put(k, value.clone(), None, opts)).expect("put");
    }
    let mut i = 0usize;
    g.bench_function("coordinator_get", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(block_on(coord.get(&keys[i], opts)).expect("get"))
        })
    });

    // Each put passes the context of the previous one, so keys keep one
    // sibling, as a read-modify-write client would.
    let mut contexts: Vec<Option<CausalContext>> = vec![None; KEYS];
    g.bench_function("coordinator_put", |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            let reply = block_on(coord.put(&keys[i], value.clone(), contexts[i].as_ref(), opts))
                .expect("put");
            contexts[i] = Some(reply.context);
        })
    });

    for actors in [3u64, 10, 100] {
        // Two vectors that each lead on half of the actors, so the merge
        // really changes entries.
        let a: VersionVector = (0..actors).map(|i| (NodeId(i), 10 + i % 2)).collect();
        let b2: VersionVector = (0..actors).map(|i| (NodeId(i), 11 - i % 2)).collect();
        g.bench_function(format!("vv_merge_{actors}_actors"), |b| {
            b.iter_batched_ref(
                || a.clone(),
                |x| x.merge(black_box(&b2)),
                BatchSize::SmallInput,
            )
        });

        // Sibling sets: each actor wrote once concurrently on one side; the
        // other side superseded half of those writes.
        let mut left = SiblingSet::new();
        for i in 0..actors {
            left.update(
                &WriteContext::new(),
                NodeId(i),
                Some(Bytes::from_static(b"v")),
            )
            .expect("a fresh actor has dots left");
        }
        let mut right = left.clone();
        let half: VersionVector = left.clock().iter().filter(|(a, _)| a.0 % 2 == 0).collect();
        right
            .update(
                &half.clone().into(),
                NodeId(0),
                Some(Bytes::from_static(b"w")),
            )
            .expect("a fresh actor has dots left");
        g.bench_function(format!("dvv_merge_{actors}_actors"), |b| {
            b.iter_batched_ref(
                || left.clone(),
                |x| x.merge(black_box(&right)),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, coordinator);
criterion_main!(benches);
