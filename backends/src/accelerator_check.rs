//! The checks an accelerator description passes, whichever format it was written in.
//!
//! Both readers, ZigZag's accelerator YAML ([`crate::zigzag::accelerator`]) and qc's own format
//! ([`crate::accelerator_file`]), parse their file into a [`SpannedAccelerator`]: the array, the
//! memories and their ports, each value with its place in the file. [`check`] turns that into an
//! [`Accelerator`] or the first problem, as a diagnostic labelled at the offending value, whose key
//! and wording come from the format's [`Spelling`] (so that a ZigZag file is told about `size` and
//! a qc file about `size_bits`). What only one format has (ZigZag's `dataflows`, in-memory compute
//! and CACTI; qc's `format`, `description` and `provenance`) its reader checks itself.

use std::collections::HashSet;

use serde_saphyr::{Location, Spanned};

use crate::arch::{
    Accelerator, ArrayDim, Direction, Imc, ImcKind, MemOperand, Memory, OperationalArray, Port, PortKind,
};
use crate::zigzag::yaml_error::{YamlError, YamlErrorKind, YamlSource};

/// An accelerator as its file gives it, each value with its place in the file.
pub(crate) struct SpannedAccelerator {
    pub name: String,
    pub array: SpannedArray,
    /// In the file's order, lowest level first.
    pub memories: Vec<SpannedMemory>,
    /// The `memories` value, labelled when no memory holds an operand.
    pub memories_at: Location,
}

pub(crate) struct SpannedArray {
    /// The array's value, labelled when an energy or area is missing.
    pub at: Location,
    pub dims: Vec<Spanned<String>>,
    /// One per dim (a ZigZag file may give another count).
    pub sizes: Vec<Spanned<i64>>,
    /// The sizes as a whole, labelled when they do not match the dims or overflow.
    pub sizes_at: Location,
    pub mac_energy: Option<Spanned<f64>>,
    pub mac_area: Option<Spanned<f64>>,
    pub input_precision: Option<Spanned<Vec<Spanned<i64>>>>,
    pub systolic_dims: Vec<Spanned<String>>,
    /// In-memory compute, when the file says so.
    pub imc: Option<SpannedImc>,
}

/// The in-memory-compute keys of an array.
pub(crate) struct SpannedImc {
    /// The key that makes the array in-memory compute, labelled when a key is missing.
    pub at: Location,
    /// `analog` or `digital`.
    pub kind: Option<Spanned<String>>,
    pub bit_serial_precision: Option<Spanned<f64>>,
    pub adc_resolution: Option<Spanned<f64>>,
}

pub(crate) struct SpannedMemory {
    /// Labelled when the memory is defined twice; missing costs are labelled here too.
    pub name: Spanned<String>,
    pub size: Spanned<i64>,
    pub r_cost: Option<Spanned<f64>>,
    pub w_cost: Option<Spanned<f64>>,
    pub area: Option<Spanned<f64>>,
    pub latency: Spanned<i64>,
    pub operands: Spanned<Vec<Spanned<String>>>,
    pub ports: Vec<SpannedPort>,
    pub served_dims: Vec<Spanned<String>>,
    pub double_buffering: bool,
}

pub(crate) struct SpannedPort {
    pub name: Spanned<String>,
    pub kind: Spanned<String>,
    pub bw_min: Spanned<i64>,
    pub bw_max: Spanned<i64>,
    pub allocation: Vec<Spanned<String>>,
}

