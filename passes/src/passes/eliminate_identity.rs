//! `eliminate-identity`: removes ops that pass their input through unchanged.
//!
//! What it does: in the main graph, finds default-domain ops that compute their (first) input
//! unchanged and makes their readers read that input instead, then removes the op:
//!
//! | kind | fires when |
//! |---|---|
//! | `identity` | always |
//! | `dropout` | not training: `training_mode` absent or a constant false (opset >= 7, or `is_test = 1` before), and the `mask` output absent or unread |
//! | `reshape`, `flatten`, `squeeze`, `unsqueeze`, `expand` | the output's declared shape is fully known and equals the input's, with the same element type |
//! | `transpose` | `perm` is `0..n` (or absent on a rank 0 or 1 input) |
//! | `slice` | the output's shape equals the input's (fully known) and every step is the constant 1 |
//! | `pad` | every pad is the constant 0 (any mode) |
//! | `cast` | `to` is the input's element type |
//! | `concat` | one input |
//! | `split` | one output, whose known shape equals the input's, or no split sizes given |
//! | `mul`, `div` | the second operand (either operand for `Mul`) is a constant of all ones (not a graph input) |
//! | `add`, `sub` | the second operand (either operand for `Add`) is a constant of all zeros (not a graph input) |
//!
//! For the arithmetic kinds, the output's declared shape and element type must be fully known
//! and equal to those of the operand that is kept, so that broadcasting changes nothing.
//!
//! Graph outputs keep their names. When the removed op writes a graph output `y` from `x`, the
//! op that produces `x` is made to write `y` instead, and every reader of `x` reads `y`. This is
//! done only when `x` is written by an op of the graph, is not itself a graph output, and is not
//! renamed for another output; otherwise (a graph input, an initializer, ...) the op is kept and
//! counted in `kept-graph-output`. An op whose output (or, for a graph output, whose input) is
//! read by name from an If/Loop/Scan body is kept too. Ops inside bodies are not touched.
//! `value_info` declarations of values that are no longer written are left for `eliminate-dead`.
//!
//! Preconditions: `infer-shapes` (the shape-based kinds need declared shapes; without them those
//! kinds do not fire). Postconditions: the model computes the same outputs; graph inputs and
//! output names are unchanged.
//!
//! Statistics: one counter per kind that fired (`identity`, `dropout`, `reshape`, `flatten`,
//! `squeeze`, `unsqueeze`, `transpose`, `slice`, `pad`, `cast`, `concat`, `split`, `expand`,
//! `mul`, `div`, `add`, `sub`), and `kept-graph-output`.

use std::collections::HashSet;

use qc_ir::{ElemType, Model, Op, ValueId, ValueType};

use crate::pass::{Changed, Pass, PassContext, PassError};
use crate::quant::{const_array, value_elem};
use crate::registry::PassInfo;
use crate::rewrite::{Rewrite, captured_names, redirect_uses, stable_order};

pub const INFO: PassInfo = PassInfo {
    name: "eliminate-identity",
    summary: "remove ops that pass their input through unchanged (Identity, no-op Reshape, Mul by one, ...)",
    options: &[],
    build: |_| Ok(Box::new(EliminateIdentity)),
};

/// The `eliminate-identity` pass.
pub struct EliminateIdentity;

impl Pass for EliminateIdentity {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        Ok(Changed::from_bool(eliminate(model, cx)))
    }
}

/// The element type and fully known shape of a value (declared, or from its initializer).
fn known_type(model: &Model, v: ValueId) -> Option<(ElemType, Vec<u64>)> {
    let val = model.graph.value(v);
    if let Some(t) = val.tensor() {
        let dims = t.dims.iter().map(|&d| u64::try_from(d).ok()).collect::<Option<Vec<u64>>>()?;
        return Some((t.elem?, dims));
    }
    match val.ty.as_ref()?.ty.as_ref()? {
        ValueType::Tensor { elem: Some(e), shape: Some(s) } => Some((*e, s.as_known()?)),
        _ => None,
    }
}

