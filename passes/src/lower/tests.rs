//! Index math of the lowering: relations, pads, broadcasting, precisions.

use super::*;
use crate::pass::PassContext;
use crate::registry::{PassOptions, lookup};

fn run_pass(model: &mut Model, name: &str) {
    let info = lookup(name).unwrap();
    let mut pass = (info.build)(&mut PassOptions::new(info.name, &[])).unwrap();
    pass.run(model, &mut PassContext::default()).unwrap();
}

/// Parses `body` as the main graph, infers shapes, reads quantization and lowers.
fn lower(header: &str, body: &str) -> Workload {
    let text = format!("ir_version 8\nopset_import \"\" 13\n\ngraph @g({header}) {{\n{body}\n}}\n");
    let mut model = qc_ir::text::parse_model(&text).unwrap();
    run_pass(&mut model, "infer-shapes");
    run_pass(&mut model, "absorb-quant");
    lower_model(&model, &LowerOptions::default())
}

/// As [`lower`], with exact partial sums (bit growth, `psum=exact`).
fn lower_exact(header: &str, body: &str) -> Workload {
    let text = format!("ir_version 8\nopset_import \"\" 13\n\ngraph @g({header}) {{\n{body}\n}}\n");
    let mut model = qc_ir::text::parse_model(&text).unwrap();
    run_pass(&mut model, "infer-shapes");
    run_pass(&mut model, "absorb-quant");
    lower_model(&model, &LowerOptions { psum: crate::lower::PsumMode::Exact, ..Default::default() })
}

fn rel(name: &str, terms: &[(i64, &str)], offset: i64, extent: u64, padding: (u64, u64)) -> Relation {
    Relation {
        name: name.into(),
        terms: terms.iter().map(|(c, d)| (*c, d.to_string())).collect(),
        offset,
        extent,
        padding,
    }
}

fn sizes(l: &LoopNest) -> Vec<(String, u64)> {
    l.dims.iter().map(|d| (d.name.clone(), d.size)).collect()
}

fn index(o: &Operand) -> String {
    o.index.join(",")
}

#[test]
fn conv_asymmetric_pads_strides_dilations_and_groups() {
    let w = lower(
        "%x: f32[1,4,10,9]) -> (%y: ?",
        "  %w = \"\"::Constant() {value = f32[6,2,3,2] floats [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]}\n  \
         %y = \"\"::Conv(%x, %w) {group = 2, strides = [2, 1], dilations = [2, 3], pads = [1, 0, 2, 3]}",
    );
    assert!(w.not_lowered.iter().all(|n| n.op_type == "Constant"), "{:?}", w.not_lowered);
    let l = &w.layers[0];
    // H: (10 + 1 + 2 - 5) / 2 + 1 = 5; W: (9 + 0 + 3 - 4) / 1 + 1 = 9
    assert_eq!(
        sizes(l),
        [("B", 1), ("G", 2), ("K", 3), ("C", 2), ("OY", 5), ("OX", 9), ("FY", 3), ("FX", 2)]
            .map(|(n, s)| (n.to_string(), s))
    );
    assert_eq!(
        l.relations,
        vec![
            rel("iy", &[(2, "oy"), (2, "fy")], -1, 10, (1, 2)),
            rel("ix", &[(1, "ox"), (3, "fx")], 0, 9, (0, 3))
        ]
    );
    assert_eq!(index(&l.inputs[0]), "g,k,c,fy,fx");
    assert_eq!(index(&l.inputs[1]), "b,g,c,iy,ix");
    assert_eq!(l.inputs[0].source, Source::Constant);
    assert_eq!(l.inputs[1].source, Source::GraphInput("x".into()));
    assert_eq!((l.psum_precision, l.psum_rule), (Some(16), PsumRule::TwiceActivation));
}

