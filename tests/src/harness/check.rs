//! The checkers, over a recorded history and the final read of every key
//! after healing.
//!
//! The ancestry graph: a write's `parents` are the values its read
//! returned. Edges of writes that failed definitely are left out (they were
//! never applied). "Descends from" is the transitive closure, including the
//! value itself.
//!
//! - **lost**: an acknowledged put that the final read neither shows nor
//!   covers: no visible value and no delete that was sent (acknowledged or
//!   indeterminate) descends from it.
//! - **resurrected**: a value visible in the final read that an
//!   acknowledged delete, or an acknowledged write made with a context that
//!   saw it, descends from: it was superseded and came back.
//! - **phantom**: a value visible in any read whose write failed
//!   definitely or was never recorded, or bytes the workload never wrote.
//! - **stale reads**: a read invoked after a write to its key was
//!   acknowledged that returns neither that write nor a value descending
//!   from it, unless a delete descending from it was invoked before the
//!   read completed. Zero is the mark in strict mode with R + W > N.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::Serialize;

use super::history::{Op, OpKind, Outcome};

/// Bound on examples kept per checker, for the report.
pub const EXAMPLES_MAX: usize = 5;

/// What the checkers found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Findings {
    /// Acknowledged writes lost.
    pub lost: u64,
    /// Superseded values visible again.
    pub resurrected: u64,
    /// Values visible that were never (successfully) written.
    pub phantom: u64,
    /// Reads that missed an acknowledged write.
    pub stale_reads: u64,
    /// Keys whose final read failed (nothing could be checked for them).
    pub unread_keys: u64,
    /// A few examples of each finding, for people.
    pub examples: Vec<String>,
}

