//! `qc check` and `qc targets` end to end, on models built in code (textual IR exported to ONNX):
//! for every rule one model that breaks it and one that keeps it; a fully compliant model
//! (exit 0); snapshots of the rendered text and of the JSON; a user-written target; bad input
//! (exit 2, a diagnostic, nothing on standard output); the generated table in `spec/targets.md`;
//! every model under `../shared/models`, which must check without a crash; and, as a robustness
//! sweep, every model of the ONNX backend node tests.

use std::path::{Path, PathBuf};

use prost::Message;
use qc_tests::qc;

const HEAD: &str = "ir_version 8\nopset_import \"\" 13\n";

/// `n` small deterministic floats.
fn vals(n: usize, seed: usize) -> String {
    let v: Vec<String> =
        (0..n).map(|i| format!("{:?}", (((i * 7 + seed * 13) % 11) as f32 - 5.0) / 8.0)).collect();
    v.join(", ")
}

/// An initializer with deterministic values.
fn init(name: &str, dims: &[usize]) -> String {
    let n: usize = dims.iter().product();
    let d: Vec<String> = dims.iter().map(|x| x.to_string()).collect();
    format!("  init %{name} = f32[{}] floats [{}]\n", d.join(","), vals(n, name.len()))
}

/// `n` reciprocal dyadic scales, `2^-7 / a` with `a` in 1..5.
fn ch_scales(n: usize) -> String {
    let v: Vec<String> = (0..n).map(|i| format!("{:?}", 2f32.powi(-7) / ((i % 5 + 1) as f32))).collect();
    v.join(", ")
}

/// ACCESS activation attributes.
fn act(input: f32, output: f32) -> String {
    format!("input_scale = {input:?}, input_bitdepth = 8, output_scale = {output:?}, output_bitdepth = 8")
}

/// ACCESS attributes of an op with weights and a bias.
fn weighted(input: f32, output: f32, cout: usize) -> String {
    format!(
        "{}, weight_bitdepth = 8, weight_ch_scales = [{}], bias_bitdepth = 16",
        act(input, output),
        ch_scales(cout)
    )
}

/// A 2-D convolution with weights `[cout, cin/group, k, k]` and a bias; `attrs` are the rest.
fn conv(
    name: &str,
    [x, y]: [&str; 2],
    cin: usize,
    cout: usize,
    k: usize,
    group: usize,
    attrs: &str,
) -> String {
    let mut s = init(&format!("{name}_w"), &[cout, cin / group, k, k]);
    s += &init(&format!("{name}_b"), &[cout]);
    s += &format!(
        "  %{y} = \"\"::Conv(%{x}, %{name}_w, %{name}_b) {{kernel_shape = [{k}, {k}], group = {group}, {attrs}}} name \"{name}\"\n"
    );
    s
}

/// A model: inputs as `name: type`, body lines, outputs.
fn model(inputs: &str, outputs: &str, body: &str) -> String {
    format!("{HEAD}\ngraph @g({inputs}) -> ({outputs}) {{\n{body}}}\n")
}

/// A standard 3x3 convolution from `x: f32[1,16,h,w]`, with the given extra attributes.
fn one_conv(h: usize, cout: usize, attrs: &str) -> String {
    model(&format!("%x: f32[1,16,{h},{h}]"), "%y: ?", &conv("conv", ["x", "y"], 16, cout, 3, 1, attrs))
}

const S4: f32 = 0.0625;
const S3: f32 = 0.125;

/// A model with every operator of the ACCESS target, within every limit, with coherent
/// power-of-two scales: `qc check` finds nothing.
fn compliant() -> String {
    let mut b = String::new();
    b += &conv(
        "conv1",
        ["x", "c1"],
        3,
        16,
        3,
        1,
        &format!("pads = [1, 1, 1, 1], {}", weighted(2f32.powi(-7), S4, 16)),
    );
    b += &init("bn_s", &[16]);
    b += &init("bn_b", &[16]);
    b += &init("bn_m", &[16]);
    b += "  init %bn_v = f32[16] floats [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]\n";
    b += "  %n1 = \"\"::BatchNormalization(%c1, %bn_s, %bn_b, %bn_m, %bn_v) name \"bn1\"\n";
    b += "  %r1 = \"\"::Relu(%n1) name \"relu1\"\n";
    b += &format!(
        "  %p1 = \"\"::MaxPool(%r1) {{kernel_shape = [2, 2], strides = [2, 2], {}}} name \"pool1\"\n",
        act(S4, S4)
    );
    b += &conv("dw", ["p1", "d"], 16, 16, 3, 16, &format!("pads = [1, 1, 1, 1], {}", weighted(S4, S4, 16)));
    b += "  %l = \"\"::LeakyRelu(%d) {alpha = 0.125} name \"leaky\"\n";
    b += "  %cat = \"\"::Concat(%p1, %l) {axis = 1} name \"cat\"\n";
    b += &conv("pw", ["cat", "e"], 32, 16, 1, 1, &weighted(S4, S3, 16));
    b += &format!("  %a = \"\"::Add(%e, %p1) {{output_scale = {S3:?}, output_bitdepth = 8}} name \"add\"\n");
    b += &format!(
        "  %s = \"\"::Sigmoid(%a) {{output_scale = {:?}, output_bitdepth = 8}} name \"sigmoid\"\n",
        2f32.powi(-7)
    );
    b += &format!(
        "  %v = \"\"::AveragePool(%s) {{kernel_shape = [2, 2], strides = [2, 2], {}}} name \"avgpool\"\n",
        act(2f32.powi(-7), 2f32.powi(-7))
    );
    b += &format!(
        "  %gp = \"\"::GlobalAveragePool(%v) {{{}}} name \"gap\"\n",
        act(2f32.powi(-7), 2f32.powi(-7))
    );
    b += "  %tr = \"\"::Transpose(%gp) {perm = [0, 1, 3, 2]} name \"transpose\"\n";
    b += "  %f = \"\"::Flatten(%tr) {axis = 1} name \"flatten\"\n";
    b += &init("mm_w", &[16, 16]);
    let s7 = 2f32.powi(-7);
    b += &format!(
        "  %mm = \"\"::MatMul(%f, %mm_w) {{A_scale = {s7:?}, A_bitdepth = 8, B_scale = {s7:?}, B_bitdepth = 8, output_scale = {S4:?}, output_bitdepth = 8}} name \"matmul\"\n"
    );
    b += &format!("  %th = \"\"::Tanh(%mm) {{output_scale = {s7:?}, output_bitdepth = 8}} name \"tanh\"\n");
    b += "  init %axes = i64[1] int64s [1]\n";
    b += &format!(
        "  %rs = \"\"::ReduceSum(%th, %axes) {{keepdims = 1, output_scale = {S3:?}, output_bitdepth = 8}} name \"reducesum\"\n"
    );
    b += &init("fc_w", &[10, 16]);
    b += &init("fc_b", &[10]);
    b += &format!(
        "  %y = \"\"::Gemm(%th, %fc_w, %fc_b) {{transB = 1, {}}} name \"fc\"\n",
        weighted(s7, 0.25, 10)
    );
    model("%x: f32[1,3,16,16]", "%y: ?, %rs: ?", &b)
}

