//! Configuration: defaults, a TOML file, environment variables and flags.
//!
//! Precedence, highest first: command-line flags, then `KVNODE_*`
//! environment variables, then the TOML file named by `--config`, then the
//! built-in defaults. With no configuration at all, `kvnode` starts a
//! single-node store in `./kvnode-data`, listening on `127.0.0.1:7000`.
//!
//! Replication defaults depend on whether the node joins others: a node with
//! no seeds is alone, so it defaults to N = R = W = 1; a node with seeds
//! defaults to N = 3, R = W = 2. Explicit values always win.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::Deserialize;

/// Default address for clients and peers.
pub const LISTEN_DEFAULT: &str = "127.0.0.1:7000";
/// Largest weight: a node gets 64 ring tokens per unit, and gossip carries
/// at most 1024 tokens per node.
pub const WEIGHT_MAX: u32 = 16;
/// Default anti-entropy round interval.
pub const ANTI_ENTROPY_INTERVAL_MS_DEFAULT: u64 = 30_000;
/// Default memtable size, the storage engine's own default.
pub const MEMTABLE_MB_DEFAULT: usize = 64;
/// Default wait before a quorum read asks the replicas it skipped.
pub const SPECULATIVE_RETRY_MS_DEFAULT: u64 = 20;
/// Bound on the memtable size: a larger one would take minutes to replay.
pub const MEMTABLE_MB_MAX: usize = 4096;
/// Bound on worker threads.
pub const THREADS_MAX: usize = 256;
/// Default gossip round interval.
pub const GOSSIP_INTERVAL_MS_DEFAULT: u64 = 1000;
/// Default data directory, relative to the working directory.
pub const DATA_DIR_DEFAULT: &str = "kvnode-data";

/// Options as given on the command line or in the environment; every field
/// is optional so that the file and the defaults can fill the gaps.
#[derive(Debug, Clone, Default, Args)]
pub struct NodeArgs {
    /// TOML configuration file.
    #[arg(long, env = "KVNODE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (created if missing).
    #[arg(long, env = "KVNODE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on for clients and peers.
    #[arg(long, env = "KVNODE_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Address for Redis-protocol (RESP) clients; off when not given.
    #[arg(long, env = "KVNODE_RESP_LISTEN")]
    pub resp_listen: Option<SocketAddr>,
    /// Address other nodes and clients use to reach this node (default: listen).
    #[arg(long, env = "KVNODE_ADVERTISE")]
    pub advertise: Option<String>,
    /// Seed nodes to join, comma separated `host:port`.
    #[arg(long, env = "KVNODE_SEEDS", value_delimiter = ',')]
    pub seeds: Option<Vec<String>>,
    /// Cluster name; nodes and clients of another cluster are refused.
    #[arg(long, env = "KVNODE_CLUSTER")]
    pub cluster: Option<String>,
    /// Zone (rack or datacenter) label used to spread replicas.
    #[arg(long, env = "KVNODE_ZONE")]
    pub zone: Option<String>,
    /// Capacity weight; a node's share of keys follows it.
    #[arg(long, env = "KVNODE_WEIGHT")]
    pub weight: Option<u32>,
    /// Replicas per key.
    #[arg(long, env = "KVNODE_N")]
    pub n: Option<u8>,
    /// Default read quorum.
    #[arg(long, env = "KVNODE_R")]
    pub r: Option<u8>,
    /// Default write quorum.
    #[arg(long, env = "KVNODE_W")]
    pub w: Option<u8>,
    /// `strict` (refuse what cannot reach W home replicas) or `sloppy`
    /// (hinted handoff).
    #[arg(long, env = "KVNODE_MODE")]
    pub mode: Option<Mode>,
    /// WAL durability: `sync`, `periodic:<ms>` or `none`.
    #[arg(long, env = "KVNODE_DURABILITY")]
    pub durability: Option<Durability>,
    /// Log format: `text` or `json`.
    #[arg(long, env = "KVNODE_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Gossip round interval in milliseconds; failure detection scales with it.
    #[arg(long, env = "KVNODE_GOSSIP_INTERVAL_MS")]
    pub gossip_interval_ms: Option<u64>,
    /// Worker threads serving requests; 0 means one per CPU.
    #[arg(long, env = "KVNODE_THREADS")]
    pub threads: Option<usize>,
    /// Milliseconds between anti-entropy rounds (Merkle diff with one peer);
    /// 0 turns anti-entropy off.
    #[arg(long, env = "KVNODE_ANTI_ENTROPY_INTERVAL_MS")]
    pub anti_entropy_interval_ms: Option<u64>,
    /// Size in MiB at which the storage engine's memtable is flushed to a
    /// table. Larger means fewer flushes and compactions, more memory and a
    /// longer WAL replay after a crash.
    #[arg(long, env = "KVNODE_MEMTABLE_MB")]
    pub memtable_mb: Option<usize>,
    /// Which replicas a read asks: `quorum` (R of them, more only when one
    /// fails or is slow) or `all` (every live home replica).
    #[arg(long, env = "KVNODE_READ_FANOUT")]
    pub read_fanout: Option<ReadFanout>,
    /// With `read_fanout = quorum`, milliseconds before a read that has not
    /// reached R answers also asks the replicas it skipped.
    #[arg(long, env = "KVNODE_SPECULATIVE_RETRY_MS")]
    pub speculative_retry_ms: Option<u64>,
}

