//! The integer simulation of the ACCESS DLA (`qc run --fixed-point access-dla`), as
//! `spec/fixed_point.md` defines it.
//!
//! Ops run in topological order, each twice: in float (the reference evaluator on the model as it
//! is) and in fixed point. A value of the fixed-point run is either an integer tensor with a
//! power-of-two scale `2^e`, or a float tensor. An op runs in integer arithmetic when the target
//! has its op type and it either carries the ACCESS scale attributes (`output_scale`, and
//! `input_scale`/`A_scale`/`B_scale` for the layers with weights) or keeps the scale of an integer
//! input (or of a float one it quantizes at its `input_scale`); every other op runs in float, on
//! its integer inputs dequantized, and a CPU op with an `output_scale` writes its output for the
//! DLA quantized to it.
//!
//! - Quantizing a float `x` to scale `2^e`: `q = sat(round_half_up(x / 2^e))`, 8 bits.
//! - `Conv`, `Gemm`, `MatMul`: the input `x_q` at `input_scale`, the weights `W_q = W / s_c` with
//!   `s_c = 2^n_c / a_c` from `weight_ch_scales` (per output channel; `weight_scale`, or
//!   `B_scale` for MatMul, per tensor), the bias `B_q = sat16(round_half_up(B / (s_in s_c)))`;
//!   the accumulator `acc = sum x_q W_q + B_q` is exact (integers in f64, below 2^53); the output
//!   `y_q = sat(round_half_up(acc * 2^(e_in + n_c - e_out) / a_c))`: the shift and the
//!   multiplier `1/a_c`, applied exactly with one rounding.
//! - Every other integer op: its integer inputs dequantized exactly (`q * 2^e`), the op in f64,
//!   and the result quantized to the output scale (`output_scale`, else the scale of its first
//!   integer data input, for ops that keep their scale). For data movement, ReLU and max pooling
//!   this gives the integers back unchanged; for Add, Div, ReduceSum and the average pools it is
//!   the exact result rounded once; the saturating activations (Tanh, Sigmoid, HardSwish) are the
//!   exact function rounded once (the guide does not give its stepwise approximation).
//!
//! The ACCESS attributes may be written inline or as node metadata ([`super::metadata`]); the
//! metadata form is read as the attributes it stands for.
//!
//! Per layer the result is compared with the float run: signal-to-noise ratio and maximum
//! absolute error, and the number of values that saturated.

use qc_ir::target::Target;
use qc_ir::{AttrValue, ElemType, Model, Op, OpId, OpKind, ValueId};

use super::FixedError;
use super::scale::{Dyadic, dyadic_parts, pow2_exp, round_half_up};
use crate::eval::{Array, EvalError, eval_op};

/// The range of an 8-bit feature map or weight, and of a 16-bit bias.
pub const INT8: (f64, f64) = (-128.0, 127.0);
pub const INT16: (f64, f64) = (-32768.0, 32767.0);

/// Where an op ran in the simulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// In integer arithmetic, as the DLA computes.
    Integer,
    /// In float (an op the DLA does not have, or one without scales).
    Float,
}

impl Placement {
    pub fn name(self) -> &'static str {
        match self {
            Placement::Integer => "integer",
            Placement::Float => "float",
        }
    }
}

/// One op's output in the fixed-point run against the float run.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerError {
    pub node: String,
    pub op_type: String,
    pub output: String,
    pub placement: Placement,
    /// The output's scale in the fixed-point run (integer ops).
    pub scale: Option<f64>,
    /// `10 log10(sum ref^2 / sum (ref - fixed)^2)`; `+inf` when identical.
    pub snr_db: f64,
    pub max_abs_error: f64,
    /// Values that saturated (output, and bias or weight values of the op).
    pub saturated: u64,
    pub values: usize,
}

