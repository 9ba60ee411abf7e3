//! The results: one [`ScenarioResult`] per scenario, printed as a table and
//! written to `summary.json`.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::check::Findings;
use super::history::Op;

/// A scenario's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Not decided yet.
    Pending,
    /// Every checker found nothing and replicas converged in time.
    Passed,
    /// Something was found; the reasons say what.
    Failed,
    /// Could not run here, and why.
    Skipped(String),
}

/// Everything reported about one scenario.
#[derive(Debug, Clone)]
pub struct ScenarioResult {
    /// Its name.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// Workload operations (reads and writes), final reads excluded.
    pub ops: u64,
    /// Of which acknowledged.
    pub acked: u64,
    /// Of which definitely failed.
    pub failed: u64,
    /// Of which indeterminate.
    pub indeterminate: u64,
    /// What the checkers found.
    pub findings: Findings,
    /// Seconds from the end of the load (after healing) until every key's
    /// home replicas agreed; `None` if they did not within the bound.
    pub converge_s: Option<f64>,
    /// Sloppy mode: writes refused (`Unavailable`) although their
    /// coordinator reached W nodes; the mark is 0. `None` in strict mode.
    pub refused_with_w: Option<u64>,
    /// Sloppy mode: seconds from healing until no node held a hint.
    pub hints_drain_s: Option<f64>,
    /// The fault methods used.
    pub faults: String,
    /// The fault log, with times.
    pub nemesis: Vec<String>,
    /// Where the history went.
    pub history: Option<String>,
    /// The verdict.
    pub status: Status,
    /// Why it failed.
    pub reasons: Vec<String>,
}

impl ScenarioResult {
    /// An empty result for `scenario`.
    pub fn new(scenario: &str, seed: u64) -> Self {
        Self {
            scenario: scenario.to_owned(),
            seed,
            ops: 0,
            acked: 0,
            failed: 0,
            indeterminate: 0,
            findings: Findings::default(),
            converge_s: None,
            refused_with_w: None,
            hints_drain_s: None,
            faults: String::new(),
            nemesis: Vec::new(),
            history: None,
            status: Status::Pending,
            reasons: Vec::new(),
        }
    }

    /// Counts the workload's operations.
    pub fn fill_counts(&mut self, ops: &[Op]) {
        let (all, ok, fail, info) = super::scenario::counts(ops);
        (self.ops, self.acked, self.failed, self.indeterminate) = (all, ok, fail, info);
    }

    /// acked / attempted.
    pub fn availability(&self) -> f64 {
        if self.ops == 0 {
            0.0
        } else {
            self.acked as f64 / self.ops as f64
        }
    }

    /// Decides the verdict (a skipped scenario stays skipped). Stale reads
    /// count against it only when `strict`.
    pub fn decide(&mut self, strict: bool, converge_bound: Duration) {
        if matches!(self.status, Status::Skipped(_)) {
            return;
        }
        let f = &self.findings;
        let mut reasons = std::mem::take(&mut self.reasons);
        for (name, count) in [
            ("lost", f.lost),
            ("resurrected", f.resurrected),
            ("phantom", f.phantom),
            ("unread keys", f.unread_keys),
        ] {
            if count > 0 {
                reasons.push(format!("{name}: {count}"));
            }
        }
        if let Some(refused) = self.refused_with_w.filter(|&n| n > 0) {
            reasons.push(format!(
                "writes refused while W nodes were reachable: {refused}"
            ));
        }
        if strict && f.stale_reads > 0 {
            reasons.push(format!("stale reads in strict mode: {}", f.stale_reads));
        }
        if self.history.is_some() && self.converge_s.is_none() {
            reasons.push(format!(
                "replicas did not converge within {} s",
                converge_bound.as_secs()
            ));
        }
        if self.history.is_some() && self.acked == 0 {
            reasons.push("no operation was acknowledged: the run checked nothing".to_owned());
        }
        if self.history.is_none() && reasons.is_empty() {
            reasons.push("the scenario did not finish".to_owned());
        }
        self.status = if reasons.is_empty() {
            Status::Passed
        } else {
            Status::Failed
        };
        self.reasons = reasons;
    }

    fn status_text(&self) -> String {
        match &self.status {
            Status::Pending => "pending".to_owned(),
            Status::Passed => "passed".to_owned(),
            Status::Failed => "failed".to_owned(),
            Status::Skipped(_) => "skipped".to_owned(),
        }
    }
}

