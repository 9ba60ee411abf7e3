//! `LsmStorage`: the engine that ties WAL, memtables, tables, manifest and
//! the background worker together.
//!
//! Writes go through a leader/follower queue (group commit): a writer
//! enqueues its record; if no leader is active it becomes the leader, takes
//! every queued record, appends them to the WAL and writes them to the file
//! in one `write` call, makes them durable as the configured [`Durability`]
//! asks (one `fdatasync` for the whole batch under `Sync`), applies them to
//! the memtable, and wakes the followers. A write becomes visible to readers
//! only once it is as durable as promised, and in every mode only once it
//! is in the kernel, so that a process crash loses nothing acknowledged.
//!
//! Readers take a snapshot of the current [`Version`] (an `Arc` swap under a
//! short read lock) and never block writers or the background worker.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use kv_types::{Key, KeyRange, Record, RecordIter, Storage, StorageError};

use crate::cache::BlockCache;
use crate::codec::Entry;
use crate::error::LsmError;
use crate::manifest::{self, Manifest};
use crate::memtable::{ChunkPool, MemTable};
use crate::merge::{MemIter, MergeIter, Source};
use crate::options::{Durability, KEY_LEN_MAX, META_LEN_MAX, Options, VALUE_LEN_MAX};
use crate::sstable::{self, Table, TableIter, TableWriter};
use crate::wal::{self, WalWriter};

/// Entries merged between two checks of the shutdown flag during a
/// compaction, so that `close` does not wait for a whole compaction.
const SHUTDOWN_CHECK_ENTRIES: u64 = 4096;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every guarded state here is updated by whole assignments, so a panic
    // in another thread cannot leave it half-written.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What readers see: memtables and tables, newest first.
#[derive(Debug, Clone)]
struct Version {
    active: Arc<MemTable>,
    immutables: Vec<Arc<MemTable>>,
    tables: Vec<Arc<Table>>,
}

#[derive(Debug, Default)]
struct Queue {
    pending: Vec<(Key, Record)>,
    /// The drained vector of the last batch, kept for its capacity.
    spare: Vec<(Key, Record)>,
    /// Writers blocked on `queue_cv`; a leader with none to wake skips the
    /// notify (a syscall).
    waiting: usize,
    enqueued: u64,
    completed: u64,
    leader: bool,
    /// Tickets of the batch whose commit failed, and why.
    failed: Option<(u64, u64, String)>,
    /// Set when the engine refuses further writes: closed, or failed.
    stopped: Option<String>,
}

#[derive(Debug, Default)]
struct Bg {
    /// An immutable memtable waits for the flusher.
    flush_work: bool,
    /// Tables changed: the compactor should look at them.
    compact_work: bool,
    shutdown: bool,
    error: Option<String>,
}

#[derive(Debug, Default)]
struct Counters {
    wal_bytes: AtomicU64,
    table_bytes: AtomicU64,
    manifest_bytes: AtomicU64,
    wal_syncs: AtomicU64,
    flushes: AtomicU64,
    compactions: AtomicU64,
}

/// Figures about an engine, for monitoring and benchmarks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Sequence number of the last accepted write.
    pub sequence: u64,
    /// Live tables.
    pub tables: usize,
    /// Bytes of live tables on disk.
    pub table_bytes: u64,
    /// Entries in live tables, shadowed versions and tombstones included.
    pub table_entries: u64,
    /// Bytes charged to the active and immutable memtables.
    pub memtable_bytes: usize,
    /// Immutable memtables waiting for their flush.
    pub immutable_memtables: usize,
    /// Bytes held by the block cache.
    pub block_cache_bytes: usize,
    /// Bytes of table indexes and Bloom filters held in memory.
    pub index_filter_bytes: usize,
    /// Bytes written to WAL segments since open.
    pub wal_bytes_written: u64,
    /// Bytes written to tables (flushes and compactions) since open.
    pub table_bytes_written: u64,
    /// Bytes written to the manifest since open.
    pub manifest_bytes_written: u64,
    /// `fdatasync`s of the WAL since open; under `Sync`, fewer than writes
    /// when group commit shares them.
    pub wal_syncs: u64,
    /// Memtable flushes since open.
    pub flushes: u64,
    /// Compactions since open.
    pub compactions: u64,
}

impl Stats {
    /// Every byte the engine wrote since open.
    pub fn bytes_written(&self) -> u64 {
        self.wal_bytes_written + self.table_bytes_written + self.manifest_bytes_written
    }
}

/// The WAL segment being written and the memtable its records go to; they
/// change together, under one lock, at rotation.
struct WalState {
    writer: WalWriter,
    active: Arc<MemTable>,
}

