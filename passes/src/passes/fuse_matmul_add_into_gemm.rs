//! `fuse-matmul-add-into-gemm`: rewrites `Add(MatMul(A, W), C)` into `Gemm(A, W, C)`, at any
//! rank of `A`, and with a transposed weight.
//!
//! What it does: a `MatMul` whose second input is a constant 2-D float weight `[K, N]` (or the
//! `[1, 0]` `Transpose` of a constant `[N, K]`, which becomes `transB = 1` and goes when nothing
//! else reads it), followed by an `Add` (either operand order) of a constant bias, becomes one
//! `Gemm` (alpha = beta = 1) that keeps the MatMul's name.
//!
//! - `A` of rank 2: the bias must broadcast to `[N]` or `[M, N]` without growing the output
//!   (dims `[]`, `[1]`, `[N]`, `[1, N]`, `[M, 1]`, `[M, N]`); the Gemm writes the Add's output.
//! - `A` of rank 3 or more, `[..., K]`: a MatMul with a 2-D weight multiplies every row of `A` by
//!   the same matrix, so `Reshape(A, [-1, K]) -> Gemm -> Reshape(.., [..., N])` computes the same
//!   numbers in the same order (exact). The bias must be one row (dims `[N]`, `[1]`, `[1, ..., N]`
//!   of rank at most `A`'s); a bias of higher rank becomes a `[N]` constant. A DLA runs a Gemm as
//!   one fully connected layer with its bias, where an N-D MatMul is a batched product plus an
//!   element-wise Add, so the Gemm form is what it wants, but not at the price of two Reshapes.
//!   The option `flatten` decides:
//!   - `auto` (the default): flatten only when the op count does not grow. A Reshape that writes
//!     `A` for this MatMul alone is replaced by the flattening one (reshapes compose), and a
//!     Reshape that alone reads the Add's output reads the Gemm's directly (its `0` dims, which
//!     copy from its input, written out from the known dims); at least one of the two must be
//!     absorbed, else the pair is kept as MatMul + bias (`kept-rank`).
//!   - `always`: flatten every N-D pair, adding the Reshapes that are not absorbed.
//!   - `never`: keep every N-D pair (`kept-rank`).
//!
//!   The trailing Reshape, when one is written, needs the leading dims of `A`: all known but at
//!   most one (written `-1`), else `kept-unknown-dims`.
//!
//! Preconditions: the main graph only. The MatMul's output has no other reader, is not a graph
//! output and is not read by a subgraph; `A`'s rank is known (run `infer-shapes` first); the
//! weight is a float tensor; the default-domain opset is at least 7 (Gemm without `broadcast`).
//!
//! Postconditions: the model computes the same outputs; each fusion removes one op, or keeps the
//! count (`flatten=auto`), or adds at most one (`flatten=always`).
//!
//! Statistics: `fused` (rank-2 `A`), `fused-flattened` (N-D `A` around a Gemm),
//! `transposed-weight` (fusions that read a weight through its Transpose, with `transB = 1`),
//! `kept-shared` (the MatMul output has another reader), `kept-not-constant` (the weight or bias
//! is not a constant), `kept-shape` (ranks or bias dims that Gemm cannot take), `kept-rank` (N-D
//! kept as MatMul + bias by the `flatten` option), `kept-unknown-dims`.

use std::collections::HashSet;

use qc_ir::dims;
use qc_ir::{AttrValue, ElemType, Model, Op, OpId, OpKind, ValueId};

use crate::pass::{Changed, Pass, PassContext, PassError};
use crate::registry::{PassInfo, PassOptions};
use crate::rewrite::{
    Readers, Rewrite, add_float, add_ints, add_typed_value, elem_in, float_const, input, int_const, is_onnx,
    sole_output,
};

pub const INFO: PassInfo = PassInfo {
    name: "fuse-matmul-add-into-gemm",
    summary: "rewrite a MatMul with a constant (or transposed constant) weight and an Add of a constant bias into a \
              Gemm; N-D activations flattened around it",
    options: &[(
        "flatten",
        "N-D activations: auto flattens them to [-1, K] around the Gemm when that adds no op, always flattens \
         them, never keeps them as MatMul + Add (default auto)",
    )],
    build: |o: &mut PassOptions<'_>| {
        let flatten = [Flatten::Auto, Flatten::Always, Flatten::Never]
            [o.choice("flatten", 0, &["auto", "always", "never"])?];
        Ok(Box::new(FuseMatmulAddIntoGemm { flatten }))
    },
};

