//! Real `kvnode` processes killed with SIGKILL: every acknowledged write
//! and delete survives at the default durability, and a node that lost its
//! data never issues a dot twice.
//!
//! These start and kill processes, so they run only when
//! `KV_CLUSTER_TESTS=1` (as `cargo xtask test-cluster` sets). The seed is
//! printed; replay with `KV_SEED`.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Cluster, Node};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Kill-and-restart rounds of the single-node test.
const ROUNDS: usize = 5;
/// Concurrent writers per round.
const WRITERS: usize = 8;
/// Keys each writer cycles through.
const KEYS_PER_WRITER: usize = 24;

fn seed() -> u64 {
    let seed = std::env::var("KV_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_0011);
    eprintln!("seed {seed} (replay with KV_SEED={seed})");
    seed
}

/// What a key must read as after a crash: its last acknowledged write,
/// `None` for an acknowledged delete. Writes still in flight at the kill
/// may or may not have landed, so a key with one is left out.
#[derive(Default)]
struct Expected {
    last_acked: BTreeMap<String, Option<Bytes>>,
    in_flight: BTreeMap<String, usize>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_durability_keeps_every_acknowledged_write_across_sigkill() {
    if !common::cluster_tests_enabled() {
        return;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed());
    // README's defaults: no --durability, so the node's default applies.
    let mut node = Node::start_temp(|_| Vec::new());
    let mut acked_total = 0;
    for round in 0..ROUNDS {
        let expected = Arc::new(Mutex::new(Expected::default()));
        let stop_at = Instant::now() + Duration::from_millis(rng.random_range(300..1500));
        let client = node.client().await;
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let client = client.clone();
                let expected = Arc::clone(&expected);
                tokio::spawn(async move {
                    let mut n = 0u64;
                    // Bounded in count and in time.
                    while n < 100_000 && Instant::now() < stop_at + Duration::from_secs(5) {
                        let key = format!("r{round}-w{w}-k{}", n as usize % KEYS_PER_WRITER);
                        let delete = n % 7 == 6;
                        let value = Bytes::from(format!("r{round} w{w} n{n}"));
                        *expected
                            .lock()
                            .unwrap()
                            .in_flight
                            .entry(key.clone())
                            .or_default() += 1;
                        // Blind overwrites leave siblings; read the context
                        // so each write supersedes the last.
                        let Ok(read) = client.get(key.clone()).await else {
                            break;
                        };
                        let result = if delete {
                            client.delete(key.clone(), Some(&read.context)).await
                        } else {
                            client
                                .put(key.clone(), value.clone(), Some(&read.context))
                                .await
                        };
                        let mut e = expected.lock().unwrap();
                        match result {
                            Ok(_) => {
                                let left = e.in_flight.get_mut(&key).unwrap();
                                *left -= 1;
                                if *left == 0 {
                                    e.in_flight.remove(&key);
                                }
                                e.last_acked.insert(key, (!delete).then_some(value));
                            }
                            // Failed or cut off by the kill: stays in flight.
                            Err(_) => break,
                        }
                        n += 1;
                    }
                })
            })
            .collect();
        tokio::time::sleep_until(stop_at.into()).await;
        node.kill();
        for w in writers {
            w.await.unwrap();
        }
        node.restart();
        let client = node.client().await;
        let settled: Vec<(String, Option<Bytes>)> = {
            let e = expected.lock().unwrap();
            e.last_acked
                .iter()
                .filter(|(key, _)| !e.in_flight.contains_key(*key))
                .map(|(key, want)| (key.clone(), want.clone()))
                .collect()
        };
        let mut checked = 0;
        for (key, want) in &settled {
            let got = client.get(key.clone()).await.unwrap();
            match want {
                Some(v) => assert_eq!(
                    got.siblings,
                    vec![v.clone()],
                    "round {round}: {key} lost its last acknowledged write"
                ),
                None => assert!(
                    got.siblings.is_empty(),
                    "round {round}: acknowledged delete of {key} came back: {got:?}"
                ),
            }
            checked += 1;
        }
        eprintln!("round {round}: {checked} keys checked after SIGKILL");
        acked_total += checked;
    }
    assert!(
        acked_total > 0,
        "no write was acknowledged: nothing was tested"
    );
}

/// Riak's kv679: an issuer that lost an acknowledged write must not issue
/// its dot again for another value. Anti-entropy is off, so nothing
/// restores the lost write before the second put.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuer_that_lost_its_data_never_reuses_a_dot() {
    if !common::cluster_tests_enabled() {
        return;
    }
    let args = common::flags(
        "--n 3 --r 3 --w 3 --mode strict --read-fanout all --anti-entropy-interval-ms 0 --gossip-interval-ms 100",
    );
    let mut cluster = Cluster::start(3, &args).await;
    cluster.nodes[0]
        .client()
        .await
        .put("k", "first", None)
        .await
        .unwrap();

    // The issuer loses its data store (node id and tokens survive).
    cluster.nodes[0].kill();
    std::fs::remove_dir_all(cluster.nodes[0].dir.join("data").join("data")).unwrap();
    cluster.nodes[0].restart();
    cluster.wait_alive(3).await;

    let c0 = cluster.nodes[0].client().await;
    // Around a restart, nodes may answer Unavailable ("nothing was
    // written") until they have learned each other's state again: retry
    // only that, bounded.
    until_available(|| c0.put("k", "second", None))
        .await
        .unwrap();
    let c1 = cluster.nodes[1].client().await;
    let mut got = until_available(|| c1.get("k")).await.unwrap().siblings;
    got.sort();
    assert_eq!(
        got,
        vec![Bytes::from("first"), Bytes::from("second")],
        "two blind writes must stay siblings on every replica"
    );
    // Read repair brought every replica to the same state.
    for (i, node) in cluster.nodes.iter().enumerate() {
        // R=3 needs every peer alive in this node's own view.
        cluster.wait_alive_seen_by(i, 3).await;
        let client = node.client().await;
        let mut got = until_available(|| client.get("k")).await.unwrap().siblings;
        got.sort();
        assert_eq!(got.len(), 2, "{}: {got:?}", node.addr);
    }
}

/// Runs `op` until it answers anything but `Unavailable` (which promises
/// that nothing was done, so a retry is safe), at most 50 times.
async fn until_available<T, F>(mut op: impl FnMut() -> F) -> Result<T, kv_client::ClientError>
where
    F: std::future::Future<Output = Result<T, kv_client::ClientError>>,
{
    let mut result = op().await;
    for _ in 0..50 {
        if !matches!(
            result,
            Err(kv_client::ClientError::Server {
                code: kv_client::ErrorCode::Unavailable,
                ..
            })
        ) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        result = op().await;
    }
    result
}