struct Inner {
    dir: PathBuf,
    opts: Options,
    cache: Arc<BlockCache>,
    /// Arena chunks of flushed memtables, for the next ones.
    chunks: Arc<ChunkPool>,
    version: RwLock<Arc<Version>>,
    queue: Mutex<Queue>,
    queue_cv: Condvar,
    wal: Mutex<WalState>,
    last_seq: AtomicU64,
    next_file_id: AtomicU64,
    bg: Mutex<Bg>,
    bg_cv: Condvar,
    shutdown: AtomicBool,
    syncer: (Mutex<bool>, Condvar),
    manifest: Mutex<Manifest>,
    compaction: Mutex<()>,
    tombstone_watermark: AtomicU64,
    counters: Counters,
}

/// A log-structured merge engine in one directory; see the crate docs.
///
/// `Send + Sync`: share it as `Arc<LsmStorage>` or `Arc<dyn Storage>`. Reads
/// run concurrently with writes, flushes and compactions. Dropping it closes
/// it (see [`LsmStorage::close`]).
pub struct LsmStorage {
    inner: Arc<Inner>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Held while this engine lives: two engines appending to one WAL
    /// would corrupt it.
    _lock: DirLock,
}

impl std::fmt::Debug for LsmStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LsmStorage")
            .field("dir", &self.inner.dir)
            .field("durability", &self.inner.opts.durability)
            .finish_non_exhaustive()
    }
}

/// A file of ours in the database directory.
enum FileKind {
    Wal(u64),
    Table(u64),
    ManifestTmp,
}

fn classify(name: &str) -> Option<FileKind> {
    if name == manifest::TMP_NAME {
        return Some(FileKind::ManifestTmp);
    }
    let (stem, ext) = name.split_once('.')?;
    if stem.is_empty() || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let id = stem.parse().ok()?;
    match ext {
        "wal" => Some(FileKind::Wal(id)),
        "sst" => Some(FileKind::Table(id)),
        _ => None,
    }
}

/// An exclusive lock on a directory: an advisory `flock` on its `LOCK`
/// file, held while this value lives. The kernel drops it when the process
/// dies, so a crash leaves no stale lock behind. Every [`LsmStorage`] holds
/// one on its directory; a program can take one on a directory of its own.
#[derive(Debug)]
pub struct DirLock {
    /// Held only for the lock it carries.
    _file: std::fs::File,
}

impl DirLock {
    /// Name of the locked file inside the directory.
    pub const FILE_NAME: &str = "LOCK";

    /// Locks `dir`, or fails with [`LsmError::Locked`] if another holder
    /// (in this process or another) has it.
    pub fn acquire(dir: &Path) -> Result<Self, LsmError> {
        let path = dir.join(Self::FILE_NAME);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| LsmError::io("open", &path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(LsmError::Locked {
                dir: dir.to_owned(),
            }),
            Err(std::fs::TryLockError::Error(e)) => Err(LsmError::io("lock", &path, e)),
        }
    }
}

fn remove(path: &Path) -> Result<(), LsmError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LsmError::io("remove", path, e)),
    }
}

/// Writes table `id` with what `fill` adds (sorted, one entry per key);
/// `None` if it added nothing (no file is left behind).
fn write_table(
    dir: &Path,
    id: u64,
    opts: &Options,
    fill: impl FnOnce(&mut TableWriter) -> Result<(), LsmError>,
) -> Result<Option<(Table, u64)>, LsmError> {
    let path = dir.join(sstable::table_name(id));
    let mut w = TableWriter::create(&path, opts.block_bytes, opts.bloom_false_positive_rate)?;
    if let Err(e) = fill(&mut w) {
        drop(w);
        remove(&path)?;
        return Err(e);
    }
    if w.entries() == 0 {
        drop(w);
        remove(&path)?;
        return Ok(None);
    }
    let len = w.finish()?;
    Ok(Some((Table::open(id, &path)?, len)))
}

