//! `opt-matmul`: splits a matrix product whose reduction (K) or output features (N) exceed a
//! DLA's limit into products that fit (Kneron's `opt_matmul`, "optimize the MatMul layers
//! according to the NPU limit"). `qc optimize --opt-matmul[=TARGET]` takes the limit from the
//! target's fully connected entry (`access-dla`: 2048 channels, guide II.B.6).
//!
//! What it does, for a `MatMul(A, B)` with a constant 2-D float weight `B[K, N]` and `A` of known
//! rank, or a `Gemm(A, B, C)` with a constant weight (any `transA`, `transB`, `alpha`, `beta`):
//! - N over `max-n`: `B` is cut into column blocks of at most `max-n`; each block's product is
//!   computed separately and a `Concat` on the last axis joins them. Each output element is the
//!   same sum as before, so this is exact. A Gemm's `C` is cut the same way when its last dim is
//!   N (a constant), and read whole by every block when it broadcasts along N.
//! - K over `max-k`: `A` is cut along its K axis by a `Split`, `B` into the matching row blocks,
//!   and the partial products are summed by a chain of `Add`s (a Gemm adds `beta * C` in its first
//!   partial product only). The sum is the same sum in another grouping, so results agree up to
//!   float rounding.
//!
//! The new weights are initializers `<B>_k<i>_n<j>` (and `<C>_n<j>`); the new ops are named after
//! the product (`<name>_k<i>_n<j>`, `<name>_split`, `<name>_add<j>_<i>`, `<name>_concat`); the last
//! op writes the product's output. New values are declared with their element type and, when
//! the product's output dims are known, their shapes.
//!
//! Kept (statistics): the weight is not a constant 2-D float tensor while the dims that are known
//! exceed a limit (`kept-not-constant`), `A`'s rank is unknown (`kept-unknown-shape`), a Gemm's
//! `C` is neither constant nor broadcast along N, or K is split in a Gemm before opset 11 (where
//! `C` is required) (`kept-unsupported`).
//!
//! Options: `max-k`, `max-n` (default 2048 each, `access-dla`'s; 0: no limit).
//!
//! Preconditions: the main graph only; default-domain ops. Postconditions: every MatMul and Gemm
//! with a constant weight has K <= `max-k` and N <= `max-n`, but those kept; the model computes
//! the same outputs (up to rounding where K was split).
//!
//! Statistics: `matmul`, `gemm` (products split), `products` (the products they became),
//! `kept-not-constant`, `kept-unknown-shape`, `kept-unsupported`.

use qc_ir::{AttrValue, Dim, ElemType, Model, Op, OpId, OpKind, ValueId, dims};

use crate::pass::{Changed, Pass, PassContext, PassError};
use crate::registry::PassInfo;
use crate::rewrite::{
    NewOp, Rewrite, add_float, add_ints, add_typed_value, elem_in, float_const, input, is_onnx, sole_output,
};

pub const INFO: PassInfo = PassInfo {
    name: "opt-matmul",
    summary: "split MatMuls and Gemms whose K or N exceed a DLA's limit into products that fit",
    options: &[
        ("max-k", "the largest reduction (K) of one product (default 2048; 0: no limit)"),
        ("max-n", "the most output features (N) of one product (default 2048; 0: no limit)"),
    ],
    build: |o| Ok(Box::new(OptMatmul { max_k: o.u64("max-k", 2048)?, max_n: o.u64("max-n", 2048)? })),
};

/// The `opt-matmul` pass.
pub struct OptMatmul {
    pub max_k: u64,
    pub max_n: u64,
}

/// `(start, len)` blocks of at most `max` covering `0..total` (one block when `max` is 0).
fn blocks(total: usize, max: u64) -> Vec<(usize, usize)> {
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    if max == 0 || total <= max {
        return vec![(0, total)];
    }
    (0..total).step_by(max).map(|s| (s, max.min(total - s))).collect()
}

/// A constant's dims and values.
type Dense = (Vec<usize>, Vec<f64>);

/// One product to split.
struct Plan {
    id: OpId,
    gemm: bool,
    a: ValueId,
    out: ValueId,
    elem: ElemType,
    /// `B`'s dims and values, `[K, N]` (or `[N, K]` with `transB`).
    b: Dense,
    trans_b: bool,
    /// The axis of `A` that holds K.
    a_axis: usize,
    a_dims: Option<Vec<Dim>>,
    out_dims: Option<Vec<Dim>>,
    k: usize,
    n: usize,
    /// A Gemm's `C`: the value, and its constant dims and values when it is cut along N.
    c: Option<(ValueId, Option<Dense>)>,
}

