//! Damage on disk: a WAL cut inside its last record reopens to the last
//! whole record; a flipped bit anywhere before the tail of the WAL, or
//! anywhere in an SSTable (block, index, filter, footer), or a torn record
//! in a WAL segment that is not the last, gives a typed error: never a
//! wrong value, never a false "not found".
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns panic on failure, as tests do

mod common;

use std::path::{Path, PathBuf};

use common::{key, value};
use kv_storage::{Durability, LsmError, LsmStorage, Options};

fn options() -> Options {
    // A small memtable keeps the preallocated WAL small, so copying the
    // database for each damaged variant is cheap.
    Options::default()
        .durability(Durability::None)
        .memtable_bytes(64 * 1024)
        .block_bytes(512)
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Where the written part of a (preallocated, zero-filled) WAL segment ends.
/// The test records end in a non-zero byte.
fn used_len(wal: &Path) -> u64 {
    let data = std::fs::read(wal).unwrap();
    data.iter()
        .rposition(|b| *b != 0)
        .map_or(0, |p| p as u64 + 1)
}

/// A database whose only WAL segment holds `n` records, and where the
/// segment's records ended before the last one was appended.
fn wal_with_records(dir: &Path, n: u64) -> (PathBuf, u64) {
    let db = LsmStorage::open(dir, options()).unwrap();
    for i in 0..n - 1 {
        db.put(key(i), value(i, 1)).unwrap();
    }
    db.sync().unwrap();
    let wal = files(dir, "wal").pop().unwrap();
    let before_last = used_len(&wal);
    db.put(key(n - 1), value(n - 1, 1)).unwrap();
    // Dropping closes: the WAL is written and synced, memtables are not
    // flushed, so the records stay in the WAL for the next open.
    drop(db);
    (wal, before_last)
}

#[test]
fn wal_cut_at_every_offset_of_its_last_record_reopens_to_the_last_whole_record() {
    let src = tempfile::tempdir().unwrap();
    let n = 5;
    let (wal, before_last) = wal_with_records(src.path(), n);
    let full = used_len(&wal);
    assert!(full > before_last);
    // A crash can leave the last record cut short by the end of the file,
    // or followed by the zeros of the preallocated space.
    for (cut, zero_fill) in (before_last..=full).flat_map(|c| [(c, false), (c, true)]) {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(src.path(), dir.path());
        let copy = dir.path().join(wal.file_name().unwrap());
        if zero_fill {
            let mut data = std::fs::read(&copy).unwrap();
            data[cut as usize..].fill(0);
            std::fs::write(&copy, &data).unwrap();
        } else {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&copy)
                .unwrap()
                .set_len(cut)
                .unwrap();
        }
        let db = LsmStorage::open(dir.path(), options()).unwrap();
        for i in 0..n - 1 {
            assert_eq!(db.get(&key(i)).unwrap(), Some(value(i, 1)), "cut {cut}");
        }
        let last = db.get(&key(n - 1)).unwrap();
        if cut == full {
            assert_eq!(last, Some(value(n - 1, 1)));
        } else {
            assert_eq!(last, None, "cut {cut}: a torn record was replayed");
        }
    }
}

#[test]
fn a_flipped_bit_in_the_wal_before_its_tail_is_a_typed_error() {
    let src = tempfile::tempdir().unwrap();
    let (wal, before_last) = wal_with_records(src.path(), 5);
    // Every byte of every record but the last: header, length, checksums
    // and payloads.
    for at in 0..before_last {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(src.path(), dir.path());
        let copy = dir.path().join(wal.file_name().unwrap());
        let mut data = std::fs::read(&copy).unwrap();
        data[at as usize] ^= 0x04;
        std::fs::write(&copy, &data).unwrap();
        match LsmStorage::open(dir.path(), options()) {
            Err(e) => assert!(e.is_corruption(), "byte {at}: {e}"),
            Ok(_) => panic!("byte {at}: a damaged WAL opened"),
        }
    }
}

/// One table holding keys `0..n`, and its path.
fn one_table(dir: &Path, n: u64) -> PathBuf {
    let db = LsmStorage::open(dir, options()).unwrap();
    for i in 0..n {
        db.put(key(i), value(i, 7)).unwrap();
    }
    db.flush().unwrap();
    db.close().unwrap();
    let t = files(dir, "sst");
    assert_eq!(t.len(), 1);
    t[0].clone()
}

