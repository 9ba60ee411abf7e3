//! SSTables: immutable sorted files of entries, with a block index, a Bloom
//! filter and a footer; every part checksummed and checked on every read.
//!
//! A table is named `<id>.sst`. Layout (all integers little-endian):
//!
//! ```text
//! +--------------+--------------+-----+----------------+-------------+-------------+
//! | data block 0 | data block 1 | ... | data block n-1 | index block | bloom block |  footer (56 B)
//! +--------------+--------------+-----+----------------+-------------+-------------+
//!
//! data block  := entry* | offset u32 * count | count u32 | crc32 u32
//!                entries are encoded as in `codec`, sorted by key, one per key;
//!                offset[i] is where entry i starts, so a lookup binary-searches
//!                the offsets without decoding the entries it skips.
//!                The crc covers every byte of the block before it.
//! index block := count u32
//!                | (block_offset u64 | block_len u32 | last_key_len varint | last_key) * count
//!                | first_key_len varint | first_key
//!                | crc32 u32                      (block_len includes the block's crc)
//! bloom block := num_hashes u32 | word_count u32 | word u64 * word_count | crc32 u32
//!                fastbloom bits; keys hashed with SipHash-1-3 under BLOOM_SEED
//! footer      := index_offset u64 | index_len u32 | bloom_offset u64 | bloom_len u32
//!                | entry_count u64 | max_seq u64 | format_version u32
//!                | crc32 u32 (of the 44 bytes before it) | magic u64 "KVSSTBL\0"
//! ```
//!
//! The index and Bloom filter are read and checked once, at open, and kept in
//! memory. Data blocks are read with `pread` (no shared file cursor), checked
//! against their crc on every read from the file, and kept in the block cache
//! only once checked.

use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufWriter, Write};
use std::ops::Bound;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use fastbloom::BloomFilter;
use kv_types::Record;

use crate::cache::BlockCache;
use crate::codec::{self, Entry};
use crate::error::LsmError;

const MAGIC: u64 = u64::from_le_bytes(*b"KVSSTBL\0");
/// Format version of SSTables written by this build.
pub(crate) const VERSION: u32 = 1;
const FOOTER_LEN: usize = 56;
/// The fixed Bloom seed: filters must hash keys the same way after a reopen.
const BLOOM_SEED: u128 = 0x6b76_2d73_746f_7261_6765_2d62_6c6f_6f6d;

/// Name of table `id`.
pub(crate) fn table_name(id: u64) -> String {
    format!("{id:08}.sst")
}

/// The Bloom hash of `key`; computed once per lookup and reused for every
/// table, since all filters share the seed.
#[inline]
pub(crate) fn bloom_hash(key: &[u8]) -> u64 {
    let mut h = fastbloom::DefaultHasher::seeded(&BLOOM_SEED.to_le_bytes()).build_hasher();
    h.write(key);
    h.finish()
}

/// Writes one table, entries in strictly increasing key order.
pub(crate) struct TableWriter {
    path: PathBuf,
    file: BufWriter<File>,
    offset: u64,
    block: Vec<u8>,
    offsets: Vec<u32>,
    last_key: Vec<u8>,
    first_key: Option<Vec<u8>>,
    index: Vec<u8>,
    index_count: u32,
    hashes: Vec<u64>,
    entries: u64,
    max_seq: u64,
    block_bytes: usize,
    fp_rate: f64,
}

