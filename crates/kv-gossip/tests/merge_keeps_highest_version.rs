//! The merge rule, against a model: whatever order updates arrive in, each
//! member ends at the highest (generation, heartbeat) sent for it.

use std::collections::BTreeMap;
use std::sync::Arc;

use kv_gossip::message::{Body, Update};
use kv_gossip::{GossipConfig, GossipMessage, Gossiper, MemberMeta, Status, Transport, Version};
use kv_types::{ManualClock, NodeId};
use proptest::prelude::*;

struct Nowhere;

impl Transport for Nowhere {
    fn send(&self, _: &str, _: GossipMessage) {}
}

fn update(id: u64, generation: u64, heartbeat: u64, weight: u32) -> Update {
    Update {
        id: NodeId(id),
        version: Version {
            generation,
            heartbeat,
        },
        meta: Some(MemberMeta {
            version: heartbeat,
            status: Status::Normal,
            gossip_addr: format!("n{id}:1"),
            client_addr: format!("n{id}:2"),
            zone: String::new(),
            weight,
            tokens: vec![],
            settings: String::new(),
        }),
    }
}

proptest! {
    #[test]
    fn highest_version_wins(ups in prop::collection::vec((2u64..6, 1u64..4, 0u64..30), 1..60)) {
        let mut g = Gossiper::new(
            GossipConfig::new(NodeId(1), 1, "me:1"),
            Arc::new(ManualClock::new()),
            Nowhere,
        ).unwrap();
        let mut model: BTreeMap<u64, (Version, u32)> = BTreeMap::new();
        for (i, &(id, generation, heartbeat)) in ups.iter().enumerate() {
            // The weight names the update, so we can tell whose metadata won.
            let weight = i as u32;
            let v = Version { generation, heartbeat };
            let entry = model.entry(id).or_insert((v, weight));
            if v > entry.0 {
                *entry = (v, weight);
            }
            g.handle(GossipMessage {
                from: NodeId(99),
                from_addr: "x:1".into(),
                body: Body::Ack2 { updates: vec![update(id, generation, heartbeat, weight)] },
            });
        }
        for (id, (v, weight)) in model {
            let m = g.member(NodeId(id)).unwrap();
            prop_assert_eq!(m.version, v);
            prop_assert_eq!(m.meta.weight, weight);
        }
    }
}
