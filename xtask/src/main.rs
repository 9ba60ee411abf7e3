//! Project automation, run as `cargo xtask <task>`.
//!
//! Tasks:
//!
//! - `ci`: everything CI checks, in order: formatting, clippy with warnings
//!   denied, the tests (nextest, then doctests), rustdoc with warnings denied,
//!   and `cargo deny check licenses bans sources`.
//! - `bench <name>`: the figures binary `benches/src/bin/<name>.rs` (which
//!   prints a table and writes `target/bench/<name>.json`), then the criterion
//!   benchmarks of `crates/kv-<name>`, whose estimates are merged into the
//!   same JSON file.
//! - `cluster --nodes N`: a local cluster on loopback for people to try.
//! - `test-cluster`: the tests that start real multi-node clusters, then the
//!   fault-injection harness (`kv-harness`).
//! - `mutants [--crate C] [--file F]`: cargo-mutants on demand; figures in
//!   `target/mutants/summary.json`.
//!
//! xtask keeps few dependencies (anyhow, serde_json) so that it builds fast.

mod bench;
mod ci;
mod cluster;
mod mutants;
mod test_cluster;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  ci             fmt --check, clippy -D warnings, tests, rustdoc -D warnings, cargo deny
  bench <name>   figures and criterion benchmarks of one area (ring, storage, ...)
  cluster        start a local cluster on loopback: [--nodes N] [-- kvnode flags]
  test-cluster   real multi-node cluster tests, then the fault-injection harness:
                 [--seed S] [--scenario NAME] [--nodes N] [--duration SECS] [--soak]
                 [--inject-bug early-ack]
  mutants        mutation testing: [--crate C] [--file F]... [--timeout S] [--jobs N]
";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(task) = args.first() else {
        eprint!("{USAGE}");
        bail!("no task given");
    };
    match task.as_str() {
        "ci" => ci::all(),
        "bench" => bench::run(&args[1..]),
        "cluster" => cluster::start(&args[1..]),
        "test-cluster" => test_cluster::run_all(&args[1..]),
        "mutants" => mutants::run_task(&args[1..]),
        "help" | "--help" | "-h" => {
            print!("{USAGE}");
            Ok(())
        }
        other => {
            eprint!("{USAGE}");
            bail!("unknown task {other:?}")
        }
    }
}

/// The workspace root: the parent of xtask's own manifest directory.
fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The cargo binary that invoked us, so that toolchain choice carries through.
fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root());
    cmd
}

/// Runs `cmd`, echoing it first, and fails if it does not exit successfully.
fn run(mut cmd: Command) -> Result<()> {
    eprintln!("$ {}", show(&cmd));
    let status = cmd
        .status()
        .with_context(|| format!("could not start {}", show(&cmd)))?;
    if !status.success() {
        bail!("{} failed with {status}", show(&cmd));
    }
    Ok(())
}

fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    s
}

/// Whether `program --version` runs.
fn have(program: &str, sub: Option<&str>) -> bool {
    let mut cmd = Command::new(program);
    if let Some(sub) = sub {
        cmd.arg(sub);
    }
    cmd.arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
