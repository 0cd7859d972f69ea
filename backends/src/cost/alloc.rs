//! ZigZag's (LOMA's) bottom-up memory allocator (`research/zigzag.md` 4.2): cuts one complete
//! loop order into per-operand, per-level temporal loops, filling each memory, lowest first, with
//! the combination of loop prefixes per operand that fits and minimises the traffic to the
//! level above.

use crate::arch::Accelerator;
use crate::cost::CostError;
use crate::cost::model::{PreparedLayer, Rel, Spatial};
use crate::mapping::{OperandLinks, SpatialMapping, TemporalLoop, TemporalMapping};
use qc_ir::LoopNest;

/// ZigZag's `temporal_mapping_type`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MappingType {
    /// Each operand cuts the loop order at its own levels (ZigZag's default).
    #[default]
    Uneven,
    /// A loop sits at the same level index for all operands stored in one memory.
    Even,
}

/// Options of [`allocate`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct AllocOptions {
    pub mapping_type: MappingType,
}

/// Allocates the loop order `order` (innermost first; the temporal loops left after the spatial
/// unrolling, see [`crate::cost::Evaluator::temporal_sizes`]) to the memory levels of each
/// operand, as ZigZag 3.9.1's `MemoryAllocator` does (double buffering of memories that force
/// it, shared memories filled jointly). Returns the mapping before stationarity merge-down.
///
/// For many orders of one layer and spatial mapping, use [`crate::cost::Evaluator::allocate_order`]
/// with one [`Allocator`]: it reuses the decisions that consecutive orders share.
pub fn allocate(
    layer: &LoopNest,
    acc: &Accelerator,
    links: &OperandLinks,
    spatial: &SpatialMapping,
    order: &[TemporalLoop],
    opts: &AllocOptions,
) -> Result<TemporalMapping, CostError> {
    let model = PreparedLayer::new(layer, acc, links)?;
    let sp = Spatial::new(&model, acc, spatial)?;
    let plan = Plan::new(&model, acc);
    let idx = order_indices(&model, order)?;
    let mut a = Allocator::default();
    a.run(&model, &sp, &plan, 0, &idx, opts, None)?;
    Ok(a.allocation.to_mapping(&model, &idx))
}

/// The loops of `order` as `(dim index, size)`.
pub(crate) fn order_indices(
    model: &PreparedLayer,
    order: &[TemporalLoop],
) -> Result<Vec<(usize, u64)>, CostError> {
    order.iter().map(|l| Ok((model.dim_or_err(&l.dim)?, l.size))).collect()
}

/// An allocation of one loop order (innermost first) to the memory levels of each operand,
/// before stationarity merge-down: operand `k`'s level `l` holds the loops
/// `order[starts[k][l]..starts[k][l + 1]]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allocation {
    /// Per operand (the layer's operand order, output first): `levels + 1` positions, from 0 to
    /// the length of the order.
    pub(crate) starts: Vec<Vec<usize>>,
}

impl Allocation {
    /// Per operand (the layer's operand order, output first): where its levels start in the
    /// order, then the order's length.
    pub fn starts(&self) -> &[Vec<usize>] {
        &self.starts
    }

    pub(crate) fn to_mapping(&self, model: &PreparedLayer, order: &[(usize, u64)]) -> TemporalMapping {
        let operands = model
            .ops
            .iter()
            .zip(&self.starts)
            .map(|(op, st)| {
                let levels = st
                    .windows(2)
                    .map(|w| {
                        order[w[0]..w[1]]
                            .iter()
                            .map(|&(d, size)| TemporalLoop { dim: model.dim_names[d].clone(), size })
                            .collect()
                    })
                    .collect();
                (op.role.clone(), levels)
            })
            .collect();
        TemporalMapping { operands }
    }
}

/// The memories in the order the allocator fills them (the accelerator's, lowest first), each
/// with the layer operands it holds.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    mems: Vec<PlanMemory>,
}

#[derive(Clone, Debug)]
struct PlanMemory {
    /// Index into the accelerator's memories.
    memory: usize,
    name: String,
    capacity_bits: u64,
    double_buffering: bool,
    /// The layer operands it holds, in the memory's operand order.
    ops: Vec<usize>,
    /// Per entry of `ops`: whether this is the operand's top memory.
    is_top: Vec<bool>,
}

