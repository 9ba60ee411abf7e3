//! The ring itself: nodes, their tokens, and the sorted token table that
//! lookups search.
//!
//! # Invariants
//!
//! - `nodes` is sorted by id, and each node's `tokens` are sorted and
//!   distinct, so a ring built from the same node specs in any order is
//!   equal, field for field, to any other.
//! - `tokens`/`owners` list every (token, node) pair sorted by token, then by
//!   node id. Two nodes may claim the same token (two joins computed
//!   concurrently can do that); the lower id then owns the range ending at
//!   it and the other entry covers nothing, so the result never depends on
//!   the order specs arrived in.
//! - Every derived field is rebuilt from `nodes` and checked on
//!   deserialization: what gossip carries is only the config and the node
//!   specs ([`RingState`]).

use std::collections::BTreeSet;

use kv_types::NodeId;
use serde::{Deserialize, Serialize};

use crate::hash::{FNV_OFFSET, fmix64, fnv1a};
use crate::range::{RING_SIZE, arc_width, coalesce};
use crate::{
    MAX_NODES, MAX_TOKENS_PER_NODE, MAX_WEIGHT, MAX_ZONE_LEN, RangeMove, RingError, Token,
    TokenRange, key_hash,
};

/// The version of [`RingState`], written into every serialized ring.
pub const RING_FORMAT_VERSION: u32 = 1;

/// The most buckets of the lookup index (a power of two): 256 KiB of index
/// at most, about one token per bucket up to 65536 tokens.
pub const MAX_LOOKUP_BUCKETS: usize = 1 << 16;

/// The number of tokens a node of weight 1 gets by default.
pub const DEFAULT_VNODES_PER_WEIGHT: u32 = 64;

/// Settings that every node of a cluster must agree on.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct RingConfig {
    /// Tokens given to a joining node per unit of weight (a node of weight
    /// `w` gets `w * vnodes_per_weight`). Default
    /// [`DEFAULT_VNODES_PER_WEIGHT`]; at most [`MAX_TOKENS_PER_NODE`].
    pub vnodes_per_weight: u32,
    /// What token allocation balances. Default [`Balance::Global`].
    #[serde(default)]
    pub balance: Balance,
}

/// What [`Ring::allocate_tokens`] balances when a node joins.
///
/// With zones, the two differ. A key's replica in zone `z` is the first
/// node of `z` clockwise, so a node's storage load is its share of its
/// zone's own sub-ring, not of the whole ring. Measured with 99 equal nodes
/// in 3 zones and 3 replicas (`cargo xtask bench ring`): `Global` leaves the
/// most loaded node holding about 1.2x the mean replica load, `PerZone`
/// about 1.01x, but `PerZone` leaves primary ownership (who is first in
/// the preference list) 1.5x off, and with more zones than replicas it is
/// the worse of the two. Without zone labels both are the same.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Balance {
    /// Balance primary ownership over the whole ring: best when there are
    /// no zones, or more zones than replicas.
    #[default]
    Global,
    /// Balance each zone's sub-ring on its own: best when every key has a
    /// replica in every zone (replicas >= zones, e.g. 3 zones, 3 replicas).
    PerZone,
}

impl Default for RingConfig {
    fn default() -> Self {
        Self {
            vnodes_per_weight: DEFAULT_VNODES_PER_WEIGHT,
            balance: Balance::Global,
        }
    }
}

impl RingConfig {
    fn check(self) -> Result<Self, RingError> {
        let max = MAX_TOKENS_PER_NODE as u32;
        if self.vnodes_per_weight == 0 || self.vnodes_per_weight > max {
            return Err(RingError::BadVnodeCount {
                vnodes: self.vnodes_per_weight,
                max,
            });
        }
        Ok(self)
    }
}

/// One node as the ring knows it: what gossip carries about placement.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct NodeSpec {
    /// The node.
    pub id: NodeId,
    /// Its capacity, in arbitrary units from 1 to [`MAX_WEIGHT`]; the share
    /// of the ring it owns follows its weight.
    pub weight: u32,
    /// Its zone (datacenter, rack); `None` is one unnamed zone of its own.
    pub zone: Option<String>,
    /// Its tokens: it owns each range ending at one of them. Their number
    /// need not be `weight * vnodes_per_weight` (a spec may come from an
    /// older config or be placed by hand); the weight steers later
    /// allocations, the tokens decide ownership.
    pub tokens: Vec<Token>,
}

