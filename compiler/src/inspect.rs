//! `qc inspect`: a summary of a model (the JSON schema is in `spec/cli.md`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use qc_ir::{Graph, Model, OpKind, ValueId, ValueType};
use serde::Serialize;

use crate::load::{ExternalFile, Loaded};

/// Version of the JSON document `qc inspect --format json` writes.
pub const SCHEMA_VERSION: u32 = 1;

/// Attributes of the ACCESS DLA fixed-point flow (reference/access-dla-fixed-point-onnx-guide.md).
pub const ACCESS_ATTRIBUTES: [&str; 15] = [
    "input_scale",
    "input_bitdepth",
    "weight_scale",
    "bias_scale",
    "weight_bitdepth",
    "weight_ch_scales",
    "output_scale",
    "output_bitdepth",
    "bias_bitdepth",
    "A_scale",
    "A_bitdepth",
    "B_scale",
    "B_bitdepth",
    "weight_bit",
    "activation_bit",
];

/// Attributes ZigZag reads precisions from (reference/zigzag-workload-docs.txt).
pub const ZIGZAG_ATTRIBUTES: [&str; 3] = ["weight_size", "act_size", "output_size"];

#[derive(Debug, Serialize)]
pub struct InspectReport {
    pub schema_version: u32,
    pub file: String,
    pub file_bytes: u64,
    pub ir_version: Option<i64>,
    pub producer_name: Option<String>,
    pub producer_version: Option<String>,
    pub domain: Option<String>,
    pub model_version: Option<i64>,
    pub graph_name: Option<String>,
    pub opset_imports: Vec<OpsetEntry>,
    pub inputs: Vec<ValueEntry>,
    pub outputs: Vec<ValueEntry>,
    /// Ops in the main graph.
    pub nodes: usize,
    /// Ops in nested graphs (If/Loop/Scan bodies), functions and training graphs.
    pub nested_nodes: usize,
    pub op_histogram: Vec<OpCount>,
    pub initializers: usize,
    pub parameters: u64,
    pub parameter_bytes: u64,
    pub quantization: Vec<QuantStyle>,
    pub external_data: Vec<ExternalFile>,
    pub functions: usize,
    pub metadata: BTreeMap<String, String>,
    pub warnings: Vec<String>,
    /// Contradictions shape inference finds in the model (`code: node: message`), which the
    /// other commands refuse without `--allow-shape-errors`; omitted when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shape_errors: Vec<String>,
    /// With `--quant`: every value with a datatype, after `infer-shapes`, `absorb-quant` and
    /// `infer-datatypes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quant_values: Option<Vec<QuantValue>>,
}

/// One value's quantization, for `qc inspect --quant`.
#[derive(Debug, Serialize)]
pub struct QuantValue {
    pub name: String,
    /// QONNX datatype name: `INT8`, `SCALEDINT<4>`, `BIPOLAR`, `FLOAT32`, ...
    pub datatype: String,
    /// `0.5`, or `axis 0: 64 values in [0.001, 0.04]`; null without a scale.
    pub scale: Option<String>,
    pub zero_point: Option<String>,
    pub narrow: bool,
    pub rounding: String,
    /// Where the description came from: `qonnx_quant`, `onnx_qdq`, `access_attributes`, ...
    pub origin: String,
}

/// The pipeline `--quant` runs on a copy of the model.
pub const QUANT_PIPELINE: &str = "infer-shapes,absorb-quant,infer-datatypes";

/// A scale or zero point in a few words.
fn param_summary(p: &qc_ir::QuantParam) -> String {
    use qc_ir::QuantParam;
    let range = |v: &[f64]| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if lo == hi { format!("all {lo}") } else { format!("in [{lo}, {hi}]") }
    };
    match p {
        QuantParam::PerTensor(x) if *x > 0.0 && x.log2().fract() == 0.0 => format!("{x} (2^{})", x.log2()),
        QuantParam::PerTensor(x) => format!("{x}"),
        QuantParam::PerAxis { axis, values } => {
            format!("axis {axis}: {} values {}", values.len(), range(values))
        }
        QuantParam::Blocked { axis, block_size, values, .. } => {
            format!("axis {axis}, blocks of {block_size}: {} values {}", values.len(), range(values))
        }
    }
}

/// The contradictions `infer-shapes` finds in the model (run on a copy), as `code: message`.
pub fn shape_errors(model: &Model) -> Result<Vec<String>, qc_passes::ManagerError> {
    let mut m = model.clone();
    let pipeline = qc_passes::Pipeline::parse("infer-shapes").expect("the pipeline parses");
    let opts = qc_passes::ManagerOptions { verify_each: false, stop_after: None };
    let report = qc_passes::PassManager::new(pipeline, opts)?.run(&mut m, &mut |_, _| {})?;
    Ok(crate::shape_errors::contradictions(&report.warnings)
        .into_iter()
        .map(|w| format!("{}: {}", w.code, w.message))
        .collect())
}

