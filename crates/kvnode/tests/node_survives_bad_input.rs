//! Bad input never takes a node down: each case gets a clear error or a
//! closed connection, and the node goes on serving everyone else.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::{Decoder, Encoder, Framed};

use common::Node;
use kv_client::ClientError;
use kv_wire::client::{ErrorCode, Request, Response};
use kv_wire::{Envelope, Hello, HelloReply, WireCodec};

const FRAME_LEN_MAX: usize = 2 * 1024 * 1024;
const VALUE_LEN_MAX: usize = 1024 * 1024;

/// A single node with short timeouts, so the tests run quickly.
fn node() -> Node {
    Node::start_temp(|dir| {
        let config = dir.join("kvnode.toml");
        std::fs::write(
            &config,
            format!(
                "[limits]\nframe_len_max = {FRAME_LEN_MAX}\nvalue_len_max = {VALUE_LEN_MAX}\nkey_len_max = 1024\n\
                 read_timeout_ms = 700\nidle_timeout_ms = 60000\nwrite_timeout_ms = 700\n"
            ),
        )
        .unwrap();
        vec!["--config".to_owned(), config.display().to_string()]
    })
}

/// A raw connection that has completed the client handshake.
async fn handshaken(node: &Node) -> TcpStream {
    let stream = TcpStream::connect(&node.addr).await.unwrap();
    let mut framed = Framed::new(stream, WireCodec::<HelloReply, Hello>::new(FRAME_LEN_MAX));
    framed.send(Hello::client("default")).await.unwrap();
    let reply = framed.next().await.unwrap().unwrap();
    assert!(matches!(reply, HelloReply::Welcome { .. }), "{reply:?}");
    let parts = framed.into_parts();
    assert!(parts.read_buf.is_empty());
    parts.io
}

/// Reads one answer frame, or `None` if the node closed the connection.
async fn read_answer(stream: &mut TcpStream) -> Option<Envelope<Response>> {
    let mut codec = WireCodec::<Envelope<Response>, ()>::new(FRAME_LEN_MAX);
    let mut buf = BytesMut::new();
    loop {
        if let Some(env) = codec.decode(&mut buf).unwrap() {
            return Some(env);
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read_buf(&mut buf))
            .await
            .expect("node answers or closes within 10 s")
            .unwrap_or(0);
        if n == 0 {
            return None;
        }
    }
}

/// Reads until the node closes the connection; fails after `limit`.
async fn expect_closed(stream: &mut TcpStream, limit: Duration) {
    let deadline = Instant::now() + limit;
    let mut sink = vec![0u8; 64 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut sink)).await {
            Err(_) => panic!("connection still open after {limit:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(_)) => {}
        }
    }
}

/// The node still serves a well-behaved client.
async fn still_serves(node: &Node) {
    let client = node.client().await;
    client.put("canary", "alive", None).await.unwrap();
    let read = client.get("canary").await.unwrap();
    assert_eq!(read.siblings, vec![bytes::Bytes::from("alive")]);
}

#[tokio::test]
async fn oversized_frame_is_answered_and_closed() {
    let node = node();
    let mut s = handshaken(&node).await;
    // Announce a frame far over the limit; send none of it.
    s.write_all(&(u32::MAX).to_be_bytes()).await.unwrap();
    let answer = read_answer(&mut s).await.expect("an error answer");
    match answer.body {
        Response::Error(e) => {
            assert_eq!(e.code, ErrorCode::InvalidRequest);
            assert!(e.message.contains("exceeds"), "{}", e.message);
        }
        other => panic!("expected an error, got {other:?}"),
    }
    expect_closed(&mut s, Duration::from_secs(5)).await;
    still_serves(&node).await;
}

#[tokio::test]
async fn random_bytes_are_refused() {
    let node = node();
    let mut s = TcpStream::connect(&node.addr).await.unwrap();
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    // The node may close before reading it all; a failed write is fine.
    let _ = s.write_all(&garbage).await;
    expect_closed(&mut s, Duration::from_secs(5)).await;
    still_serves(&node).await;
}

#[tokio::test]
async fn a_frame_damaged_on_the_way_is_refused_and_closed() {
    let node = node();
    let mut s = handshaken(&node).await;
    // A well-formed request whose payload no longer matches its checksum.
    let mut codec = WireCodec::<(), Envelope<Request>>::new(FRAME_LEN_MAX);
    let mut frame = BytesMut::new();
    let put = Request::Put {
        key: bytes::Bytes::from_static(b"damaged"),
        value: bytes::Bytes::from_static(b"value"),
        context: None,
        consistency: None,
    };
    codec
        .encode(Envelope { id: 1, body: put }, &mut frame)
        .unwrap();
    let last = frame.len() - 1;
    frame[last] ^= 0x20;
    s.write_all(&frame).await.unwrap();
    let answer = read_answer(&mut s).await.expect("an error answer");
    match answer.body {
        Response::Error(e) => assert!(e.message.contains("checksum"), "{}", e.message),
        other => panic!("expected an error, got {other:?}"),
    }
    expect_closed(&mut s, Duration::from_secs(5)).await;
    // Nothing of it was stored.
    let client = node.client().await;
    assert!(client.get("damaged").await.unwrap().siblings.is_empty());
    still_serves(&node).await;
}

