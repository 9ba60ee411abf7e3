//! Sloppy quorum through real `kvnode` processes: with a home replica down,
//! writes still reach W nodes (a stand-in takes a hint), and once the home
//! replica is back the hints are handed to it, and the stand-ins clear
//! their emptied hint stores.
//!
//! Runs only when `KV_CLUSTER_TESTS=1` (as `cargo xtask test-cluster` sets).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::Cluster;

const KEYS: usize = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sloppy_writes_survive_a_dead_home_replica_and_are_handed_back() {
    if !common::cluster_tests_enabled() {
        return;
    }
    let args =
        common::flags("--n 2 --r 1 --w 2 --mode sloppy --durability sync --gossip-interval-ms 100");
    let mut cluster = Cluster::start(4, &args).await;
    let victim = 3;
    cluster.nodes[victim].kill();
    cluster.wait_alive_seen_by(0, 3).await;

    // Every write reaches two nodes although, for about half the keys, one
    // of the two home replicas is down: a stand-in holds a hint for it.
    let c0 = cluster.nodes[0].client().await;
    for i in 0..KEYS {
        c0.put(format!("down-{i}"), format!("v{i}"), None)
            .await
            .unwrap_or_else(|e| panic!("sloppy write {i} failed: {e}"));
    }

    // The home replica comes back; gossip reports it up and the stand-ins
    // replay their hints to it.
    cluster.nodes[victim].restart();
    cluster.wait_alive(4).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut held_before = 0;
    let mut delivered_by = Vec::new();
    for i in 0..3 {
        let client = cluster.nodes[i].client().await;
        loop {
            let status = client.status().await.unwrap();
            if status.hints_pending == 0 {
                held_before += status.hints_delivered_total;
                if status.hints_delivered_total > 0 {
                    delivered_by.push(i);
                }
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {i} still holds {} hints",
                status.hints_pending
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(held_before > 0, "no stand-in took a hint for the dead node");
    // With every hint delivered, a stand-in compacts its hint store, which
    // drops the removal markers the deliveries left.
    for &i in &delivered_by {
        while !cluster.nodes[i].log().contains("hint store compacted") {
            assert!(
                Instant::now() < deadline,
                "node {i} never compacted its emptied hint store; log:\n{}",
                cluster.nodes[i].log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // Alone, the restarted node answers from its own replica (R=1) for the
    // keys it is home to; every one of those must hold the value.
    for i in 0..3 {
        cluster.nodes[i].kill();
    }
    let c3 = cluster.nodes[victim].client().await;
    common::check_home_keys_alone(&c3, "down-", KEYS).await;
}
