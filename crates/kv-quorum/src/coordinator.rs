//! The coordinator: sends a request to a key's replicas and answers once a
//! quorum has; and the hint replayer that hands hints back to their owners.
//!
//! A put has two phases, as in Riak. First one home replica (the local node
//! when it is one) applies the write and issues its dot, because a dot's
//! counter must come from the actor's own durable copy to be unique. Then
//! the resulting state goes to the other targets in parallel, and the put
//! answers once W replicas (the issuer included) hold it. The coordinator
//! reaches every replica, the local one included, through the
//! [`ReplicaTransport`]; the node's transport short-circuits local calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures::future::{BoxFuture, Either, select};
use futures::stream::{FuturesUnordered, StreamExt};
use kv_types::NodeId;
use serde::{Deserialize, Serialize};

use crate::config::{Mode, QuorumConfig, ReadFanout, ReadRepair, RequestOptions};
use crate::error::{QuorumError, ReplicaFailure};
use crate::quorum::{QuorumState, QuorumTracker};
use crate::replica::Replica;
use crate::transport::{
    Liveness, Placement, ReplicaRequest, ReplicaResponse, ReplicaTransport, Timer, TransportError,
};
use crate::version::{Dot, SiblingSet, VersionVector, WriteContext};

/// Version byte of an encoded [`CausalContext`]. Version 1 (a bare
/// version vector) is still read.
pub const CONTEXT_FORMAT_VERSION: u8 = 2;
/// Largest causal context accepted from a client.
pub const CONTEXT_BYTES_MAX: usize = 64 << 10;
/// Default number of hints one [`HintReplayer::replay_to`] call delivers.
pub const DEFAULT_REPLAY_BATCH: usize = 256;

/// The opaque causal context a read returns and a write gives back.
///
/// ```text
/// +--------+----------------------------------------------------------+
/// | ver u8 | postcard(WriteContext): clock [(actor, count)],           |
/// |  = 2   |                         dots  [(actor, counter)]          |
/// +--------+----------------------------------------------------------+
/// | ver u8 | postcard(VersionVector), still read; never written        |
/// |  = 1   |                                                          |
/// +--------+----------------------------------------------------------+
/// ```
///
/// Clients treat it as bytes. It needs no checksum of its own: a damaged
/// one can only make a write supersede more or less than the client saw,
/// never corrupt stored data, and the issuer clamps it to what it has seen
/// (see [`SiblingSet::update`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CausalContext(Bytes);

impl CausalContext {
    /// The context of a version vector: everything up to it.
    pub fn from_clock(clock: &VersionVector) -> Self {
        Self::from_context(&WriteContext::from(clock.clone()))
    }

    /// The context of a [`WriteContext`].
    pub fn from_context(context: &WriteContext) -> Self {
        let body = postcard::to_allocvec(context).unwrap_or_default();
        let mut buf = BytesMut::with_capacity(1 + body.len());
        buf.put_u8(CONTEXT_FORMAT_VERSION);
        buf.put_slice(&body);
        Self(buf.freeze())
    }

    /// Wraps bytes received from a client; checked when used.
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Self {
        Self(bytes.into())
    }

    /// The encoded bytes, to hand to a client.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// What the context covers; the empty context covers nothing.
    pub fn decode(&self) -> Result<WriteContext, QuorumError> {
        let b = &self.0;
        if b.is_empty() {
            return Ok(WriteContext::new());
        }
        if b.len() > CONTEXT_BYTES_MAX {
            return Err(QuorumError::InvalidContext {
                detail: format!("{} bytes exceed the limit of {CONTEXT_BYTES_MAX}", b.len()),
            });
        }
        let invalid = |e: postcard::Error| QuorumError::InvalidContext {
            detail: e.to_string(),
        };
        match b[0] {
            1 => postcard::from_bytes::<VersionVector>(&b[1..])
                .map(WriteContext::from)
                .map_err(invalid),
            CONTEXT_FORMAT_VERSION => {
                let context: WriteContext = postcard::from_bytes(&b[1..]).map_err(invalid)?;
                Ok(context)
            }
            other => Err(QuorumError::InvalidContext {
                detail: format!("unknown version {other}"),
            }),
        }
    }
}