/// A model that breaks several rules at once, for the snapshots.
fn broken() -> String {
    let mut b = String::new();
    let scales = format!(
        "input_scale = {:?}, input_bitdepth = 8, weight_bitdepth = 8, weight_ch_scales = [{}, 0.005859375], bias_bitdepth = 16, output_scale = 0.1, output_bitdepth = 8",
        2f32.powi(-7),
        ch_scales(23)
    );
    b +=
        &conv("conv1", ["x", "c1"], 3, 24, 9, 1, &format!("strides = [3, 3], pads = [4, 4, 4, 4], {scales}"));
    b += "  %r1 = \"\"::Relu(%c1) name \"relu1\"\n";
    b += &format!(
        "  %p1 = \"\"::MaxPool(%r1) {{kernel_shape = [2, 2], strides = [2, 2], pads = [1, 1, 0, 0], {}}} name \"pool1\"\n",
        act(S3, S4)
    );
    b += "  %y = \"\"::Softmax(%p1) {axis = 1} name \"softmax\"\n";
    model("%x: f32[1,3,64,64]", "%y: ?", &b)
}

/// One rule's pair of models: `bad` breaks it, `good` keeps it.
struct Case {
    rule: &'static str,
    what: &'static str,
    bad: String,
    good: String,
}

fn cases() -> Vec<Case> {
    let std = |attrs: &str| weighted(S4, S4, 16) + attrs;
    let pool = |kind: &str, pads: &str| {
        model(
            "%x: f32[1,16,8,8]",
            "%y: ?",
            &format!(
                "  %y = \"\"::{kind}(%x) {{kernel_shape = [2, 2], strides = [2, 2], pads = {pads}, {}}} name \"pool\"\n",
                act(S4, S4)
            ),
        )
    };
    let qdq = |scale: &str, zp: &str, axis: &str| {
        let mut b = format!("  init %s = {scale}\n  init %z = {zp}\n");
        b += &format!(
            "  %q = \"\"::QuantizeLinear(%x, %s, %z){axis}\n  %dq = \"\"::DequantizeLinear(%q, %s, %z){axis}\n"
        );
        b += "  %y = \"\"::Relu(%dq) name \"relu\"\n";
        model("%x: f32[1,16,8,8]", "%y: ?", &b)
    };
    let per_tensor = ("f32[] floats [0.0625]", "i8[] int32s [0]");
    let sum = |n: usize| {
        let ins: Vec<String> = (0..n).map(|i| format!("%x{i}: f32[1,16,8,8]")).collect();
        let args: Vec<String> = (0..n).map(|i| format!("%x{i}")).collect();
        model(
            &ins.join(", "),
            "%y: ?",
            &format!(
                "  %y = \"\"::Sum({}) {{output_scale = 0.125, output_bitdepth = 8}} name \"sum\"\n",
                args.join(", ")
            ),
        )
    };
    let bn_after = |first: &str| {
        let mut b = match first {
            "Conv" => conv("conv", ["x", "c"], 16, 16, 3, 1, &format!("pads = [1, 1, 1, 1], {}", std(""))),
            _ => "  %c = \"\"::Relu(%x) name \"relu\"\n".to_string(),
        };
        for p in ["s", "b", "m", "v"] {
            b += &init(&format!("bn_{p}"), &[16]);
        }
        b += "  %y = \"\"::BatchNormalization(%c, %bn_s, %bn_b, %bn_m, %bn_v) name \"bn\"\n";
        model("%x: f32[1,16,8,8]", "%y: ?", &b)
    };
    let two_convs = |second_input_scale: f32| {
        let mut b = conv(
            "conv1",
            ["x", "c1"],
            16,
            16,
            3,
            1,
            &format!("pads = [1, 1, 1, 1], {}", weighted(S4, S4, 16)),
        );
        b += &conv(
            "conv2",
            ["c1", "y"],
            16,
            16,
            3,
            1,
            &format!("pads = [1, 1, 1, 1], {}", weighted(second_input_scale, S3, 16)),
        );
        model("%x: f32[1,16,8,8]", "%y: ?", &b)
    };
    vec![
        Case {
            rule: "unsupported-op",
            what: "a Softmax after the convolution",
            bad: {
                let mut b =
                    conv("conv", ["x", "c"], 16, 16, 3, 1, &format!("pads = [1, 1, 1, 1], {}", std("")));
                b += "  %y = \"\"::Softmax(%c) {axis = 1} name \"softmax\"\n";
                model("%x: f32[1,16,8,8]", "%y: ?", &b)
            },
            good: one_conv(8, 16, &format!("pads = [1, 1, 1, 1], {}", std(""))),
        },
        Case {
            rule: "unsupported-op",
            what: "a grouped convolution that is not depth-wise",
            bad: model("%x: f32[1,16,8,8]", "%y: ?", &conv("conv", ["x", "y"], 16, 16, 3, 4, &std(""))),
            good: model("%x: f32[1,16,8,8]", "%y: ?", &conv("conv", ["x", "y"], 16, 16, 3, 16, &std(""))),
        },
        Case {
            rule: "kernel-size",
            what: "a 9x9 convolution",
            bad: model("%x: f32[1,16,16,16]", "%y: ?", &conv("conv", ["x", "y"], 16, 16, 9, 1, &std(""))),
            good: model("%x: f32[1,16,16,16]", "%y: ?", &conv("conv", ["x", "y"], 16, 16, 7, 1, &std(""))),
        },
        Case {
            rule: "kernel-size",
            what: "a 4x4 max pooling",
            bad: model(
                "%x: f32[1,16,8,8]",
                "%y: ?",
                &format!(
                    "  %y = \"\"::MaxPool(%x) {{kernel_shape = [4, 4], strides = [2, 2], {}}} name \"pool\"\n",
                    act(S4, S4)
                ),
            ),
            good: pool("MaxPool", "[0, 0, 0, 0]"),
        },
        Case {
            rule: "stride",
            what: "a stride-3 convolution",
            bad: one_conv(16, 16, &std(", strides = [3, 3]")),
            good: one_conv(16, 16, &std(", strides = [2, 2]")),
        },
        Case {
            rule: "padding",
            what: "a padding of 4",
            bad: one_conv(16, 16, &std(", pads = [4, 4, 4, 4]")),
            good: one_conv(16, 16, &std(", pads = [3, 3, 3, 3]")),
        },
        Case {
            rule: "padding",
            what: "a max pooling padded at the top and left",
            bad: pool("MaxPool", "[1, 1, 0, 0]"),
            good: pool("MaxPool", "[0, 0, 1, 1]"),
        },
        Case {
            rule: "padding",
            what: "an average pooling padded at the bottom and right",
            bad: pool("AveragePool", "[0, 0, 1, 1]"),
            good: pool("AveragePool", "[1, 1, 0, 0]"),
        },
        Case {
            rule: "channels",
            what: "a feature map of 24 channels",
            bad: one_conv(8, 24, &format!("pads = [1, 1, 1, 1], {}", weighted(S4, S4, 24))),
            good: one_conv(8, 32, &format!("pads = [1, 1, 1, 1], {}", weighted(S4, S4, 32))),
        },
        Case {
            rule: "channels",
            what: "a fully connected layer of 3000 input features",
            bad: model(
                "%x: f32[1,3000], %w: f32[16,3000]",
                "%y: ?",
                &format!("  %y = \"\"::Gemm(%x, %w) {{transB = 1, {}}} name \"fc\"\n", act(S4, S4)),
            ),
            good: model(
                "%x: f32[1,2000], %w: f32[16,2000]",
                "%y: ?",
                &format!("  %y = \"\"::Gemm(%x, %w) {{transB = 1, {}}} name \"fc\"\n", act(S4, S4)),
            ),
        },
        Case {
            rule: "feature-map-size",
            what: "a 300x300 feature map",
            bad: one_conv(300, 16, &format!("pads = [1, 1, 1, 1], {}", std(""))),
            good: one_conv(256, 16, &format!("pads = [1, 1, 1, 1], {}", std(""))),
        },
        Case {
            rule: "feature-map-size",
            what: "a depth-wise convolution on 2x2",
            bad: model("%x: f32[1,16,2,2]", "%y: ?", &conv("dw", ["x", "y"], 16, 16, 1, 16, &std(""))),
            good: model("%x: f32[1,16,4,4]", "%y: ?", &conv("dw", ["x", "y"], 16, 16, 1, 16, &std(""))),
        },
        Case {
            rule: "rank",
            what: "a 1-D convolution",
            bad: {
                let mut b = init("w", &[16, 16, 3]);
                b += &format!(
                    "  %y = \"\"::Conv(%x, %w) {{kernel_shape = [3], {}}} name \"conv1d\"\n",
                    std("")
                );
                model("%x: f32[1,16,32]", "%y: ?", &b)
            },
            good: one_conv(32, 16, &std("")),
        },
        Case { rule: "input-count", what: "a Sum of three inputs", bad: sum(3), good: sum(2) },
        Case {
            rule: "predecessor",
            what: "a batch normalization after a Relu",
            bad: bn_after("Relu"),
            good: bn_after("Conv"),
        },
        Case {
            rule: "bit-depth",
            what: "a 16-bit output",
            bad: one_conv(
                8,
                16,
                &weighted(S4, S4, 16).replace("output_bitdepth = 8", "output_bitdepth = 16"),
            ),
            good: one_conv(8, 16, &std("")),
        },
        Case {
            rule: "bit-depth",
            what: "a 32-bit bias",
            bad: one_conv(8, 16, &weighted(S4, S4, 16).replace("bias_bitdepth = 16", "bias_bitdepth = 32")),
            good: one_conv(8, 16, &std("")),
        },
        Case {
            rule: "not-quantized",
            what: "a float model",
            bad: one_conv(8, 16, "pads = [1, 1, 1, 1]"),
            good: one_conv(8, 16, &format!("pads = [1, 1, 1, 1], {}", std(""))),
        },
        Case {
            rule: "scale-missing",
            what: "an output bit depth without a scale",
            bad: one_conv(8, 16, &weighted(S4, S4, 16).replace(&format!("output_scale = {S4:?}, "), "")),
            good: one_conv(8, 16, &std("")),
        },
        Case {
            rule: "scale-not-power-of-two",
            what: "an output scale of 0.1",
            bad: one_conv(8, 16, &weighted(S4, 0.1, 16)),
            good: one_conv(8, 16, &weighted(S4, S3, 16)),
        },
        Case {
            rule: "scale-not-reciprocal-dyadic",
            what: "a weight scale of 3/512",
            bad: one_conv(
                8,
                16,
                &std("").replace(&format!("{:?}, ", 2f32.powi(-7)), &format!("{:?}, ", 3.0f32 / 512.0)),
            ),
            good: one_conv(8, 16, &std("")),
        },
        Case {
            rule: "scale-not-per-tensor",
            what: "per-channel activation scales",
            bad: qdq(
                "f32[16] floats [0.0625, 0.125, 0.0625, 0.125, 0.0625, 0.125, 0.0625, 0.125, 0.0625, 0.125, 0.0625, 0.125, 0.0625, 0.125, 0.0625, 0.125]",
                "i8[16] int32s [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]",
                " {axis = 1}",
            ),
            good: qdq(per_tensor.0, per_tensor.1, ""),
        },
        Case {
            rule: "weight-scale-count",
            what: "15 weight scales for 16 output channels",
            bad: one_conv(
                8,
                16,
                &weighted(S4, S4, 16)
                    .replace(&format!("[{}]", ch_scales(16)), &format!("[{}]", ch_scales(15))),
            ),
            good: one_conv(8, 16, &std("")),
        },
        Case {
            rule: "scale-mismatch",
            what: "a max pooling that changes scale",
            bad: model(
                "%x: f32[1,16,8,8]",
                "%y: ?",
                &format!(
                    "  %y = \"\"::MaxPool(%x) {{kernel_shape = [2, 2], strides = [2, 2], {}}} name \"pool\"\n",
                    act(S4, S3)
                ),
            ),
            good: pool("MaxPool", "[0, 0, 0, 0]"),
        },
        Case {
            rule: "scale-mismatch",
            what: "a reader's input_scale that differs from its producer's output_scale",
            bad: two_convs(S3),
            good: two_convs(S4),
        },
        Case {
            rule: "zero-point",
            what: "an unsigned 8-bit activation with zero point 128",
            bad: qdq("f32[] floats [0.0625]", "u8[] int32s [128]", ""),
            good: qdq(per_tensor.0, per_tensor.1, ""),
        },
        Case {
            rule: "deprecated-attribute",
            what: "weight_scale instead of weight_ch_scales",
            bad: one_conv(8, 16, &format!("{}, weight_scale = 0.0078125", act(S4, S4))),
            good: one_conv(8, 16, &std("")),
        },
        Case {
            rule: "unchecked",
            what: "a symbolic feature-map size",
            bad: model("%x: f32[1,16,H,W]", "%y: ?", &conv("conv", ["x", "y"], 16, 16, 3, 1, &std(""))),
            good: one_conv(8, 16, &std("")),
        },
    ]
}

