//! Data-movement ops: reshapes, transposes, concatenation, splitting, slicing, gathers, padding,
//! tiling, `Shape`/`Size`, constants, `Range`, `Trilu`, `Identity` and `Dropout`.
//!
//! Most are written as an index map (for each output element, the flat index of the input
//! element it copies) followed by [`Array::gather_flat`], so they work for every element type.

use qc_ir::{AttrValue, ElemType, Model, Op, OpKind};

use super::array::{Array, Data, alloc_count, numel};
use super::elementwise::{broadcast_shape, broadcast_to};
use super::{EvalError, Ins, a_float, a_int, a_ints, a_str, norm_axis};

/// Row-major strides of `dims`.
pub fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

/// Calls `f` with every multi-index of `dims` in row-major order.
pub fn for_each_index(dims: &[usize], mut f: impl FnMut(&[usize])) {
    if dims.contains(&0) {
        return;
    }
    let mut pos = vec![0usize; dims.len()];
    loop {
        f(&pos);
        let mut k = dims.len();
        loop {
            if k == 0 {
                return;
            }
            k -= 1;
            pos[k] += 1;
            if pos[k] < dims[k] {
                break;
            }
            pos[k] = 0;
        }
    }
}

/// Transposes `a` by `perm`.
pub fn transpose(a: &Array, perm: &[usize]) -> Result<Array, EvalError> {
    let r = a.rank();
    let mut seen = vec![false; r];
    if perm.len() != r || perm.iter().any(|&p| p >= r || std::mem::replace(&mut seen[p], true)) {
        return Err(EvalError::attr(format!("perm {perm:?} is not a permutation of rank {r}")));
    }
    let out: Vec<usize> = perm.iter().map(|&p| a.dims[p]).collect();
    let s = strides(&a.dims);
    let mut idx = Vec::with_capacity(a.len());
    for_each_index(&out, |pos| idx.push(pos.iter().zip(perm).map(|(&i, &p)| i * s[p]).sum()));
    a.gather_flat(out, &idx)
}

fn ints_input(x: &Ins<'_>, i: usize) -> Result<Option<Vec<i64>>, EvalError> {
    x.opt(i).map(Array::to_i64s).transpose()
}

fn to_dim(d: i64) -> Result<usize, EvalError> {
    usize::try_from(d).map_err(|_| EvalError::shape(format!("dimension {d} is negative")))
}

fn reshape(a: &Array, shape: &[i64], allowzero: bool) -> Result<Array, EvalError> {
    let mut out = Vec::with_capacity(shape.len());
    let mut infer = None;
    for (i, &s) in shape.iter().enumerate() {
        match s {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => {
                out.push(*a.dims.get(i).ok_or_else(|| EvalError::shape("0 in shape beyond the input rank"))?)
            }
            s => out.push(to_dim(s)?),
        }
    }
    if let Some(i) = infer {
        let known = numel(&out)?;
        if known == 0 || !a.len().is_multiple_of(known) {
            return Err(EvalError::shape(format!("cannot reshape {:?} to {shape:?}", a.dims)));
        }
        out[i] = a.len() / known;
    }
    if numel(&out)? != a.len() {
        return Err(EvalError::shape(format!("cannot reshape {:?} to {shape:?}", a.dims)));
    }
    a.reshaped(out)
}

fn concat(xs: &[&Array], axis: i64) -> Result<Array, EvalError> {
    let first = xs.first().ok_or_else(|| EvalError::shape("Concat of nothing"))?;
    let r = first.rank();
    let ax = norm_axis(axis, r)?;
    let mut dims = first.dims.clone();
    dims[ax] = 0;
    for a in xs {
        if a.rank() != r || a.dims.iter().enumerate().any(|(i, &d)| i != ax && d != first.dims[i]) {
            return Err(EvalError::shape("Concat inputs differ outside the axis"));
        }
        dims[ax] += a.dims[ax];
    }
    let outer: usize = first.dims[..ax].iter().product();
    let inner: usize = first.dims[ax + 1..].iter().product();
    let mut offsets = Vec::with_capacity(xs.len());
    let mut off = 0;
    for a in xs {
        offsets.push(off);
        off += a.len();
    }
    let mut idx = Vec::with_capacity(alloc_count(&dims)?);
    for o in 0..outer {
        for (a, &base) in xs.iter().zip(&offsets) {
            let chunk = a.dims[ax] * inner;
            idx.extend((0..chunk).map(|k| base + o * chunk + k));
        }
    }
    let all = Array::concat_data(first.elem, vec![off], xs)?;
    all.gather_flat(dims, &idx)
}

