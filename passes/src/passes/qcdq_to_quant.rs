//! `qcdq-to-quant`: fuses `QuantizeLinear -> [Clip] -> DequantizeLinear` chains, and
//! `DequantizeLinear` of a constant, into one QONNX `Quant`, wherever the two compute the same
//! values. It is the inverse of `quant-to-qcdq`.
//!
//! What it does: for every `DequantizeLinear` of the main graph whose input is
//! - a `QuantizeLinear` (optionally through a `Clip` with constant bounds) whose output nothing
//!   else reads, with the same scale and zero-point values and the same axis as the
//!   DequantizeLinear: the chain becomes `Quant(x, scale, 0, bitwidth)`;
//! - a constant integer tensor `q`: the DequantizeLinear becomes `Quant(w, scale, 0, bitwidth)`
//!   where `w = q * scale` is a new `float32` initializer (computed as DequantizeLinear does, so
//!   the Quant gives back exactly the same values);
//!
//! and whose zero point is 0 (constants are initializers or outputs of `Constant` ops, as
//! QONNX's own QCDQ export writes them; `Constant` ops left unread are removed), the new `Quant`
//! is in domain `qonnx.custom_op.general` (the opset import `qonnx.custom_op.general` version 1
//! is added) and writes the DequantizeLinear's output.
//! Its attributes: `signed` from the container type (`int8`/`int16`/`int4`/`int2` are signed),
//! `rounding_mode = "ROUND"` (QuantizeLinear rounds half to even), and the bitwidth and `narrow`
//! from the range the chain lets through, `[lo, hi]` = the Clip's bounds met with the
//! container's: bitwidth `ceil(log2(hi - lo + 1))`, narrow when `lo == -hi` (signed) or
//! `hi == 2^b - 2` (unsigned). The range must then be exactly QONNX's `[min_int, max_int]` for
//! those attributes (QONNX's own `QCDQToQuant` takes narrow as `lo == -hi` for unsigned
//! containers too, so it turns `[0, 254]` into an 8-bit non-narrow Quant that lets 255 through).
//! Without a Clip the bitwidth is the container's. A per-axis scale (1-D, `axis`) becomes a
//! scale of the input's rank with the channel count on that axis (`[C,1,1,1]` for axis 0).
//!
//! A chain stays as it is (one `kept-*` counter and one `qc::convert::kept_qdq` warning per
//! reason, naming the DequantizeLinear nodes) when: an input is missing or an attribute has the
//! wrong kind (`kept-malformed`); a scale, zero point or Clip bound is not a constant
//! (`kept-not-constant`); the zero point is not 0 (`kept-zero-point`); the QuantizeLinear and
//! DequantizeLinear scales, zero points or axes differ (`kept-mismatch`); the container is not an
//! integer type of at most 16 bits (`kept-container`); the input, the scale or the output is
//! not `float32`, or the scale is not positive and finite (`kept-type`); the quantization is
//! blocked, or per axis on an input of unknown rank (`kept-shape`); the Clip's range is not the
//! range of any QONNX Quant (`kept-clip-range`); the QuantizeLinear or Clip output is read by
//! anything else or is a graph output (`kept-shared`); or the DequantizeLinear's input is neither
//! a QuantizeLinear chain nor a constant (`kept-no-quantize`). QuantizeLinear nodes left without a
//! DequantizeLinear are counted in `lone-quantize`.
//!
//! Preconditions: none; run `infer-shapes` first so that element types and ranks are known.
//!
//! Postconditions: the model computes the same outputs, bit for bit; the Quant takes the
//! DequantizeLinear's place in the program order; parameters (and `Constant` ops) that nothing
//! reads any more are dropped.
//!
//! Statistics: `converted`, `with-clip`, `per-channel`, `constant-dequantize`, `lone-quantize`,
//! and one `kept-*` counter per reason above.

use std::collections::HashMap;

use qc_ir::dims;
use qc_ir::{AttrValue, ElemType, Graph, Model, Op, OpId, OpKind, OpsetImport, ValueId};

use crate::eval::{Array, eval_op};
use crate::pass::{Changed, Pass, PassContext, PassError, report_kept};
use crate::quant::{const_array, int_range};
use crate::registry::PassInfo;
use crate::rewrite::{NewOp, add_const, constant, drop_unused_constants, elem_in, rebuild};

pub const INFO: PassInfo = PassInfo {
    name: "qcdq-to-quant",
    summary: "fuse QuantizeLinear -> [Clip] -> DequantizeLinear (and DequantizeLinear of a constant) into QONNX Quant",
    options: &[],
    build: |_| Ok(Box::new(QcdqToQuant)),
};

