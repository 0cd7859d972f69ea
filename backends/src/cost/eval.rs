//! One evaluation: data movement per (operand, level, direction), energy, and latency.

use crate::arch::{Accelerator, Direction, MemOperand, Memory};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::cost::alloc::{Allocation, Allocator, Plan, order_indices};
use crate::cost::model::{Decoupler, PreparedLayer, Rel, Spatial, py_round};
use crate::cost::{
    AllocOptions, AllocTrace, CostError, CostOptions, LatencyModel, LayerCost, LevelCost, OperandCost,
    PortStall, dir_index,
};
use crate::mapping::{OperandLinks, SpatialMapping, TemporalLoop, TemporalMapping};
use qc_ir::LoopNest;

mod bound;
mod state;

pub use bound::{Floors, PrefixBounds};

const FH: usize = 0;
const TL: usize = 1;
const FL: usize = 2;
const TH: usize = 3;
const DIRS: [Direction; 4] = Direction::ALL;

/// Loading cycles per (operand, level, direction), and whether the port is shared by both inputs.
type LoadCycles = Vec<Vec<[Option<(f64, bool)>; 4]>>;

/// One port's bandwidths, `(bw_min, bw_max)`.
type Bw = Option<(u64, u64)>;

/// A (memory operand, level, direction) link a port carries.
#[derive(Clone, Debug)]
struct PortLink {
    /// The layer operand, if the memory operand is linked.
    op: Option<usize>,
    mem_op: MemOperand,
    level: usize,
    dir: usize,
}

#[derive(Clone, Debug)]
struct PortInfo {
    memory: usize,
    port: usize,
    bw_max: u64,
    shared_by_two_inputs: bool,
    links: Vec<PortLink>,
}

/// A memory level of one operand.
#[derive(Clone, Debug)]
struct LevelInfo {
    memory: usize,
    size_bits: f64,
    r_cost: f64,
    w_cost: f64,
    /// Holds more than one memory operand.
    shared: bool,
    bw: [Bw; 4],
}

/// Per-period data movement of one link.
#[derive(Clone, Copy, Debug, Default)]
struct Link {
    amount: f64,
    prec: u32,
    period: u64,
    pc: u64,
    req_bw: f64,
    window: u64,
}

/// One operand's data movement under one spatial variant (and the buffers computing it).
#[derive(Clone, Debug, Default)]
struct Pattern {
    elem: Vec<f64>,
    bits: Vec<f64>,
    eff_bits: Vec<f64>,
    links: Vec<[Link; 4]>,
    ir1: Vec<f64>,
    has_ir1: Vec<bool>,
    psum: Vec<bool>,
    prec: Vec<u32>,
    caal: Vec<f64>,
}

/// The buffers of [`Evaluator::evaluate_order`], reused from one evaluation to the next so that
/// evaluating a mapping allocates nothing.
#[derive(Clone, Debug, Default)]
pub struct EvalScratch {
    temps: Vec<Temporal>,
    frac: Vec<Pattern>,
    int: Vec<Pattern>,
    shared_util: Vec<(usize, f64)>,
    db: Vec<Vec<bool>>,
    acts: Vec<(i128, i128, u64, u64)>,
    windows: Vec<(u64, u64)>,
    cc: LoadCycles,
    once: Vec<(usize, usize, usize)>,
    c_list: Vec<f64>,
    m_list: Vec<f64>,
    reduce: Vec<(usize, f64, f64)>,
    parts: Vec<(f64, f64, f64)>,
}

/// Identifies an [`Evaluator`] (and its clones) to the [`Allocator`] memo.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The temporal mapping of one operand after stationarity merge-down.
#[derive(Clone, Debug, Default)]
struct Temporal {
    /// Flat loops, innermost first.
    loops: Vec<(usize, u64)>,
    /// `starts[m]..starts[m+1]` are level `m`'s loops (`M + 1` entries).
    starts: Vec<usize>,
    mac_st: u64,
    /// The product of the irrelevant loops at the bottom of level 0 as given, before the
    /// merge-down (ZigZag's precharge interval of deeper IMC cell groups).
    ir_run0: u64,
    /// `cycle_cabl[m]`.
    cabl: Vec<u64>,
    /// `top_r[a]`, `top_ir[a]` for architecture levels `a` (`M + 1`).
    top_r: Vec<u64>,
    top_ir: Vec<u64>,
}

/// A cost model prepared for one layer, accelerator, operand links and spatial mapping:
/// evaluates temporal mappings.
#[derive(Clone, Debug)]
pub struct Evaluator {
    id: u64,
    model: PreparedLayer,
    spatial: Spatial,
    plan: Plan,
    levels: Vec<Vec<LevelInfo>>,
    ports: Vec<PortInfo>,
    mem_names: Vec<String>,
    units: u64,
    mac_energy: f64,
    /// Array cycles per MAC (bit-serial IMC arrays; else 1).
    cycles_per_mac: u64,
    /// The IMC operational cost, which does not depend on the temporal mapping (but for the
    /// precharge below).
    imc: Option<crate::cost::ImcLayerCost>,
    /// IMC cell groups deeper than one weight: the weights' operand and the energy of one
    /// precharge, charged per mapping (`spec/imc.md`).
    precharge: Option<(usize, f64)>,
}

