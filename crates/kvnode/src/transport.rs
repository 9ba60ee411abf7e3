//! `TcpTransport`: replica calls and gossip between nodes over pooled,
//! pipelined TCP connections.
//!
//! One connection per peer address is opened on first use and reused by
//! every request to that peer. A peer that could not be reached is not
//! dialled again for [`REDIAL_BACKOFF`], unless gossip reports it up sooner:
//! requests to it fail at once with `Unreachable` instead of each waiting out
//! a connect timeout, so a dead peer costs a fast error, not a hang, and a
//! restarted one is used as soon as it is known to be back. Calls to this node itself go straight
//! to the local replica, without serialization.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::sync::{OnceCell, Semaphore};

use kv_client::{ClientConfig, ClientError, Pipeline};
use kv_quorum::{Replica, ReplicaRequest, ReplicaResponse, ReplicaTransport, TransportError};
use kv_types::NodeId;
use kv_wire::peer::{PeerRequest, PeerResponse};
use kv_wire::{ClusterSettings, Hello};

/// How long a peer that could not be reached is left alone.
pub const REDIAL_BACKOFF: Duration = Duration::from_millis(500);
/// Time allowed to connect and handshake with a peer.
pub const PEER_CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);
/// Bound on gossip messages being sent at once; more are dropped, which
/// gossip tolerates.
pub const GOSSIP_SENDS_MAX: usize = 64;
/// Requests in flight on one peer connection.
pub const PEER_IN_FLIGHT_MAX: usize = 4096;

type PeerConn = Pipeline<PeerRequest, PeerResponse>;

/// A pooled connection slot: connected once, shared by all callers.
#[derive(Default)]
struct Slot {
    conn: OnceCell<Arc<PeerConn>>,
}

/// Replica and gossip transport over TCP.
pub struct TcpTransport {
    local: NodeId,
    replica: Arc<Replica>,
    config: ClientConfig,
    /// The hello every connection to a peer opens with.
    hello: Hello,
    request_timeout: Duration,
    /// Where each node listens, learned from gossip.
    addrs: RwLock<HashMap<NodeId, String>>,
    pool: Mutex<HashMap<String, Arc<Slot>>>,
    /// Peers that recently failed to connect, and when.
    failed: Mutex<HashMap<String, Instant>>,
    gossip_sends: Arc<Semaphore>,
    /// Whether replica work runs on blocking threads (fsync per write).
    blocking_io: bool,
}

impl TcpTransport {
    /// A transport for node `local` in `cluster`, running with `settings`,
    /// answering calls to itself with `replica`.
    pub fn new(
        local: NodeId,
        cluster: &str,
        settings: ClusterSettings,
        replica: Arc<Replica>,
        frame_len_max: usize,
        request_timeout: Duration,
        blocking_io: bool,
    ) -> Self {
        let mut config = ClientConfig::new(Vec::<String>::new()).cluster(cluster);
        config.connect_timeout = PEER_CONNECT_TIMEOUT;
        config.request_timeout = request_timeout;
        config.in_flight_max = PEER_IN_FLIGHT_MAX;
        config.frame_len_max = frame_len_max;
        Self {
            local,
            replica,
            config,
            hello: Hello::peer(cluster, local, settings),
            request_timeout,
            addrs: RwLock::default(),
            pool: Mutex::default(),
            failed: Mutex::default(),
            gossip_sends: Arc::new(Semaphore::new(GOSSIP_SENDS_MAX)),
            blocking_io,
        }
    }

    /// Records where `node` listens.
    pub fn set_addr(&self, node: NodeId, addr: &str) {
        let mut addrs = self.addrs.write().unwrap_or_else(|e| e.into_inner());
        if addrs.get(&node).map(String::as_str) != Some(addr) {
            addrs.insert(node, addr.to_owned());
        }
    }

