//! `quant-to-qcdq`: rewrites QONNX `Quant`/`IntQuant` into `QuantizeLinear -> [Clip] ->
//! DequantizeLinear` (QCDQ), wherever the two compute the same values.
//!
//! What it does: every `Quant` or `IntQuant` of the main graph (in any domain QONNX accepts:
//! `qonnx.custom_op.general`, `onnx.brevitas`, `finn.custom_op.general`, `finn`, and `""`) whose
//! parameters pass the rules below becomes
//! `QuantizeLinear(x, scale, zp) -> Clip(q, min_int, max_int) -> DequantizeLinear(c, scale, zp)`,
//! with `zp` a zero of type `int8` (signed) or `uint8` (unsigned). The DequantizeLinear writes the
//! Quant's output value, so readers and graph outputs are untouched. Scale, zero point and clip
//! bounds are new initializers (QONNX writes `Constant` nodes); the Quant's old parameter
//! initializers are dropped when nothing else reads them. The rules are QONNX's
//! `QuantToQCDQ` (research/qonnx.md 1(d)) with three corrections:
//! - the `Clip` is inserted whenever `[min_int, max_int]` is narrower than the 8-bit container,
//!   which includes the 8-bit *unsigned narrow* Quant (`[0, 254]`); QONNX inserts it only for
//!   `bits < 8` or signed narrow, so its QCDQ lets 255 through;
//! - per-channel: the axis is the one axis of the scale that is not 1, aligned to the input's
//!   rank from the right as broadcasting does (QONNX takes the *first* input axis of that length,
//!   which is wrong when two axes have the same size);
//! - `rounding_mode` is compared case-insensitively and `HALF_EVEN` is accepted as the same mode
//!   as `ROUND` (QONNX's executor upper-cases the name, its converter does not); each node whose
//!   name had to be normalised is counted in `rounding-name-normalized`.
//!
//! A Quant stays as it is when: an input is missing or an attribute has the wrong kind
//! (`kept-malformed`); the scale, zero point or bitwidth is not a constant (`kept-not-constant`;
//! an initializer, also one that is a graph input as in QONNX, or the output of a `Constant` op
//! counts as a constant); the zero point is not all 0 (`kept-zero-point`); the bitwidth is not a
//! whole number in [2, 8] (`kept-bitwidth`); the rounding mode is not ROUND/HALF_EVEN
//! (`kept-rounding`); the input
//! or the scale is not `float32` (`kept-type`); the scale is not positive and finite, or has more
//! than one axis that is not 1 (`kept-scale`); a parameter would broadcast the output beyond the
//! input's shape, or the input's shape is too little known to tell (`kept-shape`); or the
//! default-domain opset cannot be raised as the rewrite needs (`kept-opset`). Quant nodes inside
//! If/Loop/Scan bodies are not rewritten (`kept-in-subgraph`). `BipolarQuant`, `Trunc`,
//! `FloatQuant` and `MultiThreshold` are never touched (`other-quantizers`). Each reason for
//! keeping gives one warning, `qc::convert::kept_quant`, naming the nodes.
//!
//! Opset: QuantizeLinear needs default-domain opset 10, a Clip on `int8`/`uint8` needs 12 (Clip
//! takes its bounds as inputs from 11, and integer types from 12), and a per-channel
//! QuantizeLinear (`axis`) needs 13. When the model's opset is lower, it is raised to the highest
//! level any rewritten node needs, and the ops whose form changed in between are rewritten to
//! their new form (attributes that became inputs: Slice, TopK, Pad, Clip, Dropout, Squeeze,
//! Unsqueeze, Split, ReduceSum; Softmax/LogSoftmax/Hardmax get an explicit `axis` when it is the
//! last one, where the old and new meanings agree), in If/Loop/Scan bodies too (statistic
//! `ops-upgraded`). An op with no equivalent newer form (Upsample, Scatter, Resize-10, Scan-8,
//! a Softmax over a non-last axis, opsets before 7) blocks the raise; the nodes that needed it
//! stay Quant. The IR version is raised to what the new opset requires.
//!
//! Preconditions: none; run `infer-shapes` first so that input types and shapes are known (the
//! rules above need the input's element type, and its rank for non-scalar parameters).
//!
//! Postconditions: the model computes the same outputs, bit for bit (QuantizeLinear divides,
//! rounds half to even and saturates exactly as Quant does with zero point 0); the new ops take
//! the Quant's place in the program order; new intermediate values are declared in `value_info`.
//!
//! Statistics: `converted`, `with-clip`, `per-channel`, `rounding-name-normalized`,
//! `opset-raised`, `ops-upgraded`, `other-quantizers`, and one `kept-*` counter per reason above.

