//! Attention through qc: `fuse-attention` on a model built here (opset 23), and `qc lower` and
//! `qc evaluate` costing the fused `Attention` as the two matrix products it stands for, so that
//! the fused and the unfused forms cost the same on an accelerator.

use prost::Message;
use qc::fixtures::{self as fx, node};
use qc::onnx::proto::{self as pb, DataType};
use qc_tests::qc;

/// Batch, heads, sequence, head size.
const DIMS: [i64; 4] = [1, 4, 16, 8];

/// The attention core over `q`, `k`, `v` `[1, 4, 16, 8]`: fused, one `Attention`; unfused,
/// `MatMul(q, Transpose(k))`, `Div` by `sqrt(8)`, `Softmax`, `MatMul` with `v`.
fn core(dir: &std::path::Path, fused: bool) -> std::path::PathBuf {
    let (nodes, init) = if fused {
        let scale = fx::attr_float("scale", 1.0 / 8f32.sqrt());
        (vec![node("Attention", "", "att", &["q", "k", "v"], &["y"], vec![scale])], vec![])
    } else {
        (
            vec![
                node("Transpose", "", "kt", &["k"], &["kt"], vec![fx::attr_ints("perm", &[0, 1, 3, 2])]),
                node("MatMul", "", "qk", &["q", "kt"], &["s"], vec![]),
                node("Div", "", "scale", &["s", "d"], &["sd"], vec![]),
                node("Softmax", "", "softmax", &["sd"], &["p"], vec![fx::attr_int("axis", -1)]),
                node("MatMul", "", "pv", &["p", "v"], &["y"], vec![]),
            ],
            vec![fx::tensor_f32("d", &[], &[8f32.sqrt()])],
        )
    };
    let g = pb::GraphProto {
        name: Some("g".into()),
        node: nodes,
        initializer: init,
        input: ["q", "k", "v"].iter().map(|n| fx::value_info(n, DataType::Float, &DIMS)).collect(),
        output: vec![fx::value_info("y", DataType::Float, &DIMS)],
        ..Default::default()
    };
    let p = dir.join(if fused { "fused.onnx" } else { "unfused.onnx" });
    let mut m = fx::model(g, vec![fx::opset("", 23)]);
    m.ir_version = Some(10);
    std::fs::write(&p, m.encode_to_vec()).unwrap();
    p
}

fn load(p: &std::path::Path) -> qc_ir::Model {
    qc::load::load(p, Default::default()).unwrap().model
}

#[test]
fn fuse_attention_rewrites_the_core_into_one_attention() {
    let dir = tempfile::tempdir().unwrap();
    let unfused = core(dir.path(), false);
    let out = dir.path().join("out.onnx");
    let pipeline = "infer-shapes,fuse-attention,infer-shapes";
    let args = ["optimize", unfused.to_str().unwrap(), "-o", out.to_str().unwrap(), "--passes", pipeline];
    let (code, text, err) = qc(&args);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("5 -> 1 nodes") && text.contains("found=1 fused=1"), "{text}");
    let m = load(&out);
    let ops: Vec<&str> = m.graph.ops().map(|(_, o)| o.op_type()).collect();
    assert_eq!(ops, ["Attention"]);
    qc_tests::assert_same_outputs(&load(&unfused), &m);
    // The written Attention runs as the hand-built one does.
    qc_tests::assert_same_outputs(&load(&core(dir.path(), true)), &m);
}

/// `(layer name, dims line)` of each layer of `qc lower`'s text.
fn layer_dims(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut name = String::new();
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("layer ") {
            name = rest.split('"').nth(1).unwrap_or_default().to_string();
        } else if t.starts_with("dims ") {
            out.push((name.clone(), t.to_string()));
        }
    }
    out
}

