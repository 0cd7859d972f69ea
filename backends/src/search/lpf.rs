//! LOMA's loop prime factors (LPFs): the temporal loops of a layer, factorised into primes and
//! merged down to the `lpf_limit` exactly as ZigZag 3.9.1's `LomaEngine` does
//! (`get_prime_factors`, `reduce_static_fps`, `limit_lpfs`, `find_smallest_non_static_pf`), and
//! the permutation constraints of a partial `temporal_ordering`
//! (`LayerTemporalOrdering.get_constraints`).

use crate::mapping::OrderSize;

/// ZigZag's marker for "the entries after this one count from the outermost loop".
pub(crate) const OUTER_MARKER: &str = "*";

/// The prime factors of `n`, ascending, with multiplicities (`sympy.factorint`).
pub(crate) fn factorise(mut n: u64) -> Vec<(u64, u32)> {
    let mut out = Vec::new();
    let mut p = 2u64;
    while p.saturating_mul(p) <= n {
        if n.is_multiple_of(p) {
            let mut m = 0;
            while n.is_multiple_of(p) {
                n /= p;
                m += 1;
            }
            out.push((p, m));
        }
        p += if p == 2 { 1 } else { 2 };
    }
    if n > 1 {
        out.push((n, 1));
    }
    out
}

/// The LPFs of one temporal dim: distinct factors in ZigZag's list order (ascending, except
/// that user-fixed sizes are appended) and their multiplicities.
#[derive(Clone, Debug)]
struct DimLpfs {
    /// Index into the layer's dims.
    dim: usize,
    pfs: Vec<u64>,
    counts: Vec<i64>,
    /// ZigZag's `temporal_loop_pf_count_sums` (kept as ZigZag updates it).
    sum: i64,
}

/// The permutation constraints of a partial `temporal_ordering`: ZigZag's
/// `StaticPositionsConstraint` and `StaticPositionsAndSizesConstraint`. Positions index the
/// ordering innermost first; negative positions count from the outermost loop (Python's
/// negative indexing).
#[derive(Clone, Debug, Default)]
pub(crate) struct Constraints {
    /// `(position, dim)`: the loop at `position` must be of `dim`, any size.
    pub positions: Vec<(i64, usize)>,
    /// `(position, dim, size)`: the loop at `position` must be exactly `(dim, size)`.
    pub sized: Vec<(i64, usize, u64)>,
}

impl Constraints {
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty() && self.sized.is_empty()
    }

    /// Resolves the positions for orderings of `n` loops; `None` if one is out of range (an
    /// `IndexError` in ZigZag).
    pub fn resolve(&self, n: usize) -> Option<ResolvedConstraints> {
        let at = |p: i64| -> Option<usize> {
            let q = if p < 0 { n as i64 + p } else { p };
            (0..n as i64).contains(&q).then_some(q as usize)
        };
        let mut out = ResolvedConstraints::default();
        for &(p, d) in &self.positions {
            out.dims.push((at(p)?, d));
        }
        for &(p, d, s) in &self.sized {
            out.sized.push((at(p)?, d, s));
        }
        Some(out)
    }
}

/// [`Constraints`] with positions resolved for a given ordering length.
#[derive(Clone, Debug, Default)]
pub(crate) struct ResolvedConstraints {
    pub dims: Vec<(usize, usize)>,
    pub sized: Vec<(usize, usize, u64)>,
}

impl ResolvedConstraints {
    /// Whether the ordering of `(dim, size)` loops satisfies every constraint.
    pub fn accepts(&self, order: impl Fn(usize) -> (usize, u64)) -> bool {
        self.dims.iter().all(|&(p, d)| order(p).0 == d)
            && self.sized.iter().all(|&(p, d, s)| order(p) == (d, s))
    }
}

/// ZigZag's `LayerTemporalOrdering.get_constraints` on a partial ordering. Entries whose dim the
/// layer does not have are dropped first (ZigZag's `remove_invalid_layer_dims`), except the
/// `("*", Rest)` outer-loop marker. `dim_of` maps a dim name to its index.
pub(crate) fn constraints(
    ordering: &[(String, OrderSize)],
    dim_of: impl Fn(&str) -> Option<usize>,
) -> Constraints {
    let kept: Vec<(Option<usize>, OrderSize)> = ordering
        .iter()
        .filter_map(|(d, s)| {
            if d == OUTER_MARKER && *s == OrderSize::Rest {
                Some((None, *s))
            } else {
                dim_of(d).map(|i| (Some(i), *s))
            }
        })
        .collect();
    let len = kept.len() as i64;
    let mut out = Constraints::default();
    let mut outer = false;
    for (count, (dim, size)) in kept.iter().enumerate() {
        let pos = if outer { count as i64 - len } else { count as i64 };
        match (dim, size) {
            (None, _) => outer = true,
            (Some(d), OrderSize::Rest) => out.positions.push((pos, *d)),
            (Some(d), OrderSize::Given(n)) => out.sized.push((pos, *d, *n)),
        }
    }
    out
}

