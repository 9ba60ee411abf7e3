//! The block cache: verified SSTable data blocks, bounded in bytes.
//!
//! Sharded by key so that concurrent readers rarely share a lock; each
//! shard evicts with CLOCK (a second chance for blocks read since the hand
//! last passed), which is cheaper than LRU on hits: a hit only sets a flag.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;

use bytes::Bytes;

const SHARDS: usize = 16;

/// A block's identity: the table id and the block's offset in its file.
pub(crate) type BlockKey = (u64, u64);

/// Hashes the two integers of a `BlockKey` with one multiply; the ids are
/// not attacker-controlled, so no SipHash is needed.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type Map = HashMap<BlockKey, (Bytes, bool), BuildHasherDefault<IdHasher>>;

#[derive(Default)]
struct Shard {
    map: Map,
    clock: VecDeque<BlockKey>,
    bytes: usize,
}

/// A bounded cache of blocks.
pub(crate) struct BlockCache {
    shards: Vec<Mutex<Shard>>,
    shard_bytes_max: usize,
}

impl std::fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCache")
            .field("bytes_max", &(self.shard_bytes_max * SHARDS))
            .finish()
    }
}

impl BlockCache {
    /// A cache holding at most about `bytes_max` bytes of blocks.
    pub(crate) fn new(bytes_max: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            shard_bytes_max: bytes_max / SHARDS,
        }
    }

    fn shard(&self, key: BlockKey) -> &Mutex<Shard> {
        let mut h = IdHasher::default();
        h.write_u64(key.0);
        h.write_u64(key.1);
        &self.shards[(h.finish() >> 59) as usize % SHARDS]
    }

    pub(crate) fn get(&self, key: BlockKey) -> Option<Bytes> {
        let mut s = self.shard(key).lock().unwrap_or_else(|e| e.into_inner());
        let slot = s.map.get_mut(&key)?;
        slot.1 = true;
        Some(slot.0.clone())
    }

    pub(crate) fn insert(&self, key: BlockKey, block: Bytes) {
        if block.len() > self.shard_bytes_max {
            return;
        }
        let mut guard = self.shard(key).lock().unwrap_or_else(|e| e.into_inner());
        let s = &mut *guard;
        if s.map.contains_key(&key) {
            return;
        }
        s.bytes += block.len();
        s.map.insert(key, (block, false));
        s.clock.push_back(key);
        while s.bytes > self.shard_bytes_max {
            let Some(k) = s.clock.pop_front() else { break };
            match s.map.get_mut(&k) {
                Some(slot) if slot.1 => {
                    slot.1 = false;
                    s.clock.push_back(k);
                }
                Some(_) => {
                    if let Some((b, _)) = s.map.remove(&k) {
                        s.bytes -= b.len();
                    }
                }
                None => {}
            }
        }
    }

    /// Bytes currently held.
    pub(crate) fn bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).bytes)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_within_budget_and_keeps_hot_blocks() {
        let c = BlockCache::new(SHARDS * 1000);
        for i in 0..1000u64 {
            c.insert((1, i), Bytes::from(vec![0u8; 100]));
            // Block 0 is read after every insert, so CLOCK keeps it.
            let _ = c.get((1, 0));
        }
        assert!(c.bytes() <= SHARDS * 1000, "{}", c.bytes());
        assert!(c.get((1, 0)).is_some());
        assert!(c.get((1, 1)).is_none() || c.get((1, 2)).is_none());
    }
}
