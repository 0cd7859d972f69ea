//! Control flow: `If`, `Loop` and `Scan` (the opset-8 form with a batch axis and the opset-9+
//! form with scan axes and directions), run by calling their bodies through
//! [`Runner::run_body`] with the scope of the graph that holds the op, so a body reads any value
//! of the enclosing graphs by name.
//!
//! - `If` runs `then_branch` or `else_branch` (no inputs) and returns its outputs.
//! - `Loop` runs its body while the iteration number is below the trip count `M` (when given)
//!   and the condition holds (when `cond` is given); the body receives the iteration number,
//!   the condition and the loop-carried values, and returns the next condition, the next
//!   loop-carried values and the scan outputs, which are stacked along a new axis 0.
//! - `Scan` runs its body once per slice of the scanned inputs along their scan axes
//!   (`scan_input_axes`, reversed by `scan_input_directions`), carries the states, and stacks
//!   the scan outputs along `scan_output_axes` (in reverse order for `scan_output_directions`
//!   1). The opset-8 form has a batch axis 0 on every input and output, scans axis 1, reads
//!   `directions`, and stops each batch entry after its `sequence_lens` steps (later steps of
//!   its scan outputs are zeros).
//!
//! Sequence- and optional-typed values (`test_loop13_seq`) are not supported: a body that
//! declares one is an [`EvalError::Unsupported`] naming it.

use qc_ir::{AttrValue, ElemType, Graph, Op, OpKind, ValueType};

use super::array::{Array, MAX_ELEMENTS};
use super::graph::{Runner, Scope};
use super::shape_ops::transpose;
use super::{EvalError, Ins, a_int, a_ints, norm_axis};

/// Runs `op` if it is a control-flow op; `None` otherwise.
pub(crate) fn eval(
    op: &Op,
    x: &Ins<'_>,
    scope: &Scope<'_>,
    run: &Runner<'_>,
) -> Result<Option<Vec<Array>>, EvalError> {
    Ok(Some(match op.kind() {
        OpKind::If => run_if(op, x, scope, run)?,
        OpKind::Loop => run_loop(op, x, scope, run)?,
        OpKind::Scan if run.opset < 9 => run_scan8(op, x, scope, run)?,
        OpKind::Scan => run_scan(op, x, scope, run)?,
        _ => return Ok(None),
    }))
}

/// The body in graph attribute `name`, after checking that it holds only tensors.
fn body<'a>(op: &'a Op, name: &str) -> Result<&'a Graph, EvalError> {
    let g = match op.attr(name).map(|a| &a.value) {
        Some(AttrValue::Graph(g)) => g.as_ref(),
        Some(_) => return Err(EvalError::attr(format!("`{name}` must be a graph"))),
        None => return Err(EvalError::attr(format!("the body `{name}` is missing"))),
    };
    for &v in g.inputs.iter().chain(&g.outputs) {
        let val = g.value(v);
        if let Some(ValueType::Sequence(_) | ValueType::Optional(_) | ValueType::Map { .. }) =
            val.ty.as_ref().and_then(|t| t.ty.as_ref())
        {
            return Err(EvalError::unsupported(format!(
                "`{}` of body `{name}` is a sequence, optional or map; only tensors are evaluated",
                val.name
            )));
        }
    }
    Ok(g)
}

/// The one element of a condition as a bool.
fn truth(a: &Array, what: &str) -> Result<bool, EvalError> {
    match a.to_bool()?.as_slice() {
        [c] => Ok(*c),
        v => Err(EvalError::shape(format!("{what} must have one element, it has {}", v.len()))),
    }
}

/// Element `i` of `a` along `axis`, with that axis removed.
fn take(a: &Array, axis: usize, i: usize) -> Result<Array, EvalError> {
    let n = *a.dims.get(axis).ok_or_else(|| EvalError::shape(format!("no axis {axis} in {:?}", a.dims)))?;
    if i >= n {
        return Err(EvalError::shape(format!("index {i} is out of range for axis {axis} of {:?}", a.dims)));
    }
    let outer: usize = a.dims[..axis].iter().product();
    let inner: usize = a.dims[axis + 1..].iter().product();
    let mut idx = Vec::with_capacity(outer * inner);
    for o in 0..outer {
        let base = (o * n + i) * inner;
        idx.extend(base..base + inner);
    }
    let mut dims = a.dims.clone();
    dims.remove(axis);
    a.gather_flat(dims, &idx)
}

