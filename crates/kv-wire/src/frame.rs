//! Framing: a big-endian `u32` length, a CRC-32 of the payload, then a
//! postcard payload.
//!
//! ```text
//! 0        4        8                                  8 + len
//! +--------+--------+----------------------------------+
//! |  len   |  crc   |  payload: postcard(Envelope<T>)  |
//! | u32 BE | u32 BE |  len bytes, len <= frame_len_max |
//! +--------+--------+----------------------------------+
//! ```
//!
//! The length is checked against `frame_len_max` as soon as its four bytes
//! arrive, before any buffer is reserved for the payload, so a peer that
//! announces a huge frame costs nothing but an error. A partial frame decodes
//! to `Ok(None)` and waits for more bytes; the codec remembers a header it
//! has consumed until its payload is complete.
//!
//! The checksum (CRC-32, as `crc32fast` computes it, the polynomial the
//! on-disk formats use) is checked before the payload is decoded: TCP's
//! 16-bit checksum misses some corruptions that NICs, middleboxes and bad
//! memory make, and a frame carries replica data that would be stored as it
//! arrives. A mismatch is [`WireError::Checksum`]; the connection cannot be
//! trusted past it and is closed. The cost is 4 bytes a frame and one pass
//! over each payload on each side: on the 2-core development machine 10 ns
//! for 100 bytes and 16 us for 1 MiB (about 60 GiB/s), against 128 ns and
//! 140 us for the codec's whole encode and decode of the same frames
//! (`cargo bench -p kv-wire --bench frame`).

