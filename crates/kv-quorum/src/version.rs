//! Version vectors and dotted sibling sets: the pure causality logic.
//!
//! A key's state on a replica is a [`SiblingSet`]: a causal context (a
//! [`VersionVector`] summarising every write this replica has seen for the
//! key) and the surviving writes, each tagged with the [`Dot`] that created
//! it. This is the "dotted version vector" scheme of Preguiça, Baquero et al.
//! as Riak 2 uses it: because each sibling carries its own dot rather than a
//! whole clock, a write that supersedes what a client read discards exactly
//! the siblings the client saw, and concurrent writes stay apart without the
//! sibling explosion of per-node vector clocks.
//!
//! Everything here is plain data and pure functions, apart from any I/O, so
//! the laws (merge is commutative, associative and idempotent; `descends` is
//! a partial order) can be property-tested directly.

use std::cmp::Ordering;

use bytes::Bytes;
use kv_types::NodeId;
use serde::{Deserialize, Serialize};

/// One event: the `counter`-th write coordinated by `actor` for a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dot {
    /// The replica that issued the write.
    pub actor: NodeId,
    /// The actor's per-key event counter, starting at 1.
    pub counter: u64,
}

/// A version vector: for each actor, how many of its events are known.
///
/// Actors missing from the vector count as 0. Kept as a vector of
/// `(actor, counter)` sorted by actor with no zero counter: merge and
/// `descends` are one linear pass, iteration and encoding are
/// deterministic, and the encoding equals that of a sorted map.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "RawVersionVector")]
pub struct VersionVector {
    entries: Vec<(NodeId, u64)>,
}

/// The decoded form, normalised before use: bytes from disk or the wire
/// may be unsorted or repeat an actor.
#[derive(Deserialize)]
struct RawVersionVector {
    entries: Vec<(NodeId, u64)>,
}

impl From<RawVersionVector> for VersionVector {
    fn from(raw: RawVersionVector) -> Self {
        raw.entries.into_iter().collect()
    }
}

impl VersionVector {
    /// The empty vector: nothing seen.
    pub fn new() -> Self {
        Self::default()
    }

    /// Events of `actor` that this vector covers.
    pub fn get(&self, actor: NodeId) -> u64 {
        match self.entries.binary_search_by_key(&actor, |e| e.0) {
            Ok(i) => self.entries[i].1,
            Err(_) => 0,
        }
    }

    /// Records that events of `actor` up to `counter` are known.
    pub fn observe(&mut self, actor: NodeId, counter: u64) {
        if counter == 0 {
            return;
        }
        match self.entries.binary_search_by_key(&actor, |e| e.0) {
            Ok(i) => self.entries[i].1 = self.entries[i].1.max(counter),
            Err(i) => self.entries.insert(i, (actor, counter)),
        }
    }

    /// Whether `dot` is covered by this vector.
    pub fn contains(&self, dot: Dot) -> bool {
        dot.counter <= self.get(dot.actor)
    }

    /// Pointwise maximum with `other`.
    pub fn merge(&mut self, other: &Self) {
        // Fast path, the common case: the same actors on both sides.
        if self.entries.len() == other.entries.len()
            && self
                .entries
                .iter()
                .zip(&other.entries)
                .all(|(a, b)| a.0 == b.0)
        {
            for (a, b) in self.entries.iter_mut().zip(&other.entries) {
                a.1 = a.1.max(b.1);
            }
            return;
        }
        let mut out = Vec::with_capacity(self.entries.len() + other.entries.len());
        let (mut i, mut j) = (0, 0);
        while i < self.entries.len() && j < other.entries.len() {
            let (a, b) = (self.entries[i], other.entries[j]);
            match a.0.cmp(&b.0) {
                Ordering::Less => {
                    out.push(a);
                    i += 1;
                }
                Ordering::Greater => {
                    out.push(b);
                    j += 1;
                }
                Ordering::Equal => {
                    out.push((a.0, a.1.max(b.1)));
                    i += 1;
                    j += 1;
                }
            }
        }
        out.extend_from_slice(&self.entries[i..]);
        out.extend_from_slice(&other.entries[j..]);
        self.entries = out;
    }