    /// Gossip reports `node` up (back, or restarted): forget that dialling
    /// it failed, so the next call dials at once instead of waiting out
    /// [`REDIAL_BACKOFF`].
    pub fn peer_up(&self, node: NodeId) {
        if let Some(addr) = self.addr_of(node) {
            lock(&self.failed).remove(&addr);
        }
    }

    /// Opens a connection to `addr` and closes it again: the peer's id, or
    /// why it would not have us (another cluster, other settings).
    pub async fn probe(&self, addr: &str) -> Result<NodeId, ClientError> {
        let conn: PeerConn = Pipeline::open(addr, &self.config, self.hello.clone()).await?;
        Ok(conn.peer())
    }

    fn addr_of(&self, node: NodeId) -> Option<String> {
        self.addrs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&node)
            .cloned()
    }

    /// The pooled connection to `addr`, dialling it if needed.
    async fn connection(self: &Arc<Self>, addr: &str) -> Result<Arc<PeerConn>, ClientError> {
        if let Some(at) = lock(&self.failed).get(addr)
            && at.elapsed() < REDIAL_BACKOFF
        {
            return Err(ClientError::NoNodeReachable {
                tried: vec![(addr.to_owned(), "recently unreachable".to_owned())],
            });
        }
        let slot = Arc::clone(lock(&self.pool).entry(addr.to_owned()).or_default());
        let conn = slot
            .conn
            .get_or_try_init(|| async {
                Pipeline::open(addr, &self.config, self.hello.clone())
                    .await
                    .map(Arc::new)
            })
            .await;
        match conn {
            Ok(conn) if conn.is_open() => Ok(Arc::clone(conn)),
            Ok(_) => {
                // Closed since: forget it so the next call dials again.
                self.forget(addr, &slot);
                Err(ClientError::ConnectionLost {
                    addr: addr.to_owned(),
                    maybe_applied: false,
                })
            }
            Err(e) => {
                lock(&self.failed).insert(addr.to_owned(), Instant::now());
                self.forget(addr, &slot);
                Err(e)
            }
        }
    }

    fn forget(&self, addr: &str, slot: &Arc<Slot>) {
        let mut pool = lock(&self.pool);
        if pool.get(addr).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            pool.remove(addr);
        }
    }

    /// An open pooled connection to `addr`, if there is one already.
    fn pooled(&self, addr: &str) -> Option<Arc<PeerConn>> {
        let pool = lock(&self.pool);
        let conn = pool.get(addr)?.conn.get()?;
        conn.is_open().then(|| Arc::clone(conn))
    }

    /// Dials `addr` if needed, then exchanges `req` with node `to`.
    async fn call_remote(
        self: Arc<Self>,
        to: NodeId,
        addr: String,
        req: ReplicaRequest,
    ) -> Result<ReplicaResponse, TransportError> {
        let conn = self
            .connection(&addr)
            .await
            .map_err(|_| TransportError::Unreachable { node: to })?;
        check_peer(to, &addr, &conn)?;
        replica_answer(
            to,
            conn.call(PeerRequest::Replica(req), self.request_timeout)
                .await,
        )
    }

    /// Exchanges any peer request with node `to`; the error says why not.
    pub async fn call_peer(
        self: &Arc<Self>,
        to: NodeId,
        req: PeerRequest,
        timeout: Duration,
    ) -> Result<PeerResponse, String> {
        let addr = self
            .addr_of(to)
            .ok_or_else(|| format!("no address known for node {to}"))?;
        let conn = self.connection(&addr).await.map_err(|e| e.to_string())?;
        check_peer(to, &addr, &conn).map_err(|e| e.to_string())?;
        conn.call(req, timeout).await.map_err(|e| e.to_string())
    }

    /// Handles a replica request addressed to this node.
    pub async fn local(&self, req: ReplicaRequest) -> ReplicaResponse {
        if self.blocking_io {
            let replica = Arc::clone(&self.replica);
            match tokio::task::spawn_blocking(move || replica.handle(req)).await {
                Ok(resp) => resp,
                Err(e) => ReplicaResponse::Failed(kv_quorum::ReplicaFailure::Storage {
                    detail: format!("replica task failed: {e}"),
                }),
            }
        } else {
            self.replica.handle(req)
        }
    }

    /// Sends one encoded gossip message to `addr`, dropping it if too many
    /// are in flight or the peer is unreachable.
    pub fn send_gossip(self: &Arc<Self>, addr: &str, payload: bytes::Bytes) {
        let Ok(permit) = Arc::clone(&self.gossip_sends).try_acquire_owned() else {
            tracing::debug!(%addr, "gossip send dropped: too many in flight");
            return;
        };
        let this = Arc::clone(self);
        let addr = addr.to_owned();
        tokio::spawn(async move {
            let sent = match this.connection(&addr).await {
                Ok(conn) => conn
                    .call(PeerRequest::Gossip(payload), this.request_timeout)
                    .await
                    .map(drop),
                Err(e) => Err(e),
            };
            if let Err(e) = sent {
                tracing::debug!(%addr, error = %e, "gossip send failed");
            }
            drop(permit);
        });
    }
}

