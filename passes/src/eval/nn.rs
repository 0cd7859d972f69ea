//! Neural-network kernels: `Conv`, `ConvTranspose`, `ConvInteger`, `QLinearConv`, the pools,
//! `Gemm`, `MatMul` (numpy batching and 1-D promotion), `MatMulInteger`, `QLinearMatMul` and
//! `Einsum`. Accumulation is in `f64` (exact for the integer variants at these sizes) or `i128`.

use qc_ir::{ElemType, Op, OpKind, Window, WindowError};

use super::array::{Array, alloc_count};
use super::elementwise::{broadcast_map, broadcast_shape, round_half_even};
use super::shape_ops::{for_each_index, strides};
use super::{EvalError, Ins, a_int, a_str};

/// Resolved geometry of a convolution or pool over `k` spatial dims.
struct Geom {
    kernel: Vec<usize>,
    strides: Vec<usize>,
    dils: Vec<usize>,
    pad_begin: Vec<i64>,
    /// The padding after the input, resolved from `pads` or `auto_pad` (for `count_include_pad`).
    pad_end: Vec<i64>,
    out: Vec<usize>,
}

/// A window error as the evaluator reports it: an impossible window over this input is a
/// shape error, anything else an attribute error.
fn window_err(e: WindowError) -> EvalError {
    match e {
        WindowError::Empty { .. } | WindowError::EmptyInput | WindowError::Cropped { .. } => {
            EvalError::shape(e.to_string())
        }
        _ => EvalError::attr(e.to_string()),
    }
}

fn usize_of(v: u64) -> Result<usize, EvalError> {
    usize::try_from(v).map_err(|_| EvalError::attr(format!("window value {v} is too large")))
}

fn i64_of(v: impl TryInto<i64>) -> Result<i64, EvalError> {
    v.try_into().map_err(|_| EvalError::attr("window padding is too large"))
}

/// The geometry of `window` over the input's spatial dims.
fn geometry(spatial: &[usize], window: &Window) -> Result<Geom, EvalError> {
    let k = spatial.len();
    if window.rank() != k {
        return Err(EvalError::attr("kernel rank differs from the input's spatial rank"));
    }
    let mut g = Geom {
        kernel: Vec::with_capacity(k),
        strides: Vec::with_capacity(k),
        dils: Vec::with_capacity(k),
        pad_begin: Vec::with_capacity(k),
        pad_end: Vec::with_capacity(k),
        out: Vec::with_capacity(k),
    };
    for (i, (&d, a)) in spatial.iter().zip(&window.axes).enumerate() {
        let r = window.resolve_axis(i, d as u64).map_err(window_err)?;
        g.kernel.push(usize_of(a.kernel)?);
        g.strides.push(usize_of(a.stride)?);
        g.dils.push(usize_of(a.dilation)?);
        g.pad_begin.push(i64_of(r.pad_begin)?);
        g.pad_end.push(i64_of(r.pad_end)?);
        g.out.push(usize_of(r.output)?);
    }
    Ok(g)
}