    /// Whether this vector has seen everything `other` has (`self >= other`).
    pub fn descends(&self, other: &Self) -> bool {
        let mut mine = self.entries.iter().peekable();
        other.entries.iter().all(|&(actor, counter)| {
            while mine.next_if(|e| e.0 < actor).is_some() {}
            matches!(mine.peek(), Some(&&(a, c)) if a == actor && c >= counter)
        })
    }

    /// The causal order of two vectors, or `None` when they are concurrent.
    pub fn partial_cmp_causal(&self, other: &Self) -> Option<Ordering> {
        match (self.descends(other), other.descends(self)) {
            (true, true) => Some(Ordering::Equal),
            (true, false) => Some(Ordering::Greater),
            (false, true) => Some(Ordering::Less),
            (false, false) => None,
        }
    }

    /// This vector with every count cut down to what `bound` holds for the
    /// same actor; actors missing from `bound` are dropped. The result
    /// descends from nothing `bound` does not, and has at most as many
    /// actors as `bound`.
    pub fn clamped_to(&self, bound: &Self) -> Self {
        self.entries
            .iter()
            .map(|&(actor, counter)| (actor, counter.min(bound.get(actor))))
            .collect()
    }

    /// Number of actors with a non-zero count.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no event is known.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The `(actor, counter)` pairs in actor order.
    pub fn iter(&self) -> impl Iterator<Item = (NodeId, u64)> + '_ {
        self.entries.iter().copied()
    }
}

impl FromIterator<(NodeId, u64)> for VersionVector {
    fn from_iter<T: IntoIterator<Item = (NodeId, u64)>>(iter: T) -> Self {
        let mut entries: Vec<(NodeId, u64)> = iter.into_iter().filter(|e| e.1 > 0).collect();
        // Highest counter first within an actor, so dedup keeps the max.
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        entries.dedup_by_key(|e| e.0);
        Self { entries }
    }
}

/// Most single dots a [`WriteContext`] carries past its clock.
pub const CONTEXT_DOTS_MAX: usize = 16;

/// What a write supersedes: every event up to `clock`, plus a few single
/// events past it.
///
/// A read's context is the key's whole clock. A write's reply context must
/// cover what the writer saw and its own new dot, and nothing else: a
/// version vector alone cannot say "dot 6 of actor A but not dot 5" when
/// another client's write took dot 5 meanwhile, so the new dot travels on
/// its own in `dots` until the clock catches up with it (a read, or the
/// writer's next write once nothing lies between). The list is bounded by
/// [`CONTEXT_DOTS_MAX`]; a dot dropped past the bound only means a later
/// write supersedes less (an extra sibling), never more.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "RawWriteContext")]
pub struct WriteContext {
    clock: VersionVector,
    dots: Vec<Dot>,
}

/// The decoded form, normalised before use.
#[derive(Deserialize)]
struct RawWriteContext {
    clock: VersionVector,
    dots: Vec<Dot>,
}

impl From<RawWriteContext> for WriteContext {
    fn from(raw: RawWriteContext) -> Self {
        let mut context = Self::from(raw.clock);
        for dot in raw.dots {
            context.insert(dot);
        }
        context
    }
}

impl From<VersionVector> for WriteContext {
    fn from(clock: VersionVector) -> Self {
        Self {
            clock,
            dots: Vec::new(),
        }
    }
}

impl WriteContext {
    /// The empty context: a blind write, superseding nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// The events covered without gaps.
    pub fn clock(&self) -> &VersionVector {
        &self.clock
    }

    /// The single events covered past the clock, in dot order.
    pub fn dots(&self) -> &[Dot] {
        &self.dots
    }

    /// Whether `dot` is covered.
    pub fn contains(&self, dot: Dot) -> bool {
        self.clock.contains(dot) || self.dots.binary_search(&dot).is_ok()
    }

