//! A node that joins a cluster holding data gets its share at once: right
//! after the join, anti-entropy goes through every peer back to back, long
//! before its interval (a minute here) would bring the next round.
//!
//! Runs only when `KV_CLUSTER_TESTS=1` (as `cargo xtask test-cluster` sets).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, Node};

const KEYS: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_node_fetches_its_share_without_waiting_an_interval() {
    if !common::cluster_tests_enabled() {
        return;
    }
    let args = common::flags(
        "--n 2 --r 1 --w 2 --mode strict --durability sync --gossip-interval-ms 100 --anti-entropy-interval-ms 60000",
    );
    let mut cluster = Cluster::start(3, &args).await;
    let c0 = cluster.nodes[0].client().await;
    for i in 0..KEYS {
        c0.put(format!("before-{i}"), format!("v{i}"), None)
            .await
            .unwrap();
    }

    let seed = cluster.nodes[0].addr.clone();
    let joiner = Node::start_temp(|_| {
        let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        a.extend(["--seeds".to_owned(), seed]);
        a
    });
    cluster.nodes.push(joiner);
    cluster.wait_alive(4).await;
    let new = 3;

    // Its Merkle index counts what it holds; wait until that stops growing.
    let client = cluster.nodes[new].client().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut held, mut steady_since) = (0, Instant::now());
    loop {
        let now = client.status().await.unwrap().merkle_keys;
        if now != held {
            (held, steady_since) = (now, Instant::now());
        } else if held > 0 && steady_since.elapsed() > Duration::from_secs(2) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new node holds {held} keys after 30 s; log:\n{}",
            cluster.nodes[new].log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Alone, it must answer every key it is now home to from its own
    // replica; keys it is not home to are Unavailable.
    for i in 0..3 {
        cluster.nodes[i].kill();
    }
    cluster.wait_alive_seen_by(new, 1).await;
    let home_to = common::check_home_keys_alone(&client, "before-", KEYS).await;
    assert_eq!(held, home_to as u64, "it holds keys it is not home to");
}
