//! `kvnode`: run a node of the store, or talk to one.
//!
//! `kvnode` with no arguments starts a single-node store in `./kvnode-data`
//! listening on `127.0.0.1:7000`. The subcommands `get`, `put`, `delete` and
//! `status` are a small CLI over the Rust client.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mimalloc::MiMalloc;

use kvnode::cli::{self, ClientArgs};
use kvnode::config::{Config, LogFormat, NodeArgs};

/// Under load the system allocator took about a sixth of a node's CPU
/// (malloc, free and their consolidation, by `perf`); mimalloc's per-thread
/// free lists cost a fraction of that.
#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// A Dynamo-style distributed key-value store node.
#[derive(Debug, Parser)]
#[command(
    name = "kvnode",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    node: NodeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a node (the default when no subcommand is given).
    Serve(NodeArgs),
    /// Read a key; prints every concurrent sibling, one per line.
    Get {
        #[command(flatten)]
        client: ClientArgs,
        /// The key.
        key: String,
    },
    /// Write a value, replacing what a read sees now (or, with --context,
    /// what an earlier read saw).
    Put {
        #[command(flatten)]
        client: ClientArgs,
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// Causal context printed by `get --show-context`, to supersede what it read.
        #[arg(long)]
        context: Option<String>,
    },
    /// Delete a key, as `put` replaces one.
    Delete {
        #[command(flatten)]
        client: ClientArgs,
        /// The key.
        key: String,
        /// Causal context printed by `get --show-context`.
        #[arg(long)]
        context: Option<String>,
    },
    /// Show the members, their state and their share of the ring.
    Status {
        #[command(flatten)]
        client: ClientArgs,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => serve(&cli.node),
        Some(Command::Serve(args)) => serve(&args),
        Some(Command::Get { client, key }) => cli::run(cli::get(client, key)),
        Some(Command::Put {
            client,
            key,
            value,
            context,
        }) => cli::run(cli::put(client, key, value, context)),
        Some(Command::Delete {
            client,
            key,
            context,
        }) => cli::run(cli::delete(client, key, context)),
        Some(Command::Status { client }) => cli::run(cli::status(client)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kvnode: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: &NodeArgs) -> anyhow::Result<()> {
    let config = Config::resolve(args)?;
    init_logging(config.log_format);
    no_transparent_huge_pages();
    // One thread runs everything on one core without cross-thread wake-ups,
    // which suits several nodes sharing a small machine.
    let runtime = match config.threads {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        threads => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            if threads > 0 {
                builder.worker_threads(threads);
            }
            builder.enable_all().thread_name("kvnode").build()?
        }
    };
    runtime.block_on(kvnode::node::run(config))
}

/// Turns transparent huge pages off for this process. mimalloc asks for
/// them, and each first touch of a huge page makes the kernel zero 2 MiB in
/// the faulting thread: under load that was 4-7% of a node's CPU, taken in
/// the request path, and it doubled the three-node p99 (6-7 ms with, 3-3.5
/// ms without, same machine and run). Redis and MongoDB give the same advice
/// for the same reason.
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::thread::disable_transparent_huge_pages(true) {
        tracing::warn!(error = %e, "cannot turn transparent huge pages off; expect latency spikes");
    }
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn no_arguments_means_serve() {
        let cli = Cli::try_parse_from(["kvnode"]).unwrap();
        assert!(cli.command.is_none());
        let cli = Cli::try_parse_from(["kvnode", "put", "k", "v", "--context", "00"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Put { .. })));
    }
}
