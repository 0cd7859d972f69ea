//! Slicing and joining: `Slice`, `Gather`, `GatherElements`, `Concat`, `Split`, `Pad`.
//!
//! `Slice` and `Gather` of a 1-D value with known values, and `Concat` of 1-D values, carry the
//! values along (symbolic elements too), as data propagation through shape chains needs.
//! `Slice`'s `starts`/`ends` may be symbolic: `x[0:N]` of a dimension `N` is `N`, any other
//! unknown bound gives an unknown dimension.

use qc_ir::{Dim, OpKind};

use super::{Cx, Fail, Kind, R, SymInt, TypeFact, Values, bad, norm_axis, one};

pub(crate) fn infer(cx: &Cx) -> Option<R<Vec<Option<TypeFact>>>> {
    Some(match cx.op.kind() {
        OpKind::Slice => slice(cx),
        OpKind::Gather => gather(cx),
        OpKind::GatherElements => cx
            .dims(1)
            .and_then(|d| one(TypeFact { elem: cx.elem_opt(0), shape: Some(d.to_vec()), value: None })),
        OpKind::Concat => concat(cx),
        OpKind::Split => split(cx),
        OpKind::Pad => pad(cx),
        _ => return None,
    })
}

/// `(start, len)` of one sliced axis of size `d`, and the step.
pub fn slice_range(d: i64, start: i64, end: i64, step: i64) -> (i64, i64) {
    if step > 0 {
        let s = if start < 0 { start.saturating_add(d) } else { start }.clamp(0, d);
        let e = if end < 0 { end.saturating_add(d) } else { end }.clamp(0, d);
        (s, if e > s { (e - s + step - 1) / step } else { 0 })
    } else {
        let s = if start < 0 { start.saturating_add(d) } else { start }.clamp(0, (d - 1).max(0));
        let e = if end < 0 { end.saturating_add(d) } else { end }.clamp(-1, d - 1);
        let st = step.saturating_neg();
        (s, if s > e { (s - e + st - 1) / st } else { 0 })
    }
}

fn slice(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let x = cx.dims(0)?;
    let ints = |v: Vec<i64>| v.into_iter().map(SymInt::Int).collect::<Vec<_>>();
    let (starts, ends, axes, steps) = if cx.opset < 10 {
        let req = |n: &str| {
            cx.attr_ints(n)?.ok_or_else(|| Fail::Bad(Kind::Attribute, format!("`{n}` is required")))
        };
        (ints(req("starts")?), ints(req("ends")?), cx.attr_ints("axes")?, None)
    } else {
        let axes = if cx.has(3) { Some(cx.ints(3)?) } else { None };
        let steps = if cx.has(4) { Some(cx.ints(4)?) } else { None };
        (cx.sym_ints(1)?, cx.sym_ints(2)?, axes, steps)
    };
    let n = starts.len();
    if ends.len() != n {
        return bad(Kind::Attribute, "starts and ends differ in length");
    }
    let axes = axes.unwrap_or_else(|| (0..n as i64).collect());
    let steps = steps.unwrap_or_else(|| vec![1; n]);
    if axes.len() != n || steps.len() != n {
        return bad(Kind::Attribute, "axes or steps differ in length from starts");
    }
    let mut out = x.to_vec();
    let mut ranges: Vec<(usize, i64, i64, i64)> = Vec::new();
    for i in 0..n {
        let a = norm_axis(axes[i], x.len())?;
        if steps[i] == 0 {
            return bad(Kind::Attribute, "a step is 0");
        }
        let whole_from_start = starts[i] == SymInt::Int(0) && steps[i] == 1;
        match (&x[a], starts[i].as_int(), ends[i].as_int()) {
            (Dim::Known(d), Some(s), Some(e)) => {
                let (s, len) = slice_range(*d as i64, s, e, steps[i]);
                out[a] = Dim::Known(len as u64);
                ranges.push((a, s, len, steps[i]));
            }
            (_, _, Some(e)) if whole_from_start && e >= i32::MAX as i64 => {}
            // `x[0:N]` of a dimension `N` is all of it.
            (d @ Dim::Sym(name), _, None) if whole_from_start && ends[i] == SymInt::Sym(name.clone()) => {
                out[a] = d.clone();
            }
            _ => out[a] = Dim::Unknown,
        }
    }
    let mut f = TypeFact { elem: cx.elem_opt(0), shape: Some(out), value: None };
    if x.len() == 1
        && ranges.len() == 1
        && let Ok(v) = cx.values(0)
    {
        let (_, s, len, st) = ranges[0];
        let idx: Vec<usize> = (0..len).map(|k| (s + k * st) as usize).collect();
        f.value = pick(v, &idx);
    }
    one(f)
}