/// The result of [`simulate`].
#[derive(Clone, Debug)]
pub struct Simulation {
    /// The graph outputs of the fixed-point run, dequantized (f32 where the float run has f32).
    pub outputs: Vec<(String, Array)>,
    /// The graph outputs of the float run.
    pub reference: Vec<(String, Array)>,
    /// One entry per op with an output, in topological order.
    pub layers: Vec<LayerError>,
    /// Every value of the fixed-point run, dequantized, by value index.
    pub values: Vec<Option<Array>>,
}

/// A value of the fixed-point run.
#[derive(Clone, Debug)]
enum Fx {
    /// Integers (held in f64) at scale `2^exp`.
    Int {
        q: Vec<f64>,
        dims: Vec<usize>,
        exp: i32,
    },
    Float(Array),
}

fn f64s(dims: Vec<usize>, v: Vec<f64>) -> Result<Array, EvalError> {
    Array::from_f64s(ElemType::F64, dims, v)
}

/// `v` quantized to `2^exp` and saturated to `range`; returns the values and how many saturated.
pub fn quantize(v: &[f64], exp: i32, range: (f64, f64)) -> (Vec<f64>, u64) {
    let inv = 2f64.powi(-exp);
    let mut sat = 0;
    let q = v
        .iter()
        .map(|x| {
            let r = round_half_up(x * inv);
            if r < range.0 || r > range.1 {
                sat += 1;
            }
            r.clamp(range.0, range.1)
        })
        .collect();
    (q, sat)
}

fn dequantize(q: &[f64], exp: i32) -> Vec<f64> {
    let s = 2f64.powi(exp);
    q.iter().map(|x| x * s).collect()
}

fn attr_f64(op: &Op, name: &str) -> Option<f64> {
    match &op.attr(name)?.value {
        AttrValue::Float(x) => Some(f64::from(*x)),
        AttrValue::Int(x) => Some(*x as f64),
        _ => None,
    }
}

/// Tolerance for reading an f32 attribute as an exact power of two or `2^n / a`.
const TOL: f64 = 1e-6;

/// The power-of-two exponent of scale attribute `name`, if the op has it.
fn pow2_attr(op: &Op, name: &str) -> Result<Option<i32>, FixedError> {
    let Some(s) = attr_f64(op, name) else { return Ok(None) };
    pow2_exp(s, TOL).map(Some).ok_or_else(|| FixedError::BadScale {
        node: op.display_name(0),
        attr: name.to_string(),
        value: s,
        format: "a power of two",
    })
}

