//! A write whose connection broke after it was sent may have been applied:
//! the client reports `ConnectionLost { maybe_applied: true }` and does not
//! send it to another node, even though another node is reachable.

mod support;

use std::sync::Arc;

use kv_client::{Client, ClientConfig, ClientError};
use kv_wire::client::Request;
use support::{Action, FakeNode, value, written};

/// A first node that reads every write and then drops the connection
/// unanswered, and a healthy second node.
async fn nodes() -> (FakeNode, FakeNode) {
    let a = FakeNode::start(
        "default",
        1,
        Arc::new(|_, req| match req {
            Request::Get { .. } => Action::Reply(value("from-a")),
            _ => Action::Drop,
        }),
    )
    .await;
    let b = FakeNode::start(
        "default",
        2,
        Arc::new(|_, req| match req {
            Request::Get { .. } => Action::Reply(value("from-b")),
            _ => Action::Reply(written("from-b")),
        }),
    )
    .await;
    (a, b)
}

fn assert_lost_maybe_applied(result: Result<kv_client::Context, ClientError>, a: &FakeNode) {
    match result {
        Err(ClientError::ConnectionLost {
            addr,
            maybe_applied: true,
        }) => assert_eq!(addr, a.addr),
        other => panic!("expected ConnectionLost with maybe_applied, got {other:?}"),
    }
}

#[tokio::test]
async fn put_lost_after_sending_fails_maybe_applied_and_is_not_resent() {
    let (a, b) = nodes().await;
    let client = Client::connect(ClientConfig::new([a.addr.clone(), b.addr.clone()]))
        .await
        .unwrap();

    let result = client.put("k", "v", None).await;

    assert_lost_maybe_applied(result, &a);
    assert!(matches!(a.requests()[..], [Request::Put { .. }]));
    assert_eq!(b.requests(), vec![], "the write was resent to another node");

    // The second node was reachable all along: a resend would have
    // succeeded, so the failure above is the client's choice.
    let read = client.get("k").await.unwrap();
    assert_eq!(read.value().map(|v| &v[..]), Some(&b"from-b"[..]));
    assert!(matches!(b.requests()[..], [Request::Get { .. }]));
}

#[tokio::test]
async fn delete_lost_after_sending_fails_maybe_applied_and_is_not_resent() {
    let (a, b) = nodes().await;
    let client = Client::connect(ClientConfig::new([a.addr.clone(), b.addr.clone()]))
        .await
        .unwrap();

    let result = client.delete("k", None).await;

    assert_lost_maybe_applied(result, &a);
    assert!(matches!(a.requests()[..], [Request::Delete { .. }]));
    assert_eq!(
        b.requests(),
        vec![],
        "the delete was resent to another node"
    );

    let read = client.get("k").await.unwrap();
    assert_eq!(read.value().map(|v| &v[..]), Some(&b"from-b"[..]));
}
