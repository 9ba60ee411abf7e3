//! Composition: builds a node from its configuration and runs it.
//!
//! ```text
//!  clients ─┐                           ┌─> Coordinator ──> ReplicaLink ──┐
//!           ├─> server (TCP front) ─────┤                                 ├─> TcpTransport ─> peers
//!  peers ───┘                           ├─> Replica <── local calls ──────┘
//!                                       └─> Membership (gossip, ring, liveness)
//! ```
//!
//! Everything below the server is reached through trait objects:
//! `Arc<dyn Storage>` for data and hints, and kv-quorum's `Placement`,
//! `Liveness`, `ReplicaTransport` and `Timer` seams.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio::sync::watch;

use kv_gossip::GossipConfig;
use kv_quorum::{
    Consistency as QConsistency, Coordinator, HintLimits, HintReplayer, QuorumConfig, QuorumError,
    ReadRepair, Replica, RequestOptions,
};
use kv_ring::RingConfig;
use kv_types::{MonotonicClock, NodeId, Storage};
use kv_wire::ClusterSettings;
use kv_wire::client::{
    Consistency, ErrorCode, ErrorReply, MemberStatus, Request, Response, StatusReply,
};
use kv_wire::peer::{PeerRequest, PeerResponse};

use crate::anti_entropy::{self, AntiEntropy, IndexedStorage, MerkleIndex};
use crate::config::{Config, Durability, Mode, ReadFanout};
use crate::identity;
use crate::membership::{self, GossipLiveness, Membership, RingPlacement};
use crate::server::{self, Service};
use crate::transport::{ReplicaLink, TcpTransport, TokioTimer};

/// How often hints are offered to every live owner, besides when gossip
/// reports an owner back up.
pub const HINT_REPLAY_INTERVAL: Duration = Duration::from_secs(2);
/// Bound on the hint store's memtable, in MiB.
pub const HINT_MEMTABLE_MB_MAX: usize = 16;
/// Hints delivered per owner per round.
pub const HINT_REPLAY_BATCH: usize = 1024;