/// The weight scales of a layer with weights: `weight_ch_scales`, else `weight_scale`.
fn weight_scales(op: &Op, max_a: u32) -> Result<Option<Vec<Dyadic>>, FixedError> {
    let bad = |attr: &str, value: f64| FixedError::BadScale {
        node: op.display_name(0),
        attr: attr.to_string(),
        value,
        format: "of the form 2^n / a, a in 1..=255",
    };
    match op.attr("weight_ch_scales").map(|a| &a.value) {
        Some(AttrValue::Floats(v)) => v
            .iter()
            .map(|x| {
                dyadic_parts(f64::from(*x), max_a, TOL).ok_or_else(|| bad("weight_ch_scales", f64::from(*x)))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        _ => match attr_f64(op, "weight_scale") {
            Some(s) => {
                dyadic_parts(s, max_a, TOL).map(|d| Some(vec![d])).ok_or_else(|| bad("weight_scale", s))
            }
            None => Ok(None),
        },
    }
}

/// Whether the op carries ACCESS scale attributes that make it an integer layer.
fn has_scales(op: &Op) -> bool {
    ["output_scale", "input_scale", "A_scale"].iter().any(|a| op.attr(a).is_some())
}

struct Run<'a> {
    model: &'a Model,
    target: &'a Target,
    opset: i64,
    flt: Vec<Option<Array>>,
    fx: Vec<Option<Fx>>,
}

impl Run<'_> {
    fn float_of(&self, v: ValueId) -> Result<&Array, FixedError> {
        self.flt[v.index()].as_ref().ok_or_else(|| {
            FixedError::Eval(EvalError::MissingInput { name: self.model.graph.value(v).name.clone() })
        })
    }

    /// The fixed-point value of `v` as a float array of the float run's element type.
    fn dequantized(&self, v: ValueId) -> Result<Array, FixedError> {
        let reference = self.float_of(v)?;
        match self.fx[v.index()].as_ref() {
            Some(Fx::Float(a)) => Ok(a.clone()),
            Some(Fx::Int { q, dims, exp }) => {
                Ok(Array::from_f64s(reference.elem, dims.clone(), dequantize(q, *exp))?)
            }
            None => Ok(reference.clone()),
        }
    }

    /// `v` as integers at scale `2^exp` (quantized from float, or rescaled), and saturations.
    fn as_int(&self, v: ValueId, exp: i32) -> Result<(Vec<f64>, Vec<usize>, u64), FixedError> {
        match self.fx[v.index()].as_ref() {
            Some(Fx::Int { q, dims, exp: e }) if *e == exp => Ok((q.clone(), dims.clone(), 0)),
            Some(Fx::Int { q, dims, exp: e }) => {
                let (q, s) = quantize(&dequantize(q, *e), exp, INT8);
                Ok((q, dims.clone(), s))
            }
            _ => {
                let a = self.dequantized(v)?;
                let (q, s) = quantize(&a.to_f64()?, exp, INT8);
                Ok((q, a.dims.clone(), s))
            }
        }
    }

    /// Runs `op` in float on the fixed-point values (integers dequantized).
    fn float_op(&self, op: &Op) -> Result<Vec<Array>, FixedError> {
        let ins: Vec<Option<Array>> = op
            .inputs()
            .iter()
            .map(|s| s.map(|v| self.dequantized(v)).transpose())
            .collect::<Result<_, _>>()?;
        let refs: Vec<Option<&Array>> = ins.iter().map(Option::as_ref).collect();
        Ok(eval_op(op, &refs, self.opset)?)
    }

    /// An integer op other than the layers with weights: dequantize, run in f64, requantize.
    fn requantizing_op(&self, op: &Op, out_exp: i32) -> Result<(Vec<f64>, Vec<usize>, u64), FixedError> {
        // A pool's `input_scale`: a float input is quantized to it first.
        let in_exp = pow2_attr(op, "input_scale")?;
        let mut sat = 0;
        let mut ins: Vec<Option<Array>> = Vec::new();
        for (i, slot) in op.inputs().iter().enumerate() {
            let Some(v) = *slot else {
                ins.push(None);
                continue;
            };
            let a = match self.fx[v.index()].as_ref() {
                Some(Fx::Int { q, dims, exp }) => f64s(dims.clone(), dequantize(q, *exp))?,
                _ if i == 0 && in_exp.is_some() => {
                    let e = in_exp.unwrap_or(0);
                    let (q, d, s) = self.as_int(v, e)?;
                    sat += s;
                    f64s(d, dequantize(&q, e))?
                }
                _ => {
                    let a = self.dequantized(v)?;
                    if a.domain()? == crate::eval::Domain::Float {
                        f64s(a.dims.clone(), a.to_f64()?)?
                    } else {
                        a
                    }
                }
            };
            ins.push(Some(a));
        }
        let refs: Vec<Option<&Array>> = ins.iter().map(Option::as_ref).collect();
        let out = eval_op(op, &refs, self.opset)?.into_iter().next().ok_or_else(|| {
            FixedError::Unsupported { node: op.display_name(0), reason: "the op has no output".into() }
        })?;
        let (q, s) = quantize(&out.to_f64()?, out_exp, INT8);
        Ok((q, out.dims, sat + s))
    }

    /// `Conv`, `Gemm` or `MatMul` in integers (see the module doc).
    fn mac_layer(
        &self,
        op: &Op,
        in_exp: i32,
        out_exp: i32,
    ) -> Result<(Vec<f64>, Vec<usize>, u64), FixedError> {
        let node = op.display_name(0);
        let input = |i: usize| op.inputs().get(i).copied().flatten();
        let unsupported = |reason: String| FixedError::Unsupported { node: node.clone(), reason };
        let x = input(0).ok_or_else(|| unsupported("input 0 is missing".into()))?;
        let w = input(1).ok_or_else(|| unsupported("input 1 is missing".into()))?;
        let (xq, xd, mut sat) = self.as_int(x, in_exp)?;
        let kind = op.kind();
        if kind == OpKind::Gemm
            && (op.attr_float("alpha", 1.0).unwrap_or(1.0) != 1.0
                || op.attr_float("beta", 1.0).unwrap_or(1.0) != 1.0)
        {
            return Err(unsupported("Gemm with alpha or beta other than 1".into()));
        }
        // Weight scales and the weight's channel axis.
        let (scales, w_axis): (Vec<Dyadic>, Option<usize>) = if kind == OpKind::MatMul {
            match pow2_attr(op, "B_scale")? {
                Some(e) if self.model.graph.value(w).init.is_some() => {
                    (vec![Dyadic { exp: e, den: 1 }], None)
                }
                Some(_) | None => (Vec::new(), None),
            }
        } else {
            let s = weight_scales(op, self.target.scales.max_denominator)?
                .ok_or_else(|| unsupported("no weight_ch_scales (nor weight_scale)".into()))?;
            let axis = if kind == OpKind::Gemm && op.attr_int("transB", 0).unwrap_or(0) == 0 { 1 } else { 0 };
            (s, Some(axis))
        };
        // The weights as integers: a constant divided by its scales, or a feature map (MatMul).
        let (wq, wd) = if scales.is_empty() {
            let e = pow2_attr(op, "B_scale")?.ok_or_else(|| unsupported("no B_scale".into()))?;
            let (q, d, s) = self.as_int(w, e)?;
            sat += s;
            (q, d)
        } else {
            let a = self.float_of(w)?;
            let vals = a.to_f64()?;
            let per = per_channel(&a.dims, w_axis, scales.len(), &node)?;
            let mut q = Vec::with_capacity(vals.len());
            for (i, x) in vals.iter().enumerate() {
                let r = round_half_up(x / scales[per(i)].value());
                if r < INT8.0 || r > INT8.1 {
                    sat += 1;
                }
                q.push(r.clamp(INT8.0, INT8.1));
            }
            (q, a.dims.clone())
        };
        let w_scales: Vec<Dyadic> = if scales.is_empty() {
            vec![Dyadic { exp: pow2_attr(op, "B_scale")?.unwrap_or(0), den: 1 }]
        } else {
            scales
        };
        // The bias as 16-bit integers at scale s_in * s_c.
        let bias = match input(2).filter(|_| kind != OpKind::MatMul) {
            Some(b) => {
                let a = self.float_of(b)?;
                let vals = a.to_f64()?;
                let per = per_channel(&a.dims, Some(a.dims.len().saturating_sub(1)), w_scales.len(), &node)?;
                let mut q = Vec::with_capacity(vals.len());
                for (i, x) in vals.iter().enumerate() {
                    let s = 2f64.powi(in_exp) * w_scales[per(i)].value();
                    let r = round_half_up(x / s);
                    if r < INT16.0 || r > INT16.1 {
                        sat += 1;
                    }
                    q.push(r.clamp(INT16.0, INT16.1));
                }
                Some(f64s(a.dims.clone(), q)?)
            }
            None => None,
        };
        let xa = f64s(xd, xq)?;
        let wa = f64s(wd, wq)?;
        let mut args: Vec<Option<&Array>> = vec![Some(&xa), Some(&wa)];
        if let Some(b) = bias.as_ref() {
            args.push(Some(b));
        }
        let acc = eval_op(op, &args, self.opset)?
            .into_iter()
            .next()
            .ok_or_else(|| unsupported("no output".into()))?;
        let od = acc.dims.clone();
        let acc = acc.to_f64()?;
        // Output channel of each element: axis 1 of a Conv, the last axis of Gemm and MatMul.
        let ch_axis = if kind == OpKind::Conv { 1 } else { od.len().saturating_sub(1) };
        let per = per_channel(&od, Some(ch_axis), w_scales.len(), &node)?;
        let mut out = Vec::with_capacity(acc.len());
        for (i, a) in acc.iter().enumerate() {
            let d = w_scales[per(i)];
            let v = a * 2f64.powi(in_exp + d.exp - out_exp) / f64::from(d.den);
            let r = round_half_up(v);
            if r < INT8.0 || r > INT8.1 {
                sat += 1;
            }
            out.push(r.clamp(INT8.0, INT8.1));
        }
        Ok((out, od, sat))
    }
}