/// Writes the model in `text` as ONNX to `dir/name`.
fn write_model(dir: &Path, name: &str, text: &str) -> PathBuf {
    let m = qc_ir::text::parse_model(text)
        .unwrap_or_else(|e| panic!("{name}: {:?}\n{text}", miette::Report::new(e)));
    let path = dir.join(name);
    std::fs::write(&path, qc::onnx::export_model(&m).encode_to_vec()).unwrap();
    path
}

/// Runs `qc check --format json` and returns the exit code and the document.
fn check_json(path: &Path, target: &str) -> (u8, serde_json::Value) {
    let (code, out, err) = qc(&["check", path.to_str().unwrap(), "--target", target, "--format", "json"]);
    let doc = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{}: {e}\n{out}\n{err}", path.display()));
    (code, doc)
}

fn rules_found(doc: &serde_json::Value) -> Vec<String> {
    doc["diagnostics"].as_array().unwrap().iter().map(|d| d["rule"].as_str().unwrap().to_string()).collect()
}

#[test]
fn every_rule_has_a_failing_and_a_passing_model() {
    let dir = tempfile::tempdir().unwrap();
    let mut covered = std::collections::BTreeSet::new();
    for (i, c) in cases().iter().enumerate() {
        let bad = write_model(dir.path(), &format!("bad{i}.onnx"), &c.bad);
        let (code, doc) = check_json(&bad, "access-dla");
        let found = rules_found(&doc);
        assert!(found.iter().any(|r| r == c.rule), "{} ({}): not found in {found:?}", c.rule, c.what);
        let errors = doc["summary"]["errors"].as_u64().unwrap();
        assert_eq!(code, if errors > 0 { 1 } else { 0 }, "{}: exit code", c.rule);
        let good = write_model(dir.path(), &format!("good{i}.onnx"), &c.good);
        let (code, doc) = check_json(&good, "access-dla");
        let found = rules_found(&doc);
        assert!(
            !found.iter().any(|r| r == c.rule),
            "{} ({}): the passing model has it: {doc:#}",
            c.rule,
            c.what
        );
        // The passing models are clean, apart from graph inputs that no attribute scales (the
        // inputs of Sum, the weight input of the wide fully connected layer).
        if c.rule != "input-count" && !c.what.contains("3000") {
            assert_eq!(
                (code, found.clone()),
                (0, vec![]),
                "{} ({}): the passing model is not clean: {doc:#}",
                c.rule,
                c.what
            );
        }
        covered.insert(c.rule);
    }
    // Every rule of the target schema has a case, except `dilation`, which the ACCESS DLA does not
    // limit (the user-written target below covers it).
    for r in qc_ir::target::Rule::ALL {
        assert!(r.name() == "dilation" || covered.contains(r.name()), "no case for {}", r.name());
    }
}

