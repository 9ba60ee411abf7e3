//! A key's state is bounded by bytes as well as by siblings on the client
//! write path, so it always fits a wire frame; merges never refuse data but
//! count what goes beyond the bounds, and a superseding write resolves it.

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
