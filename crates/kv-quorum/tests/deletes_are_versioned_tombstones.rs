//! Deletes are tombstones carrying versions: a read that finds only
//! tombstones answers "not found", and a concurrent put survives a delete.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns are test code too

mod common;

use std::sync::Arc;

use common::{Sim, b, config, home};
use kv_quorum::{
    Consistency, HintLimits, Replica, ReplicaRequest, ReplicaResponse, RequestOptions, WriteContext,
};
use kv_types::{MemStorage, NodeId, Storage as _};

const ALL: RequestOptions = RequestOptions::with(Consistency::All);

#[test]
fn delete_with_context_makes_the_key_not_found() {
    let sim = Sim::new(1700, 3);
    let h = home(&sim, b"k");
    let c = sim.coordinator(h[0], config());
    sim.put(&c, "k", "v", None, ALL).unwrap();
    let got = sim.get(&c, "k", ALL).unwrap();
    sim.run(c.delete(b"k", Some(&got.context), ALL)).unwrap();
    let got = sim.get(&c, "k", ALL).unwrap();
    assert!(!got.is_found());
    assert!(got.siblings.is_empty());
    for &n in &h {
        // Storage holds a tombstone that still carries the version.
        let set = sim.replica(n).read(b"k").unwrap();
        assert!(set.is_deleted());
        assert_eq!(set.siblings().len(), 1);
        assert!(!set.clock().is_empty());
    }
    // A put with the context of the "not found" read supersedes the tombstone.
    sim.put(&c, "k", "again", Some(&got.context), ALL).unwrap();
    assert_eq!(sim.replica(h[1]).read(b"k").unwrap().siblings().len(), 1);
}

#[test]
fn storage_sees_a_tombstone_record() {
    let storage = Arc::new(MemStorage::new());
    let hints = Arc::new(MemStorage::new());
    let replica = Replica::new(NodeId(1), storage.clone(), hints, HintLimits::default()).unwrap();
    let write = |value: Option<&str>, context| ReplicaRequest::Write {
        key: b("k"),
        context,
        value: value.map(b),
        max_siblings: 8,
        state_bytes_max: 1 << 20,
    };
    let resp = replica.handle(write(Some("v"), WriteContext::new()));
    let ReplicaResponse::Written { set, .. } = resp else {
        panic!("{resp:?}")
    };
    assert!(!storage.get(b"k").unwrap().unwrap().is_tombstone());
    replica.handle(write(None, set.clock().clone().into()));
    assert!(storage.get(b"k").unwrap().unwrap().is_tombstone());
}

#[test]
fn a_put_concurrent_with_a_delete_survives() {
    let sim = Sim::new(1800, 3);
    let h = home(&sim, b"k");
    let a = sim.coordinator(h[0], config());
    let c = sim.coordinator(h[1], config());
    sim.put(&a, "k", "v", None, ALL).unwrap();
    let got = sim.get(&a, "k", ALL).unwrap();
    let (d, p) = sim.run(futures::future::join(
        a.delete(b"k", Some(&got.context), ALL),
        c.put(b"k", b("w"), Some(&got.context), ALL),
    ));
    d.unwrap();
    p.unwrap();
    assert_eq!(sim.get(&a, "k", ALL).unwrap().siblings, vec![b("w")]);
}
