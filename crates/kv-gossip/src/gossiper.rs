//! The sans-IO gossip core: one node's membership list and its protocol.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use kv_types::{Clock, NodeId};

use crate::GossipError;
use crate::detector::{Arrivals, Detector};
use crate::member::{Liveness, Member, MemberMeta, MemberState, Status, Version};
use crate::message::{
    Body, DIGEST_LEN_MAX, Digest, GossipMessage, MAX_MESSAGE_BYTES, PeerAddr, Update, WANT_LEN_MAX,
    Want, header_len_max,
};

/// Most ring tokens one member may carry.
pub const MAX_TOKENS: usize = 1024;
/// Longest address (gossip or client) a member may carry, in bytes.
pub const MAX_ADDR_LEN: usize = 256;
/// Longest zone name, in bytes.
pub const MAX_ZONE_LEN: usize = 64;
/// Longest settings summary ([`MemberMeta::settings`]), in bytes.
pub const MAX_SETTINGS_LEN: usize = 128;
/// Most peers gossiped to per round on purpose (a down peer and a seed may
/// be added on top, see [`Gossiper::tick`]).
pub const MAX_FANOUT: usize = 8;
/// Most seed addresses.
pub const MAX_SEEDS: usize = 16;
/// Default bound on members known; news of more is refused.
pub const DEFAULT_MAX_MEMBERS: usize = 4096;
/// Default bound on the event queue; the oldest event is dropped past it.
pub const DEFAULT_MAX_EVENTS: usize = 4096;
/// Default bound on digests in one `Syn`.
pub const DEFAULT_MAX_DIGESTS: usize = 2048;
/// Default bound on updates (and on wants) in one `Ack` or `Ack2`.
pub const DEFAULT_MAX_UPDATES: usize = 2048;

/// Sends gossip messages. Fire and forget: gossip tolerates loss, so an
/// implementation may drop a message (full queue, unknown address) silently.
pub trait Transport {
    /// Sends `msg` to the node listening for gossip at `to`.
    fn send(&self, to: &str, msg: GossipMessage);
}

/// Everything a [`Gossiper`] needs to know about its node and its limits.
///
/// Build it with [`GossipConfig::new`] and change the public fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GossipConfig {
    /// This node.
    pub id: NodeId,
    /// This incarnation; must be larger than any before it (persist a
    /// counter, or use boot time in seconds).
    pub generation: u64,
    /// Where this node listens for gossip.
    pub gossip_addr: PeerAddr,
    /// Where this node listens for clients.
    pub client_addr: String,
    /// This node's failure zone.
    pub zone: String,
    /// This node's relative capacity.
    pub weight: u32,
    /// This node's ring tokens, at most [`MAX_TOKENS`].
    pub tokens: Vec<u64>,
    /// What this node runs with, for operators, at most
    /// [`MAX_SETTINGS_LEN`] bytes (see [`MemberMeta::settings`]).
    pub settings: String,
    /// The status announced at start.
    pub status: Status,
    /// Addresses to bootstrap from, at most [`MAX_SEEDS`].
    pub seeds: Vec<PeerAddr>,
    /// How often [`Gossiper::tick`] is called; the detectors scale to it.
    pub interval: Duration,
    /// Random live peers gossiped to per round, 1 to [`MAX_FANOUT`].
    pub fanout: usize,
    /// How silence becomes suspicion.
    pub detector: Detector,
    /// Most digests in one `Syn`; more members are covered in turns.
    pub max_digests_per_message: usize,
    /// Most updates, and most wants, in one `Ack` or `Ack2`.
    pub max_updates_per_message: usize,
    /// Most bytes in one encoded message, at most [`MAX_MESSAGE_BYTES`].
    pub max_message_bytes: usize,
    /// Most members known, this node included.
    pub max_members: usize,
    /// Most events queued before the oldest is dropped.
    pub max_events: usize,
    /// How long a `Left` member is remembered (so that stale gossip cannot
    /// bring it back), and then how long its id stays quarantined.
    pub forget_left_after: Duration,
    /// Seed of this node's random choices.
    pub rng_seed: u64,
}

