//! Merging sorted sources (memtables and tables) into one ordered stream,
//! newest version of each key first.

use std::collections::VecDeque;
use std::ops::Bound;
use std::sync::Arc;

use bytes::Bytes;
use kv_types::Key;

use crate::codec::Entry;
use crate::error::LsmError;
use crate::memtable::MemTable;

/// A sorted stream of entries, one per key.
pub(crate) type Source = Box<dyn Iterator<Item = Result<Entry, LsmError>> + Send>;

/// Entries a memtable source copies out per lock acquisition: a scan never
/// holds the memtable lock for long, and never copies a whole memtable.
pub(crate) const MEM_CHUNK_ENTRIES: usize = 256;

/// Streams a memtable in chunks from a start bound.
pub(crate) struct MemIter {
    mem: Arc<MemTable>,
    next_start: Bound<Key>,
    end: Bound<Key>,
    buf: VecDeque<Entry>,
    done: bool,
}

impl MemIter {
    pub(crate) fn new(mem: Arc<MemTable>, start: Bound<Key>, end: Bound<Key>) -> Self {
        Self {
            mem,
            next_start: start,
            end,
            buf: VecDeque::new(),
            done: false,
        }
    }
}

impl Iterator for MemIter {
    type Item = Result<Entry, LsmError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() && !self.done {
            let chunk = self
                .mem
                .chunk(&self.next_start, &self.end, MEM_CHUNK_ENTRIES);
            if chunk.len() < MEM_CHUNK_ENTRIES {
                self.done = true;
            }
            if let Some(last) = chunk.last() {
                self.next_start = Bound::Excluded(last.key.clone());
            }
            self.buf.extend(chunk);
        }
        self.buf.pop_front().map(Ok)
    }
}

/// Whether `key` is past the end bound.
pub(crate) fn past_end(key: &[u8], end: &Bound<Bytes>) -> bool {
    match end {
        Bound::Included(e) => key > e.as_ref(),
        Bound::Excluded(e) => key >= e.as_ref(),
        Bound::Unbounded => false,
    }
}

/// The k-way merge. For a key held by several sources, the version with the
/// highest sequence number wins and the others are dropped.
pub(crate) struct MergeIter {
    sources: Vec<Source>,
    heads: Vec<Option<Entry>>,
    end: Bound<Bytes>,
    started: bool,
    done: bool,
}

impl MergeIter {
    pub(crate) fn new(sources: Vec<Source>, end: Bound<Bytes>) -> Self {
        let n = sources.len();
        Self {
            sources,
            heads: vec![None; n],
            end,
            started: false,
            done: false,
        }
    }

    fn advance(&mut self, i: usize) -> Result<(), LsmError> {
        self.heads[i] = self.sources[i].next().transpose()?;
        Ok(())
    }

    fn step(&mut self) -> Result<Option<Entry>, LsmError> {
        if !self.started {
            self.started = true;
            for i in 0..self.sources.len() {
                self.advance(i)?;
            }
        }
        let mut best: Option<usize> = None;
        for (i, h) in self.heads.iter().enumerate() {
            let Some(h) = h else { continue };
            best = match best.and_then(|b| self.heads[b].as_ref().map(|e| (b, e))) {
                None => Some(i),
                Some((b, e)) => match h.key.cmp(&e.key) {
                    std::cmp::Ordering::Less => Some(i),
                    std::cmp::Ordering::Equal if h.seq > e.seq => Some(i),
                    _ => Some(b),
                },
            };
        }
        let Some(b) = best else { return Ok(None) };
        let Some(winner) = self.heads[b].take() else {
            return Ok(None);
        };
        if past_end(&winner.key, &self.end) {
            return Ok(None);
        }
        self.advance(b)?;
        for i in 0..self.heads.len() {
            if self.heads[i].as_ref().is_some_and(|h| h.key == winner.key) {
                self.advance(i)?;
            }
        }
        Ok(Some(winner))
    }
}

impl Iterator for MergeIter {
    type Item = Result<Entry, LsmError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use kv_types::Record;

    use super::*;

    fn src(items: &[(&str, u64)]) -> Source {
        let v: Vec<_> = items
            .iter()
            .map(|(k, s)| {
                Ok(Entry {
                    key: Bytes::copy_from_slice(k.as_bytes()),
                    seq: *s,
                    record: Record::value(Bytes::new(), Bytes::new()),
                })
            })
            .collect();
        Box::new(v.into_iter())
    }

    #[test]
    fn newest_version_wins_and_end_bound_stops() {
        let m = MergeIter::new(
            vec![
                src(&[("a", 1), ("c", 9)]),
                src(&[("a", 5), ("b", 2), ("d", 3)]),
            ],
            Bound::Excluded(Bytes::from_static(b"d")),
        );
        let got: Vec<_> = m.map(|e| e.map(|e| (e.key, e.seq)).unwrap()).collect();
        let want: Vec<(Bytes, u64)> = vec![
            (Bytes::from_static(b"a"), 5),
            (Bytes::from_static(b"b"), 2),
            (Bytes::from_static(b"c"), 9),
        ];
        assert_eq!(got, want);
    }
}
