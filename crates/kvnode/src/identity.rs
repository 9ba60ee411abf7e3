//! The node's identity in its data directory: its id and its generation,
//! and the lock that keeps a second node off the directory.
//!
//! ```text
//! <data_dir>/LOCK         empty; flock'ed while a node runs
//! <data_dir>/node_id      16 hex digits and a newline; written once
//! <data_dir>/generation   a decimal counter and a newline; +1 every start
//! ```
//!
//! The id is chosen at random on first start and never changes for the life
//! of the data. The generation tells gossip that a restarted node is a new
//! incarnation, so its heartbeat counter starting again from zero is not
//! mistaken for an old, stale one. Both files are replaced atomically (write,
//! fsync, rename, fsync the directory).

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use kv_storage::{DirLock, LsmError};
use kv_types::NodeId;

/// Locks `dir` for this process (kv-storage's [`DirLock`] on `<dir>/LOCK`,
/// held as long as the returned value lives), or says which directory is
/// taken. Two nodes on one directory would share an id and interleave their
/// WALs.
pub fn lock(dir: &Path) -> Result<DirLock> {
    DirLock::acquire(dir).map_err(|e| match e {
        LsmError::Locked { .. } => anyhow!(
            "data directory {} is in use by another kvnode (its LOCK is held); \
             give each node its own --data-dir",
            dir.display()
        ),
        e => anyhow::Error::new(e),
    })
}

/// Reads the node id from `dir`, or chooses and persists one.
pub fn node_id(dir: &Path) -> Result<NodeId> {
    let path = dir.join("node_id");
    match fs::read_to_string(&path) {
        Ok(text) => text
            .trim()
            .parse()
            .with_context(|| format!("{} is corrupt", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = NodeId(rand::random::<u64>());
            write_atomically(dir, "node_id", &format!("{id}\n"))?;
            Ok(id)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Increments and returns the generation stored in `dir` (1 on first start).
pub fn next_generation(dir: &Path) -> Result<u64> {
    let path = dir.join("generation");
    let previous = match fs::read_to_string(&path) {
        Ok(text) => text
            .trim()
            .parse::<u64>()
            .with_context(|| format!("{} is corrupt", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let Some(next) = previous.checked_add(1) else {
        bail!("{} has reached its maximum", path.display());
    };
    write_atomically(dir, "generation", &format!("{next}\n"))?;
    Ok(next)
}

/// Replaces `dir/name` with `contents` so that a crash leaves either the old
/// or the new file, never a torn one.
pub fn write_atomically(dir: &Path, name: &str, contents: &str) -> Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let dest = dir.join(name);
    let mut f =
        fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, &dest).with_context(|| format!("cannot rename to {}", dest.display()))?;
    fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_is_stable_and_generation_grows() {
        let dir = tempfile::tempdir().unwrap();
        let id = node_id(dir.path()).unwrap();
        assert_eq!(node_id(dir.path()).unwrap(), id);
        assert_eq!(next_generation(dir.path()).unwrap(), 1);
        assert_eq!(next_generation(dir.path()).unwrap(), 2);
    }

    #[test]
    fn corrupt_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("node_id"), "not hex").unwrap();
        assert!(node_id(dir.path()).is_err());
        fs::write(dir.path().join("generation"), "-3").unwrap();
        assert!(next_generation(dir.path()).is_err());
    }
}
