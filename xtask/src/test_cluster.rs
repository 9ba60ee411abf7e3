//! `cargo xtask test-cluster`: the tests that start real multi-node
//! clusters, then the fault-injection harness.
//!
//! First the nextest cluster tests (`KV_CLUSTER_TESTS=1`, binaries named
//! `cluster_*` in kvnode and kv-tests); then `kv-harness`, which starts
//! clusters of the debug `kvnode`, loads them, injects faults on a seeded
//! schedule, checks the history and writes
//! `<target>/test-cluster/summary.json` (`<target>` is `CARGO_TARGET_DIR`
//! or the workspace's `target/`).
//!
//! Flags: `--seed S`, `--scenario NAME` (runs that scenario only and skips
//! the nextest tests, to replay quickly), `--nodes N`, `--duration SECS`,
//! `--soak`, and `--inject-bug early-ack` (builds the node with a deliberate
//! bug, to show the checkers catch it; skips the nextest tests).

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{cargo, have, run, workspace_root};

/// The deliberate bugs `--inject-bug` can build in, with their feature.
const BUGS: &[(&str, &str)] = &[("early-ack", "kvnode/inject-bug-early-ack")];

pub(crate) fn run_all(args: &[String]) -> Result<()> {
    let mut harness_args: Vec<String> = Vec::new();
    let mut bug: Option<&str> = None;
    let mut only_one = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--seed" | "--scenario" | "--nodes" | "--duration" => {
                let v = it.next().with_context(|| format!("{arg} needs a value"))?;
                only_one |= arg == "--scenario";
                harness_args.extend([arg.clone(), v.clone()]);
            }
            "--soak" => harness_args.push(arg.clone()),
            "--inject-bug" => {
                let v = it.next().context("--inject-bug needs a name")?;
                let Some(&(_, feature)) = BUGS.iter().find(|(name, _)| name == v) else {
                    bail!("unknown bug {v:?}; known: early-ack");
                };
                bug = Some(feature);
            }
            other => bail!(
                "unknown option {other:?}; usage: cargo xtask test-cluster [--seed S] \
                 [--scenario NAME] [--nodes N] [--duration SECS] [--soak] [--inject-bug early-ack]"
            ),
        }
    }
    install_tools();
    if !only_one && bug.is_none() {
        nextest()?;
    }
    let kvnode = build_kvnode(bug)?;
    let out = target_dir().join("test-cluster");
    let mut harness = cargo();
    harness
        .args([
            "run",
            "--locked",
            "--package",
            "kv-tests",
            "--bin",
            "kv-harness",
            "--",
        ])
        .arg("--kvnode")
        .arg(&kvnode)
        .arg("--out")
        .arg(&out)
        .args(&harness_args);
    let result = run(harness);
    if bug.is_some() {
        // The next ordinary run must not test the bugged binary.
        eprintln!("note: kvnode was built with a deliberate bug; the next run rebuilds it");
    }
    result
}

/// The existing real-process tests.
fn nextest() -> Result<()> {
    let mut tests = cargo();
    tests.env("KV_CLUSTER_TESTS", "1");
    if have("cargo", Some("nextest")) {
        tests.args([
            "nextest",
            "run",
            "--locked",
            "--package",
            "kvnode",
            "--package",
            "kv-tests",
            "-E",
            "binary(/^cluster_/)",
            "--no-fail-fast",
        ]);
    } else {
        tests.args([
            "test",
            "--locked",
            "--package",
            "kvnode",
            "--package",
            "kv-tests",
            "--test",
            "cluster_*",
        ]);
    }
    run(tests)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from)
}

/// Builds the debug node, with `feature` if given; returns its path.
fn build_kvnode(feature: Option<&str>) -> Result<PathBuf> {
    let mut build = cargo();
    build.args(["build", "--locked", "--package", "kvnode"]);
    if let Some(f) = feature {
        build.args(["--features", f]);
    }
    run(build)?;
    Ok(target_dir().join("debug/kvnode"))
}

/// Installs iptables and faketime when they are missing and we are root;
/// otherwise says why not and goes on (the scenarios that need them report
/// themselves skipped).
fn install_tools() {
    let missing_iptables = !have("iptables", None);
    let missing_faketime = !std::path::Path::new("/usr/bin/faketime").exists();
    if !missing_iptables && !missing_faketime {
        return;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root {
        eprintln!(
            "note: iptables or faketime is missing and we are not root; \
             the scenarios that need them will be skipped"
        );
        return;
    }
    let status = Command::new("apt-get")
        .args([
            "install",
            "-y",
            "--no-install-recommends",
            "iptables",
            "faketime",
        ])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => eprintln!(
            "note: apt-get install iptables faketime failed ({s}); \
             the scenarios that need them will be skipped"
        ),
        Err(e) => eprintln!(
            "note: cannot run apt-get ({e}); the scenarios that need iptables or faketime \
             will be skipped"
        ),
    }
}