#[test]
fn conv_same_lower_pads_from_the_output() {
    let w = lower(
        "%x: f32[1,1,5], %w: f32[1,1,4]) -> (%y: ?",
        "  %y = \"\"::Conv(%x, %w) {auto_pad = \"SAME_LOWER\", strides = [2]}",
    );
    let l = &w.layers[0];
    // out = ceil(5/2) = 3; total = (3-1)*2 + 4 - 5 = 3; SAME_LOWER puts 2 at the start
    assert_eq!(l.relations, vec![rel("ix", &[(2, "ox"), (1, "fx")], -2, 5, (2, 1))]);
    assert_eq!(sizes(l).len(), 6);
}

#[test]
fn conv_transpose_relations_cover_the_output() {
    // in 3, stride 2, kernel 3, pads 1/0, output_padding 1: out = 2*2 + 1 + 3 - 1 - 0 = 7
    let w = lower(
        "%x: f32[1,2,3,3], %w: f32[2,4,3,3]) -> (%y: ?",
        "  %y = \"\"::ConvTranspose(%x, %w) {strides = [2, 2], pads = [1, 1, 0, 0], output_padding = [1, 1]}",
    );
    let l = &w.layers[0];
    assert_eq!(l.output.index.join(","), "b,g,k,oy,ox");
    assert_eq!(index(&l.inputs[0]), "g,c,k,fy,fx");
    assert_eq!(l.size("IY"), Some(3));
    assert_eq!(l.size("K"), Some(4));
    // reach = 2*2 + 2 + 1 = 7 positions, minus pad_top 1 = 6 < 7: no high crop
    assert_eq!(l.relations[0], rel("oy", &[(2, "iy"), (1, "fy")], -1, 7, (1, 0)));
    // every (iy, fy) lands in -1..=5 and the output is 0..7: the relation's range
    for iy in 0..3i64 {
        for fy in 0..3i64 {
            let oy = 2 * iy + fy - 1;
            assert!((-1..7).contains(&oy));
        }
    }
    // taps per output: ceil(3 / 2) per axis, times C = 2 (bit growth: `psum=exact`)
    let spec = lower_exact(
        "%x: i8[1,2,3,3], %w: i8[2,4,3,3]) -> (%y: ?",
        "  %y = \"\"::ConvTranspose(%x, %w) {strides = [2, 2], pads = [1, 1, 0, 0], output_padding = [1, 1]}",
    );
    // 8 + 8 + ceil(log2(2 * 2 * 2)) = 19
    assert_eq!(spec.layers[0].psum_precision, Some(19));
    assert_eq!(spec.layers[0].psum_rule, PsumRule::BitGrowth);
}

#[test]
fn conv_transpose_output_shape_and_crop() {
    // output_shape 5 from in 3, stride 2, kernel 3: full 7, total 2, NOTSET: (1, 1)
    let w = lower(
        "%x: f32[1,1,3], %w: f32[1,1,3]) -> (%y: ?",
        "  %y = \"\"::ConvTranspose(%x, %w) {strides = [2], output_shape = [5]}",
    );
    assert_eq!(
        w.layers[0].relations,
        vec![rel("ox", &[(2, "ix"), (1, "fx")], -1, 5, (1, 1))],
        "{:?}",
        w.not_lowered
    );
}

#[test]
fn matmul_broadcasting_and_attention() {
    let w = lower(
        "%a: f32[2,1,5,8], %b: f32[3,8,4], %q: f32[2,3,5,8], %k: f32[2,3,8,5]) -> (%y: ?, %s: ?, %v: ?",
        "  %y = \"\"::MatMul(%a, %b)\n  %s = \"\"::MatMul(%q, %k)\n  %v = \"\"::MatMul(%a, %k)",
    );
    let l = &w.layers[0];
    assert_eq!(sizes(l), [("B", 2), ("H", 3), ("D", 5), ("K", 4), ("C", 8)].map(|(n, s)| (n.to_string(), s)));
    assert_eq!(index(&l.inputs[0]), "b,d,c"); // H broadcast from 1
    assert_eq!(index(&l.inputs[1]), "h,c,k"); // no B axis
    assert_eq!(index(&l.output), "b,h,d,k");
    let s = &w.layers[1];
    assert_eq!(index(&s.inputs[1]), "b,h,c,k");
    assert_eq!(s.inputs[1].source, Source::GraphInput("k".into()));
    assert_eq!(w.layers.len(), 3);
    // 1-D operands drop D or K
    let d = matmul::matmul_draft(&[8], &[8, 4], &[4]).unwrap();
    assert_eq!(d.inputs[0].index, ["c"]);
    assert_eq!(d.out_index, ["k"]);
    let d = matmul::matmul_draft(&[3, 8], &[8], &[3]).unwrap();
    assert_eq!(d.inputs[1].index, ["c"]);
    assert!(matmul::matmul_draft(&[2, 3, 8], &[4, 8, 4], &[4, 3, 4]).is_err());
}

