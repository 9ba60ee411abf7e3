//! Figures of `kv-ring`: load balance, weight fidelity, movement on a join,
//! and lookup speed (`cargo xtask bench ring`).
//!
//! Shares are measured exactly, as the sum of owned range widths over the
//! 2^64 hash space, and cross-checked by hashing a million keys.

use std::error::Error;
use std::hint::black_box;
use std::time::Instant;

use kv_benches::{Mark, Report};
use kv_ring::{Balance, NewNode, NodeSpec, Ring, RingConfig, RingError, Token};
use kv_types::NodeId;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Keys hashed for the sampled cross-checks.
const SAMPLE_KEYS: u64 = 1_000_000;

fn equal_ring(nodes: u64) -> Result<Ring, RingError> {
    Ring::with_nodes(
        RingConfig::default(),
        (1..=nodes).map(|i| NewNode::new(NodeId(i), 1)),
    )
}

/// Max owned share over mean share, from exact range widths.
fn imbalance(ring: &Ring) -> f64 {
    let shares = ring.shares();
    let mean = 1.0 / shares.len() as f64;
    shares.iter().map(|s| s.1).fold(0.0, f64::max) / mean
}

/// Max owned share over mean share, from hashing `SAMPLE_KEYS` keys.
fn sampled_imbalance(ring: &Ring) -> f64 {
    let mut counts = std::collections::BTreeMap::<NodeId, u64>::new();
    for i in 0..SAMPLE_KEYS {
        if let Some(owner) = ring.owner(format!("key-{i}").as_bytes()) {
            *counts.entry(owner).or_default() += 1;
        }
    }
    let mean = SAMPLE_KEYS as f64 / ring.len() as f64;
    counts.values().copied().max().unwrap_or(0) as f64 / mean
}

/// The same number of tokens per node, drawn at random: the baseline.
fn random_ring(nodes: u64, seed: u64) -> Result<Ring, RingError> {
    let config = RingConfig::default();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let specs = (1..=nodes).map(|i| NodeSpec {
        id: NodeId(i),
        weight: 1,
        zone: None,
        tokens: (0..config.vnodes_per_weight)
            .map(|_| Token(rng.random()))
            .collect(),
    });
    Ring::from_specs(config, specs.collect::<Vec<_>>())
}

/// Largest relative error of a node's share against its weight's share.
fn weight_error(ring: &Ring) -> f64 {
    let total = ring.total_weight() as f64;
    ring.shares()
        .iter()
        .zip(ring.nodes())
        .map(|((_, share), node)| {
            let want = f64::from(node.weight) / total;
            (share - want).abs() / want
        })
        .fold(0.0, f64::max)
}

fn weighted_ring(weights: &[u32]) -> Result<Ring, RingError> {
    Ring::with_nodes(
        RingConfig::default(),
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| NewNode::new(NodeId(i as u64 + 1), w)),
    )
}

/// Max over mean of the share of keys each node holds a replica of.
fn replica_imbalance(ring: &Ring, n: usize) -> Result<f64, RingError> {
    let mut loads = Vec::with_capacity(ring.len());
    for node in ring.nodes() {
        let ranges = ring.replicated_ranges(node.id, n)?;
        loads.push(ranges.iter().map(|r| r.fraction()).sum::<f64>());
    }
    let mean = loads.iter().sum::<f64>() / loads.len() as f64;
    Ok(loads.iter().copied().fold(0.0, f64::max) / mean)
}

