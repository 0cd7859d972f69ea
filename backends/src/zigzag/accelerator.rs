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
//! In-memory-compute accelerators (`is_imc: true`, or any of `imc_type`, `adc_resolution`,
//! `bit_serial_precision` set) and CACTI cost extraction (`auto_cost_extraction: true`) are
//! refused with their own diagnostics. What qc rejects that ZigZag accepts is listed in
//! `spec/accelerator.md`.

use std::collections::HashSet;

use serde::Deserialize;
use serde_saphyr::{DuplicateKeyPolicy, Location, Spanned};

use super::yaml_error::{OrderedMap, YamlError, YamlErrorKind, YamlSource};
use crate::arch::{Accelerator, ArrayDim, Direction, MemOperand, Memory, OperationalArray, Port, PortKind};

/// What is wrong with an accelerator file; the diagnostic code is `qc::accelerator::<name>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AcceleratorErrorKind {
    /// Not YAML, not a mapping, an unknown or missing key, or a value of the wrong type.
    Schema,
    /// An in-memory-compute accelerator, which qc cannot model.
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

// ---------------------------------------------------------------------------------------------
// Small parsers for ZigZag's regexes.

/// `^D\d$`.
fn is_array_dim(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 2 && b[0] == b'D' && b[1].is_ascii_digit()
}

/// `^[r]?[w]?_port_\d+$`.
fn is_port_name(s: &str) -> bool {
    let s = s.strip_prefix('r').unwrap_or(s);
    let s = s.strip_prefix('w').unwrap_or(s);
    s.strip_prefix("_port_").is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
}

/// `^(I[12]|O), (fh|tl|fl|th)$`.
fn parse_allocation(s: &str) -> Option<(MemOperand, Direction)> {
    let (op, dir) = s.split_once(", ")?;
    Some((MemOperand::parse(op)?, Direction::parse(dir)?))
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
const PORT_HELP: &str = "a port has a `name` like `r_port_1`, `w_port_1` or `rw_port_1`, a `type` (read, write or \
     read_write), `bandwidth_min`, `bandwidth_max` (bits per cycle) and an `allocation` list like `[\"I1, tl\"]`";
const ALLOCATION_HELP: &str = "an allocation is `\"<operand>, <direction>\"`: the operand one of the memory's \
     `operands` (I1, I2, O), the direction fh (written from above), tl (read towards the array), fl (written from \
     below) or th (read towards the level above)";
const IMC_HELP: &str = "qc models digital MAC arrays fed by a memory hierarchy; describe the accelerator without \
     `is_imc` and the IMC keys, or use ZigZag itself for in-memory compute";

/// Reads ZigZag's accelerator YAML as an [`Accelerator`]; `file` names it in diagnostics. The
/// rules are in the module documentation and `spec/accelerator.md`.
pub fn read_accelerator_yaml(text: &str, file: &str) -> Result<Accelerator, AcceleratorError> {
    let src = YamlSource { text, file };
    // PyYAML, which ZigZag uses, keeps the last of duplicate keys (ZigZag's own tpu_like.yaml
    // has `ports` twice); duplicate memory names are still seen, and refused, below.
    let mut options = serde_saphyr::Options::default();
    options.duplicate_keys = DuplicateKeyPolicy::LastWins;
    let raw: RawAccelerator = src.parse(options, Kind::Schema, SCHEMA_HELP)?;
    let r = Reader { src };
    r.check_imc(&raw)?;
    let array = r.array(&raw.operational_array)?;
    if let Some(flows) = &raw.dataflows {
        r.dataflows(flows)?;
    }
    let mut memories: Vec<Memory> = Vec::with_capacity(raw.memories.value.0.len());
    let mut names: HashSet<&str> = HashSet::new();
    for (name, mem) in &raw.memories.value.0 {
        if !names.insert(&name.value) {
            return Err(r.err(
                Kind::Memory,
                Some(&format!("memory `{}`", name.value)),
                "memories",
                Some(&name.referenced),
                format!("the memory `{}` is defined twice", name.value),
                "give every memory its own name",
            ));
        }
        memories.push(r.memory(name, mem, &array)?);
    }
    for op in MemOperand::ALL {
        if !memories.iter().any(|m| m.holds(op)) {
            return Err(r.err(
                Kind::Operand,
                None,
                "memories",
                Some(&raw.memories.referenced),
                format!("no memory holds the memory operand `{op}`"),
                "every memory operand (I1, I2, O) needs at least one memory, the top of its hierarchy \
                 (usually a `dram` holding all three)",
            ));
        }
    }
    Ok(Accelerator { name: raw.name.value, array, memories })
}

struct Reader<'a> {
    src: YamlSource<'a>,
}