#[test]
fn dynamic_weights_take_the_activation_default() {
    let opts = LowerOptions {
        default_precision: Some(DefaultPrecision { weight: 4, act: 6, output: 7, psum: 20 }),
        ..Default::default()
    };
    let text = "ir_version 8\nopset_import \"\" 13\n\ngraph @g(%q: f32[3,8], %k: f32[8,5]) -> (%s: ?, %t: ?) {\n  init %w = f32[8,5]\n  %s = \"\"::MatMul(%q, %k)\n  %t = \"\"::MatMul(%q, %w)\n}\n";
    let mut model = qc_ir::text::parse_model(text).unwrap();
    run_pass(&mut model, "infer-shapes");
    let w = lower_model(&model, &opts);
    let (s, t) = (&w.layers[0], &w.layers[1]);
    assert_eq!(s.inputs[1].precision, Some(6));
    assert_eq!(t.inputs[1].precision, Some(4));
    assert_eq!(t.inputs[1].source, Source::Constant);
    assert_eq!((t.output.precision, t.psum_precision, t.psum_rule), (Some(7), Some(20), PsumRule::Given));
}

#[test]
fn elementwise_broadcast_indices() {
    let names = elementwise::elementwise_names(4);
    let out = [1, 8, 4, 4];
    assert_eq!(elementwise::broadcast_index(&[8, 1, 1], 1, &out, &names).unwrap(), ["g"]);
    assert_eq!(elementwise::broadcast_index(&[1, 8, 4, 4], 0, &out, &names).unwrap(), ["b", "g", "oy", "ox"]);
    assert!(elementwise::broadcast_index(&[3, 1, 1], 1, &out, &names).is_err());
    assert!(elementwise::broadcast_index(&[1, 1, 1, 1, 1], 0, &out, &names).is_err());
    assert!(elementwise::broadcast_index(&[4], usize::MAX, &out, &names).is_err());
}

#[test]
fn pools_and_ceil_mode_padding() {
    // ceil mode: (6 - 3) / 2 -> ceil 2 + 1 = 3 windows; the last reaches index 6 = 1 past the end
    let w = lower(
        "%x: f32[1,3,6,6]) -> (%y: ?, %z: ?",
        "  %y = \"\"::MaxPool(%x) {kernel_shape = [3, 3], strides = [2, 2], ceil_mode = 1}\n  %z = \"\"::GlobalAveragePool(%x)",
    );
    let l = &w.layers[0];
    assert_eq!(l.compute, Compute::Max);
    assert_eq!(l.size("OY"), Some(3));
    assert_eq!(l.relations[0], rel("iy", &[(2, "oy"), (1, "fy")], 0, 6, (0, 1)));
    assert_eq!(l.inputs[0].precision, Some(0));
    assert_eq!(l.inputs[0].index, ["fy", "fx"]);
    let gap = &w.layers[1];
    assert_eq!(gap.compute, Compute::Avg);
    assert_eq!((gap.size("OY"), gap.size("FY"), gap.size("FX")), (Some(1), Some(6), Some(6)));
}

