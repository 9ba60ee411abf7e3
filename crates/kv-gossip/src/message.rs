//! Gossip messages and their wire form.
//!
//! One exchange is three messages, so that only what is newer travels:
//!
//! ```text
//!   A                                   B
//!   | Syn  { digests: (id, gen, hb)* }  |   A says what it knows, no payload
//!   |---------------------------------->|
//!   | Ack  { updates: newer at B,       |   B sends what is newer at B and
//!   |        wants: newer at A }        |   asks for what is newer at A
//!   |<----------------------------------|
//!   | Ack2 { updates: what B wanted }   |
//!   |---------------------------------->|
//! ```
//!
//! An update carries the heartbeat always and the metadata (addresses,
//! zone, weight, tokens, status) only when the receiver's copy is older, so
//! a steady cluster sends heartbeats, not token lists.
//!
//! # Wire form
//!
//! ```text
//! +---------+------------------------------+----------------------+
//! | version | body: postcard(GossipMessage)| checksum             |
//! | u8 = 1  | at most MAX_MESSAGE_BYTES    | first 4 bytes of     |
//! |         |                              | blake3(version|body) |
//! +---------+------------------------------+----------------------+
//! ```
//!
//! [`GossipMessage::decode`] checks the version, the length and the checksum
//! before it parses the body; the frame that carries the bytes (length
//! prefix) belongs to the transport.

use serde::{Deserialize, Serialize};

use kv_types::NodeId;

use crate::GossipError;
use crate::member::{MemberMeta, Version};

/// Version byte that opens every encoded message.
pub const WIRE_VERSION: u8 = 1;

/// Largest encoded message, version and checksum included.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

const CHECKSUM_LEN: usize = 4;

/// An address a peer listens on for gossip, e.g. `"127.0.0.1:7001"`.
///
/// Seeds are known by address only, so messages are addressed by address.
pub type PeerAddr = String;

/// What a node knows of one member: its id and newest version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    /// The member.
    pub id: NodeId,
    /// The newest version the sender holds.
    pub version: Version,
}

/// A request for one member's state, newer than what the asker holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Want {
    /// The member.
    pub id: NodeId,
    /// What the asker holds, or `None` when it has never heard of the member
    /// (then the answer must include the metadata).
    pub known: Option<Version>,
}

/// Newer state of one member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Update {
    /// The member.
    pub id: NodeId,
    /// Its newest version known to the sender.
    pub version: Version,
    /// The metadata, when the receiver's copy is older or absent.
    pub meta: Option<MemberMeta>,
}

/// The three steps of one exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// Opens an exchange with the sender's digests.
    Syn {
        /// Digests of the members the sender knows (maybe only a window of
        /// them when there are more than fit in one message).
        digests: Vec<Digest>,
        /// Whether `digests` lists every member the sender knows; only then
        /// may the receiver push members missing from it.
        complete: bool,
    },
    /// Answers a `Syn`.
    Ack {
        /// What is newer at the answerer.
        updates: Vec<Update>,
        /// What is newer at the opener.
        wants: Vec<Want>,
    },
    /// Closes an exchange with what the answerer wanted.
    Ack2 {
        /// What the answerer asked for.
        updates: Vec<Update>,
    },
}

/// One gossip message with its sender, so that the receiver can answer a
/// node it knows only by address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GossipMessage {
    /// The sender.
    pub from: NodeId,
    /// Where the sender listens for gossip; answers go there.
    pub from_addr: PeerAddr,
    /// The step.
    pub body: Body,
}

impl GossipMessage {
    /// Encodes this message in the wire form drawn in the module doc.
    pub fn encode(&self) -> Result<Vec<u8>, GossipError> {
        let mut out = vec![WIRE_VERSION];
        out = postcard::to_extend(self, out).map_err(|e| GossipError::Encode {
            reason: e.to_string(),
        })?;
        let sum = checksum(&out);
        out.extend_from_slice(&sum);
        if out.len() > MAX_MESSAGE_BYTES {
            return Err(GossipError::MessageTooLarge {
                len: out.len(),
                max: MAX_MESSAGE_BYTES,
            });
        }
        Ok(out)
    }

    /// Decodes a message encoded by [`GossipMessage::encode`], checking
    /// length, version and checksum first.
    pub fn decode(bytes: &[u8]) -> Result<Self, GossipError> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(GossipError::MessageTooLarge {
                len: bytes.len(),
                max: MAX_MESSAGE_BYTES,
            });
        }
        if bytes.len() < 1 + CHECKSUM_LEN {
            return Err(GossipError::Truncated { len: bytes.len() });
        }
        let (signed, sum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
        let expected = checksum(signed);
        if sum != expected {
            return Err(GossipError::ChecksumMismatch {
                got: u32::from_le_bytes([sum[0], sum[1], sum[2], sum[3]]),
                expected: u32::from_le_bytes(expected),
            });
        }
        if signed[0] != WIRE_VERSION {
            return Err(GossipError::UnsupportedVersion {
                got: signed[0],
                expected: WIRE_VERSION,
            });
        }
        postcard::from_bytes(&signed[1..]).map_err(|e| GossipError::Decode {
            reason: e.to_string(),
        })
    }

    /// Length of [`GossipMessage::encode`]'s output, without building it.
    pub fn encoded_len(&self) -> usize {
        // Serializing to the size-counting flavour cannot fail for these
        // plain types; a failure would show as a too-small figure, not a
        // crash, which is the right side to err on for a statistic.
        1 + postcard::experimental::serialized_size(self).unwrap_or(0) + CHECKSUM_LEN
    }
}

