//! A deterministic simulation of a cluster of in-memory replicas: a seeded
//! message queue on virtual time, with injected faults.
//!
//! Every message and timer is an event in one queue ordered by virtual time
//! (then by a sequence number), so a run depends only on its seed. Tests
//! print the seed; `KV_SEED=<n>` replays one.
//!
//! Two kinds of crash: [`Sim::crash`] stops a node's messages and keeps its
//! memory (a process that hangs, or a node cut off and back); a
//! [`Sim::power_cut`] also loses every write its storage had not made
//! durable, and the node comes back as a new replica over what was.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::channel::oneshot;
use futures::future::{BoxFuture, FutureExt};
use kv_quorum::{
    CausalContext, Coordinator, GetReply, HintLimits, HintReplayer, Liveness, PutReply,
    QuorumConfig, QuorumError, Replica, ReplicaRequest, ReplicaResponse, ReplicaTransport,
    RequestOptions, StaticRing, Timer, TransportError,
};
use kv_types::{Key, KeyRange, NodeId, Record, RecordIter, Storage, StorageError};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The kv-wire frame limit every message between nodes must fit. The real
/// transport never sends a request too large to encode and turns an answer
/// too large into an error; both reach the coordinator as `Lost`, and so
/// they do here.
pub const FRAME_LEN_MAX: usize = 16 << 20;

/// Room a peer message's envelope (request id, enum tags) takes in a frame.
const ENVELOPE_BYTES: usize = 64;

/// Whether `message` fits a kv-wire frame once encoded.
pub fn fits_a_frame<T: serde::Serialize>(message: &T) -> bool {
    postcard::to_allocvec(message).is_ok_and(|v| v.len() + ENVELOPE_BYTES <= FRAME_LEN_MAX)
}

fn too_large(node: NodeId, what: &str) -> TransportError {
    TransportError::Lost {
        node,
        detail: format!("{what} too large for a frame"),
    }
}

/// The seeds a test runs: `KV_SEED` alone if set, else `default..default+count`.
pub fn seeds(default: u64, count: u64) -> Vec<u64> {
    match std::env::var("KV_SEED") {
        Ok(s) => vec![s.parse().expect("KV_SEED must be a u64")],
        Err(_) => (default..default + count).collect(),
    }
}

type Reply = oneshot::Sender<Result<ReplicaResponse, TransportError>>;

enum Event {
    Deliver {
        to: NodeId,
        req: ReplicaRequest,
        reply: Reply,
    },
    Reply {
        answer: Result<ReplicaResponse, TransportError>,
        reply: Reply,
    },
    Wake(oneshot::Sender<()>),
}

/// Faults injected at one node.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fault {
    /// Messages to it are refused (it crashed or is cut off).
    pub down: bool,
    /// Extra latency of every message to and from it, in ms.
    pub slow_ms: u64,
    /// Chance that a request to it, or its reply, silently vanishes.
    pub drop: f64,
}

/// When a simulated node's storage makes a write durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimDurability {
    /// Every write is durable when it returns (kv-storage's `Sync`).
    EveryWrite,
    /// Writes are durable only after [`Sim::sync_storage`] (or a
    /// `Storage::sync`): kv-storage's `Periodic` between two syncs.
    OnSync,
}

/// In-memory storage that knows which writes are durable; a power cut
/// keeps only those.
pub struct CrashableStorage {
    durability: SimDurability,
    state: Mutex<Layers>,
}

#[derive(Default)]
struct Layers {
    durable: BTreeMap<Key, Record>,
    /// Newer than `durable`: written, not yet made durable.
    unsynced: BTreeMap<Key, Record>,
}

impl CrashableStorage {
    pub fn new(durability: SimDurability) -> Self {
        Self {
            durability,
            state: Mutex::new(Layers::default()),
        }
    }

    /// Drops every write not yet durable; returns how many keys lost one.
    pub fn power_cut(&self) -> usize {
        std::mem::take(&mut self.state.lock().unwrap().unsynced).len()
    }
}

