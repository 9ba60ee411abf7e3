//! Every message stays within its named bound, and both sides refuse
//! messages that break the protocol instead of trusting them.

mod common;

use common::{Replica, run_diff};
use kv_merkle::{
    BucketItems, DiffInitiator, DiffLimits, DiffRequest, DiffResponse, Digest, Item, MerkleError,
    PROTOCOL_VERSION, Step, TreeConfig, respond,
};

fn replica(config: TreeConfig, n: u32, key_len: usize, version: &[u8]) -> Replica {
    let mut r = Replica::new(config);
    for i in 0..n {
        let mut key = i.to_be_bytes().to_vec();
        key.resize(key_len.max(4), b'x');
        r.put(&key, version);
    }
    r
}

#[test]
fn every_message_fits_its_bound_even_with_large_keys() {
    let config = TreeConfig::new(3, 2).unwrap();
    let limits = DiffLimits {
        digests_per_message_max: 16,
        buckets_per_request_max: 3,
        item_bytes_per_message_max: 4096,
        ..DiffLimits::default()
    };
    let a = Replica::new(config);
    // 1,000-byte keys: a few per response, so buckets are split mid-way.
    let b = replica(config, 200, 1000, b"v");
    // run_diff asserts each message against limits.message_bytes_max.
    let (outcome, traffic) = run_diff(&a, &b, limits).unwrap();
    assert_eq!(outcome.differences.len(), 200);
    assert!(outcome.complete);
    assert!(traffic.largest_message > 3000, "{traffic:?}");
    assert!(outcome.stats.round_trips > 50, "{:?}", outcome.stats);
}

#[test]
fn a_key_larger_than_a_response_is_refused() {
    let config = TreeConfig::new(1, 1).unwrap();
    let limits = DiffLimits {
        item_bytes_per_message_max: 100,
        ..DiffLimits::default()
    };
    let b = replica(config, 1, 64, b"v");
    let request = DiffRequest::Items {
        buckets: vec![0, 1],
        after: None,
    };
    assert!(matches!(
        respond(&b.tree, &b.keys, &limits, &request),
        Err(MerkleError::ItemTooLarge { key_len: 64, .. })
    ));
}

#[test]
fn the_diff_stops_at_differences_max_and_says_so() {
    let config = TreeConfig::new(2, 2).unwrap();
    let limits = DiffLimits {
        differences_max: 7,
        ..DiffLimits::default()
    };
    let (a, b) = (Replica::new(config), replica(config, 100, 4, b"v"));
    let (outcome, _) = run_diff(&a, &b, limits).unwrap();
    assert_eq!(outcome.differences.len(), 7);
    assert!(!outcome.complete);
}

#[test]
fn the_diff_stops_at_round_trips_max() {
    let config = TreeConfig::new(2, 3).unwrap();
    let limits = DiffLimits {
        round_trips_max: 2,
        ..DiffLimits::default()
    };
    let (a, b) = (Replica::new(config), replica(config, 100, 4, b"v"));
    assert!(matches!(
        run_diff(&a, &b, limits),
        Err(MerkleError::TooManyRoundTrips { max: 2 })
    ));
}

#[test]
fn the_responder_refuses_bad_requests() {
    let config = TreeConfig::default();
    let b = replica(config, 10, 4, b"v");
    let limits = DiffLimits::default();
    let ask = |r: DiffRequest| respond(&b.tree, &b.keys, &limits, &r);

    let other = TreeConfig::new(5, 3).unwrap();
    assert!(matches!(
        ask(DiffRequest::Root {
            version: PROTOCOL_VERSION,
            config: other,
            root: Digest::ZERO
        }),
        Err(MerkleError::ConfigMismatch { .. })
    ));
    assert!(matches!(
        ask(DiffRequest::Root {
            version: PROTOCOL_VERSION + 1,
            config,
            root: Digest::ZERO
        }),
        Err(MerkleError::VersionMismatch { .. })
    ));
    assert!(matches!(
        ask(DiffRequest::Children {
            level: 4,
            nodes: vec![0]
        }),
        Err(MerkleError::LevelOutOfRange { level: 4, depth: 4 })
    ));
    assert!(matches!(
        ask(DiffRequest::Children {
            level: 1,
            nodes: vec![16]
        }),
        Err(MerkleError::NodeOutOfRange { index: 16, .. })
    ));
    // 4,096 digests a message at fan-out 16: at most 256 nodes a request.
    assert!(matches!(
        ask(DiffRequest::Children {
            level: 3,
            nodes: (0..257).collect()
        }),
        Err(MerkleError::RequestSize {
            count: 257,
            max: 256
        })
    ));
    assert!(matches!(
        ask(DiffRequest::Children {
            level: 3,
            nodes: vec![]
        }),
        Err(MerkleError::RequestSize { count: 0, .. })
    ));
    assert!(matches!(
        ask(DiffRequest::Items {
            buckets: (0..1025).collect(),
            after: None
        }),
        Err(MerkleError::RequestSize { count: 1025, .. })
    ));
    assert!(matches!(
        ask(DiffRequest::Items {
            buckets: vec![65_536],
            after: None
        }),
        Err(MerkleError::NodeOutOfRange { index: 65_536, .. })
    ));
}

