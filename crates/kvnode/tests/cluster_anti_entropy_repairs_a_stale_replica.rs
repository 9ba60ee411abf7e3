//! Anti-entropy through real `kvnode` processes: a replica that was down
//! while writes went to the others (strict mode, so no hints) catches up by
//! Merkle diff alone, without a single read to trigger read repair.
//!
//! Runs only when `KV_CLUSTER_TESTS=1` (as `cargo xtask test-cluster` sets).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::Cluster;
use kv_client::Consistency;

const KEYS: u64 = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_missed_writes_converges_by_merkle_diff() {
    if !common::cluster_tests_enabled() {
        return;
    }
    let args = common::flags(
        "--n 3 --r 2 --w 2 --mode strict --durability sync --gossip-interval-ms 100 --anti-entropy-interval-ms 300",
    );
    let mut cluster = Cluster::start(3, &args).await;
    let stale = 2;
    cluster.nodes[stale].kill();
    cluster.wait_alive_seen_by(0, 2).await;

    // W=2 of the two live nodes: the stale node misses every one of these.
    let c0 = cluster.nodes[0].client().await;
    for i in 0..KEYS {
        c0.put(format!("missed-{i}"), format!("v{i}"), None)
            .await
            .unwrap();
    }

    cluster.nodes[stale].restart();
    cluster.wait_alive(3).await;
    let c2 = cluster.nodes[stale].client().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = c2.status().await.unwrap();
        if status.merkle_keys >= KEYS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the stale node holds {} of {KEYS} keys after 60 s",
            status.merkle_keys
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Alone, it answers every key from its own replica.
    cluster.nodes[0].kill();
    cluster.nodes[1].kill();
    for i in 0..KEYS {
        let read = c2
            .get_with(format!("missed-{i}"), Some(Consistency::One))
            .await
            .unwrap();
        assert_eq!(
            read.siblings,
            vec![bytes::Bytes::from(format!("v{i}"))],
            "missed-{i}"
        );
    }
}
