//! The diff of two trees yields exactly the keys whose entries differ: no
//! false negatives, and bucket-level false positives resolved to exact keys.

mod common;

use std::collections::BTreeMap;

use common::{Replica, as_map, model_diff, run_diff};
use kv_merkle::{DiffLimits, TreeConfig};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Edit {
    OnlyInLocal,
    OnlyInRemote,
    ChangeLocal(u8),
    ChangeRemote(u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        Just(Edit::OnlyInLocal),
        Just(Edit::OnlyInRemote),
        any::<u8>().prop_map(Edit::ChangeLocal),
        any::<u8>().prop_map(Edit::ChangeRemote),
    ]
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..6)
}

fn shape() -> impl Strategy<Value = TreeConfig> {
    (1u8..=3, 1u8..=3).prop_map(|(bits, depth)| TreeConfig::new(bits, depth).expect("valid shape"))
}

/// Default limits, or limits so small that every level, bucket list and
/// bucket is split over several messages.
fn limits(config: TreeConfig) -> impl Strategy<Value = DiffLimits> {
    let f = config.fan_out();
    prop_oneof![
        Just(DiffLimits::default()),
        (1u32..4, 1u32..4, 1u32..4).prop_map(move |(nodes, buckets, items)| DiffLimits {
            digests_per_message_max: f * nodes,
            buckets_per_request_max: buckets,
            // Keys are at most 5 bytes; each item costs key + 32 + 5.
            item_bytes_per_message_max: 42 * items,
            ..DiffLimits::default()
        }),
    ]
}

/// Versions by key.
type Map = BTreeMap<Vec<u8>, Vec<u8>>;

/// A shape, limits, a common base of keys and edits that split the replicas.
type Case = (
    TreeConfig,
    DiffLimits,
    BTreeMap<Vec<u8>, u8>,
    Vec<(Vec<u8>, Edit)>,
);

fn case() -> impl Strategy<Value = Case> {
    shape().prop_flat_map(|config| {
        (
            Just(config),
            limits(config),
            prop::collection::btree_map(key(), any::<u8>(), 0..200),
            prop::collection::vec((key(), edit()), 0..40),
        )
    })
}

fn build(base: &BTreeMap<Vec<u8>, u8>, edits: &[(Vec<u8>, Edit)]) -> (Map, Map) {
    let mut local: Map = base.iter().map(|(k, v)| (k.clone(), vec![*v])).collect();
    let mut remote = local.clone();
    for (k, e) in edits {
        match e {
            Edit::OnlyInLocal => {
                remote.remove(k);
                local.entry(k.clone()).or_insert_with(|| vec![0]);
            }
            Edit::OnlyInRemote => {
                local.remove(k);
                remote.entry(k.clone()).or_insert_with(|| vec![0]);
            }
            Edit::ChangeLocal(v) => {
                local.insert(k.clone(), vec![*v, 1]);
            }
            Edit::ChangeRemote(v) => {
                remote.insert(k.clone(), vec![*v, 2]);
            }
        }
    }
    (local, remote)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn diff_equals_the_set_difference((config, limits, base, edits) in case()) {
        let (local, remote) = build(&base, &edits);
        let a = common::from_map(config, &local);
        let b = common::from_map(config, &remote);
        let (outcome, _) = run_diff(&a, &b, limits).unwrap();
        prop_assert!(outcome.complete);
        prop_assert_eq!(as_map(&outcome), model_diff(&local, &remote));
        // And from the other side.
        let (outcome, _) = run_diff(&b, &a, limits).unwrap();
        prop_assert_eq!(as_map(&outcome), model_diff(&remote, &local));
    }
}

#[test]
fn equal_replicas_agree_in_one_round_trip() {
    let config = TreeConfig::default();
    let map: BTreeMap<Vec<u8>, Vec<u8>> = (0..500u32)
        .map(|i| (i.to_be_bytes().to_vec(), b"v".to_vec()))
        .collect();
    let (a, b) = (
        common::from_map(config, &map),
        common::from_map(config, &map),
    );
    let (outcome, traffic) = run_diff(&a, &b, DiffLimits::default()).unwrap();
    assert!(outcome.differences.is_empty() && outcome.complete);
    assert_eq!(outcome.stats.round_trips, 1);
    assert!(traffic.bytes < 64, "{}", traffic.bytes);
}

