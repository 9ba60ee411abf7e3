//! The on-disk record format: one key's [`SiblingSet`] as a storage [`Record`].
//!
//! A replica stores, for each key, ONE [`Record`]. Its `meta` holds a small
//! versioned and checksummed header with the causal context and the dots;
//! its `value` holds the live sibling values back to back, so the values are
//! sliced out without copying. When every sibling is a delete, `value` is
//! `None`, so the storage engine sees a tombstone like any other.
//!
//! ```text
//! meta:
//! +--------+------------------+------------------------------------------------+
//! | ver u8 | crc32 u32 LE     | header: postcard(Header)                       |
//! |  = 1   | over header|value|   clock:    [(actor u64, counter u64)]         |
//! |        |                  |   siblings: [(dot, Option<len u32>)]           |
//! +--------+------------------+------------------------------------------------+
//! value (None when every sibling is a tombstone):
//! +----------------------+----------------------+-----
//! | live sibling 1 bytes | live sibling 2 bytes | ...   in dot order, lengths in header
//! +----------------------+----------------------+-----
//! ```
//!
//! The CRC-32 (IEEE) covers the header bytes followed by the value bytes and
//! is checked on every read; a mismatch, an unknown version or lengths that
//! do not add up are reported as [`RecordError`], never silently repaired.

use bytes::{BufMut, Bytes, BytesMut};
use kv_types::Record;
use serde::{Deserialize, Serialize};

use crate::version::{Dot, Sibling, SiblingSet, VersionVector};

/// The format version written in the first byte of `meta`.
pub const RECORD_FORMAT_VERSION: u8 = 1;

/// Bytes before the header: version and checksum.
const PREFIX_LEN: usize = 1 + 4;

/// Why a stored record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The metadata is shorter than the fixed prefix.
    #[error("record metadata of {len} bytes is too short")]
    Truncated {
        /// Bytes found.
        len: usize,
    },
    /// The version byte is not one this code understands.
    #[error("record format version {found} is not supported (expected {expected})")]
    UnknownVersion {
        /// Version found.
        found: u8,
        /// Version supported.
        expected: u8,
    },
    /// The checksum does not match the bytes.
    #[error("record checksum mismatch: stored {expected:#010x}, computed {got:#010x}")]
    ChecksumMismatch {
        /// Checksum stored in the record.
        expected: u32,
        /// Checksum of the bytes read.
        got: u32,
    },
    /// The header does not decode or disagrees with the value bytes.
    #[error("record header is malformed: {detail}")]
    Malformed {
        /// What was wrong.
        detail: String,
    },
}

#[derive(Serialize, Deserialize)]
struct Header {
    clock: VersionVector,
    siblings: Vec<(Dot, Option<u32>)>,
}

/// Encodes a key's state as one storage record.
///
/// Fails only if a sibling value exceeds `u32::MAX` bytes, which no storage
/// engine of ours accepts anyway.
pub fn encode_record(set: &SiblingSet) -> Result<Record, RecordError> {
    let mut siblings = Vec::with_capacity(set.siblings().len());
    let mut value_len = 0usize;
    for s in set.siblings() {
        let len = match &s.value {
            Some(v) => {
                value_len += v.len();
                Some(u32::try_from(v.len()).map_err(|_| RecordError::Malformed {
                    detail: format!("sibling value of {} bytes is too large", v.len()),
                })?)
            }
            None => None,
        };
        siblings.push((s.dot, len));
    }
    let header = Header {
        clock: set.clock().clone(),
        siblings,
    };
    // One buffer: the prefix, then the header serialized in place after
    // it; the checksum is filled in once the header bytes exist.
    let mut meta = Vec::with_capacity(PREFIX_LEN + 24 + 24 * set.siblings().len());
    meta.extend_from_slice(&[RECORD_FORMAT_VERSION, 0, 0, 0, 0]);
    let mut meta = postcard::to_extend(&header, meta).map_err(|e| RecordError::Malformed {
        detail: e.to_string(),
    })?;
    let value = if set.is_deleted() {
        None
    } else {
        let mut buf = BytesMut::with_capacity(value_len);
        for v in set.values() {
            buf.put_slice(v);
        }
        Some(buf.freeze())
    };
    let crc = crc32_parts(&meta[PREFIX_LEN..], value.as_deref().unwrap_or(&[]));
    meta[1..PREFIX_LEN].copy_from_slice(&crc.to_le_bytes());
    Ok(Record {
        value,
        meta: Bytes::from(meta),
    })
}