/// Runs [`QUANT_PIPELINE`] on a copy of the model and lists every value with a datatype: graph
/// inputs, op outputs in graph order, then initializers.
pub fn quant_values(model: &Model) -> Result<Vec<QuantValue>, qc_passes::ManagerError> {
    let mut m = model.clone();
    let pipeline = qc_passes::Pipeline::parse(QUANT_PIPELINE).expect("the pipeline parses");
    let opts = qc_passes::ManagerOptions { verify_each: false, stop_after: None };
    qc_passes::PassManager::new(pipeline, opts)?.run(&mut m, &mut |_, _| {})?;
    let g = &m.graph;
    let mut order: Vec<ValueId> = g.inputs.clone();
    for (_, op) in g.ops() {
        order.extend(op.outputs().iter().flatten());
    }
    order.extend(&g.initializers);
    let mut seen = std::collections::HashSet::new();
    Ok(order
        .into_iter()
        .filter(|v| seen.insert(*v))
        .filter_map(|v| {
            let val = g.value(v);
            let q = val.quant.as_ref()?;
            Some(QuantValue {
                name: val.name.clone(),
                datatype: q.dtype.name(),
                scale: q.scale.as_ref().map(param_summary),
                zero_point: q.zero_point.as_ref().map(param_summary),
                narrow: q.narrow,
                rounding: q.rounding.name().to_string(),
                origin: q.origin.name().to_string(),
            })
        })
        .collect())
}

/// The `--quant` table.
pub fn render_quant(values: &[QuantValue]) -> String {
    let mut s = format!("\nquantization ({} values)\n", values.len());
    let w0 = values.iter().map(|v| v.name.len()).max().unwrap_or(0).min(48);
    let w1 = values.iter().map(|v| v.datatype.len()).max().unwrap_or(0);
    let w2 = values.iter().map(|v| v.origin.len()).max().unwrap_or(0);
    for v in values {
        let mut extra = Vec::new();
        if let Some(sc) = &v.scale {
            extra.push(format!("scale {sc}"));
        }
        if let Some(z) = &v.zero_point {
            extra.push(format!("zero point {z}"));
        }
        if v.narrow {
            extra.push("narrow".into());
        }
        let line = format!("  {:<w0$}  {:<w1$}  {:<w2$}  {}", v.name, v.datatype, v.origin, extra.join(", "));
        let _ = writeln!(s, "{}", line.trim_end());
    }
    s
}

#[derive(Debug, Serialize)]
pub struct OpsetEntry {
    pub domain: String,
    pub version: Option<i64>,
}

#[derive(Debug, Serialize)]
pub struct ValueEntry {
    pub name: String,
    /// The declared type as qc prints it, e.g. `f32[1,3,224,224]`.
    #[serde(rename = "type")]
    pub ty: String,
    pub elem_type: Option<String>,
    /// Dimensions: numbers for fixed sizes, strings for symbolic ones, null for unknown;
    /// null for the whole shape when the rank is unknown.
    pub shape: Option<Vec<serde_json::Value>>,
    pub has_initializer: bool,
}

#[derive(Debug, Serialize)]
pub struct OpCount {
    /// `ai.onnx` for the default domain.
    pub domain: String,
    pub op_type: String,
    pub count: usize,
}

/// One way quantization is written in the model, and how often it appears.
#[derive(Debug, Serialize)]
pub struct QuantStyle {
    /// `qonnx`, `qdq`, `qlinear`, `integer-ops`, `access-attributes`, `zigzag-attributes`,
    /// `onnx-quantization-annotation`.
    pub style: String,
    /// What was found, e.g. `Quant x21` or `output_scale on 7 nodes`.
    pub found: Vec<String>,
}