/// Runs a node until SIGTERM or Ctrl-C.
pub async fn run(config: Config) -> Result<()> {
    let dir = &config.data_dir;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    let _lock = identity::lock(dir)?;
    let id = identity::node_id(dir)?;
    let generation = identity::next_generation(dir)?;
    let (actor, actor_change) =
        identity::actor(dir, generation, config.durability == Durability::Sync)?;
    match &actor_change {
        Some(why) => tracing::warn!(%actor, reason = %why, "issuing dots as a new actor"),
        None => tracing::debug!(%actor, "issuing dots as the same actor as the last run"),
    }

    let stored = open_storage(
        &dir.join("data"),
        config.durability,
        config.memtable_mb,
        false,
    )?;
    // The Merkle index costs a little on every write; without anti-entropy
    // it is left empty and the store is used as it is.
    let anti_entropy_on = config.anti_entropy_interval_ms > 0;
    let index = Arc::new(if anti_entropy_on {
        MerkleIndex::build(&*stored).context("cannot index the data store for anti-entropy")?
    } else {
        MerkleIndex::disabled()
    });
    let data: Arc<dyn Storage> = if anti_entropy_on {
        Arc::new(IndexedStorage::new(stored, Arc::clone(&index)))
    } else {
        stored
    };
    // A delivered hint leaves a removal marker (a tombstone without
    // metadata) that nothing needs once it reaches the oldest table.
    let hint_store = open_storage(
        &dir.join("hints"),
        config.durability,
        hint_memtable_mb(config.memtable_mb),
        true,
    )?;
    let hints: Arc<dyn Storage> = hint_store.clone();
    let replica = Arc::new(
        Replica::new(
            id,
            Arc::clone(&data),
            Arc::clone(&hints),
            HintLimits::default(),
        )
        .context("cannot open the hint store")?
        .with_actor(actor)
        .with_state_bytes_hard_max(config.limits.state_bytes_hard_max()),
    );

    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let resp_listener = match config.resp_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen for RESP on {addr}"))?,
        ),
        None => None,
    };
    let advertise = match &config.advertise {
        a if a.ends_with(":0") => listener.local_addr()?.to_string(),
        a => a.clone(),
    };

    let blocking_io = config.durability == Durability::Sync;
    // N and the ring's shape are the cluster's, not this node's: a peer
    // that runs with others is refused at the handshake, both ways.
    let ring_config = RingConfig::default();
    let settings = membership::cluster_settings(config.n, &ring_config);
    let transport = Arc::new(TcpTransport::new(
        id,
        &config.cluster,
        settings.clone(),
        Arc::clone(&replica),
        config.limits.frame_len_max,
        config.limits.request_timeout(),
        blocking_io,
    ));
    transport.set_addr(id, &advertise);

    let interval = Duration::from_millis(config.gossip_interval_ms);
    let mut gossip = GossipConfig::new(id, generation, advertise.clone());
    gossip.client_addr.clone_from(&advertise);
    gossip.zone = config.zone.clone().unwrap_or_default();
    gossip.weight = config.weight;
    gossip.settings = config.summary();
    gossip.seeds.clone_from(&config.seeds);
    gossip.interval = interval;
    gossip.detector = kv_gossip::default_detector(interval);
    let membership = Arc::new(Membership::new(
        gossip,
        ring_config,
        Arc::new(MonotonicClock::new()),
        Arc::clone(&transport),
    )?);

    let link: Arc<dyn kv_quorum::ReplicaTransport> = Arc::new(ReplicaLink(Arc::clone(&transport)));
    let quorum = QuorumConfig {
        n: usize::from(config.n),
        r: usize::from(config.r),
        w: usize::from(config.w),
        mode: match config.mode {
            Mode::Strict => kv_quorum::Mode::Strict,
            Mode::Sloppy => kv_quorum::Mode::Sloppy,
        },
        timeout: config.limits.request_timeout(),
        state_bytes_max: config.limits.state_bytes_max(),
        state_bytes_hard_max: config.limits.state_bytes_hard_max(),
        read_repair: ReadRepair::Async,
        read_fanout: match config.read_fanout {
            ReadFanout::Quorum => kv_quorum::ReadFanout::Quorum {
                speculate_after: Duration::from_millis(config.speculative_retry_ms),
            },
            ReadFanout::All => kv_quorum::ReadFanout::All,
        },
        ..QuorumConfig::default()
    };
    let link_for_repair = Arc::clone(&link);
    let coordinator = Arc::new(Coordinator::new(
        id,
        quorum,
        Arc::new(RingPlacement(Arc::clone(&membership))),
        Arc::new(GossipLiveness(Arc::clone(&membership))),
        Arc::clone(&link),
        Arc::new(TokioTimer),
    )?);
    let replayer = Arc::new(HintReplayer::new(
        Arc::clone(&replica),
        link,
        Arc::new(TokioTimer),
        config.limits.request_timeout(),
        HINT_REPLAY_BATCH,
    ));

    let (stop_tx, stop) = watch::channel(false);
    let gossip_task = tokio::spawn(gossip_loop(
        Arc::clone(&membership),
        Arc::clone(&replayer),
        HintHousekeeping::new(hint_store, Arc::clone(&replica)),
        interval,
        stop.clone(),
    ));
    let (joined_tx, joined) = watch::channel(false);
    let service = Arc::new(NodeService {
        id,
        joined,
        index: Arc::clone(&index),
        config: config.clone(),
        coordinator,
        membership: Arc::clone(&membership),
        transport: Arc::clone(&transport),
        replica: Arc::clone(&replica),
        replayer,
    });
    tracing::info!(
        node = %id, generation, listen = %config.listen, %advertise,
        data_dir = %dir.display(), n = config.n, r = config.r, w = config.w,
        mode = ?config.mode, durability = ?config.durability,
        "node started"
    );
    // The RESP front door answers through the same service; it may start
    // before the join, since client requests wait for it.
    let resp_server = resp_listener.map(|listener| {
        tracing::info!(resp_listen = ?config.resp_listen, "RESP front door listening");
        let service: Arc<dyn Service> = service.clone();
        tokio::spawn(crate::resp::serve(
            listener,
            config.limits.clone(),
            service,
            stop.clone(),
        ))
    });
    let server = tokio::spawn(server::serve(
        listener,
        id,
        config.cluster.clone(),
        settings.clone(),
        config.limits.clone(),
        service,
        stop.clone(),
    ));

    // The server runs before the join: the seeds answer our gossip by
    // connecting back to us.
    check_seeds(&transport, &config.seeds, &settings).await?;
    membership
        .join(
            dir,
            config.weight,
            config.zone.as_deref(),
            !config.seeds.is_empty(),
            interval,
        )
        .await?;
    let _ = joined_tx.send(true);

    let anti_entropy = anti_entropy_on.then(|| {
        let ae = AntiEntropy {
            me: id,
            index,
            n: usize::from(config.n),
            membership: Arc::clone(&membership),
            transport,
            link: link_for_repair,
            replica,
            timeout: config.limits.request_timeout(),
        };
        let every = Duration::from_millis(config.anti_entropy_interval_ms);
        tokio::spawn(anti_entropy::run(ae, every, stop.clone()))
    });

    shutdown_signal().await;
    tracing::info!("shutting down: no new connections; finishing requests in flight");
    let _ = stop_tx.send(true);
    let _ = server.await;
    if let Some(task) = resp_server {
        let _ = task.await;
    }
    let _ = gossip_task.await;
    if let Some(task) = anti_entropy {
        let _ = task.await;
    }
    data.sync().context("final sync of the data store")?;
    hints.sync().context("final sync of the hint store")?;
    identity::stopped_cleanly(dir)?;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Refuses to join a cluster whose seeds will not have this node: another
