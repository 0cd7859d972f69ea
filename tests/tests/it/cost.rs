//! `qc cost` against the reference tool: every `*.qonnx-cost.json` under `../shared/models`
//! (written by `qonnx-inference-cost --cost-breakdown` after `qonnx-cleanup`) is matched in
//! `total_cost`, `optype_cost` and `node_cost` (by qonnx's node names), every key and every value
//! (1e-9 relative), `unsupported` as a set. The formulas themselves are checked on graphs written
//! in the textual IR, with the figures research/qonnx.md measured on the reference tool.

use std::collections::BTreeSet;
use std::time::Instant;

use qc_passes::ManagerOptions;
use qc_passes::cost::{CostOptions, CostReport, inference_cost, preprocess};
use serde_json::Value;

fn cost_of(model: &mut qc_ir::Model, opts: CostOptions) -> CostReport {
    preprocess(model, ManagerOptions::default()).expect("preprocessing runs");
    inference_cost(model, &opts)
}

fn cost_text(text: &str, opts: CostOptions) -> CostReport {
    let mut model = qc_ir::text::parse_model(text).expect("the test model parses");
    cost_of(&mut model, opts)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

/// Differences between qc's counts and the reference's, as readable lines.
fn compare_counts(got: &Value, want: &Value, at: &str, out: &mut Vec<String>) {
    let (Some(g), Some(w)) = (got.as_object(), want.as_object()) else {
        out.push(format!("{at}: not an object"));
        return;
    };
    for (k, wv) in w {
        if k == "unsupported" {
            continue;
        }
        match (g.get(k), wv) {
            (None, _) => out.push(format!("{at}.{k}: missing (want {wv})")),
            (Some(Value::Bool(a)), Value::Bool(b)) if a == b => {}
            (Some(gv), _) => match (gv.as_f64(), wv.as_f64()) {
                (Some(a), Some(b)) if close(a, b) => {}
                _ => out.push(format!("{at}.{k}: got {gv}, want {wv}")),
            },
        }
    }
    for k in g.keys() {
        if !w.contains_key(k) && k != "unsupported" {
            out.push(format!("{at}.{k}: not in the reference"));
        }
    }
}

/// The reference's `unsupported`: Python's `str(set)`, such as `{'Softmax', 'LRN'}` or `set()`.
fn python_set(s: &str) -> BTreeSet<String> {
    s.trim_matches(|c| c == '{' || c == '}')
        .split(',')
        .map(|x| x.trim().trim_matches('\'').to_string())
        .filter(|x| !x.is_empty() && x != "set()")
        .collect()
}

#[test]
fn every_reference_cost_matches() {
    let Some(shared) = qc_tests::shared_or_say("cost") else { return };
    let refs = qc_tests::files_under(&shared.join("models"), ".qonnx-cost.json");
    assert!(refs.len() >= 47, "found {} reference files", refs.len());
    let mut failures = Vec::new();
    let start = Instant::now();
    for r in &refs {
        let model_path = r.to_string_lossy().replace(".qonnx-cost.json", ".onnx");
        let name = model_path.rsplit('/').next().unwrap_or_default().to_string();
        let want: Value = serde_json::from_str(&std::fs::read_to_string(r).unwrap()).unwrap();
        let loaded = qc::load::load(std::path::Path::new(&model_path), Default::default())
            .unwrap_or_else(|e| panic!("{name} loads: {e:?}"));
        let mut model = loaded.model;
        let t = Instant::now();
        let report = cost_of(&mut model, CostOptions::default());
        let took = t.elapsed();
        let got: Value = serde_json::from_str(&qc::cost::json(&name, &report, true)).unwrap();
        let mut diffs = Vec::new();
        compare_counts(&got["total_cost"], &want["total_cost"], "total_cost", &mut diffs);
        let want_unsupported = python_set(want["total_cost"]["unsupported"].as_str().unwrap_or(""));
        if report.unsupported != want_unsupported {
            diffs.push(format!("unsupported: got {:?}, want {want_unsupported:?}", report.unsupported));
        }
        let (go, wo) = (&got["optype_cost"], &want["optype_cost"]);
        for k in wo.as_object().unwrap().keys().chain(go.as_object().unwrap().keys()) {
            compare_counts(&go[k], &wo[k], &format!("optype_cost.{k}"), &mut diffs);
        }
        // Nodes: qc keys them by the model's own names and maps each to the name qonnx gives.
        let wn = want["node_cost"].as_object().unwrap();
        assert_eq!(report.nodes.len(), wn.len(), "{name}: costed node count");
        for n in &report.nodes {
            match wn.get(&n.qonnx_name) {
                Some(w) => {
                    compare_counts(&got["node_cost"][&n.name], w, &format!("node {}", n.name), &mut diffs)
                }
                None => diffs.push(format!("node {} ({}) is not in the reference", n.name, n.qonnx_name)),
            }
        }
        eprintln!("{name}: {} in {took:.2?}", if diffs.is_empty() { "matches" } else { "DIFFERS" });
        if !diffs.is_empty() {
            failures.push(format!("{name}:\n  {}", diffs.join("\n  ")));
        }
    }
    eprintln!(
        "cost: {} of {} reference files match, in {:.2?}",
        refs.len() - failures.len(),
        refs.len(),
        start.elapsed()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

const HEADER: &str = "ir_version 8\nopset_import \"\" 13\n\n";

fn macs(r: &CostReport) -> f64 {
    r.total["total_macs"]
}

#[test]
fn conv_counts_groups_and_strides() {
    // research/qonnx.md: group 2, stride 2, no pads, x[1,4,8,8], W[8,2,3,3] gives 1296 MACs.
    let zeros = "0x".to_string() + &"0000803f".repeat(8 * 2 * 9);
    let r = cost_text(
        &format!(
            "{HEADER}graph @g(%x: f32[1,4,8,8]) -> (%y: ?) {{\n  init %w = f32[8,2,3,3] raw {zeros}\n  \
             %y = \"\"::Conv(%x, %w) {{group = 2, kernel_shape = [3, 3], strides = [2, 2]}}\n}}\n"
        ),
        CostOptions::default(),
    );
    assert_eq!(macs(&r), 1296.0);
    assert_eq!(r.total["mem_w_FLOAT32"], 144.0);
    assert_eq!(r.total["mem_o_FLOAT32"], 8.0 * 9.0);
}

#[test]
fn conv_without_kernel_shape_uses_the_weight() {
    // The reference crashes here; qc reads the kernel from the weight's dims.
    let ones = "0x".to_string() + &"0000803f".repeat(8 * 4 * 9);
    let r = cost_text(
        &format!(
            "{HEADER}graph @g(%x: f32[1,4,8,8]) -> (%y: ?) {{\n  init %w = f32[8,4,3,3] raw {ones}\n  \
             %y = \"\"::Conv(%x, %w)\n}}\n"
        ),
        CostOptions::default(),
    );
    assert_eq!(macs(&r), (8 * 4 * 9 * 36) as f64);
}

#[test]
fn sparsity_discounts_zero_weights() {
    // Half the weights are zero (one of them -0.0, which counts as zero as in NumPy).
    let w = "0x0000803f000000000000803f00000080";
    let text = format!(
        "{HEADER}graph @g(%x: f32[3,2]) -> (%y: ?) {{\n  init %w = f32[2,2] raw {w}\n  \
         %y = \"\"::MatMul(%x, %w)\n}}\n"
    );
    let sparse = cost_text(&text, CostOptions::default());
    assert_eq!(macs(&sparse), 6.0);
    assert_eq!(sparse.total["mem_w_FLOAT32"], 2.0);
    let dense = cost_text(&text, CostOptions { discount_sparsity: false, extended: false });
    assert_eq!(macs(&dense), 12.0);
    assert!(!dense.discount_sparsity);
}

#[test]
fn matmul_and_gemm_follow_the_reference() {
    // Gemm transB with bias, a[2,32], B[16,32]: 1024 MACs, mem_w 512.
    let b = "0x".to_string() + &"0000803f".repeat(16 * 32);
    let r = cost_text(
        &format!(
            "{HEADER}graph @g(%a: f32[2,32], %c: f32[16]) -> (%y: ?) {{\n  init %b = f32[16,32] raw {b}\n  \
             %y = \"\"::Gemm(%a, %b, %c) {{transB = 1}}\n}}\n"
        ),
        CostOptions::default(),
    );
    assert_eq!((macs(&r), r.total["mem_w_FLOAT32"]), (1024.0, 512.0));
    // A constant first operand: const[5,7] @ dyn[7,3] gives 105 MACs, mem_w 35.
    let a = "0x".to_string() + &"0000803f".repeat(35);
    let r = cost_text(
        &format!(
            "{HEADER}graph @g(%x: f32[7,3]) -> (%y: ?) {{\n  init %a = f32[5,7] raw {a}\n  \
             %y = \"\"::MatMul(%a, %x)\n}}\n"
        ),
        CostOptions::default(),
    );
    assert_eq!((macs(&r), r.total["mem_w_FLOAT32"]), (105.0, 35.0));
    // Batched, both dynamic: [4,6,5] @ [4,5,9] gives 1080 MACs and no weights.
    let r = cost_text(
        &format!(
            "{HEADER}graph @g(%a: f32[4,6,5], %b: f32[4,5,9]) -> (%y: ?) {{\n  %y = \"\"::MatMul(%a, %b)\n}}\n"
        ),
        CostOptions::default(),
    );
    assert_eq!((macs(&r), r.total["mem_w_FLOAT32"]), (1080.0, 0.0));
}

#[test]
fn upsample_and_unsupported_ops() {
    // Linear x2 x2 on [1,4,8,8]: 4096 MACs. ConvTranspose, Resize and GlobalAveragePool are
    // unsupported by default and costed with --extended.
    let text = "ir_version 8\nopset_import \"\" 9\n\ngraph @g(%x: f32[1,4,8,8]) -> (%y: ?, %z: ?) {\n  \
         init %s = f32[4] floats [1.0, 1.0, 2.0, 2.0]\n  \
         %y = \"\"::Upsample(%x, %s) {mode = \"linear\"}\n  %z = \"\"::GlobalAveragePool(%x)\n}\n";
    let r = cost_text(text, CostOptions::default());
    assert_eq!(macs(&r), 4096.0);
    assert_eq!(r.unsupported, BTreeSet::from(["GlobalAveragePool".to_string()]));
    let r = cost_text(text, CostOptions { discount_sparsity: true, extended: true });
    assert_eq!(macs(&r), 4096.0 + 4.0 * 64.0);
    assert!(r.unsupported.is_empty());
}

#[test]
fn quantized_weights_keep_their_datatype() {
    // A 2-bit signed narrow Quant with unit scale on the weights: INT2 weights, sparsity
    // measured after quantization (0.3 rounds to 0).
    let r = cost_text(
        "ir_version 8\nopset_import \"\" 13\nopset_import \"qonnx.custom_op.general\" 1\n\n\
         graph @g(%x: f32[1,2]) -> (%y: ?) {\n  \
         init %w = f32[2,2] floats [1.0, 0.3, -1.0, 1.0]\n  init %s = f32[] floats [1.0]\n  \
         init %z = f32[] floats [0.0]\n  init %b = f32[] floats [2.0]\n  \
         %xq = qonnx.custom_op.general::Quant(%x, %s, %z, %b) {narrow = 1, signed = 1}\n  \
         %wq = qonnx.custom_op.general::Quant(%w, %s, %z, %b) {narrow = 1, signed = 1}\n  \
         %y = \"\"::MatMul(%xq, %wq)\n}\n",
        CostOptions::default(),
    );
    assert_eq!(r.total["op_mac_INT2_INT2"], 3.0);
    assert_eq!(r.total["mem_w_INT2"], 3.0);
    assert_eq!(r.total["mem_o_INT32"], 2.0);
    assert_eq!(r.total["total_bops"], 12.0);
}

#[test]
fn dynamic_int8_and_fused_ops_cost_as_their_float_layers() {
    // x[1,4,8,8] through W[8,4,3,3] with pads 1: 8 * 4 * 9 * 64 = 18432 MACs, in every form.
    let n = 8 * 4 * 9;
    let ones = "0x".to_string() + &"0000803f".repeat(n);
    let int8_ones = "0x".to_string() + &"01".repeat(n);
    let header = "ir_version 8\nopset_import \"\" 13\nopset_import \"com.microsoft\" 1\n\n";
    let float = cost_text(
        &format!(
            "{header}graph @g(%x: f32[1,4,8,8]) -> (%y: ?) {{\n  init %w = f32[8,4,3,3] raw {ones}\n  \
             %y = \"\"::Conv(%x, %w) {{pads = [1, 1, 1, 1]}}\n}}\n"
        ),
        CostOptions::default(),
    );
    assert_eq!(float.total["op_mac_FLOAT32_FLOAT32"], 18432.0);
    let fused = cost_text(
        &format!(
            "{header}graph @g(%x: f32[1,4,8,8]) -> (%y: ?) {{\n  init %w = f32[8,4,3,3] raw {ones}\n  \
             %y = com.microsoft::FusedConv(%x, %w) {{activation = \"Relu\", pads = [1, 1, 1, 1]}}\n}}\n"
        ),
        CostOptions::default(),
    );
    assert_eq!(fused.total, float.total);
    let dynamic = format!(
        "{header}graph @g(%x: f32[1,4,8,8]) -> (%y: ?) {{\n  init %w = i8[8,4,3,3] raw {int8_ones}\n  \
         init %ws = f32[] raw 0x0000803f\n  \
         %q, %s, %z = \"\"::DynamicQuantizeLinear(%x)\n  \
         %acc = \"\"::ConvInteger(%q, %w, %z) {{pads = [1, 1, 1, 1]}}\n  \
         %f = \"\"::Cast(%acc) {{to = 1}}\n  \
         %scale = \"\"::Mul(%s, %ws)\n  \
         %y = \"\"::Mul(%f, %scale)\n}}\n"
    );
    let r = cost_text(&dynamic, CostOptions { discount_sparsity: true, extended: true });
    // The layer's MACs are 8-bit: the activation UINT8 (DynamicQuantizeLinear), the weight INT8.
    assert_eq!(r.total["op_mac_UINT8_INT8"], 18432.0);
    assert!(r.unsupported.is_empty(), "{:?}", r.unsupported);
    let mut model = qc_ir::text::parse_model(&dynamic).unwrap();
    preprocess(&mut model, ManagerOptions::default()).unwrap();
    let q = model.graph.find("q").and_then(|v| model.graph.value(v).quant.clone());
    assert_eq!(
        q.map(|q| (q.dtype.name(), q.origin)),
        Some(("UINT8".to_string(), qc_ir::QuantOrigin::OnnxDynamic))
    );
}

#[test]
fn transformer_ops_are_costed_with_extended() {
    // Attention 4-D: batch 1, 2 heads, 3 queries, 5 keys, head size 4 (Q·K^T and ·V):
    // 1 · 2 · 3 · 5 · (4 + 4) = 240 MACs. 3-D grouped-query: 4 query heads and 2 KV heads of
    // size 2 (Q [1,3,8], K [1,5,4], V [1,5,4]): 1 · 3 · 5 · (8 + 4 · 2) = 240 MACs.
    // LayerNormalization on [1,3,8]: 6 · 24 = 144; RMSNormalization 3 · 24 = 72; Mish and
    // Swish free.
    let text = "ir_version 10\nopset_import \"\" 24\n\n\
         graph @g(%q: f32[1,2,3,4], %k: f32[1,2,5,4], %v: f32[1,2,5,4], %q3: f32[1,3,8], \
         %k3: f32[1,5,4], %v3: f32[1,5,4]) -> (%a: ?, %b: ?, %n: ?, %r: ?, %m: ?, %s: ?) {\n  \
         init %g = f32[8] floats [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]\n  \
         %a = \"\"::Attention(%q, %k, %v)\n  \
         %b = \"\"::Attention(%q3, %k3, %v3) {q_num_heads = 4, kv_num_heads = 2}\n  \
         %n = \"\"::LayerNormalization(%q3, %g, %g)\n  \
         %r = \"\"::RMSNormalization(%q3, %g)\n  \
         %m = \"\"::Mish(%q3)\n  %s = \"\"::Swish(%q3)\n}\n";
    let r = cost_text(text, CostOptions::default());
    assert_eq!(
        r.unsupported,
        BTreeSet::from(
            ["Attention", "LayerNormalization", "Mish", "RMSNormalization", "Swish"].map(String::from)
        ),
        "the reference leaves them unsupported"
    );
    let r = cost_text(text, CostOptions { discount_sparsity: true, extended: true });
    assert!(r.unsupported.is_empty(), "{:?}", r.unsupported);
    assert_eq!(macs(&r), 240.0 + 240.0 + 144.0 + 72.0);
    // A 3-D Attention without its head counts is not costed (and never counted as 0).
    let bad = text.replace(" {q_num_heads = 4, kv_num_heads = 2}", "");
    let r = cost_text(&bad, CostOptions { discount_sparsity: true, extended: true });
    assert_eq!(r.unsupported, BTreeSet::from(["Attention".to_string()]));
    assert!(r.warnings.iter().any(|w| w.message.contains("q_num_heads")), "{:?}", r.warnings);
}