/// How a format names what [`check`] reports on: its keys, as the file spells them, and the hints
/// that name them.
pub(crate) struct Spelling {
    /// The array's key, the item of its diagnostics (`operational_array`).
    pub array: &'static str,
    /// The array in a sentence (`operational array`).
    pub array_noun: &'static str,
    /// An array dim in a hint (`dimension`).
    pub dim_noun: &'static str,
    pub dims: &'static str,
    pub sizes: &'static str,
    pub systolic_dims: &'static str,
    pub input_precision: &'static str,
    pub mac_energy: &'static str,
    pub mac_area: &'static str,
    /// The key of a memory's name (`memories` where the names are the keys of a mapping).
    pub memory_name: &'static str,
    pub size: &'static str,
    pub latency: &'static str,
    pub r_cost: &'static str,
    pub w_cost: &'static str,
    pub area: &'static str,
    pub served_dims: &'static str,
    pub bw_min: &'static str,
    pub bw_max: &'static str,
    /// The hint on array dims and sizes.
    pub dims_help: &'static str,
    /// The hint on a negative or non-finite energy or area.
    pub cost_help: &'static str,
    /// The hint on a port's name and type.
    pub port_help: &'static str,
    /// The hint on bandwidths.
    pub bandwidth_help: &'static str,
    /// What follows the message on an allocation on a port of the wrong direction.
    pub wrong_direction: &'static str,
    /// The in-memory-compute keys: the one marking it, the type, the bit-serial precision and
    /// the ADC resolution.
    pub imc: &'static str,
    pub imc_kind: &'static str,
    pub bit_serial_precision: &'static str,
    pub adc_resolution: &'static str,
}

/// The problems [`check`] finds; each format's error kind has a variant of the same name (and
/// code) for each, see [`impl_check_kind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Check {
    Array,
    Cost,
    Memory,
    Operand,
    Port,
    Allocation,
    Direction,
    Bandwidth,
    ServedDims,
    Imc,
}

/// An error kind that has a variant for each [`Check`].
pub(crate) trait CheckKind: YamlErrorKind {
    fn of(check: Check) -> Self;
}

/// Implements [`CheckKind`] for a format's error kind, whose variants include those of [`Check`]
/// by name.
macro_rules! impl_check_kind {
    ($kind:ty) => {
        impl $crate::accelerator_check::CheckKind for $kind {
            fn of(check: $crate::accelerator_check::Check) -> Self {
                use $crate::accelerator_check::Check as C;
                match check {
                    C::Array => Self::Array,
                    C::Cost => Self::Cost,
                    C::Memory => Self::Memory,
                    C::Operand => Self::Operand,
                    C::Port => Self::Port,
                    C::Allocation => Self::Allocation,
                    C::Direction => Self::Direction,
                    C::Bandwidth => Self::Bandwidth,
                    C::ServedDims => Self::ServedDims,
                    C::Imc => Self::Imc,
                }
            }
        }
    };
}
pub(crate) use impl_check_kind;

/// `^D\d$`, ZigZag's array dims (mapping files name them).
pub(crate) fn is_array_dim(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 2 && b[0] == b'D' && b[1].is_ascii_digit()
}

/// `^[r]?[w]?_port_\d+$`, ZigZag's port names.
pub(crate) fn is_port_name(s: &str) -> bool {
    let s = s.strip_prefix('r').unwrap_or(s);
    let s = s.strip_prefix('w').unwrap_or(s);
    s.strip_prefix("_port_").is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
}

/// `^(I[12]|O), (fh|tl|fl|th)$`: `"I1, tl"`.
pub(crate) fn parse_allocation(s: &str) -> Option<(MemOperand, Direction)> {
    let (op, dir) = s.split_once(", ")?;
    Some((MemOperand::parse(op)?, Direction::parse(dir)?))
}

const ALLOCATION_HELP: &str = "an allocation is `\"<operand>, <direction>\"`: the operand one of the memory's \
     `operands` (I1, I2, O), the direction fh (written from above), tl (read towards the array), fl (written from \
     below) or th (read towards the level above)";

