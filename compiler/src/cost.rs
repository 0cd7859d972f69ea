//! `qc cost`: inference cost as `qonnx-inference-cost` reports it, for any ONNX or QONNX model.
//!
//! The model is preprocessed as the reference procedure does (`qc_passes::cost::PREPROCESS`),
//! then every node is counted. Text output is a table for people; `--format json` writes the
//! reference tool's keys (`spec/cli.md`, `spec/cost.md`).

use std::fmt::Write as _;
use std::path::PathBuf;

use qc_passes::ManagerOptions;
use qc_passes::cost::{self, CostOptions, CostReport, Counts};

use crate::formats::CostFormat;
use crate::load::{self, LoadOptions};

/// Arguments of `qc cost`.
#[derive(Debug, clap::Args)]
pub struct CostArgs {
    /// The ONNX or QONNX model.
    pub model: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = CostFormat::Text)]
    pub format: CostFormat,
    /// Also report the cost per op type and per node.
    #[arg(long)]
    pub cost_breakdown: bool,
    /// Count zero weights as if they were not zero (the reference's `--discount-sparsity False`).
    #[arg(long)]
    pub no_discount_sparsity: bool,
    /// Also cost ops the reference leaves unsupported where the arithmetic is clear
    /// (pooling, ConvTranspose, QLinear*, *Integer, Softmax, Resize, element-wise ops).
    #[arg(long)]
    pub extended: bool,
    /// Print the preprocessing pipeline and exit.
    #[arg(long)]
    pub print_pipeline: bool,
    /// Read the model into memory instead of memory-mapping it.
    #[arg(long)]
    pub no_mmap: bool,
    #[command(flatten)]
    pub shapes: crate::input_shapes::InputShapeArgs,
    #[command(flatten)]
    pub shape_errors: crate::shape_errors::ShapeErrorArgs,
}

/// Runs `qc cost`; returns the warnings to print.
pub fn run(args: &CostArgs, out: &mut dyn std::io::Write) -> miette::Result<Vec<miette::Report>> {
    if args.print_pipeline {
        let _ = writeln!(out, "{}", cost::PREPROCESS);
        return Ok(Vec::new());
    }
    let loaded = load::load(&args.model, LoadOptions { mmap: !args.no_mmap })?;
    let mut warnings: Vec<miette::Report> = args.shapes.unanswered(&loaded.warnings);
    let mut model = loaded.model;
    let assumed = args.shapes.resolve(&mut model)?;
    let opts = CostOptions { discount_sparsity: !args.no_discount_sparsity, extended: args.extended };
    let (result, cost_warnings) = cost_model(&mut model, &opts, &args.shape_errors)?;
    warnings.extend(cost_warnings);
    let file = args.model.display().to_string();
    let mut text = match args.format {
        CostFormat::Text => text(&file, &result, args.cost_breakdown),
        CostFormat::Json => json(&file, &result, args.cost_breakdown),
        CostFormat::Md => markdown(&file, &result, args.cost_breakdown),
    };
    if !assumed.is_empty() {
        match args.format {
            CostFormat::Json => {
                let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                if let Some(map) = doc.as_object_mut() {
                    map.insert("assumptions".into(), serde_json::json!(assumed));
                }
                text = serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n";
            }
            CostFormat::Text | CostFormat::Md => {
                if let Some(line) = crate::input_shapes::assumptions_line(&assumed) {
                    text.push_str(&format!("\n{line}\n"));
                }
            }
        }
    }
    out.write_all(text.as_bytes())
        .map_err(|e| miette::miette!(code = "qc::io::write", "cannot write: {e}"))?;
    Ok(warnings)
}

