//! Shared plumbing for the figures binaries: a table that is also a JSON file.
//!
//! Every figures binary (`benches/src/bin/<name>.rs`, run by
//! `cargo xtask bench <name>`) collects its figures in a [`Report`], which
//! prints them as an aligned table and writes them to
//! `target/bench/<name>.json` with flat keys, so that scripts and people read
//! the same numbers.

use std::fmt::Write as _;
use std::path::PathBuf;

/// One figure: a flat JSON key, a human label, a value, a unit, and the mark
/// it is held to, if any.
#[derive(Debug, Clone)]
pub struct Figure {
    /// Flat JSON key, e.g. `imbalance_n100`.
    pub key: String,
    /// What a person reads in the table.
    pub label: String,
    /// The measured value.
    pub value: f64,
    /// Unit shown after the value, e.g. `ns`, `ops/s`, `x`.
    pub unit: String,
    /// The mark, as text, e.g. `<= 1.05`; `None` when the figure is only
    /// reported.
    pub mark: Option<Mark>,
}

/// A bound a figure is held to.
#[derive(Debug, Clone, Copy)]
pub enum Mark {
    /// The value must be at most this.
    AtMost(f64),
    /// The value must be at least this.
    AtLeast(f64),
}

impl Mark {
    /// Whether `value` meets this mark.
    pub fn met_by(self, value: f64) -> bool {
        match self {
            Mark::AtMost(m) => value <= m,
            Mark::AtLeast(m) => value >= m,
        }
    }

    fn describe(self) -> String {
        match self {
            Mark::AtMost(m) => format!("<= {m}"),
            Mark::AtLeast(m) => format!(">= {m}"),
        }
    }
}

/// The figures of one benchmark area.
#[derive(Debug)]
pub struct Report {
    name: String,
    figures: Vec<Figure>,
}

impl Report {
    /// An empty report for area `name` (the JSON file's stem).
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            figures: Vec::new(),
        }
    }

    /// Adds a figure that is only reported.
    pub fn add(&mut self, key: &str, label: &str, value: f64, unit: &str) {
        self.push(key, label, value, unit, None);
    }

    /// Adds a figure held to `mark`.
    pub fn add_marked(&mut self, key: &str, label: &str, value: f64, unit: &str, mark: Mark) {
        self.push(key, label, value, unit, Some(mark));
    }

    fn push(&mut self, key: &str, label: &str, value: f64, unit: &str, mark: Option<Mark>) {
        self.figures.push(Figure {
            key: key.to_owned(),
            label: label.to_owned(),
            value,
            unit: unit.to_owned(),
            mark,
        });
    }

    /// The table as text.
    pub fn table(&self) -> String {
        let label_w = self
            .figures
            .iter()
            .map(|f| f.label.len())
            .max()
            .unwrap_or(0)
            .max(6);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<label_w$}  {:>14}  {:<8}  {:<12}  met",
            "figure", "value", "unit", "mark"
        );
        let _ = writeln!(out, "{}", "-".repeat(label_w + 46));
        for f in &self.figures {
            let (mark, met) = match f.mark {
                Some(m) => (m.describe(), if m.met_by(f.value) { "yes" } else { "NO" }),
                None => (String::new(), ""),
            };
            let _ = writeln!(
                out,
                "{:<label_w$}  {:>14}  {:<8}  {:<12}  {met}",
                f.label,
                format_value(f.value),
                f.unit,
                mark
            );
        }
        out
    }

    /// Prints the table and writes `target/bench/<name>.json`; returns the
    /// path written. Marks that are not met are listed on stderr, but do not
    /// fail the run: a benchmark reports, it does not judge.
    pub fn finish(&self) -> std::io::Result<PathBuf> {
        print!("{}", self.table());
        let dir = target_dir().join("bench");
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{}.json", self.name));
        let mut map = serde_json::Map::new();
        for f in &self.figures {
            let rounded = (f.value * 10_000.0).round() / 10_000.0;
            map.insert(f.key.clone(), serde_json::Value::from(rounded));
        }
        let text = serde_json::to_string_pretty(&serde_json::Value::Object(map))
            .map_err(std::io::Error::other)?;
        std::fs::write(&path, text + "\n")?;
        println!("wrote {}", path.display());
        for f in &self.figures {
            if let Some(m) = f.mark
                && !m.met_by(f.value)
            {
                eprintln!(
                    "mark not met: {} = {} (wanted {})",
                    f.key,
                    f.value,
                    m.describe()
                );
            }
        }
        Ok(path)
    }
}

fn format_value(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

/// The cargo target directory: `CARGO_TARGET_DIR`, or `target/` at the
/// workspace root.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map_or(manifest.clone(), |p| p.to_path_buf())
        .join("target")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_judge_values() {
        assert!(Mark::AtMost(1.05).met_by(1.05));
        assert!(!Mark::AtMost(1.05).met_by(1.06));
        assert!(Mark::AtLeast(1.0).met_by(1.2));
        assert!(!Mark::AtLeast(1.0).met_by(0.9));
    }

    #[test]
    fn table_flags_missed_marks() {
        let mut r = Report::new("t");
        r.add_marked("a", "alpha", 2.0, "x", Mark::AtMost(1.0));
        r.add("b", "beta", 3.0, "ns");
        let t = r.table();
        assert!(t.contains("NO"), "{t}");
        assert!(t.contains("beta"), "{t}");
    }
}
