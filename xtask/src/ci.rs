//! `cargo xtask ci`: the checks that gate every change.

use anyhow::Result;

use crate::{cargo, have, run};

/// The nextest filter of the ci run: everything but the multi-node tests,
/// which `cargo xtask test-cluster` runs (see `test_cluster.rs`).
const CLUSTER_TESTS_EXCLUDED: &str = "not binary(/^cluster_/)";

/// cargo-deny version installed when missing; pinned so CI is repeatable.
const CARGO_DENY_VERSION: &str = "0.20.2";

pub(crate) fn all() -> Result<()> {
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    run(fmt)?;

    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]);
    run(clippy)?;

    let mut tests = cargo();
    if have("cargo", Some("nextest")) {
        // The multi-node tests return at once without KV_CLUSTER_TESTS, and
        // a test that did not run must not be reported as passed: they are
        // filtered out here, so nextest counts them as skipped.
        eprintln!(
            "skipping the multi-node tests (every cluster_* test binary): they run under `cargo xtask test-cluster`"
        );
        tests.args([
            "nextest",
            "run",
            "--workspace",
            "--locked",
            "--no-fail-fast",
            "-E",
            CLUSTER_TESTS_EXCLUDED,
        ]);
    } else {
        eprintln!(
            "cargo-nextest not found; running the tests with cargo test (the multi-node tests report passing without running; `cargo xtask test-cluster` runs them)"
        );
        tests.args(["test", "--workspace", "--locked", "--no-fail-fast"]);
    }
    run(tests)?;

    let mut doctests = cargo();
    doctests.args(["test", "--workspace", "--locked", "--doc"]);
    run(doctests)?;

    let mut doc = cargo();
    doc.args(["doc", "--workspace", "--no-deps", "--locked"])
        .env("RUSTDOCFLAGS", "-D warnings");
    run(doc)?;

    if !have("cargo-deny", None) {
        let mut install = cargo();
        install.args([
            "install",
            "--locked",
            "cargo-deny",
            "--version",
            CARGO_DENY_VERSION,
        ]);
        run(install)?;
    }
    // Advisories need the advisory database, which these machines cannot
    // fetch; README says how to run that check where the network allows.
    let mut deny = cargo();
    deny.args(["deny", "--locked", "check", "licenses", "bans", "sources"]);
    run(deny)
}
