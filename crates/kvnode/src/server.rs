//! The TCP front: accepts connections, checks the handshake, reads framed
//! requests with bounds and timeouts, and writes answers.
//!
//! One connection costs the node at most `in_flight_per_connection_max`
//! requests in flight (reading pauses past it, so TCP pushes back), one frame
//! of `frame_len_max` bytes, and one answer queue of the same bound. A peer
//! that stops mid-frame is cut off after `read_timeout`; one that sends
//! nothing for `idle_timeout` is closed; one that does not read its answers
//! is closed after `write_timeout`. None of this slows other connections.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures::future::BoxFuture;
use futures::{SinkExt, StreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_util::codec::{Decoder, Encoder, Framed};
use tokio_util::task::TaskTracker;

use kv_types::NodeId;
use kv_wire::client::{ErrorCode, ErrorReply, Request, Response};
use kv_wire::peer::{PeerRequest, PeerResponse};
use kv_wire::{ClusterSettings, Envelope, Hello, HelloReply, Role, WireCodec, WireError};

use crate::config::Limits;

/// What the server asks of the node behind it.
pub trait Service: Send + Sync + 'static {
    /// Answers one client request.
    fn client(&self, req: Request) -> BoxFuture<'static, Response>;
    /// Answers one request from another node.
    fn peer(&self, req: PeerRequest) -> BoxFuture<'static, PeerResponse>;
}

/// Resolves once `stop` turns true (or its sender is gone).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard wait_for returns is dropped here, so callers' futures stay
    // Send.
    let _ = stop.wait_for(|s| *s).await;
}

/// Accepts connections until `shutdown` turns true, then waits for the
/// requests in flight to finish.
pub async fn serve(
    listener: TcpListener,
    node: NodeId,
    cluster: String,
    settings: ClusterSettings,
    limits: Limits,
    service: Arc<dyn Service>,
    mut shutdown: watch::Receiver<bool>,
) {
    let settings = Arc::new(settings);
    let limits = Arc::new(limits);
    let connections = Arc::new(Semaphore::new(limits.connections_max));
    let tracker = TaskTracker::new();
    while let Some((stream, peer)) = accept(&listener, &mut shutdown).await {
        let permit = Arc::clone(&connections).try_acquire_owned().ok();
        let ctx = ConnCtx {
            node,
            cluster: cluster.clone(),
            settings: Arc::clone(&settings),
            limits: Arc::clone(&limits),
            service: Arc::clone(&service),
            shutdown: shutdown.clone(),
        };
        tracker.spawn(async move {
            let Some(_permit) = permit else {
                refuse(stream, &ctx, "too many connections; try another node").await;
                return;
            };
            if let Err(e) = handle(stream, ctx).await {
                tracing::debug!(%peer, error = %e, "connection closed");
            }
        });
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
}

/// The next connection, or `None` once `shutdown` turns true. Shared by
/// the native port and the RESP front door.
pub(crate) async fn accept(
    listener: &TcpListener,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<(TcpStream, std::net::SocketAddr)> {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stopped(shutdown) => return None,
        };
        match accepted {
            Ok(pair) => return Some(pair),
            Err(e) => {
                // Out of file descriptors and the like: back off briefly
                // rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[derive(Clone)]
struct ConnCtx {
    node: NodeId,
    cluster: String,
    settings: Arc<ClusterSettings>,
    limits: Arc<Limits>,
    service: Arc<dyn Service>,
    shutdown: watch::Receiver<bool>,
}

/// Answers the handshake with a refusal and closes.
async fn refuse(stream: TcpStream, ctx: &ConnCtx, reason: &str) {
    let mut framed = Framed::new(
        stream,
        WireCodec::<Hello, HelloReply>::new(ctx.limits.frame_len_max),
    );
    let send = framed.send(HelloReply::Refused {
        reason: reason.to_owned(),
    });
    let _ = tokio::time::timeout(ctx.limits.write_timeout(), send).await;
}

#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("handshake: {0}")]
    Handshake(String),
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("no complete frame within {0:?}")]
    ReadTimeout(Duration),
    #[error("idle for {0:?}")]
    Idle(Duration),
}

async fn handle(stream: TcpStream, ctx: ConnCtx) -> Result<(), ConnError> {
    stream.set_nodelay(true).map_err(WireError::Io)?;
    let limits = Arc::clone(&ctx.limits);
    let mut framed = Framed::new(
        stream,
        WireCodec::<Hello, HelloReply>::new(limits.frame_len_max),
    );
    let hello = match tokio::time::timeout(limits.read_timeout(), framed.next()).await {
        Err(_) => return Err(ConnError::ReadTimeout(limits.read_timeout())),
        Ok(None) => return Ok(()),
        Ok(Some(hello)) => hello,
    };
    let hello = match hello {
        Ok(h) => h,
        Err(e) => {
            let reason = format!("bad handshake: {e}");
            let _ = framed
                .send(HelloReply::Refused {
                    reason: reason.clone(),
                })
                .await;
            return Err(ConnError::Handshake(reason));
        }
    };
    if let Err(reason) = hello.check(&ctx.cluster, &ctx.settings) {
        if hello.role == Role::Peer {
            tracing::warn!(node = ?hello.node, %reason, "peer refused");
        }
        let _ = framed
            .send(HelloReply::Refused {
                reason: reason.clone(),
            })
            .await;
        return Err(ConnError::Handshake(reason));
    }
    framed
        .send(HelloReply::Welcome {
            version: kv_wire::PROTOCOL_VERSION,
            node: ctx.node,
        })
        .await?;

    let parts = framed.into_parts();
    let buffered = parts.read_buf;
    let (read, write) = parts.io.into_split();
    match hello.role {
        Role::Client => {
            let handler = Arc::new(ClientHandler {
                service: Arc::clone(&ctx.service),
                limits: Arc::clone(&ctx.limits),
            });
            serve_requests(read, buffered, write, ctx, handler).await
        }
        Role::Peer => {
            let handler = Arc::new(PeerHandler {
                service: Arc::clone(&ctx.service),
            });
            serve_requests(read, buffered, write, ctx, handler).await
        }
    }
}

/// How one kind of connection (client or peer) turns requests into answers.
trait Handler<Req, Resp>: Send + Sync + 'static {
    /// Answers one request.
    fn answer(&self, req: Req) -> BoxFuture<'static, Resp>;
    /// The answer that reports a failure of the connection itself.
    fn failure(&self, message: String) -> Resp;
}

struct ClientHandler {
    service: Arc<dyn Service>,
    limits: Arc<Limits>,
}

impl Handler<Request, Response> for ClientHandler {
    fn answer(&self, req: Request) -> BoxFuture<'static, Response> {
        match check_request(&req, &self.limits) {
            Ok(()) => self.service.client(req),
            Err(e) => Box::pin(std::future::ready(Response::Error(e))),
        }
    }

    fn failure(&self, message: String) -> Response {
        Response::Error(ErrorReply {
            code: ErrorCode::InvalidRequest,
            message,
        })
    }
}

