//! Shared test helpers: ring strategies and a naive model of the ring.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use kv_ring::{Balance, NewNode, Ring, RingConfig, Token};
use kv_types::NodeId;
use proptest::prelude::*;

/// A node to join: (id, weight, zone index or none).
pub type Plan = (u64, u32, Option<u8>);

/// Up to `max_nodes` nodes with distinct ids, weights 1..=4, and up to 3 zones.
pub fn plans(max_nodes: usize) -> impl Strategy<Value = Vec<Plan>> {
    prop::collection::btree_map(
        1u64..1000,
        (1u32..=4, prop::option::of(0u8..3)),
        1..=max_nodes,
    )
    .prop_map(|m| m.into_iter().map(|(id, (w, z))| (id, w, z)).collect())
}

pub fn new_node((id, weight, zone): Plan) -> NewNode {
    let node = NewNode::new(NodeId(id), weight);
    match zone {
        Some(z) => node.in_zone(format!("zone-{z}")),
        None => node,
    }
}

/// A ring built by joining `plans` in the order given, with few vnodes so
/// that edge cases (tiny rings, big ranges) show up.
pub fn build(plans: &[Plan], vnodes: u32) -> Ring {
    build_with(plans, config(vnodes, false))
}

/// The config with `vnodes` per weight, balancing per zone if asked.
pub fn config(vnodes: u32, per_zone: bool) -> RingConfig {
    RingConfig {
        vnodes_per_weight: vnodes,
        balance: if per_zone {
            Balance::PerZone
        } else {
            Balance::Global
        },
    }
}

/// A ring built by joining `plans` in the order given, with `config`.
pub fn build_with(plans: &[Plan], config: RingConfig) -> Ring {
    let mut ring = Ring::new(config).unwrap();
    for &p in plans {
        ring.join(new_node(p)).unwrap();
    }
    ring
}

/// The naive model: every (token, node) pair of the ring, sorted.
pub fn entries(ring: &Ring) -> Vec<(u64, NodeId)> {
    let mut e: Vec<(u64, NodeId)> = ring
        .nodes()
        .iter()
        .flat_map(|n| n.tokens.iter().map(move |t| (t.0, n.id)))
        .collect();
    e.sort();
    e
}

/// The model's owner of `h`: the first pair at or after it, wrapping.
pub fn model_owner(ring: &Ring, h: Token) -> Option<NodeId> {
    let e = entries(ring);
    let first = e.first()?;
    Some(e.iter().find(|(t, _)| *t >= h.0).unwrap_or(first).1)
}

/// The model's full preference order of `h`, by the documented rule.
pub fn model_order(ring: &Ring, h: Token) -> Vec<NodeId> {
    let e = entries(ring);
    if e.is_empty() {
        return Vec::new();
    }
    let start = e.iter().position(|(t, _)| *t >= h.0).unwrap_or(0);
    let walk: Vec<NodeId> = (0..e.len()).map(|k| e[(start + k) % e.len()].1).collect();
    let zone = |id: NodeId| ring.node(id).unwrap().zone.clone();
    let mut zones: Vec<Option<String>> = ring.nodes().iter().map(|n| n.zone.clone()).collect();
    zones.sort();
    zones.dedup();
    let mut order: Vec<NodeId> = Vec::new();
    let mut seen_zones: Vec<Option<String>> = Vec::new();
    for &id in &walk {
        if seen_zones.len() == zones.len() {
            break;
        }
        if !seen_zones.contains(&zone(id)) {
            seen_zones.push(zone(id));
            order.push(id);
        }
    }
    for &id in &walk {
        if !order.contains(&id) {
            order.push(id);
        }
    }
    order
}

/// Positions worth probing: every token, its neighbours, and some others.
pub fn probes(ring: &Ring, extra: &[u64]) -> Vec<Token> {
    let mut p: Vec<Token> = extra.iter().map(|&h| Token(h)).collect();
    for (t, _) in entries(ring) {
        p.extend([Token(t), Token(t.wrapping_add(1)), Token(t.wrapping_sub(1))]);
    }
    p.extend([Token(0), Token(u64::MAX)]);
    p
}