impl GossipConfig {
    /// A configuration with default limits, a one-second interval and the
    /// default detector.
    pub fn new(id: NodeId, generation: u64, gossip_addr: impl Into<PeerAddr>) -> Self {
        let interval = Duration::from_secs(1);
        let gossip_addr = gossip_addr.into();
        Self {
            id,
            generation,
            client_addr: gossip_addr.clone(),
            gossip_addr,
            zone: String::new(),
            weight: 1,
            tokens: Vec::new(),
            settings: String::new(),
            status: Status::Joining,
            seeds: Vec::new(),
            interval,
            fanout: 2,
            detector: default_detector(interval),
            max_digests_per_message: DEFAULT_MAX_DIGESTS,
            max_updates_per_message: DEFAULT_MAX_UPDATES,
            max_message_bytes: MAX_MESSAGE_BYTES,
            max_members: DEFAULT_MAX_MEMBERS,
            max_events: DEFAULT_MAX_EVENTS,
            forget_left_after: Duration::from_secs(3600),
            rng_seed: id.0 ^ generation.rotate_left(32),
        }
    }

    fn validate(&self) -> Result<(), GossipError> {
        let bad = |what: &str, why: String| {
            Err(GossipError::InvalidConfig {
                field: what.to_owned(),
                reason: why,
            })
        };
        check_meta_bounds(
            self.tokens.len(),
            &self.gossip_addr,
            &self.client_addr,
            &self.zone,
            &self.settings,
        )?;
        if self.seeds.len() > MAX_SEEDS {
            return bad("seeds", format!("{} > {MAX_SEEDS}", self.seeds.len()));
        }
        if self.fanout == 0 || self.fanout > MAX_FANOUT {
            return bad("fanout", format!("{} not in 1..={MAX_FANOUT}", self.fanout));
        }
        if self.interval.is_zero() {
            return bad("interval", "must not be zero".into());
        }
        let min_bytes = header_len_max(&self.gossip_addr) + 8 * DIGEST_LEN_MAX;
        if self.max_message_bytes > MAX_MESSAGE_BYTES || self.max_message_bytes < min_bytes {
            return bad(
                "max_message_bytes",
                format!(
                    "{} not in {min_bytes}..={MAX_MESSAGE_BYTES}",
                    self.max_message_bytes
                ),
            );
        }
        for (field, v) in [
            ("max_digests_per_message", self.max_digests_per_message),
            ("max_updates_per_message", self.max_updates_per_message),
            ("max_members", self.max_members),
            ("max_events", self.max_events),
        ] {
            if v == 0 {
                return bad(field, "must not be zero".into());
            }
        }
        Ok(())
    }
}

/// The detector used unless the configuration says otherwise; chosen by
/// measurement, see the crate doc.
pub fn default_detector(interval: Duration) -> Detector {
    Detector::phi_for(interval)
}

fn check_meta_bounds(
    tokens: usize,
    gossip_addr: &str,
    client_addr: &str,
    zone: &str,
    settings: &str,
) -> Result<(), GossipError> {
    if tokens > MAX_TOKENS {
        return Err(GossipError::TooManyTokens {
            count: tokens,
            max: MAX_TOKENS,
        });
    }
    for (field, s, max) in [
        ("gossip_addr", gossip_addr, MAX_ADDR_LEN),
        ("client_addr", client_addr, MAX_ADDR_LEN),
        ("zone", zone, MAX_ZONE_LEN),
        ("settings", settings, MAX_SETTINGS_LEN),
    ] {
        if s.len() > max {
            return Err(GossipError::FieldTooLong {
                field: field.to_owned(),
                len: s.len(),
                max,
            });
        }
    }
    Ok(())
}