/// The TOML file: the same options, plus limits.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    resp_listen: Option<SocketAddr>,
    advertise: Option<String>,
    seeds: Option<Vec<String>>,
    cluster: Option<String>,
    zone: Option<String>,
    weight: Option<u32>,
    n: Option<u8>,
    r: Option<u8>,
    w: Option<u8>,
    mode: Option<Mode>,
    durability: Option<Durability>,
    log_format: Option<LogFormat>,
    gossip_interval_ms: Option<u64>,
    threads: Option<usize>,
    anti_entropy_interval_ms: Option<u64>,
    memtable_mb: Option<usize>,
    read_fanout: Option<ReadFanout>,
    speculative_retry_ms: Option<u64>,
    #[serde(default)]
    limits: Limits,
}

/// Strict or sloppy quorum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Only the N home replicas count; refuse when fewer than W are up.
    Strict,
    /// Fall back to the next healthy nodes, with hints.
    Sloppy,
}

impl Mode {
    /// The name the flag and the config file take.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Strict => "strict",
            Mode::Sloppy => "sloppy",
        }
    }
}

/// Which replicas a read asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ReadFanout {
    /// R replicas, the local one first; the others only when one of them
    /// fails or is slower than `speculative_retry_ms` (Cassandra's way).
    Quorum,
    /// Every live home replica, answering with the first R (Dynamo's way).
    All,
}

/// When a write reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum Durability {
    /// Written and fsynced before acknowledging: nothing acknowledged is
    /// lost, even to a power cut.
    Sync,
    /// Written to the WAL file before acknowledging (a process crash loses
    /// nothing); fsynced in the background at this interval (a machine crash
    /// loses at most about one interval).
    Periodic(Duration),
    /// Written to the WAL file before acknowledging (a process crash loses
    /// nothing); fsynced only at memtable rotation and shutdown, otherwise
    /// left to the kernel's writeback (a machine crash loses what it had not
    /// written back).
    None,
}

impl std::str::FromStr for Durability {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sync" => Ok(Durability::Sync),
            "none" => Ok(Durability::None),
            other => {
                let ms = other
                    .strip_prefix("periodic:")
                    .and_then(|ms| ms.parse::<u64>().ok())
                    .filter(|ms| (1..=60_000).contains(ms))
                    .ok_or_else(|| {
                        format!(
                            "invalid durability {other:?}: expected sync, none or periodic:<1..60000 ms>"
                        )
                    })?;
                Ok(Durability::Periodic(Duration::from_millis(ms)))
            }
        }
    }
}

impl TryFrom<String> for Durability {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Bounds on what one client or peer may cost the node. Only the TOML file
/// sets these (`[limits]`); the defaults suit most deployments.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest frame accepted or sent, in bytes.
    pub frame_len_max: usize,
    /// Largest key, in bytes.
    pub key_len_max: usize,
    /// Largest value, in bytes.
    pub value_len_max: usize,
    /// Open connections, clients and peers together.
    pub connections_max: usize,
    /// Requests in flight on one connection; reading pauses past it.
    pub in_flight_per_connection_max: usize,
    /// Time allowed to receive the rest of a frame once it has started.
    pub read_timeout_ms: u64,
    /// Time a connection may sit with no request before it is closed.
    pub idle_timeout_ms: u64,
    /// Time allowed for a peer that does not read its answers.
    pub write_timeout_ms: u64,
    /// Time a coordinator waits for replicas.
    pub request_timeout_ms: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            frame_len_max: kv_wire::FRAME_LEN_MAX_DEFAULT,
            key_len_max: 4 * 1024,
            value_len_max: 1024 * 1024,
            connections_max: 1024,
            in_flight_per_connection_max: 256,
            read_timeout_ms: 10_000,
            idle_timeout_ms: 300_000,
            write_timeout_ms: 10_000,
            request_timeout_ms: 2_000,
        }
    }
}

