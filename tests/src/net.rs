//! Network faults for multi-process cluster tests: one network namespace per
//! node, joined by a bridge, with iptables rules for partitions, one-way cuts
//! and random loss.
//!
//! ```text
//!  root namespace (harness)        hub namespace kvh-<pid>-<seq>-hub
//!  +---------------------+         +-------------------------------+
//!  | kvh<pid>r<seq>      |<-veth-->| uplink --+                    |
//!  | 10.213.X.1/24       |         |          +-- br0 (bridge)     |
//!  +---------------------+         | n0 ------+                    |
//!                                  | n1 ------+   ...              |
//!                                  +--|----|-----------------------+
//!                                   veth  veth
//!                                     |    |
//!  node namespace kvh-<pid>-<seq>-n0: eth0 10.213.X.10/24, lo
//!  node namespace kvh-<pid>-<seq>-n1: eth0 10.213.X.11/24, lo   ...
//! ```
//!
//! The only thing made in the root namespace is one veth end with the
//! harness address; the bridge lives in a namespace of its own, so nothing
//! in the root namespace's firewall or interfaces is touched.
//!
//! Faults are iptables rules inside each node's namespace, in chains of our
//! own, so that healing is a flush and nothing else is ever rewritten:
//!
//! ```text
//!   INPUT : -i lo ACCEPT, -s <harness> ACCEPT, -j KVH-FAULT
//!   OUTPUT: -o lo ACCEPT, -d <harness> ACCEPT, -j KVH-FAULT
//!   KVH-FAULT: -j KVH-PART, -j KVH-CUT, -j KVH-LOSS
//! ```
//!
//! Harness traffic is accepted before any fault chain, so clients and status
//! checks always reach every node; faults only ever hit node-to-node packets.
//!
//! # Cleanup
//!
//! [`Netns`]'s `Drop` kills whatever still runs in its namespaces and
//! removes the namespaces and the root veth; it runs on a normal return and
//! on a panic that unwinds. For what `Drop` cannot cover (Ctrl-C, SIGKILL,
//! `panic = "abort"`), [`Netns::create`] also starts a reaper: a small shell
//! in its own process group (so the terminal's SIGINT does not reach it)
//! that polls the harness's pid once a second and, when the harness is
//! gone, removes everything the same way. On Ctrl-C the harness dies at
//! once, its node processes get the same SIGINT, and within about a second
//! the reaper removes the namespaces and the veth. Should even the reaper be
//! killed, [`cleanup_stale`] (called by every [`Netns::create`]) removes
//! leftovers whose owner pid is dead: names carry the owner's pid.
//!
//! # Delay
//!
//! The kernel has no `tc netem`, so [`Netns::set_delay`] delays with a
//! proxy instead: inside node `i`'s namespace, a `kvh-probe delay-proxy`
//! process per listening port, and a nat rule that sends other nodes'
//! connections to it:
//!
//! ```text
//!   nat PREROUTING: ! -s <harness> -j KVH-DELAY
//!   KVH-DELAY:      -p tcp -d <node i> --dport P -j REDIRECT --to-ports Q
//!   peer j --TCP--> node i:P  ==REDIRECT==>  proxy :Q --lo--> node i:P
//! ```
//!
//! The source address is kept, so partitions, cuts and loss still apply to
//! the delayed leg. Only TCP into node `i` is delayed (each chunk of bytes,
//! both ways); UDP, the harness's connections and connections node `i`
//! opens itself are not.

use std::fmt::Write as _;
use std::io::{Read, Write as _};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// Bound on how long one `ip` or `iptables` invocation may run before it is
/// killed and reported: a stuck command must not hang the harness.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// Most nodes one [`Netns`] holds: node addresses run from `.10` upward in
/// a /24.
pub const NODES_MAX: usize = 200;

/// Every name this module makes starts with this, followed by the owner's
/// pid: namespaces `kvh-<pid>-<seq>-hub` / `-n<i>`, the root veth
/// `kvh<pid>r<seq>`.
const PREFIX: &str = "kvh";

/// The subnets tried are `10.213.X.0/24`.
const SUBNET_BASE: [u8; 2] = [10, 213];

/// Held while a subnet is chosen and claimed, so that two harnesses
/// starting at once do not pick the same one.
const LOCK_FILE: &str = "/run/kvh-netns.lock";

/// How often the reaper looks whether the harness is still alive.
const REAPER_POLL_S: u32 = 1;

