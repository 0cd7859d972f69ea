//! What the fuzz targets check (`fuzz/fuzz_targets/*.rs` call these functions, and the
//! `fuzz_regressions` test replays the saved inputs of `fuzz/regressions/<target>/` through
//! them on every `cargo test`). Each returns normally for any input qc handles, accepted or
//! refused with a diagnostic, and panics on a finding: a panic inside qc, or a broken promise
//! (a printed or exported form that does not read back the same, a pass leaving an invalid IR).

use bytes::Bytes;
use prost::Message;
use qc::load::{LoadOptions, load_bytes};
use qc_backends::explore::{ExploreOptions, search_workload};
use qc_backends::search::{Objective, TemporalOptions};
use qc_backends::spatial::SpatialOptions;
use qc_backends::zigzag::{
    read_accelerator_yaml, read_mapping_yaml, read_workload_yaml, write_workload_yaml,
};
use qc_ir::text::{Form, parse_model, parse_workload, print_model, print_workload};
use qc_ir::{LoopNest, Model, verify_model};
use qc_passes::{ManagerError, ManagerOptions, PassManager, Pipeline};

/// What a fuzz target checks of one input (panics on a finding).
pub type Check = fn(&[u8]);

/// The fuzz targets, by name (the names of `fuzz/fuzz_targets/*.rs` and of the regression
/// folders).
pub const TARGETS: [(&str, Check); 6] =
    [("load", load), ("text", text), ("zigzag", zigzag), ("dims", dims), ("run", run), ("mapping", mapping)];

/// `load`: decode, import, verify and inspect arbitrary bytes as an ONNX model; an input that
/// loads must export to bytes that load again and re-export to the same bytes.
pub fn load(data: &[u8]) {
    let opts = LoadOptions { mmap: false };
    let Ok(loaded) = load_bytes(Bytes::copy_from_slice(data), "fuzz.onnx", None, opts) else { return };
    let _ = qc::inspect::render_text(&qc::inspect::inspect(&loaded, "fuzz.onnx"));
    let once = qc::onnx::export_model(&loaded.model).encode_to_vec();
    let again = load_bytes(Bytes::from(once.clone()), "fuzz.onnx", None, opts)
        .expect("an exported model loads again");
    let twice = qc::onnx::export_model(&again.model).encode_to_vec();
    assert_eq!(once, twice, "export is not stable");
}

/// The pipelines the `text` target runs on every valid model: `qc optimize`'s default, the
/// lowering `qc lower` and `qc evaluate` run, and `qc cost`'s preprocessing.
const TEXT_PIPELINES: [&str; 3] =
    [qc_passes::registry::DEFAULT_PIPELINE, qc::lower::LOWER_PIPELINE, qc_passes::cost::PREPROCESS];

/// `text`: arbitrary UTF-8 as the textual IR. A workload (loop-nest text) that parses must print
/// and parse back the same; a model that parses must too, and when it verifies, every pipeline
/// of [`TEXT_PIPELINES`] runs on it with verification after each pass (an error is fine, an
/// invalid IR is a finding); a lowered workload must print back the same and its ZigZag YAML
/// must read back.
pub fn text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(w) = parse_workload(text) {
        workload_round_trip(&w);
    }
    let Ok(model) = parse_model(text) else { return };
    let printed = print_model(&model, Form::Full);
    let again =
        parse_model(&printed).unwrap_or_else(|e| panic!("printed model does not parse: {e}\n{printed}"));
    assert_eq!(print_model(&again, Form::Full), printed, "model text round trip");
    if !verify_model(&model).is_empty() {
        return;
    }
    for pipeline in TEXT_PIPELINES {
        let mut m: Model = model.clone();
        let p = Pipeline::parse(pipeline).expect("a built-in pipeline parses");
        let options = ManagerOptions { verify_each: true, stop_after: None };
        match PassManager::new(p, options).expect("a built-in pipeline").run(&mut m, &mut |_, _| {}) {
            Ok(report) => {
                if let Some(w) = &report.workload {
                    workload_round_trip(w);
                    let yaml = write_workload_yaml(w);
                    if let Err(e) = read_workload_yaml(&yaml, "lowered.yaml") {
                        panic!("qc's own ZigZag YAML does not read back: {e}\n{yaml}");
                    }
                }
            }
            Err(e @ ManagerError::BrokeIr { .. }) => panic!("{pipeline}: {:?}", miette::Report::new(e)),
            Err(_) => {}
        }
    }
}