impl TableWriter {
    pub(crate) fn create(path: &Path, block_bytes: usize, fp_rate: f64) -> Result<Self, LsmError> {
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| LsmError::io("create table", path, e))?;
        Ok(Self {
            path: path.to_owned(),
            file: BufWriter::with_capacity(256 * 1024, file),
            offset: 0,
            block: Vec::with_capacity(block_bytes * 2),
            offsets: Vec::new(),
            last_key: Vec::new(),
            first_key: None,
            index: Vec::new(),
            index_count: 0,
            hashes: Vec::new(),
            entries: 0,
            max_seq: 0,
            block_bytes,
            fp_rate,
        })
    }

    pub(crate) fn entries(&self) -> u64 {
        self.entries
    }

    pub(crate) fn add(&mut self, key: &[u8], seq: u64, record: &Record) -> Result<(), LsmError> {
        self.add_parts(key, seq, record.value.as_deref(), &record.meta)
    }

    /// `add` from borrowed parts; `value` is `None` for a tombstone.
    pub(crate) fn add_parts(
        &mut self,
        key: &[u8],
        seq: u64,
        value: Option<&[u8]>,
        meta: &[u8],
    ) -> Result<(), LsmError> {
        debug_assert!(
            self.first_key.is_none() || key > self.last_key.as_slice(),
            "table entries must be added in strictly increasing key order"
        );
        if self.first_key.is_none() {
            self.first_key = Some(key.to_vec());
        }
        self.offsets.push(self.block.len() as u32);
        codec::encode_parts(&mut self.block, key, seq, value, meta);
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.hashes.push(bloom_hash(key));
        self.entries += 1;
        self.max_seq = self.max_seq.max(seq);
        if self.block.len() >= self.block_bytes {
            self.finish_block()?;
        }
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), LsmError> {
        self.file
            .write_all(bytes)
            .map_err(|e| LsmError::io("write table", &self.path, e))?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    fn finish_block(&mut self) -> Result<(), LsmError> {
        if self.offsets.is_empty() {
            return Ok(());
        }
        let mut block = std::mem::take(&mut self.block);
        for o in &self.offsets {
            block.extend_from_slice(&o.to_le_bytes());
        }
        block.extend_from_slice(&(self.offsets.len() as u32).to_le_bytes());
        let c = codec::crc(&block);
        block.extend_from_slice(&c.to_le_bytes());
        let offset = self.offset;
        self.write(&block)?;
        self.index.extend_from_slice(&offset.to_le_bytes());
        self.index
            .extend_from_slice(&(block.len() as u32).to_le_bytes());
        codec::put_varint(&mut self.index, self.last_key.len() as u64);
        self.index.extend_from_slice(&self.last_key);
        self.index_count += 1;
        self.offsets.clear();
        block.clear();
        self.block = block;
        Ok(())
    }

    /// Writes index, filter and footer, and `fdatasync`s the file; returns
    /// the file's length.
    pub(crate) fn finish(mut self) -> Result<u64, LsmError> {
        self.finish_block()?;
        let mut index = Vec::with_capacity(self.index.len() + 64);
        index.extend_from_slice(&self.index_count.to_le_bytes());
        index.extend_from_slice(&self.index);
        let first = self.first_key.take().unwrap_or_default();
        codec::put_varint(&mut index, first.len() as u64);
        index.extend_from_slice(&first);
        let c = codec::crc(&index);
        index.extend_from_slice(&c.to_le_bytes());
        let index_offset = self.offset;
        self.write(&index)?;

        let mut bloom = BloomFilter::with_false_pos(self.fp_rate)
            .seed(&BLOOM_SEED)
            .expected_items(self.hashes.len().max(1));
        for h in &self.hashes {
            bloom.insert_hash(*h);
        }
        let words = bloom.as_slice();
        let mut bb = Vec::with_capacity(words.len() * 8 + 12);
        bb.extend_from_slice(&bloom.num_hashes().to_le_bytes());
        bb.extend_from_slice(&(words.len() as u32).to_le_bytes());
        for w in words {
            bb.extend_from_slice(&w.to_le_bytes());
        }
        let c = codec::crc(&bb);
        bb.extend_from_slice(&c.to_le_bytes());
        let bloom_offset = self.offset;
        self.write(&bb)?;

        let mut footer = Vec::with_capacity(FOOTER_LEN);
        footer.extend_from_slice(&index_offset.to_le_bytes());
        footer.extend_from_slice(&(index.len() as u32).to_le_bytes());
        footer.extend_from_slice(&bloom_offset.to_le_bytes());
        footer.extend_from_slice(&(bb.len() as u32).to_le_bytes());
        footer.extend_from_slice(&self.entries.to_le_bytes());
        footer.extend_from_slice(&self.max_seq.to_le_bytes());
        footer.extend_from_slice(&VERSION.to_le_bytes());
        let c = codec::crc(&footer);
        footer.extend_from_slice(&c.to_le_bytes());
        footer.extend_from_slice(&MAGIC.to_le_bytes());
        self.write(&footer)?;
        let file = self
            .file
            .into_inner()
            .map_err(|e| LsmError::io("write table", &self.path, e.into_error()))?;
        file.sync_data()
            .map_err(|e| LsmError::io("fdatasync table", &self.path, e))?;
        Ok(self.offset)
    }
}

