//! A key's state is bounded by bytes as well as by siblings on the client
//! write path. Merges go beyond those bounds (and count it) but never past
//! the hard bound, what a wire frame carries; replicas diverged further
//! than a frame are read in parts and resolved by superseding writes.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns are test code too

mod common;

use bytes::Bytes;
use common::{Sim, b, config};
use kv_quorum::{
    Consistency, DEFAULT_MAX_SIBLINGS, DEFAULT_STATE_BYTES_MAX, HintLimits, QuorumError, Replica,
    ReplicaRequest, ReplicaResponse, RequestOptions, SiblingSet, VersionVector, WriteContext,
};
use kv_types::NodeId;

/// The kv-wire frame limit every replicate and read repair must fit in.
const FRAME_LEN_MAX: usize = 16 << 20;
const MIB: usize = 1 << 20;

#[test]
fn blind_megabyte_puts_stop_before_the_state_outgrows_a_frame() {
    let sim = Sim::new(4100, 3);
    let c = sim.coordinator(sim.nodes[0], config());
    let opts = RequestOptions::with(Consistency::All);
    let mut accepted = 0;
    let mut refused = None;
    for i in 0..16u8 {
        let value = Bytes::from(vec![i; MIB]);
        match sim.run(c.put(b"k", value, None, opts)) {
            Ok(_) => accepted += 1,
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let err = refused.expect("sixteen 1 MiB siblings were all accepted");
    assert!(
        matches!(err, QuorumError::StateTooLarge { max, .. } if max == DEFAULT_STATE_BYTES_MAX),
        "{err:?}"
    );
    assert!(err.nothing_written());
    assert_eq!(accepted, DEFAULT_STATE_BYTES_MAX / MIB - 1);
    sim.settle();
    // The refused write left nothing, and the state fits a frame.
    for &id in &sim.nodes {
        let state = sim.replica(id).read(b"k").unwrap();
        assert_eq!(state.values().count(), accepted, "node {id}");
        let encoded = postcard::to_allocvec(&state).unwrap();
        assert!(encoded.len() < FRAME_LEN_MAX / 2, "{}", encoded.len());
    }
    // Superseding the siblings is still allowed.
    let got = sim.get(&c, "k", opts).unwrap();
    sim.put(&c, "k", "small", Some(&got.context), opts).unwrap();
    assert_eq!(sim.get(&c, "k", opts).unwrap().siblings, vec![b("small")]);
}

fn siblings(count: u64, len: usize) -> SiblingSet {
    let mut set = SiblingSet::new();
    for actor in 1..=count {
        set.update(
            &WriteContext::new(),
            NodeId(actor),
            Some(Bytes::from(vec![0u8; len])),
        )
        .unwrap();
    }
    set
}

fn write(r: &Replica, context: VersionVector) -> ReplicaResponse {
    r.handle(ReplicaRequest::Write {
        key: b("k"),
        context: context.into(),
        value: Some(b("w")),
        max_siblings: DEFAULT_MAX_SIBLINGS as u32,
        state_bytes_max: DEFAULT_STATE_BYTES_MAX as u32,
    })
}

#[test]
fn merges_beyond_the_sibling_bound_keep_everything_and_are_counted() {
    let r = Replica::in_memory(NodeId(100), HintLimits::default());
    let count = DEFAULT_MAX_SIBLINGS as u64 + 8;
    let incoming = siblings(count, 1);
    let resp = r.handle(ReplicaRequest::Replicate {
        key: b("k"),
        set: incoming.clone(),
    });
    assert_eq!(resp, ReplicaResponse::Ack);
    assert_eq!(r.read(b"k").unwrap(), incoming);
    assert_eq!(r.merge_stats().over_siblings_total, 1);
    assert_eq!(r.merge_stats().over_bytes_total, 0);
    // A blind write would grow the key further: refused.
    assert!(matches!(
        write(&r, VersionVector::new()),
        ReplicaResponse::Failed(_)
    ));
    // A write that supersedes the siblings resolves it.
    let resp = write(&r, incoming.clock().clone());
    let ReplicaResponse::Written { set, .. } = resp else {
        panic!("{resp:?}")
    };
    assert_eq!(set.siblings().len(), 1);
}

#[test]
fn merges_beyond_the_byte_bound_keep_everything_and_are_counted() {
    let r = Replica::in_memory(NodeId(100), HintLimits::default());
    let incoming = siblings((DEFAULT_STATE_BYTES_MAX / MIB) as u64 + 1, MIB);
    assert!(incoming.size_bytes() > DEFAULT_STATE_BYTES_MAX);
    let resp = r.handle(ReplicaRequest::Replicate {
        key: b("k"),
        set: incoming.clone(),
    });
    assert_eq!(resp, ReplicaResponse::Ack);
    assert_eq!(r.read(b"k").unwrap(), incoming);
    assert_eq!(r.merge_stats().over_bytes_total, 1);
    assert!(matches!(
        write(&r, VersionVector::new()),
        ReplicaResponse::Failed(kv_quorum::ReplicaFailure::StateTooLarge { .. })
    ));
    let resp = write(&r, incoming.clock().clone());
    assert!(matches!(resp, ReplicaResponse::Written { .. }), "{resp:?}");
}

/// Siblings each home replica takes alone: just under the write bound.
const PER_REPLICA: usize = DEFAULT_STATE_BYTES_MAX / MIB - 1;

/// A simulation in which the three home replicas of `key` diverged: each
/// took [`PER_REPLICA`] blind 1 MiB writes alone, the other two cut off,
/// so their merged state is three times the write bound, far more than
/// one frame carries. Value `v` through replica `i` is 1 MiB of
/// `16 * i + v`, so every value is distinct. Returns the sim and the home.
fn diverged_three_ways(seed: u64, key: &[u8]) -> (Sim, Vec<NodeId>) {
    let sim = Sim::new(seed, 3);
    let home = common::home(&sim, key);
    for (i, &alone) in home.iter().enumerate() {
        for &id in &home {
            if id == alone {
                sim.heal(id);
            } else {
                sim.crash(id);
            }
        }
        let c = sim.coordinator(alone, config());
        let opts = RequestOptions::with(Consistency::One);
        for v in 0..PER_REPLICA as u8 {
            let value = Bytes::from(vec![16 * i as u8 + v; MIB]);
            sim.run(c.put(key, value, None, opts))
                .unwrap_or_else(|e| panic!("write {v} through {alone} (seed {seed}): {e:?}"));
        }
        sim.settle();
    }
    for &id in &home {
        sim.heal(id);
    }
    (sim, home)
}

#[test]
fn replicas_diverged_past_a_frame_are_read_repaired_and_resolved_in_frames() {
    let key = b"big";
    let (sim, home) = diverged_three_ways(4200, key);
    let merged_bytes: usize = home
        .iter()
        .map(|&id| sim.replica(id).read(key).unwrap().size_bytes())
        .sum();
    assert!(merged_bytes > FRAME_LEN_MAX, "{merged_bytes}");

    // A client reads and resolves with each read's context until one value
    // is left; every read answers, each reply fits a frame, and no replica
    // ever holds more than a frame can carry.
    let c = sim.coordinator(home[0], config());
    let all = RequestOptions::with(Consistency::All);
    let mut rounds = 0;
    loop {
        let got = sim
            .get(&c, "big", all)
            .unwrap_or_else(|e| panic!("round {rounds} (seed {}): {e:?}", sim.seed));
        let reply_bytes: usize =
            got.siblings.iter().map(Bytes::len).sum::<usize>() + got.context.as_bytes().len();
        assert!(
            reply_bytes < FRAME_LEN_MAX,
            "round {rounds}: a reply of {reply_bytes} bytes cannot be sent"
        );
        sim.settle();
        for &id in &home {
            let state = sim.replica(id).read(key).unwrap();
            assert!(
                common::fits_a_frame(&state),
                "round {rounds}: node {id} holds {} bytes",
                state.size_bytes()
            );
        }
        if got.siblings == vec![b("resolved")] && got.omitted == 0 {
            break;
        }
        assert!(got.omitted > 0 || got.siblings.len() > 1 || rounds > 0);
        rounds += 1;
        assert!(
            rounds <= 5,
            "no convergence after {rounds} resolving writes"
        );
        sim.put(&c, "big", "resolved", Some(&got.context), all)
            .unwrap_or_else(|e| panic!("resolving write {rounds} (seed {}): {e:?}", sim.seed));
        sim.settle();
    }
    // Every replica converged on the one resolved value.
    for &id in &home {
        assert_eq!(sim.stored(id, "big"), vec![b("resolved")], "node {id}");
    }
}

#[test]
fn a_partial_read_context_supersedes_only_the_siblings_it_returned() {
    let key = b"big";
    let (sim, home) = diverged_three_ways(4300, key);
    let c = sim.coordinator(home[0], config());
    let all = RequestOptions::with(Consistency::All);
    let got = sim.get(&c, "big", all).unwrap();
    assert!(
        got.omitted > 0,
        "{} siblings and none omitted",
        got.siblings.len()
    );
    let returned = got.siblings.len();
    assert_eq!(returned + got.omitted, 3 * PER_REPLICA);
    sim.settle();
    let held = |sim: &Sim| -> std::collections::BTreeSet<Bytes> {
        home.iter()
            .flat_map(|&id| {
                sim.replica(id)
                    .read(key)
                    .unwrap()
                    .values()
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let omitted: Vec<Bytes> = held(&sim)
        .into_iter()
        .filter(|v| !got.siblings.contains(v))
        .collect();
    assert_eq!(omitted.len(), got.omitted);
    // Resolve through each replica in turn: none may drop a sibling the
    // read did not return.
    for &issuer in &home {
        let c = sim.coordinator(issuer, config());
        let one = RequestOptions::with(Consistency::One);
        sim.put(&c, "big", "resolved", Some(&got.context), one)
            .unwrap();
        sim.settle();
        let after = held(&sim);
        for v in &omitted {
            assert!(
                after.contains(v),
                "an omitted sibling was superseded via {issuer}"
            );
        }
    }
}

#[test]
fn a_merge_or_hint_past_the_hard_bound_is_refused_counted_and_leaves_the_key_as_it_was() {
    let hard = 4 * MIB;
    let r = Replica::in_memory(NodeId(100), HintLimits::default()).with_state_bytes_hard_max(hard);
    let first = siblings(3, MIB);
    let replicate = |set: &SiblingSet| {
        r.handle(ReplicaRequest::Replicate {
            key: b("k"),
            set: set.clone(),
        })
    };
    assert_eq!(replicate(&first), ReplicaResponse::Ack);
    // Three more siblings from other actors would make six megabytes.
    let mut more = SiblingSet::new();
    for actor in 10..13 {
        more.update(
            &WriteContext::new(),
            NodeId(actor),
            Some(Bytes::from(vec![1u8; MIB])),
        )
        .unwrap();
    }
    let resp = replicate(&more);
    assert!(
        matches!(resp, ReplicaResponse::Failed(kv_quorum::ReplicaFailure::StateTooLarge { max, .. }) if max == hard),
        "{resp:?}"
    );
    assert_eq!(r.read(b"k").unwrap(), first);
    assert_eq!(r.merge_stats().refused_total, 1);
    // A merge that shrinks the key is taken even while it is large.
    let mut resolved = first.clone();
    resolved
        .update(&first.clock().clone().into(), NodeId(1), Some(b("small")))
        .unwrap();
    assert_eq!(replicate(&resolved), ReplicaResponse::Ack);
    assert_eq!(r.read(b"k").unwrap().values().count(), 1);

    // Hints are held to the same bound.
    let hint = |set: &SiblingSet| {
        r.handle(ReplicaRequest::ReplicateHinted {
            key: b("h"),
            set: set.clone(),
            intended_owner: NodeId(7),
        })
    };
    assert_eq!(hint(&first), ReplicaResponse::Ack);
    assert!(matches!(
        hint(&more),
        ReplicaResponse::Failed(kv_quorum::ReplicaFailure::StateTooLarge { .. })
    ));
    assert_eq!(r.hints().find(b"h").unwrap(), Some(first));
}