/// Checks `acc`, read from `src` and spelled as `spelling` says, and turns it into an
/// [`Accelerator`]; the first problem is an error of `K`.
pub(crate) fn check<K: CheckKind>(
    src: YamlSource<'_>,
    spelling: &Spelling,
    acc: SpannedAccelerator,
) -> Result<Accelerator, YamlError<K>> {
    let c = Checker { src, sp: spelling, kind: std::marker::PhantomData::<K> };
    let array = c.array(&acc.array)?;
    let mut memories: Vec<Memory> = Vec::with_capacity(acc.memories.len());
    let mut names: HashSet<&str> = HashSet::new();
    for m in &acc.memories {
        if !names.insert(&m.name.value) {
            return Err(c.err(
                Check::Memory,
                Some(&format!("memory `{}`", m.name.value)),
                spelling.memory_name,
                Some(&m.name.referenced),
                format!("the memory `{}` is defined twice", m.name.value),
                "give every memory its own name",
            ));
        }
        memories.push(c.memory(m, &array)?);
    }
    let mut array = array;
    if let Some(imc) = &acc.array.imc {
        array.imc = Some(c.imc(imc, &acc, &array, &memories)?);
    }
    for op in MemOperand::ALL {
        if !memories.iter().any(|m| m.holds(op)) {
            return Err(c.err(
                Check::Operand,
                None,
                "memories",
                Some(&acc.memories_at),
                format!("no memory holds the memory operand `{op}`"),
                "every memory operand (I1, I2, O) needs at least one memory, the top of its hierarchy \
                 (usually a `dram` holding all three)",
            ));
        }
    }
    Ok(Accelerator { name: acc.name, array, memories })
}

struct Checker<'a, K> {
    src: YamlSource<'a>,
    sp: &'a Spelling,
    kind: std::marker::PhantomData<K>,
}

