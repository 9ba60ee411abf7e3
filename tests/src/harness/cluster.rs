//! Process control: a cluster of real `kvnode` processes, on loopback or
//! each in its own network namespace, and the process-level faults (kill -9,
//! SIGSTOP/SIGCONT, SIGTERM, wiping the data store, a skewed clock).
//!
//! Every process is killed when the [`Cluster`] is dropped, on success, on
//! error and on panic; a paused one is resumed first so it can die.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use kv_client::{Client, ClientConfig};

use crate::net::Netns;

/// Bound on how long a node may take to start listening.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on how long a node may take to exit after SIGTERM.
pub const TERM_TIMEOUT: Duration = Duration::from_secs(20);
/// Bound on waiting for gossip to see every node alive.
pub const ALIVE_TIMEOUT: Duration = Duration::from_secs(60);
/// The client port of every node inside its own namespace.
pub const NETNS_PORT: u16 = 7400;
/// Bound on nodes in one cluster.
pub const NODES_MAX: usize = 16;

/// How the cluster is configured.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The `kvnode` binary.
    pub kvnode: PathBuf,
    /// Directory for the nodes' data directories and logs (emptied first).
    pub base_dir: PathBuf,
    /// Nodes.
    pub nodes: usize,
    /// Replicas per key.
    pub n: u8,
    /// Read quorum.
    pub r: u8,
    /// Write quorum.
    pub w: u8,
    /// `strict` or `sloppy`.
    pub mode: String,
    /// Gossip interval; the failure detector convicts after about 17 of
    /// them (phi 5).
    pub gossip_interval_ms: u64,
    /// Anti-entropy round interval.
    pub anti_entropy_interval_ms: u64,
}

/// One node process and what is needed to restart it.
#[derive(Debug)]
pub struct NodeProc {
    /// Its index in the cluster.
    pub index: usize,
    /// Where clients reach it.
    pub addr: String,
    /// Its data directory.
    pub dir: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    paused: bool,
    /// Extra environment for the next start (libfaketime).
    env: Vec<(String, String)>,
}

impl NodeProc {
    /// Whether the process is running (possibly paused).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(lines).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    fn signal(&self, signal: &str) -> Result<()> {
        let Some(child) = &self.child else {
            bail!("node {} is not running", self.index);
        };
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .context("cannot run kill")?;
        if !status.success() {
            bail!("kill {signal} of node {} failed: {status}", self.index);
        }
        Ok(())
    }
}

/// A running cluster. Dropping it kills every process, then (its last
/// field) removes the namespaces.
#[derive(Debug)]
pub struct Cluster {
    /// The configuration it was started with.
    pub config: ClusterConfig,
    /// The nodes, by index.
    pub nodes: Vec<NodeProc>,
    /// The namespaces, when the nodes run in them.
    pub netns: Option<Netns>,
}

impl Cluster {
    /// Starts every node (node 0 alone, the others seeded from it) and
    /// waits until each sees all of them alive.
    pub async fn start(config: ClusterConfig, netns: Option<Netns>) -> Result<Cluster> {
        if config.nodes == 0 || config.nodes > NODES_MAX {
            bail!("nodes must be between 1 and {NODES_MAX}");
        }
        if config.base_dir.exists() {
            std::fs::remove_dir_all(&config.base_dir)
                .with_context(|| format!("cannot empty {}", config.base_dir.display()))?;
        }
        std::fs::create_dir_all(&config.base_dir)?;
        let mut nodes = Vec::new();
        for index in 0..config.nodes {
            let addr = match &netns {
                Some(ns) => format!("{}:{NETNS_PORT}", ns.node_ip(index)),
                None => format!("127.0.0.1:{}", free_port()?),
            };
            nodes.push(NodeProc {
                index,
                addr,
                dir: config.base_dir.join(format!("node-{index}")),
                log: config.base_dir.join(format!("node-{index}.log")),
                child: None,
                paused: false,
                env: Vec::new(),
            });
        }
        let mut cluster = Cluster {
            config,
            nodes,
            netns,
        };
        for i in 0..cluster.nodes.len() {
            let seeds = if i == 0 {
                Vec::new()
            } else {
                vec![cluster.nodes[0].addr.clone()]
            };
            cluster.spawn(i, &seeds)?;
        }
        cluster.wait_all_alive(ALIVE_TIMEOUT).await?;
        Ok(cluster)
    }

