//! The manifest: which tables are live, in which order, and which WAL
//! segments still hold unflushed writes. Replaced atomically.
//!
//! ```text
//! MANIFEST := +-------------------+----------------+------------------+---------------+
//!             | magic u64 LE      | version u32 LE | next_file_id u64 | wal_floor u64 |
//!             | "KVSMANIF"        | = 1            |                  |               |
//!             +-------------------+----------------+------------------+---------------+
//!             | last_seq u64      | table_count u32| table_id u64 * table_count      | crc32 u32 |
//!             +-------------------+----------------+---------------------------------+-----------+
//! ```
//!
//! Tables are listed newest first: a key's newest version is in the first
//! table that holds it. WAL segments with an id below `wal_floor` are fully
//! flushed. The crc covers every byte before it.
//!
//! An update writes `MANIFEST.tmp`, `fsync`s it, renames it over `MANIFEST`
//! and `fsync`s the directory, so a crash leaves either the old or the new
//! manifest, never a mix.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use crate::codec;
use crate::error::LsmError;

const MAGIC: u64 = u64::from_le_bytes(*b"KVSMANIF");
/// Format version of manifests written by this build.
pub(crate) const VERSION: u32 = 1;
/// The manifest's file name.
pub(crate) const NAME: &str = "MANIFEST";
/// The name a new manifest is written under before its rename.
pub(crate) const TMP_NAME: &str = "MANIFEST.tmp";
/// Most tables a manifest may list: a bound on what a corrupt count can make
/// the reader allocate.
const TABLES_MAX: usize = 1 << 20;

/// The live state of a database directory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Manifest {
    pub(crate) next_file_id: u64,
    pub(crate) wal_floor: u64,
    pub(crate) last_seq: u64,
    /// Newest first.
    pub(crate) tables: Vec<u64>,
}

