//! `InProcessTransport` and `NoTimer`: replicas called directly in memory,
//! for benchmarks, examples, and a node's own local short-circuit.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{self, BoxFuture, FutureExt};
use kv_types::NodeId;

use crate::replica::Replica;
use crate::transport::{ReplicaRequest, ReplicaResponse, ReplicaTransport, Timer, TransportError};

/// A [`ReplicaTransport`] that hands each request straight to the named
/// in-memory [`Replica`]; unknown nodes are unreachable. Every call is
/// answered before `call` returns, which meets the transport contract.
#[derive(Debug, Default, Clone)]
pub struct InProcessTransport {
    replicas: BTreeMap<NodeId, Arc<Replica>>,
}

impl InProcessTransport {
    /// A transport to `replicas`, addressed by their ids.
    pub fn new(replicas: impl IntoIterator<Item = Arc<Replica>>) -> Self {
        Self {
            replicas: replicas.into_iter().map(|r| (r.id(), r)).collect(),
        }
    }
}

impl ReplicaTransport for InProcessTransport {
    fn call(
        &self,
        to: NodeId,
        req: ReplicaRequest,
    ) -> BoxFuture<'static, Result<ReplicaResponse, TransportError>> {
        let answer = match self.replicas.get(&to) {
            Some(r) => Ok(r.handle(req)),
            None => Err(TransportError::Unreachable { node: to }),
        };
        future::ready(answer).boxed()
    }
}

/// A [`Timer`] whose sleeps never end: no timeouts. Only for transports that
/// always answer, such as [`InProcessTransport`].
#[derive(Debug, Default, Clone, Copy)]
pub struct NoTimer;

impl Timer for NoTimer {
    fn sleep(&self, _duration: Duration) -> BoxFuture<'static, ()> {
        future::pending().boxed()
    }
}