impl Storage for CrashableStorage {
    fn get(&self, key: &[u8]) -> Result<Option<Record>, StorageError> {
        let s = self.state.lock().unwrap();
        Ok(s.unsynced.get(key).or_else(|| s.durable.get(key)).cloned())
    }

    fn put(&self, key: Key, record: Record) -> Result<(), StorageError> {
        let mut s = self.state.lock().unwrap();
        match self.durability {
            SimDurability::EveryWrite => s.durable.insert(key, record),
            SimDurability::OnSync => s.unsynced.insert(key, record),
        };
        Ok(())
    }

    fn range(&self, range: KeyRange) -> Result<RecordIter<'_>, StorageError> {
        let s = self.state.lock().unwrap();
        let mut all = s.durable.clone();
        all.extend(s.unsynced.iter().map(|(k, r)| (k.clone(), r.clone())));
        all.retain(|k, _| range.contains(k));
        Ok(Box::new(all.into_iter().map(Ok)))
    }

    fn sync(&self) -> Result<(), StorageError> {
        let mut s = self.state.lock().unwrap();
        let unsynced = std::mem::take(&mut s.unsynced);
        s.durable.extend(unsynced);
        Ok(())
    }
}

/// A node's data and hint storage.
#[derive(Clone)]
struct Disks {
    data: Arc<CrashableStorage>,
    hints: Arc<CrashableStorage>,
}

fn replica_over(id: NodeId, disks: &Disks, limits: HintLimits) -> Replica {
    Replica::new(id, disks.data.clone(), disks.hints.clone(), limits).unwrap()
}

struct State {
    now_ms: u64,
    seq: u64,
    queue: BTreeMap<(u64, u64), Event>,
    replicas: BTreeMap<NodeId, Arc<Replica>>,
    faults: BTreeMap<NodeId, Fault>,
    /// Nodes the failure detector reports dead.
    suspected: BTreeSet<NodeId>,
    rng: ChaCha8Rng,
    /// Reply channels of vanished messages, kept so their futures stay
    /// pending until a timeout, as a lost packet would.
    black_hole: Vec<Reply>,
    delivered: u64,
    disks: BTreeMap<NodeId, Disks>,
    durability: SimDurability,
    hint_limits: HintLimits,
    /// Fresh actors handed out after power cuts that lost writes.
    epochs: u64,
    /// Links cut by a partition, each pair in id order: neither side
    /// reaches nor sees the other.
    cuts: BTreeSet<(NodeId, NodeId)>,
}

fn link(a: NodeId, b: NodeId) -> (NodeId, NodeId) {
    (a.min(b), a.max(b))
}

impl State {
    fn schedule(&mut self, delay_ms: u64, event: Event) {
        self.seq += 1;
        self.queue.insert((self.now_ms + delay_ms, self.seq), event);
    }

    fn latency(&mut self, node: NodeId) -> u64 {
        let slow = self.faults.get(&node).map_or(0, |f| f.slow_ms);
        1 + self.rng.random_range(0..3) + slow
    }

    fn drops(&mut self, node: NodeId) -> bool {
        let p = self.faults.get(&node).map_or(0.0, |f| f.drop);
        p > 0.0 && self.rng.random_bool(p)
    }
}

/// The simulated cluster.
#[derive(Clone)]
pub struct Sim {
    state: Arc<Mutex<State>>,
    pub seed: u64,
    pub nodes: Vec<NodeId>,
    pub ring: Arc<StaticRing>,
}

impl Sim {
    /// A cluster of `nodes` replicas (ids 1..=nodes) with default hint limits.
    pub fn new(seed: u64, nodes: u64) -> Self {
        Self::with_hint_limits(seed, nodes, HintLimits::default())
    }

    pub fn with_hint_limits(seed: u64, nodes: u64, limits: HintLimits) -> Self {
        Self::build(seed, nodes, limits, SimDurability::EveryWrite)
    }

