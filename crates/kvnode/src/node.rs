//! Composition: builds a node from its configuration and runs it.

use anyhow::Result;

use crate::config::Config;

/// Runs a node until SIGTERM or Ctrl-C.
pub async fn run(config: Config) -> Result<()> {
    let _ = config;
    anyhow::bail!("the node is not composed yet")
}
