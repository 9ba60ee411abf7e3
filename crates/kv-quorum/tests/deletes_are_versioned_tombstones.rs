//! Deletes are tombstones carrying versions: a read that finds only
//! tombstones answers "not found", and a concurrent put survives a delete.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns are test code too

mod common;

use bytes::Bytes;
use common::{Sim, config, home};
use kv_quorum::{Consistency, RequestOptions};
use kv_types::Storage as _;

#[test]
fn delete_with_context_makes_the_key_not_found() {
    let sim = Sim::new(1700, 3);
    let h = home(&sim, b"k");
    let c = sim.coordinator(h[0], config());
    let all = RequestOptions::with(Consistency::All);
    sim.run(c.put(b"k", Bytes::from_static(b"v"), None, all))
        .unwrap();
    let got = sim.run(c.get(b"k", all)).unwrap();
    sim.run(c.delete(b"k", Some(&got.context), all)).unwrap();
    let got = sim.run(c.get(b"k", all)).unwrap();
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
    sim.run(c.put(b"k", Bytes::from_static(b"again"), Some(&got.context), all))
        .unwrap();
    let set = sim.replica(h[1]).read(b"k").unwrap();
    assert_eq!(set.siblings().len(), 1);
}

#[test]
fn storage_sees_a_tombstone_record() {
    let storage = std::sync::Arc::new(kv_types::MemStorage::new());
    let replica = kv_quorum::Replica::new(
        kv_types::NodeId(1),
        storage.clone(),
        std::sync::Arc::new(kv_types::MemStorage::new()),
        kv_quorum::HintLimits::default(),
    )
    .unwrap();
    let write = |value: Option<&'static [u8]>, context| kv_quorum::ReplicaRequest::Write {
        key: Bytes::from_static(b"k"),
        context,
        value: value.map(Bytes::from_static),
        max_siblings: 8,
    };
    let resp = replica.handle(write(Some(b"v"), kv_quorum::VersionVector::new()));
    let kv_quorum::ReplicaResponse::Written { set } = resp else {
        panic!("{resp:?}")
    };
    assert!(!storage.get(b"k").unwrap().unwrap().is_tombstone());
    replica.handle(write(None, set.clock().clone()));
    assert!(storage.get(b"k").unwrap().unwrap().is_tombstone());
}

#[test]
fn a_put_concurrent_with_a_delete_survives() {
    let sim = Sim::new(1800, 3);
    let h = home(&sim, b"k");
    let a = sim.coordinator(h[0], config());
    let b = sim.coordinator(h[1], config());
    let all = RequestOptions::with(Consistency::All);
    sim.run(a.put(b"k", Bytes::from_static(b"v"), None, all))
        .unwrap();
    let got = sim.run(a.get(b"k", all)).unwrap();
    let (d, p) = sim.run(futures::future::join(
        a.delete(b"k", Some(&got.context), all),
        b.put(b"k", Bytes::from_static(b"w"), Some(&got.context), all),
    ));
    d.unwrap();
    p.unwrap();
    let got = sim.run(a.get(b"k", all)).unwrap();
    assert_eq!(got.siblings, vec![Bytes::from_static(b"w")]);
}
