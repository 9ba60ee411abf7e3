//! The RESP front door, driven by the `redis` client crate against one real
//! kvnode started with `--resp-listen`: commands round trip, pipelines
//! answer in order, siblings show through `KV.GET` and resolve with
//! `KV.SET`, and bad input gets an error and a close while the node goes
//! on serving.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::Node;

/// Largest value the test node takes; the bulk limit follows it.
const VALUE_LEN_MAX: usize = 64 * 1024;

/// One node with its RESP port, and that port's address.
fn node() -> (Node, String) {
    let resp = format!("127.0.0.1:{}", free_port());
    let args = resp.clone();
    let node = Node::start_temp(move |dir| {
        let config = dir.join("kvnode.toml");
        std::fs::write(
            &config,
            format!(
                "[limits]\nvalue_len_max = {VALUE_LEN_MAX}\nread_timeout_ms = 2000\nwrite_timeout_ms = 1000\n"
            ),
        )
        .unwrap();
        vec![
            "--config".to_owned(),
            config.display().to_string(),
            "--resp-listen".to_owned(),
            args,
        ]
    });
    (node, resp)
}

fn connect(resp: &str) -> redis::Connection {
    let client = redis::Client::open(format!("redis://{resp}/")).unwrap();
    let con = client
        .get_connection_with_timeout(Duration::from_secs(10))
        .unwrap();
    con.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    con
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Sends raw bytes and reads everything until the node closes (bounded by
/// a read timeout); answers what came back.
fn raw_until_closed(resp: &str, input: &[u8]) -> String {
    let mut s = std::net::TcpStream::connect(resp).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The node may close before taking it all; a failed write is fine.
    let _ = s.write_all(input);
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the node neither answered nor closed: {e}"),
        }
        assert!(got.len() < 1 << 20, "the node keeps sending");
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn strings_round_trip() {
    let (_node, resp) = node();
    let mut con = connect(&resp);
    let pong: String = redis::cmd("PING").query(&mut con).unwrap();
    assert_eq!(pong, "PONG");
    let echo: String = redis::cmd("ECHO").arg("hello").query(&mut con).unwrap();
    assert_eq!(echo, "hello");

    let () = redis::cmd("SET").arg("a").arg("1").query(&mut con).unwrap();
    let () = redis::cmd("SET").arg("a").arg("2").query(&mut con).unwrap();
    let a: String = redis::cmd("GET").arg("a").query(&mut con).unwrap();
    assert_eq!(a, "2", "a SET supersedes what it read");
    let missing: Option<String> = redis::cmd("GET").arg("nope").query(&mut con).unwrap();
    assert_eq!(missing, None);

    let () = redis::cmd("MSET")
        .arg(&["b", "x", "c", "y"])
        .query(&mut con)
        .unwrap();
    let values: Vec<Option<String>> = redis::cmd("MGET")
        .arg(&["a", "b", "nope", "c"])
        .query(&mut con)
        .unwrap();
    assert_eq!(
        values,
        vec![Some("2".into()), Some("x".into()), None, Some("y".into())]
    );
    let exists: i64 = redis::cmd("EXISTS")
        .arg(&["a", "b", "nope"])
        .query(&mut con)
        .unwrap();
    assert_eq!(exists, 2);
    let deleted: i64 = redis::cmd("DEL")
        .arg(&["a", "nope", "b"])
        .query(&mut con)
        .unwrap();
    assert_eq!(deleted, 2);
    let gone: Option<String> = redis::cmd("GET").arg("a").query(&mut con).unwrap();
    assert_eq!(gone, None);
    let exists: i64 = redis::cmd("EXISTS").arg("b").query(&mut con).unwrap();
    assert_eq!(exists, 0);
    let c: String = redis::cmd("GET").arg("c").query(&mut con).unwrap();
    assert_eq!(c, "y");
}

#[test]
fn a_pipeline_is_answered_in_order() {
    let (_node, resp) = node();
    let mut con = connect(&resp);
    let mut pipe = redis::pipe();
    for i in 0..50 {
        pipe.cmd("SET").arg(format!("p{i}")).arg(format!("v{i}"));
        pipe.cmd("GET").arg(format!("p{i}"));
    }
    let answers: Vec<redis::Value> = pipe.query(&mut con).unwrap();
    assert_eq!(answers.len(), 100);
    for (i, pair) in answers.chunks(2).enumerate() {
        assert_eq!(pair[0], redis::Value::Okay, "SET p{i}");
        assert_eq!(
            pair[1],
            redis::Value::BulkString(format!("v{i}").into_bytes()),
            "GET p{i}"
        );
    }
}

#[test]
fn errors_keep_the_connection() {
    let (_node, resp) = node();
    let mut con = connect(&resp);
    let err = redis::cmd("FLUSHALL").query::<()>(&mut con).unwrap_err();
    assert!(
        err.to_string().contains("unknown command 'FLUSHALL'"),
        "{err}"
    );
    let err = redis::cmd("SET")
        .arg(&["k", "v", "EX", "10"])
        .query::<()>(&mut con)
        .unwrap_err();
    assert!(err.to_string().contains("'EX'"), "{err}");
    let err = redis::cmd("DBSIZE").query::<i64>(&mut con).unwrap_err();
    assert!(err.to_string().contains("honestly"), "{err}");
    let err = redis::cmd("SELECT")
        .arg(1)
        .query::<()>(&mut con)
        .unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");
    let () = redis::cmd("SELECT").arg(0).query(&mut con).unwrap();
    // Nothing was written by the refused SET, and the connection still works.
    let k: Option<String> = redis::cmd("GET").arg("k").query(&mut con).unwrap();
    assert_eq!(k, None);
    let info: String = redis::cmd("INFO").query(&mut con).unwrap();
    assert!(info.contains("redis_version:"), "{info}");
}

#[test]
fn siblings_show_and_resolve_through_kv_commands() {
    let (_node, resp) = node();
    let mut con = connect(&resp);
    for value in ["one", "two"] {
        let () = redis::cmd("KV.SET")
            .arg(&["k", value, ""])
            .query(&mut con)
            .unwrap();
    }
    let read: Vec<Vec<u8>> = redis::cmd("KV.GET").arg("k").query(&mut con).unwrap();
    assert_eq!(read.len(), 3, "a context and two siblings: {read:?}");
    let mut siblings = read[1..].to_vec();
    siblings.sort();
    assert_eq!(siblings, vec![b"one".to_vec(), b"two".to_vec()]);
    // Plain GET answers one of them: the last, by the documented rule.
    let one: Vec<u8> = redis::cmd("GET").arg("k").query(&mut con).unwrap();
    assert_eq!(one, read[2]);

    let () = redis::cmd("KV.SET")
        .arg("k")
        .arg("both")
        .arg(&read[0])
        .query(&mut con)
        .unwrap();
    let read: Vec<Vec<u8>> = redis::cmd("KV.GET").arg("k").query(&mut con).unwrap();
    assert_eq!(read.len(), 2, "resolved to one sibling: {read:?}");
    assert_eq!(read[1], b"both");
}

#[test]
fn bad_input_is_answered_and_closed_and_the_node_still_serves() {
    let (_node, resp) = node();
    let over = VALUE_LEN_MAX + 1;
    let answer = raw_until_closed(&resp, format!("*2\r\n$3\r\nGET\r\n${over}\r\n").as_bytes());
    assert!(
        answer.starts_with("-ERR Protocol error") && answer.contains("exceeds"),
        "{answer:?}"
    );

    // Answers before the bad frame still come back, in order.
    let answer = raw_until_closed(&resp, b"PING\r\n*1\r\n+nope\r\n");
    assert!(
        answer.starts_with("+PONG\r\n-ERR Protocol error"),
        "{answer:?}"
    );

    // An inline command that never ends.
    let answer = raw_until_closed(&resp, &vec![b'a'; 128 * 1024]);
    assert!(answer.starts_with("-ERR Protocol error"), "{answer:?}");

    // QUIT answers, then closes.
    assert_eq!(raw_until_closed(&resp, b"QUIT\r\nPING\r\n"), "+OK\r\n");

    let mut con = connect(&resp);
    let () = redis::cmd("SET")
        .arg("canary")
        .arg("alive")
        .query(&mut con)
        .unwrap();
    let v: String = redis::cmd("GET").arg("canary").query(&mut con).unwrap();
    assert_eq!(v, "alive");
}

#[test]
fn a_client_that_never_reads_is_closed_and_the_node_still_serves() {
    let (_node, resp) = node();
    let mut con = connect(&resp);
    let big = vec![b'x'; VALUE_LEN_MAX];
    let () = redis::cmd("SET")
        .arg("big")
        .arg(&big)
        .query(&mut con)
        .unwrap();

    // Ask for far more answer bytes than socket buffers hold, read none.
    let commands = 2000;
    let mut s = std::net::TcpStream::connect(&resp).unwrap();
    s.write_all(&b"GET big\r\n".repeat(commands)).unwrap();
    // Well past the write timeout (1 s), the node has given up on us.
    std::thread::sleep(Duration::from_secs(5));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = 0usize;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the node neither answered nor closed: {e}"),
        }
        assert!(
            got < commands * VALUE_LEN_MAX,
            "the node answered everything"
        );
    }
    assert!(got < commands * VALUE_LEN_MAX / 2, "read {got} bytes");

    let v: Vec<u8> = redis::cmd("GET").arg("big").query(&mut con).unwrap();
    assert_eq!(v.len(), VALUE_LEN_MAX);
}

