//! Reports of evaluated designs for people: a terminal table, Markdown, and one self-contained
//! HTML page with SVG charts (`spec/reports.md`).
//!
//! A [`Design`] is what `qc evaluate` found for one accelerator: the accelerator's summary and,
//! per layer, its cost broken down by memory level and operand, its latency broken down into
//! computation, stall, on-loading and off-loading, and the chosen schedule. Several designs
//! (`qc evaluate --compare`) render side by side. The renderers write into `String`s; the caller
//! decides where they go.

mod evaluation;
mod html;
mod svg;
mod text;

pub use evaluation::{
    AcceleratorSource, Assumption, ReportContext, class_of, evaluation_designs, evaluation_json,
};
pub use html::{SweepInfeasible, SweepPoint, escape, html, page, sweep_html};
pub use text::{markdown, text};

use crate::arch::Accelerator;
use crate::cost::LayerCost;
use crate::mapping::{SpatialMapping, TemporalMapping};

/// One accelerator's evaluation of a workload.
#[derive(Clone, Debug, PartialEq)]
pub struct Design {
    /// The workload file.
    pub workload: String,
    pub accelerator: AcceleratorSummary,
    /// How it was evaluated, as `(setting, value)` (latency model, search settings, ...).
    pub settings: Vec<(String, String)>,
    pub layers: Vec<LayerReport>,
    /// Nodes not costed: `(name, op type, reason, elements)`, the elements of the vector work
    /// ([`qc_ir::NotLowered::elements`]; `None` for other nodes and for layers left out).
    pub not_costed: Vec<(String, String, String, Option<u64>)>,
    /// Layers no mapping fits, not costed (the totals leave them out): `(name, op type, why
    /// and what would fit)`.
    pub unfit: Vec<(String, String, String)>,
    /// With a DLA target (`qc evaluate --target`): which ops run on the DLA and which fall back
    /// to the CPU. Only the DLA's layers are costed on the accelerator.
    pub split: Option<Split>,
    /// What was done to the model before it was lowered (`qc evaluate --optimize`), one line
    /// each.
    pub prepared: Vec<String>,
    /// The search's wall-time budget as given (`--search-budget`), if any.
    pub search_budget: Option<String>,
}

/// Where a model's ops run on a DLA target, and what share of the model each unit gets.
#[derive(Clone, Debug, PartialEq)]
pub struct Split {
    /// The target's name (`access-dla`).
    pub target: String,
    pub dla: UnitShare,
    pub cpu: UnitShare,
    /// The ops placed on the CPU, in graph order.
    pub cpu_ops: Vec<CpuOp>,
    /// Compute ops (either unit) that were not lowered, so whose MACs are unknown: the MAC
    /// counts leave them out and no share is given.
    pub uncounted: Vec<String>,
}

/// The ops of one unit and their MACs.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct UnitShare {
    pub ops: usize,
    /// MACs of the unit's convolutions and matrix products (other ops count none).
    pub macs: u128,
}

impl Split {
    /// The share of the model's MACs on `u`, in percent (`None` when the model has none).
    /// `None` too when some compute op's MACs are unknown (`uncounted`).
    pub fn mac_share(&self, u: &UnitShare) -> Option<f64> {
        let all = self.dla.macs + self.cpu.macs;
        (all > 0 && self.uncounted.is_empty()).then(|| 100.0 * u.macs as f64 / all as f64)
    }
}

/// An op that falls back to the CPU, and the rule that sent it there.
#[derive(Clone, Debug, PartialEq)]
pub struct CpuOp {
    pub node: String,
    pub op_type: String,
    pub macs: u128,
    /// The check rule (`qc::check::kernel-size`, `qc::check::unsupported-op`).
    pub rule: String,
    /// Why, in one sentence (the first finding's message).
    pub reason: String,
}

/// What a reader needs to know of an accelerator.
#[derive(Clone, Debug, PartialEq)]
pub struct AcceleratorSummary {
    pub name: String,
    /// Array dims and sizes.
    pub array: Vec<(String, u64)>,
    /// Energy per MAC.
    pub mac_energy: f64,
    /// Lowest first, as the file lists them.
    pub memories: Vec<MemorySummary>,
    /// An in-memory-compute array's macro model.
    pub imc: Option<ImcSummary>,
}

