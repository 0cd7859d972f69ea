//! ZigZag manual-workload YAML: reading ZigZag's own example workloads (from `../shared`, when
//! present), inline fixtures, round trips and malformed inputs.

use crate::common::read_broken;

use std::path::PathBuf;

use miette::Diagnostic;
use qc_backends::zigzag::{ErrorKind, read_workload_yaml, write_workload_yaml};
use qc_ir::{Compute, LoopDim, LoopNest, Operand, PsumRule, Relation, Source, Workload};

fn shared_workload(name: &str) -> Option<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/peers/zigzag-inputs/zigzag/inputs/workload")
        .join(name);
    match std::fs::read_to_string(&path) {
        Ok(t) => Some(t),
        Err(_) => {
            println!("{} is missing (no ../shared checkout); skipping this test", path.display());
            None
        }
    }
}

fn read(text: &str) -> Workload {
    read_workload_yaml(text, "test.yaml").unwrap_or_else(|e| panic!("{:?}", miette::Report::new(e)))
}

fn roundtrip(w: &Workload) {
    let text = write_workload_yaml(w);
    let back = read_workload_yaml(&text, "written.yaml")
        .unwrap_or_else(|e| panic!("{:?}\n{text}", miette::Report::new(e)));
    assert_eq!(&back, w, "read(write(w)) != w; written:\n{text}");
    // Writing is deterministic and stable.
    assert_eq!(write_workload_yaml(&back), text);
}

fn sizes(n: &LoopNest) -> Vec<(String, u64)> {
    n.dims.iter().map(|d| (d.name.clone(), d.size)).collect()
}

const CONV_FIXTURE: &str = "\
- id: 0 # conv1 stride 2
  name: conv1
  operator_type: Conv
  equation: O[b][g][k][oy][ox]+=W[g][k][c][fy][fx]*I[b][g][c][iy][ix]
  dimension_relations: [ix=2*ox+1*fx, iy=2*oy+1*fy]
  loop_dims: [B, K, G, OX, OY, C, FX, FY]
  loop_sizes: [1, 64, 1, 112, 112, 3, 7, 7]
  operand_precision: {W: 8, I: 8, O: 16, O_final: 8}
  operand_source: {I: 0, W: 0}
  pr_loop_dims: [IX, IY]
  pr_loop_sizes: [224, 224]
  padding: [[3, 3], [3, 3]]

- id: 1
  operator_type: Pooling
  equation: O[b][g][oy][ox]+=W[fx][fy]*I[b][g][iy][ix]
  dimension_relations: [ix=2*ox+1*fx, iy = 2 * oy + fy]
  loop_dims: [B, G, OY, OX, FX, FY]
  loop_sizes: [1, 64, 56, 56, 3, 3]
  operand_precision:
    I: 8
    W: 0
    O: 16
    O_final: 8
  operand_source:
    I: 0
    W: 1

- id: 2
  name: add
  operator_type: Add
  equation: O[b][g][oy][ox]=W[b][g][oy][ox]+I[b][g][oy][ox]
  loop_dims: [B, G, OY, OX]
  loop_sizes: [1, 64, 56, 56]
  operand_precision: {W: 8, I: 8, O: 16, O_final: 8}
  operand_source: {W: 1, I: 0}
  time_dim: ''
";

