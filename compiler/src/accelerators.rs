//! Accelerators: the built-in library (`spec/accelerators/<name>.yaml` in qc's accelerator
//! format, embedded in the binary; where each number comes from is in
//! `spec/accelerators/README.md`), a user's file of either format, and the commands
//! `qc accelerators list` and `qc accelerators show`.
//!
//! `--accelerator NAME|PATH`: a value containing a path separator or with a file extension is a
//! path (qc's format or ZigZag's accelerator YAML, told apart by a top-level `format:` key);
//! anything else is a built-in name. Without `--accelerator`, `qc evaluate` uses [`DEFAULT`].

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use qc_backends::accelerator_file::{self, FileFormat, QcAccelerator};
use qc_backends::arch::Accelerator;
use serde_json::json;

use crate::formats::AcceleratorFormat;

/// The built-in accelerators: name and qc-format text.
pub const BUILTIN: &[(&str, &str)] = &[
    ("tpu_like", include_str!("../../spec/accelerators/tpu_like.yaml")),
    ("edge_tpu_like", include_str!("../../spec/accelerators/edge_tpu_like.yaml")),
    ("ascend_like", include_str!("../../spec/accelerators/ascend_like.yaml")),
    ("meta_prototype", include_str!("../../spec/accelerators/meta_prototype.yaml")),
    ("tesla_npu_like", include_str!("../../spec/accelerators/tesla_npu_like.yaml")),
    ("eyeriss_like", include_str!("../../spec/accelerators/eyeriss_like.yaml")),
    ("gemm_l1", include_str!("../../spec/accelerators/gemm_l1.yaml")),
    ("gemm_l1_l3", include_str!("../../spec/accelerators/gemm_l1_l3.yaml")),
    ("generic_array_cacti", include_str!("../../spec/accelerators/generic_array_cacti.yaml")),
    ("eyeriss_v1", include_str!("../../spec/accelerators/eyeriss_v1.yaml")),
    ("gemmini", include_str!("../../spec/accelerators/gemmini.yaml")),
    ("aimc", include_str!("../../spec/accelerators/aimc.yaml")),
    ("dimc", include_str!("../../spec/accelerators/dimc.yaml")),
];

/// The built-in `qc evaluate` uses without `--accelerator`.
pub const DEFAULT: &str = "tpu_like";

/// Where an accelerator came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AcceleratorSource {
    /// The built-in [`DEFAULT`], no `--accelerator` given.
    Default,
    /// A built-in, by name.
    Builtin(String),
    /// A file, and the format it was read as.
    File(String, FileFormat),
}

impl AcceleratorSource {
    /// For reports: `built-in default`, `built-in`, `file (qc format)`, `file (ZigZag YAML)`.
    pub fn describe(&self) -> String {
        match self {
            AcceleratorSource::Default => "built-in default".into(),
            AcceleratorSource::Builtin(_) => "built-in".into(),
            AcceleratorSource::File(_, FileFormat::Qc) => "file (qc format)".into(),
            AcceleratorSource::File(_, FileFormat::ZigZag) => "file (ZigZag YAML)".into(),
        }
    }
}

/// An accelerator that cannot be found.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum AcceleratorError {
    #[error("no built-in accelerator is called `{name}`")]
    #[diagnostic(
        code(qc::accelerator::unknown),
        help(
            "the built-in accelerators are: {names} (`qc accelerators list`); a value with a `/` or a file \
             extension (e.g. `./{name}.yaml`) is read as a file, in qc's format or ZigZag's accelerator YAML"
        )
    )]
    Unknown { name: String, names: String },

    #[error("cannot read accelerator file `{file}`")]
    #[diagnostic(
        code(qc::io::read),
        help(
            "check the path; names without `/` or an extension are built-in accelerators (`qc accelerators list`)"
        )
    )]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
}

/// Whether a `NAME|PATH` value (`--accelerator`, `--target`) names a file: it contains a path
/// separator or has an extension. Built-in names have neither.
pub fn is_path(spec: &str) -> bool {
    spec.contains('/') || spec.contains(std::path::MAIN_SEPARATOR) || Path::new(spec).extension().is_some()
}