/// An in-memory-compute array as the reports describe it (`spec/imc.md`).
#[derive(Clone, Debug, PartialEq)]
pub struct ImcSummary {
    /// `analog` or `digital`.
    pub kind: String,
    pub bit_serial_precision: u32,
    pub adc_resolution: u32,
    pub cycles_per_mac: u64,
    /// The clock period in ns, and its parts.
    pub tclk: f64,
    pub tclk_parts: Vec<(String, f64)>,
    /// The array's area (cells and logic) in mm^2, and its parts.
    pub area: f64,
    pub area_parts: Vec<(String, f64)>,
    /// The memories' areas summed (ZigZag's `mem_area`).
    pub memory_area: f64,
    /// Peak TOP/s, TOP/s/W, TOP/s/mm^2 of the array.
    pub peak: (f64, f64, f64),
}

impl ImcSummary {
    pub fn of(acc: &Accelerator) -> Option<ImcSummary> {
        let m = crate::cost::ImcMacro::new(&acc.array)?;
        let parts = |v: [f64; 7]| -> Vec<(String, f64)> {
            crate::cost::imc::MACRO_PARTS.iter().zip(v).map(|(n, x)| (n.to_string(), x)).collect()
        };
        Some(ImcSummary {
            kind: m.kind.name().to_string(),
            bit_serial_precision: m.bit_serial_precision,
            adc_resolution: m.adc_resolution,
            cycles_per_mac: m.cycles_per_mac(),
            tclk: m.tclk(),
            tclk_parts: parts(m.tclk_breakdown()),
            area: m.area(),
            area_parts: parts(m.area_breakdown()),
            memory_area: acc.memories.iter().fold(0.0, |a, x| a + x.area),
            peak: m.peak(),
        })
    }

    /// One line for people: `digital in-memory compute: tclk 3.757 ns, 8 cycles per MAC, ...`.
    pub fn line(&self) -> String {
        let adc =
            if self.kind == "analog" { format!(", {}-bit ADCs", self.adc_resolution) } else { String::new() };
        format!(
            "{} in-memory compute: {}-bit serial input{adc}, {} cycle(s) per MAC of tclk {:.6} ns; array area {:.6} mm^2 (memories {}); peak {:.3} TOP/s, {:.3} TOP/s/W",
            self.kind,
            self.bit_serial_precision,
            self.cycles_per_mac,
            self.tclk,
            self.area,
            self.memory_area,
            self.peak.0,
            self.peak.1
        )
    }
}

/// One memory of an accelerator.
#[derive(Clone, Debug, PartialEq)]
pub struct MemorySummary {
    pub name: String,
    pub size_bits: u64,
    /// The memory operands it holds (`I1`, `I2`, `O`).
    pub operands: Vec<String>,
    pub r_cost: f64,
    pub w_cost: f64,
    /// The widest port, in bits per cycle.
    pub bandwidth: u64,
    pub instances: u64,
}

/// One costed layer.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerReport {
    pub name: String,
    pub op_type: String,
    /// `mac`, `pooling` or `element-wise`.
    pub class: String,
    pub macs: u128,
    pub energy: f64,
    pub latency: f64,
    pub mac_energy: f64,
    /// Memory energy per (memory, operand role), in the order of the cost model's operands and
    /// levels (lowest first).
    pub energy_parts: Vec<EnergyPart>,
    pub latency_parts: LatencyParts,
    pub spatial_utilization: f64,
    /// Spatial unrolling: per array dim, the layer dims and factors.
    pub spatial: Vec<(String, Vec<(String, u64)>)>,
    /// The temporal schedule: per operand role, its levels.
    pub schedule: Vec<(String, Vec<ScheduleLevel>)>,
    pub notes: Vec<String>,
    /// The earlier identical layer whose search this one reused.
    pub same_as: Option<String>,
    /// How far the mapping search got, for a searched layer.
    pub search: Option<SearchReach>,
    /// On an in-memory-compute array: the operational energy by part and the latency in ns.
    pub imc: Option<(Vec<(String, f64)>, f64)>,
    /// The layer's lower bounds over every mapping ([`crate::bound`]).
    pub bound: Option<BoundSummary>,
    /// With `--optimal`: the exact search's certificate.
    pub certificate: Option<crate::search::optimal::Certificate>,
}

/// A layer's (or a network's) lower bounds: no mapping costs less energy or takes less time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BoundSummary {
    pub energy: f64,
    /// `None` when no latency bound holds (the repository's latency model).
    pub latency: Option<f64>,
}