/// cluster name, another protocol, other [`ClusterSettings`]. A seed that
/// cannot be reached proves nothing and is left to gossip; one that refuses
/// would go on refusing, and a node that joined anyway would place and count
/// replicas unlike its peers.
async fn check_seeds(
    transport: &TcpTransport,
    seeds: &[String],
    settings: &ClusterSettings,
) -> Result<()> {
    for seed in seeds {
        match transport.probe(seed).await {
            Ok(peer) => tracing::debug!(%seed, %peer, "seed accepts this node"),
            Err(kv_client::ClientError::Refused { reason, .. }) => {
                anyhow::bail!(
                    "seed {seed} refuses this node ({settings}): {reason}; \
                     start every node of the cluster with the same --n"
                );
            }
            Err(e) => tracing::info!(%seed, error = %e, "seed not reachable yet"),
        }
    }
    Ok(())
}

/// The hint store's memtable: as large as the data's, up to
/// [`HINT_MEMTABLE_MB_MAX`], so `--memtable-mb` does not double the node's
/// memory for a store that is usually empty.
fn hint_memtable_mb(data_memtable_mb: usize) -> usize {
    data_memtable_mb.min(HINT_MEMTABLE_MB_MAX)
}

fn open_storage(
    dir: &std::path::Path,
    durability: Durability,
    memtable_mb: usize,
    drop_bare_tombstones: bool,
) -> Result<Arc<kv_storage::LsmStorage>> {
    let durability = match durability {
        Durability::Sync => kv_storage::Durability::Sync,
        Durability::Periodic(every) => kv_storage::Durability::Periodic(every),
        Durability::None => kv_storage::Durability::None,
    };
    let options = kv_storage::Options::default()
        .durability(durability)
        .memtable_bytes(memtable_mb.saturating_mul(1 << 20))
        .drop_bare_tombstones(drop_bare_tombstones);
    let storage = kv_storage::LsmStorage::open(dir, options)
        .with_context(|| format!("cannot open storage in {}", dir.display()))?;
    Ok(Arc::new(storage))
}

/// Clears the hint store of the markers delivered hints leave: once every
/// hint is delivered, a full compaction of the store drops them all, so
/// replays stop scanning past them. The compaction runs on a blocking
/// thread of its own, one at a time, so gossip rounds never wait for it.
struct HintHousekeeping {
    store: Arc<kv_storage::LsmStorage>,
    replica: Arc<Replica>,
    /// Hints delivered as of the last successful compaction.
    delivered_then: Arc<AtomicU64>,
    running: Arc<AtomicBool>,
}