impl LsmStorage {
    /// Opens (or creates) the database in `dir`.
    ///
    /// Recovery: tables named by the manifest are opened and checked
    /// (footer, index, filter); files no manifest names are removed; WAL
    /// segments not yet flushed are replayed in order and flushed to a table.
    /// A torn tail on the last segment is cut off and logged; any other
    /// damage is an error.
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<Self, LsmError> {
        opts.validate()?;
        let dir = dir.as_ref().to_owned();
        std::fs::create_dir_all(&dir).map_err(|e| LsmError::io("create directory", &dir, e))?;
        let lock = DirLock::acquire(&dir)?;
        let mut m = Manifest::load(&dir)?.unwrap_or(Manifest {
            next_file_id: 1,
            ..Manifest::default()
        });
        let mut tables = Vec::with_capacity(m.tables.len());
        let mut last_seq = m.last_seq;
        for id in &m.tables {
            let t = Table::open(*id, &dir.join(sstable::table_name(*id)))?;
            last_seq = last_seq.max(t.max_seq());
            tables.push(Arc::new(t));
        }
        let mut segments = Vec::new();
        let mut max_id = 0;
        let listing =
            std::fs::read_dir(&dir).map_err(|e| LsmError::io("list directory", &dir, e))?;
        for ent in listing {
            let ent = ent.map_err(|e| LsmError::io("list directory", &dir, e))?;
            let name = ent.file_name();
            let Some(kind) = name.to_str().and_then(classify) else {
                continue;
            };
            let path = ent.path();
            match kind {
                FileKind::Wal(id) if id >= m.wal_floor => {
                    max_id = max_id.max(id);
                    segments.push(id);
                }
                FileKind::Table(id) if m.tables.contains(&id) => max_id = max_id.max(id),
                FileKind::Wal(_) | FileKind::Table(_) | FileKind::ManifestTmp => {
                    tracing::info!(file = %path.display(), "removing a file no manifest names");
                    remove(&path)?;
                }
            }
        }
        segments.sort_unstable();
        let next_file_id = AtomicU64::new(m.next_file_id.max(max_id + 1));
        let counters = Counters::default();

        // Replay: every unflushed write goes to a table now, so that the
        // new WAL starts empty and the old segments can go.
        let chunks = ChunkPool::new(opts.memtable_bytes);
        let new_memtable =
            |wal_id| MemTable::with_pool(wal_id, opts.memtable_bytes, chunks.clone());
        let mut mem = new_memtable(0);
        for (i, seg) in segments.iter().enumerate() {
            let path = dir.join(wal::segment_name(*seg));
            let replay = wal::replay(&path, |e| {
                last_seq = last_seq.max(e.seq);
                mem.apply([e]);
                if mem.bytes() >= opts.memtable_bytes {
                    let full = std::mem::replace(&mut mem, new_memtable(0));
                    let id = next_file_id.fetch_add(1, Ordering::Relaxed);
                    if let Some((t, len)) = write_table(&dir, id, &opts, |w| full.write_to(w))? {
                        counters.table_bytes.fetch_add(len, Ordering::Relaxed);
                        tables.insert(0, Arc::new(t));
                    }
                }
                Ok(())
            })?;
            if let Some(at) = replay.torn_at {
                if i + 1 != segments.len() {
                    return Err(LsmError::corrupt(
                        &path,
                        at,
                        "a record is cut short in a WAL segment that is not the last",
                    ));
                }
                tracing::warn!(
                    file = %path.display(),
                    offset = at,
                    bytes_cut = replay.file_len - at,
                    records = replay.records,
                    "WAL ends in a torn record (a write that was never acknowledged); cutting it off"
                );
            }
        }
        if !mem.is_empty() {
            let id = next_file_id.fetch_add(1, Ordering::Relaxed);
            if let Some((t, len)) = write_table(&dir, id, &opts, |w| mem.write_to(w))? {
                counters.table_bytes.fetch_add(len, Ordering::Relaxed);
                tables.insert(0, Arc::new(t));
            }
        }
        let wal_id = next_file_id.fetch_add(1, Ordering::Relaxed);
        let wal = WalWriter::create(&dir, wal_id, opts.wal_preallocate_bytes())?;
        manifest::sync_dir(&dir)?;
        m = Manifest {
            next_file_id: next_file_id.load(Ordering::Relaxed),
            wal_floor: wal_id,
            last_seq,
            tables: tables.iter().map(|t| t.id()).collect(),
        };
        counters
            .manifest_bytes
            .fetch_add(m.store(&dir)?, Ordering::Relaxed);
        for seg in &segments {
            remove(&dir.join(wal::segment_name(*seg)))?;
        }

        // The replayed memtable's chunks go back to the pool for the new one.
        drop(mem);
        let active = Arc::new(new_memtable(wal_id));
        let inner = Arc::new(Inner {
            cache: Arc::new(BlockCache::new(opts.block_cache_bytes)),
            chunks,
            version: RwLock::new(Arc::new(Version {
                active: active.clone(),
                immutables: Vec::new(),
                tables,
            })),
            queue: Mutex::new(Queue::default()),
            queue_cv: Condvar::new(),
            wal: Mutex::new(WalState {
                writer: wal,
                active,
            }),
            last_seq: AtomicU64::new(last_seq),
            next_file_id,
            bg: Mutex::new(Bg {
                flush_work: true,
                compact_work: true,
                ..Bg::default()
            }),
            bg_cv: Condvar::new(),
            shutdown: AtomicBool::new(false),
            syncer: (Mutex::new(false), Condvar::new()),
            manifest: Mutex::new(m),
            compaction: Mutex::new(()),
            tombstone_watermark: AtomicU64::new(0),
            counters,
            dir,
            opts,
        });
        // Flushes and compactions run on two threads, so that a long
        // compaction never holds back the flush that unblocks writers.
        let mut threads = Vec::new();
        let f = inner.clone();
        threads.push(
            std::thread::Builder::new()
                .name("kv-storage-flush".into())
                .spawn(move || f.flusher())
                .map_err(|e| LsmError::io("spawn flush thread", &inner.dir, e))?,
        );
        let c = inner.clone();
        threads.push(
            std::thread::Builder::new()
                .name("kv-storage-compact".into())
                .spawn(move || c.compactor())
                .map_err(|e| LsmError::io("spawn compaction thread", &inner.dir, e))?,
        );
        if let Durability::Periodic(every) = inner.opts.durability {
            let s = inner.clone();
            threads.push(
                std::thread::Builder::new()
                    .name("kv-storage-syncer".into())
                    .spawn(move || s.syncer(every))
                    .map_err(|e| LsmError::io("spawn syncer thread", &inner.dir, e))?,
            );
        }
        Ok(Self {
            inner,
            threads: Mutex::new(threads),
            _lock: lock,
        })
    }

