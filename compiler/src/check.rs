//! `qc check`: checks a model against a DLA target's operator limits and fixed-point scale rules,
//! and says where each op runs.
//!
//! The model runs through `qc_passes::check::PIPELINE` (shapes, quantization specs, propagated
//! scales), then `qc_passes::check::check` applies the target. Every finding is one miette
//! diagnostic with the code `qc::check::<rule>`; the text report renders them like rustc, then
//! the placement of every op; `--format json` writes the schema of `spec/cli.md`. Both go to
//! standard output: the findings are the command's result. Exit code 0 when no finding is an
//! error, 1 otherwise, 2 when the model or the target cannot be read.

use std::fmt::{self, Write as _};
use std::path::PathBuf;

use qc_ir::target::{Rule, Severity};
use qc_passes::check::{self, CheckReport, Finding, Quantity, Unit};
use qc_passes::{ManagerOptions, PassManager, Pipeline};

use crate::formats::ReportFormat;
use crate::load::{self, LoadOptions};

/// Arguments of `qc check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The ONNX or QONNX model.
    #[arg(required_unless_present = "explain")]
    pub model: Option<PathBuf>,
    /// The DLA target: a built-in name (`qc targets list`) or the path of a YAML target file.
    #[arg(long, value_name = "NAME|PATH", required_unless_present = "explain")]
    pub target: Option<String>,
    /// Print what a rule checks, why, and an example that breaks it (`kernel-size` or
    /// `qc::check::kernel-size`), instead of checking a model.
    #[arg(long, value_name = "CODE", conflicts_with_all = ["model", "target"])]
    pub explain: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    /// Write the report to this file (atomically) instead of standard output.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Read the model into memory instead of memory-mapping it.
    #[arg(long)]
    pub no_mmap: bool,
    /// List the placement of every op (by default a model of more than 40 ops gets a table per
    /// op type).
    #[arg(long)]
    pub placement: bool,
    #[command(flatten)]
    pub shapes: crate::input_shapes::InputShapeArgs,
    #[command(flatten)]
    pub shape_errors: crate::shape_errors::ShapeErrorArgs,
    /// Kinds of finding rendered in full (the global `--max-diagnostics`).
    #[arg(skip = 6usize)]
    pub max_diagnostics: usize,
    /// Warnings not rendered (the global `-q`).
    #[arg(skip)]
    pub quiet: bool,
}

/// What `qc check` found, and the warnings to print on standard error.
pub struct Checked {
    pub report: CheckReport,
    pub warnings: Vec<miette::Report>,
}

/// Loads the model and the target and checks one against the other.
pub fn check_file(args: &CheckArgs) -> miette::Result<Checked> {
    let (Some(model_path), Some(target)) = (&args.model, &args.target) else {
        return Err(miette::miette!(
            code = "qc::check::usage",
            help = "qc check MODEL --target NAME|PATH, or qc check --explain CODE",
            "qc check needs a model and a target"
        ));
    };
    let target = crate::targets::resolve(target).map_err(|e| *e)?;
    let loaded = load::load(model_path, LoadOptions { mmap: !args.no_mmap })?;
    let mut warnings: Vec<miette::Report> = args.shapes.unanswered(&loaded.warnings);
    let mut model = loaded.model;
    let assumed = args.shapes.apply(&mut model)?;
    if let Some(line) = crate::input_shapes::assumptions_line(&assumed) {
        warnings.push(miette::miette!(
            severity = miette::Severity::Advice,
            code = "qc::input_shape::assumed",
            "{line}"
        ));
    }
    let checked = check_model(&mut model, &target, &args.shape_errors)?;
    warnings.extend(checked.warnings);
    Ok(Checked { report: checked.report, warnings })
}

/// Checks an in-memory model against `target`: the check pipeline (shape and datatype
/// inference with the target's rules), then the rules. A shape contradiction is an error unless
/// `shape_errors` allows it. ACCESS attributes written as node metadata
/// (`qc_passes::fixed::metadata`) are read as the attributes they stand for first, so both forms
/// give the same findings.
pub fn check_model(
    model: &mut qc_ir::Model,
    target: &std::sync::Arc<qc_ir::target::Target>,
    shape_errors: &crate::shape_errors::ShapeErrorArgs,
) -> miette::Result<Checked> {
    qc_passes::fixed::lift_metadata(model)?;
    let pipeline = Pipeline::parse(check::PIPELINE).expect("the check pipeline parses");
    let options = ManagerOptions { verify_each: false, stop_after: None };
    let run = PassManager::new(pipeline, options)?.with_target(target.clone()).run(model, &mut |_, _| {})?;
    shape_errors.refuse(&run.warnings)?;
    // Conflicting quantization descriptions are findings (`scale-mismatch`), not warnings.
    let warnings = run
        .warnings
        .into_iter()
        .filter(|w| w.code != "qc::quant::conflict")
        .map(miette::Report::new)
        .collect();
    let report = check::check(model, target);
    Ok(Checked { report, warnings })
}

