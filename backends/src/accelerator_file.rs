//! qc's own accelerator file (`format: qc-accelerator/1`, `spec/accelerator.md`, "qc's
//! accelerator format"): read ([`read_qc_accelerator`]), written ([`write_qc_accelerator`], which
//! round-trips exactly), and told apart from ZigZag's accelerator YAML ([`read_accelerator_file`]).
//!
//! The format carries every field of [`Accelerator`] with the unit in the key's name
//! (`size_bits`, `read_energy_pj`, `bandwidth_max_bits_per_cycle`), the memories as a list,
//! lowest level first, served dims by name, and two lines for people: `description` and
//! `provenance` (where the numbers come from; both required, non-empty). Beyond those, the array
//! needing a dim and the key names, it is checked by the checks ZigZag's YAML goes through
//! (`accelerator_check.rs`: the same rules and diagnostic codes `qc::accelerator::*`), so
//! that a built-in design and a user's file are accepted by the same checks.

use std::fmt::Write as _;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_saphyr::Spanned;

use crate::accelerator_check::{
    SpannedAccelerator, SpannedArray, SpannedImc, SpannedMemory, SpannedPort, Spelling, check,
    impl_check_kind,
};
use crate::arch::Accelerator;
use crate::zigzag::YamlError;
use crate::zigzag::yaml_error::{OrderedMap, YamlErrorKind, YamlSource};

/// The value of the `format` key of qc's accelerator files.
pub const FORMAT: &str = "qc-accelerator/1";

/// Which format an accelerator file was read as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    /// qc's own (a top-level `format:` key).
    Qc,
    /// ZigZag's accelerator YAML (no `format:` key).
    ZigZag,
}

impl FileFormat {
    /// `qc` or `zigzag`.
    pub fn name(self) -> &'static str {
        match self {
            FileFormat::Qc => "qc",
            FileFormat::ZigZag => "zigzag",
        }
    }
}

/// What is wrong with a qc accelerator file; the diagnostic code is `qc::accelerator::<name>`
/// (the same code as ZigZag's reader gives for the same problem).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QcAcceleratorErrorKind {
    /// Not YAML, not a mapping, an unknown or missing key, or a value of the wrong type.
    Schema,
    /// A `format` other than [`FORMAT`].
    Format,
    /// An empty `description` or `provenance`.
    Provenance,
    /// The array: dim names, sizes, systolic dims, input precision.
    Array,
    /// A negative or non-finite energy or area.
    Cost,
    /// A memory listed twice, or a size < 1.
    Memory,
    /// A memory operand not `I1`, `I2`, `O`, listed twice, none, or held by no memory.
    Operand,
    /// A port name or type.
    Port,
    /// An allocation not of the form `"I1, tl"`, for an operand not held, or given twice.
    Allocation,
    /// An allocation on a port of the wrong direction.
    Direction,
    /// A bandwidth < 1 or min > max.
    Bandwidth,
    /// A served dim not of the array, or listed twice.
    ServedDims,
    /// A malformed in-memory-compute array (`array.imc`) or `cells` memory.
    Imc,
}

impl YamlErrorKind for QcAcceleratorErrorKind {
    const FILE_KIND: &'static str =
        "qc accelerator file (read as format qc-accelerator/1 because of its `format:` key)";

    /// Written out so that the tidy test finds each one documented in spec/diagnostics.md.
    fn code(self) -> &'static str {
        match self {
            Kind::Schema => "qc::accelerator::schema",
            Kind::Format => "qc::accelerator::format",
            Kind::Provenance => "qc::accelerator::provenance",
            Kind::Array => "qc::accelerator::array",
            Kind::Cost => "qc::accelerator::cost",
            Kind::Memory => "qc::accelerator::memory",
            Kind::Operand => "qc::accelerator::operand",
            Kind::Port => "qc::accelerator::port",
            Kind::Allocation => "qc::accelerator::allocation",
            Kind::Direction => "qc::accelerator::direction",
            Kind::Bandwidth => "qc::accelerator::bandwidth",
            Kind::ServedDims => "qc::accelerator::served-dims",
            Kind::Imc => "qc::accelerator::imc",
        }
    }
}