impl Manifest {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(44 + self.tables.len() * 8);
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&self.next_file_id.to_le_bytes());
        out.extend_from_slice(&self.wal_floor.to_le_bytes());
        out.extend_from_slice(&self.last_seq.to_le_bytes());
        out.extend_from_slice(&(self.tables.len() as u32).to_le_bytes());
        for t in &self.tables {
            out.extend_from_slice(&t.to_le_bytes());
        }
        let c = codec::crc(&out);
        out.extend_from_slice(&c.to_le_bytes());
        out
    }

    fn decode(path: &Path, data: &[u8]) -> Result<Self, LsmError> {
        let bad = |d: &str| LsmError::corrupt(path, 0, d);
        let body = data
            .len()
            .checked_sub(4)
            .ok_or_else(|| bad("shorter than its checksum"))?;
        let magic = codec::get_u64(data, 0).ok_or_else(|| bad("truncated"))?;
        if magic != MAGIC {
            return Err(LsmError::BadMagic {
                file: path.to_owned(),
                what: "manifest",
                got: magic,
            });
        }
        let expected = codec::get_u32(data, body).unwrap_or_default();
        let got = codec::crc(&data[..body]);
        if expected != got {
            return Err(LsmError::ChecksumMismatch {
                file: path.to_owned(),
                offset: 0,
                expected,
                got,
            });
        }
        let version = codec::get_u32(data, 8).ok_or_else(|| bad("truncated"))?;
        if version != VERSION {
            return Err(LsmError::UnsupportedVersion {
                file: path.to_owned(),
                version,
                supported: VERSION,
            });
        }
        let u64_at = |p| codec::get_u64(data, p).ok_or_else(|| bad("truncated"));
        let count = codec::get_u32(data, 36).ok_or_else(|| bad("truncated"))? as usize;
        if count > TABLES_MAX || 40 + count * 8 != body {
            return Err(bad("table count does not match the length"));
        }
        Ok(Self {
            next_file_id: u64_at(12)?,
            wal_floor: u64_at(20)?,
            last_seq: u64_at(28)?,
            tables: (0..count)
                .map(|i| u64_at(40 + i * 8))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Reads the manifest of `dir`, or `None` for a new directory.
    pub(crate) fn load(dir: &Path) -> Result<Option<Self>, LsmError> {
        let path = dir.join(NAME);
        match std::fs::read(&path) {
            Ok(data) => Self::decode(&path, &data).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(LsmError::io("read manifest", path, e)),
        }
    }

    /// Replaces the manifest of `dir` atomically; returns bytes written.
    pub(crate) fn store(&self, dir: &Path) -> Result<u64, LsmError> {
        let tmp = dir.join(TMP_NAME);
        let data = self.encode();
        let mut f = File::create(&tmp).map_err(|e| LsmError::io("create manifest", &tmp, e))?;
        f.write_all(&data)
            .and_then(|()| f.sync_all())
            .map_err(|e| LsmError::io("write manifest", &tmp, e))?;
        drop(f);
        let path = dir.join(NAME);
        std::fs::rename(&tmp, &path).map_err(|e| LsmError::io("rename manifest", &path, e))?;
        sync_dir(dir)?;
        Ok(data.len() as u64)
    }
}

/// `fsync`s a directory, so that created, renamed and removed names in it
/// are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LsmError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| LsmError::io("fsync directory", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_detects_damage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), None);
        let m = Manifest {
            next_file_id: 9,
            wal_floor: 7,
            last_seq: 1234,
            tables: vec![8, 5, 2],
        };
        m.store(dir.path()).unwrap();
        assert_eq!(Manifest::load(dir.path()).unwrap(), Some(m.clone()));
        let path = dir.path().join(NAME);
        let good = std::fs::read(&path).unwrap();
        for byte in 0..good.len() {
            let mut bad = good.clone();
            bad[byte] ^= 1;
            std::fs::write(&path, &bad).unwrap();
            let e = Manifest::load(dir.path()).unwrap_err();
            assert!(e.is_corruption(), "byte {byte}: {e}");
        }
    }

    #[test]
    fn store_replaces_the_file_and_never_rewrites_it_in_place() {
        // A link to the old manifest made before an update still reads as
        // the whole old manifest: the update wrote a new file and renamed
        // it over the name, so no crash could have left a mix.
        let dir = tempfile::tempdir().unwrap();
        let old = Manifest {
            next_file_id: 3,
            wal_floor: 2,
            last_seq: 10,
            tables: vec![1],
        };
        old.store(dir.path()).unwrap();
        let path = dir.path().join(NAME);
        let link = dir.path().join("MANIFEST.before");
        std::fs::hard_link(&path, &link).unwrap();
        let new = Manifest {
            next_file_id: 5,
            wal_floor: 4,
            last_seq: 20,
            tables: vec![3, 1],
        };
        new.store(dir.path()).unwrap();
        let read = |p: &Path| Manifest::decode(p, &std::fs::read(p).unwrap()).unwrap();
        assert_eq!(read(&link), old, "the manifest was rewritten in place");
        assert_eq!(read(&path), new);
        assert!(!dir.path().join(TMP_NAME).exists());
    }

    /// `m` encoded with its table count replaced by `count`, the checksum
    /// recomputed so that only the count is wrong.
    fn with_count(m: &Manifest, count: u32) -> Vec<u8> {
        let mut data = m.encode();
        let body = data.len() - 4;
        data[36..40].copy_from_slice(&count.to_le_bytes());
        let c = codec::crc(&data[..body]);
        data[body..].copy_from_slice(&c.to_le_bytes());
        data
    }

    #[test]
    fn a_table_count_that_disagrees_with_the_length_is_corruption() {
        // Behind a good checksum (a writer's bug, not a flipped bit), a
        // count that does not match the length must not be believed.
        let m = Manifest {
            next_file_id: 9,
            wal_floor: 7,
            last_seq: 1234,
            tables: vec![8, 5, 2],
        };
        let path = Path::new("MANIFEST");
        for count in [0, 2, 4] {
            let e = Manifest::decode(path, &with_count(&m, count)).unwrap_err();
            assert!(e.is_corruption(), "count {count}: {e}");
        }
    }

    #[test]
    fn the_table_count_bound_is_inclusive() {
        let path = Path::new("MANIFEST");
        let full = Manifest {
            tables: (0..TABLES_MAX as u64).collect(),
            ..Manifest::default()
        };
        assert_eq!(Manifest::decode(path, &full.encode()).unwrap(), full);
        let over = Manifest {
            tables: (0..TABLES_MAX as u64 + 1).collect(),
            ..Manifest::default()
        };
        let e = Manifest::decode(path, &over.encode()).unwrap_err();
        assert!(e.is_corruption(), "{e}");
    }

    #[test]
    fn a_manifest_that_cannot_be_read_is_an_error_not_a_new_database() {
        // Only a missing manifest means a new directory; treating any other
        // read failure so would open an empty database over live tables.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(NAME)).unwrap();
        assert!(Manifest::load(dir.path()).is_err());
    }
}
