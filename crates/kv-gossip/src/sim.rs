//! A deterministic simulator: many gossipers in one process, on virtual
//! time, over a seeded lossy network with delay, partitions, crashes and
//! restarts.
//!
//! Everything that happens is an entry in one queue ordered by
//! (virtual time, sequence number), and every random choice comes from
//! seeded ChaCha generators, so a seed replays a run exactly. Tests and the
//! figures binary (`cargo xtask bench gossip`) both drive it.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use kv_types::{Clock, ManualClock, NodeId};

use crate::detector::Detector;
use crate::gossiper::{Event, GossipConfig, Gossiper, Transport, default_detector};
use crate::member::{Liveness, Status};
use crate::message::{GossipMessage, PeerAddr};

/// Reads the simulation seed from `KV_SEED`, or uses `default`; prints it
/// so that a failing run can be replayed.
pub fn seed_from_env(default: u64) -> u64 {
    let seed = std::env::var("KV_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(default);
    eprintln!("simulation seed {seed} (replay with KV_SEED={seed})");
    seed
}

/// Node `i`'s id: a scrambled 64-bit number, as real ids are random, so
/// that measured message sizes carry full-width ids.
pub fn sim_node_id(i: usize) -> NodeId {
    // SplitMix64 finaliser: a bijection, so ids never collide.
    let mut z = (i as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    NodeId(z ^ (z >> 31))
}

/// How the simulated network and nodes behave.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SimConfig {
    /// Seed of every random choice in the run.
    pub seed: u64,
    /// Chance that a message is lost, 0 to 1.
    pub loss: f64,
    /// Shortest delivery delay.
    pub delay_min: Duration,
    /// Longest delivery delay.
    pub delay_max: Duration,
    /// Gossip interval of every node.
    pub interval: Duration,
    /// Peers per round of every node.
    pub fanout: usize,
    /// Failure detector of every node.
    pub detector: Detector,
    /// The first `seeds` nodes are the seeds.
    pub seeds: usize,
    /// Most digests per `Syn` of every node.
    pub max_digests_per_message: usize,
    /// Ring tokens each node announces (payload realism for byte counts).
    pub tokens_per_node: usize,
    /// Whether to count the encoded size of every message (costs time).
    pub measure_bytes: bool,
    /// Whether to keep every membership event in a log.
    pub record_events: bool,
}

impl SimConfig {
    /// A reliable network with 1-20 ms delays, one-second rounds, three
    /// seeds and the default detector.
    pub fn new(seed: u64) -> Self {
        let interval = Duration::from_secs(1);
        let defaults = GossipConfig::new(NodeId(0), 1, "");
        Self {
            seed,
            loss: 0.0,
            delay_min: Duration::from_millis(1),
            delay_max: Duration::from_millis(20),
            interval,
            fanout: defaults.fanout,
            detector: default_detector(interval),
            seeds: 3,
            max_digests_per_message: defaults.max_digests_per_message,
            tokens_per_node: 8,
            measure_bytes: false,
            record_events: true,
        }
    }
}

/// One membership event seen by one simulated node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimEvent {
    /// Virtual time.
    pub at: Duration,
    /// Index of the node that saw it.
    pub node: usize,
    /// What it saw.
    pub event: Event,
}

type Outbox = Rc<RefCell<Vec<(PeerAddr, GossipMessage)>>>;

/// The simulator's [`Transport`]: queues messages for the simulator to
/// deliver.
#[derive(Debug, Clone)]
pub struct SimTransport {
    outbox: Outbox,
}

impl Transport for SimTransport {
    fn send(&self, to: &str, msg: GossipMessage) {
        self.outbox.borrow_mut().push((to.to_owned(), msg));
    }
}

struct SimNode {
    id: NodeId,
    addr: PeerAddr,
    generation: u64,
    gossiper: Option<Gossiper<SimTransport>>,
    epoch: u64,
    outbox: Outbox,
    bytes_sent: u64,
    messages_sent: u64,
}

enum Pending {
    Tick { node: usize, epoch: u64 },
    Deliver { to: usize, msg: GossipMessage },
}

/// The simulated cluster.
pub struct Sim {
    cfg: SimConfig,
    clock: Arc<ManualClock>,
    nodes: Vec<SimNode>,
    by_addr: BTreeMap<PeerAddr, usize>,
    queue: BTreeMap<(Duration, u64), Pending>,
    seq: u64,
    rng: ChaCha8Rng,
    side: Option<Vec<bool>>,
    events: Vec<SimEvent>,
    largest_message: usize,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("now", &self.clock.now())
            .field("nodes", &self.nodes.len())
            .finish_non_exhaustive()
    }
}