fn workload_round_trip(w: &qc_ir::Workload) {
    let printed = print_workload(w);
    let again = parse_workload(&printed)
        .unwrap_or_else(|e| panic!("printed workload does not parse: {e}\n{printed}"));
    assert_eq!(print_workload(&again), printed, "workload text round trip");
}

/// The line that separates the documents of a `zigzag` input.
pub const ZIGZAG_SEPARATOR: &str = "\n#%%\n";

/// `zigzag`: up to three YAML documents separated by [`ZIGZAG_SEPARATOR`], an accelerator, a
/// mapping file and a workload, each read by qc's ZigZag reader (an empty or missing part takes
/// the small built-in one: [`crate::fixtures::SMALL_NPU`], a lone `default` entry,
/// [`crate::fixtures::SMALL_NET`]). A workload that reads must write back to YAML that reads to
/// the same; when all three read, a small mapping search runs on the first layers (errors are
/// fine: they are diagnostics).
pub fn zigzag(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut parts = text.splitn(3, ZIGZAG_SEPARATOR).map(|p| (!p.trim().is_empty()).then_some(p));
    let acc = parts.next().flatten().unwrap_or(crate::fixtures::SMALL_NPU);
    let map = parts.next().flatten().unwrap_or("- name: default\n");
    let net = parts.next().flatten().unwrap_or(crate::fixtures::SMALL_NET);
    let acc = read_accelerator_yaml(acc, "accelerator.yaml");
    let map = read_mapping_yaml(map, "mapping.yaml");
    let net = read_workload_yaml(net, "workload.yaml");
    if let Ok(w) = &net {
        let yaml = write_workload_yaml(w);
        let again = read_workload_yaml(&yaml, "written.yaml")
            .unwrap_or_else(|e| panic!("qc's own ZigZag YAML does not read back: {e}\n{yaml}"));
        assert_eq!(write_workload_yaml(&again), yaml, "workload YAML round trip");
    }
    let (Ok(acc), Ok(map), Ok(net)) = (acc, map, net) else { return };
    let layers: Vec<&LoopNest> = net.layers.iter().take(3).collect();
    let opts = ExploreOptions {
        objective: Objective::Energy,
        spatial: SpatialOptions { count: Some(2), mixed: false },
        temporal: TemporalOptions { lpf_limit: Some(4), max_evaluations: Some(200), ..Default::default() },
        jobs: Some(1),
        onnx_dim_order: false,
        budget: None,
        cancel: None,
    };
    let _ = search_workload(&layers, &[&acc], &map, &opts, &|_| {});
}

/// Fuzz bytes read as a sequence of choices (building an input, not parsing one): each read
/// takes the next byte, 0 once they run out.
struct Choices<'a> {
    data: &'a [u8],
}

impl Choices<'_> {
    fn byte(&mut self) -> u8 {
        let (&b, rest) = self.data.split_first().unwrap_or((&0, &[]));
        self.data = rest;
        b
    }

    fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n
    }

    fn pick<T: Clone>(&mut self, from: &[T]) -> T {
        from[self.below(from.len())].clone()
    }

    fn flag(&mut self) -> bool {
        self.byte() & 1 == 1
    }
}

/// The dims the `dims` target builds with: empty, unit and small sizes, sizes at the 32-, 64-
/// and 128-bit edges of their products, and names.
const DIM_PALETTE: [&str; 16] = [
    "0",
    "1",
    "1",
    "2",
    "3",
    "4",
    "7",
    "16",
    "2147483648",
    "4294967296",
    "4611686018427387904",
    "9223372036854775807",
    "18446744073709551615",
    "N",
    "M",
    "?",
];

