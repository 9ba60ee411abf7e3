//! One pipelined connection to one node, generic over the messages it
//! carries: the client uses it for client requests, and the node for peer
//! traffic.
//!
//! A writer task drains a bounded queue of requests into the socket, flushing
//! when the queue runs dry so that bursts share one write. A reader task
//! matches each answer to its waiting caller by request id. When either task
//! ends, the connection is closed and every waiting caller learns it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::codec::{Framed, FramedRead, FramedWrite};

use kv_types::NodeId;
use kv_wire::{Envelope, Hello, HelloReply, WireCodec, WireError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{ClientConfig, ClientError};

/// Callers waiting for an answer, by request id. The writer, too, answers a
/// caller here, with an error, when its request cannot be encoded.
type Pending<Resp> = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Resp, ClientError>>>>>;

/// A pipelined connection to one node: many requests in flight, each
/// matched to its answer by id.
#[derive(Debug)]
pub struct Pipeline<Req, Resp> {
    addr: String,
    peer: NodeId,
    next_id: AtomicU64,
    requests: mpsc::Sender<Envelope<Req>>,
    pending: Pending<Resp>,
    slots: Arc<Semaphore>,
    open: Arc<AtomicBool>,
    tasks: [JoinHandle<()>; 2],
}

impl<Req, Resp> Pipeline<Req, Resp>
where
    Req: Serialize + Send + 'static,
    Resp: DeserializeOwned + Send + 'static,
{
    /// Connects to `addr` and completes the handshake with `hello` (a
    /// client's, or a node's with its id and cluster settings). Uses
    /// `config`'s timeouts and bounds; its cluster and node list are
    /// ignored, the hello names the cluster.
    pub async fn open(
        addr: &str,
        config: &ClientConfig,
        hello: Hello,
    ) -> Result<Self, ClientError> {
        let timeout = config.connect_timeout;
        let unreachable = |why: String| ClientError::NoNodeReachable {
            tried: vec![(addr.to_owned(), why)],
        };
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| unreachable(format!("no connection within {timeout:?}")))?
            .map_err(|e| unreachable(e.to_string()))?;
        stream
            .set_nodelay(true)
            .map_err(|e| unreachable(e.to_string()))?;

        let mut framed = Framed::new(
            stream,
            WireCodec::<HelloReply, Hello>::new(config.frame_len_max),
        );
        let handshake = async {
            framed.send(hello).await?;
            framed.next().await.transpose()
        };
        let reply = tokio::time::timeout(timeout, handshake)
            .await
            .map_err(|_| unreachable(format!("no handshake within {timeout:?}")))?
            .map_err(|e| unreachable(e.to_string()))?;
        let peer = match reply {
            Some(HelloReply::Welcome { node, .. }) => node,
            Some(HelloReply::Refused { reason }) => {
                return Err(ClientError::Refused {
                    addr: addr.to_owned(),
                    reason,
                });
            }
            None => return Err(unreachable("closed during the handshake".to_owned())),
        };

        // Separate halves rather than `Framed::split`: a split sink holds
        // each item back and encodes it on the next poll, so an encoding
        // error would surface on a later request. `FramedWrite` encodes in
        // `feed`, so the writer knows which request could not be sent.
        let parts = framed.into_parts();
        let (read_half, write_half) = parts.io.into_split();
        let mut stream = FramedRead::new(
            read_half,
            parts.codec.retype::<Envelope<Resp>, Envelope<Req>>(),
        );
        // Bytes the handshake read past its reply belong to the first frames.
        stream.read_buffer_mut().extend_from_slice(&parts.read_buf);
        let mut sink = FramedWrite::new(
            write_half,
            WireCodec::<Envelope<Resp>, Envelope<Req>>::new(config.frame_len_max),
        );
        let (requests, mut queue) = mpsc::channel::<Envelope<Req>>(config.in_flight_max);
        let pending: Pending<Resp> = Arc::default();
        let open = Arc::new(AtomicBool::new(true));

        let writer_open = Arc::clone(&open);
        let writer_pending = Arc::clone(&pending);
        let writer = tokio::spawn(async move {
            'run: while let Some(req) = queue.recv().await {
                if !feed(&mut sink, req, &writer_pending).await {
                    break;
                }
                // Batch what is already queued into the same write.
                while let Ok(req) = queue.try_recv() {
                    if !feed(&mut sink, req, &writer_pending).await {
                        break 'run;
                    }
                }
                if sink.flush().await.is_err() {
                    break;
                }
            }
            writer_open.store(false, Ordering::Release);
        });

        let reader_pending = Arc::clone(&pending);
        let reader_open = Arc::clone(&open);
        let reader_addr = addr.to_owned();
        let reader = tokio::spawn(async move {
            while let Some(frame) = stream.next().await {
                match frame {
                    Ok(Envelope { id, body }) => {
                        let waiter = lock(&reader_pending).remove(&id);
                        if let Some(waiter) = waiter {
                            // The caller may have timed out and gone; fine.
                            let _ = waiter.send(Ok(body));
                        }
                    }
                    Err(e) => {
                        tracing::warn!(addr = %reader_addr, error = %e, "bad frame from node; closing");
                        break;
                    }
                }
            }
            reader_open.store(false, Ordering::Release);
            // Dropping the senders wakes every waiting caller.
            lock(&reader_pending).clear();
        });

        Ok(Self {
            addr: addr.to_owned(),
            peer,
            next_id: AtomicU64::new(1),
            requests,
            pending,
            slots: Arc::new(Semaphore::new(config.in_flight_max)),
            open,
            tasks: [writer, reader],
        })
    }

    /// Whether both directions are still working.
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// The node at the other end, as it named itself in the handshake.
    pub fn peer(&self) -> NodeId {
        self.peer
    }

    /// Sends `body` and waits up to `timeout` for its answer, waiting first
    /// for a free slot if `in_flight_max` requests are in flight.
    pub async fn call(&self, body: Req, timeout: Duration) -> Result<Resp, ClientError> {
        let slot = Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .map_err(|_| self.lost(false))?;
        self.enqueue(body, slot)?.wait(timeout).await
    }

    /// Queues `body` for sending now, without waiting, and returns the
    /// answer to come. Fails at once if `in_flight_max` requests are in
    /// flight or the connection is closed; the request has then not been
    /// sent.
    pub fn send(&self, body: Req) -> Result<Reply<Resp>, ClientError> {
        let slot = Arc::clone(&self.slots)
            .try_acquire_owned()
            .map_err(|_| self.lost(false))?;
        self.enqueue(body, slot)
    }

    fn enqueue(&self, body: Req, slot: OwnedSemaphorePermit) -> Result<Reply<Resp>, ClientError> {
        if !self.is_open() {
            return Err(self.lost(false));
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id, tx);
        // The queue holds at most as many requests as there are slots, and we
        // hold one, so it is never full; it fails only once the writer is gone.
        if self.requests.try_send(Envelope { id, body }).is_err() {
            lock(&self.pending).remove(&id);
            return Err(self.lost(false));
        }
        Ok(Reply {
            id,
            rx,
            pending: Arc::clone(&self.pending),
            addr: self.addr.clone(),
            _slot: slot,
        })
    }

    fn lost(&self, maybe_applied: bool) -> ClientError {
        ClientError::ConnectionLost {
            addr: self.addr.clone(),
            maybe_applied,
        }
    }
}