/// The resolved configuration a node runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Data directory.
    pub data_dir: PathBuf,
    /// Listen address.
    pub listen: SocketAddr,
    /// Where the RESP (Redis-protocol) front door listens; `None` is off.
    pub resp_listen: Option<SocketAddr>,
    /// Advertised address.
    pub advertise: String,
    /// Seeds.
    pub seeds: Vec<String>,
    /// Cluster name.
    pub cluster: String,
    /// Zone.
    pub zone: Option<String>,
    /// Weight.
    pub weight: u32,
    /// N.
    pub n: u8,
    /// R.
    pub r: u8,
    /// W.
    pub w: u8,
    /// Strict or sloppy.
    pub mode: Mode,
    /// WAL durability.
    pub durability: Durability,
    /// Log format.
    pub log_format: LogFormat,
    /// Gossip round interval, in milliseconds.
    pub gossip_interval_ms: u64,
    /// Worker threads; 0 means one per CPU.
    pub threads: usize,
    /// Anti-entropy round interval, in milliseconds; 0 is off.
    pub anti_entropy_interval_ms: u64,
    /// Memtable size in MiB.
    pub memtable_mb: usize,
    /// Which replicas a read asks.
    pub read_fanout: ReadFanout,
    /// Wait before a quorum read asks the replicas it skipped.
    pub speculative_retry_ms: u64,
    /// Limits.
    pub limits: Limits,
}

impl Config {
    /// What this node runs with, in one line for `status` (gossiped to every
    /// member): `n=3 r=2 w=2 strict periodic:100`.
    pub fn summary(&self) -> String {
        let mode = self.mode.name();
        let durability = match self.durability {
            Durability::Sync => "sync".to_owned(),
            Durability::Periodic(every) => format!("periodic:{}", every.as_millis()),
            Durability::None => "none".to_owned(),
        };
        format!("n={} r={} w={} {mode} {durability}", self.n, self.r, self.w)
    }