/// Runs `qc check`: writes the report to `out`; returns whether the model passed (no error
/// finding) and the warnings for standard error.
pub fn run(
    args: &CheckArgs,
    out: &mut dyn std::io::Write,
    color: bool,
) -> miette::Result<(bool, Vec<miette::Report>)> {
    if let Some(code) = &args.explain {
        crate::write::emit(args.output.as_deref(), &explain(code)?, out)?;
        return Ok((true, Vec::new()));
    }
    let Checked { report, warnings } = check_file(args)?;
    let file = args.model.as_deref().map(|p| p.display().to_string()).unwrap_or_default();
    let text = match args.format {
        ReportFormat::Text => {
            let opts = TextOptions {
                max_full: args.max_diagnostics,
                quiet: args.quiet,
                every_placement: args.placement,
            };
            text_with(&file, &report, color && args.output.is_none(), &opts)
        }
        ReportFormat::Json => json(&file, &report),
        ReportFormat::Md => markdown(&file, &report),
        ReportFormat::Html => html(&file, &report),
    };
    crate::write::emit(args.output.as_deref(), &text, out)?;
    Ok((report.ok(), warnings))
}

/// `qc check --explain CODE`: the rule's documentation (the header of its rule file) and its
/// default severity. Every rule has a file; the fallback names the spec all the same.
pub fn explain(code: &str) -> miette::Result<String> {
    let Some(rule) = Rule::ALL.iter().copied().find(|r| r.name() == code || r.code() == code) else {
        let names: Vec<&str> = Rule::ALL.iter().map(|r| r.name()).collect();
        return Err(miette::miette!(
            code = "qc::check::unknown_rule",
            help = format!("the rules are: {}", names.join(", ")),
            "no qc check rule is called `{code}`"
        ));
    };
    let severity = match rule.default_severity() {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    Ok(match check::rules::explain(rule) {
        Some(doc) => format!("{doc}\nDefault severity: {severity}.\n"),
        None => format!(
            "`{}`: default severity {severity}. spec/diagnostics.md describes what it checks and why.\n",
            rule.code()
        ),
    })
}

/// One finding as a miette diagnostic: code, severity, message with the observed value and the
/// allowed range, and the hint as help.
#[derive(Debug)]
pub struct FindingDiagnostic<'a>(pub &'a Finding);

impl fmt::Display for FindingDiagnostic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let x = self.0;
        match (&x.node, &x.op_type) {
            (Some(n), Some(t)) => write!(f, "`{n}` ({t}): {}", x.message)?,
            _ => f.write_str(&x.message)?,
        }
        write!(f, "\nobserved: {}\nallowed:  {}", x.observed, x.allowed)
    }
}

impl std::error::Error for FindingDiagnostic<'_> {}

impl miette::Diagnostic for FindingDiagnostic<'_> {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.0.rule.code()))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.0.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        (!self.0.hint.is_empty()).then(|| Box::new(&self.0.hint) as Box<dyn fmt::Display>)
    }
}

/// Renders one finding as miette's graphical report.
pub fn render_finding(f: &Finding, color: bool) -> String {
    use miette::{GraphicalReportHandler, GraphicalTheme};
    let theme = if color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100).with_links(false);
    let mut s = String::new();
    if handler.render_report(&mut s, &FindingDiagnostic(f)).is_err() {
        s = format!("{}\n", FindingDiagnostic(f));
    }
    s
}

/// How much the text report shows.
#[derive(Clone, Debug)]
pub struct TextOptions {
    /// Kinds of warning rendered in full (every kind of error is); the others get one line
    /// each.
    pub max_full: usize,
    /// Render no warning-severity finding (errors still show).
    pub quiet: bool,
    /// List the placement of every op, however many.
    pub every_placement: bool,
}

impl Default for TextOptions {
    fn default() -> TextOptions {
        TextOptions { max_full: usize::MAX, quiet: false, every_placement: false }
    }
}

/// Above this many ops, the placement is a table per op type unless asked for every op.
const PLACEMENT_LIST_MAX: usize = 40;

