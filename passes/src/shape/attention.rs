//! `Attention` (opset 23): scaled dot-product attention over 4-D `[B, heads, seq, head_size]`
//! inputs, or 3-D `[B, seq, heads * head_size]` ones with `q_num_heads` and `kv_num_heads`.
//!
//! Outputs: `Y` (`[B, q_heads, q_seq, v_head_size]`, or 3-D `[B, q_seq, q_heads * v_head_size]`),
//! `present_key` and `present_value` (`past` concatenated with `K`/`V` along the sequence, 4-D),
//! `qk_matmul_output` (`[B, q_heads, q_seq, total_seq]`).

use qc_ir::{Dim, OpKind};

use super::{Cx, Kind, R, TypeFact, bad};

pub(crate) fn infer(cx: &Cx) -> Option<R<Vec<Option<TypeFact>>>> {
    match cx.op.kind() {
        OpKind::Attention => Some(attention(cx)),
        _ => None,
    }
}

/// `a + b` for sequence lengths.
fn dim_add(a: &Dim, b: &Dim) -> Dim {
    match (a, b) {
        (Dim::Known(x), Dim::Known(y)) => Dim::Known(x.saturating_add(*y)),
        (Dim::Known(0), d) | (d, Dim::Known(0)) => d.clone(),
        _ => Dim::Unknown,
    }
}

/// `d / k` when `d` is known and divisible.
fn dim_div(d: &Dim, k: u64, what: &str) -> R<Dim> {
    match d {
        Dim::Known(n) if k == 0 || n % k != 0 => {
            bad(Kind::Incompatible, format!("{what} {n} is not a multiple of the head count {k}"))
        }
        Dim::Known(n) => Ok(Dim::Known(n / k)),
        _ => Ok(Dim::Unknown),
    }
}

/// The dims `[B, heads, seq, size]` of a 4-D input, or of a 3-D one split into `heads`.
fn heads_form(d: &[Dim], heads: Option<u64>, what: &str) -> R<[Dim; 4]> {
    match (d, heads) {
        ([b, h, s, e], _) => Ok([b.clone(), h.clone(), s.clone(), e.clone()]),
        ([b, s, hidden], Some(n)) => Ok([b.clone(), Dim::Known(n), s.clone(), dim_div(hidden, n, what)?]),
        ([_, _, _], None) => bad(Kind::Attribute, "3-D Attention inputs need q_num_heads and kv_num_heads"),
        _ => bad(Kind::Rank, format!("{what} has rank {}: Attention takes 3-D or 4-D inputs", d.len())),
    }
}

fn heads_attr(cx: &Cx, name: &str) -> R<Option<u64>> {
    match cx.attr_int(name, 0)? {
        0 => Ok(None),
        n if n > 0 => Ok(Some(n as u64)),
        n => bad(Kind::Attribute, format!("{name} is {n}; it must be positive")),
    }
}

fn attention(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let (q, k, v) = (cx.dims(0)?, cx.dims(1)?, cx.dims(2)?);
    if q.len() != k.len() || q.len() != v.len() {
        return bad(Kind::Rank, format!("Q, K and V have ranks {}, {} and {}", q.len(), k.len(), v.len()));
    }
    let (qh, kvh) = (heads_attr(cx, "q_num_heads")?, heads_attr(cx, "kv_num_heads")?);
    let [b, hq, s, dq] = heads_form(q, qh, "Q's hidden size")?;
    let [_, hk, t, dk] = heads_form(k, kvh, "K's hidden size")?;
    let [_, hv, _, dv] = heads_form(v, kvh, "V's hidden size")?;
    if let (Dim::Known(x), Dim::Known(y)) = (&hk, &hv)
        && x != y
    {
        return bad(Kind::Incompatible, format!("K has {x} heads and V {y}"));
    }
    if let (Dim::Known(x), Dim::Known(y)) = (&dq, &dk)
        && x != y
    {
        return bad(Kind::Incompatible, format!("Q's head size {x} differs from K's {y}"));
    }
    if let (Dim::Known(x), Dim::Known(y)) = (&hq, &hk)
        && (*y == 0 || x % y != 0)
    {
        return bad(Kind::Incompatible, format!("{x} query heads are not a multiple of {y} key heads"));
    }
    // The past key and value (inputs 4 and 5) lengthen the sequence the queries attend over.
    let past = if cx.has(4) {
        let p = cx.dims(4)?;
        if p.len() != 4 {
            return bad(Kind::Rank, format!("past_key has rank {}; it must be 4-D", p.len()));
        }
        p[2].clone()
    } else {
        Dim::Known(0)
    };
    let total = dim_add(&past, &t);
    let elem = cx.elem_opt(0);
    let y = if q.len() == 3 {
        let hidden = match (&hq, &dv) {
            (Dim::Known(h), Dim::Known(d)) => Dim::Known(h.saturating_mul(*d)),
            _ => Dim::Unknown,
        };
        vec![b.clone(), s.clone(), hidden]
    } else {
        vec![b.clone(), hq.clone(), s.clone(), dv.clone()]
    };
    let mut outs = vec![Some(TypeFact { elem, shape: Some(y), value: None })];
    let present = |h: &Dim, d: &Dim, i: usize| TypeFact {
        elem: cx.elem_opt(i),
        shape: Some(vec![b.clone(), h.clone(), total.clone(), d.clone()]),
        value: None,
    };
    for i in 1..cx.n_out() {
        outs.push(Some(match i {
            1 => present(&hk, &dk, 1),
            2 => present(&hv, &dv, 2),
            _ => TypeFact {
                elem,
                shape: Some(vec![b.clone(), hq.clone(), s.clone(), total.clone()]),
                value: None,
            },
        }));
    }
    Ok(outs)
}