#[derive(Debug)]
struct IndexEntry {
    last_key: Bytes,
    offset: u64,
    len: u32,
}

/// An open table: file handle, index and Bloom filter in memory.
#[derive(Debug)]
pub(crate) struct Table {
    id: u64,
    path: PathBuf,
    file: File,
    file_len: u64,
    index: Vec<IndexEntry>,
    /// `key_prefix` of each block's last key: the binary search over the
    /// index runs mostly on this dense array.
    prefixes: Vec<u64>,
    first_key: Bytes,
    bloom: BloomFilter,
    entries: u64,
    max_seq: u64,
}

fn read_exact_at(file: &File, path: &Path, offset: u64, len: usize) -> Result<Vec<u8>, LsmError> {
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, offset)
        .map_err(|e| LsmError::io("read table", path, e))?;
    Ok(buf)
}

/// Splits off and checks the trailing crc32 of a block read at `offset`.
fn check_crc(path: &Path, offset: u64, buf: &[u8]) -> Result<usize, LsmError> {
    let body = buf
        .len()
        .checked_sub(4)
        .ok_or_else(|| LsmError::corrupt(path, offset, "block shorter than its checksum"))?;
    let expected = codec::get_u32(buf, body).unwrap_or_default();
    let got = codec::crc(&buf[..body]);
    if expected != got {
        return Err(LsmError::ChecksumMismatch {
            file: path.to_owned(),
            offset,
            expected,
            got,
        });
    }
    Ok(body)
}

