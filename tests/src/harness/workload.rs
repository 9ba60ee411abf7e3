//! The workload: concurrent clients over a bounded key set, mixing
//! read-modify-write registers, blind writes, deletes followed by
//! re-creation, and add-only sets built from siblings; every operation goes
//! into the history.
//!
//! Each client draws its choices from its own generator, seeded from the
//! scenario's seed and the client's index, so the choices replay (the
//! interleaving, which the cluster decides, does not).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kv_client::{Client, ClientConfig, ClientError, Consistency, Context, ErrorCode, ReadResult};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::history::{Op, OpKind, Outcome, Value};

/// Bound on operations per client, whatever the duration (the history is
/// held in memory: about 2M entries for six clients).
pub const OPS_PER_CLIENT_MAX: u64 = 200_000;
/// Bound on the elements one set value carries; older ones are dropped
/// (the checker follows ancestry, not elements).
pub const ELEMENTS_MAX: usize = 256;
/// How long a client waits for one answer.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// What the workload runs.
#[derive(Debug, Clone)]
pub struct WorkloadConfig {
    /// Concurrent clients.
    pub clients: usize,
    /// Keys, `k0` .. `k{keys-1}`.
    pub keys: usize,
    /// The node addresses; client `c` tries them starting at
    /// `first_node(c)`.
    pub addrs: Vec<String>,
    /// When set, every client starts at this node (to kill the node that
    /// coordinates the writes in flight).
    pub pin_first: Option<usize>,
    /// Client `c` talks to node `c % nodes` only, never failing over, so
    /// that the history says which node coordinated each operation.
    pub pinned: bool,
    /// How long the load is meant to last. Each client paces itself so
    /// that its [`OPS_PER_CLIENT_MAX`] operations stretch over it: a long
    /// run (a soak) loads the cluster to its end instead of using its bound
    /// up in the first minutes and leaving the later faults without load.
    pub expected: Duration,
    /// The seed.
    pub seed: u64,
}

/// The history as it is being recorded, shared by every client.
#[derive(Debug, Clone)]
pub struct Recorder {
    start: Instant,
    ops: Arc<Mutex<Vec<Op>>>,
}

impl Recorder {
    /// A recorder whose timestamps count from `start`.
    pub fn new(start: Instant) -> Self {
        Self {
            start,
            ops: Arc::default(),
        }
    }

    /// Milliseconds since the start.
    pub fn now_ms(&self) -> f64 {
        self.start.elapsed().as_secs_f64() * 1000.0
    }

    /// Adds one operation.
    pub fn push(&self, op: Op) {
        if let Ok(mut ops) = self.ops.lock() {
            ops.push(op);
        }
    }

    /// Everything recorded so far.
    pub fn take(&self) -> Vec<Op> {
        self.ops.lock().map(|o| o.clone()).unwrap_or_default()
    }
}

/// How an error bears on a write: definitely not applied, or maybe.
pub fn classify(e: &ClientError) -> Outcome {
    match e {
        ClientError::Server {
            code: ErrorCode::Unavailable | ErrorCode::InvalidRequest | ErrorCode::TooManySiblings,
            ..
        } => Outcome::Fail,
        ClientError::Server { .. } => Outcome::Info,
        ClientError::NoNodeReachable { .. }
        | ClientError::Refused { .. }
        | ClientError::RequestTooLarge { .. }
        | ClientError::NoNodes => Outcome::Fail,
        ClientError::ConnectionLost { maybe_applied, .. } => {
            if *maybe_applied {
                Outcome::Info
            } else {
                Outcome::Fail
            }
        }
        _ => Outcome::Info,
    }
}

/// A client config for `addrs`, starting at `first`.
pub fn client_config(addrs: &[String], first: usize) -> ClientConfig {
    let mut nodes = addrs.to_vec();
    if !nodes.is_empty() {
        nodes.rotate_left(first % addrs.len());
    }
    let mut config = ClientConfig::new(nodes);
    config.request_timeout = CLIENT_TIMEOUT;
    config.connect_timeout = Duration::from_secs(1);
    config
}

/// Connects, retrying (bounded by `until`) while no node answers.
pub async fn connect(config: ClientConfig, until: Instant) -> Option<Client> {
    loop {
        match Client::connect(config.clone()).await {
            Ok(c) => return Some(c),
            Err(_) if Instant::now() < until => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(_) => return None,
        }
    }
}

