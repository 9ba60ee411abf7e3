//! Figures for gossip: spread, detection time, false downs and bytes, all
//! measured in the deterministic simulator (`kv_gossip::sim`).
//!
//! Run with `cargo xtask bench gossip`; prints a table and writes
//! `target/bench/gossip.json`. `KV_SEED` changes the seed.

use std::time::{Duration, Instant};

use kv_benches::{Mark, Report};
use kv_gossip::sim::{Sim, SimConfig, seed_from_env};
use kv_gossip::{Detector, Event, Liveness, MAX_MESSAGE_BYTES, default_detector};

const INTERVAL: Duration = Duration::from_secs(1);

fn arg(name: &str) -> Option<usize> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

fn config(seed: u64) -> SimConfig {
    let mut c = SimConfig::new(seed);
    // `-- --fanout N` and `-- --max-digests N` explore other settings; the
    // defaults are the library's.
    if let Some(f) = arg("--fanout") {
        c.fanout = f;
    }
    if let Some(d) = arg("--max-digests") {
        c.max_digests_per_message = d;
    }
    c.interval = INTERVAL;
    c.record_events = false;
    c
}

/// Boots `n` nodes from the seeds and runs until every view is complete.
fn booted(cfg: SimConfig, n: usize) -> (Sim, f64) {
    let mut sim = Sim::new(cfg, n);
    let took = sim
        .run_until(INTERVAL * 600, Sim::converged)
        .map_or(f64::NAN, |d| d.as_secs_f64() / INTERVAL.as_secs_f64());
    (sim, took)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    v[v.len() / 2]
}

/// Rounds for a changed fact (one node's new weight) to reach every node,
/// rounds to boot, and bytes sent per node per round once steady.
fn rounds_to_all(seed: u64, n: usize, trials: usize) -> (f64, f64, f64, f64) {
    let mut cfg = config(seed);
    cfg.measure_bytes = true;
    let (mut sim, boot) = booted(cfg, n);
    sim.run_for(INTERVAL * 5);
    let steady = 10;
    let before: u64 = (0..n).map(|i| sim.bytes_sent(i)).sum();
    sim.run_for(INTERVAL * steady);
    let after: u64 = (0..n).map(|i| sim.bytes_sent(i)).sum();
    let bytes = (after - before) as f64 / n as f64 / f64::from(steady);
    let mut rounds = Vec::new();
    for t in 0..trials {
        let k = (t * 7919 + 1) % n;
        let weight = 100 + t as u32;
        let id = sim.id(k);
        if let Some(g) = sim.node_mut(k) {
            g.set_weight(weight);
        }
        let took = sim.run_until(INTERVAL * 200, |s| {
            (0..s.len()).all(|o| {
                s.node(o)
                    .and_then(|g| g.member(id))
                    .is_some_and(|m| m.meta.weight == weight)
            })
        });
        rounds.push(took.map_or(f64::NAN, |d| d.as_secs_f64() / INTERVAL.as_secs_f64()));
        sim.run_for(INTERVAL * 2);
    }
    (
        median(&mut rounds),
        boot,
        bytes,
        sim.largest_message() as f64,
    )
}

/// Times from a crash until every other node marks the node down, in ms.
fn detection(seed: u64, n: usize, trials: usize, detector: Detector) -> Vec<f64> {
    let mut cfg = config(seed);
    cfg.detector = detector;
    let (mut sim, _) = booted(cfg, n);
    sim.run_for(INTERVAL * 30);
    let mut times = Vec::new();
    for t in 0..trials {
        let k = (t * 37 + 5) % n;
        sim.crash(k);
        let took = sim.run_until(INTERVAL * 300, |s| s.all_see(k, Liveness::Down));
        times.push(took.map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0));
        sim.restart(k);
        sim.run_until(INTERVAL * 300, Sim::converged);
        sim.run_for(INTERVAL * 30);
    }
    times
}

/// "Down" marks of running nodes over `minutes` at `loss`.
fn false_downs(seed: u64, n: usize, loss: f64, minutes: u64, detector: Detector) -> usize {
    let mut cfg = config(seed);
    cfg.detector = detector;
    cfg.record_events = true;
    let (mut sim, _) = booted(cfg, n);
    sim.run_for(INTERVAL * 30);
    sim.take_events();
    sim.set_loss(loss);
    sim.run_for(Duration::from_secs(60 * minutes));
    sim.take_events()
        .iter()
        .filter(|e| matches!(e.event, Event::Down { .. }))
        .count()
}