/// The domain the new Quant nodes are written in.
const QONNX_DOMAIN: &str = "qonnx.custom_op.general";

/// The `qcdq-to-quant` pass.
pub struct QcdqToQuant;

/// Why a DequantizeLinear stays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Keep {
    Malformed,
    NotConstant,
    ZeroPoint,
    Mismatch,
    Container,
    Type,
    Shape,
    ClipRange,
    Shared,
    NoQuantize,
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
        Keep::Mismatch,
        Keep::Container,
        Keep::Type,
        Keep::Shape,
        Keep::ClipRange,
        Keep::Shared,
        Keep::NoQuantize,
    ];

    fn stat(self) -> &'static str {
        match self {
            Keep::Malformed => "kept-malformed",
            Keep::NotConstant => "kept-not-constant",
            Keep::ZeroPoint => "kept-zero-point",
            Keep::Mismatch => "kept-mismatch",
            Keep::Container => "kept-container",
            Keep::Type => "kept-type",
            Keep::Shape => "kept-shape",
            Keep::ClipRange => "kept-clip-range",
            Keep::Shared => "kept-shared",
            Keep::NoQuantize => "kept-no-quantize",
        }
    }

    fn rule(self) -> &'static str {
        match self {
            Keep::Malformed => "a missing input or an attribute of the wrong kind",
            Keep::NotConstant => "a scale, zero point or Clip bound is not a constant",
            Keep::ZeroPoint => "the zero point is not 0",
            Keep::Mismatch => "QuantizeLinear and DequantizeLinear use different scales, zero points or axes",
            Keep::Container => "the quantized type is not an integer type of at most 16 bits",
            Keep::Type => {
                "the input, scale or output is not float32, or the scale is not positive and finite"
            }
            Keep::Shape => "blocked quantization, or per-axis quantization of an input of unknown rank",
            Keep::ClipRange => "the Clip's range is not the range of a QONNX Quant",
            Keep::Shared => "an intermediate value is read elsewhere or is a graph output",
            Keep::NoQuantize => "the input is neither a QuantizeLinear chain nor a constant",
        }
    }

    fn help(self) -> &'static str {
        match self {
            Keep::Malformed => "fix the node against the ONNX definition of DequantizeLinear",
            Keep::NotConstant => "fold the parameter subgraph first (qc optimize --passes fold-constants)",
            Keep::ZeroPoint => "QONNX Quant with a nonzero zero point is not produced by this conversion",
            Keep::Mismatch | Keep::Shared | Keep::NoQuantize => {
                "only a QuantizeLinear and DequantizeLinear that form one quantizer can become a Quant"
            }
            Keep::Container | Keep::Type => "a QONNX Quant computes in float32 on integer grids",
            Keep::Shape => "run infer-shapes first, so that ranks are known",
            Keep::ClipRange => {
                "QONNX Quant ranges are [-2^(b-1) (+1 if narrow), 2^(b-1)-1] or [0, 2^b-1 (-1 if narrow)]"
            }
        }
    }
}

/// A chain to fuse.
struct Plan {
    /// The DequantizeLinear.
    dq: OpId,
    /// The ops before it (QuantizeLinear, Clip) that go away with it.
    chain: Vec<OpId>,
    /// The Quant's input: the QuantizeLinear's input, or the constant to dequantize.
    x: Input,
    y: ValueId,
    name: Option<String>,
    scale: Vec<f64>,
    /// The scale's dims for the Quant (rank 0, or the input's rank with C on the axis).
    scale_dims: Vec<usize>,
    /// The DequantizeLinear's scale value, when it is a `float32` scalar the Quant can read.
    reuse_scale: Option<ValueId>,
    bits: u32,
    signed: bool,
    narrow: bool,
    /// Values the fused ops read that may be left unread.
    params: Vec<ValueId>,
}

enum Input {
    Value(ValueId),
    /// The dequantized values of the constant integer tensor, to store as the Quant's input.
    Constant(Array),
}

/// The integer containers a Quant can stand for: `(signed, bits)`.
fn container(e: ElemType) -> Option<(bool, u32)> {
    Some(match e {
        ElemType::I8 => (true, 8),
        ElemType::U8 => (false, 8),
        ElemType::I16 => (true, 16),
        ElemType::U16 => (false, 16),
        ElemType::I4 => (true, 4),
        ElemType::U4 => (false, 4),
        ElemType::I2 => (true, 2),
        ElemType::U2 => (false, 2),
        _ => return None,
    })
}

