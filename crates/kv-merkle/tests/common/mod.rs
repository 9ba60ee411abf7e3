//! Helpers shared by the API tests: an in-memory replica and an in-process
//! diff loop that checks every message against the limits.

#![allow(dead_code, unreachable_pub)]

use kv_merkle::{
    DiffInitiator, DiffKind, DiffLimits, DiffOutcome, Digest, MemLeafSource, MerkleError,
    MerkleTree, Step, TreeConfig, item_hash, respond,
};
use std::collections::BTreeMap;

/// A tree and the key index behind it, kept in step.
pub struct Replica {
    pub tree: MerkleTree,
    pub keys: MemLeafSource,
}

impl Replica {
    pub fn new(config: TreeConfig) -> Self {
        Self {
            tree: MerkleTree::new(config),
            keys: MemLeafSource::new(config),
        }
    }

    pub fn from_map(config: TreeConfig, map: &BTreeMap<Vec<u8>, Vec<u8>>) -> Self {
        let mut r = Self::new(config);
        for (k, v) in map {
            r.put(k, v);
        }
        r
    }

    pub fn put(&mut self, key: &[u8], version: &[u8]) {
        let new = item_hash(key, version);
        let old = self.keys.set(key, Some(new));
        self.tree.update(key, old, Some(new));
    }

    pub fn purge(&mut self, key: &[u8]) {
        let old = self.keys.set(key, None);
        self.tree.update(key, old, None);
    }
}

/// What one diff exchanged, as postcard bytes and message counts.
#[derive(Debug, Default)]
pub struct Traffic {
    pub bytes: usize,
    pub largest_message: usize,
}

/// Runs a whole diff in process, `local` initiating, `remote` responding,
/// and asserts every message fits `limits.message_bytes_max`.
pub fn run_diff(
    local: &Replica,
    remote: &Replica,
    limits: DiffLimits,
) -> Result<(DiffOutcome, Traffic), MerkleError> {
    let max = limits.message_bytes_max(local.tree.config());
    let mut traffic = Traffic::default();
    let mut count = |len: usize| {
        assert!(len <= max, "message of {len} bytes exceeds the bound {max}");
        traffic.bytes += len;
        traffic.largest_message = traffic.largest_message.max(len);
    };
    let (mut diff, mut request) = DiffInitiator::start(&local.tree, limits)?;
    loop {
        count(postcard::to_allocvec(&request).expect("encodes").len());
        let response = respond(&remote.tree, &remote.keys, &limits, &request)?;
        count(postcard::to_allocvec(&response).expect("encodes").len());
        match diff.on_response(&local.tree, &local.keys, response)? {
            Step::Send(next) => request = next,
            Step::Done(outcome) => return Ok((outcome, traffic)),
        }
    }
}

/// The differences as a map key -> (local hash, remote hash).
pub fn as_map(outcome: &DiffOutcome) -> BTreeMap<Vec<u8>, (Option<Digest>, Option<Digest>)> {
    let mut m = BTreeMap::new();
    for d in &outcome.differences {
        let pair = match d.kind {
            DiffKind::OnlyLocal { local } => (Some(local), None),
            DiffKind::OnlyRemote { remote } => (None, Some(remote)),
            DiffKind::Different { local, remote } => (Some(local), Some(remote)),
        };
        assert!(m.insert(d.key.clone(), pair).is_none(), "key reported twice");
    }
    m
}

/// The model: keys whose entries differ between two maps of key -> version.
pub fn model_diff(
    local: &BTreeMap<Vec<u8>, Vec<u8>>,
    remote: &BTreeMap<Vec<u8>, Vec<u8>>,
) -> BTreeMap<Vec<u8>, (Option<Digest>, Option<Digest>)> {
    let mut m = BTreeMap::new();
    for key in local.keys().chain(remote.keys()) {
        let l = local.get(key).map(|v| item_hash(key, v));
        let r = remote.get(key).map(|v| item_hash(key, v));
        if l != r {
            m.insert(key.clone(), (l, r));
        }
    }
    m
}
