//! The node's identity in its data directory: its id, its generation, the
//! actor that issues its dots, and the lock that keeps a second node off the
//! directory.
//!
//! ```text
//! <data_dir>/LOCK         empty; flock'ed while a node runs
//! <data_dir>/node_id      16 hex digits and a newline; written once
//! <data_dir>/generation   a decimal counter and a newline; +1 every start
//! <data_dir>/RUNNING      "<boot id> <sync|lossy>\n" while a node runs;
//!                         removed after the final sync of a clean stop
//! <data_dir>/data/ACTOR   "<actor, 16 hex digits> <generation>\n"
//! ```
//!
//! The id is chosen at random on first start and never changes for the life
//! of the data. The generation tells gossip that a restarted node is a new
//! incarnation, so its heartbeat counter starting again from zero is not
//! mistaken for an old, stale one. Every file is replaced atomically (write,
//! fsync, rename, fsync the directory).
//!
//! # Actors: dots are never issued twice
//!
//! A dot's counter is the next one after what the key's stored clock holds
//! for the issuing actor. If the issuer lost a write it had acknowledged,
//! it would issue that write's dot again for another value, and replicas
//! holding the old one would take the new write as already seen (Riak's
//! kv679). So the actor is not the node id but an epoch of it: a random id,
//! kept in the data store's own directory, and replaced by a fresh one
//! whenever the node cannot prove that the store holds every write the
//! actor ever issued:
//!
//! - `data/ACTOR` is missing: a new node, or `data/` was wiped or replaced;
//! - its generation is not the previous start's: `data/` was restored from
//!   an older copy;
//! - `RUNNING` survived (the last run did not stop cleanly), that run did not
//!   fsync every write, and the machine has rebooted since (its boot id
//!   differs): unsynced WAL writes may be gone. A process crash without a
//!   reboot keeps the page cache, so every acknowledged write is still there.
//!
//! A fresh actor starts every key's counter at 1 under a name nobody used,
//! so nothing it issues can collide. The cost is one more entry in the
//! clocks of the keys it writes. What this cannot see is a restore of the
//! whole data directory, `node_id` and `generation` included; don't.

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
    match read_if_present(&path)? {
        Some(text) => text
            .trim()
            .parse()
            .with_context(|| format!("{} is corrupt", path.display())),
        None => {
            let id = NodeId(rand::random::<u64>());
            write_atomically(dir, "node_id", &format!("{id}\n"))?;
            Ok(id)
        }
    }
}

/// Increments and returns the generation stored in `dir` (1 on first start).
pub fn next_generation(dir: &Path) -> Result<u64> {
    let path = dir.join("generation");
    let previous = match read_if_present(&path)? {
        Some(text) => text
            .trim()
            .parse::<u64>()
            .with_context(|| format!("{} is corrupt", path.display()))?,
        None => 0,
    };
    let Some(next) = previous.checked_add(1) else {
        bail!("{} has reached its maximum", path.display());
    };
    write_atomically(dir, "generation", &format!("{next}\n"))?;
    Ok(next)
}

/// Why a node starts with a fresh actor, or `None` if it keeps its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActorChange {
    /// `data/ACTOR` is missing.
    NoRecord,
    /// `data/ACTOR` was written by another start than the previous one.
    DataFromAnotherStart {
        /// The start that last wrote `data/ACTOR`.
        recorded: u64,
        /// The start before this one.
        previous: u64,
    },
    /// The last run stopped uncleanly without fsyncing every write, and the
    /// machine rebooted since.
    UncleanStopAcrossReboot,
}

impl std::fmt::Display for ActorChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoRecord => write!(f, "the data store has no actor record (new or wiped data)"),
            Self::DataFromAnotherStart { recorded, previous } => write!(
                f,
                "the data store was last opened by start {recorded}, not by the previous start \
                 {previous} (restored from an older copy?)"
            ),
            Self::UncleanStopAcrossReboot => write!(
                f,
                "the last run stopped uncleanly without fsyncing every write and the machine \
                 has rebooted since, so acknowledged writes may be lost"
            ),
        }
    }
}

