//! Keeps the docs true and the crates in their rooms: every source file starts with a `//!`
//! doc, every diagnostic code is explained in `spec/diagnostics.md` (and the spec lists no code
//! the source does not use), the library crates depend only on what ARCHITECTURE.md allows and do
//! no I/O, and `.ci/run` runs the README's test command.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dirs: &[&str]) -> Vec<PathBuf> {
    dirs.iter().flat_map(|d| qc_tests::files_under(&root().join(d), ".rs")).collect()
}

#[test]
fn every_rust_file_starts_with_a_module_doc() {
    let files = rust_files(&["compiler", "ir", "passes", "backends", "tests", "fuzz/fuzz_targets"]);
    assert!(files.len() > 15);
    let missing: Vec<String> = files
        .iter()
        .filter(|p| !p.components().any(|c| c.as_os_str() == "target"))
        .filter(|p| !std::fs::read_to_string(p).unwrap().starts_with("//!"))
        .map(|p| p.display().to_string())
        .collect();
    assert!(missing.is_empty(), "files without a leading `//!` doc: {missing:#?}");
}

/// Codes used in `code(qc::...)`, `code = "qc::..."` and `code: "qc::..."` in the sources
/// (`qc check`'s rule codes are kebab-case: `qc::check::kernel-size`).
fn codes_in_source() -> BTreeSet<String> {
    let mut codes = BTreeSet::new();
    for p in rust_files(&["compiler/src", "ir/src", "passes/src", "backends/src"]) {
        let text = std::fs::read_to_string(&p).unwrap();
        let hits = ["code(qc::", "\"qc::"].into_iter().flat_map(|pat| text.match_indices(pat));
        for (i, _) in hits {
            let start = i + text[i..].find("qc::").unwrap();
            let end = start
                + text[start..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '-'))
                    .unwrap();
            codes.insert(text[start..end].to_string());
        }
    }
    codes
}

#[test]
fn every_diagnostic_code_is_explained_in_the_spec() {
    let spec = std::fs::read_to_string(root().join("spec/diagnostics.md")).unwrap();
    let documented: BTreeSet<String> = spec
        .lines()
        .filter_map(|l| l.strip_prefix("### `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect();
    let used = codes_in_source();
    assert!(used.len() > 20, "found only {used:?}");
    let undocumented: Vec<_> = used.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&used).collect();
    assert!(undocumented.is_empty(), "codes missing from spec/diagnostics.md: {undocumented:?}");
    assert!(stale.is_empty(), "spec/diagnostics.md explains codes nothing uses: {stale:?}");
}

fn dependencies(manifest: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join(manifest)).unwrap();
    let mut in_deps = false;
    let mut deps = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with('[') {
            in_deps = line.trim() == "[dependencies]";
            continue;
        }
        if in_deps && let Some((name, _)) = line.split_once('=') {
            deps.insert(name.trim().split('.').next().unwrap().to_string());
        }
    }
    deps
}

#[test]
fn library_crates_keep_to_their_rooms() {
    let allowed = |crate_: &str, allowed: &[&str]| {
        let deps = dependencies(&format!("{crate_}/Cargo.toml"));
        let extra: Vec<_> = deps.iter().filter(|d| !allowed.contains(&d.as_str())).collect();
        assert!(extra.is_empty(), "{crate_} may not depend on {extra:?} (see ARCHITECTURE.md)");
    };
    allowed("ir", &["bytes", "petgraph", "indexmap", "thiserror", "miette", "serde", "pest", "pest_derive"]);
    allowed(
        "passes",
        &["qc-ir", "thiserror", "miette", "indexmap", "petgraph", "pest", "pest_derive", "half", "bytes"],
    );
    allowed(
        "backends",
        &["qc-ir", "thiserror", "miette", "indexmap", "serde", "serde_json", "serde-saphyr", "rayon"],
    );
    for p in rust_files(&["ir/src", "passes/src", "backends/src"]) {
        let text = std::fs::read_to_string(&p).unwrap();
        for banned in ["std::fs", "File::open", "println!", "eprintln!", "std::io::stdout", "std::env"] {
            assert!(!text.contains(banned), "{} uses `{banned}`: library crates do no I/O", p.display());
        }
    }
}

#[test]
fn ci_runs_the_readme_test_command() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    assert!(readme.contains("cargo test --workspace"));
    assert!(ci.contains("cargo test --workspace"));
    assert!(ci.contains("cargo fmt --all --check"));
    assert!(ci.contains("cargo clippy --workspace --all-targets -- -D warnings"));
}