use bytes::{Buf, BufMut, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::codec::{Decoder, Encoder};

/// Default bound on one frame's payload: 16 MiB. It must hold the largest
/// answer, a full sibling set of maximum-size values.
pub const FRAME_LEN_MAX_DEFAULT: usize = 16 * 1024 * 1024;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The peer announced, or we tried to send, a frame above the bound.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// The announced or attempted length, if known.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// The payload does not match its checksum: it was damaged on the way.
    #[error("frame checksum mismatch: header says {expected:#010x}, payload has {actual:#010x}")]
    Checksum {
        /// The checksum in the header.
        expected: u32,
        /// The checksum of the payload received.
        actual: u32,
    },
    /// The payload is not a valid message of the expected type.
    #[error("malformed message: {0}")]
    Malformed(#[from] postcard::Error),
    /// The connection failed.
    #[error("connection I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

/// A codec that reads frames of `In` and writes frames of `Out`.
#[derive(Debug)]
pub struct WireCodec<In, Out> {
    frame_len_max: usize,
    /// The length and checksum of the frame whose header has been read,
    /// while its payload is still arriving.
    pending: Option<(usize, u32)>,
    _types: std::marker::PhantomData<fn(Out) -> In>,
}

/// Bytes of the length prefix.
const LEN_BYTES: usize = 4;
/// Bytes of the header: the length, then the payload's checksum.
pub const HEADER_LEN: usize = LEN_BYTES + 4;

impl<In, Out> WireCodec<In, Out> {
    /// A codec whose frames are at most `frame_len_max` bytes of payload.
    pub fn new(frame_len_max: usize) -> Self {
        Self {
            frame_len_max: frame_len_max.min(u32::MAX as usize),
            pending: None,
            _types: std::marker::PhantomData,
        }
    }

    /// The bound on one frame's payload.
    pub fn frame_len_max(&self) -> usize {
        self.frame_len_max
    }

    /// The same connection state, reading and writing other types; used to
    /// switch from the handshake to the message types.
    pub fn retype<In2, Out2>(self) -> WireCodec<In2, Out2> {
        WireCodec {
            frame_len_max: self.frame_len_max,
            pending: self.pending,
            _types: std::marker::PhantomData,
        }
    }
}

impl<In: DeserializeOwned, Out> Decoder for WireCodec<In, Out> {
    type Item = In;
    type Error = WireError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<In>, WireError> {
        let (len, expected) = match self.pending {
            Some(pending) => pending,
            None => {
                let Some(len) = src.get(..LEN_BYTES) else {
                    return Ok(None);
                };
                let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
                // Checked before anything is reserved for the payload, and
                // before the rest of the header has arrived.
                if len > self.frame_len_max {
                    return Err(WireError::FrameTooLarge {
                        len,
                        max: self.frame_len_max,
                    });
                }
                let Some(crc) = src.get(LEN_BYTES..HEADER_LEN) else {
                    return Ok(None);
                };
                let crc = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
                src.advance(HEADER_LEN);
                src.reserve(len.saturating_sub(src.len()));
                self.pending = Some((len, crc));
                (len, crc)
            }
        };
        if src.len() < len {
            return Ok(None);
        }
        self.pending = None;
        let payload = src.split_to(len);
        let actual = crc32fast::hash(&payload);
        if actual != expected {
            return Err(WireError::Checksum { expected, actual });
        }
        Ok(Some(postcard::from_bytes(&payload)?))
    }
}

impl<In, Out: Serialize> Encoder<Out> for WireCodec<In, Out> {
    type Error = WireError;

    fn encode(&mut self, item: Out, dst: &mut BytesMut) -> Result<(), WireError> {
        // Serialize straight into `dst` behind a placeholder header, then
        // fill the header in; on any failure `dst` is left as it was.
        let start = dst.len();
        dst.put_u64(0);
        if let Err(e) = postcard::serialize_with_flavor(&item, Appender { buf: dst }) {
            dst.truncate(start);
            return Err(e.into());
        }
        let len = dst.len() - start - HEADER_LEN;
        if len > self.frame_len_max {
            dst.truncate(start);
            return Err(WireError::FrameTooLarge {
                len,
                max: self.frame_len_max,
            });
        }
        // The bound above is at most u32::MAX, so the length fits.
        let crc = crc32fast::hash(&dst[start + HEADER_LEN..]);
        dst[start..start + LEN_BYTES].copy_from_slice(&(len as u32).to_be_bytes());
        dst[start + LEN_BYTES..start + HEADER_LEN].copy_from_slice(&crc.to_be_bytes());
        Ok(())
    }
}

/// A postcard output that appends to a `BytesMut`, copying slices whole.
struct Appender<'a> {
    buf: &'a mut BytesMut,
}

impl postcard::ser_flavors::Flavor for Appender<'_> {
    type Output = ();

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.buf.put_u8(byte);
        Ok(())
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.buf.extend_from_slice(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Codec = WireCodec<Vec<u8>, Vec<u8>>;

    #[test]
    fn round_trip_and_partial_frames() {
        let mut codec = Codec::new(1024);
        let mut buf = BytesMut::new();
        codec.encode(vec![1, 2, 3], &mut buf).unwrap();
        codec.encode(vec![4], &mut buf).unwrap();
        let whole = buf.clone();
        // Every strict prefix of the first frame is "not yet".
        let first_len = HEADER_LEN + 4; // header + postcard [len=3, 1, 2, 3]
        // The codec keeps the header it has read, so each cut gets a fresh one.
        for cut in 0..first_len {
            let mut partial = BytesMut::from(&whole[..cut]);
            let mut fresh = Codec::new(1024);
            assert!(fresh.decode(&mut partial).unwrap().is_none(), "cut {cut}");
        }
        // A frame that arrives a byte at a time decodes once, whole.
        let mut trickle = Codec::new(1024);
        let mut trickle_buf = BytesMut::new();
        let mut decoded = Vec::new();
        for &b in whole.iter() {
            trickle_buf.put_u8(b);
            if let Some(v) = trickle.decode(&mut trickle_buf).unwrap() {
                decoded.push(v);
            }
        }
        assert_eq!(decoded, vec![vec![1, 2, 3], vec![4]]);
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(vec![1, 2, 3]));
        assert_eq!(codec.decode(&mut buf).unwrap(), Some(vec![4]));
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
    }

    #[test]
    fn oversized_frame_is_refused_from_its_header() {
        let mut codec = Codec::new(1024);
        let mut buf = BytesMut::from(&u32::MAX.to_be_bytes()[..]);
        match codec.decode(&mut buf) {
            Err(WireError::FrameTooLarge { len, max }) => {
                assert_eq!(len, u32::MAX as usize);
                assert_eq!(max, 1024);
            }
            other => panic!("expected FrameTooLarge, got {other:?}"),
        }
        // Nothing was reserved for the announced payload.
        assert!(buf.capacity() < 1024);
    }

    #[test]
    fn oversized_frame_is_not_sent() {
        let mut codec = Codec::new(8);
        let mut buf = BytesMut::new();
        assert!(matches!(
            codec.encode(vec![0; 64], &mut buf),
            Err(WireError::FrameTooLarge { len: 65, max: 8 })
        ));
        assert!(buf.is_empty());
    }

    #[test]
    fn garbage_payload_is_malformed() {
        let mut codec: WireCodec<crate::Envelope<crate::client::Request>, ()> =
            WireCodec::new(1024);
        let payload = [0xff, 0xff, 0xff, 0xff];
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&4u32.to_be_bytes());
        buf.extend_from_slice(&crc32fast::hash(&payload).to_be_bytes());
        buf.extend_from_slice(&payload);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(WireError::Malformed(_))
        ));
    }

    #[test]
    fn a_damaged_frame_is_refused_before_it_is_decoded() {
        let mut codec = Codec::new(1024);
        let mut whole = BytesMut::new();
        codec.encode(vec![1, 2, 3, 4, 5], &mut whole).unwrap();
        // Any single bit flipped in the checksum or the payload is caught
        // (a flipped length is caught by the frame not ending where it
        // should, or by the checksum of the bytes it then covers).
        for byte in LEN_BYTES..whole.len() {
            for bit in 0..8 {
                let mut damaged = whole.clone();
                damaged[byte] ^= 1 << bit;
                let got = Codec::new(1024).decode(&mut damaged);
                assert!(
                    matches!(got, Err(WireError::Checksum { .. })),
                    "byte {byte} bit {bit}: {got:?}"
                );
            }
        }
        assert_eq!(codec.decode(&mut whole).unwrap(), Some(vec![1, 2, 3, 4, 5]));
    }
}