/// Whether a partial ordering is in fact complete: every size given, and the sizes of each dim
/// multiply to its temporal size (ZigZag's `LayerTemporalOrdering.is_complete`, after dropping
/// unknown dims). Returns the loops as `(dim, size)` if so.
pub(crate) fn complete_order(
    ordering: &[(String, OrderSize)],
    dim_of: impl Fn(&str) -> Option<usize>,
    temporal: &[u64],
) -> Option<Vec<(usize, u64)>> {
    let mut loops = Vec::new();
    let mut prod = vec![1u64; temporal.len()];
    for (d, s) in ordering {
        let Some(i) = dim_of(d) else {
            if d == OUTER_MARKER {
                return None;
            }
            continue;
        };
        let OrderSize::Given(n) = *s else { return None };
        prod[i] = prod[i].saturating_mul(n);
        loops.push((i, n));
    }
    (prod == temporal).then_some(loops)
}

/// Why the LPFs could not be formed as ZigZag forms them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum LpfError {
    /// A user-fixed size has a prime factor the dim's temporal loop does not have (ZigZag:
    /// `ValueError` in `reduce_static_fps`), or names a dim without temporal loops (`KeyError`).
    StaticSize { dim: usize, size: u64 },
    /// ZigZag's merging produced factors that no longer multiply to the dim's temporal size.
    Inconsistent { dim: usize },
}

/// The LPF multiset of the temporal loops `temporal` (per layer dim, 1 = no temporal loop), as
/// ZigZag's `LomaEngine.get_prime_factors` forms it: `(dim, size)` pairs, grouped by dim in
/// `order` (the layer's dim indices in ZigZag's order). `limit = None` merges nothing; otherwise
/// the limit is raised to the number of temporal dims, and while there are more LPFs than the
/// limit, the two smallest non-fixed factors of the first dim (in `order`) with the most LPFs are
/// multiplied together.
pub(crate) fn lpfs(
    temporal: &[u64],
    limit: Option<usize>,
    cons: &Constraints,
    order: &[usize],
) -> Result<Vec<(usize, u64)>, LpfError> {
    let first_dim = order.first().copied().unwrap_or_default();
    let mut dims: Vec<DimLpfs> = order
        .iter()
        .map(|&d| (d, temporal[d]))
        .filter(|(_, s)| *s > 1)
        .map(|(d, s)| {
            let f = factorise(s);
            DimLpfs {
                dim: d,
                pfs: f.iter().map(|x| x.0).collect(),
                counts: f.iter().map(|x| x.1 as i64).collect(),
                sum: f.iter().map(|x| x.1 as i64).sum(),
            }
        })
        .collect();
    if dims.is_empty() {
        // Everything is unrolled spatially: ZigZag schedules one loop of size 1 of the first dim.
        return Ok(vec![(first_dim, 1)]);
    }
    let limit = limit.map(|l| l.max(dims.len()));
    // `has_constraints` in ZigZag: one of the two constraints is non-empty.
    let has_constraints = !cons.is_empty();
    if has_constraints {
        reduce_static(&mut dims, cons)?;
    }
    let mut n_pf: i64 = dims.iter().map(|d| d.sum).sum();
    if let Some(limit) = limit {
        while n_pf > limit as i64 {
            // The first dim (layer order) with the most LPFs.
            let mut mi = 0;
            for (i, d) in dims.iter().enumerate() {
                if d.sum > dims[mi].sum {
                    mi = i;
                }
            }
            let statics: Vec<u64> = if has_constraints {
                cons.sized.iter().filter(|c| c.1 == dims[mi].dim).map(|c| c.2).collect()
            } else {
                Vec::new()
            };
            let d = &mut dims[mi];
            let (a, b) = smallest_non_static(d, &statics);
            let new = d.pfs[a].saturating_mul(d.pfs[b]);
            d.counts[a] -= 1;
            d.counts[b] -= 1;
            if let Some(i) = d.pfs.iter().position(|&p| p == new) {
                d.counts[i] += 1;
            } else {
                let i = d.pfs.iter().filter(|&&p| p < new).count();
                d.pfs.insert(i, new);
                d.counts.insert(i, 1);
            }
            let keep: Vec<usize> = (0..d.pfs.len()).filter(|&i| d.counts[i] != 0).collect();
            d.pfs = keep.iter().map(|&i| d.pfs[i]).collect();
            d.counts = keep.iter().map(|&i| d.counts[i]).collect();
            d.sum -= 1;
            n_pf -= 1;
        }
    }
    let mut out = Vec::new();
    for d in &dims {
        let mut prod = 1u64;
        for (&p, &c) in d.pfs.iter().zip(&d.counts) {
            if c < 0 {
                return Err(LpfError::Inconsistent { dim: d.dim });
            }
            for _ in 0..c {
                prod = prod.saturating_mul(p);
                out.push((d.dim, p));
            }
        }
        if prod != temporal[d.dim] {
            return Err(LpfError::Inconsistent { dim: d.dim });
        }
    }
    Ok(out)
}

