//! Limits that bound what one client costs a node (connections, idle time),
//! client failover, a graceful shutdown that keeps every acknowledged
//! write, and the lock that keeps a second node off a data directory.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use common::Node;
use kv_client::{Client, ClientConfig};
use kv_wire::{Hello, HelloReply, WireCodec};

/// A node whose `[limits]` table is `limits`, plus `args`.
fn node_with(limits: &str, args: &[&str]) -> Node {
    let limits = limits.to_owned();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    Node::start_temp(move |dir| {
        let config = dir.join("kvnode.toml");
        std::fs::write(&config, format!("[limits]\n{limits}")).unwrap();
        let mut all = vec!["--config".to_owned(), config.display().to_string()];
        all.extend(args);
        all
    })
}

/// Opens a connection and says hello; returns the framed stream and the
/// node's answer.
async fn hello(node: &Node) -> (Framed<TcpStream, WireCodec<HelloReply, Hello>>, HelloReply) {
    let stream = TcpStream::connect(&node.addr).await.unwrap();
    let mut framed = Framed::new(stream, WireCodec::<HelloReply, Hello>::new(1 << 20));
    framed.send(Hello::client("default")).await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(10), framed.next())
        .await
        .expect("the node answers the handshake")
        .expect("the node does not close first")
        .unwrap();
    (framed, reply)
}

/// A connection the node has welcomed, retrying refusals for up to 10 s.
async fn welcomed(node: &Node) -> Framed<TcpStream, WireCodec<HelloReply, Hello>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (conn, reply) = hello(node).await;
        if matches!(reply, HelloReply::Welcome { .. }) {
            return conn;
        }
        assert!(Instant::now() < deadline, "never welcomed: {reply:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn connections_past_the_limit_are_refused_with_a_reason() {
    let node = node_with("connections_max = 2\n", &[]);
    // The harness's "is it listening" probe holds a slot until the node sees
    // it close, so the first two connections may need a moment.
    let _first = welcomed(&node).await;
    let _second = welcomed(&node).await;
    let (_third, r3) = hello(&node).await;
    match r3 {
        HelloReply::Refused { reason } => assert!(reason.contains("too many"), "{reason}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Closing one frees its slot for a newcomer.
    drop(_first);
    welcomed(&node).await;
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let node = node_with("idle_timeout_ms = 500\n", &[]);
    let (framed, reply) = hello(&node).await;
    assert!(matches!(reply, HelloReply::Welcome { .. }), "{reply:?}");
    let mut stream = framed.into_inner();
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
        .await
        .expect("the node closes an idle connection")
        .unwrap_or(0);
    assert_eq!(n, 0, "expected the connection to close");
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[tokio::test]
async fn client_fails_over_to_a_live_node() {
    let node = node_with("", &[]);
    // The first address has nothing listening.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let client = Client::connect(ClientConfig::new([dead, node.addr.clone()]))
        .await
        .unwrap();
    client.put("k", "v", None).await.unwrap();
    assert_eq!(
        client.get("k").await.unwrap().siblings,
        vec![bytes::Bytes::from("v")]
    );
}

#[tokio::test]
async fn sigterm_shuts_down_cleanly_and_keeps_acknowledged_writes() {
    // Durability none: only the graceful shutdown's final sync and the
    // engine's close make these writes survive.
    let mut node = node_with("", &["--durability", "none"]);
    let client = node.client().await;
    for i in 0..200 {
        client
            .put(format!("key-{i}"), format!("value-{i}"), None)
            .await
            .unwrap();
    }
    drop(client);
    let status = node.terminate();
    assert!(
        status.success(),
        "exit status {status}; log:\n{}",
        node.log()
    );
    assert!(node.log().contains("stopped cleanly"), "{}", node.log());
    node.restart();
    let client = node.client().await;
    for i in 0..200 {
        let read = client.get(format!("key-{i}")).await.unwrap();
        assert_eq!(
            read.siblings,
            vec![bytes::Bytes::from(format!("value-{i}"))],
            "key-{i}"
        );
    }
}

#[tokio::test]
async fn a_second_node_on_the_same_data_directory_is_refused() {
    let node = node_with("", &[]);
    let client = node.client().await;
    client.put("k", "v", None).await.unwrap();
    let mut second = std::process::Command::new(env!("CARGO_BIN_EXE_kvnode"))
        .arg("serve")
        .args(["--data-dir", &node.dir.join("data").display().to_string()])
        .args(["--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = second.kill();
            panic!("a second node on a used data directory kept running");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "exit status {status}");
    assert!(stderr.contains("is in use by another kvnode"), "{stderr}");
    // The first node serves on, its data untouched.
    let read = client.get("k").await.unwrap();
    assert_eq!(read.siblings, vec![bytes::Bytes::from("v")]);
}