/// Runs every checker. `keys` are every key the workload used.
pub fn check(ops: &[Op], keys: &[String]) -> Findings {
    let mut f = Findings::default();
    let writes: HashMap<u64, &Op> = ops
        .iter()
        .filter(|o| o.is_write())
        .filter_map(|o| o.id.map(|id| (id, o)))
        .collect();
    let parents_of = |id: u64| -> &[u64] {
        match writes.get(&id) {
            Some(w) if w.outcome != Outcome::Fail => &w.parents,
            _ => &[],
        }
    };
    // Every value (inclusive) that `from` descends from.
    let ancestors = |from: &mut dyn Iterator<Item = u64>| -> HashSet<u64> {
        let mut seen = HashSet::new();
        let mut stack: Vec<u64> = from.collect();
        while let Some(id) = stack.pop() {
            if seen.insert(id) {
                stack.extend_from_slice(parents_of(id));
            }
        }
        seen
    };

    // The final read of each key: the last one that succeeded.
    let mut final_values: BTreeMap<&str, &[u64]> = BTreeMap::new();
    for op in ops.iter().filter(|o| o.kind == OpKind::FinalRead) {
        if op.outcome == Outcome::Ok {
            final_values.insert(&op.key, &op.values);
        }
    }
    for key in keys {
        if !final_values.contains_key(key.as_str()) {
            f.unread_keys += 1;
        }
    }

    let mut by_key: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in ops {
        by_key.entry(&op.key).or_default().push(op);
    }

    let mut examples: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut example = |kind: &'static str, text: String| {
        let list = examples.entry(kind).or_default();
        if list.len() < EXAMPLES_MAX {
            list.push(text);
        }
    };

    // Phantom, over every read.
    for op in ops
        .iter()
        .filter(|o| !o.is_write() && o.outcome == Outcome::Ok)
    {
        if op.foreign_values > 0 {
            f.phantom += u64::from(op.foreign_values);
            example(
                "phantom",
                format!(
                    "{}: a read at {:.0} ms returned bytes nobody wrote",
                    op.key, op.invoke_ms
                ),
            );
        }
        for &v in &op.values {
            let why = match writes.get(&v) {
                None => Some("was never written"),
                Some(w) if w.outcome == Outcome::Fail => Some("failed definitely"),
                Some(w) if w.key != op.key => Some("was written to another key"),
                Some(_) => None,
            };
            if let Some(why) = why {
                f.phantom += 1;
                example(
                    "phantom",
                    format!(
                        "{}: value {v:#x} {why} but a read at {:.0} ms returned it",
                        op.key, op.invoke_ms
                    ),
                );
            }
        }
    }

    for (key, key_ops) in &by_key {
        let sent_deletes: Vec<u64> = key_ops
            .iter()
            .filter(|o| o.kind == OpKind::Delete && o.outcome != Outcome::Fail)
            .filter_map(|o| o.id)
            .collect();
        // Every value some sent delete descends from.
        let deleted = ancestors(&mut sent_deletes.iter().copied());
        // For each such value, when the first delete descending from it
        // was invoked: a read may miss a write only once a delete that
        // supersedes it may have taken effect. Deletes are visited in
        // invocation order, so a value already dated keeps the earliest.
        let mut deletes: Vec<&Op> = key_ops
            .iter()
            .filter(|o| o.kind == OpKind::Delete && o.outcome != Outcome::Fail)
            .copied()
            .collect();
        deletes.sort_by(|a, b| a.invoke_ms.total_cmp(&b.invoke_ms));
        let mut deleted_at: HashMap<u64, f64> = HashMap::new();
        for d in deletes {
            let Some(id) = d.id else { continue };
            let mut stack = vec![id];
            while let Some(v) = stack.pop() {
                if let std::collections::hash_map::Entry::Vacant(e) = deleted_at.entry(v) {
                    e.insert(d.invoke_ms);
                    stack.extend_from_slice(parents_of(v));
                }
            }
        }

        // Lost and resurrected need the final read.
        if let Some(&visible) = final_values.get(key) {
            let covered = ancestors(&mut visible.iter().copied());
            for w in key_ops
                .iter()
                .filter(|o| o.is_write() && o.kind != OpKind::Delete && o.outcome == Outcome::Ok)
            {
                let Some(id) = w.id else { continue };
                if !covered.contains(&id) && !deleted.contains(&id) {
                    f.lost += 1;
                    example(
                        "lost",
                        format!(
                            "{key}: write {id:#x} acknowledged at {:.0} ms is neither visible nor superseded; final read {:x?}",
                            w.complete_ms, visible
                        ),
                    );
                }
            }
            // Values an acknowledged write superseded (strict ancestors).
            let mut superseded: HashMap<u64, u64> = HashMap::new();
            for w in key_ops
                .iter()
                .filter(|o| o.is_write() && o.outcome == Outcome::Ok)
            {
                let Some(id) = w.id else { continue };
                for a in ancestors(&mut w.parents.iter().copied()) {
                    superseded.entry(a).or_insert(id);
                }
            }
            for v in visible {
                if let Some(by) = superseded.get(v) {
                    f.resurrected += 1;
                    let what = match writes.get(by).map(|w| w.kind) {
                        Some(OpKind::Delete) => "deleted by",
                        _ => "superseded by",
                    };
                    example(
                        "resurrected",
                        format!(
                            "{key}: value {v:#x} {what} acknowledged write {by:#x} is visible in the final read"
                        ),
                    );
                }
            }
        }

        // Stale reads: acknowledged writes in completion order.
        let mut acked: Vec<(&Op, u64)> = key_ops
            .iter()
            .filter(|o| o.is_write() && o.kind != OpKind::Delete && o.outcome == Outcome::Ok)
            .filter_map(|o| o.id.map(|id| (*o, id)))
            .collect();
        acked.sort_by(|a, b| a.0.complete_ms.total_cmp(&b.0.complete_ms));
        for r in key_ops
            .iter()
            .filter(|o| !o.is_write() && o.outcome == Outcome::Ok)
        {
            let returned = ancestors(&mut r.values.iter().copied());
            let missed: BTreeSet<u64> = acked
                .iter()
                .take_while(|(w, _)| w.complete_ms < r.invoke_ms)
                .map(|&(_, id)| id)
                .filter(|id| {
                    !returned.contains(id) && deleted_at.get(id).is_none_or(|&t| t >= r.complete_ms)
                })
                .collect();
            if let Some(first) = missed.first() {
                f.stale_reads += 1;
                example(
                    "stale",
                    format!(
                        "{key}: read at {:.0} ms returned {:x?}, missing acknowledged write {first:#x} ({} missed)",
                        r.invoke_ms,
                        r.values,
                        missed.len()
                    ),
                );
            }
        }
    }
    f.examples = examples
        .into_iter()
        .flat_map(|(kind, list)| list.into_iter().map(move |e| format!("{kind}: {e}")))
        .collect();
    f
}

/// The network's groups over a run: which nodes could reach each other
/// from each moment on, as the nemesis partitioned and healed it.
#[derive(Debug, Clone)]
pub struct Topology {
    /// `(from_ms, groups)`, in time order; the first starts at 0.
    changes: Vec<(f64, Vec<Vec<usize>>)>,
}