/// A node about to join, before its tokens are chosen.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct NewNode {
    /// The node.
    pub id: NodeId,
    /// Its weight, from 1 to [`MAX_WEIGHT`].
    pub weight: u32,
    /// Its zone, if any.
    pub zone: Option<String>,
}

impl NewNode {
    /// A node with no zone label.
    pub fn new(id: NodeId, weight: u32) -> Self {
        Self {
            id,
            weight,
            zone: None,
        }
    }

    /// The same node, in `zone`.
    pub fn in_zone(mut self, zone: impl Into<String>) -> Self {
        self.zone = Some(zone.into());
        self
    }
}

/// The serialized form of a [`Ring`]: a format version, the config, and the
/// node specs. Everything else is derived, and checked, when it is read.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct RingState {
    /// [`RING_FORMAT_VERSION`] when written.
    pub version: u32,
    /// The cluster-wide settings.
    pub config: RingConfig,
    /// Every node, sorted by id.
    pub nodes: Vec<NodeSpec>,
}

/// A consistent-hashing ring with weighted virtual nodes and zones.
///
/// See the crate documentation for the model and an example.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(try_from = "RingState", into = "RingState")]
pub struct Ring {
    pub(crate) config: RingConfig,
    /// Sorted by id; tokens sorted and distinct within a node.
    pub(crate) nodes: Vec<NodeSpec>,
    /// Zone index of each node (index into the sorted distinct labels).
    pub(crate) zone_of: Vec<u32>,
    /// How many distinct zones there are (`None` counts as one).
    pub(crate) zone_count: usize,
    /// Every token, sorted by (token, owner id).
    pub(crate) tokens: Vec<u64>,
    /// Index into `nodes` of the owner of each entry of `tokens`.
    pub(crate) owners: Vec<u32>,
    /// Lookup index over `tokens`: positions are cut into `buckets.len() - 1`
    /// equal buckets by their top bits (`token >> bucket_shift`), and
    /// `buckets[b]` is the first entry whose token is in bucket `b` or later.
    /// A lookup then searches one bucket (about one entry) instead of the
    /// whole table.
    pub(crate) buckets: Vec<u32>,
    /// How far to shift a position right to get its bucket.
    pub(crate) bucket_shift: u32,
}

impl TryFrom<RingState> for Ring {
    type Error = RingError;

    fn try_from(state: RingState) -> Result<Self, RingError> {
        if state.version != RING_FORMAT_VERSION {
            return Err(RingError::UnsupportedVersion {
                found: state.version,
                supported: RING_FORMAT_VERSION,
            });
        }
        Ring::from_specs(state.config, state.nodes)
    }
}

impl From<Ring> for RingState {
    fn from(ring: Ring) -> Self {
        RingState {
            version: RING_FORMAT_VERSION,
            config: ring.config,
            nodes: ring.nodes,
        }
    }
}

/// Checks what every node must satisfy, whatever its tokens.
pub(crate) fn check_node(node: NodeId, weight: u32, zone: Option<&str>) -> Result<(), RingError> {
    if weight == 0 {
        return Err(RingError::ZeroWeight { node });
    }
    if weight > MAX_WEIGHT {
        return Err(RingError::WeightTooLarge {
            node,
            weight,
            max: MAX_WEIGHT,
        });
    }
    if let Some(zone) = zone
        && zone.len() > MAX_ZONE_LEN
    {
        return Err(RingError::ZoneTooLong {
            node,
            len: zone.len(),
            max: MAX_ZONE_LEN,
        });
    }
    Ok(())
}

/// Checks one spec and puts its tokens in canonical (sorted) order.
fn check_spec(mut spec: NodeSpec) -> Result<NodeSpec, RingError> {
    let node = spec.id;
    check_node(node, spec.weight, spec.zone.as_deref())?;
    if spec.tokens.is_empty() {
        return Err(RingError::NoTokens { node });
    }
    if spec.tokens.len() > MAX_TOKENS_PER_NODE {
        return Err(RingError::TooManyTokens {
            node,
            tokens: spec.tokens.len(),
            max: MAX_TOKENS_PER_NODE,
        });
    }
    spec.tokens.sort_unstable();
    if let Some(w) = spec.tokens.windows(2).find(|w| w[0] == w[1]) {
        return Err(RingError::DuplicateToken { node, token: w[0] });
    }
    Ok(spec)
}

