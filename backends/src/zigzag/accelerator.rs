//! ZigZag's accelerator YAML (`zigzag/parser/accelerator_validator.py`,
//! `accelerator_factory.py`, ZigZag 3.9.1) read as an [`Accelerator`].
//!
//! The file is checked as ZigZag checks it (unknown keys, missing required keys and wrong types
//! are schema errors; array dims `^D\d$`; operands `I1`, `I2`, `O`; port names
//! `^[r]?[w]?_port_\d+$`; port types `read`, `write`, `read_write`; allocations
//! `"<I1|I2|O>, <fh|tl|fl|th>"` on a port of the right direction; `bandwidth_min <=
//! bandwidth_max`; served dims of the array; systolic dims of the array), and then:
//!
//! - `operational_array` -> [`OperationalArray`]: `dimensions`/`sizes` -> [`ArrayDim`]s,
//!   `unit_energy` -> `mac_energy`, `unit_area` -> `mac_area`, `input_precision`,
//!   `systolic_dimensions` -> indices into the dims.
//! - `memories`, in the file's order (the hierarchy's, lowest level first) -> [`Memory`]s:
//!   `size` -> `size_bits`, `r_cost`, `w_cost`, `area`, `latency`, `operands`, `ports` (each
//!   allocation string -> a `(MemOperand, Direction)` on its port), `served_dimensions` ->
//!   indices into the array dims, `force_double_buffering` -> `double_buffering`.
//!   `mem_type` (only used by CACTI) is accepted and ignored.
//! - `dataflows` (optional `D1`..`D4` -> `"DIM, n"` lists) is checked and ignored: the model has
//!   no place for it, and ZigZag only uses it when told to.
//!
//! In-memory-compute accelerators (`is_imc: true` with `imc_type`, `bit_serial_precision`,
//! `adc_resolution` and a `cells` memory) become an array with [`crate::arch::Imc`] parameters,
//! checked by the shared checks (`qc::accelerator::imc`); the IMC keys without `is_imc` are
//! refused as ZigZag refuses them. CACTI cost extraction (`auto_cost_extraction: true`) is
//! refused with its own diagnostic. What qc rejects that ZigZag accepts is listed in
//! `spec/accelerator.md`.
//!
//! This reader checks what only ZigZag's format has (stray IMC keys, the CACTI refusal, then
//! `dataflows`), and leaves the rest to the checks it shares with qc's own format
//! (`accelerator_check.rs`), which speak of ZigZag's keys.

use std::collections::HashSet;

use serde::Deserialize;
use serde_saphyr::{DuplicateKeyPolicy, Location, Spanned};

use super::yaml_error::{OrderedMap, YamlError, YamlErrorKind, YamlSource};
use crate::accelerator_check::{
    SpannedAccelerator, SpannedArray, SpannedImc, SpannedMemory, SpannedPort, Spelling, check,
    impl_check_kind,
};
use crate::arch::Accelerator;

/// What is wrong with an accelerator file; the diagnostic code is `qc::accelerator::<name>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AcceleratorErrorKind {
    /// Not YAML, not a mapping, an unknown or missing key, or a value of the wrong type.
    Schema,
    /// A malformed in-memory-compute array: a missing or wrong `imc_type`,
    /// `bit_serial_precision`, `adc_resolution` or `input_precision`, IMC keys without `is_imc`,
    /// or no proper `cells` memory.
    Imc,
    /// `auto_cost_extraction: true`: costs from CACTI, which qc does not have.
    Cacti,
    /// The operational array: dims not `D<digit>`, listed twice, sizes that do not match, a size
    /// < 1, an unknown systolic dim, an `input_precision` that is not two bit counts.
    Array,
    /// A missing, negative or non-finite energy or area (`unit_energy`, `unit_area`, `r_cost`,
    /// `w_cost`, `area`).
    Cost,
    /// A memory listed twice, or a `size` < 1 or negative `latency`.
    Memory,
    /// A memory operand that is not `I1`, `I2` or `O`, listed twice, a memory holding none, or a
    /// memory operand no memory holds.
    Operand,
    /// A port name not of the form `r_port_1`, listed twice, or a port `type` not `read`,
    /// `write` or `read_write`.
    Port,
    /// An allocation not of the form `"I1, tl"`, for an operand the memory does not hold, or
    /// given twice.
    Allocation,
    /// An allocation on a port of the wrong direction (`fh`/`fl` on a read port, `tl`/`th` on a
    /// write port).
    Direction,
    /// A bandwidth < 1, or `bandwidth_min > bandwidth_max`.
    Bandwidth,
    /// A served dimension that is not a dim of the array, or listed twice.
    ServedDims,
    /// A `dataflows` block not of the form `D1: ["K, 16"]`.
    Dataflows,
}

