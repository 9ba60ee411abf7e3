//! A fake node on 127.0.0.1 that speaks the real kv-wire protocol.
//!
//! It uses kv-wire's own codec, handshake check and message types, so the
//! client is tested against the protocol rather than against a copy of its
//! own logic. Each fake node answers the handshake (welcoming clients of its
//! cluster and refusing others with [`Hello::check`]'s reason), then hands
//! every request to a script that chooses an answer or drops the connection.
//! It records what it saw so tests can assert what reached which node.

#![allow(dead_code, reason = "each test file uses a different part")]
#![allow(
    clippy::unwrap_used,
    reason = "test scaffolding: a failure here should fail the test loudly"
)]

use std::sync::{Arc, Mutex};

use futures::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::codec::Framed;

use kv_types::NodeId;
use kv_wire::client::{Request, Response};
use kv_wire::{Envelope, FRAME_LEN_MAX_DEFAULT, Hello, HelloReply, PROTOCOL_VERSION, WireCodec};

/// What the fake node does with one request.
pub(crate) enum Action {
    /// Answer it.
    Reply(Response),
    /// Close the connection without answering, after having read it.
    Drop,
}

/// Chooses the action for a request; gets the request and how many requests
/// this node had received before it.
pub(crate) type Script = Arc<dyn Fn(usize, &Request) -> Action + Send + Sync>;

/// What a fake node has seen.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    /// Connections accepted (before their handshake).
    pub(crate) connections: usize,
    /// Every request received, in order.
    pub(crate) requests: Vec<Request>,
}

/// A running fake node.
pub(crate) struct FakeNode {
    /// Where it listens.
    pub(crate) addr: String,
    seen: Arc<Mutex<Seen>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl FakeNode {
    /// Starts a node of cluster `cluster` with id `id`, answering requests
    /// with `script`.
    pub(crate) async fn start(cluster: &str, id: u64, script: Script) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (stop, mut stopped) = oneshot::channel();
        let cluster = cluster.to_owned();
        let task_seen = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { break };
                        task_seen.lock().unwrap().connections += 1;
                        let seen = Arc::clone(&task_seen);
                        let script = Arc::clone(&script);
                        let cluster = cluster.clone();
                        conns.spawn(serve(stream, cluster, NodeId(id), seen, script));
                    }
                }
            }
            // Close every connection and wait until each socket is gone, so
            // that a killed node is really dead when `kill` returns.
            conns.shutdown().await;
            drop(listener);
        });
        Self {
            addr,
            seen,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Starts a node that answers every request with `response`.
    pub(crate) async fn answering(cluster: &str, id: u64, response: Response) -> Self {
        Self::start(
            cluster,
            id,
            Arc::new(move |_, _| Action::Reply(response.clone())),
        )
        .await
    }

    /// A snapshot of what this node has seen.
    pub(crate) fn connections(&self) -> usize {
        self.seen.lock().unwrap().connections
    }

    /// Every request this node has received.
    pub(crate) fn requests(&self) -> Vec<Request> {
        self.seen.lock().unwrap().requests.clone()
    }

    /// Stops listening and closes every connection; returns once the
    /// listener and every socket are closed.
    pub(crate) async fn kill(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }
}

async fn serve(
    stream: tokio::net::TcpStream,
    cluster: String,
    id: NodeId,
    seen: Arc<Mutex<Seen>>,
    script: Script,
) {
    let mut framed = Framed::new(
        stream,
        WireCodec::<Hello, HelloReply>::new(FRAME_LEN_MAX_DEFAULT),
    );
    let Some(Ok(hello)) = framed.next().await else {
        return;
    };
    if let Err(reason) = hello.check(&cluster, &node_settings()) {
        let _ = framed.send(HelloReply::Refused { reason }).await;
        return;
    }
    let welcome = HelloReply::Welcome {
        version: PROTOCOL_VERSION,
        node: id,
    };
    if framed.send(welcome).await.is_err() {
        return;
    }
    let mut framed = framed.map_codec(|c| c.retype::<Envelope<Request>, Envelope<Response>>());
    while let Some(Ok(Envelope { id, body })) = framed.next().await {
        let before = {
            let mut seen = seen.lock().unwrap();
            seen.requests.push(body.clone());
            seen.requests.len() - 1
        };
        match script(before, &body) {
            Action::Reply(resp) => {
                if framed.send(Envelope { id, body: resp }).await.is_err() {
                    return;
                }
            }
            Action::Drop => return,
        }
    }
}

/// A read answer carrying one value, so a test can tell which node answered.
pub(crate) fn value(v: &'static str) -> Response {
    Response::Value {
        siblings: vec![bytes::Bytes::from_static(v.as_bytes())],
        context: bytes::Bytes::from_static(v.as_bytes()),
        omitted: 0,
    }
}

/// A write acknowledgement whose context names the node that wrote.
pub(crate) fn written(by: &'static str) -> Response {
    Response::Written {
        context: bytes::Bytes::from_static(by.as_bytes()),
    }
}

/// The settings the fake node runs with; clients carry none, so any will do.
fn node_settings() -> kv_wire::ClusterSettings {
    kv_wire::ClusterSettings {
        replicas: 3,
        vnodes_per_weight: 64,
        balance: "global".to_owned(),
    }
}