const CHAIN_FAULT: &str = "KVH-FAULT";
const CHAIN_PART: &str = "KVH-PART";
const CHAIN_CUT: &str = "KVH-CUT";
const CHAIN_LOSS: &str = "KVH-LOSS";
const CHAIN_DELAY: &str = "KVH-DELAY";

/// Distinguishes several [`Netns`] made by one process.
static SEQ: AtomicU32 = AtomicU32::new(0);

/// A private network for a test cluster: one namespace per node, joined by
/// a bridge, reachable from the harness.
///
/// Dropping it removes every namespace, veth and bridge it made (best
/// effort: failures are logged to stderr, never panicked on).
#[derive(Debug)]
pub struct Netns {
    hub: String,
    nodes: Vec<String>,
    root_veth: String,
    subnet: u8,
    iptables: String,
    reaper: Option<Child>,
    /// Running delay proxies, by node.
    delays: Mutex<Vec<DelayProxy>>,
}

/// One `kvh-probe delay-proxy` in a node's namespace.
#[derive(Debug)]
struct DelayProxy {
    node: usize,
    child: Child,
}

impl Netns {
    /// Whether this machine can run network-fault tests: `Err` says why not
    /// (not root, no `ip`, no iptables, namespaces cannot be made).
    pub fn available() -> Result<(), String> {
        let uid = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Uid:"))
                    .and_then(|rest| rest.split_whitespace().nth(1).map(str::to_owned))
            })
            .ok_or("cannot read the effective uid from /proc/self/status")?;
        if uid != "0" {
            return Err(format!("needs root (effective uid is {uid})"));
        }
        run("ip", &["-V"]).map_err(|e| format!("no usable `ip` (iproute2): {e:#}"))?;
        run("iptables", &["--version"])
            .map_err(|e| format!("no usable `iptables` (install the iptables package): {e:#}"))?;
        run("iptables-restore", &["--version"])
            .map_err(|e| format!("no usable `iptables-restore`: {e:#}"))?;
        // Unique per call: tests run in parallel threads of one process.
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let probe = format!("{PREFIX}-{}-{seq}-probe", std::process::id());
        run("ip", &["netns", "add", &probe])
            .map_err(|e| format!("cannot create a network namespace: {e:#}"))?;
        let rules = run(
            "ip",
            &["netns", "exec", &probe, "iptables", "-w", "5", "-S"],
        );
        let statistic = run(
            "ip",
            &[
                "netns",
                "exec",
                &probe,
                "iptables",
                "-w",
                "5",
                "-A",
                "INPUT",
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
                "0.5",
                "-j",
                "ACCEPT",
            ],
        );
        if let Err(e) = run("ip", &["netns", "del", &probe]) {
            eprintln!("netns: cannot remove probe namespace {probe}: {e:#}");
        }
        rules.map_err(|e| format!("iptables does not work inside a namespace: {e:#}"))?;
        statistic.map_err(|e| format!("iptables' statistic match is missing: {e:#}"))?;
        Ok(())
    }

    /// Makes `nodes` namespaces on a fresh bridge, with a veth from the root
    /// namespace so that the harness reaches every node, and the fault
    /// chains installed (empty). Removes stale leftovers of dead owners
    /// first.
    pub fn create(nodes: usize) -> anyhow::Result<Netns> {
        if nodes == 0 || nodes > NODES_MAX {
            bail!("a Netns holds 1 to {NODES_MAX} nodes, not {nodes}");
        }
        cleanup_stale();
        let iptables = run("iptables", &["--version"])
            .context("iptables is needed for network faults")?
            .trim()
            .to_owned();
        let pid = std::process::id();
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let base = format!("{PREFIX}-{pid}-{seq}");
        let mut net = Netns {
            hub: format!("{base}-hub"),
            nodes: (0..nodes).map(|i| format!("{base}-n{i}")).collect(),
            root_veth: format!("{PREFIX}{pid}r{seq}"),
            subnet: 0,
            iptables,
            reaper: None,
            delays: Mutex::new(Vec::new()),
        };
        if net.root_veth.len() > 15 {
            bail!(
                "interface name {} is longer than 15 characters",
                net.root_veth
            );
        }
        // From here on, Drop undoes whatever part was made.
        net.reaper = Some(net.start_reaper()?);
        net.build()?;
        Ok(net)
    }

    fn build(&mut self) -> anyhow::Result<()> {
        let hub = self.hub.clone();
        ip(&["netns", "add", &hub])?;
        for ns in &self.nodes {
            ip(&["netns", "add", ns])?;
        }
        ip(&["-n", &hub, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &hub, "link", "set", "br0", "up"])?;
        for (i, ns) in self.nodes.iter().enumerate() {
            let port = format!("n{i}");
            ip(&[
                "-n", &hub, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                ns,
            ])?;
            ip(&["-n", &hub, "link", "set", &port, "master", "br0", "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        // The subnet is chosen and claimed (its .1 put on the root veth)
        // under a lock, so a concurrent harness sees it taken.
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(LOCK_FILE)
            .with_context(|| format!("cannot open {LOCK_FILE}"))?;
        lock.lock()
            .with_context(|| format!("cannot lock {LOCK_FILE}"))?;
        self.subnet = free_subnet()?;
        ip(&[
            "link",
            "add",
            &self.root_veth,
            "type",
            "veth",
            "peer",
            "name",
            "uplink",
            "netns",
            &hub,
        ])?;
        let harness = format!("{}/24", self.harness_ip());
        ip(&["addr", "add", &harness, "dev", &self.root_veth])?;
        drop(lock);
        ip(&["link", "set", &self.root_veth, "up"])?;
        ip(&["-n", &hub, "link", "set", "uplink", "master", "br0", "up"])?;
        for i in 0..self.nodes.len() {
            let ns = &self.nodes[i];
            let addr = format!("{}/24", self.node_ip(i));
            ip(&["-n", ns, "addr", "add", &addr, "dev", "eth0"])?;
            ip(&["-n", ns, "link", "set", "eth0", "up"])?;
            let harness = self.harness_ip().to_string();
            let rules = format!(
                "*filter\n\
                 :{CHAIN_FAULT} - [0:0]\n\
                 :{CHAIN_PART} - [0:0]\n\
                 :{CHAIN_CUT} - [0:0]\n\
                 :{CHAIN_LOSS} - [0:0]\n\
                 -A INPUT -i lo -j ACCEPT\n\
                 -A INPUT -s {harness} -j ACCEPT\n\
                 -A INPUT -j {CHAIN_FAULT}\n\
                 -A OUTPUT -o lo -j ACCEPT\n\
                 -A OUTPUT -d {harness} -j ACCEPT\n\
                 -A OUTPUT -j {CHAIN_FAULT}\n\
                 -A {CHAIN_FAULT} -j {CHAIN_PART}\n\
                 -A {CHAIN_FAULT} -j {CHAIN_CUT}\n\
                 -A {CHAIN_FAULT} -j {CHAIN_LOSS}\n\
                 COMMIT\n\
                 *nat\n\
                 :{CHAIN_DELAY} - [0:0]\n\
                 -A PREROUTING ! -s {harness} -j {CHAIN_DELAY}\n\
                 COMMIT\n"
            );
            self.restore(i, &rules, false)?;
        }
        Ok(())
    }

    /// How many node namespaces there are.
    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Node `i`'s address, reachable from the root namespace (the harness's
    /// clients) and from every other node.
    ///
    /// # Panics
    ///
    /// If `i` is not a node index (a programming error in the test).
    pub fn node_ip(&self, i: usize) -> Ipv4Addr {
        assert!(i < self.nodes.len(), "node {i} of {}", self.nodes.len());
        // `i < NODES_MAX`, checked at creation, so `10 + i` fits in a u8.
        let host = u8::try_from(10 + i).unwrap_or(u8::MAX);
        Ipv4Addr::new(SUBNET_BASE[0], SUBNET_BASE[1], self.subnet, host)
    }

    /// The harness's own address on the test network (the root veth end).
    /// Traffic from and to it is never faulted.
    pub fn harness_ip(&self) -> Ipv4Addr {
        Ipv4Addr::new(SUBNET_BASE[0], SUBNET_BASE[1], self.subnet, 1)
    }

    /// The name of node `i`'s namespace, for `ip netns exec` by hand.
    ///
    /// # Panics
    ///
    /// If `i` is not a node index.
    pub fn namespace(&self, i: usize) -> &str {
        &self.nodes[i]
    }

    /// Every namespace this network made (nodes, then the hub), for checks
    /// that cleanup left nothing behind.
    pub fn namespaces(&self) -> Vec<&str> {
        self.nodes
            .iter()
            .chain([&self.hub])
            .map(String::as_str)
            .collect()
    }

    /// The one interface made in the root namespace (the harness's veth end).
    pub fn root_interface(&self) -> &str {
        &self.root_veth
    }

    /// A command that runs `program` inside node `i`'s namespace:
    /// `ip netns exec <ns> program`. `ip netns exec` execs the program
    /// itself, so the child's pid is the program's pid and SIGKILL or
    /// SIGSTOP sent to it hit the node.
    ///
    /// # Panics
    ///
    /// If `i` is not a node index.
    pub fn command(&self, i: usize, program: &Path) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.nodes[i]]).arg(program);
        cmd
    }

    /// Splits the nodes into `groups`: nodes in different groups cannot
    /// exchange packets, in either direction. A node in no group is cut off
    /// from every other node. Harness traffic always passes. Replaces the
    /// previous partition; cuts and loss stay.
    pub fn partition(&self, groups: &[Vec<usize>]) -> anyhow::Result<()> {
        let n = self.nodes.len();
        let mut group_of: Vec<Option<usize>> = vec![None; n];
        for (g, members) in groups.iter().enumerate() {
            for &i in members {
                if i >= n {
                    bail!("partition names node {i}, but there are {n}");
                }
                if group_of[i].replace(g).is_some() {
                    bail!("partition names node {i} twice");
                }
            }
        }
        for i in 0..n {
            let mut rules = format!("*filter\n-F {CHAIN_PART}\n");
            for j in (0..n).filter(|&j| j != i) {
                let apart = match (group_of[i], group_of[j]) {
                    (Some(a), Some(b)) => a != b,
                    _ => true,
                };
                if apart {
                    let peer = self.node_ip(j);
                    let _ = writeln!(rules, "-A {CHAIN_PART} -s {peer} -j DROP");
                    let _ = writeln!(rules, "-A {CHAIN_PART} -d {peer} -j DROP");
                }
            }
            rules.push_str("COMMIT\n");
            self.restore(i, &rules, true)?;
        }
        Ok(())
    }

    /// Drops every packet from node `from` to node `to`; packets from `to`
    /// to `from` still pass. Adds to earlier cuts. Note that TCP needs both
    /// directions: connections either way between the two stall (SYN or
    /// SYN-ACK lost), while one-way datagrams from `to` still arrive.
    pub fn cut_one_way(&self, from: usize, to: usize) -> anyhow::Result<()> {
        let n = self.nodes.len();
        if from >= n || to >= n || from == to {
            bail!("cannot cut {from} -> {to} among {n} nodes");
        }
        let (src, dst) = (self.node_ip(from), self.node_ip(to));
        // Dropped both where it leaves and where it would arrive, so that
        // the cut holds even if one namespace's rules are flushed by hand.
        self.restore(
            from,
            &format!("*filter\n-A {CHAIN_CUT} -d {dst} -j DROP\nCOMMIT\n"),
            true,
        )?;
        self.restore(
            to,
            &format!("*filter\n-A {CHAIN_CUT} -s {src} -j DROP\nCOMMIT\n"),
            true,
        )
    }

    /// Drops each packet node `i` sends to or receives from another node
    /// with `probability` (iptables' statistic match). A round trip thus
    /// loses more than `probability`. `0.0` removes node `i`'s loss; `1.0`
    /// drops everything. Harness traffic is never dropped.
    pub fn set_loss(&self, i: usize, probability: f64) -> anyhow::Result<()> {
        if i >= self.nodes.len() {
            bail!("no node {i} among {}", self.nodes.len());
        }
        if !(0.0..=1.0).contains(&probability) {
            bail!("loss probability {probability} is not within 0.0..=1.0");
        }
        let mut rules = format!("*filter\n-F {CHAIN_LOSS}\n");
        if probability >= 1.0 {
            let _ = writeln!(rules, "-A {CHAIN_LOSS} -j DROP");
        } else if probability > 0.0 {
            let _ = writeln!(
                rules,
                "-A {CHAIN_LOSS} -m statistic --mode random --probability {probability:.6} -j DROP"
            );
        }
        rules.push_str("COMMIT\n");
        self.restore(i, &rules, true)
    }

    /// Removes every fault: partitions, cuts, loss and delays, on every
    /// node.
    pub fn heal(&self) -> anyhow::Result<()> {
        let rules = format!(
            "*filter\n-F {CHAIN_PART}\n-F {CHAIN_CUT}\n-F {CHAIN_LOSS}\nCOMMIT\n\
             *nat\n-F {CHAIN_DELAY}\nCOMMIT\n"
        );
        for i in 0..self.nodes.len() {
            self.restore(i, &rules, true)?;
        }
        self.stop_proxies(None);
        Ok(())
    }

    /// Delays TCP connections that other nodes open to node `i`: every
    /// chunk of bytes, either way, is held `delay` before it is passed on,
    /// so a request and its answer over such a connection take at least
    /// `2 * delay` longer. Covers the TCP ports node `i` listens on (not on
    /// loopback only) when called, so start the node first. Connections
    /// already open are reset (`ss -K`) so that peers reconnect through the
    /// delay. `Duration::ZERO` removes node `i`'s delay. UDP, the harness's
    /// own connections and connections node `i` opens are not delayed;
    /// delay those peers too for a uniformly slow network.
    ///
    /// Needs the `kvh-probe` binary of this crate: `KVH_PROBE`, or next to
    /// the running test (Cargo builds it for this crate's tests).
    pub fn set_delay(&self, i: usize, delay: Duration) -> anyhow::Result<()> {
        if i >= self.nodes.len() {
            bail!("no node {i} among {}", self.nodes.len());
        }
        self.restore(i, &format!("*nat\n-F {CHAIN_DELAY}\nCOMMIT\n"), true)?;
        self.stop_proxies(Some(i));
        if delay.is_zero() {
            return Ok(());
        }
        let probe = probe_binary()?;
        let ns = &self.nodes[i];
        let node = self.node_ip(i);
        let ports = listening_ports(ns, node)?;
        if ports.is_empty() {
            bail!("node {i} listens on no TCP port of {node}: nothing to delay (start it first)");
        }
        let mut rules = format!("*nat\n-F {CHAIN_DELAY}\n");
        for &port in &ports {
            let proxy = self.start_proxy(i, &probe, port, delay)?;
            let _ = writeln!(
                rules,
                "-A {CHAIN_DELAY} -p tcp -d {node} --dport {port} -j REDIRECT --to-ports {proxy}"
            );
        }
        rules.push_str("COMMIT\n");
        self.restore(i, &rules, true)?;
        // Connections opened before the rule bypass it (conntrack keeps
        // their first translation): reset them. Not the harness's, and not
        // the proxies' own upstream connections, which come from the node's
        // address.
        let harness = self.harness_ip().to_string();
        for port in ports {
            let filter = format!("sport = :{port} and not dst {harness} and not dst {node}");
            run(
                "ip",
                &[
                    "netns",
                    "exec",
                    ns,
                    "ss",
                    "-K",
                    "-tn",
                    "state",
                    "established",
                    &filter,
                ],
            )?;
        }
        Ok(())
    }

    /// Starts a delay proxy for node `i`'s `port`; returns the port it
    /// listens on.
    fn start_proxy(
        &self,
        i: usize,
        probe: &Path,
        port: u16,
        delay: Duration,
    ) -> anyhow::Result<u16> {
        let target = format!("{}:{port}", self.node_ip(i));
        let mut child = self
            .command(i, probe)
            .args(["delay-proxy", &target, &delay.as_millis().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {} delay-proxy", probe.display()))?;
        let line = child.stdout.take().map(first_line);
        let listen = line
            .and_then(|rx| rx.recv_timeout(COMMAND_TIMEOUT).ok())
            .and_then(|l| l.trim().parse::<u16>().ok());
        let mut delays = self.delays.lock().unwrap_or_else(|p| p.into_inner());
        delays.push(DelayProxy { node: i, child });
        listen.with_context(|| format!("the delay proxy for {target} did not report its port"))
    }

    /// Kills the delay proxies of node `only`, or of every node.
    fn stop_proxies(&self, only: Option<usize>) {
        let mut delays = self.delays.lock().unwrap_or_else(|p| p.into_inner());
        let (stop, keep): (Vec<_>, Vec<_>) = delays
            .drain(..)
            .partition(|p| only.is_none_or(|i| p.node == i));
        *delays = keep;
        for mut proxy in stop {
            let _ = proxy.child.kill();
            let _ = proxy.child.wait();
        }
    }

    /// One line for reports: how the network is made and where.
    pub fn describe(&self) -> String {
        format!(
            "netns+iptables (bridge br0 in netns {}, subnet {}.{}.{}.0/24, harness {}, {} nodes, {}; delay by TCP proxy, no tc netem)",
            self.hub,
            SUBNET_BASE[0],
            SUBNET_BASE[1],
            self.subnet,
            self.harness_ip(),
            self.nodes.len(),
            self.iptables
        )
    }

    /// The rules installed in node `i`'s namespace (`iptables -S`), for
    /// failure messages.
    pub fn rules(&self, i: usize) -> anyhow::Result<String> {
        run(
            "ip",
            &["netns", "exec", &self.nodes[i], "iptables", "-w", "5", "-S"],
        )
    }

    /// Loads `rules` into node `i`'s namespace with `iptables-restore`;
    /// `noflush` keeps the chains the rules do not name, so that a fault
    /// of one kind leaves the others alone. Each call is atomic.
    fn restore(&self, i: usize, rules: &str, noflush: bool) -> anyhow::Result<()> {
        let mut args = vec![
            "netns",
            "exec",
            &self.nodes[i],
            "iptables-restore",
            "-w",
            "5",
        ];
        if noflush {
            args.push("--noflush");
        }
        run_with_input("ip", &args, Some(rules))
            .with_context(|| format!("rules were:\n{rules}"))
            .map(drop)
    }

    /// Starts the shell that cleans up if the harness dies without running
    /// `Drop` (Ctrl-C, SIGKILL). It is in its own process group so the
    /// terminal's SIGINT does not reach it, and `Drop` kills it by pid.
    fn start_reaper(&self) -> anyhow::Result<Child> {
        use std::os::unix::process::CommandExt as _;
        let owner = std::process::id();
        let script = format!(
            "while kill -0 {owner} 2>/dev/null; do sleep {REAPER_POLL_S}; done; {}",
            self.cleanup_script()
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .context("cannot start the netns reaper (`sh`)")
    }

    /// The same removal as `Drop`, as shell. The root veth goes first: a
    /// namespace is destroyed asynchronously after `ip netns del`, so the
    /// veth end it takes with it may linger for a moment.
    fn cleanup_script(&self) -> String {
        let mut script = format!("ip link del {} 2>/dev/null; ", self.root_veth);
        for ns in self.nodes.iter().chain([&self.hub]) {
            let _ = write!(
                script,
                "for p in $(ip netns pids {ns} 2>/dev/null); do kill -9 $p; done; ip netns del {ns}; "
            );
        }
        script.push_str("true");
        script
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.stop_proxies(None);
        if let Some(mut reaper) = self.reaper.take() {
            let _ = reaper.kill();
            let _ = reaper.wait();
        }
        // The root veth first, synchronously; see `cleanup_script`.
        if link_exists(&self.root_veth)
            && let Err(e) = ip(&["link", "del", &self.root_veth])
        {
            eprintln!("netns: cannot remove {}: {e:#}", self.root_veth);
        }
        let present = namespaces();
        for ns in self.nodes.iter().chain([&self.hub]) {
            if present.iter().any(|p| p == ns) {
                remove_namespace(ns);
            }
        }
    }
}

/// The `kvh-probe` binary: `KVH_PROBE`, or next to the running executable
/// or its parent directory (`target/<profile>/deps/<test>` ->
/// `target/<profile>/kvh-probe`).
fn probe_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("KVH_PROBE") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().context("cannot find the running executable")?;
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join("kvh-probe"))
        .find(|p| p.is_file())
        .context(
            "set_delay needs kv-tests' kvh-probe binary: build kv-tests' tests or set KVH_PROBE",
        )
}

