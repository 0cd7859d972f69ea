//! Recurrent layers: `LSTM`, `GRU`, `RNN` (ONNX, every form: directions forward, reverse and
//! bidirectional, `layout` 0 and 1, optional `B`, `sequence_lens`, `initial_h`/`initial_c`,
//! LSTM peepholes `P` and `input_forget`, GRU `linear_before_reset`, `clip`, and the
//! `activations` list with `activation_alpha`/`activation_beta`), and onnxruntime's
//! `com.microsoft.DynamicQuantizeLSTM`.
//!
//! Gates follow ONNX: LSTM `i, o, f, c` (peepholes `i, o, f`), GRU `z, r, h`, RNN one gate; `B`
//! holds the input biases then the recurrent biases. `clip` bounds every activation's input.
//! An entry of a batch runs for its `sequence_lens` steps (reverse directions start at its last
//! valid step); `Y` is zero past them and `Y_h`/`Y_c` hold the state after them.
//!
//! Activation parameters are consumed in the order of the activations, each activation taking
//! an alpha (and a beta) only when it has one, as onnxruntime does; missing ones take the
//! defaults of the corresponding ONNX operators, as the ONNX definition says (`Affine` 1 and 0,
//! `LeakyRelu` 0.01, `ThresholdedRelu` 1, `ScaledTanh` 1 and 1, `HardSigmoid` 0.2 and 0.5, `Elu`
//! 1; onnxruntime takes 0 for those of `Affine`, `ThresholdedRelu` and `ScaledTanh`).
//!
//! `DynamicQuantizeLSTM` takes `W` as `[num_directions, input_size, 4*hidden]` and `R` as
//! `[num_directions, hidden, 4*hidden]`, quantized (int8/uint8) with a scale and zero point per
//! direction (`[num_directions]`) or per column (`[num_directions, 4*hidden]`). The evaluator
//! dequantizes them and runs the LSTM in floating point: it is the float reference of the op,
//! without the dynamic 8-bit rounding of `X` and `H` that onnxruntime applies in its matrix
//! products.
//!
//! Everything is computed in `f64` and rounded once to the type of `X`.

use qc_ir::{Op, OpKind};

use super::array::{Array, alloc_count};
use super::{EvalError, Ins, a_floats, a_int, a_str};

/// The cell a layer repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cell {
    Rnn,
    Gru { linear_before_reset: bool },
    Lstm { input_forget: bool },
}

impl Cell {
    fn gates(self) -> usize {
        match self {
            Cell::Rnn => 1,
            Cell::Gru { .. } => 3,
            Cell::Lstm { .. } => 4,
        }
    }

    /// Activations per direction and their defaults.
    fn default_activations(self) -> &'static [&'static str] {
        match self {
            Cell::Rnn => &["Tanh"],
            Cell::Gru { .. } => &["Sigmoid", "Tanh"],
            Cell::Lstm { .. } => &["Sigmoid", "Tanh", "Tanh"],
        }
    }
}

/// One activation function with its parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Act {
    Relu,
    Tanh,
    Sigmoid,
    Affine(f64, f64),
    LeakyRelu(f64),
    ThresholdedRelu(f64),
    ScaledTanh(f64, f64),
    HardSigmoid(f64, f64),
    Elu(f64),
    Softsign,
    Softplus,
}

impl Act {
    fn apply(self, x: f64) -> f64 {
        match self {
            Act::Relu => x.max(0.0),
            Act::Tanh => x.tanh(),
            Act::Sigmoid => {
                if x >= 0.0 {
                    1.0 / (1.0 + (-x).exp())
                } else {
                    x.exp() / (1.0 + x.exp())
                }
            }
            Act::Affine(a, b) => a * x + b,
            Act::LeakyRelu(a) => {
                if x >= 0.0 {
                    x
                } else {
                    a * x
                }
            }
            Act::ThresholdedRelu(a) => {
                if x > a {
                    x
                } else {
                    0.0
                }
            }
            Act::ScaledTanh(a, b) => a * (b * x).tanh(),
            Act::HardSigmoid(a, b) => (a * x + b).clamp(0.0, 1.0),
            Act::Elu(a) => {
                if x >= 0.0 {
                    x
                } else {
                    a * (x.exp() - 1.0)
                }
            }
            Act::Softsign => x / (1.0 + x.abs()),
            Act::Softplus => {
                // ln(1 + e^x) without overflow.
                if x > 0.0 { x + (-x).exp().ln_1p() } else { x.exp().ln_1p() }
            }
        }
    }
}

