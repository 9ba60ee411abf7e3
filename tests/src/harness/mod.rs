//! The fault-injection harness behind `cargo xtask test-cluster`: clusters
//! of real `kvnode` processes, concurrent clients, faults on a seeded
//! schedule, a recorded history, and checkers over it.
//!
//! - [`cluster`]: the processes and the process-level faults;
//! - [`workload`]: the clients and what they write;
//! - [`history`]: the recorded operations and the value encoding;
//! - [`check`]: lost, resurrected, phantom and stale;
//! - [`scenario`]: the ten scenarios and the phases of a run;
//! - [`report`]: the table and `summary.json`.
//!
//! Network faults come from [`crate::net`] (network namespaces); where it
//! cannot work, the scenarios that need it are reported skipped.

pub mod check;
pub mod cluster;
pub mod history;
pub mod report;
pub mod scenario;
pub mod workload;

use std::path::PathBuf;

pub use scenario::Scenario;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `kvnode` binary.
    pub kvnode: PathBuf,
    /// Where histories, node directories and `summary.json` go.
    pub out_dir: PathBuf,
    /// The seed of every random choice.
    pub seed: u64,
    /// Nodes per cluster (five-nodes takes at least 5).
    pub nodes: usize,
    /// Seconds of fault injection per scenario.
    pub duration_s: u64,
}

/// Runs `scenarios` one after another; returns every result.
pub async fn run_all(opts: &Options, scenarios: &[Scenario]) -> Vec<report::ScenarioResult> {
    let mut results = Vec::new();
    for &s in scenarios {
        let r = scenario::run(opts, s).await;
        report::print_one(&r);
        results.push(r);
    }
    results
}
