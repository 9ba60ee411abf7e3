//! Trees stay current while a diff runs: writes between its steps never
//! hide a key that differed before and was not written, and never make it
//! report a key that was equal and untouched.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{Replica, as_map, model_diff};
use kv_merkle::{DiffInitiator, DiffLimits, Step, TreeConfig, respond};
use proptest::prelude::*;

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

fn key(k: u8) -> Vec<u8> {
    vec![k, k ^ 0x5a]
}

proptest! {
    #[test]
    fn untouched_keys_are_judged_by_their_state_before_the_diff(
        base in prop::collection::btree_map(any::<u8>(), 0u8..3, 0..120),
        skew in prop::collection::btree_map(any::<u8>(), 0u8..3, 0..40),
        writes in prop::collection::vec(prop::collection::vec((any::<bool>(), any::<u8>(), any::<u8>()), 0..4), 0..12),
    ) {
        let config = TreeConfig::new(2, 3).expect("valid shape");
        let limits = DiffLimits {
            digests_per_message_max: 8,
            buckets_per_request_max: 2,
            item_bytes_per_message_max: 3 * 39,
            ..DiffLimits::default()
        };
        let local: Map = base.iter().map(|(k, v)| (key(*k), vec![*v])).collect();
        let mut remote = local.clone();
        for (k, v) in &skew {
            remote.insert(key(*k), vec![*v, 9]);
        }
        let mut a = common::from_map(config, &local);
        let mut b = common::from_map(config, &remote);
        let before = model_diff(&local, &remote);

        let mut touched = BTreeSet::new();
        let mut steps = writes.into_iter();
        let (mut diff, mut request) = DiffInitiator::start(&a.tree, limits).expect("starts");
        let outcome = loop {
            let response = respond(&b.tree, &b.keys, &limits, &request).expect("answers");
            for (on_local, k, v) in steps.next().unwrap_or_default() {
                let target: &mut Replica = if on_local { &mut a } else { &mut b };
                target.put(&key(k), &[v, 7]);
                touched.insert(key(k));
            }
            match diff.on_response(&a.tree, &a.keys, response).expect("proceeds") {
                Step::Send(next) => request = next,
                Step::Done(outcome) => break outcome,
            }
        };
        let found = as_map(&outcome);
        for k in before.keys().filter(|k| !touched.contains(*k)) {
            prop_assert!(found.contains_key(k), "missed untouched differing key {k:?}");
        }
        for k in found.keys() {
            prop_assert!(
                before.contains_key(k) || touched.contains(k),
                "reported untouched equal key {k:?}"
            );
        }
    }
}
