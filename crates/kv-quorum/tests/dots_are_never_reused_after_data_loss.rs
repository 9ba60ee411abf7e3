//! A replica that lost its data must issue dots under a fresh actor: with
//! the old actor it reissues a dot other replicas already hold for another
//! value, and they keep the old value (Riak kv679); with a fresh one both
//! writes survive.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns are test code too

use bytes::Bytes;
use kv_quorum::{HintLimits, Replica, ReplicaRequest, ReplicaResponse, SiblingSet, WriteContext};
use kv_types::NodeId;

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn blind_write(r: &Replica, value: &str) -> SiblingSet {
    let req = ReplicaRequest::Write {
        key: b("k"),
        context: WriteContext::new(),
        value: Some(b(value)),
        max_siblings: 32,
        state_bytes_max: 1 << 20,
    };
    match r.handle(req) {
        ReplicaResponse::Written { set, .. } => set,
        other => panic!("{other:?}"),
    }
}

fn replicate(r: &Replica, set: &SiblingSet) {
    let req = ReplicaRequest::Replicate {
        key: b("k"),
        set: set.clone(),
    };
    assert_eq!(r.handle(req), ReplicaResponse::Ack);
}

fn values(r: &Replica) -> Vec<Bytes> {
    let mut v: Vec<Bytes> = r.read(b"k").unwrap().values().cloned().collect();
    v.sort();
    v
}

/// A blind put of "x" acknowledged by all three replicas, then the issuer
/// (node 1) loses its storage and comes back as `reborn`, which issues a
/// blind put of "y" that is replicated everywhere and read-repaired back.
fn lose_issuer_data_then_write(reborn: Replica) -> [Replica; 3] {
    let limits = HintLimits::default();
    let (r1, r2, r3) = (
        Replica::in_memory(NodeId(1), limits),
        Replica::in_memory(NodeId(2), limits),
        Replica::in_memory(NodeId(3), limits),
    );
    let x = blind_write(&r1, "x");
    replicate(&r2, &x);
    replicate(&r3, &x);
    drop(r1);
    let y = blind_write(&reborn, "y");
    replicate(&r2, &y);
    replicate(&r3, &y);
    // Read repair: the merged state of the others goes back to the issuer.
    let merged = r2.read(b"k").unwrap();
    replicate(&reborn, &merged);
    [reborn, r2, r3]
}

#[test]
fn reusing_the_actor_after_data_loss_loses_the_second_write() {
    let replicas =
        lose_issuer_data_then_write(Replica::in_memory(NodeId(1), HintLimits::default()));
    // The hazard the fresh actor exists for: "y" got the dot of "x", so
    // the replicas that held "x" treat "y" as already seen.
    for r in &replicas[1..] {
        assert_eq!(values(r), vec![b("x")], "replica {}", r.id());
    }
}

#[test]
fn a_fresh_actor_after_data_loss_keeps_both_writes_everywhere() {
    let reborn = Replica::in_memory(NodeId(1), HintLimits::default()).with_actor(NodeId(1 << 40));
    assert_eq!((reborn.id(), reborn.actor()), (NodeId(1), NodeId(1 << 40)));
    let replicas = lose_issuer_data_then_write(reborn);
    for r in &replicas {
        assert_eq!(values(r), vec![b("x"), b("y")], "replica {}", r.id());
    }
    // The dot of "y" is the fresh actor's.
    let set = replicas[1].read(b"k").unwrap();
    let y = set
        .siblings()
        .iter()
        .find(|s| s.value == Some(b("y")))
        .unwrap();
    assert_eq!(y.dot.actor, NodeId(1 << 40));
}

#[test]
fn a_replica_issues_dots_under_its_node_id_by_default() {
    let r = Replica::in_memory(NodeId(7), HintLimits::default());
    assert_eq!(r.actor(), NodeId(7));
    let set = blind_write(&r, "v");
    assert_eq!(set.siblings()[0].dot.actor, NodeId(7));
}
