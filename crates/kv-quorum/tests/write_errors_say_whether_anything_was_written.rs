//! A failed write says truthfully whether it may have been applied: a full
//! hint store or a refusal after a lost exchange is "maybe applied", never
//! "nothing was written".

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns are test code too

mod common;

use std::sync::Arc;

use bytes::Bytes;
use common::{Sim, b, config, home};
use futures::future::{BoxFuture, FutureExt};
use kv_quorum::{
    AllAlive, Consistency, Coordinator, HintLimits, InProcessTransport, Mode, NoTimer, Placement,
    QuorumConfig, QuorumError, Replica, ReplicaRequest, ReplicaResponse, ReplicaTransport,
    RequestOptions, StaticRing, TransportError, WriteContext,
};
use kv_types::NodeId;

const ALL: RequestOptions = RequestOptions::with(Consistency::All);

#[test]
fn a_full_hint_store_reports_a_write_the_issuer_already_stored() {
    let limits = HintLimits {
        count_max: 0,
        bytes_max: 1 << 20,
    };
    let sim = Sim::with_hint_limits(3100, 4, limits);
    let h = home(&sim, b"k");
    sim.crash(h[2]);
    let sloppy = QuorumConfig {
        mode: Mode::Sloppy,
        ..config()
    };
    let c = sim.coordinator(h[0], sloppy);
    let err = sim.put(&c, "k", "v", None, ALL).unwrap_err();
    assert!(matches!(err, QuorumError::HintStoreFull { .. }), "{err:?}");
    // The issuer holds the write, so the error must not claim otherwise.
    sim.settle();
    assert_eq!(sim.stored(h[0], "k"), vec![b("v")]);
    assert!(!err.nothing_written(), "{err}");
    assert!(
        err.to_string().contains("may still become visible"),
        "{err}"
    );
}

/// Applies every request, but reports the exchange with `lossy` as lost.
struct LosesAnswersOf {
    inner: InProcessTransport,
    lossy: NodeId,
}

impl ReplicaTransport for LosesAnswersOf {
    fn call(
        &self,
        to: NodeId,
        req: ReplicaRequest,
    ) -> BoxFuture<'static, Result<ReplicaResponse, TransportError>> {
        let answer = self.inner.call(to, req);
        let lossy = to == self.lossy;
        async move {
            let answer = answer.await;
            if lossy {
                return Err(TransportError::Lost {
                    node: to,
                    detail: "connection reset".into(),
                });
            }
            answer
        }
        .boxed()
    }
}

#[test]
fn a_refusal_after_a_lost_exchange_is_indeterminate() {
    let (n1, n2) = (NodeId(1), NodeId(2));
    let r1 = Arc::new(Replica::in_memory(n1, HintLimits::default()));
    let r2 = Arc::new(Replica::in_memory(n2, HintLimits::default()));
    // Node 2 already holds a sibling node 1 missed.
    let resp = r2.handle(ReplicaRequest::Write {
        key: b("k"),
        context: WriteContext::new(),
        value: Some(b("old")),
        max_siblings: 1,
        state_bytes_max: 1 << 20,
    });
    assert!(matches!(resp, ReplicaResponse::Written { .. }), "{resp:?}");
    let ring = Arc::new(StaticRing::new([n1, n2]));
    assert_eq!(ring.preference_list(b"k", 2).len(), 2);
    let transport = LosesAnswersOf {
        inner: InProcessTransport::new([r1.clone(), r2]),
        lossy: n1,
    };
    let config = QuorumConfig {
        n: 2,
        r: 1,
        w: 1,
        max_siblings: 1,
        ..config()
    };
    let c = Coordinator::new(
        n1,
        config,
        ring,
        Arc::new(AllAlive),
        Arc::new(transport),
        Arc::new(NoTimer),
    )
    .unwrap();
    let put = c.put(
        b"k",
        Bytes::from_static(b"new"),
        None,
        RequestOptions::DEFAULT,
    );
    let err = futures::executor::block_on(put).unwrap_err();
    // Node 1 applied the write and its answer was lost; node 2 refused it
    // for its own sibling. The write exists, so the error must say maybe.
    assert_eq!(
        r1.read(b"k").unwrap().values().collect::<Vec<_>>(),
        vec![&b("new")]
    );
    assert!(matches!(err, QuorumError::Indeterminate { .. }), "{err:?}");
    assert!(!err.nothing_written());
}

#[test]
fn refusals_before_anything_is_sent_say_nothing_was_written() {
    let sim = Sim::new(3200, 3);
    let c = sim.coordinator(sim.nodes[0], config());
    sim.crash(sim.nodes[1]);
    sim.crash(sim.nodes[2]);
    let err = sim.put(&c, "k", "v", None, ALL).unwrap_err();
    assert!(matches!(err, QuorumError::Unavailable { .. }), "{err:?}");
    assert!(err.nothing_written());
    sim.settle();
    assert!(sim.stored(sim.nodes[0], "k").is_empty());
    let bad = kv_quorum::CausalContext::from_bytes(vec![9u8, 1, 2]);
    let err = sim.put(&c, "k", "v", Some(&bad), ALL).unwrap_err();
    assert!(matches!(err, QuorumError::InvalidContext { .. }), "{err:?}");
    assert!(err.nothing_written());
}