impl Reader<'_> {
    fn err(
        &self,
        kind: Kind,
        item: Option<&str>,
        key: &str,
        loc: Option<&Location>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> AcceleratorError {
        self.src.error(kind, item, key, loc, message, help)
    }

    fn check_imc(&self, raw: &RawAccelerator) -> Result<(), AcceleratorError> {
        let a = &raw.operational_array.value;
        let imc = |key: &str, loc: &Location, what: String| {
            Err(self.err(
                Kind::Imc,
                Some("operational_array"),
                key,
                Some(loc),
                format!(
                    "{what}: qc cannot model in-memory-compute accelerators (their array and `cells` memory \
                     follow a different cost model)"
                ),
                IMC_HELP,
            ))
        };
        if let Some(b) = a.is_imc.as_ref().filter(|b| b.value) {
            return imc("is_imc", &b.referenced, "the accelerator is in-memory compute".into());
        }
        if let Some(t) = &a.imc_type {
            return imc(
                "imc_type",
                &t.referenced,
                format!("`imc_type: {}` describes in-memory compute", t.value),
            );
        }
        if let Some(v) = a.adc_resolution.as_ref().filter(|v| v.value != 0.0) {
            return imc(
                "adc_resolution",
                &v.referenced,
                "`adc_resolution` describes in-memory compute".into(),
            );
        }
        if let Some(v) = &a.bit_serial_precision {
            return imc(
                "bit_serial_precision",
                &v.referenced,
                "`bit_serial_precision` describes in-memory compute".into(),
            );
        }
        Ok(())
    }

    fn cost(
        &self,
        item: &str,
        key: &str,
        v: Option<&Spanned<f64>>,
        at: &Location,
    ) -> Result<f64, AcceleratorError> {
        let Some(v) = v else {
            return Err(self.err(
                Kind::Cost,
                Some(item),
                key,
                Some(at),
                format!("`{key}` is missing"),
                "qc takes energies and areas from the file (it has no CACTI); give a number, 0 if unknown",
            ));
        };
        if !v.value.is_finite() || v.value < 0.0 {
            return Err(self.err(
                Kind::Cost,
                Some(item),
                key,
                Some(&v.referenced),
                format!("`{key}` is {}", v.value),
                "energies and areas are finite numbers >= 0",
            ));
        }
        Ok(v.value)
    }

    fn array(&self, raw: &Spanned<RawArray>) -> Result<OperationalArray, AcceleratorError> {
        let a = &raw.value;
        let item = Some("operational_array");
        let bad = |key: &str, loc: &Location, msg: String, help: &str| {
            self.err(Kind::Array, item, key, Some(loc), msg, help)
        };
        let dim_help = "array dims are named `D1`, `D2`, ... (`D` and one digit), each once, with one size \
                        >= 1 per dim in `sizes`";
        let mut dims = Vec::with_capacity(a.dimensions.value.len());
        for d in &a.dimensions.value {
            if !is_array_dim(&d.value) {
                return Err(bad(
                    "dimensions",
                    &d.referenced,
                    format!("`{}` is not an array dim name", d.value),
                    dim_help,
                ));
            }
            if dims.iter().any(|x: &ArrayDim| x.name == d.value) {
                return Err(bad(
                    "dimensions",
                    &d.referenced,
                    format!("`{}` is listed twice", d.value),
                    dim_help,
                ));
            }
            dims.push(ArrayDim { name: d.value.clone(), size: 0 });
        }
        if a.sizes.value.len() != dims.len() {
            return Err(bad(
                "sizes",
                &a.sizes.referenced,
                format!("{} dimensions but {} sizes", dims.len(), a.sizes.value.len()),
                dim_help,
            ));
        }
        for (d, s) in dims.iter_mut().zip(&a.sizes.value) {
            d.size = u64::try_from(s.value).ok().filter(|s| *s >= 1).ok_or_else(|| {
                bad("sizes", &s.referenced, format!("the size of `{}` is {}", d.name, s.value), dim_help)
            })?;
        }
        if dims.iter().try_fold(1u64, |acc, d| acc.checked_mul(d.size)).is_none() {
            return Err(bad(
                "sizes",
                &a.sizes.referenced,
                "the array has more than 2^64 MAC units".into(),
                dim_help,
            ));
        }
        let mut systolic_dims = Vec::new();
        for d in a.systolic_dimensions.iter().flatten() {
            let Some(i) = dims.iter().position(|x| x.name == d.value) else {
                return Err(bad(
                    "systolic_dimensions",
                    &d.referenced,
                    format!("`{}` is not a dim of the array", d.value),
                    "systolic dimensions are some of the array's `dimensions`",
                ));
            };
            if systolic_dims.contains(&i) {
                return Err(bad(
                    "systolic_dimensions",
                    &d.referenced,
                    format!("`{}` is listed twice", d.value),
                    "list each systolic dimension once",
                ));
            }
            systolic_dims.push(i);
        }
        let input_precision = match &a.input_precision {
            None => None,
            Some(p) => {
                let help = "input_precision is two bit counts, `[activation bits, weight bits]`";
                if p.value.len() != 2 {
                    return Err(bad(
                        "input_precision",
                        &p.referenced,
                        format!("{} precisions, not 2", p.value.len()),
                        help,
                    ));
                }
                let bits = |v: &Spanned<i64>| {
                    u32::try_from(v.value).map_err(|_| {
                        bad("input_precision", &v.referenced, format!("the precision {}", v.value), help)
                    })
                };
                Some([bits(&p.value[0])?, bits(&p.value[1])?])
            }
        };
        let mac_energy =
            self.cost("operational_array", "unit_energy", a.unit_energy.as_ref(), &raw.referenced)?;
        let mac_area = self.cost("operational_array", "unit_area", a.unit_area.as_ref(), &raw.referenced)?;
        Ok(OperationalArray { dims, mac_energy, mac_area, input_precision, systolic_dims })
    }

    fn dataflows(&self, raw: &Spanned<OrderedMap<Vec<Spanned<String>>>>) -> Result<(), AcceleratorError> {
        let help = "`dataflows` gives, per array dim `D1`..`D4` (D1 required), a list of unrollings like \
                    `\"K, 16\"`; qc checks it and does not use it";
        let bad = |loc: &Location, msg: String| {
            self.err(Kind::Dataflows, Some("dataflows"), "dataflows", Some(loc), msg, help)
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

    fn memory(
        &self,
        name: &Spanned<String>,
        m: &RawMemory,
        array: &OperationalArray,
    ) -> Result<Memory, AcceleratorError> {
        let item_s = format!("memory `{}`", name.value);
        let item = Some(item_s.as_str());
        let at_name = &name.referenced;

        if let Some(a) = m.auto_cost_extraction.as_ref().filter(|a| a.value) {
            return Err(self.err(
                Kind::Cacti,
                item,
                "auto_cost_extraction",
                Some(&a.referenced),
                "the costs are to be extracted with CACTI, which qc does not have",
                "give `r_cost`, `w_cost` and `area` in the file (ZigZag prints the values CACTI gives; \
                 `zigzag/cacti/`) and drop `auto_cost_extraction`",
            ));
        }
        let size_bits = u64::try_from(m.size.value).ok().filter(|s| *s >= 1).ok_or_else(|| {
            self.err(
                Kind::Memory,
                item,
                "size",
                Some(&m.size.referenced),
                format!("the size is {}", m.size.value),
                "a memory's size is its capacity in bits, >= 1",
            )
        })?;
        let latency = u64::try_from(m.latency.value).map_err(|_| {
            self.err(
                Kind::Memory,
                item,
                "latency",
                Some(&m.latency.referenced),
                format!("the latency is {}", m.latency.value),
                "latency is a number of cycles, >= 0",
            )
        })?;
        let r_cost = self.cost(&item_s, "r_cost", m.r_cost.as_ref(), at_name)?;
        let w_cost = self.cost(&item_s, "w_cost", m.w_cost.as_ref(), at_name)?;
        let area = self.cost(&item_s, "area", m.area.as_ref(), at_name)?;

        // Operands.
        let op_help = "a memory holds some of the memory operands I1, I2, O (linked to the layer's I, W, O by \
                       the mapping), each listed once";
        let mut operands = Vec::new();
        for o in &m.operands.value {
            let Some(op) = MemOperand::parse(&o.value) else {
                return Err(self.err(
                    Kind::Operand,
                    item,
                    "operands",
                    Some(&o.referenced),
                    format!("`{}` is not a memory operand", o.value),
                    op_help,
                ));
            };
            if operands.contains(&op) {
                return Err(self.err(
                    Kind::Operand,
                    item,
                    "operands",
                    Some(&o.referenced),
                    format!("`{op}` is listed twice"),
                    op_help,
                ));
            }
            operands.push(op);
        }
        if operands.is_empty() {
            return Err(self.err(
                Kind::Operand,
                item,
                "operands",
                Some(&m.operands.referenced),
                "the memory holds no operand",
                op_help,
            ));
        }

        // Ports.
        let mut ports: Vec<Port> = Vec::with_capacity(m.ports.len());
        for p in &m.ports {
            ports.push(self.port(&name.value, p, &operands, &ports)?);
        }

        // Served dims.
        let mut served_dims = Vec::new();
        for d in &m.served_dimensions {
            let Some(i) = array.dim_index(&d.value) else {
                let dims: Vec<&str> = array.dims.iter().map(|d| d.name.as_str()).collect();
                return Err(self.err(
                    Kind::ServedDims,
                    item,
                    "served_dimensions",
                    Some(&d.referenced),
                    format!("`{}` is not a dim of the operational array", d.value),
                    format!("the array's dims are [{}]", dims.join(", ")),
                ));
            };
            if served_dims.contains(&i) {
                return Err(self.err(
                    Kind::ServedDims,
                    item,
                    "served_dimensions",
                    Some(&d.referenced),
                    format!("`{}` is listed twice", d.value),
                    "list each served dimension once",
                ));
            }
            served_dims.push(i);
        }

        Ok(Memory {
            name: name.value.clone(),
            size_bits,
            r_cost,
            w_cost,
            area,
            latency,
            operands,
            ports,
            served_dims,
            double_buffering: m.force_double_buffering.unwrap_or(false),
        })
    }

    fn port(
        &self,
        mem: &str,
        p: &RawPort,
        operands: &[MemOperand],
        earlier: &[Port],
    ) -> Result<Port, AcceleratorError> {
        let pname = &p.name.value;
        let item_s = format!("memory `{mem}`, port `{pname}`");
        let item = Some(item_s.as_str());
        let err = |kind, key: &str, loc: &Location, msg: String, help: &str| {
            self.err(kind, item, key, Some(loc), msg, help)
        };
        if !is_port_name(pname) {
            return Err(err(
                Kind::Port,
                "name",
                &p.name.referenced,
                format!("`{pname}` is not a port name"),
                PORT_HELP,
            ));
        }
        if earlier.iter().any(|q| q.name == *pname) {
            return Err(err(
                Kind::Port,
                "name",
                &p.name.referenced,
                format!("the memory has two ports named `{pname}`"),
                "give each port of a memory its own name",
            ));
        }
        let kind = match p.kind.value.as_str() {
            "read" => PortKind::Read,
            "write" => PortKind::Write,
            "read_write" => PortKind::ReadWrite,
            other => {
                return Err(err(
                    Kind::Port,
                    "type",
                    &p.kind.referenced,
                    format!("`{other}` is not a port type"),
                    PORT_HELP,
                ));
            }
        };
        let bw_help = "bandwidths are bits per cycle: `bandwidth_max` the full word, `bandwidth_min` the \
                       access granularity, 1 <= bandwidth_min <= bandwidth_max";
        let bw = |v: &Spanned<i64>, key: &str| {
            u64::try_from(v.value).ok().filter(|b| *b >= 1).ok_or_else(|| {
                err(Kind::Bandwidth, key, &v.referenced, format!("`{key}` is {}", v.value), bw_help)
            })
        };
        let bw_min = bw(&p.bandwidth_min, "bandwidth_min")?;
        let bw_max = bw(&p.bandwidth_max, "bandwidth_max")?;
        if bw_min > bw_max {
            return Err(err(
                Kind::Bandwidth,
                "bandwidth_min",
                &p.bandwidth_min.referenced,
                format!("`bandwidth_min` ({bw_min}) is greater than `bandwidth_max` ({bw_max})"),
                bw_help,
            ));
        }
        let mut allocation = Vec::with_capacity(p.allocation.len());
        for a in &p.allocation {
            let Some((op, dir)) = parse_allocation(&a.value) else {
                return Err(err(
                    Kind::Allocation,
                    "allocation",
                    &a.referenced,
                    format!("`{}` is not an allocation", a.value),
                    ALLOCATION_HELP,
                ));
            };
            if !operands.contains(&op) {
                return Err(err(
                    Kind::Allocation,
                    "allocation",
                    &a.referenced,
                    format!("`{}` names the operand `{op}`, which the memory does not hold", a.value),
                    ALLOCATION_HELP,
                ));
            }
            if !kind.allows(dir) {
                let (what, wants) = if dir.is_read() { ("a read", "read") } else { ("a write", "write") };
                return Err(err(
                    Kind::Direction,
                    "allocation",
                    &a.referenced,
                    format!(
                        "`{}` is {what} but the port is a {} port: port allocation on a port of the wrong \
                         direction",
                        a.value,
                        kind.name()
                    ),
                    &format!(
                        "allocate `{dir}` to a {wants} or read_write port (tl and th are reads out of the \
                         memory, fh and fl writes into it)"
                    ),
                ));
            }
            // The same link on several ports is allowed, as in ZigZag, where the last port wins
            // (ZigZag's own generic_array_cacti.yaml does it); twice on one port is a typo.
            if allocation.contains(&(op, dir)) {
                return Err(err(
                    Kind::Allocation,
                    "allocation",
                    &a.referenced,
                    format!("`{}` is already allocated to this port", a.value),
                    "allocate each (operand, direction) once per port",
                ));
            }
            allocation.push((op, dir));
        }
        Ok(Port { name: pname.clone(), kind, bw_min, bw_max, allocation })
    }
}