fn conv_core(
    x: &[f64],
    xd: &[usize],
    w: &[f64],
    wd: &[usize],
    group: usize,
    g: &Geom,
) -> Result<(Vec<f64>, Vec<usize>), EvalError> {
    let (n, c) = (xd[0], xd[1]);
    let m = wd[0];
    let cg = wd[1];
    if group == 0 || c != cg * group || !m.is_multiple_of(group) {
        return Err(EvalError::shape(format!(
            "channels {c} and weight {wd:?} do not agree with group {group}"
        )));
    }
    let sp = &xd[2..];
    let mut od = vec![n, m];
    od.extend(&g.out);
    let total = alloc_count(&od)?;
    let mut out = vec![0.0; total];
    if total == 0 {
        // Nothing to compute (the spatial dims may still be huge: no position list).
        return Ok((out, od));
    }
    let ks: usize = g.kernel.iter().product();
    let isz: usize = sp.iter().product();
    let osz: usize = g.out.iter().product();
    let k = sp.len();
    // Kernel offsets per kernel position.
    let mut koff: Vec<Vec<i64>> = Vec::with_capacity(ks);
    for_each_index(&g.kernel, |p| koff.push((0..k).map(|i| (p[i] * g.dils[i]) as i64).collect()));
    let mut opos: Vec<Vec<i64>> = Vec::with_capacity(osz);
    for_each_index(&g.out, |p| {
        opos.push((0..k).map(|i| p[i] as i64 * g.strides[i] as i64 - g.pad_begin[i]).collect())
    });
    let istr = strides(sp);
    let mpg = m / group;
    for b in 0..n {
        for oc in 0..m {
            let gi = oc / mpg;
            let obase = (b * m + oc) * osz;
            for (oi, base) in opos.iter().enumerate() {
                let mut acc = 0.0;
                for (ki, off) in koff.iter().enumerate() {
                    let mut flat = 0usize;
                    let mut ok = true;
                    for i in 0..k {
                        let p = base[i] + off[i];
                        if p < 0 || p >= sp[i] as i64 {
                            ok = false;
                            break;
                        }
                        flat += p as usize * istr[i];
                    }
                    if !ok {
                        continue;
                    }
                    for cc in 0..cg {
                        let ic = gi * cg + cc;
                        acc += x[(b * c + ic) * isz + flat] * w[(oc * cg + cc) * ks + ki];
                    }
                }
                out[obase + oi] = acc;
            }
        }
    }
    Ok((out, od))
}

fn conv_geom(op: &Op, xd: &[usize], wd: &[usize]) -> Result<(Geom, usize), EvalError> {
    if xd.len() < 3 || wd.len() != xd.len() {
        return Err(EvalError::shape(format!("Conv input {xd:?} and weight {wd:?} ranks do not fit")));
    }
    let a = op.conv()?;
    let weight: Vec<u64> = wd[2..].iter().map(|&d| d as u64).collect();
    let window =
        Window::conv(op, Some(&weight)).map_err(window_err)?.ok_or_else(|| EvalError::attr("no kernel"))?;
    let group = usize::try_from(a.group).map_err(|_| EvalError::attr("group must be positive"))?;
    let g = geometry(&xd[2..], &window)?;
    Ok((g, group))
}

fn add_bias(out: &mut [f64], od: &[usize], b: &[f64]) -> Result<(), EvalError> {
    let m = od[1];
    if b.len() != m {
        return Err(EvalError::shape("bias length differs from the output channels"));
    }
    let sz: usize = od[2..].iter().product();
    for (i, v) in out.iter_mut().enumerate() {
        *v += b[(i / sz.max(1)) % m];
    }
    Ok(())
}

fn conv(op: &Op, x: &Ins<'_>) -> Result<Array, EvalError> {
    let (a, w) = (x.get(0)?, x.get(1)?);
    let (g, group) = conv_geom(op, &a.dims, &w.dims)?;
    let (mut out, od) = conv_core(&a.to_f64()?, &a.dims, &w.to_f64()?, &w.dims, group, &g)?;
    if let Some(b) = x.opt(2) {
        add_bias(&mut out, &od, &b.to_f64()?)?;
    }
    Array::from_f64s(a.elem, od, out)
}

/// Values minus a zero point that is a scalar or per-channel along `axis`.
fn minus_zp(a: &Array, zp: Option<&Array>, axis: usize) -> Result<Vec<f64>, EvalError> {
    let mut v = a.to_f64()?;
    let Some(z) = zp else { return Ok(v) };
    let zv = z.to_f64()?;
    if zv.len() == 1 {
        v.iter_mut().for_each(|e| *e -= zv[0]);
        return Ok(v);
    }
    let d = *a.dims.get(axis).ok_or_else(|| EvalError::shape("zero point axis out of range"))?;
    if zv.len() != d {
        return Err(EvalError::shape("per-channel zero point length differs from the channel count"));
    }
    let inner: usize = a.dims[axis + 1..].iter().product();
    for (i, e) in v.iter_mut().enumerate() {
        *e -= zv[(i / inner.max(1)) % d];
    }
    Ok(v)
}

