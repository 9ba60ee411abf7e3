//! Failover: when the connected node goes away mid-session, the next request
//! is answered through another listed node.

mod support;

use std::sync::Arc;

use kv_client::{Client, ClientConfig};
use kv_wire::client::Request;
use support::{Action, FakeNode, value};

#[tokio::test]
async fn read_after_the_connected_node_dies_is_answered_by_the_next_node() {
    let mut a = FakeNode::answering("default", 1, value("from-a")).await;
    let b = FakeNode::answering("default", 2, value("from-b")).await;
    let client = Client::connect(ClientConfig::new([a.addr.clone(), b.addr.clone()]))
        .await
        .unwrap();

    let first = client.get("k").await.unwrap();
    assert_eq!(first.value().map(|v| &v[..]), Some(&b"from-a"[..]));
    assert_eq!(b.connections(), 0, "the client stays on the first node");

    a.kill().await;

    let second = client.get("k").await.unwrap();
    assert_eq!(second.value().map(|v| &v[..]), Some(&b"from-b"[..]));
    assert_eq!(b.requests().len(), 1);
}

#[tokio::test]
async fn read_whose_connection_breaks_in_flight_is_retried_on_the_next_node() {
    // The first node stays up but drops every connection on which it
    // receives a read: the client must move on, not retry the same node.
    let a = FakeNode::start("default", 1, Arc::new(|_, _| Action::Drop)).await;
    let b = FakeNode::answering("default", 2, value("from-b")).await;
    let client = Client::connect(ClientConfig::new([a.addr.clone(), b.addr.clone()]))
        .await
        .unwrap();

    let read = client.get("k").await.unwrap();

    assert_eq!(read.value().map(|v| &v[..]), Some(&b"from-b"[..]));
    assert!(matches!(a.requests()[..], [Request::Get { .. }]));
    assert!(matches!(b.requests()[..], [Request::Get { .. }]));
}

#[tokio::test]
async fn node_unreachable_at_connect_is_skipped() {
    // An address nothing listens on: bound once, then closed.
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    let b = FakeNode::answering("default", 2, value("from-b")).await;
    let client = Client::connect(ClientConfig::new([dead, b.addr.clone()]))
        .await
        .unwrap();

    let read = client.get("k").await.unwrap();

    assert_eq!(read.value().map(|v| &v[..]), Some(&b"from-b"[..]));
}