use std::collections::{BTreeMap, HashMap};

use qc_ir::dims;
use qc_ir::{AttrValue, Dim, ElemType, Graph, Model, Op, OpId, OpKind, Shape, ValueId};

use crate::eval::Array;
use crate::opset::{has_default_ops, set_default_opset, upgrade_graph};
use crate::pass::{Changed, Pass, PassContext, PassError, report_kept};
use crate::quant::int_range;
use crate::registry::PassInfo;
use crate::rewrite::{NewOp, add_const, add_typed_value, constant, drop_unused_constants, elem_in, rebuild};

pub const INFO: PassInfo = PassInfo {
    name: "quant-to-qcdq",
    summary: "rewrite QONNX Quant into QuantizeLinear -> [Clip] -> DequantizeLinear where exact",
    options: &[],
    build: |_| Ok(Box::new(QuantToQcdq)),
};

/// The `quant-to-qcdq` pass.
pub struct QuantToQcdq;

/// Why a Quant stays a Quant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Keep {
    Malformed,
    NotConstant,
    ZeroPoint,
    Bitwidth,
    Rounding,
    Type,
    Scale,
    Shape,
    Opset,
    Subgraph,
}

/// What a `kept-*` statistic of this pass means, for reports (`None` for other statistics).
pub fn kept_reason(stat: &str) -> Option<&'static str> {
    Keep::ALL.iter().find(|k| k.stat() == stat).map(|k| k.rule())
}

impl Keep {
    const ALL: [Keep; 10] = [
        Keep::Malformed,
        Keep::NotConstant,
        Keep::ZeroPoint,
        Keep::Bitwidth,
        Keep::Rounding,
        Keep::Type,
        Keep::Scale,
        Keep::Shape,
        Keep::Opset,
        Keep::Subgraph,
    ];

    fn stat(self) -> &'static str {
        match self {
            Keep::Malformed => "kept-malformed",
            Keep::NotConstant => "kept-not-constant",
            Keep::ZeroPoint => "kept-zero-point",
            Keep::Bitwidth => "kept-bitwidth",
            Keep::Rounding => "kept-rounding",
            Keep::Type => "kept-type",
            Keep::Scale => "kept-scale",
            Keep::Shape => "kept-shape",
            Keep::Opset => "kept-opset",
            Keep::Subgraph => "kept-in-subgraph",
        }
    }

    fn rule(self) -> &'static str {
        match self {
            Keep::Malformed => "a missing input or an attribute of the wrong kind",
            Keep::NotConstant => "the scale, zero point or bitwidth is not a constant",
            Keep::ZeroPoint => "the zero point is not 0",
            Keep::Bitwidth => "the bitwidth is not a whole number in [2, 8]",
            Keep::Rounding => "the rounding mode is not ROUND (HALF_EVEN)",
            Keep::Type => "the input or the scale is not float32",
            Keep::Scale => "the scale is not positive and finite, per tensor or along one axis",
            Keep::Shape => "the parameters broadcast beyond the input's shape, or its shape is unknown",
            Keep::Opset => "the default-domain opset cannot be raised as the rewrite needs",
            Keep::Subgraph => "the node is inside an If/Loop/Scan body",
        }
    }

    fn help(self) -> &'static str {
        match self {
            Keep::Malformed => "fix the node: Quant takes x, scale, zeropt and bitwidth and int attributes",
            Keep::NotConstant => "fold the parameter subgraph first (qc optimize --passes fold-constants)",
            Keep::ZeroPoint | Keep::Bitwidth | Keep::Rounding => {
                "QuantizeLinear/DequantizeLinear with an 8-bit container cannot express this quantizer exactly"
            }
            Keep::Type => "run infer-shapes so the input type is known; QuantizeLinear needs float32 here",
            Keep::Scale => "QuantizeLinear takes one scale, or one per channel along a single axis",
            Keep::Shape => "run infer-shapes first; a parameter must not add or widen dims of the input",
            Keep::Opset => "the message names the op that has no equivalent form in the newer opset",
            Keep::Subgraph => "only the main graph is rewritten",
        }
    }
}