/// ZigZag's `reduce_static_fps`: each user-fixed `(dim, size)` replaces the prime factors it is
/// made of by one factor `size` (when enough of them are left), in the order given.
fn reduce_static(dims: &mut [DimLpfs], cons: &Constraints) -> Result<(), LpfError> {
    for &(_, dim, size) in &cons.sized {
        let Some(d) = dims.iter_mut().find(|d| d.dim == dim) else {
            return Err(LpfError::StaticSize { dim, size });
        };
        for (factor, mult) in factorise(size) {
            let mult = mult as i64;
            let Some(index) = d.pfs.iter().position(|&p| p == factor) else {
                return Err(LpfError::StaticSize { dim, size });
            };
            if d.counts[index] >= mult {
                d.counts[index] -= mult;
                if d.pfs.contains(&size) {
                    // As ZigZag: the count goes back to the factor's entry, not the size's.
                    d.counts[index] += 1;
                } else {
                    d.pfs.push(size);
                    d.counts.push(1);
                }
                d.sum -= mult - 1;
            }
        }
    }
    Ok(())
}

/// ZigZag's `find_smallest_non_static_pf`: the indices of the two factors to merge.
fn smallest_non_static(d: &DimLpfs, statics: &[u64]) -> (usize, usize) {
    let mut small = 0;
    let mut have_first = false;
    for i in 0..d.pfs.len() {
        let n_static = statics.iter().filter(|&&s| s == d.pfs[i]).count() as i64;
        if !statics.contains(&d.pfs[i]) || d.counts[i] > n_static {
            if have_first {
                return (small, i);
            } else if d.counts[i] > n_static + 1 {
                return (i, i);
            } else {
                small = i;
                have_first = true;
            }
        }
    }
    (small, d.pfs.len() - 1)
}

/// The number of distinct orderings of a multiset with these multiplicities
/// (`n! / prod(m!)`), saturating.
pub(crate) fn multiset_permutations(mults: &[u64]) -> u64 {
    // Product of binomials: C(m1, m1) * C(m1 + m2, m2) * ...
    let mut total: u128 = 1;
    let mut n: u128 = 0;
    for &m in mults {
        for k in 1..=m as u128 {
            n += 1;
            total = total * n / k;
            if total > u64::MAX as u128 {
                return u64::MAX;
            }
        }
    }
    total as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors() {
        assert_eq!(factorise(1), vec![]);
        assert_eq!(factorise(112), vec![(2, 4), (7, 1)]);
        assert_eq!(factorise(97), vec![(97, 1)]);
        assert_eq!(multiset_permutations(&[2, 1, 1]), 12);
        assert_eq!(multiset_permutations(&[1; 6]), 720);
    }

    #[test]
    fn zigzag_merging() {
        // resnet18 conv1 on tpu_like, K 32 x C 3 unrolled: K 2, OX 112, OY 112, FX 7, FY 7.
        let t = [1, 2, 1, 112, 112, 1, 7, 7];
        let l = lpfs(&t, Some(6), &Constraints::default(), &[0, 1, 2, 3, 4, 5, 6, 7]).unwrap();
        assert_eq!(l, vec![(1, 2), (3, 112), (4, 7), (4, 16), (6, 7), (7, 7)]);
    }
}