/// A qc accelerator file that qc cannot read.
pub type QcAcceleratorError = YamlError<QcAcceleratorErrorKind>;

impl_check_kind!(QcAcceleratorErrorKind);

type Kind = QcAcceleratorErrorKind;

/// An accelerator file of either format that cannot be read.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum AcceleratorFileError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Qc(Box<QcAcceleratorError>),
    #[error(transparent)]
    #[diagnostic(transparent)]
    ZigZag(Box<crate::zigzag::AcceleratorError>),
}

/// A qc accelerator file: the accelerator and its two lines for people.
#[derive(Clone, Debug, PartialEq)]
pub struct QcAccelerator {
    pub accelerator: Accelerator,
    /// One line: what the design is.
    pub description: String,
    /// Where the numbers come from (a document, paper or file).
    pub provenance: String,
}

/// An accelerator file of either format, read.
#[derive(Clone, Debug, PartialEq)]
pub struct AcceleratorFile {
    pub accelerator: Accelerator,
    /// A qc file's `description` and `provenance`; `None` for ZigZag's.
    pub lines: Option<(String, String)>,
    /// The format it was read as.
    pub format: FileFormat,
}

/// Reads an accelerator file of either format: qc's when the top level has a `format` key,
/// else ZigZag's.
pub fn read_accelerator_file(text: &str, file: &str) -> Result<AcceleratorFile, AcceleratorFileError> {
    match detect(text) {
        FileFormat::Qc => {
            let q = read_qc_accelerator(text, file).map_err(|e| AcceleratorFileError::Qc(Box::new(e)))?;
            Ok(AcceleratorFile {
                accelerator: q.accelerator,
                lines: Some((q.description, q.provenance)),
                format: FileFormat::Qc,
            })
        }
        FileFormat::ZigZag => {
            let accelerator = crate::zigzag::read_accelerator_yaml(text, file)
                .map_err(|e| AcceleratorFileError::ZigZag(Box::new(e)))?;
            Ok(AcceleratorFile { accelerator, lines: None, format: FileFormat::ZigZag })
        }
    }
}

/// The format of an accelerator file: qc's if its top level is a mapping with a `format` key.
pub fn detect(text: &str) -> FileFormat {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(default)]
        format: Option<IgnoredAny>,
    }
    let mut options = serde_saphyr::Options::default();
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::LastWins;
    match serde_saphyr::from_str_with_options::<Option<Probe>>(text, options) {
        Ok(Some(Probe { format: Some(_) })) => FileFormat::Qc,
        _ => FileFormat::ZigZag,
    }
}

// ---------------------------------------------------------------------------------------------
// The raw form.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    format: Spanned<String>,
    name: Spanned<String>,
    description: Spanned<String>,
    provenance: Spanned<String>,
    array: Spanned<RawArray>,
    memories: Spanned<Vec<RawMemory>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArray {
    dims: Spanned<OrderedMap<Spanned<i64>>>,
    /// Required, except for an in-memory-compute array.
    #[serde(default)]
    mac_energy_pj: Option<Spanned<f64>>,
    #[serde(default)]
    mac_area: Option<Spanned<f64>>,
    #[serde(default)]
    input_precision_bits: Option<Spanned<Vec<Spanned<i64>>>>,
    #[serde(default)]
    systolic_dims: Vec<Spanned<String>>,
    #[serde(default)]
    imc: Option<Spanned<RawImc>>,
}