#[test]
fn malformed_and_unknown_go_to_not_lowered_without_panic() {
    let w = lower(
        "%x: f32[1,2,3,3], %u: f32[1,2,?,?], %v: f32[2,3]) -> (%a: ?, %b: ?, %c: ?, %d: ?, %e: ?, %f: ?, %g: ?",
        "  init %w = f32[2,2,1,1] floats [0.1, -0.2, 0.3, 0.4]\n  \
         %a = \"\"::Conv(%x, %w) {pads = [9223372036854775807, 0, 0, 0]}\n  \
         %b = \"\"::Conv(%x, %w) {group = \"two\"}\n  \
         %c = \"\"::Conv(%u, %w)\n  \
         %d = \"\"::MaxPool(%x) {kernel_shape = [0, -1], strides = [9223372036854775807, 1]}\n  \
         %e = \"\"::Relu(%x)\n  \
         %f = \"\"::ConvTranspose(%x, %w) {strides = [9223372036854775807, 9223372036854775807], dilations = [9223372036854775807, 1]}\n  \
         %g = \"\"::Gemm(%v, %v)",
    );
    // Huge but consistent attributes lower (shape inference agrees); the rest do not.
    let lowered: Vec<&str> = w.layers.iter().map(|l| l.output.value.as_str()).collect();
    assert_eq!(lowered, ["a", "f"]);
    let nodes: Vec<&str> = w.not_lowered.iter().map(|n| n.node.as_str()).collect();
    assert_eq!(nodes, ["Conv#1", "Conv#2", "MaxPool#3", "Relu#4", "Gemm#6"]);
    assert!(w.not_lowered[0].reason.contains("group"), "{}", w.not_lowered[0].reason);
    assert!(w.not_lowered[1].reason.contains("not known"), "{}", w.not_lowered[1].reason);
    assert_eq!(
        w.not_lowered[3].reason,
        "no compute loop nest for Relu (element-wise activation or unary math, not costed)"
    );
    assert_eq!(ceil_log2(u64::MAX), 64);
    assert_eq!(ceil_log2(9), 4);
}

#[test]
fn empty_ops_are_not_lowered() {
    // A grouped ConvTranspose whose output_shape asks for 0 rows (found by the `text` fuzz
    // target: its relation's extent was 0), a MatMul over an empty batch and an Add of empty
    // tensors, a GlobalAveragePool over an empty axis (its window of size 0 overflowed, found
    // the same way): legal ONNX, nothing to compute, and no loop nest ZigZag would take.
    let w = lower(
        "%x: f32[1,4,5,5], %e: f32[0,4], %m: f32[4,5], %z: f32[1,2,5,0]) -> (%t: ?, %p: ?, %s: ?, %g: ?",
        "  init %w = f32[4,2,4,4] external \"weights.bin\" offset 0 {}\n  \
         %t = \"\"::ConvTranspose(%x, %w) {group = 2, strides = [2, 2], output_shape = [0, 10]} name \"t\"\n  \
         %p = \"\"::MatMul(%e, %m) name \"p\"\n  \
         %s = \"\"::Add(%e, %e) name \"s\"\n  \
         %g = \"\"::GlobalAveragePool(%z) name \"g\"",
    );
    assert!(w.layers.is_empty(), "{:?}", w.layers);
    let reasons: Vec<(&str, &str)> =
        w.not_lowered.iter().map(|n| (n.node.as_str(), n.reason.as_str())).collect();
    assert_eq!(
        reasons,
        [
            ("t", "oy has extent 0: an empty tensor"),
            ("p", "loop D has size 0: an empty tensor"),
            ("s", "loop D has size 0: an empty tensor"),
            ("g", "the window over ix has size 0"),
        ]
    );
}