/// The attribute values the `dims` target builds with.
const INT_PALETTE: [i64; 12] = [0, 1, 1, 2, 3, -1, -2, 1 << 31, 1 << 32, 1 << 62, i64::MAX, i64::MIN];

/// A dim from the palette, or (when `like` is given, half of the time) the same as `like`.
fn dim(c: &mut Choices, like: Option<&str>) -> String {
    match like {
        Some(d) if c.flag() => d.to_string(),
        _ => c.pick(&DIM_PALETTE).to_string(),
    }
}

fn some_dims(c: &mut Choices, rank: usize) -> Vec<String> {
    (0..rank).map(|_| dim(c, None)).collect()
}

fn ints(c: &mut Choices, n: usize) -> String {
    let v: Vec<String> = (0..n).map(|_| c.pick(&INT_PALETTE).to_string()).collect();
    format!("[{}]", v.join(", "))
}

/// A model of one op built from fuzz choices, as textual IR, with the dims its MAC count is a
/// simple product of (MatMul and Gemm: `[M, K, N]`, without batch dims).
struct DimsModel {
    text: String,
    op: &'static str,
    matmul: Option<[String; 3]>,
}

/// Builds the `dims` target's model: one Conv, ConvTranspose, Gemm, MatMul, pooling,
/// element-wise or LSTM op on inputs (and optionally constant weights, declared without data)
/// whose dims and attributes come from the palettes.
fn dims_model(c: &mut Choices) -> DimsModel {
    const OPS: [&str; 10] = [
        "Conv",
        "ConvTranspose",
        "Gemm",
        "MatMul",
        "MaxPool",
        "AveragePool",
        "GlobalAveragePool",
        "Add",
        "Mul",
        "LSTM",
    ];
    let op = c.pick(&OPS);
    let mut inputs: Vec<(String, Vec<String>)> = Vec::new();
    let mut attrs: Vec<String> = Vec::new();
    let mut matmul = None;
    match op {
        "Conv" | "ConvTranspose" | "MaxPool" | "AveragePool" | "GlobalAveragePool" => {
            let spatial = 1 + c.below(2);
            let x = some_dims(c, 2 + spatial);
            if matches!(op, "Conv" | "ConvTranspose") {
                let mut w = vec![dim(c, None), dim(c, Some(&x[1]))];
                w.extend((0..spatial).map(|_| dim(c, None)));
                inputs.push(("x".into(), x));
                inputs.push(("w".into(), w));
                if c.flag() {
                    attrs.push(format!("group = {}", c.pick(&INT_PALETTE)));
                }
            } else {
                inputs.push(("x".into(), x));
            }
            if op != "GlobalAveragePool" {
                let mut keys = vec!["strides", "pads", "dilations", "kernel_shape"];
                if op == "ConvTranspose" {
                    keys.extend(["output_padding", "output_shape"]);
                }
                if matches!(op, "MaxPool" | "AveragePool") {
                    // Pooling needs a kernel; the other attributes are optional.
                    attrs.push(format!("kernel_shape = {}", ints(c, spatial)));
                    keys.pop();
                    if c.flag() {
                        attrs.push(format!("ceil_mode = {}", c.below(2)));
                    }
                }
                for key in keys {
                    if c.flag() {
                        let n = if key == "pads" { 2 * spatial } else { spatial };
                        attrs.push(format!("{key} = {}", ints(c, n)));
                    }
                }
                if c.byte().is_multiple_of(4) {
                    let pad = c.pick(&["SAME_UPPER", "SAME_LOWER", "VALID", "NOTSET"]);
                    attrs.push(format!("auto_pad = \"{pad}\""));
                }
            }
        }
        "Gemm" | "MatMul" => {
            let (m, k) = (dim(c, None), dim(c, None));
            let (k2, n) = (dim(c, Some(&k)), dim(c, None));
            let (ta, tb) = (op == "Gemm" && c.flag(), op == "Gemm" && c.flag());
            let mut a = if ta { vec![k.clone(), m.clone()] } else { vec![m.clone(), k.clone()] };
            if op == "MatMul" && c.flag() {
                a.insert(0, dim(c, None));
            }
            let b = if tb { vec![n.clone(), k2.clone()] } else { vec![k2.clone(), n.clone()] };
            if ta {
                attrs.push("transA = 1".into());
            }
            if tb {
                attrs.push("transB = 1".into());
            }
            inputs.push(("a".into(), a));
            inputs.push(("w".into(), b));
            if k == k2 {
                matmul = Some([m, k, n]);
            }
        }
        "Add" | "Mul" => {
            let rank = c.below(4);
            let a = some_dims(c, rank);
            let b: Vec<String> = a.iter().skip(c.below(rank + 1)).map(|d| dim(c, Some(d))).collect();
            inputs.push(("a".into(), a));
            inputs.push(("b".into(), b));
        }
        _ => {
            // LSTM: X [seq, batch, input], W [dirs, 4*hidden, input], R [dirs, 4*hidden, hidden].
            let x = some_dims(c, 3);
            let hidden = c.pick(&INT_PALETTE);
            let dirs = if c.flag() { "2" } else { "1" };
            if dirs == "2" {
                attrs.push("direction = \"bidirectional\"".into());
            }
            let gates = match u64::try_from(hidden).ok().and_then(|h| h.checked_mul(4)) {
                Some(g) if c.flag() => g.to_string(),
                _ => dim(c, None),
            };
            let h = if c.flag() { hidden.max(0).to_string() } else { dim(c, None) };
            let w = vec![dirs.to_string(), gates.clone(), dim(c, Some(&x[2]))];
            let r = vec![dirs.to_string(), gates, h];
            attrs.push(format!("hidden_size = {hidden}"));
            inputs.push(("x".into(), x));
            inputs.push(("w".into(), w));
            inputs.push(("r".into(), r));
        }
    }
    // Weights (every operand after the first) are constants declared without data or graph
    // inputs.
    // (A constant's dims are numbers of at most 2^63 - 1.)
    let constant = c.flag();
    let shape = |d: &[String]| format!("f32[{}]", d.join(","));
    let mut params = Vec::new();
    let mut inits = String::new();
    for (i, (name, d)) in inputs.iter().enumerate() {
        if i > 0 && constant && d.iter().all(|d| d.parse::<i64>().is_ok()) {
            inits.push_str(&format!("  init %{name} = {} external \"w.bin\" offset 0 {{}}\n", shape(d)));
        } else {
            params.push(format!("%{name}: {}", shape(d)));
        }
    }
    let operands: Vec<String> = inputs.iter().map(|(n, _)| format!("%{n}")).collect();
    let attrs = if attrs.is_empty() { String::new() } else { format!(" {{{}}}", attrs.join(", ")) };
    let text = format!(
        "ir_version 8\nopset_import \"\" 13\n\ngraph @g({}) -> (%y: ?) {{\n{inits}  %y = \"\"::{op}({}){attrs} name \"fuzzed\"\n}}\n",
        params.join(", "),
        operands.join(", ")
    );
    DimsModel { text, op, matmul }
}

