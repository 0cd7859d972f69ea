//! What the cost model precomputes per (layer, accelerator, links, spatial mapping): dim
//! relevancy per operand, partially relevant dims, and the spatial unrolling per operand and
//! architecture level (fractional for energy, integer for latency).

use crate::arch::{Accelerator, MemOperand};
use crate::cost::CostError;
use crate::mapping::{OperandLinks, SpatialMapping};
use qc_ir::LoopNest;

/// Most partially relevant dims (relations) a layer may have.
pub(crate) const MAX_PR: usize = 4;

/// How a layer dim relates to one operand (ZigZag's `loop_relevancy_info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rel {
    /// Relevant: indexes the operand.
    R,
    /// Irrelevant: the operand is reused across it.
    Ir,
    /// Partially relevant through relation `p`, as its term `t`.
    Pr(u8, u8),
    /// Neither (a size-1 dim ZigZag drops).
    No,
}

/// A partially relevant index `x = c0*d0 + c1*d1` (one term: `c0*d0`); the coefficients are
/// kept divided by their gcd, which is all [`PrDim::size`] reads of them.
#[derive(Clone, Debug)]
pub(crate) struct PrDim {
    pub dims: [usize; 2],
    pub terms: usize,
    /// The clip: the true extent of the index.
    pub extent: f64,
    /// `coefs / gcd(coefs)`, computed once: [`PrDim::size`] runs in the allocator's and the
    /// evaluation's inner loops.
    quot: [i128; 2],
}

impl PrDim {
    pub fn new(dims: [usize; 2], coefs: [i64; 2], terms: usize, extent: f64) -> PrDim {
        let (sa, sb) = (coefs[0], coefs[1]);
        let g = gcd(sa.unsigned_abs(), sb.unsigned_abs()).max(1);
        let quotient = |s: i64| match i64::try_from(g) {
            Ok(g) => i128::from(s / g),
            Err(_) => i128::from(s) / i128::from(g), // only |s| = 2^63
        };
        PrDim { dims, terms, extent, quot: [quotient(sa), quotient(sb)] }
    }

