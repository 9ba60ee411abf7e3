//! Ranges of the token space, and the record of a range changing owner.

use kv_types::NodeId;
use serde::{Deserialize, Serialize};

use crate::Token;

/// The half-open arc `(start, end]` of the ring, walking clockwise from
/// `start` (excluded) to `end` (included), wrapping past `u64::MAX` to 0 when
/// `start >= end`. `start == end` means the whole ring: an empty range is
/// never produced.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct TokenRange {
    /// The position just before the range (excluded).
    pub start: Token,
    /// The last position in the range (included).
    pub end: Token,
}

impl TokenRange {
    /// The arc `(start, end]`.
    pub fn new(start: Token, end: Token) -> Self {
        Self { start, end }
    }

    /// Whether the range covers the whole ring.
    pub fn is_full(self) -> bool {
        self.start == self.end
    }

    /// Whether `token` lies in the range.
    pub fn contains(self, token: Token) -> bool {
        let (s, e, t) = (self.start.0, self.end.0, token.0);
        if s == e {
            true
        } else if s < e {
            s < t && t <= e
        } else {
            t > s || t <= e
        }
    }

    /// How many positions the range covers, from 1 to 2^64 (hence `u128`).
    pub fn width(self) -> u128 {
        arc_width(self.start.0, self.end.0)
    }

    /// The share of the ring the range covers, in `(0, 1]`.
    pub fn fraction(self) -> f64 {
        self.width() as f64 / RING_SIZE as f64
    }
}

/// The number of positions on the ring: 2^64.
pub(crate) const RING_SIZE: u128 = 1 << 64;

/// Width of `(start, end]`, where equal ends mean the whole ring.
pub(crate) fn arc_width(start: u64, end: u64) -> u128 {
    if start == end {
        RING_SIZE
    } else {
        u128::from(end.wrapping_sub(start))
    }
}

/// Keys in `range` change their primary owner from node `from` to node `to`.
///
/// A join or leave returns these: the data to stream is exactly the keys
/// whose [`crate::key_hash`] lies in `range`, read from `from` and written
/// to `to`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct RangeMove {
    /// The keys that move.
    pub range: TokenRange,
    /// Their owner before the change.
    pub from: NodeId,
    /// Their owner after the change.
    pub to: NodeId,
}

/// Joins adjacent ranges (the end of one is the start of the next) in a list
/// sorted clockwise, including across the wrap point.
pub(crate) fn coalesce(ranges: Vec<TokenRange>) -> Vec<TokenRange> {
    let mut out: Vec<TokenRange> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if last.end == r.start && !last.is_full() => last.end = r.end,
            _ => out.push(r),
        }
    }
    if out.len() > 1 {
        let (first, last) = (out[0], out[out.len() - 1]);
        if last.end == first.start {
            out[0].start = last.start;
            out.pop();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: u64, e: u64) -> TokenRange {
        TokenRange::new(Token(s), Token(e))
    }

    #[test]
    fn contains_respects_open_start_closed_end() {
        assert!(!r(10, 20).contains(Token(10)));
        assert!(r(10, 20).contains(Token(11)));
        assert!(r(10, 20).contains(Token(20)));
        assert!(!r(10, 20).contains(Token(21)));
    }

    #[test]
    fn wrapping_range_contains_both_ends_of_the_space() {
        let w = r(u64::MAX - 5, 5);
        assert!(w.contains(Token(u64::MAX)));
        assert!(w.contains(Token(0)));
        assert!(w.contains(Token(5)));
        assert!(!w.contains(Token(6)));
        assert!(!w.contains(Token(u64::MAX - 5)));
        assert_eq!(w.width(), 11);
    }

    #[test]
    fn equal_ends_mean_the_whole_ring() {
        assert!(r(7, 7).contains(Token(7)));
        assert!(r(7, 7).contains(Token(0)));
        assert_eq!(r(7, 7).width(), RING_SIZE);
        assert!((r(7, 7).fraction() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn coalesce_joins_neighbours_and_the_wrap() {
        let got = coalesce(vec![
            r(0, 5),
            r(5, 9),
            r(20, 30),
            r(40, u64::MAX),
            r(u64::MAX, 0),
        ]);
        assert_eq!(got, vec![r(40, 9), r(20, 30)]);
    }
}