/// When an N-D activation is flattened around a Gemm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flatten {
    Auto,
    Always,
    Never,
}

/// The `fuse-matmul-add-into-gemm` pass.
pub struct FuseMatmulAddIntoGemm {
    pub flatten: Flatten,
}

enum Bias {
    /// The Add's constant, as it is.
    Same(ValueId),
    /// One row of it, as a new `[N]` constant.
    Row(ElemType, Vec<usize>, Vec<f64>),
}

struct Nd {
    k: i64,
    /// The Reshape that writes `A` for this MatMul alone, and its data input.
    lead: Option<(OpId, ValueId)>,
    /// The Reshape that alone reads the Add's output, and the shape it then reads when that is
    /// not its own (its `0` dims written out).
    trail: Option<(OpId, Option<Vec<i64>>)>,
    /// `[..., N]`, the trailing Reshape's shape when none is absorbed.
    out_shape: Vec<i64>,
}

struct Plan {
    mm: OpId,
    add: OpId,
    a: ValueId,
    /// The weight as the Gemm reads it, and whether through `transB`.
    w: ValueId,
    trans_b: bool,
    /// The weight's Transpose and its output, removed with the MatMul.
    transpose: Option<(OpId, ValueId)>,
    bias: Bias,
    out: ValueId,
    mid: ValueId,
    nd: Option<Nd>,
}

impl Plan {
    fn ops(&self) -> Vec<OpId> {
        let mut ops = vec![self.mm, self.add];
        ops.extend(self.transpose.map(|t| t.0));
        if let Some(nd) = &self.nd {
            ops.extend(nd.lead.map(|l| l.0));
            ops.extend(nd.trail.as_ref().map(|t| t.0));
        }
        ops
    }
}

impl Pass for FuseMatmulAddIntoGemm {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        if model.onnx_opset() < 7 {
            return Ok(Changed::No);
        }
        // A fusion may absorb a Reshape another one also wants (one layer's trailing Reshape is
        // the next one's leading Reshape): such plans wait for the next sweep.
        let mut changed = false;
        for _ in 0..=model.graph.op_count() {
            if !self.sweep(model, cx, false) {
                self.sweep(model, cx, true);
                break;
            }
            changed = true;
        }
        Ok(Changed::from_bool(changed))
    }
}