    /// Resolves flags and environment (`args`) over the file they name, over
    /// the defaults.
    pub fn resolve(args: &NodeArgs) -> Result<Self> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .with_context(|| format!("invalid config file {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        Self::merge(args, file)
    }

    fn merge(args: &NodeArgs, file: FileConfig) -> Result<Self> {
        let listen = args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| LISTEN_DEFAULT.parse().expect("the default address parses"));
        let seeds: Vec<String> = args.seeds.clone().or(file.seeds).unwrap_or_default();
        let alone = seeds.is_empty();
        let (n_default, rw_default) = if alone { (1, 1) } else { (3, 2) };
        let config = Config {
            data_dir: args
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(DATA_DIR_DEFAULT)),
            listen,
            resp_listen: args.resp_listen.or(file.resp_listen),
            advertise: args
                .advertise
                .clone()
                .or(file.advertise)
                .unwrap_or_else(|| listen.to_string()),
            seeds,
            cluster: args
                .cluster
                .clone()
                .or(file.cluster)
                .unwrap_or_else(|| "default".to_owned()),
            zone: args.zone.clone().or(file.zone),
            weight: args.weight.or(file.weight).unwrap_or(1),
            n: args.n.or(file.n).unwrap_or(n_default),
            r: args.r.or(file.r).unwrap_or(rw_default),
            w: args.w.or(file.w).unwrap_or(rw_default),
            mode: args.mode.or(file.mode).unwrap_or(Mode::Strict),
            durability: args
                .durability
                .or(file.durability)
                .unwrap_or(Durability::Periodic(Duration::from_millis(100))),
            log_format: args
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Text),
            gossip_interval_ms: args
                .gossip_interval_ms
                .or(file.gossip_interval_ms)
                .unwrap_or(GOSSIP_INTERVAL_MS_DEFAULT),
            threads: args.threads.or(file.threads).unwrap_or(0),
            anti_entropy_interval_ms: args
                .anti_entropy_interval_ms
                .or(file.anti_entropy_interval_ms)
                .unwrap_or(ANTI_ENTROPY_INTERVAL_MS_DEFAULT),
            memtable_mb: args
                .memtable_mb
                .or(file.memtable_mb)
                .unwrap_or(MEMTABLE_MB_DEFAULT),
            read_fanout: args
                .read_fanout
                .or(file.read_fanout)
                .unwrap_or(ReadFanout::Quorum),
            speculative_retry_ms: args
                .speculative_retry_ms
                .or(file.speculative_retry_ms)
                .unwrap_or(SPECULATIVE_RETRY_MS_DEFAULT),
            limits: file.limits,
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        let (n, r, w) = (self.n, self.r, self.w);
        if n == 0 || r == 0 || w == 0 {
            bail!("n, r and w must be at least 1 (got n={n}, r={r}, w={w})");
        }
        if r > n || w > n {
            bail!("r and w cannot exceed n (got n={n}, r={r}, w={w})");
        }
        if self.weight == 0 || self.weight > WEIGHT_MAX {
            bail!("weight must be between 1 and {WEIGHT_MAX}");
        }
        if self.threads > THREADS_MAX {
            bail!("threads must be at most {THREADS_MAX} (0 means one per CPU)");
        }
        if self.anti_entropy_interval_ms != 0 && self.anti_entropy_interval_ms < 100 {
            bail!("anti_entropy_interval_ms must be 0 (off) or at least 100");
        }
        if self.read_fanout == ReadFanout::Quorum
            && (self.speculative_retry_ms == 0
                || self.speculative_retry_ms >= self.limits.request_timeout_ms)
        {
            bail!(
                "speculative_retry_ms must be at least 1 and below request_timeout_ms ({})",
                self.limits.request_timeout_ms
            );
        }
        if !(1..=MEMTABLE_MB_MAX).contains(&self.memtable_mb) {
            bail!("memtable_mb must be between 1 and {MEMTABLE_MB_MAX}");
        }
        if !(10..=60_000).contains(&self.gossip_interval_ms) {
            bail!("gossip_interval_ms must be between 10 and 60000");
        }
        if self.resp_listen == Some(self.listen) {
            bail!(
                "resp_listen must differ from listen ({}): the two protocols need their own ports",
                self.listen
            );
        }
        if self.cluster.is_empty() || self.cluster.len() > kv_wire::CLUSTER_NAME_LEN_MAX {
            bail!(
                "cluster name must be 1 to {} bytes",
                kv_wire::CLUSTER_NAME_LEN_MAX
            );
        }
        let l = &self.limits;
        if l.key_len_max == 0 || l.value_len_max == 0 || l.connections_max == 0 {
            bail!("limits must be at least 1");
        }
        if l.key_len_max + l.value_len_max + FRAME_ENVELOPE_BYTES > l.frame_len_max {
            bail!(
                "frame_len_max ({}) must leave room for a key ({}) and a value ({})",
                l.frame_len_max,
                l.key_len_max,
                l.value_len_max
            );
        }
        Ok(())
    }
}

/// Room a frame leaves for a message's envelope besides its key and the
/// key's state (request id, enum tags, lengths, a read's context header).
pub const FRAME_ENVELOPE_BYTES: usize = 1024;

impl Limits {
    /// The hard bound on one key's state: what a frame carries besides the
    /// largest key and an envelope. Replicas refuse merges past it and a
    /// read returns only the siblings that fit it, so no key's state can
    /// outgrow the frames that carry it. `validate` keeps it at least
    /// `value_len_max`.
    pub fn state_bytes_hard_max(&self) -> usize {
        self.frame_len_max
            .saturating_sub(self.key_len_max + FRAME_ENVELOPE_BYTES)
    }

    /// The bound on one key's state for client writes: kv-quorum's default
    /// (8 MiB, which leaves room for merges of diverged replicas), or the
    /// hard bound when the frame is smaller.
    pub fn state_bytes_max(&self) -> usize {
        kv_quorum::DEFAULT_STATE_BYTES_MAX.min(self.state_bytes_hard_max())
    }

    /// `read_timeout_ms` as a duration.
    pub fn read_timeout(&self) -> Duration {
        Duration::from_millis(self.read_timeout_ms)
    }

    /// `idle_timeout_ms` as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }

    /// `write_timeout_ms` as a duration.
    pub fn write_timeout(&self) -> Duration {
        Duration::from_millis(self.write_timeout_ms)
    }

