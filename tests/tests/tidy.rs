//! Tidy checks: the layering and house rules that ARCHITECTURE.md promises.
//!
//! These read the source tree, not the compiled code, so they fail the moment
//! a change breaks a rule, with a message that names the file.

use std::fs;
use std::path::{Path, PathBuf};

use kv_tests::workspace_root;

/// Crates that must stay pure: no async runtime, no network, no files of
/// their own. Each entry lists what the crate may never depend on.
const FORBIDDEN: &[(&str, &[&str])] = &[
    ("kv-types", &["tokio", "tokio-util", "futures", "kv-"]),
    (
        "kv-ring",
        &[
            "tokio",
            "tokio-util",
            "futures",
            "kv-storage",
            "kv-gossip",
            "kv-quorum",
            "kv-wire",
            "kv-merkle",
        ],
    ),
    (
        "kv-merkle",
        &[
            "tokio",
            "tokio-util",
            "futures",
            "kv-storage",
            "kv-gossip",
            "kv-quorum",
            "kv-wire",
            "kv-ring",
        ],
    ),
    (
        "kv-storage",
        &[
            "tokio",
            "tokio-util",
            "kv-ring",
            "kv-gossip",
            "kv-quorum",
            "kv-wire",
            "kv-merkle",
        ],
    ),
    (
        "kv-gossip",
        &["tokio", "tokio-util", "kv-storage", "kv-quorum", "kv-wire"],
    ),
    // The coordinator reaches the ring, gossip and the network only through
    // its seams; kvnode writes the adapters.
    (
        "kv-quorum",
        &[
            "tokio",
            "tokio-util",
            "kv-storage",
            "kv-gossip",
            "kv-wire",
            "kv-ring",
        ],
    ),
    // The protocol describes bytes; it opens no sockets and runs no tasks.
    (
        "kv-wire",
        &["tokio", "kv-storage", "kv-gossip", "kv-ring", "kv-client"],
    ),
    // The client speaks the protocol and nothing else.
    (
        "kv-client",
        &["kv-storage", "kv-gossip", "kv-ring", "kv-merkle"],
    ),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == "target" || name.starts_with('.') || name == "corpus" || name == "artifacts" {
            continue;
        }
        if path.is_dir() {
            rust_files(&path, out);
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

/// Dependency names listed in one `[...dependencies]` table of a manifest.
fn dependencies(manifest: &str, table: &str) -> Vec<String> {
    let mut deps = Vec::new();
    let mut inside = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line == format!("[{table}]");
            continue;
        }
        if inside && !line.is_empty() && !line.starts_with('#') {
            let name = line.split(['=', '.']).next().unwrap_or("").trim();
            deps.push(name.to_owned());
        }
    }
    deps
}

fn manifests() -> Vec<(String, String)> {
    let root = workspace_root();
    let mut out = Vec::new();
    for dir in ["crates", "."] {
        let Ok(entries) = fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let manifest = entry.path().join("Cargo.toml");
            if let Ok(text) = fs::read_to_string(&manifest) {
                out.push((entry.file_name().to_string_lossy().into_owned(), text));
            }
        }
    }
    out
}

#[test]
fn every_rust_file_starts_with_a_module_doc() {
    let root = workspace_root();
    let mut files = Vec::new();
    for dir in ["crates", "xtask", "tests", "benches"] {
        rust_files(&root.join(dir), &mut files);
    }
    assert!(
        files.len() > 5,
        "found only {} files; is the walk broken?",
        files.len()
    );
    let missing: Vec<_> = files
        .iter()
        .filter(|f| {
            let text = fs::read_to_string(f).unwrap_or_default();
            !text.trim_start().starts_with("//!")
        })
        .map(|f| f.strip_prefix(&root).unwrap_or(f).display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a leading `//!` line: {missing:#?}"
    );
}

#[test]
fn pure_crates_keep_their_layering() {
    let manifests = manifests();
    for (krate, forbidden) in FORBIDDEN {
        let Some((_, text)) = manifests.iter().find(|(name, _)| name == krate) else {
            panic!("crate {krate} named in FORBIDDEN does not exist");
        };
        for dep in dependencies(text, "dependencies") {
            for bad in *forbidden {
                let hit = if bad.ends_with('-') {
                    dep.starts_with(bad)
                } else {
                    dep == *bad
                };
                assert!(
                    !hit,
                    "{krate} depends on {dep}, which ARCHITECTURE.md forbids"
                );
            }
        }
    }
}

#[test]
fn nothing_depends_on_the_node() {
    for (krate, text) in manifests() {
        for table in ["dependencies", "dev-dependencies"] {
            let deps = dependencies(&text, table);
            assert!(
                !deps.iter().any(|d| d == "kvnode"),
                "{krate} depends on kvnode"
            );
        }
    }
}

#[test]
fn dependency_parser_reads_tables() {
    let text = "[package]\nname = \"x\"\n[dependencies]\nserde.workspace = true\ntokio = { version = \"1\" }\n# note\n[dev-dependencies]\nproptest = \"1\"\n";
    assert_eq!(dependencies(text, "dependencies"), vec!["serde", "tokio"]);
    assert_eq!(dependencies(text, "dev-dependencies"), vec!["proptest"]);
}