impl Pass for OptMatmul {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        let opset = model.opset_version("").unwrap_or(1);
        let ids: Vec<OpId> = model
            .graph
            .ops()
            .filter(|(_, op)| matches!(op.kind(), OpKind::MatMul | OpKind::Gemm) && is_onnx(op))
            .map(|(id, _)| id)
            .collect();
        let mut plans = Vec::new();
        for id in ids {
            match self.plan(model, id, opset) {
                Ok(Some(p)) => plans.push(p),
                Ok(None) => {}
                Err(reason) => cx.count(reason, 1),
            }
        }
        let mut rw = Rewrite::default();
        for p in plans {
            // The whole weight (and a Gemm's C) go once nothing reads them.
            let old: Vec<ValueId> = model.graph.op(p.id).inputs().iter().skip(1).flatten().copied().collect();
            let new = self.split(model, &p, opset);
            let products = new.iter().filter(|(op, _, _)| matches!(op.kind(), OpKind::MatMul | OpKind::Gemm));
            cx.count(if p.gemm { "gemm" } else { "matmul" }, 1);
            cx.count("products", products.count() as u64);
            rw.set(p.id, new);
            rw.drop_if_unused(old);
        }
        let changed = !rw.is_empty();
        rw.apply(&mut model.graph);
        Ok(Changed::from_bool(changed))
    }
}

impl OptMatmul {
    fn exceeds(&self, k: usize, n: usize) -> bool {
        (self.max_k > 0 && k as u64 > self.max_k) || (self.max_n > 0 && n as u64 > self.max_n)
    }

