//! N and the ring's configuration are cluster settings: a node started with
//! another N than its seed refuses to join, naming both values, and `status`
//! shows what every member runs with.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Node;

/// Runs `kvnode serve` with `args` until it exits (at most 30 s); returns
/// whether it succeeded and what it wrote to stderr.
fn run_to_exit(args: &[&str]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kvnode"))
        .arg("serve")
        .args(["--data-dir", &dir.path().join("data").display().to_string()])
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the node did not exit; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_node_with_another_n_than_its_seed_refuses_to_join() {
    // A seed started alone defaults to N=1; a node that expects N=3 must not
    // join it and place replicas as if there were three.
    let seed = Node::start_temp(|_| Vec::new());
    let (ok, stderr) = run_to_exit(&["--seeds", &seed.addr, "--n", "3", "--r", "2", "--w", "2"]);
    assert!(
        !ok,
        "the node joined a cluster with another N; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("N=1") && stderr.contains("N=3") && stderr.contains(&seed.addr),
        "the error must name the seed and both values:\n{stderr}"
    );
    // The seed saw the attempt and says why it refused.
    assert!(seed.log().contains("peer refused"), "{}", seed.log());
    // And it never became a member.
    let status = seed.client().await.status().await.unwrap();
    assert_eq!(status.members.len(), 1, "{status:?}");
}

#[tokio::test]
async fn status_shows_what_every_member_runs_with() {
    let seed = Node::start_temp(|_| vec!["--n".into(), "2".into(), "--w".into(), "2".into()]);
    let joiner = Node::start_temp({
        let seed = seed.addr.clone();
        move |_| {
            ["--seeds", &seed, "--n", "2", "--r", "2", "--w", "1"]
                .map(str::to_owned)
                .to_vec()
        }
    });
    let client = seed.client().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = client.status().await.unwrap();
        let mut settings: Vec<&str> = status.members.iter().map(|m| m.settings.as_str()).collect();
        settings.sort_unstable();
        if settings
            == [
                "n=2 r=1 w=2 strict periodic:100",
                "n=2 r=2 w=1 strict periodic:100",
            ]
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "members' settings never showed: {status:?}\njoiner log:\n{}",
            joiner.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