/// Debian's redis-cli, installed when missing; `None` (the test is
/// skipped, and says so) when it cannot be.
fn redis_cli() -> Option<&'static str> {
    let works = || {
        std::process::Command::new("redis-cli")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !works() {
        let installed = std::process::Command::new("apt-get")
            .args(["install", "-y", "-q", "redis-tools"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .is_ok_and(|o| o.status.success());
        if !installed || !works() {
            eprintln!("skipped: redis-cli is missing and apt-get could not install redis-tools");
            return None;
        }
    }
    Some("redis-cli")
}

#[test]
fn redis_cli_works_against_the_front_door() {
    let Some(cli) = redis_cli() else { return };
    let (_node, resp) = node();
    let (host, port) = resp.rsplit_once(':').unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(cli)
            .args(["-h", host, "-p", port])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(run(&["PING"]), "PONG");
    assert_eq!(run(&["SET", "greeting", "hello"]), "OK");
    assert_eq!(run(&["GET", "greeting"]), "hello");
    assert_eq!(run(&["MSET", "a", "1", "b", "2"]), "OK");
    assert_eq!(run(&["MGET", "a", "b"]), "1\n2");
    assert_eq!(run(&["DEL", "a", "b", "missing"]), "2");
    assert!(run(&["INFO"]).contains("redis_version:"));
}