#[test]
fn a_compliant_model_passes_and_its_report_is_stable() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_model(dir.path(), "compliant.onnx", &compliant());
    let p = path.to_str().unwrap();
    let (code, out, err) = qc(&["check", p, "--target", "access-dla"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(err, "");
    insta::assert_snapshot!("compliant_text", out.replace(p, "compliant.onnx"));
    let (code, out, _) = qc(&["check", p, "--target", "access-dla", "--format", "json"]);
    assert_eq!(code, 0);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["summary"]["cpu"], 0);
    insta::assert_snapshot!("compliant_json", out.replace(p, "compliant.onnx"));
}

#[test]
fn a_broken_model_reports_every_finding() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_model(dir.path(), "broken.onnx", &broken());
    let p = path.to_str().unwrap();
    let (code, out, err) = qc(&["check", p, "--target", "access-dla"]);
    assert_eq!(code, 1, "{out}\n{err}");
    insta::assert_snapshot!("broken_text", out.replace(p, "broken.onnx"));
    let (code, out, _) = qc(&["check", p, "--target", "access-dla", "--format", "json"]);
    assert_eq!(code, 1);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["ok"], false);
    for d in doc["diagnostics"].as_array().unwrap() {
        for key in ["code", "severity", "message", "observed", "allowed", "hint"] {
            assert!(d[key].as_str().is_some_and(|s| !s.is_empty()), "{key} empty in {d}");
        }
        assert_eq!(d["code"].as_str().unwrap(), format!("qc::check::{}", d["rule"].as_str().unwrap()));
    }
    insta::assert_snapshot!("broken_json", out.replace(p, "broken.onnx"));
}

/// A target for a small NPU, as a user would write one.
const USER_TARGET: &str = r#"
name: tiny-npu
title: A tiny NPU with 3x3 convolutions only
tensors:
  feature_map:
    channels: {max: 64}
    bits: [4, 8]
scales:
  feature_map: any
  weight: power-of-two
  may_change: [Conv]
operators:
  - name: conv3
    title: 3x3 convolution
    op_types: [Conv]
    when: standard
    weights: [1]
    limits:
      kernel: 3
      stride: 1
      dilation: 1
      padding: {max: 1}
  - name: relu
    title: ReLU
    op_types: [Relu]
    fused: true
severity:
  unsupported-op: error
"#;

