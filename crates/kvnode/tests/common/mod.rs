//! A harness that runs real `kvnode` processes on loopback, each with its own
//! temporary data directory and an ephemeral port.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kv_client::{Client, ClientConfig};

/// Bound on how long a node may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// One node process and what is needed to restart it.
pub struct Node {
    child: Option<Child>,
    pub addr: String,
    pub dir: PathBuf,
    args: Vec<String>,
    /// Set when the node owns its temporary directory.
    tmp: Option<tempfile::TempDir>,
}

impl Node {
    /// Starts a node with `args` (beyond data dir and listen address).
    pub fn start(dir: PathBuf, args: &[String]) -> Node {
        std::fs::create_dir_all(&dir).unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let mut node = Node {
            child: None,
            addr,
            dir,
            args: args.to_vec(),
            tmp: None,
        };
        node.spawn();
        node
    }

    /// Starts a node in a temporary directory that lives as long as it;
    /// `args` may name files made by `prepare`, which gets the directory.
    pub fn start_temp(prepare: impl FnOnce(&std::path::Path) -> Vec<String>) -> Node {
        let tmp = tempfile::tempdir().unwrap();
        let args = prepare(tmp.path());
        let mut node = Node::start(tmp.path().to_path_buf(), &args);
        node.tmp = Some(tmp);
        node
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("node.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_kvnode"))
            .arg("serve")
            .args(["--data-dir", &self.dir.join("data").display().to_string()])
            .args(["--listen", &self.addr])
            .args(&self.args)
            .env("RUST_LOG", "info,kvnode=debug")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("kvnode starts");
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        while std::net::TcpStream::connect(&self.addr).is_err() {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "node at {} exited with {status}; log:\n{}",
                    self.addr,
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "node at {} did not listen",
                self.addr
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process with SIGKILL: no chance to flush anything.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("node is running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "node at {} ignored SIGTERM; log:\n{}",
                    self.addr,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the node again on the same address and data directory.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "node is still running");
        self.spawn();
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The node's log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }

    /// A client that talks to this node only.
    pub async fn client(&self) -> Client {
        Client::connect(ClientConfig::new([self.addr.clone()]))
            .await
            .unwrap_or_else(|e| {
                panic!("cannot connect to {}: {e}\nlog:\n{}", self.addr, self.log())
            })
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- last lines of the log of node {} ---", self.addr);
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// Several nodes joined through the first.
pub struct Cluster {
    pub nodes: Vec<Node>,
    _base: tempfile::TempDir,
}

impl Cluster {
    /// Starts `count` nodes; every node gets `args`, and all but the first
    /// seed from the first. Waits until every node sees every other alive.
    pub async fn start(count: usize, args: &[&str]) -> Cluster {
        let base = tempfile::tempdir().unwrap();
        let mut nodes: Vec<Node> = Vec::new();
        for i in 0..count {
            let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            if let Some(first) = nodes.first() {
                a.extend(["--seeds".to_owned(), first.addr.clone()]);
            }
            nodes.push(Node::start(base.path().join(format!("node-{i}")), &a));
        }
        let cluster = Cluster { nodes, _base: base };
        cluster.wait_alive(count).await;
        cluster
    }

    /// Waits until every running node sees `alive` members alive.
    pub async fn wait_alive(&self, alive: usize) {
        for observer in (0..self.nodes.len()).filter(|&i| self.nodes[i].is_running()) {
            self.wait_alive_seen_by(observer, alive).await;
        }
    }

    /// Waits until node `observer` sees exactly `alive` members alive.
    pub async fn wait_alive_seen_by(&self, observer: usize, alive: usize) {
        let node = &self.nodes[observer];
        let client = node.client().await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = client.status().await.unwrap();
            let seen = status.members.iter().filter(|m| m.state == "alive").count();
            if seen == alive {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} sees {seen} alive, wanted {alive}: {status:?}\nlog:\n{}",
                node.addr,
                node.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Reads `{prefix}{i}` for every `i < keys` through `client` with R=1 and
/// checks that each key the node is home to holds `v{i}`; keys it is not
/// home to answer Unavailable. Retries timeouts (the node may still be
/// learning that its peers are down) for up to 30 s. Returns how many keys
/// the node is home to.
pub async fn check_home_keys_alone(client: &Client, prefix: &str, keys: usize) -> usize {
    use kv_client::{ClientError, Consistency, ErrorCode};
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut home_to = 0;
    for i in 0..keys {
        loop {
            match client
                .get_with(format!("{prefix}{i}"), Some(Consistency::One))
                .await
            {
                Ok(read) => {
                    assert_eq!(
                        read.siblings,
                        vec![bytes::Bytes::from(format!("v{i}"))],
                        "{prefix}{i}: the node is home to it but does not hold it"
                    );
                    home_to += 1;
                    break;
                }
                Err(ClientError::Server {
                    code: ErrorCode::Unavailable,
                    ..
                }) => break,
                Err(ClientError::Server {
                    code: ErrorCode::Timeout,
                    ..
                }) => assert!(Instant::now() < deadline, "reads kept timing out"),
                Err(e) => panic!("{prefix}{i}: {e}"),
            }
        }
    }
    assert!(home_to > 0, "the node is home to none of {keys} keys");
    home_to
}

/// Command-line flags written as one line: `flags("--n 3 --r 2")`.
pub fn flags(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// Waits, up to 10 s, until every home replica of `key` answers the same
/// digest through `client` (read repair is asynchronous).
pub async fn wait_replicas_agree(client: &Client, key: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let d = client.replica_digests(key.to_owned()).await.unwrap();
        if d.iter()
            .all(|r| r.digest.is_some() && r.digest == d[0].digest)
        {
            return;
        }
        assert!(Instant::now() < deadline, "replicas still differ: {d:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether the slow multi-node tests should run: `KV_CLUSTER_TESTS=1`, as
/// `cargo xtask test-cluster` sets. Says so when they are skipped.
pub fn cluster_tests_enabled() -> bool {
    let on = std::env::var_os("KV_CLUSTER_TESTS").is_some_and(|v| v == "1");
    if !on {
        eprintln!("skipped: set KV_CLUSTER_TESTS=1 (cargo xtask test-cluster) to run");
    }
    on
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