impl BoundSummary {
    /// From a layer's bounds.
    pub fn of(b: &crate::bound::LayerBound) -> BoundSummary {
        BoundSummary { energy: b.energy, latency: b.latency }
    }

    /// How many times `energy` is above the energy bound.
    pub fn energy_gap(&self, energy: f64) -> Option<f64> {
        crate::bound::gap(energy, self.energy)
    }

    /// How many times `latency` is above the latency bound.
    pub fn latency_gap(&self, latency: f64) -> Option<f64> {
        self.latency.and_then(|b| crate::bound::gap(latency, b))
    }
}

/// How far one layer's mapping search got: the orderings of its spatial candidates' temporal
/// spaces visited of their total, and the candidates searched to the end of all.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SearchReach {
    /// Orderings allocated and costed (a search beyond LOMA's factor limit also evaluates
    /// orderings of merged loops, outside its space).
    pub orderings_evaluated: u64,
    pub orderings_visited: u64,
    /// Saturates at `u64::MAX` (no factor merging).
    pub orderings_total: u64,
    pub candidates_complete: usize,
    pub candidates: usize,
}

impl SearchReach {
    /// Whether the budget cut the search short.
    pub fn cut(&self) -> bool {
        self.candidates_complete < self.candidates
    }

    /// `search cut short by the budget: 41,200 of 120,960 orderings visited (38,000 evaluated),
    /// 1 of 3 spatial mappings searched to the end`.
    pub fn describe(&self) -> String {
        format!(
            "search cut short by the budget: {} of {} orderings visited ({} evaluated), {} of {} spatial mappings searched to the end",
            thousands(self.orderings_visited as f64),
            count(self.orderings_total),
            thousands(self.orderings_evaluated as f64),
            self.candidates_complete,
            self.candidates
        )
    }
}

/// A count with separators; `u64::MAX` (a saturated count) as `more than 18 quintillion`.
fn count(n: u64) -> String {
    if n == u64::MAX { "more than 18 quintillion".into() } else { thousands(n as f64) }
}

/// One memory level of one operand's schedule: the memory, and the temporal loops it holds
/// (innermost first, `(dim, size)`).
pub type ScheduleLevel = (String, Vec<(String, u64)>);

/// A part of one layer's energy: one operand's accesses to one memory.
#[derive(Clone, Debug, PartialEq)]
pub struct EnergyPart {
    pub memory: String,
    pub operand: String,
    pub energy: f64,
}

/// The parts of one layer's latency (they add up to it).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LatencyParts {
    /// Temporal cycles of the array (ZigZag's `ideal_temporal_cycle`).
    pub computation: f64,
    /// Cycles the array waits for memory ports (`stall_slack_comb`).
    pub stall: f64,
    pub onload: f64,
    pub offload: f64,
    /// Cycles for the last results to leave a systolic array.
    pub drain: f64,
}