/// Decodes a record written by [`encode_record`], checking version and
/// checksum.
pub fn decode_record(record: &Record) -> Result<SiblingSet, RecordError> {
    let meta = &record.meta;
    if meta.len() < PREFIX_LEN {
        return Err(RecordError::Truncated { len: meta.len() });
    }
    if meta[0] != RECORD_FORMAT_VERSION {
        return Err(RecordError::UnknownVersion {
            found: meta[0],
            expected: RECORD_FORMAT_VERSION,
        });
    }
    let expected = u32::from_le_bytes([meta[1], meta[2], meta[3], meta[4]]);
    let header_bytes = &meta[PREFIX_LEN..];
    let empty = Bytes::new();
    let value = record.value.as_ref().unwrap_or(&empty);
    let got = crc32_parts(header_bytes, value);
    if got != expected {
        return Err(RecordError::ChecksumMismatch { expected, got });
    }
    let header: Header =
        postcard::from_bytes(header_bytes).map_err(|e| RecordError::Malformed {
            detail: e.to_string(),
        })?;
    let mut offset = 0usize;
    let mut siblings = Vec::with_capacity(header.siblings.len());
    for (dot, len) in header.siblings {
        let value = match len {
            Some(len) => {
                let end = offset.saturating_add(len as usize);
                if end > value.len() {
                    return Err(RecordError::Malformed {
                        detail: format!("sibling lengths exceed the {} value bytes", value.len()),
                    });
                }
                let v = value.slice(offset..end);
                offset = end;
                Some(v)
            }
            None => None,
        };
        siblings.push(Sibling { dot, value });
    }
    if offset != value.len() {
        return Err(RecordError::Malformed {
            detail: format!(
                "{} value bytes not claimed by any sibling",
                value.len() - offset
            ),
        });
    }
    Ok(SiblingSet::from_parts(header.clock, siblings))
}

/// CRC-32 (IEEE, reflected, as zlib) of `a` followed by `b`. crc32fast
/// uses the CPU's carry-less multiply where it has one: a table-driven loop
/// over a hot key's kilobyte of siblings was the largest single cost of a
/// replica write.
fn crc32_parts(a: &[u8], b: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(a);
    hasher.update(b);
    hasher.finalize()
}

#[cfg(test)]
mod tests {
    use kv_types::NodeId;

    use super::*;
    use crate::version::WriteContext;

    fn sample() -> SiblingSet {
        let mut s = SiblingSet::new();
        s.update(
            &WriteContext::new(),
            NodeId(1),
            Some(Bytes::from_static(b"hello")),
        )
        .unwrap();
        s.update(&WriteContext::new(), NodeId(2), None).unwrap();
        s.update(
            &WriteContext::new(),
            NodeId(3),
            Some(Bytes::from_static(b"")),
        )
        .unwrap();
        s.update(
            &WriteContext::new(),
            NodeId(3),
            Some(Bytes::from_static(b"world")),
        )
        .unwrap();
        s
    }

    #[test]
    fn crc_matches_the_standard_check_value() {
        assert_eq!(crc32_parts(b"1234", b"56789"), 0xcbf4_3926);
    }

    #[test]
    fn records_round_trip() {
        let s = sample();
        let r = encode_record(&s).unwrap();
        assert!(!r.is_tombstone());
        assert_eq!(decode_record(&r).unwrap(), s);
    }

    #[test]
    fn all_deletes_are_stored_as_a_tombstone() {
        let mut s = SiblingSet::new();
        s.update(&WriteContext::new(), NodeId(1), None).unwrap();
        let r = encode_record(&s).unwrap();
        assert!(r.is_tombstone());
        assert_eq!(decode_record(&r).unwrap(), s);
    }

    #[test]
    fn corruption_is_detected() {
        let r = encode_record(&sample()).unwrap();
        let mut bad_value = r.clone();
        let mut v = bad_value.value.unwrap().to_vec();
        v[0] ^= 1;
        bad_value.value = Some(v.into());
        assert!(matches!(
            decode_record(&bad_value),
            Err(RecordError::ChecksumMismatch { .. })
        ));
        let mut bad_version = r.clone();
        let mut m = bad_version.meta.to_vec();
        m[0] = 9;
        bad_version.meta = m.into();
        assert!(matches!(
            decode_record(&bad_version),
            Err(RecordError::UnknownVersion { found: 9, .. })
        ));
        let short = Record::tombstone(Bytes::from_static(b"\x01"));
        assert!(matches!(
            decode_record(&short),
            Err(RecordError::Truncated { len: 1 })
        ));
    }

    /// A record written by format version 1, kept as bytes: if this test
    /// fails, the format changed and needs a new version byte.
    #[test]
    fn version_1_fixture_still_decodes() {
        const META_HEX: &str = "01efe5bf3d0107010107010101";
        let mut s = SiblingSet::new();
        s.update(
            &WriteContext::new(),
            NodeId(7),
            Some(Bytes::from_static(b"v")),
        )
        .unwrap();
        let fixture = Record {
            value: Some(Bytes::from_static(b"v")),
            meta: Bytes::from(hex(META_HEX)),
        };
        assert_eq!(decode_record(&fixture).unwrap(), s);
        assert_eq!(encode_record(&s).unwrap(), fixture);
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