impl Evaluator {
    /// Checks the spatial mapping and precomputes what does not depend on the temporal mapping.
    pub fn new(
        layer: &LoopNest,
        acc: &Accelerator,
        links: &OperandLinks,
        spatial: &SpatialMapping,
    ) -> Result<Evaluator, CostError> {
        let model = PreparedLayer::new(layer, acc, links)?;
        let user_spatial = spatial;
        let spatial = Spatial::new(&model, acc, spatial)?;
        let levels = model
            .ops
            .iter()
            .map(|op| {
                op.mems
                    .iter()
                    .map(|&mi| {
                        let mem = &acc.memories[mi];
                        let mut bw = [None; 4];
                        for (i, d) in DIRS.iter().enumerate() {
                            bw[i] = last_port(mem, op.mem, *d)
                                .map(|p| (mem.ports[p].bw_min, mem.ports[p].bw_max));
                        }
                        LevelInfo {
                            memory: mi,
                            size_bits: mem.size_bits as f64,
                            r_cost: mem.r_cost,
                            w_cost: mem.w_cost,
                            shared: mem.operands.len() > 1,
                            bw,
                        }
                    })
                    .collect()
            })
            .collect();
        let mut ports = Vec::new();
        for (mi, mem) in acc.memories.iter().enumerate() {
            for (pi, port) in mem.ports.iter().enumerate() {
                let mut links_here = Vec::new();
                for &mop in &mem.operands {
                    let level = acc.levels(mop).iter().position(|&x| x == mi).unwrap_or(0);
                    for &(o, d) in &port.allocation {
                        // Like ZigZag, a (memory operand, direction) given to several ports
                        // belongs to the last of them.
                        if o == mop && last_port(mem, o, d) == Some(pi) {
                            links_here.push(PortLink {
                                op: model.ops.iter().position(|op| op.mem == mop),
                                mem_op: mop,
                                level,
                                dir: dir_index(d),
                            });
                        }
                    }
                }
                if links_here.is_empty() {
                    continue;
                }
                let mut ins: Vec<MemOperand> = links_here
                    .iter()
                    .map(|l| l.mem_op)
                    .filter(|m| matches!(m, MemOperand::I1 | MemOperand::I2))
                    .collect();
                ins.dedup();
                ins.sort();
                ins.dedup();
                ports.push(PortInfo {
                    memory: mi,
                    port: pi,
                    bw_max: port.bw_max,
                    shared_by_two_inputs: ins.len() > 1,
                    links: links_here,
                });
            }
        }
        let mut precharge = None;
        let (mac_energy, cycles_per_mac, imc) = match crate::cost::ImcMacro::new(&acc.array) {
            None => (acc.array.mac_energy * model.total_macs as f64, 1, None),
            Some(m) => {
                let input = |cells: bool| {
                    model.ops.iter().position(|o| !o.is_output && (o.mem == MemOperand::I2) == cells)
                };
                let weights = input(true).ok_or_else(|| CostError::ImcWeights {
                    layer: model.layer_name.clone(),
                    accelerator: acc.name.clone(),
                })?;
                let dims: Vec<String> = acc.array.dims.iter().map(|d| d.name.clone()).collect();
                let c = m.layer_cost(&model, user_spatial, &dims, weights, input(false))?;
                precharge = m.precharge_energy().map(|e| (weights, e));
                (crate::cost::imc::py_sum(&c.energy), c.cycles_per_mac, Some(c))
            }
        };
        Ok(Evaluator {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            plan: Plan::new(&model, acc),
            mem_names: acc.memories.iter().map(|m| m.name.clone()).collect(),
            units: acc.array.units(),
            model,
            spatial,
            levels,
            ports,
            mac_energy,
            cycles_per_mac,
            imc,
            precharge,
        })
    }

    /// Whether the array energy includes the precharge of IMC cell groups deeper than one
    /// weight, the one part of it that depends on the temporal mapping (`spec/imc.md`).
    pub fn charges_precharge(&self) -> bool {
        self.precharge.is_some()
    }

    /// [`crate::cost::allocate`] for this layer and spatial mapping, without rebuilding the
    /// per-layer tables.
    pub fn allocate(
        &self,
        order: &[TemporalLoop],
        opts: &AllocOptions,
    ) -> Result<TemporalMapping, CostError> {
        self.allocate_loops(order, opts, None)
    }

