//! The replica side: applies [`ReplicaRequest`]s to local storage and keeps
//! hints for other nodes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{BufMut, Bytes, BytesMut};
use kv_types::{Key, KeyRange, NodeId, Record, Storage, StorageError};

use crate::config::{DEFAULT_MAX_SIBLINGS, DEFAULT_STATE_BYTES_HARD_MAX, DEFAULT_STATE_BYTES_MAX};
use crate::error::ReplicaFailure;
use crate::placement::fnv1a;
use crate::record::{decode_record, encode_record};
use crate::transport::{ReplicaRequest, ReplicaResponse};
use crate::version::{Dot, SiblingSet, WriteContext};

/// Lock stripes per replica: read-merge-write of one key is atomic, and
/// writes to different keys rarely wait for each other.
pub const LOCK_STRIPES: usize = 64;
/// Default bound on hints a node keeps for others.
pub const DEFAULT_HINT_COUNT_MAX: usize = 100_000;
/// Default bound on the bytes of hints a node keeps for others.
pub const DEFAULT_HINT_BYTES_MAX: usize = 64 << 20;

/// Bounds of a [`HintStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HintLimits {
    /// Most hints (distinct owner and key pairs) kept.
    pub count_max: usize,
    /// Most bytes of hints kept, counting stored keys and records.
    pub bytes_max: usize,
}

impl Default for HintLimits {
    fn default() -> Self {
        Self {
            count_max: DEFAULT_HINT_COUNT_MAX,
            bytes_max: DEFAULT_HINT_BYTES_MAX,
        }
    }
}

/// Counters of a [`HintStore`], for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HintStats {
    /// Hints held now.
    pub count: usize,
    /// Bytes of hints held now.
    pub bytes: usize,
    /// Hints refused because a bound was reached, since start.
    pub rejected_total: u64,
    /// Hints removed after their owner acknowledged them, since start.
    pub delivered_total: u64,
}

#[derive(Debug, Default)]
struct HintCounts {
    count: usize,
    bytes: usize,
    /// Hints held per owner, so reads and replay know which owners to look
    /// at without scanning the store.
    per_owner: BTreeMap<NodeId, usize>,
}

fn owner_of(hint_key: &[u8]) -> Option<NodeId> {
    let id: [u8; 8] = hint_key.get(..8)?.try_into().ok()?;
    Some(NodeId(u64::from_be_bytes(id)))
}

/// Writes kept for home replicas that were down (hinted handoff).
///
/// Hints live in their own [`Storage`], so they are durable when the node
/// gives it an LSM engine. Storage has no delete, so a delivered hint is
/// overwritten with a removal marker: a tombstone with empty metadata, which
/// no live hint has (its metadata always holds the record header).
///
/// ```text
/// hint key:    | owner NodeId u64 BE | user key bytes ... |
/// hint record: the record format of `crate::record`, or the removal
///              marker Record { value: None, meta: [] }
/// ```
///
/// The owner comes first so that replaying the hints of one owner is a
/// single range scan.
pub struct HintStore {
    storage: Arc<dyn Storage>,
    limits: HintLimits,
    /// Bound on one hint's state: a hint must fit the frame that replays it.
    state_bytes_max: usize,
    counts: Mutex<HintCounts>,
    rejected_total: AtomicU64,
    delivered_total: AtomicU64,
}

impl std::fmt::Debug for HintStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HintStore")
            .field("limits", &self.limits)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

fn hint_key(owner: NodeId, key: &[u8]) -> Key {
    let mut buf = BytesMut::with_capacity(8 + key.len());
    buf.put_u64(owner.0);
    buf.put_slice(key);
    buf.freeze()
}

fn is_removed(record: &Record) -> bool {
    record.value.is_none() && record.meta.is_empty()
}

impl HintStore {
    /// Opens the hint store kept in `storage`, counting the hints already
    /// there (so bounds hold across restarts).
    pub fn open(storage: Arc<dyn Storage>, limits: HintLimits) -> Result<Self, StorageError> {
        let mut counts = HintCounts::default();
        for item in storage.range(KeyRange::all())? {
            let (k, r) = item?;
            if let (false, Some(owner)) = (is_removed(&r), owner_of(&k)) {
                counts.count += 1;
                counts.bytes += k.len() + r.len_bytes();
                *counts.per_owner.entry(owner).or_insert(0) += 1;
            }
        }
        Ok(Self::with_counts(storage, limits, counts))
    }