    /// A cluster whose storage makes writes durable only as `durability`
    /// says, which matters to [`Sim::power_cut`].
    pub fn with_durability(seed: u64, nodes: u64, durability: SimDurability) -> Self {
        Self::build(seed, nodes, HintLimits::default(), durability)
    }

    fn build(seed: u64, nodes: u64, limits: HintLimits, durability: SimDurability) -> Self {
        println!("simulation seed {seed} (replay with KV_SEED={seed})");
        let ids: Vec<NodeId> = (1..=nodes).map(NodeId).collect();
        let disks: BTreeMap<NodeId, Disks> = ids
            .iter()
            .map(|&id| {
                let disk = || Arc::new(CrashableStorage::new(durability));
                (
                    id,
                    Disks {
                        data: disk(),
                        hints: disk(),
                    },
                )
            })
            .collect();
        let replicas = disks
            .iter()
            .map(|(&id, d)| (id, Arc::new(replica_over(id, d, limits))))
            .collect();
        Self {
            state: Arc::new(Mutex::new(State {
                now_ms: 0,
                seq: 0,
                queue: BTreeMap::new(),
                replicas,
                faults: BTreeMap::new(),
                suspected: BTreeSet::new(),
                rng: ChaCha8Rng::seed_from_u64(seed),
                black_hole: Vec::new(),
                delivered: 0,
                disks,
                durability,
                hint_limits: limits,
                epochs: 0,
                cuts: BTreeSet::new(),
            })),
            seed,
            ring: Arc::new(StaticRing::new(ids.iter().copied())),
            nodes: ids,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    pub fn replica(&self, id: NodeId) -> Arc<Replica> {
        self.lock().replicas[&id].clone()
    }

    /// Requests replicas have handled so far.
    pub fn delivered(&self) -> u64 {
        self.lock().delivered
    }

    pub fn now_ms(&self) -> u64 {
        self.lock().now_ms
    }

    /// Replaces the faults of `node`.
    pub fn set_fault(&self, node: NodeId, fault: Fault) {
        self.lock().faults.insert(node, fault);
    }

    /// The node crashes, and the failure detector notices.
    pub fn crash(&self, node: NodeId) {
        let mut s = self.lock();
        s.faults.entry(node).or_default().down = true;
        s.suspected.insert(node);
    }

    /// The node loses power: it is down (as [`Sim::crash`]), and every write
    /// its storage had not made durable is gone. Its replica is rebuilt from
    /// what was durable, as a restarted process would be, and, when writes
    /// were lost, takes a fresh actor, as a node does after an unclean stop
    /// of a run that did not sync every write. It stays down until
    /// [`Sim::heal`]. Returns how many keys (data and hints) lost a write.
    pub fn power_cut(&self, node: NodeId) -> usize {
        self.crash(node);
        let mut s = self.lock();
        let disks = s.disks[&node].clone();
        let lost = disks.data.power_cut() + disks.hints.power_cut();
        let mut replica = replica_over(node, &disks, s.hint_limits);
        if s.durability != SimDurability::EveryWrite {
            s.epochs += 1;
            replica = replica.with_actor(NodeId((1 << 40) + s.epochs));
        }
        s.replicas.insert(node, Arc::new(replica));
        lost
    }

    /// Makes every write `node`'s storage holds durable (a periodic sync).
    pub fn sync_storage(&self, node: NodeId) {
        let s = self.lock();
        let disks = &s.disks[&node];
        disks.data.sync().unwrap();
        disks.hints.sync().unwrap();
    }

    /// The node is cut off, but the failure detector has not noticed.
    pub fn partition(&self, node: NodeId) {
        self.lock().faults.entry(node).or_default().down = true;
    }

    /// All faults of `node` end and it is reported alive.
    pub fn heal(&self, node: NodeId) {
        let mut s = self.lock();
        s.faults.remove(&node);
        s.suspected.remove(&node);
    }

    /// A random number from the simulation's RNG.
    pub fn random(&self, below: u64) -> u64 {
        self.lock().rng.random_range(0..below)
    }

    /// A coordinator on node `local`, which sees the cluster from there:
    /// through the links a partition left it (see [`Sim::split`]).
    pub fn coordinator(&self, local: NodeId, config: QuorumConfig) -> Coordinator {
        let view = Arc::new(self.view(local));
        Coordinator::new(
            local,
            config,
            self.ring.clone(),
            view.clone(),
            view,
            Arc::new(self.clone()),
        )
        .unwrap()
    }

    /// The cluster as node `from` reaches and sees it.
    pub fn view(&self, from: NodeId) -> View {
        View {
            sim: self.clone(),
            from,
        }
    }

    /// Partitions the cluster in two: `side` and the rest. Each side's
    /// failure detectors report the other side dead at once.
    pub fn split(&self, side: &[NodeId]) {
        let mut s = self.lock();
        for &a in side {
            for &b in self.nodes.iter().filter(|b| !side.contains(b)) {
                s.cuts.insert(link(a, b));
            }
        }
    }

    /// Every partition made by [`Sim::split`] heals.
    pub fn rejoin(&self) {
        self.lock().cuts.clear();
    }

    /// A coordinator on every node, in node order.
    pub fn coordinators(&self, config: &QuorumConfig) -> Vec<Coordinator> {
        self.nodes
            .iter()
            .map(|&id| self.coordinator(id, config.clone()))
            .collect()
    }

    pub fn replayer(&self, node: NodeId) -> HintReplayer {
        HintReplayer::new(
            self.replica(node),
            Arc::new(self.view(node)),
            Arc::new(self.clone()),
            Duration::from_millis(100),
            16,
        )
    }

    /// Processes the earliest event; false if there is none.
    fn step(&self) -> bool {
        let mut s = self.lock();
        let Some(((at, _), event)) = s.queue.pop_first() else {
            return false;
        };
        s.now_ms = at;
        match event {
            Event::Deliver { to, req, reply } => {
                let Some(replica) = s.replicas.get(&to).cloned() else {
                    return true;
                };
                drop(s);
                // Handled outside the lock, as a real replica would be.
                let answer = replica.handle(req);
                let answer = if fits_a_frame(&answer) {
                    Ok(answer)
                } else {
                    Err(too_large(to, "answer"))
                };
                let mut s = self.lock();
                s.delivered += 1;
                if s.drops(to) {
                    s.black_hole.push(reply);
                } else {
                    let d = s.latency(to);
                    s.schedule(d, Event::Reply { answer, reply });
                }
            }
            Event::Reply { answer, reply } => {
                let _ = reply.send(answer);
            }
            Event::Wake(tx) => {
                let _ = tx.send(());
            }
        }
        true
    }

    /// Runs `fut` to completion on virtual time; panics if it can never
    /// finish (no event left while it waits).
    pub fn run<F: Future>(&self, fut: F) -> F::Output {
        let mut fut = pin!(fut);
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
                return out;
            }
            assert!(self.step(), "simulation stalled (seed {})", self.seed);
        }
    }