/// The numbers of `dims`, or `None` when one is a name or unknown.
fn numbers(dims: &[String]) -> Option<Vec<u128>> {
    dims.iter().map(|d| d.parse::<u128>().ok()).collect()
}

/// The static dims of value `v` (a constant's, else its type's after shape inference), or `None`.
fn static_dims(model: &Model, v: qc_ir::ValueId) -> Option<Vec<u128>> {
    if let Some(qc_ir::Const::Dense(t)) = &model.graph.value(v).init {
        return Some(t.dims.iter().map(|&d| d.max(0) as u128).collect());
    }
    match model.graph.value(v).ty.as_ref()?.ty.as_ref()? {
        qc_ir::ValueType::Tensor { shape: Some(s), .. } => s
            .dims
            .iter()
            .map(|d| match d {
                qc_ir::Dim::Known(n) => Some(u128::from(*n)),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// `dims`: one op built from fuzz choices with large, empty and symbolic dims and edge
/// attributes (see [`dims_model`]), through shape inference and `qc cost`'s counting, the
/// lowering to loop nests and, for what lowers, a small mapping search on the built-in
/// `tpu_like` accelerator. Every pass runs with verification. A MatMul's, Gemm's or Conv's MAC
/// count, when `qc cost` reports one, is exactly the product of its dims (computed here in 128
/// bits: a count past 2^64 must be refused, never wrapped); so is the iteration count of a
/// lowered MatMul or Gemm.
pub fn dims(data: &[u8]) {
    let built = dims_model(&mut Choices { data });
    let model = parse_model(&built.text)
        .unwrap_or_else(|e| panic!("the built model does not parse: {e}\n{}", built.text));
    if !verify_model(&model).is_empty() {
        return;
    }
    let options = || ManagerOptions { verify_each: true, stop_after: None };
    let broke = |e: ManagerError| {
        if let e @ ManagerError::BrokeIr { .. } = e {
            panic!("{:?}\n{}", miette::Report::new(e), built.text);
        }
    };

    // `qc cost`.
    let mut counted = model.clone();
    match qc_passes::cost::preprocess(&mut counted, options()) {
        Err(e) => broke(e),
        Ok(_) => {
            let opts = qc_passes::cost::CostOptions { discount_sparsity: false, extended: true };
            let report = qc_passes::cost::inference_cost(&counted, &opts);
            let _ = qc::cost::text("fuzz.qcir", &report, true);
            let _ = qc::cost::json("fuzz.qcir", &report, true);
            for node in &report.nodes {
                let Some(&macs) = node.counts.get("total_macs") else { continue };
                let op = counted.graph.op(node.op);
                let dims_of =
                    |i: usize| op.inputs().get(i).copied().flatten().and_then(|v| static_dims(&counted, v));
                let out = op.outputs().first().copied().flatten().and_then(|v| static_dims(&counted, v));
                let exact: Option<u128> = match (op.op_type(), out) {
                    ("MatMul" | "Gemm", Some(out)) => {
                        let a = dims_of(0).unwrap_or_default();
                        let k = if op.attr_int("transA", 0).unwrap_or(0) != 0 { a.first() } else { a.last() };
                        k.map(|&k| out.iter().fold(k, |p, &d| p.saturating_mul(d)))
                    }
                    ("Conv", Some(out)) if out.len() >= 3 => {
                        let (x, w) = (dims_of(0).unwrap_or_default(), dims_of(1).unwrap_or_default());
                        let group = op.attr_int("group", 1).unwrap_or(1).max(1) as u128;
                        let kernel = match op.attr("kernel_shape").map(|a| &a.value) {
                            Some(qc_ir::AttrValue::Ints(k)) => k.iter().map(|&d| d.max(0) as u128).collect(),
                            _ => w.get(2..).unwrap_or_default().to_vec(),
                        };
                        x.get(1).map(|&ch| {
                            [out[0], out[1] / group, ch]
                                .into_iter()
                                .chain(kernel)
                                .chain(out[2..].iter().copied())
                                .fold(1u128, |p, d| p.saturating_mul(d))
                        })
                    }
                    _ => None,
                };
                if let Some(exact) = exact {
                    assert!(
                        exact <= u128::from(u64::MAX),
                        "{} MACs past 2^64 reported as {macs}\n{}",
                        exact,
                        built.text
                    );
                    assert_eq!(macs, exact as u64 as f64, "MAC count of `{}`\n{}", node.name, built.text);
                }
            }
        }
    }

    // `qc lower`, then the cost model.
    let mut lowered = model.clone();
    let p = Pipeline::parse(qc::lower::LOWER_PIPELINE).expect("a built-in pipeline parses");
    let report = match PassManager::new(p, options())
        .expect("a built-in pipeline")
        .run(&mut lowered, &mut |_, _| {})
    {
        Ok(report) => report,
        Err(e) => return broke(e),
    };
    let Some(w) = report.workload else { return };
    workload_round_trip(&w);
    let yaml = write_workload_yaml(&w);
    if let Err(e) = read_workload_yaml(&yaml, "lowered.yaml") {
        panic!("qc's own ZigZag YAML does not read back: {e}\n{yaml}");
    }
    if let Some([m, k, n]) = built.matmul.as_ref().and_then(|d| numbers(d)).map(|d| [d[0], d[1], d[2]]) {
        // A MatMul's batch dim, when its first operand has one.
        let Some(a) = static_dims(&model, model.graph.inputs[0]) else { return };
        let batch = if a.len() == 3 { a[0] } else { 1 };
        if let Some(layer) = w.layers.iter().find(|l| l.op_type == built.op) {
            let exact = [batch, m, k, n].iter().try_fold(1u128, |p, &d| p.checked_mul(d));
            assert_eq!(
                Some(layer.iterations()),
                exact,
                "iterations of the lowered {}\n{}",
                built.op,
                built.text
            );
        }
    }
    let layers: Vec<&LoopNest> = w.layers.iter().take(2).collect();
    if layers.is_empty() {
        return;
    }
    let acc = qc::accelerators::builtin("tpu_like").expect("tpu_like is built in").accelerator;
    let map = read_mapping_yaml("- name: default\n", "mapping.yaml").expect("the default mapping reads");
    let _ = search_workload(&layers, &[&acc], &map, &tiny_search(), &|_| {});
}

/// Search options that keep one search to milliseconds.
fn tiny_search() -> ExploreOptions {
    ExploreOptions {
        objective: Objective::Energy,
        spatial: SpatialOptions { count: Some(1), mixed: false },
        temporal: TemporalOptions { lpf_limit: Some(3), max_evaluations: Some(20), ..Default::default() },
        jobs: Some(1),
        onnx_dim_order: false,
        budget: None,
        cancel: None,
    }
}

/// The models the `run` target feeds: element-wise ops with a division (NaN and infinities
/// flow through), a MatMul by a constant, and a padded Conv followed by a Softmax, with named
/// dims that the inputs bind.
const RUN_MODELS: [&str; 2] = [
    "ir_version 8\nopset_import \"\" 13\n\n\
graph @g(%x: f32[N,4], %s: f32[N,4]) -> (%y: f32[N,3], %z: f32[N,4]) {\n\
  init %w = f32[4,3] floats [0.5, -1.0, 2.0, 0.25, 0.0, -0.5, 1.5, 3.0, -2.0, 1.0, 0.125, 4.0]\n\
  %t = \"\"::Add(%x, %s)\n\
  %y = \"\"::MatMul(%t, %w)\n\
  %z = \"\"::Div(%x, %s)\n\
}\n",
    "ir_version 8\nopset_import \"\" 13\n\n\
graph @g(%x: f32[B,2,H,W]) -> (%y: f32[B,3,H,W], %z: f32[B,3,H,W]) {\n\
  init %w = f32[3,2,1,2] floats [0.5, -1.0, 2.0, 0.25, 0.0, -0.5, 1.5, 3.0, -2.0, 1.0, 0.125, 4.0]\n\
  %y = \"\"::Conv(%x, %w) {pads = [0, 0, 0, 1]}\n\
  %z = \"\"::Softmax(%y) {axis = 1}\n\
}\n",
];

/// The `.npy` dtypes the `run` target writes, with their element sizes (`>f4` is refused).
const NPY_DTYPES: [(&str, usize); 7] =
    [("<f4", 4), ("<f4", 4), ("<f8", 8), ("<i8", 8), ("|u1", 1), ("|b1", 1), (">f4", 4)];

/// The values the `run` target writes (as `f32`, converted to the dtype's bytes).
const RUN_VALUES: [f64; 10] =
    [0.0, -0.0, 1.0, -2.5, 1e30, -1e-40, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 3.0];

/// A `.npy` file (version 1) with the header `dtype`, `dims` and fuzz-chosen data: as many
/// elements as the dims hold (up to 4096), sometimes a few bytes more or fewer.
fn npy_file(c: &mut Choices, dtype: (&str, usize), dims: &[i128]) -> Vec<u8> {
    let shape = match dims {
        [d] => format!("({d},)"),
        _ => format!("({})", dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let header = format!("{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}\n", dtype.0);
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    let count = dims.iter().try_fold(1i128, |p, &d| p.checked_mul(d.max(0))).unwrap_or(i128::MAX);
    let count = usize::try_from(count.min(4096)).unwrap_or(0);
    for _ in 0..count {
        let v = c.pick(&RUN_VALUES);
        match dtype {
            ("<f8", _) => out.extend_from_slice(&v.to_le_bytes()),
            ("<i8", _) => out.extend_from_slice(&(v as i64).to_le_bytes()),
            (_, 1) => out.push(v as u8),
            _ => out.extend_from_slice(&(v as f32).to_le_bytes()),
        }
    }
    match c.byte() {
        0 => {
            out.pop();
        }
        1 => out.push(0),
        _ => {}
    }
    out
}

/// `run`: `qc run`'s inputs. The first byte chooses the model ([`RUN_MODELS`]) and whether the
/// rest is a `.npy` file as is (its one tensor given to the first input, the others built) or
/// choices building every input: dtype, rank, dims (the declared ones, other sizes, huge and
/// negative ones) and values (NaN, infinities, subnormals). Every `.npy` file is read by
/// `qc run`'s reader, the inputs are checked as `qc run` checks them, and accepted ones run in
/// the evaluator. Errors are fine (diagnostics); a run that succeeds gives every graph output,
/// shaped as declared, with each dim name bound as the inputs bind it.
pub fn run(data: &[u8]) {
    let (&first, rest) = data.split_first().unwrap_or((&0, &[]));
    let text = RUN_MODELS[usize::from(first >> 1) % RUN_MODELS.len()];
    let model = parse_model(text).expect("a fuzz model parses");
    let raw = first & 1 == 1;
    let mut c = Choices { data: if raw { &[] } else { rest } };
    let g = &model.graph;
    let mut given: Vec<(String, qc_ir::Tensor)> = Vec::new();
    for (i, &v) in g.inputs.iter().enumerate() {
        let name = g.value(v).name.clone();
        let file = if raw && i == 0 {
            rest.to_vec()
        } else {
            let declared: Vec<i128> = match g.value(v).ty.as_ref().and_then(|t| t.ty.as_ref()) {
                Some(qc_ir::ValueType::Tensor { shape: Some(s), .. }) => s
                    .dims
                    .iter()
                    .map(|d| match d {
                        qc_ir::Dim::Known(n) => i128::from(*n),
                        _ => 2,
                    })
                    .collect(),
                _ => vec![],
            };
            let rank = if c.byte() < 224 { declared.len() } else { c.below(6) };
            let dims: Vec<i128> = (0..rank)
                .map(|k| match (c.byte() % 8, declared.get(k)) {
                    (0..=4, Some(&d)) => d,
                    (5, _) => i128::from(c.byte() % 6),
                    (6, _) => i128::from(c.pick(&INT_PALETTE)),
                    _ => c.pick(&[1i128 << 32, 1 << 62, u64::MAX.into(), -1]),
                })
                .collect();
            let dtype = if c.byte() < 192 { NPY_DTYPES[0] } else { c.pick(&NPY_DTYPES) };
            npy_file(&mut c, dtype, &dims)
        };
        match qc::npy::read(&file, "input.npy", &name) {
            Ok(t) => given.push((name, t)),
            Err(_) => return,
        }
    }
    if !qc::run::input_problems(g, &given).is_empty() {
        return;
    }
    let mut bound: Vec<(String, qc_passes::eval::Array)> = Vec::new();
    for (name, t) in &given {
        match qc_passes::eval::Array::from_tensor(t, &model) {
            Ok(a) => bound.push((name.clone(), a)),
            Err(_) => return,
        }
    }
    let Ok(outputs) = qc_passes::eval::run_graph(&model, &bound) else { return };
    // The size each dim name stands for, from the inputs.
    let mut sizes: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (name, a) in &bound {
        let v = g.inputs.iter().find(|&&v| g.value(v).name == *name).expect("a bound input");
        if let Some(qc_ir::ValueType::Tensor { shape: Some(s), .. }) =
            g.value(*v).ty.as_ref().and_then(|t| t.ty.as_ref())
        {
            for (d, &n) in s.dims.iter().zip(&a.dims) {
                if let qc_ir::Dim::Sym(sym) = d {
                    sizes.insert(sym.clone(), n);
                }
            }
        }
    }
    assert_eq!(outputs.len(), g.outputs.len(), "one value per graph output");
    for ((name, a), &v) in outputs.iter().zip(&g.outputs) {
        assert_eq!(*name, g.value(v).name, "outputs in graph order");
        let Some(qc_ir::ValueType::Tensor { shape: Some(s), .. }) =
            g.value(v).ty.as_ref().and_then(|t| t.ty.as_ref())
        else {
            continue;
        };
        let want: Vec<Option<usize>> = s
            .dims
            .iter()
            .map(|d| match d {
                qc_ir::Dim::Known(n) => usize::try_from(*n).ok(),
                qc_ir::Dim::Sym(sym) => sizes.get(sym).copied(),
                qc_ir::Dim::Unknown => None,
            })
            .collect();
        assert_eq!(a.dims.len(), want.len(), "rank of output `{name}`: {:?} for {s:?}", a.dims);
        for (got, want) in a.dims.iter().zip(&want) {
            if let Some(want) = want {
                assert_eq!(got, want, "output `{name}` is {:?}, declared {s:?} (bound: {sizes:?})", a.dims);
            }
        }
        assert_eq!(a.len(), a.dims.iter().product::<usize>(), "output `{name}` holds its dims' elements");
    }
}

/// The workload the `mapping` target maps: ZigZag's own `gemm_layer` and a small padded
/// convolution.
const MAPPING_NET: &str = "\
- id: 0
  operator_type: Gemm
  equation: O[d0][d1]+=I[d0][d2]*W[d2][d1]
  dimension_relations: []
  loop_dims: [D0, D1, D2]
  loop_sizes: [128, 128, 128]
  operand_precision: {W: 8, I: 8, O: 32, O_final: 8}
  operand_source: {I: 0, W: 0}
- id: 1
  name: conv
  operator_type: Conv
  equation: O[b][g][k][oy][ox]+=W[g][k][c][fy][fx]*I[b][g][c][iy][ix]
  dimension_relations: [ix=2*ox+1*fx, iy=2*oy+1*fy]
  loop_dims: [B, K, G, OX, OY, C, FX, FY]
  loop_sizes: [1, 32, 1, 14, 14, 16, 3, 3]
  operand_precision: {W: 8, I: 8, O: 16, O_final: 8}
  operand_source: {I: 0, W: 1}
  pr_loop_dims: [IX, IY]
  pr_loop_sizes: [29, 29]
  padding: [[1, 1], [1, 1]]
";

/// `mapping`: text as a ZigZag mapping file, read and checked against the built-in `tpu_like`
/// accelerator and [`MAPPING_NET`] as `qc evaluate` checks it; a mapping that fits is evaluated
/// as written (`--fixed-mapping`) on every layer whose entry gives a spatial mapping, and
/// drives a small mapping search. Errors are fine (diagnostics).
pub fn mapping(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(map) = read_mapping_yaml(text, "mapping.yaml") else { return };
    let net = read_workload_yaml(MAPPING_NET, "workload.yaml").expect("the mapping target's workload reads");
    let acc = qc::accelerators::builtin("tpu_like").expect("tpu_like is built in").accelerator;
    let layers: Vec<&LoopNest> = net.layers.iter().collect();
    let fit = qc_backends::zigzag::check_mapping_fit(text, "mapping.yaml", &map, &layers, &[], &acc);
    if !fit.errors.is_empty() {
        return;
    }
    let opts = qc_backends::cost::CostOptions::default();
    for layer in &layers {
        if map.entry_for(&layer.name, &layer.op_type).is_some_and(|e| e.spatial.is_some()) {
            let _ = qc::evaluate::cost_fixed_mapping(
                layer,
                &acc,
                &map,
                &opts,
                qc_backends::cost::MappingType::Uneven,
            );
        }
    }
    let _ = search_workload(&layers, &[&acc], &map, &tiny_search(), &|_| {});
}