/// Slices `a` along `axis` to `[start, start+len)`.
fn slice_axis(a: &Array, axis: usize, start: usize, len: usize) -> Result<Array, EvalError> {
    let mut dims = a.dims.clone();
    dims[axis] = len;
    let outer: usize = a.dims[..axis].iter().product();
    let inner: usize = a.dims[axis + 1..].iter().product();
    let mut idx = Vec::with_capacity(outer * len * inner);
    for o in 0..outer {
        let base = o * a.dims[axis] * inner + start * inner;
        idx.extend(base..base + len * inner);
    }
    a.gather_flat(dims, &idx)
}

fn split(op: &Op, x: &Ins<'_>, opset: i64) -> Result<Vec<Array>, EvalError> {
    let a = x.get(0)?;
    let ax = norm_axis(a_int(op, "axis", 0)?, a.rank())?;
    let d = a.dims[ax];
    let n_out = op.outputs().len().max(1);
    let sizes: Vec<usize> = match if opset >= 13 { ints_input(x, 1)? } else { a_ints(op, "split")? } {
        Some(s) => s.into_iter().map(to_dim).collect::<Result<_, _>>()?,
        None => {
            let n = match a_int(op, "num_outputs", 0)? {
                0 => n_out,
                k => to_dim(k)?,
            };
            if n == 0 {
                return Err(EvalError::attr("Split into zero parts"));
            }
            if op.attr("num_outputs").is_some() {
                let c = d.div_ceil(n);
                (0..n).map(|i| c.min(d.saturating_sub(i * c))).collect()
            } else {
                if d % n != 0 {
                    return Err(EvalError::shape(format!(
                        "dimension {d} does not split into {n} equal parts"
                    )));
                }
                vec![d / n; n]
            }
        }
    };
    if sizes.iter().sum::<usize>() != d {
        return Err(EvalError::shape(format!("split sizes {sizes:?} do not add up to {d}")));
    }
    let mut out = Vec::new();
    let mut start = 0;
    for s in sizes {
        out.push(slice_axis(a, ax, start, s)?);
        start += s;
    }
    Ok(out)
}

fn slice(op: &Op, x: &Ins<'_>, opset: i64) -> Result<Array, EvalError> {
    let a = x.get(0)?;
    let r = a.rank();
    let (starts, ends, axes, steps) = if opset < 10 {
        (
            a_ints(op, "starts")?.unwrap_or_default(),
            a_ints(op, "ends")?.unwrap_or_default(),
            a_ints(op, "axes")?,
            None,
        )
    } else {
        (x.get(1)?.to_i64s()?, x.get(2)?.to_i64s()?, ints_input(x, 3)?, ints_input(x, 4)?)
    };
    let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
    if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err(EvalError::shape("Slice starts, ends, axes and steps differ in length"));
    }
    let mut st: Vec<i128> = vec![0; r];
    let mut sp: Vec<i128> = vec![1; r];
    let mut dims = a.dims.clone();
    for k in 0..starts.len() {
        let ax = norm_axis(axes[k], r)?;
        let d = a.dims[ax] as i128;
        let step = i128::from(steps[k]);
        if step == 0 {
            return Err(EvalError::attr("Slice step is 0"));
        }
        let adj = |v: i64| {
            let v = i128::from(v);
            if v < 0 { v + d } else { v }
        };
        let (s, e) = if step > 0 {
            (adj(starts[k]).clamp(0, d), adj(ends[k]).clamp(0, d))
        } else {
            (adj(starts[k]).clamp(0, (d - 1).max(0)), adj(ends[k]).clamp(-1, d - 1))
        };
        let len = if step > 0 {
            if e > s { (e - s + step - 1) / step } else { 0 }
        } else if s > e {
            (s - e + (-step) - 1) / (-step)
        } else {
            0
        };
        st[ax] = s;
        sp[ax] = step;
        dims[ax] = len as usize;
    }
    let s = strides(&a.dims);
    let mut idx = Vec::with_capacity(alloc_count(&dims)?);
    for_each_index(&dims, |pos| {
        let mut f = 0i128;
        for i in 0..r {
            f += (st[i] + pos[i] as i128 * sp[i]) * s[i] as i128;
        }
        idx.push(f as usize);
    });
    a.gather_flat(dims, &idx)
}

