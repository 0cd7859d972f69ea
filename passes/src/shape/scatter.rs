//! Index, scan and spectral ops: `NonZero`, `ScatterND`, `ScatterElements`, `Scatter`,
//! `CumSum`, `STFT`, and `DynamicQuantizeLinear`'s three outputs. `NonZero`'s count is known
//! when its input's values are.

use qc_ir::{Dim, ElemType, OpKind};

use super::{Cx, Fail, Kind, R, TypeFact, bad, one};

pub(crate) fn infer(cx: &Cx) -> Option<R<Vec<Option<TypeFact>>>> {
    Some(match cx.op.kind() {
        OpKind::ScatterND | OpKind::ScatterElements | OpKind::Scatter | OpKind::CumSum => same(cx),
        OpKind::NonZero => cx.dims(0).and_then(|d| {
            let rank = u64::try_from(d.len()).map_err(|_| Fail::Unknown)?;
            // The count is known when the values are.
            let count = cx
                .values(0)
                .ok()
                .and_then(|v| v.as_f64())
                .map_or(Dim::Unknown, |v| Dim::Known(v.iter().filter(|x| **x != 0.0).count() as u64));
            one(TypeFact::new(ElemType::I64, vec![Dim::Known(rank), count]))
        }),
        OpKind::Stft => stft(cx),
        OpKind::DynamicQuantizeLinear => cx.dims(0).map(|d| {
            vec![
                Some(TypeFact::new(ElemType::U8, d.to_vec())),
                Some(TypeFact::new(ElemType::F32, vec![])),
                Some(TypeFact::new(ElemType::U8, vec![])),
            ]
        }),
        _ => return None,
    })
}

fn same(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let f = cx.fact(0)?;
    if f.shape.is_none() && f.elem.is_none() {
        return Err(Fail::Unknown);
    }
    one(TypeFact { elem: f.elem, shape: f.shape.clone(), value: None })
}

/// `[batch, frames, bins, 2]`: frames from the signal length, the step and the frame length
/// (the `frame_length` input, else the window's length); bins halved when `onesided`.
fn stft(cx: &Cx) -> R<Vec<Option<TypeFact>>> {
    let s = cx.dims(0)?;
    let [batch, len, _] = s else {
        return bad(Kind::Rank, format!("the signal must have rank 3, not {}", s.len()));
    };
    let onesided = cx.attr_int("onesided", 1)? != 0;
    let flen = if cx.has(3) {
        cx.ints(3).ok().and_then(|v| v.first().copied()).map_or(Dim::Unknown, dim_of)
    } else if cx.has(2) {
        cx.dims(2).ok().and_then(|d| d.first().cloned()).unwrap_or(Dim::Unknown)
    } else {
        Dim::Unknown
    };
    let step = cx.ints(1).ok().and_then(|v| v.first().copied());
    let frames = match (len, &flen, step) {
        (Dim::Known(l), Dim::Known(f), Some(st)) if st > 0 && f <= l => Dim::Known((l - f) / st as u64 + 1),
        (Dim::Known(l), Dim::Known(f), Some(st)) => {
            return bad(
                Kind::Incompatible,
                format!("frame_length {f} and frame_step {st} do not fit a signal of {l}"),
            );
        }
        _ => Dim::Unknown,
    };
    let bins = match flen {
        Dim::Known(f) if onesided => Dim::Known(f / 2 + 1),
        d if !onesided => d,
        _ => Dim::Unknown,
    };
    one(TypeFact {
        elem: cx.elem_opt(0),
        shape: Some(vec![batch.clone(), frames, bins, Dim::Known(2)]),
        value: None,
    })
}

fn dim_of(n: i64) -> Dim {
    u64::try_from(n).map_or(Dim::Unknown, Dim::Known)
}