    /// The record stored for `key`, tombstones included.
    pub fn get(&self, key: &[u8]) -> Result<Option<Record>, LsmError> {
        Ok(self.inner.get(key)?.map(|(_, r)| r))
    }

    /// Stores `record` under `key`, durable as the configured durability
    /// promises when this returns.
    pub fn put(&self, key: impl Into<Key>, record: Record) -> Result<(), LsmError> {
        self.inner.write(key.into(), record)
    }

    /// Stores a tombstone carrying `meta` under `key`.
    pub fn delete(&self, key: impl Into<Key>, meta: impl Into<Bytes>) -> Result<(), LsmError> {
        self.inner.write(key.into(), Record::tombstone(meta))
    }

    /// The records in `range`, in key order, tombstones included.
    ///
    /// Tables are read as of the call; memtables are read in chunks as the
    /// iterator advances, so a write made during the scan may or may not be
    /// seen. Each key appears once, in its newest version.
    pub fn scan(
        &self,
        range: KeyRange,
    ) -> impl Iterator<Item = Result<(Key, Record), LsmError>> + Send + 'static {
        self.inner.scan(range).map(|r| r.map(|e| (e.key, e.record)))
    }

    /// Makes every accepted write durable, whatever the durability.
    pub fn sync(&self) -> Result<(), LsmError> {
        self.inner.sync_wal(&mut lock(&self.inner.wal).writer)
    }

    /// Turns the active memtable into a table now, and waits until every
    /// immutable memtable is flushed.
    pub fn flush(&self) -> Result<(), LsmError> {
        self.inner.check_running()?;
        {
            let mut wal = lock(&self.inner.wal);
            if !wal.active.is_empty() {
                self.inner.rotate(&mut wal)?;
            }
        }
        let mut bg = lock(&self.inner.bg);
        loop {
            if let Some(e) = &bg.error {
                return Err(LsmError::Closed {
                    reason: Some(e.clone()),
                });
            }
            if self.inner.version().immutables.is_empty() {
                return Ok(());
            }
            if bg.shutdown {
                return Err(LsmError::Closed { reason: None });
            }
            bg = self.inner.bg_cv.wait(bg).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Flushes, then merges every table into one. Tombstones written at a
    /// sequence number at or below `tombstone_watermark` are dropped (see
    /// [`LsmStorage::sequence`]); pass 0 to keep them all.
    pub fn compact(&self, tombstone_watermark: u64) -> Result<(), LsmError> {
        self.flush()?;
        self.inner.compact_all(tombstone_watermark)
    }

    /// Flushes, then runs in the caller's thread every compaction the
    /// size-tiered policy wants now, so that the engine is quiet when this
    /// returns (for benchmarks and tests that measure a settled engine).
    pub fn settle(&self) -> Result<(), LsmError> {
        self.flush()?;
        while self.inner.compact_once()? {}
        Ok(())
    }

    /// Lets background compactions drop tombstones written at or below
    /// `seq`. Only the cluster knows when a delete is safe to forget, so
    /// the default is 0: tombstones are kept.
    pub fn set_tombstone_watermark(&self, seq: u64) {
        self.inner.tombstone_watermark.store(seq, Ordering::Relaxed);
    }

    /// Sequence number of the last accepted write. A caller that wants to
    /// forget deletes later records it now and passes it as a watermark once
    /// every replica has seen them.
    pub fn sequence(&self) -> u64 {
        self.inner.last_seq.load(Ordering::Acquire)
    }

    /// Figures about the engine.
    pub fn stats(&self) -> Stats {
        let v = self.inner.version();
        let c = &self.inner.counters;
        Stats {
            sequence: self.sequence(),
            tables: v.tables.len(),
            table_bytes: v.tables.iter().map(|t| t.file_len()).sum(),
            table_entries: v.tables.iter().map(|t| t.entries()).sum(),
            memtable_bytes: v.active.bytes()
                + v.immutables.iter().map(|m| m.bytes()).sum::<usize>(),
            immutable_memtables: v.immutables.len(),
            block_cache_bytes: self.inner.cache.bytes(),
            index_filter_bytes: v.tables.iter().map(|t| t.memory_bytes()).sum(),
            wal_bytes_written: c.wal_bytes.load(Ordering::Relaxed),
            table_bytes_written: c.table_bytes.load(Ordering::Relaxed),
            manifest_bytes_written: c.manifest_bytes.load(Ordering::Relaxed),
            wal_syncs: c.wal_syncs.load(Ordering::Relaxed),
            flushes: c.flushes.load(Ordering::Relaxed),
            compactions: c.compactions.load(Ordering::Relaxed),
        }
    }

    /// Refuses further writes, waits for the write in progress, stops the
    /// background threads and makes the WAL durable. Unflushed memtables
    /// stay in the WAL and are replayed at the next open. Idempotent.
    pub fn close(&self) -> Result<(), LsmError> {
        {
            let mut q = lock(&self.inner.queue);
            if q.stopped.is_none() {
                q.stopped = Some("closed".into());
            }
            while q.leader {
                q = self
                    .inner
                    .queue_cv
                    .wait(q)
                    .unwrap_or_else(|e| e.into_inner());
            }
        }
        self.inner.shutdown.store(true, Ordering::Relaxed);
        lock(&self.inner.bg).shutdown = true;
        self.inner.bg_cv.notify_all();
        *lock(&self.inner.syncer.0) = true;
        self.inner.syncer.1.notify_all();
        let threads = std::mem::take(&mut *lock(&self.threads));
        for t in threads {
            // A worker that panicked has nothing left to clean up; its
            // error, if any, is already recorded.
            let _ = t.join();
        }
        self.sync()
    }
}

impl Drop for LsmStorage {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::error!(dir = %self.inner.dir.display(), error = %e, "closing storage failed");
        }
    }
}