/// For a tensor of `dims`, a function from flat index to the index of its scale among `n`
/// scales along `axis` (one scale: always 0).
fn per_channel(
    dims: &[usize],
    axis: Option<usize>,
    n: usize,
    node: &str,
) -> Result<Box<dyn Fn(usize) -> usize>, FixedError> {
    if n == 1 {
        return Ok(Box::new(|_| 0));
    }
    let axis = axis.filter(|a| *a < dims.len() && dims[*a] == n).ok_or_else(|| FixedError::Unsupported {
        node: node.to_string(),
        reason: format!("{n} per-channel scales do not match the dims {dims:?}"),
    })?;
    let inner: usize = dims[axis + 1..].iter().product::<usize>().max(1);
    Ok(Box::new(move |i| (i / inner) % n))
}

/// `10 log10(signal / noise)` of `fixed` against `reference`, and the maximum absolute error.
pub fn snr(reference: &[f64], fixed: &[f64]) -> (f64, f64) {
    let (mut sig, mut noise, mut max) = (0.0, 0.0, 0.0f64);
    for (r, f) in reference.iter().zip(fixed) {
        sig += r * r;
        let e = r - f;
        noise += e * e;
        max = max.max(e.abs());
    }
    let db = if noise == 0.0 {
        f64::INFINITY
    } else if sig == 0.0 {
        f64::NEG_INFINITY
    } else {
        10.0 * (sig / noise).log10()
    };
    (db, max)
}