/// Stacks `parts` (equal types and dims) along a new axis `axis` (negative counts from the end of
/// the result); `empty` gives the result when there are no parts.
fn stack(
    parts: &[Array],
    axis: i64,
    empty: impl Fn() -> Result<Array, EvalError>,
) -> Result<Array, EvalError> {
    let Some(first) = parts.first() else { return empty() };
    if let Some(p) = parts.iter().find(|p| p.dims != first.dims || p.elem != first.elem) {
        return Err(EvalError::shape(format!(
            "scan outputs of different iterations differ: {} {:?} and {} {:?}",
            first.elem, first.dims, p.elem, p.dims
        )));
    }
    let rank = first.rank() + 1;
    let a = norm_axis(axis, rank)?;
    let mut dims = vec![parts.len()];
    dims.extend_from_slice(&first.dims);
    let refs: Vec<&Array> = parts.iter().collect();
    let all = Array::concat_data(first.elem, dims, &refs)?;
    if a == 0 {
        return Ok(all);
    }
    // Move axis 0 to position `a`.
    let mut perm: Vec<usize> = (1..rank).collect();
    perm.insert(a, 0);
    transpose(&all, &perm)
}

/// An empty scan output for body output `k` of `g` with `lead` leading zero-size axes: its
/// declared element type and rank (the evaluator's best knowledge when the body never ran).
fn empty_output(g: &Graph, k: usize, lead: usize) -> Result<Array, EvalError> {
    let ty = g.outputs.get(k).and_then(|&v| g.value(v).ty.as_ref()).and_then(|t| t.ty.as_ref());
    let (elem, rank) = match ty {
        Some(ValueType::Tensor { elem, shape }) => {
            (elem.unwrap_or(ElemType::F32), shape.as_ref().map_or(0, |s| s.dims.len()))
        }
        _ => (ElemType::F32, 0),
    };
    Array::zeros(elem, vec![0; lead + rank])
}

fn run_if(op: &Op, x: &Ins<'_>, scope: &Scope<'_>, run: &Runner<'_>) -> Result<Vec<Array>, EvalError> {
    let c = truth(x.get(0)?, "If's condition")?;
    let name = if c { "then_branch" } else { "else_branch" };
    let outs = run.run_body(body(op, name)?, Vec::new(), scope)?;
    let n = op.outputs().len();
    if outs.len() != n {
        return Err(EvalError::Arity {
            node: String::new(),
            msg: format!("`{name}` returns {} values for the op's {n} outputs", outs.len()),
        });
    }
    Ok(outs)
}

