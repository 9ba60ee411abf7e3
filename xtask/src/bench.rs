//! `cargo xtask bench <name>`: figures and criterion benchmarks of one area.
//!
//! The figures binary `benches/src/bin/<name>.rs` prints a table and writes
//! `target/bench/<name>.json` with flat keys. Criterion benchmarks of
//! `crates/kv-<name>` run next; each one whose group is named `<name>` has its
//! mean estimate merged into the JSON file as `criterion_<function>_ns`, so
//! one file holds every figure of the area.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value};

use crate::{cargo, workspace_root};

pub(crate) fn run(args: &[String]) -> Result<()> {
    let Some(name) = args.first() else {
        bail!(
            "usage: cargo xtask bench <name> [--no-criterion] [-- extra args for the figures binary]"
        );
    };
    let no_criterion = args.iter().any(|a| a == "--no-criterion");
    let extra: Vec<&String> = args
        .iter()
        .skip_while(|a| a.as_str() != "--")
        .skip(1)
        .collect();
    let root = workspace_root();
    let figures = root.join("benches/src/bin").join(format!("{name}.rs"));
    let crate_benches = root
        .join("crates")
        .join(format!("kv-{name}"))
        .join("benches");
    if !figures.exists() && !crate_benches.exists() {
        bail!(
            "no benchmarks named {name:?}: neither {} nor {} exists",
            figures.display(),
            crate_benches.display()
        );
    }

    if figures.exists() {
        let mut cmd = cargo();
        if name == "cluster" {
            // The load generator starts real node processes.
            cmd.env("KVNODE_BIN", crate::cluster::build_kvnode()?);
        }
        cmd.args([
            "run",
            "--release",
            "--locked",
            "--package",
            "kv-benches",
            "--bin",
            name,
            "--",
        ])
        .args(extra);
        crate::run(cmd)?;
    }

    if crate_benches.exists() && !no_criterion {
        let mut cmd = cargo();
        cmd.args(["bench", "--locked", "--package", &format!("kv-{name}")]);
        crate::run(cmd)?;
        merge_criterion(&target_dir(&root), name)?;
    }
    Ok(())
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

/// Folds `target/criterion/<name>/<function>/new/estimates.json` into
/// `target/bench/<name>.json` and prints what it folded.
fn merge_criterion(target: &Path, name: &str) -> Result<()> {
    let group_dir = target.join("criterion").join(name);
    let Ok(entries) = fs::read_dir(&group_dir) else {
        eprintln!(
            "no criterion group named {name:?} in {}",
            group_dir.display()
        );
        return Ok(());
    };
    let out = target.join("bench").join(format!("{name}.json"));
    let mut figures: Map<String, Value> = match fs::read_to_string(&out) {
        Ok(text) => {
            serde_json::from_str(&text).with_context(|| format!("{} is not JSON", out.display()))?
        }
        Err(_) => Map::new(),
    };
    let mut rows = Vec::new();
    for entry in entries {
        let dir = entry?.path();
        let estimates = dir.join("new/estimates.json");
        let Ok(text) = fs::read_to_string(&estimates) else {
            continue;
        };
        let v: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", estimates.display()))?;
        let Some(mean_ns) = v.pointer("/mean/point_estimate").and_then(Value::as_f64) else {
            continue;
        };
        let function = dir
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let key = format!(
            "criterion_{}_ns",
            function.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        );
        rows.push((key.clone(), mean_ns));
        figures.insert(key, Value::from((mean_ns * 10.0).round() / 10.0));
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    println!("\ncriterion estimates (mean) for {name}:");
    for (key, ns) in &rows {
        println!("  {key:<48} {ns:>12.1} ns");
    }
    fs::create_dir_all(out.parent().unwrap_or(target))?;
    fs::write(
        &out,
        serde_json::to_string_pretty(&Value::Object(figures))? + "\n",
    )?;
    println!("wrote {}", out.display());
    Ok(())
}