    fn with_counts(storage: Arc<dyn Storage>, limits: HintLimits, counts: HintCounts) -> Self {
        Self {
            storage,
            limits,
            state_bytes_max: DEFAULT_STATE_BYTES_HARD_MAX,
            counts: Mutex::new(counts),
            rejected_total: AtomicU64::new(0),
            delivered_total: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HintCounts> {
        // The counters are updated after the storage write succeeded, in one
        // step, so a poisoned lock still holds consistent numbers.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The bounds of this store.
    pub fn limits(&self) -> HintLimits {
        self.limits
    }

    /// Counters for metrics.
    pub fn stats(&self) -> HintStats {
        let c = self.lock();
        HintStats {
            count: c.count,
            bytes: c.bytes,
            rejected_total: self.rejected_total.load(Ordering::Relaxed),
            delivered_total: self.delivered_total.load(Ordering::Relaxed),
        }
    }

    /// Keeps `set` for `owner`, merged with any hint already held for the
    /// same key, or refuses with [`ReplicaFailure::HintStoreFull`], or with
    /// [`ReplicaFailure::StateTooLarge`] when the merged hint would grow
    /// past what a frame carries (then the write stays with its issuer and
    /// the stand-in's acknowledgement is missing, never lost).
    pub fn add(&self, owner: NodeId, key: &[u8], set: &SiblingSet) -> Result<(), ReplicaFailure> {
        let mut counts = self.lock();
        let hk = hint_key(owner, key);
        let old = match self.storage.get(&hk)? {
            Some(r) if !is_removed(&r) => Some(r),
            _ => None,
        };
        let mut merged = match &old {
            Some(r) => decode_record(r)?,
            None => SiblingSet::new(),
        };
        let bytes_before = merged.size_bytes();
        merged.merge(set);
        let state_bytes = merged.size_bytes();
        if state_bytes > self.state_bytes_max && state_bytes > bytes_before {
            self.rejected_total.fetch_add(1, Ordering::Relaxed);
            return Err(ReplicaFailure::StateTooLarge {
                bytes: state_bytes,
                max: self.state_bytes_max,
            });
        }
        let record = encode_record(&merged)?;
        let old_bytes = old.as_ref().map_or(0, |r| hk.len() + r.len_bytes());
        let new_bytes = hk.len() + record.len_bytes();
        let count = counts.count + usize::from(old.is_none());
        let bytes = counts.bytes.saturating_sub(old_bytes) + new_bytes;
        if count > self.limits.count_max || bytes > self.limits.bytes_max {
            self.rejected_total.fetch_add(1, Ordering::Relaxed);
            return Err(ReplicaFailure::HintStoreFull {
                count: counts.count,
                count_max: self.limits.count_max,
                bytes: counts.bytes,
                bytes_max: self.limits.bytes_max,
            });
        }
        self.storage.put(hk, record)?;
        counts.count = count;
        counts.bytes = bytes;
        if old.is_none() {
            *counts.per_owner.entry(owner).or_insert(0) += 1;
        }
        Ok(())
    }

    /// Up to `limit` hints held for `owner`, in key order.
    pub fn pending(
        &self,
        owner: NodeId,
        limit: usize,
    ) -> Result<Vec<(Key, SiblingSet)>, ReplicaFailure> {
        let start = hint_key(owner, &[]);
        let end = match owner.0.checked_add(1) {
            Some(next) => std::ops::Bound::Excluded(hint_key(NodeId(next), &[])),
            None => std::ops::Bound::Unbounded,
        };
        let range = KeyRange {
            start: std::ops::Bound::Included(start),
            end,
        };
        let mut out = Vec::new();
        for item in self.storage.range(range)? {
            if out.len() >= limit {
                break;
            }
            let (k, r) = item?;
            if is_removed(&r) {
                continue;
            }
            if k.len() >= 8 {
                out.push((k.slice(8..), decode_record(&r)?));
            }
        }
        Ok(out)
    }

    /// Owners for which hints are held, in id order.
    pub fn owners(&self) -> Vec<NodeId> {
        self.lock().per_owner.keys().copied().collect()
    }

    /// Every hint held for `key`, whatever its owner, merged; `None` when
    /// there is none. A stand-in answers sloppy reads with it.
    pub fn find(&self, key: &[u8]) -> Result<Option<SiblingSet>, ReplicaFailure> {
        let owners = self.owners();
        let mut found: Option<SiblingSet> = None;
        for owner in owners {
            if let Some(r) = self.storage.get(&hint_key(owner, key))?
                && !is_removed(&r)
            {
                found
                    .get_or_insert_with(SiblingSet::new)
                    .merge(&decode_record(&r)?);
            }
        }
        Ok(found)
    }

    /// Removes the hint for `owner` and `key` after the owner acknowledged
    /// `delivered`, unless a newer write was merged into the hint meanwhile
    /// (then it stays for the next replay). Returns whether it was removed.
    pub fn remove_delivered(
        &self,
        owner: NodeId,
        key: &[u8],
        delivered: &SiblingSet,
    ) -> Result<bool, ReplicaFailure> {
        let mut counts = self.lock();
        let hk = hint_key(owner, key);
        let Some(current) = self.storage.get(&hk)? else {
            return Ok(false);
        };
        if is_removed(&current) || !delivered.covers(&decode_record(&current)?) {
            return Ok(false);
        }
        let freed = hk.len() + current.len_bytes();
        self.storage.put(hk, Record::tombstone(Bytes::new()))?;
        counts.count = counts.count.saturating_sub(1);
        counts.bytes = counts.bytes.saturating_sub(freed);
        if let Some(n) = counts.per_owner.get_mut(&owner) {
            *n -= 1;
            if *n == 0 {
                counts.per_owner.remove(&owner);
            }
        }
        self.delivered_total.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }
}

/// One node's replica: the local side of every [`ReplicaRequest`].
///
/// Each key is stored as one record in the format of [`crate::record`];
/// read-merge-write of a key happens under one of [`LOCK_STRIPES`] locks, so
/// concurrent requests for the same key never lose each other's writes.
///
/// The replica issues the dots of client writes under its *actor*, which is
/// its node id unless [`with_actor`](Self::with_actor) says otherwise. A
/// dot's counter comes from the stored state of the key, so an actor that
/// lost stored data (a wiped disk, a restore from backup, a torn WAL tail)
/// would issue again a dot that other replicas already hold for a
/// different value, and they would silently keep the old one (Riak kv679).
/// A node that cannot prove its data is complete therefore gives its
/// replica a fresh actor id never used before (an "epoch").
///
/// Merges (replication, read repair, hint replay, anti-entropy) take in
/// more than the client write path's bounds allow: a merge that leaves a
/// key above the sibling or byte bound is stored in full and counted in
/// [`merge_stats`](Self::merge_stats). The one bound a merge keeps is the
/// hard one, what a frame can carry (see
/// [`with_state_bytes_hard_max`](Self::with_state_bytes_hard_max)): a merge
/// that would grow a key past it is refused with
/// [`ReplicaFailure::StateTooLarge`] and counted. Refusing drops nothing:
/// the incoming state stays where it came from (the issuer, the other
/// replica, the hint store), and the replicas stay apart until a client
/// write that supersedes siblings (a read returns as many as fit a frame,
/// with a context for exactly those) shrinks the key.
pub struct Replica {
    id: NodeId,
    actor: NodeId,
    storage: Arc<dyn Storage>,
    hints: HintStore,
    stripes: Box<[Mutex<()>]>,
    state_bytes_hard_max: usize,
    merges_over_siblings_total: AtomicU64,
    merges_over_bytes_total: AtomicU64,
    merges_refused_total: AtomicU64,
}

/// Counters of a [`Replica`]'s merges, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MergeStats {
    /// Merges that left a key with more siblings than the bound of the
    /// client write path, since start. They were stored in full.
    pub over_siblings_total: u64,
    /// Merges that left a key's state above the byte bound of the client
    /// write path, since start. They were stored in full.
    pub over_bytes_total: u64,
    /// Merges refused because the key would have grown past the hard
    /// bound (what a frame carries), since start. Nothing was stored.
    pub refused_total: u64,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("id", &self.id)
            .field("actor", &self.actor)
            .field("hints", &self.hints)
            .finish_non_exhaustive()
    }
}

impl Replica {
    /// A replica of node `id` over `storage`, keeping hints in
    /// `hint_storage` within `hint_limits`.
    pub fn new(
        id: NodeId,
        storage: Arc<dyn Storage>,
        hint_storage: Arc<dyn Storage>,
        hint_limits: HintLimits,
    ) -> Result<Self, StorageError> {
        let hints = HintStore::open(hint_storage, hint_limits)?;
        Ok(Self::with_hints(id, storage, hints))
    }

