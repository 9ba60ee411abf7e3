//! The command-line client: `kvnode get | put | delete | status`.

use std::time::Duration;

use anyhow::{Context as _, Result};
use bytes::Bytes;
use clap::Args;

use kv_client::{Client, ClientConfig, Context};

/// Where and how the CLI reaches the cluster.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Nodes to try, comma separated `host:port`.
    #[arg(
        long,
        env = "KVNODE_NODES",
        value_delimiter = ',',
        default_value = "127.0.0.1:7000"
    )]
    pub nodes: Vec<String>,
    /// Cluster name.
    #[arg(long, env = "KVNODE_CLUSTER", default_value = "default")]
    pub cluster: String,
    /// Seconds to wait for an answer.
    #[arg(long, default_value_t = 10)]
    pub timeout_s: u64,
    /// Print the causal context too (hex), to pass to a later put or delete.
    #[arg(long)]
    pub show_context: bool,
}

/// Runs a CLI future on a small runtime.
pub fn run<F: Future<Output = Result<()>>>(f: F) -> Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(f)
}

async fn connect(args: &ClientArgs) -> Result<Client> {
    let mut config = ClientConfig::new(args.nodes.clone()).cluster(&args.cluster);
    config.request_timeout = Duration::from_secs(args.timeout_s);
    Ok(Client::connect(config).await?)
}

/// `kvnode get KEY`
pub async fn get(args: ClientArgs, key: String) -> Result<()> {
    let client = connect(&args).await?;
    let read = client.get(key.clone()).await?;
    if args.show_context {
        println!("context: {}", hex(&read.context.0));
    }
    if read.siblings.is_empty() {
        anyhow::bail!("{key:?} not found");
    }
    for value in &read.siblings {
        println!("{}", String::from_utf8_lossy(value));
    }
    Ok(())
}

/// The context to write with: the one given, or, for a plain command-line
/// write, the one a fresh read returns, so that the write replaces what is
/// there instead of becoming a sibling of it.
async fn context_for(client: &Client, key: &str, given: Option<String>) -> Result<Context> {
    match given {
        Some(hex) => unhex(&hex),
        None => Ok(client.get(key.to_owned()).await?.context),
    }
}

/// `kvnode put KEY VALUE`
pub async fn put(
    args: ClientArgs,
    key: String,
    value: String,
    context: Option<String>,
) -> Result<()> {
    let client = connect(&args).await?;
    let context = context_for(&client, &key, context).await?;
    client.put(key, value, Some(&context)).await?;
    println!("ok");
    Ok(())
}

/// `kvnode delete KEY`
pub async fn delete(args: ClientArgs, key: String, context: Option<String>) -> Result<()> {
    let client = connect(&args).await?;
    let context = context_for(&client, &key, context).await?;
    client.delete(key, Some(&context)).await?;
    println!("ok");
    Ok(())
}

/// `kvnode status`
pub async fn status(args: ClientArgs) -> Result<()> {
    let client = connect(&args).await?;
    let s = client.status().await?;
    let node = s.node.map(|n| n.to_string()).unwrap_or_default();
    println!(
        "cluster {:?} seen from node {node}: n={} r={} w={} mode={}",
        s.cluster, s.n, s.r, s.w, s.mode
    );
    println!(
        "hints held: {} (delivered {}, refused {} since start)",
        s.hints_pending, s.hints_delivered_total, s.hints_rejected_total
    );
    println!(
        "{:<18} {:<22} {:<10} {:>6} {:<8} {:>8}  settings",
        "node", "address", "zone", "weight", "state", "share"
    );
    for m in &s.members {
        println!(
            "{:<18} {:<22} {:<10} {:>6} {:<8} {:>7.2}%  {}",
            m.node.to_string(),
            m.client_addr,
            m.zone.as_deref().unwrap_or("-"),
            m.weight,
            m.state,
            f64::from(m.ring_share_ppm) / 10_000.0,
            if m.settings.is_empty() {
                "-"
            } else {
                &m.settings
            }
        );
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Result<Context> {
    let bytes = (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .with_context(|| format!("context {text:?} is not hex"))
        })
        .collect::<Result<Vec<u8>>>()?;
    Ok(Context(Bytes::from(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        let c = unhex(&hex(&[0, 1, 0xab, 0xff])).unwrap();
        assert_eq!(c.0.as_ref(), &[0, 1, 0xab, 0xff]);
        assert!(unhex("abc").is_err());
        assert!(unhex("zz").is_err());
    }
}
