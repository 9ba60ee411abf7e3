//! The scenarios: which cluster, which faults on which schedule (the
//! nemesis), and the run of one scenario from start to verdict.
//!
//! Every scenario runs the same phases: start the cluster and wait for
//! gossip; load it for a warm-up; inject its faults for `duration`; heal
//! (resume, restart, remove network rules); keep loading for a cool-down;
//! stop the load; wait until every node sees every other; measure
//! convergence of every key's home replicas; read every key; check.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use kv_client::Consistency;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::Options;
use super::check;
use super::cluster::{self, ALIVE_TIMEOUT, Cluster, ClusterConfig};
use super::history::{self, Outcome};
use super::report::{ScenarioResult, Status};
use super::workload::{self, Recorder, WorkloadConfig};
use crate::net::Netns;

/// Load before the first fault.
pub const WARMUP: Duration = Duration::from_secs(2);
/// Load after healing, before the load stops.
pub const COOLDOWN: Duration = Duration::from_secs(3);
/// Convergence must happen within this, after the load stops.
pub const CONVERGE_BOUND: Duration = Duration::from_secs(60);
/// Bound on the time a scenario's load may run, whatever happens.
pub const LOAD_MAX: Duration = Duration::from_secs(3600);
/// Concurrent clients.
pub const CLIENTS: usize = 6;
/// Keys in the workload.
pub const KEYS: usize = 100;
/// Gossip interval of the nodes; the failure detector (phi 5) convicts a
/// silent node after about 17 intervals.
pub const GOSSIP_INTERVAL_MS: u64 = 200;
/// Anti-entropy interval of the nodes.
pub const ANTI_ENTROPY_INTERVAL_MS: u64 = 1000;
/// Longer than the failure detector takes to convict (about 3.4 s).
pub const PAUSE: Duration = Duration::from_secs(6);
/// How long each partition of the sloppy scenario lasts: longer than the
/// failure detector takes, so coordinators act on what they can reach.
pub const SLOPPY_CUT: Duration = Duration::from_secs(8);
/// How long the sloppy scenario's network stays healed between cuts.
pub const SLOPPY_HEALED: Duration = Duration::from_secs(2);
/// Time a coordinator's failure detector is given to see a new partition
/// before a refused write counts against sloppy mode (it convicts in about
/// 3.4 s).
pub const DETECT_SETTLE_MS: f64 = 5000.0;
/// How far the skewed node's wall clock is off.
pub const SKEW_S: i64 = 60;
/// Retries of a key's final read.
pub const FINAL_READ_TRIES: usize = 10;

/// A named scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// 1: kill -9 a replica under write load, restart it later.
    KillReplica,
    /// 2: kill -9 the node every client is talking to.
    KillCoordinator,
    /// 3: wipe a node's data store and restart it.
    WipeNode,
    /// 4: SIGSTOP a node past the failure detector's timeout, then SIGCONT.
    PauseNode,
    /// 5: one node partitioned from two, strict mode.
    PartitionStrict,
    /// 6: the same in sloppy mode, on at least four nodes so that
    /// stand-ins take hints.
    PartitionSloppy,
    /// 7: flapping random partitions with lossy links.
    Flapping,
    /// 8: one node's wall clock 60 s ahead.
    ClockSkew,
    /// 9: a rolling restart of every node under load.
    RollingRestart,
    /// 10: five nodes, N=3, kills and partitions mixed.
    FiveNodes,
}

