//! A key whose three replicas diverged, each to nearly the client write
//! bound, holds three times what one frame carries. Through real `kvnode`
//! processes: every read still answers (with the siblings that fit and a
//! context for exactly those), no connection breaks, and a client that
//! resolves what it reads brings the replicas back to one value.
//!
//! Runs only when `KV_CLUSTER_TESTS=1` (as `cargo xtask test-cluster` sets).

#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::Cluster;
use kv_client::Consistency;

const MIB: usize = 1 << 20;
/// Just under the 8 MiB write bound, per replica.
const VALUES_PER_REPLICA: u8 = 7;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_diverged_past_a_frame_are_read_in_parts_and_resolved() {
    if !common::cluster_tests_enabled() {
        return;
    }
    // Strict, W=1 per request, and no anti-entropy: only reads, read
    // repair and the client's resolving writes touch the key.
    let args = common::flags(
        "--n 3 --r 2 --w 2 --mode strict --gossip-interval-ms 100 --anti-entropy-interval-ms 0",
    );
    let mut cluster = Cluster::start(3, &args).await;
    // Each node in turn takes writes alone, the other two down.
    for alone in 0..3 {
        for other in (0..3).filter(|&j| j != alone) {
            cluster.nodes[other].kill();
        }
        cluster.wait_alive_seen_by(alone, 1).await;
        let client = cluster.nodes[alone].client().await;
        for v in 0..VALUES_PER_REPLICA {
            let value = Bytes::from(vec![16 * alone as u8 + v; MIB]);
            client
                .put_with("big", value, None, Some(Consistency::One))
                .await
                .unwrap_or_else(|e| panic!("write {v} through node {alone}: {e}"));
        }
        for other in (0..3).filter(|&j| j != alone) {
            cluster.nodes[other].restart();
        }
        cluster.wait_alive(3).await;
    }

    let client = cluster.nodes[0].client().await;
    let mut rounds = 0;
    let mut saw_partial = false;
    loop {
        let got = client
            .get_with("big", Some(Consistency::All))
            .await
            .unwrap_or_else(|e| panic!("read {rounds}: {e}"));
        saw_partial |= got.omitted > 0;
        if got.siblings == vec![Bytes::from_static(b"resolved")] && got.omitted == 0 {
            break;
        }
        rounds += 1;
        assert!(
            rounds <= 5,
            "no convergence after {rounds} resolving writes"
        );
        client
            .put_with(
                "big",
                "resolved",
                Some(&got.context),
                Some(Consistency::All),
            )
            .await
            .unwrap_or_else(|e| panic!("resolving write {rounds}: {e}"));
    }
    assert!(saw_partial, "the first read should have left siblings out");
    common::wait_replicas_agree(&client, "big").await;
}
