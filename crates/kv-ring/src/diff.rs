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

/// Walks the boundaries of one ring in ascending order, answering "who owns
/// this boundary?" with a pointer that only moves forward.
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

    fn owner_at(&mut self, bound: u64) -> NodeId {
        let entry = self.entry_at(bound);
        self.ring.nodes[self.ring.owners[entry] as usize].id
    }
}

/// Every range whose primary owner differs between `old` and `new`, in
/// clockwise order from position 0. Empty when either ring is empty.
pub(crate) fn primary_moves(old: &Ring, new: &Ring) -> Vec<RangeMove> {
    if old.tokens.is_empty() || new.tokens.is_empty() {
        return Vec::new();
    }
    let bounds = merged_bounds(&old.tokens, &new.tokens);
    let mut a = Cursor { ring: old, at: 0 };
    let mut b = Cursor { ring: new, at: 0 };
    let mut moves: Vec<RangeMove> = Vec::new();
    let mut prev = bounds[bounds.len() - 1];
    for &bound in &bounds {
        let (from, to) = (a.owner_at(bound), b.owner_at(bound));
        let start = prev;
        prev = bound;
        if from == to {
            continue;
        }
        match moves.last_mut() {
            Some(m)
                if m.range.end.0 == start && m.from == from && m.to == to && !m.range.is_full() =>
            {
                m.range.end = Token(bound);
            }
            _ => moves.push(RangeMove {
                range: TokenRange::new(Token(start), Token(bound)),
                from,
                to,
            }),
        }
    }
    if moves.len() > 1 {
        let (first, last) = (moves[0], moves[moves.len() - 1]);
        if last.range.end == first.range.start && last.from == first.from && last.to == first.to {
            moves[0].range.start = last.range.start;
            moves.pop();
        }
    }
    moves
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
    if old.tokens.is_empty() || new.tokens.is_empty() {
        return Ok(Vec::new());
    }
    let bounds = merged_bounds(&old.tokens, &new.tokens);
    let mut a = Cursor { ring: old, at: 0 };
    let mut b = Cursor { ring: new, at: 0 };
    let mut out: Vec<ReplicaChange> = Vec::new();
    let mut prev = bounds[bounds.len() - 1];
    for &bound in &bounds {
        let before = old.preference_from_entry(a.entry_at(bound), n)?;
        let after = new.preference_from_entry(b.entry_at(bound), n)?;
        let start = prev;
        prev = bound;
        let same = before.len() == after.len() && before.iter().all(|x| after.contains(x));
        if same {
            continue;
        }
        match out.last_mut() {
            Some(c)
                if c.range.end.0 == start
                    && c.before == before
                    && c.after == after
                    && !c.range.is_full() =>
            {
                c.range.end = Token(bound);
            }
            _ => out.push(ReplicaChange {
                range: TokenRange::new(Token(start), Token(bound)),
                before,
                after,
            }),
        }
    }
    if out.len() > 1 {
        let (first, last) = (out[0], out[out.len() - 1]);
        if last.range.end == first.range.start
            && last.before == first.before
            && last.after == first.after
        {
            out[0].range.start = last.range.start;
            out.pop();
        }
    }
    Ok(out)
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