/// The QONNX `(bits, narrow)` whose range is exactly `[lo, hi]`.
fn quant_for_range(signed: bool, lo: i64, hi: i64) -> Option<(u32, bool)> {
    if hi <= lo {
        return None;
    }
    let span = (hi - lo + 1) as u64;
    let bits = 64 - (span - 1).leading_zeros(); // ceil(log2(span))
    let narrow = if signed { lo == -hi } else { hi == (1i64 << bits) - 2 };
    // A 1-bit signed Quant is bipolar, not [-1, 0].
    if bits == 0 || bits > 16 || (signed && bits == 1) {
        return None;
    }
    (int_range(signed, narrow, bits) == (lo, hi)).then_some((bits, narrow))
}

/// The only reader of `v`, when it has exactly one and is not a graph output.
fn sole_reader(g: &Graph, v: ValueId) -> Option<OpId> {
    match g.value(v).uses() {
        [(op, _)] if !g.outputs.contains(&v) => Some(*op),
        _ => None,
    }
}

fn classify(model: &Model, dq: OpId, opset: i64) -> Result<Plan, (Keep, String)> {
    let g = &model.graph;
    let op = g.op(dq);
    let input = |o: &Op, i: usize| o.inputs().get(i).copied().flatten();
    let (Some(q), Some(s)) = (input(op, 0), input(op, 1)) else {
        return Err((Keep::Malformed, "an input is missing".into()));
    };
    let Some(y) = op.outputs().first().copied().flatten() else {
        return Err((Keep::Malformed, "the output is missing".into()));
    };
    let attr = |o: &Op, name: &str, default: i64| {
        o.attr_int(name, default).map_err(|e| (Keep::Malformed, e.to_string()))
    };
    if attr(op, "block_size", 0)? != 0 {
        return Err((Keep::Shape, "blocked".into()));
    }
    if !matches!(attr(op, "output_dtype", 0)?, 0 | 1) {
        return Err((Keep::Type, "output_dtype is not float32".into()));
    }
    let constant = |v: ValueId, what: &str| {
        constant(model, v).ok_or_else(|| (Keep::NotConstant, format!("{what} `{}`", g.value(v).name)))
    };
    let (s_dims, s_vals, s_elem) = constant(s, "scale")?;
    if s_elem != ElemType::F32 || s_vals.is_empty() || s_vals.iter().any(|&v| !(v.is_finite() && v > 0.0)) {
        return Err((Keep::Type, "scale not positive finite float32".into()));
    }
    let zp = input(op, 2);
    let zp_vals = match zp {
        Some(z) => Some(constant(z, "zero point")?),
        None => None,
    };
    if zp_vals.as_ref().is_some_and(|(_, v, _)| v.iter().any(|&x| x != 0.0)) {
        return Err((Keep::ZeroPoint, "nonzero zero point".into()));
    }
    let q_const = const_array(model, q);
    // The container: the zero point's type, else the quantized input's.
    let elem = zp_vals
        .as_ref()
        .map(|(_, _, e)| *e)
        .or_else(|| q_const.as_ref().map(|a| a.elem))
        .or_else(|| elem_in(g, q));
    let Some((signed, container_bits)) = elem.and_then(container) else {
        let e = elem.map_or("unknown".to_string(), |e| e.to_string());
        return Err((Keep::Container, format!("type {e}")));
    };
    let axis_attr = attr(op, "axis", 1)?;
    let mut params = vec![s];
    params.extend(zp);
    let mut chain = Vec::new();
    let mut clip: Option<(i64, i64)> = None;
    let x = match g.value(q).producer() {
        _ if q_const.is_some() => {
            // DequantizeLinear of a constant: compute its values as the op does.
            let arr = |v: ValueId| {
                const_array(model, v)
                    .ok_or_else(|| (Keep::NotConstant, format!("`{}` cannot be read", g.value(v).name)))
            };
            let (qa, sa) = (arr(q)?, arr(s)?);
            let za = zp.map(arr).transpose()?;
            let out = eval_op(op, &[Some(&qa), Some(&sa), za.as_ref()], opset)
                .map_err(|e| (Keep::Malformed, e.to_string()))?
                .into_iter()
                .next()
                .ok_or((Keep::Malformed, "DequantizeLinear gave no value".to_string()))?;
            params.push(q);
            Input::Constant(out)
        }
        None => return Err((Keep::NoQuantize, format!("input `{}` has no producer", g.value(q).name))),
        Some(mut prev) => {
            let mut cur = q;
            if g.op(prev).kind() == OpKind::Clip {
                if sole_reader(g, cur) != Some(dq) {
                    return Err((Keep::Shared, format!("`{}` has other readers", g.value(cur).name)));
                }
                let c = g.op(prev);
                let bound = |i: usize, name: &str, default: i64| -> Result<i64, (Keep, String)> {
                    if let Some(v) = input(c, i) {
                        let (_, vals, _) = constant(v, "Clip bound")?;
                        return vals
                            .first()
                            .map(|&b| b as i64)
                            .ok_or((Keep::NotConstant, "empty Clip bound".into()));
                    }
                    match c.attr(name) {
                        Some(_) => c
                            .attr_float(name, 0.0)
                            .map(|f| f as i64)
                            .map_err(|e| (Keep::Malformed, e.to_string())),
                        None => Ok(default),
                    }
                };
                let (lo, hi) = (bound(1, "min", i64::MIN)?, bound(2, "max", i64::MAX)?);
                params.extend(c.inputs().iter().skip(1).flatten().copied());
                clip = Some((lo, hi));
                chain.push(prev);
                cur = input(c, 0).ok_or((Keep::Malformed, "Clip has no input".into()))?;
                prev = g
                    .value(cur)
                    .producer()
                    .ok_or((Keep::NoQuantize, "Clip of a value without producer".into()))?;
            }
            let ql = g.op(prev);
            if ql.kind() != OpKind::QuantizeLinear {
                return Err((Keep::NoQuantize, format!("input comes from {}", ql.op_type())));
            }
            if sole_reader(g, cur) != Some(chain.first().copied().unwrap_or(dq)) {
                return Err((Keep::Shared, format!("`{}` has other readers", g.value(cur).name)));
            }
            let (Some(qx), Some(qs)) = (input(ql, 0), input(ql, 1)) else {
                return Err((Keep::Malformed, "QuantizeLinear input missing".into()));
            };
            if attr(ql, "block_size", 0)? != 0 {
                return Err((Keep::Shape, "blocked".into()));
            }
            let (qs_dims, qs_vals, qs_elem) = constant(qs, "scale")?;
            let qz = input(ql, 2);
            let qz_vals = match qz {
                Some(z) => Some(constant(z, "zero point")?),
                None => None,
            };
            let q_elem = qz_vals.as_ref().map(|(_, _, e)| *e).or_else(|| elem_in(g, cur));
            let same_zp = match (&qz_vals, &zp_vals) {
                (Some((_, a, _)), Some((_, b, _))) => a == b,
                (None, None) => true,
                (Some((_, a, _)), None) | (None, Some((_, a, _))) => a.iter().all(|&x| x == 0.0),
            };
            let per_axis = s_vals.len() > 1;
            let rank = dims::rank(g, qx).map(|r| r as i64);
            let norm = |a: i64| if a < 0 { rank.map(|r| a + r) } else { Some(a) };
            let same_axis = !per_axis || norm(attr(ql, "axis", 1)?) == norm(axis_attr);
            if qs_vals != s_vals
                || qs_dims.len() != s_dims.len()
                || qs_elem != ElemType::F32
                || !same_zp
                || q_elem != elem
                || !same_axis
            {
                return Err((Keep::Mismatch, "QuantizeLinear parameters differ".into()));
            }
            if elem_in(g, qx) != Some(ElemType::F32) {
                return Err((Keep::Type, "QuantizeLinear input not float32".into()));
            }
            params.push(qs);
            params.extend(qz);
            chain.insert(0, prev);
            Input::Value(qx)
        }
    };
    let (c_lo, c_hi) = int_range(signed, false, container_bits);
    let (lo, hi) = clip.map_or((c_lo, c_hi), |(a, b)| (a.max(c_lo), b.min(c_hi)));
    let Some((bits, narrow)) = quant_for_range(signed, lo, hi) else {
        return Err((
            Keep::ClipRange,
            format!("range [{lo}, {hi}] of {}", elem.map(|e| e.to_string()).unwrap_or_default()),
        ));
    };
    let scale_dims = if s_vals.len() == 1 {
        vec![]
    } else {
        let rank = match &x {
            Input::Value(v) => dims::rank(g, *v),
            Input::Constant(values) => Some(values.dims.len()),
        };
        let Some(rank) = rank else { return Err((Keep::Shape, "per axis, input rank unknown".into())) };
        let a = if axis_attr < 0 { axis_attr + rank as i64 } else { axis_attr };
        if s_dims.len() != 1 || a < 0 || a >= rank as i64 {
            return Err((Keep::Shape, format!("axis {axis_attr} with scale {s_dims:?}")));
        }
        let mut d = vec![1; rank];
        d[a as usize] = s_vals.len();
        d
    };
    Ok(Plan {
        dq,
        chain,
        x,
        y,
        name: op.name.clone().filter(|n| !n.is_empty()),
        scale: s_vals,
        reuse_scale: (s_dims.is_empty() && scale_dims.is_empty()).then_some(s),
        scale_dims,
        bits,
        signed,
        narrow,
        params,
    })
}