/// A change in membership, for the node to act on (rebuild the ring,
/// replay hints).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A member was heard of for the first time.
    Joined {
        /// The member.
        id: NodeId,
    },
    /// A member's heartbeat moved again after it was suspected or down.
    Up {
        /// The member.
        id: NodeId,
    },
    /// A member's heartbeat stalled past the suspect threshold.
    Suspected {
        /// The member.
        id: NodeId,
    },
    /// A member's heartbeat stalled past the down threshold.
    Down {
        /// The member.
        id: NodeId,
    },
    /// A member came back with a new generation: it restarted.
    Restarted {
        /// The member.
        id: NodeId,
        /// Its new generation.
        generation: u64,
    },
    /// A member declared a new status (leaving, left, ...).
    StatusChanged {
        /// The member.
        id: NodeId,
        /// Its new status.
        status: Status,
    },
    /// A member changed its addresses, zone, weight or tokens.
    MetaChanged {
        /// The member.
        id: NodeId,
    },
    /// A `Left` member was forgotten.
    Forgotten {
        /// The member.
        id: NodeId,
    },
}

/// Counters a node can export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Rounds run (calls to `tick`).
    pub rounds: u64,
    /// Messages handed to the transport.
    pub messages_sent: u64,
    /// Events dropped because the queue was full; when this moves, rebuild
    /// from [`Gossiper::members`] rather than trusting the events.
    pub events_dropped: u64,
    /// Updates refused: out of bounds, or a new member past `max_members`.
    pub updates_refused: u64,
    /// Updates, digests or wants left out of a message to keep it in
    /// bounds; they go in a later round.
    pub entries_truncated: u64,
}

#[derive(Debug, Clone)]
struct Entry {
    member: Member,
    arrivals: Arrivals,
    /// When this node learned the member had left.
    left_at: Option<Duration>,
}

/// One node's gossip state machine.
///
/// It never does I/O itself: the caller calls [`tick`](Self::tick) every
/// interval and [`handle`](Self::handle) for every message received, and it
/// sends through the [`Transport`] and reads time from the [`Clock`] it was
/// given. The same code runs over TCP in the node and in the simulator.
pub struct Gossiper<T> {
    cfg: GossipConfig,
    clock: Arc<dyn Clock>,
    transport: T,
    rng: ChaCha8Rng,
    members: BTreeMap<NodeId, Entry>,
    /// Ids forgotten recently, with the last version seen and when, so that
    /// stale gossip cannot bring them back.
    quarantine: BTreeMap<NodeId, (Version, Duration)>,
    events: VecDeque<Event>,
    stats: Stats,
    digest_cursor: usize,
}

impl<T> std::fmt::Debug for Gossiper<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gossiper")
            .field("id", &self.cfg.id)
            .field("generation", &self.cfg.generation)
            .field("members", &self.members.len())
            .finish_non_exhaustive()
    }
}

/// A byte and count budget for filling one message.
struct Budget {
    bytes: usize,
    count: usize,
}

impl Budget {
    fn take(&mut self, len: usize) -> bool {
        if self.count == 0 || len > self.bytes {
            return false;
        }
        self.count -= 1;
        self.bytes -= len;
        true
    }
}

impl<T: Transport> Gossiper<T> {
    /// A gossiper for the node described by `cfg`.
    pub fn new(
        cfg: GossipConfig,
        clock: Arc<dyn Clock>,
        transport: T,
    ) -> Result<Self, GossipError> {
        cfg.validate()?;
        let now = clock.now();
        let me = Member {
            id: cfg.id,
            version: Version {
                generation: cfg.generation,
                heartbeat: 0,
            },
            meta: MemberMeta {
                version: 0,
                status: cfg.status,
                gossip_addr: cfg.gossip_addr.clone(),
                client_addr: cfg.client_addr.clone(),
                zone: cfg.zone.clone(),
                weight: cfg.weight,
                tokens: cfg.tokens.clone(),
                settings: cfg.settings.clone(),
            },
            liveness: Liveness::Alive,
        };
        let mut members = BTreeMap::new();
        members.insert(
            cfg.id,
            Entry {
                member: me,
                arrivals: Arrivals::new(now),
                left_at: None,
            },
        );
        Ok(Self {
            rng: ChaCha8Rng::seed_from_u64(cfg.rng_seed),
            cfg,
            clock,
            transport,
            members,
            quarantine: BTreeMap::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            digest_cursor: 0,
        })
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.cfg.id
    }