impl Plan {
    pub(crate) fn new(model: &PreparedLayer, acc: &Accelerator) -> Plan {
        let mems = acc
            .memories
            .iter()
            .enumerate()
            .filter_map(|(mi, mem)| {
                let ops: Vec<usize> = mem
                    .operands
                    .iter()
                    .filter_map(|mo| model.ops.iter().position(|o| o.mem == *mo))
                    .collect();
                let is_top = ops.iter().map(|&k| model.ops[k].mems.last() == Some(&mi)).collect();
                (!ops.is_empty()).then(|| PlanMemory {
                    memory: mi,
                    name: mem.name.clone(),
                    capacity_bits: mem.size_bits,
                    double_buffering: mem.double_buffering,
                    ops,
                    is_top,
                })
            })
            .collect();
        Plan { mems }
    }

    /// The memories (indices into the accelerator's) where every allocation that gets there, of
    /// every order of the temporal loops, gives each operand they hold all the loops it has left:
    /// its tile there is the whole operand (per instance), filled once. So it is when
    /// 1. the spatial unrolling is integral (the sizes and traffics below are exact integers),
    /// 2. each operand's tile fits there whatever loops it holds, twice over if the memory double
    ///    buffers (every prefix is a candidate: the allocator's list of an operand stops at the
    ///    first that does not fit), and all of them together fit (the combination where each
    ///    takes everything is feasible),
    /// 3. no prefix moves less data to the level above than taking everything: for each operand,
    ///    `tile(prefix) x (product of the loops left) >= whole`, exact for its directly relevant
    ///    dims and checked for each partially relevant one on every pair of divisors of its two
    ///    dims' loops (the dims of the relations and the relevant ones disjoint, so that the
    ///    product of the checks is the check of the product). Taking everything is then the
    ///    last of the least traffic, which both mapping types keep (it is the last combination
    ///    of the walk in [`Allocator`]'s `decide`, and passes the even type's check).
    ///
    /// Tiles are bounded by [`PreparedLayer::tensor_size_bound`] at the larger of an output's
    /// two precisions.
    pub(crate) fn whole_memories(&self, model: &PreparedLayer, sp: &Spatial) -> Vec<usize> {
        let integral = sp.frac.iter().all(|o| o.levels.iter().flatten().all(|&(_, f)| f.fract() == 0.0));
        if !integral {
            return Vec::new();
        }
        let nd = model.dim_names.len();
        let t = &sp.temporal_sizes;
        let divisors = |x: u64| (1..=x).filter(move |v| x.is_multiple_of(*v));
        // Condition 3 for operand `k` with spatial factors `base` below its level.
        let least_whole = |k: usize, base: &[f64]| -> bool {
            let op = &model.ops[k];
            let mut seen = vec![false; nd];
            for &d in &op.r_dims {
                seen[d] = true;
            }
            for &p in &op.prs {
                let pr = &model.prs[p as usize];
                let dims = &pr.dims[..pr.terms];
                if dims.iter().any(|&d| std::mem::replace(&mut seen[d], true)) {
                    return false;
                }
                let (d0, d1) = (dims[0], dims.get(1).copied());
                let (t1, b1) = d1.map_or((1, 1.0), |d| (t[d], base[d]));
                let whole = pr.size(base[d0] * t[d0] as f64, b1 * t1 as f64);
                for a in divisors(t[d0]) {
                    for b in divisors(t1) {
                        let tile = pr.size(base[d0] * a as f64, b1 * b as f64);
                        if tile * (((t[d0] / a) * (t1 / b)) as f64) < whole {
                            return false;
                        }
                    }
                }
            }
            true
        };
        let mut out = Vec::new();
        'mems: for pm in &self.mems {
            let cap = pm.capacity_bits as f64;
            let mut together = 0.0;
            for &k in &pm.ops {
                let op = &model.ops[k];
                let Some(l) = op.mems.iter().position(|&m| m == pm.memory) else { continue 'mems };
                let mut base = vec![1.0f64; nd];
                for &(d, f) in sp.frac[k].levels.iter().take(l + 1).flatten() {
                    base[d] *= f;
                }
                let whole: Vec<f64> = (0..nd).map(|d| base[d] * t[d] as f64).collect();
                let bits = model.tensor_size_bound(k, &whole) * f64::from(op.prec.max(op.prec_final));
                let own = if pm.double_buffering { 2.0 * bits } else { bits };
                let fits = own <= cap && own < 2f64.powi(52);
                if !(fits && least_whole(k, &base)) {
                    continue 'mems;
                }
                together += bits;
            }
            if together <= cap {
                out.push(pm.memory);
            }
        }
        out
    }
}

