//! Three real `kvnode` processes on loopback: replication across nodes,
//! writes with a node down, strict-mode refusal with two down, and data that
//! survives a restart.
//!
//! These start and kill processes and wait for failure detection, so they
//! run only when `KV_CLUSTER_TESTS=1` (as `cargo xtask test-cluster` sets).

#![allow(clippy::unwrap_used)]

mod common;

use common::Cluster;
use kv_client::{ClientError, Consistency, ErrorCode};

fn assert_unavailable(err: ClientError) {
    assert!(
        matches!(
            err,
            ClientError::Server {
                code: ErrorCode::Unavailable,
                ..
            }
        ),
        "{err:?}"
    );
}

const ARGS: &[&str] = &[
    "--n",
    "3",
    "--r",
    "2",
    "--w",
    "2",
    "--mode",
    "strict",
    "--durability",
    "sync",
    "--gossip-interval-ms",
    "100",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_replicate_and_survive_failures() {
    if !common::cluster_tests_enabled() {
        return;
    }
    let mut cluster = Cluster::start(3, ARGS).await;

    // Nodes that started together took turns choosing tokens: each owns
    // about a third of the ring, none nothing.
    let status = cluster.nodes[0].client().await.status().await.unwrap();
    assert_eq!(status.members.len(), 3, "{status:?}");
    for m in &status.members {
        assert!(
            (250_000..=420_000).contains(&m.ring_share_ppm),
            "uneven shares: {status:?}"
        );
    }

    // A put through one node is read through another.
    let c0 = cluster.nodes[0].client().await;
    let c1 = cluster.nodes[1].client().await;
    c0.put("colour", "blue", None).await.unwrap();
    let read = c1.get("colour").await.unwrap();
    assert_eq!(read.siblings, vec![bytes::Bytes::from("blue")]);

    // With one node killed, W=2 writes still succeed, and reads see them.
    cluster.nodes[2].kill();
    c0.put("shape", "circle", None).await.unwrap();
    assert_eq!(
        c1.get("shape").await.unwrap().siblings,
        vec![bytes::Bytes::from("circle")]
    );

    // With two killed, strict mode refuses: Unavailable.
    cluster.nodes[1].kill();
    cluster.wait_alive_seen_by(0, 1).await;
    assert_unavailable(c0.put("size", "large", None).await.unwrap_err());
    // Reads that need two replicas are refused too; one replica still reads.
    assert_unavailable(c0.get("colour").await.unwrap_err());
    let one = c0.get_with("colour", Some(Consistency::One)).await.unwrap();
    assert_eq!(one.siblings, vec![bytes::Bytes::from("blue")]);

    // A restarted node still has its data: with the others down, read
    // through it from its own replica alone.
    cluster.nodes[1].restart();
    cluster.nodes[0].kill();
    let c1 = cluster.nodes[1].client().await;
    let read = c1.get_with("shape", Some(Consistency::One)).await.unwrap();
    assert_eq!(read.siblings, vec![bytes::Bytes::from("circle")]);
}