/// The text report with every finding and the placement of every op (small models; the CLI
/// uses [`text_with`]).
pub fn text(file: &str, r: &CheckReport, color: bool) -> String {
    text_with(file, r, color, &TextOptions { every_placement: true, ..TextOptions::default() })
}

/// The text report: findings grouped by kind (rule, severity, and message and hint but for
/// names and numbers; the first rendered in full, then how many more and their nodes), the
/// kinds of warning capped by `opts`; the placement
/// (every op, or per op type for a large model); and the totals.
pub fn text_with(file: &str, r: &CheckReport, color: bool, opts: &TextOptions) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{file}: checked against {}\n", r.target);
    if r.findings.is_empty() {
        let _ =
            writeln!(s, "no findings: every op and tensor is within the target's limits and scale rules\n");
    }
    // Groups of findings, in order of first appearance.
    let mut groups: Vec<(&Finding, Vec<&Finding>)> = Vec::new();
    for f in &r.findings {
        if opts.quiet && f.severity == Severity::Warning {
            continue;
        }
        // Alike: the same rule and severity, and the same message and hint but for names and
        // numbers (an unsupported Mul and Clip differ by their hints; channel counts do not).
        let key = |x: &Finding| {
            let shape = crate::report_diagnostics::shape;
            (x.rule.code(), x.severity, shape(&x.message), shape(&x.hint))
        };
        match groups.iter_mut().find(|(first, _)| key(first) == key(f)) {
            Some((_, more)) => more.push(f),
            None => groups.push((f, Vec::new())),
        }
    }
    // Every kind of error in full; kinds of warning up to `max_full`, then one line each.
    let mut full_warnings = 0;
    let mut one_line = 0;
    for (first, more) in &groups {
        let full = first.severity == Severity::Error || full_warnings < opts.max_full;
        if first.severity == Severity::Warning && full {
            full_warnings += 1;
        }
        if full {
            s.push_str(&render_finding(first, color));
            if !more.is_empty() {
                let names: Vec<String> = more
                    .iter()
                    .take(5)
                    .map(|f| format!("`{}`", f.node.as_deref().or(f.tensor.as_deref()).unwrap_or("?")))
                    .collect();
                let etc = if more.len() > 5 { ", ..." } else { "" };
                let _ = writeln!(s, "  ... and {} more like this: {}{etc}", more.len(), names.join(", "));
            }
            s.push('\n');
        } else {
            if one_line == 0 {
                let _ = writeln!(s, "further warnings, one line per kind (--max-diagnostics N shows more):");
            }
            one_line += 1;
            let what = match &first.op_type {
                Some(t) => format!("{t}: {}", first.message),
                None => first.message.clone(),
            };
            let _ = writeln!(s, "  {} x{}: {what}", first.rule.code(), more.len() + 1);
        }
    }
    if one_line > 0 {
        s.push('\n');
    }
    let (dla, cpu) = (r.count(Unit::Dla), r.count(Unit::Cpu));
    let _ = writeln!(s, "placement: {dla} op(s) on the DLA, {cpu} on the CPU, {} absorbed", r.absorbed.len());
    if opts.every_placement || r.placement.len() <= PLACEMENT_LIST_MAX {
        let w0 = r.placement.iter().map(|p| p.node.len()).max().unwrap_or(0).max(4);
        let w1 = r.placement.iter().map(|p| p.op_type.len()).max().unwrap_or(0).max(7);
        if !r.placement.is_empty() {
            let _ = writeln!(s, "  {:<w0$}  {:<w1$}  unit  operator", "node", "op type");
            for p in &r.placement {
                let _ = writeln!(
                    s,
                    "  {:<w0$}  {:<w1$}  {:<4}  {}",
                    p.node,
                    p.op_type,
                    p.unit.name(),
                    p.operator.as_deref().unwrap_or("-")
                );
            }
        }
    } else {
        // Per unit, the op types and their counts (--placement lists every op).
        for (unit, name) in [(Unit::Dla, "DLA"), (Unit::Cpu, "CPU")] {
            let mut rows: Vec<(&str, usize)> = Vec::new();
            for p in r.placement.iter().filter(|p| p.unit == unit) {
                match rows.iter_mut().find(|(t, _)| *t == p.op_type) {
                    Some(row) => row.1 += 1,
                    None => rows.push((&p.op_type, 1)),
                }
            }
            rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            let items: Vec<String> = rows.iter().map(|(t, n)| format!("{t} {n}")).collect();
            let mut line = format!("  {name}:");
            for item in items {
                if line.len() + item.len() + 2 > 98 {
                    let _ = writeln!(s, "{line}");
                    line = "      ".into();
                }
                line.push(' ');
                line.push_str(&item);
                line.push(',');
            }
            line.pop();
            let _ = writeln!(s, "{line}");
        }
        let _ = writeln!(s, "  (--placement lists every op with the DLA operator it maps to)");
    }
    if !r.absorbed.is_empty() {
        let q = r.absorbed.iter().filter(|a| a.reason == check::AbsorbReason::Quantizer).count();
        let _ = writeln!(
            s,
            "  absorbed: {q} quantizer(s) (their scales describe the tensors they write), {} op(s) of constants",
            r.absorbed.len() - q
        );
    }
    let _ = writeln!(
        s,
        "\nresult: {} error(s), {} warning(s){}: {}",
        r.errors(),
        r.warnings(),
        if groups.len() < r.findings.len() { format!(" of {} kind(s)", groups.len()) } else { String::new() },
        if r.ok() { "ok" } else { "the model does not fit the target" }
    );
    s
}