/// The allocator's reusable state: its buffers, the last [`Allocation`], and the decisions that
/// produced it, which the next allocation replays where they still hold.
///
/// Memoisation: the decision for a memory (where each of its operands' levels ends) depends only
/// on the innermost loops of the order up to [`AllocTrace::cut_req`] and on the product or set
/// of the loops above them (see [`AllocTrace`]). The search enumerates orders so that
/// consecutive ones share their innermost loops, so a decision whose prefix the next order
/// keeps is reused as is: the lowest memories, where the allocator works hardest, are decided
/// once per group of orders rather than once per order.
#[derive(Clone, Debug, Default)]
pub struct Allocator {
    allocation: Allocation,
    /// What the memo is valid for: the evaluator, the options, the order, and its elements sorted.
    owner: u64,
    memo_opts: AllocOptions,
    memo_order: Vec<(usize, u64)>,
    memo_sorted: Vec<(usize, u64)>,
    sorted: Vec<(usize, u64)>,
    /// Per plan memory: the decision of the last allocation, if it got that far.
    memo: Vec<Option<Decision>>,
    /// Decisions replayed and made (statistics).
    reused: u64,
    decided: u64,
    // Working state per operand: loops allocated so far (spatial and temporal), next unallocated
    // position of the order, next level, the prefix its decisions so far depend on.
    allocated: Vec<Vec<(usize, f64)>>,
    next: Vec<usize>,
    level: Vec<usize>,
    dep: Vec<usize>,
    // Buffers of one decision.
    per_dim: Vec<u64>,
    suffix: Vec<u64>,
    dims: Vec<f64>,
    dims_all: Vec<f64>,
    sizes: Vec<Vec<f64>>,
    accesses: Vec<Vec<f64>>,
    offsets: Vec<usize>,
    best: Vec<usize>,
    cur: Vec<usize>,
    /// Per operand of the memory being decided: the [`AllocTrace::clean`] positions it reads.
    clean: Vec<u128>,
    /// Per operand: the positions below which a lower level's decision owns the clean bits.
    owned: Vec<usize>,
    /// Per operand of the memory being decided: its least size and least traffic.
    mins: Vec<(f64, f64)>,
}

/// One memory's decision: the prefix it depended on, and the loops each operand took.
#[derive(Clone, Debug, Default)]
struct Decision {
    req: usize,
    take: Vec<usize>,
    clean: Vec<u128>,
}

impl Allocator {
    /// The last successful allocation.
    pub fn allocation(&self) -> &Allocation {
        &self.allocation
    }

    /// Memory decisions replayed from the memo and made afresh, since this allocator was made.
    pub fn decisions(&self) -> (u64, u64) {
        (self.reused, self.decided)
    }