/// The [`ReplicaTransport`] seam over an `Arc<TcpTransport>`.
///
/// Every path starts delivery before `call` returns, as the seam's contract
/// asks: a local request is applied at once (or spawned on a blocking thread
/// when each write waits for fsync, so it runs even if the future is
/// dropped), a request to a peer with an open pooled
/// connection is queued on it at once, and only a request that must first
/// dial its peer is spawned as a task.
pub struct ReplicaLink(pub Arc<TcpTransport>);

impl ReplicaTransport for ReplicaLink {
    fn call(
        &self,
        to: NodeId,
        req: ReplicaRequest,
    ) -> BoxFuture<'static, Result<ReplicaResponse, TransportError>> {
        let this = Arc::clone(&self.0);
        if to == this.local {
            if !this.blocking_io {
                let resp = this.replica.handle(req);
                return Box::pin(std::future::ready(Ok(resp)));
            }
            // Spawned, not returned unpolled: a caller that drops the
            // future (asynchronous read repair, the spare acks of a W=1
            // write) must still have the request applied.
            let replica = Arc::clone(&this.replica);
            let task = tokio::task::spawn_blocking(move || replica.handle(req));
            return Box::pin(async move {
                Ok(task.await.unwrap_or_else(|e| {
                    ReplicaResponse::Failed(kv_quorum::ReplicaFailure::Storage {
                        detail: format!("replica task failed: {e}"),
                    })
                }))
            });
        }
        let Some(addr) = this.addr_of(to) else {
            return Box::pin(std::future::ready(Err(TransportError::Unreachable {
                node: to,
            })));
        };
        if let Some(conn) = this.pooled(&addr) {
            if let Err(e) = check_peer(to, &addr, &conn) {
                return Box::pin(std::future::ready(Err(e)));
            }
            return match conn.send(PeerRequest::Replica(req)) {
                Ok(reply) => {
                    let timeout = this.request_timeout;
                    Box::pin(async move { replica_answer(to, reply.wait(timeout).await) })
                }
                // Not sent: too many in flight to this peer, or it closed.
                Err(_) => Box::pin(std::future::ready(Err(TransportError::Unreachable {
                    node: to,
                }))),
            };
        }
        let task = tokio::spawn(this.call_remote(to, addr, req));
        Box::pin(async move {
            task.await.unwrap_or_else(|e| {
                Err(TransportError::Lost {
                    node: to,
                    detail: format!("transport task failed: {e}"),
                })
            })
        })
    }
}