/// `array.imc`: in-memory compute.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImc {
    #[serde(rename = "type")]
    kind: Spanned<String>,
    bit_serial_precision_bits: Spanned<f64>,
    #[serde(default)]
    adc_resolution_bits: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMemory {
    name: Spanned<String>,
    operands: Spanned<Vec<Spanned<String>>>,
    size_bits: Spanned<i64>,
    read_energy_pj: Spanned<f64>,
    write_energy_pj: Spanned<f64>,
    area: Spanned<f64>,
    latency_cycles: Spanned<i64>,
    served_dims: Vec<Spanned<String>>,
    #[serde(default)]
    double_buffering: bool,
    ports: Vec<RawPort>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPort {
    name: Spanned<String>,
    #[serde(rename = "type")]
    kind: Spanned<String>,
    bandwidth_min_bits_per_cycle: Spanned<i64>,
    bandwidth_max_bits_per_cycle: Spanned<i64>,
    allocation: Vec<Spanned<String>>,
}

const SCHEMA_HELP: &str = "a qc accelerator file has `format: qc-accelerator/1`, `name`, `description`, \
     `provenance`, `array` (dims, mac_energy_pj, mac_area, input_precision_bits, systolic_dims) and `memories`, \
     a list lowest level first (name, operands, size_bits, read_energy_pj, write_energy_pj, area, latency_cycles, \
     served_dims, double_buffering, ports); see spec/accelerator.md";
const DIMS_HELP: &str = "`dims` maps each array dim, `D1`, `D2`, ... (`D` and one digit), to its size >= 1, e.g. \
     `dims: {D1: 32, D2: 32}`";

/// qc's keys and the hints that name them.
const SPELLING: Spelling = Spelling {
    array: "array",
    array_noun: "array",
    dim_noun: "dim",
    dims: "dims",
    sizes: "dims",
    systolic_dims: "systolic_dims",
    input_precision: "input_precision_bits",
    mac_energy: "mac_energy_pj",
    mac_area: "mac_area",
    memory_name: "name",
    size: "size_bits",
    latency: "latency_cycles",
    r_cost: "read_energy_pj",
    w_cost: "write_energy_pj",
    area: "area",
    served_dims: "served_dims",
    bw_min: "bandwidth_min_bits_per_cycle",
    bw_max: "bandwidth_max_bits_per_cycle",
    dims_help: DIMS_HELP,
    cost_help: "energies and areas are finite numbers >= 0 (0 if unknown)",
    port_help: "a port has a `name` like `r_port_1`, `w_port_1` or `rw_port_1`, a `type` (read, write or \
                read_write), `bandwidth_min_bits_per_cycle`, `bandwidth_max_bits_per_cycle` and an `allocation` \
                list like `[\"I1, tl\"]`",
    bandwidth_help: "bandwidths are bits per cycle: `bandwidth_max_bits_per_cycle` the full word, \
                     `bandwidth_min_bits_per_cycle` the access granularity, 1 <= min <= max",
    wrong_direction: "",
    imc: "imc",
    imc_kind: "type",
    bit_serial_precision: "bit_serial_precision_bits",
    adc_resolution: "adc_resolution_bits",
};

/// Reads qc's accelerator format; `file` names it in diagnostics. The rules are in
/// `spec/accelerator.md`.
pub fn read_qc_accelerator(text: &str, file: &str) -> Result<QcAccelerator, QcAcceleratorError> {
    let src = YamlSource { text, file };
    let raw: Raw = src.parse(serde_saphyr::Options::default(), Kind::Schema, SCHEMA_HELP)?;
    if raw.format.value != FORMAT {
        return Err(src.error(
            Kind::Format,
            None,
            "format",
            Some(&raw.format.referenced),
            format!("the format `{}` is not one qc reads", raw.format.value),
            format!(
                "this qc reads `format: {FORMAT}`; a ZigZag accelerator YAML has no `format` key (drop it to \
                 read the file as ZigZag's)"
            ),
        ));
    }
    for (key, v) in [("description", &raw.description), ("provenance", &raw.provenance)] {
        if v.value.trim().is_empty() {
            return Err(src.error(
                Kind::Provenance,
                None,
                key,
                Some(&v.referenced),
                format!("`{key}` is empty"),
                "`description` says in one line what the design is; `provenance` says where its numbers come \
                 from (a paper, a file, a document with a section per number); both are required",
            ));
        }
    }
    let dims = &raw.array.value.dims;
    if dims.value.0.is_empty() {
        return Err(src.error(
            Kind::Array,
            Some("array"),
            "dims",
            Some(&dims.referenced),
            "the array has no dims",
            DIMS_HELP,
        ));
    }
    let description = raw.description.value.clone();
    let provenance = raw.provenance.value.clone();
    let accelerator = check(src, &SPELLING, spanned(raw))?;
    Ok(QcAccelerator { accelerator, description, provenance })
}

/// The accelerator as the shared checks take it.
fn spanned(raw: Raw) -> SpannedAccelerator {
    let a = raw.array.value;
    let (dims, sizes) = a.dims.value.0.into_iter().unzip();
    let array = SpannedArray {
        at: raw.array.referenced,
        dims,
        sizes,
        sizes_at: a.dims.referenced,
        mac_energy: a.mac_energy_pj,
        mac_area: a.mac_area,
        input_precision: a.input_precision_bits,
        systolic_dims: a.systolic_dims,
        imc: a.imc.map(|i| SpannedImc {
            at: i.referenced,
            kind: Some(i.value.kind),
            bit_serial_precision: Some(i.value.bit_serial_precision_bits),
            adc_resolution: i.value.adc_resolution_bits,
        }),
    };
    let memories = raw.memories.value.into_iter().map(|m| SpannedMemory {
        name: m.name,
        size: m.size_bits,
        r_cost: Some(m.read_energy_pj),
        w_cost: Some(m.write_energy_pj),
        area: Some(m.area),
        latency: m.latency_cycles,
        operands: m.operands,
        ports: m
            .ports
            .into_iter()
            .map(|p| SpannedPort {
                name: p.name,
                kind: p.kind,
                bw_min: p.bandwidth_min_bits_per_cycle,
                bw_max: p.bandwidth_max_bits_per_cycle,
                allocation: p.allocation,
            })
            .collect(),
        served_dims: m.served_dims,
        double_buffering: m.double_buffering,
    });
    SpannedAccelerator {
        name: raw.name.value,
        array,
        memories: memories.collect(),
        memories_at: raw.memories.referenced,
    }
}

// ---------------------------------------------------------------------------------------------
// The writer.

/// A float as the shortest text that parses back to the same bits (`1.0`, `0.095`, `1e-20`).
fn float(v: f64) -> String {
    let s = format!("{v:?}");
    // Rust writes `inf`/`NaN`, which are not YAML floats; the reader refuses them anyway.
    if v.is_finite() { s } else { format!("\"{s}\"") }
}

/// A string as a YAML scalar: plain when that reads back as the same string, else double-quoted
/// (`crate::zigzag::workload::quote`).
fn string(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes().next().is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && s.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n" | "nan" | "inf"
        );
    if plain { s.to_string() } else { crate::zigzag::workload::quote(s) }
}

