//! `cargo xtask bench cluster`: a closed-loop load generator against real
//! `kvnode` processes on loopback.
//!
//! For each scenario (one node; three nodes with N=3, R=W=2) and each key
//! distribution (uniform, zipfian), it starts the nodes in temporary
//! directories, preloads the key space, then runs `--clients` concurrent
//! clients, each sending its next request as soon as the last is answered,
//! for `--seconds` (and at most `--ops-max` operations). Half the operations
//! are gets and half puts, with 16-byte keys and 100-byte values. Each client
//! writes with the causal context of its last read or write of the key, as a
//! Dynamo client should. Latencies
//! go into HDR histograms; the table and `target/bench/cluster.json` give
//! ops/s and p50, p99 and p99.9.
//!
//! The node binary comes from `KVNODE_BIN` (xtask builds it in release mode
//! and sets it). Nodes run with WAL durability `periodic:1000` unless
//! `--durability` says otherwise, each with one worker thread unless
//! `--node-threads` says otherwise (three nodes and the load generator share
//! the machine's cores). `--node-cpus 1` pins the nodes with taskset; on the
//! 2-core machine every pinning tried was slower than letting the scheduler
//! place the processes (one core: about half the throughput; generator and
//! nodes on separate cores: about 20% less, with twice the p99). The nodes log
//! at `warn` unless `KV_BENCH_NODE_LOG` gives another filter (for example
//! `kv_storage=debug` shows each memtable flush and compaction with its time).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use kv_benches::{Mark, Report};
use kv_client::{Client, ClientConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Options, from `--name value` pairs after `--`.
#[derive(Debug, Clone)]
struct Options {
    clients: usize,
    seconds: u64,
    ops_max: u64,
    keys: u64,
    durability: String,
    node_threads: usize,
    /// CPU list (as `taskset -c` takes it) the nodes are pinned to, if any.
    node_cpus: Option<String>,
    seed: u64,
    scenarios: Vec<String>,
}

impl Options {
    fn parse() -> Result<Self, String> {
        let mut o = Options {
            clients: 64,
            seconds: 10,
            ops_max: 5_000_000,
            keys: 100_000,
            durability: "periodic:1000".to_owned(),
            node_threads: 1,
            node_cpus: None,
            seed: 42,
            scenarios: vec!["single".into(), "three".into()],
        };
        let args: Vec<String> = std::env::args().skip(1).collect();
        let mut it = args.chunks(2);
        for pair in &mut it {
            let [name, value] = pair else {
                return Err(format!("{pair:?}: every option takes a value"));
            };
            let num = || {
                value
                    .parse::<u64>()
                    .map_err(|e| format!("{name} {value}: {e}"))
            };
            match name.as_str() {
                "--clients" => o.clients = num()? as usize,
                "--seconds" => o.seconds = num()?,
                "--ops-max" => o.ops_max = num()?,
                "--keys" => o.keys = num()?.max(1),
                "--durability" => o.durability.clone_from(value),
                "--node-threads" => o.node_threads = num()? as usize,
                "--node-cpus" => o.node_cpus = Some(value.clone()),
                "--seed" => o.seed = num()?,
                "--scenarios" => o.scenarios = value.split(',').map(str::to_owned).collect(),
                other => return Err(format!("unknown option {other}")),
            }
        }
        Ok(o)
    }
}

/// A running node process, killed on drop.
struct NodeProcess {
    child: Child,
    addr: String,
    _dir: PathBuf,
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

fn node_bin() -> Result<PathBuf, String> {
    std::env::var_os("KVNODE_BIN")
        .map(PathBuf::from)
        .ok_or_else(|| "KVNODE_BIN is not set; run through `cargo xtask bench cluster`".to_owned())
}

/// Starts one node on a free loopback port and waits until it listens.
fn start_node(
    bin: &Path,
    index: usize,
    seeds: &[String],
    nrw: (u8, u8, u8),
    opts: &Options,
) -> Result<NodeProcess, String> {
    let dir = std::env::temp_dir().join(format!("kv-bench-{}-{index}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    // Pinning goes through taskset so the nodes' CPUs show in /proc like any
    // other process's.
    let mut cmd = match &opts.node_cpus {
        Some(cpus) => {
            let mut c = Command::new("taskset");
            c.args(["-c", cpus]).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    cmd.arg("serve")
        .args(["--data-dir", &dir.display().to_string()])
        .args(["--listen", &addr])
        .args([
            "--n",
            &nrw.0.to_string(),
            "--r",
            &nrw.1.to_string(),
            "--w",
            &nrw.2.to_string(),
        ])
        .args(["--durability", &opts.durability])
        .args(["--threads", &opts.node_threads.to_string()])
        .env(
            "RUST_LOG",
            std::env::var("KV_BENCH_NODE_LOG").unwrap_or_else(|_| "warn".to_owned()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if !seeds.is_empty() {
        cmd.args(["--seeds", &seeds.join(",")]);
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let node = NodeProcess {
        child,
        addr: addr.clone(),
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&addr).is_err() {
        if Instant::now() > deadline {
            return Err(format!("node {index} did not listen on {addr} within 20 s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(node)
}

fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

/// Bound on the causal contexts one client remembers; past it the cache
/// starts over.
const CONTEXTS_PER_CLIENT_MAX: usize = 4096;

/// Keys are 16 bytes: a fixed prefix and the key number in hex.
fn key(i: u64) -> Bytes {
    Bytes::from(format!("k{i:015x}"))
}

/// Zipfian key numbers (theta 0.99, as YCSB), by Gray et al.'s method.
struct Zipf {
    n: u64,
    theta: f64,
    alpha: f64,
    zetan: f64,
    eta: f64,
}

impl Zipf {
    fn new(n: u64) -> Self {
        let theta = 0.99;
        let zeta = |n: u64| (1..=n).map(|i| 1.0 / (i as f64).powf(theta)).sum::<f64>();
        let zetan = zeta(n);
        let zeta2 = zeta(2.min(n));
        let alpha = 1.0 / (1.0 - theta);
        let eta = (1.0 - (2.0 / n as f64).powf(1.0 - theta)) / (1.0 - zeta2 / zetan);
        Self {
            n,
            theta,
            alpha,
            zetan,
            eta,
        }
    }

    fn sample(&self, rng: &mut impl Rng) -> u64 {
        let u: f64 = rng.random();
        let uz = u * self.zetan;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return 1.min(self.n - 1);
        }
        let v = (self.n as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        v.min(self.n - 1)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Dist {
    Uniform,
    Zipf,
}

struct RunResult {
    ops: u64,
    errors: std::collections::BTreeMap<String, u64>,
    elapsed: Duration,
    hist: Histogram<u64>,
}

async fn connect(addrs: &[String], first: usize) -> Result<Client, String> {
    let mut order: Vec<String> = addrs.to_vec();
    order.rotate_left(first % addrs.len());
    Client::connect(ClientConfig::new(order))
        .await
        .map_err(|e| e.to_string())
}

/// Writes keys `0..keys` with a bounded window of concurrent puts.
async fn preload(addrs: &[String], keys: u64) -> Result<(), String> {
    const WINDOW: u64 = 256;
    let client = connect(addrs, 0).await?;
    let value = Bytes::from(vec![b'v'; 100]);
    let mut start = 0;
    while start < keys {
        let end = (start + WINDOW).min(keys);
        let mut set = tokio::task::JoinSet::new();
        for i in start..end {
            let (c, v) = (client.clone(), value.clone());
            set.spawn(async move { c.put(key(i), v, None).await });
        }
        while let Some(r) = set.join_next().await {
            r.map_err(|e| e.to_string())?
                .map_err(|e| format!("preload: {e}"))?;
        }
        start = end;
    }
    Ok(())
}

async fn run_load(addrs: &[String], opts: &Options, dist: Dist) -> Result<RunResult, String> {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    // Latencies of the current second, for the progress line: a stall shows
    // as one bad second rather than hiding in the run's p99.
    let second = Arc::new(std::sync::Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())?,
    ));
    let zipf = Arc::new(Zipf::new(opts.keys));
    let mut clients = Vec::with_capacity(opts.clients);
    for c in 0..opts.clients {
        clients.push(connect(addrs, c).await?);
    }
    let started = Instant::now();
    let per_client_max = opts.ops_max / opts.clients as u64 + 1;
    let mut tasks = tokio::task::JoinSet::new();
    for (c, client) in clients.into_iter().enumerate() {
        let stop = Arc::clone(&stop);
        let done = Arc::clone(&done);
        let second = Arc::clone(&second);
        let zipf = Arc::clone(&zipf);
        let keys = opts.keys;
        let seed = opts.seed ^ (c as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        tasks.spawn(async move {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut hist =
                Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())?;
            let value = Bytes::from(vec![b'x'; 100]);
            let mut errors: std::collections::BTreeMap<String, u64> = Default::default();
            let mut contexts: std::collections::HashMap<u64, kv_client::Context> =
                std::collections::HashMap::new();
            for _ in 0..per_client_max {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let k = match dist {
                    Dist::Uniform => rng.random_range(0..keys),
                    Dist::Zipf => zipf.sample(&mut rng),
                };
                let t = Instant::now();
                // Like a real Dynamo client, write with the context of the
                // key's last read or write, so a write supersedes what this
                // client saw instead of piling up siblings.
                let result = if rng.random_bool(0.5) {
                    client.get(key(k)).await.map(|read| read.context)
                } else {
                    client.put(key(k), value.clone(), contexts.get(&k)).await
                };
                if let Ok(context) = &result {
                    if contexts.len() >= CONTEXTS_PER_CLIENT_MAX && !contexts.contains_key(&k) {
                        contexts.clear();
                    }
                    contexts.insert(k, context.clone());
                }
                let result = result.map(drop);
                let us = t.elapsed().as_micros() as u64;
                match result {
                    Ok(()) => {
                        let _ = hist.record(us.max(1));
                        let _ = lock(&second).record(us.max(1));
                    }
                    Err(e) => *errors.entry(error_kind(&e)).or_default() += 1,
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, String>((hist, errors))
        });
    }
    // Progress bar on stderr, once a second, until time is up.
    let total = Duration::from_secs(opts.seconds);
    let mut last = 0;
    while started.elapsed() < total && !tasks.is_empty() {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = done.load(Ordering::Relaxed);
        let p99_ms = {
            let mut h = lock(&second);
            let p = h.value_at_quantile(0.99) as f64 / 1000.0;
            h.reset();
            p
        };
        let frac = (started.elapsed().as_secs_f64() / total.as_secs_f64()).min(1.0);
        let filled = (frac * 30.0) as usize;
        eprint!(
            "\r  [{}{}] {:>3.0}%  {:>9} ops/s  p99 {:>6.2} ms  ",
            "#".repeat(filled),
            ".".repeat(30 - filled),
            frac * 100.0,
            now - last,
            p99_ms
        );
        last = now;
        if tasks.len() < opts.clients {
            break;
        }
    }
    eprintln!();
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let mut hist =
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).map_err(|e| e.to_string())?;
    let mut errors: std::collections::BTreeMap<String, u64> = Default::default();
    while let Some(r) = tasks.join_next().await {
        let (h, e) = r.map_err(|e| e.to_string())??;
        hist.add(h).map_err(|e| e.to_string())?;
        for (kind, count) in e {
            *errors.entry(kind).or_default() += count;
        }
    }
    Ok(RunResult {
        ops: hist.len(),
        errors,
        elapsed,
        hist,
    })
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A short name for a failed operation's cause.
fn error_kind(e: &kv_client::ClientError) -> String {
    match e {
        kv_client::ClientError::Server { code, .. } => format!("{code:?}"),
        kv_client::ClientError::Timeout(_) => "ClientTimeout".to_owned(),
        kv_client::ClientError::ConnectionLost { .. } => "ConnectionLost".to_owned(),
        other => other.to_string(),
    }
}

/// User and system CPU time a process has used, in clock ticks, from
/// /proc (0 if it cannot be read).
fn cpu_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // The command name is in parentheses and may hold spaces; the fields
    // counted here come after it: utime and stime are fields 14 and 15.
    let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return 0;
    };
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    field(14).unwrap_or(0) + field(15).unwrap_or(0)
}

/// Clock ticks per second, as /proc counts CPU time (USER_HZ: 100 on
/// every Linux architecture the node runs on).
fn ticks_per_second() -> f64 {
    100.0
}

/// The CPUs a process may run on, from /proc.
fn cpus_of(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Cpus_allowed_list"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "?".to_owned())
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("cluster bench: {e}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<(), String> {
    let opts = Options::parse()?;
    let bin = node_bin()?;
    // One thread drives every client: the generator shares two cores with
    // the nodes, and a single thread wastes none of them on wake-ups.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut report = Report::new("cluster");
    println!(
        "load: {} clients, {} s per run (at most {} ops), {} keys, 50% gets / 50% puts, 16-byte keys, 100-byte values, durability {}, {} worker thread(s) per node",
        opts.clients, opts.seconds, opts.ops_max, opts.keys, opts.durability, opts.node_threads
    );
    println!(
        "machine: {} CPUs online; bench process on CPUs {}",
        num_cpus(),
        cpus_of(std::process::id())
    );
    for scenario in &opts.scenarios {
        let (count, nrw) = match scenario.as_str() {
            "single" => (1, (1, 1, 1)),
            "three" => (3, (3, 2, 2)),
            other => return Err(format!("unknown scenario {other:?}: single or three")),
        };
        for (dist, dist_name) in [(Dist::Uniform, "uniform"), (Dist::Zipf, "zipf")] {
            let mut nodes = Vec::new();
            let mut seeds = Vec::new();
            for i in 0..count {
                let node = start_node(&bin, i, &seeds, nrw, &opts)?;
                seeds.push(node.addr.clone());
                nodes.push(node);
            }
            let addrs: Vec<String> = nodes.iter().map(|n| n.addr.clone()).collect();
            for (i, n) in nodes.iter().enumerate() {
                println!(
                    "  node {i} at {} (pid {}) on CPUs {}",
                    n.addr,
                    n.child.id(),
                    cpus_of(n.child.id())
                );
            }
            rt.block_on(wait_for_members(&addrs, count))?;
            rt.block_on(preload(&addrs, opts.keys))?;
            println!("{scenario} / {dist_name}:");
            let pids: Vec<u32> = nodes.iter().map(|n| n.child.id()).collect();
            let cpu_before: u64 = pids.iter().map(|&p| cpu_ticks(p)).sum();
            let r = rt.block_on(run_load(&addrs, &opts, dist))?;
            let cpu_after: u64 = pids.iter().map(|&p| cpu_ticks(p)).sum();
            let ops_s = r.ops as f64 / r.elapsed.as_secs_f64();
            let p = |q: f64| r.hist.value_at_quantile(q) as f64 / 1000.0;
            let prefix = format!("{scenario}_{dist_name}");
            let label = format!("{scenario} node(s), {dist_name}");
            let marked = scenario == "three";
            if marked {
                report.add_marked(
                    &format!("{prefix}_ops_s"),
                    &format!("{label}: ops/s"),
                    ops_s,
                    "ops/s",
                    Mark::AtLeast(40_000.0),
                );
                report.add_marked(
                    &format!("{prefix}_p99_ms"),
                    &format!("{label}: p99"),
                    p(0.99),
                    "ms",
                    Mark::AtMost(5.0),
                );
            } else {
                report.add(
                    &format!("{prefix}_ops_s"),
                    &format!("{label}: ops/s"),
                    ops_s,
                    "ops/s",
                );
                report.add(
                    &format!("{prefix}_p99_ms"),
                    &format!("{label}: p99"),
                    p(0.99),
                    "ms",
                );
            }
            report.add(
                &format!("{prefix}_p50_ms"),
                &format!("{label}: p50"),
                p(0.50),
                "ms",
            );
            // CPU the nodes spent per operation: steadier from run to run
            // than throughput on a shared machine, so it shows what a change
            // to the request path saves.
            let cpu_us = cpu_after.saturating_sub(cpu_before) as f64 * 1e6 / ticks_per_second();
            report.add(
                &format!("{prefix}_node_cpu_us_per_op"),
                &format!("{label}: node CPU per op"),
                cpu_us / r.ops.max(1) as f64,
                "us",
            );
            report.add(
                &format!("{prefix}_p999_ms"),
                &format!("{label}: p99.9"),
                p(0.999),
                "ms",
            );
            // Concurrent writers on a hot key leave siblings; how many the
            // hottest key holds after the run shows what readers pay for it.
            let hot = rt.block_on(async {
                let client = connect(&addrs, 0).await?;
                client
                    .get(key(0))
                    .await
                    .map(|read| read.siblings.len())
                    .map_err(|e| e.to_string())
            })?;
            report.add(
                &format!("{prefix}_hot_key_siblings"),
                &format!("{label}: siblings of key 0 after"),
                hot as f64,
                "",
            );
            let error_total: u64 = r.errors.values().sum();
            if error_total > 0 {
                println!("  errors by kind: {:?}", r.errors);
            }
            report.add(
                &format!("{prefix}_errors"),
                &format!("{label}: errors"),
                error_total as f64,
                "ops",
            );
            drop(nodes);
        }
    }
    report.add("clients", "concurrent clients", opts.clients as f64, "");
    report.finish().map_err(|e| e.to_string())?;
    Ok(())
}

/// Waits until every node reports `count` alive members, so the ring is
/// whole before load starts.
async fn wait_for_members(addrs: &[String], count: usize) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    for addr in addrs {
        let client = Client::connect(ClientConfig::new([addr.clone()]))
            .await
            .map_err(|e| e.to_string())?;
        loop {
            let status = client.status().await.map_err(|e| e.to_string())?;
            let alive = status.members.iter().filter(|m| m.state == "alive").count();
            if alive >= count {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{addr} sees {alive} of {count} members alive after 30 s"
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
