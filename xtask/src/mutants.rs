//! `cargo xtask mutants [--crate C] [--file F]... [--timeout S] [--jobs N]
//! [--in-place] [-- cargo-mutants args]`: mutation testing with cargo-mutants, on demand
//! (far too slow for every push).
//!
//! Installs cargo-mutants when missing, runs it (under nextest when
//! installed), keeps each run's `mutants.out` in
//! `target/mutants/runs/<crate>-<files>/`, and rewrites
//! `target/mutants/summary.json` from every run kept there: `caught`,
//! `missed`, `timeout` and `unviable` per crate, per file, and the missed
//! mutants by name. Running a file again replaces only its own run.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::{cargo, have, run, workspace_root};

/// Seconds a mutant's tests may take before it counts as a timeout, unless
/// `--timeout` says otherwise. The crate suites take well under a minute
/// unmutated; a mutant that loops forever should not cost more than this.
const TIMEOUT_S_DEFAULT: u64 = 300;

const USAGE: &str = "\
usage: cargo xtask mutants [--crate C] [--file F]... [--timeout S] [--jobs N] [-- ARGS]
  --crate C    mutate only package C (e.g. kv-storage)
  --file F     mutate only files matching F (repeatable), e.g. crates/kv-storage/src/wal.rs
  --timeout S  seconds a mutant's tests may run (default 300)
  --jobs N     mutants built and tested at once (default 1)
  --in-place   mutate this tree and reuse its target directory (much faster on a
               small machine; do not edit the tree meanwhile)
  -- ARGS      passed to cargo-mutants as they are
";

struct Args {
    krate: Option<String>,
    files: Vec<String>,
    timeout_s: u64,
    jobs: u32,
    in_place: bool,
    extra: Vec<String>,
}