    /// This node's configuration.
    pub fn config(&self) -> &GossipConfig {
        &self.cfg
    }

    /// The transport, e.g. to read its own counters.
    pub fn transport(&self) -> &T {
        &self.transport
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Every member known, this node included, in id order.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values().map(|e| &e.member)
    }

    /// One member.
    pub fn member(&self, id: NodeId) -> Option<&Member> {
        self.members.get(&id).map(|e| &e.member)
    }

    /// One member's combined state, or `None` if unknown.
    pub fn state_of(&self, id: NodeId) -> Option<MemberState> {
        self.member(id).map(Member::state)
    }

    /// Phi of a member right now (whatever the configured detector), for
    /// metrics; `None` for unknown members and this node.
    pub fn phi_of(&self, id: NodeId) -> Option<f64> {
        if id == self.cfg.id {
            return None;
        }
        let min_mean = match self.cfg.detector {
            Detector::PhiAccrual { min_mean, .. } => min_mean,
            Detector::Fixed { .. } => self.cfg.interval / 2,
        };
        self.members
            .get(&id)
            .map(|e| e.arrivals.phi(self.clock.now(), min_mean))
    }

    /// The next membership event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Takes every queued membership event, oldest first.
    pub fn drain_events(&mut self) -> impl Iterator<Item = Event> + '_ {
        self.events.drain(..)
    }

    /// Announces a new status for this node (e.g. `Normal` once it serves).
    pub fn set_status(&mut self, status: Status) {
        self.change_own_meta(|m| m.status = status);
    }

    /// Starts a decommission: announces `Leaving`. Call
    /// `set_status(Status::Left)` once the ranges are handed off, and keep
    /// gossiping a few rounds so that the fact spreads.
    pub fn leave(&mut self) {
        self.set_status(Status::Leaving);
    }

    /// Announces new ring tokens for this node.
    pub fn set_tokens(&mut self, tokens: Vec<u64>) -> Result<(), GossipError> {
        if tokens.len() > MAX_TOKENS {
            return Err(GossipError::TooManyTokens {
                count: tokens.len(),
                max: MAX_TOKENS,
            });
        }
        self.change_own_meta(|m| m.tokens = tokens);
        Ok(())
    }

    /// Announces a new weight for this node.
    pub fn set_weight(&mut self, weight: u32) {
        self.change_own_meta(|m| m.weight = weight);
    }

    /// Declares a dead member `Left` on its behalf (an operator removing a
    /// node that will not come back). Refused unless this node sees it
    /// down; if it is in fact alive, its own newer heartbeat wins and
    /// undoes this.
    pub fn remove_dead(&mut self, id: NodeId) -> Result<(), GossipError> {
        let now = self.clock.now();
        let Some(e) = self.members.get_mut(&id).filter(|_| id != self.cfg.id) else {
            return Err(GossipError::UnknownMember { id });
        };
        if e.member.liveness != Liveness::Down {
            return Err(GossipError::NotDown { id });
        }
        e.member.version.heartbeat += 1;
        e.member.meta.version = e.member.version.heartbeat;
        e.member.meta.status = Status::Left;
        e.left_at = Some(now);
        self.push_event(Event::StatusChanged {
            id,
            status: Status::Left,
        });
        Ok(())
    }

    fn me_mut(&mut self) -> &mut Entry {
        // Our own entry is inserted at construction and never removed:
        // `forget_left` and `apply` both skip our id.
        #[allow(clippy::expect_used)]
        self.members
            .get_mut(&self.cfg.id)
            .expect("own entry is never removed")
    }

    fn change_own_meta(&mut self, change: impl FnOnce(&mut MemberMeta)) {
        let me = self.me_mut();
        me.member.version.heartbeat += 1;
        me.member.meta.version = me.member.version.heartbeat;
        change(&mut me.member.meta);
    }

    fn push_event(&mut self, event: Event) {
        while self.events.len() >= self.cfg.max_events {
            self.events.pop_front();
            self.stats.events_dropped += 1;
        }
        self.events.push_back(event);
    }

    /// Runs one round: bumps this node's heartbeat, updates the failure
    /// detector's verdicts, forgets long-gone members, and opens an
    /// exchange with `fanout` random live peers, plus sometimes one down
    /// peer (so that a healed partition is noticed) and one seed (so that
    /// split clusters find each other again).
    pub fn tick(&mut self) {
        let now = self.clock.now();
        self.stats.rounds += 1;
        self.me_mut().member.version.heartbeat += 1;
        self.detect(now);
        self.forget_left(now);
        for to in self.pick_targets() {
            let syn = self.syn();
            self.send(&to, syn);
        }
    }

    fn send(&mut self, to: &str, body: Body) {
        self.stats.messages_sent += 1;
        let msg = GossipMessage {
            from: self.cfg.id,
            from_addr: self.cfg.gossip_addr.clone(),
            body,
        };
        self.transport.send(to, msg);
    }

    fn detect(&mut self, now: Duration) {
        let detector = self.cfg.detector;
        let me = self.cfg.id;
        let mut changed = Vec::new();
        for (id, e) in &mut self.members {
            if *id == me || e.member.meta.status == Status::Left {
                continue;
            }
            let verdict = e.arrivals.verdict(now, &detector);
            // Silence only ever worsens a verdict; a heartbeat that moves
            // again restores it in `apply`.
            if verdict > e.member.liveness {
                e.member.liveness = verdict;
                changed.push(match verdict {
                    Liveness::Down => Event::Down { id: *id },
                    _ => Event::Suspected { id: *id },
                });
            }
        }
        for ev in changed {
            self.push_event(ev);
        }
    }

    fn forget_left(&mut self, now: Duration) {
        let ttl = self.cfg.forget_left_after;
        self.quarantine
            .retain(|_, (_, since)| now.saturating_sub(*since) < ttl);
        let gone: Vec<NodeId> = self
            .members
            .iter()
            .filter(|(_, e)| e.left_at.is_some_and(|t| now.saturating_sub(t) >= ttl))
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            if id == self.cfg.id {
                continue;
            }
            if let Some(e) = self.members.remove(&id) {
                // Bounded like the member list; past it, the oldest
                // quarantined id is released first.
                while self.quarantine.len() >= self.cfg.max_members {
                    let oldest = self
                        .quarantine
                        .iter()
                        .min_by_key(|(_, (_, since))| *since)
                        .map(|(id, _)| *id);
                    match oldest {
                        Some(o) => self.quarantine.remove(&o),
                        None => break,
                    };
                }
                self.quarantine.insert(id, (e.member.version, now));
                self.push_event(Event::Forgotten { id });
            }
        }
    }

    fn pick_targets(&mut self) -> Vec<PeerAddr> {
        let me = self.cfg.id;
        let mut live = Vec::new();
        let mut down = Vec::new();
        for (id, e) in &self.members {
            if *id == me || e.member.meta.status == Status::Left {
                continue;
            }
            if e.member.liveness == Liveness::Down {
                down.push(e.member.meta.gossip_addr.as_str());
            } else {
                live.push(e.member.meta.gossip_addr.as_str());
            }
        }
        let mut targets: Vec<PeerAddr> = Vec::new();
        // A partial Fisher-Yates shuffle picks `fanout` distinct peers.
        let k = self.cfg.fanout.min(live.len());
        for i in 0..k {
            let j = self.rng.random_range(i..live.len());
            live.swap(i, j);
            targets.push(live[i].to_owned());
        }
        // As Cassandra does: a down peer with a chance that grows with the
        // share of down peers, so that recoveries are seen.
        if !down.is_empty() {
            let p = down.len() as f64 / (live.len() + 1) as f64;
            if self.rng.random_bool(p.min(1.0)) {
                let j = self.rng.random_range(0..down.len());
                targets.push(down[j].to_owned());
            }
        }
        let seeds: Vec<&str> = self
            .cfg
            .seeds
            .iter()
            .map(String::as_str)
            .filter(|s| *s != self.cfg.gossip_addr)
            .collect();
        if !seeds.is_empty() {
            if live.is_empty() {
                // Alone: bootstrap from every seed.
                targets.extend(seeds.iter().map(|s| (*s).to_owned()));
            } else if !targets.iter().any(|t| seeds.contains(&t.as_str())) {
                let p = seeds.len() as f64 / (live.len() + down.len() + 1) as f64;
                if self.rng.random_bool(p.min(1.0)) {
                    let j = self.rng.random_range(0..seeds.len());
                    targets.push(seeds[j].to_owned());
                }
            }
        }
        targets.sort();
        targets.dedup();
        targets
    }

    fn syn(&mut self) -> Body {
        let room =
            (self.cfg.max_message_bytes - header_len_max(&self.cfg.gossip_addr)) / DIGEST_LEN_MAX;
        let max = self.cfg.max_digests_per_message.min(room).max(1);
        let n = self.members.len();
        if n <= max {
            let digests = self.members.values().map(|e| digest(&e.member)).collect();
            return Body::Syn {
                digests,
                complete: true,
            };
        }
        // Too many to list: our own digest, then a window that rotates
        // round by round so that every member is covered in turn.
        let me = self.cfg.id;
        let mut digests = Vec::with_capacity(max);
        if let Some(e) = self.members.get(&me) {
            digests.push(digest(&e.member));
        }
        let start = self.digest_cursor % n;
        for e in self
            .members
            .values()
            .cycle()
            .skip(start)
            .take(n)
            .filter(|e| e.member.id != me)
            .take(max - 1)
        {
            digests.push(digest(&e.member));
        }
        self.digest_cursor = (start + max - 1) % n;
        self.stats.entries_truncated += (n - digests.len()) as u64;
        Body::Syn {
            digests,
            complete: false,
        }
    }

    fn budget(&self) -> Budget {
        Budget {
            bytes: self.cfg.max_message_bytes - header_len_max(&self.cfg.gossip_addr),
            count: self.cfg.max_updates_per_message,
        }
    }

    fn update_for(&self, e: &Entry, known: Option<Version>) -> Update {
        let m = &e.member;
        let with_meta = match known {
            None => true,
            Some(k) => k.generation != m.version.generation || k.heartbeat < m.meta.version,
        };
        Update {
            id: m.id,
            version: m.version,
            meta: with_meta.then(|| m.meta.clone()),
        }
    }

    /// Handles one received message, answering through the transport when
    /// the protocol says so. Messages from this node's own id are ignored.
    pub fn handle(&mut self, msg: GossipMessage) {
        if msg.from == self.cfg.id || msg.from_addr.len() > MAX_ADDR_LEN {
            return;
        }
        let now = self.clock.now();
        match msg.body {
            Body::Syn { digests, complete } => {
                self.on_syn(msg.from, &msg.from_addr, &digests, complete);
            }
            Body::Ack { updates, wants } => {
                for u in updates {
                    self.apply(u, now);
                }
                self.on_wants(&msg.from_addr, &wants);
            }
            Body::Ack2 { updates } => {
                for u in updates {
                    self.apply(u, now);
                }
            }
        }
    }

    fn on_syn(&mut self, from: NodeId, from_addr: &str, digests: &[Digest], complete: bool) {
        let mut budget = self.budget();
        let mut want_count = self.cfg.max_updates_per_message;
        let mut updates = Vec::new();
        let mut wants = Vec::new();
        let mut truncated = 0u64;
        // Start at a random place, so that when a message fills up it is
        // not always the same members that wait.
        let offset = if digests.is_empty() {
            0
        } else {
            self.rng.random_range(0..digests.len())
        };
        for d in digests.iter().cycle().skip(offset).take(digests.len()) {
            // A node that speaks for itself while we hold it as removed must
            // hear the claim, whatever the versions say, so it can refute it.
            if d.id == from
                && let Some(e) = self.members.get(&from)
                && e.member.meta.status == Status::Left
            {
                let u = self.update_for(e, None);
                if budget.take(u.len_max()) {
                    updates.push(u);
                }
            }
            match self.members.get(&d.id) {
                Some(e) if e.member.version > d.version => {
                    let u = self.update_for(e, Some(d.version));
                    if budget.take(u.len_max()) {
                        updates.push(u);
                    } else {
                        truncated += 1;
                    }
                }
                Some(e) if e.member.version == d.version => {}
                local => {
                    let known = local.map(|e| e.member.version);
                    if want_count > 0 && budget.take(WANT_LEN_MAX) {
                        want_count -= 1;
                        wants.push(Want { id: d.id, known });
                    } else {
                        truncated += 1;
                    }
                }
            }
        }
        if complete {
            for id in unlisted(self.members.keys(), digests) {
                let Some(e) = self.members.get(&id) else {
                    continue;
                };
                let u = self.update_for(e, None);
                if budget.take(u.len_max()) {
                    updates.push(u);
                } else {
                    truncated += 1;
                }
            }
        }
        self.stats.entries_truncated += truncated;
        self.send(from_addr, Body::Ack { updates, wants });
    }

    fn on_wants(&mut self, from_addr: &str, wants: &[Want]) {
        if wants.is_empty() {
            return;
        }
        let mut budget = self.budget();
        let mut updates = Vec::new();
        for w in wants {
            let Some(e) = self.members.get(&w.id) else {
                continue;
            };
            if w.known.is_some_and(|k| k >= e.member.version) {
                continue;
            }
            let u = self.update_for(e, w.known);
            if budget.take(u.len_max()) {
                updates.push(u);
            } else {
                self.stats.entries_truncated += 1;
            }
        }
        if !updates.is_empty() {
            self.send(from_addr, Body::Ack2 { updates });
        }
    }

    fn apply(&mut self, u: Update, now: Duration) {
        if let Some(m) = &u.meta
            && check_meta_bounds(
                m.tokens.len(),
                &m.gossip_addr,
                &m.client_addr,
                &m.zone,
                &m.settings,
            )
            .is_err()
        {
            self.stats.updates_refused += 1;
            return;
        }
        if u.id == self.cfg.id {
            self.refute(&u);
            return;
        }
        let detector = self.cfg.detector;
        let Some(e) = self.members.get_mut(&u.id) else {
            self.insert_new(u, now);
            return;
        };
        if u.version <= e.member.version {
            return;
        }
        let mut events = Vec::new();
        let was = e.member.liveness;
        let old_status = e.member.meta.status;
        if u.version.generation > e.member.version.generation {
            // A restart: only a full entry can replace the old self; if the
            // metadata is missing, our older digest will ask for it.
            let Some(meta) = u.meta else {
                return;
            };
            e.member.version = u.version;
            e.member.meta = meta;
            e.arrivals = Arrivals::new(now);
            e.member.liveness = Liveness::Alive;
            events.push(Event::Restarted {
                id: u.id,
                generation: u.version.generation,
            });
        } else {
            e.member.version.heartbeat = u.version.heartbeat;
            e.arrivals.record(now, &detector);
            if let Some(meta) = u.meta.filter(|m| m.version > e.member.meta.version) {
                if meta.status == old_status {
                    events.push(Event::MetaChanged { id: u.id });
                }
                e.member.meta = meta;
            }
            if was != Liveness::Alive {
                e.member.liveness = Liveness::Alive;
            }
        }
        let status = e.member.meta.status;
        if status != old_status {
            events.push(Event::StatusChanged { id: u.id, status });
        }
        if status == Status::Left {
            e.left_at.get_or_insert(now);
        } else {
            e.left_at = None;
            if was != Liveness::Alive {
                events.push(Event::Up { id: u.id });
            }
        }
        for ev in events {
            self.push_event(ev);
        }
    }

    fn insert_new(&mut self, u: Update, now: Duration) {
        let Some(meta) = u.meta else {
            // We never heard of it and got no metadata: our digest will not
            // list it, so the next exchange sends it whole.
            return;
        };
        if self
            .quarantine
            .get(&u.id)
            .is_some_and(|(v, _)| u.version <= *v)
        {
            return;
        }
        if self.members.len() >= self.cfg.max_members {
            self.stats.updates_refused += 1;
            return;
        }
        self.quarantine.remove(&u.id);
        let left = meta.status == Status::Left;
        self.members.insert(
            u.id,
            Entry {
                member: Member {
                    id: u.id,
                    version: u.version,
                    meta,
                    liveness: Liveness::Alive,
                },
                arrivals: Arrivals::new(now),
                left_at: left.then_some(now),
            },
        );
        if !left {
            self.push_event(Event::Joined { id: u.id });
        }
    }

    /// Someone claims something newer about this node than it said itself
    /// (stale state from a previous life, or a `remove_dead` while it was
    /// only cut off): outbid it so that this node's own view wins.
    fn refute(&mut self, u: &Update) {
        let me = self.me_mut();
        let newer = u.version > me.member.version;
        // Metadata from an older life of this node is history, not a claim.
        let other_meta = u.version.generation >= me.member.version.generation
            && u.meta
                .as_ref()
                .is_some_and(|m| m.version >= me.member.meta.version && *m != me.member.meta);
        if !newer && !other_meta {
            return;
        }
        me.member.version.generation = me.member.version.generation.max(u.version.generation);
        me.member.version.heartbeat = me.member.version.heartbeat.max(u.version.heartbeat) + 1;
        me.member.meta.version = me.member.version.heartbeat;
    }
}