fn conv_integer(op: &Op, x: &Ins<'_>) -> Result<Array, EvalError> {
    let (a, w) = (x.get(0)?, x.get(1)?);
    let (g, group) = conv_geom(op, &a.dims, &w.dims)?;
    let xv = minus_zp(a, x.opt(2), 1)?;
    let wv = minus_zp(w, x.opt(3), 0)?;
    let (out, od) = conv_core(&xv, &a.dims, &wv, &w.dims, group, &g)?;
    Array::from_f64s(ElemType::I32, od, out)
}

fn scalar_or(a: &Array, n: usize) -> Result<Vec<f64>, EvalError> {
    let v = a.to_f64()?;
    if v.len() == 1 {
        Ok(vec![v[0]; n])
    } else if v.len() == n {
        Ok(v)
    } else {
        Err(EvalError::shape(format!("expected a scalar or {n} values, found {}", v.len())))
    }
}

/// Rounds, adds the zero point and saturates to `elem`.
fn requantize(v: Vec<f64>, zp: &Array, elem: ElemType, dims: Vec<usize>) -> Result<Array, EvalError> {
    let z = zp.to_f64()?.first().copied().unwrap_or(0.0);
    let (lo, hi) = super::quant::int_range(elem)?;
    let q = v.into_iter().map(|r| (round_half_even(r) + z).clamp(lo, hi)).collect();
    Array::from_f64s(elem, dims, q)
}

fn qlinear_conv(op: &Op, x: &Ins<'_>) -> Result<Array, EvalError> {
    let (a, w) = (x.get(0)?, x.get(3)?);
    let (g, group) = conv_geom(op, &a.dims, &w.dims)?;
    let xv = minus_zp(a, x.opt(2), 1)?;
    let wv = minus_zp(w, x.opt(5), 0)?;
    let (mut out, od) = conv_core(&xv, &a.dims, &wv, &w.dims, group, &g)?;
    if let Some(b) = x.opt(8) {
        add_bias(&mut out, &od, &b.to_f64()?)?;
    }
    let m = od[1];
    let xs = x.get(1)?.to_f64()?.first().copied().unwrap_or(1.0);
    let ws = scalar_or(x.get(4)?, m)?;
    let ys = x.get(6)?.to_f64()?.first().copied().unwrap_or(1.0);
    let sz: usize = od[2..].iter().product();
    let v = out.iter().enumerate().map(|(i, &acc)| acc * (xs * ws[(i / sz.max(1)) % m]) / ys).collect();
    requantize(v, x.get(7)?, x.get(7)?.elem, od)
}