impl Scenario {
    /// Every scenario, in order.
    pub const ALL: [Scenario; 10] = [
        Scenario::KillReplica,
        Scenario::KillCoordinator,
        Scenario::WipeNode,
        Scenario::PauseNode,
        Scenario::PartitionStrict,
        Scenario::PartitionSloppy,
        Scenario::Flapping,
        Scenario::ClockSkew,
        Scenario::RollingRestart,
        Scenario::FiveNodes,
    ];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::KillReplica => "kill-replica",
            Scenario::KillCoordinator => "kill-coordinator",
            Scenario::WipeNode => "wipe-node",
            Scenario::PauseNode => "pause-node",
            Scenario::PartitionStrict => "partition-strict",
            Scenario::PartitionSloppy => "partition-sloppy",
            Scenario::Flapping => "flapping",
            Scenario::ClockSkew => "clock-skew",
            Scenario::RollingRestart => "rolling-restart",
            Scenario::FiveNodes => "five-nodes",
        }
    }

    /// The scenario called `name`.
    pub fn parse(name: &str) -> Option<Scenario> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    fn needs_netns(self) -> bool {
        matches!(
            self,
            Scenario::PartitionStrict
                | Scenario::PartitionSloppy
                | Scenario::Flapping
                | Scenario::FiveNodes
        )
    }

    fn sloppy(self) -> bool {
        self == Scenario::PartitionSloppy
    }
}

/// The fault log of a run: what was done, when.
struct Nemesis {
    start: Instant,
    log: Vec<String>,
    rng: ChaCha8Rng,
    /// The network's groups from each moment on, as the partitions and
    /// heals made them (milliseconds since the start).
    topology: check::Topology,
}

impl Nemesis {
    fn note(&mut self, what: String) {
        let line = format!("{:.1}s {what}", self.start.elapsed().as_secs_f64());
        println!("  nemesis: {line}");
        self.log.push(line);
    }

    fn now_ms(&self) -> f64 {
        self.start.elapsed().as_secs_f64() * 1000.0
    }
}

/// Runs one scenario to its verdict; never panics on a cluster's failure,
/// which becomes a `failed` status with the reason.
pub async fn run(opts: &Options, scenario: Scenario) -> ScenarioResult {
    let seed = opts.seed;
    let name = scenario.name();
    println!(
        "\n=== scenario {name}, seed {seed} (replay: cargo xtask test-cluster --scenario {name} --seed {seed})"
    );
    let mut result = ScenarioResult::new(name, seed);
    let mut netns = None;
    if scenario.needs_netns() {
        if let Err(why) = Netns::available() {
            result.status = Status::Skipped(format!("network namespaces unavailable: {why}"));
            return result;
        }
        let nodes = node_count(opts, scenario);
        match Netns::create(nodes) {
            Ok(ns) => netns = Some(ns),
            Err(e) => {
                result.status = Status::Skipped(format!("cannot create namespaces: {e:#}"));
                return result;
            }
        }
    }
    let skew_env = if scenario == Scenario::ClockSkew {
        match cluster::faketime_env(SKEW_S) {
            Ok(env) => Some(env),
            Err(why) => {
                result.status = Status::Skipped(why);
                return result;
            }
        }
    } else {
        None
    };
    if let Err(e) = run_inner(opts, scenario, netns, skew_env, &mut result).await {
        result.reasons.push(format!("harness error: {e:#}"));
    }
    result.decide(!scenario.sloppy(), CONVERGE_BOUND);
    result
}

fn node_count(opts: &Options, scenario: Scenario) -> usize {
    match scenario {
        Scenario::FiveNodes => opts.nodes.max(5),
        // With three nodes and N=3 every node is home to every key: no
        // stand-in exists, so no hint would ever be written. More nodes
        // make the sloppy path (stand-ins, hints, handoff) run.
        // Five, so that halves of two and three each hold W=2 nodes.
        Scenario::PartitionSloppy => opts.nodes.max(5),
        _ => opts.nodes,
    }
}

