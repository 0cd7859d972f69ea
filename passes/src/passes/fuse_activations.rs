//! `fuse-activations`: activations written out as small ops become the one op the model's opset
//! has for them.
//!
//! What it does: each `Mul` or `Div` is read as a product (`crate::pattern`: `Mul` trees in any
//! order and association, `Div` by a constant, `Pow` by 2 or 3, one-element constants folded into
//! one factor), and the product is matched against:
//!
//! | written out | becomes | opset |
//! |---|---|---|
//! | `0.5 * x * (1 + Erf(x / sqrt(2)))` (or `Erf(x * 0.70710678)`) | `Gelu` | 20 |
//! | `0.5 * x * (1 + Tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))` (`x^3` as `Pow(x, 3)` or products) | `Gelu` with `approximate = "tanh"` | 20 |
//! | `x * HardSigmoid(x)` with `alpha = 1/6`, `beta = 0.5` | `HardSwish` | 14 |
//! | `x * Clip(x + 3, 0, 6) / 6` (Relu6; bounds as inputs or, before opset 11, attributes) | `HardSwish` | 14 |
//! | `x * Tanh(Softplus(x))` (or `Softplus` as `Log(Exp(x) + 1)`) | `Mish` | 18 |
//! | `x * Sigmoid(alpha * x)` (SiLU for `alpha = 1`) | `Swish` with `alpha` | 24 |
//!
//! ONNX has no SiLU/Swish op before opset 24 (`Swish` is new in 24), so below it
//! `x * Sigmoid(x)` is kept (`kept-opset`), as every pattern is whose op the model's opset lacks:
//! the opset is never raised. Constants must equal the formula's to a relative `1e-6` (so `sqrt(2)`
//! rounded to f32 matches, a truncated `1.4142` does not: that model computes another function).
//! The fused op writes the product's output and keeps the name of the op that wrote it. The
//! evaluator computes the fused op in f64 and rounds once, where the written-out ops round after
//! each step: outputs agree up to float rounding.
//!
//! Preconditions: the main graph only. Every value of the pattern but the result is read only
//! inside it (not by another op, a graph output or a body); `x` is a float tensor; constants hold
//! one element and have a rank at most the result's (rank 0 when the result's rank is unknown).
//!
//! Postconditions: the model computes the same outputs up to float rounding; 2 to 9 ops become
//! one per fusion.
//!
//! Statistics: `gelu`, `gelu-tanh`, `hard-swish`, `mish`, `swish`, `kept-opset` (the opset
//! lacks the op), `kept-shared` (a value of the pattern is read outside it), `kept-type` (not a
//! float tensor).

use std::collections::HashSet;

use qc_ir::{AttrValue, Model, Op, OpId, OpKind, ValueId};

use crate::pass::{Changed, Pass, PassContext, PassError};
use crate::pattern::{Pat, Product, near};
use crate::registry::PassInfo;
use crate::rewrite::{Rewrite, drop_unused_constants, input, is_onnx};

pub const INFO: PassInfo = PassInfo {
    name: "fuse-activations",
    summary: "fuse GELU (erf, tanh), HardSwish, Mish and SiLU/Swish written out as small ops into Gelu, HardSwish, \
              Mish and Swish where the opset has them",
    options: &[],
    build: |_| Ok(Box::new(FuseActivations)),
};

/// The `fuse-activations` pass.
pub struct FuseActivations;

#[derive(Clone, Copy, PartialEq)]
enum Act {
    Gelu,
    GeluTanh,
    HardSwish,
    Mish,
    Swish(f64),
}

impl Act {
    fn stat(self) -> &'static str {
        match self {
            Act::Gelu => "gelu",
            Act::GeluTanh => "gelu-tanh",
            Act::HardSwish => "hard-swish",
            Act::Mish => "mish",
            Act::Swish(_) => "swish",
        }
    }

    fn opset(self) -> i64 {
        match self {
            Act::Gelu | Act::GeluTanh => 20,
            Act::HardSwish => 14,
            Act::Mish => 18,
            Act::Swish(_) => 24,
        }
    }

    fn op(self, domain: Option<String>) -> Op {
        match self {
            Act::Gelu => Op::new("Gelu", domain),
            Act::GeluTanh => Op::new("Gelu", domain)
                .with_attr("approximate", AttrValue::String("tanh".as_bytes().to_vec().into())),
            Act::HardSwish => Op::new("HardSwish", domain),
            Act::Mish => Op::new("Mish", domain),
            Act::Swish(alpha) => {
                let op = Op::new("Swish", domain);
                if alpha == 1.0 { op } else { op.with_attr("alpha", AttrValue::Float(alpha as f32)) }
            }
        }
    }
}