fn conv_transpose(op: &Op, x: &Ins<'_>) -> Result<Array, EvalError> {
    let (a, w) = (x.get(0)?, x.get(1)?);
    let (xd, wd) = (&a.dims, &w.dims);
    if xd.len() < 3 || wd.len() != xd.len() {
        return Err(EvalError::shape("ConvTranspose input and weight ranks do not fit"));
    }
    let at = op.conv()?;
    let k = xd.len() - 2;
    let group =
        usize::try_from(at.group).ok().filter(|&g| g > 0).ok_or_else(|| EvalError::attr("bad group"))?;
    let (n, c) = (xd[0], xd[1]);
    if wd[0] != c || c % group != 0 {
        return Err(EvalError::shape("ConvTranspose weight does not match the input channels"));
    }
    let mpg = wd[1];
    let m = mpg * group;
    let cpg = c / group;
    let weight: Vec<u64> = wd[2..].iter().map(|&d| d as u64).collect();
    let window =
        Window::conv(op, Some(&weight)).map_err(window_err)?.ok_or_else(|| EvalError::attr("no kernel"))?;
    if window.rank() != k {
        return Err(EvalError::attr("kernel rank differs from the input's spatial rank"));
    }
    let t = window.transpose_attrs(op).map_err(window_err)?;
    let sp = &xd[2..];
    let mut kernel = Vec::with_capacity(k);
    let mut strides = Vec::with_capacity(k);
    let mut dils = Vec::with_capacity(k);
    let mut pb = Vec::with_capacity(k);
    let mut outd = Vec::with_capacity(k);
    for (i, ax) in window.axes.iter().enumerate() {
        let r = window.resolve_transposed(&t, i, sp[i] as u64).map_err(window_err)?;
        kernel.push(usize_of(ax.kernel)?);
        strides.push(i64_of(ax.stride)?);
        dils.push(i64_of(ax.dilation)?);
        pb.push(i64_of(r.pad_begin)?);
        outd.push(usize_of(r.output)?);
    }
    let xv = a.to_f64()?;
    let wv = w.to_f64()?;
    let mut od = vec![n, m];
    od.extend(&outd);
    let total = alloc_count(&od)?;
    let mut out = vec![0.0; total];
    let ostr = strides_of(&outd);
    let osz: usize = outd.iter().product();
    let isz: usize = sp.iter().product();
    let ks: usize = kernel.iter().product();
    let mut kpos: Vec<Vec<usize>> = Vec::with_capacity(ks);
    for_each_index(&kernel, |p| kpos.push(p.to_vec()));
    let mut ipos: Vec<Vec<usize>> = Vec::with_capacity(isz);
    for_each_index(sp, |p| ipos.push(p.to_vec()));
    for b in 0..n {
        for ic in 0..c {
            let gi = ic / cpg;
            for (ii, ip) in ipos.iter().enumerate() {
                let xval = xv[(b * c + ic) * isz + ii];
                if xval == 0.0 {
                    continue;
                }
                for (ki, kp) in kpos.iter().enumerate() {
                    let mut flat = 0usize;
                    let mut ok = true;
                    for d in 0..k {
                        let p = ip[d] as i64 * strides[d] + kp[d] as i64 * dils[d] - pb[d];
                        if p < 0 || p >= outd[d] as i64 {
                            ok = false;
                            break;
                        }
                        flat += p as usize * ostr[d];
                    }
                    if !ok {
                        continue;
                    }
                    for mm in 0..mpg {
                        let oc = gi * mpg + mm;
                        out[(b * m + oc) * osz + flat] += xval * wv[(ic * mpg + mm) * ks + ki];
                    }
                }
            }
        }
    }
    if let Some(bias) = x.opt(2) {
        add_bias(&mut out, &od, &bias.to_f64()?)?;
    }
    Array::from_f64s(a.elem, od, out)
}

fn strides_of(d: &[usize]) -> Vec<usize> {
    strides(d)
}