    /// [`Evaluator::allocate`], recording in `trace` which prefix of `order` each decision
    /// depended on (for [`Evaluator::prefix_bounds`]).
    pub fn allocate_traced(
        &self,
        order: &[TemporalLoop],
        opts: &AllocOptions,
        trace: &mut AllocTrace,
    ) -> Result<TemporalMapping, CostError> {
        self.allocate_loops(order, opts, Some(trace))
    }

    fn allocate_loops(
        &self,
        order: &[TemporalLoop],
        opts: &AllocOptions,
        trace: Option<&mut AllocTrace>,
    ) -> Result<TemporalMapping, CostError> {
        let idx = order_indices(&self.model, order)?;
        let mut a = Allocator::default();
        a.run(&self.model, &self.spatial, &self.plan, 0, &idx, opts, trace)?;
        Ok(a.allocation().to_mapping(&self.model, &idx))
    }

    /// The allocation of `order` (`(dim, size)`, dims indexed as in
    /// [`Evaluator::temporal_sizes`], innermost first) into `alloc`
    /// ([`Allocator::allocation`]), reusing the decisions of `alloc`'s previous allocation that
    /// still hold for this order; with `trace`, records what each decision depended on.
    pub fn allocate_order(
        &self,
        order: &[(usize, u64)],
        opts: &AllocOptions,
        alloc: &mut Allocator,
        trace: Option<&mut AllocTrace>,
    ) -> Result<(), CostError> {
        alloc.run(&self.model, &self.spatial, &self.plan, self.id, order, opts, trace)
    }

    /// The temporal mapping an allocation of `order` stands for.
    pub fn mapping(&self, order: &[(usize, u64)], alloc: &Allocation) -> TemporalMapping {
        alloc.to_mapping(&self.model, order)
    }

    /// The temporal iterations each layer dim needs, in the layer's dim order (what the temporal
    /// loops of a dim must multiply to).
    pub fn temporal_sizes(&self) -> Vec<(String, u64)> {
        self.model.dim_names.iter().cloned().zip(self.spatial.temporal_sizes.iter().copied()).collect()
    }

    /// The operands' temporal loops of `tm` into `temps`, checked; returns the temporal cycles.
    fn temporal(&self, tm: &TemporalMapping, temps: &mut Vec<Temporal>) -> Result<u64, CostError> {
        let model = &self.model;
        temps.resize_with(model.ops.len(), Temporal::default);
        let mut total = 0;
        for (k, op) in model.ops.iter().enumerate() {
            let lv = tm.levels(&op.role).ok_or_else(|| CostError::MissingTemporal {
                layer: model.layer_name.clone(),
                role: op.role.clone(),
            })?;
            let m_count = op.mems.len();
            if lv.len() != m_count {
                return Err(CostError::LevelCount {
                    layer: model.layer_name.clone(),
                    role: op.role.clone(),
                    mem_operand: op.mem,
                    given: lv.len(),
                    expected: m_count,
                });
            }
            let t = &mut temps[k];
            t.loops.clear();
            t.starts.clear();
            let mut per_dim = vec![1u64; model.dim_names.len()];
            for level in lv {
                t.starts.push(t.loops.len());
                for l in level {
                    let d = model.dim_or_err(&l.dim)?;
                    per_dim[d] = per_dim[d].saturating_mul(l.size);
                    t.loops.push((d, l.size));
                }
            }
            t.starts.push(t.loops.len());
            for (d, &p) in per_dim.iter().enumerate() {
                if p != self.spatial.temporal_sizes[d] {
                    return Err(CostError::TemporalMismatch {
                        layer: model.layer_name.clone(),
                        role: op.role.clone(),
                        dim: model.dim_names[d].clone(),
                        product: p,
                        expected: self.spatial.temporal_sizes[d],
                    });
                }
            }
            total = self.merge_down(k, t);
        }
        Ok(total)
    }

    /// Stationarity merge-down of operand `k`'s loops and levels in `t`, and what the cost model
    /// reads of them; returns the temporal cycles.
    fn merge_down(&self, k: usize, t: &mut Temporal) -> u64 {
        let op = &self.model.ops[k];
        let m_count = op.mems.len();
        // Leading irrelevant loops of a level belong to the level below.
        let n = t.loops.len();
        let skip = |mut i: usize| {
            while i < n && op.rel[t.loops[i].0] == Rel::Ir {
                i += 1;
            }
            i
        };
        let end0 = t.starts[1.min(m_count)];
        t.ir_run0 = t.loops[..skip(0).min(end0)].iter().map(|l| l.1).product();
        for m in 1..m_count {
            t.starts[m] = skip(t.starts[m]);
        }
        t.mac_st = t.loops[..skip(0).min(t.starts[1.min(m_count)])].iter().map(|l| l.1).product();
        t.cabl.clear();
        let mut c = 1u64;
        t.top_r.clear();
        t.top_r.resize(m_count + 1, 1);
        t.top_ir.clear();
        t.top_ir.resize(m_count + 1, 1);
        for m in 0..m_count {
            let lvl = &t.loops[t.starts[m]..t.starts[m + 1]];
            for l in lvl {
                c = c.saturating_mul(l.1);
            }
            t.cabl.push(c);
            for l in lvl.iter().rev() {
                if op.rel[l.0] != Rel::R {
                    break;
                }
                t.top_r[m + 1] *= l.1;
            }
            for l in lvl.iter().rev() {
                if op.rel[l.0] != Rel::Ir {
                    break;
                }
                t.top_ir[m + 1] *= l.1;
            }
        }
        c
    }