    /// ZigZag's `calc_tensor_dim` for a pr dim: the distinct values of the index when its dims
    /// take `a` and `b` values (truncated to integers, as ZigZag does), clipped to the extent.
    pub fn size(&self, a: f64, b: f64) -> f64 {
        // `as` truncates towards zero (and saturates), as Python's `int()` of a float does.
        let a = a as i64;
        if self.terms == 1 {
            return (a as f64).min(self.extent);
        }
        let b = b as i64;
        let [qa, qb] = self.quot;
        // The products, and their difference: in 64 bits when they fit there (the tiles of
        // real layers), else in 128 bits. The same integer either way, so the same float.
        let narrow = i64::try_from(qa).ok().zip(i64::try_from(qb).ok()).and_then(|(qa, qb)| {
            let ab = a.checked_mul(b)?;
            let over = b.checked_sub(qa)?.max(0).checked_mul(a.checked_sub(qb)?)?;
            ab.checked_sub(over)
        });
        let v = match narrow {
            Some(v) => v as f64,
            None => {
                let (a, b) = (i128::from(a), i128::from(b));
                (a * b - 0i128.max(b - qa) * (a - qb)) as f64
            }
        };
        v.min(self.extent)
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    let (mut a, mut b) = (a, b);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// One layer operand.
#[derive(Clone, Debug)]
pub(crate) struct Operand {
    pub role: String,
    pub mem: MemOperand,
    pub is_output: bool,
    /// Per layer dim.
    pub rel: Vec<Rel>,
    /// Dims that count for its tensor size: relevant dims (ZigZag's `r_dims`).
    pub r_dims: Vec<usize>,
    /// Relations that index it.
    pub prs: Vec<u8>,
    /// Bits of an input; for the output, of a partial sum.
    pub prec: u32,
    /// Bits of the final output (inputs: `prec`).
    pub prec_final: u32,
    /// Elements of the whole operand (ZigZag's `operand_size_elem`).
    pub size_elem: f64,
    /// Memory indices of its levels, lowest first.
    pub mems: Vec<usize>,
}

/// Spatial unrolling of one operand at each architecture level (`M + 1` levels: below each
/// memory level, plus above the top one), with ZigZag's derived unit counts.
#[derive(Clone, Debug, Default)]
pub(crate) struct OperandSpatial {
    pub levels: Vec<Vec<(usize, f64)>>,
    /// `unit_count[a]`: instances at architecture level `a` (rounded, as ZigZag).
    pub unit_count: Vec<f64>,
    /// `mem_bw_boost[a]` for `a < M`, then 1.
    pub boost: Vec<f64>,
}

/// A layer prepared for costing on one accelerator: its dims, relations and operands, computed
/// once and shared by every mapping the search evaluates.
#[derive(Clone, Debug)]
pub(crate) struct PreparedLayer {
    pub layer_name: String,
    pub dim_names: Vec<String>,
    pub dim_sizes: Vec<u64>,
    pub total_macs: u64,
    pub prs: Vec<PrDim>,
    /// Output first, then inputs.
    pub ops: Vec<Operand>,
}

pub(crate) fn py_round(x: f64) -> f64 {
    x.round_ties_even()
}

/// Running products of relevant / irrelevant loop sizes for one operand, splitting partially
/// relevant loops into a relevant and an irrelevant part (ZigZag's `decouple_pr_loop`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Decoupler {
    cabl: [[f64; 2]; MAX_PR],
    prev_r: [f64; MAX_PR],
    prev_ir: [f64; MAX_PR],
}

impl Default for Decoupler {
    fn default() -> Self {
        Decoupler { cabl: [[1.0; 2]; MAX_PR], prev_r: [1.0; MAX_PR], prev_ir: [1.0; MAX_PR] }
    }
}

impl Decoupler {
    /// Adds a loop; returns its (relevant, irrelevant) factors.
    #[inline]
    pub fn push(&mut self, model: &PreparedLayer, op: &Operand, dim: usize, size: f64) -> (f64, f64) {
        match op.rel[dim] {
            Rel::R => (size, 1.0),
            Rel::Ir => (1.0, size),
            Rel::No => (1.0, 1.0),
            Rel::Pr(p, t) => {
                let p = p as usize;
                self.cabl[p][t as usize] *= size;
                let pr = &model.prs[p];
                let r = pr.size(self.cabl[p][0], self.cabl[p][1]);
                let prod = if pr.terms == 1 { self.cabl[p][0] } else { self.cabl[p][0] * self.cabl[p][1] };
                let ir = prod / r;
                let out = (r / self.prev_r[p], ir / self.prev_ir[p]);
                self.prev_r[p] = r;
                self.prev_ir[p] = ir;
                out
            }
        }
    }
}

impl PreparedLayer {
    pub fn new(
        layer: &LoopNest,
        acc: &Accelerator,
        links: &OperandLinks,
    ) -> Result<PreparedLayer, CostError> {
        let dim_names: Vec<String> = layer.dims.iter().map(|d| d.name.clone()).collect();
        let dim_sizes: Vec<u64> = layer.dims.iter().map(|d| d.size).collect();
        // Every product of some of the loop sizes is exact once their product is.
        let Some(total_macs) = dim_sizes.iter().try_fold(1u64, |p, &s| p.checked_mul(s)) else {
            return Err(CostError::TooLarge { layer: layer.name.clone(), sizes: format!("{dim_sizes:?}") });
        };
        let lname = layer.name.clone();
        let dim_of = |lower: &str| dim_names.iter().position(|n| n.eq_ignore_ascii_case(lower));
        let mut prs = Vec::new();
        let mut pr_names = Vec::new();
        for rel in &layer.relations {
            let bad = |reason: &str| CostError::UnsupportedRelation {
                layer: lname.clone(),
                relation: rel.name.clone(),
                reason: reason.into(),
            };
            if rel.terms.is_empty() || rel.terms.len() > 2 {
                return Err(bad("it needs one or two terms"));
            }
            if prs.len() == MAX_PR {
                return Err(bad("too many relations"));
            }
            let mut dims = [0usize; 2];
            let mut coefs = [1i64; 2];
            for (i, (c, d)) in rel.terms.iter().enumerate() {
                dims[i] = dim_of(d).ok_or_else(|| bad(&format!("`{d}` is not a dim of the layer")))?;
                if *c <= 0 {
                    return Err(bad("coefficients must be positive"));
                }
                coefs[i] = *c;
            }
            if rel.terms.len() == 2 && dims[0] == dims[1] {
                return Err(bad("its two terms use the same dim"));
            }
            prs.push(PrDim::new(dims, coefs, rel.terms.len(), rel.extent as f64));
            pr_names.push(rel.name.clone());
        }
        let pr_loop_dims: Vec<usize> = prs.iter().flat_map(|p| p.dims[..p.terms].to_vec()).collect();
        let mut ops = Vec::new();
        for (k, operand) in std::iter::once(&layer.output).chain(&layer.inputs).enumerate() {
            let is_output = k == 0;
            let mem = links
                .mem(&operand.role)
                .ok_or_else(|| CostError::NoLink { layer: lname.clone(), role: operand.role.clone() })?;
            let mems = acc.levels(mem);
            if mems.is_empty() {
                return Err(CostError::NoMemory {
                    layer: lname.clone(),
                    role: operand.role.clone(),
                    mem_operand: mem,
                    accelerator: acc.name.clone(),
                });
            }
            let missing = || CostError::MissingPrecision { layer: lname.clone(), role: operand.role.clone() };
            let prec_final = operand.precision.ok_or_else(missing)?;
            let prec = if is_output { layer.psum_precision.unwrap_or(prec_final) } else { prec_final };
            let mut direct = vec![false; dim_names.len()];
            let mut op_prs: Vec<u8> = Vec::new();
            for idx in &operand.index {
                if let Some(d) = dim_of(idx) {
                    direct[d] = true;
                } else if let Some(p) = pr_names.iter().position(|n| n == idx) {
                    op_prs.push(p as u8);
                } else {
                    return Err(CostError::UnknownDim {
                        layer: lname.clone(),
                        dim: idx.clone(),
                        known: dim_names.join(", "),
                    });
                }
            }
            let has_pr = !op_prs.is_empty();
            let mut rel = vec![Rel::No; dim_names.len()];
            for d in 0..dim_names.len() {
                let size1 = dim_sizes[d] == 1;
                rel[d] = if has_pr {
                    if pr_loop_dims.contains(&d) {
                        let mut r = Rel::No;
                        for &p in &op_prs {
                            let pd = &prs[p as usize];
                            if let Some(t) = pd.dims[..pd.terms].iter().position(|&x| x == d) {
                                r = Rel::Pr(p, t as u8);
                            }
                        }
                        r
                    } else if direct[d] {
                        Rel::R
                    } else if size1 {
                        Rel::No
                    } else {
                        Rel::Ir
                    }
                } else if size1 {
                    Rel::No
                } else if direct[d] {
                    Rel::R
                } else {
                    Rel::Ir
                };
            }
            let r_dims: Vec<usize> = (0..dim_names.len()).filter(|&d| rel[d] == Rel::R).collect();
            ops.push(Operand {
                role: operand.role.clone(),
                mem,
                is_output,
                rel,
                r_dims,
                prs: op_prs,
                prec,
                prec_final,
                size_elem: 0.0,
                mems,
            });
        }
        let mut model = PreparedLayer { layer_name: lname, dim_names, dim_sizes, total_macs, prs, ops };
        let full: Vec<f64> = model.dim_sizes.iter().map(|&s| s as f64).collect();
        for k in 0..model.ops.len() {
            model.ops[k].size_elem = model.tensor_size(k, &full);
        }
        Ok(model)
    }