impl Ring {
    /// An empty ring with `config`.
    pub fn new(config: RingConfig) -> Result<Self, RingError> {
        Ok(Self {
            config: config.check()?,
            ..Self::default()
        })
    }

    /// Rebuilds a ring from node specs, as gossip carries them. The result
    /// does not depend on the order of `specs`.
    pub fn from_specs(
        config: RingConfig,
        specs: impl IntoIterator<Item = NodeSpec>,
    ) -> Result<Self, RingError> {
        let config = config.check()?;
        let mut nodes = specs
            .into_iter()
            .map(check_spec)
            .collect::<Result<Vec<_>, _>>()?;
        if nodes.len() > MAX_NODES {
            return Err(RingError::TooManyNodes {
                nodes: nodes.len(),
                max: MAX_NODES,
            });
        }
        nodes.sort_unstable_by_key(|n| n.id);
        if let Some(w) = nodes.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(RingError::DuplicateNode { node: w[0].id });
        }
        let mut entries: Vec<(u64, u32)> = Vec::new();
        for (ix, node) in nodes.iter().enumerate() {
            entries.extend(node.tokens.iter().map(|t| (t.0, ix as u32)));
        }
        // Node indices follow id order, so this sorts by (token, id).
        entries.sort_unstable();
        let mut ring = Self {
            config,
            nodes,
            ..Self::default()
        };
        ring.tokens = entries.iter().map(|e| e.0).collect();
        ring.owners = entries.iter().map(|e| e.1).collect();
        ring.index_zones();
        ring.index_tokens();
        Ok(ring)
    }

    /// Builds a ring by joining `nodes` one by one in order of id, each
    /// getting tokens from [`Ring::allocate_tokens`]. The result does not
    /// depend on the order of `nodes`.
    pub fn with_nodes(
        config: RingConfig,
        nodes: impl IntoIterator<Item = NewNode>,
    ) -> Result<Self, RingError> {
        let mut nodes: Vec<NewNode> = nodes.into_iter().collect();
        nodes.sort_by_key(|n| n.id);
        let mut ring = Self::new(config)?;
        for node in nodes {
            ring.join(node)?;
        }
        Ok(ring)
    }

    fn index_zones(&mut self) {
        let labels: BTreeSet<Option<&str>> = self.nodes.iter().map(|n| n.zone.as_deref()).collect();
        let labels: Vec<Option<&str>> = labels.into_iter().collect();
        self.zone_of = self
            .nodes
            .iter()
            .map(|n| {
                // The label was collected from this very list, so it is found.
                labels.binary_search(&n.zone.as_deref()).unwrap_or(0) as u32
            })
            .collect();
        self.zone_count = labels.len();
    }

    /// The cluster-wide settings.
    pub fn config(&self) -> RingConfig {
        self.config
    }

    /// How many nodes are on the ring.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the ring has no nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Every node, sorted by id.
    pub fn nodes(&self) -> &[NodeSpec] {
        &self.nodes
    }

    /// The node `id`, if it is on the ring.
    pub fn node(&self, id: NodeId) -> Option<&NodeSpec> {
        self.index_of(id).map(|ix| &self.nodes[ix])
    }

    /// Whether node `id` is on the ring.
    pub fn contains(&self, id: NodeId) -> bool {
        self.index_of(id).is_some()
    }

    /// How many tokens all nodes hold together.
    pub fn token_count(&self) -> usize {
        self.tokens.len()
    }

    /// How many distinct zones the nodes are in (nodes without a label count
    /// as one zone).
    pub fn zone_count(&self) -> usize {
        self.zone_count
    }

    /// The sum of all nodes' weights.
    pub fn total_weight(&self) -> u64 {
        self.nodes.iter().map(|n| u64::from(n.weight)).sum()
    }

    /// A 64-bit digest of everything that decides placement (config and
    /// node specs), so that two nodes can tell cheaply whether they hold the
    /// same ring. Equal rings have equal fingerprints on every platform:
    /// FNV-1a 64 + `fmix64` (as [`key_hash`]) over, in order, the format
    /// version, `vnodes_per_weight` and the balance (0 global, 1 per zone),
    /// then for each node by id: id, weight, zone (length then bytes,
    /// `u32::MAX` for none), token count and tokens; integers little-endian.
    pub fn fingerprint(&self) -> u64 {
        let mut h = fnv1a(FNV_OFFSET, &RING_FORMAT_VERSION.to_le_bytes());
        h = fnv1a(h, &self.config.vnodes_per_weight.to_le_bytes());
        let balance: u32 = match self.config.balance {
            Balance::Global => 0,
            Balance::PerZone => 1,
        };
        h = fnv1a(h, &balance.to_le_bytes());
        for node in &self.nodes {
            h = fnv1a(h, &node.id.0.to_le_bytes());
            h = fnv1a(h, &node.weight.to_le_bytes());
            match &node.zone {
                Some(zone) => {
                    h = fnv1a(h, &(zone.len() as u32).to_le_bytes());
                    h = fnv1a(h, zone.as_bytes());
                }
                None => h = fnv1a(h, &u32::MAX.to_le_bytes()),
            }
            h = fnv1a(h, &(node.tokens.len() as u32).to_le_bytes());
            for t in &node.tokens {
                h = fnv1a(h, &t.0.to_le_bytes());
            }
        }
        fmix64(h)
    }

    /// The serializable state: what gossip carries.
    pub fn to_state(&self) -> RingState {
        self.clone().into()
    }

    pub(crate) fn index_of(&self, id: NodeId) -> Option<usize> {
        self.nodes.binary_search_by_key(&id, |n| n.id).ok()
    }

    fn require(&self, id: NodeId) -> Result<usize, RingError> {
        self.index_of(id).ok_or(RingError::UnknownNode { node: id })
    }

    /// The entry (index into `tokens`) whose range holds `token`: the first
    /// token at or after it, wrapping to the first entry. The ring must not
    /// be empty.
    pub(crate) fn entry_for(&self, token: Token) -> usize {
        let i = match self.buckets.get((token.0 >> self.bucket_shift) as usize..) {
            Some([lo, hi, ..]) => {
                let (lo, hi) = (*lo as usize, *hi as usize);
                lo + self.tokens[lo..hi].partition_point(|&t| t < token.0)
            }
            // No index (a view built for allocation): search it all.
            _ => self.tokens.partition_point(|&t| t < token.0),
        };
        if i == self.tokens.len() { 0 } else { i }
    }

    /// Builds the bucket index: about one bucket per token, at most
    /// [`MAX_LOOKUP_BUCKETS`].
    fn index_tokens(&mut self) {
        self.buckets.clear();
        let n = self.tokens.len();
        if n == 0 {
            self.bucket_shift = 63;
            return;
        }
        let bits = (usize::BITS - n.leading_zeros()).clamp(1, MAX_LOOKUP_BUCKETS.ilog2());
        self.bucket_shift = 64 - bits;
        let count = 1usize << bits;
        self.buckets.reserve(count + 1);
        let mut i = 0;
        for b in 0..count {
            let start = (b as u64) << self.bucket_shift;
            while i < n && self.tokens[i] < start {
                i += 1;
            }
            self.buckets.push(i as u32);
        }
        self.buckets.push(n as u32);
    }

    /// The width of entry `i`'s range: from the previous token (excluded) to
    /// its own (included).
    pub(crate) fn entry_width(&self, i: usize) -> u128 {
        let last = self.tokens.len() - 1;
        if i == 0 {
            // All tokens equal (first == last): entry 0 owns the whole ring.
            if self.tokens[0] == self.tokens[last] {
                return RING_SIZE;
            }
            return arc_width(self.tokens[last], self.tokens[0]);
        }
        u128::from(self.tokens[i] - self.tokens[i - 1])
    }

    fn entry_range(&self, i: usize) -> TokenRange {
        let prev = if i == 0 {
            self.tokens[self.tokens.len() - 1]
        } else {
            self.tokens[i - 1]
        };
        TokenRange::new(Token(prev), Token(self.tokens[i]))
    }

    /// The node that owns `key` (the first of its preference list), or
    /// `None` on an empty ring.
    pub fn owner(&self, key: &[u8]) -> Option<NodeId> {
        self.owner_of_token(key_hash(key))
    }

    /// The node that owns position `token`, or `None` on an empty ring.
    pub fn owner_of_token(&self, token: Token) -> Option<NodeId> {
        if self.tokens.is_empty() {
            return None;
        }
        let ix = self.owners[self.entry_for(token)];
        Some(self.nodes[ix as usize].id)
    }

    /// How many positions each node owns, indexed like [`Ring::nodes`].
    fn owned_widths(&self) -> Vec<u128> {
        let mut widths = vec![0u128; self.nodes.len()];
        for i in 0..self.tokens.len() {
            widths[self.owners[i] as usize] += self.entry_width(i);
        }
        widths
    }

    /// The share of the ring node `id` owns as primary, in `[0, 1]`,
    /// measured exactly over the hash space.
    pub fn share(&self, id: NodeId) -> Result<f64, RingError> {
        let ix = self.require(id)?;
        let width: u128 = (0..self.tokens.len())
            .filter(|&i| self.owners[i] as usize == ix)
            .map(|i| self.entry_width(i))
            .sum();
        Ok(width as f64 / RING_SIZE as f64)
    }

    /// Every node's primary share, sorted by id; the shares sum to 1.
    pub fn shares(&self) -> Vec<(NodeId, f64)> {
        self.owned_widths()
            .into_iter()
            .zip(&self.nodes)
            .map(|(w, n)| (n.id, w as f64 / RING_SIZE as f64))
            .collect()
    }

    /// The ranges node `id` owns as primary, clockwise from position 0,
    /// adjacent ranges joined.
    pub fn owned_ranges(&self, id: NodeId) -> Result<Vec<TokenRange>, RingError> {
        let ix = self.require(id)?;
        let ranges = (0..self.tokens.len())
            .filter(|&i| self.owners[i] as usize == ix && self.entry_width(i) > 0)
            .map(|i| self.entry_range(i))
            .collect();
        Ok(coalesce(ranges))
    }

    /// The ranges whose preference list of length `n` includes node `id`
    /// (what it must hold, and compare in anti-entropy), clockwise from
    /// position 0, adjacent ranges joined.
    pub fn replicated_ranges(&self, id: NodeId, n: usize) -> Result<Vec<TokenRange>, RingError> {
        let ix = self.require(id)?;
        let want = self.nodes[ix].id;
        let mut ranges = Vec::new();
        for i in 0..self.tokens.len() {
            if self.entry_width(i) == 0 {
                continue;
            }
            if self.preference_from_entry(i, n)?.contains(&want) {
                ranges.push(self.entry_range(i));
            }
        }
        Ok(coalesce(ranges))
    }

    /// Adds node `spec` with the tokens it carries, and returns exactly the
    /// ranges whose primary owner changes (all of them now owned by the new
    /// node). Joining an empty ring moves nothing.
    pub fn add_node(&mut self, spec: NodeSpec) -> Result<Vec<RangeMove>, RingError> {
        let spec = check_spec(spec)?;
        let pos = match self.nodes.binary_search_by_key(&spec.id, |n| n.id) {
            Ok(_) => return Err(RingError::DuplicateNode { node: spec.id }),
            Err(pos) => pos,
        };
        if self.nodes.len() >= MAX_NODES {
            return Err(RingError::TooManyNodes {
                nodes: self.nodes.len() + 1,
                max: MAX_NODES,
            });
        }
        let mut next = Ring {
            config: self.config,
            nodes: self.nodes.clone(),
            ..Ring::default()
        };
        // Merge the new sorted tokens into the sorted table in one pass
        // (a full re-sort per join would make a 1000-node build quadratic in
        // sort time). Indices at or above `pos` shift up by one.
        let new_ix = pos as u32;
        let total = self.tokens.len() + spec.tokens.len();
        next.tokens.reserve(total);
        next.owners.reserve(total);
        let mut add = spec.tokens.iter().map(|t| t.0).peekable();
        for (&t, &o) in self.tokens.iter().zip(&self.owners) {
            let o = if o >= new_ix { o + 1 } else { o };
            while let Some(&a) = add.peek() {
                // On equal tokens the lower id (here: lower index) comes first.
                if a < t || (a == t && new_ix < o) {
                    next.tokens.push(a);
                    next.owners.push(new_ix);
                    add.next();
                } else {
                    break;
                }
            }
            next.tokens.push(t);
            next.owners.push(o);
        }
        for a in add {
            next.tokens.push(a);
            next.owners.push(new_ix);
        }
        next.nodes.insert(pos, spec);
        next.index_zones();
        next.index_tokens();
        let moves = crate::diff::primary_moves(self, &next);
        *self = next;
        Ok(moves)
    }

    /// Chooses tokens for `node` with [`Ring::allocate_tokens`] and adds it;
    /// returns the ranges that move to it.
    pub fn join(&mut self, node: NewNode) -> Result<Vec<RangeMove>, RingError> {
        let tokens = self.allocate_tokens(&node)?;
        self.add_node(NodeSpec {
            id: node.id,
            weight: node.weight,
            zone: node.zone,
            tokens,
        })
    }

    /// Removes node `id` and returns exactly the ranges whose primary owner
    /// changes (all of them owned by `id` before). Removing the last node
    /// moves nothing: there is nowhere to move to.
    pub fn remove_node(&mut self, id: NodeId) -> Result<Vec<RangeMove>, RingError> {
        let pos = self.require(id)?;
        let gone = pos as u32;
        let mut next = Ring {
            config: self.config,
            nodes: self.nodes.clone(),
            ..Ring::default()
        };
        next.nodes.remove(pos);
        for (&t, &o) in self.tokens.iter().zip(&self.owners) {
            if o != gone {
                next.tokens.push(t);
                next.owners.push(if o > gone { o - 1 } else { o });
            }
        }
        next.index_zones();
        next.index_tokens();
        let moves = crate::diff::primary_moves(self, &next);
        *self = next;
        Ok(moves)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ring of `nodes` nodes with `per_node` pseudo-random tokens each.
    fn scattered(nodes: u64, per_node: u64) -> Ring {
        let specs = (0..nodes).map(|n| NodeSpec {
            id: NodeId(n),
            weight: 1,
            zone: None,
            tokens: (0..per_node)
                .map(|t| Token(fmix64(n * 1_000_003 + t + 1)))
                .collect(),
        });
        Ring::from_specs(RingConfig::default(), specs).unwrap()
    }

    #[test]
    fn the_bucket_index_agrees_with_a_plain_search() {
        for (nodes, per_node) in [(1, 1), (1, 2), (3, 1), (5, 64), (70, 1000)] {
            let ring = scattered(nodes, per_node);
            assert!(ring.buckets.len() <= MAX_LOOKUP_BUCKETS + 1);
            let mut probes = vec![0, 1, u64::MAX, u64::MAX - 1, 1 << 63];
            for &t in ring.tokens.iter().step_by(7) {
                probes.extend([t, t.wrapping_add(1), t.wrapping_sub(1)]);
            }
            probes.extend((0..1000).map(|i| fmix64(i ^ 0x55)));
            for p in probes {
                let plain = ring.tokens.partition_point(|&t| t < p);
                let plain = if plain == ring.tokens.len() { 0 } else { plain };
                assert_eq!(
                    ring.entry_for(Token(p)),
                    plain,
                    "{nodes}x{per_node} at {p:x}"
                );
            }
        }
    }

    #[test]
    fn fingerprints_tell_rings_apart() {
        let a = scattered(4, 8);
        let b = Ring::from_specs(a.config(), a.nodes().iter().rev().cloned()).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        let mut c = a.clone();
        c.join(NewNode::new(NodeId(50), 1)).unwrap();
        assert_ne!(a.fingerprint(), c.fingerprint());
        let mut zoned = a.nodes().to_vec();
        zoned[0].zone = Some(String::new());
        let d = Ring::from_specs(a.config(), zoned).unwrap();
        assert_ne!(
            a.fingerprint(),
            d.fingerprint(),
            "no zone is not the empty zone"
        );
        let e = Ring::from_specs(
            RingConfig {
                balance: Balance::PerZone,
                ..a.config()
            },
            a.nodes().to_vec(),
        )
        .unwrap();
        assert_ne!(a.fingerprint(), e.fingerprint());
    }

    #[test]
    fn the_index_follows_joins_and_leaves() {
        let mut ring = scattered(4, 16);
        ring.join(NewNode::new(NodeId(99), 1)).unwrap();
        let rebuilt = Ring::from_specs(ring.config(), ring.nodes().to_vec()).unwrap();
        assert_eq!(ring.buckets, rebuilt.buckets);
        ring.remove_node(NodeId(2)).unwrap();
        let rebuilt = Ring::from_specs(ring.config(), ring.nodes().to_vec()).unwrap();
        assert_eq!(ring.buckets, rebuilt.buckets);
    }
}