    /// Allocates `order` (dim indices in the layer's order); `owner` identifies the prepared
    /// layer the memo belongs to (0: do not memoise across calls).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run(
        &mut self,
        model: &PreparedLayer,
        sp: &Spatial,
        plan: &Plan,
        owner: u64,
        order: &[(usize, u64)],
        opts: &AllocOptions,
        mut trace: Option<&mut AllocTrace>,
    ) -> Result<(), CostError> {
        let nd = model.dim_names.len();
        let n = order.len();
        self.per_dim.clear();
        self.per_dim.resize(nd, 1);
        for &(d, size) in order {
            self.per_dim[d] = self.per_dim[d].saturating_mul(size);
        }
        for (d, &p) in self.per_dim.iter().enumerate() {
            if p != sp.temporal_sizes[d] {
                return Err(CostError::TemporalMismatch {
                    layer: model.layer_name.clone(),
                    role: "*".into(),
                    dim: model.dim_names[d].clone(),
                    product: p,
                    expected: sp.temporal_sizes[d],
                });
            }
        }
        // What of the memo holds: decisions that read no further than the common prefix, when
        // the order has the same elements (so the same products and sets above any prefix).
        self.sorted.clear();
        self.sorted.extend_from_slice(order);
        self.sorted.sort_unstable();
        let same = owner != 0
            && owner == self.owner
            && *opts == self.memo_opts
            && self.sorted == self.memo_sorted
            && self.memo.len() == plan.mems.len();
        let common =
            if same { order.iter().zip(&self.memo_order).take_while(|(a, b)| a == b).count() } else { 0 };
        if !same {
            self.memo.clear();
            self.memo.resize(plan.mems.len(), None);
            std::mem::swap(&mut self.sorted, &mut self.memo_sorted);
            self.owner = owner;
            self.memo_opts = *opts;
        }
        self.memo_order.clear();
        self.memo_order.extend_from_slice(order);

        let nops = model.ops.len();
        self.allocated.resize(nops, Vec::new());
        for (k, a) in self.allocated.iter_mut().enumerate() {
            a.clear();
            a.extend_from_slice(&sp.frac[k].levels[0]);
        }
        for v in [&mut self.next, &mut self.dep] {
            v.clear();
            v.resize(nops, 0);
        }
        self.level.clear();
        self.level.resize(nops, 1);
        self.allocation.starts.resize(nops, Vec::new());
        for s in &mut self.allocation.starts {
            s.clear();
            s.push(0);
        }
        self.suffix.clear();
        self.suffix.resize(n + 1, 1);
        for i in (0..n).rev() {
            self.suffix[i] = self.suffix[i + 1].saturating_mul(order[i].1);
        }
        if let Some(t) = trace.as_deref_mut() {
            t.cut_req.clear();
            t.cut_req.resize(nops, Vec::new());
            t.fail_req = n;
            t.clean.clear();
            t.clean.resize(nops, 0);
        }
        self.owned.clear();
        self.owned.resize(nops, 0);

        for (pi, pm) in plan.mems.iter().enumerate() {
            let req = match &self.memo[pi] {
                Some(d) if d.req <= common => {
                    self.reused += 1;
                    self.best.clone_from(&d.take);
                    self.clean.clone_from(&d.clean);
                    d.req
                }
                _ => {
                    self.decided += 1;
                    match self.decide(model, sp, pm, order, opts) {
                        Ok(req) => {
                            let d = self.memo[pi].get_or_insert_with(Decision::default);
                            d.req = req;
                            d.take.clone_from(&self.best);
                            d.clean.clone_from(&self.clean);
                            req
                        }
                        Err((req, e)) => {
                            self.forget_from(pi);
                            return failed(&mut trace, req, e);
                        }
                    }
                }
            };
            for (j, &k) in pm.ops.iter().enumerate() {
                let from = self.next[k];
                self.next[k] += self.best[j];
                self.allocated[k].extend(order[from..self.next[k]].iter().map(|&(d, s)| (d, s as f64)));
                self.allocation.starts[k].push(self.next[k]);
                if let Some(lv) = sp.frac[k].levels.get(self.level[k]) {
                    self.allocated[k].extend_from_slice(lv);
                }
                if pm.is_top[j] && self.next[k] < n {
                    self.forget_from(pi + 1);
                    return failed(
                        &mut trace,
                        req,
                        CostError::HierarchyTooSmall {
                            layer: model.layer_name.clone(),
                            memory: pm.name.clone(),
                            role: model.ops[k].role.clone(),
                        },
                    );
                }
                self.level[k] += 1;
                self.dep[k] = req;
                if let Some(t) = trace.as_deref_mut() {
                    t.cut_req[k].push(if pm.is_top[j] { n } else { req });
                    // The prefix lengths at which this decision is the operand's lowest pending
                    // one: from where the level below was decided to where this one is.
                    let (lo, hi) = (self.owned[k], if pm.is_top[j] { n } else { req });
                    if hi > lo && n < 128 {
                        let below = |p: usize| if p >= 128 { u128::MAX } else { (1u128 << p) - 1 };
                        t.clean[k] |= self.clean.get(j).copied().unwrap_or(0) & below(hi) & !below(lo);
                    }
                    self.owned[k] = self.owned[k].max(hi);
                }
            }
        }
        Ok(())
    }

    /// Drops the decisions of plan memories `pi..` (not reached by the last allocation).
    fn forget_from(&mut self, pi: usize) {
        for d in &mut self.memo[pi..] {
            *d = None;
        }
    }

    /// Decides how many loops each operand of memory `pm` takes (into `self.best`): of the
    /// prefixes of each operand's remaining loops that fit, the combination that fits together
    /// and moves the least data to the level above. Returns the prefix the decision depends on,
    /// or the error with the prefix the failure depends on.
    fn decide(
        &mut self,
        model: &PreparedLayer,
        sp: &Spatial,
        pm: &PlanMemory,
        order: &[(usize, u64)],
        opts: &AllocOptions,
    ) -> Result<usize, (usize, CostError)> {
        let n = order.len();
        let nops_here = pm.ops.len();
        let cap = pm.capacity_bits as f64;
        self.sizes.resize(nops_here, Vec::new());
        self.accesses.resize(nops_here, Vec::new());
        // The decision depends on the operands' earlier decisions and on the loops tried.
        let mut req = pm.ops.iter().map(|&k| self.dep[k]).max().unwrap_or(0);
        // The most the operands' tiles can take together here, under any order of the loops
        // left: whether their joint fit can ever bind (see `AllocTrace::clean`).
        let mut most = 0.0;
        for (j, &k) in pm.ops.iter().enumerate() {
            let op = &model.ops[k];
            let rest = &order[self.next[k]..];
            let prec = if op.is_output {
                let ir = |d: usize| op.rel[d] == Rel::Ir;
                let spatial_left = sp.frac[k].levels[self.level[k]..].iter().flatten().any(|&(d, _)| ir(d));
                if spatial_left || rest.iter().any(|&(d, _)| ir(d)) { op.prec } else { op.prec_final }
            } else {
                op.prec
            } as f64;
            // The tile of the loops allocated so far, then with each further loop of `rest`.
            self.dims.clear();
            self.dims.resize(model.dim_names.len(), 1.0);
            for &(d, s) in &self.allocated[k] {
                self.dims[d] *= s;
            }
            self.dims_all.clone_from(&self.dims);
            for &(d, s) in rest {
                self.dims_all[d] *= s as f64;
            }
            let all = if pm.double_buffering { model.tensor_size(k, &self.dims_all) * prec } else { 0.0 };
            most += model.tensor_size_bound(k, &self.dims_all)
                * prec
                * if pm.double_buffering { 2.0 } else { 1.0 };
            let list = &mut self.sizes[j];
            list.clear();
            for i in 0..=rest.len() {
                if i > 0 {
                    let (d, s) = rest[i - 1];
                    self.dims[d] *= s as f64;
                }
                let mut size = model.tensor_size(k, &self.dims) * prec;
                if pm.double_buffering && i < rest.len() && size < all {
                    size *= 2.0;
                }
                if size <= cap {
                    list.push(size);
                } else {
                    if i == 0 {
                        return Err((
                            self.dep[k],
                            CostError::MemoryTooSmall {
                                layer: model.layer_name.clone(),
                                memory: pm.name.clone(),
                                role: op.role.clone(),
                                needed_bits: size,
                                capacity_bits: pm.capacity_bits,
                            },
                        ));
                    }
                    break;
                }
            }
            // The prefixes `rest[..i]` with `i < list.len()` fit; `rest[..list.len()]`, if any, was
            // tried and did not.
            req = req.max(if list.len() > rest.len() { n } else { self.next[k] + list.len() });
        }
        // Top level of an operand: it must take everything left (the longest prefix that fits).
        self.offsets.clear();
        self.offsets.resize(nops_here, 0);
        for j in 0..nops_here {
            let k = pm.ops[j];
            let acc = &mut self.accesses[j];
            acc.clear();
            if pm.is_top[j] {
                let list = &mut self.sizes[j];
                let last = list.len() - 1;
                self.offsets[j] = last;
                list.swap(0, last);
                list.truncate(1);
                acc.push(0.0);
            } else {
                let from = self.next[k];
                acc.extend(self.sizes[j].iter().enumerate().map(|(i, &s)| self.suffix[from + i] as f64 * s));
            }
        }
        // The clean positions (`AllocTrace::clean`): where the operand's traffic is at most that
        // of every earlier candidate, when the operands' joint fit cannot bind.
        self.clean.clear();
        self.clean.resize(nops_here, 0);
        if n < 128 && (nops_here == 1 || most <= cap) {
            for j in 0..nops_here {
                let from = self.next[pm.ops[j]];
                let mask = &mut self.clean[j];
                if pm.is_top[j] {
                    for p in from..n {
                        *mask |= 1u128 << p;
                    }
                    continue;
                }
                let mut least = f64::INFINITY;
                for (i, &a) in self.accesses[j].iter().enumerate() {
                    if a <= least && from + i < 128 {
                        *mask |= 1u128 << (from + i);
                    }
                    least = least.min(a);
                }
            }
        }
        // Every combination, the last operand's choice varying fastest; the last of the least
        // traffic that fits wins (ZigZag's `<=`).
        self.best.clear();
        self.best.resize(nops_here, 0);
        self.cur.clear();
        self.cur.extend_from_slice(&self.offsets);
        // The first combination (every operand's shortest prefix) must fit.
        let size = self.sizes[..nops_here].iter().fold(0.0, |s, l| s + l[0]);
        if size > cap {
            let roles = pm.ops.iter().map(|&k| model.ops[k].role.as_str()).collect::<Vec<_>>();
            return Err((
                pm.ops.iter().map(|&k| self.dep[k]).max().unwrap_or(0),
                CostError::MemoryTooSmall {
                    layer: model.layer_name.clone(),
                    memory: pm.name.clone(),
                    role: roles.join("+"),
                    needed_bits: size,
                    capacity_bits: pm.capacity_bits,
                },
            ));
        }
        if opts.mapping_type == MappingType::Uneven {
            // The same choice as the walk below, by a pruned walk ([`LeastTraffic`]).
            self.mins.clear();
            for (sz, ac) in self.sizes[..nops_here].iter().zip(&self.accesses[..nops_here]) {
                let least = |l: &[f64]| l.iter().copied().fold(f64::INFINITY, f64::min);
                self.mins.push((least(sz), least(ac)));
            }
            let walk = LeastTraffic {
                sizes: &self.sizes[..nops_here],
                accesses: &self.accesses[..nops_here],
                mins: &self.mins,
                cap,
            };
            walk.run(&mut self.cur, &mut self.best);
            for (b, o) in self.best.iter_mut().zip(&self.offsets) {
                *b += o;
            }
            return Ok(req);
        }
        let mut best_acc = f64::INFINITY;
        loop {
            let mut size = 0.0;
            let mut accs = 0.0;
            for j in 0..nops_here {
                let c = self.cur[j] - self.offsets[j];
                size += self.sizes[j][c];
                accs += self.accesses[j][c];
            }
            // The even type's walk (the uneven type returned above).
            if size <= cap && accs <= best_acc && even_ok(&pm.ops, &self.cur, &self.next, n) {
                best_acc = accs;
                self.best.clone_from(&self.cur);
            }
            // Next combination (odometer).
            let mut j = nops_here;
            loop {
                if j == 0 {
                    return Ok(req);
                }
                j -= 1;
                self.cur[j] += 1;
                if self.cur[j] - self.offsets[j] < self.sizes[j].len() {
                    break;
                }
                self.cur[j] = self.offsets[j];
            }
        }
    }
}