    /// ZigZag's `calc_tensor_size`: elements of operand `k` when each dim takes `sizes[d]` values.
    pub fn tensor_size(&self, k: usize, sizes: &[f64]) -> f64 {
        let op = &self.ops[k];
        let mut s = self.relevant_product(k, sizes);
        for &p in &op.prs {
            let pr = &self.prs[p as usize];
            s *= pr.size(sizes[pr.dims[0]], if pr.terms == 2 { sizes[pr.dims[1]] } else { 1.0 });
        }
        s
    }

    /// An upper bound on [`PreparedLayer::tensor_size`] of operand `k` over every tile whose
    /// dims are at most `sizes` (each at least 1): the relevant dims' product (products grow
    /// with their factors) times every pr dim's extent (its size is clipped to it).
    pub fn tensor_size_bound(&self, k: usize, sizes: &[f64]) -> f64 {
        let mut s = self.relevant_product(k, sizes);
        for &p in &self.ops[k].prs {
            s *= self.prs[p as usize].extent;
        }
        s
    }

    /// The product of `sizes` over operand `k`'s directly relevant dims.
    fn relevant_product(&self, k: usize, sizes: &[f64]) -> f64 {
        self.ops[k].r_dims.iter().fold(1.0, |s, &d| s * sizes[d])
    }

    pub fn dim_index(&self, name: &str) -> Option<usize> {
        self.dim_names.iter().position(|n| n == name)
    }