/// Runs every client until `stop` is set, or at the latest `stop_at`;
/// returns when all have stopped.
pub async fn run(
    config: WorkloadConfig,
    recorder: Recorder,
    stop: Arc<AtomicBool>,
    stop_at: Instant,
) {
    let mut tasks = Vec::new();
    for c in 0..config.clients {
        let config = config.clone();
        let recorder = recorder.clone();
        let stop = Arc::clone(&stop);
        tasks.push(tokio::spawn(async move {
            client_loop(config, c, recorder, &stop, stop_at).await;
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

async fn client_loop(
    config: WorkloadConfig,
    c: usize,
    rec: Recorder,
    stop: &AtomicBool,
    stop_at: Instant,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ ((c as u64 + 1) << 48));
    let first = config.pin_first.unwrap_or(c);
    let addrs = if config.pinned && !config.addrs.is_empty() {
        vec![config.addrs[c % config.addrs.len()].clone()]
    } else {
        config.addrs.clone()
    };
    let Some(client) = connect(client_config(&addrs, first), stop_at).await else {
        return;
    };
    let client_id = u32::try_from(c).unwrap_or(u32::MAX - 1);
    let started = Instant::now();
    let pace = config.expected.as_secs_f64() / OPS_PER_CLIENT_MAX as f64;
    let mut seq: u64 = 0;
    while Instant::now() < stop_at && !stop.load(Ordering::Relaxed) && seq < OPS_PER_CLIENT_MAX {
        // Ahead of the pace: wait until this operation is due.
        let due = started + Duration::from_secs_f64(pace * seq as f64);
        if let Some(early) = due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(early).await;
        }
        seq += 1;
        let id = ((c as u64 + 1) << 32) | seq;
        let key = format!("k{}", rng.random_range(0..config.keys.max(1)));
        let roll = rng.random_range(0..100u32);
        let kind = match roll {
            0..40 => OpKind::Rmw,
            40..55 => OpKind::Blind,
            55..75 => OpKind::SetAdd,
            75..85 => OpKind::Delete,
            _ => OpKind::Read,
        };
        let ok = match kind {
            OpKind::Read => read(&client, client_id, &key, &rec, None).await.is_some(),
            OpKind::Blind => {
                let v = Value {
                    id,
                    parents: Vec::new(),
                    elements: Vec::new(),
                };
                write(&client, client_id, &key, kind, v, None, &rec).await
            }
            _ => match read(&client, client_id, &key, &rec, None).await {
                None => false,
                Some((read, parents)) => {
                    let mut elements: Vec<u64> = parents
                        .iter()
                        .flat_map(|p| p.elements.iter().copied())
                        .collect();
                    if kind == OpKind::SetAdd {
                        elements.push(id);
                    }
                    elements.sort_unstable();
                    elements.dedup();
                    if elements.len() > ELEMENTS_MAX {
                        elements.drain(..elements.len() - ELEMENTS_MAX);
                    }
                    let v = Value {
                        id,
                        parents: parents.iter().map(|p| p.id).collect(),
                        elements,
                    };
                    write(&client, client_id, &key, kind, v, Some(&read.context), &rec).await
                }
            },
        };
        if !ok {
            // Back off a little so a node that is down is not spun on.
            tokio::time::sleep(Duration::from_millis(rng.random_range(10..50))).await;
        }
    }
    if seq >= OPS_PER_CLIENT_MAX && !stop.load(Ordering::Relaxed) {
        println!(
            "  workload: client {c} reached its bound of {OPS_PER_CLIENT_MAX} operations after {:.1}s; its load stopped early",
            started.elapsed().as_secs_f64()
        );
    }
}

/// Reads `key` and records it; returns the read and its decoded values.
pub async fn read(
    client: &Client,
    client_id: u32,
    key: &str,
    rec: &Recorder,
    consistency: Option<Consistency>,
) -> Option<(ReadResult, Vec<Value>)> {
    let invoke_ms = rec.now_ms();
    let result = client.get_with(key.to_owned(), consistency).await;
    let complete_ms = rec.now_ms();
    let kind = if client_id == u32::MAX {
        OpKind::FinalRead
    } else {
        OpKind::Read
    };
    let mut op = Op {
        client: client_id,
        kind,
        key: key.to_owned(),
        id: None,
        parents: Vec::new(),
        values: Vec::new(),
        foreign_values: 0,
        invoke_ms,
        complete_ms,
        outcome: Outcome::Ok,
        error: None,
    };
    match result {
        Ok(read) => {
            let mut decoded = Vec::new();
            for bytes in &read.siblings {
                match Value::decode(bytes) {
                    Some(v) => decoded.push(v),
                    None => op.foreign_values += 1,
                }
            }
            op.values = decoded.iter().map(|v| v.id).collect();
            rec.push(op);
            Some((read, decoded))
        }
        Err(e) => {
            // A failed read changes nothing; fail or info alike.
            op.outcome = classify(&e);
            op.error = Some(e.to_string());
            rec.push(op);
            None
        }
    }
}

async fn write(
    client: &Client,
    client_id: u32,
    key: &str,
    kind: OpKind,
    value: Value,
    context: Option<&Context>,
    rec: &Recorder,
) -> bool {
    let invoke_ms = rec.now_ms();
    let result = if kind == OpKind::Delete {
        client.delete(key.to_owned(), context).await
    } else {
        client.put(key.to_owned(), value.encode(), context).await
    };
    let complete_ms = rec.now_ms();
    let (outcome, error) = match &result {
        Ok(_) => (Outcome::Ok, None),
        Err(e) => (classify(e), Some(e.to_string())),
    };
    rec.push(Op {
        client: client_id,
        kind,
        key: key.to_owned(),
        id: Some(value.id),
        parents: value.parents,
        values: Vec::new(),
        foreign_values: 0,
        invoke_ms,
        complete_ms,
        outcome,
        error,
    });
    outcome == Outcome::Ok
}