    /// Every node's client address, by index.
    pub fn addrs(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.addr.clone()).collect()
    }

    fn spawn(&mut self, i: usize, seeds: &[String]) -> Result<()> {
        let c = &self.config;
        let node = &self.nodes[i];
        std::fs::create_dir_all(&node.dir)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)?;
        let mut cmd = match &self.netns {
            Some(ns) => ns.command(i, &c.kvnode),
            None => Command::new(&c.kvnode),
        };
        cmd.arg("serve")
            .args(["--data-dir", &node.dir.display().to_string()])
            .args(["--listen", &node.addr])
            .args(["--n", &c.n.to_string()])
            .args(["--r", &c.r.to_string()])
            .args(["--w", &c.w.to_string()])
            .args(["--mode", &c.mode])
            .args(["--gossip-interval-ms", &c.gossip_interval_ms.to_string()])
            .args([
                "--anti-entropy-interval-ms",
                &c.anti_entropy_interval_ms.to_string(),
            ])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if !seeds.is_empty() {
            cmd.args(["--seeds", &seeds.join(",")]);
        }
        for (k, v) in &node.env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", c.kvnode.display()))?;
        let addr = node.addr.clone();
        self.nodes[i].child = Some(child);
        self.nodes[i].paused = false;
        let deadline = Instant::now() + START_TIMEOUT;
        while std::net::TcpStream::connect_timeout(
            &addr.parse().context("node address")?,
            Duration::from_millis(200),
        )
        .is_err()
        {
            if let Some(child) = self.nodes[i].child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                self.nodes[i].child = None;
                bail!(
                    "node {i} at {addr} exited with {status}; log:\n{}",
                    self.nodes[i].log_tail(30)
                );
            }
            if Instant::now() > deadline {
                bail!("node {i} at {addr} did not listen within {START_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Seeds for a restart: every other node, so a node whose seed is down
    /// still finds the cluster.
    fn seeds_for(&self, i: usize) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| n.index != i)
            .map(|n| n.addr.clone())
            .collect()
    }

    /// kill -9.
    pub fn kill(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if let Some(mut child) = node.child.take() {
            if node.paused {
                let _ = Command::new("kill")
                    .args(["-CONT", &child.id().to_string()])
                    .status();
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        node.paused = false;
    }

    /// SIGTERM, and waits (bounded) for the exit; kills it past the bound.
    pub fn terminate(&mut self, i: usize) -> Result<()> {
        self.nodes[i].signal("-TERM")?;
        let deadline = Instant::now() + TERM_TIMEOUT;
        loop {
            let Some(child) = self.nodes[i].child.as_mut() else {
                return Ok(());
            };
            if let Some(status) = child.try_wait()? {
                self.nodes[i].child = None;
                if !status.success() {
                    bail!(
                        "node {i} exited with {status} after SIGTERM; log:\n{}",
                        self.nodes[i].log_tail(20)
                    );
                }
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill(i);
                bail!("node {i} ignored SIGTERM for {TERM_TIMEOUT:?}; killed");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts a stopped node again, on the same address and directory.
    pub fn restart(&mut self, i: usize) -> Result<()> {
        if self.nodes[i].is_running() {
            bail!("node {i} is still running");
        }
        let seeds = self.seeds_for(i);
        self.spawn(i, &seeds)
    }

    /// SIGSTOP.
    pub fn pause(&mut self, i: usize) -> Result<()> {
        self.nodes[i].signal("-STOP")?;
        self.nodes[i].paused = true;
        Ok(())
    }

    /// SIGCONT.
    pub fn resume(&mut self, i: usize) -> Result<()> {
        if self.nodes[i].paused {
            self.nodes[i].signal("-CONT")?;
            self.nodes[i].paused = false;
        }
        Ok(())
    }

    /// Kills the node and removes its data store (`data/` and `hints/`),
    /// keeping its identity (id, tokens), as a replaced disk would under a
    /// kept configuration; then starts it again.
    pub fn wipe_and_restart(&mut self, i: usize) -> Result<()> {
        self.kill(i);
        for sub in ["data", "hints"] {
            let dir = self.nodes[i].dir.join(sub);
            if dir.exists() {
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("cannot wipe {}", dir.display()))?;
            }
        }
        self.restart(i)
    }

    /// Sets the environment of node `i`'s next starts (libfaketime).
    pub fn set_env(&mut self, i: usize, env: Vec<(String, String)>) {
        self.nodes[i].env = env;
    }

    /// Makes every node whole: resumes paused ones and restarts stopped
    /// ones.
    pub fn revive_all(&mut self) -> Result<()> {
        for i in 0..self.nodes.len() {
            self.resume(i)?;
            if !self.nodes[i].is_running() {
                self.restart(i)?;
            }
        }
        Ok(())
    }

    /// Waits until every running node sees every node alive.
    pub async fn wait_all_alive(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let want = self.nodes.len();
        for node in self.nodes.iter().filter(|n| n.is_running()) {
            loop {
                let seen = alive_seen_by(&node.addr).await;
                if seen == Some(want) {
                    break;
                }
                if Instant::now() > deadline {
                    bail!(
                        "node {} sees {seen:?} of {want} nodes alive after {timeout:?}; log:\n{}",
                        node.index,
                        node.log_tail(20)
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    /// Checks that no node died by itself (a crash is a finding).
    pub fn check_exits(&mut self) -> Vec<String> {
        let mut dead = Vec::new();
        for node in &mut self.nodes {
            if let Some(child) = node.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                dead.push(format!(
                    "node {} exited by itself with {status}; log tail:\n{}",
                    node.index,
                    node.log_tail(10)
                ));
                node.child = None;
            }
        }
        dead
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

/// How many members `addr` sees alive, or `None` if it does not answer.
async fn alive_seen_by(addr: &str) -> Option<usize> {
    let mut config = ClientConfig::new([addr.to_owned()]);
    config.request_timeout = Duration::from_secs(2);
    config.connect_timeout = Duration::from_secs(1);
    let client = Client::connect(config).await.ok()?;
    let status = client.status().await.ok()?;
    Some(status.members.iter().filter(|m| m.state == "alive").count())
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// libfaketime's preload library, if installed.
pub fn find_faketime() -> Option<PathBuf> {
    let candidates = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
        "/usr/lib64/faketime/libfaketime.so.1",
        "/usr/local/lib/faketime/libfaketime.so.1",
    ];
    if let Some(found) = candidates.iter().map(Path::new).find(|p| p.exists()) {
        return Some(found.to_path_buf());
    }
    // Another multiarch directory: look one level down in /usr/lib.
    let entries = std::fs::read_dir("/usr/lib").ok()?;
    entries
        .flatten()
        .map(|e| e.path().join("faketime/libfaketime.so.1"))
        .find(|p| p.exists())
}

/// The environment that shifts a process's wall clock by `offset_s` while
/// leaving its monotonic clock alone, after checking on `date` that the
/// library works here; `Err` says why not.
pub fn faketime_env(offset_s: i64) -> Result<Vec<(String, String)>, String> {
    let lib = find_faketime().ok_or("libfaketime is not installed (apt-get install faketime)")?;
    let env = vec![
        ("LD_PRELOAD".to_owned(), lib.display().to_string()),
        ("FAKETIME".to_owned(), format!("{offset_s:+}s")),
        ("FAKETIME_DONT_FAKE_MONOTONIC".to_owned(), "1".to_owned()),
    ];
    let out = Command::new("date")
        .arg("+%s")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .map_err(|e| format!("cannot run date under libfaketime: {e}"))?;
    let faked: i64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| "date under libfaketime printed no time".to_owned())?;
    let real = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if (faked - real - offset_s).abs() > 5 {
        return Err(format!(
            "libfaketime at {} does not shift the clock (date says {faked}, now is {real})",
            lib.display()
        ));
    }
    Ok(env)
}