#[derive(Serialize)]
struct Row<'a> {
    scenario: &'a str,
    seed: u64,
    ops: u64,
    acked: u64,
    failed: u64,
    indeterminate: u64,
    lost: u64,
    resurrected: u64,
    phantom: u64,
    stale_reads: u64,
    unread_keys: u64,
    availability: f64,
    converge_s: Option<f64>,
    refused_with_w: Option<u64>,
    hints_drain_s: Option<f64>,
    faults: &'a str,
    status: String,
    reason: Option<String>,
    examples: &'a [String],
    nemesis: &'a [String],
    history: Option<&'a str>,
}

impl<'a> From<&'a ScenarioResult> for Row<'a> {
    fn from(r: &'a ScenarioResult) -> Self {
        let reason = match &r.status {
            Status::Skipped(why) => Some(why.clone()),
            _ if !r.reasons.is_empty() => Some(r.reasons.join("; ")),
            _ => None,
        };
        Row {
            scenario: &r.scenario,
            seed: r.seed,
            ops: r.ops,
            acked: r.acked,
            failed: r.failed,
            indeterminate: r.indeterminate,
            lost: r.findings.lost,
            resurrected: r.findings.resurrected,
            phantom: r.findings.phantom,
            stale_reads: r.findings.stale_reads,
            unread_keys: r.findings.unread_keys,
            availability: (r.availability() * 10_000.0).round() / 10_000.0,
            converge_s: r.converge_s.map(|s| (s * 10.0).round() / 10.0),
            refused_with_w: r.refused_with_w,
            hints_drain_s: r.hints_drain_s.map(|s| (s * 10.0).round() / 10.0),
            faults: &r.faults,
            status: r.status_text(),
            reason,
            examples: &r.findings.examples,
            nemesis: &r.nemesis,
            history: r.history.as_deref(),
        }
    }
}

/// Prints one scenario's findings as it ends.
pub fn print_one(r: &ScenarioResult) {
    println!(
        "--- {}: {} ({} ops, {} acked, lost {}, resurrected {}, phantom {}, stale {})",
        r.scenario,
        r.status_text(),
        r.ops,
        r.acked,
        r.findings.lost,
        r.findings.resurrected,
        r.findings.phantom,
        r.findings.stale_reads
    );
    if let Status::Skipped(why) = &r.status {
        println!("    skipped: {why}");
    }
    if let Some(refused) = r.refused_with_w {
        println!("    writes refused while W nodes were reachable: {refused} (mark: 0)");
    }
    if let Some(drain) = r.hints_drain_s {
        println!("    hints drained {drain:.1} s after healing");
    }
    for reason in &r.reasons {
        println!("    reason: {reason}");
    }
    for e in &r.findings.examples {
        println!("    {e}");
    }
    if let Some(h) = &r.history {
        println!("    history: {h}");
    }
}

/// Prints the table of every scenario.
pub fn print_table(results: &[ScenarioResult]) {
    println!(
        "\n{:<17} {:>20} {:>6} {:>6} {:>6} {:>5} {:>4} {:>5} {:>7} {:>5} {:>6} {:>8}  status",
        "scenario",
        "seed",
        "ops",
        "acked",
        "failed",
        "indet",
        "lost",
        "resur",
        "phantom",
        "stale",
        "avail",
        "conv_s"
    );
    for r in results {
        let conv = r
            .converge_s
            .map_or_else(|| "-".to_owned(), |s| format!("{s:.1}"));
        let status = match &r.status {
            Status::Skipped(why) => format!("skipped: {why}"),
            _ => r.status_text(),
        };
        println!(
            "{:<17} {:>20} {:>6} {:>6} {:>6} {:>5} {:>4} {:>5} {:>7} {:>5} {:>6.3} {:>8}  {status}",
            r.scenario,
            r.seed,
            r.ops,
            r.acked,
            r.failed,
            r.indeterminate,
            r.findings.lost,
            r.findings.resurrected,
            r.findings.phantom,
            r.findings.stale_reads,
            r.availability(),
            conv
        );
    }
}

/// Writes `summary.json`: an array with one object per scenario.
pub fn write_summary(path: &Path, results: &[ScenarioResult]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let rows: Vec<Row<'_>> = results.iter().map(Row::from).collect();
    std::fs::write(path, serde_json::to_vec_pretty(&rows)?)?;
    Ok(())
}