/// Builds the report for a loaded model.
pub fn inspect(loaded: &Loaded, file: &str) -> InspectReport {
    let m = &loaded.model;
    let g = &m.graph;
    let (parameters, parameter_bytes) = g.parameter_totals();
    let mut hist: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (_, op) in g.ops() {
        let d = if op.domain().is_empty() { "ai.onnx" } else { op.domain() };
        *hist.entry((d.to_string(), op.op_type().to_string())).or_default() += 1;
    }
    let mut op_histogram: Vec<OpCount> =
        hist.into_iter().map(|((domain, op_type), count)| OpCount { domain, op_type, count }).collect();
    op_histogram
        .sort_by(|a, b| a.domain.cmp(&b.domain).then(b.count.cmp(&a.count)).then(a.op_type.cmp(&b.op_type)));
    let mut nested_nodes = 0;
    for top in m.top_graphs() {
        if !std::ptr::eq(top, g) {
            nested_nodes += top.op_count();
        }
        top.visit_subgraphs(&mut |s| nested_nodes += s.op_count());
    }
    InspectReport {
        schema_version: SCHEMA_VERSION,
        file: file.to_string(),
        file_bytes: loaded.file_bytes,
        ir_version: m.ir_version,
        producer_name: m.producer_name.clone(),
        producer_version: m.producer_version.clone(),
        domain: m.domain.clone(),
        model_version: m.model_version,
        graph_name: g.name.clone(),
        opset_imports: m
            .opset_imports
            .iter()
            .map(|o| OpsetEntry {
                domain: match o.domain.as_deref() {
                    None | Some("") => "ai.onnx".into(),
                    Some(d) => d.into(),
                },
                version: o.version,
            })
            .collect(),
        inputs: g.inputs.iter().map(|&v| value_entry(g, v)).collect(),
        outputs: g.outputs.iter().map(|&v| value_entry(g, v)).collect(),
        nodes: g.op_count(),
        nested_nodes,
        op_histogram,
        initializers: g.initializers.len() + g.sparse_initializers.len(),
        parameters,
        parameter_bytes,
        quantization: quant_styles(m),
        external_data: loaded.external_files.clone(),
        functions: m.functions.len(),
        metadata: m.metadata.iter().map(|e| (e.key.clone(), e.value.clone())).collect(),
        warnings: loaded.warnings.iter().map(|w| w.to_string()).collect(),
        shape_errors: Vec::new(),
        quant_values: None,
    }
}

fn value_entry(g: &Graph, id: ValueId) -> ValueEntry {
    let v = g.value(id);
    let (elem_type, shape) = match v.ty.as_ref().and_then(|t| t.ty.as_ref()) {
        Some(ValueType::Tensor { elem, shape }) => (
            elem.map(|e| e.name()),
            shape.as_ref().map(|s| {
                s.dims
                    .iter()
                    .map(|d| match d {
                        qc_ir::Dim::Known(n) => serde_json::Value::from(*n),
                        qc_ir::Dim::Sym(s) => serde_json::Value::from(s.clone()),
                        qc_ir::Dim::Unknown => serde_json::Value::Null,
                    })
                    .collect()
            }),
        ),
        _ => (None, None),
    };
    ValueEntry {
        name: v.name.clone(),
        ty: v.ty.as_ref().map_or("?".into(), |t| t.to_string()),
        elem_type,
        shape,
        has_initializer: v.init.is_some(),
    }
}

fn quant_styles(m: &Model) -> Vec<QuantStyle> {
    let mut kinds: BTreeMap<&'static str, BTreeMap<String, usize>> = BTreeMap::new();
    let mut note =
        |style: &'static str, what: String| *kinds.entry(style).or_default().entry(what).or_default() += 1;
    let mut graphs: Vec<&Graph> = Vec::new();
    for top in m.top_graphs() {
        graphs.push(top);
        top.visit_subgraphs(&mut |s| graphs.push(s));
    }
    let mut annotations = 0;
    for g in graphs {
        annotations += g.quantization_annotations.len();
        for (_, op) in g.ops() {
            let style = match op.kind() {
                OpKind::Quant
                | OpKind::IntQuant
                | OpKind::BipolarQuant
                | OpKind::Trunc
                | OpKind::FloatQuant
                | OpKind::MultiThreshold => Some("qonnx"),
                OpKind::QuantizeLinear | OpKind::DequantizeLinear => Some("qdq"),
                OpKind::QLinearConv | OpKind::QLinearMatMul => Some("qlinear"),
                OpKind::ConvInteger | OpKind::MatMulInteger => Some("integer-ops"),
                _ => None,
            };
            if let Some(s) = style {
                note(s, op.op_type().to_string());
            }
            for a in &op.attrs {
                if ACCESS_ATTRIBUTES.contains(&a.name.as_str()) {
                    note("access-attributes", a.name.clone());
                }
                if ZIGZAG_ATTRIBUTES.contains(&a.name.as_str()) {
                    note("zigzag-attributes", a.name.clone());
                }
            }
            // The ACCESS attributes may also be written as node metadata (spec/fixed_point.md).
            for e in &op.metadata {
                if ACCESS_ATTRIBUTES.contains(&e.key.as_str()) {
                    note("access-attributes", e.key.clone());
                }
            }
        }
    }
    let mut out: Vec<QuantStyle> =
        kinds
            .into_iter()
            .map(|(style, found)| {
                let attr_style = style.ends_with("attributes");
                QuantStyle {
                    style: style.to_string(),
                    found: found
                        .into_iter()
                        .map(|(what, n)| {
                            if attr_style { format!("{what} on {n} node(s)") } else { format!("{what} x{n}") }
                        })
                        .collect(),
                }
            })
            .collect();
    if annotations > 0 {
        out.push(QuantStyle {
            style: "onnx-quantization-annotation".into(),
            found: vec![format!("{annotations} annotated tensor(s)")],
        });
    }
    out
}

