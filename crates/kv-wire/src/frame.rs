//! Framing: a big-endian `u32` length, then a postcard payload.
//!
//! ```text
//! 0        4                                  4 + len
//! +--------+----------------------------------+
//! |  len   |  payload: postcard(Envelope<T>)  |
//! | u32 BE |  len bytes, len <= frame_len_max |
//! +--------+----------------------------------+
//! ```
//!
//! The length is checked against `frame_len_max` as soon as its four bytes
//! arrive, before any buffer is reserved for the payload, so a peer that
//! announces a huge frame costs nothing but an error. A partial frame decodes
//! to `Ok(None)` and waits for more bytes. Integrity is left to TCP; the
//! on-disk formats carry their own checksums.

use bytes::{Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::codec::length_delimited::LengthDelimitedCodecError;
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec};

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
    /// The payload is not a valid message of the expected type.
    #[error("malformed message: {0}")]
    Malformed(#[from] postcard::Error),
    /// The connection failed.
    #[error("connection I/O failed: {0}")]
    Io(std::io::Error),
}

impl From<std::io::Error> for WireError {
    fn from(e: std::io::Error) -> Self {
        if e.get_ref()
            .is_some_and(|inner| inner.is::<LengthDelimitedCodecError>())
        {
            // The codec says only that the frame is too big; the exact length
            // has been skipped, unread.
            return WireError::FrameTooLarge { len: 0, max: 0 };
        }
        WireError::Io(e)
    }
}

/// A codec that reads frames of `In` and writes frames of `Out`.
#[derive(Debug)]
pub struct WireCodec<In, Out> {
    inner: LengthDelimitedCodec,
    frame_len_max: usize,
    _types: std::marker::PhantomData<fn(Out) -> In>,
}

impl<In, Out> WireCodec<In, Out> {
    /// A codec whose frames are at most `frame_len_max` bytes of payload.
    pub fn new(frame_len_max: usize) -> Self {
        let inner = LengthDelimitedCodec::builder()
            .length_field_type::<u32>()
            .big_endian()
            .max_frame_length(frame_len_max)
            .new_codec();
        Self {
            inner,
            frame_len_max,
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
            inner: self.inner,
            frame_len_max: self.frame_len_max,
            _types: std::marker::PhantomData,
        }
    }
}

impl<In: DeserializeOwned, Out> Decoder for WireCodec<In, Out> {
    type Item = In;
    type Error = WireError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<In>, WireError> {
        if src.len() >= 4 {
            let len = u32::from_be_bytes([src[0], src[1], src[2], src[3]]) as usize;
            if len > self.frame_len_max {
                return Err(WireError::FrameTooLarge {
                    len,
                    max: self.frame_len_max,
                });
            }
        }
        match self.inner.decode(src)? {
            Some(frame) => Ok(Some(postcard::from_bytes(&frame)?)),
            None => Ok(None),
        }
    }
}

impl<In, Out: Serialize> Encoder<Out> for WireCodec<In, Out> {
    type Error = WireError;

    fn encode(&mut self, item: Out, dst: &mut BytesMut) -> Result<(), WireError> {
        let payload = postcard::to_stdvec(&item)?;
        if payload.len() > self.frame_len_max {
            return Err(WireError::FrameTooLarge {
                len: payload.len(),
                max: self.frame_len_max,
            });
        }
        self.inner.encode(Bytes::from(payload), dst)?;
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
        let first_len = 4 + 4; // u32 length + postcard [len=3, 1, 2, 3]
        // The codec keeps the header it has read, so each cut gets a fresh one.
        for cut in 0..first_len {
            let mut partial = BytesMut::from(&whole[..cut]);
            let mut fresh = Codec::new(1024);
            assert!(fresh.decode(&mut partial).unwrap().is_none(), "cut {cut}");
        }
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
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&4u32.to_be_bytes());
        buf.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(WireError::Malformed(_))
        ));
    }
}
