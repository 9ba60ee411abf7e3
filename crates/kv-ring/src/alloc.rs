//! Token allocation: where a joining node's tokens go.
//!
//! The algorithm and why it was chosen are in the crate documentation
//! ("Token allocation"), where users of the crate read them.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use kv_types::NodeId;

use crate::hash::fmix64;
use crate::range::RING_SIZE;
use crate::{MAX_NODES, MAX_TOKENS_PER_NODE, MAX_WEIGHT, Ring, RingError, Token};

/// A node that can give load, ordered by load per unit of weight.
#[derive(Clone, Copy, Debug)]
struct Giver {
    load: u128,
    weight: u128,
    ix: u32,
}

impl Ord for Giver {
    fn cmp(&self, other: &Self) -> Ordering {
        // load/weight compared exactly as load_a * weight_b vs load_b * weight_a
        // (at most 2^64 * 2^16: no overflow); on a tie the lower index (id) wins.
        (self.load * other.weight)
            .cmp(&(other.load * self.weight))
            .then_with(|| other.ix.cmp(&self.ix))
    }
}

impl PartialOrd for Giver {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Giver {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Giver {}

/// One range `(start, start + width]` a giver owns, ordered by its score.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct Slice {
    score: u128,
    start: u64,
    width: u128,
}

fn slice(joiner: NodeId, start: u64, width: u128) -> Slice {
    let jitter = u128::from(fmix64(joiner.0 ^ fmix64(start)) & 0xff);
    Slice {
        score: width * (1024 + jitter),
        start,
        width,
    }
}

impl Ring {
    /// The tokens node `id` of weight `weight` should take to join this
    /// ring: `weight * vnodes_per_weight` of them, chosen greedily from the
    /// most loaded nodes (see "Token allocation" in the [crate] docs).
    /// Deterministic: the same ring and node always give the same tokens.
    /// May return fewer tokens in the degenerate case where slices would
    /// coincide (ranges one position wide).
    pub fn allocate_tokens(&self, id: NodeId, weight: u32) -> Result<Vec<Token>, RingError> {
        if self.contains(id) {
            return Err(RingError::DuplicateNode { node: id });
        }
        if weight == 0 {
            return Err(RingError::ZeroWeight { node: id });
        }
        if weight > MAX_WEIGHT {
            return Err(RingError::WeightTooLarge {
                node: id,
                weight,
                max: MAX_WEIGHT,
            });
        }
        if self.nodes.len() >= MAX_NODES {
            return Err(RingError::TooManyNodes {
                nodes: self.nodes.len() + 1,
                max: MAX_NODES,
            });
        }
        let count = u64::from(weight) * u64::from(self.config.vnodes_per_weight);
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        if count > MAX_TOKENS_PER_NODE {
            return Err(RingError::TooManyTokens {
                node: id,
                tokens: count,
                max: MAX_TOKENS_PER_NODE,
            });
        }
        let mut tokens = if self.tokens.is_empty() {
            evenly_spaced(id, count)
        } else {
            self.greedy(id, weight, count)
        };
        tokens.sort_unstable();
        tokens.dedup();
        Ok(tokens)
    }

    fn greedy(&self, id: NodeId, weight: u32, count: usize) -> Vec<Token> {
        let mut slices: Vec<BinaryHeap<Slice>> = vec![BinaryHeap::new(); self.nodes.len()];
        let mut loads = vec![0u128; self.nodes.len()];
        for i in 0..self.tokens.len() {
            let width = self.entry_width(i);
            if width == 0 {
                continue;
            }
            let owner = self.owners[i] as usize;
            loads[owner] += width;
            let prev = if i == 0 {
                self.tokens[self.tokens.len() - 1]
            } else {
                self.tokens[i - 1]
            };
            slices[owner].push(slice(id, prev, width));
        }
        let mut givers: BinaryHeap<Giver> = loads
            .iter()
            .enumerate()
            .map(|(ix, &load)| Giver {
                load,
                weight: u128::from(self.nodes[ix].weight),
                ix: ix as u32,
            })
            .collect();
        let total = u128::from(self.total_weight()) + u128::from(weight);
        let mut need = RING_SIZE * u128::from(weight) / total;
        let mut out = Vec::with_capacity(count);
        for placed in 0..count {
            let Some(mut giver) = givers.pop() else { break };
            let Some(mut s) = slices[giver.ix as usize].pop() else {
                // A node with load has a slice; one without is never on top
                // while any node has load. Stop rather than loop.
                break;
            };
            let left = (count - placed) as u128;
            let take = (need / left).max(1).min(s.width.saturating_sub(1)).max(1);
            // take < 2^64 here, so the truncation is exact.
            let token = s.start.wrapping_add(take as u64);
            out.push(Token(token));
            need = need.saturating_sub(take);
            giver.load = giver.load.saturating_sub(take);
            s.width = s.width.saturating_sub(take);
            if s.width > 0 {
                slices[giver.ix as usize].push(slice(id, token, s.width));
            }
            givers.push(giver);
        }
        out
    }
}

/// `count` tokens spread evenly over the ring from a point derived from `id`.
fn evenly_spaced(id: NodeId, count: usize) -> Vec<Token> {
    let origin = fmix64(id.0 ^ 0x6b76_2d72_696e_6721);
    let step = RING_SIZE / count.max(1) as u128;
    (0..count)
        .map(|i| Token(origin.wrapping_add((step * i as u128) as u64)))
        .collect()
}
