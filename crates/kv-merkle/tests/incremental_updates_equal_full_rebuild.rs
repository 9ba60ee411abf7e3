//! Incremental updates give exactly the tree a full rebuild gives, whatever
//! the order of the updates.

mod common;

use std::collections::BTreeMap;

use common::Replica;
use kv_merkle::{MerkleTree, TreeConfig, item_hash};
use proptest::prelude::*;

/// One write: a key (from a small set, so keys are rewritten and purged)
/// and its new version, or `None` to purge it.
fn ops() -> impl Strategy<Value = Vec<(u8, Option<u8>)>> {
    prop::collection::vec((0u8..40, prop::option::weighted(0.8, any::<u8>())), 0..300)
}

fn rebuild(config: TreeConfig, model: &BTreeMap<Vec<u8>, Vec<u8>>) -> MerkleTree {
    MerkleTree::from_sorted(config, model.iter().map(|(k, v)| (k, item_hash(k, v))))
        .expect("model keys are sorted")
}

proptest! {
    #[test]
    fn incremental_equals_rebuild(ops in ops(), bits in 1u8..=4, depth in 1u8..=3) {
        let config = TreeConfig::new(bits, depth).unwrap();
        let mut replica = Replica::new(config);
        let mut model = BTreeMap::new();
        for (k, v) in ops {
            let key = vec![k];
            match v {
                Some(v) => {
                    replica.put(&key, &[v]);
                    model.insert(key, vec![v]);
                }
                None => {
                    replica.set(&key, None);
                    model.remove(&key);
                }
            }
        }
        prop_assert_eq!(&replica.tree, &rebuild(config, &model));
    }

    #[test]
    fn order_of_updates_does_not_matter(
        items in prop::collection::btree_map(prop::collection::vec(any::<u8>(), 0..8), any::<u8>(), 0..100)
            .prop_flat_map(|m| Just(m.into_iter().collect::<Vec<_>>()).prop_shuffle()),
    ) {
        let config = TreeConfig::new(2, 3).unwrap();
        let mut shuffled = MerkleTree::new(config);
        for (k, v) in &items {
            shuffled.insert(k, item_hash(k, &[*v]));
        }
        let model: BTreeMap<Vec<u8>, Vec<u8>> =
            items.iter().map(|(k, v)| (k.clone(), vec![*v])).collect();
        prop_assert_eq!(&shuffled, &rebuild(config, &model));
    }
}

#[test]
fn an_empty_rebuild_is_the_empty_tree() {
    let config = TreeConfig::default();
    let empty: [(&[u8], _); 0] = [];
    let t = MerkleTree::from_sorted(config, empty).unwrap();
    assert_eq!(t, MerkleTree::new(config));
    assert!(t.root().is_zero());
}

#[test]
fn rebuild_refuses_a_key_listed_twice() {
    let h = item_hash(b"k", b"v");
    let items = [(b"k", h), (b"k", h)];
    assert!(MerkleTree::from_sorted(TreeConfig::default(), items).is_err());
}
