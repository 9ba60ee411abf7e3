//! Crash test: a child process writing in each durability mode is killed
//! with SIGKILL at random moments; on reopen every acknowledged write is
//! there, with its value.
//!
//! A process crash keeps the page cache, so this proves that every mode
//! hands each acknowledged write to the kernel before `put` returns; it
//! cannot tell `write` from `fdatasync` (a power cut can).
//!
//! Each test is its own child: the parent re-runs the test binary with
//! `KV_CRASH_CHILD=<dir>` and the test's exact name, and the same test
//! function, seeing that variable, becomes the writer, printing the index
//! of each write once `put` has returned. The parent reads those lines,
//! kills the child after a seeded random delay, and checks the directory.
//! The seed is printed; replay with `KV_SEED`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use kv_storage::{Durability, LsmStorage, Options};
use kv_types::Record;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const KILLS: u64 = 6;

fn options(durability: Durability) -> Options {
    // Small memtables, so that kills also land during flushes and
    // compactions, not only during WAL appends.
    Options::default()
        .durability(durability)
        .memtable_bytes(32 * 1024)
        .block_bytes(512)
}

fn key(round: u64, i: u64) -> Bytes {
    Bytes::from(format!("r{round:02}-k{i:06}"))
}

fn record(round: u64, i: u64) -> Record {
    Record::value(
        Bytes::from(format!(
            "value {round} {i} {}",
            "x".repeat((i % 40) as usize)
        )),
        Bytes::from(format!("meta{i}")),
    )
}

/// The writer: puts until it is killed.
fn child(dir: &str, round: u64, durability: Durability) -> ! {
    let db = LsmStorage::open(dir, options(durability)).expect("child open");
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for i in 0.. {
        db.put(key(round, i), record(round, i)).expect("child put");
        // The parent counts a write as acknowledged only once this line
        // is out.
        writeln!(out, "{i}").expect("child stdout");
        out.flush().expect("child stdout");
    }
    unreachable!("the writer runs until it is killed")
}

/// Kills a writer in `durability` mode `KILLS` times, checking after each
/// kill that every write acknowledged in any round is there.
fn crash_loop(test_name: &str, durability: Durability) {
    if let Ok(dir) = std::env::var("KV_CRASH_CHILD") {
        let round = std::env::var("KV_CRASH_ROUND")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(0);
        child(&dir, round, durability);
    }
    let seed = std::env::var("KV_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_c4a5);
    eprintln!("{test_name}: seed {seed} (replay with KV_SEED={seed})");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("current_exe");
    let mut acked_per_round = Vec::new();
    for round in 0..KILLS {
        let mut child = Command::new(&exe)
            .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
            .env("KV_CRASH_CHILD", dir.path())
            .env("KV_CRASH_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("child stdout");
        let reader = std::thread::spawn(move || {
            let mut last = None;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The test harness's own lines are not numbers.
                if let Ok(i) = line.parse::<u64>() {
                    last = Some(i);
                }
            }
            last
        });
        std::thread::sleep(Duration::from_millis(rng.random_range(150..700)));
        // `Child::kill` sends SIGKILL on Unix: no destructor runs.
        child.kill().expect("kill child");
        child.wait().expect("wait child");
        let acked = reader.join().expect("reader thread");
        eprintln!("round {round}: killed after {acked:?} acknowledged writes");
        acked_per_round.push(acked);

        let db = LsmStorage::open(dir.path(), options(durability)).expect("reopen after SIGKILL");
        for (r, acked) in acked_per_round.iter().enumerate() {
            let Some(last) = acked else { continue };
            for i in 0..=*last {
                let got = db.get(&key(r as u64, i)).expect("get after SIGKILL");
                assert_eq!(
                    got,
                    Some(record(r as u64, i)),
                    "{durability:?}, round {r}: acknowledged write {i} of {last} lost or wrong (seed {seed})"
                );
            }
        }
        db.close().expect("close");
    }
    assert!(
        acked_per_round.iter().any(Option::is_some),
        "no child acknowledged any write: the test tested nothing"
    );
}

#[test]
fn sync_keeps_acknowledged_writes_across_sigkill() {
    crash_loop(
        "sync_keeps_acknowledged_writes_across_sigkill",
        Durability::Sync,
    );
}

/// The interval is far longer than a round, so the syncer never runs
/// before the kill: only the write to the kernel at acknowledgement
/// can keep the records.
#[test]
fn periodic_keeps_acknowledged_writes_across_sigkill() {
    crash_loop(
        "periodic_keeps_acknowledged_writes_across_sigkill",
        Durability::Periodic(Duration::from_secs(60)),
    );
}

#[test]
fn none_keeps_acknowledged_writes_across_sigkill() {
    crash_loop(
        "none_keeps_acknowledged_writes_across_sigkill",
        Durability::None,
    );
}
