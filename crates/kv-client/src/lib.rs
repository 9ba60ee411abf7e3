//! The async Rust client of the store.
//!
//! A [`Client`] is given a list of node addresses. It keeps one connection to
//! one node at a time and pipelines every request over it: many requests may
//! be in flight, each tagged with an id, and answers may arrive in any order.
//! When the node cannot be reached, the client moves on to the next address.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kv_client::ClientError> {
//! use kv_client::{Client, ClientConfig};
//!
//! let client = Client::connect(ClientConfig::new(["127.0.0.1:7000"])).await?;
//! client.put("greeting", "hello", None).await?;
//! let read = client.get("greeting").await?;
//! assert_eq!(read.siblings, vec![bytes::Bytes::from("hello")]);
//! // Writing with the read's context supersedes what was read.
//! client.put("greeting", "hi", Some(&read.context)).await?;
//! # Ok(())
//! # }
//! ```
//!
//! Failover is careful with writes: a request is sent to another node only
//! when it never left this client. A write whose connection broke after it
//! was sent fails with [`ClientError::ConnectionLost`] and `maybe_applied`,
//! because the write may have been applied.

pub mod connection;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Mutex;

pub use kv_wire::client::{Consistency, ErrorCode, MemberStatus, ReplicaDigest, StatusReply};
use kv_wire::client::{Request, Response};

pub use connection::{Pipeline, Reply};
use kv_wire::Hello;

type Connection = Pipeline<Request, Response>;

/// Default time to wait for one answer.
pub const REQUEST_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);
/// Default time to wait for a connection and its handshake.
pub const CONNECT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(3);
/// Default bound on requests in flight on one connection.
pub const IN_FLIGHT_MAX_DEFAULT: usize = 1024;

/// How to reach the cluster.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Node addresses (`host:port`), tried in order, then round-robin.
    pub nodes: Vec<String>,
    /// The cluster's name; a node of another cluster refuses us.
    pub cluster: String,
    /// Time to wait for one answer.
    pub request_timeout: Duration,
    /// Time to wait for a connection and its handshake.
    pub connect_timeout: Duration,
    /// Requests in flight on one connection; more wait for a slot.
    pub in_flight_max: usize,
    /// Largest frame sent or accepted.
    pub frame_len_max: usize,
}

impl ClientConfig {
    /// Defaults for the given node addresses, in the cluster `"default"`.
    pub fn new<I, S>(nodes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            nodes: nodes.into_iter().map(Into::into).collect(),
            cluster: "default".to_owned(),
            request_timeout: REQUEST_TIMEOUT_DEFAULT,
            connect_timeout: CONNECT_TIMEOUT_DEFAULT,
            in_flight_max: IN_FLIGHT_MAX_DEFAULT,
            frame_len_max: kv_wire::FRAME_LEN_MAX_DEFAULT,
        }
    }

    /// The same, in cluster `cluster`.
    pub fn cluster(mut self, cluster: &str) -> Self {
        cluster.clone_into(&mut self.cluster);
        self
    }
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No listed node could be reached; each address with its failure.
    #[error("no node could be reached: {}", describe(.tried))]
    NoNodeReachable {
        /// `(address, why)` for every node tried.
        tried: Vec<(String, String)>,
    },
    /// A node refused the handshake (other cluster or protocol version).
    #[error("node {addr} refused the connection: {reason}")]
    Refused {
        /// The node.
        addr: String,
        /// Its reason.
        reason: String,
    },
    /// The node answered with an error.
    #[error("{code:?}: {message}")]
    Server {
        /// What kind of failure.
        code: ErrorCode,
        /// The node's explanation.
        message: String,
    },
    /// The request does not fit in one frame of `frame_len_max` bytes; it
    /// was not sent, and the connection is unharmed.
    #[error("request of {len} bytes exceeds the frame limit of {max} bytes; not sent")]
    RequestTooLarge {
        /// The encoded request's length.
        len: usize,
        /// The bound, `frame_len_max`.
        max: usize,
    },
    /// No answer within the request timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The connection broke while the request was in flight.
    #[error("connection to {addr} lost{}", if *.maybe_applied { " after the request was sent; it may have been applied" } else { "" })]
    ConnectionLost {
        /// The node.
        addr: String,
        /// Whether the request had been sent, so may have taken effect.
        maybe_applied: bool,
    },
    /// The node answered with a message that does not fit the request.
    #[error("unexpected answer: {0}")]
    Protocol(String),
    /// No node addresses were given.
    #[error("no node addresses given")]
    NoNodes,
}