fn pick(v: &Values, idx: &[usize]) -> Option<Values> {
    Some(match v {
        Values::Int(v) => Values::Int(idx.iter().map(|&i| v.get(i).copied()).collect::<Option<_>>()?),
        Values::Float(v) => Values::Float(idx.iter().map(|&i| v.get(i).copied()).collect::<Option<_>>()?),
        Values::Sym(v) => Values::from_sym(idx.iter().map(|&i| v.get(i).cloned()).collect::<Option<_>>()?),
    })
}

fn gather(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let x = cx.dims(0)?;
    let ind = cx.dims(1)?;
    if x.is_empty() {
        return bad(Kind::Rank, "Gather's data must have rank at least 1");
    }
    let axis = norm_axis(cx.attr_int("axis", 0)?, x.len())?;
    let mut out = x[..axis].to_vec();
    out.extend(ind.iter().cloned());
    out.extend(x[axis + 1..].iter().cloned());
    let mut f = TypeFact { elem: cx.elem_opt(0), shape: Some(out), value: None };
    if x.len() == 1
        && let (Ok(v), Ok(i), Dim::Known(d)) = (cx.values(0), cx.ints(1), &x[0])
    {
        let d = *d as i64;
        let idx: Option<Vec<usize>> = i
            .iter()
            .map(|&k| if k < -d || k >= d { None } else { Some((if k < 0 { k + d } else { k }) as usize) })
            .collect();
        if let Some(idx) = idx {
            f.value = pick(v, &idx);
        }
    }
    one(f)
}

/// The values of a concatenation: integers if all parts are, floats if any part is (and none is
/// symbolic), possibly symbolic integers if any part is.
fn concat_values(parts: &[&Values]) -> Option<Values> {
    if parts.iter().all(|v| matches!(v, Values::Int(_))) {
        return Some(Values::Int(parts.iter().filter_map(|v| v.as_i64()).flatten().collect()));
    }
    let any_float = parts.iter().any(|v| matches!(v, Values::Float(_)));
    let any_sym = parts.iter().any(|v| matches!(v, Values::Sym(_)));
    match (any_float, any_sym) {
        (true, false) => {
            Some(Values::Float(parts.iter().map(|v| v.as_f64()).collect::<Option<Vec<_>>>()?.concat()))
        }
        (false, true) => Some(Values::from_sym(parts.iter().flat_map(|v| v.as_sym()).collect())),
        _ => None,
    }
}

fn concat(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let n = cx.op.inputs().len();
    let first = cx.dims(0)?;
    let axis = cx.attr_int("axis", if cx.opset < 4 { 1 } else { i64::MIN })?;
    if axis == i64::MIN {
        return bad(Kind::Attribute, "`axis` is required");
    }
    let axis = norm_axis(axis, first.len())?;
    let mut out = first.to_vec();
    let mut total: Option<u64> = Some(0);
    let mut parts: Option<Vec<&Values>> = Some(Vec::new());
    for i in 0..n {
        let d = cx.dims(i)?;
        if d.len() != first.len() {
            return bad(Kind::Rank, format!("input {i} has rank {}, input 0 rank {}", d.len(), first.len()));
        }
        for (k, dk) in d.iter().enumerate() {
            if k == axis {
                total = match (total, dk) {
                    (Some(t), Dim::Known(v)) => Some(t + v),
                    _ => None,
                };
            } else {
                out[k] = match (&out[k], dk) {
                    (Dim::Known(a), Dim::Known(b)) if a != b => {
                        return bad(
                            Kind::Incompatible,
                            format!("input {i} has size {b} on axis {k}, expected {a}"),
                        );
                    }
                    (Dim::Known(a), _) | (_, Dim::Known(a)) => Dim::Known(*a),
                    (a, b) if a == b => a.clone(),
                    _ => Dim::Unknown,
                };
            }
        }
        match (cx.values(i), &mut parts) {
            (Ok(v), Some(p)) => p.push(v),
            _ => parts = None,
        }
    }
    out[axis] = total.map_or(Dim::Unknown, Dim::Known);
    let mut f = TypeFact { elem: (0..n).find_map(|i| cx.elem_opt(i)), shape: Some(out), value: None };
    if first.len() == 1 {
        f.value = parts.and_then(|p| concat_values(&p));
    }
    one(f)
}