/// A Quant that will be rewritten.
struct Plan {
    /// The Quant's output; the DequantizeLinear writes it (stable across op rebuilds).
    y: ValueId,
    x: ValueId,
    name: Option<String>,
    x_shape: Option<Vec<Dim>>,
    /// The scale, per tensor (one value) or per channel.
    scale: Vec<f64>,
    /// The per-channel axis of `x`.
    axis: Option<i64>,
    signed: bool,
    range: (i64, i64),
    /// The lowest default-domain opset the rewrite of this node is valid in.
    opset: i64,
    normalized_rounding: bool,
    /// The Quant's scale, zero point and bitwidth values (dropped when no longer read).
    params: Vec<ValueId>,
}

/// Whether a parameter of dims `p` broadcast against an input of dims `x` leaves the input's
/// shape unchanged (every parameter dim is 1 or equals a known input dim; rank not larger).
fn fits_input(x: Option<&[Dim]>, p: &[usize]) -> bool {
    let Some(x) = x else { return p.is_empty() };
    if p.len() > x.len() {
        return false;
    }
    let off = x.len() - p.len();
    p.iter().enumerate().all(|(i, &d)| d == 1 || x[off + i] == Dim::Known(d as u64))
}

/// Decides whether the Quant `id` can be rewritten, and how.
fn classify(model: &Model, id: OpId) -> Result<Plan, (Keep, String)> {
    let g = &model.graph;
    let op = g.op(id);
    let input = |i: usize| op.inputs().get(i).copied().flatten();
    let (Some(x), Some(s), Some(z), Some(b)) = (input(0), input(1), input(2), input(3)) else {
        return Err((Keep::Malformed, "an input is missing".into()));
    };
    let Some(y) = op.outputs().first().copied().flatten() else {
        return Err((Keep::Malformed, "the output is missing".into()));
    };
    let attrs = op.qonnx_quant().map_err(|e| (Keep::Malformed, e.to_string()))?;
    let mode = attrs.rounding_mode.to_ascii_uppercase();
    if mode != "ROUND" && mode != "HALF_EVEN" {
        return Err((Keep::Rounding, format!("rounding_mode {}", attrs.rounding_mode)));
    }
    let constant = |v: ValueId, what: &str| {
        constant(model, v).ok_or_else(|| (Keep::NotConstant, format!("{what} `{}`", g.value(v).name)))
    };
    let (s_dims, s_vals, s_elem) = constant(s, "scale")?;
    let (z_dims, z_vals, _) = constant(z, "zero point")?;
    let (b_dims, b_vals, _) = constant(b, "bitwidth")?;
    if b_vals.len() != 1 || b_vals[0].fract() != 0.0 || !(2.0..=8.0).contains(&b_vals[0]) {
        let shown =
            if b_vals.len() == 1 { b_vals[0].to_string() } else { format!("{} values", b_vals.len()) };
        return Err((Keep::Bitwidth, format!("bitwidth {shown}")));
    }
    let bits = b_vals[0] as u32;
    if z_vals.iter().any(|&v| v != 0.0) {
        return Err((Keep::ZeroPoint, "nonzero zero point".into()));
    }
    if elem_in(g, x) != Some(ElemType::F32) {
        let e = elem_in(g, x).map_or("unknown".to_string(), |e| e.to_string());
        return Err((Keep::Type, format!("input type {e}")));
    }
    if s_elem != ElemType::F32 {
        return Err((Keep::Type, format!("scale type {s_elem}")));
    }
    if s_vals.is_empty() || s_vals.iter().any(|&v| !(v.is_finite() && v > 0.0)) {
        return Err((Keep::Scale, "scale not positive and finite".into()));
    }
    let x_shape = dims::of(g, x);
    for (what, dims) in [("scale", &s_dims), ("zero point", &z_dims), ("bitwidth", &b_dims)] {
        if !fits_input(x_shape.as_deref(), dims) {
            let xs = x_shape.as_ref().map_or("unknown".to_string(), |d| {
                Shape { dims: d.clone(), denotations: Vec::new() }.to_string()
            });
            return Err((Keep::Shape, format!("{what} {dims:?} vs input {xs}")));
        }
    }
    let axis = if s_vals.len() == 1 {
        None
    } else {
        let mut big = s_dims.iter().enumerate().filter(|(_, d)| **d != 1);
        let (i, _) = big.next().ok_or_else(|| (Keep::Scale, "empty scale".to_string()))?;
        if big.next().is_some() {
            return Err((Keep::Scale, format!("scale {s_dims:?} varies along more than one axis")));
        }
        // `fits_input` guarantees the input's rank is known and not smaller.
        let rank = x_shape.as_ref().map_or(0, Vec::len);
        Some((rank - s_dims.len() + i) as i64)
    };
    let range = int_range(attrs.signed, attrs.narrow, bits);
    let container = if attrs.signed { (-128, 127) } else { (0, 255) };
    let opset = if axis.is_some() {
        13
    } else if range != container {
        12
    } else {
        10
    };
    Ok(Plan {
        y,
        x,
        name: op.name.clone().filter(|n| !n.is_empty()),
        x_shape,
        scale: s_vals,
        axis,
        signed: attrs.signed,
        range,
        opset,
        normalized_rounding: attrs.rounding_mode != "ROUND",
        params: vec![s, z, b],
    })
}

