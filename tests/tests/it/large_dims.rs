//! Declared dims too large to count: `qc cost`, `qc lower` and `qc evaluate` give diagnostics,
//! never a panic or a wrapped number (a MatMul of 2^31-square inputs, one of 2^62-square values
//! made inside the graph, and ZigZag workloads with loop sizes 2^32 and 2^62); inputs no tensor
//! can fill (2^32 and 2^62 square) are refused at load.

use prost::Message;
use qc::fixtures::{model, node, opset, tensor_i64, value_info};
use qc::onnx::proto::{self as pb, DataType};
use qc_tests::qc;

/// A MatMul of two `[n, n]` inputs.
fn matmul(n: i64) -> pb::ModelProto {
    let graph = pb::GraphProto {
        name: Some("big".into()),
        node: vec![node("MatMul", "", "mm", &["a", "b"], &["y"], vec![])],
        input: vec![value_info("a", DataType::Float, &[n, n]), value_info("b", DataType::Float, &[n, n])],
        output: vec![pb::ValueInfoProto { name: Some("y".into()), ..Default::default() }],
        ..Default::default()
    };
    model(graph, vec![opset("", 13)])
}

/// A MatMul of an `[n, n]` value with itself, made by expanding a scalar input: the inputs are
/// small, the value in the middle is too large for any tensor.
fn expanded_matmul(n: i64) -> pb::ModelProto {
    let graph = pb::GraphProto {
        name: Some("big".into()),
        node: vec![
            node("Expand", "", "expand", &["s", "shape"], &["a"], vec![]),
            node("MatMul", "", "mm", &["a", "a"], &["y"], vec![]),
        ],
        input: vec![value_info("s", DataType::Float, &[1, 1])],
        initializer: vec![tensor_i64("shape", &[2], &[n, n])],
        output: vec![pb::ValueInfoProto { name: Some("y".into()), ..Default::default() }],
        ..Default::default()
    };
    model(graph, vec![opset("", 13)])
}

fn workload(size: u64) -> String {
    format!(
        "- id: 0\n  name: big\n  operator_type: Gemm\n  equation: O[b][k]+=W[k][c]*I[b][c]\n  loop_dims: [B, K, C]\n  loop_sizes: [{size}, {size}, {size}]\n  operand_precision: {{W: 8, I: 8, O: 16, O_final: 8}}\n  operand_source: {{I: 0}}\n"
    )
}

#[test]
fn matmuls_past_64_and_128_bits_are_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    // 2^31-square inputs (2^62 elements each): 2^93 MACs. 2^62-square values, made inside the
    // graph: 2^186 loop iterations.
    let cases = [("mm31", matmul(1 << 31), true), ("expanded62", expanded_matmul(1 << 62), false)];
    for (name, m, lowers) in cases {
        let path = dir.path().join(format!("{name}.onnx"));
        std::fs::write(&path, m.encode_to_vec()).unwrap();
        let p = path.to_str().unwrap();
        let (code, out, err) = qc(&["cost", p]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("incomplete: 1 node(s) not counted"), "the 0 is not a count: {out}");
        assert!(err.contains("qc::cost::uncosted") && err.contains("2^64"), "{err}");
        let (code, out, err) = qc(&["lower", p]);
        assert_eq!(code, 0, "{err}");
        if lowers {
            assert!(out.contains("9903520314283042199192993792 MACs"), "2^93 MACs, exactly: {out}");
            let (code, _, err) = qc(&["evaluate", p]);
            assert_eq!(code, 2);
            assert!(err.contains("qc::costmodel::too_large"), "{err}");
        } else {
            assert!(out.contains("multiply past 2^128"), "{out}");
            let (code, _, err) = qc(&["evaluate", p]);
            assert_eq!(code, 2);
            assert!(err.contains("qc::evaluate::nothing_to_cost") && err.contains("2^128"), "{err}");
            // A sweep refuses it too, before any design runs, rather than a front of 0 pJ designs.
            let sweep = dir.path().join("sweep.yaml");
            std::fs::write(&sweep, "parameters:\n  - {name: operational_array.sizes.D1, values: [8, 16]}\n")
                .unwrap();
            let lines = dir.path().join("lines.jsonl");
            let (code, _, err) = qc(&[
                "sweep",
                p,
                "--accelerator",
                "tpu_like",
                "--sweep",
                sweep.to_str().unwrap(),
                "-o",
                lines.to_str().unwrap(),
            ]);
            assert_eq!(code, 2);
            assert!(err.contains("qc::evaluate::nothing_to_cost"), "{err}");
            assert!(!lines.exists(), "nothing is written");
        }
    }
}

#[test]
fn inputs_no_tensor_can_fill_are_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    for (n, refused) in [(1i64 << 32, true), (1i64 << 62, true), (1i64 << 31, false)] {
        let path = dir.path().join(format!("mm{n}.onnx"));
        std::fs::write(&path, matmul(n).encode_to_vec()).unwrap();
        let p = path.to_str().unwrap();
        for cmd in ["inspect", "cost", "lower", "optimize"] {
            let out_path = dir.path().join("out.onnx");
            let mut args = vec![cmd, p];
            if cmd == "optimize" {
                args.extend(["-o", out_path.to_str().unwrap()]);
            }
            let (code, _, err) = qc(&args);
            if refused {
                assert_eq!(code, 2, "{cmd} {n}: {err}");
                assert!(err.contains("qc::verify::input_too_large") && err.contains("`a`"), "{err}");
                assert!(!out_path.exists(), "{cmd} wrote a file");
            } else {
                assert!(!err.contains("input_too_large"), "{cmd} {n}: {err}");
            }
        }
    }
}

#[test]
fn workloads_past_64_and_128_bits_are_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    let p32 = dir.path().join("w32.yaml");
    std::fs::write(&p32, workload(1 << 32)).unwrap();
    let (code, _, err) = qc(&["evaluate", p32.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("qc::costmodel::too_large") && err.contains("`big`"), "{err}");
    let p62 = dir.path().join("w62.yaml");
    std::fs::write(&p62, workload(1 << 62)).unwrap();
    for cmd in ["lower", "evaluate"] {
        let (code, _, err) = qc(&[cmd, p62.to_str().unwrap()]);
        assert_eq!(code, 2, "{cmd}");
        assert!(err.contains("past 2^128"), "{cmd}: {err}");
    }
}

#[test]
fn a_workload_the_loop_nest_verifier_refuses_is_a_diagnostic_listing_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("wide.yaml");
    let text = workload(4).replace("{W: 8, I: 8, O: 16, O_final: 8}", "{W: 100, I: 8, O: 300, O_final: 8}");
    std::fs::write(&p, text).unwrap();
    for cmd in ["lower", "evaluate"] {
        let (code, out, err) = qc(&[cmd, p.to_str().unwrap()]);
        assert_eq!(code, 2, "{cmd}: {err}");
        assert!(out.is_empty(), "{cmd}: {out}");
        assert!(err.contains("qc::zigzag::workload_invalid") && err.contains("2 problem(s)"), "{cmd}: {err}");
        assert!(err.contains("qc::verify::loop_precision") && err.contains("layer `big`"), "{cmd}: {err}");
        assert!(
            err.contains("operand `W` has 100 bits") && err.contains("partial sum has 300 bits"),
            "{err}"
        );
    }
}