    fn with_hints(id: NodeId, storage: Arc<dyn Storage>, hints: HintStore) -> Self {
        Self {
            id,
            actor: id,
            storage,
            hints,
            stripes: (0..LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            state_bytes_hard_max: DEFAULT_STATE_BYTES_HARD_MAX,
            merges_over_siblings_total: AtomicU64::new(0),
            merges_over_bytes_total: AtomicU64::new(0),
            merges_refused_total: AtomicU64::new(0),
        }
    }

    /// A replica over fresh in-memory storage, for tests and benchmarks.
    pub fn in_memory(id: NodeId, hint_limits: HintLimits) -> Self {
        // A fresh store holds no hints, so there is nothing to count.
        let hints = HintStore::with_counts(
            Arc::new(kv_types::MemStorage::new()),
            hint_limits,
            HintCounts::default(),
        );
        Self::with_hints(id, Arc::new(kv_types::MemStorage::new()), hints)
    }

    /// This replica with `actor` as the actor of the dots it issues,
    /// instead of its node id.
    ///
    /// The node passes a fresh actor (a `NodeId`-typed number never used as
    /// an actor before, by any node) whenever it cannot prove the replica's
    /// storage holds every write it acknowledged; reusing an actor after
    /// data loss reissues dots and loses writes. Merely restarting with
    /// complete data may keep the old actor. The node id stays the address
    /// of the replica; the actor only names its events.
    #[must_use]
    pub fn with_actor(mut self, actor: NodeId) -> Self {
        self.actor = actor;
        self
    }

    /// This replica with `max` as the hard bound on one key's state, for
    /// merges and hints alike (default [`DEFAULT_STATE_BYTES_HARD_MAX`]).
    /// Every state this replica stores must fit the frame that carries it
    /// to a peer or a client, so the node derives `max` from its frame
    /// limit.
    #[must_use]
    pub fn with_state_bytes_hard_max(mut self, max: usize) -> Self {
        self.state_bytes_hard_max = max;
        self.hints.state_bytes_max = max;
        self
    }

    /// The hard bound on one key's state.
    pub fn state_bytes_hard_max(&self) -> usize {
        self.state_bytes_hard_max
    }

    /// This replica's node id: where requests for it are sent.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The actor of the dots this replica issues: its node id unless set by
    /// [`with_actor`](Self::with_actor).
    pub fn actor(&self) -> NodeId {
        self.actor
    }

    /// Counters of merges that went beyond the client write path's bounds.
    pub fn merge_stats(&self) -> MergeStats {
        MergeStats {
            over_siblings_total: self.merges_over_siblings_total.load(Ordering::Relaxed),
            over_bytes_total: self.merges_over_bytes_total.load(Ordering::Relaxed),
            refused_total: self.merges_refused_total.load(Ordering::Relaxed),
        }
    }

    /// The hints this node keeps for others.
    pub fn hints(&self) -> &HintStore {
        &self.hints
    }

    /// The stored state of `key` (empty if none).
    pub fn read(&self, key: &[u8]) -> Result<SiblingSet, ReplicaFailure> {
        match self.storage.get(key)? {
            Some(r) => Ok(decode_record(&r)?),
            None => Ok(SiblingSet::new()),
        }
    }

    /// The stored state of `key` merged with any hints held for it, so a
    /// stand-in answers a sloppy read with what it keeps for others. When
    /// the two together would not fit a frame, the stored state alone: the
    /// hints still reach their owners by handoff.
    fn read_with_hints(&self, key: &[u8]) -> Result<SiblingSet, ReplicaFailure> {
        let set = self.read(key)?;
        if let Some(hinted) = self.hints.find(key)? {
            let mut with_hints = set.clone();
            with_hints.merge(&hinted);
            if with_hints.size_bytes() <= self.state_bytes_hard_max {
                return Ok(with_hints);
            }
        }
        Ok(set)
    }

    fn stripe(&self, key: &[u8]) -> MutexGuard<'_, ()> {
        let i = (fnv1a(key) % self.stripes.len() as u64) as usize;
        // The guarded data is `()`; a panic elsewhere cannot corrupt it.
        self.stripes[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies a client write, refusing (before anything is stored) one
    /// that would leave the key above `max_siblings` or `state_bytes_max`.
    /// A write that does not grow an over-bound key (one that supersedes
    /// siblings a merge left there) is let through, so a key made too big
    /// by merges can always be resolved.
    fn write(
        &self,
        key: Bytes,
        context: &WriteContext,
        value: Option<Bytes>,
        max_siblings: usize,
        state_bytes_max: usize,
    ) -> Result<(SiblingSet, Dot), ReplicaFailure> {
        let _guard = self.stripe(&key);
        let mut set = self.read(&key)?;
        let (count_before, bytes_before) = (set.siblings().len(), set.size_bytes());
        let dot = set
            .update(context, self.actor, value)
            .map_err(|e| ReplicaFailure::DotsExhausted { actor: e.actor })?;
        let count = set.siblings().len();
        if count > max_siblings && count >= count_before {
            return Err(ReplicaFailure::TooManySiblings {
                count,
                max: max_siblings,
            });
        }
        let bytes = set.size_bytes();
        if bytes > state_bytes_max && bytes >= bytes_before {
            return Err(ReplicaFailure::StateTooLarge {
                bytes,
                max: state_bytes_max,
            });
        }
        self.storage.put(key, encode_record(&set)?)?;
        Ok((set, dot))
    }

    /// Merges a state from elsewhere; refuses only growth past the hard
    /// bound (see the type doc). A replica does not know the cluster's
    /// configured client bounds, so the over-bound counters compare against
    /// the defaults ([`DEFAULT_MAX_SIBLINGS`], [`DEFAULT_STATE_BYTES_MAX`]).
    fn merge(&self, key: Bytes, incoming: &SiblingSet) -> Result<(), ReplicaFailure> {
        let _guard = self.stripe(&key);
        let mut set = self.read(&key)?;
        if set.covers(incoming) {
            return Ok(());
        }
        let bytes_before = set.size_bytes();
        set.merge(incoming);
        let bytes = set.size_bytes();
        if bytes > self.state_bytes_hard_max && bytes > bytes_before {
            self.merges_refused_total.fetch_add(1, Ordering::Relaxed);
            return Err(ReplicaFailure::StateTooLarge {
                bytes,
                max: self.state_bytes_hard_max,
            });
        }
        if set.siblings().len() > DEFAULT_MAX_SIBLINGS {
            self.merges_over_siblings_total
                .fetch_add(1, Ordering::Relaxed);
        }
        if set.size_bytes() > DEFAULT_STATE_BYTES_MAX {
            self.merges_over_bytes_total.fetch_add(1, Ordering::Relaxed);
        }
        self.storage.put(key, encode_record(&set)?)?;
        Ok(())
    }

    /// Handles one request against local storage. Synchronous: the storage
    /// seam is, and holding a stripe lock across an await is what we avoid.
    pub fn handle(&self, req: ReplicaRequest) -> ReplicaResponse {
        let result = match req {
            ReplicaRequest::Get { key } => self
                .read_with_hints(&key)
                .map(|set| ReplicaResponse::Found { set }),
            ReplicaRequest::Write {
                key,
                context,
                value,
                max_siblings,
                state_bytes_max,
            } => self
                .write(
                    key,
                    &context,
                    value,
                    max_siblings as usize,
                    state_bytes_max as usize,
                )
                .map(|(set, dot)| ReplicaResponse::Written { set, dot }),
            ReplicaRequest::Replicate { key, set } => {
                self.merge(key, &set).map(|()| ReplicaResponse::Ack)
            }
            ReplicaRequest::ReplicateHinted {
                key,
                set,
                intended_owner,
            } => self
                .hints
                .add(intended_owner, &key, &set)
                .map(|()| ReplicaResponse::Ack),
        };
        result.unwrap_or_else(ReplicaResponse::Failed)
    }
}
