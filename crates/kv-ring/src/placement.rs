//! Preference lists: which nodes hold a key, in what order.
//!
//! The rule is in the crate documentation ("Preference lists"), where
//! users of the crate read it.

use std::ops::Deref;

use kv_types::NodeId;

use crate::{MAX_REPLICAS, Ring, RingError, Token, key_hash};

/// Up to [`MAX_REPLICAS`] distinct nodes, in preference order; derefs to a
/// slice. Held inline so that looking one up does not allocate.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PreferenceList {
    nodes: [NodeId; MAX_REPLICAS],
    len: usize,
}

impl PreferenceList {
    fn empty() -> Self {
        Self {
            nodes: [NodeId(0); MAX_REPLICAS],
            len: 0,
        }
    }

    /// The nodes as a slice.
    pub fn as_slice(&self) -> &[NodeId] {
        &self.nodes[..self.len]
    }
}

impl Deref for PreferenceList {
    type Target = [NodeId];

    fn deref(&self) -> &[NodeId] {
        self.as_slice()
    }
}

impl<'a> IntoIterator for &'a PreferenceList {
    type Item = &'a NodeId;
    type IntoIter = std::slice::Iter<'a, NodeId>;

    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

impl Ring {
    /// The first `n` nodes of `key`'s preference order (see "Preference
    /// lists" in the [crate] docs): `n` distinct nodes spread over as many zones as
    /// there are, or every node when the ring has fewer than `n`.
    pub fn preference_list(&self, key: &[u8], n: usize) -> Result<PreferenceList, RingError> {
        self.preference_list_for_token(key_hash(key), n)
    }

    /// [`Ring::preference_list`] for a position already hashed.
    pub fn preference_list_for_token(
        &self,
        token: Token,
        n: usize,
    ) -> Result<PreferenceList, RingError> {
        if n > MAX_REPLICAS {
            return Err(RingError::TooManyReplicas {
                n,
                max: MAX_REPLICAS,
            });
        }
        if self.tokens.is_empty() {
            return Ok(PreferenceList::empty());
        }
        self.preference_from_entry(self.entry_for(token), n)
    }

    /// The preference list of every position in entry `start`'s range.
    pub(crate) fn preference_from_entry(
        &self,
        start: usize,
        n: usize,
    ) -> Result<PreferenceList, RingError> {
        if n > MAX_REPLICAS {
            return Err(RingError::TooManyReplicas {
                n,
                max: MAX_REPLICAS,
            });
        }
        let mut list = PreferenceList::empty();
        let want = n.min(self.nodes.len());
        if want == 0 {
            return Ok(list);
        }
        let len = self.tokens.len();
        let mut picked = [0u32; MAX_REPLICAS];
        let mut zones = [0u32; MAX_REPLICAS];
        let zone_goal = want.min(self.zone_count);
        let mut zones_taken = 0;
        // Pass 1: one node per new zone.
        let mut i = start;
        for _ in 0..len {
            let owner = self.owners[i];
            let zone = self.zone_of[owner as usize];
            if !zones[..zones_taken].contains(&zone) {
                zones[zones_taken] = zone;
                picked[zones_taken] = owner;
                zones_taken += 1;
                if zones_taken == zone_goal {
                    break;
                }
            }
            i += 1;
            if i == len {
                i = 0;
            }
        }
        let mut taken = zones_taken;
        // Pass 2: fill with distinct nodes in ring order.
        if taken < want {
            let mut i = start;
            for _ in 0..len {
                let owner = self.owners[i];
                if !picked[..taken].contains(&owner) {
                    picked[taken] = owner;
                    taken += 1;
                    if taken == want {
                        break;
                    }
                }
                i += 1;
                if i == len {
                    i = 0;
                }
            }
        }
        for (slot, &ix) in list.nodes.iter_mut().zip(&picked[..taken]) {
            *slot = self.nodes[ix as usize].id;
        }
        list.len = taken;
        Ok(list)
    }

    /// Every node in `key`'s preference order, lazily: the first `n` are
    /// `preference_list(key, n)`, the rest are fallbacks in the order a
    /// sloppy quorum should try them. Empty on an empty ring.
    pub fn successors(&self, key: &[u8]) -> Successors<'_> {
        self.successors_for_token(key_hash(key))
    }

    /// [`Ring::successors`] for a position already hashed.
    pub fn successors_for_token(&self, token: Token) -> Successors<'_> {
        let start = if self.tokens.is_empty() {
            0
        } else {
            self.entry_for(token)
        };
        Successors {
            ring: self,
            start,
            at: start,
            steps: 0,
            second_pass: false,
            taken: vec![false; self.nodes.len()],
            zone_taken: vec![false; self.zone_count],
            zones_taken: 0,
            yielded: 0,
        }
    }
}

/// The iterator returned by [`Ring::successors`].
#[derive(Debug, Clone)]
pub struct Successors<'a> {
    ring: &'a Ring,
    start: usize,
    at: usize,
    steps: usize,
    second_pass: bool,
    taken: Vec<bool>,
    zone_taken: Vec<bool>,
    zones_taken: usize,
    yielded: usize,
}

impl Iterator for Successors<'_> {
    type Item = NodeId;

    fn next(&mut self) -> Option<NodeId> {
        let ring = self.ring;
        let len = ring.tokens.len();
        if self.yielded == ring.nodes.len() {
            return None;
        }
        loop {
            if self.steps == len {
                if self.second_pass {
                    return None;
                }
                self.second_pass = true;
                self.steps = 0;
                self.at = self.start;
            }
            if !self.second_pass && self.zones_taken == ring.zone_count {
                self.second_pass = true;
                self.steps = 0;
                self.at = self.start;
            }
            let owner = ring.owners[self.at] as usize;
            self.steps += 1;
            self.at = if self.at + 1 == len { 0 } else { self.at + 1 };
            if self.taken[owner] {
                continue;
            }
            if !self.second_pass {
                let zone = ring.zone_of[owner] as usize;
                if self.zone_taken[zone] {
                    continue;
                }
                self.zone_taken[zone] = true;
                self.zones_taken += 1;
            }
            self.taken[owner] = true;
            self.yielded += 1;
            return Some(ring.nodes[owner].id);
        }
    }
}