    /// ZigZag's `Mapping` for one operand and one spatial variant, into `p`.
    fn pattern(&self, k: usize, t: &Temporal, total: u64, frac: bool, p: &mut Pattern) {
        let model = &self.model;
        let op = &model.ops[k];
        let sp = if frac { &self.spatial.frac[k] } else { &self.spatial.int[k] };
        let m_count = op.mems.len();
        let n = m_count + 1;
        let tlevel = |m: usize| &t.loops[t.starts[m]..t.starts[m + 1]];
        // 1s1t: temporal(a-1) + spatial(a); 1s2t: temporal(a-1) + spatial(a-1).
        reset(&mut p.ir1, n, 1.0);
        reset(&mut p.has_ir1, n, false);
        let mut dec = Decoupler::default();
        for a in 0..n {
            let tl: &[(usize, u64)] = if a > 0 { tlevel(a - 1) } else { &[] };
            let mut prod = 1.0;
            let has_ir1 = &mut p.has_ir1[a];
            let mut add = |d: usize, s: f64| {
                let (_, fi) = dec.push(model, op, d, s);
                if matches!(op.rel[d], Rel::Ir | Rel::Pr(..)) {
                    prod *= fi;
                    if fi > 1.0 {
                        *has_ir1 = true;
                    }
                }
            };
            for &(d, s) in tl {
                add(d, s as f64);
            }
            for &(d, s) in &sp.levels[a] {
                add(d, s);
            }
            p.ir1[a] = prod;
        }
        reset(&mut p.elem, n, 1.0);
        let mut dec = Decoupler::default();
        let mut cum = 1.0f64;
        for (a, e) in p.elem.iter_mut().enumerate().skip(1) {
            let mut prod = 1.0;
            let mut add = |d: usize, s: f64| {
                let (fr, _) = dec.push(model, op, d, s);
                if matches!(op.rel[d], Rel::R | Rel::Pr(..)) {
                    prod *= fr;
                }
            };
            for &(d, s) in tlevel(a - 1) {
                add(d, s as f64);
            }
            for &(d, s) in &sp.levels[a - 1] {
                add(d, s);
            }
            cum *= prod;
            *e = py_round(cum);
        }
        // psum flags and precisions per architecture level.
        reset(&mut p.psum, n, false);
        if op.is_output {
            for i in (0..m_count).rev() {
                p.psum[i] = p.psum[i + 1] || p.has_ir1[i + 1];
            }
        }
        p.prec.clear();
        p.prec.extend((0..n).map(|a| if op.is_output && !p.psum[a] { op.prec_final } else { op.prec }));
        p.bits.clear();
        p.bits.extend((0..n).map(|a| p.elem[a] * p.prec[a] as f64));
        p.eff_bits.clear();
        p.eff_bits.extend((0..n).map(|a| (p.bits[a] / t.top_r[a] as f64).floor()));
        let (elem, prec, psum) = (&p.elem, &p.prec, &p.psum);
        let cycle = |a: usize| -> u64 {
            if a == 0 { if op.is_output { 1 } else { t.mac_st } } else { t.cabl[a - 1] }
        };
        let req_low = |a: usize| elem[a] * prec[a] as f64 / cycle(a) as f64;
        let req_high = |a: usize| req_low(a) * sp.boost[a];
        reset(&mut p.caal, n + 2, 1.0);
        if op.is_output {
            // Front to back, as ZigZag multiplies.
            for a in 0..n {
                p.caal[a] = p.ir1[a..].iter().fold(1.0, |q, x| q * x);
            }
        }
        p.links.clear();
        for m in 0..m_count {
            let mut l = [Link::default(); 4];
            let low = Link {
                amount: if op.is_output { (elem[m] * sp.boost[m]).trunc() } else { elem[m] * sp.boost[m] },
                prec: op.prec,
                period: cycle(m),
                pc: total / cycle(m),
                req_bw: req_high(m).trunc(),
                window: 0,
            };
            let high = Link {
                amount: elem[m + 1],
                prec: op.prec,
                period: cycle(m + 1),
                pc: total / cycle(m + 1),
                req_bw: req_low(m + 1).trunc(),
                window: 0,
            };
            if op.is_output {
                let tl_elem = (op.size_elem * (p.caal[m + 1] - 1.0)).trunc();
                let fh_elem = (op.size_elem * (p.caal[m + 2] - 1.0)).trunc();
                let (low_p, tl_p) = if tl_elem != 0.0 { (op.prec, op.prec) } else { (op.prec_final, 0) };
                let (th_p, fh_p) = if fh_elem != 0.0 { (op.prec, op.prec) } else { (op.prec_final, 0) };
                l[FL] = Link { prec: low_p, ..low };
                l[TH] = Link { prec: th_p, ..high };
                l[TL] =
                    if psum[m] { Link { prec: tl_p, ..low } } else { Link { prec: tl_p, ..Link::default() } };
                l[FH] = if psum[m + 1] {
                    Link { prec: fh_p, ..high }
                } else {
                    Link { prec: fh_p, ..Link::default() }
                };
            } else {
                l[TL] = low;
                l[FH] = high;
            }
            for (i, link) in l.iter_mut().enumerate() {
                let s = if i == TL || i == FL { t.top_ir[m] } else { t.top_ir[m + 1] };
                link.window = (link.period as f64 / s as f64) as u64;
            }
            if m + 1 == m_count {
                l[FH] = Link::default();
                l[TH] = Link::default();
            }
            p.links.push(l);
        }
    }