fn parse(args: &[String]) -> Result<Args> {
    let mut out = Args {
        krate: None,
        files: Vec::new(),
        timeout_s: TIMEOUT_S_DEFAULT,
        jobs: 1,
        in_place: false,
        extra: Vec::new(),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .with_context(|| format!("{name} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            "--crate" | "-p" => out.krate = Some(value("--crate")?),
            "--file" | "-f" => out.files.push(value("--file")?),
            "--timeout" => out.timeout_s = value("--timeout")?.parse().context("--timeout")?,
            "--jobs" | "-j" => out.jobs = value("--jobs")?.parse().context("--jobs")?,
            "--in-place" => out.in_place = true,
            "--" => {
                out.extra = it.cloned().collect();
                break;
            }
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    Ok(out)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from)
}

/// A directory name for one run: the crate and the files' stems.
fn run_name(args: &Args) -> String {
    let mut parts = vec![args.krate.clone().unwrap_or_else(|| "workspace".into())];
    for f in &args.files {
        let stem = Path::new(f)
            .file_stem()
            .map_or_else(|| f.clone(), |s| s.to_string_lossy().into_owned());
        parts.push(stem);
    }
    parts
        .join("-")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub(crate) fn run_task(args: &[String]) -> Result<()> {
    let args = parse(args)?;
    if !have("cargo", Some("mutants")) {
        let mut install = cargo();
        install.args(["install", "--locked", "cargo-mutants"]);
        run(install)?;
    }
    let runs = target_dir().join("mutants").join("runs");
    let out = runs.join(run_name(&args));
    if out.exists() {
        fs::remove_dir_all(&out).with_context(|| format!("removing {}", out.display()))?;
    }
    fs::create_dir_all(&out)?;

    let mut cmd = cargo();
    cmd.args(["mutants", "--no-shuffle"]);
    cmd.arg("--output").arg(&out);
    cmd.args(["--timeout", &args.timeout_s.to_string()]);
    if args.in_place {
        // Mutates the working tree itself and builds in the usual target
        // directory, so only the mutated crate is rebuilt; one job only.
        cmd.arg("--in-place");
    } else {
        cmd.args(["--jobs", &args.jobs.to_string()]);
    }
    if let Some(c) = &args.krate {
        cmd.args(["--package", c]);
    }
    for f in &args.files {
        cmd.args(["--file", f]);
    }
    if have("cargo", Some("nextest")) {
        cmd.args(["--test-tool", "nextest"]);
    }
    cmd.args(&args.extra);
    // cargo-mutants exits non-zero when it finds missed mutants or
    // timeouts: that is a finding to summarise, not a failure of the task.
    if let Err(e) = run(cmd) {
        eprintln!("{e:#}");
    }
    let outcomes = out.join("mutants.out").join("outcomes.json");
    if !outcomes.exists() {
        bail!("cargo-mutants wrote no {}", outcomes.display());
    }
    let summary = summarise(&runs)?;
    let path = target_dir().join("mutants").join("summary.json");
    fs::write(&path, serde_json::to_string_pretty(&summary)? + "\n")?;
    println!("{}", serde_json::to_string_pretty(&summary["crates"])?);
    eprintln!("wrote {}", path.display());
    Ok(())
}

#[derive(Default)]
struct Tally {
    caught: u64,
    missed: u64,
    timeout: u64,
    unviable: u64,
}

impl Tally {
    fn add(&mut self, outcome: &str) {
        match outcome {
            "CaughtMutant" => self.caught += 1,
            "MissedMutant" => self.missed += 1,
            "Timeout" => self.timeout += 1,
            "Unviable" => self.unviable += 1,
            _ => {}
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "caught": self.caught,
            "missed": self.missed,
            "timeout": self.timeout,
            "unviable": self.unviable,
        })
    }
}

/// Folds every run's `outcomes.json` under `runs` into one summary. A
/// mutant seen in two runs (overlapping `--file`s) counts once, from the
/// run read last in name order.
fn summarise(runs: &Path) -> Result<Value> {
    let mut mutants: BTreeMap<String, (String, String, String)> = BTreeMap::new();
    let mut dirs: Vec<PathBuf> = fs::read_dir(runs)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    dirs.sort();
    for dir in dirs {
        let path = dir.join("mutants.out").join("outcomes.json");
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        let v: Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        for o in v["outcomes"].as_array().into_iter().flatten() {
            let Some(m) = o["scenario"].get("Mutant") else {
                continue;
            };
            let krate = m["package"].as_str().unwrap_or("?").to_owned();
            let file = m["file"].as_str().unwrap_or("?").to_owned();
            let outcome = o["summary"].as_str().unwrap_or("?").to_owned();
            mutants.insert(describe(m), (krate, file, outcome));
        }
    }
    let mut crates: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut files: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut missed = Vec::new();
    for (name, (krate, file, outcome)) in &mutants {
        crates.entry(krate).or_default().add(outcome);
        files.entry(file).or_default().add(outcome);
        if outcome == "MissedMutant" {
            missed.push(name.clone());
        }
    }
    Ok(json!({
        "crates": crates.iter().map(|(k, t)| (k.to_string(), t.to_json())).collect::<serde_json::Map<_, _>>(),
        "files": files.iter().map(|(k, t)| (k.to_string(), t.to_json())).collect::<serde_json::Map<_, _>>(),
        "missed": missed,
    }))
}

/// The name cargo-mutants gives a mutant (`file:line:col: replace ...`),
/// rebuilt from its parts when a version does not write one.
fn describe(m: &Value) -> String {
    if let Some(name) = m["name"].as_str() {
        return name.to_owned();
    }
    let file = m["file"].as_str().unwrap_or("?");
    let line = m["span"]["start"]["line"].as_u64().unwrap_or(0);
    let col = m["span"]["start"]["column"].as_u64().unwrap_or(0);
    let function = m["function"]["function_name"].as_str().unwrap_or("?");
    let replacement = m["replacement"].as_str().unwrap_or("?");
    format!("{file}:{line}:{col}: replace with {replacement} in {function}")
}