#[test]
fn inline_fixture_exact_values() {
    let w = read(CONV_FIXTURE);
    assert_eq!(w.layers.len(), 3);
    assert!(w.not_lowered.is_empty());

    let conv = &w.layers[0];
    assert_eq!(conv.name, "conv1");
    assert_eq!(conv.id, 0);
    assert_eq!(conv.op_type, "Conv");
    assert_eq!(conv.compute, Compute::Mac);
    let expect: Vec<(String, u64)> =
        [("B", 1), ("K", 64), ("G", 1), ("OX", 112), ("OY", 112), ("C", 3), ("FX", 7), ("FY", 7)]
            .iter()
            .map(|(n, s)| (n.to_string(), *s))
            .collect();
    assert_eq!(sizes(conv), expect);
    assert_eq!(conv.iterations(), 112 * 112 * 64 * 3 * 49);
    assert_eq!(conv.output.role, "O");
    assert_eq!(conv.output.index, ["b", "g", "k", "oy", "ox"]);
    assert_eq!(conv.output.precision, Some(8));
    assert_eq!(conv.psum_precision, Some(16));
    assert_eq!(conv.psum_rule, PsumRule::Given);
    assert_eq!(conv.inputs.len(), 2);
    assert_eq!(conv.inputs[0].role, "W");
    assert_eq!(conv.inputs[0].index, ["g", "k", "c", "fy", "fx"]);
    assert_eq!(conv.inputs[0].source, Source::Constant);
    assert_eq!(conv.inputs[1].role, "I");
    assert_eq!(conv.inputs[1].source, Source::Constant);
    assert_eq!(conv.operand("W").unwrap().precision, Some(8));
    assert_eq!(
        conv.relation("ix"),
        Some(&Relation {
            name: "ix".into(),
            terms: vec![(2, "ox".into()), (1, "fx".into())],
            offset: -3,
            extent: 224,
            padding: (3, 3),
        })
    );

    let pool = &w.layers[1];
    assert_eq!(pool.name, "Layer1", "ZigZag's default name");
    assert_eq!(pool.compute, Compute::Max);
    assert_eq!(pool.operand("W").unwrap().precision, Some(0));
    assert_eq!(pool.operand("W").unwrap().source, Source::Constant);
    assert_eq!(pool.operand("I").unwrap().source, Source::Layer("conv1".into()));
    // No pr_loop_sizes: ZigZag's range, (56-1)*2 + (3-1)*1 + 1 = 113; spaces and a missing
    // coefficient are allowed.
    let iy = pool.relation("iy").unwrap();
    assert_eq!(
        (iy.terms.clone(), iy.offset, iy.extent, iy.padding),
        (vec![(2, "oy".into()), (1, "fy".into())], 0, 113, (0, 0))
    );

    let add = &w.layers[2];
    assert_eq!(add.compute, Compute::Add);
    assert!(add.relations.is_empty());
    assert_eq!(add.operand("W").unwrap().source, Source::Layer("Layer1".into()));
    assert_eq!(add.operand("I").unwrap().source, Source::Layer("conv1".into()));

    roundtrip(&w);
}

#[test]
fn resnet18_yaml() {
    let Some(text) = shared_workload("resnet18.yaml") else { return };
    let w =
        read_workload_yaml(&text, "resnet18.yaml").unwrap_or_else(|e| panic!("{:?}", miette::Report::new(e)));
    assert_eq!(w.layers.len(), 31);
    let count = |c: Compute| w.layers.iter().filter(|l| l.compute == c).count();
    assert_eq!(count(Compute::Mac), 21, "18 Conv + 3 Conv_downsample");
    assert_eq!(count(Compute::Add), 8);
    assert_eq!(count(Compute::Max), 2, "ZigZag writes both poolings as `Pooling`");
    let first = &w.layers[0];
    assert_eq!(first.name, "example_name_of_layer0");
    assert_eq!(first.size("K"), Some(64));
    assert_eq!(first.size("OX"), Some(112));
    assert_eq!(first.size("FX"), Some(7));
    assert_eq!(first.relation("ix").unwrap().terms, vec![(2, "ox".to_string()), (1, "fx".to_string())]);
    // No pr_loop_sizes in this file: the extent is the relation's range, 111*2 + 6 + 1.
    assert_eq!(first.relation("ix").unwrap().extent, 229);
    assert_eq!(w.layers[2].name, "Layer2");
    assert_eq!(w.layers[2].operand("I").unwrap().source, Source::Layer("Layer1".into()));
    assert_eq!(w.layers[4].compute, Compute::Add);
    assert_eq!(w.layers[4].operand("W").unwrap().source, Source::Layer("Layer1".into()));
    assert_eq!(w.layers[4].operand("I").unwrap().source, Source::Layer("Layer3".into()));
    let macs: u128 = w.layers.iter().filter(|l| l.compute == Compute::Mac).map(LoopNest::iterations).sum();
    // The file's own sizes (it is not the ONNX model: its 1.814 G there).
    assert_eq!(macs, 1_968_214_016);
    roundtrip(&w);
}

#[test]
fn gemm_layer_yaml() {
    let Some(text) = shared_workload("gemm_layer.yaml") else { return };
    let w = read_workload_yaml(&text, "gemm_layer.yaml")
        .unwrap_or_else(|e| panic!("{:?}", miette::Report::new(e)));
    assert_eq!(w.layers.len(), 1);
    let g = &w.layers[0];
    assert_eq!((g.name.as_str(), g.op_type.as_str(), g.compute), ("Layer0", "Gemm", Compute::Mac));
    assert_eq!(sizes(g), vec![("D0".to_string(), 128), ("D1".to_string(), 128), ("D2".to_string(), 128)]);
    assert_eq!(g.output.index, ["d0", "d1"]);
    assert_eq!(g.inputs[0].role, "I");
    assert_eq!(g.inputs[0].index, ["d0", "d2"]);
    assert_eq!(g.inputs[1].role, "W");
    assert_eq!(g.psum_precision, Some(32));
    assert_eq!(g.output.precision, Some(8));
    assert_eq!(g.iterations(), 128 * 128 * 128);
    roundtrip(&w);
}