fn pool(op: &Op, a: &Array, max: bool, global: bool) -> Result<Vec<Array>, EvalError> {
    if a.rank() < 3 {
        return Err(EvalError::shape("pooling needs an input of rank >= 3"));
    }
    let sp = a.dims[2..].to_vec();
    let (g, count_pad) = if global {
        let kernel: Vec<i64> = sp.iter().map(|&d| i64_of(d)).collect::<Result<_, _>>()?;
        let window = Window::new("NOTSET", &kernel, None, None, None, false).map_err(window_err)?;
        (geometry(&sp, &window)?, false)
    } else {
        let window = Window::pool(op).map_err(window_err)?;
        (geometry(&sp, &window)?, op.pool()?.count_include_pad)
    };
    let k = sp.len();
    let (n, c) = (a.dims[0], a.dims[1]);
    let v = a.to_f64()?;
    let mut od = vec![n, c];
    od.extend(&g.out);
    let total = alloc_count(&od)?;
    let isz: usize = sp.iter().product();
    let istr = strides(&sp);
    let mut koff: Vec<Vec<i64>> = Vec::new();
    for_each_index(&g.kernel, |p| koff.push((0..k).map(|i| (p[i] * g.dils[i]) as i64).collect()));
    let mut opos: Vec<Vec<i64>> = Vec::new();
    for_each_index(&g.out, |p| {
        opos.push((0..k).map(|i| p[i] as i64 * g.strides[i] as i64 - g.pad_begin[i]).collect())
    });
    let mut out = Vec::with_capacity(total);
    let mut ind = Vec::with_capacity(if max { total } else { 0 });
    for nc in 0..n * c {
        for base in &opos {
            let mut best = f64::NEG_INFINITY;
            let mut best_i = 0usize;
            let mut sum = 0.0;
            let mut cnt = 0usize;
            let mut cnt_pad = 0usize;
            for off in &koff {
                let mut flat = 0usize;
                let mut inside = true;
                let mut in_pad = true;
                for i in 0..k {
                    let p = base[i] + off[i];
                    if p < 0 || p >= sp[i] as i64 {
                        inside = false;
                    }
                    if p < -g.pad_begin[i] || p >= sp[i] as i64 + g.pad_end[i] {
                        in_pad = false;
                    }
                    if inside {
                        flat += p as usize * istr[i];
                    }
                }
                if in_pad {
                    cnt_pad += 1;
                }
                if !inside {
                    continue;
                }
                let e = v[nc * isz + flat];
                cnt += 1;
                sum += e;
                if e > best || (e.is_nan() && !best.is_nan()) {
                    best = e;
                    best_i = flat;
                }
            }
            if max {
                out.push(best);
                let idx = if a_int(op, "storage_order", 0).unwrap_or(0) == 1 && k == 2 {
                    let (h, w) = (sp[0], sp[1]);
                    nc * isz + (best_i % w) * h + best_i / w
                } else {
                    nc * isz + best_i
                };
                ind.push(idx as i64);
            } else {
                let d = if count_pad { cnt_pad } else { cnt };
                out.push(if d == 0 { 0.0 } else { sum / d as f64 });
            }
        }
    }
    let mut res = vec![Array::from_f64s(a.elem, od.clone(), out)?];
    if max {
        res.push(Array::from_i64(od, ind)?);
    }
    Ok(res)
}

/// numpy `matmul` over `f64` values; returns the output dims.
fn matmul_f64(a: &[f64], ad: &[usize], b: &[f64], bd: &[usize]) -> Result<(Vec<f64>, Vec<usize>), EvalError> {
    if ad.is_empty() || bd.is_empty() {
        return Err(EvalError::shape("MatMul of a scalar"));
    }
    let a2: Vec<usize> = if ad.len() == 1 { vec![1, ad[0]] } else { ad.to_vec() };
    let b2: Vec<usize> = if bd.len() == 1 { vec![bd[0], 1] } else { bd.to_vec() };
    let (m, ka) = (a2[a2.len() - 2], a2[a2.len() - 1]);
    let (kb, n) = (b2[b2.len() - 2], b2[b2.len() - 1]);
    if ka != kb {
        return Err(EvalError::shape(format!("MatMul of {ad:?} and {bd:?}: inner dims differ")));
    }
    let ba = &a2[..a2.len() - 2];
    let bb = &b2[..b2.len() - 2];
    let batch = broadcast_shape(ba, bb)?;
    let ia = broadcast_map(ba, &batch)?;
    let ib = broadcast_map(bb, &batch)?;
    let nb = ia.len().max(1);
    let mut out = vec![0.0; alloc_count(&[nb, m, n])?];
    for t in 0..nb {
        let (pa, pb) = (ia.get(t).copied().unwrap_or(0), ib.get(t).copied().unwrap_or(0));
        let ao = &a[pa * m * ka..(pa + 1) * m * ka];
        let bo = &b[pb * ka * n..(pb + 1) * ka * n];
        let oo = &mut out[t * m * n..(t + 1) * m * n];
        for i in 0..m {
            for kk in 0..ka {
                let av = ao[i * ka + kk];
                for j in 0..n {
                    oo[i * n + j] += av * bo[kk * n + j];
                }
            }
        }
    }
    let mut od = batch;
    if ad.len() > 1 {
        od.push(m);
    }
    if bd.len() > 1 {
        od.push(n);
    }
    Ok((out, od))
}

