//! Node identifiers.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The identity of one node in the cluster.
///
/// A node id is chosen once, when a node first starts, and persisted in its
/// data directory; it never changes for the life of that data. It is a plain
/// 64-bit number so that version vectors and ring tokens stay small. Its text
/// form is 16 lower-case hex digits, which is what logs and the CLI show.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u64);

impl NodeId {
    /// The raw 64-bit value.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

/// The text given to [`NodeId::from_str`] is not 1 to 16 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid node id {text:?}: expected 1 to 16 hex digits")]
pub struct ParseNodeIdError {
    /// The text that failed to parse.
    pub text: String,
}

impl FromStr for NodeId {
    type Err = ParseNodeIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseNodeIdError { text: s.to_owned() };
        if s.is_empty() || s.len() > 16 {
            return Err(err());
        }
        u64::from_str_radix(s, 16).map(NodeId).map_err(|_| err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips() {
        let id = NodeId(0x00ab_cdef_0123_4567);
        assert_eq!(id.to_string(), "00abcdef01234567");
        assert_eq!("00abcdef01234567".parse::<NodeId>(), Ok(id));
        assert_eq!("ff".parse::<NodeId>(), Ok(NodeId(0xff)));
    }

    #[test]
    fn bad_text_is_refused() {
        for bad in ["", "xyz", "00000000000000000", "-1"] {
            assert!(bad.parse::<NodeId>().is_err(), "{bad:?} parsed");
        }
    }
}