impl Storage for LsmStorage {
    fn get(&self, key: &[u8]) -> Result<Option<Record>, StorageError> {
        Ok(LsmStorage::get(self, key)?)
    }

    fn put(&self, key: Key, record: Record) -> Result<(), StorageError> {
        Ok(LsmStorage::put(self, key, record)?)
    }

    fn range(&self, range: KeyRange) -> Result<RecordIter<'_>, StorageError> {
        Ok(Box::new(
            self.scan(range).map(|r| r.map_err(StorageError::from)),
        ))
    }

    fn sync(&self) -> Result<(), StorageError> {
        Ok(LsmStorage::sync(self)?)
    }
}

impl Inner {
    fn version(&self) -> Arc<Version> {
        self.version
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_version(&self, f: impl FnOnce(&mut Version)) {
        let mut v = self.version.write().unwrap_or_else(|e| e.into_inner());
        let mut next = (**v).clone();
        f(&mut next);
        *v = Arc::new(next);
    }

    /// Writes out and `fdatasync`s the WAL, counting both.
    fn sync_wal(&self, w: &mut WalWriter) -> Result<(), LsmError> {
        let n = w.sync()?;
        self.counters.wal_bytes.fetch_add(n, Ordering::Relaxed);
        self.counters.wal_syncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The periodic sync: writes the WAL buffer out under the WAL lock, then
    /// `fdatasync`s with the lock released, so writers never wait for the
    /// disk. (Holding the lock across the sync stalled every write for the
    /// length of an `fdatasync` once per interval.)
    fn sync_wal_unlocked(&self) -> Result<(), LsmError> {
        let (n, file, path) = lock(&self.wal).writer.write_for_sync()?;
        file.sync_data()
            .map_err(|e| LsmError::io("fdatasync WAL segment", &path, e))?;
        self.counters.wal_bytes.fetch_add(n, Ordering::Relaxed);
        self.counters.wal_syncs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn check_running(&self) -> Result<(), LsmError> {
        match &lock(&self.queue).stopped {
            Some(r) => Err(LsmError::Closed {
                reason: Some(r.clone()),
            }),
            None => Ok(()),
        }
    }

    fn get(&self, key: &[u8]) -> Result<Option<(u64, Record)>, LsmError> {
        let v = self.version();
        if let Some(r) = v.active.get(key) {
            return Ok(Some(r));
        }
        for m in &v.immutables {
            if let Some(r) = m.get(key) {
                return Ok(Some(r));
            }
        }
        if v.tables.is_empty() {
            return Ok(None);
        }
        let hash = sstable::bloom_hash(key);
        for t in &v.tables {
            if t.may_contain(key, hash)
                && let Some(r) = t.get(key, &self.cache)?
            {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    fn scan(&self, range: KeyRange) -> MergeIter {
        let v = self.version();
        let mut sources: Vec<Source> = Vec::new();
        for m in std::iter::once(&v.active).chain(&v.immutables) {
            sources.push(Box::new(MemIter::new(
                m.clone(),
                range.start.clone(),
                range.end.clone(),
            )));
        }
        for t in v
            .tables
            .iter()
            .filter(|t| t.overlaps(&range.start, &range.end))
        {
            sources.push(Box::new(TableIter::new(
                t.clone(),
                self.cache.clone(),
                &range.start,
            )));
        }
        MergeIter::new(sources, range.end)
    }

    fn write(&self, key: Key, record: Record) -> Result<(), LsmError> {
        let too_large = |what, len, max| Err(LsmError::TooLarge { what, len, max });
        if key.len() > KEY_LEN_MAX {
            return too_large("key", key.len(), KEY_LEN_MAX);
        }
        if record.meta.len() > META_LEN_MAX {
            return too_large("meta", record.meta.len(), META_LEN_MAX);
        }
        if let Some(v) = &record.value
            && v.len() > VALUE_LEN_MAX
        {
            return too_large("value", v.len(), VALUE_LEN_MAX);
        }
        let mut q = lock(&self.queue);
        if let Some(r) = &q.stopped {
            return Err(LsmError::Closed {
                reason: Some(r.clone()),
            });
        }
        q.pending.push((key, record));
        q.enqueued += 1;
        let ticket = q.enqueued;
        while q.leader && q.completed < ticket {
            q.waiting += 1;
            q = self.queue_cv.wait(q).unwrap_or_else(|e| e.into_inner());
            q.waiting -= 1;
        }
        if q.completed >= ticket {
            return match &q.failed {
                Some((from, to, why)) if (*from..=*to).contains(&ticket) => Err(LsmError::Closed {
                    reason: Some(why.clone()),
                }),
                _ => Ok(()),
            };
        }
        if let Some(r) = &q.stopped {
            return Err(LsmError::Closed {
                reason: Some(r.clone()),
            });
        }
        q.leader = true;
        let spare = std::mem::take(&mut q.spare);
        let mut batch = std::mem::replace(&mut q.pending, spare);
        let upto = q.enqueued;
        let from = upto + 1 - batch.len() as u64;
        drop(q);
        let result = self.commit(&mut batch);
        let mut q = lock(&self.queue);
        batch.clear();
        q.spare = batch;
        q.completed = upto;
        q.leader = false;
        if let Err(e) = &result {
            let why = format!("a write failed: {e}");
            tracing::error!(dir = %self.dir.display(), error = %e, "write failed; refusing further writes");
            q.failed = Some((from, upto, why.clone()));
            q.stopped.get_or_insert(why);
        }
        let wake = q.waiting > 0;
        drop(q);
        if wake {
            self.queue_cv.notify_all();
        }
        result
    }

    /// Appends a batch to the WAL, makes it durable as configured, and
    /// applies it to the active memtable. Only the write leader calls this.
    fn commit(&self, batch: &mut Vec<(Key, Record)>) -> Result<(), LsmError> {
        let mut wal = lock(&self.wal);
        let first = self.last_seq.load(Ordering::Relaxed) + 1;
        for (i, (key, record)) in batch.iter().enumerate() {
            wal.writer.append(key, first + i as u64, record);
        }
        // Every mode hands the whole batch to the kernel before any writer
        // of it is acknowledged, so a process crash loses nothing; the modes
        // differ only in when the kernel is made to reach the disk. The
        // batch is one write call however many writers joined it.
        let written = match self.opts.durability {
            Durability::Sync => {
                self.sync_wal(&mut wal.writer)?;
                0
            }
            Durability::Periodic(_) | Durability::None => wal.writer.write_out()?,
        };
        self.counters
            .wal_bytes
            .fetch_add(written, Ordering::Relaxed);
        let last = first + batch.len() as u64 - 1;
        debug_assert_eq!(wal.active.wal_id(), wal.writer.id());
        wal.active
            .apply(batch.drain(..).enumerate().map(|(i, (key, record))| Entry {
                key,
                seq: first + i as u64,
                record,
            }));
        self.last_seq.store(last, Ordering::Release);
        if wal.active.bytes() >= self.opts.memtable_bytes {
            self.rotate(&mut wal)?;
        }
        Ok(())
    }

    /// Seals the active memtable and its WAL segment, starts new ones, and
    /// stalls while too many immutable memtables wait for their flush.
    fn rotate(&self, wal: &mut WalState) -> Result<(), LsmError> {
        let started = std::time::Instant::now();
        // The old segment is whole and durable before the new one exists, so
        // only the last segment can ever end in a torn record.
        self.sync_wal(&mut wal.writer)?;
        let id = self.next_file_id.fetch_add(1, Ordering::Relaxed);
        wal.writer = WalWriter::create(&self.dir, id, self.opts.wal_preallocate_bytes())?;
        manifest::sync_dir(&self.dir)?;
        let active = Arc::new(MemTable::with_pool(
            id,
            self.opts.memtable_bytes,
            self.chunks.clone(),
        ));
        wal.active = active.clone();
        self.set_version(|v| {
            let old = std::mem::replace(&mut v.active, active);
            v.immutables.insert(0, old);
        });
        let mut bg = lock(&self.bg);
        bg.flush_work = true;
        self.bg_cv.notify_all();
        while self.version().immutables.len() > self.opts.immutable_memtables_max {
            if let Some(e) = &bg.error {
                return Err(LsmError::Closed {
                    reason: Some(e.clone()),
                });
            }
            if bg.shutdown {
                break;
            }
            bg = self.bg_cv.wait(bg).unwrap_or_else(|e| e.into_inner());
        }
        tracing::debug!(dir = %self.dir.display(), took_ms = started.elapsed().as_millis() as u64, "memtable sealed");
        Ok(())
    }

    /// Waits until `ready` says there is work (clearing it) or shutdown;
    /// false on shutdown.
    fn wait_for_work(&self, ready: impl Fn(&mut Bg) -> bool) -> bool {
        let mut bg = lock(&self.bg);
        loop {
            if bg.shutdown {
                return false;
            }
            if ready(&mut bg) {
                return true;
            }
            bg = self.bg_cv.wait(bg).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Records a background failure: writes stop, readers go on.
    fn fail(&self, e: &LsmError) {
        if self.shutdown.load(Ordering::Relaxed) {
            return;
        }
        let why = format!("background work failed: {e}");
        tracing::error!(dir = %self.dir.display(), error = %e, "background work failed; refusing further writes");
        lock(&self.queue).stopped.get_or_insert(why.clone());
        lock(&self.bg).error = Some(why);
        self.bg_cv.notify_all();
    }

    fn flusher(self: Arc<Self>) {
        while self.wait_for_work(|bg| std::mem::take(&mut bg.flush_work)) {
            while let Some(oldest) = self.version().immutables.last().cloned() {
                if self.shutdown.load(Ordering::Relaxed) {
                    return;
                }
                if let Err(e) = self.flush_one(&oldest) {
                    self.fail(&e);
                    return;
                }
            }
            lock(&self.bg).compact_work = true;
            self.bg_cv.notify_all();
        }
    }

    fn compactor(self: Arc<Self>) {
        while self.wait_for_work(|bg| std::mem::take(&mut bg.compact_work)) {
            if !self.opts.background_compaction {
                continue;
            }
            loop {
                match self.compact_once() {
                    Ok(true) if !self.shutdown.load(Ordering::Relaxed) => {}
                    Ok(_) => break,
                    Err(e) => {
                        self.fail(&e);
                        return;
                    }
                }
            }
        }
    }

    fn flush_one(&self, mem: &Arc<MemTable>) -> Result<(), LsmError> {
        let started = std::time::Instant::now();
        let id = self.next_file_id.fetch_add(1, Ordering::Relaxed);
        let table = write_table(&self.dir, id, &self.opts, |w| mem.write_to(w))?;
        let mut m = lock(&self.manifest);
        let mut next = m.clone();
        if let Some((_, len)) = &table {
            self.counters.table_bytes.fetch_add(*len, Ordering::Relaxed);
            next.tables.insert(0, id);
        }
        next.wal_floor = mem.wal_id() + 1;
        next.next_file_id = self.next_file_id.load(Ordering::Relaxed);
        next.last_seq = self.last_seq.load(Ordering::Acquire);
        let n = next.store(&self.dir)?;
        self.counters.manifest_bytes.fetch_add(n, Ordering::Relaxed);
        *m = next;
        self.set_version(|v| {
            v.immutables.retain(|x| !Arc::ptr_eq(x, mem));
            if let Some((t, _)) = table {
                v.tables.insert(0, Arc::new(t));
            }
        });
        drop(m);
        self.counters.flushes.fetch_add(1, Ordering::Relaxed);
        remove(&self.dir.join(wal::segment_name(mem.wal_id())))?;
        tracing::debug!(dir = %self.dir.display(), table = id, took_ms = started.elapsed().as_millis() as u64, "memtable flushed");
        self.bg_cv.notify_all();
        Ok(())
    }

    /// Size-tiered choice: the first run (newest first) of at least
    /// `tier_fanout` adjacent tables in the same size tier; failing that,
    /// when there are more than `tables_max` tables, the newest
    /// `tier_fanout` tables.
    fn pick_compaction(&self, v: &Version) -> Option<(usize, usize)> {
        let fanout = self.opts.tier_fanout;
        let base = (self.opts.memtable_bytes / 2).max(1) as f64;
        let tier = |t: &Table| {
            let ratio = (t.file_len() as f64 / base).max(1.0);
            (ratio.ln() / (fanout as f64).ln()).floor() as u32
        };
        let tiers: Vec<u32> = v.tables.iter().map(|t| tier(t)).collect();
        let mut i = 0;
        while i < tiers.len() {
            let mut j = i;
            while j < tiers.len() && tiers[j] == tiers[i] {
                j += 1;
            }
            if j - i >= fanout {
                return Some((i, j));
            }
            i = j;
        }
        (tiers.len() > self.opts.tables_max).then_some((0, fanout))
    }

    /// Merges tables `from..to` of the current version (newest first) into
    /// one. Tombstones at or below `watermark` are dropped only when the run
    /// reaches the oldest table, since an older table could otherwise still
    /// hold the value they delete.
    /// Runs the compaction the policy picks, if any; returns whether it ran.
    fn compact_once(&self) -> Result<bool, LsmError> {
        let _one_at_a_time = lock(&self.compaction);
        let v = self.version();
        let Some((from, to)) = self.pick_compaction(&v) else {
            return Ok(false);
        };
        let watermark = self.tombstone_watermark.load(Ordering::Relaxed);
        self.compact_locked(&v, from, to, watermark)?;
        Ok(true)
    }

    /// Merges every table into one.
    fn compact_all(&self, watermark: u64) -> Result<(), LsmError> {
        let _one_at_a_time = lock(&self.compaction);
        let v = self.version();
        self.compact_locked(&v, 0, v.tables.len(), watermark)
    }

    /// The merge itself; the caller holds the compaction lock, so `v`'s
    /// tables stay live and adjacent (flushes only prepend).
    fn compact_locked(
        &self,
        v: &Version,
        from: usize,
        to: usize,
        watermark: u64,
    ) -> Result<(), LsmError> {
        let inputs: Vec<Arc<Table>> = v
            .tables
            .get(from..to)
            .map(<[_]>::to_vec)
            .unwrap_or_default();
        // One table alone is rewritten only to drop tombstones.
        let drops_tombstones = watermark > 0 || self.opts.drop_bare_tombstones;
        if inputs.len() < 2 && !(inputs.len() == 1 && drops_tombstones) {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let bottom = to == v.tables.len();
        let sources: Vec<Source> = inputs
            .iter()
            .map(|t| {
                Box::new(TableIter::new(
                    t.clone(),
                    self.cache.clone(),
                    &Bound::Unbounded,
                )) as Source
            })
            .collect();
        let drop_bare = self.opts.drop_bare_tombstones;
        let dropped = |e: &Entry| {
            bottom
                && e.record.is_tombstone()
                && (e.seq <= watermark || (drop_bare && e.record.meta.is_empty()))
        };
        let merged =
            MergeIter::new(sources, Bound::Unbounded).filter(|r| !matches!(r, Ok(e) if dropped(e)));
        let id = self.next_file_id.fetch_add(1, Ordering::Relaxed);
        let out = write_table(&self.dir, id, &self.opts, |w| {
            for e in merged {
                let e = e?;
                w.add(&e.key, e.seq, &e.record)?;
                if w.entries().is_multiple_of(SHUTDOWN_CHECK_ENTRIES)
                    && self.shutdown.load(Ordering::Relaxed)
                {
                    return Err(LsmError::Closed {
                        reason: Some("shut down during a compaction".into()),
                    });
                }
            }
            Ok(())
        })?;
        let input_ids: Vec<u64> = inputs.iter().map(|t| t.id()).collect();
        let mut m = lock(&self.manifest);
        let mut next = m.clone();
        let Some(at) = next.tables.iter().position(|t| *t == input_ids[0]) else {
            return Err(LsmError::corrupt(
                &self.dir,
                0,
                "compaction inputs vanished from the manifest",
            ));
        };
        if next.tables.get(at..at + input_ids.len()) != Some(&input_ids[..]) {
            return Err(LsmError::corrupt(
                &self.dir,
                0,
                "compaction inputs are no longer adjacent",
            ));
        }
        let out_ids: Vec<u64> = out.iter().map(|(t, _)| t.id()).collect();
        next.tables.splice(at..at + input_ids.len(), out_ids);
        next.next_file_id = self.next_file_id.load(Ordering::Relaxed);
        let n = next.store(&self.dir)?;
        self.counters.manifest_bytes.fetch_add(n, Ordering::Relaxed);
        *m = next;
        if let Some((_, len)) = &out {
            self.counters.table_bytes.fetch_add(*len, Ordering::Relaxed);
        }
        self.set_version(|v| {
            if let Some(at) = v.tables.iter().position(|t| t.id() == input_ids[0]) {
                let replacement: Vec<Arc<Table>> =
                    out.into_iter().map(|(t, _)| Arc::new(t)).collect();
                v.tables.splice(at..at + input_ids.len(), replacement);
            }
        });
        drop(m);
        self.counters.compactions.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(dir = %self.dir.display(), inputs = ?input_ids, took_ms = started.elapsed().as_millis() as u64, "tables compacted");
        // Readers holding an older version keep the files open; unlinking
        // only removes the names.
        for id in input_ids {
            remove(&self.dir.join(sstable::table_name(id)))?;
        }
        Ok(())
    }

    fn syncer(self: Arc<Self>, every: Duration) {
        let (m, cv) = &self.syncer;
        let mut stop = lock(m);
        loop {
            // Checked before waiting too: a close that set the flag and
            // notified before this thread first took the lock would
            // otherwise go unseen for a whole interval, and close waits for
            // this thread.
            if *stop {
                return;
            }
            let (s, _) = cv
                .wait_timeout(stop, every)
                .unwrap_or_else(|e| e.into_inner());
            stop = s;
            if *stop {
                return;
            }
            drop(stop);
            let r = self.sync_wal_unlocked();
            match r {
                Ok(()) => {}
                Err(e) => {
                    tracing::error!(dir = %self.dir.display(), error = %e, "periodic WAL sync failed; refusing further writes");
                    lock(&self.queue)
                        .stopped
                        .get_or_insert(format!("periodic WAL sync failed: {e}"));
                    return;
                }
            }
            stop = lock(m);
        }
    }
}
