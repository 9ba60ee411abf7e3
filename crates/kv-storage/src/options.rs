//! `Options` and `Durability`: every limit of the engine, with its default.

use std::time::Duration;

use crate::error::LsmError;

/// When an acknowledged write reaches stable storage.
///
/// The default is [`Durability::Sync`]: the first promise of this engine is
/// never to lose an acknowledged write, so a node that wants to trade that
/// for speed must say so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `put` returns only after its WAL record is on disk (`fdatasync`).
    /// Concurrent writers share one `fdatasync` (group commit). Nothing
    /// acknowledged is lost, not even to a power cut.
    #[default]
    Sync,
    /// `put` returns once its WAL record is written to the file (in the
    /// kernel's page cache); a background thread `fdatasync`s the WAL every
    /// interval. A process crash (kill -9, panic, OOM kill) loses nothing; a
    /// machine crash or power cut loses at most about one interval of
    /// acknowledged writes. Concurrent writers share one `write` call.
    Periodic(Duration),
    /// As `Periodic` without the background `fdatasync`: `put` returns once
    /// its record is written to the file, and the WAL reaches disk only at
    /// memtable rotation, on [`sync`](kv_types::Storage::sync) and on close.
    /// A process crash loses nothing; a machine crash or power cut loses
    /// what the kernel had not yet written back on its own (by default
    /// Linux writes dirty pages back within about 30 s).
    None,
}

/// Largest key accepted, in bytes.
pub const KEY_LEN_MAX: usize = 64 * 1024;
/// Largest metadata accepted, in bytes.
pub const META_LEN_MAX: usize = 64 * 1024;
/// Largest value accepted, in bytes.
pub const VALUE_LEN_MAX: usize = 16 * 1024 * 1024;

/// Configuration of an [`LsmStorage`](crate::LsmStorage).
///
/// Memory is bounded by `memtable_bytes * (1 + immutable_memtables_max)` for
/// memtables, plus up to `memtable_bytes` of arena chunks kept from flushed
/// memtables for the next ones, plus `block_cache_bytes` for cached blocks, plus the in-memory
/// index and Bloom filter of each table (about 1.3 bytes per key at the
/// default false-positive rate, and one index entry per block).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// When acknowledged writes reach disk. Default: [`Durability::Sync`].
    pub durability: Durability,
    /// Size at which the active memtable becomes immutable and is flushed.
    /// Default: 64 MiB.
    pub memtable_bytes: usize,
    /// Immutable memtables waiting for their flush before writers stall.
    /// Default: 1.
    pub immutable_memtables_max: usize,
    /// Budget of the block cache. Default: 32 MiB.
    pub block_cache_bytes: usize,
    /// Target size of an SSTable data block. Default: 4 KiB.
    pub block_bytes: usize,
    /// Bloom filter false-positive rate. Default: 0.01.
    pub bloom_false_positive_rate: f64,
    /// Tables of one size tier merged together (size-tiered compaction).
    /// Default: 4.
    pub tier_fanout: usize,
    /// Table count above which the newest tables are merged whatever their
    /// sizes, which bounds read amplification. Default: 24.
    pub tables_max: usize,
    /// Whether background compaction runs. Default: true.
    pub background_compaction: bool,
    /// Whether a compaction that reaches the oldest table drops tombstones
    /// with empty metadata whatever the watermark. Such a tombstone carries
    /// nothing; at the bottom it shadows nothing either. For stores whose
    /// deletes need no record once applied, like a node's hint store, whose
    /// delivered hints would otherwise leave a marker each for good.
    /// Default: false (tombstones wait for the watermark).
    pub drop_bare_tombstones: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            durability: Durability::Sync,
            memtable_bytes: 64 * 1024 * 1024,
            immutable_memtables_max: 1,
            block_cache_bytes: 32 * 1024 * 1024,
            block_bytes: 4 * 1024,
            bloom_false_positive_rate: 0.01,
            tier_fanout: 4,
            tables_max: 24,
            background_compaction: true,
            drop_bare_tombstones: false,
        }
    }
}

impl Options {
    /// These options with `durability`.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// These options with a memtable of `bytes`.
    pub fn memtable_bytes(mut self, bytes: usize) -> Self {
        self.memtable_bytes = bytes;
        self
    }

    /// These options with a block cache of `bytes`.
    pub fn block_cache_bytes(mut self, bytes: usize) -> Self {
        self.block_cache_bytes = bytes;
        self
    }

    /// These options with data blocks of about `bytes`.
    pub fn block_bytes(mut self, bytes: usize) -> Self {
        self.block_bytes = bytes;
        self
    }

    /// These options with background compaction on or off.
    pub fn background_compaction(mut self, on: bool) -> Self {
        self.background_compaction = on;
        self
    }

    /// These options with bare tombstones dropped at the bottom or not
    /// (see [`Options::drop_bare_tombstones`]).
    pub fn drop_bare_tombstones(mut self, on: bool) -> Self {
        self.drop_bare_tombstones = on;
        self
    }

    /// Bytes a new WAL segment is preallocated with: about what one
    /// memtable's records take, at most 64 MiB.
    pub(crate) fn wal_preallocate_bytes(&self) -> u64 {
        self.memtable_bytes.min(64 << 20) as u64
    }

    pub(crate) fn validate(&self) -> Result<(), LsmError> {
        let bad = |name, detail: &str| {
            Err(LsmError::InvalidOption {
                name,
                detail: detail.to_owned(),
            })
        };
        if self.memtable_bytes < 4096 {
            return bad("memtable_bytes", "must be at least 4096");
        }
        if self.immutable_memtables_max == 0 {
            return bad("immutable_memtables_max", "must be at least 1");
        }
        if !(256..=1 << 20).contains(&self.block_bytes) {
            return bad("block_bytes", "must be between 256 B and 1 MiB");
        }
        if !(self.bloom_false_positive_rate > 0.0 && self.bloom_false_positive_rate < 1.0) {
            return bad("bloom_false_positive_rate", "must be in (0, 1)");
        }
        if self.tier_fanout < 2 {
            return bad("tier_fanout", "must be at least 2");
        }
        if self.tables_max < self.tier_fanout {
            return bad("tables_max", "must be at least tier_fanout");
        }
        if let Durability::Periodic(d) = self.durability
            && d.is_zero()
        {
            return bad("durability", "a periodic interval must be positive");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_limits_are_checked() {
        Options::default().validate().unwrap();
        assert!(Options::default().memtable_bytes(10).validate().is_err());
        assert!(Options::default().block_bytes(10).validate().is_err());
        let o = Options {
            tier_fanout: 1,
            ..Options::default()
        };
        assert!(o.validate().is_err());
        let o = Options::default().durability(Durability::Periodic(Duration::ZERO));
        assert!(o.validate().is_err());
        assert_eq!(Options::default().durability, Durability::Sync);
    }
}