impl Sim {
    /// A cluster of `n` nodes, all started at time zero (each ticking at
    /// its own random phase) and bootstrapping from the seeds.
    pub fn new(cfg: SimConfig, n: usize) -> Self {
        let mut sim = Self {
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            cfg,
            clock: Arc::new(ManualClock::new()),
            nodes: Vec::new(),
            by_addr: BTreeMap::new(),
            queue: BTreeMap::new(),
            seq: 0,
            side: None,
            events: Vec::new(),
            largest_message: 0,
        };
        for _ in 0..n {
            sim.add_node();
        }
        sim
    }

    /// Adds and starts a new node; returns its index.
    pub fn add_node(&mut self) -> usize {
        let i = self.nodes.len();
        let addr = format!("node{i}:7000");
        self.by_addr.insert(addr.clone(), i);
        self.nodes.push(SimNode {
            id: sim_node_id(i),
            addr,
            generation: 1,
            gossiper: None,
            epoch: 0,
            outbox: Rc::new(RefCell::new(Vec::new())),
            bytes_sent: 0,
            messages_sent: 0,
        });
        self.start(i);
        i
    }

    fn start(&mut self, i: usize) {
        let seeds: Vec<PeerAddr> = self
            .nodes
            .iter()
            .take(self.cfg.seeds)
            .map(|n| n.addr.clone())
            .collect();
        let node_seed = self.rng.random::<u64>();
        let token_seed = self.cfg.seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut token_rng = ChaCha8Rng::seed_from_u64(token_seed);
        let tokens = (0..self.cfg.tokens_per_node)
            .map(|_| token_rng.random())
            .collect();
        let node = &mut self.nodes[i];
        let mut g = GossipConfig::new(node.id, node.generation, node.addr.clone());
        g.client_addr = format!("node{i}:8000");
        g.zone = format!("zone{}", i % 3);
        g.tokens = tokens;
        g.status = Status::Normal;
        g.seeds = seeds;
        g.interval = self.cfg.interval;
        g.fanout = self.cfg.fanout;
        g.detector = self.cfg.detector;
        g.max_digests_per_message = self.cfg.max_digests_per_message;
        g.rng_seed = node_seed;
        let transport = SimTransport {
            outbox: Rc::clone(&node.outbox),
        };
        let clock: Arc<dyn Clock> = self.clock.clone();
        // The simulator builds only configurations it knows to be valid.
        #[allow(clippy::expect_used)]
        let gossiper = Gossiper::new(g, clock, transport).expect("simulator config is valid");
        node.gossiper = Some(gossiper);
        node.epoch += 1;
        let epoch = node.epoch;
        let phase = self.rng.random_range(Duration::ZERO..self.cfg.interval);
        self.schedule(phase, Pending::Tick { node: i, epoch });
    }

    fn schedule(&mut self, after: Duration, p: Pending) {
        self.seq += 1;
        self.queue.insert((self.clock.now() + after, self.seq), p);
    }

    /// Stops node `i` without a word: it neither sends nor receives.
    pub fn crash(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        node.gossiper = None;
        node.epoch += 1;
        node.outbox.borrow_mut().clear();
    }

    /// Starts a crashed node again with a new generation, as a reboot does.
    pub fn restart(&mut self, i: usize) {
        self.crash(i);
        self.nodes[i].generation += 1;
        self.start(i);
    }