/// Simulates `model` (an ACCESS fixed-point model, its attributes inline or as node metadata)
/// on `inputs` for `target` (see the module doc).
pub fn simulate(
    model: &Model,
    target: &Target,
    inputs: &[(String, Array)],
) -> Result<Simulation, FixedError> {
    let lifted;
    let model = if super::has_metadata_form(model) {
        let mut m = model.clone();
        super::lift_metadata(&mut m)?;
        lifted = m;
        &lifted
    } else {
        model
    };
    let g = &model.graph;
    if !g.ops().any(|(_, op)| has_scales(op)) {
        return Err(FixedError::NoAccessAttributes);
    }
    let order: Vec<OpId> = g.topo_order().map_err(|c| {
        FixedError::Eval(EvalError::Cycle { ops: c.iter().map(|&o| g.op_label(o)).collect() })
    })?;
    if let Some((_, op)) = g.ops().find(|(_, op)| crate::rewrite::subgraphs(op).next().is_some()) {
        return Err(FixedError::Unsupported {
            node: op.display_name(0),
            reason: "ops with subgraphs (If, Loop, Scan) are not simulated".into(),
        });
    }
    let flt = crate::eval::run_graph_all(model, inputs)?;
    let mut run = Run { model, target, opset: model.onnx_opset(), flt, fx: vec![None; g.value_count()] };
    let mut layers = Vec::new();
    for id in order {
        let op = g.op(id);
        let Some(y) = op.outputs().first().copied().flatten() else { continue };
        let on_dla = !target.entries_for(op).is_empty();
        let out_exp = pow2_attr(op, "output_scale")?;
        let data: Vec<ValueId> = super::data_inputs(op);
        // A float input that the op quantizes at its `input_scale` (a graph input or a CPU op's
        // output read by an op that keeps its scale) counts as an integer input at that scale.
        let int_input = data
            .iter()
            .find_map(|v| match run.fx[v.index()].as_ref() {
                Some(Fx::Int { exp, .. }) => Some(*exp),
                _ => None,
            })
            .or(if on_dla { pow2_attr(op, "input_scale")? } else { None });
        let keeps = !target.may_change_scale(op);
        let mac = matches!(op.kind(), OpKind::Conv | OpKind::Gemm | OpKind::MatMul);
        let mut sat = 0;
        let result: Option<(Vec<f64>, Vec<usize>, i32)> = if !on_dla {
            None
        } else if mac {
            let in_exp = match pow2_attr(op, "input_scale")? {
                Some(e) => Some(e),
                None => pow2_attr(op, "A_scale")?,
            };
            match (in_exp, out_exp) {
                (Some(i), Some(o)) => {
                    let (q, d, s) = run.mac_layer(op, i, o)?;
                    sat += s;
                    Some((q, d, o))
                }
                _ => None,
            }
        } else {
            match out_exp.or(if keeps { int_input } else { None }) {
                Some(o) if out_exp.is_some() || int_input.is_some() => {
                    let (q, d, s) = run.requantizing_op(op, o)?;
                    sat += s;
                    Some((q, d, o))
                }
                _ => None,
            }
        };
        let placement = if result.is_some() { Placement::Integer } else { Placement::Float };
        match result {
            Some((q, dims, exp)) => run.fx[y.index()] = Some(Fx::Int { q, dims, exp }),
            None => {
                let outs = run.float_op(op)?;
                for (i, (slot, a)) in op.outputs().iter().zip(outs).enumerate() {
                    let Some(v) = slot else { continue };
                    // A CPU op with an `output_scale` writes its output for the DLA: 8 bits at
                    // that scale.
                    run.fx[v.index()] = match out_exp {
                        Some(e) if i == 0 && !on_dla => {
                            let (q, s) = quantize(&a.to_f64()?, e, INT8);
                            sat += s;
                            Some(Fx::Int { q, dims: a.dims.clone(), exp: e })
                        }
                        _ => Some(Fx::Float(a)),
                    };
                }
            }
        }
        let reference = run.float_of(y)?.clone();
        let fixed = run.dequantized(y)?;
        let (snr_db, max_abs_error) = match (reference.to_f64(), fixed.to_f64()) {
            (Ok(r), Ok(f)) if r.len() == f.len() => snr(&r, &f),
            _ => (f64::NAN, f64::NAN),
        };
        let scale = match run.fx[y.index()].as_ref() {
            Some(Fx::Int { exp, .. }) => Some(2f64.powi(*exp)),
            _ => None,
        };
        layers.push(LayerError {
            node: g.op_label(id),
            op_type: op.op_type().to_string(),
            output: g.value(y).name.clone(),
            placement,
            scale,
            snr_db,
            max_abs_error,
            saturated: sat,
            values: reference.len(),
        });
    }
    let mut values: Vec<Option<Array>> = vec![None; g.value_count()];
    for (i, slot) in values.iter_mut().enumerate() {
        if run.fx[i].is_some() {
            *slot = Some(run.dequantized(ValueId::from_index(i))?);
        }
    }
    let mut outputs = Vec::new();
    let mut reference = Vec::new();
    for &v in &g.outputs {
        let name = g.value(v).name.clone();
        outputs.push((name.clone(), run.dequantized(v)?));
        reference.push((name, run.float_of(v)?.clone()));
    }
    Ok(Simulation { outputs, reference, layers, values })
}
