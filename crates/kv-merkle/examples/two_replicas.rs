//! Two replicas of one key range: one misses writes while it is down, then
//! finds exactly what differs, repairs it, and finds nothing more.
//!
//! `cargo run -p kv-merkle --example two_replicas`

use kv_merkle::{
    DiffInitiator, DiffKind, DiffLimits, DiffOutcome, MemReplica, MerkleError, Step, TreeConfig,
    respond,
};

/// A replica's anti-entropy state: the tree, and the key index its leaf
/// stage reads (a node would serve the index from storage).
struct Replica {
    name: &'static str,
    state: MemReplica,
}

impl Replica {
    fn new(name: &'static str, config: TreeConfig) -> Self {
        Self {
            name,
            state: MemReplica::new(config),
        }
    }

    /// A write: the new version replaces the old one in the tree in
    /// O(depth).
    fn put(&mut self, key: &str, version: &str) {
        self.state.put(key.as_bytes(), version.as_bytes());
    }
}

/// Runs a diff with `local` initiating; the closure in the middle is where a
/// real node would send the request over the network.
fn diff(local: &MemReplica, remote: &MemReplica) -> Result<DiffOutcome, MerkleError> {
    let limits = DiffLimits::default();
    let (mut initiator, mut request) = DiffInitiator::start(&local.tree, limits)?;
    loop {
        let response = respond(&remote.tree, &remote.keys, &limits, &request)?;
        match initiator.on_response(&local.tree, &local.keys, response)? {
            Step::Send(next) => request = next,
            Step::Done(outcome) => return Ok(outcome),
        }
    }
}

fn main() -> Result<(), MerkleError> {
    let config = TreeConfig::default();
    let mut a = Replica::new("a", config);
    let mut b = Replica::new("b", config);
    for i in 0..100_000 {
        let key = format!("user:{i:06}");
        a.put(&key, "v1");
        b.put(&key, "v1");
    }

    // B is down; A takes three writes.
    a.put("user:000042", "v2");
    a.put("user:031337", "v2");
    a.put("user:new", "v1");
    // B had one write A never saw.
    b.put("user:099999", "v2");

    let outcome = diff(&a.state, &b.state)?;
    println!(
        "{} vs {}: {} keys differ, found in {} round trips ({} digests, {} items received)",
        a.name,
        b.name,
        outcome.differences.len(),
        outcome.stats.round_trips,
        outcome.stats.digests_received,
        outcome.stats.items_received,
    );
    for d in &outcome.differences {
        let key = String::from_utf8_lossy(&d.key);
        match d.kind {
            DiffKind::OnlyLocal { .. } => println!("  {key}: only on {}", a.name),
            DiffKind::OnlyRemote { .. } => println!("  {key}: only on {}", b.name),
            DiffKind::Different { .. } => println!("  {key}: versions differ"),
        }
    }

    // Repair: here, copy A's entries to B and B's to A (the store would
    // merge version vectors and keep concurrent siblings instead).
    for (key, version) in [
        ("user:000042", "v2"),
        ("user:031337", "v2"),
        ("user:new", "v1"),
    ] {
        b.put(key, version);
    }
    a.put("user:099999", "v2");

    let after = diff(&a.state, &b.state)?;
    println!(
        "after repair: {} keys differ, {} round trip",
        after.differences.len(),
        after.stats.round_trips
    );
    Ok(())
}