/// The JSON document (`spec/cli.md`, schema version 1).
/// A typed value as JSON: an integer, an array (null where unknown), an object by name, or a
/// limit `{min, max, multiple_of, values}` with only the parts the target sets.
fn quantity_json(q: &Quantity) -> serde_json::Value {
    use serde_json::{Map, Value, json};
    match q {
        Quantity::Int(n) => json!(n),
        Quantity::Dims(d) => json!(d),
        Quantity::Named(v) => Value::Object(v.iter().map(|(k, n)| (k.to_string(), json!(n))).collect()),
        Quantity::Allowed(a) => {
            let mut m = Map::new();
            let mut put = |k: &str, v: Value| {
                if !v.is_null() {
                    m.insert(k.to_string(), v);
                }
            };
            put("min", json!(a.min));
            put("max", json!(a.max));
            put("multiple_of", json!(a.multiple_of));
            put("values", json!(a.values));
            Value::Object(m)
        }
        Quantity::Float(x) | Quantity::Scale(x) => json!(x),
        Quantity::Floats(v) | Quantity::Scales(v) => json!(v),
        Quantity::ChannelScales(v) => v.iter().map(|(c, s)| json!({"channel": c, "scale": s})).collect(),
        Quantity::NamedScales(v) => Value::Object(v.iter().map(|(k, s)| (k.to_string(), json!(s))).collect()),
    }
}

pub fn json(file: &str, r: &CheckReport) -> String {
    use serde_json::json;
    let diagnostics: Vec<serde_json::Value> = r
        .findings
        .iter()
        .map(|f| {
            json!({
                "code": f.rule.code(),
                "rule": f.rule.name(),
                "severity": f.severity.name(),
                "node": f.node,
                "op_type": f.op_type,
                "tensor": f.tensor,
                "message": f.message,
                "observed": f.observed,
                "allowed": f.allowed,
                "observed_value": f.observed_value.as_ref().map(quantity_json),
                "allowed_value": f.allowed_value.as_ref().map(quantity_json),
                "hint": f.hint,
            })
        })
        .collect();
    let placement: Vec<serde_json::Value> = r
        .placement
        .iter()
        .map(|p| json!({"node": p.node, "op_type": p.op_type, "unit": p.unit.name(), "operator": p.operator}))
        .collect();
    let absorbed: Vec<serde_json::Value> = r
        .absorbed
        .iter()
        .map(|a| json!({"node": a.node, "op_type": a.op_type, "reason": a.reason.name()}))
        .collect();
    let doc = json!({
        "schema_version": 1,
        "file": file,
        "target": r.target,
        "ok": r.ok(),
        "summary": {
            "errors": r.errors(),
            "warnings": r.warnings(),
            "dla": r.count(Unit::Dla),
            "cpu": r.count(Unit::Cpu),
            "absorbed": r.absorbed.len(),
        },
        "diagnostics": diagnostics,
        "placement": placement,
        "absorbed": absorbed,
    });
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}

/// Per placed op, its findings (in report order); the findings about no op come first, with
/// `None`.
fn by_node(r: &CheckReport) -> Vec<(Option<&check::Placement>, Vec<&Finding>)> {
    let mut groups: Vec<(Option<&check::Placement>, Vec<&Finding>)> = Vec::new();
    let loose: Vec<&Finding> =
        r.findings.iter().filter(|f| !r.placement.iter().any(|p| Some(&p.node) == f.node.as_ref())).collect();
    if !loose.is_empty() {
        groups.push((None, loose));
    }
    for p in &r.placement {
        let found: Vec<&Finding> = r.findings.iter().filter(|f| f.node.as_ref() == Some(&p.node)).collect();
        groups.push((Some(p), found));
    }
    groups
}

