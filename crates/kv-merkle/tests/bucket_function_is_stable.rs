//! Golden values: the item hash and the bucket function are part of the
//! cross-node protocol, so they must never change by accident. If one of
//! these fails, the change needs a new BLAKE3 key and a new
//! `PROTOCOL_VERSION`, not new golden values.

use kv_merkle::{TreeConfig, item_hash, key_position};

#[test]
fn item_hash_is_pinned() {
    assert_eq!(
        item_hash(b"user:42", b"version-1").to_string(),
        "4dacccc88a228ca19a764dc82481302a193765cf87e97bfec24026482f0444f0"
    );
    assert_eq!(
        item_hash(b"", b"").to_string(),
        "f2dab34f1366ab2b898da0e1489f5f634ecf4e3515400f03a9f74615a70158bc"
    );
}

#[test]
fn bucket_function_is_pinned() {
    let golden: [(&[u8], u64, u32); 3] = [
        (b"user:42", 0xcfa2_e2da_3e09_10f0, 53154),
        (b"", 0x4471_a188_1990_4c09, 17521),
        (b"a", 0xf30f_ee9b_17b0_b8d4, 62223),
    ];
    for (key, position, bucket) in golden {
        assert_eq!(key_position(key), position, "{key:?}");
        assert_eq!(TreeConfig::default().bucket_of(key), bucket, "{key:?}");
    }
}

#[test]
fn a_bucket_is_a_prefix_of_the_position_in_every_shape() {
    for (bits, depth) in [(1, 1), (4, 4), (8, 3), (3, 5)] {
        let c = TreeConfig::new(bits, depth).unwrap();
        let p = key_position(b"user:42");
        assert_eq!(
            u64::from(c.bucket_of(b"user:42")),
            p >> (64 - c.bucket_bits())
        );
    }
}