    /// Whether node `i` is running.
    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].gossiper.is_some()
    }

    /// Splits the network: nodes in `side_a` reach only each other, the rest
    /// only each other.
    pub fn partition(&mut self, side_a: &[usize]) {
        let mut side = vec![false; self.nodes.len()];
        for &i in side_a {
            side[i] = true;
        }
        self.side = Some(side);
    }

    /// Heals any partition.
    pub fn heal(&mut self) {
        self.side = None;
    }

    /// Changes the message loss rate.
    pub fn set_loss(&mut self, loss: f64) {
        self.cfg.loss = loss.clamp(0.0, 1.0);
    }

    fn reachable(&self, a: usize, b: usize) -> bool {
        self.side.as_ref().is_none_or(|s| s[a] == s[b])
    }

    /// Number of nodes, crashed ones included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Virtual time now.
    pub fn now(&self) -> Duration {
        self.clock.now()
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// Node `i`'s id.
    pub fn id(&self, i: usize) -> NodeId {
        self.nodes[i].id
    }

    /// Node `i`'s gossiper, if it is running.
    pub fn node(&self, i: usize) -> Option<&Gossiper<SimTransport>> {
        self.nodes[i].gossiper.as_ref()
    }

    /// Node `i`'s gossiper, if it is running, to change its status or
    /// tokens.
    pub fn node_mut(&mut self, i: usize) -> Option<&mut Gossiper<SimTransport>> {
        self.nodes[i].gossiper.as_mut()
    }

    /// Bytes node `i` has sent, when `measure_bytes` is on.
    pub fn bytes_sent(&self, i: usize) -> u64 {
        self.nodes[i].bytes_sent
    }

    /// Messages node `i` has sent.
    pub fn messages_sent(&self, i: usize) -> u64 {
        self.nodes[i].messages_sent
    }

    /// The largest encoded message sent so far, when `measure_bytes` is on.
    pub fn largest_message(&self) -> usize {
        self.largest_message
    }

    /// Takes the event log (when `record_events` is on).
    pub fn take_events(&mut self) -> Vec<SimEvent> {
        std::mem::take(&mut self.events)
    }

    /// Runs everything due in the next `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.clock.now() + d;
        while let Some(entry) = self.queue.first_entry() {
            let (at, _) = *entry.key();
            if at > end {
                break;
            }
            let p = entry.remove();
            self.clock.set(at);
            self.process(p);
        }
        self.clock.set(end);
    }

    /// Runs in steps of a tenth of an interval until `done` holds or `max`
    /// has passed; returns the time it took, or `None` on timeout.
    pub fn run_until(
        &mut self,
        max: Duration,
        mut done: impl FnMut(&Sim) -> bool,
    ) -> Option<Duration> {
        let start = self.now();
        let step = self.cfg.interval / 10;
        loop {
            if done(self) {
                return Some(self.now() - start);
            }
            if self.now() - start >= max {
                return None;
            }
            self.run_for(step);
        }
    }

    fn process(&mut self, p: Pending) {
        let (i, now) = match p {
            Pending::Tick { node, epoch } => {
                if self.nodes[node].epoch != epoch {
                    return;
                }
                let Some(g) = self.nodes[node].gossiper.as_mut() else {
                    return;
                };
                g.tick();
                let interval = self.cfg.interval;
                self.schedule(interval, Pending::Tick { node, epoch });
                (node, self.clock.now())
            }
            Pending::Deliver { to, msg } => {
                let from = self.by_addr.get(&msg.from_addr).copied();
                if from.is_some_and(|f| !self.reachable(f, to)) {
                    return;
                }
                let Some(g) = self.nodes[to].gossiper.as_mut() else {
                    return;
                };
                g.handle(msg);
                (to, self.clock.now())
            }
        };
        self.flush(i);
        if let Some(g) = self.nodes[i].gossiper.as_mut() {
            if self.cfg.record_events {
                self.events.extend(g.drain_events().map(|event| SimEvent {
                    at: now,
                    node: i,
                    event,
                }));
            } else {
                g.drain_events().for_each(drop);
            }
        }
    }

    fn flush(&mut self, i: usize) {
        let out = std::mem::take(&mut *self.nodes[i].outbox.borrow_mut());
        for (to, msg) in out {
            self.nodes[i].messages_sent += 1;
            if self.cfg.measure_bytes {
                let len = msg.encoded_len();
                self.nodes[i].bytes_sent += len as u64;
                self.largest_message = self.largest_message.max(len);
            }
            let Some(&j) = self.by_addr.get(&to) else {
                continue;
            };
            if !self.reachable(i, j) || self.rng.random_bool(self.cfg.loss) {
                continue;
            }
            let delay = if self.cfg.delay_max > self.cfg.delay_min {
                self.rng
                    .random_range(self.cfg.delay_min..=self.cfg.delay_max)
            } else {
                self.cfg.delay_min
            };
            self.schedule(delay, Pending::Deliver { to: j, msg });
        }
    }

    /// Whether running node `observer` sees node `subject` with `liveness`
    /// (`false` when the observer is not running or does not know it).
    pub fn sees(&self, observer: usize, subject: usize, liveness: Liveness) -> bool {
        let id = self.nodes[subject].id;
        self.node(observer)
            .and_then(|g| g.member(id))
            .is_some_and(|m| m.liveness == liveness)
    }

    /// Whether every running node other than `subject` sees it with
    /// `liveness`.
    pub fn all_see(&self, subject: usize, liveness: Liveness) -> bool {
        (0..self.nodes.len())
            .filter(|&o| o != subject && self.is_running(o))
            .all(|o| self.sees(o, subject, liveness))
    }

    /// Whether the views agree with the truth: every running node knows
    /// every node that has run, sees the running ones alive and the crashed
    /// ones down, at the current generation.
    pub fn converged(&self) -> bool {
        (0..self.nodes.len())
            .filter(|&o| self.is_running(o))
            .all(|o| {
                let Some(g) = self.node(o) else {
                    return false;
                };
                self.nodes.iter().enumerate().all(|(s, n)| {
                    let Some(m) = g.member(n.id) else {
                        return false;
                    };
                    let want = if self.is_running(s) {
                        Liveness::Alive
                    } else {
                        Liveness::Down
                    };
                    m.version.generation == n.generation && (s == o || m.liveness == want)
                })
            })
    }
}