    /// Processes every queued event: lets background messages (async read
    /// repair, writes beyond W) arrive.
    pub fn settle(&self) {
        while self.step() {}
    }
}

/// The simulated cluster as one node reaches and sees it: calls across a
/// cut link fail as calls to a down node do, and the node's failure
/// detector reports the other side dead.
#[derive(Clone)]
pub struct View {
    sim: Sim,
    from: NodeId,
}

impl ReplicaTransport for View {
    fn call(
        &self,
        to: NodeId,
        req: ReplicaRequest,
    ) -> BoxFuture<'static, Result<ReplicaResponse, TransportError>> {
        self.sim.send(Some(self.from), to, req)
    }
}

impl Liveness for View {
    fn is_alive(&self, node: NodeId) -> bool {
        let s = self.sim.lock();
        !s.suspected.contains(&node) && !s.cuts.contains(&link(self.from, node))
    }
}

impl ReplicaTransport for Sim {
    fn call(
        &self,
        to: NodeId,
        req: ReplicaRequest,
    ) -> BoxFuture<'static, Result<ReplicaResponse, TransportError>> {
        self.send(None, to, req)
    }
}

impl Sim {
    /// Sends `req` to `to`, from `from` if known (a message across a cut
    /// link is lost as one to a down node is).
    fn send(
        &self,
        from: Option<NodeId>,
        to: NodeId,
        req: ReplicaRequest,
    ) -> BoxFuture<'static, Result<ReplicaResponse, TransportError>> {
        let (tx, rx) = oneshot::channel();
        let mut s = self.lock();
        let mut fault = s.faults.get(&to).copied().unwrap_or_default();
        if from.is_some_and(|from| s.cuts.contains(&link(from, to))) {
            fault.down = true;
        }
        let d = s.latency(to);
        if !fits_a_frame(&req) {
            s.schedule(
                d,
                Event::Reply {
                    answer: Err(too_large(to, "request")),
                    reply: tx,
                },
            );
        } else if fault.down {
            s.schedule(
                d,
                Event::Reply {
                    answer: Err(TransportError::Unreachable { node: to }),
                    reply: tx,
                },
            );
        } else if s.drops(to) {
            s.black_hole.push(tx);
        } else {
            s.schedule(d, Event::Deliver { to, req, reply: tx });
        }
        rx.map(move |r| {
            r.unwrap_or_else(|_| {
                Err(TransportError::Lost {
                    node: to,
                    detail: "simulation dropped the reply".into(),
                })
            })
        })
        .boxed()
    }
}