impl HintHousekeeping {
    fn new(store: Arc<kv_storage::LsmStorage>, replica: Arc<Replica>) -> Self {
        Self {
            store,
            replica,
            delivered_then: Arc::default(),
            running: Arc::default(),
        }
    }

    fn tidy(&self) {
        let stats = self.replica.hints().stats();
        if stats.count > 0
            || stats.delivered_total == self.delivered_then.load(Ordering::Relaxed)
            || self.running.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let store = Arc::clone(&self.store);
        let delivered_then = Arc::clone(&self.delivered_then);
        let running = Arc::clone(&self.running);
        tokio::task::spawn_blocking(move || {
            match store.compact(0) {
                Ok(()) => {
                    delivered_then.store(stats.delivered_total, Ordering::Relaxed);
                    tracing::info!(
                        delivered = stats.delivered_total,
                        "every hint delivered; hint store compacted"
                    );
                }
                Err(e) => tracing::warn!(error = %e, "hint store compaction failed"),
            }
            running.store(false, Ordering::Release);
        });
    }
}

/// Gossip rounds, and hint replay when owners come back.
async fn gossip_loop(
    membership: Arc<Membership>,
    replayer: Arc<HintReplayer>,
    housekeeping: HintHousekeeping,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut replay_ticker = tokio::time::interval(HINT_REPLAY_INTERVAL);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                for node in membership.tick() {
                    spawn_replay(&replayer, node);
                }
            }
            _ = replay_ticker.tick() => {
                let liveness = GossipLiveness(Arc::clone(&membership));
                if let Err(e) = replayer.replay_alive(&liveness).await {
                    tracing::warn!(error = %e, "hint replay failed");
                }
                housekeeping.tidy();
            }
            () = crate::server::stopped(&mut stop) => return,
        }
    }
}

