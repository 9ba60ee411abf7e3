//! Figures of the storage engine: ours (`LsmStorage`) against fjall on the
//! same workload, in the same run, with matched durability.
//!
//! Each engine's phase runs in a child process (this binary re-executed with
//! `child <engine> <phase> <dir>`), so that peak memory (VmHWM) and bytes
//! written (`wchar` of /proc/self/io) belong to one engine alone. Phases
//! alternate between the engines. `--runs N` repeats everything; the table
//! shows medians, and each ratio is the median of the per-run ratios.
//!
//! Workload: 1,000,000 random 16-byte keys with 100-byte incompressible
//! values loaded without per-write fsync (ours `Durability::None`, fjall
//! `manual_journal_persist`), then 1,000,000 random reads of present keys and
//! 100,000 of absent keys; then, in a fresh directory, 10,000 writes each
//! `fdatasync`ed before it returns (ours `Durability::Sync`, fjall `insert` +
//! `persist(SyncData)`), by one writer and by 8 concurrent writers.
//! Both engines get a 32 MiB block cache and their default 64 MiB
//! memtables.
//!
//! Write amplification is `wchar` (bytes passed to `write`) over the logical
//! bytes loaded (1,000,000 × 116): once at the end of the reads, with
//! whatever each engine still holds in memtables, and once "settled", after
//! a flush and once background compaction is idle.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use kv_benches::{Mark, Report, target_dir};
use kv_storage::{Durability, LsmStorage, Options};
use kv_types::Record;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};

const LOAD_KEYS: u64 = 1_000_000;
const PRESENT_READS: u64 = 1_000_000;
const ABSENT_READS: u64 = 100_000;
const SYNC_WRITES: u64 = 10_000;
const SYNC_WRITERS: u64 = 8;
const VALUE_LEN: usize = 100;
const CACHE_BYTES: usize = 32 * 1024 * 1024;

/// Errors of this binary; `anyhow` is not a dependency of the benches crate.
type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Key `i`: 16 pseudo-random bytes. Absent keys use another domain.
fn key(i: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&splitmix(i).to_le_bytes());
    k[8..].copy_from_slice(&splitmix(i ^ 0xA5A5_A5A5_0000_0000).to_le_bytes());
    k
}

fn absent_key(i: u64) -> [u8; 16] {
    key(i + (1 << 40))
}

/// Incompressible value bytes, sliced at varying offsets.
struct Values(Vec<u8>);

impl Values {
    fn new() -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut v = vec![0u8; 1 << 20];
        rng.fill(&mut v[..]);
        Self(v)
    }
    fn get(&self, i: u64) -> &[u8] {
        let at = (splitmix(i) as usize) % (self.0.len() - VALUE_LEN);
        &self.0[at..at + VALUE_LEN]
    }
}

trait Engine: Send + Sync {
    fn put(&self, k: &[u8], v: &[u8]);
    fn get(&self, k: &[u8]) -> bool;
    /// Flushes memtables and waits until background compaction is idle.
    fn settle(&self);
}

struct Ours(LsmStorage);

impl Engine for Ours {
    fn put(&self, k: &[u8], v: &[u8]) {
        self.0
            .put(
                Bytes::copy_from_slice(k),
                Record::value(Bytes::copy_from_slice(v), Bytes::new()),
            )
            .expect("put");
    }
    fn get(&self, k: &[u8]) -> bool {
        self.0.get(k).expect("get").is_some()
    }
    fn settle(&self) {
        self.0.settle().expect("settle");
    }
}

struct Fjall {
    db: fjall::Database,
    ks: fjall::Keyspace,
    sync: bool,
}

impl Engine for Fjall {
    fn put(&self, k: &[u8], v: &[u8]) {
        self.ks.insert(k, v).expect("insert");
        if self.sync {
            self.db
                .persist(fjall::PersistMode::SyncData)
                .expect("persist");
        }
    }
    fn get(&self, k: &[u8]) -> bool {
        self.ks.get(k).expect("get").is_some()
    }
    fn settle(&self) {
        self.ks.rotate_memtable_and_wait().expect("rotate");
        // fjall has no "wait for compactions"; poll until it has been idle
        // for a second, for at most a minute.
        let mut quiet = 0;
        for _ in 0..600 {
            std::thread::sleep(std::time::Duration::from_millis(100));
            if self.db.outstanding_flushes() == 0 && self.db.active_compactions() == 0 {
                quiet += 1;
                if quiet >= 10 {
                    break;
                }
            } else {
                quiet = 0;
            }
        }
    }
}