    /// Evaluates one temporal mapping (per operand and memory level, innermost loop first; before
    /// or after ZigZag's stationarity merge-down, which is applied here).
    pub fn evaluate(&self, tm: &TemporalMapping, opts: &CostOptions) -> Result<LayerCost, CostError> {
        let mut s = EvalScratch::default();
        let total = self.temporal(tm, &mut s.temps)?;
        let mut out = LayerCost::default();
        self.evaluate_prepared(total, opts, &mut s, &mut out)?;
        Ok(out)
    }

    /// Evaluates the allocation `alloc` of `order` (from [`Evaluator::allocate_order`]) into
    /// `out`, with the buffers of `scratch`: the search's inner loop, which allocates nothing
    /// once the buffers have grown.
    pub fn evaluate_order(
        &self,
        order: &[(usize, u64)],
        alloc: &Allocation,
        opts: &CostOptions,
        scratch: &mut EvalScratch,
        out: &mut LayerCost,
    ) -> Result<(), CostError> {
        let nops = self.model.ops.len();
        scratch.temps.resize_with(nops, Temporal::default);
        let mut total = 0;
        for (k, t) in scratch.temps.iter_mut().enumerate() {
            t.loops.clear();
            t.loops.extend_from_slice(order);
            t.starts.clone_from(&alloc.starts[k]);
            total = self.merge_down(k, t);
        }
        self.evaluate_prepared(total, opts, scratch, out)
    }