/// The activations of `op`, `per_dir` for each of `nd` directions.
fn activations(op: &Op, cell: Cell, nd: usize) -> Result<Vec<Act>, EvalError> {
    let names: Vec<String> = match op.attr("activations").map(|a| &a.value) {
        None => cell.default_activations().iter().map(|s| s.to_string()).collect(),
        Some(qc_ir::AttrValue::Strings(v)) => {
            v.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect()
        }
        Some(_) => return Err(EvalError::attr("`activations` must be strings")),
    };
    let per_dir = cell.default_activations().len();
    let names = if names.len() == per_dir && nd == 2 {
        names.iter().chain(&names).cloned().collect()
    } else if names.len() == per_dir * nd {
        names
    } else {
        return Err(EvalError::attr(format!(
            "`activations` has {} entries; {} directions need {}",
            names.len(),
            nd,
            per_dir * nd
        )));
    };
    let alphas = a_floats(op, "activation_alpha")?.unwrap_or_default();
    let betas = a_floats(op, "activation_beta")?.unwrap_or_default();
    let (mut ai, mut bi) = (alphas.iter(), betas.iter());
    let mut alpha = |d: f64| ai.next().map_or(d, |&a| f64::from(a));
    let mut beta = |d: f64| bi.next().map_or(d, |&b| f64::from(b));
    names
        .iter()
        .map(|n| {
            Ok(match n.to_ascii_lowercase().as_str() {
                "relu" => Act::Relu,
                "tanh" => Act::Tanh,
                "sigmoid" => Act::Sigmoid,
                "affine" => Act::Affine(alpha(1.0), beta(0.0)),
                "leakyrelu" => Act::LeakyRelu(alpha(0.01)),
                "thresholdedrelu" => Act::ThresholdedRelu(alpha(1.0)),
                "scaledtanh" => Act::ScaledTanh(alpha(1.0), beta(1.0)),
                "hardsigmoid" => Act::HardSigmoid(alpha(0.2), beta(0.5)),
                "elu" => Act::Elu(alpha(1.0)),
                "softsign" => Act::Softsign,
                "softplus" => Act::Softplus,
                other => return Err(EvalError::attr(format!("unknown activation `{other}`"))),
            })
        })
        .collect()
}

/// Weights in ONNX's layout: `w[d][g*H + k][i]`, `r[d][g*H + k][j]`, biases `b[d][2*G*H]`,
/// peepholes `p[d][3*H]`.
struct Weights {
    w: Vec<f64>,
    r: Vec<f64>,
    b: Vec<f64>,
    p: Vec<f64>,
}

/// The sizes of one layer.
#[derive(Clone, Copy)]
struct Sizes {
    seq: usize,
    batch: usize,
    input: usize,
    hidden: usize,
    nd: usize,
    layout1: bool,
}

fn check_dims(a: &Array, want: &[usize], what: &str) -> Result<(), EvalError> {
    if a.dims != want {
        return Err(EvalError::shape(format!("{what} has dims {:?}, expected {want:?}", a.dims)));
    }
    Ok(())
}

fn mul(a: usize, b: usize) -> Result<usize, EvalError> {
    a.checked_mul(b).ok_or_else(|| EvalError::shape("the layer's dims overflow"))
}

/// Number of directions and whether direction `d` runs in reverse.
fn directions(op: &Op) -> Result<(usize, [bool; 2]), EvalError> {
    match a_str(op, "direction", "forward")?.as_str() {
        "forward" => Ok((1, [false, false])),
        "reverse" => Ok((1, [true, false])),
        "bidirectional" => Ok((2, [false, true])),
        other => Err(EvalError::attr(format!("unknown direction `{other}`"))),
    }
}

/// The sizes from `X`'s dims, `hidden` and the directions.
fn sizes(x: &Array, hidden: usize, nd: usize, layout1: bool) -> Result<Sizes, EvalError> {
    let [a, b, input] = x.dims[..] else {
        return Err(EvalError::shape(format!("X must be 3-D, it has dims {:?}", x.dims)));
    };
    let (seq, batch) = if layout1 { (b, a) } else { (a, b) };
    Ok(Sizes { seq, batch, input, hidden, nd, layout1 })
}

/// `hidden_size`, or the size `R` implies.
fn hidden_size(op: &Op, from_r: usize) -> Result<usize, EvalError> {
    match a_int(op, "hidden_size", -1)? {
        -1 => Ok(from_r),
        h => usize::try_from(h).map_err(|_| EvalError::attr(format!("hidden_size {h} is negative"))),
    }
}