/// Refuses a connection whose peer answered the handshake as another node
/// than the one dialled: a node wiped and restarted at the same address with
/// a new id must not be counted as the old one.
fn check_peer(to: NodeId, addr: &str, conn: &PeerConn) -> Result<(), TransportError> {
    let answered = conn.peer();
    if answered == to {
        return Ok(());
    }
    tracing::warn!(dialled = %to, answered = %answered, %addr, "peer answered as another node; refused");
    Err(TransportError::Lost {
        node: to,
        detail: format!("{addr} answered as node {answered}, not node {to}"),
    })
}

/// Maps a peer's answer to a replica request onto kv-quorum's terms.
fn replica_answer(
    to: NodeId,
    answer: Result<PeerResponse, ClientError>,
) -> Result<ReplicaResponse, TransportError> {
    match answer {
        Ok(PeerResponse::Replica(resp)) => Ok(resp),
        Ok(other) => Err(TransportError::Lost {
            node: to,
            detail: format!("unexpected answer {other:?}"),
        }),
        Err(ClientError::ConnectionLost {
            maybe_applied: false,
            ..
        }) => Err(TransportError::Unreachable { node: to }),
        Err(e) => Err(TransportError::Lost {
            node: to,
            detail: e.to_string(),
        }),
    }
}

/// Tokio's clock as kv-quorum's timer.
pub struct TokioTimer;

impl kv_quorum::Timer for TokioTimer {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section is a single map operation, so a poisoned map is
    // still consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kv_quorum::{HintLimits, SiblingSet};

    const LOCAL: NodeId = NodeId(1);

    fn test_settings() -> ClusterSettings {
        crate::membership::cluster_settings(3, &kv_ring::RingConfig::default())
    }

    /// A transport for node 1 whose replica writes on blocking threads, as
    /// under `--durability sync`.
    fn sync_transport() -> (Arc<Replica>, ReplicaLink) {
        let replica = Arc::new(Replica::in_memory(LOCAL, HintLimits::default()));
        let transport = TcpTransport::new(
            LOCAL,
            "test",
            test_settings(),
            Arc::clone(&replica),
            1 << 20,
            Duration::from_secs(1),
            true,
        );
        (replica, ReplicaLink(Arc::new(transport)))
    }

    fn one_value(actor: NodeId, value: &'static [u8]) -> SiblingSet {
        let mut set = SiblingSet::new();
        set.update(&Default::default(), actor, Some(Bytes::from_static(value)))
            .expect("a fresh set has counters to spare");
        set
    }