/// Writes `acc` in qc's accelerator format, with its `description` and `provenance`; reading
/// the text back with [`read_qc_accelerator`] gives exactly `acc` (floats written so that they
/// parse back bit-identical).
pub fn write_qc_accelerator(acc: &Accelerator, description: &str, provenance: &str) -> String {
    let mut s = String::new();
    let a = &acc.array;
    let dim_names = |idx: &[usize]| -> String {
        let names: Vec<&str> = idx.iter().map(|&i| a.dims[i].name.as_str()).collect();
        format!("[{}]", names.join(", "))
    };
    let _ = writeln!(s, "# qc accelerator file (spec/accelerator.md, \"qc's accelerator format\").");
    let _ = writeln!(s, "# Energies in pJ, sizes and bandwidths in bits, areas in the design's own unit.");
    let _ = writeln!(s, "format: {FORMAT}");
    let _ = writeln!(s, "name: {}", string(&acc.name));
    let _ = writeln!(s, "description: {}", string(description));
    let _ = writeln!(s, "provenance: {}", string(provenance));
    let _ = writeln!(s);
    let _ = writeln!(s, "array:");
    let dims: Vec<String> = a.dims.iter().map(|d| format!("{}: {}", string(&d.name), d.size)).collect();
    let _ = writeln!(s, "  dims: {{{}}}  # {} MAC units", dims.join(", "), a.units());
    if a.imc.is_none() {
        let _ = writeln!(s, "  mac_energy_pj: {}", float(a.mac_energy));
        let _ = writeln!(s, "  mac_area: {}", float(a.mac_area));
    }
    if let Some([x, y]) = a.input_precision {
        let _ = writeln!(s, "  input_precision_bits: [{x}, {y}]");
    }
    let _ = writeln!(s, "  systolic_dims: {}", dim_names(&a.systolic_dims));
    if let Some(imc) = &a.imc {
        let _ = writeln!(s, "  imc:  # in-memory compute in the `cells` memory (spec/imc.md)");
        let _ = writeln!(s, "    type: {}", imc.kind.name());
        let _ = writeln!(s, "    bit_serial_precision_bits: {}", imc.bit_serial_precision);
        let _ = writeln!(s, "    adc_resolution_bits: {}", imc.adc_resolution);
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "# Lowest level first: each operand's levels are the memories holding it, in this order."
    );
    let _ = writeln!(s, "memories:");
    for (i, m) in acc.memories.iter().enumerate() {
        if i > 0 {
            let _ = writeln!(s);
        }
        let ops: Vec<&str> = m.operands.iter().map(|o| o.name()).collect();
        let _ = writeln!(s, "  - name: {}", string(&m.name));
        let _ = writeln!(s, "    operands: [{}]", ops.join(", "));
        let _ = writeln!(s, "    size_bits: {}", m.size_bits);
        let _ = writeln!(s, "    read_energy_pj: {}", float(m.r_cost));
        let _ = writeln!(s, "    write_energy_pj: {}", float(m.w_cost));
        let _ = writeln!(s, "    area: {}", float(m.area));
        let _ = writeln!(s, "    latency_cycles: {}", m.latency);
        let n = acc.instances(i);
        let _ = writeln!(
            s,
            "    served_dims: {}  # {n} instance{}",
            dim_names(&m.served_dims),
            if n == 1 { "" } else { "s" }
        );
        let _ = writeln!(s, "    double_buffering: {}", m.double_buffering);
        if m.ports.is_empty() {
            let _ = writeln!(s, "    ports: []");
            continue;
        }
        let _ = writeln!(s, "    ports:");
        for p in &m.ports {
            let alloc: Vec<String> = p.allocation.iter().map(|(o, d)| format!("\"{o}, {d}\"")).collect();
            let _ = writeln!(s, "      - name: {}", string(&p.name));
            let _ = writeln!(s, "        type: {}", p.kind.name());
            let _ = writeln!(s, "        bandwidth_min_bits_per_cycle: {}", p.bw_min);
            let _ = writeln!(s, "        bandwidth_max_bits_per_cycle: {}", p.bw_max);
            let _ = writeln!(s, "        allocation: [{}]", alloc.join(", "));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::{ArrayDim, Direction, MemOperand, Memory, OperationalArray, Port, PortKind};

    fn sample() -> Accelerator {
        let port = |name: &str, kind, bw, alloc: Vec<(MemOperand, Direction)>| Port {
            name: name.into(),
            kind,
            bw_min: bw,
            bw_max: bw,
            allocation: alloc,
        };
        Accelerator {
            name: "odd name: \"x\"".into(),
            array: OperationalArray {
                dims: vec![ArrayDim { name: "D1".into(), size: 4 }, ArrayDim { name: "D2".into(), size: 3 }],
                mac_energy: 0.1 + 0.2,
                mac_area: 5e-324,
                input_precision: Some([8, 4]),
                systolic_dims: vec![1],
                imc: None,
            },
            memories: vec![
                Memory {
                    name: "rf".into(),
                    size_bits: 64,
                    r_cost: 1e-20,
                    w_cost: 1.7976931348623157e308,
                    area: 0.0,
                    latency: 1,
                    operands: vec![MemOperand::I2],
                    ports: vec![
                        port("r_port_1", PortKind::Read, 8, vec![(MemOperand::I2, Direction::ToLow)]),
                        port("w_port_1", PortKind::Write, 8, vec![(MemOperand::I2, Direction::FromHigh)]),
                    ],
                    served_dims: vec![],
                    double_buffering: true,
                },
                Memory {
                    name: "dram".into(),
                    size_bits: 1 << 40,
                    r_cost: 700.0,
                    w_cost: 750.123456789,
                    area: 3.0,
                    latency: 0,
                    operands: vec![MemOperand::I1, MemOperand::I2, MemOperand::O],
                    ports: vec![port(
                        "rw_port_1",
                        PortKind::ReadWrite,
                        64,
                        vec![
                            (MemOperand::I1, Direction::ToLow),
                            (MemOperand::I2, Direction::ToLow),
                            (MemOperand::O, Direction::FromLow),
                            (MemOperand::O, Direction::ToLow),
                        ],
                    )],
                    served_dims: vec![1, 0],
                    double_buffering: false,
                },
            ],
        }
    }

    #[test]
    fn writes_and_reads_back_exactly() {
        let acc = sample();
        let text = write_qc_accelerator(&acc, "a test: \"quoted\"\nline", "nowhere");
        assert_eq!(detect(&text), FileFormat::Qc);
        let back = read_qc_accelerator(&text, "t.yaml").unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back.accelerator, acc);
        assert_eq!(back.description, "a test: \"quoted\"\nline");
        assert_eq!(back.accelerator.array.mac_energy.to_bits(), (0.1f64 + 0.2).to_bits());
    }

    #[test]
    fn diagnostics_have_codes_and_labels() {
        let text = write_qc_accelerator(&sample(), "d", "p");
        let bad = text.replace("bandwidth_min_bits_per_cycle: 64", "bandwidth_min_bits_per_cycle: 65");
        let e = read_qc_accelerator(&bad, "t.yaml").unwrap_err();
        assert_eq!(e.kind, Kind::Bandwidth);
        assert_eq!(e.labelled_text(), Some("65"));
        assert_eq!(
            e.message(),
            "`bandwidth_min_bits_per_cycle` (65) is greater than `bandwidth_max_bits_per_cycle` (64)"
        );
        let bad = text.replace(FORMAT, "qc-accelerator/9");
        let e = read_qc_accelerator(&bad, "t.yaml").unwrap_err();
        assert_eq!(e.kind, Kind::Format);
        assert!(e.to_string().contains("qc accelerator file"), "{e}");
        let bad = text
            .replace("provenance: nowhere", "provenance: \"\"")
            .replace("provenance: p", "provenance: \"\"");
        assert_eq!(read_qc_accelerator(&bad, "t.yaml").unwrap_err().kind, Kind::Provenance);
        let bad = text.replace("served_dims: [D2, D1]", "served_dims: [D2, D7]");
        let e = read_qc_accelerator(&bad, "t.yaml").unwrap_err();
        assert_eq!(e.kind, Kind::ServedDims);
        assert_eq!(e.labelled_text(), Some("D7"));
        let bad = text.replace("size_bits: 64", "size_bytes: 64");
        assert_eq!(read_qc_accelerator(&bad, "t.yaml").unwrap_err().kind, Kind::Schema);
    }

    #[test]
    fn zigzag_files_are_detected_as_zigzag() {
        assert_eq!(detect("name: x\nmemories: {}\noperational_array: {}\n"), FileFormat::ZigZag);
        assert_eq!(detect("not: [valid"), FileFormat::ZigZag);
        let Err(AcceleratorFileError::ZigZag(e)) = read_accelerator_file("name: x\n", "z.yaml") else {
            panic!("read as qc")
        };
        assert!(e.to_string().contains("ZigZag accelerator"), "{e}");
    }
}