fn gather(a: &Array, ind: &Array, axis: i64) -> Result<Array, EvalError> {
    let ax = norm_axis(axis, a.rank())?;
    let d = a.dims[ax] as i64;
    let iv = ind.to_i64s()?;
    let mut norm = Vec::with_capacity(iv.len());
    for &i in &iv {
        let j = if i < 0 { i + d } else { i };
        if j < 0 || j >= d {
            return Err(EvalError::shape(format!("Gather index {i} is out of range for dimension {d}")));
        }
        norm.push(j as usize);
    }
    let outer: usize = a.dims[..ax].iter().product();
    let inner: usize = a.dims[ax + 1..].iter().product();
    let mut dims = a.dims[..ax].to_vec();
    dims.extend(&ind.dims);
    dims.extend(&a.dims[ax + 1..]);
    let mut idx = Vec::with_capacity(alloc_count(&dims)?);
    for o in 0..outer {
        for &j in &norm {
            let base = (o * a.dims[ax] + j) * inner;
            idx.extend(base..base + inner);
        }
    }
    a.gather_flat(dims, &idx)
}

fn gather_elements(a: &Array, ind: &Array, axis: i64) -> Result<Array, EvalError> {
    let ax = norm_axis(axis, a.rank())?;
    if ind.rank() != a.rank() {
        return Err(EvalError::shape("GatherElements indices must have the data's rank"));
    }
    let d = a.dims[ax] as i64;
    let iv = ind.to_i64s()?;
    let s = strides(&a.dims);
    let mut idx = Vec::with_capacity(iv.len());
    let mut bad = false;
    let mut k = 0;
    for_each_index(&ind.dims, |pos| {
        let i = iv[k];
        k += 1;
        let j = if i < 0 { i + d } else { i };
        if j < 0 || j >= d || pos.iter().zip(&a.dims).enumerate().any(|(q, (&p, &dd))| q != ax && p >= dd) {
            bad = true;
            idx.push(0);
            return;
        }
        idx.push(pos.iter().enumerate().map(|(q, &p)| if q == ax { j as usize } else { p } * s[q]).sum());
    });
    if bad {
        return Err(EvalError::shape("GatherElements index out of range"));
    }
    a.gather_flat(ind.dims.clone(), &idx)
}

fn tile(a: &Array, reps: &[i64]) -> Result<Array, EvalError> {
    if reps.len() != a.rank() {
        return Err(EvalError::shape("Tile repeats must match the rank"));
    }
    let reps: Vec<usize> = reps.iter().map(|&r| to_dim(r)).collect::<Result<_, _>>()?;
    let dims: Vec<usize> = a
        .dims
        .iter()
        .zip(&reps)
        .map(|(&d, &r)| d.checked_mul(r))
        .collect::<Option<_>>()
        .ok_or_else(|| EvalError::shape("Tile overflows"))?;
    let s = strides(&a.dims);
    let mut idx = Vec::with_capacity(alloc_count(&dims)?);
    for_each_index(&dims, |pos| idx.push(pos.iter().enumerate().map(|(i, &p)| (p % a.dims[i]) * s[i]).sum()));
    a.gather_flat(dims, &idx)
}