/// The kernel's boot id, which changes at every boot; `None` where it
/// cannot be read (then a reboot is assumed).
fn boot_id() -> Option<String> {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// Chooses the actor this start issues dots as (see the module docs), and
/// records it: `data/ACTOR` with `generation`, and `RUNNING` with the boot id
/// and whether every write is fsynced. Call once per start, after
/// [`next_generation`] and before the first write; [`stopped_cleanly`] at a
/// clean stop.
pub fn actor(
    dir: &Path,
    generation: u64,
    syncs_every_write: bool,
) -> Result<(NodeId, Option<ActorChange>)> {
    actor_with_boot_id(dir, generation, syncs_every_write, boot_id())
}

fn actor_with_boot_id(
    dir: &Path,
    generation: u64,
    syncs_every_write: bool,
    boot: Option<String>,
) -> Result<(NodeId, Option<ActorChange>)> {
    let data = dir.join("data");
    fs::create_dir_all(&data).with_context(|| format!("cannot create {}", data.display()))?;
    let actor_path = data.join("ACTOR");
    let recorded = match read_if_present(&actor_path)? {
        Some(text) => {
            let mut parts = text.split_whitespace();
            let parsed = parts
                .next()
                .and_then(|a| a.parse::<NodeId>().ok())
                .zip(parts.next().and_then(|g| g.parse::<u64>().ok()));
            Some(parsed.with_context(|| format!("{} is corrupt", actor_path.display()))?)
        }
        None => None,
    };
    let running_path = dir.join("RUNNING");
    let unclean = match read_if_present(&running_path)? {
        Some(text) => {
            let mut parts = text.split_whitespace();
            let then_boot = parts.next().unwrap_or("");
            let then_synced = parts.next() == Some("sync");
            let rebooted = boot.as_deref() != Some(then_boot);
            !then_synced && rebooted
        }
        None => false,
    };
    let previous = generation.saturating_sub(1);
    let change = match recorded {
        None => Some(ActorChange::NoRecord),
        Some((_, recorded)) if recorded != previous => {
            Some(ActorChange::DataFromAnotherStart { recorded, previous })
        }
        Some(_) if unclean => Some(ActorChange::UncleanStopAcrossReboot),
        Some(_) => None,
    };
    let actor = match (&change, recorded) {
        (None, Some((actor, _))) => actor,
        _ => NodeId(rand::random::<u64>()),
    };
    let mode = if syncs_every_write { "sync" } else { "lossy" };
    let boot = boot.unwrap_or_else(|| "unknown".to_owned());
    write_atomically(dir, "RUNNING", &format!("{boot} {mode}\n"))?;
    write_atomically(&data, "ACTOR", &format!("{actor} {generation}\n"))?;
    Ok((actor, change))
}

/// Records a clean stop: every write is synced, so the next start keeps
/// the actor whatever happens to the machine meanwhile.
pub fn stopped_cleanly(dir: &Path) -> Result<()> {
    let path = dir.join("RUNNING");
    fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
    fs::File::open(dir)?.sync_all()?;
    Ok(())
}

/// The contents of `path`, or `None` if it does not exist.
fn read_if_present(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
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

    /// One start as the node makes it: the next generation, then the actor.
    fn start(dir: &Path, synced: bool, boot: &str) -> (NodeId, Option<ActorChange>) {
        let generation = next_generation(dir).unwrap();
        actor_with_boot_id(dir, generation, synced, Some(boot.to_owned())).unwrap()
    }

    #[test]
    fn actor_survives_clean_stops_and_process_crashes() {
        let dir = tempfile::tempdir().unwrap();
        let (first, change) = start(dir.path(), false, "boot-a");
        assert_eq!(change, Some(ActorChange::NoRecord));
        stopped_cleanly(dir.path()).unwrap();
        assert_eq!(
            start(dir.path(), false, "boot-b"),
            (first, None),
            "clean stop, reboot"
        );
        // No clean stop (a kill -9), same boot: the page cache kept every write.
        assert_eq!(
            start(dir.path(), false, "boot-b"),
            (first, None),
            "crash, no reboot"
        );
        // The previous run synced every write: a reboot loses nothing either.
        assert_eq!(start(dir.path(), true, "boot-b"), (first, None));
        assert_eq!(
            start(dir.path(), false, "boot-c"),
            (first, None),
            "synced run, reboot"
        );
    }

    #[test]
    fn actor_is_replaced_when_data_may_be_incomplete() {
        let dir = tempfile::tempdir().unwrap();
        let (first, _) = start(dir.path(), false, "boot-a");
        // Unclean stop of an unsynced run, then a reboot.
        let (second, change) = start(dir.path(), false, "boot-b");
        assert_eq!(change, Some(ActorChange::UncleanStopAcrossReboot));
        assert_ne!(second, first);
        // data/ wiped.
        stopped_cleanly(dir.path()).unwrap();
        let saved = fs::read(dir.path().join("data/ACTOR")).unwrap();
        fs::remove_dir_all(dir.path().join("data")).unwrap();
        let (third, change) = start(dir.path(), false, "boot-b");
        assert_eq!(change, Some(ActorChange::NoRecord));
        assert_ne!(third, second);
        // data/ restored from an older copy (one that still names `second`).
        stopped_cleanly(dir.path()).unwrap();
        fs::write(dir.path().join("data/ACTOR"), saved).unwrap();
        let (fourth, change) = start(dir.path(), false, "boot-b");
        assert!(
            matches!(change, Some(ActorChange::DataFromAnotherStart { .. })),
            "{change:?}"
        );
        assert!(fourth != second && fourth != third);
    }

    #[test]
    fn corrupt_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("node_id"), "not hex").unwrap();
        assert!(node_id(dir.path()).is_err());
        fs::write(dir.path().join("generation"), "-3").unwrap();
        assert!(next_generation(dir.path()).is_err());
        fs::create_dir_all(dir.path().join("data")).unwrap();
        fs::write(dir.path().join("data/ACTOR"), "zz 1").unwrap();
        assert!(actor(dir.path(), 2, false).is_err());
    }
}
