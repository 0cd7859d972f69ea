//! Accelerator parameter sweeps (`qc sweep`, `spec/sweep.md`): the sweep file, the designs it
//! spans (every combination, or a seeded sample), one accelerator per design, its area, and the
//! Pareto front of the evaluated designs.

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::arch::Accelerator;
use crate::mapping::{MappingEntry, MappingFile};
use crate::zigzag::yaml_error::{YamlError, YamlErrorKind, YamlSource};

mod run;

pub use run::{
    AcceleratorKey, DesignCost, DesignError, DesignResult, SweepOptionsKey, SweepOutcome, SweepSummary,
    design_key, fingerprint, run_sweep, shard_designs, summarize,
};

/// What is wrong with a sweep file; the diagnostic code is `qc::sweep::<name>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SweepErrorKind {
    /// Not YAML, an unknown or missing key, or a value of the wrong type.
    Schema,
    /// A parameter the accelerator does not have (an unknown memory or array dim, an unknown
    /// property), or one given twice.
    Parameter,
    /// Values that are empty, not positive where they must be, not whole where they must be, or a
    /// range that does not end.
    Values,
}

impl YamlErrorKind for SweepErrorKind {
    const FILE_KIND: &'static str = "qc sweep file";

    fn code(self) -> &'static str {
        match self {
            SweepErrorKind::Schema => "qc::sweep::schema",
            SweepErrorKind::Parameter => "qc::sweep::parameter",
            SweepErrorKind::Values => "qc::sweep::values",
        }
    }
}

/// A sweep file qc cannot read.
pub type SweepError = YamlError<SweepErrorKind>;

type Kind = SweepErrorKind;

/// One swept parameter: its name (`operational_array.sizes.D1`, `memories.sram.size`, ...) and
/// its values.
#[derive(Clone, Debug, PartialEq)]
pub struct Parameter {
    pub name: String,
    pub values: Vec<f64>,
}

