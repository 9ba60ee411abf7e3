//! Helpers shared by the API tests: building replicas from maps, an
//! in-process diff that checks every message against the limits, and the
//! set-difference model.

#![allow(dead_code, unreachable_pub)]

use kv_merkle::{
    DiffKind, DiffLimits, DiffOutcome, Digest, MemReplica, MerkleError, TreeConfig, item_hash,
    respond,
};
use std::collections::BTreeMap;

pub type Replica = MemReplica;

pub fn from_map(config: TreeConfig, map: &BTreeMap<Vec<u8>, Vec<u8>>) -> Replica {
    let mut r = Replica::new(config);
    for (k, v) in map {
        r.put(k, v);
    }
    r
}

/// What one diff exchanged, in postcard bytes.
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
    let outcome = kv_merkle::run_diff(&local.tree, &local.keys, limits, |request| {
        count(postcard::to_allocvec(request).expect("encodes").len());
        let response = respond(&remote.tree, &remote.keys, &limits, request)?;
        count(postcard::to_allocvec(&response).expect("encodes").len());
        Ok::<_, MerkleError>(response)
    })?;
    Ok((outcome, traffic))
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
        assert!(
            m.insert(d.key.clone(), pair).is_none(),
            "key reported twice"
        );
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
