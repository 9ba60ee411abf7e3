//! Messages come from the network: whatever a peer sends, the responder and
//! the initiator answer with a response or an error, never a panic, and the
//! initiator never loops without end.

mod common;

use common::Replica;
use kv_merkle::{
    BucketItems, DiffInitiator, DiffLimits, DiffRequest, DiffResponse, Digest, Item, MerkleError,
    PROTOCOL_VERSION, Step, TreeConfig, respond,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

fn digest() -> impl Strategy<Value = Digest> {
    prop_oneof![Just(Digest::ZERO), any::<[u8; 32]>().prop_map(Digest),]
}

fn small_u32() -> impl Strategy<Value = u32> {
    prop_oneof![0u32..20, any::<u32>()]
}

fn request() -> impl Strategy<Value = DiffRequest> {
    prop_oneof![
        (any::<u16>(), 1u8..=3, 1u8..=3, digest()).prop_map(|(v, bits, depth, root)| {
            DiffRequest::Root {
                version: if v % 2 == 0 { PROTOCOL_VERSION } else { v },
                config: TreeConfig::new(bits, depth).expect("valid shape"),
                root,
            }
        }),
        (any::<u8>(), prop::collection::vec(small_u32(), 0..40))
            .prop_map(|(level, nodes)| DiffRequest::Children { level, nodes }),
        (
            prop::collection::vec(small_u32(), 0..40),
            prop::option::of(prop::collection::vec(any::<u8>(), 0..4)),
        )
            .prop_map(|(buckets, after)| DiffRequest::Items { buckets, after }),
    ]
}

fn response() -> impl Strategy<Value = DiffResponse> {
    let item = (prop::collection::vec(any::<u8>(), 0..4), digest())
        .prop_map(|(key, hash)| Item { key, hash });
    let bucket = (small_u32(), prop::collection::vec(item, 0..4))
        .prop_map(|(bucket, items)| BucketItems { bucket, items });
    prop_oneof![
        Just(DiffResponse::InSync),
        prop::collection::vec(digest(), 0..40)
            .prop_map(|digests| DiffResponse::Children { digests }),
        (prop::collection::vec(bucket, 0..6), any::<bool>())
            .prop_map(|(buckets, truncated)| DiffResponse::Items { buckets, truncated }),
    ]
}

fn replica(n: u32) -> Replica {
    let mut r = Replica::new(config());
    for i in 0..n {
        r.put(&i.to_be_bytes()[2..], b"v");
    }
    r
}

/// The shape of every tree here: fan-out 4, depth 2, 16 buckets.
fn config() -> TreeConfig {
    TreeConfig::new(2, 2).expect("valid shape")
}

/// Limits small enough that the replicas below fill them: a request names at
/// most 2 nodes or 2 buckets, and a response carries at most 64 item bytes,
/// so `Items` responses are cut short and resumed.
fn tight() -> DiffLimits {
    DiffLimits {
        digests_per_message_max: 8,
        buckets_per_request_max: 2,
        item_bytes_per_message_max: 64,
        differences_max: 1000,
        round_trips_max: 12,
    }
}

/// Requests a correct peer could send to a tree of `config()` under
/// `tight()`: the version and shape match, levels, nodes and buckets are in
/// range and within the request limits.
fn valid_request() -> impl Strategy<Value = DiffRequest> {
    let c = config();
    let level = 0..c.depth();
    prop_oneof![
        digest().prop_map(move |root| DiffRequest::Root {
            version: PROTOCOL_VERSION,
            config: c,
            root,
        }),
        level.prop_flat_map(move |level| {
            prop::collection::vec(0..c.nodes_at(level), 1..=2)
                .prop_map(move |nodes| DiffRequest::Children { level, nodes })
        }),
        (
            prop::collection::vec(0..c.buckets(), 1..=2),
            prop::option::of(prop::collection::vec(any::<u8>(), 0..3)),
        )
            .prop_map(|(buckets, after)| DiffRequest::Items { buckets, after }),
    ]
}

/// Encoded length of `response`, checked against the bound for the limits.
fn check_size(response: &DiffResponse, limits: &DiffLimits) -> Result<(), TestCaseError> {
    let len = postcard::to_allocvec(response).expect("encodes").len();
    let max = limits.message_bytes_max(config());
    prop_assert!(len <= max, "response of {len} bytes, bound {max}");
    if let DiffResponse::Items { buckets, .. } = response {
        let cost: usize = buckets
            .iter()
            .flat_map(|b| &b.items)
            .map(|i| i.cost())
            .sum();
        prop_assert!(cost <= limits.item_bytes_per_message_max as usize);
    }
    Ok(())
}

proptest! {
    #[test]
    fn the_responder_answers_or_refuses(req in request()) {
        let b = replica(100);
        let limits = DiffLimits::default();
        if let Ok(response) = respond(&b.tree, &b.keys, &limits, &req) {
            check_size(&response, &limits)?;
        }
    }

    #[test]
    fn the_responder_answers_every_valid_request_within_its_bound(req in valid_request()) {
        // Every case reaches the size check: a valid request must be
        // answered, and under tight limits the answer is as large as the
        // limits allow.
        let b = replica(100);
        let limits = tight();
        let response = respond(&b.tree, &b.keys, &limits, &req);
        prop_assert!(response.is_ok(), "{req:?} refused: {response:?}");
        check_size(&response.expect("checked"), &limits)?;
    }

    #[test]
    fn the_initiator_ends_whatever_it_is_told(
        responses in prop::collection::vec(response(), 1..30),
    ) {
        let a = replica(60);
        let limits = DiffLimits::default();
        let (mut diff, _) = DiffInitiator::start(&a.tree, limits).expect("starts");
        for response in responses {
            match diff.on_response(&a.tree, &a.keys, response) {
                Ok(Step::Send(_)) => {}
                Ok(Step::Done(outcome)) => {
                    prop_assert!(outcome.differences.len() <= limits.differences_max as usize);
                    break;
                }
                Err(_) => break,
            }
        }
    }

    #[test]
    fn the_initiator_keeps_its_round_trip_bound_with_a_peer_that_mostly_answers_right(
        remote_keys in 0u32..400,
        // Indexes of the rounds whose honest answer is swapped for noise.
        noise in prop::collection::btree_map(0usize..40, response(), 0..4),
    ) {
        // An honest peer whose tree differs from ours needs many round
        // trips under tight limits, so the bound is reached, not assumed.
        let a = replica(60);
        let b = replica(remote_keys);
        let limits = tight();
        let (mut diff, mut request) = DiffInitiator::start(&a.tree, limits).expect("starts");
        let mut rounds = 0usize;
        let ended = loop {
            prop_assert!(rounds < 1000, "the initiator never ended");
            let response = match noise.get(&rounds) {
                Some(r) => r.clone(),
                None => match respond(&b.tree, &b.keys, &limits, &request) {
                    Ok(r) => r,
                    Err(e) => break Err(e),
                },
            };
            rounds += 1;
            match diff.on_response(&a.tree, &a.keys, response) {
                Ok(Step::Send(next)) => request = next,
                Ok(Step::Done(outcome)) => break Ok(outcome),
                Err(e) => break Err(e),
            }
        };
        prop_assert!(
            diff.stats().round_trips <= limits.round_trips_max,
            "{} round trips, bound {}", diff.stats().round_trips, limits.round_trips_max
        );
        if noise.is_empty() {
            // Only the bound can stop an honest exchange early.
            match ended {
                Ok(outcome) => prop_assert!(outcome.differences.len() <= limits.differences_max as usize),
                Err(e) => prop_assert!(
                    matches!(e, MerkleError::TooManyRoundTrips { .. }),
                    "{e}"
                ),
            }
        }
    }
}
