//! Anti-entropy: replicas that missed writes (a node down too long for its
//! hints, a lost hint, a dropped repair) converge by comparing Merkle trees.
//!
//! Every node keeps one Merkle tree over all the keys it stores, with a
//! key index by bucket beside it ([`MerkleIndex`]), updated on every
//! write through [`IndexedStorage`], which wraps the data store. A
//! background round ([`run`]) diffs the tree against one live peer's with
//! kv-merkle's bounded message exchange, then, for each differing key that
//! both nodes replicate, merges the two states and writes the merge to both.
//!
//! The index costs memory per key, so it has a bound
//! ([`INDEXED_KEYS_MAX`]); past it, indexing stops and anti-entropy is
//! switched off on this node with a warning, rather than growing without
//! limit.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use kv_merkle::{
    DiffInitiator, DiffLimits, DiffRequest, Digest, ItemIter, LeafSource, MerkleTree, Step,
    TreeConfig, item_hash, respond,
};
use kv_quorum::{Replica, ReplicaRequest, ReplicaResponse, ReplicaTransport};
use kv_types::{Key, KeyRange, NodeId, Record, RecordIter, Storage, StorageError};
use kv_wire::peer::{PeerRequest, PeerResponse};

use crate::membership::Membership;
use crate::transport::TcpTransport;

/// Bound on keys in a node's Merkle index (about 100 bytes each).
pub const INDEXED_KEYS_MAX: usize = 4_000_000;
/// Bound on keys repaired in one anti-entropy round; the rest wait for the
/// next round.
pub const REPAIRS_PER_ROUND_MAX: usize = 10_000;

/// A tree and the key index behind it, kept in step: the index supplies
/// the old item hash each tree update needs, and lists a bucket's keys for
/// the leaf stage of a diff. Keys are `Bytes` shared with the write that
/// stored them, so indexing a write allocates only for a key seen for the
/// first time.
///
/// The index is one small sorted vector per bucket rather than one ordered
/// map of every key: a write finds its key among the few of its bucket
/// (about 1.5 at 100k keys, 60 at the 4M bound) instead of descending a
/// tree of `(bucket, key)` pairs, each comparison of which chased a key
/// pointer; that descent was 6% of a node's CPU under write load.
struct Index {
    tree: MerkleTree,
    buckets: Vec<Vec<(Bytes, Digest)>>,
    len: usize,
}

impl Index {
    fn new() -> Self {
        let config = TreeConfig::DEFAULT;
        Self {
            tree: MerkleTree::new(config),
            buckets: vec![Vec::new(); config.buckets() as usize],
            len: 0,
        }
    }

    /// Sets the item hash of `key` in `bucket`; returns the one it replaced.
    fn set(&mut self, bucket: u32, key: &Bytes, hash: Digest) -> Option<Digest> {
        match self.find(bucket, key) {
            Ok(i) => Some(std::mem::replace(
                &mut self.buckets[bucket as usize][i].1,
                hash,
            )),
            Err(i) => {
                self.buckets[bucket as usize].insert(i, (key.clone(), hash));
                self.len += 1;
                None
            }
        }
    }

    fn contains(&self, bucket: u32, key: &[u8]) -> bool {
        self.find(bucket, key).is_ok()
    }

    /// Where `key` is in its bucket, or where it would go.
    fn find(&self, bucket: u32, key: &[u8]) -> Result<usize, usize> {
        self.buckets[bucket as usize].binary_search_by(|(k, _)| k.as_ref().cmp(key))
    }
}

impl LeafSource for Index {
    fn bucket_items(&self, bucket: u32, after: Option<&[u8]>) -> ItemIter<'_> {
        let items = self
            .buckets
            .get(bucket as usize)
            .map_or(&[][..], Vec::as_slice);
        let from = match after {
            Some(a) => items.partition_point(|(k, _)| k.as_ref() <= a),
            None => 0,
        };
        Box::new(items[from..].iter().map(|(k, h)| Ok((k.to_vec(), *h))))
    }
}