#[test]
fn a_user_written_target_is_read_shown_and_applied() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("tiny-npu.yaml");
    std::fs::write(&target, USER_TARGET).unwrap();
    let t = target.to_str().unwrap();
    let (code, out, err) = qc(&["targets", "show", t]);
    assert_eq!(code, 0, "{err}");
    insta::assert_snapshot!("user_target_markdown", out);

    // Dilation is limited here; a MaxPool is not an operator, and that is an error on this NPU.
    let halves = vec!["0.5"; 16].join(", ");
    let attrs = format!(
        "dilations = [2, 2], pads = [2, 2, 2, 2], input_scale = 0.3, input_bitdepth = 8, weight_bitdepth = 8, \
         weight_ch_scales = [{halves}], output_scale = 0.3, output_bitdepth = 8"
    );
    let mut b = conv("conv", ["x", "c"], 16, 16, 3, 1, &attrs);
    b += "  %y = \"\"::MaxPool(%c) {kernel_shape = [2, 2]} name \"pool\"\n";
    let text = model("%x: f32[1,16,8,8]", "%y: ?", &b);
    let path = write_model(dir.path(), "m.onnx", &text);
    let (code, doc) = check_json(&path, t);
    let found = rules_found(&doc);
    assert_eq!(code, 1);
    assert_eq!(doc["target"], "tiny-npu");
    for r in ["dilation", "padding", "unsupported-op"] {
        assert!(found.iter().any(|x| x == r), "{r} not in {found:?}");
    }
    let severity = |rule: &str| {
        doc["diagnostics"].as_array().unwrap().iter().find(|d| d["rule"] == rule).unwrap()["severity"].clone()
    };
    assert_eq!(severity("unsupported-op"), "error");
    // Scales of any format are fine for feature maps here; the weight scale 0.5 is a power of two.
    assert!(!found.iter().any(|x| x.starts_with("scale-not")), "{found:?}");
}

#[test]
fn bad_input_exits_2_with_a_diagnostic_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let good = write_model(dir.path(), "m.onnx", &one_conv(8, 16, &weighted(S4, S4, 16)));
    let m = good.to_str().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    let builtin = qc::targets::BUILTIN[0].1;
    let unknown_key = write(
        "unknown_key.yaml",
        &builtin.replace("    when: depthwise\n", "    when: depthwise\n    kernal: 3\n"),
    );
    let bad_range =
        write("bad_range.yaml", &builtin.replace("kernel: {min: 2, max: 7}", "kernel: {min: 8, max: 7}"));
    let bad_rule = write("bad_rule.yaml", &format!("{builtin}severity:\n  kernel-sise: warning\n"));
    let syntax = write("syntax.yaml", "name: [unclosed\n");
    let missing_op_types = write("missing.yaml", &builtin.replace("    op_types: [ReduceSum]\n", ""));
    let garbage = write("garbage.onnx", "this is not a model");
    let cases: Vec<(Vec<&str>, &str, Vec<&str>)> = vec![
        (vec!["check", "no-such.onnx", "--target", "access-dla"], "qc::io::read", vec!["no-such.onnx"]),
        (vec!["check", &garbage, "--target", "access-dla"], "qc::onnx::decode", vec![]),
        (vec!["check", m, "--target", "acces-dla"], "qc::target::unknown", vec!["access-dla"]),
        (vec!["check", m, "--target", "no/such/target.yaml"], "qc::io::read", vec!["target.yaml"]),
        (
            vec!["check", m, "--target", &unknown_key],
            "qc::target::invalid",
            vec!["kernal", "unknown_key.yaml:"],
        ),
        (
            vec!["check", m, "--target", &bad_range],
            "qc::target::invalid",
            vec!["larger than `max`", "bad_range.yaml:"],
        ),
        (
            vec!["check", m, "--target", &bad_rule],
            "qc::target::invalid",
            vec!["kernel-sise", "bad_rule.yaml:"],
        ),
        (vec!["check", m, "--target", &syntax], "qc::target::invalid", vec!["syntax.yaml"]),
        (vec!["check", m, "--target", &missing_op_types], "qc::target::invalid", vec!["op_types"]),
        (vec!["targets", "show", "nothing"], "qc::target::unknown", vec![]),
        (vec!["check", m], "", vec!["--target"]),
    ];
    for (args, code, needles) in cases {
        let (exit, out, err) = qc(&args);
        assert_eq!(exit, 2, "{args:?}: {out}{err}");
        assert_eq!(out, "", "{args:?}: nothing on standard output");
        assert!(err.contains(code), "{args:?}: no {code} in\n{err}");
        for n in needles {
            assert!(err.contains(n), "{args:?}: no `{n}` in\n{err}");
        }
    }
    // The label points at the offending key, on its line.
    let (_, _, err) = qc(&["check", m, "--target", &unknown_key]);
    let line = builtin.lines().position(|l| l == "    when: depthwise").unwrap() + 2;
    assert!(err.contains(&format!("unknown_key.yaml:{line}:")), "{err}");
    assert!(err.contains("kernal: 3"), "the snippet shows the key: {err}");
}