fn describe(tried: &[(String, String)]) -> String {
    tried
        .iter()
        .map(|(addr, why)| format!("{addr}: {why}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// What a read found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    /// The value, or its concurrent siblings; empty when the key is absent.
    pub siblings: Vec<Bytes>,
    /// Pass this to the next write of the key to supersede what was read.
    pub context: Context,
    /// Siblings the node left out because all of them would not fit a
    /// frame; usually 0. Writing with `context` supersedes only the
    /// siblings returned, so a client that resolves them and reads again
    /// gets the rest.
    pub omitted: usize,
}

impl ReadResult {
    /// The value when there is exactly one.
    pub fn value(&self) -> Option<&Bytes> {
        match self.siblings.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }
}

/// An opaque causal context from a read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Context(pub Bytes);

/// An async client; cheap to clone, and clones share the connection.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ClientConfig,
    /// Index into `config.nodes` of the node to try next.
    next_node: AtomicUsize,
    conn: Mutex<Option<Arc<Connection>>>,
}

impl Client {
    /// Connects to the first reachable node of `config.nodes`.
    pub async fn connect(config: ClientConfig) -> Result<Self, ClientError> {
        if config.nodes.is_empty() {
            return Err(ClientError::NoNodes);
        }
        let client = Self {
            inner: Arc::new(Inner {
                config,
                next_node: AtomicUsize::new(0),
                conn: Mutex::new(None),
            }),
        };
        client.connection().await?;
        Ok(client)
    }

    /// Reads `key` with the cluster's default R.
    pub async fn get(&self, key: impl Into<Bytes>) -> Result<ReadResult, ClientError> {
        self.get_with(key, None).await
    }

    /// Reads `key`, waiting for the given number of replicas.
    pub async fn get_with(
        &self,
        key: impl Into<Bytes>,
        consistency: Option<Consistency>,
    ) -> Result<ReadResult, ClientError> {
        let req = Request::Get {
            key: key.into(),
            consistency,
        };
        match self.call(req, true).await? {
            Response::Value {
                siblings,
                context,
                omitted,
            } => Ok(ReadResult {
                siblings,
                context: Context(context),
                omitted: omitted as usize,
            }),
            Response::NotFound { context } => Ok(ReadResult {
                siblings: Vec::new(),
                context: Context(context),
                omitted: 0,
            }),
            other => Err(unexpected(other)),
        }
    }

    /// Writes `value` under `key`; pass the context of a read (or of an
    /// earlier write) to supersede what it saw, or `None` to write beside
    /// whatever is there. Returns the context of the state written.
    pub async fn put(
        &self,
        key: impl Into<Bytes>,
        value: impl Into<Bytes>,
        context: Option<&Context>,
    ) -> Result<Context, ClientError> {
        self.put_with(key, value, context, None).await
    }

    /// [`put`](Self::put), waiting for the given number of replicas.
    pub async fn put_with(
        &self,
        key: impl Into<Bytes>,
        value: impl Into<Bytes>,
        context: Option<&Context>,
        consistency: Option<Consistency>,
    ) -> Result<Context, ClientError> {
        let req = Request::Put {
            key: key.into(),
            value: value.into(),
            context: context.map(|c| c.0.clone()),
            consistency,
        };
        expect_written(self.call(req, false).await?)
    }

    /// Deletes `key`; pass the context of a read to supersede what it saw.
    /// Returns the context of the state written.
    pub async fn delete(
        &self,
        key: impl Into<Bytes>,
        context: Option<&Context>,
    ) -> Result<Context, ClientError> {
        self.delete_with(key, context, None).await
    }

    /// [`delete`](Self::delete), waiting for the given number of replicas.
    pub async fn delete_with(
        &self,
        key: impl Into<Bytes>,
        context: Option<&Context>,
        consistency: Option<Consistency>,
    ) -> Result<Context, ClientError> {
        let req = Request::Delete {
            key: key.into(),
            context: context.map(|c| c.0.clone()),
            consistency,
        };
        expect_written(self.call(req, false).await?)
    }

    /// Membership and ring shares, as the connected node sees them.
    pub async fn status(&self) -> Result<StatusReply, ClientError> {
        match self.call(Request::Status, true).await? {
            Response::Status(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    /// Diagnostic, for tests: a digest of `key`'s local state on each of its
    /// home replicas, as the connected node asks them directly (no read
    /// repair, so asking changes nothing). Equal digests mean the replicas
    /// hold the same state.
    pub async fn replica_digests(
        &self,
        key: impl Into<Bytes>,
    ) -> Result<Vec<ReplicaDigest>, ClientError> {
        match self
            .call(Request::ReplicaDigests { key: key.into() }, true)
            .await?
        {
            Response::ReplicaDigests(d) => Ok(d),
            other => Err(unexpected(other)),
        }
    }

    /// Sends `req`, failing over to other nodes while the request has not
    /// left this client (or, for `idempotent` requests, always).
    async fn call(&self, req: Request, idempotent: bool) -> Result<Response, ClientError> {
        let attempts = self.inner.config.nodes.len().max(1);
        let mut last = None;
        for _ in 0..attempts {
            let conn = self.connection().await?;
            match conn
                .call(req.clone(), self.inner.config.request_timeout)
                .await
            {
                Ok(Response::Error(e)) => {
                    return Err(ClientError::Server {
                        code: e.code,
                        message: e.message,
                    });
                }
                Ok(resp) => return Ok(resp),
                Err(ClientError::ConnectionLost {
                    addr,
                    maybe_applied,
                }) => {
                    self.drop_connection(&conn).await;
                    if maybe_applied && !idempotent {
                        return Err(ClientError::ConnectionLost {
                            addr,
                            maybe_applied,
                        });
                    }
                    last = Some(ClientError::ConnectionLost {
                        addr,
                        maybe_applied,
                    });
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(ClientError::NoNodes))
    }

    /// The current connection, or a new one to the next reachable node.
    async fn connection(&self) -> Result<Arc<Connection>, ClientError> {
        let mut slot = self.inner.conn.lock().await;
        if let Some(conn) = slot.as_ref()
            && conn.is_open()
        {
            return Ok(Arc::clone(conn));
        }
        let nodes = &self.inner.config.nodes;
        let mut tried = Vec::new();
        for _ in 0..nodes.len() {
            let i = self.inner.next_node.fetch_add(1, Ordering::Relaxed) % nodes.len();
            let addr = &nodes[i];
            match Connection::open(
                addr,
                &self.inner.config,
                Hello::client(&self.inner.config.cluster),
            )
            .await
            {
                Ok(conn) => {
                    // Stay on this node until it fails.
                    self.inner.next_node.store(i, Ordering::Relaxed);
                    let conn = Arc::new(conn);
                    *slot = Some(Arc::clone(&conn));
                    return Ok(conn);
                }
                Err(e @ ClientError::Refused { .. }) => return Err(e),
                Err(ClientError::NoNodeReachable { tried: why }) => {
                    tracing::debug!(%addr, ?why, "node unreachable; trying the next");
                    tried.extend(why);
                }
                Err(e) => {
                    tracing::debug!(%addr, error = %e, "node unreachable; trying the next");
                    tried.push((addr.clone(), e.to_string()));
                }
            }
        }
        Err(ClientError::NoNodeReachable { tried })
    }

    async fn drop_connection(&self, dead: &Arc<Connection>) {
        let mut slot = self.inner.conn.lock().await;
        if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, dead)) {
            *slot = None;
            // The next connection starts with the node after the dead one.
            self.inner.next_node.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn expect_written(resp: Response) -> Result<Context, ClientError> {
    match resp {
        Response::Written { context } => Ok(Context(context)),
        other => Err(unexpected(other)),
    }
}

fn unexpected(resp: Response) -> ClientError {
    ClientError::Protocol(format!("{resp:?}"))
}