/// The cells of an op's placement: node, op type, unit, target operator (`(model)` for the
/// findings about no op).
fn placement_cells(p: Option<&check::Placement>) -> (&str, &str, &str, &str) {
    match p {
        Some(p) => (p.node.as_str(), p.op_type.as_str(), p.unit.name(), p.operator.as_deref().unwrap_or("-")),
        None => ("(model)", "", "", ""),
    }
}

/// The Markdown report: the verdict, then per op its placement and findings.
pub fn markdown(file: &str, r: &CheckReport) -> String {
    let md = |s: &str| s.replace('|', "\\|");
    let mut s = String::new();
    let _ = writeln!(s, "## `{}` checked against {}\n", md(file), md(&r.target));
    let _ = writeln!(
        s,
        "**{}**: {} error(s), {} warning(s); {} op(s) on the DLA, {} on the CPU, {} absorbed.\n",
        if r.ok() { "ok" } else { "does not fit the target" },
        r.errors(),
        r.warnings(),
        r.count(Unit::Dla),
        r.count(Unit::Cpu),
        r.absorbed.len()
    );
    s.push_str("| node | op type | unit | operator | findings |\n|---|---|---|---|---|\n");
    for (p, found) in by_node(r) {
        let findings: Vec<String> = found
            .iter()
            .map(|f| {
                format!(
                    "{} `{}`: {} (observed {}; allowed {})",
                    f.severity.name(),
                    f.rule.code(),
                    md(&f.message),
                    md(&f.observed),
                    md(&f.allowed)
                )
            })
            .collect();
        let (node, op, unit, operator) = placement_cells(p);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} |",
            md(node),
            md(op),
            unit,
            md(operator),
            if findings.is_empty() { "-".to_string() } else { findings.join("<br>") }
        );
    }
    s
}

/// The HTML report: the verdict, then the findings grouped by op with each op's placement.
pub fn html(file: &str, r: &CheckReport) -> String {
    use qc_backends::report::escape as esc;
    let mut b = String::new();
    let _ = writeln!(b, "<h1>qc check: {} against {}</h1>", esc(file), esc(&r.target));
    b.push_str("<div class=\"cards\">");
    let card = |b: &mut String, v: String, label: &str| {
        let _ = write!(b, "<div class=\"card\"><b>{}</b><span>{}</span></div>", esc(&v), esc(label));
    };
    card(&mut b, if r.ok() { "ok".into() } else { "does not fit".into() }, "result");
    card(&mut b, r.errors().to_string(), "errors");
    card(&mut b, r.warnings().to_string(), "warnings");
    card(&mut b, r.count(Unit::Dla).to_string(), "ops on the DLA");
    card(&mut b, r.count(Unit::Cpu).to_string(), "ops on the CPU");
    card(&mut b, r.absorbed.len().to_string(), "ops absorbed");
    b.push_str("</div>\n<h2>Findings by op</h2>\n");
    b.push_str("<table><tr><th>node</th><th>op type</th><th>placement</th><th>target operator</th><th>findings</th></tr>\n");
    for (p, found) in by_node(r) {
        let (node, op, unit, operator) = placement_cells(p);
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td class=\"place-{unit}\">{}</td><td>{}</td><td>",
            esc(node),
            esc(op),
            unit.to_uppercase(),
            esc(operator)
        );
        if found.is_empty() {
            b.push_str("<span class=\"muted\">none</span>");
        }
        for f in found {
            let _ = write!(
                b,
                "<div><span class=\"sev-{}\">{}</span> <code>{}</code>: {}<br><span class=\"muted\">observed</span> {} \
                 <span class=\"muted\">allowed</span> {}{}</div>",
                f.severity.name(),
                f.severity.name(),
                esc(f.rule.code()),
                esc(&f.message),
                esc(&f.observed),
                esc(&f.allowed),
                if f.hint.is_empty() {
                    String::new()
                } else {
                    format!("<br><span class=\"muted\">hint</span> {}", esc(&f.hint))
                }
            );
        }
        b.push_str("</td></tr>\n");
    }
    b.push_str("</table>\n");
    if !r.absorbed.is_empty() {
        b.push_str("<h2>Absorbed</h2><table><tr><th>node</th><th>op type</th><th>why</th></tr>\n");
        for a in &r.absorbed {
            let _ = writeln!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&a.node),
                esc(&a.op_type),
                esc(a.reason.name())
            );
        }
        b.push_str("</table>\n");
    }
    qc_backends::report::page(&format!("qc check: {file}"), &b)
}