/// Whether two values have the same element type and the same fully known shape.
fn same_type(model: &Model, a: ValueId, b: ValueId) -> bool {
    match (known_type(model, a), known_type(model, b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// Whether `v` is a constant whose every element equals `x`. An initializer that is also a
/// graph input is a default the caller may override, so it is not a constant.
fn all_equal(model: &Model, v: Option<ValueId>, x: f64) -> bool {
    let Some(v) = v.filter(|v| !model.graph.inputs.contains(v)) else { return false };
    // A large weight is rarely all ones or zeros: look at its first element before reading all.
    if let Some(t) = model.graph.value(v).tensor()
        && t.element_count().is_ok_and(|n| n > 1024)
        && first_element(model, t).is_some_and(|first| first != x)
    {
        return false;
    }
    let Some(a) = const_array(model, v) else { return false };
    match a.to_f64() {
        Ok(vals) => vals.iter().all(|&e| e == x),
        Err(_) => false,
    }
}

/// The first element of a tensor stored as raw or external bytes, read without the rest.
fn first_element(model: &Model, t: &qc_ir::Tensor) -> Option<f64> {
    let size = usize::try_from(t.elem_type().bits()?).ok().filter(|b| b % 8 == 0)? / 8;
    if !matches!(t.data, qc_ir::TensorData::Raw(_) | qc_ir::TensorData::External(_)) {
        return None;
    }
    let bytes = model.tensor_bytes(t).ok()?;
    let head = qc_ir::Tensor {
        dims: vec![1],
        data: qc_ir::TensorData::Raw(bytes.get(..size).map(bytes::Bytes::copy_from_slice)?),
        ..t.clone()
    };
    crate::eval::Array::from_tensor(&head, model).ok()?.to_f64().ok()?.first().copied()
}

/// If `op` passes an input through unchanged: that input and the kind's statistic name.
fn passes_through(model: &Model, op: &Op) -> Option<(ValueId, &'static str)> {
    if !op.domain().is_empty() {
        return None;
    }
    let ins = op.inputs();
    let outs = op.outputs();
    let x = (*ins.first()?)?;
    let y = (*outs.first()?)?;
    let opset = model.onnx_opset();
    let first_only = outs.len() == 1;
    let kind = match op.op_type() {
        "Identity" if first_only => "identity",
        "Dropout" => {
            let mask_used =
                outs.get(1).copied().flatten().is_some_and(|m| {
                    !model.graph.value(m).uses().is_empty() || model.graph.outputs.contains(&m)
                });
            let training = match ins.get(2).copied().flatten() {
                Some(_) => !all_equal(model, ins[2], 0.0),
                None => opset < 7 && op.attr_int("is_test", 0).ok()? == 0,
            };
            if mask_used || training || outs.len() > 2 {
                return None;
            }
            "dropout"
        }
        "Reshape" | "Flatten" | "Squeeze" | "Unsqueeze" | "Expand" if first_only => {
            if !same_type(model, x, y) {
                return None;
            }
            match op.op_type() {
                "Reshape" => "reshape",
                "Flatten" => "flatten",
                "Squeeze" => "squeeze",
                "Unsqueeze" => "unsqueeze",
                _ => "expand",
            }
        }
        "Transpose" if first_only => {
            let rank = known_type(model, x).map(|(_, d)| d.len()).or_else(|| {
                let ValueType::Tensor { shape: Some(s), .. } =
                    model.graph.value(x).ty.as_ref()?.ty.as_ref()?
                else {
                    return None;
                };
                Some(s.rank())
            });
            let identity = match op.attr_ints("perm").ok()? {
                Some(perm) => {
                    perm.iter().enumerate().all(|(i, &p)| p == i as i64)
                        && rank.is_none_or(|r| r == perm.len())
                }
                None => rank.is_some_and(|r| r <= 1),
            };
            if !identity {
                return None;
            }
            "transpose"
        }
        "Slice" if first_only => {
            let steps_one = ins.len() < 5 || ins[4].is_none() || all_equal(model, ins[4], 1.0);
            if !steps_one || !same_type(model, x, y) {
                return None;
            }
            "slice"
        }
        "Pad" if first_only => {
            let zero = if opset >= 11 {
                all_equal(model, ins.get(1).copied().flatten(), 0.0)
            } else {
                let pads = op.attr_ints("pads").ok()?.or(op.attr_ints("paddings").ok()?)?;
                pads.iter().all(|&p| p == 0)
            };
            if !zero {
                return None;
            }
            "pad"
        }
        "Cast" if first_only => {
            let to = op.attr_int("to", -1).ok()?;
            let from = value_elem(model, x)?;
            if from == ElemType::Undefined || from.code() != i32::try_from(to).ok()? {
                return None;
            }
            "cast"
        }
        "Concat" if first_only && ins.len() == 1 => "concat",
        "Split" if first_only => {
            let sizes_given = ins.get(1).copied().flatten().is_some() || op.attr("split").is_some();
            if sizes_given && !same_type(model, x, y) {
                return None;
            }
            "split"
        }
        "Mul" | "Add" | "Div" | "Sub" if first_only && ins.len() == 2 => {
            let (unit, commutes, kind) = match op.op_type() {
                "Mul" => (1.0, true, "mul"),
                "Div" => (1.0, false, "div"),
                "Add" => (0.0, true, "add"),
                _ => (0.0, false, "sub"),
            };
            let b = ins[1]?;
            let keep = if all_equal(model, Some(b), unit) {
                x
            } else if commutes && all_equal(model, Some(x), unit) {
                b
            } else {
                return None;
            };
            if !same_type(model, keep, y) {
                return None;
            }
            return Some((keep, kind));
        }
        _ => return None,
    };
    Some((x, kind))
}

fn eliminate(model: &mut Model, cx: &mut PassContext) -> bool {
    let captured = captured_names(&model.graph);
    // Producers before readers, so that an op made to write a graph output is never removed later.
    let Some(ids) = stable_order(&model.graph) else { return false };
    // Producers made to write a graph output, applied at the end in one rebuild.
    let mut renames = Rewrite::default();
    let mut renamed: HashSet<ValueId> = HashSet::new();
    let mut changed = false;
    for id in ids {
        let Some((x, kind)) = passes_through(model, model.graph.op(id)) else { continue };
        let g = &mut model.graph;
        let Some(y) = g.op(id).outputs()[0] else { continue };
        if x == y || captured.contains(&g.value(y).name) {
            continue;
        }
        if g.outputs.contains(&y) {
            // Keep the output's name: the producer of `x` writes `y` instead.
            let producer = g.value(x).producer();
            let ok = producer.is_some_and(|p| p != id)
                && !g.outputs.contains(&x)
                && !g.inputs.contains(&x)
                && !g.initializers.contains(&x)
                && !renamed.contains(&x)
                && !captured.contains(&g.value(x).name);
            if !ok || !renames.replace_uses(g, y, x) {
                cx.count("kept-graph-output", 1);
                continue;
            }
            g.remove_op(id);
            redirect_uses(g, x, y);
            renamed.insert(x);
        } else {
            redirect_uses(g, y, x);
            g.remove_op(id);
        }
        cx.count(kind, 1);
        changed = true;
    }
    renames.apply(&mut model.graph);
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use qc_ir::text::parse_model;

    fn run(text: &str) -> (Model, PassContext) {
        let mut m = parse_model(text).unwrap();
        let mut cx = PassContext::default();
        EliminateIdentity.run(&mut m, &mut cx).unwrap();
        assert!(qc_ir::verify_model(&m).is_empty(), "{:?}", qc_ir::verify_model(&m));
        (m, cx)
    }

    #[test]
    fn identity_chain_into_a_graph_output_keeps_the_output_name() {
        let (m, cx) = run(
            "ir_version 8\nopset_import \"\" 13\ngraph @g(%x: f32[2]) -> (%y: f32[2]) {\n  %a = \"\"::Relu(%x)\n  \
             %b = \"\"::Identity(%a)\n  %y = \"\"::Identity(%b)\n}\n",
        );
        assert_eq!(cx.stats["identity"], 2);
        assert_eq!(m.graph.op_count(), 1);
        let y = m.graph.find("y").unwrap();
        assert_eq!(m.graph.value(y).producer(), m.graph.ops().next().map(|(id, _)| id));
    }

    #[test]
    fn identity_of_a_graph_input_into_a_graph_output_is_kept() {
        let (m, cx) = run(
            "ir_version 8\nopset_import \"\" 13\ngraph @g(%x: f32[2]) -> (%y: f32[2]) {\n  %y = \"\"::Identity(%x)\n}\n",
        );
        assert_eq!(cx.stats["kept-graph-output"], 1);
        assert_eq!(m.graph.op_count(), 1);
    }
}
