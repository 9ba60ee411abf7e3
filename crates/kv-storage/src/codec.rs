//! Byte-level helpers shared by the WAL and SSTables: varints, checksums and
//! the entry encoding.
//!
//! One entry (a key, its sequence number and its record) is encoded the same
//! way in a WAL record payload and in an SSTable data block:
//!
//! ```text
//! +-------------+-----+-----------+------+--------------+------+---------------+-------+
//! | key_len     | key | seq       | kind | meta_len     | meta | value_len     | value |
//! | varint      |     | varint    | u8   | varint       |      | varint        |       |
//! +-------------+-----+-----------+------+--------------+------+---------------+-------+
//!                                  kind: 0 = value, 1 = tombstone (then no value_len, no value)
//! ```
//!
//! Varints are LEB128 (7 bits a byte, low bits first, at most 10 bytes).

use bytes::Bytes;
use kv_types::Record;

/// CRC-32 (IEEE, as computed by `crc32fast`) of `bytes`.
pub(crate) fn crc(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Decodes a varint at `*pos`, advancing it; `None` if truncated or too long.
#[inline]
pub(crate) fn get_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    let mut shift = 0u32;
    loop {
        let b = *buf.get(*pos)?;
        *pos += 1;
        if shift >= 64 {
            return None;
        }
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
        shift += 7;
    }
}

pub(crate) fn get_u32(buf: &[u8], pos: usize) -> Option<u32> {
    let b = buf.get(pos..pos + 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

pub(crate) fn get_u64(buf: &[u8], pos: usize) -> Option<u64> {
    let b = buf.get(pos..pos + 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Some(u64::from_le_bytes(a))
}

/// The first 8 bytes of `key` as a big-endian integer, zero-padded.
///
/// Comparing prefixes first orders keys exactly as comparing the bytes
/// does (a zero pad sorts a shorter key before its extensions, and ties fall
/// back to the full comparison), but usually settles the comparison without
/// a call to `memcmp`.
#[inline]
pub(crate) fn key_prefix(key: &[u8]) -> u64 {
    let mut p = [0u8; 8];
    let n = key.len().min(8);
    p[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(p)
}

/// Byte order of two keys, by prefix first (see [`key_prefix`]).
#[inline]
pub(crate) fn key_cmp(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    key_prefix(a).cmp(&key_prefix(b)).then_with(|| a.cmp(b))
}

const KIND_VALUE: u8 = 0;
const KIND_TOMBSTONE: u8 = 1;

/// One versioned entry: what the memtable, the WAL and SSTables hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) key: Bytes,
    pub(crate) seq: u64,
    pub(crate) record: Record,
}

/// Bytes `encode_entry` will append, at most.
pub(crate) fn entry_len_max(key: &[u8], record: &Record) -> usize {
    key.len() + record.len_bytes() + 4 * 10 + 1
}

pub(crate) fn encode_entry(out: &mut Vec<u8>, key: &[u8], seq: u64, record: &Record) {
    encode_parts(out, key, seq, record.value.as_deref(), &record.meta);
}

/// `encode_entry` from borrowed parts; `value` is `None` for a tombstone.
pub(crate) fn encode_parts(
    out: &mut Vec<u8>,
    key: &[u8],
    seq: u64,
    value: Option<&[u8]>,
    meta: &[u8],
) {
    put_varint(out, key.len() as u64);
    out.extend_from_slice(key);
    put_varint(out, seq);
    out.push(if value.is_some() {
        KIND_VALUE
    } else {
        KIND_TOMBSTONE
    });
    put_varint(out, meta.len() as u64);
    out.extend_from_slice(meta);
    if let Some(v) = value {
        put_varint(out, v.len() as u64);
        out.extend_from_slice(v);
    }
}

fn take(buf: &[u8], pos: &mut usize, len: u64) -> Option<std::ops::Range<usize>> {
    let len = usize::try_from(len).ok()?;
    let end = pos.checked_add(len)?;
    if end > buf.len() {
        return None;
    }
    let r = *pos..end;
    *pos = end;
    Some(r)
}

/// The key of the entry starting at `*pos` (advancing past the key only).
#[inline]
pub(crate) fn decode_key<'a>(buf: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let len = get_varint(buf, pos)?;
    let r = take(buf, pos, len)?;
    Some(&buf[r])
}

/// Decodes the entry at `*pos` in `buf`; keys and values are zero-copy slices
/// of `buf`. `None` if the bytes do not form an entry.
pub(crate) fn decode_entry(buf: &Bytes, pos: &mut usize) -> Option<Entry> {
    let key_len = get_varint(buf, pos)?;
    let key = take(buf, pos, key_len)?;
    let seq = get_varint(buf, pos)?;
    decode_rest(buf, pos).map(|record| Entry {
        key: buf.slice(key),
        seq,
        record,
    })
}

/// Decodes what follows the key of an entry: seq is at `*pos`. Returns the
/// sequence number and record.
pub(crate) fn decode_after_key(buf: &Bytes, pos: &mut usize) -> Option<(u64, Record)> {
    let seq = get_varint(buf, pos)?;
    decode_rest(buf, pos).map(|r| (seq, r))
}

fn decode_rest(buf: &Bytes, pos: &mut usize) -> Option<Record> {
    let kind = *buf.get(*pos)?;
    *pos += 1;
    let meta_len = get_varint(buf, pos)?;
    let meta = take(buf, pos, meta_len)?;
    let meta = if meta.is_empty() {
        Bytes::new()
    } else {
        buf.slice(meta)
    };
    match kind {
        KIND_VALUE => {
            let value_len = get_varint(buf, pos)?;
            let value = take(buf, pos, value_len)?;
            Some(Record {
                value: Some(buf.slice(value)),
                meta,
            })
        }
        KIND_TOMBSTONE => Some(Record { value: None, meta }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [0, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            let mut pos = 0;
            assert_eq!(get_varint(&out, &mut pos), Some(v));
            assert_eq!(pos, out.len());
        }
        assert_eq!(get_varint(&[0x80], &mut 0), None);
        assert_eq!(get_varint(&[0xff; 11], &mut 0), None);
    }

    #[test]
    fn prefix_order_is_byte_order() {
        let keys: [&[u8]; 9] = [
            b"",
            b"\0",
            b"a",
            b"a\0",
            b"ab",
            b"abcdefgh",
            b"abcdefgh\0",
            b"abcdefgi",
            b"\xff",
        ];
        for a in keys {
            for b in keys {
                assert_eq!(key_cmp(a, b), a.cmp(b), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn entries_round_trip() {
        let recs = [
            Record::value(&b"v"[..], &b"m"[..]),
            Record::tombstone(&b"meta"[..]),
            Record::value(Bytes::new(), Bytes::new()),
        ];
        for (i, r) in recs.iter().enumerate() {
            let mut out = Vec::new();
            encode_entry(&mut out, b"key", i as u64 * 1000, r);
            assert!(out.len() <= entry_len_max(b"key", r));
            let buf = Bytes::from(out);
            let mut pos = 0;
            let e = decode_entry(&buf, &mut pos).unwrap();
            assert_eq!(pos, buf.len());
            assert_eq!(&e.key[..], b"key");
            assert_eq!(e.seq, i as u64 * 1000);
            assert_eq!(&e.record, r);
            // Every strict prefix fails to decode instead of panicking.
            for cut in 0..buf.len() {
                let b = buf.slice(..cut);
                assert!(decode_entry(&b, &mut 0).is_none(), "cut {cut}");
            }
        }
    }
}