fn gemm(op: &Op, x: &Ins<'_>) -> Result<Array, EvalError> {
    let (a, b) = (x.get(0)?, x.get(1)?);
    let g = op.gemm()?;
    if a.rank() != 2 || b.rank() != 2 {
        return Err(EvalError::shape("Gemm takes matrices"));
    }
    let at = if g.trans_a { super::shape_ops::transpose(a, &[1, 0])? } else { a.clone() };
    let bt = if g.trans_b { super::shape_ops::transpose(b, &[1, 0])? } else { b.clone() };
    let (mut out, od) = matmul_f64(&at.to_f64()?, &at.dims, &bt.to_f64()?, &bt.dims)?;
    let (alpha, beta) = (f64::from(g.alpha), f64::from(g.beta));
    out.iter_mut().for_each(|v| *v *= alpha);
    if let Some(c) = x.opt(2) {
        let ic = broadcast_map(&c.dims, &od)?;
        let cv = c.to_f64()?;
        for (v, &i) in out.iter_mut().zip(&ic) {
            *v += beta * cv[i];
        }
    }
    Array::from_f64s(a.elem, od, out)
}

fn einsum(op: &Op, xs: &[&Array]) -> Result<Array, EvalError> {
    let eq: String = a_str(op, "equation", "")?.chars().filter(|c| !c.is_whitespace()).collect();
    let (lhs, rhs) = match eq.split_once("->") {
        Some((l, r)) => (l.to_string(), Some(r.to_string())),
        None => (eq.clone(), None),
    };
    let terms: Vec<&str> = lhs.split(',').collect();
    if terms.len() != xs.len() {
        return Err(EvalError::attr("Einsum equation and inputs differ in count"));
    }
    // Expand ellipses into upper-case labels from the end of the alphabet.
    let ell: Vec<char> = ('A'..='Z').rev().collect();
    let mut max_ell = 0;
    let mut labels: Vec<Vec<char>> = Vec::new();
    for (t, a) in terms.iter().zip(xs) {
        let explicit = t.replace("...", "").chars().count();
        let ne = if t.contains("...") {
            a.rank().checked_sub(explicit).ok_or_else(|| EvalError::shape("Einsum rank"))?
        } else {
            0
        };
        max_ell = max_ell.max(ne);
        let e: String = ell[..ne].iter().rev().collect();
        labels.push(t.replace("...", &e).chars().collect());
    }
    let out_labels: Vec<char> = match rhs {
        Some(r) => {
            let e: String = ell[..max_ell].iter().rev().collect();
            r.replace("...", &e).chars().collect()
        }
        None => {
            let mut all: Vec<char> = labels.iter().flatten().copied().collect();
            all.sort_unstable();
            let mut once: Vec<char> = all
                .iter()
                .copied()
                .filter(|c| all.iter().filter(|d| *d == c).count() == 1 && c.is_lowercase())
                .collect();
            once.dedup();
            let mut e: Vec<char> = ell[..max_ell].iter().rev().copied().collect();
            e.extend(once);
            e
        }
    };
    let mut names: Vec<char> = Vec::new();
    let mut sizes: Vec<usize> = Vec::new();
    for (l, a) in labels.iter().zip(xs) {
        if l.len() != a.rank() {
            return Err(EvalError::shape("Einsum term rank differs from its input"));
        }
        for (&ch, &d) in l.iter().zip(&a.dims) {
            match names.iter().position(|&c| c == ch) {
                Some(p) if sizes[p] == d || d == 1 => {}
                Some(p) if sizes[p] == 1 => sizes[p] = d,
                Some(_) => return Err(EvalError::shape("Einsum label sizes differ")),
                None => {
                    names.push(ch);
                    sizes.push(d);
                }
            }
        }
    }
    let pos_of = |c: char| names.iter().position(|&x| x == c);
    let od: Vec<usize> = out_labels
        .iter()
        .map(|&c| pos_of(c).map(|p| sizes[p]))
        .collect::<Option<_>>()
        .ok_or_else(|| EvalError::attr("Einsum output label not in inputs"))?;
    let ostr = strides(&od);
    let mut out = vec![0.0; alloc_count(&od)?];
    let vals: Vec<Vec<f64>> = xs.iter().map(|a| a.to_f64()).collect::<Result<_, _>>()?;
    let maps: Vec<(Vec<usize>, Vec<usize>)> = labels
        .iter()
        .zip(xs)
        .map(|(l, a)| (l.iter().map(|&c| pos_of(c).unwrap_or(0)).collect(), strides(&a.dims)))
        .collect();
    let omap: Vec<usize> = out_labels.iter().map(|&c| pos_of(c).unwrap_or(0)).collect();
    alloc_count(&sizes)?;
    for_each_index(&sizes, |p| {
        let mut prod = 1.0;
        for (t, (m, s)) in maps.iter().enumerate() {
            let f: usize = m
                .iter()
                .zip(s)
                .enumerate()
                .map(|(q, (&li, &st))| if xs[t].dims[q] == 1 { 0 } else { p[li] * st })
                .sum();
            prod *= vals[t][f];
        }
        let of: usize = omap.iter().zip(&ostr).map(|(&li, &st)| p[li] * st).sum();
        out[of] += prod;
    });
    Array::from_f64s(xs[0].elem, od, out)
}