#[cfg(test)]
mod tests {
    use qc_ir::{AttrValue, Dim, ElemType, Op};

    use crate::shape::{ShapeError, TypeFact, infer_op};

    fn k(n: u64) -> Dim {
        Dim::Known(n)
    }

    /// The output shapes of `op` on inputs of `dims` (`None`: omitted), with `n_out` outputs.
    fn shapes(op: &Op, dims: &[Option<Vec<Dim>>], n_out: usize) -> Result<Vec<Option<Vec<Dim>>>, ShapeError> {
        let mut g = qc_ir::Graph::new();
        let ins: Vec<_> = dims
            .iter()
            .enumerate()
            .map(|(i, d)| d.as_ref().map(|_| g.value_named(&format!("i{i}"))))
            .collect();
        let outs: Vec<_> = (0..n_out).map(|i| Some(g.value_named(&format!("o{i}")))).collect();
        let id = g.add_op(op.clone(), ins, outs);
        let facts: Vec<Option<TypeFact>> =
            dims.iter().map(|d| d.clone().map(|d| TypeFact::new(ElemType::F32, d))).collect();
        Ok(infer_op(g.op(id), &facts, 23)?.into_iter().map(|f| f.and_then(|f| f.shape)).collect())
    }

    #[test]
    fn four_d_three_d_and_past_inputs() {
        let att = Op::new("Attention", None);
        let q = vec![Dim::Sym("B".into()), k(8), k(5), k(16)];
        let kv = vec![Dim::Sym("B".into()), k(2), k(7), k(16)];
        let v = vec![Dim::Sym("B".into()), k(2), k(7), k(4)];
        let got = shapes(&att, &[Some(q.clone()), Some(kv.clone()), Some(v.clone())], 4).unwrap();
        let b = Dim::Sym("B".into());
        assert_eq!(got[0], Some(vec![b.clone(), k(8), k(5), k(4)]));
        assert_eq!(got[1], Some(kv.clone()));
        assert_eq!(got[3], Some(vec![b.clone(), k(8), k(5), k(7)]));
        // A past of 3 steps lengthens the keys.
        let past = Some(vec![b.clone(), k(2), k(3), k(16)]);
        let pv = Some(vec![b.clone(), k(2), k(3), k(4)]);
        let with_past = [Some(q), Some(kv), Some(v), None, past, pv];
        let got = shapes(&att, &with_past, 4).unwrap();
        assert_eq!(got[1], Some(vec![b.clone(), k(2), k(10), k(16)]));
        assert_eq!(got[2], Some(vec![b.clone(), k(2), k(10), k(4)]));
        assert_eq!(got[3], Some(vec![b, k(8), k(5), k(10)]));
        // 3-D: heads packed in the hidden dim.
        let att3 = Op::new("Attention", None)
            .with_attr("q_num_heads", AttrValue::Int(4))
            .with_attr("kv_num_heads", AttrValue::Int(2));
        let three =
            [Some(vec![k(1), k(5), k(32)]), Some(vec![k(1), k(7), k(16)]), Some(vec![k(1), k(7), k(6)])];
        let got = shapes(&att3, &three, 2).unwrap();
        assert_eq!(got[0], Some(vec![k(1), k(5), k(12)]));
        assert_eq!(got[1], Some(vec![k(1), k(2), k(7), k(8)]));
    }

    #[test]
    fn inputs_that_do_not_fit_are_errors() {
        let att = Op::new("Attention", None);
        let q = Some(vec![k(1), k(3), k(5), k(16)]);
        let kv = Some(vec![k(1), k(2), k(7), k(16)]);
        let v = Some(vec![k(1), k(2), k(7), k(4)]);
        let e = shapes(&att, &[q, kv.clone(), v.clone()], 1).unwrap_err();
        assert_eq!(e.code(), "qc::shape::incompatible", "3 query heads on 2 key heads");
        let q8 = Some(vec![k(1), k(2), k(5), k(8)]);
        assert!(shapes(&att, &[q8, kv, v], 1).is_err(), "head sizes 8 and 16");
        let three =
            [Some(vec![k(1), k(5), k(32)]), Some(vec![k(1), k(7), k(16)]), Some(vec![k(1), k(7), k(6)])];
        assert_eq!(shapes(&att, &three, 1).unwrap_err().code(), "qc::shape::attribute", "no head counts");
        let two = [Some(vec![k(5), k(32)]), Some(vec![k(7), k(32)]), Some(vec![k(7), k(6)])];
        assert_eq!(shapes(&att, &two, 1).unwrap_err().code(), "qc::shape::rank");
    }
}
