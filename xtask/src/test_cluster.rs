//! `cargo xtask test-cluster`: the tests that start real multi-node clusters.
//!
//! They start, kill and restart `kvnode` processes on loopback and wait for
//! failure detection, so the ordinary test run skips them; this task runs
//! them with `KV_CLUSTER_TESTS=1`.

use anyhow::Result;

use crate::{cargo, have, run};

pub(crate) fn run_all() -> Result<()> {
    let mut tests = cargo();
    tests.env("KV_CLUSTER_TESTS", "1");
    if have("cargo", Some("nextest")) {
        tests.args([
            "nextest",
            "run",
            "--locked",
            "--package",
            "kvnode",
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
            "--test",
            "cluster_*",
        ]);
    }
    run(tests)
}