/// What a read answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GetReply {
    /// Every concurrent live value, in a stable order; empty when the key
    /// was never written or only deletes survive ("not found").
    pub siblings: Vec<Bytes>,
    /// Give this back with the next write to supersede what was read.
    pub context: CausalContext,
    /// Siblings (deletes included) left out because the replicas' merged
    /// state would not fit a frame (see
    /// [`QuorumConfig::state_bytes_hard_max`]); usually 0. The context
    /// covers only what was returned, so a write with it supersedes those
    /// and keeps the rest, and the next read returns more of them.
    pub omitted: usize,
}

impl GetReply {
    /// Whether the key has a live value.
    pub fn is_found(&self) -> bool {
        !self.siblings.is_empty()
    }
}

/// What a successful write answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutReply {
    /// What the writer has now seen: the context it wrote with (as the
    /// issuer accepted it) and, when a version vector can say so exactly,
    /// the new write's own dot. A next write with it supersedes this write
    /// and what the writer read, never a concurrent write it did not read.
    pub context: CausalContext,
}

/// How a round of requests ended.
enum Gathered {
    Reached,
    Exhausted,
    TimedOut,
}

type Call = BoxFuture<'static, (NodeId, Result<ReplicaResponse, TransportError>)>;

/// Coordinates reads and writes of any key from one node.
pub struct Coordinator {
    local: NodeId,
    config: QuorumConfig,
    placement: Arc<dyn Placement>,
    liveness: Arc<dyn Liveness>,
    transport: Arc<dyn ReplicaTransport>,
    timer: Arc<dyn Timer>,
    /// Reads coordinated so far, to take turns among replicas.
    reads: AtomicUsize,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator")
            .field("local", &self.local)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Coordinator {
    /// A coordinator on node `local`; fails if `config` is inconsistent.
    pub fn new(
        local: NodeId,
        config: QuorumConfig,
        placement: Arc<dyn Placement>,
        liveness: Arc<dyn Liveness>,
        transport: Arc<dyn ReplicaTransport>,
        timer: Arc<dyn Timer>,
    ) -> Result<Self, QuorumError> {
        config.validate()?;
        Ok(Self {
            local,
            config,
            placement,
            liveness,
            transport,
            timer,
            reads: AtomicUsize::new(0),
        })
    }

    /// The cluster defaults in use.
    pub fn config(&self) -> &QuorumConfig {
        &self.config
    }

    fn required(&self, opts: &RequestOptions, default: usize) -> Result<usize, QuorumError> {
        match opts.consistency {
            Some(c) => c.required(self.config.n),
            None => Ok(default),
        }
    }

    fn call(&self, to: NodeId, req: ReplicaRequest) -> Call {
        let fut = self.transport.call(to, req);
        Box::pin(async move { (to, fut.await) })
    }

    /// Drives `calls` until `tracker` is decided or `deadline` fires;
    /// `on_answer` classifies each answer as a success or not.
    async fn gather(
        calls: Vec<Call>,
        tracker: &mut QuorumTracker,
        deadline: &mut BoxFuture<'static, ()>,
        on_answer: impl FnMut(NodeId, Result<ReplicaResponse, TransportError>) -> bool,
    ) -> Gathered {
        Self::gather_with_spares(
            calls,
            std::iter::empty(),
            None,
            tracker,
            deadline,
            on_answer,
        )
        .await
    }

    /// [`gather`](Self::gather), with `spares` held back: each failed call
    /// is replaced by the next spare, and when `speculate` fires every
    /// spare left is called. The tracker counts the spares as outstanding
    /// from the start.
    async fn gather_with_spares(
        calls: Vec<Call>,
        mut spares: impl Iterator<Item = Call>,
        mut speculate: Option<BoxFuture<'static, ()>>,
        tracker: &mut QuorumTracker,
        deadline: &mut BoxFuture<'static, ()>,
        mut on_answer: impl FnMut(NodeId, Result<ReplicaResponse, TransportError>) -> bool,
    ) -> Gathered {
        let mut pending: FuturesUnordered<Call> = calls.into_iter().collect();
        loop {
            match tracker.state() {
                QuorumState::Reached => return Gathered::Reached,
                QuorumState::Impossible => return Gathered::Exhausted,
                QuorumState::Waiting => {}
            }
            let speculation = match speculate.as_mut() {
                Some(timer) => Either::Left(timer),
                None => Either::Right(futures::future::pending()),
            };
            match select(pending.next(), select(speculation, &mut *deadline)).await {
                Either::Left((Some((node, answer)), _)) => {
                    if on_answer(node, answer) {
                        tracker.success();
                    } else {
                        tracker.failure();
                        pending.extend(spares.next());
                    }
                }
                Either::Left((None, _)) => match spares.next() {
                    Some(call) => pending.push(call),
                    None => return Gathered::Exhausted,
                },
                Either::Right((Either::Left(((), _)), _)) => {
                    speculate = None;
                    pending.extend(&mut spares);
                }
                Either::Right((Either::Right(((), _)), _)) => return Gathered::TimedOut,
            }
        }
    }

    /// Puts the replicas a read asks first at the front of `targets`: with
    /// [`ReadFanout::Quorum`], this node's own replica, then the other home
    /// replicas in turn from one read to the next, so that load and read
    /// repair spread over all of them. Stand-ins stay last.
    fn order_for_read(&self, targets: &mut [NodeId], home_alive: usize) {
        if self.config.read_fanout == ReadFanout::All {
            return;
        }
        let mut first = 0;
        if let Some(i) = targets[..home_alive]
            .iter()
            .position(|&id| id == self.local)
        {
            targets[..=i].rotate_right(1);
            first = 1;
        }
        let others = &mut targets[first..home_alive];
        if others.len() > 1 {
            let turn = self.reads.fetch_add(1, Ordering::Relaxed);
            others.rotate_left(turn % others.len());
        }
    }

    /// Reads `key`: every concurrent live value and a causal context.
    pub async fn get(&self, key: &[u8], opts: RequestOptions) -> Result<GetReply, QuorumError> {
        let r = self.required(&opts, self.config.r)?;
        let n = self.config.n;
        let home = self.placement.preference_list(key, n);
        let mut targets: Vec<NodeId> = home
            .iter()
            .copied()
            .filter(|&id| self.liveness.is_alive(id))
            .collect();
        let home_alive = targets.len();
        // Sloppy reads ask the list sloppy writes use: the stand-ins for
        // the home replicas that are down, so a read on one side of a
        // partition sees what was written on that side.
        if self.config.mode == Mode::Sloppy {
            let missing = home.len() - targets.len();
            targets.extend(
                self.placement
                    .fallbacks(key, n)
                    .filter(|&id| self.liveness.is_alive(id))
                    .take(missing),
            );
        }
        if targets.len() < r {
            return Err(QuorumError::Unavailable {
                required: r,
                alive: targets.len(),
            });
        }
        self.order_for_read(&mut targets, home_alive);
        let asked = match self.config.read_fanout {
            ReadFanout::All => targets.len(),
            ReadFanout::Quorum { .. } => r,
        };
        let speculate = match self.config.read_fanout {
            ReadFanout::Quorum { speculate_after } if asked < targets.len() => {
                Some(self.timer.sleep(speculate_after))
            }
            _ => None,
        };
        let key = Bytes::copy_from_slice(key);
        let timeout = opts.timeout.unwrap_or(self.config.timeout);
        let mut deadline = self.timer.sleep(timeout);
        let get = |&to: &NodeId| self.call(to, ReplicaRequest::Get { key: key.clone() });
        let calls = targets[..asked].iter().map(get).collect();
        let spares = targets[asked..].iter().map(get);
        let mut tracker = QuorumTracker::new(r, 0, targets.len());
        let mut answers: Vec<(NodeId, SiblingSet)> = Vec::with_capacity(targets.len());
        let mut failure: Option<QuorumError> = None;
        let outcome = Self::gather_with_spares(
            calls,
            spares,
            speculate,
            &mut tracker,
            &mut deadline,
            |node, answer| {
                match answer {
                    Ok(ReplicaResponse::Found { set }) => {
                        answers.push((node, set));
                        return true;
                    }
                    Ok(ReplicaResponse::Failed(f)) => {
                        failure.get_or_insert(QuorumError::Replica { node, failure: f });
                    }
                    Ok(_) => {
                        failure.get_or_insert(QuorumError::Protocol {
                            node,
                            request: "get",
                        });
                    }
                    Err(_) => {}
                }
                false
            },
        )
        .await;
        match outcome {
            Gathered::Reached => {}
            Gathered::TimedOut => {
                return Err(QuorumError::Timeout {
                    acked: tracker.ok(),
                    required: r,
                });
            }
            Gathered::Exhausted => {
                return Err(failure.unwrap_or(QuorumError::Unavailable {
                    required: r,
                    alive: tracker.ok(),
                }));
            }
        }
        let mut merged = SiblingSet::new();
        for (_, set) in &answers {
            merged.merge(set);
        }
        self.read_repair(&key, &home, &answers, &merged, &mut deadline)
            .await;
        let shown = merged.shown_within(self.config.state_bytes_hard_max);
        let omitted = merged.siblings().len() - shown;
        let context = if omitted == 0 {
            CausalContext::from_clock(merged.clock())
        } else {
            CausalContext::from_context(&merged.context_showing(shown))
        };
        Ok(GetReply {
            siblings: merged.siblings()[..shown]
                .iter()
                .filter_map(|s| s.value.clone())
                .collect(),
            context,
            omitted,
        })
    }

    /// Sends the merged state to home replicas that answered with less.
    /// Stand-ins in a sloppy read are not repaired: they do not own the key.
    /// When the merged state would not fit a frame, each stale replica is
    /// sent instead every answer it lacks, one by one (each fits, being a
    /// stored state); it merges what stays within its hard bound.
    async fn read_repair(
        &self,
        key: &Bytes,
        home: &[NodeId],
        answers: &[(NodeId, SiblingSet)],
        merged: &SiblingSet,
        deadline: &mut BoxFuture<'static, ()>,
    ) {
        if self.config.read_repair == ReadRepair::Off {
            return;
        }
        let fits = merged.size_bytes() <= self.config.state_bytes_hard_max;
        let repair = |to: NodeId, set: &SiblingSet| {
            self.call(
                to,
                ReplicaRequest::Replicate {
                    key: key.clone(),
                    set: set.clone(),
                },
            )
        };
        let mut calls: Vec<Call> = Vec::new();
        for (node, set) in answers {
            if !home.contains(node) || set.covers(merged) {
                continue;
            }
            if fits {
                calls.push(repair(*node, merged));
            } else {
                calls.extend(
                    answers
                        .iter()
                        .filter(|(other, theirs)| other != node && !set.covers(theirs))
                        .map(|(_, theirs)| repair(*node, theirs)),
                );
            }
        }
        if calls.is_empty() || self.config.read_repair == ReadRepair::Async {
            // Dropping the calls abandons only the answers: the transport
            // contract says the requests are already on their way.
            return;
        }
        let mut tracker = QuorumTracker::new(calls.len(), 0, calls.len());
        // Best effort within the request's deadline: a repair that fails
        // is not the reader's problem, anti-entropy will catch up.
        Self::gather(calls, &mut tracker, deadline, |_, a| {
            matches!(a, Ok(ReplicaResponse::Ack))
        })
        .await;
    }

    /// Writes `value` under `key`. With the `context` of an earlier read, the
    /// write supersedes what that read returned; without, it is a blind
    /// write and becomes a sibling of whatever is there.
    pub async fn put(
        &self,
        key: &[u8],
        value: Bytes,
        context: Option<&CausalContext>,
        opts: RequestOptions,
    ) -> Result<PutReply, QuorumError> {
        self.write(key, Some(value), context, opts).await
    }

    /// Deletes `key`: writes a tombstone that supersedes what `context` saw.
    /// Siblings written concurrently survive the delete.
    pub async fn delete(
        &self,
        key: &[u8],
        context: Option<&CausalContext>,
        opts: RequestOptions,
    ) -> Result<PutReply, QuorumError> {
        self.write(key, None, context, opts).await
    }

    async fn write(
        &self,
        key: &[u8],
        value: Option<Bytes>,
        context: Option<&CausalContext>,
        opts: RequestOptions,
    ) -> Result<PutReply, QuorumError> {
        let w = self.required(&opts, self.config.w)?;
        let seen = match context {
            Some(c) => c.decode()?,
            None => WriteContext::new(),
        };
        let n = self.config.n;
        let home = self.placement.preference_list(key, n);
        let (alive, dead): (Vec<NodeId>, Vec<NodeId>) =
            home.iter().partition(|&&id| self.liveness.is_alive(id));
        // Each target with the home replica it stands in for, if any.
        let mut targets: Vec<(NodeId, Option<NodeId>)> =
            alive.iter().map(|&id| (id, None)).collect();
        if self.config.mode == Mode::Sloppy {
            let stand_ins = self
                .placement
                .fallbacks(key, n)
                .filter(|&id| self.liveness.is_alive(id));
            targets.extend(stand_ins.zip(dead.iter().map(|&d| Some(d))));
        }
        if targets.len() < w {
            return Err(QuorumError::Unavailable {
                required: w,
                alive: targets.len(),
            });
        }
        let key = Bytes::copy_from_slice(key);
        let timeout = opts.timeout.unwrap_or(self.config.timeout);
        let mut deadline = self.timer.sleep(timeout);

        // Phase 1: one target issues the dot: a home replica if one is
        // reachable, else (sloppy mode) a stand-in, which issues it as its
        // own actor over its own stored state of the key, exactly as a
        // home replica does; the local node first within each group. A
        // stand-in's dots are as unique as a home's (its state of the key
        // stays in its data store, and a node that may have lost data takes
        // a fresh actor), and to the home replicas its write is one more
        // sibling when the hint is handed off.
        let mut issuers = targets.clone();
        let homes_alive = alive.len();
        for group in [0..homes_alive, homes_alive..issuers.len()] {
            if let Some(i) = issuers[group.clone()]
                .iter()
                .position(|&(id, _)| id == self.local)
            {
                issuers[group.start..=group.start + i].rotate_right(1);
            }
        }
        let mut written: Option<(NodeId, Option<NodeId>, SiblingSet, Dot)> = None;
        let mut maybe_applied = false;
        let mut failure: Option<QuorumError> = None;
        for &(issuer, stands_in_for) in &issuers {
            let req = ReplicaRequest::Write {
                key: key.clone(),
                context: seen.clone(),
                value: value.clone(),
                max_siblings: u32::try_from(self.config.max_siblings).unwrap_or(u32::MAX),
                // `validate` bounds it to `u32::MAX`.
                state_bytes_max: u32::try_from(self.config.state_bytes_max).unwrap_or(u32::MAX),
            };
            let call = self.call(issuer, req);
            let answer = match select(call, &mut deadline).await {
                Either::Left(((_, answer), _)) => answer,
                Either::Right(((), _)) => {
                    return Err(QuorumError::Timeout {
                        acked: 0,
                        required: w,
                    });
                }
            };
            match answer {
                Ok(ReplicaResponse::Written { set, dot }) => {
                    written = Some((issuer, stands_in_for, set, dot));
                    break;
                }
                // A refusal guarantees nothing was written only if no
                // earlier issuer may have applied the write.
                Ok(ReplicaResponse::Failed(ReplicaFailure::TooManySiblings { count, max }))
                    if !maybe_applied =>
                {
                    return Err(QuorumError::TooManySiblings { count, max });
                }
                Ok(ReplicaResponse::Failed(ReplicaFailure::StateTooLarge { bytes, max }))
                    if !maybe_applied =>
                {
                    return Err(QuorumError::StateTooLarge { bytes, max });
                }
                Ok(ReplicaResponse::Failed(f)) => {
                    failure.get_or_insert(QuorumError::Replica {
                        node: issuer,
                        failure: f,
                    });
                }
                Ok(_) => {
                    failure.get_or_insert(QuorumError::Protocol {
                        node: issuer,
                        request: "write",
                    });
                }
                // The write may have been applied: a retry on the next
                // issuer can leave one extra sibling, never lose a write.
                Err(TransportError::Lost { .. }) => maybe_applied = true,
                Err(_) => {}
            }
        }
        let Some((issuer, stands_in_for, set, dot)) = written else {
            if maybe_applied {
                return Err(QuorumError::Indeterminate {
                    acked: 0,
                    required: w,
                });
            }
            return Err(failure.unwrap_or(QuorumError::Unavailable {
                required: w,
                alive: 0,
            }));
        };

        // The harness's injected bug: acknowledge after one replica, and
        // replicate nothing. Off unless the feature is on (never by default).
        if cfg!(feature = "inject-bug-early-ack") {
            return Ok(PutReply {
                context: CausalContext::from_context(&reply_context(&seen, dot, &set)),
            });
        }

        // Phase 2: the state goes to every other target. A stand-in that
        // issued keeps it as a hint too (its own store is not where the
        // owner will find it), and that hint, not its write, is its ack.
        let calls: Vec<Call> = targets
            .iter()
            .filter(|&&(id, owner)| id != issuer || owner.is_some())
            .map(|&(to, owner)| {
                let req = match owner {
                    None => ReplicaRequest::Replicate {
                        key: key.clone(),
                        set: set.clone(),
                    },
                    Some(intended_owner) => ReplicaRequest::ReplicateHinted {
                        key: key.clone(),
                        set: set.clone(),
                        intended_owner,
                    },
                };
                self.call(to, req)
            })
            .collect();
        let mut tracker = QuorumTracker::new(w, usize::from(stands_in_for.is_none()), calls.len());
        let mut hint_full: Option<NodeId> = None;
        let outcome = Self::gather(calls, &mut tracker, &mut deadline, |node, answer| {
            match answer {
                Ok(ReplicaResponse::Ack) => return true,
                Ok(ReplicaResponse::Failed(ReplicaFailure::HintStoreFull { .. })) => {
                    hint_full.get_or_insert(node);
                }
                _ => {}
            }
            false
        })
        .await;
        let acked = tracker.ok();
        match outcome {
            Gathered::Reached => Ok(PutReply {
                context: CausalContext::from_context(&reply_context(&seen, dot, &set)),
            }),
            Gathered::TimedOut => Err(QuorumError::Timeout { acked, required: w }),
            Gathered::Exhausted => Err(match hint_full {
                Some(node) => QuorumError::HintStoreFull {
                    node,
                    acked,
                    required: w,
                },
                None => QuorumError::Indeterminate { acked, required: w },
            }),
        }
    }
}

/// The context a put answers with: exactly what the writer's own context
/// covered and the dot of its write, never the rest of the issuer's clock
/// (that holds concurrent writes the client never read, which a next write
/// with it would delete).
///
/// `seen` is what the client sent; the issuer clamped it to its clock (see
/// [`SiblingSet::update`]), and so is the reply. The new dot joins as a
/// single dot when the clock cannot hold it without also covering an
/// earlier dot of the same actor that the client never read.
fn reply_context(seen: &WriteContext, dot: Dot, set: &SiblingSet) -> WriteContext {
    let mut reply = seen.clamped_to(set.clock());
    reply.insert(dot);
    reply
}

/// What one replay round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Hints the owner acknowledged and that were removed.
    pub delivered: usize,
    /// Hints the owner acknowledged but that changed meanwhile; they stay
    /// for the next round.
    pub kept: usize,
    /// Hints not acknowledged (owner down, slow or failing).
    pub failed: usize,
}