    /// The index of dim `name`, or the error naming the layer's dims.
    pub fn dim_or_err(&self, name: &str) -> Result<usize, CostError> {
        self.dim_index(name).ok_or_else(|| self.unknown_dim(name))
    }

    fn unknown_dim(&self, dim: &str) -> CostError {
        CostError::UnknownDim {
            layer: self.layer_name.clone(),
            dim: dim.into(),
            known: self.dim_names.join(", "),
        }
    }
}

/// The spatial mapping, checked and converted.
#[derive(Clone, Debug)]
pub(crate) struct Spatial {
    /// Per operand: fractional unrolling (energy).
    pub frac: Vec<OperandSpatial>,
    /// Per operand: integer unrolling (latency).
    pub int: Vec<OperandSpatial>,
    /// Whether `frac` differs from `int`.
    pub greedy: bool,
    /// The temporal iterations each dim needs (LOMA's `get_temporal_loops`).
    pub temporal_sizes: Vec<u64>,
    /// Systolic drain cycles (3.9.1).
    pub drain: u64,
}

impl Spatial {
    pub fn new(model: &PreparedLayer, acc: &Accelerator, sm: &SpatialMapping) -> Result<Spatial, CostError> {
        let layer = &model.layer_name;
        // Check and index the user mapping: (array dim, [(layer dim, factor)]).
        let mut user: Vec<(usize, Vec<(usize, u64)>)> = Vec::new();
        for (adim, unrolls) in &sm.dims {
            let a = acc.array.dim_index(adim).ok_or_else(|| CostError::UnknownArrayDim {
                layer: layer.clone(),
                array_dim: adim.clone(),
                accelerator: acc.name.clone(),
                known: acc.array.dims.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(", "),
            })?;
            if user.iter().any(|(x, _)| *x == a) {
                return Err(CostError::DuplicateArrayDim { layer: layer.clone(), array_dim: adim.clone() });
            }
            let mut list: Vec<(usize, u64)> = Vec::new();
            let mut product = 1u64;
            for (ldim, f) in unrolls {
                let d = model.dim_index(ldim).ok_or_else(|| model.unknown_dim(ldim))?;
                if *f == 0 {
                    return Err(CostError::OverUnrolled {
                        layer: layer.clone(),
                        dim: ldim.clone(),
                        unrolling: 0,
                        size: model.dim_sizes[d],
                    });
                }
                product = product.saturating_mul(*f);
                match list.iter_mut().find(|(x, _)| *x == d) {
                    Some(e) => e.1 = e.1.saturating_mul(*f),
                    None => list.push((d, *f)),
                }
            }
            let size = acc.array.dims[a].size;
            if product > size {
                return Err(CostError::ArrayDimOverfull {
                    layer: layer.clone(),
                    array_dim: adim.clone(),
                    product,
                    size,
                });
            }
            user.push((a, list));
        }
        for d in 0..model.dim_names.len() {
            let total: u64 = user
                .iter()
                .flat_map(|(_, l)| l)
                .filter(|(x, _)| *x == d)
                .fold(1u64, |p, (_, f)| p.saturating_mul(*f));
            if total > model.dim_sizes[d] {
                return Err(CostError::OverUnrolled {
                    layer: layer.clone(),
                    dim: model.dim_names[d].clone(),
                    unrolling: total,
                    size: model.dim_sizes[d],
                });
            }
        }
        // Greedy mapping: the first array dim with the largest unrolling of a layer dim takes a
        // (possibly fractional) factor that makes the temporal remainder an integer.
        let limit = |decimal: bool| -> Vec<(usize, Vec<(usize, f64)>)> {
            let mut out: Vec<(usize, Vec<(usize, f64)>)> = Vec::new();
            for (a, list) in &user {
                let mut this = Vec::new();
                for &(d, f) in list {
                    let max = user
                        .iter()
                        .map(|(_, l)| l.iter().find(|(x, _)| *x == d).map_or(0, |e| e.1))
                        .max()
                        .unwrap_or(0);
                    let first =
                        user.iter().find(|(_, l)| l.iter().any(|&(x, g)| x == d && g == max)).map(|e| e.0);
                    if first == Some(*a) {
                        let early: f64 = out
                            .iter()
                            .flat_map(|(_, l)| l)
                            .filter(|(x, _)| *x == d)
                            .map(|(_, g)| *g)
                            .product();
                        let s = model.dim_sizes[d] as f64;
                        let q = (s / (f as f64 * early)).ceil();
                        let v = s / q / early;
                        this.push((d, if decimal { v } else { v.trunc() }));
                    } else {
                        this.push((d, f as f64));
                    }
                }
                out.push((*a, this));
            }
            out
        };
        let frac_usm = limit(true);
        let int_usm = limit(false);
        let greedy = frac_usm != int_usm;
        let frac: Vec<OperandSpatial> =
            (0..model.ops.len()).map(|k| per_level(model, acc, k, &frac_usm)).collect();
        let int: Vec<OperandSpatial> = if greedy {
            (0..model.ops.len()).map(|k| per_level(model, acc, k, &int_usm)).collect()
        } else {
            frac.clone()
        };
        // LOMA's temporal remainder: ceil per spatial loop, in the first input's level order.
        let mut temporal_sizes: Vec<f64> = model.dim_sizes.iter().map(|&s| s as f64).collect();
        let first_in = if model.ops.len() > 1 { 1 } else { 0 };
        for lvl in &frac[first_in].levels {
            for &(d, f) in lvl {
                temporal_sizes[d] = (temporal_sizes[d] / f).ceil();
            }
        }
        let temporal_sizes = temporal_sizes.into_iter().map(|x| x as u64).collect();
        let drain = acc
            .array
            .systolic_dims
            .iter()
            .filter_map(|s| user.iter().find(|(a, _)| a == s))
            .map(|(_, l)| l.iter().map(|(_, f)| *f).product::<u64>().saturating_sub(1))
            .sum();
        Ok(Spatial { frac, int, greedy, temporal_sizes, drain })
    }
}

/// ZigZag's `generate_mapping_per_mem_lvl` plus `SpatialMappingInternal` for one operand.
fn per_level(
    model: &PreparedLayer,
    acc: &Accelerator,
    k: usize,
    usm: &[(usize, Vec<(usize, f64)>)],
) -> OperandSpatial {
    let op = &model.ops[k];
    let mut left: Vec<bool> = vec![true; usm.len()];
    let mut levels: Vec<Vec<(usize, f64)>> = Vec::with_capacity(op.mems.len() + 1);
    let merge = |lvl: &mut Vec<(usize, f64)>, d: usize, f: f64| match lvl.iter_mut().find(|(x, _)| *x == d) {
        Some(e) => e.1 *= f,
        None => lvl.push((d, f)),
    };
    for &m in &op.mems {
        let mut lvl = Vec::new();
        for &served in &acc.memories[m].served_dims {
            if let Some(i) = usm.iter().position(|(a, _)| *a == served)
                && left[i]
            {
                left[i] = false;
                for &(d, f) in &usm[i].1 {
                    merge(&mut lvl, d, f);
                }
            }
        }
        levels.push(lvl);
    }
    let mut top = Vec::new();
    for (i, (_, list)) in usm.iter().enumerate() {
        if left[i] {
            for &(d, f) in list {
                merge(&mut top, d, f);
            }
        }
    }
    levels.push(top);
    let n = levels.len();
    let mut r = vec![1.0; n];
    let mut ir = vec![1.0; n];
    let mut total = vec![1.0; n];
    let mut dec = Decoupler::default();
    for (a, lvl) in levels.iter().enumerate() {
        for &(d, f) in lvl {
            let (fr, fi) = dec.push(model, op, d, f);
            match op.rel[d] {
                Rel::Pr(..) => {
                    r[a] *= fr;
                    ir[a] *= fi;
                    total[a] *= fr;
                    total[a] *= fi;
                }
                Rel::R => {
                    r[a] *= f;
                    total[a] *= f;
                }
                Rel::Ir => {
                    ir[a] *= f;
                    total[a] *= f;
                }
                Rel::No => total[a] *= f,
            }
        }
    }
    let suffix = |v: &[f64], a: usize| v[a..].iter().fold(1.0, |p, x| p * x);
    let unit_count: Vec<f64> = (0..n).map(|a| py_round(round3(suffix(&total, a)))).collect();
    let unit_unique: Vec<f64> = (0..n).map(|a| suffix(&r, a)).collect();
    let mut boost: Vec<f64> = (0..n - 1).map(|a| py_round(unit_unique[a] / unit_unique[a + 1])).collect();
    boost.push(1.0);
    OperandSpatial { levels, unit_count, boost }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round_ties_even() / 1000.0
}