/// The whole `qc inspect` report of a loaded model: the summary, the shape contradictions, and
/// with `quant` every value's quantization.
pub fn report(loaded: &Loaded, file: &str, quant: bool) -> Result<InspectReport, qc_passes::ManagerError> {
    let mut report = inspect(loaded, file);
    report.shape_errors = shape_errors(&loaded.model)?;
    if quant {
        report.quant_values = Some(quant_values(&loaded.model)?);
    }
    Ok(report)
}

/// Formats a byte count with a binary unit.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[u]) }
}

/// Formats a count with a metric suffix (`1.2 M`).
pub fn human_count(n: u64) -> String {
    match n {
        0..1_000 => n.to_string(),
        1_000..1_000_000 => format!("{:.1} k", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.2} M", n as f64 / 1e6),
        _ => format!("{:.2} G", n as f64 / 1e9),
    }
}

/// The text form of the report.
pub fn render_text(r: &InspectReport) -> String {
    let mut s = String::new();
    let opt = |o: &Option<String>| o.clone().filter(|x| !x.is_empty());
    let _ = writeln!(s, "model       {} ({})", r.file, human_bytes(r.file_bytes));
    let producer = match (opt(&r.producer_name), opt(&r.producer_version)) {
        (Some(n), Some(v)) => format!("{n} {v}"),
        (Some(n), None) => n,
        _ => "unknown".into(),
    };
    let ir = r.ir_version.map_or("?".into(), |v| v.to_string());
    let _ = writeln!(s, "ir version  {ir}   producer {producer}");
    let opsets: Vec<String> = r
        .opset_imports
        .iter()
        .map(|o| format!("{} {}", o.domain, o.version.map_or("?".into(), |v| v.to_string())))
        .collect();
    let _ = writeln!(s, "opsets      {}", opsets.join(", "));
    let nested = if r.nested_nodes > 0 {
        format!(" (+{} in subgraphs and functions)", r.nested_nodes)
    } else {
        String::new()
    };
    let _ = writeln!(
        s,
        "graph       {}: {} nodes{nested}, {} initializers, {} parameters ({})",
        opt(&r.graph_name).unwrap_or_else(|| "(unnamed)".into()),
        r.nodes,
        r.initializers,
        human_count(r.parameters),
        human_bytes(r.parameter_bytes)
    );
    for (title, values) in [("inputs", &r.inputs), ("outputs", &r.outputs)] {
        let _ = writeln!(s, "\n{title} ({})", values.len());
        let width = values.iter().map(|v| v.name.len()).max().unwrap_or(0).min(48);
        for v in values {
            let init = if v.has_initializer { "  (has initializer)" } else { "" };
            let _ = writeln!(s, "  {:<width$}  {}{init}", v.name, v.ty);
        }
    }
    let _ = writeln!(s, "\nops ({} kinds)", r.op_histogram.len());
    let dw = r.op_histogram.iter().map(|o| o.domain.len()).max().unwrap_or(0);
    let ow = r.op_histogram.iter().map(|o| o.op_type.len()).max().unwrap_or(0);
    for o in &r.op_histogram {
        let _ = writeln!(s, "  {:<dw$}  {:<ow$}  {:>6}", o.domain, o.op_type, o.count);
    }
    let _ = writeln!(s, "\nquantization");
    if r.quantization.is_empty() {
        let _ = writeln!(s, "  none found");
    }
    for q in &r.quantization {
        let _ = writeln!(s, "  {:<28}  {}", q.style, q.found.join(", "));
    }
    let _ = writeln!(s, "\nexternal data");
    if r.external_data.is_empty() {
        let _ = writeln!(s, "  none");
    }
    for e in &r.external_data {
        let state = if e.present { human_bytes(e.bytes) } else { "MISSING".into() };
        let _ = writeln!(s, "  {}  {} tensor(s)  {state}", e.location, e.tensors);
    }
    if r.functions > 0 {
        let _ = writeln!(s, "\nfunctions   {}", r.functions);
    }
    if !r.metadata.is_empty() {
        let _ = writeln!(s, "\nmetadata");
        for (k, v) in &r.metadata {
            let _ = writeln!(s, "  {k} = {v}");
        }
    }
    if !r.shape_errors.is_empty() {
        let _ = writeln!(
            s,
            "\nshape errors {} (other commands refuse the model without --allow-shape-errors)",
            r.shape_errors.len()
        );
        for e in &r.shape_errors {
            let _ = writeln!(s, "  {e}");
        }
    }
    s
}