/// Runs the layer; returns `Y`, `Y_h` and (LSTM) `Y_c` in `X`'s type.
fn run(
    op: &Op,
    cell: Cell,
    x: &Array,
    s: Sizes,
    wts: &Weights,
    ins: &Ins<'_>,
) -> Result<Vec<Array>, EvalError> {
    let Sizes { seq, batch, input, hidden: h, nd, layout1 } = s;
    let g = cell.gates();
    let gh = mul(g, h)?;
    let (_, reverse) = directions(op)?;
    let acts = activations(op, cell, nd)?;
    let per_dir = cell.default_activations().len();
    let clip = match op.attr("clip") {
        Some(_) => match f64::from(op.attr_float("clip", 0.0)?) {
            c if c >= 0.0 => Some(c),
            c => return Err(EvalError::attr(format!("clip {c} is not a non-negative threshold"))),
        },
        None => None,
    };
    let clipped = |v: f64| clip.map_or(v, |c| v.clamp(-c, c));
    // Optional inputs: sequence_lens (4), initial_h (5), initial_c (6).
    let state_dims = if layout1 { vec![batch, nd, h] } else { vec![nd, batch, h] };
    let lens: Vec<usize> = match ins.opt(4) {
        None => vec![seq; batch],
        Some(l) => {
            check_dims(l, &[batch], "sequence_lens")?;
            l.to_i64s()?
                .iter()
                .map(|&v| {
                    usize::try_from(v)
                        .ok()
                        .filter(|&v| v <= seq)
                        .ok_or_else(|| EvalError::shape(format!("sequence length {v} is outside [0, {seq}]")))
                })
                .collect::<Result<_, _>>()?
        }
    };
    let state = |i: usize, what: &str| -> Result<Option<Vec<f64>>, EvalError> {
        match ins.opt(i) {
            None => Ok(None),
            Some(a) => {
                check_dims(a, &state_dims, what)?;
                Ok(Some(a.to_f64()?))
            }
        }
    };
    let h0 = state(5, "initial_h")?;
    let c0 = if matches!(cell, Cell::Lstm { .. }) { state(6, "initial_c")? } else { None };
    let state_at = |d: usize, b: usize| if layout1 { (b * nd + d) * h } else { (d * batch + b) * h };
    let x_at = |t: usize, b: usize| if layout1 { (b * seq + t) * input } else { (t * batch + b) * input };
    let y_at = |t: usize, d: usize, b: usize| {
        if layout1 { ((b * seq + t) * nd + d) * h } else { ((t * nd + d) * batch + b) * h }
    };
    let xs = x.to_f64()?;
    let y_dims = if layout1 { vec![batch, seq, nd, h] } else { vec![seq, nd, batch, h] };
    let mut y = vec![0.0; alloc_count(&y_dims)?];
    let n_state = alloc_count(&state_dims)?;
    let mut yh = vec![0.0; n_state];
    let mut yc = vec![0.0; n_state];
    let mut pre = vec![0.0; gh];
    let mut rh = vec![0.0; gh];
    for d in 0..nd {
        let act = &acts[d * per_dir..(d + 1) * per_dir];
        let w = &wts.w[d * gh * input..(d + 1) * gh * input];
        let r = &wts.r[d * gh * h..(d + 1) * gh * h];
        let (wb, rb) = (&wts.b[2 * d * gh..(2 * d + 1) * gh], &wts.b[(2 * d + 1) * gh..(2 * d + 2) * gh]);
        let p = &wts.p[d * 3 * h..(d + 1) * 3 * h];
        for (b, &len) in lens.iter().enumerate() {
            let at = state_at(d, b);
            let mut hs: Vec<f64> = h0.as_ref().map_or(vec![0.0; h], |v| v[at..at + h].to_vec());
            let mut cs: Vec<f64> = c0.as_ref().map_or(vec![0.0; h], |v| v[at..at + h].to_vec());
            for step in 0..len {
                let t = if reverse[d] { len - 1 - step } else { step };
                let xt = &xs[x_at(t, b)..x_at(t, b) + input];
                for j in 0..gh {
                    let wj = &w[j * input..(j + 1) * input];
                    pre[j] = wb[j] + wj.iter().zip(xt).map(|(a, b)| a * b).sum::<f64>();
                    let rj = &r[j * h..(j + 1) * h];
                    rh[j] = rj.iter().zip(&hs).map(|(a, b)| a * b).sum::<f64>();
                }
                match cell {
                    Cell::Rnn => {
                        for k in 0..h {
                            hs[k] = act[0].apply(clipped(pre[k] + rh[k] + rb[k]));
                        }
                    }
                    Cell::Gru { linear_before_reset } => {
                        let z: Vec<f64> =
                            (0..h).map(|k| act[0].apply(clipped(pre[k] + rh[k] + rb[k]))).collect();
                        let rg: Vec<f64> = (0..h)
                            .map(|k| act[0].apply(clipped(pre[h + k] + rh[h + k] + rb[h + k])))
                            .collect();
                        let hh: Vec<f64> = if linear_before_reset {
                            (0..h)
                                .map(|k| {
                                    act[1].apply(clipped(
                                        pre[2 * h + k] + rg[k] * (rh[2 * h + k] + rb[2 * h + k]),
                                    ))
                                })
                                .collect()
                        } else {
                            let rhs: Vec<f64> = (0..h).map(|k| rg[k] * hs[k]).collect();
                            (0..h)
                                .map(|k| {
                                    let row = &r[(2 * h + k) * h..(2 * h + k + 1) * h];
                                    let v: f64 = row.iter().zip(&rhs).map(|(a, b)| a * b).sum();
                                    act[1].apply(clipped(pre[2 * h + k] + v + rb[2 * h + k]))
                                })
                                .collect()
                        };
                        for k in 0..h {
                            hs[k] = (1.0 - z[k]) * hh[k] + z[k] * hs[k];
                        }
                    }
                    Cell::Lstm { input_forget } => {
                        for k in 0..h {
                            let gate = |q: usize| pre[q * h + k] + rh[q * h + k] + rb[q * h + k];
                            let i = act[0].apply(clipped(gate(0) + p[k] * cs[k]));
                            let f = if input_forget {
                                1.0 - i
                            } else {
                                act[0].apply(clipped(gate(2) + p[2 * h + k] * cs[k]))
                            };
                            let cc = act[1].apply(clipped(gate(3)));
                            cs[k] = f * cs[k] + i * cc;
                            let o = act[0].apply(clipped(gate(1) + p[h + k] * cs[k]));
                            hs[k] = o * act[2].apply(cs[k]);
                        }
                    }
                }
                let at = y_at(t, d, b);
                y[at..at + h].copy_from_slice(&hs);
            }
            yh[at..at + h].copy_from_slice(&hs);
            yc[at..at + h].copy_from_slice(&cs);
        }
    }
    let mut out =
        vec![Array::from_f64s(x.elem, y_dims, y)?, Array::from_f64s(x.elem, state_dims.clone(), yh)?];
    if matches!(cell, Cell::Lstm { .. }) {
        out.push(Array::from_f64s(x.elem, state_dims, yc)?);
    }
    Ok(out)
}