    /// The evaluation of the temporal loops in `s.temps` (`total` temporal cycles).
    fn evaluate_prepared(
        &self,
        total: u64,
        opts: &CostOptions,
        s: &mut EvalScratch,
        out: &mut LayerCost,
    ) -> Result<(), CostError> {
        let model = &self.model;
        let nops = model.ops.len();
        s.frac.resize_with(nops, Pattern::default);
        for (k, p) in s.frac.iter_mut().enumerate() {
            self.pattern(k, &s.temps[k], total, true, p);
        }
        if self.spatial.greedy {
            s.int.resize_with(nops, Pattern::default);
            for (k, p) in s.int.iter_mut().enumerate() {
                self.pattern(k, &s.temps[k], total, false, p);
            }
        }
        let EvalScratch {
            frac,
            int,
            shared_util,
            db,
            acts,
            windows,
            cc,
            once,
            c_list,
            m_list,
            reduce,
            parts,
            ..
        } = s;
        let frac: &[Pattern] = frac;
        let int: &[Pattern] = if self.spatial.greedy { int } else { frac };

        // Energy (fractional unrolling).
        let mut mem_energy = 0.0;
        out.operands.truncate(nops);
        for (k, op) in model.ops.iter().enumerate() {
            if out.operands.len() == k {
                out.operands.push(OperandCost {
                    role: String::new(),
                    mem_operand: op.mem,
                    levels: Vec::new(),
                });
            }
            let oc = &mut out.operands[k];
            oc.role.clone_from(&op.role);
            oc.mem_operand = op.mem;
            oc.levels.clear();
            let sp = &self.spatial.frac[k];
            for (m, li) in self.levels[k].iter().enumerate() {
                let mut accesses = [0u64; 4];
                for (i, link) in frac[k].links[m].iter().enumerate() {
                    if link.amount == 0.0 || link.prec == 0 {
                        continue;
                    }
                    let (bmin, bmax) = li.bw[i].ok_or_else(|| CostError::MissingPort {
                        layer: model.layer_name.clone(),
                        memory: self.mem_names[li.memory].clone(),
                        mem_operand: op.mem,
                        direction: DIRS[i],
                    })?;
                    let words = (link.amount * link.prec as f64 / bmin as f64).ceil();
                    accesses[i] =
                        (words * (bmin as f64 / bmax as f64) * link.pc as f64 * sp.unit_count[m + 1]) as u64;
                }
                let energy = [
                    accesses[FH] as f64 * li.w_cost,
                    accesses[TL] as f64 * li.r_cost,
                    accesses[FL] as f64 * li.w_cost,
                    accesses[TH] as f64 * li.r_cost,
                ];
                mem_energy += (energy[TH] + energy[TL]) + (energy[FH] + energy[FL]);
                oc.levels.push(LevelCost {
                    memory: li.memory,
                    tile_elems: frac[k].elem[m + 1] as u64,
                    tile_bits: frac[k].bits[m + 1] as u64,
                    instances: sp.unit_count[m + 1] as u64,
                    accesses,
                    energy,
                });
            }
        }

        // Double-buffering flags from the effective memory utilisation (fractional unrolling).
        shared_util.clear();
        for (k, lv) in self.levels.iter().enumerate() {
            for (m, li) in lv.iter().enumerate() {
                if li.shared {
                    let u = frac[k].eff_bits[m + 1] / li.size_bits;
                    match shared_util.iter_mut().find(|(mi, _)| *mi == li.memory) {
                        Some(e) => e.1 += u,
                        None => shared_util.push((li.memory, u)),
                    }
                }
            }
        }
        db.resize(nops, Vec::new());
        for ((k, lv), flags) in self.levels.iter().enumerate().zip(db.iter_mut()) {
            reset(flags, lv.len() + 1, false);
            for (m, li) in lv.iter().enumerate() {
                let indiv = frac[k].eff_bits[m + 1] / li.size_bits;
                let slot = shared_util.iter().position(|(mi, _)| *mi == li.memory);
                let shared = slot.map_or(indiv, |s| shared_util[s].1);
                if shared <= 0.5 {
                    flags[m + 1] = true;
                } else if indiv <= 1.0 - shared {
                    flags[m + 1] = true;
                    if let Some(s) = slot {
                        shared_util[s].1 += indiv;
                    }
                }
            }
        }
        let db: &[Vec<bool>] = db;

        // Real and allowed transfer cycles per link (integer unrolling).
        let real = |k: usize, m: usize, i: usize| -> f64 {
            let link = &int[k].links[m][i];
            match self.levels[k][m].bw[i] {
                Some((_, bmax)) if bmax > 0 => (link.amount * link.prec as f64 / bmax as f64).ceil(),
                _ => 0.0,
            }
        };
        // A bit-serial IMC array takes `cpm` cycles per MAC: the transfer windows and periods,
        // counted in temporal iterations, stretch by it (ZigZag's `cycles_per_op`).
        let cpm = self.cycles_per_mac;
        let allowed = |k: usize, m: usize, i: usize| -> u64 {
            let link = &int[k].links[m][i];
            let flag = if i == TL || i == FL { db[k][m] } else { db[k][m + 1] };
            (if flag { link.period } else { link.window }).saturating_mul(cpm)
        };

        out.port_stalls.clear();
        let mut ss_comb: i64 = 0;
        for port in &self.ports {
            acts.clear();
            for pl in &port.links {
                let Some(k) = pl.op else { continue };
                let link = &int[k].links[pl.level][pl.dir];
                if link.pc == 0 {
                    continue;
                }
                acts.push((
                    real(k, pl.level, pl.dir) as i128,
                    i128::from(allowed(k, pl.level, pl.dir)),
                    link.period.saturating_mul(cpm),
                    link.pc,
                ));
            }
            // In 128 bits: a stall is a product of two cycle counts. One past 2^63 cycles is an
            // error, not a wrapped or saturated latency.
            let ss = match acts.len() {
                0 => continue,
                1 => {
                    let (r, a, _, pc) = acts[0];
                    (r - a).checked_mul(i128::from(pc) - 1)
                }
                _ => {
                    let union = muw_union(acts, windows);
                    let mut pos = 0i128;
                    let mut neg = 0i128;
                    let mut muw = 0i128;
                    let mut fits = true;
                    for &(r, a, _, pc) in acts.iter() {
                        let (s, w) =
                            ((r - a).checked_mul(i128::from(pc) - 1), a.checked_mul(i128::from(pc) - 1));
                        let (Some(s), Some(w)) = (s, w) else {
                            fits = false;
                            break;
                        };
                        if s > 0 {
                            pos = pos.saturating_add(s);
                        } else {
                            neg = neg.saturating_add(s);
                        }
                        muw = muw.saturating_add(w);
                    }
                    fits.then(|| pos.saturating_add(0i128.max(neg.saturating_add(muw).saturating_sub(union))))
                }
            };
            let Some(ss) = ss.and_then(|ss| i64::try_from(ss).ok()) else {
                return Err(CostError::StallTooLarge {
                    layer: model.layer_name.clone(),
                    memory: self.mem_names[port.memory].clone(),
                });
            };
            out.port_stalls.push(PortStall { memory: port.memory, port: port.port, stall_slack: ss });
            ss_comb = ss_comb.max(ss);
        }

        // On-loading and off-loading.
        let v391 = opts.latency_model == LatencyModel::Zigzag391;
        let out_mem = model.ops[0].mem;
        cc.resize(nops, Vec::new());
        for (c, lv) in cc.iter_mut().zip(&self.levels) {
            reset(c, lv.len(), [None; 4]);
        }
        let cycles = total.saturating_mul(cpm);
        let comp = cycles as f64 + ss_comb as f64;
        for port in &self.ports {
            once.clear();
            let mut req_bw = 0.0;
            for pl in &port.links {
                let Some(k) = pl.op else { continue };
                if pl.mem_op == out_mem && (pl.dir == TL || pl.dir == FH) {
                    continue;
                }
                let link = &int[k].links[pl.level][pl.dir];
                match link.pc {
                    0 => {}
                    1 => once.push((k, pl.level, pl.dir)),
                    _ => {
                        req_bw += (link.req_bw / cpm as f64).ceil();
                        cc[k][pl.level][pl.dir] =
                            Some((real(k, pl.level, pl.dir), port.shared_by_two_inputs));
                    }
                }
            }
            if once.is_empty() {
                continue;
            }
            c_list.clear();
            m_list.clear();
            for &(k, m, i) in once.iter() {
                m_list.push((int[k].bits[1] / port.bw_max as f64).ceil());
                c_list.push(real(k, m, i));
            }
            let bw = port.bw_max as f64;
            let surplus = 0f64.max((bw - req_bw) / bw * comp);
            if v391 {
                reduce_ordered(c_list, m_list, surplus, reduce);
            } else {
                reduce_balanced(c_list, m_list, surplus, reduce);
            }
            for (j, &(k, m, i)) in once.iter().enumerate() {
                cc[k][m][i] = Some((c_list[j], port.shared_by_two_inputs));
            }
        }
        let onload = onload_cycles(cc, parts);
        let mut offload = 0.0;
        for m in 0..self.levels[0].len().saturating_sub(1) {
            let e1 = cc[0][m][TH].map_or(0.0, |e| e.0);
            let e2 = cc[0][m + 1][FL].map_or(0.0, |e| e.0);
            offload += e1.max(e2);
        }

        let ideal_cycle = model.total_macs.div_ceil(self.units.max(1)).saturating_mul(cpm);
        let drain = if v391 { self.spatial.drain } else { 0 };
        let latency_total0 = cycles as f64 + ss_comb as f64;
        let latency_total1 = latency_total0 + onload;
        let latency = latency_total1 + offload + drain as f64;
        out.imc.clone_from(&self.imc);
        let mut mac_energy = self.mac_energy;
        if let (Some((w, per_pe)), Some(imc)) = (self.precharge, out.imc.as_mut()) {
            // ZigZag's `get_precharge_energy`: the weight reads out of the cells (its
            // `rd_out_to_low` count of the lowest weight level, with
            // `access_same_data_considered_as_no_access`), one precharge per run of irrelevant
            // loops at the bottom of the cells' level.
            let t = &s.temps[w];
            let reads = (py_round(model.total_macs as f64 / frac[w].ir1[0]) / t.mac_st as f64).trunc();
            imc.energy[0] = per_pe * (reads / t.ir_run0 as f64);
            mac_energy = crate::cost::imc::py_sum(&imc.energy);
        }
        out.energy = mem_energy + mac_energy;
        out.mac_energy = mac_energy;
        out.mem_energy = mem_energy;
        out.ideal_cycle = ideal_cycle;
        out.ideal_temporal_cycle = cycles;
        out.stall_slack_comb = ss_comb;
        out.onload = onload;
        out.offload = offload;
        out.systolic_drain = drain;
        out.latency_total0 = latency_total0;
        out.latency_total1 = latency_total1;
        out.latency = latency;
        out.spatial_utilization = ideal_cycle as f64 / cycles as f64;
        out.mac_utilization = ideal_cycle as f64 / latency;
        Ok(())
    }
}