fn open(engine: &str, dir: &Path, sync: bool) -> Box<dyn Engine> {
    if engine == "ours" {
        let d = if sync {
            Durability::Sync
        } else {
            Durability::None
        };
        let opts = Options::default()
            .durability(d)
            .block_cache_bytes(CACHE_BYTES);
        return Box::new(Ours(LsmStorage::open(dir, opts).expect("open ours")));
    }
    let db = fjall::Database::builder(dir)
        .cache_size(CACHE_BYTES as u64)
        .manual_journal_persist(true)
        .open()
        .expect("open fjall");
    let ks = db
        .keyspace("bench", fjall::KeyspaceCreateOptions::default)
        .expect("keyspace");
    Box::new(Fjall { db, ks, sync })
}

fn proc_field(file: &str, field: &str) -> u64 {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)
                .and_then(|r| r.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Bytes allocated on disk under `dir` (blocks, not apparent sizes: both
/// engines preallocate their logs as sparse files).
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn child_load(engine: &str, dir: &Path) -> Map<String, Value> {
    let values = Values::new();
    let wchar0 = proc_field("/proc/self/io", "wchar:");
    let db = open(engine, dir, false);
    let t = Instant::now();
    for i in 0..LOAD_KEYS {
        db.put(&key(i), values.get(i));
    }
    let load = LOAD_KEYS as f64 / t.elapsed().as_secs_f64();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let t = Instant::now();
    let mut misses = 0u64;
    for _ in 0..PRESENT_READS {
        if !db.get(&key(rng.random_range(0..LOAD_KEYS))) {
            misses += 1;
        }
    }
    let present = PRESENT_READS as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut false_hits = 0u64;
    for i in 0..ABSENT_READS {
        if db.get(&absent_key(i)) {
            false_hits += 1;
        }
    }
    let absent = ABSENT_READS as f64 / t.elapsed().as_secs_f64();
    assert_eq!(misses, 0, "{engine}: present keys reported missing");
    assert_eq!(false_hits, 0, "{engine}: absent keys reported present");
    let written = proc_field("/proc/self/io", "wchar:") - wchar0;
    let disk = dir_bytes(dir);
    let peak_kib = proc_field("/proc/self/status", "VmHWM:");
    db.settle();
    let written_settled = proc_field("/proc/self/io", "wchar:") - wchar0;
    let disk_settled = dir_bytes(dir);
    drop(db);
    let logical = LOAD_KEYS * (16 + VALUE_LEN as u64);
    let mut m = Map::new();
    m.insert("load_ops".into(), json!(load));
    m.insert("read_present_ops".into(), json!(present));
    m.insert("read_absent_ops".into(), json!(absent));
    m.insert("peak_rss_mib".into(), json!(peak_kib as f64 / 1024.0));
    m.insert("disk_mib".into(), json!(disk as f64 / (1 << 20) as f64));
    m.insert("write_amp".into(), json!(written as f64 / logical as f64));
    m.insert(
        "write_amp_settled".into(),
        json!(written_settled as f64 / logical as f64),
    );
    m.insert(
        "disk_settled_mib".into(),
        json!(disk_settled as f64 / (1 << 20) as f64),
    );
    m
}

fn child_sync(engine: &str, dir: &Path) -> Map<String, Value> {
    let values = Values::new();
    let db: Arc<dyn Engine> = Arc::from(open(engine, dir, true));
    let mut lat = Vec::with_capacity(SYNC_WRITES as usize);
    let t = Instant::now();
    for i in 0..SYNC_WRITES {
        let s = Instant::now();
        db.put(&key(i), values.get(i));
        lat.push(s.elapsed().as_nanos() as u64);
    }
    let single = SYNC_WRITES as f64 / t.elapsed().as_secs_f64();
    lat.sort_unstable();
    let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
    let values = Arc::new(values);
    let per = SYNC_WRITES / SYNC_WRITERS;
    let t = Instant::now();
    let threads: Vec<_> = (0..SYNC_WRITERS)
        .map(|w| {
            let db = db.clone();
            let values = values.clone();
            std::thread::spawn(move || {
                let mut lat = Vec::with_capacity(per as usize);
                for i in 0..per {
                    let k = SYNC_WRITES + w * per + i;
                    let s = Instant::now();
                    db.put(&key(k), values.get(k));
                    lat.push(s.elapsed().as_nanos() as u64);
                }
                lat
            })
        })
        .collect();
    let mut lat: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().expect("writer thread"))
        .collect();
    let multi = (per * SYNC_WRITERS) as f64 / t.elapsed().as_secs_f64();
    lat.sort_unstable();
    let mut m = Map::new();
    m.insert("sync1_ops".into(), json!(single));
    m.insert("sync1_p50_us".into(), json!(p50));
    m.insert("sync1_p99_us".into(), json!(p99));
    m.insert("sync8_ops".into(), json!(multi));
    m.insert("sync8_p50_us".into(), json!(percentile(&lat, 0.5)));
    m.insert("sync8_p99_us".into(), json!(percentile(&lat, 0.99)));
    m
}

fn run_child(engine: &str, phase: &str) -> Result<Map<String, Value>> {
    let base = target_dir().join("bench-tmp");
    std::fs::create_dir_all(&base)?;
    let dir = tempfile::tempdir_in(&base)?;
    let out = Command::new(std::env::current_exe()?)
        .args(["child", engine, phase])
        .arg(dir.path())
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "{engine} {phase} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .ok_or("child printed no RESULT line")?;
    match serde_json::from_str(line)? {
        Value::Object(m) => Ok(m),
        _ => Err("RESULT is not an object".into()),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

/// (key, label, unit, higher is better).
const ROWS: &[(&str, &str, &str, bool)] = &[
    ("load_ops", "load 1M random keys", "ops/s", true),
    ("read_present_ops", "1M reads, present keys", "ops/s", true),
    ("read_absent_ops", "100k reads, absent keys", "ops/s", true),
    (
        "sync1_ops",
        "10k fdatasync'd writes, 1 writer",
        "ops/s",
        true,
    ),
    ("sync1_p50_us", "latency p50, 1 writer", "us", false),
    ("sync1_p99_us", "latency p99, 1 writer", "us", false),
    (
        "sync8_ops",
        "10k fdatasync'd writes, 8 writers",
        "ops/s",
        true,
    ),
    ("sync8_p50_us", "latency p50, 8 writers", "us", false),
    ("sync8_p99_us", "latency p99, 8 writers", "us", false),
    ("peak_rss_mib", "peak memory (load+reads)", "MiB", false),
    ("disk_mib", "bytes on disk after load+reads", "MiB", false),
    ("write_amp", "write amplification (load+reads)", "x", false),
    (
        "write_amp_settled",
        "write amplification, settled",
        "x",
        false,
    ),
    ("disk_settled_mib", "bytes on disk, settled", "MiB", false),
];

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        let (engine, phase) = (&args[2], &args[3]);
        let dir = Path::new(&args[4]);
        let m = match phase.as_str() {
            "load" => child_load(engine, dir),
            _ => child_sync(engine, dir),
        };
        println!("RESULT {}", Value::Object(m));
        return Ok(());
    }
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let only: Option<&str> = args
        .iter()
        .position(|a| a == "--phase")
        .and_then(|i| args.get(i + 1))
        .map(String::as_str);
    let mut per_run: Vec<(Map<String, Value>, Map<String, Value>)> = Vec::new();
    for run in 0..runs {
        let mut ours = Map::new();
        let mut theirs = Map::new();
        for phase in ["load", "sync"] {
            if only.is_some_and(|o| o != phase) {
                continue;
            }
            // Alternate which engine goes first, so neither always gets the
            // cooler page cache or the quieter machine.
            let order = if run % 2 == 0 {
                ["ours", "fjall"]
            } else {
                ["fjall", "ours"]
            };
            for engine in order {
                eprintln!("run {}/{runs}: {engine} {phase}", run + 1);
                let m = run_child(engine, phase)?;
                if engine == "ours" {
                    ours.extend(m);
                } else {
                    theirs.extend(m);
                }
            }
        }
        eprintln!(
            "run {}: ours  {}\n       fjall {}",
            run + 1,
            Value::Object(ours.clone()),
            Value::Object(theirs.clone())
        );
        per_run.push((ours, theirs));
    }
    let get = |m: &Map<String, Value>, k: &str| m.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    let mut report = Report::new("storage");
    report.add("runs", "runs (medians shown)", runs as f64, "");
    for (k, label, unit, higher_better) in ROWS {
        if per_run.iter().all(|(o, _)| !o.contains_key(*k)) {
            continue;
        }
        let o = median(per_run.iter().map(|(o, _)| get(o, k)).collect());
        let f = median(per_run.iter().map(|(_, f)| get(f, k)).collect());
        let ratio = median(
            per_run
                .iter()
                .map(|(o, f)| get(o, k) / get(f, k).max(f64::MIN_POSITIVE))
                .collect(),
        );
        report.add(&format!("ours_{k}"), &format!("{label}: ours"), o, unit);
        report.add(&format!("fjall_{k}"), &format!("{label}: fjall"), f, unit);
        let mark = if *higher_better {
            Mark::AtLeast(1.0)
        } else {
            Mark::AtMost(1.0)
        };
        report.add_marked(
            &format!("ratio_{k}"),
            &format!("{label}: ours/fjall"),
            ratio,
            "x",
            mark,
        );
    }
    report.finish()?;
    Ok(())
}
