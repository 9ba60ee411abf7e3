//! Builds a small weighted, zoned ring and prints who owns what: shares,
//! a few preference lists, and what moves when a node joins and leaves.
//!
//! Run with `cargo run --release -p kv-ring --example placement`.

use kv_ring::{NewNode, Ring, RingConfig, RingError};
use kv_types::NodeId;

fn main() -> Result<(), RingError> {
    // Six nodes in three zones; nodes 5 and 6 have twice the capacity.
    let nodes = (1..=6u64).map(|i| {
        let weight = if i > 4 { 2 } else { 1 };
        NewNode::new(NodeId(i), weight).in_zone(format!("dc{}", i % 3))
    });
    let mut ring = Ring::with_nodes(RingConfig::default(), nodes)?;
    let total = ring.total_weight() as f64;

    println!(
        "{} nodes, {} tokens, {} zones",
        ring.len(),
        ring.token_count(),
        ring.zone_count()
    );
    println!(
        "{:<18} {:>6} {:>6} {:>9} {:>9}",
        "node", "zone", "weight", "share", "wanted"
    );
    for (node, (_, share)) in ring.nodes().iter().zip(ring.shares()) {
        println!(
            "{:<18} {:>6} {:>6} {:>8.2}% {:>8.2}%",
            node.id.to_string(),
            node.zone.as_deref().unwrap_or("-"),
            node.weight,
            share * 100.0,
            f64::from(node.weight) / total * 100.0
        );
    }

    println!("\npreference lists (n = 3), then the sloppy-quorum fallbacks:");
    for key in ["user:1", "user:2", "cart:42", "session:abc"] {
        let list = ring.preference_list(key.as_bytes(), 3)?;
        let fallbacks: Vec<String> = ring
            .successors(key.as_bytes())
            .skip(3)
            .take(2)
            .map(|n| n.to_string())
            .collect();
        let zones: Vec<&str> = list
            .iter()
            .filter_map(|id| ring.node(*id).and_then(|n| n.zone.as_deref()))
            .collect();
        let names: Vec<String> = list.iter().map(|n| n.to_string()).collect();
        println!(
            "  {key:<12} {} (zones {}) then {}",
            names.join(" "),
            zones.join(","),
            fallbacks.join(" ")
        );
    }

    let moves = ring.join(NewNode::new(NodeId(7), 1).in_zone("dc1"))?;
    let moved: f64 = moves.iter().map(|m| m.range.fraction()).sum();
    println!(
        "\nnode 7 joins: {} ranges move to it, {:.2}% of the keys (its share: {:.2}%)",
        moves.len(),
        moved * 100.0,
        ring.share(NodeId(7))? * 100.0
    );
    for m in moves.iter().take(3) {
        println!(
            "  ({}, {}] {} -> {}",
            m.range.start, m.range.end, m.from, m.to
        );
    }

    let moves = ring.remove_node(NodeId(2))?;
    let moved: f64 = moves.iter().map(|m| m.range.fraction()).sum();
    println!(
        "node 2 leaves: {} ranges move from it, {:.2}% of the keys",
        moves.len(),
        moved * 100.0
    );
    Ok(())
}