impl LatencyParts {
    /// `(label, value)` in stacking order.
    pub fn labelled(&self) -> [(&'static str, f64); 5] {
        [
            ("computation", self.computation),
            ("stall", self.stall),
            ("on-loading", self.onload),
            ("off-loading", self.offload),
            ("systolic drain", self.drain),
        ]
    }
}

impl AcceleratorSummary {
    pub fn of(acc: &Accelerator) -> AcceleratorSummary {
        AcceleratorSummary {
            name: acc.name.clone(),
            array: acc.array.dims.iter().map(|d| (d.name.clone(), d.size)).collect(),
            mac_energy: acc.array.mac_energy,
            memories: acc
                .memories
                .iter()
                .enumerate()
                .map(|(i, m)| MemorySummary {
                    name: m.name.clone(),
                    size_bits: m.size_bits,
                    operands: m.operands.iter().map(|o| o.name().to_string()).collect(),
                    r_cost: m.r_cost,
                    w_cost: m.w_cost,
                    bandwidth: m.ports.iter().map(|p| p.bw_max).max().unwrap_or(0),
                    instances: acc.instances(i),
                })
                .collect(),
            imc: ImcSummary::of(acc),
        }
    }
}

impl LayerReport {
    /// The report of one layer from its cost and mapping on `acc` (the accelerator the cost was
    /// computed for).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        acc: &Accelerator,
        name: &str,
        op_type: &str,
        class: &str,
        macs: u128,
        cost: &LayerCost,
        spatial: &SpatialMapping,
        temporal: &TemporalMapping,
    ) -> LayerReport {
        let mem_name = |i: usize| acc.memories.get(i).map_or_else(|| "?".to_string(), |m| m.name.clone());
        let energy_parts = cost
            .operands
            .iter()
            .flat_map(|o| {
                o.levels.iter().map(|l| EnergyPart {
                    memory: mem_name(l.memory),
                    operand: o.role.clone(),
                    energy: l.total_energy(),
                })
            })
            .collect();
        let schedule = cost
            .operands
            .iter()
            .map(|o| {
                let levels = temporal.levels(&o.role).unwrap_or(&[]);
                let per_level = o
                    .levels
                    .iter()
                    .zip(levels.iter().map(Some).chain(std::iter::repeat(None)))
                    .map(|(l, loops)| {
                        let loops = loops
                            .map(|ls| ls.iter().map(|t| (t.dim.clone(), t.size)).collect())
                            .unwrap_or_default();
                        (mem_name(l.memory), loops)
                    })
                    .collect();
                (o.role.clone(), per_level)
            })
            .collect();
        LayerReport {
            name: name.to_string(),
            op_type: op_type.to_string(),
            class: class.to_string(),
            macs,
            energy: cost.energy,
            latency: cost.latency,
            mac_energy: cost.mac_energy,
            energy_parts,
            latency_parts: LatencyParts {
                computation: cost.ideal_temporal_cycle as f64,
                stall: cost.stall_slack_comb as f64,
                onload: cost.onload,
                offload: cost.offload,
                drain: cost.systolic_drain as f64,
            },
            spatial_utilization: cost.spatial_utilization,
            spatial: spatial.dims.iter().map(|(d, u)| (d.clone(), u.clone())).collect(),
            schedule,
            notes: Vec::new(),
            same_as: None,
            search: None,
            imc: cost.imc.as_ref().map(|i| {
                let parts =
                    crate::cost::imc::ENERGY_PARTS.iter().zip(i.energy).map(|(n, e)| (n.to_string(), e));
                (parts.collect(), cost.latency * i.tclk)
            }),
            bound: None,
            certificate: None,
        }
    }

    /// `1.84x` above the energy bound, or `-` without one.
    pub fn energy_gap_text(&self) -> String {
        crate::bound::gap_text(self.bound.and_then(|b| b.energy_gap(self.energy)))
    }

    /// `2.10x` above the latency bound, or `-` without one.
    pub fn latency_gap_text(&self) -> String {
        crate::bound::gap_text(self.bound.and_then(|b| b.latency_gap(self.latency)))
    }

    /// The largest single part of the energy: `(label, share)`, for example `("DRAM I", 0.62)`
    /// or `("MAC", 0.4)`.
    pub fn dominant(&self) -> (String, f64) {
        let mac = if self.imc.is_some() { "IMC array" } else { "MAC" };
        let mut best = (mac.to_string(), self.mac_energy);
        for p in &self.energy_parts {
            if p.energy > best.1 {
                best = (format!("{} {}", p.memory, p.operand), p.energy);
            }
        }
        let share = if self.energy > 0.0 { best.1 / self.energy } else { 0.0 };
        (best.0, share)
    }
}

impl Design {
    pub fn total_energy(&self) -> f64 {
        self.layers.iter().map(|l| l.energy).sum()
    }

    pub fn total_latency(&self) -> f64 {
        self.layers.iter().map(|l| l.latency).sum()
    }

    /// The network's latency in ns, where the array has a clock period (in-memory compute).
    pub fn total_latency_ns(&self) -> Option<f64> {
        self.accelerator.imc.as_ref().map(|i| self.total_latency() * i.tclk)
    }

    pub fn total_macs(&self) -> u128 {
        self.layers.iter().map(|l| l.macs).sum()
    }

    /// On an in-memory-compute array: the accelerator's line, the latency in ns and the
    /// operational energy by part over the costed layers, for the reports.
    pub fn imc_lines(&self) -> Vec<String> {
        let Some(imc) = &self.accelerator.imc else { return Vec::new() };
        let mut parts: Vec<(String, f64)> = Vec::new();
        let mut ns = 0.0;
        for (lp, l_ns) in self.layers.iter().filter_map(|l| l.imc.as_ref()) {
            ns += l_ns;
            for (n, e) in lp {
                match parts.iter_mut().find(|(m, _)| m == n) {
                    Some(p) => p.1 += e,
                    None => parts.push((n.clone(), *e)),
                }
            }
        }
        let tclk: Vec<String> =
            imc.tclk_parts.iter().filter(|(_, v)| *v != 0.0).map(|(n, v)| format!("{n} {v:.5}")).collect();
        let area: Vec<String> =
            imc.area_parts.iter().filter(|(_, v)| *v != 0.0).map(|(n, v)| format!("{n} {v:.6}")).collect();
        let energy: Vec<String> =
            parts.iter().filter(|(_, v)| *v != 0.0).map(|(n, v)| format!("{n} {}", thousands(*v))).collect();
        vec![
            imc.line(),
            format!("tclk (ns): {}", tclk.join(", ")),
            format!("array area (mm^2): {}", area.join(", ")),
            format!("latency: {} ns", thousands(ns)),
            format!("array energy (pJ): {}", energy.join(", ")),
        ]
    }