fn run_loop(op: &Op, x: &Ins<'_>, scope: &Scope<'_>, run: &Runner<'_>) -> Result<Vec<Array>, EvalError> {
    let g = body(op, "body")?;
    let n = x.len().checked_sub(2).ok_or_else(|| EvalError::Arity {
        node: String::new(),
        msg: "Loop needs the inputs M and cond (either may be empty)".into(),
    })?;
    if g.inputs.len() != n + 2 || g.outputs.len() < n + 1 {
        return Err(EvalError::Arity {
            node: String::new(),
            msg: format!(
                "the body has {} inputs and {} outputs; with {n} loop-carried values it needs {} inputs and at least {} outputs",
                g.inputs.len(),
                g.outputs.len(),
                n + 2,
                n + 1
            ),
        });
    }
    let trips = match x.opt(0) {
        Some(m) => match m.to_i64s()?.as_slice() {
            [m] => Some(*m),
            v => return Err(EvalError::shape(format!("M must have one element, it has {}", v.len()))),
        },
        None => None,
    };
    let mut cond = match x.opt(1) {
        Some(c) => Some(truth(c, "cond")?),
        None => None,
    };
    if trips.is_none() && cond.is_none() {
        return Err(EvalError::unsupported("Loop has neither a trip count nor a condition: it never ends"));
    }
    let mut carried: Vec<Array> = (0..n).map(|k| x.get(2 + k).cloned()).collect::<Result<_, _>>()?;
    let n_scan = g.outputs.len() - 1 - n;
    let mut scans: Vec<Vec<Array>> = vec![Vec::new(); n_scan];
    let mut i: i64 = 0;
    while trips.is_none_or(|m| i < m) && cond != Some(false) {
        if i as u64 >= MAX_ELEMENTS as u64 {
            return Err(EvalError::unsupported(format!("Loop runs more than {MAX_ELEMENTS} iterations")));
        }
        let mut ins =
            vec![Array::from_i64(vec![], vec![i])?, Array::from_bool(vec![], vec![cond.unwrap_or(true)])?];
        ins.append(&mut carried);
        let mut outs = run.run_body(g, ins, scope)?.into_iter();
        let c = outs.next().ok_or_else(|| EvalError::shape("the body returned no condition"))?;
        if cond.is_some() {
            cond = Some(truth(&c, "the body's condition")?);
        }
        carried = outs.by_ref().take(n).collect();
        for (k, a) in outs.enumerate() {
            scans[k].push(a);
        }
        i += 1;
    }
    let mut result = carried;
    for (k, parts) in scans.iter().enumerate() {
        result.push(stack(parts, 0, || empty_output(g, 1 + n + k, 1))?);
    }
    Ok(result)
}

/// The `k`th entry of an optional per-input attribute list (default 0).
fn entry(list: &Option<Vec<i64>>, k: usize, name: &str) -> Result<i64, EvalError> {
    match list {
        None => Ok(0),
        Some(v) => v.get(k).copied().ok_or_else(|| EvalError::attr(format!("`{name}` has no entry {k}"))),
    }
}

/// `num_scan_inputs`, checked against the op's `inputs` (after the leading ones).
fn scan_count(op: &Op, inputs: usize) -> Result<usize, EvalError> {
    let m = a_int(op, "num_scan_inputs", -1)?;
    match usize::try_from(m) {
        Ok(m) if m >= 1 && m <= inputs => Ok(m),
        _ => Err(EvalError::attr(format!("num_scan_inputs is {m}, but the op has {inputs} inputs to scan"))),
    }
}

/// A Scan body takes the `n` states and one slice of each of the `m` scanned inputs, and gives
/// at least the `n` states back.
fn check_scan_body(g: &qc_ir::Graph, n: usize, m: usize) -> Result<(), EvalError> {
    if g.inputs.len() != n + m || g.outputs.len() < n {
        return Err(EvalError::Arity {
            node: String::new(),
            msg: format!(
                "the body has {} inputs and {} outputs; with {n} states and {m} scanned inputs it needs {} inputs",
                g.inputs.len(),
                g.outputs.len(),
                n + m
            ),
        });
    }
    Ok(())
}