async fn run_inner(
    opts: &Options,
    scenario: Scenario,
    netns: Option<Netns>,
    skew_env: Option<Vec<(String, String)>>,
    result: &mut ScenarioResult,
) -> Result<()> {
    let nodes = node_count(opts, scenario);
    let n = u8::try_from(nodes.min(3)).unwrap_or(3);
    let q = n / 2 + 1;
    let config = ClusterConfig {
        kvnode: opts.kvnode.clone(),
        base_dir: opts
            .out_dir
            .join(format!("nodes/{}-{}", scenario.name(), opts.seed)),
        nodes,
        n,
        r: q,
        w: q,
        mode: if scenario.sloppy() {
            "sloppy"
        } else {
            "strict"
        }
        .to_owned(),
        gossip_interval_ms: GOSSIP_INTERVAL_MS,
        anti_entropy_interval_ms: ANTI_ENTROPY_INTERVAL_MS,
    };
    let ns_desc = netns.as_ref().map(Netns::describe);
    let mut cluster = Cluster::start(config, netns).await?;
    let start = Instant::now();
    let mut nemesis = Nemesis {
        start,
        log: Vec::new(),
        rng: ChaCha8Rng::seed_from_u64(opts.seed),
        topology: check::Topology::whole(nodes),
    };
    nemesis.note(format!(
        "{nodes} nodes up, N={n} R={q} W={q} {}",
        if scenario.sloppy() {
            "sloppy"
        } else {
            "strict"
        }
    ));
    let pin_first =
        (scenario == Scenario::KillCoordinator).then(|| nemesis.rng.random_range(0..nodes));
    let keys: Vec<String> = (0..KEYS).map(|k| format!("k{k}")).collect();
    let recorder = Recorder::new(start);
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(workload::run(
        WorkloadConfig {
            clients: CLIENTS,
            keys: KEYS,
            addrs: cluster.addrs(),
            pin_first,
            // Sloppy mode is judged by what each coordinator could reach,
            // so each client talks to one node only.
            pinned: scenario.sloppy(),
            expected: WARMUP + Duration::from_secs(opts.duration_s.max(1)) + COOLDOWN,
            seed: opts.seed,
        },
        recorder.clone(),
        Arc::clone(&stop),
        start + LOAD_MAX,
    ));

    tokio::time::sleep(WARMUP).await;
    let duration = Duration::from_secs(opts.duration_s.max(1));
    let faults = nemesis_run(
        scenario,
        &mut cluster,
        &mut nemesis,
        duration,
        pin_first,
        skew_env,
    )
    .await;
    // Heal whatever happened, even after a fault that failed.
    if let Some(ns) = &cluster.netns {
        match ns.heal() {
            Ok(()) => {
                let at = nemesis.now_ms();
                nemesis.topology.change(at, vec![(0..nodes).collect()]);
            }
            Err(e) => result
                .reasons
                .push(format!("cannot heal the network: {e:#}")),
        }
    }
    let healed_at = Instant::now();
    let revived = cluster.revive_all();
    nemesis.note("healed".to_owned());
    tokio::time::sleep(COOLDOWN).await;
    stop.store(true, Ordering::Relaxed);
    let _ = load.await;
    let load_stopped = Instant::now();
    nemesis.note("load stopped".to_owned());
    result.faults = match ns_desc {
        Some(d) => format!("{faults}; network: {d}"),
        None => faults.clone(),
    };
    if let Err(e) = faults_error(&faults, revived) {
        result.reasons.push(e);
    }
    for crash in cluster.check_exits() {
        result.reasons.push(crash);
    }
    cluster.revive_all()?;
    cluster.wait_all_alive(ALIVE_TIMEOUT).await?;

    // Convergence of every key's home replicas, before any final read
    // repairs them.
    let addrs = cluster.addrs();
    let until = Instant::now() + CONVERGE_BOUND;
    let probe = workload::connect(workload::client_config(&addrs, 0), until)
        .await
        .ok_or_else(|| anyhow::anyhow!("no node answers after healing"))?;
    let converged = converge(&probe, &keys, load_stopped, until).await;
    result.converge_s = converged.map(|d| d.as_secs_f64());
    nemesis.note(match converged {
        Some(d) => format!(
            "replicas converged {:.1}s after the load stopped",
            d.as_secs_f64()
        ),
        None => format!("replicas did not converge within {CONVERGE_BOUND:?}"),
    });

    // Sloppy mode: every hint must be handed off.
    if scenario.sloppy() {
        match hints_drained(&addrs, Instant::now() + CONVERGE_BOUND).await {
            Ok(delivered) => {
                let drain = healed_at.elapsed();
                result.hints_drain_s = Some(drain.as_secs_f64());
                nemesis.note(format!(
                    "every hint delivered ({delivered} in all), {:.1}s after healing",
                    drain.as_secs_f64()
                ));
            }
            Err(pending) => result.reasons.push(format!(
                "{pending} hints still pending {CONVERGE_BOUND:?} after healing"
            )),
        }
    }

    // The final read of every key.
    for key in &keys {
        for attempt in 0..FINAL_READ_TRIES {
            let consistency = (attempt < FINAL_READ_TRIES / 2).then_some(Consistency::All);
            if workload::read(&probe, u32::MAX, key, &recorder, consistency)
                .await
                .is_some()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let ops = recorder.take();
    let path = opts
        .out_dir
        .join(format!("{}-{}.jsonl", scenario.name(), opts.seed));
    history::write_jsonl(&path, &ops)?;
    result.history = Some(path.display().to_string());
    result.fill_counts(&ops);
    result.findings = check::check(&ops, &keys);
    if scenario.sloppy() {
        result.refused_with_w = Some(check::refused_with_w_reachable(
            &ops,
            &nemesis.topology,
            nodes,
            usize::from(q),
            DETECT_SETTLE_MS,
        ));
    }
    result.nemesis = nemesis.log;
    drop(cluster);
    Ok(())
}

fn faults_error(faults: &str, revived: Result<()>) -> Result<(), String> {
    match revived {
        Ok(()) => Ok(()),
        Err(e) => Err(format!(
            "after {faults}: cannot bring every node back: {e:#}"
        )),
    }
}

/// Injects the scenario's faults for `duration`; returns the `faults`
/// description. A fault that could not be injected is noted, not fatal.
async fn nemesis_run(
    scenario: Scenario,
    cluster: &mut Cluster,
    nm: &mut Nemesis,
    duration: Duration,
    pin_first: Option<usize>,
    skew_env: Option<Vec<(String, String)>>,
) -> String {
    let nodes = cluster.nodes.len();
    let end = Instant::now() + duration;
    let left = |end: Instant| end.saturating_duration_since(Instant::now());
    // The kill-and-restart hold: 10 s, or less in a short run.
    let hold = Duration::from_secs(10)
        .min(duration.mul_f64(0.6))
        .max(Duration::from_secs(1));
    match scenario {
        Scenario::KillReplica => {
            while left(end) > Duration::ZERO {
                let i = nm.rng.random_range(0..nodes);
                cluster.kill(i);
                nm.note(format!("kill -9 node {i}"));
                tokio::time::sleep(hold.min(left(end).max(Duration::from_secs(1)))).await;
                restart(cluster, nm, i);
                tokio::time::sleep(Duration::from_secs(2).min(left(end))).await;
            }
            format!(
                "kill -9 a random replica, restart after {:.0} s",
                hold.as_secs_f64()
            )
        }
        Scenario::KillCoordinator => {
            // Every client starts at the pinned node and, when it dies, fails
            // over to the next one in the same rotated list: so the next
            // coordinator is the next node.
            let mut i = pin_first.unwrap_or(0);
            while left(end) > Duration::ZERO {
                cluster.kill(i);
                nm.note(format!("kill -9 node {i}, the coordinator of every client"));
                tokio::time::sleep(
                    Duration::from_secs(3).min(left(end).max(Duration::from_secs(1))),
                )
                .await;
                restart(cluster, nm, i);
                tokio::time::sleep(Duration::from_secs(3).min(left(end))).await;
                i = (i + 1) % nodes;
            }
            "kill -9 the node every client is connected to, restart after 3 s".to_owned()
        }
        Scenario::WipeNode => {
            let i = nm.rng.random_range(0..nodes);
            match cluster.wipe_and_restart(i) {
                Ok(()) => nm.note(format!("kill -9 node {i}, wipe data/ and hints/, restart")),
                Err(e) => nm.note(format!("wipe of node {i} failed: {e:#}")),
            }
            tokio::time::sleep(left(end)).await;
            "kill -9, wipe the data store (identity kept), restart; once".to_owned()
        }
        Scenario::PauseNode => {
            while left(end) > Duration::ZERO {
                let i = nm.rng.random_range(0..nodes);
                match cluster.pause(i) {
                    Ok(()) => nm.note(format!("SIGSTOP node {i}")),
                    Err(e) => nm.note(format!("SIGSTOP node {i} failed: {e:#}")),
                }
                tokio::time::sleep(PAUSE).await;
                match cluster.resume(i) {
                    Ok(()) => nm.note(format!("SIGCONT node {i}")),
                    Err(e) => nm.note(format!("SIGCONT node {i} failed: {e:#}")),
                }
                tokio::time::sleep(Duration::from_secs(3).min(left(end))).await;
            }
            format!(
                "SIGSTOP a random node for {} s (detector ~3.4 s), SIGCONT",
                PAUSE.as_secs()
            )
        }
        Scenario::PartitionSloppy => {
            // Alternately the cluster cut in halves (each holding W
            // nodes) and one node cut off from the rest, healed between.
            let mut steps = 0;
            while left(end) > Duration::ZERO && steps < 1000 {
                let groups = if steps % 2 == 0 {
                    let order = shuffled(&mut nm.rng, nodes);
                    let (a, b) = order.split_at(nodes / 2);
                    vec![a.to_vec(), b.to_vec()]
                } else {
                    let i = nm.rng.random_range(0..nodes);
                    vec![vec![i], (0..nodes).filter(|&j| j != i).collect()]
                };
                steps += 1;
                partition(cluster, nm, &groups);
                tokio::time::sleep(SLOPPY_CUT.min(left(end))).await;
                heal(cluster, nm);
                tokio::time::sleep(SLOPPY_HEALED.min(left(end))).await;
            }
            format!(
                "netns: halves, or one node from the rest, for {} s at a time, healed for {} s between",
                SLOPPY_CUT.as_secs(),
                SLOPPY_HEALED.as_secs()
            )
        }
        Scenario::PartitionStrict => {
            let i = nm.rng.random_range(0..nodes);
            let rest: Vec<usize> = (0..nodes).filter(|&j| j != i).collect();
            partition(cluster, nm, &[vec![i], rest]);
            tokio::time::sleep(left(end)).await;
            heal(cluster, nm);
            format!(
                "netns partition of one node from the rest for {} s",
                duration.as_secs()
            )
        }
        Scenario::Flapping => {
            let mut steps = 0;
            while left(end) > Duration::ZERO && steps < 1000 {
                steps += 1;
                match nm.rng.random_range(0..5u32) {
                    0 => {
                        let groups = random_groups(&mut nm.rng, nodes);
                        partition(cluster, nm, &groups);
                    }
                    1 => {
                        let from = nm.rng.random_range(0..nodes);
                        let to = (from + nm.rng.random_range(1..nodes.max(2))) % nodes;
                        if let Some(ns) = &cluster.netns {
                            match ns.cut_one_way(from, to) {
                                Ok(()) => nm.note(format!("cut {from} -> {to} one way")),
                                Err(e) => nm.note(format!("one-way cut failed: {e:#}")),
                            }
                        }
                    }
                    2 => {
                        let i = nm.rng.random_range(0..nodes);
                        let p = nm.rng.random_range(0.05..0.3);
                        if let Some(ns) = &cluster.netns {
                            match ns.set_loss(i, p) {
                                Ok(()) => {
                                    nm.note(format!("loss {:.0}% on node {i}'s links", p * 100.0))
                                }
                                Err(e) => nm.note(format!("set loss failed: {e:#}")),
                            }
                        }
                    }
                    3 => {
                        let i = nm.rng.random_range(0..nodes);
                        let delay = Duration::from_millis(nm.rng.random_range(20..300));
                        if let Some(ns) = &cluster.netns {
                            match ns.set_delay(i, delay) {
                                Ok(()) => nm.note(format!("{delay:?} delay into node {i}")),
                                Err(e) => nm.note(format!("set delay failed: {e:#}")),
                            }
                        }
                    }
                    _ => heal(cluster, nm),
                }
                let wait = Duration::from_millis(nm.rng.random_range(1000..3000));
                tokio::time::sleep(wait.min(left(end))).await;
            }
            heal(cluster, nm);
            "flapping netns partitions, one-way cuts, lossy and slow (20-300 ms) links every 1-3 s"
                .to_owned()
        }
        Scenario::ClockSkew => {
            let i = nm.rng.random_range(0..nodes);
            cluster.set_env(i, skew_env.unwrap_or_default());
            match cluster.terminate(i) {
                Ok(()) => nm.note(format!("SIGTERM node {i}")),
                Err(e) => nm.note(format!("SIGTERM node {i}: {e:#}")),
            }
            restart(cluster, nm, i);
            nm.note(format!("node {i} runs {SKEW_S:+} s off (libfaketime)"));
            // Half-way, a crash of another node, so the skewed one
            // coordinates and repairs too.
            tokio::time::sleep(duration / 2).await;
            let j = (i + 1) % nodes;
            cluster.kill(j);
            nm.note(format!("kill -9 node {j}"));
            tokio::time::sleep(hold.min(left(end).max(Duration::from_secs(1)))).await;
            restart(cluster, nm, j);
            tokio::time::sleep(left(end)).await;
            format!(
                "one node's wall clock {SKEW_S:+} s (libfaketime, monotonic untouched), plus one kill -9"
            )
        }
        Scenario::RollingRestart => {
            let mut rounds = 0;
            while rounds == 0 || (left(end) > Duration::ZERO && rounds < 100) {
                rounds += 1;
                for i in 0..nodes {
                    match cluster.terminate(i) {
                        Ok(()) => nm.note(format!("SIGTERM node {i}, exited cleanly")),
                        Err(e) => nm.note(format!("SIGTERM node {i}: {e:#}")),
                    }
                    restart(cluster, nm, i);
                    if let Err(e) = cluster.wait_all_alive(ALIVE_TIMEOUT).await {
                        nm.note(format!("after restarting node {i}: {e:#}"));
                    }
                }
            }
            format!("rolling restart (SIGTERM, wait, restart, wait for gossip), {rounds} round(s)")
        }
        Scenario::FiveNodes => {
            let mut steps = 0;
            let mut dead: Option<usize> = None;
            while left(end) > Duration::ZERO && steps < 1000 {
                steps += 1;
                if let Some(i) = dead.take() {
                    restart(cluster, nm, i);
                } else if nm.rng.random_bool(0.5) {
                    let i = nm.rng.random_range(0..nodes);
                    cluster.kill(i);
                    nm.note(format!("kill -9 node {i}"));
                    dead = Some(i);
                } else {
                    let groups = random_groups(&mut nm.rng, nodes);
                    partition(cluster, nm, &groups);
                }
                let wait = Duration::from_millis(nm.rng.random_range(2000..4000));
                tokio::time::sleep(wait.min(left(end))).await;
                if nm.rng.random_bool(0.5) {
                    heal(cluster, nm);
                }
            }
            heal(cluster, nm);
            "five nodes, N=3: kill -9 and netns partitions mixed, every 2-4 s".to_owned()
        }
    }
}

fn restart(cluster: &mut Cluster, nm: &mut Nemesis, i: usize) {
    match cluster.restart(i) {
        Ok(()) => nm.note(format!("restart node {i}")),
        Err(e) => nm.note(format!("restart of node {i} failed: {e:#}")),
    }
}

fn partition(cluster: &Cluster, nm: &mut Nemesis, groups: &[Vec<usize>]) {
    if let Some(ns) = &cluster.netns {
        match ns.partition(groups) {
            Ok(()) => {
                nm.note(format!("partition {groups:?}"));
                let at = nm.now_ms();
                nm.topology.change(at, groups.to_vec());
            }
            Err(e) => nm.note(format!("partition {groups:?} failed: {e:#}")),
        }
    }
}

fn heal(cluster: &Cluster, nm: &mut Nemesis) {
    if let Some(ns) = &cluster.netns {
        match ns.heal() {
            Ok(()) => {
                nm.note("heal the network".to_owned());
                let at = nm.now_ms();
                nm.topology
                    .change(at, vec![(0..cluster.addrs().len()).collect()]);
            }
            Err(e) => nm.note(format!("heal failed: {e:#}")),
        }
    }
}

/// The nodes `0..nodes` in a random order (Fisher-Yates).
fn shuffled(rng: &mut ChaCha8Rng, nodes: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..nodes).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.random_range(0..=i));
    }
    order
}

