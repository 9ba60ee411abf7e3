//! The `ReplicaDigests` diagnostic through real `kvnode` processes: it
//! tells a replica that missed a write from the others, does not repair it
//! (asking twice gives the same answer), and agrees once a read at R=N has
//! repaired it.
//!
//! Runs only when `KV_CLUSTER_TESTS=1` (as `cargo xtask test-cluster` sets).

#![allow(clippy::unwrap_used)]

mod common;

use common::Cluster;
use kv_client::Consistency;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digests_differ_for_a_replica_that_missed_a_write_until_read_repair() {
    if !common::cluster_tests_enabled() {
        return;
    }
    // Strict and without anti-entropy: nothing but read repair can bring
    // the stale replica back.
    let args = common::flags(
        "--n 3 --r 2 --w 2 --mode strict --gossip-interval-ms 100 --anti-entropy-interval-ms 0",
    );
    let mut cluster = Cluster::start(3, &args).await;
    let stale = 2;
    cluster.nodes[stale].kill();
    cluster.wait_alive_seen_by(0, 2).await;
    let c0 = cluster.nodes[0].client().await;
    c0.put("d", "v1", None).await.unwrap();
    cluster.nodes[stale].restart();
    cluster.wait_alive(3).await;

    let digests = c0.replica_digests("d").await.unwrap();
    assert_eq!(digests.len(), 3, "{digests:?}");
    assert!(digests.iter().all(|d| d.digest.is_some()), "{digests:?}");
    let distinct: std::collections::BTreeSet<_> = digests.iter().map(|d| d.digest).collect();
    assert_eq!(
        distinct.len(),
        2,
        "one replica missed the write: {digests:?}"
    );
    // Asking repaired nothing.
    assert_eq!(c0.replica_digests("d").await.unwrap(), digests);

    c0.get_with("d", Some(Consistency::All)).await.unwrap();
    common::wait_replicas_agree(&c0, "d").await;
}