/// Scan, opset 9 and later.
fn run_scan(op: &Op, x: &Ins<'_>, scope: &Scope<'_>, run: &Runner<'_>) -> Result<Vec<Array>, EvalError> {
    let g = body(op, "body")?;
    let m = scan_count(op, x.len())?;
    let n = x.len() - m;
    check_scan_body(g, n, m)?;
    let k_out = g.outputs.len() - n;
    let (in_axes, in_dirs) = (a_ints(op, "scan_input_axes")?, a_ints(op, "scan_input_directions")?);
    let (out_axes, out_dirs) = (a_ints(op, "scan_output_axes")?, a_ints(op, "scan_output_directions")?);
    let mut scanned = Vec::with_capacity(m);
    let mut seq: Option<usize> = None;
    for j in 0..m {
        let a = x.get(n + j)?;
        let axis = norm_axis(entry(&in_axes, j, "scan_input_axes")?, a.rank())?;
        let len = a.dims[axis];
        if seq.is_some_and(|s| s != len) {
            return Err(EvalError::shape(format!(
                "scanned input {j} has {len} steps along its scan axis, an earlier one {}",
                seq.unwrap_or(0)
            )));
        }
        seq = Some(len);
        scanned.push((a, axis, entry(&in_dirs, j, "scan_input_directions")? != 0));
    }
    let seq = seq.unwrap_or(0);
    let mut states: Vec<Array> = (0..n).map(|k| x.get(k).cloned()).collect::<Result<_, _>>()?;
    let mut scans: Vec<Vec<Array>> = vec![Vec::new(); k_out];
    for t in 0..seq {
        let mut ins = std::mem::take(&mut states);
        for &(a, axis, reverse) in &scanned {
            ins.push(take(a, axis, if reverse { seq - 1 - t } else { t })?);
        }
        let mut outs = run.run_body(g, ins, scope)?.into_iter();
        states = outs.by_ref().take(n).collect();
        for (k, a) in outs.enumerate() {
            scans[k].push(a);
        }
    }
    let mut result = states;
    for (k, mut parts) in scans.into_iter().enumerate() {
        if entry(&out_dirs, k, "scan_output_directions")? != 0 {
            parts.reverse();
        }
        let axis = entry(&out_axes, k, "scan_output_axes")?;
        result.push(stack(&parts, axis, || empty_output(g, n + k, 1))?);
    }
    Ok(result)
}