impl Topology {
    /// `nodes` nodes, all connected.
    pub fn whole(nodes: usize) -> Self {
        Self {
            changes: vec![(0.0, vec![(0..nodes).collect()])],
        }
    }

    /// From `at_ms` on, the nodes form `groups`.
    pub fn change(&mut self, at_ms: f64, groups: Vec<Vec<usize>>) {
        self.changes.push((at_ms, groups));
    }

    /// The groups at `t_ms`.
    pub fn groups_at(&self, t_ms: f64) -> &[Vec<usize>] {
        let i = self.changes.partition_point(|(from, _)| *from <= t_ms);
        &self.changes[i.saturating_sub(1)].1
    }

    /// The fewest nodes `node` could reach (itself included) at any moment
    /// from `from_ms` to `to_ms`.
    pub fn reach_min(&self, node: usize, from_ms: f64, to_ms: f64) -> usize {
        let reach = |groups: &[Vec<usize>]| {
            groups
                .iter()
                .find(|g| g.contains(&node))
                .map_or(1, Vec::len)
        };
        let mut least = reach(self.groups_at(from_ms));
        for (at, groups) in &self.changes {
            if *at > from_ms && *at <= to_ms {
                least = least.min(reach(groups));
            }
        }
        least
    }
}

/// Writes refused as `Unavailable` although their coordinator could reach
/// at least `w` nodes for the whole of the operation and the `settle_ms`
/// before it (time for its failure detector to see who is there). Client
/// `c` must have talked to node `c % nodes` only. Sloppy mode's mark is 0.
pub fn refused_with_w_reachable(
    ops: &[Op],
    topology: &Topology,
    nodes: usize,
    w: usize,
    settle_ms: f64,
) -> u64 {
    let refused = |op: &&Op| {
        op.is_write()
            && op.outcome == Outcome::Fail
            && op
                .error
                .as_deref()
                .is_some_and(|e| e.starts_with("Unavailable"))
    };
    ops.iter()
        .filter(refused)
        .filter(|op| op.client != u32::MAX)
        .filter(|op| {
            let node = op.client as usize % nodes.max(1);
            topology.reach_min(node, op.invoke_ms - settle_ms, op.complete_ms) >= w
        })
        .count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_count_only_where_the_coordinator_reached_w_nodes() {
        let mut topology = Topology::whole(5);
        topology.change(10_000.0, vec![vec![0, 1], vec![2, 3, 4]]);
        topology.change(20_000.0, vec![vec![0], vec![1, 2, 3, 4]]);
        topology.change(30_000.0, vec![(0..5).collect()]);
        let refused = |client: u32, t: f64| {
            let mut o = op(OpKind::Blind, "k", Some(1), &[], &[], t, Outcome::Fail);
            o.client = client;
            o.error = Some("Unavailable: 2 replicas required, 1 reachable".to_owned());
            o
        };
        let settle = 5_000.0;
        let count = |ops: &[Op]| refused_with_w_reachable(ops, &topology, 5, 2, settle);
        // Node 0 reached two nodes from 10 s to 20 s, settled by 15 s.
        assert_eq!(count(&[refused(0, 16_000.0)]), 1);
        assert_eq!(
            count(&[refused(5, 16_000.0)]),
            1,
            "client 5 talks to node 0"
        );
        // The cut at 10 s left node 0 with two nodes: still W.
        assert_eq!(count(&[refused(0, 12_000.0)]), 1);
        // Alone from 20 s, and then healed too recently to be judged.
        assert_eq!(count(&[refused(0, 24_000.0)]), 0);
        assert_eq!(count(&[refused(0, 31_000.0)]), 0);
        assert_eq!(count(&[refused(0, 36_000.0)]), 1);
        // Other failures and acknowledged writes are not refusals.
        let mut timeout = refused(0, 16_000.0);
        timeout.error = Some("Timeout: 1 of 2".to_owned());
        let mut acked = refused(0, 16_000.0);
        acked.outcome = Outcome::Ok;
        assert_eq!(count(&[timeout, acked]), 0);
        assert_eq!(topology.groups_at(25_000.0), &[vec![0], vec![1, 2, 3, 4]]);
    }

    fn op(
        kind: OpKind,
        key: &str,
        id: Option<u64>,
        parents: &[u64],
        values: &[u64],
        t: f64,
        outcome: Outcome,
    ) -> Op {
        Op {
            client: 0,
            kind,
            key: key.to_owned(),
            id,
            parents: parents.to_vec(),
            values: values.to_vec(),
            foreign_values: 0,
            invoke_ms: t,
            complete_ms: t + 1.0,
            outcome,
            error: None,
        }
    }

    fn keys() -> Vec<String> {
        vec!["k".to_owned()]
    }

    #[test]
    fn a_clean_history_has_no_findings() {
        let ops = vec![
            op(OpKind::Blind, "k", Some(1), &[], &[], 0.0, Outcome::Ok),
            op(OpKind::Read, "k", None, &[], &[1], 10.0, Outcome::Ok),
            op(OpKind::Rmw, "k", Some(2), &[1], &[], 20.0, Outcome::Ok),
            op(OpKind::Read, "k", None, &[], &[2], 30.0, Outcome::Ok),
            op(OpKind::FinalRead, "k", None, &[], &[2], 40.0, Outcome::Ok),
        ];
        let f = check(&ops, &keys());
        assert_eq!(
            (
                f.lost,
                f.resurrected,
                f.phantom,
                f.stale_reads,
                f.unread_keys
            ),
            (0, 0, 0, 0, 0),
            "{f:?}"
        );
    }

    #[test]
    fn a_vanished_write_is_lost_and_a_read_missing_it_is_stale() {
        let ops = vec![
            op(OpKind::Blind, "k", Some(1), &[], &[], 0.0, Outcome::Ok),
            op(OpKind::Blind, "k", Some(2), &[], &[], 5.0, Outcome::Ok),
            op(OpKind::Read, "k", None, &[], &[2], 30.0, Outcome::Ok),
            op(OpKind::FinalRead, "k", None, &[], &[2], 40.0, Outcome::Ok),
        ];
        let f = check(&ops, &keys());
        assert_eq!(f.lost, 1, "{f:?}");
        assert_eq!(f.stale_reads, 2, "{f:?}");
    }

    #[test]
    fn a_deleted_value_is_not_lost_but_its_return_is_resurrection() {
        let mut ops = vec![
            op(OpKind::Blind, "k", Some(1), &[], &[], 0.0, Outcome::Ok),
            op(OpKind::Delete, "k", Some(2), &[1], &[], 10.0, Outcome::Ok),
            op(OpKind::FinalRead, "k", None, &[], &[], 40.0, Outcome::Ok),
        ];
        let f = check(&ops, &keys());
        assert_eq!((f.lost, f.resurrected, f.stale_reads), (0, 0, 0), "{f:?}");
        ops[2].values = vec![1];
        let f = check(&ops, &keys());
        assert_eq!(f.resurrected, 1, "{f:?}");
    }

    #[test]
    fn only_a_delete_invoked_before_the_read_excuses_missing_a_write() {
        let mut ops = vec![
            op(OpKind::Blind, "k", Some(1), &[], &[], 0.0, Outcome::Ok),
            op(OpKind::Read, "k", None, &[], &[], 10.0, Outcome::Ok),
            op(OpKind::Delete, "k", Some(2), &[1], &[], 20.0, Outcome::Ok),
            op(OpKind::FinalRead, "k", None, &[], &[], 40.0, Outcome::Ok),
        ];
        let f = check(&ops, &keys());
        assert_eq!((f.stale_reads, f.lost), (1, 0), "{f:?}");
        ops[2].invoke_ms = 5.0;
        assert_eq!(check(&ops, &keys()).stale_reads, 0);
    }

    #[test]
    fn a_failed_write_seen_is_phantom_and_covers_nothing() {
        let ops = vec![
            op(OpKind::Blind, "k", Some(1), &[], &[], 0.0, Outcome::Ok),
            op(OpKind::Rmw, "k", Some(2), &[1], &[], 10.0, Outcome::Fail),
            op(OpKind::FinalRead, "k", None, &[], &[2], 40.0, Outcome::Ok),
        ];
        let f = check(&ops, &keys());
        assert_eq!(f.phantom, 1, "{f:?}");
        assert_eq!(f.lost, 1, "a failed write does not supersede: {f:?}");
    }

    #[test]
    fn a_key_without_a_final_read_is_counted() {
        let ops = vec![op(OpKind::Blind, "k", Some(1), &[], &[], 0.0, Outcome::Ok)];
        assert_eq!(check(&ops, &keys()).unread_keys, 1);
    }
}