/// The tree and key index of this node's data.
pub struct MerkleIndex {
    replica: Mutex<Index>,
    /// Cleared when the index outgrows its bound.
    enabled: std::sync::atomic::AtomicBool,
}

impl MerkleIndex {
    /// Builds the index from everything `storage` holds.
    pub fn build(storage: &dyn Storage) -> Result<Self, StorageError> {
        let index = Self {
            replica: Mutex::new(Index::new()),
            enabled: std::sync::atomic::AtomicBool::new(true),
        };
        for item in storage.range(KeyRange::all())? {
            let (key, record) = item?;
            index.record(&key, &record);
        }
        Ok(index)
    }

    /// An empty index with anti-entropy off, for a node that does not run it.
    pub fn disabled() -> Self {
        Self {
            replica: Mutex::new(Index {
                tree: MerkleTree::new(TreeConfig::DEFAULT),
                buckets: Vec::new(),
                len: 0,
            }),
            enabled: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        // Each update is one set on the index and one on the tree; a panic
        // between them is not possible, so a poisoned lock is consistent.
        self.replica.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether anti-entropy is on (the index is within its bound).
    pub fn enabled(&self) -> bool {
        self.enabled.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Notes that `key` now holds `record`.
    fn record(&self, key: &Bytes, record: &Record) {
        if !self.enabled() {
            return;
        }
        // The record's metadata is the key's whole causal state, so its hash
        // tells two replicas' states apart. Hashing happens outside the lock.
        let hash = item_hash(key, &record.meta);
        let bucket = TreeConfig::DEFAULT.bucket_of(key);
        let mut ix = self.lock();
        if ix.len >= INDEXED_KEYS_MAX && !ix.contains(bucket, key) {
            self.enabled
                .store(false, std::sync::atomic::Ordering::Relaxed);
            tracing::warn!(
                keys = ix.len,
                "Merkle index is at its bound of {INDEXED_KEYS_MAX} keys; anti-entropy is off on this node"
            );
            return;
        }
        let old = ix.set(bucket, key, hash);
        if old != Some(hash) {
            ix.tree.update(key, old, Some(hash));
        }
    }

    /// Number of keys indexed.
    pub fn len(&self) -> usize {
        self.lock().len
    }

    /// Whether no key is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Answers one diff step from a peer.
    pub fn respond(&self, request: &DiffRequest) -> PeerResponse {
        if !self.enabled() {
            return PeerResponse::Error("anti-entropy is off on this node".to_owned());
        }
        let r = self.lock();
        match respond(&r.tree, &*r, &DiffLimits::default(), request) {
            Ok(resp) => PeerResponse::Merkle(resp),
            Err(e) => PeerResponse::Error(format!("merkle diff: {e}")),
        }
    }
}

/// A [`Storage`] that keeps a [`MerkleIndex`] current with every write.
pub struct IndexedStorage {
    inner: Arc<dyn Storage>,
    index: Arc<MerkleIndex>,
}

impl IndexedStorage {
    /// Wraps `inner`, indexing into `index`.
    pub fn new(inner: Arc<dyn Storage>, index: Arc<MerkleIndex>) -> Self {
        Self { inner, index }
    }
}

impl Storage for IndexedStorage {
    fn get(&self, key: &[u8]) -> Result<Option<Record>, StorageError> {
        self.inner.get(key)
    }

    fn put(&self, key: Key, record: Record) -> Result<(), StorageError> {
        self.inner.put(key.clone(), record.clone())?;
        self.index.record(&key, &record);
        Ok(())
    }

    fn range(&self, range: KeyRange) -> Result<RecordIter<'_>, StorageError> {
        self.inner.range(range)
    }

    fn sync(&self) -> Result<(), StorageError> {
        self.inner.sync()
    }
}

/// What one round found and did.
#[derive(Debug, Default, Clone, Copy)]
pub struct RoundReport {
    /// Keys whose states differed.
    pub differing: usize,
    /// Keys merged and written to both sides.
    pub repaired: usize,
    /// Request/response pairs of the diff.
    pub round_trips: u32,
}

/// Everything a round needs.
pub struct AntiEntropy {
    /// This node.
    pub me: NodeId,
    /// The index of this node's data.
    pub index: Arc<MerkleIndex>,
    /// Replication factor: keys are repaired only between their replicas.
    pub n: usize,
    /// Ring and liveness.
    pub membership: Arc<Membership>,
    /// Peer connections, for the diff.
    pub transport: Arc<TcpTransport>,
    /// Replica calls, for the repair.
    pub link: Arc<dyn ReplicaTransport>,
    /// This node's replica.
    pub replica: Arc<Replica>,
    /// Time allowed for each exchange.
    pub timeout: Duration,
}

impl AntiEntropy {
    /// Diffs against `peer` and repairs what differs.
    pub async fn round(&self, peer: NodeId) -> Result<RoundReport, String> {
        let (mut initiator, mut request) = {
            let r = self.index.lock();
            DiffInitiator::start(&r.tree, DiffLimits::default()).map_err(|e| e.to_string())?
        };
        let outcome = loop {
            let response = match self
                .transport
                .call_peer(peer, PeerRequest::Merkle(request), self.timeout)
                .await?
            {
                PeerResponse::Merkle(resp) => resp,
                PeerResponse::Error(e) => return Err(format!("peer {peer}: {e}")),
                other => return Err(format!("peer {peer} answered {other:?}")),
            };
            let step = {
                let r = self.index.lock();
                initiator
                    .on_response(&r.tree, &*r, response)
                    .map_err(|e| e.to_string())?
            };
            match step {
                Step::Send(next) => request = next,
                Step::Done(outcome) => break outcome,
            }
        };
        let mut report = RoundReport {
            differing: outcome.differences.len(),
            round_trips: outcome.stats.round_trips,
            ..RoundReport::default()
        };
        for diff in outcome.differences.iter().take(REPAIRS_PER_ROUND_MAX) {
            // Only keys both nodes replicate: a tree covers everything a node
            // holds, so keys of other ranges differ by design.
            let home = self.membership.home_replicas(&diff.key, self.n);
            if !home.contains(&self.me) || !home.contains(&peer) {
                continue;
            }
            if self.repair(peer, Key::from(diff.key.clone())).await {
                report.repaired += 1;
            }
        }
        Ok(report)
    }

    /// Merges the two states of `key` and writes the merge to the node(s)
    /// lacking part of it. True only if a write was needed and acknowledged:
    /// states that converged since the diff (a write in flight, say) count
    /// as nothing repaired, so they do not keep the loop catching up.
    async fn repair(&self, peer: NodeId, key: Key) -> bool {
        let local = match self.replica.read(&key) {
            Ok(set) => set,
            Err(e) => {
                tracing::warn!(error = %e, "anti-entropy: cannot read a local key");
                return false;
            }
        };
        let remote = match self
            .link
            .call(peer, ReplicaRequest::Get { key: key.clone() })
            .await
        {
            Ok(ReplicaResponse::Found { set }) => set,
            _ => return false,
        };
        let (local_lacks, remote_lacks) = (!local.covers(&remote), !remote.covers(&local));
        if !local_lacks && !remote_lacks {
            return false;
        }
        let mut merged = local;
        merged.merge(&remote);
        let mut ok = true;
        for (to, lacks) in [(self.me, local_lacks), (peer, remote_lacks)] {
            if !lacks {
                continue;
            }
            let req = ReplicaRequest::Replicate {
                key: key.clone(),
                set: merged.clone(),
            };
            ok &= matches!(self.link.call(to, req).await, Ok(ReplicaResponse::Ack));
        }
        ok
    }
}

/// Pause between rounds while catching up.
pub const CATCH_UP_PAUSE: Duration = Duration::from_millis(100);

/// Runs a round against each live peer in turn, one every `interval`.
///
/// Catching up does not wait for the interval: the first rounds after the
/// start (a node that just joined, or came back after a long absence, has
/// the most to fetch) and every round after one that repaired something go
/// through all peers back to back (that peer again last, in case it holds
/// more than one round repairs), so a new node gets its share of the data at
/// once rather than one peer per interval.
pub async fn run(
    ae: AntiEntropy,
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut turn = 0usize;
    // Rounds still to run back to back; `None` until the first round sizes
    // the first full cycle.
    let mut quick: Option<usize> = None;
    loop {
        match quick {
            Some(left) if left > 0 => {
                quick = Some(left - 1);
                tokio::select! {
                    () = tokio::time::sleep(CATCH_UP_PAUSE) => {}
                    () = crate::server::stopped(&mut stop) => return,
                }
            }
            _ => {
                tokio::select! {
                    _ = ticker.tick() => {}
                    () = crate::server::stopped(&mut stop) => return,
                }
            }
        }
        if !ae.index.enabled() {
            continue;
        }
        let mut peers: Vec<NodeId> = ae
            .membership
            .members()
            .iter()
            .filter(|m| m.id != ae.me && m.is_up() && !m.meta.tokens.is_empty())
            .map(|m| m.id)
            .collect();
        if peers.is_empty() {
            continue;
        }
        peers.sort();
        quick.get_or_insert(peers.len() - 1);
        let peer = peers[turn % peers.len()];
        turn = turn.wrapping_add(1);
        match ae.round(peer).await {
            Ok(report) if report.repaired > 0 => {
                tracing::info!(%peer, ?report, "anti-entropy round repaired differences");
                // Others may lack what this peer lacked, and this peer may
                // hold more than one round repairs: go round all of them,
                // this one included, now.
                quick = Some(quick.unwrap_or(0).max(peers.len()));
            }
            Ok(report) => tracing::debug!(%peer, ?report, "anti-entropy round: nothing to repair"),
            Err(e) => tracing::debug!(%peer, error = %e, "anti-entropy round failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use kv_merkle::MemLeafSource;

    use super::*;

    /// The per-bucket index lists exactly what kv-merkle's reference source
    /// lists, in the same order, with the same resumption after a key, and
    /// its tree has the same root.
    #[test]
    fn the_bucket_index_agrees_with_the_reference_source() {
        let index = MerkleIndex::build(&kv_types::MemStorage::new()).unwrap();
        let mut reference = MemLeafSource::new(TreeConfig::DEFAULT);
        // Keys in a scrambled order, each written twice with a new state.
        for round in 0..2u8 {
            for i in 0..5_000u32 {
                let k = i * 7_919 % 5_000; // 7919 is prime to 5000: a permutation
                let key = Bytes::from(format!("key-{k}"));
                let record = Record::value(Bytes::from_static(b"v"), Bytes::from(vec![round]));
                index.record(&key, &record);
                reference.set(&key, Some(item_hash(&key, &record.meta)));
            }
        }
        let ix = index.lock();
        assert_eq!(ix.len, 5_000);
        let mut tree = MerkleTree::new(TreeConfig::DEFAULT);
        for (key, hash) in reference.iter() {
            tree.update(key, None, Some(hash));
        }
        assert_eq!(ix.tree.root(), tree.root());
        let items = |source: &dyn LeafSource, bucket, after: Option<&[u8]>| {
            source
                .bucket_items(bucket, after)
                .collect::<Result<Vec<_>, _>>()
                .unwrap()
        };
        let mut checked = 0;
        for bucket in 0..TreeConfig::DEFAULT.buckets() {
            let all = items(&*ix, bucket, None);
            assert_eq!(all, items(&reference, bucket, None), "bucket {bucket}");
            if let Some((first, _)) = all.first() {
                assert_eq!(
                    items(&*ix, bucket, Some(first)),
                    items(&reference, bucket, Some(first)),
                    "bucket {bucket} after its first key"
                );
                checked += 1;
            }
        }
        assert!(checked > 1_000, "only {checked} buckets held keys");
    }
}
