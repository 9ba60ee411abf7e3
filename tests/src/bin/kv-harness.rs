//! `kv-harness`: runs the fault-injection scenarios against real `kvnode`
//! processes (normally through `cargo xtask test-cluster`, which builds the
//! node and passes its path).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Parser;

use kv_tests::harness::{self, Options, Scenario, report};

/// Fault-injection scenarios against real kvnode processes.
#[derive(Debug, Parser)]
struct Args {
    /// The kvnode binary.
    #[arg(long)]
    kvnode: PathBuf,
    /// Output directory (histories, node directories, summary.json).
    #[arg(long)]
    out: PathBuf,
    /// Seed of every random choice; random when absent (and printed).
    #[arg(long)]
    seed: Option<u64>,
    /// One scenario (by name), or every scenario when absent.
    #[arg(long)]
    scenario: Option<String>,
    /// Nodes per cluster.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Seconds of fault injection per scenario.
    #[arg(long)]
    duration: Option<u64>,
    /// Every scenario, long (300 s of faults unless --duration says).
    #[arg(long)]
    soak: bool,
}

/// Default seconds of faults per scenario, and with `--soak`.
const DURATION_DEFAULT_S: u64 = 15;
const DURATION_SOAK_S: u64 = 300;

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("kv-harness: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<bool> {
    let args = Args::parse();
    let scenarios = match &args.scenario {
        Some(name) => vec![Scenario::parse(name).with_context(|| {
            let names: Vec<&str> = Scenario::ALL.iter().map(|s| s.name()).collect();
            format!("unknown scenario {name:?}; one of {}", names.join(", "))
        })?],
        None => Scenario::ALL.to_vec(),
    };
    if args.nodes < 3 {
        bail!("--nodes must be at least 3 (N=3)");
    }
    // The only place time seeds anything: a run without --seed picks one
    // and prints it, so it can be replayed.
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let duration_s = args.duration.unwrap_or(if args.soak {
        DURATION_SOAK_S
    } else {
        DURATION_DEFAULT_S
    });
    let opts = Options {
        kvnode: args.kvnode,
        out_dir: args.out,
        seed,
        nodes: args.nodes,
        duration_s,
    };
    println!(
        "kv-harness: seed {seed}, {} scenario(s), {duration_s} s of faults each; output in {}",
        scenarios.len(),
        opts.out_dir.display()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()?;
    let results = runtime.block_on(harness::run_all(&opts, &scenarios));
    report::print_table(&results);
    let summary = opts.out_dir.join("summary.json");
    report::write_summary(&summary, &results)?;
    println!("\nsummary: {}", summary.display());
    let failed: Vec<&str> = results
        .iter()
        .filter(|r| r.status == report::Status::Failed)
        .map(|r| r.scenario.as_str())
        .collect();
    if failed.is_empty() {
        Ok(true)
    } else {
        println!("failed: {}", failed.join(", "));
        Ok(false)
    }
}
