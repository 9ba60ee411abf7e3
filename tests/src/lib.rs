//! Helpers shared by the workspace-level tests in `tests/tests/`.

use std::path::{Path, PathBuf};

pub mod harness;
pub mod net;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}