/// Hands the hints a node keeps back to their owners.
///
/// The node calls [`replay_to`](Self::replay_to) when gossip reports an
/// owner alive again, and may call [`replay_alive`](Self::replay_alive)
/// periodically to catch anything missed. A hint is removed only after its
/// owner acknowledged it, so a crash mid-replay delivers it again, which is
/// harmless: merging a state twice changes nothing.
pub struct HintReplayer {
    replica: Arc<Replica>,
    transport: Arc<dyn ReplicaTransport>,
    timer: Arc<dyn Timer>,
    timeout: Duration,
    batch_max: usize,
}

impl std::fmt::Debug for HintReplayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HintReplayer")
            .field("replica", &self.replica.id())
            .field("timeout", &self.timeout)
            .field("batch_max", &self.batch_max)
            .finish_non_exhaustive()
    }
}

impl HintReplayer {
    /// A replayer of `replica`'s hints; each round delivers at most
    /// `batch_max` hints per owner (at least 1) and waits at most
    /// `timeout` for them.
    pub fn new(
        replica: Arc<Replica>,
        transport: Arc<dyn ReplicaTransport>,
        timer: Arc<dyn Timer>,
        timeout: Duration,
        batch_max: usize,
    ) -> Self {
        Self {
            replica,
            transport,
            timer,
            timeout,
            batch_max: batch_max.max(1),
        }
    }