fn pad(op: &Op, x: &Ins<'_>, opset: i64) -> Result<Array, EvalError> {
    let a = x.get(0)?;
    let r = a.rank();
    let mode = a_str(op, "mode", "constant")?;
    let (pads, value, axes) = if opset < 11 {
        let p = a_ints(op, "pads")?.or(a_ints(op, "paddings")?).unwrap_or_default();
        (p, Some(Array::scalar_f32(a_float(op, "value", 0.0)?)), None)
    } else {
        (x.get(1)?.to_i64s()?, x.opt(2).cloned(), ints_input(x, 3)?)
    };
    let axes: Vec<usize> = match axes {
        Some(ax) => ax.into_iter().map(|v| norm_axis(v, r)).collect::<Result<_, _>>()?,
        None => (0..r).collect(),
    };
    if pads.len() != 2 * axes.len() {
        return Err(EvalError::shape(format!("Pad has {} pads for {} axes", pads.len(), axes.len())));
    }
    let mut begin = vec![0i64; r];
    let mut end = vec![0i64; r];
    for (k, &ax) in axes.iter().enumerate() {
        begin[ax] = pads[k];
        end[ax] = pads[k + axes.len()];
    }
    let mut dims = Vec::with_capacity(r);
    for i in 0..r {
        let d = a.dims[i] as i64 + begin[i] + end[i];
        dims.push(to_dim(d)?);
    }
    let fill = match value {
        Some(v) if !v.is_empty() => {
            super::elementwise::cast(&v, a.elem, true, "up")?.gather_flat(vec![1], &[0])?
        }
        _ => Array::zeros(a.elem, vec![1])?,
    };
    let s = strides(&a.dims);
    let sentinel = a.len();
    let mut idx = Vec::with_capacity(alloc_count(&dims)?);
    let mut bad = false;
    for_each_index(&dims, |pos| {
        let mut f = 0usize;
        for i in 0..r {
            let d = a.dims[i] as i64;
            let mut c = pos[i] as i64 - begin[i];
            if c < 0 || c >= d {
                match mode.as_str() {
                    "edge" if d > 0 => c = c.clamp(0, d - 1),
                    "wrap" if d > 0 => c = c.rem_euclid(d),
                    "reflect" if d > 1 => {
                        let p = 2 * (d - 1);
                        c = c.rem_euclid(p);
                        if c >= d {
                            c = p - c;
                        }
                    }
                    "reflect" if d == 1 => c = 0,
                    "constant" => {
                        idx.push(sentinel);
                        return;
                    }
                    _ => {
                        bad = true;
                        idx.push(sentinel);
                        return;
                    }
                }
            }
            f += c as usize * s[i];
        }
        idx.push(f);
    });
    if bad {
        return Err(EvalError::attr(format!("Pad mode `{mode}` cannot pad this input")));
    }
    let all = Array::concat_data(a.elem, vec![a.len() + 1], &[a, &fill])?;
    all.gather_flat(dims, &idx)
}

fn attr_tensor(op: &Op, name: &str) -> Result<Option<Array>, EvalError> {
    match op.attr(name).map(|a| &a.value) {
        Some(AttrValue::Tensor(t)) => Ok(Some(Array::from_tensor(t, &Model::default())?)),
        Some(_) => Err(EvalError::attr(format!("`{name}` must be a tensor"))),
        None => Ok(None),
    }
}

fn constant(op: &Op) -> Result<Array, EvalError> {
    if let Some(t) = attr_tensor(op, "value")? {
        return Ok(t);
    }
    for a in &op.attrs {
        return match (&a.name[..], &a.value) {
            ("value_float", AttrValue::Float(f)) => Ok(Array::scalar_f32(*f)),
            ("value_floats", AttrValue::Floats(v)) => Array::from_f32(vec![v.len()], v.clone()),
            ("value_int", AttrValue::Int(i)) => Array::from_i64(vec![], vec![*i]),
            ("value_ints", AttrValue::Ints(v)) => Array::from_i64(vec![v.len()], v.clone()),
            ("value_string", AttrValue::String(s)) => {
                Array::new(ElemType::String, vec![], Data::Str(vec![String::from_utf8_lossy(s).into_owned()]))
            }
            ("value_strings", AttrValue::Strings(v)) => Array::new(
                ElemType::String,
                vec![v.len()],
                Data::Str(v.iter().map(|s| String::from_utf8_lossy(s).into_owned()).collect()),
            ),
            _ => continue,
        };
    }
    Err(EvalError::unsupported("Constant without a dense value"))
}

fn range(a: &Array, b: &Array, c: &Array) -> Result<Array, EvalError> {
    let (s, l, d) = (a.to_f64()?, b.to_f64()?, c.to_f64()?);
    if s.len() != 1 || l.len() != 1 || d.len() != 1 {
        return Err(EvalError::shape("Range takes scalars"));
    }
    let (s, l, d) = (s[0], l[0], d[0]);
    if d == 0.0 {
        return Err(EvalError::attr("Range delta is 0"));
    }
    let n = ((l - s) / d).ceil().max(0.0);
    if !n.is_finite() || n > super::array::MAX_ELEMENTS as f64 {
        return Err(EvalError::shape("Range is too long"));
    }
    let n = n as usize;
    match a.domain()? {
        super::Domain::Int => {
            let (s, d) = (a.to_i128()?[0], c.to_i128()?[0]);
            Array::from_i128s(a.elem, vec![n], (0..n).map(|i| s + i as i128 * d).collect())
        }
        _ => Array::from_f64s(a.elem, vec![n], (0..n).map(|i| s + i as f64 * d).collect()),
    }
}