impl AcceleratorErrorKind {
    /// The last part of the diagnostic code.
    pub fn name(self) -> &'static str {
        self.code().rsplit("::").next().unwrap_or_default()
    }
}

impl YamlErrorKind for AcceleratorErrorKind {
    const FILE_KIND: &'static str = "ZigZag accelerator";

    /// Written out so that the tidy test finds each one documented in spec/diagnostics.md.
    fn code(self) -> &'static str {
        match self {
            AcceleratorErrorKind::Schema => "qc::accelerator::schema",
            AcceleratorErrorKind::Imc => "qc::accelerator::imc",
            AcceleratorErrorKind::Cacti => "qc::accelerator::cacti",
            AcceleratorErrorKind::Array => "qc::accelerator::array",
            AcceleratorErrorKind::Cost => "qc::accelerator::cost",
            AcceleratorErrorKind::Memory => "qc::accelerator::memory",
            AcceleratorErrorKind::Operand => "qc::accelerator::operand",
            AcceleratorErrorKind::Port => "qc::accelerator::port",
            AcceleratorErrorKind::Allocation => "qc::accelerator::allocation",
            AcceleratorErrorKind::Direction => "qc::accelerator::direction",
            AcceleratorErrorKind::Bandwidth => "qc::accelerator::bandwidth",
            AcceleratorErrorKind::ServedDims => "qc::accelerator::served-dims",
            AcceleratorErrorKind::Dataflows => "qc::accelerator::dataflows",
        }
    }
}

/// A ZigZag accelerator file that qc cannot read.
pub type AcceleratorError = YamlError<AcceleratorErrorKind>;

impl_check_kind!(AcceleratorErrorKind);

type Kind = AcceleratorErrorKind;

