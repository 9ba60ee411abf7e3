//! The history of one scenario: every operation's invocation and outcome,
//! with monotonic timestamps, and the values the workload writes.
//!
//! Every value written is a [`Value`] encoded as JSON, so a read tells the
//! checker exactly which writes it saw and what they descend from:
//!
//! ```text
//! {"id": 4294967301, "parents": [4294967297, 8589934593], "elements": [7, 12]}
//!   id        unique over the run: (client + 1) << 32 | sequence number
//!   parents   the ids of the siblings the write's read returned (empty for a
//!             blind write or after "not found")
//!   elements  the add-only set: the union of the parents' elements, plus
//!             this write's id for a set add; empty for registers
//! ```
//!
//! A delete is recorded as a write of a tombstone with its own id and
//! parents; it is never visible, only its effect is.
//!
//! The history file holds one [`Op`] per line (JSON lines), in completion
//! order.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// A value as the workload writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Value {
    /// Unique over the run.
    pub id: u64,
    /// The ids of the siblings the write's read returned.
    pub parents: Vec<u64>,
    /// The add-only set this value carries.
    pub elements: Vec<u64>,
}

impl Value {
    /// The bytes written.
    pub fn encode(&self) -> Vec<u8> {
        // A struct of integers always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes a value read back; `None` for bytes the workload never wrote.
    pub fn decode(bytes: &[u8]) -> Option<Value> {
        serde_json::from_slice(bytes).ok()
    }
}

/// What an operation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// A read-modify-write register: read, then write a unique value with
    /// the read's context.
    Rmw,
    /// A blind write without a context.
    Blind,
    /// A read, then an add to the set built from its siblings.
    SetAdd,
    /// A read, then a delete with its context.
    Delete,
    /// A plain read.
    Read,
    /// The final read of a key after healing.
    FinalRead,
}

/// How an operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Acknowledged.
    Ok,
    /// Definitely not applied (`Unavailable`, `InvalidRequest`,
    /// `TooManySiblings`, or a request that never left the client).
    Fail,
    /// Indeterminate: it may or may not have been applied (timeout,
    /// `Indeterminate`, a connection lost after sending, storage errors).
    Info,
}

/// One operation of the history. For a write (`Rmw`, `Blind`, `SetAdd`,
/// `Delete`), the read that preceded it is a separate `Read` entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Op {
    /// The client that ran it; `u32::MAX` for the harness's own reads.
    pub client: u32,
    /// What it did.
    pub kind: OpKind,
    /// The key.
    pub key: String,
    /// For a write: the id of the value (or tombstone) written.
    pub id: Option<u64>,
    /// For a write: the ids the write descends from.
    pub parents: Vec<u64>,
    /// For a read: the ids of the values returned (empty for not found).
    pub values: Vec<u64>,
    /// For a read: how many returned values were not the workload's.
    pub foreign_values: u32,
    /// Milliseconds since the scenario started, at invocation.
    pub invoke_ms: f64,
    /// Milliseconds since the scenario started, at completion.
    pub complete_ms: f64,
    /// How it ended.
    pub outcome: Outcome,
    /// The error, when it did not succeed.
    pub error: Option<String>,
}

impl Op {
    /// Whether it wrote (or tried to).
    pub fn is_write(&self) -> bool {
        !matches!(self.kind, OpKind::Read | OpKind::FinalRead)
    }
}

/// Writes `ops` as JSON lines to `path`.
pub fn write_jsonl(path: &Path, ops: &[Op]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for op in ops {
        serde_json::to_writer(&mut out, op)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