/// Two random non-empty groups.
fn random_groups(rng: &mut ChaCha8Rng, nodes: usize) -> Vec<Vec<usize>> {
    let order = shuffled(rng, nodes);
    let cut = rng.random_range(1..nodes.max(2));
    let (a, b) = order.split_at(cut.min(order.len()));
    let mut groups = vec![a.to_vec(), b.to_vec()];
    groups.retain(|g| !g.is_empty());
    groups
}

/// Waits until no node holds a hint; `Ok(hints delivered since start,
/// summed)`, or `Err(hints pending)` past `until`.
async fn hints_drained(addrs: &[String], until: Instant) -> Result<u64, u64> {
    loop {
        let mut pending = 0;
        let mut delivered = 0;
        for addr in addrs {
            let status = match workload::connect(
                workload::client_config(std::slice::from_ref(addr), 0),
                until,
            )
            .await
            {
                Some(c) => c.status().await.ok(),
                None => None,
            };
            match status {
                Some(s) => {
                    pending += s.hints_pending;
                    delivered += s.hints_delivered_total;
                }
                // A node that does not answer may hold hints.
                None => pending += 1,
            }
        }
        if pending == 0 {
            return Ok(delivered);
        }
        if Instant::now() > until {
            return Err(pending);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Polls every key's replica digests until all agree; returns how long
/// after `since` that happened, or `None` past `until`.
async fn converge(
    client: &kv_client::Client,
    keys: &[String],
    since: Instant,
    until: Instant,
) -> Option<Duration> {
    let mut pending: Vec<&String> = keys.iter().collect();
    loop {
        let mut still = Vec::new();
        for chunk in pending.chunks(16) {
            let answers = futures::future::join_all(
                chunk.iter().map(|k| client.replica_digests(k.to_string())),
            )
            .await;
            for (key, answer) in chunk.iter().zip(answers) {
                let agreed = match answer {
                    Ok(d) => {
                        !d.is_empty()
                            && d.iter()
                                .all(|r| r.digest.is_some() && r.digest == d[0].digest)
                    }
                    Err(_) => false,
                };
                if !agreed {
                    still.push(*key);
                }
            }
        }
        if still.is_empty() {
            return Some(since.elapsed());
        }
        if Instant::now() > until {
            return None;
        }
        pending = still;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Counts of a history's workload operations, for the report.
pub fn counts(ops: &[history::Op]) -> (u64, u64, u64, u64) {
    let mut c = (0, 0, 0, 0);
    for op in ops.iter().filter(|o| o.kind != history::OpKind::FinalRead) {
        c.0 += 1;
        match op.outcome {
            Outcome::Ok => c.1 += 1,
            Outcome::Fail => c.2 += 1,
            Outcome::Info => c.3 += 1,
        }
    }
    c
}