fn depth_space(a: &Array, b: usize, to_space: bool, crd: bool) -> Result<Array, EvalError> {
    if a.rank() != 4 || b == 0 {
        return Err(EvalError::shape("DepthToSpace/SpaceToDepth need a 4-D input and blocksize > 0"));
    }
    let (n, c, h, w) = (a.dims[0], a.dims[1], a.dims[2], a.dims[3]);
    if to_space {
        if c % (b * b) != 0 {
            return Err(EvalError::shape("channels not divisible by blocksize²"));
        }
        let (t, perm) = if crd {
            (a.reshaped(vec![n, c / (b * b), b, b, h, w])?, [0, 1, 4, 2, 5, 3])
        } else {
            (a.reshaped(vec![n, b, b, c / (b * b), h, w])?, [0, 3, 4, 1, 5, 2])
        };
        transpose(&t, &perm)?.reshaped(vec![n, c / (b * b), h * b, w * b])
    } else {
        if h % b != 0 || w % b != 0 {
            return Err(EvalError::shape("spatial dims not divisible by blocksize"));
        }
        let t = a.reshaped(vec![n, c, h / b, b, w / b, b])?;
        transpose(&t, &[0, 3, 5, 1, 2, 4])?.reshaped(vec![n, c * b * b, h / b, w / b])
    }
}

fn trilu(a: &Array, k: i64, upper: bool) -> Result<Array, EvalError> {
    if a.rank() < 2 {
        return Err(EvalError::shape("Trilu needs rank >= 2"));
    }
    let r = a.rank();
    let (rows, cols) = (a.dims[r - 2], a.dims[r - 1]);
    let zero_at = a.len();
    let idx: Vec<usize> = (0..a.len())
        .map(|f| {
            let j = (f % cols) as i64;
            let i = ((f / cols) % rows) as i64;
            let keep = if upper { j - i >= k } else { j - i <= k };
            if keep { f } else { zero_at }
        })
        .collect();
    let z = Array::zeros(a.elem, vec![1])?;
    Array::concat_data(a.elem, vec![a.len() + 1], &[a, &z])?.gather_flat(a.dims.clone(), &idx)
}