/// `B` and `P` (zeros when absent), checked.
fn bias_peep(
    ins: &Ins<'_>,
    nd: usize,
    gh: usize,
    h: usize,
    peep: bool,
) -> Result<(Vec<f64>, Vec<f64>), EvalError> {
    let b = match ins.opt(3) {
        Some(b) => {
            check_dims(b, &[nd, mul(2, gh)?], "B")?;
            b.to_f64()?
        }
        None => vec![0.0; mul(mul(2, gh)?, nd)?],
    };
    let p = match ins.opt(7).filter(|_| peep) {
        Some(p) => {
            check_dims(p, &[nd, mul(3, h)?], "P")?;
            p.to_f64()?
        }
        None => vec![0.0; mul(mul(3, h)?, nd)?],
    };
    Ok((b, p))
}

fn check_float(x: &Array) -> Result<(), EvalError> {
    if x.domain()? != super::Domain::Float {
        return Err(EvalError::type_mismatch(format!("X must be floating point, found {}", x.elem)));
    }
    Ok(())
}

/// `LSTM`, `GRU` and `RNN` of the default domain; `None` for other ops.
pub(crate) fn eval(op: &Op, x: &Ins<'_>, _opset: i64) -> Result<Option<Vec<Array>>, EvalError> {
    let cell = match op.kind() {
        OpKind::Rnn => Cell::Rnn,
        OpKind::Gru => Cell::Gru { linear_before_reset: a_int(op, "linear_before_reset", 0)? != 0 },
        OpKind::Lstm => Cell::Lstm { input_forget: a_int(op, "input_forget", 0)? != 0 },
        _ => return Ok(None),
    };
    let xa = x.get(0)?;
    check_float(xa)?;
    let (w, r) = (x.get(1)?, x.get(2)?);
    let (nd, _) = directions(op)?;
    let g = cell.gates();
    if r.rank() != 3 {
        return Err(EvalError::shape(format!("R must be 3-D, it has dims {:?}", r.dims)));
    }
    let h = hidden_size(op, r.dims[2])?;
    let s = sizes(xa, h, nd, a_int(op, "layout", 0)? != 0)?;
    let gh = mul(g, h)?;
    check_dims(w, &[nd, gh, s.input], "W")?;
    check_dims(r, &[nd, gh, h], "R")?;
    let (b, p) = bias_peep(x, nd, gh, h, matches!(cell, Cell::Lstm { .. }))?;
    let wts = Weights { w: w.to_f64()?, r: r.to_f64()?, b, p };
    run(op, cell, xa, s, &wts, x).map(Some)
}