/// Starts a diff of an empty tree against `b` and walks it down to the
/// items stage, returning the initiator and its first items request.
fn at_items_stage(a: &Replica, b: &Replica) -> (DiffInitiator, DiffRequest) {
    let limits = DiffLimits::default();
    let (mut diff, mut request) = DiffInitiator::start(&a.tree, limits).expect("starts");
    loop {
        if matches!(request, DiffRequest::Items { .. }) {
            return (diff, request);
        }
        let response = respond(&b.tree, &b.keys, &limits, &request).expect("answers");
        match diff
            .on_response(&a.tree, &a.keys, response)
            .expect("proceeds")
        {
            Step::Send(next) => request = next,
            Step::Done(o) => panic!("finished early: {o:?}"),
        }
    }
}

#[test]
fn the_initiator_refuses_bad_responses() {
    let config = TreeConfig::new(2, 2).unwrap();
    let (a, b) = (Replica::new(config), replica(config, 50, 4, b"v"));
    let limits = DiffLimits::default();

    let (mut diff, _) = DiffInitiator::start(&a.tree, limits).unwrap();
    let short = DiffResponse::Children {
        digests: vec![Digest::ZERO; 3],
    };
    assert!(matches!(
        diff.on_response(&a.tree, &a.keys, short),
        Err(MerkleError::WrongDigestCount {
            expected: 4,
            got: 3
        })
    ));
    // After an error the diff is over.
    assert!(matches!(
        diff.on_response(&a.tree, &a.keys, DiffResponse::InSync),
        Err(MerkleError::Finished)
    ));

    let (mut diff, _) = DiffInitiator::start(&a.tree, limits).unwrap();
    let items = DiffResponse::Items {
        buckets: vec![],
        truncated: false,
    };
    assert!(matches!(
        diff.on_response(&a.tree, &a.keys, items),
        Err(MerkleError::UnexpectedResponse { .. })
    ));

    let (mut diff, request) = at_items_stage(&a, &b);
    let DiffRequest::Items { buckets, .. } = request else {
        unreachable!()
    };
    let wrong = DiffResponse::Items {
        buckets: vec![BucketItems {
            bucket: buckets[0] + 100,
            items: vec![Item {
                key: vec![1],
                hash: Digest::ZERO,
            }],
        }],
        truncated: true,
    };
    assert!(matches!(
        diff.on_response(&a.tree, &a.keys, wrong),
        Err(MerkleError::UnexpectedBucket { .. })
    ));

    let (mut diff, _) = at_items_stage(&a, &b);
    let stalled = DiffResponse::Items {
        buckets: vec![BucketItems {
            bucket: buckets[0],
            items: vec![],
        }],
        truncated: true,
    };
    assert!(matches!(
        diff.on_response(&a.tree, &a.keys, stalled),
        Err(MerkleError::NoProgress)
    ));

    let (mut diff, _) = at_items_stage(&a, &b);
    // A key the bucket function puts elsewhere would look missing here.
    let misplaced = (0u32..)
        .map(|i| i.to_be_bytes().to_vec())
        .find(|k| config.bucket_of(k) != buckets[0])
        .unwrap();
    let lying = DiffResponse::Items {
        buckets: buckets
            .iter()
            .map(|&bucket| BucketItems {
                bucket,
                items: vec![Item {
                    key: misplaced.clone(),
                    hash: Digest::ZERO,
                }],
            })
            .collect(),
        truncated: false,
    };
    assert!(matches!(
        diff.on_response(&a.tree, &a.keys, lying),
        Err(MerkleError::WrongBucket { .. })
    ));

    let (mut diff, _) = at_items_stage(&a, &b);
    let short = DiffResponse::Items {
        buckets: vec![],
        truncated: false,
    };
    assert!(matches!(
        diff.on_response(&a.tree, &a.keys, short),
        Err(MerkleError::MissingBuckets { .. })
    ));
}

#[test]
fn unworkable_limits_are_refused_up_front() {
    let config = TreeConfig::default();
    let a = replica(config, 1, 4, b"v");
    let limits = DiffLimits {
        digests_per_message_max: 8,
        ..DiffLimits::default()
    };
    assert!(DiffInitiator::start(&a.tree, limits).is_err());
    let request = DiffRequest::Children {
        level: 0,
        nodes: vec![0],
    };
    assert!(respond(&a.tree, &a.keys, &limits, &request).is_err());
}
