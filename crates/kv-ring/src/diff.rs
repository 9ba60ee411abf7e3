//! Which ranges change primary owner between two rings.
//!
//! The sweep visits every boundary of either ring in clockwise order, so
//! each elementary arc between consecutive boundaries has one owner in each
//! ring; arcs whose owners differ are reported, neighbours with the same
//! (from, to) joined. This is exact by construction and costs
//! O(tokens of both rings), which is what a join or leave already pays.

use kv_types::NodeId;

use crate::{PreferenceList, RangeMove, Ring, RingError, Token, TokenRange};

/// The replicas of the keys in `range` change from `before` to `after`.
///
/// Returned by [`Ring::replica_changes`]: a node in `after` but not in
/// `before` must receive the range (from any node of `before`); a node in
/// `before` but not in `after` may drop it once the others have it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ReplicaChange {
    /// The keys concerned.
    pub range: TokenRange,
    /// Their preference list before the change.
    pub before: PreferenceList,
    /// Their preference list after the change.
    pub after: PreferenceList,
}

impl ReplicaChange {
    /// Nodes that hold the range after the change but not before.
    pub fn gained(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.after
            .iter()
            .copied()
            .filter(|n| !self.before.contains(n))
    }

    /// Nodes that held the range before the change but not after.
    pub fn lost(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.before
            .iter()
            .copied()
            .filter(|n| !self.after.contains(n))
    }
}

/// Walks the boundaries of one ring in ascending order, answering "which
/// entry's range holds this boundary?" with a pointer that only moves
/// forward.
struct Cursor<'a> {
    ring: &'a Ring,
    at: usize,
}

impl Cursor<'_> {
    /// The entry whose range holds `bound`; bounds must come in ascending
    /// order.
    fn entry_at(&mut self, bound: u64) -> usize {
        let tokens = &self.ring.tokens;
        while self.at < tokens.len() && tokens[self.at] < bound {
            self.at += 1;
        }
        if self.at == tokens.len() { 0 } else { self.at }
    }
}

/// Sweeps the boundaries of both rings clockwise from position 0. For each
/// elementary arc, `change(old entry, new entry)` says what changed there,
/// if anything; adjacent arcs with equal changes are joined, across the wrap
/// point too. Empty when either ring is empty.
fn sweep<T: Copy + PartialEq>(
    old: &Ring,
    new: &Ring,
    mut change: impl FnMut(usize, usize) -> Result<Option<T>, RingError>,
) -> Result<Vec<(TokenRange, T)>, RingError> {
    if old.tokens.is_empty() || new.tokens.is_empty() {
        return Ok(Vec::new());
    }
    let bounds = merged_bounds(&old.tokens, &new.tokens);
    let mut a = Cursor { ring: old, at: 0 };
    let mut b = Cursor { ring: new, at: 0 };
    let mut out: Vec<(TokenRange, T)> = Vec::new();
    let mut prev = bounds[bounds.len() - 1];
    for &bound in &bounds {
        let start = prev;
        prev = bound;
        let Some(what) = change(a.entry_at(bound), b.entry_at(bound))? else {
            continue;
        };
        match out.last_mut() {
            Some((range, last)) if range.end.0 == start && *last == what && !range.is_full() => {
                range.end = Token(bound);
            }
            _ => out.push((TokenRange::new(Token(start), Token(bound)), what)),
        }
    }
    if out.len() > 1 {
        let (first, last) = (out[0], out[out.len() - 1]);
        if last.0.end == first.0.start && last.1 == first.1 {
            out[0].0.start = last.0.start;
            out.pop();
        }
    }
    Ok(out)
}

/// Every range whose primary owner differs between `old` and `new`.
pub(crate) fn primary_moves(old: &Ring, new: &Ring) -> Vec<RangeMove> {
    let owner = |ring: &Ring, entry: usize| ring.nodes[ring.owners[entry] as usize].id;
    let moves = sweep(old, new, |a, b| {
        let (from, to) = (owner(old, a), owner(new, b));
        Ok((from != to).then_some((from, to)))
    });
    // The closure never fails, so neither does the sweep.
    moves
        .unwrap_or_default()
        .into_iter()
        .map(|(range, (from, to))| RangeMove { range, from, to })
        .collect()
}

/// The distinct values of two sorted lists, sorted.
fn merged_bounds(x: &[u64], y: &[u64]) -> Vec<u64> {
    let mut out = Vec::with_capacity(x.len() + y.len());
    let (mut i, mut j) = (0, 0);
    while i < x.len() || j < y.len() {
        let v = match (x.get(i), y.get(j)) {
            (Some(&a), Some(&b)) if a <= b => a,
            (Some(_), Some(&b)) => b,
            (Some(&a), None) => a,
            (None, Some(&b)) => b,
            (None, None) => break,
        };
        while x.get(i) == Some(&v) {
            i += 1;
        }
        while y.get(j) == Some(&v) {
            j += 1;
        }
        out.push(v);
    }
    out
}

impl Ring {
    /// Every range whose primary owner differs between `old` and `new`, in
    /// clockwise order from position 0, adjacent ranges with the same
    /// (from, to) joined. Empty when either ring is empty. [`Ring::add_node`]
    /// and [`Ring::remove_node`] return this for the change they make; use it
    /// directly to compare two rings learnt from gossip.
    pub fn primary_moves(old: &Ring, new: &Ring) -> Vec<RangeMove> {
        primary_moves(old, new)
    }

    /// Every range whose set of `n` replicas differs between `old` and
    /// `new`, in clockwise order from position 0, adjacent ranges with the
    /// same change joined: what a replicated store must stream after a
    /// join or leave (use [`ReplicaChange::gained`]). Empty when either ring
    /// is empty.
    pub fn replica_changes(
        old: &Ring,
        new: &Ring,
        n: usize,
    ) -> Result<Vec<ReplicaChange>, RingError> {
        replica_changes(old, new, n)
    }
}

/// Every range whose `n`-replica preference list differs between `old` and
/// `new`, as a set of nodes (a mere reordering is not a change).
pub(crate) fn replica_changes(
    old: &Ring,
    new: &Ring,
    n: usize,
) -> Result<Vec<ReplicaChange>, RingError> {
    let changes = sweep(old, new, |a, b| {
        let before = old.preference_from_entry(a, n)?;
        let after = new.preference_from_entry(b, n)?;
        let same = before.len() == after.len() && before.iter().all(|x| after.contains(x));
        Ok((!same).then_some((before, after)))
    })?;
    Ok(changes
        .into_iter()
        .map(|(range, (before, after))| ReplicaChange {
            range,
            before,
            after,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_bounds_are_distinct_and_sorted() {
        assert_eq!(
            merged_bounds(&[1, 3, 3, 9], &[2, 3, 10]),
            vec![1, 2, 3, 9, 10]
        );
        assert_eq!(merged_bounds(&[], &[4]), vec![4]);
    }
}
