//! The real `qc` binary: exit codes and streams (the rest of the CLI is tested in `tests/`
//! through `qc::cli::main_with`, which is all `main` calls).

use std::process::Command;

#[test]
fn the_binary_exits_0_on_the_example_and_2_on_bad_input() {
    let qc = env!("CARGO_BIN_EXE_qc");
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/tiny_qonnx.onnx");
    let ok = Command::new(qc).args(["inspect", example]).output().unwrap();
    assert_eq!(ok.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("9 nodes"));
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.onnx");
    std::fs::write(&empty, b"").unwrap();
    let bad = Command::new(qc).args(["inspect", empty.to_str().unwrap()]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(bad.stdout.is_empty());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("qc::onnx::empty_file"));
}

/// The progress bar of a multi-threaded search (drawn from the search's worker threads, here
/// forced on with `QC_PROGRESS=always`) names the layer in progress and its orderings, and the
/// run ends: standard error is not held locked by the main thread. On ResNet-18 from
/// `../shared`, skipped without it.
#[test]
fn the_progress_bar_draws_from_worker_threads_and_the_run_ends() {
    let shared = match std::env::var_os("QC_SHARED") {
        Some(d) => std::path::PathBuf::from(d),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    };
    let inputs = shared.join("peers/zigzag-inputs/zigzag/inputs");
    if !inputs.is_dir() {
        eprintln!("../shared is missing (set QC_SHARED); this test checked nothing");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_qc"))
        .env("QC_PROGRESS", "always")
        .arg("evaluate")
        .arg(inputs.join("workload/resnet18.onnx"))
        .arg("--accelerator")
        .arg(inputs.join("hardware/tpu_like.yaml"))
        .args(["--lpf-limit", "none", "--search-budget", "1500ms", "--jobs", "2", "-o"])
        .arg(dir.path().join("out.txt"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > std::time::Duration::from_secs(120) {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let err = reader.join().unwrap();
    assert_eq!(status.and_then(|s| s.code()), Some(0), "the run did not end: {err}");
    let bar =
        err.split('\r').find(|l| l.contains(" orderings, ")).unwrap_or_else(|| panic!("no bar in {err:?}"));
    assert!(bar.starts_with('[') && bar.contains(" layers, layer ") && bar.contains(" s budget"), "{bar}");
}
