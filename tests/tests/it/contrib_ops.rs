//! onnxruntime's contrib ops (`com.microsoft`, and `SimplifiedLayerNormalization` in the
//! default domain) through qc's evaluator and shape inference, against the outputs onnxruntime
//! gave on the same inputs (`tests/golden/contrib_ops.json`, made by `contrib_ops.py` beside
//! it; `BiasAdd`, which has no CPU kernel there, against its documented formula).
//!
//! Floats agree within 1e-4 absolute plus 1e-4 relative; quantized outputs exactly; the
//! inferred element type and dims of every output exactly.

use qc_ir::{AttrValue, Dim, ElemType, Graph, Op};
use qc_passes::eval::{Array, Domain, eval_op};
use qc_passes::shape::{TypeFact, infer_op};
use serde_json::Value;

fn array(t: &Value) -> Array {
    let elem = ElemType::from_code(t["elem"].as_i64().unwrap() as i32);
    let dims: Vec<usize> =
        t["dims"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
    let data: Vec<f64> = t["data"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    Array::from_f64s(elem, dims, data).unwrap()
}

fn op_of(c: &Value) -> Op {
    let domain = c["domain"].as_str().unwrap();
    let mut op = Op::new(c["op"].as_str().unwrap(), (!domain.is_empty()).then(|| domain.to_string()));
    for a in c["attrs"].as_array().unwrap() {
        let name = a["name"].as_str().unwrap();
        let value = if let Some(s) = a.get("s") {
            AttrValue::String(s.as_str().unwrap().to_string().into())
        } else if let Some(f) = a.get("f") {
            AttrValue::Float(f.as_f64().unwrap() as f32)
        } else if let Some(i) = a.get("i") {
            AttrValue::Int(i.as_i64().unwrap())
        } else if let Some(v) = a.get("ints") {
            AttrValue::Ints(v.as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect())
        } else {
            AttrValue::Floats(
                a["floats"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect(),
            )
        };
        op = op.with_attr(name, value);
    }
    op
}

/// Why `got` differs from `want`, or `None`.
fn differs(got: &Array, want: &Array) -> Option<String> {
    if got.elem != want.elem || got.dims != want.dims {
        return Some(format!("{} {:?} instead of {} {:?}", got.elem, got.dims, want.elem, want.dims));
    }
    let (g, w) = (got.to_f64().unwrap(), want.to_f64().unwrap());
    let float = want.domain().unwrap() == Domain::Float;
    g.iter().zip(&w).enumerate().find_map(|(i, (a, b))| {
        let ok = if float { (a - b).abs() <= 1e-4 + 1e-4 * b.abs() } else { a == b };
        (!ok).then(|| format!("element {i}: {a} instead of {b}"))
    })
}

fn golden() -> Vec<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/golden/contrib_ops.json");
    let text = std::fs::read_to_string(path).unwrap();
    let d: Value = serde_json::from_str(&text).unwrap();
    d["cases"].as_array().unwrap().clone()
}

#[test]
fn contrib_ops_match_onnxruntime() {
    let cases = golden();
    let mut failures = Vec::new();
    let mut ops = std::collections::BTreeSet::new();
    for c in &cases {
        let name = c["name"].as_str().unwrap();
        let op = op_of(c);
        ops.insert(op.op_type().to_string());
        let ins: Vec<Option<Array>> =
            c["inputs"].as_array().unwrap().iter().map(|t| (!t.is_null()).then(|| array(t))).collect();
        let refs: Vec<Option<&Array>> = ins.iter().map(Option::as_ref).collect();
        let want: Vec<Array> = c["outputs"].as_array().unwrap().iter().map(array).collect();
        match eval_op(&op, &refs, 17) {
            Err(e) => failures.push(format!("{name}: {e}")),
            Ok(got) => {
                for (k, w) in want.iter().enumerate() {
                    match got.get(k) {
                        None => failures.push(format!("{name}: no output {k}")),
                        Some(g) => {
                            if let Some(why) = differs(g, w) {
                                failures.push(format!("{name}: output {k}: {why}"));
                            }
                        }
                    }
                }
            }
        }
    }
    for f in &failures {
        eprintln!("FAIL {f}");
    }
    eprintln!("contrib ops: {} cases of {} ops, {} fail", cases.len(), ops.len(), failures.len());
    assert!(failures.is_empty(), "{} of {} cases differ from onnxruntime", failures.len(), cases.len());
    assert_eq!(cases.len(), 39);
}

#[test]
fn contrib_ops_shapes_match_onnxruntime() {
    let cases = golden();
    let mut failures = Vec::new();
    for c in &cases {
        let name = c["name"].as_str().unwrap();
        let inputs = c["inputs"].as_array().unwrap();
        let outputs = c["outputs"].as_array().unwrap();
        let mut g = Graph::new();
        let ins: Vec<_> = (0..inputs.len())
            .map(|i| (!inputs[i].is_null()).then(|| g.value_named(&format!("i{i}"))))
            .collect();
        let outs: Vec<_> = (0..outputs.len()).map(|k| Some(g.value_named(&format!("o{k}")))).collect();
        let id = g.add_op(op_of(c), ins, outs);
        let facts: Vec<Option<TypeFact>> = inputs
            .iter()
            .map(|t| {
                (!t.is_null()).then(|| {
                    let a = array(t);
                    TypeFact::new(a.elem, a.dims.iter().map(|&d| Dim::Known(d as u64)).collect())
                })
            })
            .collect();
        let got = match infer_op(g.op(id), &facts, 17) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        for (k, t) in outputs.iter().enumerate() {
            let w = array(t);
            let want = TypeFact::new(w.elem, w.dims.iter().map(|&d| Dim::Known(d as u64)).collect());
            let g = got.get(k).cloned().flatten();
            if g.as_ref().map(|f| (&f.elem, &f.shape)) != Some((&want.elem, &want.shape)) {
                failures.push(format!("{name}: output {k}: {g:?} instead of {want:?}"));
            }
        }
    }
    for f in &failures {
        eprintln!("FAIL {f}");
    }
    assert!(failures.is_empty(), "{} shape failures", failures.len());
}
