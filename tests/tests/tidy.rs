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

/// The kinds of dependency table Cargo knows.
const KINDS: [&str; 3] = ["dependencies", "dev-dependencies", "build-dependencies"];

/// Names of the packages a manifest depends on through `kind` tables
/// (`"dependencies"`, `"dev-dependencies"` or `"build-dependencies"`): the
/// top-level table, whether written inline or as `[dependencies.foo]`
/// sub-tables, and every `[target.'cfg(..)'.kind]` table. A renamed
/// dependency (`alias = { package = "real" }`) counts under its package's
/// name, since that is what the layering is about. Sorted, without repeats.
///
/// Panics on a manifest that is not valid TOML: tidy should fail loudly.
fn dependencies(manifest: &str, kind: &str) -> Vec<String> {
    let doc: toml::Table = toml::from_str(manifest).expect("manifest is not valid TOML");
    let mut tables: Vec<&toml::Table> = Vec::new();
    if let Some(t) = doc.get(kind).and_then(toml::Value::as_table) {
        tables.push(t);
    }
    if let Some(targets) = doc.get("target").and_then(toml::Value::as_table) {
        for target in targets.values() {
            if let Some(t) = target.get(kind).and_then(toml::Value::as_table) {
                tables.push(t);
            }
        }
    }
    let mut deps: Vec<String> = tables
        .into_iter()
        .flat_map(|t| t.iter())
        .map(|(name, spec)| {
            spec.get("package")
                .and_then(toml::Value::as_str)
                .unwrap_or(name)
                .to_owned()
        })
        .collect();
    deps.sort();
    deps.dedup();
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

/// The dependencies of `krate`'s manifest `text` that FORBIDDEN rules out.
/// What ships with the crate counts: normal and build dependencies, on every
/// target. Dev-dependencies only reach its tests.
fn layering_violations(krate: &str, text: &str) -> Vec<String> {
    let Some((_, forbidden)) = FORBIDDEN.iter().find(|(name, _)| *name == krate) else {
        return Vec::new();
    };
    ["dependencies", "build-dependencies"]
        .iter()
        .flat_map(|kind| dependencies(text, kind))
        .filter(|dep| {
            forbidden.iter().any(|bad| {
                if bad.ends_with('-') {
                    dep.starts_with(bad)
                } else {
                    dep == bad
                }
            })
        })
        .collect()
}

#[test]
fn pure_crates_keep_their_layering() {
    let manifests = manifests();
    for (krate, _) in FORBIDDEN {
        let Some((_, text)) = manifests.iter().find(|(name, _)| name == krate) else {
            panic!("crate {krate} named in FORBIDDEN does not exist");
        };
        let bad = layering_violations(krate, text);
        assert!(
            bad.is_empty(),
            "{krate} depends on {bad:?}, which ARCHITECTURE.md forbids"
        );
    }
}

#[test]
fn layering_check_sees_target_and_build_dependencies_but_not_dev() {
    let text = r#"
[package]
name = "kv-ring"

[dependencies]
kv-types.workspace = true

[target.'cfg(unix)'.dependencies]
tokio = "1"

[build-dependencies.kv-storage]
workspace = true

[dev-dependencies]
futures = "0.3"
"#;
    assert_eq!(
        layering_violations("kv-ring", text),
        vec!["tokio", "kv-storage"]
    );
}

#[test]
fn nothing_depends_on_the_node() {
    for (krate, text) in manifests() {
        for table in KINDS {
            let deps = dependencies(&text, table);
            assert!(
                !deps.iter().any(|d| d == "kvnode"),
                "{krate} depends on kvnode"
            );
        }
    }
}

#[test]
fn dependency_parser_reads_inline_tables() {
    let text = "[package]\nname = \"x\"\n[dependencies]\nserde.workspace = true\ntokio = { version = \"1\" }\n# note\n[dev-dependencies]\nproptest = \"1\"\n";
    assert_eq!(dependencies(text, "dependencies"), vec!["serde", "tokio"]);
    assert_eq!(dependencies(text, "dev-dependencies"), vec!["proptest"]);
    assert_eq!(
        dependencies(text, "build-dependencies"),
        Vec::<String>::new()
    );
}

#[test]
fn dependency_parser_reads_dotted_sub_tables() {
    let text = r#"
[package]
name = "x"

[dependencies.tokio]
version = "1"
features = ["full"]

[dependencies.kv-storage]
workspace = true

[dev-dependencies.proptest]
version = "1"
"#;
    assert_eq!(
        dependencies(text, "dependencies"),
        vec!["kv-storage", "tokio"]
    );
    assert_eq!(dependencies(text, "dev-dependencies"), vec!["proptest"]);
}

#[test]
fn dependency_parser_reads_target_specific_tables() {
    let text = r#"
[package]
name = "x"

[dependencies]
serde = "1"

[target.'cfg(unix)'.dependencies]
tokio = "1"

[target."x86_64-pc-windows-msvc".dependencies.kv-gossip]
path = "../kv-gossip"

[target.'cfg(unix)'.dev-dependencies]
tempfile = "3"

[target.'cfg(unix)'.build-dependencies]
cc = "1"
"#;
    assert_eq!(
        dependencies(text, "dependencies"),
        vec!["kv-gossip", "serde", "tokio"]
    );
    assert_eq!(dependencies(text, "dev-dependencies"), vec!["tempfile"]);
    assert_eq!(dependencies(text, "build-dependencies"), vec!["cc"]);
}

#[test]
fn dependency_parser_reads_build_dependencies() {
    let text = r#"
[package]
name = "x"

[build-dependencies]
kv-wire.workspace = true

[build-dependencies.tokio]
version = "1"
"#;
    assert_eq!(
        dependencies(text, "build-dependencies"),
        vec!["kv-wire", "tokio"]
    );
    assert_eq!(dependencies(text, "dependencies"), Vec::<String>::new());
}

#[test]
fn dependency_parser_names_renamed_dependencies_by_package() {
    let text = r#"
[dependencies]
rt = { package = "tokio", version = "1" }

[dependencies.store]
package = "kv-storage"
path = "../kv-storage"
"#;
    assert_eq!(
        dependencies(text, "dependencies"),
        vec!["kv-storage", "tokio"]
    );
}

#[test]
fn the_client_library_links_no_store_internals() {
    // Transitively, not only directly: what a user of kv-client compiles.
    let out = std::process::Command::new(env!("CARGO"))
        .current_dir(workspace_root())
        .args([
            "tree",
            "--offline",
            "--locked",
            "-p",
            "kv-client",
            "-e",
            "normal,build",
        ])
        .args(["--prefix", "none", "--format", "{p}"])
        .output()
        .expect("cargo tree runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let linked: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| {
            [
                "kv-storage",
                "kv-ring",
                "kv-gossip",
                "kv-quorum",
                "kv-merkle",
                "kvnode",
            ]
            .contains(name)
        })
        .collect();
    assert!(
        linked.is_empty(),
        "kv-client links {linked:?}: a client needs only kv-wire's codec and client messages"
    );
}