    /// Covers `dot` too. A dot right after the clock's count for its actor
    /// folds into the clock, and the dots after it with it; past
    /// [`CONTEXT_DOTS_MAX`] single dots the lowest is forgotten.
    pub fn insert(&mut self, dot: Dot) {
        if dot.counter == 0 || self.contains(dot) {
            return;
        }
        if let Err(i) = self.dots.binary_search(&dot) {
            self.dots.insert(i, dot);
        }
        self.fold();
        if self.dots.len() > CONTEXT_DOTS_MAX {
            self.dots.remove(0);
        }
    }

    /// Moves into the clock every dot that extends it without a gap, and
    /// drops dots the clock already covers.
    fn fold(&mut self) {
        // Dots are sorted by actor, then counter, so one pass sees each
        // actor's dots in the order they can extend the clock.
        let clock = &mut self.clock;
        self.dots.retain(|&dot| {
            let seen = clock.get(dot.actor);
            if dot.counter <= seen {
                false
            } else if dot.counter == seen + 1 {
                clock.observe(dot.actor, dot.counter);
                false
            } else {
                true
            }
        });
    }

    /// This context restricted to what `bound` has seen (see
    /// [`VersionVector::clamped_to`]); a single dot `bound` has not seen is
    /// dropped.
    pub fn clamped_to(&self, bound: &VersionVector) -> Self {
        let mut clamped = Self::from(self.clock.clamped_to(bound));
        clamped.dots = self
            .dots
            .iter()
            .copied()
            .filter(|&dot| bound.contains(dot) && !clamped.clock.contains(dot))
            .collect();
        clamped.fold();
        clamped
    }
}

/// An actor has issued `u64::MAX` dots for one key and cannot issue
/// another; the write was not applied. The replica must take a fresh actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("actor {actor} has issued every dot it can for this key")]
pub struct DotsExhausted {
    /// The actor.
    pub actor: NodeId,
}

/// One surviving write: its dot and its value, `None` for a delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sibling {
    /// The event that created this write.
    pub dot: Dot,
    /// The value written, or `None` for a tombstone.
    pub value: Option<Bytes>,
}

/// The state of one key: a causal context and the concurrent writes in it.
///
/// Invariants, kept by every constructor and operation: every sibling's dot
/// is covered by `clock`; siblings are sorted by dot and no dot repeats; no
/// sibling's dot is covered by another sibling's history (they are
/// pairwise concurrent), which the operations ensure by construction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "RawSiblingSet")]
pub struct SiblingSet {
    clock: VersionVector,
    siblings: Vec<Sibling>,
}

/// The decoded form; [`SiblingSet::from_parts`] restores the invariants of
/// bytes from the wire.
#[derive(Deserialize)]
struct RawSiblingSet {
    clock: VersionVector,
    siblings: Vec<Sibling>,
}

impl From<RawSiblingSet> for SiblingSet {
    fn from(raw: RawSiblingSet) -> Self {
        SiblingSet::from_parts(raw.clock, raw.siblings)
    }
}

impl SiblingSet {
    /// The state of a key nobody has written.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a set from parts, restoring the invariants: dots outside
    /// `clock` are added to it, siblings are sorted and deduplicated.
    pub fn from_parts(mut clock: VersionVector, mut siblings: Vec<Sibling>) -> Self {
        for s in &siblings {
            clock.observe(s.dot.actor, s.dot.counter);
        }
        siblings.sort_by_key(|s| s.dot);
        siblings.dedup_by_key(|s| s.dot);
        Self { clock, siblings }
    }

    /// The causal context: everything this state has seen.
    pub fn clock(&self) -> &VersionVector {
        &self.clock
    }

    /// Every surviving write, tombstones included, in dot order.
    pub fn siblings(&self) -> &[Sibling] {
        &self.siblings
    }