/// ZigZag 3.9.1's on-loading cycles from the loading cycles `cc` of each (operand, level,
/// direction) (`parts`: a buffer): per input operand and level boundary, the longer of the write
/// into the lower level and the read out of the upper one, summed apart by whether both ports
/// are shared by the two inputs, one or none (the last such boundary counts); with two inputs,
/// the better of the two orders of loading them. Non-decreasing in every entry of `cc`.
fn onload_cycles(cc: &LoadCycles, parts: &mut Vec<(f64, f64, f64)>) -> f64 {
    let nops = cc.len();
    reset(parts, nops, (0.0f64, 0.0f64, 0.0f64));
    for k in 1..nops {
        for m in 0..cc[k].len().saturating_sub(1) {
            let e1 = cc[k][m][FH].unwrap_or((0.0, false));
            let e2 = cc[k][m + 1][TL].unwrap_or((0.0, false));
            let longest = e1.0.max(e2.0);
            if !e1.1 && !e2.1 {
                parts[k].0 += longest;
            } else if e1.1 && e2.1 {
                parts[k].2 += longest;
            } else {
                parts[k].1 = longest;
            }
        }
    }
    match nops.saturating_sub(1) {
        0 => 0.0,
        1 => parts[1].0,
        _ => {
            let (i1, h1, s1) = parts[1];
            let (i2, h2, s2) = parts[2];
            let p1 = s1 + (s2 + h2 + i2).max(h1 + i1);
            let p2 = s2 + (s1 + h1 + i1).max(h2 + i2);
            p1.min(p2)
        }
    }
}

