//! A log-structured merge engine: WAL, memtable, SSTables, Bloom filters, compaction.
