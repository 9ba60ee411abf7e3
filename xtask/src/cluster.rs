//! `cargo xtask cluster --nodes 3`: a local cluster on loopback for people to
//! try.
//!
//! Builds `kvnode` in release mode, starts the nodes with data directories
//! under `target/cluster/`, prints how to connect, and waits. Ctrl-C reaches
//! every node (they share the terminal's process group), and each shuts down
//! gracefully; xtask waits for all of them before it exits.

use std::process::{Child, Command};

use anyhow::{Context, Result, bail};

use crate::{cargo, run, workspace_root};

/// First client port; node i listens on `BASE_PORT + i`.
const BASE_PORT: u16 = 7000;
/// Bound on nodes started by this task.
const NODES_MAX: usize = 32;

pub(crate) fn start(args: &[String]) -> Result<()> {
    let mut nodes = 3usize;
    let mut extra: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--nodes" => {
                let v = it.next().context("--nodes needs a number")?;
                nodes = v.parse().with_context(|| format!("--nodes {v}"))?;
            }
            "--" => extra.extend(it.by_ref().cloned()),
            other => bail!(
                "unknown option {other:?}; usage: cargo xtask cluster [--nodes N] [-- kvnode flags]"
            ),
        }
    }
    if nodes == 0 || nodes > NODES_MAX {
        bail!("--nodes must be between 1 and {NODES_MAX}");
    }
    let bin = build_kvnode()?;
    let base = workspace_root().join("target/cluster");
    let mut children: Vec<(String, Child)> = Vec::new();
    let mut seeds: Vec<String> = Vec::new();
    for i in 0..nodes {
        let addr = format!("127.0.0.1:{}", usize::from(BASE_PORT) + i);
        let dir = base.join(format!("node-{i}"));
        std::fs::create_dir_all(&dir)?;
        let mut cmd = Command::new(&bin);
        cmd.arg("serve")
            .args(["--listen", &addr])
            .args(["--data-dir", &dir.display().to_string()]);
        if nodes > 1 {
            // Every node but the first joins through the first; with fewer
            // than three nodes, N is capped to the cluster size.
            let n = nodes.min(3).to_string();
            let q = (nodes.min(3) / 2 + 1).to_string();
            cmd.args(["--n", &n, "--r", &q, "--w", &q]);
            if !seeds.is_empty() {
                cmd.args(["--seeds", &seeds.join(",")]);
            }
        }
        cmd.args(&extra);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        seeds.push(addr.clone());
        children.push((addr, child));
    }
    let all = seeds.join(",");
    println!("\n{nodes} node(s) running; data under {}", base.display());
    for (addr, child) in &children {
        println!("  node at {addr} (pid {})", child.id());
    }
    println!("\ntry:");
    println!("  {} put --nodes {all} hello world", bin.display());
    println!("  {} get --nodes {all} hello", bin.display());
    println!("  {} status --nodes {all}", bin.display());
    println!("\nCtrl-C stops every node.");
    let mut failed = false;
    for (addr, mut child) in children {
        let status = child.wait()?;
        if !status.success() {
            eprintln!("node at {addr} exited with {status}");
            failed = true;
        }
    }
    if failed {
        bail!("a node failed");
    }
    Ok(())
}

/// Builds the node in release mode and returns its path.
pub(crate) fn build_kvnode() -> Result<std::path::PathBuf> {
    let mut build = cargo();
    build.args(["build", "--release", "--locked", "--package", "kvnode"]);
    run(build)?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), std::path::PathBuf::from);
    Ok(target.join("release/kvnode"))
}