/// Scan, opset 8: `sequence_lens` first, a batch axis 0 everywhere, the scan axis 1.
fn run_scan8(op: &Op, x: &Ins<'_>, scope: &Scope<'_>, run: &Runner<'_>) -> Result<Vec<Array>, EvalError> {
    let g = body(op, "body")?;
    let rest = x.len().saturating_sub(1);
    let m = scan_count(op, rest)?;
    let n = rest - m;
    check_scan_body(g, n, m)?;
    let k_out = g.outputs.len() - n;
    let dirs = a_ints(op, "directions")?;
    let mut batch: Option<usize> = None;
    let mut seq: Option<usize> = None;
    for i in 1..x.len() {
        let a = x.get(i)?;
        let scanned = i > n;
        if a.rank() < if scanned { 2 } else { 1 } {
            return Err(EvalError::shape(format!(
                "input {i} of rank {} has no batch (and scan) axis",
                a.rank()
            )));
        }
        if batch.is_some_and(|b| b != a.dims[0]) || (scanned && seq.is_some_and(|s| s != a.dims[1])) {
            return Err(EvalError::shape(format!(
                "input {i} {:?} disagrees with the others' batch or steps",
                a.dims
            )));
        }
        batch = Some(a.dims[0]);
        if scanned {
            seq = Some(a.dims[1]);
        }
    }
    let (batch, seq) = (batch.unwrap_or(0), seq.unwrap_or(0));
    let lens: Vec<usize> = match x.opt(0) {
        None => vec![seq; batch],
        Some(l) => {
            let v = l.to_i64s()?;
            if v.len() != batch {
                return Err(EvalError::shape(format!(
                    "sequence_lens has {} entries for a batch of {batch}",
                    v.len()
                )));
            }
            v.iter()
                .map(|&s| {
                    usize::try_from(s)
                        .ok()
                        .filter(|&s| s <= seq)
                        .ok_or_else(|| EvalError::shape(format!("sequence length {s} is outside [0, {seq}]")))
                })
                .collect::<Result<_, _>>()?
        }
    };
    let mut per_batch: Vec<Vec<Array>> = Vec::with_capacity(batch);
    for (b, &len) in lens.iter().enumerate() {
        let mut states: Vec<Array> = (0..n).map(|k| take(x.get(1 + k)?, 0, b)).collect::<Result<_, _>>()?;
        let scanned: Vec<(Array, bool)> = (0..m)
            .map(|j| Ok((take(x.get(1 + n + j)?, 0, b)?, entry(&dirs, j, "directions")? != 0)))
            .collect::<Result<_, EvalError>>()?;
        let mut scans: Vec<Vec<Array>> = vec![Vec::new(); k_out];
        for t in 0..len {
            let mut ins = std::mem::take(&mut states);
            for (a, reverse) in &scanned {
                ins.push(take(a, 0, if *reverse { len - 1 - t } else { t })?);
            }
            let mut outs = run.run_body(g, ins, scope)?.into_iter();
            states = outs.by_ref().take(n).collect();
            for (k, a) in outs.enumerate() {
                scans[k].push(a);
            }
        }
        let mut row = states;
        for (k, mut parts) in scans.into_iter().enumerate() {
            // Steps past this entry's length are zeros.
            if let Some(p) = parts.first() {
                let zero = Array::zeros(p.elem, p.dims.clone())?;
                parts.resize(seq, zero);
            }
            row.push(stack(&parts, 0, || empty_output(g, n + k, 1))?);
        }
        per_batch.push(row);
    }
    let count = n + k_out;
    (0..count)
        .map(|k| {
            let parts: Vec<Array> = per_batch.iter().map(|row| row[k].clone()).collect();
            stack(&parts, 0, || empty_output(g, k, if k < n { 1 } else { 2 }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use qc_ir::text::parse_model;

    use super::super::{Array, EvalError, run_graph};

    fn run(text: &str, inputs: Vec<(&str, Array)>) -> Result<Vec<Array>, EvalError> {
        let m = parse_model(text).unwrap_or_else(|e| panic!("{e:?}"));
        let inputs: Vec<(String, Array)> = inputs.into_iter().map(|(n, a)| (n.to_string(), a)).collect();
        Ok(run_graph(&m, &inputs)?.into_iter().map(|(_, a)| a).collect())
    }

    const NESTED: &str = r#"
opset_import "" 13
graph @g(%x: f32[N,3,4], %c: bool[]) -> (%hs: ?, %ys: ?) {
  init %m = i64[] int64s [2]
  init %first = i64[1] int64s [0]
  init %minus1 = i64[1] int64s [-1]
  %hs, %ys = ""::Loop(%m, _, %x) {
    body = graph @body(%i: i64[], %cond: bool[], %h: ?) -> (%cond_out: ?, %h_out: ?, %y: ?) {
      %cond_out = ""::Identity(%cond)
      %h_out = ""::Relu(%h)
      %y = ""::If(%c) {
        else_branch = graph @else() -> (%e: ?) {
          %e = ""::Flatten(%h) {axis = 1}
        },
        then_branch = graph @then() -> (%t: ?) {
          %s = ""::Shape(%x)
          %n = ""::Gather(%s, %first) {axis = 0}
          %shape = ""::Concat(%n, %minus1) {axis = 0}
          %t = ""::Reshape(%x, %shape)
        }
      }
    }
  }
}
"#;

    #[test]
    fn bodies_read_every_enclosing_graph() {
        // A Loop body holds an If whose branches read the main graph's %x and the body's %h.
        let xs: Vec<f32> = (0..24).map(|i| i as f32 - 12.0).collect();
        let x = Array::from_f32(vec![2, 3, 4], xs.clone()).unwrap();
        let relu: Vec<f64> = xs.iter().map(|&v| f64::from(v.max(0.0))).collect();
        let raw: Vec<f64> = xs.iter().map(|&v| f64::from(v)).collect();
        // else: the body's h, flattened: x on the first iteration, relu(x) on the second.
        let out = run(NESTED, vec![("x", x.clone()), ("c", Array::from_bool(vec![], vec![false]).unwrap())])
            .unwrap();
        assert_eq!(out[0].dims, vec![2, 3, 4]);
        assert_eq!(out[0].to_f64().unwrap(), relu);
        assert_eq!(out[1].dims, vec![2, 2, 12]);
        let ys = out[1].to_f64().unwrap();
        assert_eq!(ys[..24], raw[..]);
        assert_eq!(ys[24..], relu[..]);
        // then: the main graph's x, reshaped, on both iterations.
        let out = run(NESTED, vec![("x", x), ("c", Array::from_bool(vec![], vec![true]).unwrap())]).unwrap();
        let ys = out[1].to_f64().unwrap();
        assert_eq!(ys[..24], raw[..]);
        assert_eq!(ys[24..], raw[..]);
    }

    #[test]
    fn loop_stops_when_the_condition_fails() {
        let text = r#"
opset_import "" 13
graph @g(%c: bool[]) -> (%last: ?, %iters: ?) {
  init %m = i64[] int64s [10]
  init %zero = i64[] int64s [0]
  init %three = i64[] int64s [3]
  %last, %iters = ""::Loop(%m, %c, %zero) {
    body = graph @body(%i: i64[], %cond: bool[], %v: ?) -> (%cond_out: ?, %v_out: ?, %seen: ?) {
      %cond_out = ""::Less(%i, %three)
      %v_out = ""::Add(%v, %i)
      %seen = ""::Identity(%i)
    }
  }
}
"#;
        let yes = Array::from_bool(vec![], vec![true]).unwrap();
        let out = run(text, vec![("c", yes)]).unwrap();
        // Iterations 0..=3 run; the fourth returns false.
        assert_eq!(out[0].to_i64s().unwrap(), vec![6]);
        assert_eq!(out[1].dims, vec![4]);
        assert_eq!(out[1].to_i64s().unwrap(), vec![0, 1, 2, 3]);
        // A false condition runs nothing: the initial value, an empty scan output.
        let no = Array::from_bool(vec![], vec![false]).unwrap();
        let out = run(text, vec![("c", no)]).unwrap();
        assert_eq!(out[0].to_i64s().unwrap(), vec![0]);
        assert_eq!(out[1].len(), 0);
    }

    #[test]
    fn loop_without_trip_count_or_condition_is_an_error() {
        let text = r#"
opset_import "" 13
graph @g(%x: f32[1]) -> (%y: ?) {
  %y = ""::Loop(_, _, %x) {
    body = graph @body(%i: i64[], %cond: bool[], %v: ?) -> (%cond_out: ?, %v_out: ?) {
      %cond_out = ""::Identity(%cond)
      %v_out = ""::Identity(%v)
    }
  }
}
"#;
        let x = Array::from_f32(vec![1], vec![1.0]).unwrap();
        let e = run(text, vec![("x", x)]).unwrap_err();
        assert!(matches!(&e, EvalError::Unsupported { msg, .. } if msg.contains("never ends")), "{e}");
    }

    #[test]
    fn scan_follows_directions_and_output_axes() {
        let text = r#"
opset_import "" 13
graph @g(%s0: f32[2], %x: f32[3,2]) -> (%s: ?, %y: ?, %r: ?) {
  %s, %y, %r = ""::Scan(%s0, %x) {
    body = graph @body(%acc: f32[2], %xi: f32[2]) -> (%acc_out: ?, %y_i: ?, %r_i: ?) {
      %acc_out = ""::Add(%acc, %xi)
      %y_i = ""::Identity(%acc_out)
      %r_i = ""::Identity(%xi)
    },
    num_scan_inputs = 1,
    scan_input_directions = [1],
    scan_output_axes = [1, 0],
    scan_output_directions = [0, 1]
  }
}
"#;
        let s0 = Array::from_f32(vec![2], vec![0.0, 0.0]).unwrap();
        let x = Array::from_f32(vec![3, 2], vec![1., 2., 3., 4., 5., 6.]).unwrap();
        let out = run(text, vec![("s0", s0), ("x", x)]).unwrap();
        // Slices from the end: [5,6], [3,4], [1,2].
        assert_eq!(out[0].to_f64().unwrap(), vec![9., 12.]);
        assert_eq!(out[1].dims, vec![2, 3]);
        assert_eq!(out[1].to_f64().unwrap(), vec![5., 8., 9., 6., 10., 12.]);
        // The slices as read, stacked in reverse: the input as it was.
        assert_eq!(out[2].to_f64().unwrap(), vec![1., 2., 3., 4., 5., 6.]);
    }
}