struct PeerHandler {
    service: Arc<dyn Service>,
}

impl Handler<PeerRequest, PeerResponse> for PeerHandler {
    fn answer(&self, req: PeerRequest) -> BoxFuture<'static, PeerResponse> {
        self.service.peer(req)
    }

    fn failure(&self, message: String) -> PeerResponse {
        PeerResponse::Error(message)
    }
}

/// The request loop of one connection.
async fn serve_requests<Req, Resp>(
    mut read: tokio::net::tcp::OwnedReadHalf,
    mut buf: BytesMut,
    write: OwnedWriteHalf,
    ctx: ConnCtx,
    handler: Arc<dyn Handler<Req, Resp>>,
) -> Result<(), ConnError>
where
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
{
    let limits = Arc::clone(&ctx.limits);
    let in_flight = Arc::new(Semaphore::new(limits.in_flight_per_connection_max));
    let (answers, queue) = mpsc::channel(limits.in_flight_per_connection_max);
    let writer = tokio::spawn(write_answers(
        write,
        queue,
        limits.frame_len_max,
        limits.write_timeout(),
        Arc::clone(&handler),
    ));
    let mut codec = WireCodec::<Envelope<Req>, ()>::new(limits.frame_len_max);
    let mut shutdown = ctx.shutdown.clone();

    let result = loop {
        // Decode every whole frame already buffered.
        let decoded = match codec.decode(&mut buf) {
            Ok(Some(env)) => env,
            Ok(None) => {
                // A partial frame must finish within read_timeout; between
                // frames the connection may idle for idle_timeout.
                let (limit, err): (Duration, fn(Duration) -> ConnError) = if buf.is_empty() {
                    (limits.idle_timeout(), ConnError::Idle)
                } else {
                    (limits.read_timeout(), ConnError::ReadTimeout)
                };
                buf.reserve(READ_CHUNK_BYTES);
                let read_more = tokio::time::timeout(limit, read.read_buf(&mut buf));
                tokio::select! {
                    r = read_more => match r {
                        Err(_) => break Err(err(limit)),
                        Ok(Ok(0)) => break Ok(()),
                        Ok(Ok(_)) => continue,
                        Ok(Err(e)) => break Err(WireError::Io(e).into()),
                    },
                    () = stopped(&mut shutdown) => break Ok(()),
                    // The writer gave up (a peer that does not read): stop
                    // reading too, so the connection closes now.
                    _ = answers.closed() => break Ok(()),
                }
            }
            Err(e) => {
                // The stream cannot be resynchronised after a bad frame: say
                // why (id 0: the request's own id is unknown) and close.
                let reply = Envelope {
                    id: 0,
                    body: handler.failure(e.to_string()),
                };
                let _ = answers.send(reply).await;
                break Err(e.into());
            }
        };
        let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else {
            break Ok(());
        };
        let answers = answers.clone();
        let Envelope { id, body } = decoded;
        let answer = handler.answer(body);
        tokio::spawn(async move {
            let body = answer.await;
            // The writer may be gone if the connection failed; fine.
            let _ = answers.send(Envelope { id, body }).await;
            drop(permit);
        });
    };
    // Let answers in flight drain (bounded by the write timeout), then close.
    drop(answers);
    let _ = writer.await;
    result
}