/// The last port of `mem` carrying `(op, dir)`.
fn last_port(mem: &Memory, op: MemOperand, dir: Direction) -> Option<usize> {
    mem.ports.iter().rposition(|p| p.allocation.contains(&(op, dir)))
}

/// The union of the memory-updating windows of the links sharing one port: each link may
/// transfer during the first `allowed` cycles of each of its periods; the union is measured
/// over the longest period and scaled by that link's period count.
fn muw_union(acts: &[(i128, i128, u64, u64)], sorted: &mut Vec<(u64, u64)>) -> i128 {
    for &(_, a, p, pc) in acts {
        if i128::from(p) == a {
            return i128::from(p) * i128::from(pc);
        }
    }
    let mut pmax = 0;
    let mut pc_max = 0;
    for &(_, _, p, pc) in acts {
        if p > pmax {
            pmax = p;
            pc_max = pc;
        }
    }
    if pmax == 0 {
        return 0;
    }
    sorted.clear();
    sorted.extend(
        acts.iter().map(|&(_, a, p, _)| (p.max(1), u64::try_from(a.max(0)).unwrap_or(u64::MAX).min(p))),
    );
    sorted.sort_by_key(|x| x.0);
    let chain = sorted.windows(2).all(|w| w[1].0 % w[0].0 == 0) && pmax % sorted[0].0 == 0;
    let uncovered = if chain {
        uncovered(sorted, sorted.len(), pmax)
    } else {
        (0..pmax).filter(|t| sorted.iter().all(|&(p, a)| t % p >= a)).count() as u64
    };
    i128::from(pmax - uncovered) * i128::from(pc_max)
}

/// Positions `t` in `[0, x)` that none of the first `j` windows `(period, allowed)` covers, for
/// periods dividing each other.
fn uncovered(w: &[(u64, u64)], j: usize, x: u64) -> u64 {
    if j == 0 {
        return x;
    }
    let (p, a) = w[j - 1];
    let per_period = uncovered(w, j - 1, p) - uncovered(w, j - 1, a.min(p));
    let r = x % p;
    (x / p) * per_period + uncovered(w, j - 1, r) - uncovered(w, j - 1, r.min(a))
}

/// ZigZag 3.9.1's `reduce_ordered`: reduce the largest entries first towards their minimum, up to
/// a total of `s`.
fn reduce_ordered(c: &mut [f64], m: &[f64], mut s: f64, buf: &mut Vec<(usize, f64, f64)>) {
    if s <= 0.0 || c.is_empty() {
        return;
    }
    largest_first(c, m, buf);
    for &(i, _, _) in buf.iter() {
        if s <= 0.0 {
            break;
        }
        let red = 0f64.max(c[i] - m[i]).min(s);
        c[i] -= red;
        s -= red;
    }
}

/// The repository's `reduce_balanced` (water filling; may leave entries below their minimum).
fn reduce_balanced(c: &mut [f64], m: &[f64], mut s: f64, buf: &mut Vec<(usize, f64, f64)>) {
    if s <= 0.0 || c.is_empty() {
        return;
    }
    largest_first(c, m, buf);
    for i in 0..buf.len() {
        let max_red = (buf[i].1 - buf[i].2) * (i + 1) as f64;
        if s >= max_red {
            let red = buf[i].1 - buf[i].2;
            for v in buf.iter_mut().take(i + 1) {
                v.1 -= red;
            }
            s -= max_red;
        } else {
            let red = s / (i + 1) as f64;
            for v in buf.iter_mut().take(i + 1) {
                v.1 -= red;
            }
            break;
        }
    }
    for &(i, ci, _) in buf.iter() {
        c[i] = ci;
    }
}

/// `(index, c, m)` of the entries into `buf`, largest `c` first (stable).
fn largest_first(c: &[f64], m: &[f64], buf: &mut Vec<(usize, f64, f64)>) {
    buf.clear();
    buf.extend(c.iter().zip(m).enumerate().map(|(i, (&ci, &mi))| (i, ci, mi)));
    buf.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal));
}

/// Clears `v` and fills it with `n` copies of `x` (keeping its allocation).
fn reset<T: Clone>(v: &mut Vec<T>, n: usize, x: T) {
    v.clear();
    v.resize(n, x);
}