/// Data-movement ops; `None` when `op` is not one of them.
pub(crate) fn eval(op: &Op, x: &Ins<'_>, opset: i64) -> Result<Option<Vec<Array>>, EvalError> {
    let out = match op.kind() {
        OpKind::Identity => x.get(0)?.clone(),
        OpKind::Reshape => {
            let shape =
                if opset >= 5 { x.get(1)?.to_i64s()? } else { a_ints(op, "shape")?.unwrap_or_default() };
            reshape(x.get(0)?, &shape, a_int(op, "allowzero", 0)? != 0)?
        }
        OpKind::Flatten => {
            let a = x.get(0)?;
            let ax = a_int(op, "axis", 1)?;
            let ax = if ax == a.rank() as i64 { a.rank() } else { norm_axis(ax, a.rank())? };
            let outer = numel(&a.dims[..ax])?;
            a.reshaped(vec![outer, numel(&a.dims[ax..])?])?
        }
        OpKind::Squeeze => {
            let a = x.get(0)?;
            let axes = if opset >= 13 { ints_input(x, 1)? } else { a_ints(op, "axes")? };
            let axes: Vec<usize> = match axes {
                Some(v) => v.into_iter().map(|i| norm_axis(i, a.rank())).collect::<Result<_, _>>()?,
                None => (0..a.rank()).filter(|&i| a.dims[i] == 1).collect(),
            };
            if axes.iter().any(|&i| a.dims[i] != 1) {
                return Err(EvalError::shape("Squeeze of a dimension that is not 1"));
            }
            let dims =
                a.dims.iter().enumerate().filter(|(i, _)| !axes.contains(i)).map(|(_, &d)| d).collect();
            a.reshaped(dims)?
        }
        OpKind::Unsqueeze => {
            let a = x.get(0)?;
            let axes =
                if opset >= 13 { x.get(1)?.to_i64s()? } else { a_ints(op, "axes")?.unwrap_or_default() };
            let r = a.rank() + axes.len();
            let mut ax: Vec<usize> = axes.into_iter().map(|i| norm_axis(i, r)).collect::<Result<_, _>>()?;
            ax.sort_unstable();
            if ax.windows(2).any(|w| w[0] == w[1]) {
                return Err(EvalError::attr("Unsqueeze axes repeat"));
            }
            let mut it = a.dims.iter();
            let dims = (0..r).map(|i| if ax.contains(&i) { 1 } else { *it.next().unwrap_or(&1) }).collect();
            a.reshaped(dims)?
        }
        OpKind::Transpose => {
            let a = x.get(0)?;
            let perm: Vec<usize> = match a_ints(op, "perm")? {
                Some(p) => p.into_iter().map(|v| norm_axis(v, a.rank())).collect::<Result<_, _>>()?,
                None => (0..a.rank()).rev().collect(),
            };
            transpose(a, &perm)?
        }
        OpKind::Concat => {
            let xs: Vec<&Array> = (0..x.len()).map(|i| x.get(i)).collect::<Result<_, _>>()?;
            concat(&xs, a_int(op, "axis", 0)?)?
        }
        OpKind::Split => return Ok(Some(split(op, x, opset)?)),
        OpKind::Slice => slice(op, x, opset)?,
        OpKind::Gather => gather(x.get(0)?, x.get(1)?, a_int(op, "axis", 0)?)?,
        OpKind::GatherElements => gather_elements(x.get(0)?, x.get(1)?, a_int(op, "axis", 0)?)?,
        OpKind::Expand => {
            let a = x.get(0)?;
            let shape: Vec<usize> = x.get(1)?.to_i64s()?.into_iter().map(to_dim).collect::<Result<_, _>>()?;
            let dims = broadcast_shape(&a.dims, &shape)?;
            broadcast_to(a, &dims)?
        }
        OpKind::Tile => tile(x.get(0)?, &x.get(1)?.to_i64s()?)?,
        OpKind::Pad => pad(op, x, opset)?,
        OpKind::Shape => {
            let a = x.get(0)?;
            let r = a.rank() as i64;
            let clampr = |v: i64| if v < 0 { (v + r).max(0) } else { v.min(r) };
            let s = clampr(a_int(op, "start", 0)?) as usize;
            let e = clampr(a_int(op, "end", r)?) as usize;
            let v: Vec<i64> = if s < e { a.dims[s..e].iter().map(|&d| d as i64).collect() } else { vec![] };
            Array::from_i64(vec![v.len()], v)?
        }
        OpKind::Size => Array::from_i64(vec![], vec![x.get(0)?.len() as i64])?,
        OpKind::ConstantOfShape => {
            let dims: Vec<usize> = x.get(0)?.to_i64s()?.into_iter().map(to_dim).collect::<Result<_, _>>()?;
            let v = attr_tensor(op, "value")?.unwrap_or_else(|| Array::scalar_f32(0.0));
            if v.len() != 1 {
                return Err(EvalError::attr("ConstantOfShape value must hold one element"));
            }
            v.splat(0, dims)?
        }
        OpKind::Constant => constant(op)?,
        OpKind::Range => range(x.get(0)?, x.get(1)?, x.get(2)?)?,
        OpKind::DepthToSpace => {
            let b = to_dim(a_int(op, "blocksize", 0)?)?;
            depth_space(x.get(0)?, b, true, a_str(op, "mode", "DCR")? == "CRD")?
        }
        OpKind::SpaceToDepth => depth_space(x.get(0)?, to_dim(a_int(op, "blocksize", 0)?)?, false, false)?,
        OpKind::Trilu => {
            let k = match x.opt(1) {
                Some(k) => *k.to_i64s()?.first().unwrap_or(&0),
                None => 0,
            };
            trilu(x.get(0)?, k, a_int(op, "upper", 1)? != 0)?
        }
        OpKind::Dropout => {
            let a = x.get(0)?;
            let training = match x.opt(2) {
                Some(t) => t.to_bool()?.first().copied().unwrap_or(false),
                None => false,
            };
            let ratio = match x.opt(1) {
                Some(r) => r.to_f64()?.first().copied().unwrap_or(0.5),
                None => f64::from(a_float(op, "ratio", 0.5)?),
            };
            if training && ratio != 0.0 {
                return Err(EvalError::unsupported(
                    "Dropout in training mode with a non-zero ratio is random",
                ));
            }
            let mask = Array::from_bool(a.dims.clone(), vec![true; a.len()])?;
            return Ok(Some(vec![a.clone(), mask]));
        }
        _ => return Ok(None),
    };
    Ok(Some(vec![out]))
}