#[test]
fn targets_list_and_show() {
    let (code, out, _) = qc(&["targets", "list"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("access-dla  ACCESS"), "{out}");
    let (code, out, _) = qc(&["targets", "show", "access-dla"]);
    assert_eq!(code, 0);
    assert!(out.contains("| Standard convolution | `Conv` (group 1) |"), "{out}");
}

/// `spec/targets.md` carries the generated table of every built-in target; it must be current.
#[test]
fn the_target_tables_in_the_spec_are_current() {
    let spec =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/targets.md")).unwrap();
    for (name, _) in qc::targets::BUILTIN {
        let begin = format!("<!-- generated: qc targets show {name} -->\n");
        let end = format!("<!-- end of qc targets show {name} -->");
        let start =
            spec.find(&begin).unwrap_or_else(|| panic!("spec/targets.md has no `{begin}`")) + begin.len();
        let stop = spec[start..].find(&end).expect("end marker") + start;
        let (_, out, _) = qc(&["targets", "show", name]);
        assert!(
            spec[start..stop] == out,
            "spec/targets.md is stale for {name}; replace the block with `qc targets show {name}`:\n{out}"
        );
    }
}

/// Every model under `../shared/models` checks without a crash: exit 0 or 1, never 2.
#[test]
fn every_shared_model_checks_without_a_crash() {
    let Some(shared) = qc_tests::shared_or_say("check over ../shared/models") else { return };
    let models = qc_tests::files_under(&shared.join("models"), ".onnx");
    assert!(models.len() > 40, "found {} models", models.len());
    let mut lines = Vec::new();
    for m in &models {
        let (code, out, err) =
            qc(&["check", m.to_str().unwrap(), "--target", "access-dla", "--format", "json"]);
        assert!(code == 0 || code == 1, "{}: exit {code}\n{err}", m.display());
        let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
        let s = &doc["summary"];
        let name = m.strip_prefix(shared.join("models")).unwrap().display().to_string();
        lines.push(format!(
            "{name}: {} error(s), {} warning(s); {} DLA, {} CPU, {} absorbed",
            s["errors"], s["warnings"], s["dla"], s["cpu"], s["absorbed"]
        ));
    }
    eprintln!("qc check --target access-dla over ../shared/models:\n{}", lines.join("\n"));
}

/// Every model of the ONNX backend node tests checks without a panic, whatever its ops, ranks
/// and attributes (a robustness sweep: most are not DLA models at all).
#[test]
fn every_backend_test_model_checks_without_a_panic() {
    let Some(shared) = qc_tests::shared_or_say("check over the ONNX backend node tests") else { return };
    let cases = qc_tests::backend_node_cases(&shared);
    assert!(cases.len() > 1000, "found {} cases", cases.len());
    let mut failed = 0;
    for c in &cases {
        let (code, out, err) =
            qc(&["check", c.model.to_str().unwrap(), "--target", "access-dla", "--format", "json"]);
        assert!(code <= 2, "{}: exit {code}", c.name);
        if code == 1 {
            failed += 1;
        }
        assert!(code != 2, "{}: the model loads elsewhere, so it must check: {err}", c.name);
        let _: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{}: {e}", c.name));
    }
    eprintln!("{} backend models checked, {failed} with error findings", cases.len());
}

/// Diagnostics at scale: on a 3,616-node transformer-like encoder (113 layers of 32 nodes), the
/// text report stays under 100 lines (findings grouped, warnings capped, the placement per op
/// type), while the JSON keeps every finding.
#[test]
fn a_large_model_gives_a_short_report_and_a_complete_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("encoder.onnx");
    std::fs::write(&path, qc::fixtures::transformer_like(113).encode_to_vec()).unwrap();
    let p = path.to_str().unwrap();
    let (code, text, err) = qc(&["check", p, "--target", "access-dla"]);
    assert_eq!(code, 1, "{err}");
    let lines = text.lines().count() + err.lines().count();
    eprintln!("qc check on 3,616 nodes: {lines} lines");
    assert!(lines < 100, "{lines} lines:\n{text}\n{err}");
    assert!(text.contains("more like this") && text.contains("--placement lists every op"), "{text}");
    let (_, json, _) = qc(&["check", p, "--target", "access-dla", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let findings = v["diagnostics"].as_array().unwrap().len();
    let counted = v["summary"]["errors"].as_u64().unwrap() + v["summary"]["warnings"].as_u64().unwrap();
    assert!(
        findings > 300 && findings as u64 == counted,
        "JSON keeps every finding: {findings} of {counted}"
    );
    let placed_ops = v["placement"].as_array().unwrap().len();
    let (_, placed, _) = qc(&["check", p, "--target", "access-dla", "--placement"]);
    assert!(placed_ops > 500 && placed.lines().count() > placed_ops, "--placement lists every op");
}

#[test]
fn explain_prints_a_rules_file_header() {
    // By name or by code: what, why (with the guide's lines), an example, the severity.
    for code in ["kernel-size", "qc::check::kernel-size"] {
        let (status, out, err) = qc(&["check", "--explain", code]);
        assert_eq!(status, 0, "{err}");
        assert!(out.starts_with("`qc::check::kernel-size`: a kernel outside the allowed sizes"), "{out}");
        assert!(out.contains("Why: the DLA's convolutions take 1x1 to 7x7 kernels"), "{out}");
        assert!(out.contains("Example: `Conv("), "{out}");
        assert!(out.ends_with("Default severity: error.\n"), "{out}");
    }
    let (status, out, _) = qc(&["check", "--explain", "padding"]);
    assert_eq!(status, 0);
    assert!(out.contains("lines 80, 87, 101"), "{out}");
    // The tensor and scale rules have files too.
    let (status, out, _) = qc(&["check", "--explain", "zero-point"]);
    assert_eq!(status, 0);
    assert!(out.starts_with("`qc::check::zero-point`: "), "{out}");
    assert!(out.contains("guide line 125") && out.ends_with("Default severity: error.\n"), "{out}");
    let (status, out, _) = qc(&["check", "--explain", "qc::check::deprecated-attribute"]);
    assert_eq!(status, 0);
    assert!(out.contains("lines 218, 228") && out.ends_with("Default severity: warning.\n"), "{out}");
    // An unknown rule is a diagnostic naming the rules, exit 2, nothing on standard output.
    let (status, out, err) = qc(&["check", "--explain", "kernel-sise"]);
    assert_eq!((status, out.as_str()), (2, ""));
    assert!(err.contains("qc::check::unknown_rule") && err.contains("kernel-sise"), "{err}");
    assert!(err.contains("kernel-size"), "{err}");
    // Checking a model still needs a model and a target.
    let (status, _, err) = qc(&["check", "--target", "access-dla"]);
    assert_eq!(status, 2, "{err}");
}

/// `--explain` text for `code`: what (it starts with the code), why, an example, the severity.
fn explained(code: &str) -> String {
    let (status, out, err) = qc(&["check", "--explain", code]);
    assert_eq!(status, 0, "{code}: {err}");
    assert!(out.starts_with(&format!("`{code}`: ")), "{code} does not say what it checks: {out}");
    assert!(
        out.contains("\nWhy: ") && out.contains("\nExample: "),
        "{code} lacks a why or an example: {out}"
    );
    assert!(
        out.ends_with("Default severity: error.\n") || out.ends_with("Default severity: warning.\n"),
        "{out}"
    );
    out
}

#[test]
fn every_rule_and_every_code_check_emits_is_explained() {
    // Every rule of the registry, by its code.
    let mut texts = std::collections::BTreeSet::new();
    for r in qc_ir::target::Rule::ALL {
        texts.insert(explained(r.code()));
    }
    assert_eq!(texts.len(), qc_ir::target::Rule::ALL.len(), "two rules share a text");
    // Every code the failing models make `qc check` emit.
    let dir = tempfile::tempdir().unwrap();
    let mut emitted = std::collections::BTreeSet::new();
    for (i, c) in cases().iter().enumerate() {
        let bad = write_model(dir.path(), &format!("bad{i}.onnx"), &c.bad);
        let (_, doc) = check_json(&bad, "access-dla");
        for d in doc["diagnostics"].as_array().unwrap() {
            emitted.insert(d["code"].as_str().unwrap().to_string());
        }
    }
    for code in &emitted {
        explained(code);
    }
    assert!(emitted.len() >= qc_ir::target::Rule::ALL.len() - 1, "only {emitted:?}");
}

#[test]
fn scale_and_tensor_findings_carry_their_numbers_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for (i, c) in cases().iter().enumerate() {
        let bad = write_model(dir.path(), &format!("bad{i}.onnx"), &c.bad);
        let (_, doc) = check_json(&bad, "access-dla");
        for d in doc["diagnostics"].as_array().unwrap().iter().filter(|d| d["rule"] == c.rule) {
            let (observed, allowed, text) =
                (&d["observed_value"], &d["allowed_value"], d["observed"].as_str().unwrap());
            let numbers =
                |v: &serde_json::Value| v.as_array().is_some_and(|a| a.iter().all(|x| x.is_number()));
            match c.rule {
                "bit-depth" => {
                    let bits = observed.as_i64().unwrap_or_else(|| panic!("{d:#}"));
                    assert!(
                        text.contains(&format!("{bits} bits")) || text.contains("not an integer"),
                        "{d:#}"
                    );
                    assert!(allowed["values"].is_array() || allowed["max"].is_number(), "{d:#}");
                }
                "zero-point" => {
                    let first = observed.as_f64().or_else(|| {
                        observed
                            .as_array()
                            .and_then(|a| a.iter().find_map(|z| z.as_f64().filter(|z| *z != 0.0)))
                    });
                    assert!(text.contains(&first.unwrap_or_else(|| panic!("{d:#}")).to_string()), "{d:#}");
                    assert_eq!(allowed, 0, "{d:#}");
                }
                "scale-not-per-tensor" => {
                    assert!(numbers(observed) && observed.as_array().unwrap().len() > 1, "{d:#}")
                }
                "scale-not-power-of-two" | "scale-not-reciprocal-dyadic" => {
                    let per_channel = observed
                        .as_array()
                        .is_some_and(|a| a.iter().all(|x| x["channel"].is_u64() && x["scale"].is_number()));
                    assert!(observed.is_number() || per_channel, "{d:#}");
                }
                "weight-scale-count" => assert!(observed.is_i64() || observed["axis"].is_i64(), "{d:#}"),
                "scale-mismatch" => assert!(observed.is_number() || observed["output"].is_number(), "{d:#}"),
                _ => continue,
            }
            seen.insert(c.rule);
        }
    }
    assert_eq!(seen.len(), 7, "not every scale or tensor rule was seen: {seen:?}");
}

/// A transformer encoder block (opset 20, float): an embedding `Gather`, LayerNormalization,
/// Q/K/V projections (MatMul + Add), heads split by Reshape and Transpose, the scores
/// `MatMul(Q, K^T)` of two activations, a constant scale, Softmax, the MatMul with V, heads
/// merged, the output projection and a residual Add, then a second LayerNormalization and a
/// feed-forward with Gelu and a gate (a Mul of two activations).
fn transformer_block() -> String {
    let mut b = String::new();
    for (name, dims) in [
        ("emb", &[32, 16][..]),
        ("ln1_s", &[16]),
        ("ln1_b", &[16]),
        ("wq", &[16, 16]),
        ("bq", &[16]),
        ("wk", &[16, 16]),
        ("bk", &[16]),
        ("wv", &[16, 16]),
        ("bv", &[16]),
        ("wo", &[16, 16]),
        ("bo", &[16]),
        ("ln2_s", &[16]),
        ("ln2_b", &[16]),
        ("w1", &[16, 32]),
        ("b1", &[32]),
        ("w2", &[32, 16]),
        ("b2", &[16]),
    ] {
        b += &init(name, dims);
    }
    b += "  init %heads = i64[4] int64s [1, 8, 2, 8]\n  init %merged = i64[3] int64s [1, 8, 16]\n";
    b += "  init %scale = f32[] floats [0.35355338]\n";
    b += "  %x = \"\"::Gather(%emb, %ids) name \"embed\"\n";
    b += "  %h = \"\"::LayerNormalization(%x, %ln1_s, %ln1_b) {axis = -1} name \"ln1\"\n";
    for (p, perm) in [("q", "[0, 2, 1, 3]"), ("k", "[0, 2, 3, 1]"), ("v", "[0, 2, 1, 3]")] {
        b += &format!(
            "  %{p}0 = \"\"::MatMul(%h, %w{p}) name \"{p}_proj\"\n  %{p}1 = \"\"::Add(%{p}0, %b{p}) name \"{p}_bias\"\n  %{p}2 = \"\"::Reshape(%{p}1, %heads) name \"{p}_heads\"\n  %{p} = \"\"::Transpose(%{p}2) {{perm = {perm}}} name \"{p}_t\"\n"
        );
    }
    b += "  %s0 = \"\"::MatMul(%q, %k) name \"scores\"
  %s1 = \"\"::Mul(%s0, %scale) name \"scale\"
  %pr = \"\"::Softmax(%s1) {axis = -1} name \"softmax\"
  %c0 = \"\"::MatMul(%pr, %v) name \"context\"
  %c1 = \"\"::Transpose(%c0) {perm = [0, 2, 1, 3]} name \"merge_t\"
  %c2 = \"\"::Reshape(%c1, %merged) name \"merge_heads\"
  %o0 = \"\"::MatMul(%c2, %wo) name \"o_proj\"
  %o1 = \"\"::Add(%o0, %bo) name \"o_bias\"
  %r1 = \"\"::Add(%x, %o1) name \"residual1\"
  %h2 = \"\"::LayerNormalization(%r1, %ln2_s, %ln2_b) {axis = -1} name \"ln2\"
  %f0 = \"\"::MatMul(%h2, %w1) name \"ffn_up\"
  %f1 = \"\"::Add(%f0, %b1) name \"ffn_up_bias\"
  %f2 = \"\"::Gelu(%f1) name \"gelu\"
  %f3 = \"\"::Mul(%f2, %f1) name \"gate\"
  %f4 = \"\"::MatMul(%f3, %w2) name \"ffn_down\"
  %f5 = \"\"::Add(%f4, %b2) name \"ffn_down_bias\"
  %y = \"\"::Add(%r1, %f5) name \"residual2\"
";
    format!("ir_version 9\nopset_import \"\" 20\n\ngraph @g(%ids: i64[1,8]) -> (%y: ?) {{\n{b}}}\n")
}

#[test]
fn a_transformer_block_is_placed_and_its_findings_are_actionable() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_model(dir.path(), "block.onnx", &transformer_block());
    let (code, doc) = check_json(&path, "access-dla");
    let placement = doc["placement"].as_array().unwrap();
    let unit = |node: &str| {
        let p = placement.iter().find(|p| p["node"] == node).unwrap_or_else(|| panic!("{node}: {doc:#}"));
        p["unit"].as_str().unwrap().to_string()
    };
    // The matrix products (weights or two activations), the element-wise adds and the head
    // reshapes and transposes run on the DLA.
    for node in [
        "q_proj",
        "q_bias",
        "k_proj",
        "v_proj",
        "scores",
        "context",
        "o_proj",
        "residual1",
        "ffn_up",
        "ffn_down",
        "q_heads",
        "q_t",
        "k_t",
        "v_t",
        "merge_t",
        "merge_heads",
    ] {
        assert_eq!(unit(node), "dla", "{node}: {doc:#}");
    }
    for node in ["embed", "ln1", "ln2", "scale", "softmax", "gelu", "gate"] {
        assert_eq!(unit(node), "cpu", "{node}: {doc:#}");
    }
    let diagnostics = doc["diagnostics"].as_array().unwrap();
    let about = |node: &str| -> Vec<&serde_json::Value> {
        diagnostics.iter().filter(|d| d["node"] == node).collect()
    };
    let hint = |node: &str| {
        let found = about(node);
        assert_eq!(found.len(), 1, "{node}: {found:#?}");
        (found[0]["message"].as_str().unwrap().to_string(), found[0]["hint"].as_str().unwrap().to_string())
    };
    // An embedding lookup is named as one, with what to do about it.
    let (message, help) = hint("embed");
    assert!(message.contains("embedding lookup") && message.contains("`emb`"), "{message}");
    assert!(help.contains("before the first DLA segment"), "{help}");
    // A product of two activations is not a multiplication by constants.
    let (_, help) = hint("gate");
    assert!(!help.contains("by constants") && help.contains("activation times an activation"), "{help}");
    // The constant scale is, and says where it folds.
    let (_, help) = hint("scale");
    assert!(help.contains("query projection"), "{help}");
    // The attention softmax is not a final one.
    let (_, help) = hint("softmax");
    assert!(!help.contains("final softmax") && help.contains("attention"), "{help}");
    for node in ["ln1", "gelu"] {
        let (_, help) = hint(node);
        assert!(help.contains("the DLA") && help.contains("CPU"), "{node}: {help}");
    }
    // The attention tensors ([1, 2, 8, 8]: batch, heads, tokens, features) are not images: no
    // channel or feature-map-size finding about them, and none about the matrix products.
    for d in diagnostics {
        let rule = d["rule"].as_str().unwrap();
        assert!(!matches!(rule, "channels" | "feature-map-size" | "unchecked"), "{d:#}");
    }
    // A float model: one not-quantized finding, and the CPU ops are errors or warnings per the
    // target's severities; the exit code follows the errors.
    assert!(diagnostics.iter().any(|d| d["rule"] == "not-quantized"), "{doc:#}");
    let errors = doc["summary"]["errors"].as_u64().unwrap();
    assert_eq!(code, if errors > 0 { 1 } else { 0 });
}