impl Timer for Sim {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        let (tx, rx) = oneshot::channel();
        let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX / 2);
        self.lock().schedule(ms, Event::Wake(tx));
        rx.map(|_| ()).boxed()
    }
}

impl Liveness for Sim {
    fn is_alive(&self, node: NodeId) -> bool {
        !self.lock().suspected.contains(&node)
    }
}

impl Sim {
    /// Runs one put to completion.
    pub fn put(
        &self,
        c: &Coordinator,
        key: &str,
        value: &str,
        context: Option<&CausalContext>,
        opts: RequestOptions,
    ) -> Result<PutReply, QuorumError> {
        self.run(c.put(key.as_bytes(), b(value), context, opts))
    }

    /// Runs one get to completion.
    pub fn get(
        &self,
        c: &Coordinator,
        key: &str,
        opts: RequestOptions,
    ) -> Result<GetReply, QuorumError> {
        self.run(c.get(key.as_bytes(), opts))
    }

    /// The live values `node` stores for `key`, bypassing the coordinator.
    pub fn stored(&self, node: NodeId, key: &str) -> Vec<Bytes> {
        self.replica(node)
            .read(key.as_bytes())
            .unwrap()
            .values()
            .cloned()
            .collect()
    }
}

/// Bytes of a string.
pub fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// A config for tests: N=3, R=2, W=2, 100 ms timeout.
pub fn config() -> QuorumConfig {
    QuorumConfig {
        timeout: Duration::from_millis(100),
        ..QuorumConfig::default()
    }
}

/// Writes "old" then "new" to `key` through `c` while `home[2]` is down, so
/// that once it is back it holds only "old".
pub fn leave_third_replica_stale(sim: &Sim, c: &Coordinator, home: &[NodeId], key: &str) {
    let opts = RequestOptions::default();
    sim.put(c, key, "old", None, opts).unwrap();
    sim.settle();
    sim.crash(home[2]);
    let got = sim.get(c, key, opts).unwrap();
    sim.put(c, key, "new", Some(&got.context), opts).unwrap();
    sim.settle();
    sim.heal(home[2]);
    assert_eq!(
        sim.stored(home[2], key),
        vec![b("old")],
        "seed {}",
        sim.seed
    );
}

/// Home replicas of `key` in the simulation.
pub fn home(sim: &Sim, key: &[u8]) -> Vec<NodeId> {
    use kv_quorum::Placement;
    sim.ring.preference_list(key, 3)
}
