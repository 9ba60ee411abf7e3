//! The key hash (and the ring fingerprint) are part of the data layout and
//! of what gossip compares: these golden values pin them.
//!
//! The expected values were computed by an independent implementation (a
//! Python transcription of the algorithm in `kv_ring::hash`'s docs), not by
//! running this crate. If one of these fails, keys would move between nodes
//! after an upgrade: do not "fix" the numbers.
#![allow(clippy::unwrap_used)] // Tests: a panic is the failure report.

use kv_ring::{Token, key_hash};

#[test]
fn golden_values() {
    let golden: &[(&[u8], u64)] = &[
        (b"", 0xefd0_1f60_ba99_2926),
        (b"a", 0x82a2_a958_a9be_ce5b),
        (b"foobar", 0x2c22_1949_22d1_672b),
        (b"key-0", 0x1813_7ad0_31db_6589),
        (b"user:42", 0x9988_17be_e671_8248),
    ];
    for (key, want) in golden {
        assert_eq!(
            key_hash(key),
            Token(*want),
            "key {:?}",
            String::from_utf8_lossy(key)
        );
    }
}

#[test]
fn every_byte_value_is_hashed() {
    let key: Vec<u8> = (0..=255u8).collect();
    assert_eq!(key_hash(&key), Token(0x2067_db6d_bd4e_fa06));
}

#[test]
fn ring_fingerprint_golden_value() {
    // Also computed by an independent Python transcription of the documented
    // byte layout of `Ring::fingerprint`.
    let spec = kv_ring::NodeSpec {
        id: kv_types::NodeId(1),
        weight: 1,
        zone: Some("a".into()),
        tokens: vec![Token(10), Token(5)],
    };
    let ring = kv_ring::Ring::from_specs(kv_ring::RingConfig::default(), [spec]).unwrap();
    assert_eq!(ring.fingerprint(), 0x3bef_06ea_0657_acb0);
}