#[tokio::test]
async fn truncated_frame_times_out() {
    let node = node();
    let mut s = handshaken(&node).await;
    s.write_all(&100u32.to_be_bytes()).await.unwrap();
    s.write_all(&[0u8; 10]).await.unwrap();
    // The rest never comes: the read timeout (700 ms) closes the connection.
    expect_closed(&mut s, Duration::from_secs(5)).await;
    still_serves(&node).await;
}

#[tokio::test]
async fn unknown_message_type_is_an_error() {
    let node = node();
    let mut s = handshaken(&node).await;
    // Envelope { id: 7, body: variant 99 }, which no Request has.
    let mut frame = BytesMut::new();
    frame.put_u32(2);
    frame.put_u32(crc32fast::hash(&[7, 99]));
    frame.put_slice(&[7, 99]);
    s.write_all(&frame).await.unwrap();
    let answer = read_answer(&mut s).await.expect("an error answer");
    assert!(
        matches!(&answer.body, Response::Error(e) if e.code == ErrorCode::InvalidRequest),
        "{answer:?}"
    );
    expect_closed(&mut s, Duration::from_secs(5)).await;
    still_serves(&node).await;
}

#[tokio::test]
async fn oversized_key_and_value_are_refused_and_the_connection_lives() {
    let node = node();
    let client = node.client().await;
    let err = client.put(vec![b'k'; 2000], "v", None).await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Server { code: ErrorCode::InvalidRequest, message } if message.contains("key")),
        "{err:?}"
    );
    let err = client
        .put("k", vec![b'v'; VALUE_LEN_MAX + 1], None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Server { code: ErrorCode::InvalidRequest, message } if message.contains("value")),
        "{err:?}"
    );
    // The same connection still works.
    client.put("k", "v", None).await.unwrap();
    assert_eq!(
        client.get("k").await.unwrap().siblings,
        vec![bytes::Bytes::from("v")]
    );
}

#[tokio::test]
async fn slow_sender_is_cut_off() {
    let node = node();
    let mut s = handshaken(&node).await;
    let frame = {
        let mut codec = WireCodec::<(), Envelope<Request>>::new(FRAME_LEN_MAX);
        let mut buf = BytesMut::new();
        tokio_util::codec::Encoder::encode(
            &mut codec,
            Envelope {
                id: 1,
                body: Request::Status,
            },
            &mut buf,
        )
        .unwrap();
        buf
    };
    // One byte every 300 ms: the frame never completes within 700 ms.
    let started = Instant::now();
    let mut closed = false;
    for byte in frame.iter().take(frame.len() - 1) {
        if s.write_all(&[*byte]).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    if !closed {
        expect_closed(&mut s, Duration::from_secs(5)).await;
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    still_serves(&node).await;
}

#[tokio::test]
async fn client_that_never_reads_is_closed() {
    let node = node();
    let client = node.client().await;
    client
        .put("big", vec![b'b'; VALUE_LEN_MAX], None)
        .await
        .unwrap();
    let mut s = handshaken(&node).await;
    // Ask for the big value many times and never read: the node's socket
    // buffer fills, its write times out (700 ms), and it closes.
    let mut codec = WireCodec::<(), Envelope<Request>>::new(FRAME_LEN_MAX);
    let mut buf = BytesMut::new();
    for id in 0..200 {
        let get = Request::Get {
            key: "big".into(),
            consistency: None,
        };
        tokio_util::codec::Encoder::encode(&mut codec, Envelope { id, body: get }, &mut buf)
            .unwrap();
    }
    let _ = s.write_all(&buf).await;
    // Meanwhile everyone else is served.
    tokio::time::sleep(Duration::from_millis(300)).await;
    still_serves(&node).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // What the node managed to send is far less than 200 MiB: it gave up.
    let mut received = 0usize;
    let mut chunk = vec![0u8; 1024 * 1024];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut chunk)).await {
            Err(_) => panic!("connection still open after {received} bytes"),
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => received += n,
        }
    }
    assert!(received < 100 * VALUE_LEN_MAX, "node sent {received} bytes");
}