/// TCP ports listened on in `ns` on `node` or on every address.
fn listening_ports(ns: &str, node: Ipv4Addr) -> anyhow::Result<Vec<u16>> {
    let out = run("ip", &["netns", "exec", ns, "ss", "-Hltn4"])?;
    Ok(parse_listening(&out, node))
}

/// The ports in `ss -Hltn4` output that listen on `node` or everywhere.
fn parse_listening(out: &str, node: Ipv4Addr) -> Vec<u16> {
    let mut ports: Vec<u16> = out
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .filter_map(|local| {
            let (host, port) = local.rsplit_once(':')?;
            let on = host == "*" || host == "0.0.0.0" || host == node.to_string();
            on.then(|| port.parse().ok()).flatten()
        })
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// The first line of `pipe`, read on a thread of its own so that the
/// caller can bound the wait; the pipe is then left to close with its
/// process.
fn first_line(pipe: impl Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let mut reader = std::io::BufReader::new(pipe);
        let _ = std::io::BufRead::read_line(&mut reader, &mut line);
        let _ = tx.send(line);
        // Keep draining so the proxy never blocks on a full pipe.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    rx
}

/// Removes namespaces and root veths left by earlier runs whose owner
/// process is gone (names carry the owner's pid). Failures are logged, not
/// returned: a leftover must not stop a new run.
pub fn cleanup_stale() {
    for link in root_links() {
        if let Some(pid) = link_owner(&link)
            && !pid_alive(pid)
        {
            eprintln!("netns: removing stale interface {link} (owner pid {pid} is gone)");
            if let Err(e) = ip(&["link", "del", &link]) {
                eprintln!("netns: cannot remove {link}: {e:#}");
            }
        }
    }
    for ns in namespaces() {
        if let Some(pid) = namespace_owner(&ns)
            && !pid_alive(pid)
        {
            eprintln!("netns: removing stale namespace {ns} (owner pid {pid} is gone)");
            remove_namespace(&ns);
        }
    }
}

/// The owner pid in a namespace name `kvh-<pid>-<seq>-<role>`.
fn namespace_owner(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?.strip_prefix('-')?;
    let mut parts = rest.splitn(3, '-');
    let pid = parts.next()?.parse().ok()?;
    parts.next()?.parse::<u32>().ok()?;
    parts.next()?;
    Some(pid)
}

/// The owner pid in a root veth name `kvh<pid>r<seq>`.
fn link_owner(name: &str) -> Option<u32> {
    let (pid, seq) = name.strip_prefix(PREFIX)?.split_once('r')?;
    seq.parse::<u32>().ok()?;
    pid.parse().ok()
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Kills what still runs inside `ns` (a node the harness did not stop
/// would otherwise live on in an unnamed namespace) and removes it.
fn remove_namespace(ns: &str) {
    if let Ok(pids) = run("ip", &["netns", "pids", ns]) {
        for pid in pids.split_whitespace() {
            if let Err(e) = run("kill", &["-KILL", pid]) {
                eprintln!("netns: cannot kill {pid} in {ns}: {e:#}");
            }
        }
    }
    if let Err(e) = ip(&["netns", "del", ns]) {
        eprintln!("netns: cannot remove namespace {ns}: {e:#}");
    }
}

/// Names of all network namespaces that `ip netns` knows.
fn namespaces() -> Vec<String> {
    match run("ip", &["netns", "list"]) {
        Ok(out) => out
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_owned)
            .collect(),
        Err(e) => {
            eprintln!("netns: cannot list namespaces: {e:#}");
            Vec::new()
        }
    }
}

/// Names of the root namespace's interfaces that start with our prefix.
fn root_links() -> Vec<String> {
    match run("ip", &["-o", "link", "show"]) {
        Ok(out) => out
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|name| name.split('@').next().unwrap_or(name).to_owned())
            .filter(|name| name.starts_with(PREFIX))
            .collect(),
        Err(e) => {
            eprintln!("netns: cannot list interfaces: {e:#}");
            Vec::new()
        }
    }
}

fn link_exists(name: &str) -> bool {
    root_links().iter().any(|l| l == name)
}

/// A `10.213.X` not used by any root-namespace address or route, starting
/// from a pid-derived guess so that parallel runs rarely collide even
/// before the lock.
fn free_subnet() -> anyhow::Result<u8> {
    let addrs = run("ip", &["-4", "-o", "addr", "show"])?;
    let routes = run("ip", &["-4", "route", "show", "table", "all"])?;
    let start = std::process::id() % 256;
    for k in 0..256 {
        let x = u8::try_from((start + k) % 256).unwrap_or(0);
        let net = format!("{}.{}.{x}.", SUBNET_BASE[0], SUBNET_BASE[1]);
        if !addrs.contains(&net) && !routes.contains(&net) {
            return Ok(x);
        }
    }
    bail!(
        "every {}.{}.X.0/24 is in use",
        SUBNET_BASE[0],
        SUBNET_BASE[1]
    )
}

fn ip(args: &[&str]) -> anyhow::Result<String> {
    run("ip", args)
}

/// Runs `program args` with [`COMMAND_TIMEOUT`]; returns its stdout.
fn run(program: &str, args: &[&str]) -> anyhow::Result<String> {
    run_with_input(program, args, None)
}

/// Runs `program args`, feeding it `input`, killing it after
/// [`COMMAND_TIMEOUT`]. The error names the command, its exit status and
/// its stderr.
fn run_with_input(program: &str, args: &[&str], input: Option<&str>) -> anyhow::Result<String> {
    run_bounded(program, args, input, COMMAND_TIMEOUT)
}

fn run_bounded(
    program: &str,
    args: &[&str],
    input: Option<&str>,
    timeout: Duration,
) -> anyhow::Result<String> {
    let shown = format!("`{program} {}`", args.join(" "));
    let mut child = Command::new(program)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {shown}"))?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        // A write error shows up as the command's failure below.
        let _ = stdin.write_all(text.as_bytes());
    }
    let stdout = child.stdout.take().map(drain);
    let stderr = child.stderr.take().map(drain);
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{shown} did not finish within {timeout:?} and was killed");
            }
            Err(e) => bail!("cannot wait for {shown}: {e}"),
        }
    };
    let collect = |rx: Option<std::sync::mpsc::Receiver<String>>| {
        rx.and_then(|rx| rx.recv_timeout(Duration::from_secs(1)).ok())
            .unwrap_or_default()
    };
    let (out, err) = (collect(stdout), collect(stderr));
    if !status.success() {
        bail!("{shown} failed ({status}): {}", err.trim());
    }
    Ok(out)
}