    /// Delivers up to one batch of the hints held for `owner`.
    pub async fn replay_to(&self, owner: NodeId) -> Result<ReplayReport, QuorumError> {
        let hints = self
            .replica
            .hints()
            .pending(owner, self.batch_max)
            .map_err(|failure| QuorumError::Replica {
                node: self.replica.id(),
                failure,
            })?;
        let mut report = ReplayReport::default();
        if hints.is_empty() {
            return Ok(report);
        }
        let mut pending: FuturesUnordered<_> = hints
            .into_iter()
            .map(|(key, set)| {
                let fut = self.transport.call(
                    owner,
                    ReplicaRequest::Replicate {
                        key: key.clone(),
                        set: set.clone(),
                    },
                );
                async move { (key, set, fut.await) }
            })
            .collect();
        let mut deadline = self.timer.sleep(self.timeout);
        loop {
            match select(pending.next(), &mut deadline).await {
                Either::Left((Some((key, set, answer)), _)) => {
                    if !matches!(answer, Ok(ReplicaResponse::Ack)) {
                        report.failed += 1;
                        continue;
                    }
                    let removed = self
                        .replica
                        .hints()
                        .remove_delivered(owner, &key, &set)
                        .map_err(|failure| QuorumError::Replica {
                            node: self.replica.id(),
                            failure,
                        })?;
                    if removed {
                        report.delivered += 1;
                    } else {
                        report.kept += 1;
                    }
                }
                Either::Left((None, _)) => break,
                Either::Right(((), _)) => {
                    report.failed += pending.len();
                    break;
                }
            }
        }
        Ok(report)
    }