/// A sweep: its parameters, and how many designs to sample (all when `None`).
#[derive(Clone, Debug, PartialEq)]
pub struct Sweep {
    pub parameters: Vec<Parameter>,
    pub sample: Option<u64>,
    pub seed: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSweep {
    parameters: Vec<Spanned<RawParameter>>,
    #[serde(default)]
    sample: Option<Spanned<u64>>,
    #[serde(default)]
    seed: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParameter {
    name: Spanned<String>,
    #[serde(default)]
    values: Option<Vec<f64>>,
    #[serde(default)]
    range: Option<Spanned<RawRange>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRange {
    from: f64,
    to: f64,
    #[serde(default)]
    step: Option<f64>,
    #[serde(default)]
    factor: Option<f64>,
}

const HELP: &str = "a sweep file has `parameters`, a list of `{name: ..., values: [...]}` or \
     `{name: ..., range: {from: A, to: B, step: S}}` (or `factor: F` instead of `step`), and \
     optionally `sample: N` and `seed: S` (spec/sweep.md)";

/// Most designs a range may produce.
const MAX_VALUES: usize = 100_000;

/// Reads a sweep file, checking its parameters against the base accelerator `acc`.
pub fn read_sweep_yaml(text: &str, file: &str, acc: &Accelerator) -> Result<Sweep, SweepError> {
    let src = YamlSource { text, file };
    let raw: RawSweep = src.parse(serde_saphyr::Options::default(), Kind::Schema, HELP)?;
    let mut parameters: Vec<Parameter> = Vec::new();
    for p in &raw.parameters {
        let p = &p.value;
        let name = &p.name.value;
        let item = format!("parameter `{name}`");
        let err = |kind, key: &str, message: String, help: &str| {
            src.error(kind, Some(&item), key, Some(&p.name.referenced), message, help)
        };
        if parameters.iter().any(|q| q.name == *name) {
            return Err(err(Kind::Parameter, "name", "given twice".into(), "give each parameter once"));
        }
        let target = SweptField::parse(name, acc).map_err(|m| {
            err(Kind::Parameter, "name", m, "see spec/sweep.md for the parameters an accelerator has")
        })?;
        let values = match (&p.values, &p.range) {
            (Some(v), None) => v.clone(),
            (None, Some(r)) => range(&r.value)
                .map_err(|m| src.error(Kind::Values, Some(&item), "range", Some(&r.referenced), m, HELP))?,
            _ => return Err(err(Kind::Schema, "", "give either `values` or `range`".into(), HELP)),
        };
        if values.is_empty() {
            return Err(err(Kind::Values, "values", "no values".into(), "give at least one value"));
        }
        if let Some(bad) = values.iter().find(|v| !target.accepts(**v, acc)) {
            return Err(err(Kind::Values, "values", format!("{bad} is not {}", target.domain(acc)), HELP));
        }
        parameters.push(Parameter { name: name.clone(), values });
    }
    if parameters.is_empty() {
        return Err(src.error(Kind::Values, None, "parameters", None, "no parameters", HELP));
    }
    if let Some(s) = &raw.sample
        && s.value == 0
    {
        return Err(src.error(Kind::Values, None, "sample", Some(&s.referenced), "sample 0 designs", HELP));
    }
    Ok(Sweep { parameters, sample: raw.sample.map(|s| s.value), seed: raw.seed.unwrap_or(0) })
}

fn range(r: &RawRange) -> Result<Vec<f64>, String> {
    let mut out = Vec::new();
    let mut x = r.from;
    let up = r.to >= r.from;
    let done = |x: f64| if up { x > r.to * (1.0 + 1e-12) } else { x < r.to * (1.0 - 1e-12) };
    match (r.step, r.factor) {
        (Some(s), None) if s != 0.0 && (s > 0.0) == up || r.from == r.to => {
            while !done(x) {
                out.push(x);
                if out.len() > MAX_VALUES || s == 0.0 {
                    break;
                }
                x = r.from + s * out.len() as f64;
            }
        }
        (None, Some(f)) if f > 0.0 && f != 1.0 && r.from > 0.0 && ((f > 1.0) == up || r.from == r.to) => {
            while !done(x) {
                out.push(x);
                if out.len() > MAX_VALUES {
                    break;
                }
                x *= f;
            }
        }
        (None, None) | (Some(_), Some(_)) => {
            return Err("give a range `step` or a `factor`, not both or none".into());
        }
        _ => return Err(format!("the range from {} to {} never gets there", r.from, r.to)),
    }
    if out.len() > MAX_VALUES {
        return Err(format!("more than {MAX_VALUES} values"));
    }
    Ok(out)
}

/// The accelerator field a swept parameter name sets.
#[derive(Clone, Copy, Debug, PartialEq)]
enum SweptField {
    ArraySize(usize),
    MacEnergy,
    MacArea,
    MemSize(usize),
    MemReadCost(usize),
    MemWriteCost(usize),
    MemArea(usize),
    MemBandwidthMin(usize),
    MemBandwidthMax(usize),
    /// An analog in-memory-compute array's ADC bits.
    AdcResolution,
    /// An in-memory-compute array's bit-serial input precision.
    BitSerialPrecision,
}

impl SweptField {
    fn parse(name: &str, acc: &Accelerator) -> Result<SweptField, String> {
        let parts: Vec<&str> = name.split('.').collect();
        let mem = |m: &str| {
            acc.memories.iter().position(|x| x.name == m).ok_or_else(|| {
                let known: Vec<&str> = acc.memories.iter().map(|x| x.name.as_str()).collect();
                format!("`{}` has no memory `{m}` (it has {})", acc.name, known.join(", "))
            })
        };
        Ok(match parts.as_slice() {
            ["operational_array", "sizes", d] => {
                SweptField::ArraySize(acc.array.dim_index(d).ok_or_else(|| {
                    let known: Vec<&str> = acc.array.dims.iter().map(|x| x.name.as_str()).collect();
                    format!("`{}` has no array dim `{d}` (it has {})", acc.name, known.join(", "))
                })?)
            }
            ["operational_array", "unit_energy" | "unit_area"] if acc.array.imc.is_some() => {
                return Err(format!(
                    "`{}` computes in memory: its energy and area come from the IMC macro model (spec/imc.md), \
                     not from `{}`",
                    acc.name, parts[1]
                ));
            }
            ["operational_array", "unit_energy"] => SweptField::MacEnergy,
            ["operational_array", "unit_area"] => SweptField::MacArea,
            ["operational_array", "adc_resolution"] => match &acc.array.imc {
                Some(i) if i.kind == crate::arch::ImcKind::Analog => SweptField::AdcResolution,
                _ => {
                    return Err(format!(
                        "`{}` is not an analog in-memory-compute array: it has no ADCs",
                        acc.name
                    ));
                }
            },
            ["operational_array", "bit_serial_precision"] => match &acc.array.imc {
                Some(_) => SweptField::BitSerialPrecision,
                None => return Err(format!("`{}` is not an in-memory-compute array", acc.name)),
            },
            ["memories", m, "size"] => SweptField::MemSize(mem(m)?),
            ["memories", m, "r_cost"] => SweptField::MemReadCost(mem(m)?),
            ["memories", m, "w_cost"] => SweptField::MemWriteCost(mem(m)?),
            ["memories", m, "area"] => SweptField::MemArea(mem(m)?),
            ["memories", m, "bandwidth_min"] => SweptField::MemBandwidthMin(mem(m)?),
            ["memories", m, "bandwidth_max"] => SweptField::MemBandwidthMax(mem(m)?),
            _ => {
                return Err(format!(
                    "`{name}` is not a parameter: operational_array.sizes.<dim>, operational_array.unit_energy, \
                     operational_array.unit_area, operational_array.adc_resolution or bit_serial_precision (in-memory \
                     compute), or memories.<memory>.size, r_cost, w_cost, area, bandwidth_min, bandwidth_max"
                ));
            }
        })
    }

    /// Whether `v` is a valid value on `acc` (sizes and bandwidths whole and positive; costs and
    /// areas finite and not negative; what an in-memory-compute array requires, `spec/imc.md`).
    fn accepts(self, v: f64, acc: &Accelerator) -> bool {
        let whole = v.fract() == 0.0;
        let power_of_two = |v: f64| whole && v >= 1.0 && v < 2f64.powi(63) && (v as u64).is_power_of_two();
        match self {
            SweptField::ArraySize(d) if self.is_digital_bit_lines(d, acc) => power_of_two(v),
            SweptField::ArraySize(_)
            | SweptField::MemSize(_)
            | SweptField::MemBandwidthMin(_)
            | SweptField::MemBandwidthMax(_) => v >= 1.0 && whole && v < 2f64.powi(63),
            SweptField::AdcResolution => whole && (0.0..=32.0).contains(&v),
            SweptField::BitSerialPrecision => {
                let act = acc.array.input_precision.map_or(0.0, |[a, _]| f64::from(a));
                power_of_two(v) && v <= act
            }
            _ => v.is_finite() && v >= 0.0,
        }
    }

    /// Whether array dim `d` is the bit-line dim of a digital IMC array (its adder trees need a
    /// power-of-2 size).
    fn is_digital_bit_lines(self, d: usize, acc: &Accelerator) -> bool {
        let digital = acc.array.imc.as_ref().is_some_and(|i| i.kind == crate::arch::ImcKind::Digital);
        digital && crate::cost::ImcMacro::new(&acc.array).is_some_and(|m| m.bl_dim == d)
    }

    fn domain(self, acc: &Accelerator) -> &'static str {
        match self {
            SweptField::ArraySize(d) if self.is_digital_bit_lines(d, acc) => {
                "a power of 2 (the bit lines of a digital in-memory-compute array)"
            }
            SweptField::ArraySize(_)
            | SweptField::MemSize(_)
            | SweptField::MemBandwidthMin(_)
            | SweptField::MemBandwidthMax(_) => "a whole number of at least 1",
            SweptField::AdcResolution => "a whole number of ADC bits from 0 to 32",
            SweptField::BitSerialPrecision => "a power of 2 no larger than the activation precision",
            _ => "a finite number of at least 0",
        }
    }

    fn apply(self, acc: &mut Accelerator, v: f64) {
        match self {
            SweptField::ArraySize(d) => acc.array.dims[d].size = v as u64,
            SweptField::MacEnergy => acc.array.mac_energy = v,
            SweptField::MacArea => acc.array.mac_area = v,
            SweptField::MemSize(m) => acc.memories[m].size_bits = v as u64,
            SweptField::MemReadCost(m) => acc.memories[m].r_cost = v,
            SweptField::MemWriteCost(m) => acc.memories[m].w_cost = v,
            SweptField::MemArea(m) => acc.memories[m].area = v,
            SweptField::MemBandwidthMin(m) => {
                acc.memories[m].ports.iter_mut().for_each(|p| p.bw_min = v as u64)
            }
            SweptField::MemBandwidthMax(m) => {
                acc.memories[m].ports.iter_mut().for_each(|p| p.bw_max = v as u64)
            }
            SweptField::AdcResolution => {
                if let Some(i) = acc.array.imc.as_mut() {
                    i.adc_resolution = v as u32;
                }
            }
            SweptField::BitSerialPrecision => {
                if let Some(i) = acc.array.imc.as_mut() {
                    i.bit_serial_precision = v as u32;
                }
            }
        }
    }
}

impl Sweep {
    /// How many designs the full grid has.
    pub fn grid_size(&self) -> u128 {
        self.parameters.iter().map(|p| p.values.len() as u128).product()
    }

    /// The designs to evaluate, as grid indices in increasing order: all of them, or `sample`
    /// of them drawn without replacement with the seeded generator (the same for any shard).
    pub fn design_indices(&self) -> Vec<u128> {
        let n = self.grid_size();
        match self.sample {
            Some(k) if (k as u128) < n => {
                // Floyd's algorithm over a splitmix64 stream: k distinct indices.
                let mut state = self.seed ^ 0x9e37_79b9_7f4a_7c15;
                let mut next = || {
                    state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                    let mut z = state;
                    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                    z ^ (z >> 31)
                };
                let mut chosen = std::collections::BTreeSet::new();
                for j in (n - k as u128)..n {
                    let r = ((next() as u128) << 64 | next() as u128) % (j + 1);
                    if !chosen.insert(r) {
                        chosen.insert(j);
                    }
                }
                chosen.into_iter().collect()
            }
            _ => (0..n).collect(),
        }
    }

    /// The parameter values of grid index `i` (the last parameter varies fastest).
    pub fn values_of(&self, mut i: u128) -> Vec<f64> {
        let mut out = vec![0.0; self.parameters.len()];
        for (k, p) in self.parameters.iter().enumerate().rev() {
            let n = p.values.len() as u128;
            out[k] = p.values[(i % n) as usize];
            i /= n;
        }
        out
    }

    /// The accelerator of a design: `base` with the parameters set to `values` (names checked by
    /// [`read_sweep_yaml`] against `base`).
    pub fn design(&self, base: &Accelerator, values: &[f64]) -> Accelerator {
        let mut acc = base.clone();
        for (p, &v) in self.parameters.iter().zip(values) {
            if let Ok(t) = SweptField::parse(&p.name, base) {
                t.apply(&mut acc, v);
            }
        }
        acc
    }
}

/// A swept array dim whose unrolling a mapping entry pins (`spatial_mapping`), for the layers
/// that entry applies to: with the mapping as given, every design unrolls the same layer dims by
/// the same factors (capped to the array dim when it is smaller), so array sizes above the pinned
/// unrolling leave units idle and the sweep does not explore the array.
#[derive(Clone, Debug, PartialEq)]
pub struct Pinned {
    /// The swept parameter, `operational_array.sizes.<dim>`.
    pub parameter: String,
    /// Its values.
    pub values: Vec<f64>,
    /// The array dim.
    pub array_dim: String,
    /// The mapping entry's name.
    pub entry: String,
    /// The entry's unrolling of the array dim: `(layer dim, factor)`.
    pub unrolling: Vec<(String, u64)>,
    /// How many layers the entry applies to.
    pub layers: usize,
    /// Whether the entry also gives a `temporal_ordering` with loop sizes (sized for the pinned
    /// unrolling: with another unrolling they no longer multiply to the layer, and become
    /// constraints of the search).
    pub sized_ordering: bool,
}

impl Pinned {
    /// The pinned unrolling as the mapping file writes it: `K, 32` (several joined by `; `).
    pub fn unrolling_text(&self) -> String {
        self.unrolling.iter().map(|(d, f)| format!("{d}, {f}")).collect::<Vec<_>>().join("; ")
    }

    /// The product of the pinned factors: the most units of the array dim the entry's layers use.
    pub fn units(&self) -> u128 {
        self.unrolling.iter().map(|(_, f)| u128::from(*f)).product()
    }
}

/// The swept array dims that mapping entries pin: for each `operational_array.sizes.<dim>`
/// parameter of `sweep` with more than one value, each entry of `map` applied to some layer
/// (`entry_of_layers`: the entry each layer uses, by name) whose `spatial_mapping` unrolls that
/// dim by more than 1. Parameters that are not array sizes are not pinned by a mapping file: the
/// memory sizes, bandwidths and costs feed the search's allocation and cost even where a
/// complete `temporal_ordering` fixes the loop order.
pub fn pinned_by_mapping(
    sweep: &Sweep,
    base: &Accelerator,
    map: &MappingFile,
    entry_of_layers: &[&str],
) -> Vec<Pinned> {
    let mut out = Vec::new();
    for p in &sweep.parameters {
        let Ok(SweptField::ArraySize(d)) = SweptField::parse(&p.name, base) else { continue };
        if p.values.len() < 2 {
            continue;
        }
        let dim = &base.array.dims[d].name;
        for e in &map.entries {
            let layers = entry_of_layers.iter().filter(|n| **n == e.name).count();
            if layers == 0 {
                continue;
            }
            let Some(unrolling) = e.spatial.as_ref().and_then(|s| s.dims.iter().find(|(oa, _)| oa == dim))
            else {
                continue;
            };
            if unrolling.1.iter().all(|(_, f)| *f <= 1) {
                continue;
            }
            out.push(Pinned {
                parameter: p.name.clone(),
                values: p.values.clone(),
                array_dim: dim.clone(),
                entry: e.name.clone(),
                unrolling: unrolling.1.clone(),
                layers,
                sized_ordering: e
                    .temporal_ordering
                    .as_ref()
                    .is_some_and(|o| o.iter().any(|(_, s)| matches!(s, crate::mapping::OrderSize::Given(_)))),
            });
        }
    }
    out
}

/// `map` with the pinned unrollings set aside: each pinned array dim is taken out of its entry's
/// `spatial_mapping` (an entry left with none has no spatial mapping) and, unless the entry
/// already has a `spatial_mapping_hint` for that dim, the layer dims it unrolled become the
/// hint, so the search unrolls the same layer dims with factors that follow the array.
pub fn unpin(map: &MappingFile, pinned: &[Pinned]) -> MappingFile {
    let mut out = map.clone();
    for p in pinned {
        let Some(e) = out.entries.iter_mut().find(|e| e.name == p.entry) else { continue };
        unpin_entry(e, p);
    }
    out
}

fn unpin_entry(e: &mut MappingEntry, p: &Pinned) {
    if let Some(s) = &mut e.spatial {
        s.dims.retain(|(oa, _)| *oa != p.array_dim);
        if s.dims.is_empty() {
            e.spatial = None;
        }
    }
    let hint = e.spatial_hint.get_or_insert_with(Vec::new);
    if !hint.iter().any(|(oa, _)| *oa == p.array_dim) {
        hint.push((p.array_dim.clone(), p.unrolling.iter().map(|(d, _)| d.clone()).collect()));
    }
}

/// The area of an accelerator as ZigZag's files give it: MAC area times the MAC units, plus each
/// memory's area times its instances (`None` when the file gives no area). On an
/// in-memory-compute array, as ZigZag's IMC cost model gives it: the macro model's area (the
/// cells included) plus each memory's area once.
pub fn area(acc: &Accelerator) -> Option<f64> {
    let a = match crate::cost::ImcMacro::new(&acc.array) {
        Some(m) => m.area() + acc.memories.iter().fold(0.0, |a, x| a + x.area),
        None => {
            acc.array.mac_area * acc.array.units() as f64
                + acc.memories.iter().enumerate().map(|(i, m)| m.area * acc.instances(i) as f64).sum::<f64>()
        }
    };
    (a > 0.0).then_some(a)
}

/// The indices of the points no other point dominates (at most as large in every coordinate and
/// smaller in one), in input order. Points are (energy, latency, area); a `None` area is not
/// compared.
pub fn pareto_front(points: &[(f64, f64, Option<f64>)]) -> Vec<usize> {
    let dominates = |a: &(f64, f64, Option<f64>), b: &(f64, f64, Option<f64>)| {
        let area_le = match (a.2, b.2) {
            (Some(x), Some(y)) => x <= y,
            _ => true,
        };
        let area_lt = matches!((a.2, b.2), (Some(x), Some(y)) if x < y);
        a.0 <= b.0 && a.1 <= b.1 && area_le && (a.0 < b.0 || a.1 < b.1 || area_lt)
    };
    // Sorted by energy, a point can only be dominated by those before it (or equal in energy).
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by(|&a, &b| points[a].0.total_cmp(&points[b].0).then(points[a].1.total_cmp(&points[b].1)));
    let mut front: Vec<usize> = Vec::new();
    for &i in &order {
        if !front.iter().any(|&j| dominates(&points[j], &points[i]))
            && !order
                .iter()
                .any(|&j| j != i && points[j].0 == points[i].0 && dominates(&points[j], &points[i]))
        {
            front.push(i);
        }
    }
    front.sort_unstable();
    front
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_front_is_what_brute_force_finds() {
        let mut s = 7u64;
        let mut rnd = || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 33) % 50) as f64
        };
        for with_area in [false, true] {
            let pts: Vec<(f64, f64, Option<f64>)> =
                (0..300).map(|_| (rnd(), rnd(), with_area.then(&mut rnd))).collect();
            let brute: Vec<usize> = (0..pts.len())
                .filter(|&i| {
                    !(0..pts.len()).any(|j| {
                        let (a, b) = (pts[j], pts[i]);
                        let le = a.0 <= b.0 && a.1 <= b.1 && a.2.zip(b.2).is_none_or(|(x, y)| x <= y);
                        let lt = a.0 < b.0 || a.1 < b.1 || a.2.zip(b.2).is_some_and(|(x, y)| x < y);
                        le && lt
                    })
                })
                .collect();
            assert_eq!(pareto_front(&pts), brute);
        }
    }

    #[test]
    fn ranges_and_samples() {
        let r = |from, to, step, factor| range(&RawRange { from, to, step, factor });
        assert_eq!(r(1.0, 4.0, Some(1.0), None).unwrap(), [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(r(8.0, 64.0, None, Some(2.0)).unwrap(), [8.0, 16.0, 32.0, 64.0]);
        assert_eq!(r(4.0, 1.0, Some(-1.5), None).unwrap(), [4.0, 2.5, 1.0]);
        assert!(r(1.0, 4.0, Some(-1.0), None).is_err());
        assert!(r(1.0, 4.0, None, None).is_err());
        let sweep = |sample| Sweep {
            parameters: vec![
                Parameter { name: "a".into(), values: vec![1.0, 2.0, 3.0] },
                Parameter { name: "b".into(), values: vec![10.0, 20.0] },
            ],
            sample,
            seed: 3,
        };
        assert_eq!(sweep(None).design_indices(), (0..6).collect::<Vec<_>>());
        assert_eq!(sweep(None).values_of(3), [2.0, 20.0]);
        let s = sweep(Some(4)).design_indices();
        assert_eq!(s.len(), 4);
        assert!(s.windows(2).all(|w| w[0] < w[1]) && s.iter().all(|&i| i < 6));
        assert_eq!(s, sweep(Some(4)).design_indices(), "seeded");
    }
}