    /// Polls `done` until it holds or a second has passed.
    async fn eventually(done: impl Fn() -> bool) -> bool {
        for _ in 0..100 {
            if done() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        done()
    }

    #[tokio::test]
    async fn local_replicate_under_sync_durability_lands_when_the_future_is_dropped() {
        let (replica, link) = sync_transport();
        let set = one_value(NodeId(2), b"repaired");
        // Asynchronous read repair: the coordinator sends and never awaits.
        drop(link.call(
            LOCAL,
            ReplicaRequest::Replicate {
                key: Bytes::from_static(b"k"),
                set,
            },
        ));
        let landed = eventually(|| {
            replica
                .read(b"k")
                .is_ok_and(|s| s.values().any(|v| v.as_ref() == b"repaired"))
        })
        .await;
        assert!(landed, "a dropped local repair must still be applied");
    }

    #[tokio::test]
    async fn local_hint_under_sync_durability_is_stored_when_the_future_is_dropped() {
        let (replica, link) = sync_transport();
        // A stand-in at W=1 answers from whichever replica acks first and
        // drops the rest, its own hint among them.
        drop(link.call(
            LOCAL,
            ReplicaRequest::ReplicateHinted {
                key: Bytes::from_static(b"k"),
                set: one_value(NodeId(3), b"hinted"),
                intended_owner: NodeId(3),
            },
        ));
        let stored = eventually(|| replica.hints().find(b"k").is_ok_and(|s| s.is_some())).await;
        assert!(stored, "a dropped local hint must still be stored");
    }

    #[tokio::test]
    async fn local_call_under_sync_durability_answers_with_the_replica_response() {
        let (_replica, link) = sync_transport();
        let resp = link
            .call(
                LOCAL,
                ReplicaRequest::Replicate {
                    key: Bytes::from_static(b"k"),
                    set: one_value(NodeId(2), b"v"),
                },
            )
            .await;
        assert!(matches!(resp, Ok(ReplicaResponse::Ack)), "{resp:?}");
    }

    /// A fake acceptor on `listener`: welcomes every opener as `node`, then
    /// reads and never answers.
    fn fake_acceptor(listener: tokio::net::TcpListener, node: NodeId) {
        use futures::{SinkExt, StreamExt};
        use kv_wire::{Hello, HelloReply, PROTOCOL_VERSION, WireCodec};
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut framed = tokio_util::codec::Framed::new(
                        sock,
                        WireCodec::<Hello, HelloReply>::new(1 << 20),
                    );
                    if framed.next().await.is_some() {
                        let welcome = HelloReply::Welcome {
                            version: PROTOCOL_VERSION,
                            node,
                        };
                        let _ = framed.send(welcome).await;
                    }
                    let (mut read, _write) = framed.into_parts().io.into_split();
                    let _ = tokio::io::copy(&mut read, &mut tokio::io::sink()).await;
                });
            }
        });
    }

    fn tcp_transport() -> Arc<TcpTransport> {
        let replica = Arc::new(Replica::in_memory(LOCAL, HintLimits::default()));
        Arc::new(TcpTransport::new(
            LOCAL,
            "test",
            test_settings(),
            replica,
            1 << 20,
            Duration::from_millis(200),
            false,
        ))
    }

    #[tokio::test]
    async fn a_peer_gossip_reports_up_is_dialled_again_at_once() {
        // A peer that is down: nothing listens on its address.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let transport = tcp_transport();
        transport.set_addr(NodeId(2), &addr.to_string());
        let ping = || {
            PeerRequest::Replica(ReplicaRequest::Get {
                key: Bytes::from_static(b"k"),
            })
        };
        let first = transport
            .call_peer(NodeId(2), ping(), Duration::from_millis(100))
            .await
            .unwrap_err();
        assert!(!first.contains("recently unreachable"), "{first}");
        // It restarts on the same address; until gossip says so, the
        // transport leaves it alone for the redial backoff.
        fake_acceptor(
            tokio::net::TcpListener::bind(addr).await.unwrap(),
            NodeId(2),
        );
        let backed_off = transport
            .call_peer(NodeId(2), ping(), Duration::from_millis(100))
            .await
            .unwrap_err();
        assert!(backed_off.contains("recently unreachable"), "{backed_off}");
        // Gossip reports it up: the next call dials it (and, the fake peer
        // being silent, times out on the call, not on the backoff).
        transport.peer_up(NodeId(2));
        let dialled = transport
            .call_peer(NodeId(2), ping(), Duration::from_millis(100))
            .await
            .unwrap_err();
        assert!(!dialled.contains("recently unreachable"), "{dialled}");
        assert!(dialled.contains("no answer within"), "{dialled}");
    }

    #[tokio::test]
    async fn peer_answering_as_another_node_is_refused() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        fake_acceptor(listener, NodeId(99));
        let transport = tcp_transport();
        transport.set_addr(NodeId(2), &addr);
        let link = ReplicaLink(Arc::clone(&transport));
        for _ in 0..2 {
            // Once while dialling, once over the pooled connection.
            let got = link
                .call(
                    NodeId(2),
                    ReplicaRequest::Get {
                        key: Bytes::from_static(b"k"),
                    },
                )
                .await;
            match got {
                Err(TransportError::Lost { detail, .. }) => {
                    assert!(
                        detail.contains(&NodeId(99).to_string())
                            && detail.contains(&NodeId(2).to_string()),
                        "{detail}"
                    );
                }
                other => panic!("expected a refusal naming both ids, got {other:?}"),
            }
        }
    }
}
