//! Helpers for qc's integration, conformance and snapshot tests.
//!
//! Suites that read the reference material in `../shared` (beside the project) find it with
//! [`shared_dir`]; when it is missing they say so plainly on stderr and check nothing else.

use std::path::{Path, PathBuf};

pub mod browser;
pub mod fixtures;
pub mod fuzz;
pub mod zigzag_results;

/// The shared reference folder: `$QC_SHARED`, or `../shared` beside the workspace.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("QC_SHARED") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"),
    };
    dir.is_dir().then_some(dir)
}

/// Like [`shared_dir`], but prints why a suite checks nothing when the folder is missing.
pub fn shared_or_say(suite: &str) -> Option<PathBuf> {
    let d = shared_dir();
    if d.is_none() {
        eprintln!("{suite}: ../shared is missing (set QC_SHARED to its path); this suite checked nothing");
    }
    d
}

/// A path recorded in a ZigZag run summary: relative to the repository when it names a file the
/// project keeps under `bench/`, else relative to `peers/zigzag-inputs` (`root`).
pub fn summary_path(root: &Path, recorded: &str) -> PathBuf {
    if recorded.starts_with("bench/") {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(recorded)
    } else {
        root.join(recorded)
    }
}

/// Every file under `dir` whose name ends with `suffix`, sorted.
pub fn files_under(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(suffix) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The ops issue 3 asks shape inference and the reference evaluator to cover (default domain,
/// plus the QONNX ops). A node test of the ONNX backend suite counts towards the conformance
/// denominators when every op in its model is in this list.
pub const ISSUE3_OPS: &[&str] = &[
    "Abs",
    "Add",
    "And",
    "ArgMax",
    "ArgMin",
    "AveragePool",
    "BatchNormalization",
    "Cast",
    "Ceil",
    "Clip",
    "Concat",
    "Constant",
    "ConstantOfShape",
    "Conv",
    "ConvTranspose",
    "DepthToSpace",
    "DequantizeLinear",
    "Div",
    "Dropout",
    "Einsum",
    "Elu",
    "Equal",
    "Erf",
    "Exp",
    "Expand",
    "Flatten",
    "Floor",
    "Gather",
    "GatherElements",
    "Gelu",
    "Gemm",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "Greater",
    "HardSigmoid",
    "HardSwish",
    "Identity",
    "InstanceNormalization",
    "LayerNormalization",
    "LeakyRelu",
    "Less",
    "Log",
    "LRN",
    "MatMul",
    "MatMulInteger",
    "ConvInteger",
    "Max",
    "MaxPool",
    "Mean",
    "Min",
    "Mod",
    "Mul",
    "Neg",
    "Not",
    "Or",
    "Pad",
    "Pow",
    "PRelu",
    "QLinearConv",
    "QLinearMatMul",
    "QuantizeLinear",
    "Range",
    "Reciprocal",
    "ReduceL2",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceProd",
    "ReduceSum",
    "Relu",
    "Reshape",
    "Resize",
    "Shape",
    "Sigmoid",
    "Sign",
    "Sin",
    "Cos",
    "Size",
    "Slice",
    "Softmax",
    "Softplus",
    "SpaceToDepth",
    "Split",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Sum",
    "Tanh",
    "Tile",
    "TopK",
    "Transpose",
    "Trilu",
    "Unsqueeze",
    "Upsample",
    "Where",
    "Xor",
    "Quant",
    "BipolarQuant",
    "Trunc",
    "FloatQuant",
    "MultiThreshold",
];

/// The ops issue 19 adds to shape inference and the evaluator: control flow and recurrent
/// layers. Their node tests are those whose names start with one of [`ISSUE19_PREFIXES`].
pub const ISSUE19_CONTROL_OPS: &[&str] = &["If", "Loop", "Scan", "LSTM", "GRU", "RNN"];

/// The names of the ONNX backend node tests of [`ISSUE19_CONTROL_OPS`] start with one of these.
pub const ISSUE19_PREFIXES: &[&str] =
    &["test_if", "test_loop", "test_scan", "test_lstm_", "test_gru_", "test_rnn_", "test_simple_rnn_"];

/// The node tests of [`ISSUE19_CONTROL_OPS`], sorted by name.
pub fn issue19_cases(shared: &Path) -> Vec<BackendCase> {
    backend_node_cases(shared)
        .into_iter()
        .filter(|c| ISSUE19_PREFIXES.iter().any(|p| c.name.starts_with(p)))
        .collect()
}

// ---- Issue 19, standard ops real exporters write (keep this block separate) ----

/// The default-domain ops issue 19 adds to shape inference and the evaluator. A node test counts
/// towards the issue-19 conformance denominators when it uses at least one of them and every op
/// of its model is in this list or in [`ISSUE3_OPS`].
pub const ISSUE19_OPS: &[&str] = &[
    "DynamicQuantizeLinear",
    "MatMulInteger",
    "ConvInteger",
    "STFT",
    "Tan",
    "Asin",
    "Acos",
    "Atan",
    "Sinh",
    "Cosh",
    "Asinh",
    "Acosh",
    "Atanh",
    "Round",
    "NonZero",
    "ScatterND",
    "ScatterElements",
    "Scatter",
    "CumSum",
];

/// Whether `model` uses an op of [`ISSUE19_OPS`] and only ops of it or of [`ISSUE3_OPS`].
pub fn uses_issue19_ops(model: &qc_ir::Model) -> bool {
    let (mut ok, mut any) = (true, false);
    let mut check = |g: &qc_ir::Graph| {
        for (_, op) in g.ops() {
            let t = op.op_type();
            let default = op.domain().is_empty();
            any |= default && ISSUE19_OPS.contains(&t);
            let qonnx = qc_ir::op::QONNX_DOMAINS.contains(&op.domain());
            if !(default || qonnx) || !(ISSUE3_OPS.contains(&t) || ISSUE19_OPS.contains(&t)) {
                ok = false;
            }
        }
    };
    check(&model.graph);
    model.graph.visit_subgraphs(&mut check);
    ok && any
}

// ---- end of issue 19 ----

/// One test of the ONNX backend suite (`conformance/onnx-backend/node/<name>/`).
#[derive(Debug, Clone)]
pub struct BackendCase {
    pub name: String,
    pub dir: PathBuf,
    pub model: PathBuf,
    /// `test_data_set_N` folders, sorted.
    pub data_sets: Vec<PathBuf>,
}

impl BackendCase {
    /// The `input_K.pb` (or `output_K.pb`) files of a data set, in K order.
    pub fn tensor_files(data_set: &Path, prefix: &str) -> Vec<PathBuf> {
        let mut files: Vec<(usize, PathBuf)> = std::fs::read_dir(data_set)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let k = name.strip_prefix(prefix)?.strip_suffix(".pb")?.parse().ok()?;
                Some((k, e.path()))
            })
            .collect();
        files.sort();
        files.into_iter().map(|(_, p)| p).collect()
    }

    /// Decodes a `.pb` file holding a `TensorProto` into an IR tensor (`None` if it is not a
    /// plain tensor, such as the sequences and optionals of a few tests).
    pub fn read_tensor(path: &Path) -> Option<qc_ir::Tensor> {
        use prost::Message;
        let bytes = std::fs::read(path).ok()?;
        let proto = qc::onnx::proto::TensorProto::decode(bytes.as_slice()).ok()?;
        qc::onnx::import_tensor(proto).ok()
    }
}