/// The uneven mapping type's choice of a shared memory's split ([`LeastTraffic::run`], into
/// `best`; `cur` is scratch of the same length). Of the combinations of one candidate per operand
/// (`sizes[j][c]` bits and `accesses[j][c]` traffic for operand `j`'s candidate `c`), ZigZag's
/// allocator keeps the last, in the order where the last operand's choice varies fastest, of
/// those that fit `cap` together with the least total traffic (both sums taken in operand
/// order), as the even type's walk in `Allocator::decide` still does. At least one combination
/// fits (the caller checked the first).
///
/// The same choice, with less work: the combinations are visited in the reverse order and the
/// first of the least is kept (a strict `<`), which is the last of the least in the forward
/// order; and a choice of the first operands is skipped with all its completions when even the
/// least sizes and traffics of the remaining operands, added in the same order, overflow `cap`
/// or reach the least traffic so far. Float addition is monotone in each argument, so no
/// skipped combination could fit or be strictly less.
struct LeastTraffic<'a> {
    sizes: &'a [Vec<f64>],
    accesses: &'a [Vec<f64>],
    /// Per operand: its least size and least traffic.
    mins: &'a [(f64, f64)],
    cap: f64,
}

impl LeastTraffic<'_> {
    fn run(&self, cur: &mut [usize], best: &mut [usize]) {
        if !self.sizes.is_empty() {
            let mut least = f64::INFINITY;
            self.visit(0, 0.0, 0.0, &mut least, cur, best);
        }
    }

    fn visit(
        &self,
        j: usize,
        size: f64,
        traffic: f64,
        least: &mut f64,
        cur: &mut [usize],
        best: &mut [usize],
    ) {
        let last = j + 1 == self.sizes.len();
        for c in (0..self.sizes[j].len()).rev() {
            let (s, a) = (size + self.sizes[j][c], traffic + self.accesses[j][c]);
            cur[j] = c;
            if last {
                if s <= self.cap && a < *least {
                    *least = a;
                    best.copy_from_slice(cur);
                }
                continue;
            }
            let (mut ls, mut la) = (s, a);
            for &(ms, ma) in &self.mins[j + 1..] {
                ls += ms;
                la += ma;
            }
            if ls <= self.cap && la < *least {
                self.visit(j + 1, s, a, least, cur, best);
            }
        }
    }
}