impl Table {
    /// Opens table `id` at `path`, checking footer, index and filter.
    pub(crate) fn open(id: u64, path: &Path) -> Result<Self, LsmError> {
        let file = File::open(path).map_err(|e| LsmError::io("open table", path, e))?;
        let file_len = file
            .metadata()
            .map_err(|e| LsmError::io("stat table", path, e))?
            .len();
        if file_len < FOOTER_LEN as u64 {
            return Err(LsmError::corrupt(path, 0, "file shorter than a footer"));
        }
        let footer_at = file_len - FOOTER_LEN as u64;
        let footer = read_exact_at(&file, path, footer_at, FOOTER_LEN)?;
        let u64_at = |p| codec::get_u64(&footer, p).unwrap_or_default();
        let u32_at = |p| codec::get_u32(&footer, p).unwrap_or_default();
        let magic = u64_at(48);
        if magic != MAGIC {
            return Err(LsmError::BadMagic {
                file: path.to_owned(),
                what: "SSTable",
                got: magic,
            });
        }
        let body = check_crc(path, footer_at, &footer[..48])?;
        debug_assert_eq!(body, 44);
        let version = u32_at(40);
        if version != VERSION {
            return Err(LsmError::UnsupportedVersion {
                file: path.to_owned(),
                version,
                supported: VERSION,
            });
        }
        let (index_offset, index_len) = (u64_at(0), u32_at(8) as usize);
        let (bloom_offset, bloom_len) = (u64_at(12), u32_at(20) as usize);
        let (entries, max_seq) = (u64_at(24), u64_at(32));
        let in_file =
            |off: u64, len: usize| off.checked_add(len as u64).is_some_and(|e| e <= footer_at);
        if !in_file(index_offset, index_len) || !in_file(bloom_offset, bloom_len) {
            return Err(LsmError::corrupt(
                path,
                footer_at,
                "footer points past the end of the file",
            ));
        }

        let raw = read_exact_at(&file, path, index_offset, index_len)?;
        let body = check_crc(path, index_offset, &raw)?;
        let raw = Bytes::from(raw).slice(..body);
        let bad_index =
            |detail: &str| LsmError::corrupt(path, index_offset, format!("index: {detail}"));
        let count = codec::get_u32(&raw, 0).ok_or_else(|| bad_index("no count"))? as usize;
        let mut pos = 4;
        let mut index = Vec::with_capacity(count.min(raw.len() / 13));
        for _ in 0..count {
            let offset = codec::get_u64(&raw, pos).ok_or_else(|| bad_index("truncated"))?;
            let len = codec::get_u32(&raw, pos + 8).ok_or_else(|| bad_index("truncated"))?;
            pos += 12;
            let start = pos;
            let key =
                codec::decode_key(&raw, &mut pos).ok_or_else(|| bad_index("truncated key"))?;
            let key_start = start + (pos - start - key.len());
            let last_key = raw.slice(key_start..pos);
            if !in_file(offset, len as usize) {
                return Err(bad_index("block past the end of the file"));
            }
            if index
                .last()
                .is_some_and(|p: &IndexEntry| p.last_key >= last_key)
            {
                return Err(bad_index("keys out of order"));
            }
            index.push(IndexEntry {
                last_key,
                offset,
                len,
            });
        }
        let start = pos;
        let first =
            codec::decode_key(&raw, &mut pos).ok_or_else(|| bad_index("truncated first key"))?;
        let first_key = raw.slice(start + (pos - start - first.len())..pos);
        if pos != raw.len() {
            return Err(bad_index("trailing bytes"));
        }

        let raw = read_exact_at(&file, path, bloom_offset, bloom_len)?;
        let body = check_crc(path, bloom_offset, &raw)?;
        let bad_bloom = || LsmError::corrupt(path, bloom_offset, "bloom filter does not decode");
        let num_hashes = codec::get_u32(&raw, 0).ok_or_else(bad_bloom)?;
        let words = codec::get_u32(&raw, 4).ok_or_else(bad_bloom)? as usize;
        if 8 + words * 8 != body || words == 0 || num_hashes == 0 {
            return Err(bad_bloom());
        }
        let bits: Vec<u64> = (0..words)
            .map(|i| codec::get_u64(&raw, 8 + i * 8).unwrap_or_default())
            .collect();
        let bloom = BloomFilter::from_vec(bits)
            .seed(&BLOOM_SEED)
            .hashes(num_hashes);
        let prefixes = index
            .iter()
            .map(|e| codec::key_prefix(&e.last_key))
            .collect();
        Ok(Self {
            id,
            path: path.to_owned(),
            file,
            file_len,
            index,
            prefixes,
            first_key,
            bloom,
            entries,
            max_seq,
        })
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn file_len(&self) -> u64 {
        self.file_len
    }

    pub(crate) fn entries(&self) -> u64 {
        self.entries
    }

    pub(crate) fn max_seq(&self) -> u64 {
        self.max_seq
    }

    /// Bytes of memory held for index and filter.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.bloom.as_slice().len() * 8
            + self
                .index
                .iter()
                .map(|e| e.last_key.len() + 48)
                .sum::<usize>()
    }

    fn last_key(&self) -> &[u8] {
        self.index.last().map_or(&[], |e| e.last_key.as_ref())
    }

    /// Whether some key of this table may lie in `(start, end)`.
    pub(crate) fn overlaps(&self, start: &Bound<Bytes>, end: &Bound<Bytes>) -> bool {
        if self.index.is_empty() {
            return false;
        }
        let after_start = match start {
            Bound::Included(s) => self.last_key() >= s.as_ref(),
            Bound::Excluded(s) => self.last_key() > s.as_ref(),
            Bound::Unbounded => true,
        };
        let before_end = match end {
            Bound::Included(e) => self.first_key.as_ref() <= e.as_ref(),
            Bound::Excluded(e) => self.first_key.as_ref() < e.as_ref(),
            Bound::Unbounded => true,
        };
        after_start && before_end
    }