/// An answer to come for a request already queued on a [`Pipeline`].
#[derive(Debug)]
pub struct Reply<Resp> {
    id: u64,
    rx: oneshot::Receiver<Result<Resp, ClientError>>,
    pending: Pending<Resp>,
    addr: String,
    /// Held until the answer arrives or is abandoned: the in-flight bound.
    _slot: OwnedSemaphorePermit,
}

impl<Resp> Reply<Resp> {
    /// Waits up to `timeout` for the answer.
    pub async fn wait(self, timeout: Duration) -> Result<Resp, ClientError> {
        let Reply {
            id,
            rx,
            pending,
            addr,
            _slot,
        } = self;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(ClientError::ConnectionLost {
                addr,
                maybe_applied: true,
            }),
            Err(_) => {
                lock(&pending).remove(&id);
                Err(ClientError::Timeout(timeout))
            }
        }
    }
}

type Sink<Req, Resp> = FramedWrite<OwnedWriteHalf, WireCodec<Envelope<Resp>, Envelope<Req>>>;

/// Feeds one request to the socket; false when the connection is broken.
///
/// A request that cannot be encoded (too large for a frame) is answered at
/// once with the error and the connection carries on: the codec leaves its
/// buffer as it was, so nothing of the request was sent.
async fn feed<Req: Serialize, Resp>(
    sink: &mut Sink<Req, Resp>,
    req: Envelope<Req>,
    pending: &Pending<Resp>,
) -> bool {
    let id = req.id;
    let refused = match sink.feed(req).await {
        Ok(()) => return true,
        Err(WireError::FrameTooLarge { len, max }) => ClientError::RequestTooLarge { len, max },
        Err(WireError::Malformed(e)) => ClientError::Protocol(format!("cannot encode: {e}")),
        Err(_) => return false,
    };
    if let Some(waiter) = lock(pending).remove(&id) {
        // The caller may have timed out and gone; fine.
        let _ = waiter.send(Err(refused));
    }
    true
}

impl<Req, Resp> Drop for Pipeline<Req, Resp> {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section is a single map operation, so a poisoned map is
    // still consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}