/// `-- --sweep`: detection time against false downs for several thresholds
/// of both detectors, the measurement behind the default.
fn sweep(seed: u64) {
    let fixed = |down: u32| Detector::Fixed {
        suspect_after: INTERVAL * down / 2,
        down_after: INTERVAL * down,
    };
    let phi = |down: f64| match Detector::phi_for(INTERVAL) {
        Detector::PhiAccrual {
            window,
            min_mean,
            max_sample,
            ..
        } => Detector::PhiAccrual {
            suspect_phi: down * 0.6,
            down_phi: down,
            window,
            min_mean,
            max_sample,
        },
        other => other,
    };
    let variants = [
        ("fixed 5s", fixed(5)),
        ("fixed 8s", fixed(8)),
        ("fixed 10s", fixed(10)),
        ("phi 2", phi(2.0)),
        ("phi 3", phi(3.0)),
        ("phi 4", phi(4.0)),
        ("phi 5", phi(5.0)),
        ("phi 8", phi(8.0)),
    ];
    println!("detector   detect_med_ms  fd20%_n100  fd40%_n100  fd50%_n100  fd40%_n10  fd50%_n10");
    for (name, d) in variants {
        let mut t = detection(seed, 100, 10, d);
        let med = median(&mut t);
        let f: Vec<usize> = [(100, 0.2), (100, 0.4), (100, 0.5), (10, 0.4), (10, 0.5)]
            .iter()
            .map(|&(n, loss)| false_downs(seed, n, loss, 10, d))
            .collect();
        println!(
            "{name:<10} {med:>13.0}  {:>10}  {:>10}  {:>10}  {:>9}  {:>9}",
            f[0], f[1], f[2], f[3], f[4]
        );
    }
}

fn main() -> std::io::Result<()> {
    let seed = seed_from_env(1);
    if std::env::args().any(|a| a == "--sweep") {
        sweep(seed);
        return Ok(());
    }
    let wall = Instant::now();
    let mut r = Report::new("gossip");

    for n in [10usize, 100, 1000] {
        let (rounds, boot, bytes, largest) = rounds_to_all(seed, n, 5);
        r.add_marked(
            &format!("largest_message_bytes_n{n}"),
            &format!("largest message sent, boot included, n={n}"),
            largest,
            "B",
            Mark::AtMost(MAX_MESSAGE_BYTES as f64),
        );
        r.add(
            &format!("bytes_per_node_round_n{n}"),
            &format!("bytes sent per node per round, n={n}"),
            bytes,
            "B",
        );
        r.add(
            &format!("rounds_to_all_n{n}"),
            &format!("rounds for a fact to reach all, n={n} (median of 5)"),
            rounds,
            "rounds",
        );
        r.add(
            &format!("boot_rounds_n{n}"),
            &format!("rounds to boot {n} nodes from 3 seeds"),
            boot,
            "rounds",
        );
        eprintln!("n={n} done at {:?}", wall.elapsed());
    }

    let n = 100;
    let phi = default_detector(INTERVAL);
    for (name, det) in [
        ("phi", Detector::phi_for(INTERVAL)),
        ("fixed", Detector::fixed_for(INTERVAL)),
    ] {
        let mut t = detection(seed, n, 20, det);
        let max = t.iter().copied().fold(0.0, f64::max);
        let med = median(&mut t);
        let is_default = det == phi;
        let prefix = if is_default {
            String::new()
        } else {
            format!("{name}_")
        };
        r.add(
            &format!("{prefix}detect_ms_median"),
            &format!("{name}: crash to down everywhere, median (n={n}, 20 crashes)"),
            med,
            "ms",
        );
        r.add(
            &format!("{prefix}detect_ms_max"),
            &format!("{name}: crash to down everywhere, max"),
            max,
            "ms",
        );
        for (loss, key) in [(0.05, "loss5"), (0.20, "loss20")] {
            let f = false_downs(seed, n, loss, 10, det) as f64;
            let k = format!("{prefix}false_down_{key}");
            let label = format!(
                "{name}: false downs in 10 min at {}% loss (n={n})",
                loss * 100.0
            );
            if is_default && key == "loss5" {
                r.add_marked(&k, &label, f, "marks", Mark::AtMost(0.0));
            } else {
                r.add(&k, &label, f, "marks");
            }
        }
        eprintln!("{name} done at {:?}", wall.elapsed());
    }

    r.add(
        "wall_s",
        "wall time of this run",
        wall.elapsed().as_secs_f64(),
        "s",
    );
    r.finish()?;
    Ok(())
}