    /// Index of the first block whose last key is `>= key`.
    #[inline]
    fn find_block(&self, key: &[u8]) -> usize {
        let p = codec::key_prefix(key);
        let (mut lo, mut hi) = (0, self.index.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let less = match self.prefixes[mid].cmp(&p) {
                std::cmp::Ordering::Less => true,
                std::cmp::Ordering::Greater => false,
                std::cmp::Ordering::Equal => self.index[mid].last_key.as_ref() < key,
            };
            if less {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Whether `key` may be in this table (key range and Bloom filter).
    #[inline]
    pub(crate) fn may_contain(&self, key: &[u8], hash: u64) -> bool {
        !self.index.is_empty()
            && key >= self.first_key.as_ref()
            && key <= self.last_key()
            && self.bloom.contains_hash(hash)
    }

    /// Reads block `i`, from the cache or the file (checking its crc).
    fn block(&self, i: usize, cache: &BlockCache, fill: bool) -> Result<Bytes, LsmError> {
        let e = &self.index[i];
        if let Some(b) = cache.get((self.id, e.offset)) {
            return Ok(b);
        }
        let raw = read_exact_at(&self.file, &self.path, e.offset, e.len as usize)?;
        let body = check_crc(&self.path, e.offset, &raw)?;
        let block = Bytes::from(raw).slice(..body);
        if fill {
            cache.insert((self.id, e.offset), block.clone());
        }
        Ok(block)
    }

    fn bad_block(&self, i: usize) -> LsmError {
        LsmError::corrupt(
            &self.path,
            self.index[i].offset,
            "data block does not decode",
        )
    }

    /// The version of `key` in this table, if any; the caller has checked
    /// `may_contain`.
    pub(crate) fn get(
        &self,
        key: &[u8],
        cache: &BlockCache,
    ) -> Result<Option<(u64, Record)>, LsmError> {
        let i = self.find_block(key);
        if i == self.index.len() {
            return Ok(None);
        }
        let block = self.block(i, cache, true)?;
        let view = BlockView::new(&block).ok_or_else(|| self.bad_block(i))?;
        let (at, found) = view.lower_bound(key).ok_or_else(|| self.bad_block(i))?;
        if !found {
            return Ok(None);
        }
        let mut pos = view.offset(at).ok_or_else(|| self.bad_block(i))?;
        codec::decode_key(&block, &mut pos).ok_or_else(|| self.bad_block(i))?;
        codec::decode_after_key(&block, &mut pos)
            .map(Some)
            .ok_or_else(|| self.bad_block(i))
    }
}

/// Offsets view of a data block (crc already stripped and checked).
pub(crate) struct BlockView<'a> {
    block: &'a [u8],
    count: usize,
    offsets_at: usize,
}

impl<'a> BlockView<'a> {
    pub(crate) fn new(block: &'a [u8]) -> Option<Self> {
        let count = codec::get_u32(block, block.len().checked_sub(4)?)? as usize;
        let offsets_at = block
            .len()
            .checked_sub(4)?
            .checked_sub(count.checked_mul(4)?)?;
        Some(Self {
            block,
            count,
            offsets_at,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.count
    }

    #[inline]
    pub(crate) fn offset(&self, i: usize) -> Option<usize> {
        let o = codec::get_u32(self.block, self.offsets_at + i * 4)? as usize;
        (o < self.offsets_at).then_some(o)
    }

    #[inline]
    fn key(&self, i: usize) -> Option<&'a [u8]> {
        let mut pos = self.offset(i)?;
        codec::decode_key(&self.block[..self.offsets_at], &mut pos)
    }

    /// Index of the first entry with a key `>= key`, and whether it equals
    /// `key`. `None` if the block does not decode.
    #[inline]
    pub(crate) fn lower_bound(&self, key: &[u8]) -> Option<(usize, bool)> {
        let (mut lo, mut hi) = (0, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match codec::key_cmp(self.key(mid)?, key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Equal => return Some((mid, true)),
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        Some((lo, false))
    }
}

/// Streams a table's entries from a start bound, in key order. Blocks read
/// by a scan are not put in the cache, so a long scan does not evict the
/// blocks point reads need.
pub(crate) struct TableIter {
    table: Arc<Table>,
    cache: Arc<BlockCache>,
    next_block: usize,
    block: Bytes,
    offsets_at: usize,
    count: usize,
    entry_i: usize,
    seek: Option<(Bytes, bool)>,
    done: bool,
}

impl TableIter {
    /// An iterator positioned at the first entry inside `start`.
    pub(crate) fn new(table: Arc<Table>, cache: Arc<BlockCache>, start: &Bound<Bytes>) -> Self {
        let seek = match start {
            Bound::Included(k) => Some((k.clone(), false)),
            Bound::Excluded(k) => Some((k.clone(), true)),
            Bound::Unbounded => None,
        };
        let next_block = seek.as_ref().map_or(0, |(k, _)| table.find_block(k));
        Self {
            table,
            cache,
            next_block,
            block: Bytes::new(),
            offsets_at: 0,
            count: 0,
            entry_i: 0,
            seek,
            done: false,
        }
    }

    fn load(&mut self) -> Result<(), LsmError> {
        let i = self.next_block;
        self.next_block += 1;
        let block = self.table.block(i, &self.cache, false)?;
        let view = BlockView::new(&block).ok_or_else(|| self.table.bad_block(i))?;
        self.entry_i = 0;
        if let Some((key, excluded)) = self.seek.take() {
            let (at, found) = view
                .lower_bound(&key)
                .ok_or_else(|| self.table.bad_block(i))?;
            self.entry_i = if found && excluded { at + 1 } else { at };
        }
        self.count = view.len();
        self.offsets_at = view.offsets_at;
        self.block = block;
        Ok(())
    }
}

impl Iterator for TableIter {
    type Item = Result<Entry, LsmError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            if self.entry_i < self.count {
                let at = self.offsets_at + self.entry_i * 4;
                self.entry_i += 1;
                let entry = codec::get_u32(&self.block, at)
                    .map(|o| o as usize)
                    .filter(|o| *o < self.offsets_at)
                    .and_then(|mut pos| codec::decode_entry(&self.block, &mut pos));
                return match entry {
                    Some(e) => Some(Ok(e)),
                    None => {
                        self.done = true;
                        Some(Err(self.table.bad_block(self.next_block - 1)))
                    }
                };
            }
            if self.next_block >= self.table.index.len() {
                self.done = true;
                return None;
            }
            if let Err(e) = self.load() {
                self.done = true;
                return Some(Err(e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: u32) -> Entry {
        Entry {
            key: Bytes::from(format!("key{i:06}")),
            seq: u64::from(i) + 1,
            record: if i.is_multiple_of(7) {
                Record::tombstone(Bytes::from(format!("m{i}")))
            } else {
                Record::value(Bytes::from(vec![i as u8; 50]), Bytes::new())
            },
        }
    }

    fn write(dir: &Path, n: u32) -> PathBuf {
        let path = dir.join(table_name(1));
        let mut w = TableWriter::create(&path, 512, 0.01).unwrap();
        for i in 0..n {
            let e = entry(i);
            w.add(&e.key, e.seq, &e.record).unwrap();
        }
        w.finish().unwrap();
        path
    }

    #[test]
    fn gets_and_scans_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), 1000);
        let t = Arc::new(Table::open(1, &path).unwrap());
        let cache = Arc::new(BlockCache::new(1 << 20));
        assert_eq!(t.entries(), 1000);
        assert_eq!(t.max_seq(), 1000);
        for i in 0..1000 {
            let e = entry(i);
            assert!(t.may_contain(&e.key, bloom_hash(&e.key)));
            let (seq, r) = t.get(&e.key, &cache).unwrap().unwrap();
            assert_eq!((seq, r), (e.seq, e.record));
        }
        assert!(t.get(b"key0000005", &cache).unwrap().is_none());
        let all: Vec<_> = TableIter::new(t.clone(), cache.clone(), &Bound::Unbounded)
            .map(|e| e.unwrap().seq)
            .collect();
        assert_eq!(all, (1..=1000).collect::<Vec<_>>());
        let from: Vec<_> = TableIter::new(
            t.clone(),
            cache.clone(),
            &Bound::Excluded(Bytes::from_static(b"key000500")),
        )
        .take(2)
        .map(|e| e.unwrap().seq)
        .collect();
        assert_eq!(from, vec![502, 503]);
    }
}