fn operand(role: &str, index: &[&str], precision: Option<u32>, source: Source) -> Operand {
    Operand {
        role: role.into(),
        index: index.iter().map(|s| s.to_string()).collect(),
        precision,
        quant: None,
        source,
        value: String::new(),
    }
}

/// A workload as the lowering would make it: graph inputs, a Sub, a Mul, a one-input pooling
/// nest, odd names, a nest ZigZag cannot express.
#[test]
fn write_qc_workload() {
    let dims = |d: &[(&str, u64)]| d.iter().map(|(n, s)| LoopDim { name: n.to_string(), size: *s }).collect();
    let conv = LoopNest {
        name: "/layer1/conv \"a\"".into(),
        id: 0,
        op_type: "QLinearConv".into(),
        compute: Compute::Mac,
        dims: dims(&[("B", 1), ("K", 8), ("C", 4), ("OY", 4), ("OX", 4), ("FY", 3), ("FX", 3)]),
        output: operand("O", &["b", "k", "oy", "ox"], Some(8), Source::Other),
        inputs: vec![
            operand("W", &["k", "c", "fy", "fx"], Some(4), Source::Constant),
            operand("I", &["b", "c", "iy", "ix"], Some(8), Source::GraphInput("input".into())),
        ],
        relations: vec![
            Relation {
                name: "iy".into(),
                terms: vec![(1, "oy".into()), (1, "fy".into())],
                offset: -1,
                extent: 4,
                padding: (1, 1),
            },
            Relation {
                name: "ix".into(),
                terms: vec![(1, "ox".into()), (1, "fx".into())],
                offset: -1,
                extent: 4,
                padding: (1, 1),
            },
        ],
        psum_precision: Some(20),
        psum_rule: PsumRule::BitGrowth,
    };
    let pool = LoopNest {
        name: "pool".into(),
        id: 1,
        op_type: "GlobalAveragePool".into(),
        compute: Compute::Avg,
        dims: dims(&[("B", 1), ("K", 8), ("FY", 4), ("FX", 4)]),
        output: operand("O", &["b", "k"], Some(8), Source::Other),
        inputs: vec![operand(
            "I",
            &["b", "k", "fy", "fx"],
            Some(8),
            Source::Layer("/layer1/conv \"a\"".into()),
        )],
        relations: vec![],
        psum_precision: None,
        psum_rule: PsumRule::None,
    };
    let ew = |name: &str, id, compute, op: &str| LoopNest {
        name: name.into(),
        id,
        op_type: op.into(),
        compute,
        dims: dims(&[("B", 1), ("K", 8)]),
        output: operand("O", &["b", "k"], None, Source::Other),
        inputs: vec![
            operand("A", &["b", "k"], Some(8), Source::Layer("pool".into())),
            operand("B", &["k"], Some(8), Source::Constant),
        ],
        relations: vec![],
        psum_precision: None,
        psum_rule: PsumRule::None,
    };
    let mut three = ew("three", 4, Compute::Add, "Sum");
    three.inputs.push(operand("C", &["k"], None, Source::Constant));
    let w = Workload {
        layers: vec![
            conv,
            pool,
            ew("sub", 2, Compute::Sub, "Sub"),
            ew("mul", 3, Compute::Mul, "Mul"),
            three,
            ew("after", 5, Compute::Add, "Add"),
        ],
        not_lowered: vec![qc_ir::NotLowered {
            node: "relu".into(),
            op_type: "Relu".into(),
            reason: "no compute".into(),
            elements: Some(12),
            inputs: vec![Source::Layer("mul".into())],
        }],
    };
    let text = write_workload_yaml(&w);
    assert!(text.contains("# qc: not lowered: relu (Relu): no compute"), "{text}");
    assert!(text.contains("# qc: skipped layer 4 `three` (Sum)"), "{text}");
    assert!(text.contains("name: \"/layer1/conv \\\"a\\\"\""), "{text}");
    assert!(text.contains("equation: O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]"), "{text}");
    assert!(text.contains("dimension_relations: [iy=1*oy+1*fy, ix=1*ox+1*fx]"), "{text}");
    assert!(text.contains("padding: [[1, 1], [1, 1]]"), "{text}");
    assert!(text.contains("equation: O[b][k]+=W[fy][fx]*I[b][k][fy][fx]"), "{text}");
    assert!(text.contains("equation: O[b][k]=W[b][k]+I[k]"), "{text}");
    assert!(text.contains("equation: O[b][k]=W[b][k]*I[k]"), "{text}");

    let back = read(&text);
    assert_eq!(back.layers.len(), 5);
    let c = &back.layers[0];
    assert_eq!(c.name, "/layer1/conv \"a\"");
    assert_eq!(c.op_type, "Conv");
    assert_eq!(
        c.operand("I").unwrap().source,
        Source::Constant,
        "graph inputs: the own id, as ZigZag writes them"
    );
    assert_eq!(c.operand("W").unwrap().precision, Some(4));
    assert_eq!(c.psum_precision, Some(20));
    assert_eq!(c.relations, w.layers[0].relations);
    let p = &back.layers[1];
    assert_eq!((p.op_type.as_str(), p.compute), ("GlobalAveragePool", Compute::Avg));
    assert_eq!(p.operand("W").unwrap().precision, Some(0));
    assert_eq!(p.operand("I").unwrap().source, Source::Layer("/layer1/conv \"a\"".into()));
    assert_eq!(p.psum_precision, Some(16), "2 x the I bits");
    assert_eq!((back.layers[2].name.as_str(), back.layers[2].compute), ("sub", Compute::Add));
    assert_eq!((back.layers[3].name.as_str(), back.layers[3].compute), ("mul", Compute::Mul));
    assert_eq!(back.layers[3].operand("W").unwrap().source, Source::Layer("pool".into()));
    assert_eq!(back.layers[4].name, "after");
    // What was read back round-trips exactly.
    roundtrip(&back);
}