#[test]
fn attention_lowers_as_its_two_products_and_costs_what_the_unfused_core_costs() {
    let dir = tempfile::tempdir().unwrap();
    let (fused, unfused) = (core(dir.path(), true), core(dir.path(), false));
    let lower = |p: &std::path::Path| {
        let (code, text, err) = qc(&["lower", p.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
        text
    };
    let (f, u) = (lower(&fused), lower(&unfused));
    let (fl, ul) = (layer_dims(&f), layer_dims(&u));
    assert_eq!(
        fl,
        [
            ("att/qk".to_string(), "dims B=1, H=4, D=16, K=16, C=8".to_string()),
            ("att/pv".to_string(), "dims B=1, H=4, D=16, K=8, C=16".to_string()),
        ],
        "{f}"
    );
    let dims = |l: &[(String, String)]| l.iter().map(|(_, d)| d.clone()).collect::<Vec<_>>();
    assert_eq!(dims(&fl), dims(&ul), "the same loops as the unfused MatMuls:\n{f}\n{u}");
    // Both products read two activations, so W is indexed by the batch and head dims, as ZigZag
    // maps attention; the fused one reads K in its storage order.
    assert!(f.contains("O[b][h][d][k] += I[b][h][d][c] * W[b][h][k][c]"), "{f}");
    assert!(u.contains("O[b][h][d][k] += I[b][h][d][c] * W[b][h][c][k]"), "{u}");
    assert!(f.contains(r#"value "att/probabilities" source layer "att/qk""#), "{f}");

    let evaluate = |p: &std::path::Path| {
        let (code, json, err) = qc(&["evaluate", p.to_str().unwrap(), "--format", "json"]);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<serde_json::Value>(&json).unwrap()
    };
    let (fe, ue) = (evaluate(&fused), evaluate(&unfused));
    let total =
        |v: &serde_json::Value, k: &str| v["designs"][0]["total"][k].as_f64().or(v["total"][k].as_f64());
    for k in ["energy", "latency"] {
        let (a, b) = (total(&fe, k).unwrap(), total(&ue, k).unwrap());
        assert!(a > 0.0 && (a - b).abs() <= 1e-9 * b, "{k}: fused {a}, unfused {b}");
    }
}

/// `x [1, 16, 32]` through LayerNormalization, a MatMul by a constant weight, Gelu, a
/// ReduceMean over the last axis and Sqrt: one MAC layer and four nodes of vector work.
fn vector_block(dir: &std::path::Path) -> std::path::PathBuf {
    let g = pb::GraphProto {
        name: Some("g".into()),
        node: vec![
            node(
                "LayerNormalization",
                "",
                "ln",
                &["x", "gamma", "beta"],
                &["n"],
                vec![fx::attr_int("axis", -1)],
            ),
            node("MatMul", "", "proj", &["n", "w"], &["m"], vec![]),
            node("Gelu", "", "gelu", &["m"], &["a"], vec![]),
            node("ReduceMean", "", "mean", &["a", "axes"], &["r"], vec![]),
            node("Sqrt", "", "sqrt", &["r"], &["y"], vec![]),
        ],
        initializer: vec![
            fx::tensor_f32("gamma", &[32], &[1.0; 32]),
            fx::tensor_f32("beta", &[32], &[0.0; 32]),
            fx::tensor_f32("w", &[32, 32], &fx::weights(1024, 5)),
            pb::TensorProto {
                name: Some("axes".into()),
                dims: vec![1],
                data_type: Some(DataType::Int64 as i32),
                int64_data: vec![-1],
                ..Default::default()
            },
        ],
        input: vec![fx::value_info("x", DataType::Float, &[1, 16, 32])],
        output: vec![fx::value_info("y", DataType::Float, &[1, 16, 1])],
        ..Default::default()
    };
    let p = dir.join("block.onnx");
    let mut m = fx::model(g, vec![fx::opset("", 23)]);
    m.ir_version = Some(10);
    std::fs::write(&p, m.encode_to_vec()).unwrap();
    p
}

#[test]
fn vector_work_is_listed_with_its_element_counts() {
    let dir = tempfile::tempdir().unwrap();
    let block = vector_block(dir.path());
    let b = block.to_str().unwrap();
    let (code, text, err) = qc(&["lower", b]);
    assert_eq!(code, 0, "{err}");
    assert!(
        text.contains(r#"not_lowered "ln" LayerNormalization "#) && text.contains(" elements 512 reads"),
        "{text}"
    );
    assert!(text.contains(r#"not_lowered "sqrt" Sqrt "no compute loop nest for Sqrt (element-wise activation or unary math, not costed)" elements 16 reads"#), "{text}");
    let (code, json, err) = qc(&["lower", b, "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let elements: Vec<(String, serde_json::Value)> = v["not_lowered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["node"].as_str().unwrap().to_string(), n["elements"].clone()))
        .collect();
    let want = [("ln", 512), ("gelu", 512), ("mean", 512), ("sqrt", 16)];
    assert_eq!(elements, want.iter().map(|(n, e)| (n.to_string(), serde_json::json!(e))).collect::<Vec<_>>());

    let (code, json, err) = qc(&["evaluate", b, "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let design = if v["designs"].is_array() { &v["designs"][0] } else { &v };
    let sqrt = design["not_costed"].as_array().unwrap().iter().find(|n| n["name"] == "sqrt").unwrap();
    assert_eq!(sqrt["elements"], 16);
    let (code, text, err) = qc(&["evaluate", b]);
    assert_eq!(code, 0, "{err}");
    assert!(
        text.contains(
            "vector work, not costed on the MAC array: 4 nodes, 1,552 elements (Gelu 512, LayerNormalization 512, ReduceMean 512, Sqrt 16)"
        ),
        "{text}"
    );
    let (code, md, err) = qc(&["evaluate", b, "--format", "md"]);
    assert_eq!(code, 0, "{err}");
    assert!(md.contains("- `gelu` (Gelu): no compute loop nest for Gelu (element-wise activation or unary math, not costed); 512 elements"), "{md}");
    let (code, html, err) = qc(&["evaluate", b, "--format", "html"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        html.contains("<th>elements</th>") && html.contains("<td>16</td>"),
        "the html lists the elements"
    );
    // The unfused attention core: the scale and the softmax are vector work, the Transpose is not.
    let (code, json, err) = qc(&["lower", core(dir.path(), false).to_str().unwrap(), "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let by_node = |n: &str| {
        v["not_lowered"].as_array().unwrap().iter().find(|x| x["node"] == n).unwrap()["elements"].clone()
    };
    assert_eq!(
        (by_node("kt"), by_node("scale"), by_node("softmax")),
        (serde_json::Value::Null, serde_json::json!(1024), serde_json::json!(1024))
    );
}