    /// `Ok(None)`: nothing to do; `Err(reason)`: a product over the limits that is kept.
    fn plan(&self, model: &Model, id: OpId, opset: i64) -> Result<Option<Plan>, &'static str> {
        let g = &model.graph;
        let op = g.op(id);
        let gemm = op.kind() == OpKind::Gemm;
        let (Some(a), Some(bv), Some(out)) = (input(op, 0), input(op, 1), sole_output(op)) else {
            return Ok(None);
        };
        let trans_a = gemm && op.attr_int("transA", 0).map_err(|_| "kept-unsupported")? != 0;
        let trans_b = gemm && op.attr_int("transB", 0).map_err(|_| "kept-unsupported")? != 0;
        let Some((elem, bdims, bvals)) = float_const(model, Some(bv)).filter(|(_, d, _)| d.len() == 2) else {
            // Not a weight this pass can cut: a problem only when the known dims are over.
            let d = dims::partial(g, bv).unwrap_or_default();
            if d.len() == 2 {
                let (k, n) = if trans_b { (d[1], d[0]) } else { (d[0], d[1]) };
                if self.exceeds(k.unwrap_or(0) as usize, n.unwrap_or(0) as usize) {
                    return Err("kept-not-constant");
                }
            }
            return Ok(None);
        };
        let (k, n) = if trans_b { (bdims[1], bdims[0]) } else { (bdims[0], bdims[1]) };
        if !self.exceeds(k, n) {
            return Ok(None);
        }
        if elem_in(g, a).is_some_and(|e| e != elem) {
            return Err("kept-unsupported");
        }
        let a_dims = dims::of(g, a);
        let a_axis = if gemm {
            usize::from(!trans_a)
        } else {
            match &a_dims {
                Some(d) if !d.is_empty() => d.len() - 1,
                _ => return Err("kept-unknown-shape"),
            }
        };
        let c = if gemm { input(op, 2) } else { None };
        let split_k = blocks(k, self.max_k).len() > 1;
        if gemm && split_k && opset < 11 {
            return Err("kept-unsupported");
        }
        let c = match c {
            None => None,
            Some(c) => {
                let cd = dims::partial(g, c).ok_or("kept-unsupported")?;
                match cd.last() {
                    None | Some(Some(1)) => Some((c, None)),
                    Some(Some(x)) if *x as usize == n && blocks(n, self.max_n).len() > 1 => {
                        let (_, d, v) = float_const(model, Some(c)).ok_or("kept-unsupported")?;
                        Some((c, Some((d, v))))
                    }
                    _ if blocks(n, self.max_n).len() == 1 => Some((c, None)),
                    _ => return Err("kept-unsupported"),
                }
            }
        };
        Ok(Some(Plan {
            id,
            gemm,
            a,
            out,
            elem,
            b: (bdims, bvals),
            trans_b,
            a_axis,
            a_dims,
            out_dims: dims::of(g, out),
            k,
            n,
            c,
        }))
    }

    /// The ops that replace the product.
    fn split(&self, model: &mut Model, p: &Plan, opset: i64) -> Vec<NewOp> {
        let kb = blocks(p.k, self.max_k);
        let nb = blocks(p.n, self.max_n);
        let g = &mut model.graph;
        let orig = g.op(p.id).clone();
        let out_name = g.value(p.out).name.clone();
        let name = orig.name.clone().unwrap_or_else(|| out_name.clone());
        let b_name = g.value(input(&orig, 1).expect("planned")).name.clone();
        let domain = orig.domain_raw().map(String::from);
        let mut ops: Vec<NewOp> = Vec::new();
        let named = |ty: &str, n: String| {
            let mut op = Op::new(ty, domain.clone());
            op.name = Some(n);
            op
        };
        let with_last = |d: &Option<Vec<Dim>>, axis: Option<usize>, x: usize| {
            d.clone().map(|mut d| {
                let i = axis.unwrap_or(d.len().saturating_sub(1));
                if let Some(slot) = d.get_mut(i) {
                    *slot = Dim::Known(x as u64);
                }
                d
            })
        };
        // A, cut along K.
        let a_parts: Vec<ValueId> = if kb.len() == 1 {
            vec![p.a]
        } else {
            let a_name = g.value(p.a).name.clone();
            let parts: Vec<ValueId> = kb
                .iter()
                .enumerate()
                .map(|(i, &(_, len))| {
                    let shape = with_last(&p.a_dims, Some(p.a_axis), len);
                    add_typed_value(g, &format!("{a_name}_k{i}"), p.elem, shape)
                })
                .collect();
            let sizes: Vec<i64> = kb.iter().map(|&(_, len)| len as i64).collect();
            let mut split = named("Split", format!("{name}_split"));
            split.set_attr("axis", AttrValue::Int(p.a_axis as i64));
            let mut ins = vec![Some(p.a)];
            if opset >= 13 {
                ins.push(add_ints(g, &format!("{name}_split_sizes"), sizes));
            } else {
                split.set_attr("split", AttrValue::Ints(sizes));
            }
            ops.push((split, ins, parts.iter().map(|&v| Some(v)).collect()));
            parts
        };
        let (bdims, bvals) = &p.b;
        let mut sums: Vec<ValueId> = Vec::new();
        for (j, &(n0, nl)) in nb.iter().enumerate() {
            let last = nb.len() == 1;
            let mut acc: Option<ValueId> = None;
            for (i, &(k0, kl)) in kb.iter().enumerate() {
                // The weight block: rows k0..k0+kl and columns n0..n0+nl of [K, N] (or the
                // transpose of that block of [N, K]).
                let (rows, cols) = if p.trans_b { ((n0, nl), (k0, kl)) } else { ((k0, kl), (n0, nl)) };
                let mut vals = Vec::with_capacity(rows.1 * cols.1);
                for r in rows.0..rows.0 + rows.1 {
                    vals.extend_from_slice(&bvals[r * bdims[1] + cols.0..r * bdims[1] + cols.0 + cols.1]);
                }
                let w = add_float(g, &format!("{b_name}_k{i}_n{j}"), p.elem, vec![rows.1, cols.1], vals)
                    .expect("a block of a float constant fits its type");
                let done = last && i + 1 == kb.len();
                let y = if done && kb.len() == 1 {
                    p.out
                } else {
                    add_typed_value(
                        g,
                        &format!("{out_name}_k{i}_n{j}"),
                        p.elem,
                        with_last(&p.out_dims, None, nl),
                    )
                };
                let mut prod = orig.clone();
                prod.name = Some(format!("{name}_k{i}_n{j}"));
                let mut ins = vec![Some(a_parts[i]), Some(w)];
                if p.gemm {
                    if i == 0 {
                        if let Some((c, cut)) = &p.c {
                            let c = match cut {
                                None => *c,
                                Some((cd, cv)) => {
                                    let width = *cd.last().expect("cut along N");
                                    let vals: Vec<f64> = cv
                                        .chunks(width)
                                        .flat_map(|row| row[n0..n0 + nl].iter().copied())
                                        .collect();
                                    let mut d = cd.clone();
                                    *d.last_mut().expect("cut along N") = nl;
                                    let c_name = g.value(*c).name.clone();
                                    add_float(g, &format!("{c_name}_n{j}"), p.elem, d, vals)
                                        .expect("a block of a float constant fits its type")
                                }
                            };
                            ins.push(Some(c));
                        }
                    } else {
                        prod.remove_attr("beta");
                    }
                }
                ops.push((prod, ins, vec![Some(y)]));
                acc = Some(match acc {
                    None => y,
                    Some(prev) => {
                        let s = if done {
                            p.out
                        } else {
                            add_typed_value(
                                g,
                                &format!("{out_name}_sum{j}_{i}"),
                                p.elem,
                                with_last(&p.out_dims, None, nl),
                            )
                        };
                        ops.push((
                            named("Add", format!("{name}_add{j}_{i}")),
                            vec![Some(prev), Some(y)],
                            vec![Some(s)],
                        ));
                        s
                    }
                });
            }
            sums.push(acc.expect("at least one K block"));
        }
        if nb.len() > 1 {
            let mut concat = named("Concat", format!("{name}_concat"));
            // The output has A's rank (a MatMul) or rank 2 (a Gemm).
            let rank = if p.gemm { 2 } else { p.a_dims.as_ref().map_or(2, Vec::len) };
            let axis = rank as i64 - 1;
            concat.set_attr("axis", AttrValue::Int(axis));
            ops.push((concat, sums.iter().map(|&v| Some(v)).collect(), vec![Some(p.out)]));
        }
        ops
    }
}