/// Reads a pipe to its end on a thread of its own, so that a child that
/// fills one pipe cannot block, and a grandchild that keeps a pipe open
/// cannot hang the caller (the reader is simply abandoned).
fn drain(mut pipe: impl Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        let _ = tx.send(String::from_utf8_lossy(&bytes).into_owned());
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_read_from_our_names_only() {
        assert_eq!(namespace_owner("kvh-1234-0-hub"), Some(1234));
        assert_eq!(namespace_owner("kvh-1234-17-n3"), Some(1234));
        assert_eq!(namespace_owner("kvh-1234-0-probe"), Some(1234));
        assert_eq!(namespace_owner("kvh-1234"), None);
        assert_eq!(namespace_owner("kvh-x-0-hub"), None);
        assert_eq!(namespace_owner("other-1234-0-hub"), None);
        assert_eq!(link_owner("kvh1234r0"), Some(1234));
        assert_eq!(link_owner("kvh4194304r12"), Some(4_194_304));
        assert_eq!(link_owner("kvh1234"), None);
        assert_eq!(link_owner("kvhbr0"), None);
        assert_eq!(link_owner("eth0"), None);
    }

    #[test]
    fn longest_root_veth_name_fits_an_interface_name() {
        // pid_max is at most 2^22; a run makes far fewer than 10^4 networks.
        assert!(format!("{PREFIX}{}r{}", 4_194_304, 9_999).len() <= 15);
    }

    #[test]
    fn listening_ports_are_the_nodes_and_wildcards() {
        let node = Ipv4Addr::new(10, 213, 5, 10);
        let out = "LISTEN 0 128 10.213.5.10:7000 0.0.0.0:*\n\
                   LISTEN 0 128 127.0.0.1:9000 0.0.0.0:*\n\
                   LISTEN 0 128 0.0.0.0:8000 0.0.0.0:*\n\
                   LISTEN 0 128 10.213.5.11:7001 0.0.0.0:*\n\
                   LISTEN 0 128 *:8000 *:*\n";
        assert_eq!(parse_listening(out, node), vec![7000, 8000]);
    }

    #[test]
    fn node_count_is_bounded_before_anything_is_made() {
        assert!(Netns::create(0).is_err());
        let err = Netns::create(NODES_MAX + 1).unwrap_err();
        assert!(err.to_string().contains("1 to 200"), "{err}");
    }

    #[test]
    fn commands_are_bounded_and_errors_name_them() {
        let err = run("sh", &["-c", "echo oops >&2; exit 3"]).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("`sh -c echo oops >&2; exit 3`"), "{text}");
        assert!(text.contains("oops"), "{text}");
        assert_eq!(
            run_with_input("cat", &[], Some("fed")).unwrap(),
            "fed".to_owned()
        );
        let start = Instant::now();
        let err = run_bounded("sleep", &["30"], None, Duration::from_millis(200)).unwrap_err();
        assert!(err.to_string().contains("did not finish"), "{err}");
        assert!(start.elapsed() < Duration::from_secs(30), "not killed");
    }
}