fn checksum(bytes: &[u8]) -> [u8; CHECKSUM_LEN] {
    let h = blake3::hash(bytes);
    let b = h.as_bytes();
    [b[0], b[1], b[2], b[3]]
}

/// Upper bound on a varint-encoded `u64`.
const VARINT_MAX: usize = 10;

/// Upper bound on the encoded size of a digest.
pub(crate) const DIGEST_LEN_MAX: usize = 3 * VARINT_MAX;

/// Upper bound on the encoded size of a want.
pub(crate) const WANT_LEN_MAX: usize = 1 + 3 * VARINT_MAX;

/// Upper bound on the encoded size of the header and framing of a message
/// whose sender address is `from_addr`.
pub(crate) fn header_len_max(from_addr: &str) -> usize {
    // version + id + addr length + addr + body tag + two vec lengths + bool
    // + checksum.
    1 + VARINT_MAX + VARINT_MAX + from_addr.len() + 1 + 2 * VARINT_MAX + 1 + CHECKSUM_LEN
}

impl Update {
    /// Upper bound on this update's encoded size; used to fill a message up
    /// to [`MAX_MESSAGE_BYTES`] without encoding it twice.
    pub(crate) fn len_max(&self) -> usize {
        let fixed = 3 * VARINT_MAX + 1;
        fixed
            + self.meta.as_ref().map_or(0, |m| {
                // version, status, weight, four string lengths, token count.
                VARINT_MAX
                    + 1
                    + 5
                    + 4 * VARINT_MAX
                    + m.gossip_addr.len()
                    + m.client_addr.len()
                    + m.zone.len()
                    + m.settings.len()
                    + VARINT_MAX
                    + m.tokens.len() * VARINT_MAX
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::member::Status;

    fn sample() -> GossipMessage {
        GossipMessage {
            from: NodeId(7),
            from_addr: "127.0.0.1:7001".into(),
            body: Body::Ack {
                updates: vec![Update {
                    id: NodeId(9),
                    version: Version {
                        generation: 3,
                        heartbeat: 44,
                    },
                    meta: Some(MemberMeta {
                        version: 40,
                        status: Status::Normal,
                        gossip_addr: "127.0.0.1:7009".into(),
                        client_addr: "127.0.0.1:8009".into(),
                        zone: "z1".into(),
                        weight: u32::MAX,
                        tokens: vec![u64::MAX, 1, 2],
                        settings: String::new(),
                    }),
                }],
                wants: vec![Want {
                    id: NodeId(u64::MAX),
                    known: None,
                }],
            },
        }
    }

    #[test]
    fn round_trips_and_len_is_exact() {
        let m = sample();
        let bytes = m.encode().unwrap();
        assert_eq!(bytes.len(), m.encoded_len());
        assert_eq!(GossipMessage::decode(&bytes).unwrap(), m);
    }

    #[test]
    fn update_bound_is_an_upper_bound() {
        let m = sample();
        let Body::Ack { updates, .. } = &m.body else {
            unreachable!()
        };
        let alone = postcard::to_stdvec(&updates[0]).unwrap().len();
        assert!(alone <= updates[0].len_max(), "{alone}");
    }

    #[test]
    fn corruption_version_and_size_are_refused() {
        let mut bytes = sample().encode().unwrap();
        bytes[5] ^= 1;
        assert!(matches!(
            GossipMessage::decode(&bytes),
            Err(GossipError::ChecksumMismatch { .. })
        ));
        let mut bytes = sample().encode().unwrap();
        bytes[0] = 9;
        let n = bytes.len() - CHECKSUM_LEN;
        let sum = checksum(&bytes[..n]);
        bytes[n..].copy_from_slice(&sum);
        assert!(matches!(
            GossipMessage::decode(&bytes),
            Err(GossipError::UnsupportedVersion { got: 9, .. })
        ));
        assert!(matches!(
            GossipMessage::decode(&vec![0; MAX_MESSAGE_BYTES + 1]),
            Err(GossipError::MessageTooLarge { .. })
        ));
        assert!(matches!(
            GossipMessage::decode(&[1, 2]),
            Err(GossipError::Truncated { len: 2 })
        ));
    }
}