/// The built-in accelerator called `name`, with its description and provenance.
pub fn builtin(name: &str) -> Option<QcAccelerator> {
    let (n, text) = BUILTIN.iter().find(|(n, _)| *n == name)?;
    let q = accelerator_file::read_qc_accelerator(text, &format!("spec/accelerators/{n}.yaml"))
        .unwrap_or_else(|e| panic!("the built-in accelerator {n} does not read: {e}"));
    Some(q)
}

/// The text behind `spec` (a built-in's qc-format text, or the file's), to fingerprint.
pub fn accelerator_text(spec: &str) -> miette::Result<String> {
    if !is_path(spec)
        && let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == spec)
    {
        return Ok(text.to_string());
    }
    read_file(spec)
}

fn read_file(path: &str) -> miette::Result<String> {
    std::fs::read_to_string(PathBuf::from(path))
        .map_err(|source| AcceleratorError::Read { file: path.to_string(), source }.into())
}

fn unknown(name: &str) -> miette::Report {
    let names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
    AcceleratorError::Unknown { name: name.to_string(), names: names.join(", ") }.into()
}

/// An accelerator with its description and provenance (for a ZigZag file: made up from the
/// path) and where it came from.
pub fn resolve_full(spec: Option<&str>) -> miette::Result<(QcAccelerator, AcceleratorSource)> {
    let Some(spec) = spec else {
        return Ok((
            builtin(DEFAULT).expect("the default accelerator is built in"),
            AcceleratorSource::Default,
        ));
    };
    if !is_path(spec) {
        return builtin(spec)
            .map(|q| (q, AcceleratorSource::Builtin(spec.to_string())))
            .ok_or_else(|| unknown(spec));
    }
    let text = read_file(spec)?;
    let accelerator_file::AcceleratorFile { accelerator, lines, format } =
        accelerator_file::read_accelerator_file(&text, spec)?;
    let (description, provenance) = lines.unwrap_or_else(|| {
        (
            format!("{} (ZigZag accelerator YAML `{spec}`)", accelerator.name),
            format!("ZigZag accelerator YAML `{spec}`"),
        )
    });
    Ok((
        QcAccelerator { accelerator, description, provenance },
        AcceleratorSource::File(spec.to_string(), format),
    ))
}

/// Resolves `--accelerator NAME|PATH` (`None`: the default built-in, [`DEFAULT`]).
pub fn resolve_accelerator(spec: Option<&str>) -> miette::Result<(Accelerator, AcceleratorSource)> {
    resolve_full(spec).map(|(q, s)| (q.accelerator, s))
}

/// How `--accelerator` (`spec`) is read, without reading it: for reports.
pub fn source_of(spec: Option<&str>) -> String {
    match spec {
        None => format!("built-in default ({DEFAULT}; give --accelerator NAME|PATH for another)"),
        Some(s) if is_path(s) => format!("file {s}"),
        Some(s) => format!("built-in {s}"),
    }
}