#[test]
fn empty_workloads() {
    let w = Workload::default();
    let text = write_workload_yaml(&w);
    assert_eq!(read(&text), w);
    let e = read_workload_yaml("", "empty.yaml").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Schema);
}

fn error_of(text: &str) -> qc_backends::zigzag::WorkloadError {
    match read_workload_yaml(text, "bad.yaml") {
        Ok(w) => panic!("expected an error for\n{text}\ngot {w:?}"),
        Err(e) => e,
    }
}

#[test]
fn malformed_inputs_give_codes() {
    let base = CONV_FIXTURE.split("\n\n").next().unwrap().to_string() + "\n";
    let replace = |from: &str, to: &str| {
        assert!(base.contains(from), "{from}");
        base.replacen(from, to, 1)
    };
    let cases: Vec<(String, ErrorKind, Option<&str>)> = vec![
        (replace("operator_type: Conv", "operator_type: Sub"), ErrorKind::Operator, Some("operator_type")),
        (replace("+=W", "+= W"), ErrorKind::Equation, Some("equation")),
        (replace("O[b][g]", "X[b][g]"), ErrorKind::Equation, Some("equation")),
        (replace("*I[b]", "/I[b]"), ErrorKind::Equation, Some("equation")),
        (replace("[iy][ix]", "[iy][iz]"), ErrorKind::Equation, Some("equation")),
        (replace("+=W[g]", "+=O[g]"), ErrorKind::Equation, Some("equation")),
        (replace("ix=2*ox+1*fx", "ix=2*ox"), ErrorKind::Relation, Some("dimension_relations")),
        (replace("ix=2*ox+1*fx", "ix=a*ox+1*fx"), ErrorKind::Relation, Some("dimension_relations")),
        (replace("ix=2*ox+1*fx", "ix=2*ox+1*qx"), ErrorKind::Relation, Some("dimension_relations")),
        (replace("ix=2*ox+1*fx", "ox=2*ox+1*fx"), ErrorKind::Relation, Some("dimension_relations")),
        (replace("[1, 64, 1, 112", "[1, 64, 112"), ErrorKind::LoopDims, Some("loop_sizes")),
        (replace("[1, 64, 1, 112", "[1, 0, 1, 112"), ErrorKind::LoopDims, Some("loop_sizes")),
        (replace("[B, K, G,", "[B, K, K,"), ErrorKind::LoopDims, Some("loop_dims")),
        (replace("padding: [[3, 3], [3, 3]]", "padding: [[3, 3]]"), ErrorKind::PrDims, Some("padding")),
        (
            replace("padding: [[3, 3], [3, 3]]", "padding: [[3, 3, 1], [3, 3]]"),
            ErrorKind::PrDims,
            Some("padding"),
        ),
        (
            replace("pr_loop_sizes: [224, 224]", "pr_loop_sizes: [224]"),
            ErrorKind::PrDims,
            Some("pr_loop_sizes"),
        ),
        (
            replace("pr_loop_dims: [IX, IY]", "pr_loop_dims: [IX, IZ]"),
            ErrorKind::PrDims,
            Some("pr_loop_dims"),
        ),
        (replace("  pr_loop_dims: [IX, IY]\n", ""), ErrorKind::PrDims, Some("padding")),
        (
            replace("{W: 8, I: 8, O: 16, O_final: 8}", "{W: -8, I: 8, O: 16, O_final: 8}"),
            ErrorKind::Precision,
            Some("operand_precision"),
        ),
        (replace("{W: 8, I: 8, O: 16, O_final: 8}", "{W: 8, I: 8, O: 16}"), ErrorKind::Schema, None),
        (
            replace("{W: 8, I: 8, O: 16, O_final: 8}", "{W: 8, I: 8, O: 16, O_final: 8, X: 1}"),
            ErrorKind::Schema,
            None,
        ),
        (replace("{I: 0, W: 0}", "{I: 7, W: 0}"), ErrorKind::Source, Some("operand_source")),
        (replace("{I: 0, W: 0}", "{I: 0, W: 0, X: 0}"), ErrorKind::Schema, None),
        (replace("name: conv1", "nam: conv1"), ErrorKind::Schema, None),
        (replace("  operator_type: Conv\n", ""), ErrorKind::Schema, None),
        (replace("id: 0", "id: zero"), ErrorKind::Schema, None),
        (replace("id: 0", "id: -1"), ErrorKind::Id, Some("id")),
        (replace("[1, 64, 1, 112", "[1, 64, 1.5, 112"), ErrorKind::Schema, None),
        (base.clone() + &base.replace("name: conv1", "name: again"), ErrorKind::Id, Some("id")),
        ("- id: 0\n  operator_type: [Conv\n".to_string(), ErrorKind::Schema, None),
        ("id: 0\n".to_string(), ErrorKind::Schema, None),
        ("- 3\n".to_string(), ErrorKind::Schema, None),
        ("\"unterminated".to_string(), ErrorKind::Schema, None),
    ];
    for (text, kind, key) in cases {
        let e = error_of(&text);
        assert_eq!(e.kind, kind, "{e}\nfor\n{text}");
        assert_eq!(e.key(), key, "{text}");
        assert_eq!(e.code().unwrap().to_string(), format!("qc::zigzag::{}", kind.name()));
        assert!(e.help().is_some());
        if kind != ErrorKind::Schema {
            assert!(e.layer().unwrap().starts_with("layer "), "{e}");
            assert!(e.labels().is_some(), "a label on the offending value: {e}");
        }
        // The report renders.
        let _ = format!("{:?}", miette::Report::new(e));
    }
}