#[test]
fn a_flipped_bit_anywhere_in_a_table_is_an_error_never_a_wrong_answer() {
    let src = tempfile::tempdir().unwrap();
    let n = 200;
    let table = one_table(src.path(), n);
    let len = std::fs::metadata(&table).unwrap().len();
    let footer = std::fs::read(&table).unwrap()[len as usize - 56..].to_vec();
    let u64_at = |p: usize| u64::from_le_bytes(footer[p..p + 8].try_into().unwrap());
    let (index_at, bloom_at) = (u64_at(0), u64_at(12));
    // A stride through every region, plus the first and last byte of each.
    let mut offsets: Vec<u64> = (0..len).step_by(41).collect();
    offsets.extend([
        0,
        index_at - 1,
        index_at,
        bloom_at - 1,
        bloom_at,
        len - 56,
        len - 1,
    ]);
    let mut errors_seen = 0;
    for at in offsets {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(src.path(), dir.path());
        let copy = dir.path().join(table.file_name().unwrap());
        let mut data = std::fs::read(&copy).unwrap();
        data[at as usize] ^= 0x10;
        std::fs::write(&copy, &data).unwrap();
        let db = match LsmStorage::open(dir.path(), options()) {
            Err(e) => {
                assert!(e.is_corruption(), "byte {at}: {e}");
                assert!(
                    at >= index_at,
                    "byte {at}: a data block flip failed the open"
                );
                errors_seen += 1;
                continue;
            }
            Ok(db) => db,
        };
        assert!(
            at < index_at,
            "byte {at}: index, filter or footer damage went unseen"
        );
        let mut block_errors = 0;
        for i in 0..n {
            match db.get(&key(i)) {
                Ok(got) => assert_eq!(got, Some(value(i, 7)), "byte {at}, key {i}"),
                Err(e) => {
                    assert!(
                        matches!(e, LsmError::ChecksumMismatch { .. }),
                        "byte {at}, key {i}: {e}"
                    );
                    block_errors += 1;
                }
            }
        }
        assert!(
            block_errors > 0,
            "byte {at}: a damaged block was read as good"
        );
        let scan: Result<Vec<_>, _> = db.scan(kv_types::KeyRange::all()).collect();
        assert!(scan.is_err(), "byte {at}: a scan read a damaged block");
        errors_seen += 1;
    }
    assert!(errors_seen > 10);
}

#[test]
fn a_damaged_manifest_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    one_table(dir.path(), 10);
    let m = dir.path().join("MANIFEST");
    let mut data = std::fs::read(&m).unwrap();
    data[30] ^= 1;
    std::fs::write(&m, &data).unwrap();
    let e = LsmStorage::open(dir.path(), options()).unwrap_err();
    assert!(matches!(e, LsmError::ChecksumMismatch { .. }), "{e}");
    let as_storage: kv_types::StorageError = e.into();
    assert!(matches!(
        as_storage,
        kv_types::StorageError::Corruption { .. }
    ));
}

#[test]
fn files_no_manifest_names_are_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    one_table(dir.path(), 10);
    let stray = dir.path().join("99999999.sst");
    std::fs::write(&stray, b"left over by a crash mid-flush").unwrap();
    std::fs::write(dir.path().join("MANIFEST.tmp"), b"half").unwrap();
    let keep = dir.path().join("notes.txt");
    std::fs::write(&keep, b"not ours").unwrap();
    let db = LsmStorage::open(dir.path(), options()).unwrap();
    assert!(!stray.exists());
    assert!(!dir.path().join("MANIFEST.tmp").exists());
    assert!(keep.exists(), "files that are not ours are left alone");
    assert_eq!(db.get(&key(3)).unwrap(), Some(value(3, 7)));
}

/// Cuts WAL segment `wal` to `at` bytes.
fn tear(wal: &Path, at: u64) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(wal)
        .unwrap()
        .set_len(at)
        .unwrap();
}

#[test]
fn a_torn_record_in_a_wal_segment_that_is_not_the_last_is_an_error() {
    // Rotation syncs a segment whole before the next one exists, so only the
    // last segment may end in a torn record; a torn record anywhere else
    // means acknowledged writes after it were lost.
    let src = tempfile::tempdir().unwrap();
    let n = 5;
    let (wal, before_last) = wal_with_records(src.path(), n);
    let id: u64 = wal.file_stem().unwrap().to_str().unwrap().parse().unwrap();
    let later = |dir: &Path| dir.join(format!("{:08}.wal", id + 1));

    // The earlier of two segments is torn: an error.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(src.path(), dir.path());
    std::fs::copy(&wal, later(dir.path())).unwrap();
    tear(&dir.path().join(wal.file_name().unwrap()), before_last + 3);
    match LsmStorage::open(dir.path(), options()) {
        Err(e) => assert!(e.is_corruption(), "{e}"),
        Ok(_) => panic!("a torn record in a segment that is not the last was accepted"),
    }

    // The same tear in the last segment is a torn tail: cut off, and every
    // whole record replayed.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(src.path(), dir.path());
    std::fs::copy(&wal, later(dir.path())).unwrap();
    tear(&later(dir.path()), before_last + 3);
    let db = LsmStorage::open(dir.path(), options()).unwrap();
    for i in 0..n {
        assert_eq!(db.get(&key(i)).unwrap(), Some(value(i, 1)), "key {i}");
    }
}
