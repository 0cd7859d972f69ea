//! Matrix products: `MatMul`, `MatMulInteger`, `QLinearMatMul`, `Gemm`, `Einsum`.

use qc_ir::{Dim, ElemType, OpKind};

use super::elementwise::{broadcast_dim, broadcast_r};
use super::{Cx, Fail, Kind, R, TypeFact, bad, one};

pub(crate) fn infer(cx: &Cx) -> Option<R<Vec<Option<TypeFact>>>> {
    Some(match cx.op.kind() {
        OpKind::MatMul => matmul(cx, 0, 1, cx.elem_opt(0)),
        OpKind::MatMulInteger => matmul(cx, 0, 1, Some(ElemType::I32)),
        OpKind::QLinearMatMul => matmul(cx, 0, 3, Some(cx.elem_opt(7).unwrap_or(ElemType::U8))),
        OpKind::Gemm => gemm(cx),
        OpKind::Einsum => einsum(cx),
        _ => return None,
    })
}

/// The shape of `a @ b` (numpy `matmul`).
pub(crate) fn matmul_shape_r(a: &[Dim], b: &[Dim]) -> R<Vec<Dim>> {
    if a.is_empty() || b.is_empty() {
        return bad(Kind::Rank, "MatMul inputs must have rank at least 1");
    }
    let mut a2 = a.to_vec();
    let mut b2 = b.to_vec();
    if a.len() == 1 {
        a2.insert(0, Dim::Known(1));
    }
    if b.len() == 1 {
        b2.push(Dim::Known(1));
    }
    let (ka, kb) = (&a2[a2.len() - 1], &b2[b2.len() - 2]);
    if let (Dim::Known(x), Dim::Known(y)) = (ka, kb)
        && x != y
    {
        return bad(Kind::Incompatible, format!("inner dimensions {x} and {y} differ"));
    }
    let mut out = broadcast_r(&a2[..a2.len() - 2], &b2[..b2.len() - 2])?;
    if a.len() != 1 {
        out.push(a2[a2.len() - 2].clone());
    }
    if b.len() != 1 {
        out.push(b2[b2.len() - 1].clone());
    }
    Ok(out)
}

fn matmul(cx: &Cx, ai: usize, bi: usize, elem: Option<ElemType>) -> R<Vec<Option<TypeFact>>> {
    let s = matmul_shape_r(cx.dims(ai)?, cx.dims(bi)?)?;
    one(TypeFact { elem, shape: Some(s), value: None })
}

pub(crate) fn gemm(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let a = cx.dims(0)?;
    let b = cx.dims(1)?;
    if a.len() != 2 || b.len() != 2 {
        return bad(Kind::Rank, format!("Gemm needs rank-2 inputs, found ranks {} and {}", a.len(), b.len()));
    }
    let ta = cx.attr_int("transA", 0)? != 0;
    let tb = cx.attr_int("transB", 0)? != 0;
    let (m, ka) = if ta { (&a[1], &a[0]) } else { (&a[0], &a[1]) };
    let (kb, n) = if tb { (&b[1], &b[0]) } else { (&b[0], &b[1]) };
    if let (Dim::Known(x), Dim::Known(y)) = (ka, kb)
        && x != y
    {
        return bad(Kind::Incompatible, format!("inner dimensions {x} and {y} differ"));
    }
    one(TypeFact { elem: cx.elem_opt(0), shape: Some(vec![m.clone(), n.clone()]), value: None })
}

fn einsum(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let eq: String = cx.attr_str("equation", "")?.chars().filter(|c| !c.is_whitespace()).collect();
    let (lhs, rhs) = match eq.split_once("->") {
        Some((l, r)) => (l.to_string(), Some(r.to_string())),
        None => (eq.clone(), None),
    };
    let terms: Vec<&str> = lhs.split(',').collect();
    if terms.len() != cx.op.inputs().len() {
        return bad(
            Kind::Attribute,
            format!("the equation has {} operands, the op {}", terms.len(), cx.op.inputs().len()),
        );
    }
    let mut letters: Vec<(char, Dim, usize)> = Vec::new();
    let mut ellipsis: Vec<Dim> = Vec::new();
    for (i, term) in terms.iter().enumerate() {
        let dims = cx.dims(i)?;
        let has_ell = term.contains("...");
        let labels: Vec<char> = term.replace("...", "").chars().collect();
        if labels.iter().any(|c| !c.is_ascii_alphabetic()) {
            return bad(Kind::Attribute, format!("bad einsum term `{term}`"));
        }
        let n_ell = if has_ell {
            dims.len()
                .checked_sub(labels.len())
                .ok_or_else(|| Fail::Bad(Kind::Rank, "operand rank too small".into()))?
        } else {
            if dims.len() != labels.len() {
                return bad(Kind::Rank, format!("term `{term}` does not match rank {}", dims.len()));
            }
            0
        };
        let ell_at =
            if has_ell { term.find("...").map(|p| term[..p].len()).unwrap_or(0) } else { usize::MAX };
        let mut di = 0;
        let mut li = 0;
        while di < dims.len() {
            if di == ell_at {
                let e = &dims[di..di + n_ell];
                let n = ellipsis.len().max(e.len());
                let mut merged = Vec::new();
                for k in 0..n {
                    let x = if k + ellipsis.len() >= n {
                        ellipsis[k + ellipsis.len() - n].clone()
                    } else {
                        Dim::Known(1)
                    };
                    let y = if k + e.len() >= n { e[k + e.len() - n].clone() } else { Dim::Known(1) };
                    merged.push(broadcast_dim(&x, &y)?);
                }
                ellipsis = merged;
                di += n_ell;
                continue;
            }
            let c = labels[li];
            li += 1;
            match letters.iter_mut().find(|(l, _, _)| *l == c) {
                Some(entry) => {
                    entry.1 = broadcast_dim(&entry.1, &dims[di])?;
                    entry.2 += 1;
                }
                None => letters.push((c, dims[di].clone(), 1)),
            }
            di += 1;
        }
    }
    let mut out = Vec::new();
    match rhs {
        Some(r) => {
            let at = r.find("...");
            let plain = r.replace("...", "");
            for (k, c) in plain.chars().enumerate() {
                if at == Some(k) {
                    out.extend(ellipsis.iter().cloned());
                }
                let d = letters.iter().find(|(l, _, _)| *l == c).map(|e| e.1.clone());
                out.push(d.ok_or_else(|| {
                    Fail::Bad(Kind::Attribute, format!("output label `{c}` is not an input label"))
                })?);
            }
            if at.is_some_and(|p| p >= plain.len()) {
                out.extend(ellipsis.iter().cloned());
            }
        }
        None => {
            out.extend(ellipsis.iter().cloned());
            let mut once: Vec<&(char, Dim, usize)> = letters.iter().filter(|e| e.2 == 1).collect();
            once.sort_by_key(|e| e.0);
            out.extend(once.into_iter().map(|e| e.1.clone()));
        }
    }
    one(TypeFact { elem: cx.elem_opt(0), shape: Some(out), value: None })
}

/// The shape of `a @ b` (numpy `matmul`), or why the shapes do not fit.
pub fn matmul_shape(a: &[Dim], b: &[Dim]) -> Result<Vec<Dim>, String> {
    matmul_shape_r(a, b).map_err(|e| match e {
        Fail::Bad(_, m) => m,
        Fail::Unknown => "unknown".to_string(),
    })
}