/// Bytes reserved for each read from the socket.
const READ_CHUNK_BYTES: usize = 8 * 1024;

/// Bound on answer bytes gathered into one write.
const WRITE_BATCH_BYTES_MAX: usize = 256 * 1024;

/// Writes answers as they come, batching what is queued into one write.
async fn write_answers<Req: 'static, Resp: Serialize + 'static>(
    mut write: OwnedWriteHalf,
    mut queue: mpsc::Receiver<Envelope<Resp>>,
    frame_len_max: usize,
    write_timeout: Duration,
    handler: Arc<dyn Handler<Req, Resp>>,
) {
    let mut codec = WireCodec::<(), Envelope<Resp>>::new(frame_len_max);
    let mut out = BytesMut::new();
    while let Some(answer) = queue.recv().await {
        encode_answer(&mut codec, answer, &mut out, &*handler);
        while out.len() < WRITE_BATCH_BYTES_MAX
            && let Ok(more) = queue.try_recv()
        {
            encode_answer(&mut codec, more, &mut out, &*handler);
        }
        match tokio::time::timeout(write_timeout, write.write_all(&out)).await {
            Ok(Ok(())) => out.clear(),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "write failed; closing");
                break;
            }
            Err(_) => {
                tracing::info!(?write_timeout, "client is not reading its answers; closing");
                break;
            }
        }
    }
    let _ = write.shutdown().await;
}

/// Encodes one answer; an answer too large for a frame becomes an error
/// answer, so the caller still hears back.
fn encode_answer<Req: 'static, Resp: Serialize + 'static>(
    codec: &mut WireCodec<(), Envelope<Resp>>,
    answer: Envelope<Resp>,
    out: &mut BytesMut,
    handler: &dyn Handler<Req, Resp>,
) {
    let id = answer.id;
    if let Err(e) = codec.encode(answer, out) {
        let error = Envelope {
            id,
            body: handler.failure(format!("the answer could not be sent: {e}")),
        };
        // A short error always fits; if even it fails there is nothing
        // more to say on this connection.
        let _ = codec.encode(error, out);
    }
}

/// Rejects requests whose key or value exceeds the limits. The RESP front
/// door checks its requests with the same function.
pub(crate) fn check_request(req: &Request, limits: &Limits) -> Result<(), ErrorReply> {
    let (key, value) = match req {
        Request::Get { key, .. }
        | Request::Delete { key, .. }
        | Request::ReplicaDigests { key } => (key, None),
        Request::Put { key, value, .. } => (key, Some(value)),
        Request::Status => return Ok(()),
    };
    let invalid = |message: String| ErrorReply {
        code: ErrorCode::InvalidRequest,
        message,
    };
    if key.is_empty() {
        return Err(invalid("the key is empty".to_owned()));
    }
    if key.len() > limits.key_len_max {
        return Err(invalid(format!(
            "key of {} bytes exceeds the limit of {} bytes",
            key.len(),
            limits.key_len_max
        )));
    }
    if let Some(value) = value
        && value.len() > limits.value_len_max
    {
        return Err(invalid(format!(
            "value of {} bytes exceeds the limit of {} bytes",
            value.len(),
            limits.value_len_max
        )));
    }
    Ok(())
}