#[test]
fn a_hundred_changes_in_ten_thousand_keys_take_depth_plus_one_round_trips() {
    let config = TreeConfig::default();
    let map: BTreeMap<Vec<u8>, Vec<u8>> = (0..10_000u32)
        .map(|i| (format!("key-{i:06}").into_bytes(), b"v1".to_vec()))
        .collect();
    let a = common::from_map(config, &map);
    let mut b = common::from_map(config, &map);
    let mut remote = map.clone();
    for i in (0..10_000u32).step_by(100) {
        let k = format!("key-{i:06}").into_bytes();
        b.put(&k, b"v2");
        remote.insert(k, b"v2".to_vec());
    }
    let (outcome, _) = run_diff(&a, &b, DiffLimits::default()).unwrap();
    assert_eq!(as_map(&outcome), model_diff(&map, &remote));
    assert_eq!(outcome.differences.len(), 100);
    assert_eq!(outcome.stats.round_trips, u32::from(config.depth()) + 1);
}

#[test]
fn an_empty_replica_learns_every_key() {
    let config = TreeConfig::new(2, 2).unwrap();
    let map: BTreeMap<Vec<u8>, Vec<u8>> = (0..300u32)
        .map(|i| (i.to_be_bytes().to_vec(), b"v".to_vec()))
        .collect();
    let a = Replica::new(config);
    let b = common::from_map(config, &map);
    let limits = DiffLimits {
        item_bytes_per_message_max: 1000,
        ..DiffLimits::default()
    };
    let (outcome, _) = run_diff(&a, &b, limits).unwrap();
    assert_eq!(outcome.differences.len(), 300);
    assert_eq!(as_map(&outcome), model_diff(&BTreeMap::new(), &map));
}

/// One key in every bucket, on one side only: every child of every
/// differing node is compared, whatever its position.
#[test]
fn a_key_in_every_bucket_is_found() {
    let config = TreeConfig::new(2, 2).expect("valid shape");
    let mut local = Map::new();
    for i in 0u32.. {
        let k = i.to_be_bytes().to_vec();
        if !local
            .keys()
            .any(|o| config.bucket_of(o) == config.bucket_of(&k))
        {
            local.insert(k, vec![1]);
        }
        if local.len() == config.buckets() as usize {
            break;
        }
    }
    let (a, b) = (common::from_map(config, &local), Replica::new(config));
    let (outcome, _) = run_diff(&a, &b, DiffLimits::default()).unwrap();
    assert_eq!(as_map(&outcome), model_diff(&local, &Map::new()));
    assert_eq!(outcome.differences.len(), 16);
}

/// Three keys in one bucket and room for one item a response: the bucket
/// is split over three responses, each resuming after the last key sent.
#[test]
fn a_bucket_split_over_responses_resumes_after_its_last_key() {
    let config = TreeConfig::new(1, 1).expect("valid shape");
    let limits = DiffLimits {
        item_bytes_per_message_max: 42,
        ..DiffLimits::default()
    };
    let same_bucket: Vec<Vec<u8>> = (0u8..)
        .map(|i| vec![i])
        .filter(|k| config.bucket_of(k) == 0)
        .take(3)
        .collect();
    let remote: Map = same_bucket.iter().map(|k| (k.clone(), vec![1])).collect();
    let (a, b) = (Replica::new(config), common::from_map(config, &remote));
    let (outcome, _) = run_diff(&a, &b, limits).unwrap();
    assert_eq!(as_map(&outcome), model_diff(&Map::new(), &remote));
    assert_eq!(outcome.stats.items_received, 3);
    // Root, then three item responses for bucket 0 (one item each).
    assert_eq!(outcome.stats.round_trips, 4);
}
