//! `qc optimize` end to end: pipelines, instruments, atomic output, errors.

use prost::Message;
use qc::fixtures::{self as fx, node};
use qc::onnx::proto::{self as pb, DataType};

use qc_tests::qc;

/// x -> Relu -> y, plus a dead Add reading an initializer that nothing else needs.
fn model_with_dead_code(dir: &std::path::Path) -> std::path::PathBuf {
    let g = pb::GraphProto {
        name: Some("g".into()),
        node: vec![
            node("Relu", "", "live", &["x"], &["y"], vec![]),
            node("Add", "", "dead", &["x", "w"], &["unused"], vec![]),
        ],
        initializer: vec![fx::tensor_f32("w", &[1, 4], &[1.0; 4])],
        input: vec![fx::value_info("x", DataType::Float, &[1, 4])],
        output: vec![fx::value_info("y", DataType::Float, &[1, 4])],
        value_info: vec![fx::value_info("unused", DataType::Float, &[1, 4])],
        ..Default::default()
    };
    let p = dir.join("in.onnx");
    std::fs::write(&p, fx::model(g, vec![fx::opset("", 13)]).encode_to_vec()).unwrap();
    p
}

#[test]
fn runs_a_pipeline_and_writes_the_result() {
    let dir = tempfile::tempdir().unwrap();
    let input = model_with_dead_code(dir.path());
    let output = dir.path().join("out.onnx");
    let (code, out, err) = qc(&[
        "optimize",
        input.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
        "--passes",
        "fixpoint(eliminate-dead){max=4}",
        "--time-passes",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2 -> 1 nodes"), "{out}");
    assert!(out.contains("  Add                           1 -> 0"), "{out}");
    assert!(
        out.contains(
            "eliminate-dead: runs=2 changed=1 ops-removed=1 initializers-removed=1 declarations-removed=1"
        ),
        "{out}"
    );
    assert!(out.contains("fixpoint(eliminate-dead){max=4}: 2 round(s), converged"), "{out}");
    assert!(err.contains("eliminate-dead") && err.contains("total"), "timing table on stderr: {err}");
    let loaded = qc::load::load(&output, Default::default()).unwrap();
    assert_eq!(loaded.model.graph.op_count(), 1);
    assert!(loaded.model.graph.initializers.is_empty());
    assert!(loaded.model.graph.value_info.is_empty());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("qc-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn prints_and_lists() {
    let (code, out, _) = qc(&["optimize", "--print-pipeline", "--passes", " fixpoint( eliminate-dead ) "]);
    assert_eq!(code, 0);
    assert_eq!(out, "fixpoint(eliminate-dead){max=10}\n");
    let (code, out, _) = qc(&[
        "optimize",
        "--print-pipeline",
        "--passes",
        "fixpoint(fold-constants,eliminate-dead),fold-constants{quant=false}",
        "--fold-quant-weights",
    ]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "fixpoint(fold-constants{quant=true},eliminate-dead){max=10},fold-constants{quant=true}\n"
    );
    let (code, out, _) = qc(&["optimize", "--list-passes"]);
    assert_eq!(code, 0);
    assert!(out.contains("eliminate-dead"));
}

#[test]
fn bad_pipelines_and_models_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = model_with_dead_code(dir.path());
    let output = dir.path().join("out.onnx");
    let (i, o) = (input.to_str().unwrap(), output.to_str().unwrap());
    for (passes, code_text) in [
        ("eliminate-ded", "qc::pipeline::unknown_pass"),
        ("eliminate-dead,,", "qc::pipeline::syntax"),
        ("eliminate-dead{fast=true}", "qc::pipeline::unknown_option"),
        ("fixpoint(eliminate-dead){max=0}", "qc::pipeline::fixpoint_option"),
    ] {
        let (code, out, err) = qc(&["optimize", i, "-o", o, "--passes", passes]);
        assert_eq!(code, 2, "{passes}: {err}");
        assert!(err.contains(code_text), "{passes}: {err}");
        assert!(out.is_empty());
        assert!(!output.exists());
    }
    let (code, _, err) =
        qc(&["optimize", i, "-o", o, "--passes", "eliminate-dead", "--stop-after", "infer-shapes"]);
    assert_eq!(code, 2);
    assert!(err.contains("qc::pipeline::not_in_pipeline"), "{err}");
    let empty = dir.path().join("empty.onnx");
    std::fs::write(&empty, b"").unwrap();
    let (code, _, err) = qc(&["optimize", empty.to_str().unwrap(), "-o", o]);
    assert_eq!(code, 2);
    assert!(err.contains("qc::onnx::empty_file"));
    assert!(!output.exists());
    let (code, _, _) = qc(&["optimize", i]);
    assert_eq!(code, 2, "-o is required");
}

#[test]
fn stop_after_and_print_ir_after() {
    let dir = tempfile::tempdir().unwrap();
    let input = model_with_dead_code(dir.path());
    let output = dir.path().join("out.onnx");
    let (code, out, err) = qc(&[
        "optimize",
        input.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
        "--passes",
        "eliminate-dead,eliminate-dead",
        "--stop-after",
        "eliminate-dead",
        "--print-ir-after",
        "all",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("eliminate-dead: runs=1"), "{out}");
    assert!(out.contains("stopped after eliminate-dead"), "{out}");
    assert_eq!(err.matches("IR after eliminate-dead").count(), 1, "{err}");
}

#[test]
fn the_benchmark_encoder_is_a_valid_10k_node_model() {
    let bytes = fx::transformer_like(313).encode_to_vec();
    let loaded = qc::load::load_bytes(bytes.into(), "encoder", None, Default::default())
        .unwrap_or_else(|e| panic!("{:?}", miette::Report::new(e)));
    assert_eq!(loaded.model.graph.op_count(), 10_016);
}

#[test]
fn pass_warnings_render_with_their_code() {
    let dir = tempfile::tempdir().unwrap();
    let g = pb::GraphProto {
        name: Some("g".into()),
        node: vec![node("Mystery", "com.example", "m", &["x"], &["y"], vec![])],
        input: vec![fx::value_info("x", DataType::Float, &[1, 4])],
        output: vec![fx::value_info("y", DataType::Float, &[1, 4])],
        ..Default::default()
    };
    let input = dir.path().join("in.onnx");
    std::fs::write(
        &input,
        fx::model(g, vec![fx::opset("", 13), fx::opset("com.example", 1)]).encode_to_vec(),
    )
    .unwrap();
    let output = dir.path().join("out.onnx");
    let (code, _, err) = qc(&[
        "optimize",
        input.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
        "--passes",
        "infer-shapes",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("qc::shape::unsupported_op"), "the warning shows its code:\n{err}");
    assert!(err.contains("Mystery"), "{err}");
}

#[test]
fn clear_descriptions_removes_every_doc_string() {
    let dir = tempfile::tempdir().unwrap();
    let mut relu = node("Relu", "", "r", &["x"], &["y"], vec![]);
    relu.doc_string = Some("File model.py, line 3".into());
    let g = pb::GraphProto {
        name: Some("g".into()),
        doc_string: Some("graph doc".into()),
        node: vec![relu],
        input: vec![fx::value_info("x", DataType::Float, &[1, 4])],
        output: vec![fx::value_info("y", DataType::Float, &[1, 4])],
        ..Default::default()
    };
    let input = dir.path().join("in.onnx");
    std::fs::write(&input, fx::model(g, vec![fx::opset("", 13)]).encode_to_vec()).unwrap();
    let output = dir.path().join("out.onnx");
    let (code, out, err) =
        qc(&["optimize", input.to_str().unwrap(), "-o", output.to_str().unwrap(), "--clear-descriptions"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("cleared=2"), "{out}");
    let m = pb::ModelProto::decode(std::fs::read(&output).unwrap().as_slice()).unwrap();
    let g = m.graph.unwrap();
    assert_eq!(g.doc_string, None);
    assert!(g.node.iter().all(|n| n.doc_string.is_none()));
}

#[test]
fn overwrite_input_shape_reinfers_from_the_new_dims() {
    let dir = tempfile::tempdir().unwrap();
    let input = model_with_dead_code(dir.path());
    let output = dir.path().join("out.onnx");
    let (i, o) = (input.to_str().unwrap(), output.to_str().unwrap());
    let (code, _, err) = qc(&["optimize", i, "-o", o, "--overwrite-input-shape", "x:N,4"]);
    assert_eq!(code, 0, "{err}");
    let m = pb::ModelProto::decode(std::fs::read(&output).unwrap().as_slice()).unwrap();
    let g = m.graph.unwrap();
    let dims = |v: &pb::ValueInfoProto| format!("{:?}", v.r#type);
    assert!(dims(&g.input[0]).contains("\"N\""), "{}", dims(&g.input[0]));
    assert!(dims(&g.output[0]).contains("\"N\""), "the output is inferred again: {}", dims(&g.output[0]));
    for (spec, code) in [
        ("x-4", "qc::input_shape::syntax"),
        ("x:1,-4", "qc::input_shape::syntax"),
        ("nope:1,4", "qc::input_shape::unknown_input"),
    ] {
        let o2 = dir.path().join("bad.onnx");
        let (c, out, err) = qc(&["optimize", i, "-o", o2.to_str().unwrap(), "--overwrite-input-shape", spec]);
        assert_eq!(c, 2, "{spec}: {err}");
        assert!(out.is_empty() && err.contains(code), "{spec}: {err}");
        assert!(!o2.exists(), "nothing is written for {spec}");
    }
}

/// Two Convs sharing one weight, then a padded AveragePool that counts the padding and a
/// GlobalAveragePool: the Kneron-style flags' playground.
fn shared_weight_and_pools(dir: &std::path::Path) -> std::path::PathBuf {
    let pool = node(
        "AveragePool",
        "",
        "pool",
        &["b"],
        &["p"],
        vec![
            fx::attr_ints("kernel_shape", &[3, 3]),
            fx::attr_ints("pads", &[1, 1, 1, 1]),
            fx::attr_int("count_include_pad", 1),
        ],
    );
    let g = pb::GraphProto {
        name: Some("g".into()),
        node: vec![
            node("Conv", "", "conv_a", &["x", "w"], &["a"], vec![]),
            node("Conv", "", "conv_b", &["a", "w"], &["b"], vec![]),
            pool,
            node("GlobalAveragePool", "", "gap", &["p"], &["y"], vec![]),
        ],
        initializer: vec![fx::tensor_f32("w", &[2, 2, 1, 1], &[0.5, -1.0, 0.25, 2.0])],
        input: vec![fx::value_info("x", DataType::Float, &[1, 2, 6, 6])],
        output: vec![fx::value_info("y", DataType::Float, &[1, 2, 1, 1])],
        ..Default::default()
    };
    let p = dir.join("in.onnx");
    std::fs::write(&p, fx::model(g, vec![fx::opset("", 13)]).encode_to_vec()).unwrap();
    p
}

#[test]
fn replace_avgpool_and_duplicate_shared_weights_keep_the_function_and_settle() {
    let dir = tempfile::tempdir().unwrap();
    let input = shared_weight_and_pools(dir.path());
    let (once, twice) = (dir.path().join("once.onnx"), dir.path().join("twice.onnx"));
    let flags = ["--replace-avgpool-with-conv", "--duplicate-shared-weights"];
    let run = |from: &std::path::Path, to: &std::path::Path| {
        let mut args = vec!["optimize", from.to_str().unwrap(), "-o", to.to_str().unwrap()];
        args.extend(flags);
        let (code, out, err) = qc(&args);
        assert_eq!(code, 0, "{err}");
        out
    };
    let out = run(&input, &once);
    assert!(out.contains("average-pool=1") && out.contains("global-average-pool=1"), "{out}");
    assert!(out.contains("duplicated=1"), "{out}");
    let m = pb::ModelProto::decode(std::fs::read(&once).unwrap().as_slice()).unwrap();
    let g = m.graph.as_ref().unwrap();
    let ops: Vec<&str> = g.node.iter().map(|n| n.op_type()).collect();
    assert_eq!(ops, ["Conv", "Conv", "Conv", "Conv"]);
    assert_ne!(g.node[0].input[1], g.node[1].input[1], "each Conv reads its own weight");
    let load = |p: &std::path::Path| qc::load::load(p, Default::default()).unwrap().model;
    qc_tests::assert_same_outputs(&load(&input), &load(&once));
    // A second run merges the copies, copies them again, and writes the same model.
    run(&once, &twice);
    assert_eq!(std::fs::read(&once).unwrap(), std::fs::read(&twice).unwrap());
}

/// `x -> Conv(w) -> BatchNormalization -> Add(u) -> y` with `w` and `u` (1 KiB each) stored in
/// `weights.bin` beside the model: the fold changes `w`, `u` stays as it is.
fn model_with_external_data(dir: &std::path::Path) -> std::path::PathBuf {
    let w = fx::weights(256, 3);
    let u = fx::weights(256, 4);
    let mut bin: Vec<u8> = vec![7; 100]; // data need not start at offset 0
    let external = |name: &str, dims: &[i64], offset: usize, len: usize| pb::TensorProto {
        name: Some(name.into()),
        dims: dims.to_vec(),
        data_type: Some(DataType::Float as i32),
        data_location: Some(pb::DataLocation::External as i32),
        external_data: [
            ("location", "weights.bin".to_string()),
            ("offset", offset.to_string()),
            ("length", len.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| pb::StringStringEntryProto { key: Some(k.into()), value: Some(v) })
        .collect(),
        ..Default::default()
    };
    let w_at = bin.len();
    bin.extend(w.iter().flat_map(|v| v.to_le_bytes()));
    let u_at = bin.len();
    bin.extend(u.iter().flat_map(|v| v.to_le_bytes()));
    std::fs::write(dir.join("weights.bin"), &bin).unwrap();
    let bn = |name: &str, v: f32| fx::tensor_f32(name, &[16], &[v; 16]);
    let g = pb::GraphProto {
        name: Some("g".into()),
        node: vec![
            node("Conv", "", "conv", &["x", "w"], &["c"], vec![]),
            node("BatchNormalization", "", "bn", &["c", "s", "b", "m", "v"], &["n"], vec![]),
            node("Add", "", "add", &["n", "u"], &["y"], vec![]),
        ],
        initializer: vec![
            external("w", &[16, 16, 1, 1], w_at, 1024),
            bn("s", 1.5),
            bn("b", 0.25),
            bn("m", 0.1),
            bn("v", 2.0),
            external("u", &[1, 16, 4, 4], u_at, 1024),
        ],
        input: vec![fx::value_info("x", DataType::Float, &[1, 16, 4, 4])],
        output: vec![fx::value_info("y", DataType::Float, &[1, 16, 4, 4])],
        ..Default::default()
    };
    let p = dir.join("in.onnx");
    std::fs::write(&p, fx::model(g, vec![fx::opset("", 13)]).encode_to_vec()).unwrap();
    p
}

/// The `location` of each external initializer of the ONNX file at `p`, by tensor name.
fn external_locations(p: &std::path::Path) -> Vec<(String, String)> {
    let m = pb::ModelProto::decode(std::fs::read(p).unwrap().as_slice()).unwrap();
    let mut out: Vec<(String, String)> = m
        .graph
        .unwrap()
        .initializer
        .iter()
        .filter(|t| t.data_location == Some(pb::DataLocation::External as i32))
        .map(|t| {
            let loc = t.external_data.iter().find(|e| e.key.as_deref() == Some("location")).unwrap();
            (t.name().to_string(), loc.value().to_string())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn external_data_stays_by_reference_and_new_tensors_go_beside_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = model_with_external_data(dir.path());
    let load = |p: &std::path::Path| qc::load::load(p, Default::default()).unwrap().model;
    let optimize = |from: &std::path::Path, to: &std::path::Path| {
        let (code, out, err) = qc(&["optimize", from.to_str().unwrap(), "-o", to.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
        out
    };

    // Same folder: `u` still refers to weights.bin, the folded weight is in out.onnx.data.
    let out = dir.path().join("out.onnx");
    let summary = optimize(&input, &out);
    assert!(summary.contains("1 tensors (0.0 MiB) written to out.onnx.data; 1 tensors kept"), "{summary}");
    let folded = external_locations(&out);
    assert_eq!(folded.len(), 2, "{folded:?}");
    assert!(folded.contains(&("u".into(), "weights.bin".into())), "{folded:?}");
    assert!(folded.iter().any(|(_, l)| l == "out.onnx.data"), "{folded:?}");
    qc_tests::assert_same_outputs(&load(&input), &load(&out));

    // In place, where the new data file replaces the one the model reads: same model again.
    let before = (std::fs::read(&out).unwrap(), std::fs::read(dir.path().join("out.onnx.data")).unwrap());
    optimize(&out, &out);
    let after = (std::fs::read(&out).unwrap(), std::fs::read(dir.path().join("out.onnx.data")).unwrap());
    assert!(before == after, "optimizing in place changed the model or its data");

    // Another folder: weights.bin is linked beside the output, the output loads on its own.
    let other = dir.path().join("elsewhere");
    std::fs::create_dir(&other).unwrap();
    let moved = other.join("moved.onnx");
    let summary = optimize(&input, &moved);
    assert!(summary.contains("linked beside the output: weights.bin"), "{summary}");
    assert!(other.join("weights.bin").is_file() && other.join("moved.onnx.data").is_file());
    qc_tests::assert_same_outputs(&load(&input), &load(&moved));
    // No temporary file is left anywhere.
    for d in [dir.path(), other.as_path()] {
        for e in std::fs::read_dir(d).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            assert!(!name.contains("qc-tmp"), "left behind: {name}");
        }
    }
}

#[test]
fn tensors_past_the_inline_limit_go_to_an_external_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = model_with_dead_code(dir.path());
    // A model with 2 KiB of inline data and a limit of 1 KiB, as a 3 GiB model meets 1.75 GiB.
    let mut model = qc::load::load(&input, Default::default()).unwrap().model;
    let w = model.graph.find("w").unwrap();
    if let Some(qc_ir::graph::Const::Dense(t)) = &mut model.graph.value_mut(w).init {
        t.dims = vec![1, 512];
        t.data = qc_ir::TensorData::Floats(vec![0.5; 512]);
    }
    let out = dir.path().join("big.onnx");
    let layout = qc::write::write_model(&mut model, &out, Some(dir.path()), 1024).unwrap();
    assert_eq!(layout.data_file.as_deref(), Some("big.onnx.data"));
    assert_eq!((layout.moved, layout.moved_bytes, layout.kept_external), (1, 2048, 0));
    assert_eq!(std::fs::metadata(dir.path().join("big.onnx.data")).unwrap().len(), 2048);
    let back = qc::load::load(&out, Default::default()).unwrap().model;
    let t = back.graph.value(back.graph.find("w").unwrap()).tensor().unwrap().clone();
    assert_eq!(back.tensor_bytes(&t).unwrap().len(), 2048);
    // Under the limit, everything stays inline.
    let mut model = qc::load::load(&input, Default::default()).unwrap().model;
    let layout = qc::write::write_model(&mut model, &out, Some(dir.path()), 1 << 20).unwrap();
    assert_eq!(layout, qc::write::DataLayout::default());
}

/// A small attention block as exporters write it (`tests/golden/attention_block.qcir`, 32 nodes:
/// layer normalization written out, Q/K/V projections as MatMul + Add on `[B, S, D]`, heads
/// split by Reshape and Transpose, Softmax, heads merged, output projection, residual) through
/// `qc optimize`'s default pipeline: the normalization becomes one `LayerNormalization`, the four
/// projections Gemms on `[-1, D]` (the head Reshapes absorb the trailing Reshapes, the three
/// flattening Reshapes of the shared input merge), then the Q, K and V Gemms one Gemm and a
/// Split (`fuse-qkv`), K's two Transposes one; outputs stay equal.
#[test]
fn the_attention_block_loses_its_written_out_forms() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/golden/attention_block.qcir")).unwrap();
    let model = qc_ir::text::parse_model(&text).unwrap();
    assert_eq!(model.graph.op_count(), 32);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("attention.onnx");
    std::fs::write(&input, qc::onnx::export_model(&model).encode_to_vec()).unwrap();
    let output = dir.path().join("out.onnx");
    let (code, out, err) = qc(&["optimize", input.to_str().unwrap(), "-o", output.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("32 -> 20 nodes"), "{out}");
    let optimized = qc::load::load(&output, Default::default()).unwrap().model;
    let count = |t: &str| optimized.graph.ops().filter(|(_, op)| op.op_type() == t).count();
    assert_eq!(count("LayerNormalization"), 1, "{out}");
    assert_eq!(count("Gemm"), 2, "Q, K and V in one, and the output projection: {out}");
    assert_eq!(count("Split"), 1, "{out}");
    assert_eq!(count("MatMul"), 2, "the attention products stay: {out}");
    assert_eq!(count("Transpose"), 4, "{out}");
    assert_eq!(count("ReduceMean") + count("Sqrt") + count("Pow"), 0, "{out}");
    qc_tests::assert_same_outputs(&model, &optimized);
}

/// The Q, K and V projections of a `[1, 4, 8]` activation: MatMul by a constant `[8, 8]` weight
/// and Add of an `[8]` bias each, then `q + k + v`.
fn qkv_projections(dir: &std::path::Path) -> std::path::PathBuf {
    let mut nodes = Vec::new();
    let mut init = Vec::new();
    for (i, p) in ["q", "k", "v"].iter().enumerate() {
        nodes.push(node(
            "MatMul",
            "",
            &format!("{p}_proj"),
            &["x", &format!("w{p}")],
            &[&format!("m{p}")],
            vec![],
        ));
        nodes.push(node(
            "Add",
            "",
            &format!("{p}_bias"),
            &[&format!("m{p}"), &format!("b{p}")],
            &[p],
            vec![],
        ));
        init.push(fx::tensor_f32(&format!("w{p}"), &[8, 8], &fx::weights(64, i as u32 + 1)));
        init.push(fx::tensor_f32(&format!("b{p}"), &[8], &fx::weights(8, i as u32 + 7)));
    }
    nodes.push(node("Add", "", "qk", &["q", "k"], &["qk"], vec![]));
    nodes.push(node("Add", "", "qkv", &["qk", "v"], &["y"], vec![]));
    let g = pb::GraphProto {
        name: Some("g".into()),
        node: nodes,
        initializer: init,
        input: vec![fx::value_info("x", DataType::Float, &[1, 4, 8])],
        output: vec![fx::value_info("y", DataType::Float, &[1, 4, 8])],
        ..Default::default()
    };
    let p = dir.join("qkv.onnx");
    std::fs::write(&p, fx::model(g, vec![fx::opset("", 13)]).encode_to_vec()).unwrap();
    p
}

#[test]
fn the_default_pipeline_fuses_qkv_and_skip_fuse_qkv_keeps_the_products() {
    let dir = tempfile::tempdir().unwrap();
    let input = qkv_projections(dir.path());
    let (fused, kept) = (dir.path().join("fused.onnx"), dir.path().join("kept.onnx"));
    let (code, out, err) = qc(&["optimize", input.to_str().unwrap(), "-o", fused.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("fuse-qkv: ") && out.contains("fused=1 products-fused=3 biases-fused=3"), "{out}");
    let ops = |p: &std::path::Path| {
        let m = pb::ModelProto::decode(std::fs::read(p).unwrap().as_slice()).unwrap();
        m.graph.unwrap().node.iter().map(|n| n.op_type().to_string()).collect::<Vec<_>>()
    };
    assert_eq!(ops(&fused), ["MatMul", "Add", "Split", "Add", "Add"]);
    let load = |p: &std::path::Path| qc::load::load(p, Default::default()).unwrap().model;
    qc_tests::assert_same_outputs(&load(&input), &load(&fused));

    let args = ["optimize", input.to_str().unwrap(), "-o", kept.to_str().unwrap(), "--skip-fuse-qkv"];
    let (code, out, err) = qc(&args);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("fuse-qkv"), "{out}");
    assert_eq!(ops(&kept), ["MatMul", "Add", "MatMul", "Add", "MatMul", "Add", "Add", "Add"]);

    let (code, out, _) = qc(&["optimize", "--print-pipeline", "--skip-fuse-qkv"]);
    assert_eq!(code, 0);
    assert!(!out.contains("fuse-qkv") && out.contains("fuse-pad-into-conv,eliminate-dead"), "{out}");
    let (code, out, _) = qc(&["optimize", "--print-pipeline"]);
    assert_eq!(code, 0);
    assert!(out.contains("fuse-pad-into-conv,fuse-qkv,eliminate-dead"), "{out}");
}

#[test]
fn kneron_flags_place_their_passes_and_skip_removes_them() {
    let (code, out, err) = qc(&[
        "optimize",
        "--print-pipeline",
        "--clear-shapes",
        "--convert-f16",
        "--defuse-gaps",
        "--replace-dilated-conv",
        "--opt-matmul",
        "--skip",
        "fuse-pad-into-conv",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim(),
        "clear-shapes,remove-static-inputs,convert-f16,infer-shapes,defuse-gaps{form=reduce-mean},\
fixpoint(fold-constants,fold-reshape-own-dims,eliminate-identity,eliminate-common-subexpressions,fuse-consecutive-transposes,\
fuse-consecutive-reshapes,fuse-consecutive-slices,eliminate-layout-roundtrips,fuse-transpose-into-gemm,fuse-matmul-add-into-gemm,\
fuse-normalization,fuse-activations,fuse-mul-add-into-bn,fuse-bn-into-conv,fuse-scale-bias-into-conv,replace-dilated-conv,fuse-qkv{max-n=2048},\
eliminate-dead,infer-shapes){max=20},opt-matmul{max-k=2048,max-n=2048}"
    );
    assert!(!err.contains("skip_not_in_pipeline"), "{err}");
    // A custom pipeline: clear-shapes brings an infer-shapes; a fixpoint left empty goes.
    let (code, out, err) = qc(&[
        "optimize",
        "--print-pipeline",
        "--passes",
        "fixpoint(eliminate-dead),fold-constants",
        "--clear-shapes",
        "--defuse-gaps=average-pool",
        "--skip",
        "eliminate-dead",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "clear-shapes,infer-shapes,defuse-gaps{form=average-pool},fold-constants");
    // A registered pass the pipeline does not run: a warning, and the pipeline as it was.
    let (code, out, err) =
        qc(&["optimize", "--print-pipeline", "--passes", "eliminate-dead", "--skip", "fold-constants"]);
    assert_eq!((code, out.trim()), (0, "eliminate-dead"), "{err}");
    assert!(err.contains("qc::pipeline::skip_not_in_pipeline") && err.contains("`fold-constants`"), "{err}");
    // An unknown name: the closest pass, exit 2, nothing written.
    let dir = tempfile::tempdir().unwrap();
    let input = model_with_dead_code(dir.path());
    let output = dir.path().join("out.onnx");
    let (code, out, err) = qc(&[
        "optimize",
        input.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
        "--skip",
        "fuse-pad-into-con",
    ]);
    assert_eq!((code, out.as_str()), (2, ""), "{err}");
    assert!(
        err.contains("qc::pipeline::unknown_pass") && err.contains("did you mean `fuse-pad-into-conv`"),
        "{err}"
    );
    assert!(!output.exists());
    // A form defuse-gaps does not know is the pass's option error.
    let (code, _, err) = qc(&["optimize", "--print-pipeline", "--defuse-gaps=max-pool"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("qc::pipeline::bad_option") && err.contains("max-pool"), "{err}");
}

/// `x -> Conv(Cast(w: f16), dilations 2) -> GlobalAveragePool -> Flatten -> MatMul(m: [2, 2100])`:
/// one pattern for each of Kneron's rewriting options, the MatMul wider than access-dla's 2048.
fn kneron_patterns(dir: &std::path::Path) -> std::path::PathBuf {
    let f16: String = (0..36)
        .map(|i| half_bits(((i * 5) % 7) as f32 / 4.0 - 0.75))
        .map(|b| format!("{:02x}{:02x}", b & 0xff, b >> 8))
        .collect();
    let m: Vec<String> = (0..4200).map(|i| format!("{:?}", ((i * 3) % 11) as f32 / 16.0 - 0.3125)).collect();
    let text = format!(
        "ir_version 8\nopset_import \"\" 13\n\ngraph @g(%x: f32[1,2,8,8]) -> (%y: f32[1,2100]) {{
  init %w16 = f16[2,2,3,3] raw 0x{f16}
  init %m = f32[2,2100] floats [{}]
  %w = \"\"::Cast(%w16) {{to = 1}} name \"cast_w\"
  %c = \"\"::Conv(%x, %w) {{dilations = [2, 2], pads = [2, 2, 2, 2]}} name \"dilated\"
  %p = \"\"::GlobalAveragePool(%c) name \"gap\"
  %f = \"\"::Flatten(%p) name \"flatten\"
  %y = \"\"::MatMul(%f, %m) name \"wide\"
}}
",
        m.join(", ")
    );
    let model = qc_ir::text::parse_model(&text).unwrap_or_else(|e| panic!("{:?}", miette::Report::new(e)));
    let p = dir.join("kneron.onnx");
    std::fs::write(&p, qc::onnx::export_model(&model).encode_to_vec()).unwrap();
    p
}

/// The bits of a float16 holding `x`, a multiple of 1/4 in [-2, 2] (a normal float16, exactly).
fn half_bits(x: f32) -> u16 {
    if x == 0.0 {
        return 0;
    }
    let b = x.to_bits();
    let sign = ((b >> 31) as u16) << 15;
    let exp = ((b >> 23) & 0xff) as i32 - 127 + 15;
    assert!((1..31).contains(&exp) && b & 0x1fff == 0, "{x} is not a normal float16");
    sign | ((exp as u16) << 10) | ((b >> 13) & 0x3ff) as u16
}

#[test]
fn kneron_options_rewrite_a_model_and_keep_its_function() {
    let dir = tempfile::tempdir().unwrap();
    let input = kneron_patterns(dir.path());
    let output = dir.path().join("out.onnx");
    let (code, out, err) = qc(&[
        "optimize",
        input.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
        "--clear-shapes",
        "--convert-f16",
        "--defuse-gaps",
        "--replace-dilated-conv",
        "--opt-matmul",
    ]);
    assert_eq!(code, 0, "{err}");
    for stat in [
        "convert-f16: runs=1 changed=1 initializers=1 casts-removed=1",
        "replace-dilated-conv: runs=",
        "conv=1",
        "defuse-gaps: runs=1 changed=1 reduce-mean=1",
        "opt-matmul: runs=1 changed=1 matmul=1 products=2",
    ] {
        assert!(out.contains(stat), "{stat}: {out}");
    }
    let load = |p: &std::path::Path| qc::load::load(p, Default::default()).unwrap().model;
    let (before, after) = (load(&input), load(&output));
    qc_tests::assert_same_outputs(&before, &after);
    let ops: Vec<&str> = after.graph.ops().map(|(_, op)| op.op_type()).collect();
    assert_eq!(ops, ["Conv", "ReduceMean", "Flatten", "MatMul", "MatMul", "Concat"], "{out}");
}
