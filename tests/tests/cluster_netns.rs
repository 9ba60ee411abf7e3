//! The network-fault layer against real traffic: probes and real `kvnode`
//! processes in per-node namespaces, through partitions, one-way cuts, loss
//! and healing, and a `Drop` that leaves nothing behind.
//!
//! These need root, iproute2 and iptables and make namespaces, so they run
//! only when `KV_CLUSTER_TESTS=1` (as `cargo xtask test-cluster` sets), and
//! say why when they skip.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead as _, BufReader};
use std::net::{SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kv_tests::net::Netns;

const PROBE: &str = env!("CARGO_BIN_EXE_kvh-probe");
const PORT: u16 = 7000;
/// How long a node may take to listen, or a cluster to agree on who is up.
const SETTLE: Duration = Duration::from_secs(30);
/// Datagrams sent per one-way check.
const DATAGRAMS: u64 = 20;

/// Whether to run: `KV_CLUSTER_TESTS=1` and a machine that can make
/// namespaces. Says why when not.
fn enabled() -> bool {
    if std::env::var_os("KV_CLUSTER_TESTS").is_none_or(|v| v != "1") {
        eprintln!("skipped: set KV_CLUSTER_TESTS=1 (cargo xtask test-cluster) to run");
        return false;
    }
    match Netns::available() {
        Ok(()) => true,
        Err(reason) => {
            eprintln!("skipped: network namespaces unavailable: {reason}");
            false
        }
    }
}

fn addr(net: &Netns, i: usize) -> SocketAddrV4 {
    SocketAddrV4::new(net.node_ip(i), PORT)
}

/// Kills a child on drop, so a failing assertion leaves no process behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_listening(target: SocketAddrV4) {
    let deadline = Instant::now() + SETTLE;
    while TcpStream::connect_timeout(&target.into(), Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "{target} never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether node `from` completes a TCP exchange with node `to`'s probe.
fn tcp_ok(net: &Netns, from: usize, to: usize) -> bool {
    net.command(from, Path::new(PROBE))
        .args(["tcp-check", &addr(net, to).to_string(), "700"])
        .stdout(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// Milliseconds from node `from` connecting to node `to`'s probe to its
/// answer, `None` if it does not answer.
fn tcp_ms(net: &Netns, from: usize, to: usize) -> Option<u64> {
    let out = net
        .command(from, Path::new(PROBE))
        .args(["tcp-time", &addr(net, to).to_string(), "5000"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// How many of [`DATAGRAMS`] UDP datagrams from `from` reach `to`.
fn udp_delivered(net: &Netns, from: usize, to: usize) -> u64 {
    let target = SocketAddrV4::new(net.node_ip(to), PORT + 1);
    let mut counter = net
        .command(to, Path::new(PROBE))
        .args(["udp-count", &target.to_string(), "1500"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(counter.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    let sent = net
        .command(from, Path::new(PROBE))
        .args(["udp-send", &target.to_string(), &DATAGRAMS.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let count = lines.next().unwrap().unwrap().parse().unwrap();
    assert!(counter.wait().unwrap().success());
    count
}

/// Asserts which ordered pairs of nodes complete TCP exchanges, and that
/// the harness reaches every node regardless.
fn assert_reach(net: &Netns, expect: impl Fn(usize, usize) -> bool, when: &str) {
    for i in 0..net.nodes() {
        assert!(
            TcpStream::connect_timeout(&addr(net, i).into(), Duration::from_secs(2)).is_ok(),
            "{when}: the harness cannot reach node {i}"
        );
        for j in (0..net.nodes()).filter(|&j| j != i) {
            let want = expect(i, j);
            assert_eq!(
                tcp_ok(net, i, j),
                want,
                "{when}: node {i} -> node {j} should {}pass; rules of {i}:\n{}",
                if want { "" } else { "not " },
                net.rules(i).unwrap_or_default()
            );
        }
    }
}

/// Asserts that cleanup removed every namespace and the root veth.
fn assert_gone(namespaces: &[String], root_interface: &str) {
    let list = run_text("ip", &["netns", "list"]);
    for ns in namespaces {
        assert!(
            !list
                .lines()
                .any(|l| l.split_whitespace().next() == Some(ns)),
            "namespace {ns} survived Drop:\n{list}"
        );
    }
    let links = run_text("ip", &["-o", "link", "show"]);
    assert!(
        !links.contains(root_interface),
        "{root_interface} survived Drop:\n{links}"
    );
}

fn run_text(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(out.status.success(), "{program} {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn probes_obey_partitions_cuts_loss_and_heal() {
    if !enabled() {
        return;
    }
    let net = Netns::create(3).unwrap();
    eprintln!("{}", net.describe());
    let namespaces: Vec<String> = net.namespaces().iter().map(|s| s.to_string()).collect();
    let root_interface = net.root_interface().to_owned();

    // The command's child is the program itself, inside the namespace, so
    // signals sent to it hit the program.
    let mut servers = Vec::new();
    for i in 0..3 {
        let child = net
            .command(i, Path::new(PROBE))
            .args(["tcp-serve", &addr(&net, i).to_string()])
            .spawn()
            .unwrap();
        wait_listening(addr(&net, i));
        let pid = child.id().to_string();
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
        assert!(exe.ends_with("kvh-probe"), "pid {pid} is {exe:?}");
        let identified = run_text("ip", &["netns", "identify", &pid]);
        assert_eq!(identified.trim(), net.namespace(i));
        servers.push(Running(child));
    }

    assert_reach(&net, |_, _| true, "at start");

    net.partition(&[vec![0, 1], vec![2]]).unwrap();
    assert_reach(&net, |i, j| i != 2 && j != 2, "{0,1} | {2}");

    // A new partition replaces the old one.
    net.partition(&[vec![0], vec![1, 2]]).unwrap();
    assert_reach(&net, |i, j| i != 0 && j != 0, "{0} | {1,2}");

    net.heal().unwrap();
    assert_reach(&net, |_, _| true, "healed after partitions");

    // One way: datagrams 0 -> 1 are lost, 1 -> 0 arrive. TCP needs both
    // ways, so it fails between the two in either direction.
    net.cut_one_way(0, 1).unwrap();
    assert_eq!(udp_delivered(&net, 0, 1), 0, "cut 0 -> 1 let datagrams by");
    assert_eq!(
        udp_delivered(&net, 1, 0),
        DATAGRAMS,
        "cut 0 -> 1 hit 1 -> 0"
    );
    assert_eq!(
        udp_delivered(&net, 0, 2),
        DATAGRAMS,
        "cut 0 -> 1 hit 0 -> 2"
    );
    assert_reach(
        &net,
        |i, j| !matches!((i, j), (0, 1) | (1, 0)),
        "cut 0 -> 1",
    );
    net.heal().unwrap();
    assert_eq!(udp_delivered(&net, 0, 1), DATAGRAMS, "heal left the cut");
    assert_reach(&net, |_, _| true, "healed after a cut");

    // Loss 1.0 on node 1: nothing to or from it passes, except the
    // harness's traffic; 0.0 restores everything.
    net.set_loss(1, 1.0).unwrap();
    assert_eq!(udp_delivered(&net, 0, 1), 0, "loss 1.0 let datagrams in");
    assert_eq!(udp_delivered(&net, 1, 2), 0, "loss 1.0 let datagrams out");
    assert_reach(&net, |i, j| i != 1 && j != 1, "loss 1.0 on node 1");
    net.set_loss(1, 0.0).unwrap();
    assert_eq!(udp_delivered(&net, 0, 1), DATAGRAMS, "loss 0.0 dropped");
    assert_eq!(udp_delivered(&net, 1, 2), DATAGRAMS, "loss 0.0 dropped");
    assert_reach(&net, |_, _| true, "loss 0.0 on node 1");

    // Loss in between drops some but, over many datagrams, not all.
    net.set_loss(2, 0.5).unwrap();
    let some = udp_delivered(&net, 0, 2);
    assert!(0 < some && some < DATAGRAMS, "loss 0.5 delivered {some}");
    net.heal().unwrap();
    assert_eq!(udp_delivered(&net, 0, 2), DATAGRAMS, "heal left the loss");

    // Drop also kills what still runs inside: leave one server running.
    let mut straggler = servers.pop().unwrap();
    drop(servers);
    drop(net);
    assert_gone(&namespaces, &root_interface);
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = straggler.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "a process left running in a namespace survived Drop"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(status.signal(), Some(9), "{status}");
}

/// The `kvnode` binary: `KVNODE_BIN`, or the one built next to this test.
fn kvnode_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("KVNODE_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<this test> -> target/<profile>/kvnode
    let path = exe.parent().and_then(Path::parent).unwrap().join("kvnode");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build -p kvnode` first, or set KVNODE_BIN",
        path.display()
    );
    path
}

/// Established connections into node `i`'s port straight from another
/// node (not through a delay proxy, not the harness's).
fn direct_peer_connections(net: &Netns, i: usize) -> usize {
    let filter = format!("sport = :{PORT}");
    let out = run_text(
        "ip",
        &[
            "netns",
            "exec",
            net.namespace(i),
            "ss",
            "-Htn",
            "state",
            "established",
            &filter,
        ],
    );
    let own = [net.node_ip(i).to_string(), net.harness_ip().to_string()];
    out.lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .filter(|peer| !own.iter().any(|ip| peer.starts_with(&format!("{ip}:"))))
        .count()
}

/// How many members `node` reports alive, asked from the harness.
fn alive_seen_by(kvnode: &Path, net: &Netns, node: usize) -> Option<usize> {
    let out = Command::new(kvnode)
        .args(["status", "--timeout-s", "2", "--nodes"])
        .arg(addr(net, node).to_string())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Some(
        text.lines()
            .filter(|l| {
                let fields: Vec<&str> = l.split_whitespace().collect();
                fields.len() >= 6 && fields[4] == "alive"
            })
            .count(),
    )
}

fn wait_alive(kvnode: &Path, net: &Netns, node: usize, alive: usize, when: &str) {
    let deadline = Instant::now() + SETTLE;
    loop {
        let seen = alive_seen_by(kvnode, net, node);
        if seen == Some(alive) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{when}: node {node} sees {seen:?} alive, wanted {alive}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Starts one `kvnode` in each of `net`'s namespaces, all but the first
/// seeded from the first, each with `args` (which must name the cluster's
/// N: the seed must run with the N of the nodes that join it); returns once
/// each listens.
fn start_kvnodes(kvnode: &Path, net: &Netns, dir: &Path, args: &[&str]) -> Vec<Running> {
    let mut nodes = Vec::new();
    for i in 0..net.nodes() {
        let log = std::fs::File::create(dir.join(format!("node-{i}.log"))).unwrap();
        let mut cmd = net.command(i, kvnode);
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(dir.join(format!("node-{i}")))
            .args(["--listen", &addr(net, i).to_string()])
            .args(["--gossip-interval-ms", "100"])
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log);
        if i > 0 {
            cmd.args(["--seeds", &addr(net, 0).to_string()]);
        }
        let child = cmd.spawn().unwrap();
        let pid = child.id();
        nodes.push(Running(child));
        // Once it listens, the child has exec'd: it must be kvnode itself,
        // not an `ip` that forked it.
        wait_listening(addr(net, i));
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
        assert_eq!(
            exe,
            kvnode.canonicalize().unwrap(),
            "pid {pid} is not the node"
        );
    }
    nodes
}

#[test]
fn kvnodes_in_namespaces_see_partitions_and_heal() {
    if !enabled() {
        return;
    }
    let kvnode = kvnode_binary();
    let net = Netns::create(3).unwrap();
    eprintln!("{}", net.describe());
    let namespaces: Vec<String> = net.namespaces().iter().map(|s| s.to_string()).collect();
    let root_interface = net.root_interface().to_owned();
    let dir = tempfile::tempdir().unwrap();

    let nodes = start_kvnodes(
        &kvnode,
        &net,
        dir.path(),
        &["--n", "3", "--r", "2", "--w", "2"],
    );
    for i in 0..3 {
        wait_alive(&kvnode, &net, i, 3, "at start");
    }

    // Node 2 alone: the others mark it down, it marks them down, and the
    // harness still asks all three.
    net.partition(&[vec![0, 1], vec![2]]).unwrap();
    wait_alive(&kvnode, &net, 0, 2, "{0,1} | {2}");
    wait_alive(&kvnode, &net, 1, 2, "{0,1} | {2}");
    wait_alive(&kvnode, &net, 2, 1, "{0,1} | {2}");

    net.heal().unwrap();
    for i in 0..3 {
        wait_alive(&kvnode, &net, i, 3, "healed");
    }

    // A delay on node 0 resets the peers' open connections to it, so that
    // they come back through the proxy, and gossip goes on through it.
    let before = direct_peer_connections(&net, 0);
    net.set_delay(0, Duration::from_millis(50)).unwrap();
    let after = direct_peer_connections(&net, 0);
    eprintln!("direct peer connections into node 0: {before} before the delay, {after} after");
    assert!(
        before > 0,
        "kvnode keeps no peer connections: nothing to check"
    );
    assert_eq!(after, 0, "open connections bypass the delay");
    for i in 0..3 {
        wait_alive(&kvnode, &net, i, 3, "node 0 delayed");
    }
    // ... and the delayed connections are really the proxy's.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(direct_peer_connections(&net, 0), 0);

    drop(nodes);
    drop(net);
    assert_gone(&namespaces, &root_interface);
}

/// Every node's pending hints, summed; `None` if one does not answer.
async fn hints_pending(net: &Netns) -> Option<u64> {
    let mut pending = 0;
    for i in 0..net.nodes() {
        let config = kv_client::ClientConfig::new(vec![addr(net, i).to_string()]);
        let client = kv_client::Client::connect(config).await.ok()?;
        pending += client.status().await.ok()?.hints_pending;
    }
    Some(pending)
}

#[test]
fn sloppy_writes_on_both_sides_of_a_partition_all_succeed_and_survive_the_heal() {
    if !enabled() {
        return;
    }
    let kvnode = kvnode_binary();
    let net = Netns::create(5).unwrap();
    eprintln!("{}", net.describe());
    let dir = tempfile::tempdir().unwrap();
    let sloppy = ["--n", "3", "--r", "2", "--w", "2", "--mode", "sloppy"];
    let nodes = start_kvnodes(&kvnode, &net, dir.path(), &sloppy);
    for i in 0..5 {
        wait_alive(&kvnode, &net, i, 5, "at start");
    }
    // Halves of two and three: each holds W=2 nodes, and each key's home
    // replicas sit on one side or straddle both.
    let (left, right) = (vec![0, 1], vec![2, 3, 4]);
    net.partition(&[left.clone(), right.clone()]).unwrap();
    for &i in &left {
        wait_alive(&kvnode, &net, i, 2, "{0,1} | {2,3,4}");
    }
    for &i in &right {
        wait_alive(&kvnode, &net, i, 3, "{0,1} | {2,3,4}");
    }
    const KEYS: usize = 30;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // The same keys written on both sides, blind: every write must
        // succeed, on each side of the cut.
        for (side, coordinator) in [("left", 0), ("right", 2)] {
            let config = kv_client::ClientConfig::new(vec![addr(&net, coordinator).to_string()]);
            let client = kv_client::Client::connect(config).await.unwrap();
            for k in 0..KEYS {
                client
                    .put(format!("k{k}"), format!("{side}{k}"), None)
                    .await
                    .unwrap_or_else(|e| panic!("k{k} written on the {side}: {e}"));
            }
        }
    });
    net.heal().unwrap();
    for i in 0..5 {
        wait_alive(&kvnode, &net, i, 5, "healed");
    }
    runtime.block_on(async {
        // Every stand-in hands its hints off.
        let deadline = Instant::now() + SETTLE;
        let mut pending = hints_pending(&net).await;
        while pending != Some(0) {
            assert!(
                Instant::now() < deadline,
                "hints still pending after {SETTLE:?}: {pending:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
            pending = hints_pending(&net).await;
        }
        // Both sides' writes survive, as siblings.
        let config = kv_client::ClientConfig::new(vec![addr(&net, 4).to_string()]);
        let client = kv_client::Client::connect(config).await.unwrap();
        for k in 0..KEYS {
            let got = client
                .get_with(format!("k{k}"), Some(kv_client::Consistency::All))
                .await
                .unwrap();
            let mut values: Vec<String> = got
                .siblings
                .iter()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect();
            values.sort();
            assert_eq!(values, [format!("left{k}"), format!("right{k}")], "k{k}");
        }
    });
    drop(nodes);
}

/// Starts `kvh-probe hold-netns` in a process group of its own (as a
/// harness run from a terminal is) and returns it with the names it made.
fn hold_netns() -> (Child, Vec<String>, String) {
    use std::os::unix::process::CommandExt as _;
    let mut holder = Command::new(PROBE)
        .args(["hold-netns", "-", "2"])
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let mut names: Vec<String> = Vec::new();
    for line in BufReader::new(holder.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if line == "ready" {
            break;
        }
        names.push(line);
    }
    let root_interface = names.pop().expect("hold-netns printed its names");
    let list = run_text("ip", &["netns", "list"]);
    for ns in &names {
        assert!(list.contains(ns.as_str()), "{ns} missing:\n{list}");
    }
    assert!(run_text("ip", &["-o", "link", "show"]).contains(&root_interface));
    (holder, names, root_interface)
}

/// Waits until cleanup removed `namespaces` and `root_interface`.
fn wait_gone(namespaces: &[String], root_interface: &str, when: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let list = run_text("ip", &["netns", "list"]);
        let links = run_text("ip", &["-o", "link", "show"]);
        if !namespaces.iter().any(|ns| list.contains(ns.as_str()))
            && !links.contains(root_interface)
        {
            return;
        }
        assert!(Instant::now() < deadline, "{when}: leftovers remain");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn ctrl_c_and_sigkill_leave_nothing_behind() {
    if !enabled() {
        return;
    }
    // Ctrl-C: SIGINT to the harness's whole process group. The harness
    // dies without Drop; the reaper, in a group of its own, cleans up.
    let (mut holder, namespaces, root_interface) = hold_netns();
    let group = format!("-{}", holder.id());
    run_text("kill", &["-INT", "--", &group]);
    holder.wait().unwrap();
    wait_gone(&namespaces, &root_interface, "after SIGINT");
    assert_gone(&namespaces, &root_interface);

    // SIGKILL of the harness and of its reaper too: the next run's
    // cleanup_stale removes what the dead owner left.
    let (mut holder, namespaces, root_interface) = hold_netns();
    let holder_pid = holder.id().to_string();
    for reaper in children_of(&holder_pid) {
        run_text("kill", &["-KILL", &reaper]);
    }
    holder.kill().unwrap();
    holder.wait().unwrap();
    let list = run_text("ip", &["netns", "list"]);
    assert!(
        namespaces.iter().all(|ns| list.contains(ns.as_str())),
        "with its reaper dead, nothing should clean up by itself:\n{list}"
    );
    kv_tests::net::cleanup_stale();
    assert_gone(&namespaces, &root_interface);
}

/// Pids whose parent is `pid`.
fn children_of(pid: &str) -> Vec<String> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // Fields after the command name, which is in parentheses.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        if fields.get(1) == Some(&pid) {
            children.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    children
}

#[test]
fn delay_slows_connections_into_one_node() {
    if !enabled() {
        return;
    }
    const DELAY: Duration = Duration::from_millis(800);
    let delay_ms = u64::try_from(DELAY.as_millis()).unwrap();
    let net = Netns::create(3).unwrap();
    let namespaces: Vec<String> = net.namespaces().iter().map(|s| s.to_string()).collect();
    let root_interface = net.root_interface().to_owned();
    let mut servers = Vec::new();
    for i in 0..3 {
        servers.push(Running(
            net.command(i, Path::new(PROBE))
                .args(["tcp-serve", &addr(&net, i).to_string()])
                .spawn()
                .unwrap(),
        ));
        wait_listening(addr(&net, i));
    }
    let undelayed = |from, to| {
        let ms = tcp_ms(&net, from, to).unwrap();
        assert!(ms < delay_ms, "{from} -> {to} took {ms} ms with no delay");
    };
    let delayed = |from, to| {
        let ms = tcp_ms(&net, from, to).unwrap();
        assert!(
            ms >= delay_ms,
            "{from} -> {to} took {ms} ms, delay {delay_ms}"
        );
        ms
    };
    let harness_ms = || {
        let start = Instant::now();
        let stream = TcpStream::connect(addr(&net, 1)).unwrap();
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).unwrap();
        assert_eq!(line, "ok\n");
        start.elapsed()
    };
    undelayed(0, 1);

    net.set_delay(1, DELAY).unwrap();
    eprintln!("delayed 0 -> 1: {} ms", delayed(0, 1));
    delayed(2, 1);
    // Out of node 1, and the harness's own connections, are not delayed.
    undelayed(1, 0);
    assert!(harness_ms() < DELAY, "the harness's connection was delayed");

    // Faults still apply to the delayed leg: the proxy keeps the source.
    net.partition(&[vec![0], vec![1, 2]]).unwrap();
    assert!(!tcp_ok(&net, 0, 1), "partition bypassed through the proxy");
    delayed(2, 1);

    // heal removes the delay with the partition; ZERO removes it alone.
    net.heal().unwrap();
    undelayed(0, 1);
    net.set_delay(1, DELAY).unwrap();
    delayed(0, 1);
    net.set_delay(1, Duration::ZERO).unwrap();
    undelayed(0, 1);
    net.set_delay(1, DELAY).unwrap();

    drop(servers);
    // With nothing listening there is nothing to delay: a clear error.
    let err = net.set_delay(2, DELAY).unwrap_err();
    assert!(
        format!("{err:#}").contains("listens on no TCP port"),
        "{err:#}"
    );
    drop(net);
    assert_gone(&namespaces, &root_interface);
}
