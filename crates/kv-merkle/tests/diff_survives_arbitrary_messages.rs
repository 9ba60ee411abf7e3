//! Messages come from the network: whatever a peer sends, the responder and
//! the initiator answer with a response or an error, never a panic, and the
//! initiator never loops without end.

mod common;

use common::Replica;
use kv_merkle::{
    BucketItems, DiffInitiator, DiffLimits, DiffRequest, DiffResponse, Digest, Item,
    PROTOCOL_VERSION, Step, TreeConfig, respond,
};
use proptest::prelude::*;

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
    let mut r = Replica::new(TreeConfig::new(2, 2).expect("valid shape"));
    for i in 0..n {
        r.put(&i.to_be_bytes()[2..], b"v");
    }
    r
}

proptest! {
    #[test]
    fn the_responder_answers_or_refuses(req in request()) {
        let b = replica(100);
        let limits = DiffLimits::default();
        if let Ok(response) = respond(&b.tree, &b.keys, &limits, &req) {
            let len = postcard::to_allocvec(&response).expect("encodes").len();
            prop_assert!(len <= limits.message_bytes_max(b.tree.config()));
        }
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
        prop_assert!(diff.stats().round_trips <= 30);
    }
}
