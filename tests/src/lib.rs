//! Helpers for qc's integration, conformance and snapshot tests.
//!
//! Suites that read the reference material in `../shared` (beside the project) find it with
//! [`shared_dir`]; when it is missing they say so plainly on stderr and check nothing else.

use std::path::{Path, PathBuf};

/// The shared reference folder: `$QC_SHARED`, or `../shared` beside the workspace.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("QC_SHARED") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    };
    dir.is_dir().then_some(dir)
}

/// Like [`shared_dir`], but prints why a suite checks nothing when the folder is missing.
pub fn shared_or_say(suite: &str) -> Option<PathBuf> {
    let d = shared_dir();
    if d.is_none() {
        eprintln!("{suite}: ../shared is missing (set QC_SHARED to its path); this suite checked nothing");
    }
    d
}

/// Every file under `dir` whose name ends with `suffix`, sorted.
pub fn files_under(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(suffix) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