/// How much of the loop order each allocation decision looked at: what makes the allocation of
/// the lower levels the same for every ordering that shares a prefix (innermost loops) with this
/// one. Filled by [`crate::cost::Evaluator::allocate_traced`]; the search's lower bounds
/// ([`crate::cost::Evaluator::prefix_bounds`]) build on it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllocTrace {
    /// Per operand (the layer's operand order) and temporal level: the shortest prefix of the
    /// order (number of innermost loops) that decides where the level ends. A decision depends on
    /// the loops it tried (up to the first that did not fit) and on the earlier decisions of the
    /// same operands; what it reads of the loops above is their product or set, the same for
    /// every ordering of them.
    pub cut_req: Vec<Vec<usize>>,
    /// For an allocation that failed: the shortest prefix that decides the failure.
    pub fail_req: usize,
    /// Per operand, bit `j` (for orders shorter than 128 loops): whether the operand's lowest
    /// decision still open after the first `j` loops is *clean* there, so that what it will
    /// decide does not depend on the order of those loops, only on their multiset. It is when
    /// that memory is the operand's top one (it takes everything), or when the traffic of taking
    /// the first `j` loops is at most that of every shorter candidate of the level (so no
    /// shorter one can win: the allocator takes the last of the least) and the operands sharing
    /// the memory cannot overflow it together (their tiles' upper bounds fit together), so each
    /// operand's choice is its own. `spec/optimal.md`, "Dominance".
    pub clean: Vec<u128>,
}