/// Dequantizes `q` (`[nd, rows, cols]`) with a scale and zero point per direction or per
/// column, and transposes it to `[nd, cols, rows]`.
fn dequantize_t(q: &Array, scale: &Array, zp: Option<&Array>, what: &str) -> Result<Vec<f64>, EvalError> {
    let [nd, rows, cols] = q.dims[..] else {
        return Err(EvalError::shape(format!("{what} must be 3-D, it has dims {:?}", q.dims)));
    };
    let per_col = if scale.dims == [nd] || scale.dims == [nd, 1] {
        false
    } else if scale.dims == [nd, cols] {
        true
    } else {
        return Err(EvalError::shape(format!(
            "{what}'s scale has dims {:?}; expected [{nd}] or [{nd}, {cols}]",
            scale.dims
        )));
    };
    let sv = scale.to_f64()?;
    let zv = match zp {
        Some(z) if z.len() == sv.len() => z.to_f64()?,
        Some(z) => {
            return Err(EvalError::shape(format!(
                "{what}'s zero point has dims {:?}, its scale {:?}",
                z.dims, scale.dims
            )));
        }
        None => vec![0.0; sv.len()],
    };
    let qv = q.to_f64()?;
    let mut out = vec![0.0; qv.len()];
    for d in 0..nd {
        for i in 0..rows {
            for j in 0..cols {
                let k = if per_col { d * cols + j } else { d };
                out[(d * cols + j) * rows + i] = (qv[(d * rows + i) * cols + j] - zv[k]) * sv[k];
            }
        }
    }
    Ok(out)
}