    /// The live values (tombstones left out), in dot order.
    pub fn values(&self) -> impl Iterator<Item = &Bytes> + '_ {
        self.siblings.iter().filter_map(|s| s.value.as_ref())
    }

    /// Whether every surviving write is a delete (or nothing was written):
    /// a read answers "not found".
    pub fn is_deleted(&self) -> bool {
        self.siblings.iter().all(|s| s.value.is_none())
    }

    /// Applies a client write on the replica `actor`, which issues its dot.
    ///
    /// `context` is what the client read: siblings it covers are superseded
    /// and dropped; the others stay as concurrent siblings.
    ///
    /// A context is untrusted input, so it is first clamped pointwise to
    /// this state's own clock (see [`WriteContext::clamped_to`]): an entry
    /// the issuer has not seen, or a count above what it has seen, is
    /// treated as "not yet seen". Clamping never makes the write supersede
    /// more than the client claimed, only less, so an honest client that
    /// read from a replica ahead of this one at worst leaves an extra
    /// sibling, never loses a write; and a forged context can neither grow
    /// the key's clock (no fake actors, no counters far ahead that would
    /// make another actor's later writes look already seen) nor push the
    /// issuer's counter towards overflow.
    ///
    /// The new dot's counter is one past what this state records for
    /// `actor`, never taken from the context: dots stay unique as long as
    /// `actor` is used only by a replica that keeps its own durable copy,
    /// which is why a replica that may have lost data takes a fresh actor
    /// (see [`Replica::with_actor`](crate::Replica::with_actor)). Returns
    /// the new dot, or [`DotsExhausted`] (nothing changed) when `actor`
    /// already issued `u64::MAX` events for this key.
    pub fn update(
        &mut self,
        context: &WriteContext,
        actor: NodeId,
        value: Option<Bytes>,
    ) -> Result<Dot, DotsExhausted> {
        let context = context.clamped_to(&self.clock);
        let counter = self
            .clock
            .get(actor)
            .checked_add(1)
            .ok_or(DotsExhausted { actor })?;
        self.siblings.retain(|s| !context.contains(s.dot));
        let dot = Dot { actor, counter };
        // The clamped context is below the clock, so merging it would
        // change nothing; only the new dot is recorded.
        self.clock.observe(actor, counter);
        // The new dot is the largest of its actor, so pushing and re-sorting
        // only moves it past other actors' dots.
        self.siblings.push(Sibling { dot, value });
        self.siblings.sort_by_key(|s| s.dot);
        Ok(dot)
    }

    /// Bytes this state takes in a record or a message, near enough for a
    /// limit: the values, plus 24 bytes per sibling and 16 per clock entry
    /// (postcard varints are at most that long).
    pub fn size_bytes(&self) -> usize {
        self.siblings
            .iter()
            .map(|s| 24 + s.value.as_ref().map_or(0, Bytes::len))
            .sum::<usize>()
            + 16 * self.clock.len()
    }

    /// How many siblings, from the first in dot order, fit a reply of
    /// `bytes_max` bytes as [`size_bytes`](Self::size_bytes) counts it;
    /// at least one when there is any (a stored state fits by construction).
    pub fn shown_within(&self, bytes_max: usize) -> usize {
        let mut bytes = 16 * self.clock.len();
        let fit = self
            .siblings
            .iter()
            .take_while(|s| {
                bytes += 24 + s.value.as_ref().map_or(0, Bytes::len);
                bytes <= bytes_max
            })
            .count();
        fit.max(1).min(self.siblings.len())
    }

    /// The context of a read that returned only the first `shown` siblings
    /// (in dot order): everything this state has seen, except that for each
    /// actor with a sibling left out it stops just below the first one. A
    /// write with it supersedes the siblings shown and none of the others.
    ///
    /// Because the shown siblings are a prefix in dot order, each of them
    /// has a lower counter than every left-out sibling of its actor, so
    /// the clock alone covers them and no single dots are needed.
    pub fn context_showing(&self, shown: usize) -> WriteContext {
        let mut first_left_out: Vec<Dot> = Vec::new();
        for s in self.siblings.iter().skip(shown) {
            // Dot order: the first sibling of each actor has its lowest counter.
            if first_left_out.last().is_none_or(|d| d.actor != s.dot.actor) {
                first_left_out.push(s.dot);
            }
        }
        let clock = self
            .clock
            .iter()
            .map(|(actor, seen)| {
                let below = first_left_out
                    .iter()
                    .find(|d| d.actor == actor)
                    .map_or(seen, |d| seen.min(d.counter - 1));
                (actor, below)
            })
            .filter(|&(_, seen)| seen > 0)
            .collect::<VersionVector>();
        WriteContext::from(clock)
    }

    /// Merges another replica's state of the same key into this one.
    ///
    /// A sibling survives if the other side still has it, or if the other
    /// side has never seen its dot; a sibling whose dot the other side has
    /// seen but dropped was superseded there. The clocks join.
    pub fn merge(&mut self, other: &Self) {
        let mine = std::mem::take(&mut self.siblings);
        let mut kept: Vec<Sibling> = Vec::with_capacity(mine.len() + other.siblings.len());
        let mut theirs = other.siblings.iter().peekable();
        // Both lists are sorted by dot, so one merge pass suffices; our own
        // siblings are moved, only the other side's are cloned.
        for a in mine {
            while let Some(b) = theirs.next_if(|b| b.dot < a.dot) {
                if !self.clock.contains(b.dot) {
                    kept.push(b.clone());
                }
            }
            if theirs.next_if(|b| b.dot == a.dot).is_some() || !other.clock.contains(a.dot) {
                kept.push(a);
            }
        }
        for b in theirs {
            if !self.clock.contains(b.dot) {
                kept.push(b.clone());
            }
        }
        self.siblings = kept;
        self.clock.merge(&other.clock);
    }

    /// Whether this state has seen everything `other` has, so merging
    /// `other` in would change nothing. Read repair uses it to find stale
    /// replicas.
    pub fn covers(&self, other: &Self) -> bool {
        // Merging keeps a sibling of ours unless `other` saw its dot and
        // dropped it; it adds a sibling of theirs only if we never saw it,
        // and every dot of theirs is inside their clock.
        self.clock.descends(&other.clock)
            && self.siblings.iter().all(|s| {
                !other.clock.contains(s.dot)
                    || other
                        .siblings
                        .binary_search_by_key(&s.dot, |x| x.dot)
                        .is_ok()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: NodeId = NodeId(1);
    const B: NodeId = NodeId(2);

    fn v(s: &'static str) -> Option<Bytes> {
        Some(Bytes::from_static(s.as_bytes()))
    }

    #[test]
    fn a_context_showing_a_prefix_supersedes_exactly_that_prefix() {
        // Siblings A1 A2 A3 B1 B2 C1, from blind writes.
        let mut s = SiblingSet::new();
        for (actor, n) in [(A, 3), (B, 2), (NodeId(3), 1)] {
            for _ in 0..n {
                s.update(&WriteContext::new(), actor, v("x")).unwrap();
            }
        }
        let all = s.siblings().to_vec();
        for shown in 0..=all.len() {
            let context = s.context_showing(shown);
            let mut written = s.clone();
            written.update(&context, NodeId(9), v("w")).unwrap();
            let kept: Vec<Dot> = written
                .siblings()
                .iter()
                .map(|x| x.dot)
                .filter(|d| d.actor != NodeId(9))
                .collect();
            let expected: Vec<Dot> = all[shown..].iter().map(|x| x.dot).collect();
            assert_eq!(kept, expected, "showing {shown}");
        }
        assert_eq!(
            s.context_showing(all.len()),
            WriteContext::from(s.clock().clone())
        );
    }

    #[test]
    fn shown_within_counts_what_fits_and_at_least_one() {
        let mut s = SiblingSet::new();
        for actor in [A, B, NodeId(3)] {
            s.update(&WriteContext::new(), actor, Some(Bytes::from(vec![0; 100])))
                .unwrap();
        }
        assert_eq!(s.shown_within(usize::MAX), 3);
        assert_eq!(s.shown_within(s.size_bytes()), 3);
        assert_eq!(s.shown_within(s.size_bytes() - 1), 2);
        assert_eq!(s.shown_within(0), 1);
        assert_eq!(SiblingSet::new().shown_within(0), 0);
    }

    #[test]
    fn write_with_context_supersedes_what_was_read() {
        let mut s = SiblingSet::new();
        s.update(&WriteContext::new(), A, v("x")).unwrap();
        let ctx = s.clock().clone();
        s.update(&ctx.clone().into(), A, v("y")).unwrap();
        assert_eq!(s.values().collect::<Vec<_>>(), vec![&v("y").unwrap()]);
        assert_eq!(s.clock().get(A), 2);
    }

    #[test]
    fn blind_writes_become_siblings() {
        let mut s = SiblingSet::new();
        s.update(&WriteContext::new(), A, v("x")).unwrap();
        s.update(&WriteContext::new(), A, v("y")).unwrap();
        assert_eq!(s.values().count(), 2);
    }

    #[test]
    fn merge_keeps_concurrent_and_drops_superseded() {
        let mut a = SiblingSet::new();
        a.update(&WriteContext::new(), A, v("x")).unwrap();
        let mut b = a.clone();
        // b supersedes x; a meanwhile gets a concurrent write from B.
        let ctx = b.clock().clone();
        b.update(&ctx.clone().into(), A, v("x2")).unwrap();
        a.update(&WriteContext::new(), B, v("z")).unwrap();
        let mut m = a.clone();
        m.merge(&b);
        let vals: Vec<_> = m.values().cloned().collect();
        assert_eq!(vals, vec![v("x2").unwrap(), v("z").unwrap()]);
        let mut m2 = b.clone();
        m2.merge(&a);
        assert_eq!(m, m2);
    }

    #[test]
    fn deletes_are_tombstones() {
        let mut s = SiblingSet::new();
        assert!(s.is_deleted());
        s.update(&WriteContext::new(), A, v("x")).unwrap();
        assert!(!s.is_deleted());
        let ctx = s.clock().clone();
        s.update(&ctx.clone().into(), A, None).unwrap();
        assert!(s.is_deleted());
        assert_eq!(s.siblings().len(), 1);
    }

    #[test]
    fn descends_orders_vectors() {
        let a: VersionVector = [(A, 1)].into_iter().collect();
        let b: VersionVector = [(A, 1), (B, 1)].into_iter().collect();
        let c: VersionVector = [(B, 2)].into_iter().collect();
        assert_eq!(b.partial_cmp_causal(&a), Some(Ordering::Greater));
        assert_eq!(a.partial_cmp_causal(&b), Some(Ordering::Less));
        assert_eq!(a.partial_cmp_causal(&c), None);
        assert!(a.descends(&VersionVector::new()));
    }

    #[test]
    fn decoded_vectors_are_normalised() {
        // Unsorted, a repeated actor, a zero counter: as a corrupt or
        // hostile peer might send.
        let raw: Vec<(NodeId, u64)> = vec![(B, 1), (A, 2), (B, 5), (NodeId(3), 0)];
        let bytes = postcard::to_allocvec(&raw).unwrap();
        let vv: VersionVector = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(vv.iter().collect::<Vec<_>>(), vec![(A, 2), (B, 5)]);
    }

    fn dot(actor: NodeId, counter: u64) -> Dot {
        Dot { actor, counter }
    }

    #[test]
    fn a_write_context_covers_single_dots_past_its_clock() {
        let clock: VersionVector = [(A, 3)].into_iter().collect();
        let mut c = WriteContext::from(clock);
        c.insert(dot(A, 5));
        assert!(c.contains(dot(A, 3)) && c.contains(dot(A, 5)));
        assert!(!c.contains(dot(A, 4)), "the gap stays uncovered");
        assert_eq!(c.dots(), &[dot(A, 5)]);
        // Filling the gap folds both into the clock.
        c.insert(dot(A, 4));
        assert_eq!(c.clock().get(A), 5);
        assert!(c.dots().is_empty());
    }

    #[test]
    fn a_write_context_keeps_at_most_its_bound_of_dots() {
        let mut c = WriteContext::new();
        for counter in 0..(CONTEXT_DOTS_MAX as u64 + 5) {
            c.insert(dot(A, 2 + 2 * counter));
        }
        assert_eq!(c.dots().len(), CONTEXT_DOTS_MAX);
        // The newest dot is kept, the oldest forgotten.
        assert!(c.contains(dot(A, 2 + 2 * (CONTEXT_DOTS_MAX as u64 + 4))));
        assert!(!c.contains(dot(A, 2)));
    }

    #[test]
    fn a_write_context_clamped_drops_what_the_bound_never_saw() {
        let mut c = WriteContext::from([(A, 9), (B, 1)].into_iter().collect::<VersionVector>());
        c.insert(dot(B, 4));
        c.insert(dot(B, 7));
        let bound: VersionVector = [(A, 2), (B, 5)].into_iter().collect();
        let clamped = c.clamped_to(&bound);
        assert_eq!(clamped.clock().get(A), 2);
        assert!(clamped.contains(dot(B, 4)));
        assert!(
            !clamped.contains(dot(B, 7)),
            "B:7 is past what the bound saw"
        );
        assert!(!clamped.contains(dot(B, 3)));
    }

    #[test]
    fn a_write_with_a_dotted_context_supersedes_exactly_its_dots() {
        let mut s = SiblingSet::new();
        let x = s.update(&WriteContext::new(), A, v("x")).unwrap();
        let y = s.update(&WriteContext::new(), A, v("y")).unwrap();
        let mut seen = WriteContext::new();
        seen.insert(y);
        s.update(&seen, A, v("z")).unwrap();
        let left: Vec<Dot> = s.siblings().iter().map(|s| s.dot).collect();
        assert_eq!(left, vec![x, dot(A, 3)], "y superseded, x kept");
    }

    #[test]
    fn a_decoded_write_context_is_normalised() {
        #[derive(Serialize)]
        struct Raw {
            clock: VersionVector,
            dots: Vec<Dot>,
        }
        let raw = Raw {
            clock: [(A, 2)].into_iter().collect(),
            dots: vec![dot(A, 9), dot(A, 1), dot(A, 3), dot(A, 9)],
        };
        let bytes = postcard::to_allocvec(&raw).unwrap();
        let c: WriteContext = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(c.clock().get(A), 3, "A:3 extends the clock");
        assert_eq!(c.dots(), &[dot(A, 9)], "covered and repeated dots go");
    }

    #[test]
    fn a_vector_counts_its_actors() {
        let empty = VersionVector::new();
        assert_eq!(empty.len(), 0);
        assert!(empty.is_empty());
        let two: VersionVector = [(A, 4), (B, 1), (A, 2)].into_iter().collect();
        assert_eq!(two.len(), 2);
        assert!(!two.is_empty());
    }

    #[test]
    fn a_sibling_set_round_trips_through_its_encoding() {
        let mut s = SiblingSet::new();
        s.update(&WriteContext::new(), A, v("x")).unwrap();
        s.update(&WriteContext::new(), B, None).unwrap();
        let bytes = postcard::to_allocvec(&s).unwrap();
        let back: SiblingSet = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.siblings().len(), 2);
    }

    #[test]
    fn size_bytes_counts_values_siblings_and_clock_entries() {
        let mut s = SiblingSet::new();
        s.update(&WriteContext::new(), A, v("hello")).unwrap();
        s.update(&WriteContext::new(), B, v("abc")).unwrap();
        s.update(&WriteContext::new(), B, None).unwrap();
        // 3 siblings at 24 bytes, 8 value bytes, 2 clock entries at 16.
        assert_eq!(s.size_bytes(), 3 * 24 + 8 + 2 * 16);
    }
}
