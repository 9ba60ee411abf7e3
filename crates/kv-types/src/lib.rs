//! Shared small types and the seam traits that the rest of the store is built on.
//!
//! This crate sits at the bottom of the workspace. It holds what several crates
//! must agree on and nothing else: node ids, keys and values, the stored
//! [`Record`], the [`Storage`] seam with its in-memory implementation
//! [`MemStorage`], and the [`Clock`] seam that lets simulations run on virtual
//! time.
//!
//! Architecture invariant: this crate knows nothing of tokio, sockets, files or
//! any particular storage engine. It depends on `bytes`, `serde` and
//! `thiserror` only, so that every other crate can depend on it cheaply.

mod clock;
mod id;
mod mem_storage;
mod record;
mod storage;

pub use clock::{Clock, ManualClock, MonotonicClock};
pub use id::{NodeId, ParseNodeIdError};
pub use mem_storage::MemStorage;
pub use record::{Key, Record, Value};
pub use storage::{KeyRange, RecordIter, Storage, StorageError};