/// onnxruntime's contrib ops handled here (`com.microsoft.DynamicQuantizeLSTM`); `None` for
/// others.
pub(crate) fn eval_contrib(op: &Op, x: &Ins<'_>, _opset: i64) -> Result<Option<Vec<Array>>, EvalError> {
    if op.kind() != OpKind::DynamicQuantizeLstm {
        return Ok(None);
    }
    let cell = Cell::Lstm { input_forget: a_int(op, "input_forget", 0)? != 0 };
    let xa = x.get(0)?;
    check_float(xa)?;
    let (w, r) = (x.get(1)?, x.get(2)?);
    let (nd, _) = directions(op)?;
    if r.rank() != 3 {
        return Err(EvalError::shape(format!("R must be 3-D, it has dims {:?}", r.dims)));
    }
    let h = hidden_size(op, r.dims[1])?;
    let s = sizes(xa, h, nd, false)?;
    let gh = mul(4, h)?;
    check_dims(w, &[nd, s.input, gh], "W")?;
    check_dims(r, &[nd, h, gh], "R")?;
    let (b, p) = bias_peep(x, nd, gh, h, true)?;
    let wd = dequantize_t(w, x.get(8)?, x.opt(9), "W")?;
    let rd = dequantize_t(r, x.get(10)?, x.opt(11), "R")?;
    let wts = Weights { w: wd, r: rd, b, p };
    run(op, cell, xa, s, &wts, x).map(Some)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use qc_ir::{AttrValue, ElemType, Op};

    use super::super::shape_ops::transpose;
    use super::super::{Array, EvalError, eval_op};

    /// Deterministic values in [-1, 1).
    fn seq(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn arr(dims: &[usize], seed: u64) -> Array {
        Array::from_f32(dims.to_vec(), seq(dims.iter().product(), seed)).unwrap()
    }

    fn op(ty: &str, attrs: &[(&str, AttrValue)]) -> Op {
        attrs.iter().fold(Op::new(ty, None), |o, (n, v)| o.with_attr(n, v.clone()))
    }

    fn s(v: &str) -> AttrValue {
        AttrValue::String(Bytes::from(v.to_string()))
    }

    fn run(o: &Op, ins: &[Option<&Array>]) -> Result<Vec<Array>, EvalError> {
        eval_op(o, ins, 22)
    }

    fn f(a: &Array) -> Vec<f64> {
        a.to_f64().unwrap()
    }

    /// Concatenates arrays along axis 0 (the direction axis of weights).
    fn cat0(a: &Array, b: &Array) -> Array {
        let mut dims = a.dims.clone();
        dims[0] += b.dims[0];
        Array::concat_data(a.elem, dims, &[a, b]).unwrap()
    }

    /// Reverses axis 0 (time, in layout 0).
    fn reverse_time(a: &Array) -> Array {
        let n = a.dims[0];
        let inner = a.len() / n;
        let idx: Vec<usize> = (0..n).rev().flat_map(|t| t * inner..(t + 1) * inner).collect();
        a.gather_flat(a.dims.clone(), &idx).unwrap()
    }

    #[test]
    fn bidirectional_lstm_is_forward_and_reverse_side_by_side() {
        let (t, b, i, h) = (4, 2, 3, 5);
        let x = arr(&[t, b, i], 1);
        let (w1, w2) = (arr(&[1, 4 * h, i], 2), arr(&[1, 4 * h, i], 3));
        let (r1, r2) = (arr(&[1, 4 * h, h], 4), arr(&[1, 4 * h, h], 5));
        let (b1, b2) = (arr(&[1, 8 * h], 6), arr(&[1, 8 * h], 7));
        let (p1, p2) = (arr(&[1, 3 * h], 8), arr(&[1, 3 * h], 9));
        let hs = AttrValue::Int(h as i64);
        let fwd = run(
            &op("LSTM", &[("hidden_size", hs.clone())]),
            &[Some(&x), Some(&w1), Some(&r1), Some(&b1), None, None, None, Some(&p1)],
        )
        .unwrap();
        let rev = run(
            &op("LSTM", &[("hidden_size", hs.clone()), ("direction", s("reverse"))]),
            &[Some(&x), Some(&w2), Some(&r2), Some(&b2), None, None, None, Some(&p2)],
        )
        .unwrap();
        let (w, r, bb, p) = (cat0(&w1, &w2), cat0(&r1, &r2), cat0(&b1, &b2), cat0(&p1, &p2));
        let both = run(
            &op("LSTM", &[("hidden_size", hs), ("direction", s("bidirectional"))]),
            &[Some(&x), Some(&w), Some(&r), Some(&bb), None, None, None, Some(&p)],
        )
        .unwrap();
        assert_eq!(both[0].dims, vec![t, 2, b, h]);
        let y = f(&both[0]);
        let (yf, yr) = (f(&fwd[0]), f(&rev[0]));
        for step in 0..t {
            let row = b * h;
            assert_eq!(y[(step * 2) * row..(step * 2 + 1) * row], yf[step * row..(step + 1) * row]);
            assert_eq!(y[(step * 2 + 1) * row..(step * 2 + 2) * row], yr[step * row..(step + 1) * row]);
        }
        assert_eq!(f(&both[1]), [f(&fwd[1]), f(&rev[1])].concat());
        assert_eq!(f(&both[2]), [f(&fwd[2]), f(&rev[2])].concat());
    }

    #[test]
    fn reverse_gru_runs_the_reversed_sequence() {
        let (t, b, i, h) = (3, 2, 2, 3);
        let x = arr(&[t, b, i], 11);
        let (w, r, bias) = (arr(&[1, 3 * h, i], 12), arr(&[1, 3 * h, h], 13), arr(&[1, 6 * h], 14));
        let h0 = arr(&[1, b, h], 15);
        for lbr in [0, 1] {
            let attrs =
                |dir: &str| op("GRU", &[("linear_before_reset", AttrValue::Int(lbr)), ("direction", s(dir))]);
            let rev = run(&attrs("reverse"), &[Some(&x), Some(&w), Some(&r), Some(&bias), None, Some(&h0)])
                .unwrap();
            let xr = reverse_time(&x);
            let fwd = run(&attrs("forward"), &[Some(&xr), Some(&w), Some(&r), Some(&bias), None, Some(&h0)])
                .unwrap();
            assert_eq!(f(&rev[0]), f(&reverse_time(&fwd[0])), "linear_before_reset {lbr}");
            assert_eq!(f(&rev[1]), f(&fwd[1]));
        }
    }

    #[test]
    fn layout_1_is_layout_0_transposed() {
        let (t, b, i, h) = (3, 2, 4, 2);
        let x = arr(&[t, b, i], 21);
        let (w, r) = (arr(&[2, h, i], 22), arr(&[2, h, h], 23));
        let h0 = arr(&[2, b, h], 24);
        let dir = ("direction", s("bidirectional"));
        let l0 = run(
            &op("RNN", std::slice::from_ref(&dir)),
            &[Some(&x), Some(&w), Some(&r), None, None, Some(&h0)],
        )
        .unwrap();
        let x1 = transpose(&x, &[1, 0, 2]).unwrap();
        let h1 = transpose(&h0, &[1, 0, 2]).unwrap();
        let l1 = run(
            &op("RNN", &[dir, ("layout", AttrValue::Int(1))]),
            &[Some(&x1), Some(&w), Some(&r), None, None, Some(&h1)],
        )
        .unwrap();
        // Y: [t, nd, b, h] against [b, t, nd, h]; Y_h: [nd, b, h] against [b, nd, h].
        assert_eq!(f(&l1[0]), f(&transpose(&l0[0], &[2, 0, 1, 3]).unwrap()));
        assert_eq!(f(&l1[1]), f(&transpose(&l0[1], &[1, 0, 2]).unwrap()));
    }

    #[test]
    fn sequence_lens_stop_each_batch_entry() {
        let (t, b, i, h) = (3, 2, 2, 2);
        let x = arr(&[t, b, i], 31);
        let (w, r, bias) = (arr(&[1, 4 * h, i], 32), arr(&[1, 4 * h, h], 33), arr(&[1, 8 * h], 34));
        let lens = Array::new(ElemType::I32, vec![2], super::super::Data::I32(vec![3, 1])).unwrap();
        let out = run(&op("LSTM", &[]), &[Some(&x), Some(&w), Some(&r), Some(&bias), Some(&lens)]).unwrap();
        // Entry 1 alone, on its first step only.
        let x1 = x.gather_flat(vec![1, 1, i], &[2, 3]).unwrap();
        let one = run(&op("LSTM", &[]), &[Some(&x1), Some(&w), Some(&r), Some(&bias)]).unwrap();
        let y = f(&out[0]);
        // Y[t][0][b][h]: entry 1 is at offset h of each step.
        assert_eq!(y[h..2 * h], f(&one[0])[..]);
        assert!(y[b * h + h..b * h + 2 * h].iter().chain(&y[2 * b * h + h..]).all(|v| *v == 0.0));
        assert_eq!(f(&out[1])[h..], f(&one[1])[..]);
        assert_eq!(f(&out[2])[h..], f(&one[2])[..]);
    }

    #[test]
    fn activations_take_their_parameters_in_order_and_clip_bounds_their_inputs() {
        // One step, one unit: the pre-activation is w*x + wb + rb = -1.5*2 + 0 = -3.
        let x = Array::from_f32(vec![1, 1, 1], vec![2.0]).unwrap();
        let w = Array::from_f32(vec![1, 1, 1], vec![-1.5]).unwrap();
        let r = Array::from_f32(vec![1, 1, 1], vec![0.7]).unwrap();
        let y = |attrs: &[(&str, AttrValue)]| {
            f(&run(&op("RNN", attrs), &[Some(&x), Some(&w), Some(&r)]).unwrap()[1])[0] as f32
        };
        let acts =
            |names: &[&str]| AttrValue::Strings(names.iter().map(|n| Bytes::from(n.to_string())).collect());
        assert_eq!(y(&[]), (-3.0f64).tanh() as f32);
        assert_eq!(y(&[("activations", acts(&["LeakyRelu"]))]), -0.03);
        assert_eq!(
            y(&[("activations", acts(&["LeakyRelu"])), ("activation_alpha", AttrValue::Floats(vec![0.5]))]),
            -1.5
        );
        // HardSigmoid(alpha 0.25, beta 0.875): 0.25 * -3 + 0.875 = 0.125.
        let hs = [
            ("activations", acts(&["HardSigmoid"])),
            ("activation_alpha", AttrValue::Floats(vec![0.25])),
            ("activation_beta", AttrValue::Floats(vec![0.875])),
        ];
        assert_eq!(y(&hs), 0.125);
        assert_eq!(y(&[("clip", AttrValue::Float(1.0))]), (-1.0f64).tanh() as f32);
        assert_eq!(
            y(&[("activations", acts(&["Affine"])), ("activation_alpha", AttrValue::Floats(vec![2.0]))]),
            -6.0
        );
        let bad = run(&op("RNN", &[("activations", acts(&["Swish"]))]), &[Some(&x), Some(&w), Some(&r)]);
        assert!(matches!(bad, Err(EvalError::Attribute { .. })), "{bad:?}");
        for c in [-1.0, f32::NAN] {
            let bad = run(&op("RNN", &[("clip", AttrValue::Float(c))]), &[Some(&x), Some(&w), Some(&r)]);
            assert!(matches!(bad, Err(EvalError::Attribute { .. })), "clip {c}: {bad:?}");
        }
    }

    #[test]
    fn input_forget_couples_the_forget_gate_to_the_input_gate() {
        // With input_forget, f = 1 - i: the cell is a convex mix of its old value and c~.
        let (i, h) = (1, 1);
        let x = Array::from_f32(vec![1, 1, i], vec![0.5]).unwrap();
        let w = Array::from_f32(vec![1, 4 * h, i], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        let r = Array::from_f32(vec![1, 4 * h, h], vec![0.0; 4]).unwrap();
        let c0 = Array::from_f32(vec![1, 1, h], vec![0.25]).unwrap();
        let out = run(
            &op("LSTM", &[("input_forget", AttrValue::Int(1))]),
            &[Some(&x), Some(&w), Some(&r), None, None, None, Some(&c0)],
        )
        .unwrap();
        let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
        let (ig, og, cc) = (sig(0.5), sig(1.0), (2.0f64).tanh());
        let c = (1.0 - ig) * 0.25 + ig * cc;
        assert!((f(&out[2])[0] - c).abs() < 1e-7);
        assert!((f(&out[1])[0] - og * c.tanh()).abs() < 1e-7);
    }

    #[test]
    fn dynamic_quantize_lstm_is_the_lstm_of_its_dequantized_weights() {
        let (t, b, i, h) = (2, 1, 3, 2);
        let x = arr(&[t, b, i], 41);
        // W [1, input, 4h] and R [1, h, 4h] as int8, per-column scales, zero points.
        let wq: Vec<i8> = (0..i * 4 * h).map(|k| ((k as i64 * 37) % 100 - 50) as i8).collect();
        let rq: Vec<i8> = (0..h * 4 * h).map(|k| ((k as i64 * 53) % 90 - 45) as i8).collect();
        let wq = Array::new(ElemType::I8, vec![1, i, 4 * h], super::super::Data::I8(wq)).unwrap();
        let rq = Array::new(ElemType::I8, vec![1, h, 4 * h], super::super::Data::I8(rq)).unwrap();
        let ws: Vec<f32> = (0..4 * h).map(|k| 0.01 + 0.002 * k as f32).collect();
        let ws = Array::from_f32(vec![1, 4 * h], ws).unwrap();
        let wz = Array::new(ElemType::I8, vec![1, 4 * h], super::super::Data::I8(vec![3; 4 * h])).unwrap();
        let rs = Array::from_f32(vec![1], vec![0.02]).unwrap();
        let rz = Array::new(ElemType::I8, vec![1], super::super::Data::I8(vec![-2])).unwrap();
        let bias = arr(&[1, 8 * h], 42);
        let dq = Op::new("DynamicQuantizeLSTM", Some("com.microsoft".into()))
            .with_attr("hidden_size", AttrValue::Int(h as i64));
        let got = run(
            &dq,
            &[
                Some(&x),
                Some(&wq),
                Some(&rq),
                Some(&bias),
                None,
                None,
                None,
                None,
                Some(&ws),
                Some(&wz),
                Some(&rs),
                Some(&rz),
            ],
        )
        .unwrap();
        // The same weights dequantized by hand into ONNX's [1, 4h, input] and [1, 4h, h].
        let (wv, rv, wsv) = (f(&wq), f(&rq), f(&ws));
        let w: Vec<f32> = (0..4 * h)
            .flat_map(|j| (0..i).map(move |c| (j, c)))
            .map(|(j, c)| ((wv[c * 4 * h + j] - 3.0) * wsv[j]) as f32)
            .collect();
        let r: Vec<f32> = (0..4 * h)
            .flat_map(|j| (0..h).map(move |c| (j, c)))
            .map(|(j, c)| ((rv[c * 4 * h + j] + 2.0) * f64::from(0.02f32)) as f32)
            .collect();
        let w = Array::from_f32(vec![1, 4 * h, i], w).unwrap();
        let r = Array::from_f32(vec![1, 4 * h, h], r).unwrap();
        let want = run(&op("LSTM", &[]), &[Some(&x), Some(&w), Some(&r), Some(&bias)]).unwrap();
        for k in 0..3 {
            let (g, e) = (f(&got[k]), f(&want[k]));
            assert!(g.iter().zip(&e).all(|(a, b)| (a - b).abs() < 1e-6), "output {k}: {g:?} vs {e:?}");
        }
        // Wrong scale dims are an error naming them.
        let bad_scale = Array::from_f32(vec![3], vec![1.0; 3]).unwrap();
        let e = run(
            &dq,
            &[
                Some(&x),
                Some(&wq),
                Some(&rq),
                None,
                None,
                None,
                None,
                None,
                Some(&bad_scale),
                None,
                Some(&rs),
                None,
            ],
        );
        assert!(matches!(&e, Err(EvalError::Shape { msg, .. }) if msg.contains("scale")), "{e:?}");
    }

    #[test]
    fn weights_of_the_wrong_shape_are_errors() {
        let x = arr(&[2, 1, 3], 51);
        let w = arr(&[1, 8, 2], 52);
        let r = arr(&[1, 8, 2], 53);
        let e = run(&op("LSTM", &[]), &[Some(&x), Some(&w), Some(&r)]);
        assert!(matches!(&e, Err(EvalError::Shape { msg, .. }) if msg.starts_with("W has dims")), "{e:?}");
        let e = run(&op("GRU", &[("direction", s("sideways"))]), &[Some(&x), Some(&w), Some(&r)]);
        assert!(matches!(e, Err(EvalError::Attribute { .. })), "{e:?}");
    }
}
