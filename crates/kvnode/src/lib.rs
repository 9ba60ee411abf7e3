//! The node: the thin composition root of the store.
//!
//! kvnode wires the crates together through trait objects and owns what no
//! other crate may know: TCP, configuration, the command line, signals and
//! logging. Nothing depends on it.

pub mod anti_entropy;
pub mod cli;
pub mod config;
pub mod identity;
pub mod membership;
pub mod node;
pub mod resp;
pub mod server;
pub mod transport;