/// Every node test under `<shared>/conformance/onnx-backend/node`, sorted by name.
pub fn backend_node_cases(shared: &Path) -> Vec<BackendCase> {
    let root = shared.join("conformance/onnx-backend/node");
    let mut cases: Vec<BackendCase> = std::fs::read_dir(&root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join("model.onnx").is_file())
        .map(|e| {
            let dir = e.path();
            let mut data_sets: Vec<PathBuf> = std::fs::read_dir(&dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|d| d.path())
                .filter(|p| {
                    p.is_dir()
                        && p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("test_data_set_"))
                })
                .collect();
            data_sets.sort();
            BackendCase {
                name: e.file_name().to_string_lossy().into_owned(),
                model: dir.join("model.onnx"),
                dir,
                data_sets,
            }
        })
        .collect();
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    cases
}

/// Whether every op of `model` (main graph and subgraphs) is in [`ISSUE3_OPS`].
pub fn uses_only_issue3_ops(model: &qc_ir::Model) -> bool {
    let mut ok = true;
    let mut check = |g: &qc_ir::Graph| {
        for (_, op) in g.ops() {
            let qonnx = qc_ir::op::QONNX_DOMAINS.contains(&op.domain());
            if !(op.domain().is_empty() || qonnx) || !ISSUE3_OPS.contains(&op.op_type()) {
                ok = false;
            }
        }
    };
    check(&model.graph);
    model.graph.visit_subgraphs(&mut check);
    ok
}