/// Builds the QCDQ ops of one plan.
fn emit(g: &mut Graph, p: &Plan) -> Vec<NewOp> {
    let y_name = g.value(p.y).name.clone();
    let elem = if p.signed { ElemType::I8 } else { ElemType::U8 };
    let n = p.scale.len();
    let param_dims = if p.axis.is_some() { vec![n] } else { vec![] };
    let scale = Array::from_f64s(ElemType::F32, param_dims.clone(), p.scale.clone()).expect("scale array");
    let zero = Array::from_f64s(elem, param_dims, vec![0.0; n]).expect("zero-point array");
    let scale_v = add_const(g, &format!("{y_name}.scale"), &scale);
    let zp_v = add_const(g, &format!("{y_name}.zero_point"), &zero);
    let q_v = add_typed_value(g, &format!("{y_name}.int"), elem, p.x_shape.clone());
    // The DequantizeLinear, which writes the Quant's output, keeps the Quant's name.
    let named = |op: Op, suffix: &str| match &p.name {
        Some(n) if suffix.is_empty() => op.with_name(n.clone()),
        Some(n) => op.with_name(format!("{n}.{suffix}")),
        None => op,
    };
    let with_axis = |op: Op| match p.axis {
        Some(a) => op.with_attr("axis", AttrValue::Int(a)),
        None => op,
    };
    let mut ops = vec![(
        named(with_axis(Op::new("QuantizeLinear", None)), "quantize"),
        vec![Some(p.x), Some(scale_v), Some(zp_v)],
        vec![Some(q_v)],
    )];
    let mut last = q_v;
    if p.range != if p.signed { (-128, 127) } else { (0, 255) } {
        let lo = Array::from_f64s(elem, vec![], vec![p.range.0 as f64]).expect("bound");
        let hi = Array::from_f64s(elem, vec![], vec![p.range.1 as f64]).expect("bound");
        let lo_v = add_const(g, &format!("{y_name}.clip_min"), &lo);
        let hi_v = add_const(g, &format!("{y_name}.clip_max"), &hi);
        let c_v = add_typed_value(g, &format!("{y_name}.clipped"), elem, p.x_shape.clone());
        ops.push((
            named(Op::new("Clip", None), "clip"),
            vec![Some(q_v), Some(lo_v), Some(hi_v)],
            vec![Some(c_v)],
        ));
        last = c_v;
    }
    ops.push((
        named(with_axis(Op::new("DequantizeLinear", None)), ""),
        vec![Some(last), Some(scale_v), Some(zp_v)],
        vec![Some(p.y)],
    ));
    ops
}