// ---------------------------------------------------------------------------------------------
// The raw form, as ZigZag's schema has it.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccelerator {
    name: Spanned<String>,
    memories: Spanned<OrderedMap<RawMemory>>,
    operational_array: Spanned<RawArray>,
    #[serde(default)]
    dataflows: Option<Spanned<OrderedMap<Vec<Spanned<String>>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawArray {
    dimensions: Spanned<Vec<Spanned<String>>>,
    sizes: Spanned<Vec<Spanned<i64>>>,
    #[serde(default)]
    unit_energy: Option<Spanned<f64>>,
    #[serde(default)]
    unit_area: Option<Spanned<f64>>,
    #[serde(default)]
    input_precision: Option<Spanned<Vec<Spanned<i64>>>>,
    #[serde(default)]
    systolic_dimensions: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    is_imc: Option<Spanned<bool>>,
    #[serde(default)]
    imc_type: Option<Spanned<String>>,
    #[serde(default)]
    adc_resolution: Option<Spanned<f64>>,
    #[serde(default)]
    bit_serial_precision: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMemory {
    size: Spanned<i64>,
    #[serde(default)]
    r_cost: Option<Spanned<f64>>,
    #[serde(default)]
    w_cost: Option<Spanned<f64>>,
    #[serde(default)]
    area: Option<Spanned<f64>>,
    latency: Spanned<i64>,
    /// Only used by CACTI.
    #[serde(default)]
    #[allow(dead_code)]
    mem_type: Option<String>,
    #[serde(default)]
    auto_cost_extraction: Option<Spanned<bool>>,
    operands: Spanned<Vec<Spanned<String>>>,
    ports: Vec<RawPort>,
    served_dimensions: Vec<Spanned<String>>,
    #[serde(default)]
    force_double_buffering: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPort {
    name: Spanned<String>,
    #[serde(rename = "type")]
    kind: Spanned<String>,
    bandwidth_min: Spanned<i64>,
    bandwidth_max: Spanned<i64>,
    allocation: Vec<Spanned<String>>,
}

/// `^[A-Z]+, [0-9]+$` (the accelerator's `dataflows`).
fn is_dataflow(s: &str) -> bool {
    s.split_once(", ").is_some_and(|(d, n)| {
        !d.is_empty()
            && d.bytes().all(|c| c.is_ascii_uppercase())
            && !n.is_empty()
            && n.bytes().all(|c| c.is_ascii_digit())
    })
}

const SCHEMA_HELP: &str = "a ZigZag accelerator is a YAML mapping with `name`, `operational_array` (dimensions, sizes, \
     unit_energy, unit_area, input_precision, systolic_dimensions) and `memories` (per memory: size, r_cost, w_cost, \
     area, latency, operands, ports, served_dimensions, force_double_buffering); see spec/accelerator.md";
const IMC_HELP: &str = "an in-memory-compute array has `is_imc: true`, `imc_type` (analog or digital), \
     `bit_serial_precision`, `adc_resolution` (analog only) and `input_precision`, and a `cells` memory; a digital \
     MAC array has none of these keys (spec/imc.md)";

/// ZigZag's keys and the hints that name them.
const SPELLING: Spelling = Spelling {
    array: "operational_array",
    array_noun: "operational array",
    dim_noun: "dimension",
    dims: "dimensions",
    sizes: "sizes",
    systolic_dims: "systolic_dimensions",
    input_precision: "input_precision",
    mac_energy: "unit_energy",
    mac_area: "unit_area",
    memory_name: "memories",
    size: "size",
    latency: "latency",
    r_cost: "r_cost",
    w_cost: "w_cost",
    area: "area",
    served_dims: "served_dimensions",
    bw_min: "bandwidth_min",
    bw_max: "bandwidth_max",
    dims_help: "array dims are named `D1`, `D2`, ... (`D` and one digit), each once, with one size >= 1 per dim \
                in `sizes`",
    cost_help: "energies and areas are finite numbers >= 0",
    port_help: "a port has a `name` like `r_port_1`, `w_port_1` or `rw_port_1`, a `type` (read, write or \
                read_write), `bandwidth_min`, `bandwidth_max` (bits per cycle) and an `allocation` list like \
                `[\"I1, tl\"]`",
    bandwidth_help: "bandwidths are bits per cycle: `bandwidth_max` the full word, `bandwidth_min` the access \
                     granularity, 1 <= bandwidth_min <= bandwidth_max",
    wrong_direction: ": port allocation on a port of the wrong direction",
    imc: "is_imc",
    imc_kind: "imc_type",
    bit_serial_precision: "bit_serial_precision",
    adc_resolution: "adc_resolution",
};

/// Reads ZigZag's accelerator YAML as an [`Accelerator`]; `file` names it in diagnostics. The
/// rules are in the module documentation and `spec/accelerator.md`.
pub fn read_accelerator_yaml(text: &str, file: &str) -> Result<Accelerator, AcceleratorError> {
    let src = YamlSource { text, file };
    // PyYAML, which ZigZag uses, keeps the last of duplicate keys (ZigZag's own tpu_like.yaml
    // has `ports` twice); duplicate memory names are still seen, and refused, by the checks.
    let mut options = serde_saphyr::Options::default();
    options.duplicate_keys = DuplicateKeyPolicy::LastWins;
    let mut raw: RawAccelerator = src.parse(options, Kind::Schema, SCHEMA_HELP)?;
    let imc = imc_keys(src, &mut raw.operational_array.value)?;
    for (name, mem) in &raw.memories.value.0 {
        check_cacti(src, name, mem)?;
    }
    if let Some(flows) = &raw.dataflows {
        check_dataflows(src, flows)?;
    }
    check(src, &SPELLING, spanned(raw, imc))
}

/// The accelerator as the shared checks take it.
fn spanned(raw: RawAccelerator, imc: Option<SpannedImc>) -> SpannedAccelerator {
    let a = raw.operational_array.value;
    let array = SpannedArray {
        at: raw.operational_array.referenced,
        dims: a.dimensions.value,
        sizes: a.sizes.value,
        sizes_at: a.sizes.referenced,
        mac_energy: a.unit_energy,
        mac_area: a.unit_area,
        input_precision: a.input_precision,
        systolic_dims: a.systolic_dimensions.unwrap_or_default(),
        imc,
    };
    let memories = raw.memories.value.0.into_iter().map(|(name, m)| SpannedMemory {
        name,
        size: m.size,
        r_cost: m.r_cost,
        w_cost: m.w_cost,
        area: m.area,
        latency: m.latency,
        operands: m.operands,
        ports: m
            .ports
            .into_iter()
            .map(|p| SpannedPort {
                name: p.name,
                kind: p.kind,
                bw_min: p.bandwidth_min,
                bw_max: p.bandwidth_max,
                allocation: p.allocation,
            })
            .collect(),
        served_dims: m.served_dimensions,
        double_buffering: m.force_double_buffering.unwrap_or(false),
    });
    SpannedAccelerator {
        name: raw.name.value,
        array,
        memories: memories.collect(),
        memories_at: raw.memories.referenced,
    }
}

/// The in-memory-compute keys: read when `is_imc` is true (checked with the rest by
/// [`check`]); refused without it, as ZigZag's validator refuses them on a non-IMC array.
fn imc_keys(src: YamlSource<'_>, a: &mut RawArray) -> Result<Option<SpannedImc>, AcceleratorError> {
    let kind = a.imc_type.take();
    let bit_serial_precision = a.bit_serial_precision.take();
    let adc_resolution = a.adc_resolution.take();
    if let Some(b) = a.is_imc.as_ref().filter(|b| b.value) {
        return Ok(Some(SpannedImc { at: b.referenced, kind, bit_serial_precision, adc_resolution }));
    }
    let stray = |key: &str, loc: &Location| {
        Err(src.error(
            Kind::Imc,
            Some("operational_array"),
            key,
            Some(loc),
            format!("`{key}` is given but the array is not in-memory compute (`is_imc` is not true)"),
            IMC_HELP,
        ))
    };
    if let Some(t) = &kind {
        return stray("imc_type", &t.referenced);
    }
    if let Some(v) = adc_resolution.as_ref().filter(|v| v.value != 0.0) {
        return stray("adc_resolution", &v.referenced);
    }
    if let Some(v) = &bit_serial_precision {
        return stray("bit_serial_precision", &v.referenced);
    }
    Ok(None)
}

fn check_cacti(src: YamlSource<'_>, name: &Spanned<String>, m: &RawMemory) -> Result<(), AcceleratorError> {
    match m.auto_cost_extraction.as_ref().filter(|a| a.value) {
        Some(a) => Err(src.error(
            Kind::Cacti,
            Some(&format!("memory `{}`", name.value)),
            "auto_cost_extraction",
            Some(&a.referenced),
            "the costs are to be extracted with CACTI, which qc does not have",
            "give `r_cost`, `w_cost` and `area` in the file (ZigZag prints the values CACTI gives; \
             `zigzag/cacti/`) and drop `auto_cost_extraction`",
        )),
        None => Ok(()),
    }
}

fn check_dataflows(
    src: YamlSource<'_>,
    raw: &Spanned<OrderedMap<Vec<Spanned<String>>>>,
) -> Result<(), AcceleratorError> {
    let help = "`dataflows` gives, per array dim `D1`..`D4` (D1 required), a list of unrollings like \
                `\"K, 16\"`; qc checks it and does not use it";
    let bad = |loc: &Location, msg: String| {
        src.error(Kind::Dataflows, Some("dataflows"), "dataflows", Some(loc), msg, help)
    };
    let mut seen = HashSet::new();
    for (key, list) in &raw.value.0 {
        if !matches!(key.value.as_str(), "D1" | "D2" | "D3" | "D4") {
            return Err(bad(&key.referenced, format!("`{}` is not one of D1..D4", key.value)));
        }
        if !seen.insert(key.value.as_str()) {
            return Err(bad(&key.referenced, format!("`{}` is given twice", key.value)));
        }
        for s in list {
            if !is_dataflow(&s.value) {
                return Err(bad(&s.referenced, format!("`{}` is not of the form `K, 16`", s.value)));
            }
        }
    }
    if !seen.contains("D1") {
        return Err(bad(&raw.referenced, "`D1` is missing".into()));
    }
    Ok(())
}