    /// Replays the hints of every owner that `liveness` reports alive.
    pub async fn replay_alive(&self, liveness: &dyn Liveness) -> Result<ReplayReport, QuorumError> {
        let owners = self.replica.hints().owners();
        let mut total = ReplayReport::default();
        for owner in owners.into_iter().filter(|&o| liveness.is_alive(o)) {
            let r = self.replay_to(owner).await?;
            total.delivered += r.delivered;
            total.kept += r.kept;
            total.failed += r.failed;
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::in_process::{InProcessTransport, NoTimer};
    use crate::placement::StaticRing;
    use crate::replica::HintLimits;
    use crate::transport::AllAlive;

    fn assert_send<T: Send>(_: &T) {}

    /// The node spawns these futures on a multi-threaded runtime, so they
    /// must be `Send`; this fails to compile if a change breaks that.
    #[test]
    fn request_futures_are_send() {
        let replica = Arc::new(Replica::in_memory(NodeId(1), HintLimits::default()));
        let transport = Arc::new(InProcessTransport::new([replica.clone()]));
        let c = Coordinator::new(
            NodeId(1),
            QuorumConfig {
                n: 1,
                r: 1,
                w: 1,
                ..QuorumConfig::default()
            },
            Arc::new(StaticRing::new([NodeId(1)])),
            Arc::new(AllAlive),
            transport.clone(),
            Arc::new(NoTimer),
        )
        .unwrap();
        let opts = RequestOptions::default();
        let get = c.get(b"k", opts);
        assert_send(&get);
        let put = c.put(b"k", Bytes::from_static(b"v"), None, opts);
        assert_send(&put);
        let delete = c.delete(b"k", None, opts);
        assert_send(&delete);
        let replayer = HintReplayer::new(
            replica,
            transport,
            Arc::new(NoTimer),
            DEFAULT_TIMEOUT_FOR_TEST,
            1,
        );
        let replay = replayer.replay_to(NodeId(2));
        assert_send(&replay);
        let replay_all = replayer.replay_alive(&AllAlive);
        assert_send(&replay_all);
        assert!(futures::executor::block_on(put).is_ok());
        assert_eq!(
            futures::executor::block_on(get).unwrap().siblings,
            vec![Bytes::from_static(b"v")]
        );
    }

    const DEFAULT_TIMEOUT_FOR_TEST: Duration = Duration::from_secs(1);

    #[test]
    fn causal_context_round_trips_and_checks_its_bounds() {
        let clock: VersionVector = [(NodeId(1), 3), (NodeId(2), 1)].into_iter().collect();
        let ctx = CausalContext::from_clock(&clock);
        assert_eq!(ctx.as_bytes()[0], CONTEXT_FORMAT_VERSION);
        let back = CausalContext::from_bytes(ctx.as_bytes().clone());
        assert_eq!(back.decode().unwrap(), WriteContext::from(clock.clone()));
        assert_eq!(
            CausalContext::default().decode().unwrap(),
            WriteContext::new()
        );

        let mut dotted = WriteContext::from(clock.clone());
        dotted.insert(Dot {
            actor: NodeId(1),
            counter: 5,
        });
        let back =
            CausalContext::from_bytes(CausalContext::from_context(&dotted).as_bytes().clone());
        assert_eq!(back.decode().unwrap(), dotted);

        // Contexts handed out before format 2 still read as their clock.
        let mut v1 = vec![1u8];
        v1.extend(postcard::to_allocvec(&clock).unwrap());
        assert_eq!(
            CausalContext::from_bytes(v1).decode().unwrap(),
            WriteContext::from(clock)
        );

        let mut bad = ctx.as_bytes().to_vec();
        bad[0] = 7;
        assert!(matches!(
            CausalContext::from_bytes(bad).decode(),
            Err(QuorumError::InvalidContext { .. })
        ));
        let huge = vec![CONTEXT_FORMAT_VERSION; CONTEXT_BYTES_MAX + 1];
        assert!(matches!(
            CausalContext::from_bytes(huge).decode(),
            Err(QuorumError::InvalidContext { .. })
        ));
        let truncated = &ctx.as_bytes()[..ctx.as_bytes().len() - 1];
        assert!(
            CausalContext::from_bytes(truncated.to_vec())
                .decode()
                .is_err()
        );
    }
}