fn spawn_replay(replayer: &Arc<HintReplayer>, node: NodeId) {
    let replayer = Arc::clone(replayer);
    tokio::spawn(async move {
        match replayer.replay_to(node).await {
            Ok(report) if report.delivered + report.failed > 0 => {
                tracing::info!(%node, ?report, "hints replayed");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(%node, error = %e, "hint replay failed"),
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch SIGTERM; only Ctrl-C stops the node");
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// The node as the server sees it.
#[derive(Clone)]
struct NodeService {
    id: NodeId,
    /// True once this node has its place on the ring; client requests wait
    /// for it (peers are served from the start, since the join needs them).
    joined: watch::Receiver<bool>,
    index: Arc<MerkleIndex>,
    config: Config,
    coordinator: Arc<Coordinator>,
    membership: Arc<Membership>,
    transport: Arc<TcpTransport>,
    replica: Arc<Replica>,
    replayer: Arc<HintReplayer>,
}

impl Service for NodeService {
    fn client(&self, req: Request) -> BoxFuture<'static, Response> {
        if !*self.joined.borrow() && !matches!(req, Request::Status) {
            let mut joined = self.joined.clone();
            let wait = self.config.limits.request_timeout();
            let this = self.clone();
            return Box::pin(async move {
                let ready = tokio::time::timeout(wait, async {
                    // The guard is dropped at once, so this future stays Send.
                    joined.wait_for(|j| *j).await.is_ok()
                })
                .await;
                if ready != Ok(true) {
                    return Response::Error(ErrorReply {
                        code: ErrorCode::Unavailable,
                        message: "this node is still joining the cluster; try another node"
                            .to_owned(),
                    });
                }
                this.client(req).await
            });
        }
        let coordinator = Arc::clone(&self.coordinator);
        match req {
            Request::Get { key, consistency } => Box::pin(async move {
                match coordinator.get(&key, options(consistency)).await {
                    Ok(reply) if reply.siblings.is_empty() => Response::NotFound {
                        context: reply.context.as_bytes().clone(),
                    },
                    Ok(reply) => Response::Value {
                        siblings: reply.siblings,
                        context: reply.context.as_bytes().clone(),
                        // Far below u32::MAX: every sibling of the replicas'
                        // frame-sized states takes at least 24 bytes.
                        omitted: u32::try_from(reply.omitted).unwrap_or(u32::MAX),
                    },
                    Err(e) => error_response(&e),
                }
            }),
            Request::Put {
                key,
                value,
                context,
                consistency,
            } => Box::pin(write(coordinator, key, Some(value), context, consistency)),
            Request::Delete {
                key,
                context,
                consistency,
            } => Box::pin(write(coordinator, key, None, context, consistency)),
            Request::Status => {
                let status = self.status();
                Box::pin(std::future::ready(Response::Status(status)))
            }
            Request::ReplicaDigests { key } => Box::pin(self.replica_digests(key)),
        }
    }

    fn peer(&self, req: PeerRequest) -> BoxFuture<'static, PeerResponse> {
        match req {
            PeerRequest::Replica(req) => {
                let transport = Arc::clone(&self.transport);
                Box::pin(async move { PeerResponse::Replica(transport.local(req).await) })
            }
            PeerRequest::Gossip(payload) => {
                for node in self.membership.handle(&payload) {
                    spawn_replay(&self.replayer, node);
                }
                Box::pin(std::future::ready(PeerResponse::GossipAck))
            }
            PeerRequest::Merkle(req) => Box::pin(std::future::ready(self.index.respond(&req))),
        }
    }
}

impl NodeService {
    /// Diagnostic: asks each of the key's N home replicas for its local
    /// state with a plain replica read (no read repair) and answers a
    /// digest of each. Bounded: N requests, each within the request
    /// timeout.
    fn replica_digests(&self, key: Bytes) -> BoxFuture<'static, Response> {
        use kv_quorum::{Placement, ReplicaRequest, ReplicaResponse, ReplicaTransport};
        let home = RingPlacement(Arc::clone(&self.membership))
            .preference_list(&key, usize::from(self.config.n));
        let link = ReplicaLink(Arc::clone(&self.transport));
        let timeout = self.config.limits.request_timeout();
        let calls: Vec<_> = home
            .into_iter()
            .map(|node| {
                let call = link.call(node, ReplicaRequest::Get { key: key.clone() });
                async move {
                    let answer = tokio::time::timeout(timeout, call).await;
                    let (digest, error) = match answer {
                        Ok(Ok(ReplicaResponse::Found { set })) => match postcard::to_stdvec(&set) {
                            Ok(bytes) => (Some(*blake3::hash(&bytes).as_bytes()), None),
                            Err(e) => (None, Some(format!("cannot encode the state: {e}"))),
                        },
                        Ok(Ok(other)) => (None, Some(format!("unexpected answer: {other:?}"))),
                        Ok(Err(e)) => (None, Some(e.to_string())),
                        Err(_) => (None, Some(format!("no answer within {timeout:?}"))),
                    };
                    kv_wire::client::ReplicaDigest {
                        node,
                        digest,
                        error,
                    }
                }
            })
            .collect();
        Box::pin(async move { Response::ReplicaDigests(futures::future::join_all(calls).await) })
    }

    fn status(&self) -> StatusReply {
        let ring = self.membership.ring();
        let hints = self.replica.hints().stats();
        let members = self
            .membership
            .members()
            .into_iter()
            .map(|m| MemberStatus {
                node: m.id,
                client_addr: m.meta.client_addr.clone(),
                zone: (!m.meta.zone.is_empty()).then(|| m.meta.zone.clone()),
                weight: m.meta.weight,
                state: format!("{:?}", m.state()).to_lowercase(),
                ring_share_ppm: ring
                    .share(m.id)
                    .map_or(0, |s| (s * 1_000_000.0).round() as u32),
                settings: m.meta.settings.clone(),
            })
            .collect();
        StatusReply {
            node: Some(self.id),
            cluster: self.config.cluster.clone(),
            n: self.config.n,
            r: self.config.r,
            w: self.config.w,
            mode: self.config.mode.name().to_owned(),
            members,
            hints_pending: hints.count as u64,
            hints_rejected_total: hints.rejected_total,
            hints_delivered_total: hints.delivered_total,
            merkle_keys: self.index.len() as u64,
        }
    }
}

/// A put (`value` is `Some`) or a delete, answered with the new context.
async fn write(
    coordinator: Arc<Coordinator>,
    key: Bytes,
    value: Option<Bytes>,
    context: Option<Bytes>,
    consistency: Option<Consistency>,
) -> Response {
    let context = context.map(kv_quorum::CausalContext::from_bytes);
    let opts = options(consistency);
    let written = match value {
        Some(value) => coordinator.put(&key, value, context.as_ref(), opts).await,
        None => coordinator.delete(&key, context.as_ref(), opts).await,
    };
    match written {
        Ok(reply) => Response::Written {
            context: reply.context.as_bytes().clone(),
        },
        Err(e) => error_response(&e),
    }
}

fn options(consistency: Option<Consistency>) -> RequestOptions {
    RequestOptions {
        consistency: consistency.map(|c| match c {
            Consistency::One => QConsistency::One,
            Consistency::Quorum => QConsistency::Quorum,
            Consistency::All => QConsistency::All,
            Consistency::Count(k) => QConsistency::Explicit(k),
        }),
        timeout: None,
    }
}

fn error_response(e: &QuorumError) -> Response {
    let code = match e {
        QuorumError::Unavailable { .. } => ErrorCode::Unavailable,
        QuorumError::Indeterminate { .. } => ErrorCode::Indeterminate,
        QuorumError::Timeout { .. } => ErrorCode::Timeout,
        QuorumError::TooManySiblings { .. } | QuorumError::StateTooLarge { .. } => {
            ErrorCode::TooManySiblings
        }
        QuorumError::InvalidConsistency { .. } | QuorumError::InvalidContext { .. } => {
            ErrorCode::InvalidRequest
        }
        // The issuer may already hold the write: not "nothing was written".
        QuorumError::HintStoreFull { .. } => ErrorCode::Indeterminate,
        QuorumError::Storage { .. } | QuorumError::Replica { .. } => ErrorCode::Storage,
        _ => ErrorCode::Internal,
    };
    Response::Error(ErrorReply {
        code,
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kv_quorum::ReplicaFailure;

    /// The hint store follows a small data memtable but never grows past its
    /// own bound, whatever `--memtable-mb` says.
    #[test]
    fn hint_store_memtable_is_bounded() {
        assert_eq!(hint_memtable_mb(4), 4);
        assert_eq!(hint_memtable_mb(HINT_MEMTABLE_MB_MAX), HINT_MEMTABLE_MB_MAX);
        assert_eq!(hint_memtable_mb(1024), HINT_MEMTABLE_MB_MAX);
    }

    /// Unavailable, InvalidRequest and TooManySiblings tell a client that
    /// nothing was written; no error that may have written may map to them.
    #[test]
    fn only_errors_that_wrote_nothing_say_so() {
        let node = NodeId(7);
        let errors = [
            QuorumError::Unavailable {
                required: 2,
                alive: 1,
            },
            QuorumError::Indeterminate {
                acked: 1,
                required: 2,
            },
            QuorumError::Timeout {
                acked: 1,
                required: 2,
            },
            QuorumError::TooManySiblings { count: 9, max: 8 },
            QuorumError::StateTooLarge { bytes: 9, max: 8 },
            QuorumError::InvalidConsistency { requested: 4, n: 3 },
            QuorumError::InvalidContext { detail: "x".into() },
            QuorumError::HintStoreFull {
                node,
                acked: 1,
                required: 2,
            },
            QuorumError::Replica {
                node,
                failure: ReplicaFailure::Storage { detail: "x".into() },
            },
            QuorumError::Storage { detail: "x".into() },
        ];
        for e in &errors {
            let Response::Error(reply) = error_response(e) else {
                panic!("{e:?} is not an error reply");
            };
            let claims_nothing_written = matches!(
                reply.code,
                ErrorCode::Unavailable | ErrorCode::InvalidRequest | ErrorCode::TooManySiblings
            );
            assert!(
                !claims_nothing_written || e.nothing_written(),
                "{e:?} may have written but answers {:?}",
                reply.code
            );
            if e.nothing_written() {
                assert!(claims_nothing_written, "{e:?} answers {:?}", reply.code);
            }
        }
    }
}