    /// The network's lower bounds: the sums of its layers' (`None` if a layer has none; the
    /// latency `None` if a layer has no latency bound).
    pub fn total_bound(&self) -> Option<BoundSummary> {
        let mut total = BoundSummary { energy: 0.0, latency: Some(0.0) };
        for l in &self.layers {
            let b = l.bound?;
            total.energy += b.energy;
            total.latency = total.latency.zip(b.latency).map(|(a, x)| a + x);
        }
        (!self.layers.is_empty()).then_some(total)
    }

    /// `lower bound: 1,234 pJ, 567 cycles; found 1.84x / 2.10x above it` (energy, latency), for
    /// the text and Markdown summaries.
    pub fn bound_line(&self) -> Option<String> {
        let b = self.total_bound()?;
        let gap = |g: Option<f64>| crate::bound::gap_text(g);
        Some(match b.latency {
            Some(l) => format!(
                "lower bound: {} pJ, {} cycles; found {} / {} above it",
                thousands(b.energy),
                thousands(l),
                gap(b.energy_gap(self.total_energy())),
                gap(b.latency_gap(self.total_latency()))
            ),
            None => format!(
                "lower bound: {} pJ (no latency bound under this latency model); found {} above it",
                thousands(b.energy),
                gap(b.energy_gap(self.total_energy()))
            ),
        })
    }

    /// The vector work among the nodes not costed, for the text summary:
    /// `vector work, not costed on the MAC array: 3 nodes, 1,536 elements (Softmax 512, Div 512,
    /// LayerNormalization 512)`, op types by elements, most first; `None` when there is none.
    pub fn vector_work_line(&self) -> Option<String> {
        let mut by_op: Vec<(String, u64)> = Vec::new();
        let (mut nodes, mut total) = (0usize, 0u64);
        for (_, op, _, elements) in &self.not_costed {
            let Some(n) = elements else { continue };
            nodes += 1;
            total = total.saturating_add(*n);
            match by_op.iter_mut().find(|(o, _)| o == op) {
                Some((_, sum)) => *sum = sum.saturating_add(*n),
                None => by_op.push((op.clone(), *n)),
            }
        }
        if nodes == 0 {
            return None;
        }
        by_op.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let parts: Vec<String> = by_op.iter().map(|(o, n)| format!("{o} {}", thousands(*n as f64))).collect();
        Some(format!(
            "vector work, not costed on the MAC array: {nodes} nodes, {} elements ({})",
            thousands(total as f64),
            parts.join(", ")
        ))
    }

    /// With `--search-budget`, when it cut a search short: `--search-budget 1ms cut 12 of 17
    /// layer searches short: 5,611 of 1,234,567 orderings visited` (layers that reuse an
    /// identical layer's search are counted once); `None` when no search was cut.
    pub fn budget_summary(&self) -> Option<String> {
        let searches: Vec<&SearchReach> =
            self.layers.iter().filter(|l| l.same_as.is_none()).filter_map(|l| l.search.as_ref()).collect();
        let cut = searches.iter().filter(|s| s.cut()).count();
        if cut == 0 {
            return None;
        }
        let visited = searches.iter().fold(0u64, |a, s| a.saturating_add(s.orderings_visited));
        let total = searches.iter().fold(0u64, |a, s| a.saturating_add(s.orderings_total));
        let budget = self.search_budget.as_deref().map_or(String::new(), |b| format!(" {b}"));
        Some(format!(
            "--search-budget{budget} cut {cut} of {} layer searches short: {} of {} orderings visited",
            searches.len(),
            thousands(visited as f64),
            count(total)
        ))
    }