/// Cheap fuzzing: every prefix, and every single-byte deletion, of a valid workload either
/// reads or gives an error, never a panic; and what reads also round-trips.
#[test]
fn broken_yaml_never_panics() {
    let (n_ok, n_err) = read_broken(
        CONV_FIXTURE,
        &[
            "\0",
            "- id: 99999999999999999999\n",
            "- {id: 0, loop_sizes: [99999999999999999999]}",
            "[[[[",
            "- !!binary x",
        ],
        |t| read_workload_yaml(t, "fuzz.yaml"),
        |w| {
            let back = read_workload_yaml(&write_workload_yaml(&w), "again.yaml").unwrap();
            assert_eq!(back.layers.len(), w.layers.len());
        },
    );
    assert!(n_ok > 0 && n_err > 0, "{n_ok} read, {n_err} rejected");
}

#[test]
fn huge_sizes_do_not_overflow() {
    let text = "\
- id: 0
  operator_type: Conv
  equation: O[k][ox]+=W[k][fx]*I[ix]
  dimension_relations: [ix=9223372036854775807*ox+1*fx]
  loop_dims: [K, OX, FX]
  loop_sizes: [1, 9223372036854775807, 3]
  operand_precision: {W: 8, I: 8, O: 16, O_final: 8}
";
    assert_eq!(error_of(text).kind, ErrorKind::Relation);
}