/// NN kernels; `None` when `op` is not one of them.
pub(crate) fn eval(op: &Op, x: &Ins<'_>, _opset: i64) -> Result<Option<Vec<Array>>, EvalError> {
    let out = match op.kind() {
        OpKind::Conv => conv(op, x)?,
        OpKind::ConvInteger => conv_integer(op, x)?,
        OpKind::QLinearConv => qlinear_conv(op, x)?,
        OpKind::ConvTranspose => conv_transpose(op, x)?,
        OpKind::MaxPool => return Ok(Some(pool(op, x.get(0)?, true, false)?)),
        OpKind::AveragePool => return Ok(Some(pool(op, x.get(0)?, false, false)?)),
        OpKind::GlobalMaxPool => pool(op, x.get(0)?, true, true)?.swap_remove(0),
        OpKind::GlobalAveragePool => pool(op, x.get(0)?, false, true)?.swap_remove(0),
        OpKind::Gemm => gemm(op, x)?,
        OpKind::MatMul => {
            let (a, b) = (x.get(0)?, x.get(1)?);
            let (o, d) = matmul_f64(&a.to_f64()?, &a.dims, &b.to_f64()?, &b.dims)?;
            Array::from_f64s(a.elem, d, o)?
        }
        OpKind::MatMulInteger => {
            let (a, b) = (x.get(0)?, x.get(1)?);
            let av = minus_zp(a, x.opt(2), a.rank().saturating_sub(2))?;
            let bv = minus_zp(b, x.opt(3), b.rank().saturating_sub(1))?;
            let (o, d) = matmul_f64(&av, &a.dims, &bv, &b.dims)?;
            Array::from_f64s(ElemType::I32, d, o)?
        }
        OpKind::QLinearMatMul => {
            let (a, b) = (x.get(0)?, x.get(3)?);
            let av = minus_zp(a, x.opt(2), a.rank().saturating_sub(2))?;
            let bv = minus_zp(b, x.opt(5), b.rank().saturating_sub(1))?;
            let (o, d) = matmul_f64(&av, &a.dims, &bv, &b.dims)?;
            let sa = x.get(1)?;
            let (asc, bsc, ysc) = (sa.to_f64()?[0], x.get(4)?.to_f64()?[0], x.get(6)?.to_f64()?[0]);
            let factor = if sa.elem == ElemType::F16 {
                let ab = half::f16::from_f64(asc * bsc).to_f64();
                half::f16::from_f64(ab / ysc).to_f64()
            } else {
                f64::from((asc as f32 * bsc as f32) / ysc as f32)
            };
            let zp = x.get(7)?;
            requantize(o.into_iter().map(|v| v * factor).collect(), zp, zp.elem, d)?
        }
        OpKind::Einsum => {
            let xs: Vec<&Array> = (0..x.len()).map(|i| x.get(i)).collect::<Result<_, _>>()?;
            einsum(op, &xs)?
        }
        _ => return Ok(None),
    };
    Ok(Some(vec![out]))
}
