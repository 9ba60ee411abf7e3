//! `StaticRing`: a fixed consistent-hashing ring for tests, simulations and
//! benchmarks, so this crate need not depend on kv-ring.

use kv_types::NodeId;

use crate::transport::Placement;

/// Virtual nodes per node on a [`StaticRing`].
pub const STATIC_RING_VNODES: usize = 16;

/// A fixed ring: each node owns [`STATIC_RING_VNODES`] tokens from a fixed
/// hash (FNV-1a 64), so placement is the same on every run and platform.
#[derive(Debug, Clone)]
pub struct StaticRing {
    /// `(token, node)`, sorted by token.
    tokens: Vec<(u64, NodeId)>,
    nodes: usize,
}

impl StaticRing {
    /// A ring of `nodes` (duplicates are ignored).
    pub fn new(nodes: impl IntoIterator<Item = NodeId>) -> Self {
        let mut ids: Vec<NodeId> = nodes.into_iter().collect();
        ids.sort();
        ids.dedup();
        let mut tokens = Vec::with_capacity(ids.len() * STATIC_RING_VNODES);
        for &id in &ids {
            for v in 0..STATIC_RING_VNODES as u64 {
                let mut buf = [0u8; 16];
                buf[..8].copy_from_slice(&id.0.to_be_bytes());
                buf[8..].copy_from_slice(&v.to_be_bytes());
                tokens.push((fnv1a(&buf), id));
            }
        }
        tokens.sort();
        Self {
            tokens,
            nodes: ids.len(),
        }
    }

    /// Every distinct node in ring order from the key's position.
    fn walk(&self, key: &[u8]) -> impl Iterator<Item = NodeId> + '_ {
        let h = fnv1a(key);
        let start = self.tokens.partition_point(|&(t, _)| t < h);
        let mut seen: Vec<NodeId> = Vec::with_capacity(self.nodes);
        let len = self.tokens.len();
        (0..len)
            .map(move |i| self.tokens[(start + i) % len].1)
            .filter(move |id| {
                if seen.contains(id) {
                    false
                } else {
                    seen.push(*id);
                    true
                }
            })
    }
}

impl Placement for StaticRing {
    fn preference_list(&self, key: &[u8], n: usize) -> Vec<NodeId> {
        self.walk(key).take(n).collect()
    }

    fn fallbacks(&self, key: &[u8], n: usize) -> Box<dyn Iterator<Item = NodeId> + '_> {
        Box::new(self.walk(key).skip(n))
    }
}

/// FNV-1a, 64 bits: tiny, stable across platforms and releases.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preference_lists_are_distinct_and_fallbacks_follow() {
        let ring = StaticRing::new((1..=5).map(NodeId));
        for k in 0..100u32 {
            let key = k.to_be_bytes();
            let pref = ring.preference_list(&key, 3);
            assert_eq!(pref.len(), 3);
            let fb: Vec<_> = ring.fallbacks(&key, 3).collect();
            assert_eq!(fb.len(), 2);
            let mut all = pref.clone();
            all.extend(&fb);
            all.sort();
            all.dedup();
            assert_eq!(all.len(), 5);
        }
        let small = StaticRing::new([NodeId(1), NodeId(2)]);
        assert_eq!(small.preference_list(b"k", 3).len(), 2);
    }
}