struct Found {
    act: Act,
    x: ValueId,
    ops: Vec<OpId>,
    root: OpId,
    out: ValueId,
}

impl Pass for FuseActivations {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        let opset = model.onnx_opset();
        let p = Pat::new(model);
        // Outer products first: a larger pattern wins over one inside it.
        let roots: Vec<(OpId, ValueId)> =
            p.g.ops()
                .filter(|(_, op)| matches!(op.kind(), OpKind::Mul | OpKind::Div) && is_onnx(op))
                .filter_map(|(id, op)| crate::rewrite::sole_output(op).map(|o| (id, o)))
                .collect();
        let mut claimed: HashSet<OpId> = HashSet::new();
        let mut found = Vec::new();
        for &(root, out) in roots.iter().rev() {
            if claimed.contains(&root) {
                continue;
            }
            let Some(f) = find(&p, root, out) else { continue };
            let reason = if opset < f.act.opset() {
                Some("kept-opset")
            } else if !p.closed(&f.ops, f.out) || f.ops.iter().any(|o| claimed.contains(o)) {
                Some("kept-shared")
            } else if p.float_elem(f.x).is_none() {
                Some("kept-type")
            } else {
                None
            };
            if let Some(r) = reason {
                cx.count(r, 1);
                continue;
            }
            claimed.extend(f.ops.iter().copied());
            found.push(f);
        }
        drop(p);
        let g = &mut model.graph;
        let mut rw = Rewrite::default();
        let mut old = Vec::new();
        for f in found {
            let root = g.op(f.root);
            let mut op = f.act.op(root.domain_raw().map(String::from));
            op.name = root.name.clone();
            for &id in &f.ops {
                let o = g.op(id);
                old.extend(o.inputs().iter().flatten().copied().filter(|&v| v != f.x));
                old.extend(o.outputs().iter().flatten().copied().filter(|&v| v != f.out));
                if id != f.root {
                    rw.set(id, vec![]);
                }
            }
            rw.set(f.root, vec![(op, vec![Some(f.x)], vec![Some(f.out)])]);
            cx.count(f.act.stat(), 1);
        }
        rw.drop_if_unused(old.iter().copied());
        let changed = !rw.is_empty();
        rw.apply(g);
        drop_unused_constants(g, &old);
        Ok(Changed::from_bool(changed))
    }
}

/// The other operand of the binary op `op` besides `v`, when `v` is one of its two.
fn other_than(op: &Op, v: ValueId) -> Option<ValueId> {
    match (input(op, 0), input(op, 1)) {
        (Some(a), Some(b)) if op.inputs().len() == 2 && a == v => Some(b),
        (Some(a), Some(b)) if op.inputs().len() == 2 && b == v => Some(a),
        _ => None,
    }
}

/// `c + s` or `s + c` with `c` the one-element constant `want`: the other operand and the Add.
fn plus_const(p: &Pat, v: ValueId, want: f64, max_rank: usize) -> Option<(ValueId, OpId)> {
    let (id, op) = p.producer(v, OpKind::Add)?;
    let (a, b) = (input(op, 0)?, input(op, 1)?);
    if op.inputs().len() != 2 {
        return None;
    }
    for (c, s) in [(b, a), (a, b)] {
        if p.scalar(c, max_rank).is_some_and(|k| near(k, want)) {
            return Some((s, id));
        }
    }
    None
}

/// Whether `v` is `k * x` (`x` itself, or a product of exactly one factor `x`): `k` and the ops.
fn scaled(p: &Pat, v: Option<ValueId>, x: ValueId, max_rank: usize) -> Option<(f64, Vec<OpId>)> {
    let v = v?;
    if v == x {
        return Some((1.0, Vec::new()));
    }
    let q = p.product(v, max_rank);
    (q.leaves == [x]).then_some((q.k, q.ops))
}

/// `c * (x + 0.044715 * x^3)` with `c = sqrt(2 / pi)`: its ops.
fn tanh_arg(p: &Pat, u: Option<ValueId>, x: ValueId, r: usize) -> Option<Vec<OpId>> {
    let q = p.product(u?, r);
    if q.leaves.len() != 1 || !near(q.k, (2.0 / std::f64::consts::PI).sqrt()) {
        return None;
    }
    let (wid, w) = p.producer(q.leaves[0], OpKind::Add)?;
    let c = p.product(other_than(w, x)?, r);
    (c.leaves == [x, x, x] && near(c.k, 0.044715)).then(|| [vec![wid], q.ops, c.ops].concat())
}