/// The inference cost of an in-memory model whose input dims are known: the reference
/// preprocessing, then the count. Returns the report and the warnings (preprocessing's, then
/// one per node the count could not cost). A shape contradiction is an error unless
/// `shape_errors` allows it.
pub fn cost_model(
    model: &mut qc_ir::Model,
    opts: &CostOptions,
    shape_errors: &crate::shape_errors::ShapeErrorArgs,
) -> miette::Result<(CostReport, Vec<miette::Report>)> {
    let report = cost::preprocess(model, ManagerOptions { verify_each: false, stop_after: None })?;
    shape_errors.refuse(&report.warnings)?;
    let mut warnings: Vec<miette::Report> = report.warnings.into_iter().map(miette::Report::new).collect();
    let result = cost::inference_cost(model, opts);
    for w in &result.warnings {
        warnings.push(miette::miette!(
            severity = miette::Severity::Warning,
            code = w.code,
            help = "see spec/cost.md for how qc counts each op",
            "node `{}`: {}",
            w.node,
            w.message
        ));
    }
    Ok((result, warnings))
}

/// A count as qonnx prints it in JSON: a float.
fn number(x: f64) -> serde_json::Value {
    serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

fn counts_json(c: &Counts) -> serde_json::Map<String, serde_json::Value> {
    c.iter().map(|(k, v)| (k.clone(), number(*v))).collect()
}

/// The JSON document: the reference's keys, `unsupported` as a sorted array.
pub fn json(file: &str, r: &CostReport, breakdown: bool) -> String {
    use serde_json::{Value, json};
    let mut total = counts_json(&r.total);
    total.insert("unsupported".into(), json!(r.unsupported));
    total.insert("discount_sparsity".into(), Value::Bool(r.discount_sparsity));
    let mut doc = serde_json::Map::new();
    doc.insert("schema_version".into(), json!(1));
    doc.insert("file".into(), json!(file));
    doc.insert("extended".into(), Value::Bool(r.extended));
    doc.insert("total_cost".into(), Value::Object(total));
    if breakdown {
        let optype: serde_json::Map<String, Value> =
            r.optype.iter().map(|(k, c)| (k.clone(), Value::Object(counts_json(c)))).collect();
        let nodes: serde_json::Map<String, Value> =
            r.nodes.iter().map(|n| (n.name.clone(), Value::Object(counts_json(&n.counts)))).collect();
        let names: serde_json::Map<String, Value> =
            r.nodes.iter().map(|n| (n.name.clone(), json!(n.qonnx_name))).collect();
        doc.insert("optype_cost".into(), Value::Object(optype));
        doc.insert("node_cost".into(), Value::Object(nodes));
        doc.insert("qonnx_node_names".into(), Value::Object(names));
    }
    let mut s = serde_json::to_string_pretty(&Value::Object(doc)).unwrap_or_default();
    s.push('\n');
    s
}

/// Writes a count: whole numbers with thousands separators, others with two decimals.
fn count(x: f64) -> String {
    if x.fract() != 0.0 { format!("{x:.2}") } else { qc_backends::report::thousands(x) }
}

/// The columns of the breakdown tables: header and the counts key.
const BREAKDOWN: [(&str, &str); 6] = [
    ("MACs", "total_macs"),
    ("BOPs", "total_bops"),
    ("weights", "total_mem_w_elems"),
    ("weight bits", "total_mem_w_bits"),
    ("outputs", "total_mem_o_elems"),
    ("output bits", "total_mem_o_bits"),
];

/// One row of a breakdown table.
fn breakdown_row(c: &Counts) -> [String; 6] {
    BREAKDOWN.map(|(_, k)| count(c.get(k).copied().unwrap_or(0.0)))
}

/// The Markdown report: the totals, the counts by datatype, unsupported ops, and with
/// `breakdown` a table per op type and per node.
pub fn markdown(file: &str, r: &CostReport, breakdown: bool) -> String {
    let md = |s: &str| s.replace('|', "\\|");
    let mut s = String::new();
    let _ = writeln!(s, "## Inference cost of `{}`\n", md(file));
    let _ = writeln!(s, "| count | value |\n|---|---:|");
    for (k, v) in r.total.iter().filter(|(k, _)| k.starts_with("total_")) {
        let _ = writeln!(s, "| {k} | {} |", count(*v));
    }
    let keys: Vec<(&String, &f64)> = r.total.iter().filter(|(k, _)| !k.starts_with("total_")).collect();
    if !keys.is_empty() {
        let _ = writeln!(s, "\n| by datatype | value |\n|---|---:|");
        for (k, v) in keys {
            let _ = writeln!(s, "| {k} | {} |", count(*v));
        }
    }
    let _ = writeln!(
        s,
        "\nZero weights {}counted. Unsupported (not counted): {}.",
        if r.discount_sparsity { "not " } else { "" },
        if r.unsupported.is_empty() {
            "none".to_string()
        } else {
            md(&r.unsupported.iter().map(String::as_str).collect::<Vec<_>>().join(", "))
        }
    );
    if breakdown {
        let head: Vec<&str> = BREAKDOWN.iter().map(|(h, _)| *h).collect();
        let mut table = |title: &str, rows: Vec<(String, [String; 6])>| {
            let _ = writeln!(s, "\n| {title} | {} |\n|---{}|", head.join(" | "), "|---:".repeat(6));
            for (name, cells) in rows {
                let _ = writeln!(s, "| {} | {} |", md(&name), cells.join(" | "));
            }
        };
        table("op type", r.optype.iter().map(|(k, c)| (k.clone(), breakdown_row(c))).collect());
        table(
            "node",
            r.nodes
                .iter()
                .map(|n| (format!("{} ({})", n.name, n.op_type), breakdown_row(&n.counts)))
                .collect(),
        );
    }
    s
}

/// The text report: totals, the counts by datatype, unsupported ops, and with `breakdown` a
/// table per op type and per node.
pub fn text(file: &str, r: &CostReport, breakdown: bool) -> String {
    let mut s = String::new();
    let t = |k: &str| r.total.get(k).copied().unwrap_or(0.0);
    let _ = writeln!(s, "{file}");
    let _ = writeln!(
        s,
        "  {} MACs, {} bit operations{}",
        count(t("total_macs")),
        count(t("total_bops")),
        if r.discount_sparsity { " (zero weights discounted)" } else { "" }
    );
    // Nodes of costed op types that could not be counted: the totals are a lower bound.
    let uncosted = r.warnings.iter().filter(|w| w.code == "qc::cost::uncosted").count();
    if uncosted > 0 {
        let _ = writeln!(
            s,
            "  incomplete: {uncosted} node(s) not counted (the warnings say why); the totals leave them out"
        );
    }
    let _ = writeln!(
        s,
        "  weights {} elements, {} bits; outputs {} elements, {} bits",
        count(t("total_mem_w_elems")),
        count(t("total_mem_w_bits")),
        count(t("total_mem_o_elems")),
        count(t("total_mem_o_bits"))
    );
    let keys: Vec<(&String, &f64)> = r.total.iter().filter(|(k, _)| !k.starts_with("total_")).collect();
    let width = keys.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    if !keys.is_empty() {
        s.push('\n');
        for (k, v) in keys {
            let _ = writeln!(s, "  {k:<width$}  {:>16}", count(*v));
        }
    }
    s.push('\n');
    if r.unsupported.is_empty() {
        let _ = writeln!(s, "  unsupported: none");
    } else {
        let list: Vec<&str> = r.unsupported.iter().map(String::as_str).collect();
        let _ = writeln!(s, "  unsupported (not counted): {}", list.join(", "));
    }
    if breakdown {
        let head = BREAKDOWN.map(|(h, _)| h);
        let row = breakdown_row;
        let mut table = |title: &str, rows: Vec<(String, [String; 6])>| {
            let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(title.len());
            let ws: Vec<usize> = (0..6)
                .map(|i| rows.iter().map(|r| r.1[i].len()).max().unwrap_or(0).max(head[i].len()))
                .collect();
            s.push('\n');
            let _ = write!(s, "  {title:<w0$}");
            for (i, h) in head.iter().enumerate() {
                let _ = write!(s, "  {h:>w$}", w = ws[i]);
            }
            s.push('\n');
            for (name, cells) in rows {
                let _ = write!(s, "  {name:<w0$}");
                for (i, c) in cells.iter().enumerate() {
                    let _ = write!(s, "  {c:>w$}", w = ws[i]);
                }
                s.push('\n');
            }
        };
        table("op type", r.optype.iter().map(|(k, c)| (k.clone(), row(c))).collect());
        table(
            "node",
            r.nodes.iter().map(|n| (format!("{} ({})", n.name, n.op_type), row(&n.counts))).collect(),
        );
    }
    s
}