/// 99 equal nodes in three zones of 33.
fn zoned_ring(balance: Balance) -> Result<Ring, RingError> {
    let config = RingConfig {
        balance,
        ..RingConfig::default()
    };
    Ring::with_nodes(
        config,
        (1..=99u64).map(|i| NewNode::new(NodeId(i), 1).in_zone(format!("z{}", i % 3))),
    )
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut report = Report::new("ring");
    report.add(
        "vnodes_per_weight",
        "tokens per node of weight 1",
        f64::from(RingConfig::default().vnodes_per_weight),
        "",
    );

    for nodes in [10u64, 100, 1000] {
        let started = Instant::now();
        let ring = equal_ring(nodes)?;
        let build_ms = started.elapsed().as_secs_f64() * 1e3;
        let value = imbalance(&ring);
        let key = format!("imbalance_n{nodes}");
        let label = format!("imbalance, {nodes} equal nodes (max/mean)");
        if nodes == 100 {
            report.add_marked(&key, &label, value, "x", Mark::AtMost(1.05));
        } else {
            report.add(&key, &label, value, "x");
        }
        report.add(
            &format!("imbalance_n{nodes}_sampled"),
            &format!(
                "  same, sampled: {SAMPLE_KEYS} keys, +-{:.1}% noise/node",
                100.0 / (SAMPLE_KEYS as f64 / nodes as f64).sqrt()
            ),
            sampled_imbalance(&ring),
            "x",
        );
        report.add(
            &format!("build_n{nodes}_ms"),
            &format!("  time to build the {nodes}-node ring"),
            build_ms,
            "ms",
        );
    }
    let random: Vec<f64> = (0..5)
        .map(|seed| random_ring(100, seed).map(|r| imbalance(&r)))
        .collect::<Result<_, _>>()?;
    report.add(
        "imbalance_random_n100",
        &format!(
            "  baseline: {} random tokens/node, 100 nodes, 5 seeds",
            RingConfig::default().vnodes_per_weight
        ),
        random.iter().sum::<f64>() / random.len() as f64,
        "x",
    );

    let three = weighted_ring(&[1, 2, 4])?;
    let thirty: Vec<u32> = (0..30).map(|i| [1, 2, 4][i % 3]).collect();
    let thirty = weighted_ring(&thirty)?;
    report.add(
        "weight_share_error_n3",
        "weights 1:2:4, 3 nodes: max |share/wanted - 1|",
        weight_error(&three),
        "",
    );
    report.add(
        "weight_share_error_n30",
        "weights 1:2:4 x 10, 30 nodes: same",
        weight_error(&thirty),
        "",
    );
    report.add_marked(
        "weight_share_error_max",
        "weights 1:2:4: worst of the two",
        weight_error(&three).max(weight_error(&thirty)),
        "",
        Mark::AtMost(0.05),
    );

    report.add(
        "replica_imbalance_n100_r3",
        "replica load, 100 nodes, 3 replicas (max/mean)",
        replica_imbalance(&equal_ring(100)?, 3)?,
        "x",
    );
    for (balance, name) in [(Balance::Global, "global"), (Balance::PerZone, "perzone")] {
        let ring = zoned_ring(balance)?;
        report.add(
            &format!("replica_imbalance_n99_3zones_r3_{name}"),
            &format!("  99 nodes in 3 zones, {balance:?} balance"),
            replica_imbalance(&ring, 3)?,
            "x",
        );
        report.add(
            &format!("imbalance_n99_3zones_{name}"),
            "    primary ownership of the same (max/mean)",
            imbalance(&ring),
            "x",
        );
    }

    let mut ring = equal_ring(10)?;
    let before = ring.clone();
    let moves = ring.join(NewNode::new(NodeId(11), 1))?;
    let moved: f64 = moves.iter().map(|m| m.range.fraction()).sum();
    report.add_marked(
        "join_moved_ratio",
        "11th node joins 10: moved / optimum (1/11)",
        moved / (1.0 / 11.0),
        "x",
        Mark::AtMost(1.1),
    );
    let sampled_moved = (0..SAMPLE_KEYS)
        .filter(|i| {
            let key = format!("key-{i}");
            before.owner(key.as_bytes()) != ring.owner(key.as_bytes())
        })
        .count() as f64
        / SAMPLE_KEYS as f64;
    report.add(
        "join_moved_ratio_sampled",
        "  same, sampled over keys",
        sampled_moved / (1.0 / 11.0),
        "x",
    );
    report.add(
        "join_imbalance_n11",
        "  imbalance after the join",
        imbalance(&ring),
        "x",
    );
    let leaving = NodeId(4);
    let share = ring.share(leaving)?;
    let moves = ring.remove_node(leaving)?;
    let moved: f64 = moves.iter().map(|m| m.range.fraction()).sum();
    report.add(
        "leave_moved_ratio",
        "node 4 of 11 leaves: moved / its share",
        moved / share,
        "x",
    );
    report.add(
        "leave_imbalance_n10",
        "  imbalance after the leave",
        imbalance(&ring),
        "x",
    );

    let ring = equal_ring(100)?;
    let keys: Vec<Vec<u8>> = (0..4096)
        .map(|i| format!("user:{i}").into_bytes())
        .collect();
    let rounds = 2_000_000usize;
    let started = Instant::now();
    for i in 0..rounds {
        black_box(ring.preference_list(black_box(&keys[i & 4095]), 3))?;
    }
    let ns = started.elapsed().as_secs_f64() * 1e9 / rounds as f64;
    report.add_marked(
        "preference_list_n3_100nodes_ns",
        "preference_list n=3, 100 nodes (incl. hashing)",
        ns,
        "ns",
        Mark::AtMost(200.0),
    );
    report.finish()?;
    Ok(())
}