impl FuseMatmulAddIntoGemm {
    /// One sweep: fuses every pair it can. With `count_kept`, only counts the pairs it keeps.
    fn sweep(&self, model: &mut Model, cx: &mut PassContext, count_kept: bool) -> bool {
        let g = &model.graph;
        let readers = Readers::new(g);
        let mut plans = Vec::new();
        let mut claimed: HashSet<OpId> = HashSet::new();
        for (id, op) in g.ops() {
            if op.kind() != OpKind::MatMul || !is_onnx(op) {
                continue;
            }
            match plan(model, &readers, id, op, self.flatten) {
                Ok(Some(p)) if !count_kept => {
                    let ops = p.ops();
                    if ops.iter().all(|o| !claimed.contains(o)) {
                        claimed.extend(ops);
                        plans.push(p);
                    }
                }
                Ok(_) => {}
                Err(reason) => {
                    if count_kept {
                        cx.count(reason, 1);
                    }
                }
            }
        }
        if plans.is_empty() {
            return false;
        }
        let mut rw = Rewrite::default();
        let g = &mut model.graph;
        for p in plans {
            let mm = g.op(p.mm);
            let domain = mm.domain_raw().map(String::from);
            let name = mm.name.clone();
            let mut gemm = Op::new("Gemm", domain.clone());
            gemm.name = name.clone();
            if p.trans_b {
                gemm.set_attr("transB", AttrValue::Int(1));
            }
            let bias = match p.bias {
                Bias::Same(v) => v,
                Bias::Row(elem, dims, vals) => {
                    let base = format!("{}_row", g.value(p.out).name);
                    let Some(v) = add_float(g, &base, elem, dims, vals) else { continue };
                    v
                }
            };
            let old_bias: Vec<ValueId> = g.op(p.add).inputs().iter().flatten().copied().collect();
            match p.nd {
                None => {
                    rw.set(p.add, vec![(gemm, vec![Some(p.a), Some(p.w), Some(bias)], vec![Some(p.out)])]);
                    cx.count("fused", 1);
                }
                Some(nd) => {
                    let elem = elem_in(g, p.a).or_else(|| elem_in(g, p.w)).unwrap_or(ElemType::F32);
                    let base = g.value(p.out).name.clone();
                    let src = nd.lead.map_or(p.a, |(_, x)| x);
                    let Some(flat_shape) = add_ints(g, &format!("{base}_flat_shape"), vec![-1, nd.k]) else {
                        continue;
                    };
                    let flat = add_typed_value(g, &format!("{base}_flat"), elem, None);
                    let reshape = |suffix: &str| {
                        let mut r = Op::new("Reshape", domain.clone());
                        r.name = name.as_ref().map(|n| format!("{n}_{suffix}"));
                        r
                    };
                    let mut ops =
                        vec![(reshape("flatten"), vec![Some(src), Some(flat_shape)], vec![Some(flat)])];
                    let y = add_typed_value(g, &format!("{base}_gemm"), elem, None);
                    ops.push((gemm, vec![Some(flat), Some(p.w), Some(bias)], vec![Some(y)]));
                    match nd.trail {
                        Some((rid, shape)) => {
                            let r = g.op(rid).clone();
                            let old_shape = input(&r, 1);
                            let s = match (shape, old_shape) {
                                (None, Some(s)) => s,
                                (shape, _) => {
                                    let n = r
                                        .outputs()
                                        .first()
                                        .copied()
                                        .flatten()
                                        .map(|o| g.value(o).name.clone());
                                    let n = format!("{}_shape", n.unwrap_or_else(|| base.clone()));
                                    let Some(s) = add_ints(g, &n, shape.unwrap_or_default()) else {
                                        continue;
                                    };
                                    s
                                }
                            };
                            let outs = r.outputs().to_vec();
                            rw.set(rid, vec![(r, vec![Some(y), Some(s)], outs)]);
                            rw.drop_if_unused(old_shape.into_iter().chain([p.out]));
                        }
                        None => {
                            let Some(s) = add_ints(g, &format!("{base}_shape"), nd.out_shape) else {
                                continue;
                            };
                            ops.push((reshape("unflatten"), vec![Some(y), Some(s)], vec![Some(p.out)]));
                        }
                    }
                    if let Some((rid, _)) = nd.lead {
                        let old: Vec<ValueId> = g.op(rid).inputs().iter().flatten().copied().collect();
                        rw.set(rid, vec![]);
                        rw.drop_if_unused(old.into_iter().chain([p.a]));
                    }
                    rw.set(p.add, ops);
                    cx.count("fused-flattened", 1);
                }
            }
            rw.set(p.mm, vec![]);
            if let Some((t, tv)) = p.transpose {
                rw.set(t, vec![]);
                rw.drop_if_unused([tv]);
            }
            if p.trans_b {
                cx.count("transposed-weight", 1);
            }
            rw.drop_if_unused(old_bias);
            rw.drop_if_unused([p.mid]);
        }
        let changed = !rw.is_empty();
        rw.apply(g);
        changed
    }
}

/// The weight of `mm` as a Gemm reads it: a constant `[K, N]`, or the input of a `[1, 0]`
/// Transpose of a constant `[N, K]` (with `transB`); its dims as stored.
#[allow(clippy::type_complexity)]
fn weight(
    model: &Model,
    readers: &Readers,
    mm_id: OpId,
    w: ValueId,
) -> Option<(ValueId, bool, Option<(OpId, ValueId)>, Vec<usize>)> {
    if let Some((_, wd, _)) = float_const(model, Some(w)) {
        return Some((w, false, None, wd));
    }
    let g = &model.graph;
    let t = g.value(w).producer()?;
    let top = g.op(t);
    if top.kind() != OpKind::Transpose || !is_onnx(top) || sole_output(top) != Some(w) {
        return None;
    }
    let x = input(top, 0)?;
    let (_, xd, _) = float_const(model, Some(x))?;
    let swap = match top.attr_ints("perm") {
        Ok(Some(p)) => p == [1, 0],
        Ok(None) => xd.len() == 2,
        Err(_) => false,
    };
    if !swap {
        return None;
    }
    let own = (readers.sole_reader(g, w) == Some((mm_id, 1))).then_some((t, w));
    Some((x, true, own, xd))
}

