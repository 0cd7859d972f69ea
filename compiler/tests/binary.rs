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