    /// `request_timeout_ms` as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_state_bounds_follow_the_frame_limit() {
        let default = Limits::default();
        assert_eq!(
            default.state_bytes_max(),
            kv_quorum::DEFAULT_STATE_BYTES_MAX
        );
        assert!(default.state_bytes_hard_max() + default.key_len_max < default.frame_len_max);
        // A 2 MiB frame cannot carry 8 MiB of state: both bounds shrink,
        // and still hold the largest value.
        let small = Limits {
            frame_len_max: 2 << 20,
            ..Limits::default()
        };
        assert_eq!(small.state_bytes_max(), small.state_bytes_hard_max());
        assert!(small.state_bytes_hard_max() + small.key_len_max < small.frame_len_max);
        assert!(small.state_bytes_hard_max() >= small.value_len_max);
    }

    #[test]
    fn defaults_make_a_single_node() {
        let c = Config::merge(&NodeArgs::default(), FileConfig::default()).unwrap();
        assert_eq!((c.n, c.r, c.w), (1, 1, 1));
        assert_eq!(c.listen.to_string(), LISTEN_DEFAULT);
        assert_eq!(c.data_dir, PathBuf::from(DATA_DIR_DEFAULT));
        assert_eq!(c.mode, Mode::Strict);
    }

    #[test]
    fn seeds_make_replication_default_to_three() {
        let args = NodeArgs {
            seeds: Some(vec!["127.0.0.1:7001".into()]),
            ..NodeArgs::default()
        };
        let c = Config::merge(&args, FileConfig::default()).unwrap();
        assert_eq!((c.n, c.r, c.w), (3, 2, 2));
    }

    #[test]
    fn flags_beat_the_file() {
        let file: FileConfig = toml::from_str(
            "n = 5\nr = 3\nw = 3\nweight = 7\nmode = \"sloppy\"\ndurability = \"sync\"\nmemtable_mb = 16\nread_fanout = \"all\"\nspeculative_retry_ms = 5\n[limits]\nkey_len_max = 100\n",
        )
        .unwrap();
        let args = NodeArgs {
            n: Some(3),
            r: Some(2),
            w: Some(2),
            ..NodeArgs::default()
        };
        let c = Config::merge(&args, file).unwrap();
        assert_eq!((c.n, c.r, c.w, c.weight), (3, 2, 2, 7));
        assert_eq!(c.mode, Mode::Sloppy);
        assert_eq!(c.durability, Durability::Sync);
        assert_eq!(c.limits.key_len_max, 100);
        assert_eq!(c.memtable_mb, 16);
        assert_eq!(c.read_fanout, ReadFanout::All);
        assert_eq!(c.speculative_retry_ms, 5);
        assert_eq!(c.resp_listen, None, "the RESP front door is off by default");
    }

    #[test]
    fn resp_listen_comes_from_the_file_or_a_flag() {
        let file: FileConfig = toml::from_str("resp_listen = \"127.0.0.1:6379\"\n").unwrap();
        let c = Config::merge(&NodeArgs::default(), file.clone()).unwrap();
        assert_eq!(c.resp_listen, Some("127.0.0.1:6379".parse().unwrap()));
        let args = NodeArgs {
            resp_listen: Some("127.0.0.1:6380".parse().unwrap()),
            ..NodeArgs::default()
        };
        let c = Config::merge(&args, file).unwrap();
        assert_eq!(c.resp_listen, Some("127.0.0.1:6380".parse().unwrap()));
        let args = NodeArgs {
            resp_listen: Some(LISTEN_DEFAULT.parse().unwrap()),
            ..NodeArgs::default()
        };
        let err = Config::merge(&args, FileConfig::default()).unwrap_err();
        assert!(err.to_string().contains("resp_listen"), "{err}");
    }

    #[test]
    fn bad_settings_are_refused() {
        let args = NodeArgs {
            n: Some(2),
            w: Some(3),
            ..NodeArgs::default()
        };
        let err = Config::merge(&args, FileConfig::default()).unwrap_err();
        assert!(err.to_string().contains("cannot exceed n"), "{err}");
        let args = NodeArgs {
            memtable_mb: Some(0),
            ..NodeArgs::default()
        };
        let err = Config::merge(&args, FileConfig::default()).unwrap_err();
        assert!(err.to_string().contains("memtable_mb"), "{err}");
        assert!(toml::from_str::<FileConfig>("bogus = 1").is_err());
        assert!("periodic:0".parse::<Durability>().is_err());
        assert_eq!(
            "periodic:250".parse::<Durability>(),
            Ok(Durability::Periodic(Duration::from_millis(250)))
        );
    }
}
