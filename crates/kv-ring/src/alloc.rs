//! Token allocation: where a joining node's tokens go.
//!
//! The algorithm and why it was chosen are in the crate documentation
//! ("Token allocation"), where users of the crate read them.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use kv_types::NodeId;

use crate::hash::fmix64;
use crate::range::RING_SIZE;
use crate::ring::check_node;
use crate::{Balance, MAX_NODES, MAX_TOKENS_PER_NODE, NewNode, Ring, RingError, Token};

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
        // (at most 2^64 * MAX_WEIGHT < 2^75: no overflow); on a tie the lower
        // index (id) wins.
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
    /// The tokens `node` should take to join this ring:
    /// `weight * vnodes_per_weight` of them, chosen greedily from the most
    /// loaded nodes of the ring, or of its zone with [`Balance::PerZone`]
    /// (see "Token allocation" in the [crate]
    /// docs). Deterministic: the same ring and node always give the same
    /// tokens. May return fewer tokens in the degenerate case where slices
    /// would coincide (ranges one position wide).
    pub fn allocate_tokens(&self, node: &NewNode) -> Result<Vec<Token>, RingError> {
        let id = node.id;
        if self.contains(id) {
            return Err(RingError::DuplicateNode { node: id });
        }
        check_node(id, node.weight, node.zone.as_deref())?;
        if self.nodes.len() >= MAX_NODES {
            return Err(RingError::TooManyNodes {
                nodes: self.nodes.len() + 1,
                max: MAX_NODES,
            });
        }
        let count = u64::from(node.weight) * u64::from(self.config.vnodes_per_weight);
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        if count > MAX_TOKENS_PER_NODE {
            return Err(RingError::TooManyTokens {
                node: id,
                tokens: count,
                max: MAX_TOKENS_PER_NODE,
            });
        }
        let view = match self.config.balance {
            Balance::Global => None,
            Balance::PerZone => self.zone_view(node.zone.as_deref()),
        };
        let ring = view.as_ref().unwrap_or(self);
        let mut tokens = if ring.tokens.is_empty() {
            evenly_spaced(id, count)
        } else {
            ring.greedy(id, node.weight, count)
        };
        tokens.sort_unstable();
        tokens.dedup();
        Ok(tokens)
    }

    /// The ring made of `zone`'s nodes only, or `None` when every node is in
    /// `zone` (the ring itself is then the view). Filtering the sorted table
    /// keeps it sorted, so this costs one pass.
    fn zone_view(&self, zone: Option<&str>) -> Option<Ring> {
        if self.nodes.iter().all(|n| n.zone.as_deref() == zone) {
            return None;
        }
        let mut index = vec![u32::MAX; self.nodes.len()];
        let mut view = Ring {
            config: self.config,
            ..Ring::default()
        };
        for (ix, node) in self.nodes.iter().enumerate() {
            if node.zone.as_deref() == zone {
                index[ix] = view.nodes.len() as u32;
                view.nodes.push(node.clone());
            }
        }
        for (&t, &o) in self.tokens.iter().zip(&self.owners) {
            let o = index[o as usize];
            if o != u32::MAX {
                view.tokens.push(t);
                view.owners.push(o);
            }
        }
        Some(view)
    }

    fn greedy(&self, id: NodeId, weight: u32, count: usize) -> Vec<Token> {
        let mut loads = vec![0u128; self.nodes.len()];
        // Each node's entries, grouped by node in one array (offsets from
        // the nodes' token counts), so a giver's ranges are found without
        // searching.
        let mut offsets = Vec::with_capacity(self.nodes.len() + 1);
        offsets.push(0usize);
        for node in &self.nodes {
            offsets.push(offsets[offsets.len() - 1] + node.tokens.len());
        }
        let mut fill = offsets.clone();
        let mut by_node = vec![0u32; self.tokens.len()];
        for (i, &owner) in self.owners.iter().enumerate() {
            loads[owner as usize] += self.entry_width(i);
            by_node[fill[owner as usize]] = i as u32;
            fill[owner as usize] += 1;
        }
        // A node's slices are gathered only when it is first asked to give:
        // a join touches about `count` nodes, and building every node's
        // heap made a 1000-node build spend half its time here.
        let mut slices: Vec<Option<BinaryHeap<Slice>>> = vec![None; self.nodes.len()];
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
            let heap = slices[giver.ix as usize].get_or_insert_with(|| {
                let ix = giver.ix as usize;
                self.slices_of(id, &by_node[offsets[ix]..offsets[ix + 1]])
            });
            let Some(mut s) = heap.pop() else {
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
                heap.push(slice(id, token, s.width));
            }
            givers.push(giver);
        }
        out
    }
}

impl Ring {
    /// The ranges of table `entries`, as slices scored for `joiner`.
    fn slices_of(&self, joiner: NodeId, entries: &[u32]) -> BinaryHeap<Slice> {
        let mut heap = BinaryHeap::with_capacity(entries.len());
        for &e in entries {
            let e = e as usize;
            let width = self.entry_width(e);
            if width > 0 {
                let prev = if e == 0 {
                    self.tokens[self.tokens.len() - 1]
                } else {
                    self.tokens[e - 1]
                };
                heap.push(slice(joiner, prev, width));
            }
        }
        heap
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
