//! Recurrent layers: `LSTM`, `GRU`, `RNN` and onnxruntime's `com.microsoft.DynamicQuantizeLSTM`.
//!
//! `Y` is `[seq_length, num_directions, batch, hidden]` (`layout` 1:
//! `[batch, seq_length, num_directions, hidden]`), `Y_h` and (LSTM) `Y_c` are
//! `[num_directions, batch, hidden]` (`layout` 1: `[batch, num_directions, hidden]`), all of
//! `X`'s element type. `seq_length` and `batch` come from `X`, `num_directions` from
//! `direction`, `hidden` from `hidden_size` or else from `R` (ONNX: `[nd, gates*hidden,
//! hidden]`; `DynamicQuantizeLSTM`: `[nd, hidden, 4*hidden]`, with no `layout`).

use qc_ir::{Dim, OpKind};

use super::{Cx, Kind, R, TypeFact, bad};

/// The rule for a recurrent layer: `LSTM`, `GRU`, `RNN`, or onnxruntime's `DynamicQuantizeLSTM`.
pub(crate) fn infer(cx: &Cx) -> Option<R<Vec<Option<TypeFact>>>> {
    match cx.op.kind() {
        OpKind::Lstm | OpKind::Gru | OpKind::Rnn => Some(recurrent(cx, 2, true)),
        OpKind::DynamicQuantizeLstm => Some(recurrent(cx, 1, false)),
        _ => None,
    }
}

/// `r_hidden_axis`: the axis of `R` that is `hidden`; `layouts`: whether `layout` is read.
fn recurrent(cx: &Cx, r_hidden_axis: usize, layouts: bool) -> R<Vec<Option<TypeFact>>> {
    let x = cx.fact(0)?;
    let nd = match cx.attr_str("direction", "forward")?.as_str() {
        "forward" | "reverse" => 1,
        "bidirectional" => 2,
        other => return bad(Kind::Attribute, format!("unknown direction `{other}`")),
    };
    let layout1 = layouts && cx.attr_int("layout", 0)? != 0;
    let hidden = match cx.attr_int("hidden_size", -1)? {
        -1 => match cx.dims(2).ok() {
            Some(r) if r.len() == 3 => r[r_hidden_axis].clone(),
            Some(r) => return bad(Kind::Rank, format!("R has rank {}; it must be 3-D", r.len())),
            None => Dim::Unknown,
        },
        h if h >= 0 => Dim::Known(h as u64),
        h => return bad(Kind::Attribute, format!("hidden_size {h} is negative")),
    };
    let (seq, batch) = match x.shape.as_deref() {
        Some([a, b, _]) => {
            if layout1 {
                (b.clone(), a.clone())
            } else {
                (a.clone(), b.clone())
            }
        }
        Some(s) => return bad(Kind::Rank, format!("X has rank {}; it must be 3-D", s.len())),
        None => (Dim::Unknown, Dim::Unknown),
    };
    let nd = Dim::Known(nd);
    let (y, state) = if layout1 {
        (vec![batch.clone(), seq, nd.clone(), hidden.clone()], vec![batch, nd, hidden])
    } else {
        (vec![seq, nd.clone(), batch.clone(), hidden.clone()], vec![nd, batch, hidden])
    };
    let fact = |dims: Vec<Dim>| TypeFact { elem: x.elem, shape: Some(dims), value: None };
    let n = if matches!(cx.op.kind(), OpKind::Lstm | OpKind::DynamicQuantizeLstm) { 3 } else { 2 };
    let mut out = vec![Some(fact(y)), Some(fact(state.clone()))];
    if n == 3 {
        out.push(Some(fact(state)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use qc_ir::{AttrValue, Dim, ElemType, Op};

    use super::super::{TypeFact, infer_op};

    fn fact(elem: ElemType, dims: &[u64]) -> Option<TypeFact> {
        Some(TypeFact::new(elem, dims.iter().map(|&d| Dim::Known(d)).collect()))
    }

    fn dims(f: &Option<TypeFact>) -> Vec<Dim> {
        f.as_ref().and_then(|f| f.shape.clone()).unwrap_or_default()
    }

    /// Infers `op` with `n_out` outputs.
    fn infer(op: Op, ins: &[Option<TypeFact>], n_out: usize) -> Vec<Option<TypeFact>> {
        let mut g = qc_ir::Graph::new();
        let i = (0..ins.len()).map(|k| Some(g.value_named(&format!("i{k}")))).collect();
        let o = (0..n_out).map(|k| Some(g.value_named(&format!("o{k}")))).collect();
        let id = g.add_op(op, i, o);
        infer_op(g.op(id), ins, 17).unwrap()
    }

    fn known(v: &[u64]) -> Vec<Dim> {
        v.iter().map(|&d| Dim::Known(d)).collect()
    }

    #[test]
    fn dynamic_quantize_lstm_reads_hidden_from_its_transposed_r() {
        let op = Op::new("DynamicQuantizeLSTM", Some("com.microsoft".into()))
            .with_attr("direction", AttrValue::String(Bytes::from_static(b"bidirectional")));
        let ins = [
            fact(ElemType::F32, &[7, 2, 16]),
            fact(ElemType::I8, &[2, 16, 32]),
            fact(ElemType::I8, &[2, 8, 32]),
        ];
        let out = infer(op, &ins, 3);
        assert_eq!(out.len(), 3);
        assert_eq!(dims(&out[0]), known(&[7, 2, 2, 8]));
        assert_eq!(dims(&out[1]), known(&[2, 2, 8]));
        assert_eq!(out[2].as_ref().and_then(|f| f.elem), Some(ElemType::F32));
    }

    #[test]
    fn gru_layout_1_puts_the_batch_first() {
        let op = Op::new("GRU", None)
            .with_attr("layout", AttrValue::Int(1))
            .with_attr("hidden_size", AttrValue::Int(4));
        let ins = [fact(ElemType::F32, &[3, 5, 6]), fact(ElemType::F32, &[1, 12, 6]), None];
        let out = infer(op, &ins, 2);
        assert_eq!(dims(&out[0]), known(&[3, 5, 1, 4]));
        assert_eq!(dims(&out[1]), known(&[3, 1, 4]));
        let bad = Op::new("RNN", None).with_attr("direction", AttrValue::String(Bytes::from_static(b"up")));
        assert!(infer_op(&bad, &ins, 17).is_err());
    }
}