impl Pass for QuantToQcdq {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        let mut kept: Vec<(Keep, String, String)> = Vec::new();
        let mut plans: Vec<(Plan, String)> = Vec::new();
        let mut others = 0u64;
        for (id, op) in model.graph.ops() {
            match op.kind() {
                OpKind::Quant | OpKind::IntQuant => {
                    let label = model.graph.op_label(id);
                    match classify(model, id) {
                        Ok(p) => plans.push((p, label)),
                        Err((k, detail)) => kept.push((k, label, detail)),
                    }
                }
                OpKind::BipolarQuant | OpKind::Trunc | OpKind::FloatQuant | OpKind::MultiThreshold => {
                    others += 1
                }
                _ => {}
            }
        }
        model.graph.visit_subgraphs(&mut |sub| {
            for (id, op) in sub.ops() {
                if matches!(op.kind(), OpKind::Quant | OpKind::IntQuant) {
                    kept.push((Keep::Subgraph, sub.op_label(id), "in a body".into()));
                }
            }
        });

        // The opset: raise it as far as the rewrites need and the other ops allow.
        let current = match model.opset_version("") {
            Some(v) => v,
            None if !has_default_ops(&model.graph) => 0,
            None => model.onnx_opset(),
        };
        let mut levels: Vec<i64> = plans.iter().map(|(p, _)| p.opset).filter(|&l| l > current).collect();
        levels.sort_unstable();
        levels.dedup();
        let mut target = current;
        let mut blockers: BTreeMap<i64, String> = BTreeMap::new();
        for &level in levels.iter().rev() {
            if current == 0 {
                target = level;
                break;
            }
            let mut trial = model.graph.clone();
            match upgrade_graph(&mut trial, current, level) {
                Ok(_) => {
                    target = level;
                    break;
                }
                Err(why) => {
                    blockers.insert(level, why);
                }
            }
        }
        let (ready, blocked): (Vec<_>, Vec<_>) = plans.into_iter().partition(|(p, _)| p.opset <= target);
        for (p, label) in blocked {
            let why = blockers.get(&p.opset).cloned().unwrap_or_default();
            kept.push((Keep::Opset, label, format!("needs opset {}; blocked by {why}", p.opset)));
        }
        let mut changed = false;
        if !ready.is_empty() && target > current {
            let upgraded = if current == 0 {
                0
            } else {
                upgrade_graph(&mut model.graph, current, target).map_err(|why| PassError::Failed {
                    pass: INFO.name,
                    message: format!("raising the opset from {current} to {target} failed: {why}"),
                    help: "this is a bug in qc: the same upgrade succeeded on a copy".into(),
                })?
            };
            set_default_opset(model, target);
            cx.count("opset-raised", 1);
            cx.count("ops-upgraded", upgraded as u64);
            changed = true;
        }

        // The rewrite.
        let mut replace: HashMap<OpId, Vec<NewOp>> = HashMap::new();
        let mut orphans = Vec::new();
        for (p, _) in &ready {
            let Some(id) = model.graph.value(p.y).producer() else { continue };
            let ops = emit(&mut model.graph, p);
            cx.count("converted", 1);
            if ops.len() == 3 {
                cx.count("with-clip", 1);
            }
            if p.axis.is_some() {
                cx.count("per-channel", 1);
            }
            if p.normalized_rounding {
                cx.count("rounding-name-normalized", 1);
            }
            orphans.extend(p.params.iter().copied());
            replace.insert(id, ops);
        }
        if !replace.is_empty() {
            changed = true;
        }
        rebuild(&mut model.graph, replace);
        orphans.sort();
        orphans.dedup();
        drop_unused_constants(&mut model.graph, &orphans);

        if others > 0 {
            cx.count("other-quantizers", others);
        }
        report_kept(
            cx,
            INFO.name,
            "qc::convert::kept_quant",
            "Quant node(s)",
            &mut kept,
            Keep::stat,
            Keep::rule,
            Keep::help,
        );
        Ok(Changed::from_bool(changed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_must_not_widen_the_input() {
        let x = [Dim::Known(4), Dim::Known(3), Dim::Sym("N".into())];
        assert!(fits_input(Some(&x), &[]));
        assert!(fits_input(Some(&x), &[4, 1, 1]));
        assert!(fits_input(Some(&x), &[3, 1]));
        assert!(!fits_input(Some(&x), &[1, 1, 2]));
        assert!(!fits_input(Some(&x), &[1, 4, 3, 1]));
        assert!(!fits_input(None, &[1]));
        assert!(fits_input(None, &[]));
    }
}