/// The ids in `known` (ascending) that `digests` does not list. Our own
/// `Syn`s list digests in id order, so the common case is one merge walk
/// with no allocation but the answer.
fn unlisted<'a>(known: impl Iterator<Item = &'a NodeId>, digests: &[Digest]) -> Vec<NodeId> {
    if digests.windows(2).all(|w| w[0].id < w[1].id) {
        let mut listed = digests.iter().map(|d| d.id).peekable();
        known
            .filter(|id| {
                while listed.next_if(|d| d < *id).is_some() {}
                listed.next_if_eq(*id).is_none()
            })
            .copied()
            .collect()
    } else {
        let listed: BTreeSet<NodeId> = digests.iter().map(|d| d.id).collect();
        known.filter(|id| !listed.contains(id)).copied().collect()
    }
}

fn digest(m: &Member) -> Digest {
    Digest {
        id: m.id,
        version: m.version,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(id: u64) -> Digest {
        Digest {
            id: NodeId(id),
            version: Version {
                generation: 1,
                heartbeat: 1,
            },
        }
    }

    #[test]
    fn unlisted_agrees_sorted_or_not() {
        let known: Vec<NodeId> = [1, 3, 5, 7, 9].into_iter().map(NodeId).collect();
        let sorted = [d(0), d(3), d(4), d(9), d(11)];
        let shuffled = [d(9), d(0), d(11), d(3), d(4)];
        let want: Vec<NodeId> = [1, 5, 7].into_iter().map(NodeId).collect();
        assert_eq!(unlisted(known.iter(), &sorted), want);
        assert_eq!(unlisted(known.iter(), &shuffled), want);
        assert_eq!(unlisted(known.iter(), &[]), known);
    }
}