/// `Ok(None)`: no MatMul + Add here; `Err(reason)`: one this pass keeps.
fn plan(
    model: &Model,
    readers: &Readers,
    mm_id: OpId,
    mm: &Op,
    flatten: Flatten,
) -> Result<Option<Plan>, &'static str> {
    let g = &model.graph;
    let (Some(mid), Some(a), Some(w0)) = (sole_output(mm), input(mm, 0), input(mm, 1)) else {
        return Ok(None);
    };
    let uses = g.value(mid).uses();
    let Some(&(add_id, slot)) = uses.first() else { return Ok(None) };
    let add = g.op(add_id);
    if add.kind() != OpKind::Add || !is_onnx(add) {
        return Ok(None);
    }
    if readers.sole_reader(g, mid).is_none() {
        return Err("kept-shared");
    }
    let (Some(out), Some(bias)) = (sole_output(add), input(add, 1 - slot as usize)) else {
        return Ok(None);
    };
    if bias == mid || add.inputs().len() != 2 {
        return Ok(None);
    }
    let (w, trans_b, transpose, wd) = weight(model, readers, mm_id, w0).ok_or("kept-not-constant")?;
    let (belem, bd, bvals) = float_const(model, Some(bias)).ok_or("kept-not-constant")?;
    if wd.len() != 2 {
        return Err("kept-shape");
    }
    let (k, n) = if trans_b { (wd[1], wd[0]) } else { (wd[0], wd[1]) };
    let ra = dims::rank(g, a).ok_or("kept-shape")?;
    let plan = |bias: Bias, nd: Option<Nd>| Plan {
        mm: mm_id,
        add: add_id,
        a,
        w,
        trans_b,
        transpose,
        bias,
        out,
        mid,
        nd,
    };
    if ra == 2 {
        let m = dims::known(g, a).ok().and_then(|d| usize::try_from(d[0]).ok());
        let ok = match bd.as_slice() {
            [] => true,
            [d1] => *d1 == 1 || *d1 == n,
            [d0, d1] => (*d1 == 1 || *d1 == n) && (*d0 == 1 || Some(*d0) == m),
            _ => false,
        };
        return if ok { Ok(Some(plan(Bias::Same(bias), None))) } else { Err("kept-shape") };
    }
    // N-D: the bias must be one row.
    let row = match bd.split_last() {
        None => true,
        Some((last, lead)) => bd.len() <= ra && lead.iter().all(|&d| d == 1) && (*last == 1 || *last == n),
    };
    if ra < 2 || !row {
        return Err("kept-shape");
    }
    if flatten == Flatten::Never {
        return Err("kept-rank");
    }
    let bias = if bd.len() <= 1 { Bias::Same(bias) } else { Bias::Row(belem, vec![bd[bd.len() - 1]], bvals) };
    let lead = g.value(a).producer().and_then(|r| {
        let op = g.op(r);
        let ok = op.kind() == OpKind::Reshape
            && is_onnx(op)
            && sole_output(op) == Some(a)
            && readers.sole_reader(g, a) == Some((mm_id, 0));
        ok.then(|| input(op, 0).map(|x| (r, x))).flatten()
    });
    let partial = dims::partial(g, a).ok_or("kept-shape")?;
    let trail = readers.sole_reader(g, out).and_then(|(r, s)| {
        let op = g.op(r);
        if s != 0 || op.kind() != OpKind::Reshape || !is_onnx(op) || sole_output(op).is_none() {
            return None;
        }
        let mut shape = int_const(model, input(op, 1))?;
        let allowzero = op.attr_int("allowzero", 0).ok()? != 0;
        // `0` copies the dim of the Reshape's input, which is `[..., N]` before and `[M, N]`
        // after: write it out from the known dims.
        let own = !shape.contains(&0);
        for (i, d) in shape.iter_mut().enumerate() {
            if *d == 0 {
                let known = if i + 1 == ra { Some(n as u64) } else { partial.get(i).copied().flatten() };
                match known {
                    Some(v) if !allowzero && v > 0 => *d = i64::try_from(v).ok()?,
                    _ => return None,
                }
            }
        }
        Some((r, (!own).then_some(shape)))
    });
    let lead_dims = &partial[..ra - 1];
    if lead_dims.contains(&Some(0)) {
        return Err("kept-shape");
    }
    if trail.is_none() && lead_dims.iter().filter(|d| d.is_none()).count() > 1 {
        return Err("kept-unknown-dims");
    }
    if flatten == Flatten::Auto && lead.is_none() && trail.is_none() {
        return Err("kept-rank");
    }
    let mut out_shape: Vec<i64> =
        lead_dims.iter().map(|d| d.and_then(|v| i64::try_from(v).ok()).unwrap_or(-1)).collect();
    out_shape.push(i64::try_from(n).map_err(|_| "kept-shape")?);
    let k = i64::try_from(k).map_err(|_| "kept-shape")?;
    Ok(Some(plan(bias, Some(Nd { k, lead, trail, out_shape }))))
}