impl<K: CheckKind> Checker<'_, K> {
    fn err(
        &self,
        check: Check,
        item: Option<&str>,
        key: &str,
        loc: Option<&Location>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> YamlError<K> {
        self.src.error(K::of(check), item, key, loc, message, help)
    }

    /// An energy or area, labelled at `missing_at` when it is not given.
    fn cost(
        &self,
        item: &str,
        key: &str,
        v: Option<&Spanned<f64>>,
        missing_at: &Location,
    ) -> Result<f64, YamlError<K>> {
        let Some(v) = v else {
            return Err(self.err(
                Check::Cost,
                Some(item),
                key,
                Some(missing_at),
                format!("`{key}` is missing"),
                "qc takes energies and areas from the file (it has no CACTI); give a number, 0 if unknown",
            ));
        };
        if !v.value.is_finite() || v.value < 0.0 {
            return Err(self.err(
                Check::Cost,
                Some(item),
                key,
                Some(&v.referenced),
                format!("`{key}` is {}", v.value),
                self.sp.cost_help,
            ));
        }
        Ok(v.value)
    }

    fn array(&self, a: &SpannedArray) -> Result<OperationalArray, YamlError<K>> {
        let sp = self.sp;
        let item = Some(sp.array);
        let bad = |key: &str, loc: &Location, msg: String, help: &str| {
            self.err(Check::Array, item, key, Some(loc), msg, help)
        };
        let mut dims = Vec::with_capacity(a.dims.len());
        for d in &a.dims {
            if !is_array_dim(&d.value) {
                return Err(bad(
                    sp.dims,
                    &d.referenced,
                    format!("`{}` is not an array dim name", d.value),
                    sp.dims_help,
                ));
            }
            if dims.iter().any(|x: &ArrayDim| x.name == d.value) {
                return Err(bad(
                    sp.dims,
                    &d.referenced,
                    format!("`{}` is listed twice", d.value),
                    sp.dims_help,
                ));
            }
            dims.push(ArrayDim { name: d.value.clone(), size: 0 });
        }
        if a.sizes.len() != dims.len() {
            return Err(bad(
                sp.sizes,
                &a.sizes_at,
                format!("{} dimensions but {} sizes", dims.len(), a.sizes.len()),
                sp.dims_help,
            ));
        }
        for (d, s) in dims.iter_mut().zip(&a.sizes) {
            d.size = u64::try_from(s.value).ok().filter(|s| *s >= 1).ok_or_else(|| {
                bad(sp.sizes, &s.referenced, format!("the size of `{}` is {}", d.name, s.value), sp.dims_help)
            })?;
        }
        if dims.iter().try_fold(1u64, |acc, d| acc.checked_mul(d.size)).is_none() {
            return Err(bad(
                sp.sizes,
                &a.sizes_at,
                "the array has more than 2^64 MAC units".into(),
                sp.dims_help,
            ));
        }
        let mut systolic_dims = Vec::new();
        for d in &a.systolic_dims {
            let Some(i) = dims.iter().position(|x| x.name == d.value) else {
                return Err(bad(
                    sp.systolic_dims,
                    &d.referenced,
                    format!("`{}` is not a dim of the array", d.value),
                    &format!("systolic {}s are some of the array's `{}`", sp.dim_noun, sp.dims),
                ));
            };
            if systolic_dims.contains(&i) {
                return Err(bad(
                    sp.systolic_dims,
                    &d.referenced,
                    format!("`{}` is listed twice", d.value),
                    &format!("list each systolic {} once", sp.dim_noun),
                ));
            }
            systolic_dims.push(i);
        }
        let input_precision = match &a.input_precision {
            None => None,
            Some(p) => {
                let key = sp.input_precision;
                let help = format!("{key} is two bit counts, `[activation bits, weight bits]`");
                if p.value.len() != 2 {
                    return Err(bad(
                        key,
                        &p.referenced,
                        format!("{} precisions, not 2", p.value.len()),
                        &help,
                    ));
                }
                let bits = |v: &Spanned<i64>| {
                    u32::try_from(v.value)
                        .map_err(|_| bad(key, &v.referenced, format!("the precision {}", v.value), &help))
                };
                Some([bits(&p.value[0])?, bits(&p.value[1])?])
            }
        };
        // An in-memory-compute array takes its energy and area from the IMC macro model.
        let (mac_energy, mac_area) = match &a.imc {
            None => (
                self.cost(sp.array, sp.mac_energy, a.mac_energy.as_ref(), &a.at)?,
                self.cost(sp.array, sp.mac_area, a.mac_area.as_ref(), &a.at)?,
            ),
            Some(_) => {
                for (key, v) in [(sp.mac_energy, &a.mac_energy), (sp.mac_area, &a.mac_area)] {
                    if let Some(v) = v {
                        return Err(self.err(
                            Check::Imc,
                            item,
                            key,
                            Some(&v.referenced),
                            format!("`{key}` is given for an in-memory-compute array"),
                            "an IMC array's energy and area come from ZigZag's IMC macro model (spec/imc.md); \
                             drop the key",
                        ));
                    }
                }
                (0.0, 0.0)
            }
        };
        Ok(OperationalArray { dims, mac_energy, mac_area, input_precision, systolic_dims, imc: None })
    }

    /// The in-memory-compute parameters: what ZigZag's validator and `ImcArray` require, and the
    /// `cells` memory the array computes in.
    fn imc(
        &self,
        s: &SpannedImc,
        acc: &SpannedAccelerator,
        array: &OperationalArray,
        memories: &[Memory],
    ) -> Result<Imc, YamlError<K>> {
        let sp = self.sp;
        let item = Some(sp.array);
        let bad = |key: &str, loc: &Location, msg: String, help: &str| {
            self.err(Check::Imc, item, key, Some(loc), msg, help)
        };
        let kind_help = "an in-memory-compute array gives its type, `analog` (AIMC: DACs and ADCs) or `digital` \
                         (DIMC: adder trees)";
        let kind = match &s.kind {
            None => return Err(bad(sp.imc_kind, &s.at, format!("`{}` is missing", sp.imc_kind), kind_help)),
            Some(k) => match k.value.as_str() {
                "analog" => ImcKind::Analog,
                "digital" => ImcKind::Digital,
                other => {
                    return Err(bad(
                        sp.imc_kind,
                        &k.referenced,
                        format!("`{other}` is not an IMC type"),
                        kind_help,
                    ));
                }
            },
        };
        let prec_help = format!(
            "an IMC array needs `{}: [activation bits, weight bits]`, both powers of 2",
            sp.input_precision
        );
        let Some([act, weight]) = array.input_precision else {
            return Err(bad(
                sp.input_precision,
                &s.at,
                format!("`{}` is missing", sp.input_precision),
                &prec_help,
            ));
        };
        let prec_at = acc.array.input_precision.as_ref().map_or(&s.at, |p| &p.referenced);
        for (what, bits) in [("activation", act), ("weight", weight)] {
            if !bits.is_power_of_two() {
                return Err(bad(
                    sp.input_precision,
                    prec_at,
                    format!("the {what} precision {bits} is not a power of 2"),
                    &prec_help,
                ));
            }
        }
        let bits = |key: &str, v: &Spanned<f64>, help: &str| -> Result<u32, YamlError<K>> {
            let x = v.value;
            if !(x.is_finite() && x >= 0.0 && x.fract() == 0.0 && x <= 32.0) {
                return Err(bad(key, &v.referenced, format!("`{key}` is {x}"), help));
            }
            Ok(x as u32)
        };
        let bsp_help = format!(
            "`{}` is the activation bits fed per cycle: a power of 2, at most the activation precision",
            sp.bit_serial_precision
        );
        let Some(bsp_v) = &s.bit_serial_precision else {
            return Err(bad(
                sp.bit_serial_precision,
                &s.at,
                format!("`{}` is missing", sp.bit_serial_precision),
                &bsp_help,
            ));
        };
        let bsp = bits(sp.bit_serial_precision, bsp_v, &bsp_help)?;
        if !bsp.is_power_of_two() || bsp > act {
            return Err(bad(
                sp.bit_serial_precision,
                &bsp_v.referenced,
                format!("`{}` is {bsp} with {act}-bit activations", sp.bit_serial_precision),
                &bsp_help,
            ));
        }
        let adc_help = format!(
            "`{}` is the ADC bits of an analog array, an integer from 0 to 32; a digital array has no ADC",
            sp.adc_resolution
        );
        let adc = match &s.adc_resolution {
            None => 0,
            Some(v) => {
                let r = bits(sp.adc_resolution, v, &adc_help)?;
                if kind == ImcKind::Digital && r != 0 {
                    return Err(bad(
                        sp.adc_resolution,
                        &v.referenced,
                        format!("a digital IMC array has `{}: {r}`", sp.adc_resolution),
                        &adc_help,
                    ));
                }
                r
            }
        };
        let dims_help = "the word lines run along the first array dim (by name) and the bit lines along the \
                         second; further dims count macros";
        if array.dims.len() < 2 {
            return Err(bad(
                sp.dims,
                &acc.array.sizes_at,
                format!("an IMC array needs two dims or more, this one has {}", array.dims.len()),
                dims_help,
            ));
        }
        if let Some(d) = acc.array.systolic_dims.first() {
            return Err(bad(
                sp.systolic_dims,
                &d.referenced,
                "an IMC array is not systolic".into(),
                "drop the systolic dims: ZigZag's IMC model has no systolic drain",
            ));
        }
        let mut order: Vec<&ArrayDim> = array.dims.iter().collect();
        order.sort_by(|a, b| a.name.cmp(&b.name));
        let bl = order[1];
        if kind == ImcKind::Digital && !bl.size.is_power_of_two() {
            return Err(bad(
                sp.sizes,
                &acc.array.sizes_at,
                format!("the bit-line dim `{}` has {} rows, not a power of 2", bl.name, bl.size),
                "a digital IMC array sums each bit line in a binary adder tree: give the second array dim a \
                 power-of-2 size",
            ));
        }
        // The cells: the memory named `cells`, the lowest level of I2, one per MAC unit.
        let cells_help = "an IMC array computes in a memory named `cells` that holds only I2 (the weights), serves \
                          no dim (one cell group per MAC unit), and whose size is the weight precision in bits";
        let Some(ci) = memories.iter().position(|m| m.name == "cells") else {
            return Err(bad(sp.imc, &s.at, "the accelerator has no memory named `cells`".into(), cells_help));
        };
        let cells = &memories[ci];
        let cells_at = &acc.memories[ci].name.referenced;
        let item_s = "memory `cells`".to_string();
        let bad_cells = |key: &str, msg: String| {
            self.err(Check::Imc, Some(&item_s), key, Some(cells_at), msg, cells_help)
        };
        if cells.operands != [MemOperand::I2] {
            return Err(bad_cells("operands", "the cells hold other operands than I2".into()));
        }
        if !cells.served_dims.is_empty() {
            return Err(bad_cells(sp.served_dims, "the cells serve array dims".into()));
        }
        if memories.iter().position(|m| m.holds(MemOperand::I2)) != Some(ci) {
            return Err(bad_cells(sp.memory_name, "the cells are not the lowest level of I2".into()));
        }
        if !cells.size_bits.is_multiple_of(u64::from(weight)) {
            return Err(bad_cells(
                sp.size,
                format!("the cells' {} bits are not a multiple of the {weight}-bit weights", cells.size_bits),
            ));
        }
        Ok(Imc {
            kind,
            bit_serial_precision: bsp,
            adc_resolution: adc,
            cells_size: cells.size_bits,
            cells_area: cells.area,
        })
    }

    fn memory(&self, m: &SpannedMemory, array: &OperationalArray) -> Result<Memory, YamlError<K>> {
        let sp = self.sp;
        let item_s = format!("memory `{}`", m.name.value);
        let item = Some(item_s.as_str());
        let at_name = &m.name.referenced;

        let bad = |key: &str, v: &Spanned<i64>, what: &str, help: &str| {
            self.err(
                Check::Memory,
                item,
                key,
                Some(&v.referenced),
                format!("the {what} is {}", v.value),
                help,
            )
        };
        let size_bits = u64::try_from(m.size.value)
            .ok()
            .filter(|s| *s >= 1)
            .ok_or_else(|| bad(sp.size, &m.size, "size", "a memory's size is its capacity in bits, >= 1"))?;
        let latency = u64::try_from(m.latency.value)
            .map_err(|_| bad(sp.latency, &m.latency, "latency", "latency is a number of cycles, >= 0"))?;
        let r_cost = self.cost(&item_s, sp.r_cost, m.r_cost.as_ref(), at_name)?;
        let w_cost = self.cost(&item_s, sp.w_cost, m.w_cost.as_ref(), at_name)?;
        let area = self.cost(&item_s, sp.area, m.area.as_ref(), at_name)?;

        // Operands.
        let op_help = "a memory holds some of the memory operands I1, I2, O (linked to the layer's I, W, O by \
                       the mapping), each listed once";
        let bad_operand =
            |loc: &Location, msg: String| self.err(Check::Operand, item, "operands", Some(loc), msg, op_help);
        let mut operands = Vec::new();
        for o in &m.operands.value {
            let Some(op) = MemOperand::parse(&o.value) else {
                return Err(bad_operand(&o.referenced, format!("`{}` is not a memory operand", o.value)));
            };
            if operands.contains(&op) {
                return Err(bad_operand(&o.referenced, format!("`{op}` is listed twice")));
            }
            operands.push(op);
        }
        if operands.is_empty() {
            return Err(bad_operand(&m.operands.referenced, "the memory holds no operand".into()));
        }

        // Ports.
        let mut ports: Vec<Port> = Vec::with_capacity(m.ports.len());
        for p in &m.ports {
            ports.push(self.port(&m.name.value, p, &operands, &ports)?);
        }

        // Served dims.
        let bad_served = |d: &Spanned<String>, msg: String, help: String| {
            self.err(Check::ServedDims, item, sp.served_dims, Some(&d.referenced), msg, help)
        };
        let mut served_dims = Vec::new();
        for d in &m.served_dims {
            let Some(i) = array.dim_index(&d.value) else {
                let dims: Vec<&str> = array.dims.iter().map(|d| d.name.as_str()).collect();
                return Err(bad_served(
                    d,
                    format!("`{}` is not a dim of the {}", d.value, sp.array_noun),
                    format!("the array's dims are [{}]", dims.join(", ")),
                ));
            };
            if served_dims.contains(&i) {
                return Err(bad_served(
                    d,
                    format!("`{}` is listed twice", d.value),
                    format!("list each served {} once", sp.dim_noun),
                ));
            }
            served_dims.push(i);
        }

        Ok(Memory {
            name: m.name.value.clone(),
            size_bits,
            r_cost,
            w_cost,
            area,
            latency,
            operands,
            ports,
            served_dims,
            double_buffering: m.double_buffering,
        })
    }

    fn port(
        &self,
        mem: &str,
        p: &SpannedPort,
        operands: &[MemOperand],
        earlier: &[Port],
    ) -> Result<Port, YamlError<K>> {
        let sp = self.sp;
        let pname = &p.name.value;
        let item_s = format!("memory `{mem}`, port `{pname}`");
        let item = Some(item_s.as_str());
        let err = |check, key: &str, loc: &Location, msg: String, help: &str| {
            self.err(check, item, key, Some(loc), msg, help)
        };
        if !is_port_name(pname) {
            return Err(err(
                Check::Port,
                "name",
                &p.name.referenced,
                format!("`{pname}` is not a port name"),
                sp.port_help,
            ));
        }
        if earlier.iter().any(|q| q.name == *pname) {
            return Err(err(
                Check::Port,
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
                    Check::Port,
                    "type",
                    &p.kind.referenced,
                    format!("`{other}` is not a port type"),
                    sp.port_help,
                ));
            }
        };
        let bw = |v: &Spanned<i64>, key: &str| {
            u64::try_from(v.value).ok().filter(|b| *b >= 1).ok_or_else(|| {
                err(
                    Check::Bandwidth,
                    key,
                    &v.referenced,
                    format!("`{key}` is {}", v.value),
                    sp.bandwidth_help,
                )
            })
        };
        let bw_min = bw(&p.bw_min, sp.bw_min)?;
        let bw_max = bw(&p.bw_max, sp.bw_max)?;
        if bw_min > bw_max {
            return Err(err(
                Check::Bandwidth,
                sp.bw_min,
                &p.bw_min.referenced,
                format!("`{}` ({bw_min}) is greater than `{}` ({bw_max})", sp.bw_min, sp.bw_max),
                sp.bandwidth_help,
            ));
        }
        let mut allocation = Vec::with_capacity(p.allocation.len());
        for a in &p.allocation {
            let Some((op, dir)) = parse_allocation(&a.value) else {
                return Err(err(
                    Check::Allocation,
                    "allocation",
                    &a.referenced,
                    format!("`{}` is not an allocation", a.value),
                    ALLOCATION_HELP,
                ));
            };
            if !operands.contains(&op) {
                return Err(err(
                    Check::Allocation,
                    "allocation",
                    &a.referenced,
                    format!("`{}` names the operand `{op}`, which the memory does not hold", a.value),
                    ALLOCATION_HELP,
                ));
            }
            if !kind.allows(dir) {
                let (what, wants) = if dir.is_read() { ("a read", "read") } else { ("a write", "write") };
                return Err(err(
                    Check::Direction,
                    "allocation",
                    &a.referenced,
                    format!(
                        "`{}` is {what} but the port is a {} port{}",
                        a.value,
                        kind.name(),
                        sp.wrong_direction
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
                    Check::Allocation,
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