    /// Energy per (memory, operand) over all layers, plus MAC energy last, in first-seen order.
    pub fn energy_by_part(&self) -> Vec<(String, f64)> {
        let mut parts: Vec<(String, f64)> = Vec::new();
        for l in &self.layers {
            for p in &l.energy_parts {
                let key = format!("{} {}", p.memory, p.operand);
                match parts.iter_mut().find(|(k, _)| *k == key) {
                    Some(e) => e.1 += p.energy,
                    None => parts.push((key, p.energy)),
                }
            }
        }
        parts.push(("MAC".into(), self.layers.iter().map(|l| l.mac_energy).sum()));
        parts
    }
}

/// `1234567.8` as `1,234,568`: whole numbers with thousands separators.
pub fn thousands(x: f64) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    let out = group_digits(&format!("{:.0}", x.abs()));
    if x < 0.0 { format!("-{out}") } else { out }
}

/// A string of digits with thousands separators: `"1234567"` as `"1,234,567"` (exact for
/// integers of any size, such as counts past 2^53).
pub fn group_digits(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Whole numbers with separators from 1,000 up (`thousands`), else two decimals.
pub fn thousands_or_fraction(x: f64) -> String {
    if x.abs() >= 1000.0 { thousands(x) } else { format!("{x:.2}") }
}

/// A value with an SI prefix and three significant digits: `1.86e9` as `1.86 G`, `0.00186` as
/// `1.86 m`.
pub fn si(x: f64) -> String {
    const PREFIXES: [(f64, &str); 9] = [
        (1e12, "T"),
        (1e9, "G"),
        (1e6, "M"),
        (1e3, "k"),
        (1.0, ""),
        (1e-3, "m"),
        (1e-6, "µ"),
        (1e-9, "n"),
        (1e-12, "p"),
    ];
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    for (scale, p) in PREFIXES {
        if x.abs() >= scale {
            let v = x / scale;
            let digits = if v.abs() >= 100.0 {
                0
            } else if v.abs() >= 10.0 {
                1
            } else {
                2
            };
            let sep = if p.is_empty() { "" } else { " " };
            return format!("{v:.digits$}{sep}{p}");
        }
    }
    format!("{x:.3e}")
}

/// A size in bits as bytes with a binary prefix: `16777216` as `2 MiB`, `16` as `2 B`.
pub fn bytes(bits: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bits as f64 / 8.0;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    let v = if v.fract() == 0.0 { format!("{v:.0}") } else { format!("{v:.2}") };
    format!("{v} {}", UNITS[u])
}

/// How designs compare in latency: in ns when every design has a clock period (cycles of
/// different clocks are not comparable), else in cycles, with a note when only some have one.
pub(crate) struct LatencyComparison {
    /// `cycles` or `ns`.
    pub unit: &'static str,
    /// Per design, in that unit.
    pub values: Vec<f64>,
    pub note: Option<String>,
}

pub(crate) fn latency_comparison(designs: &[Design]) -> LatencyComparison {
    let ns: Vec<Option<f64>> = designs.iter().map(Design::total_latency_ns).collect();
    if ns.iter().all(Option::is_some) {
        return LatencyComparison { unit: "ns", values: ns.into_iter().flatten().collect(), note: None };
    }
    let note = ns.iter().any(Option::is_some).then(|| {
        let clocked: Vec<String> = designs
            .iter()
            .filter_map(|d| d.accelerator.imc.as_ref().map(|i| format!("{} {:.5} ns", d.accelerator.name, i.tclk)))
            .collect();
        format!(
            "latency compared in cycles: only some designs have a clock period ({}); the others' cycle time is not \
             in their files, so their latencies in ns are unknown",
            clocked.join(", ")
        )
    });
    LatencyComparison { unit: "cycles", values: designs.iter().map(Design::total_latency).collect(), note }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(1234567.8), "1,234,568");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(-1000.0), "-1,000");
        assert_eq!(group_digits("18446744073709551614"), "18,446,744,073,709,551,614");
        assert_eq!(group_digits("999"), "999");
        assert_eq!(si(1.86e9), "1.86 G");
        assert_eq!(si(511349.76), "511 k");
        assert_eq!(si(8191.0), "8.19 k");
        assert_eq!(si(12.0), "12.0");
        assert_eq!(si(0.00186), "1.86 m");
        assert_eq!(bytes(16_777_216), "2 MiB");
        assert_eq!(bytes(16), "2 B");
        assert_eq!(bytes(10_737_418_240), "1.25 GiB");
    }
}
