//! Keys, values and the record that storage keeps for each key.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// A key: opaque bytes, ordered bytewise.
pub type Key = Bytes;

/// A value: opaque bytes.
pub type Value = Bytes;

/// What storage keeps for one key: a value or a tombstone, and metadata.
///
/// Storage treats both parts as opaque. The quorum layer keeps version vectors
/// in `meta`, so a tombstone carries a version like any write and can be
/// ordered against concurrent puts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The value, or `None` for a tombstone (a delete).
    pub value: Option<Value>,
    /// Opaque metadata stored beside the value.
    pub meta: Bytes,
}

impl Record {
    /// A live value with its metadata.
    pub fn value(value: impl Into<Bytes>, meta: impl Into<Bytes>) -> Self {
        Self {
            value: Some(value.into()),
            meta: meta.into(),
        }
    }

    /// A tombstone with its metadata.
    pub fn tombstone(meta: impl Into<Bytes>) -> Self {
        Self {
            value: None,
            meta: meta.into(),
        }
    }

    /// Whether this record marks a delete.
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }

    /// Bytes this record occupies, counting value and metadata.
    pub fn len_bytes(&self) -> usize {
        self.value.as_ref().map_or(0, Bytes::len) + self.meta.len()
    }
}