/// Records what a failed allocation depended on, and fails.
fn failed(trace: &mut Option<&mut AllocTrace>, req: usize, e: CostError) -> Result<(), CostError> {
    if let Some(t) = trace.as_deref_mut() {
        t.fail_req = req;
    }
    Err(e)
}

/// ZigZag's check for the even mapping type: no loop position is allocated for one operand and
/// left unallocated for another. Operand `ops[j]` takes positions `next..next + min(cur[j],
/// left)` and keeps `next + cur[j]..n` for the levels above.
fn even_ok(ops: &[usize], cur: &[usize], next: &[usize], n: usize) -> bool {
    ops.iter().enumerate().all(|(j1, &k1)| {
        let taken_end = next[k1] + cur[j1].min(n - next[k1]);
        ops.iter().enumerate().all(|(j2, &k2)| {
            let kept_from = next[k2] + cur[j2];
            next[k1].max(kept_from) >= taken_end
        })
    })
}

#[cfg(test)]
mod tests {
    use super::LeastTraffic;

    /// The forward walk `Allocator::decide` describes: every combination, the last operand's
    /// choice varying fastest, the last of the least traffic that fits (`<=`).
    fn forward(sizes: &[Vec<f64>], accesses: &[Vec<f64>], cap: f64) -> Option<Vec<usize>> {
        let mut cur = vec![0; sizes.len()];
        let (mut best, mut least) = (None, f64::INFINITY);
        loop {
            let size = cur.iter().enumerate().fold(0.0, |s, (j, &c)| s + sizes[j][c]);
            let traffic = cur.iter().enumerate().fold(0.0, |s, (j, &c)| s + accesses[j][c]);
            if size <= cap && traffic <= least {
                least = traffic;
                best = Some(cur.clone());
            }
            let mut j = sizes.len();
            loop {
                if j == 0 {
                    return best;
                }
                j -= 1;
                cur[j] += 1;
                if cur[j] < sizes[j].len() {
                    break;
                }
                cur[j] = 0;
            }
        }
    }