fn split(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let x = cx.dims(0)?;
    let axis = norm_axis(cx.attr_int("axis", 0)?, x.len())?;
    let n = cx.n_out();
    let sizes: Option<Vec<i64>> = if cx.opset >= 13 {
        if cx.has(1) { Some(cx.ints(1)?) } else { None }
    } else if cx.opset >= 2 {
        cx.attr_ints("split")?
    } else if cx.has(1) {
        Some(cx.ints(1)?)
    } else {
        cx.attr_ints("split")?
    };
    let dims: Vec<Dim> = match sizes {
        Some(s) if !s.is_empty() => {
            if s.len() != n {
                return bad(Kind::Attribute, format!("split has {} entries for {n} outputs", s.len()));
            }
            if s.iter().any(|&v| v < 0) {
                return bad(Kind::Attribute, "split has a negative entry");
            }
            if let Dim::Known(d) = x[axis]
                && s.iter().sum::<i64>() != d as i64
            {
                return bad(Kind::Incompatible, format!("split sizes {s:?} do not sum to {d}"));
            }
            s.iter().map(|&v| Dim::Known(v as u64)).collect()
        }
        _ => {
            let num = if cx.opset >= 18 { cx.attr_int("num_outputs", n as i64)? } else { n as i64 };
            if num <= 0 {
                return bad(Kind::Attribute, "num_outputs must be positive");
            }
            let num = num as u64;
            match x[axis] {
                Dim::Known(d) => {
                    if cx.opset >= 18 && cx.op.attr("num_outputs").is_some() {
                        let chunk = d.div_ceil(num);
                        (0..n as u64).map(|i| Dim::Known(chunk.min(d.saturating_sub(chunk * i)))).collect()
                    } else {
                        if d % num != 0 {
                            return bad(
                                Kind::Incompatible,
                                format!("dimension {d} does not split evenly into {num}"),
                            );
                        }
                        vec![Dim::Known(d / num); n]
                    }
                }
                _ => vec![Dim::Unknown; n],
            }
        }
    };
    Ok(dims
        .into_iter()
        .map(|d| {
            let mut s = x.to_vec();
            s[axis] = d;
            Some(TypeFact { elem: cx.elem_opt(0), shape: Some(s), value: None })
        })
        .collect())
}

fn pad(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let x = cx.dims(0)?;
    let r = x.len();
    let pads = if cx.opset >= 11 {
        cx.ints(1)?
    } else {
        cx.attr_ints("pads")?
            .or(cx.attr_ints("paddings")?)
            .ok_or_else(|| Fail::Bad(Kind::Attribute, "`pads` is required".into()))?
    };
    let axes: Vec<usize> = if cx.opset >= 18 && cx.has(3) {
        cx.ints(3)?.into_iter().map(|a| norm_axis(a, r)).collect::<R<_>>()?
    } else {
        (0..r).collect()
    };
    let k = axes.len();
    if pads.len() != 2 * k {
        return bad(Kind::Attribute, format!("pads has {} entries, expected {}", pads.len(), 2 * k));
    }
    let mut out = x.to_vec();
    for (i, &a) in axes.iter().enumerate() {
        let add = pads[i] + pads[i + k];
        out[a] = match &x[a] {
            Dim::Known(d) => {
                let v = *d as i64 + add;
                if v < 0 {
                    return bad(Kind::Incompatible, format!("padding makes axis {a} negative"));
                }
                Dim::Known(v as u64)
            }
            d if add == 0 => d.clone(),
            _ => Dim::Unknown,
        };
    }
    one(TypeFact { elem: cx.elem_opt(0), shape: Some(out), value: None })
}