/// The graph inputs a test must fill (those without an initializer): name, element type and
/// dims. A symbolic or unknown dim becomes `symbolic`, or is an error when that is `None`.
pub fn free_inputs(
    m: &qc_ir::Model,
    symbolic: Option<usize>,
) -> Result<Vec<(String, qc_ir::ElemType, Vec<usize>)>, String> {
    let g = &m.graph;
    let mut out = Vec::new();
    for &v in &g.inputs {
        let value = g.value(v);
        if value.init.is_some() {
            continue;
        }
        let Some(qc_ir::ValueType::Tensor { elem: Some(elem), shape: Some(shape) }) =
            value.ty.as_ref().and_then(|t| t.ty.clone())
        else {
            return Err(format!("input `{}` has no static tensor type", value.name));
        };
        let dims = shape
            .dims
            .iter()
            .map(|d| match (d, symbolic) {
                (qc_ir::Dim::Known(n), _) => Ok(*n as usize),
                (_, Some(s)) => Ok(s),
                (_, None) => Err(format!("input `{}` has symbolic or unknown dims {shape}", value.name)),
            })
            .collect::<Result<Vec<usize>, String>>()?;
        out.push((value.name.clone(), elem, dims));
    }
    Ok(out)
}

/// Runs both models with the reference evaluator on the same inputs (a fixed pattern for every
/// graph input without an initializer) and panics unless every output agrees (1e-5 absolute and
/// relative for floats, exact otherwise). Proves that a rewrite kept the model's function.
pub fn assert_same_outputs(before: &qc_ir::Model, after: &qc_ir::Model) {
    use qc_passes::eval::{Array, run_graph};
    let mut inputs = Vec::new();
    for (name, elem, dims) in free_inputs(before, None).unwrap_or_else(|e| panic!("{e}: it cannot be filled"))
    {
        let n: usize = dims.iter().product();
        let pattern: Vec<f64> = (0..n).map(|i| ((i * 7 + 3) % 11) as f64 / 4.0 - 1.0).collect();
        inputs.push((name, Array::from_f64s(elem, dims, pattern).expect("fill input")));
    }
    let x = run_graph(before, &inputs).unwrap_or_else(|e| panic!("before: {e}"));
    let y = run_graph(after, &inputs).unwrap_or_else(|e| panic!("after: {e}"));
    assert_eq!(x.len(), y.len());
    for ((n, a), (_, b)) in x.iter().zip(&y) {
        assert_eq!((a.elem, &a.dims), (b.elem, &b.dims), "output `{n}` changed type or shape");
        let (va, vb) = (a.to_f64().unwrap(), b.to_f64().unwrap());
        for (i, (p, q)) in va.iter().zip(&vb).enumerate() {
            let ok = p == q || (p.is_nan() && q.is_nan()) || (p - q).abs() <= 1e-5 + 1e-5 * q.abs();
            assert!(ok, "output `{n}`[{i}]: {p} before, {q} after");
        }
    }
}

/// Runs `qc ARGS...` in-process through `qc::cli::main_with` (all `main` does), without colour:
/// the exit code, standard output and standard error.
pub fn qc(args: &[&str]) -> (u8, String, String) {
    let mut argv: Vec<std::ffi::OsString> = vec!["qc".into()];
    argv.extend(args.iter().map(Into::into));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = qc::cli::main_with(argv, &mut out, &mut err, false);
    (code, String::from_utf8_lossy(&out).into_owned(), String::from_utf8_lossy(&err).into_owned())
}
