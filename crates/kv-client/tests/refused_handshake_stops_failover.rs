//! A node that refuses the handshake (here: another cluster's name) ends the
//! search for a node with `ClientError::Refused`; the client does not go on
//! to try the remaining addresses, unlike for a node it cannot reach.

mod support;

use kv_client::{Client, ClientConfig, ClientError};
use support::{FakeNode, value};

#[tokio::test]
async fn refused_handshake_at_connect_is_reported_without_trying_other_nodes() {
    let a = FakeNode::answering("prod", 1, value("from-a")).await;
    let b = FakeNode::answering("prod", 2, value("from-b")).await;
    let config = ClientConfig::new([a.addr.clone(), b.addr.clone()]).cluster("staging");

    let result = Client::connect(config).await;

    match result {
        Err(ClientError::Refused { addr, reason }) => {
            assert_eq!(addr, a.addr);
            // The reason is the node's own, from the handshake check.
            assert!(reason.contains("staging"), "{reason}");
        }
        other => panic!("expected Refused, got {:?}", other.map(|_| ())),
    }
    assert_eq!(a.connections(), 1);
    assert_eq!(
        b.connections(),
        0,
        "the client tried another node after a refusal"
    );
}

#[tokio::test]
async fn refused_handshake_during_failover_is_reported_without_trying_further_nodes() {
    let mut a = FakeNode::answering("prod", 1, value("from-a")).await;
    let b = FakeNode::answering("other", 2, value("from-b")).await;
    let c = FakeNode::answering("prod", 3, value("from-c")).await;
    let config =
        ClientConfig::new([a.addr.clone(), b.addr.clone(), c.addr.clone()]).cluster("prod");
    let client = Client::connect(config).await.unwrap();
    client.get("k").await.unwrap();

    a.kill().await;
    let result = client.get("k").await;

    match result {
        Err(ClientError::Refused { addr, .. }) => assert_eq!(addr, b.addr),
        other => panic!("expected Refused by the second node, got {other:?}"),
    }
    assert_eq!(c.connections(), 0, "the client went past a refusal");
}