/// PP-OCRv4's recognizer has an attention neck (an SVTR mixer: LayerNormalization written out,
/// MatMuls of two activations, Softmax, Reshape/Transpose/Squeeze of heads): every op is placed,
/// the attention tensors are not checked as images, and the hints fit what each op is.
#[test]
fn the_ppocr_attention_neck_is_placed_and_checked() {
    let Some(shared) = qc_tests::shared_or_say("the PP-OCRv4 check") else { return };
    let model = shared.join("models/real/ch_PP-OCRv4_rec_infer.onnx");
    let (code, out, err) = qc(&[
        "check",
        model.to_str().unwrap(),
        "--target",
        "access-dla",
        "--format",
        "json",
        "--overwrite-input-shape",
        "x:1,3,48,320",
    ]);
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {err}"));
    assert_eq!(code, 1, "{err}");
    let placement = doc["placement"].as_array().unwrap();
    let placed =
        |ty: &str, unit: &str| placement.iter().filter(|p| p["op_type"] == ty && p["unit"] == unit).count();
    assert!(placed("MatMul", "dla") >= 6, "{doc:#}");
    assert_eq!(placed("MatMul", "cpu"), 0);
    assert_eq!(placed("Softmax", "cpu"), 3);
    let diagnostics = doc["diagnostics"].as_array().unwrap();
    let with = |ty: &str, rule: &str| -> Vec<&serde_json::Value> {
        diagnostics.iter().filter(|d| d["op_type"] == ty && d["rule"] == rule).collect()
    };
    // The attention tensors [1, 8, tokens, features] are not images with 8 channels.
    for ty in ["Softmax", "Squeeze"] {
        assert!(with(ty, "channels").is_empty(), "{ty}: {:#?}", with(ty, "channels"));
    }
    // Swish (x * Sigmoid(x)) and attention products are products of two activations; the
    // scales by constants are affine maps.
    let muls = with("Mul", "unsupported-op");
    let products =
        muls.iter().filter(|d| d["hint"].as_str().unwrap().contains("activation times an activation"));
    let constants = muls.iter().filter(|d| d["hint"].as_str().unwrap().contains("by constants"));
    let (products, constants) = (products.count(), constants.count());
    assert!(products > 0 && constants > 0 && products + constants == muls.len(), "{muls:#?}");
    // The two attention softmaxes feed the MatMul with V: not final ones; the recognizer's
    // output softmax is.
    let softmaxes = with("Softmax", "unsupported-op");
    let attention = softmaxes.iter().filter(|d| d["hint"].as_str().unwrap().contains("attention")).count();
    let last = softmaxes.iter().filter(|d| d["hint"].as_str().unwrap().contains("final softmax")).count();
    assert_eq!((attention, last), (2, 1), "{softmaxes:#?}");
    // Layer normalization written out: the pieces say so.
    for ty in ["ReduceMean", "Pow", "Sqrt"] {
        let found = with(ty, "unsupported-op");
        assert!(!found.is_empty(), "{ty}");
        for d in found {
            assert!(d["hint"].as_str().unwrap().contains("layer normalization"), "{d:#}");
        }
    }
}