impl Pass for QcdqToQuant {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        let opset = model.onnx_opset();
        let mut kept: Vec<(Keep, String, String)> = Vec::new();
        let mut plans = Vec::new();
        for (id, op) in model.graph.ops() {
            if op.kind() == OpKind::DequantizeLinear {
                match classify(model, id, opset) {
                    Ok(p) => plans.push(p),
                    Err((k, detail)) => kept.push((k, model.graph.op_label(id), detail)),
                }
            }
        }
        let mut replace: HashMap<OpId, Vec<NewOp>> = HashMap::new();
        let mut orphans = Vec::new();
        for p in plans {
            let g = &mut model.graph;
            let y_name = g.value(p.y).name.clone();
            let x = match &p.x {
                Input::Value(v) => *v,
                Input::Constant(values) => {
                    cx.count("constant-dequantize", 1);
                    add_const(g, &format!("{y_name}.float"), values)
                }
            };
            // The scale is read as it is when it already has the Quant's form (a scalar).
            let scale_v = match p.reuse_scale {
                Some(s) => s,
                None => {
                    let scale = Array::from_f64s(ElemType::F32, p.scale_dims.clone(), p.scale.clone())
                        .expect("scale");
                    let what = if p.scale_dims.is_empty() { "scale" } else { "channel_scale" };
                    add_const(g, &format!("{y_name}.{what}"), &scale)
                }
            };
            let zp_v = add_const(g, &format!("{y_name}.zeropt"), &Array::scalar_f32(0.0));
            let bits_v = add_const(g, &format!("{y_name}.bitwidth"), &Array::scalar_f32(p.bits as f32));
            let mut quant = Op::new("Quant", Some(QONNX_DOMAIN.to_string()))
                .with_attr("signed", AttrValue::Int(i64::from(p.signed)))
                .with_attr("narrow", AttrValue::Int(i64::from(p.narrow)))
                .with_attr("rounding_mode", AttrValue::String("ROUND".into()));
            // The Quant takes the DequantizeLinear's name (`quant-to-qcdq` gives that the Quant's).
            if let Some(n) = &p.name {
                quant = quant.with_name(n.clone());
            }
            cx.count("converted", 1);
            if p.chain.len() == 2 {
                cx.count("with-clip", 1);
            }
            if !p.scale_dims.is_empty() {
                cx.count("per-channel", 1);
            }
            for &c in &p.chain {
                orphans.extend(g.op(c).outputs().iter().flatten().copied());
                replace.insert(c, Vec::new());
            }
            orphans.extend(p.params.iter().copied());
            replace.insert(
                p.dq,
                vec![(quant, vec![Some(x), Some(scale_v), Some(zp_v), Some(bits_v)], vec![Some(p.y)])],
            );
        }
        let changed = !replace.is_empty();
        rebuild(&mut model.graph, replace);
        orphans.sort();
        orphans.dedup();
        drop_unused_constants(&mut model.graph, &orphans);
        if changed && model.opset_version(QONNX_DOMAIN).is_none() {
            model.opset_imports.push(OpsetImport { domain: Some(QONNX_DOMAIN.into()), version: Some(1) });
        }
        let lone = model.graph.ops().filter(|(_, o)| o.kind() == OpKind::QuantizeLinear).count();
        if lone > 0 {
            cx.count("lone-quantize", lone as u64);
        }
        report_kept(
            cx,
            INFO.name,
            "qc::convert::kept_qdq",
            "DequantizeLinear node(s)",
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
    fn ranges_map_back_to_quant_attributes() {
        assert_eq!(quant_for_range(true, -128, 127), Some((8, false)));
        assert_eq!(quant_for_range(true, -127, 127), Some((8, true)));
        assert_eq!(quant_for_range(true, -7, 7), Some((4, true)));
        assert_eq!(quant_for_range(true, -8, 7), Some((4, false)));
        assert_eq!(quant_for_range(false, 0, 255), Some((8, false)));
        assert_eq!(quant_for_range(false, 0, 254), Some((8, true)));
        assert_eq!(quant_for_range(false, 0, 1), Some((1, false)));
        assert_eq!(quant_for_range(true, -1, 0), None);
        assert_eq!(quant_for_range(true, -3, 5), None);
        assert_eq!(quant_for_range(false, 1, 254), None);
    }
}
