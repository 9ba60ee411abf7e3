//! Every limit of the ring has a name, and crossing it is an error that says
//! which limit.
#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

mod common;

use kv_ring::{
    MAX_NODES, MAX_REPLICAS, MAX_TOKENS_PER_NODE, MAX_WEIGHT, MAX_ZONE_LEN, NewNode, NodeSpec,
    Ring, RingConfig, RingError, Token,
};
use kv_types::NodeId;

fn spec(id: u64, tokens: &[u64]) -> NodeSpec {
    NodeSpec {
        id: NodeId(id),
        weight: 1,
        zone: None,
        tokens: tokens.iter().map(|&t| Token(t)).collect(),
    }
}

fn small() -> Ring {
    common::build(&[(1, 1, None), (2, 1, None)], 4)
}

#[test]
fn duplicate_and_unknown_nodes() {
    let mut ring = small();
    assert_eq!(
        ring.join(NewNode::new(NodeId(1), 1)),
        Err(RingError::DuplicateNode { node: NodeId(1) })
    );
    assert_eq!(
        ring.add_node(spec(2, &[7])),
        Err(RingError::DuplicateNode { node: NodeId(2) })
    );
    assert_eq!(
        Ring::from_specs(RingConfig::default(), [spec(5, &[1]), spec(5, &[2])]),
        Err(RingError::DuplicateNode { node: NodeId(5) })
    );
    assert_eq!(
        ring.remove_node(NodeId(9)),
        Err(RingError::UnknownNode { node: NodeId(9) })
    );
    assert_eq!(
        ring.share(NodeId(9)),
        Err(RingError::UnknownNode { node: NodeId(9) })
    );
}

#[test]
fn weights_and_tokens() {
    let ring = small();
    assert_eq!(
        ring.allocate_tokens(&NewNode::new(NodeId(3), 0)),
        Err(RingError::ZeroWeight { node: NodeId(3) })
    );
    assert_eq!(
        ring.allocate_tokens(&NewNode::new(NodeId(3), MAX_WEIGHT + 1)),
        Err(RingError::WeightTooLarge {
            node: NodeId(3),
            weight: MAX_WEIGHT + 1,
            max: MAX_WEIGHT
        })
    );
    let ring = Ring::new(RingConfig::default()).unwrap();
    let vnodes = ring.config().vnodes_per_weight as usize;
    let weight = (MAX_TOKENS_PER_NODE / vnodes + 1) as u32;
    assert!(
        weight <= MAX_WEIGHT,
        "pick a config where tokens bind first"
    );
    assert_eq!(
        ring.allocate_tokens(&NewNode::new(NodeId(3), weight)),
        Err(RingError::TooManyTokens {
            node: NodeId(3),
            tokens: weight as usize * vnodes,
            max: MAX_TOKENS_PER_NODE
        })
    );
    let mut ring = small();
    assert_eq!(
        ring.add_node(spec(3, &[])),
        Err(RingError::NoTokens { node: NodeId(3) })
    );
    assert_eq!(
        ring.add_node(spec(3, &[4, 4])),
        Err(RingError::DuplicateToken {
            node: NodeId(3),
            token: Token(4)
        })
    );
    let many: Vec<u64> = (0..=MAX_TOKENS_PER_NODE as u64).collect();
    assert!(matches!(
        ring.add_node(spec(3, &many)),
        Err(RingError::TooManyTokens { .. })
    ));
    assert_eq!(ring, small(), "a refused change leaves the ring as it was");
}

#[test]
fn zones_replicas_and_config() {
    let mut ring = small();
    let long = "z".repeat(MAX_ZONE_LEN + 1);
    assert_eq!(
        ring.join(NewNode::new(NodeId(3), 1).in_zone(long)),
        Err(RingError::ZoneTooLong {
            node: NodeId(3),
            len: MAX_ZONE_LEN + 1,
            max: MAX_ZONE_LEN
        })
    );
    assert!(
        ring.join(NewNode::new(NodeId(3), 1).in_zone("z".repeat(MAX_ZONE_LEN)))
            .is_ok()
    );
    assert_eq!(
        ring.preference_list(b"k", MAX_REPLICAS + 1),
        Err(RingError::TooManyReplicas {
            n: MAX_REPLICAS + 1,
            max: MAX_REPLICAS
        })
    );
    assert_eq!(ring.preference_list(b"k", MAX_REPLICAS).unwrap().len(), 3);
    for vnodes in [0, MAX_TOKENS_PER_NODE as u32 + 1] {
        assert_eq!(
            Ring::new(RingConfig {
                vnodes_per_weight: vnodes,
                ..RingConfig::default()
            }),
            Err(RingError::BadVnodeCount {
                vnodes,
                max: MAX_TOKENS_PER_NODE as u32
            })
        );
    }
}

#[test]
fn node_count() {
    let specs: Vec<NodeSpec> = (0..=MAX_NODES as u64).map(|i| spec(i, &[i])).collect();
    assert_eq!(
        Ring::from_specs(RingConfig::default(), specs.clone()),
        Err(RingError::TooManyNodes {
            nodes: MAX_NODES + 1,
            max: MAX_NODES
        })
    );
    let mut full = Ring::from_specs(RingConfig::default(), specs[..MAX_NODES].to_vec()).unwrap();
    assert_eq!(full.len(), MAX_NODES);
    let last = specs[MAX_NODES].clone();
    assert!(matches!(
        full.add_node(last),
        Err(RingError::TooManyNodes { .. })
    ));
    assert!(matches!(
        full.allocate_tokens(&NewNode::new(NodeId(u64::MAX), 1)),
        Err(RingError::TooManyNodes { .. })
    ));
}