#[test]
fn lowered_workloads_print_and_parse_back() {
    let w = lower(
        "%x: u8[1,4,8,8], %q: f32[2,3,5,8], %k: f32[2,3,8,5]) -> (%y: ?, %p: ?, %s: ?, %e: ?",
        "  init %xs = f32[] floats [0.5]\n  init %xz = u8[] int32s [128]\n  \
         init %w = i8[6,4,3,3] external \"w.bin\" offset 0 {}\n  \
         init %ws = f32[] floats [0.25]\n  init %wz = i8[] int32s [0]\n  \
         %y = \"\"::QLinearConv(%x, %xs, %xz, %w, %ws, %wz, %xs, %xz) {pads = [1, 0, 2, 1]} name \"q conv\"\n  \
         %p = \"\"::MaxPool(%y) {kernel_shape = [2, 2], strides = [2, 2]}\n  \
         %s = \"\"::MatMul(%q, %k)\n  %e = \"\"::Mul(%s, %xs)\n  %r = \"\"::Relu(%s)",
    );
    assert_eq!(w.layers.len(), 4, "{:?}", w.not_lowered);
    let text = qc_ir::text::print_workload(&w);
    assert_eq!(qc_ir::text::parse_workload(&text).unwrap(), w, "{text}");
}

#[test]
fn onnxruntime_fused_and_dynamic_int8_ops_lower_as_their_counterparts() {
    let text = "ir_version 8\nopset_import \"\" 13\nopset_import \"com.microsoft\" 1\n\n\
        graph @g(%x: f32[1,4,8,8], %a: f32[2,8,5], %b: f32[8,3], %p: u8[1,4,8,8], %r: u8[1,4,1,1]) -> (%y: ?, %m: ?, %c: ?, %s: ?, %t: ?) {\n  \
        init %w = f32[8,4,3,3]\n  init %wi = i8[8,4,3,3]\n  init %sc = f32[]\n  init %zp = u8[]\n  \
        %y = com.microsoft::FusedConv(%x, %w) {activation = \"Relu\", pads = [1, 1, 1, 1]}\n  \
        %m = com.microsoft::FusedMatMul(%a, %b) {transA = 1, alpha = 0.5}\n  \
        %q, %qs, %qz = \"\"::DynamicQuantizeLinear(%x)\n  \
        %c = \"\"::ConvInteger(%q, %wi, %qz) {pads = [1, 1, 1, 1]}\n  \
        %s = com.microsoft::QLinearAdd(%p, %sc, %zp, %r, %sc, %zp, %sc, %zp)\n  \
        %t = com.microsoft::QLinearMul(%p, %sc, %zp, %r, %sc, %zp, %sc, %zp)\n}\n";
    let mut model = qc_ir::text::parse_model(text).unwrap();
    run_pass(&mut model, "infer-shapes");
    run_pass(&mut model, "absorb-quant");
    let w = lower_model(&model, &LowerOptions::default());
    let by_op: Vec<&str> = w.layers.iter().map(|l| l.op_type.as_str()).collect();
    assert_eq!(by_op, ["FusedConv", "FusedMatMul", "ConvInteger", "QLinearAdd", "QLinearMul"], "{w:?}");
    let conv = &w.layers[0];
    assert_eq!(sizes(conv)[..4], [("B", 1), ("G", 1), ("K", 8), ("C", 4)].map(|(n, s)| (n.to_string(), s)));
    // transA: A is [2, 8(c), 5(d)], indexed with its last two dims swapped.
    let mm = &w.layers[1];
    assert_eq!(sizes(mm), [("B", 2), ("D", 5), ("K", 3), ("C", 8)].map(|(n, s)| (n.to_string(), s)));
    assert_eq!(index(&mm.inputs[0]), "b,c,d");
    // The dynamic int8 layer: 8-bit operands, the activation from DynamicQuantizeLinear.
    let ci = &w.layers[2];
    let role = |r: &str| ci.inputs.iter().find(|o| o.role == r).unwrap();
    assert_eq!((role("I").precision, role("W").precision), (Some(8), Some(8)));
    assert_eq!(role("I").quant.as_ref().map(|q| q.origin), Some(qc_ir::QuantOrigin::OnnxDynamic));
    // QLinearAdd/QLinearMul: inputs 0 and 3, broadcast like Add and Mul.
    assert_eq!(index(&w.layers[3].inputs[1]), "b,g");
    assert_eq!(w.layers[4].compute, Compute::Mul);
}