/// Arguments of `qc accelerators`.
#[derive(Debug, clap::Args)]
pub struct AcceleratorsArgs {
    #[command(subcommand)]
    pub command: AcceleratorsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum AcceleratorsCommand {
    /// List the built-in accelerators: array, memories, description.
    List,
    /// Print an accelerator's array and memory hierarchy (Markdown), or write it in qc's format
    /// (`--format yaml`) to edit.
    Show {
        /// A built-in name, or the path of an accelerator file (qc's format or ZigZag's YAML).
        accelerator: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = AcceleratorFormat::Md)]
        format: AcceleratorFormat,
        /// Write to this file (atomically) instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

/// Runs `qc accelerators`.
pub fn run(args: &AcceleratorsArgs, out: &mut dyn std::io::Write) -> miette::Result<()> {
    match &args.command {
        AcceleratorsCommand::List => crate::write::emit(None, &list(), out),
        AcceleratorsCommand::Show { accelerator, format, output } => {
            let (q, source) = resolve_full(Some(accelerator))?;
            let text = match format {
                AcceleratorFormat::Md => markdown(&q, &source),
                AcceleratorFormat::Yaml => {
                    accelerator_file::write_qc_accelerator(&q.accelerator, &q.description, &q.provenance)
                }
                AcceleratorFormat::Json => {
                    let mut s = serde_json::to_string_pretty(&to_json(&q, &source)).unwrap_or_default();
                    s.push('\n');
                    s
                }
            };
            crate::write::emit(output.as_deref(), &text, out)
        }
    }
}

/// `D1×D2 = 32×32`.
fn array_line(a: &Accelerator) -> String {
    let names: Vec<&str> = a.array.dims.iter().map(|d| d.name.as_str()).collect();
    let sizes: Vec<String> = a.array.dims.iter().map(|d| d.size.to_string()).collect();
    format!("{} = {}", names.join("×"), sizes.join("×"))
}

/// A size in bits for people: `16 b`, `128 B`, `2 MiB`, `1.16 GiB`.
pub fn size(bits: u64) -> String {
    if !bits.is_multiple_of(8) {
        return format!("{bits} b");
    }
    let bytes = bits / 8;
    let units = [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (u, n) in units {
        if bytes >= n {
            return if bytes.is_multiple_of(n) {
                format!("{} {u}", bytes / n)
            } else {
                format!("{:.2} {u}", bytes as f64 / n as f64)
            };
        }
    }
    format!("{bytes} B")
}

/// The table of `qc accelerators list`.
fn list() -> String {
    let rows: Vec<[String; 5]> = BUILTIN
        .iter()
        .filter_map(|(n, _)| builtin(n).map(|q| (n, q)))
        .map(|(n, q)| {
            let a = &q.accelerator;
            let mems: Vec<String> =
                a.memories.iter().map(|m| format!("{} {}", m.name, size(m.size_bits))).collect();
            let mut name = n.to_string();
            if *n == DEFAULT {
                name.push_str(" (default)");
            }
            [name, array_line(a), a.array.units().to_string(), mems.join(", "), q.description.clone()]
        })
        .collect();
    let head = ["name", "array", "MACs", "memories (lowest first)", "description"];
    let mut w = head.map(str::len);
    for r in &rows {
        for (i, c) in r.iter().enumerate().take(3) {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let mut s = String::new();
    let line = |s: &mut String, c: [&str; 5]| {
        let _ = writeln!(
            s,
            "{:<a$}  {:<b$}  {:>m$}  {}  |  {}",
            c[0],
            c[1],
            c[2],
            c[3],
            c[4],
            a = w[0],
            b = w[1],
            m = w[2]
        );
    };
    line(&mut s, head);
    for r in &rows {
        line(&mut s, [&r[0], &r[1], &r[2], &r[3], &r[4]]);
    }
    let _ = writeln!(
        s,
        "\n`qc accelerators show NAME` prints one; `--format yaml` writes it in qc's format to edit. Sources: spec/accelerators/README.md."
    );
    s
}

fn num(v: f64) -> String {
    format!("{v}")
}

fn ports_cell(m: &qc_backends::arch::Memory) -> String {
    let ps: Vec<String> = m
        .ports
        .iter()
        .map(|p| {
            let alloc: Vec<String> = p.allocation.iter().map(|(o, d)| format!("{o} {d}")).collect();
            let bw = if p.bw_min == p.bw_max {
                p.bw_max.to_string()
            } else {
                format!("{}..{}", p.bw_min, p.bw_max)
            };
            format!("{} {bw} ({})", p.name, alloc.join(", "))
        })
        .collect();
    ps.join("; ")
}

/// `qc accelerators show`'s Markdown.
pub fn markdown(q: &QcAccelerator, source: &AcceleratorSource) -> String {
    let a = &q.accelerator;
    let mut s = String::new();
    let _ = writeln!(s, "## Accelerator `{}`\n\n{}\n", a.name, q.description);
    let from = match source {
        AcceleratorSource::File(p, _) => format!("{} `{p}`", source.describe()),
        _ => source.describe(),
    };
    let _ = writeln!(s, "Source: {from}. Provenance: {}\n", q.provenance);
    let arr = &a.array;
    let mut line = match qc_backends::cost::ImcMacro::new(arr) {
        None => format!(
            "Array: {} ({} MAC units), {} pJ per MAC, MAC area {}",
            array_line(a),
            arr.units(),
            num(arr.mac_energy),
            num(arr.mac_area)
        ),
        Some(m) => format!(
            "Array: {} ({} MAC units), {} in-memory compute (spec/imc.md): {}-bit serial input{}, tclk {} ns, \
             array area {} mm^2",
            array_line(a),
            arr.units(),
            m.kind.name(),
            m.bit_serial_precision,
            if m.adc_resolution > 0 { format!(", {}-bit ADCs", m.adc_resolution) } else { String::new() },
            num(m.tclk()),
            num(m.area())
        ),
    };
    if let Some([x, y]) = arr.input_precision {
        let _ = write!(line, ", input precision {x}/{y} bits");
    }
    if !arr.systolic_dims.is_empty() {
        let names: Vec<&str> = arr.systolic_dims.iter().map(|&i| arr.dims[i].name.as_str()).collect();
        let _ = write!(line, ", systolic along {}", names.join(", "));
    }
    let _ = writeln!(s, "{line}.\n");
    let _ = writeln!(
        s,
        "| memory | operands | size | read pJ | write pJ | ports: bandwidth bits/cycle (allocation) | instances (served dims) | double buffered |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
    for (i, m) in a.memories.iter().enumerate() {
        let ops: Vec<&str> = m.operands.iter().map(|o| o.name()).collect();
        let served: Vec<&str> = m.served_dims.iter().map(|&d| arr.dims[d].name.as_str()).collect();
        let served = if served.is_empty() { "none".to_string() } else { served.join(", ") };
        let _ = writeln!(
            s,
            "| {} | {} | {} ({} bits) | {} | {} | {} | {} ({served}) | {} |",
            m.name,
            ops.join(", "),
            size(m.size_bits),
            m.size_bits,
            num(m.r_cost),
            num(m.w_cost),
            ports_cell(m),
            a.instances(i),
            if m.double_buffering { "yes" } else { "no" }
        );
    }
    let _ = writeln!(s, "\nMemories lowest level first; energies per full-bandwidth word.");
    s
}

/// `qc accelerators show --format json`.
fn to_json(q: &QcAccelerator, source: &AcceleratorSource) -> serde_json::Value {
    let a = &q.accelerator;
    let arr = &a.array;
    let dim = |i: &usize| arr.dims[*i].name.clone();
    json!({
        "schema_version": 1,
        "name": a.name,
        "description": q.description,
        "provenance": q.provenance,
        "source": source.describe(),
        "array": {
            "dims": arr.dims.iter().map(|d| json!({"name": d.name, "size": d.size})).collect::<Vec<_>>(),
            "mac_units": arr.units(),
            "mac_energy_pj": arr.mac_energy,
            "mac_area": arr.mac_area,
            "input_precision_bits": arr.input_precision,
            "systolic_dims": arr.systolic_dims.iter().map(dim).collect::<Vec<_>>(),
            "imc": qc_backends::cost::ImcMacro::new(arr).map(|m| json!({
                "type": m.kind.name(),
                "bit_serial_precision_bits": m.bit_serial_precision,
                "adc_resolution_bits": m.adc_resolution,
                "cycles_per_mac": m.cycles_per_mac(),
                "tclk_ns": m.tclk(),
                "area_mm2": m.area(),
            })),
        },
        "memories": a.memories.iter().enumerate().map(|(i, m)| json!({
            "name": m.name,
            "operands": m.operands.iter().map(|o| o.name()).collect::<Vec<_>>(),
            "size_bits": m.size_bits,
            "read_energy_pj": m.r_cost,
            "write_energy_pj": m.w_cost,
            "area": m.area,
            "latency_cycles": m.latency,
            "served_dims": m.served_dims.iter().map(dim).collect::<Vec<_>>(),
            "instances": a.instances(i),
            "double_buffering": m.double_buffering,
            "ports": m.ports.iter().map(|p| json!({
                "name": p.name,
                "type": p.kind.name(),
                "bandwidth_min_bits_per_cycle": p.bw_min,
                "bandwidth_max_bits_per_cycle": p.bw_max,
                "allocation": p.allocation.iter().map(|(o, d)| format!("{o}, {d}")).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}