/// The activation whose product is written by `root`.
fn find(p: &Pat, root: OpId, out: ValueId) -> Option<Found> {
    let r = p.rank(out).unwrap_or(0);
    let prod: Product = p.product(out, r);
    if prod.leaves.len() != 2 || prod.ops.first() != Some(&root) {
        return None;
    }
    let done = |act: Act, x: ValueId, mut ops: Vec<OpId>| {
        let mut all = prod.ops.clone();
        all.append(&mut ops);
        Some(Found { act, x, ops: all, root, out })
    };
    for (i, &f) in prod.leaves.iter().enumerate() {
        let x = prod.leaves[1 - i];
        if x == f {
            continue;
        }
        // GELU: 0.5 * x * (1 + Erf(x / sqrt 2)) or (1 + Tanh(c * (x + 0.044715 x^3))).
        if near(prod.k, 0.5)
            && let Some((e, add)) = plus_const(p, f, 1.0, r)
        {
            if let Some((erf, erf_op)) = p.producer(e, OpKind::Erf)
                && let Some((k, ops)) = scaled(p, input(erf_op, 0), x, r)
                && near(k, std::f64::consts::FRAC_1_SQRT_2)
            {
                return done(Act::Gelu, x, [vec![add, erf], ops].concat());
            }
            if let Some((tanh, tanh_op)) = p.producer(e, OpKind::Tanh)
                && let Some(ops) = tanh_arg(p, input(tanh_op, 0), x, r)
            {
                return done(Act::GeluTanh, x, [vec![add, tanh], ops].concat());
            }
        }
        if prod.k == 1.0 {
            // Swish: x * Sigmoid(alpha * x).
            if let Some((sig, sig_op)) = p.producer(f, OpKind::Sigmoid)
                && let Some((alpha, ops)) = scaled(p, input(sig_op, 0), x, r)
            {
                return done(Act::Swish(alpha), x, [vec![sig], ops].concat());
            }
            // HardSwish: x * HardSigmoid(x) with alpha 1/6, beta 1/2.
            if let Some((hs, hs_op)) = p.producer(f, OpKind::HardSigmoid)
                && input(hs_op, 0) == Some(x)
                && hs_op.attr_float("alpha", 0.2).is_ok_and(|a| near(f64::from(a), 1.0 / 6.0))
                && hs_op.attr_float("beta", 0.5).is_ok_and(|b| near(f64::from(b), 0.5))
            {
                return done(Act::HardSwish, x, vec![hs]);
            }
            // Mish: x * Tanh(Softplus(x)), Softplus as an op or as Log(Exp(x) + 1).
            if let Some((tanh, tanh_op)) = p.producer(f, OpKind::Tanh)
                && let Some(sp) = input(tanh_op, 0)
            {
                if let Some((spid, sp_op)) = p.producer(sp, OpKind::Softplus)
                    && input(sp_op, 0) == Some(x)
                {
                    return done(Act::Mish, x, vec![tanh, spid]);
                }
                if let Some((log, log_op)) = p.producer(sp, OpKind::Log)
                    && let Some(l) = input(log_op, 0)
                    && let Some((ex, add)) = plus_const(p, l, 1.0, r)
                    && let Some((exp, exp_op)) = p.producer(ex, OpKind::Exp)
                    && input(exp_op, 0) == Some(x)
                {
                    return done(Act::Mish, x, vec![tanh, log, add, exp]);
                }
            }
        }
        // HardSwish: x * Clip(x + 3, 0, 6) / 6.
        if near(prod.k, 1.0 / 6.0)
            && let Some((clip, clip_op)) = p.producer(f, OpKind::Clip)
            && let Some(c) = input(clip_op, 0)
            && relu6(p, clip_op, r)
            && let Some((s, add)) = plus_const(p, c, 3.0, r)
            && s == x
        {
            return done(Act::HardSwish, x, vec![clip, add]);
        }
    }
    None
}

/// Whether the Clip `op` bounds its input to `[0, 6]` (attributes before opset 11, inputs after).
fn relu6(p: &Pat, op: &Op, r: usize) -> bool {
    let bound = |slot: usize, attr: &str, default: f32| -> Option<f64> {
        match input(op, slot) {
            Some(v) => p.scalar(v, r),
            None if op.attr(attr).is_some() => op.attr_float(attr, default).ok().map(f64::from),
            None => None,
        }
    };
    bound(1, "min", f32::MIN) == Some(0.0) && bound(2, "max", f32::MAX) == Some(6.0)
}