    /// The pruned reverse walk keeps exactly the forward walk's choice, ties and sums that
    /// round alike included: 20,000 random splits of one to four operands, with traffic drawn
    /// from a few values (many ties) and sizes around the capacity.
    #[test]
    fn least_traffic_keeps_the_forward_walks_choice() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let (mut pruned_cases, mut ties) = (0, 0);
        for case in 0..20_000 {
            let ops = 1 + next(4) as usize;
            let mut sizes = Vec::new();
            let mut accesses = Vec::new();
            for _ in 0..ops {
                let len = 1 + next(8) as usize;
                // Sizes grow along the prefix (with an occasional drop at the end, as double
                // buffering makes), traffic mostly falls, with repeats.
                let mut s = 1.0 + next(50) as f64;
                let mut sz = Vec::new();
                let mut ac = Vec::new();
                for i in 0..len {
                    s += next(40) as f64;
                    sz.push(if i + 1 == len && next(3) == 0 { s / 2.0 } else { s });
                    let base = [1e18, 1e18 + 64.0, 3.0, 7.0, 1.5e3, 1e3][next(6) as usize];
                    ac.push(base * (len - i) as f64 / if case % 2 == 0 { 1.0 } else { 3.0 });
                }
                sizes.push(sz);
                accesses.push(ac);
            }
            let cap = sizes.iter().map(|l| l[0]).sum::<f64>() + next(200) as f64;
            let want = forward(&sizes, &accesses, cap).expect("the first combination fits");
            let mins: Vec<(f64, f64)> = sizes
                .iter()
                .zip(&accesses)
                .map(|(s, a)| {
                    let least = |l: &[f64]| l.iter().copied().fold(f64::INFINITY, f64::min);
                    (least(s), least(a))
                })
                .collect();
            let (mut cur, mut best) = (vec![0; ops], vec![usize::MAX; ops]);
            LeastTraffic { sizes: &sizes, accesses: &accesses, mins: &mins, cap }.run(&mut cur, &mut best);
            assert_eq!(best, want, "case {case}: sizes {sizes:?} accesses {accesses:?} cap {cap}");
            let fits = |c: &[usize]| c.iter().enumerate().fold(0.0, |s, (j, &i)| s + sizes[j][i]) <= cap;
            let total: usize = sizes.iter().map(Vec::len).product();
            pruned_cases += usize::from(total > 1 && fits(&want));
            let traffic = |c: &[usize]| c.iter().enumerate().fold(0.0, |s, (j, &i)| s + accesses[j][i]);
            let least = traffic(&want);
            let mut count = 0;
            let mut cur = vec![0; ops];
            'all: loop {
                if fits(&cur) && traffic(&cur) == least {
                    count += 1;
                }
                let mut j = ops;
                loop {
                    if j == 0 {
                        break 'all;
                    }
                    j -= 1;
                    cur[j] += 1;
                    if cur[j] < sizes[j].len() {
                        break;
                    }
                    cur[j] = 0;
                }
            }
            ties += usize::from(count > 1);
        }
        // The cases exercise what matters: several combinations, and ties among the least.
        assert!(pruned_cases > 10_000, "{pruned_cases}");
        assert!(ties > 1_000, "{ties}");
    }
}
