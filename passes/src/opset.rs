//! Opsets and IR versions: the default-domain opset upgrader and the one rule for raising a
//! model's IR version.
//!
//! [`upgrade_graph`] rewrites ops from their form in one default-domain opset to their form in a
//! newer one (attributes that became inputs, `axis` meanings that changed), or names the op that
//! has no equivalent newer form. [`set_default_opset`] sets the import and raises the IR version
//! to what the opset needs ([`ir_version_for`]). Every IR-version raise goes through
//! [`raise_ir_version`]; [`raise_ir_for_initializers`] is the one for initializers that are not
//! graph inputs, which IR versions before 4 do not allow.

use std::collections::HashMap;

use qc_ir::dims;
use qc_ir::{AttrValue, ElemType, Graph, Model, OpId, OpsetImport, ValueId};

use crate::eval::Array;
use crate::rewrite::{NewOp, add_const, elem_in, rebuild};

/// The first IR version that allows initializers that are not graph inputs (nothing else
/// changed between IR 3 and 4).
pub const IR_INITIALIZERS_NOT_INPUTS: i64 = 4;

/// Raises the model's IR version to `at_least` when it is known and lower. Returns the change
/// (old, new), if any. A model without an IR version is left alone.
pub fn raise_ir_version(model: &mut Model, at_least: i64) -> Option<(i64, i64)> {
    let old = model.ir_version?;
    if old >= at_least {
        return None;
    }
    model.ir_version = Some(at_least);
    Some((old, at_least))
}

/// Before IR version 4 every initializer had to be a graph input: a model that has one that is
/// not (after folding, or `remove-static-inputs`) moves to IR 4. Returns the change, if any.
pub fn raise_ir_for_initializers(model: &mut Model) -> Option<(i64, i64)> {
    let g = &model.graph;
    let not_inputs = g.initializers.iter().chain(&g.sparse_initializers).any(|v| !g.inputs.contains(v));
    if !not_inputs {
        return None;
    }
    raise_ir_version(model, IR_INITIALIZERS_NOT_INPUTS)
}

/// The IR version an opset of the default domain needs at least.
pub(crate) fn ir_version_for(opset: i64) -> i64 {
    match opset {
        ..=8 => 3,
        9 => 4,
        10 => 5,
        11 => 6,
        12 | 13 => 7,
        14 | 15 => 8,
        16..=18 => 9,
        19 | 20 => 9,
        _ => 10,
    }
}

/// Whether `g` or a graph nested in it has an op of the default domain.
pub(crate) fn has_default_ops(g: &Graph) -> bool {
    let mut found = g.ops().any(|(_, op)| qc_ir::op::is_default_domain(op.domain()));
    g.visit_subgraphs(&mut |sub| found |= sub.ops().any(|(_, op)| qc_ir::op::is_default_domain(op.domain())));
    found
}

/// Sets the default-domain opset import to `version` (adding one if the model has none) and
/// raises the IR version to what that opset needs.
pub(crate) fn set_default_opset(model: &mut Model, version: i64) {
    match model
        .opset_imports
        .iter_mut()
        .find(|o| qc_ir::op::is_default_domain(o.domain.as_deref().unwrap_or("")))
    {
        Some(o) => o.version = Some(version),
        None => {
            model.opset_imports.insert(0, OpsetImport { domain: Some(String::new()), version: Some(version) })
        }
    }
    raise_ir_version(model, ir_version_for(version));
}

/// Rewrites the default-domain ops of `g`, and of the graphs nested in its ops, from their form
/// in opset `from` to their form in opset `to`. Returns the number of ops rewritten, or the op
/// that has no equivalent form in `to` (then `g` may be half rewritten: run it on a copy first).
pub(crate) fn upgrade_graph(g: &mut Graph, from: i64, to: i64) -> Result<usize, String> {
    if from >= to {
        return Ok(0);
    }
    if from < 7 {
        return Err(format!("opset {from} is older than 7, and qc does not upgrade it"));
    }
    let crosses = |v: i64| from < v && v <= to;
    let ids: Vec<OpId> = g.ops().map(|(id, _)| id).collect();
    let mut count = 0;
    // Nested graphs first, in place.
    for &id in &ids {
        for a in &mut g.op_mut(id).attrs {
            match &mut a.value {
                AttrValue::Graph(sub) => count += upgrade_graph(sub, from, to)?,
                AttrValue::Graphs(subs) => {
                    for sub in subs {
                        count += upgrade_graph(sub, from, to)?;
                    }
                }
                _ => {}
            }
        }
    }
    let mut replace: HashMap<OpId, Vec<NewOp>> = HashMap::new();
    for id in ids {
        let op = g.op(id);
        if !qc_ir::op::is_default_domain(op.domain()) {
            continue;
        }
        let label = g.op_label(id);
        // New inputs are named after the op's first output.
        let base = op
            .outputs()
            .first()
            .copied()
            .flatten()
            .map_or_else(|| label.clone(), |v| g.value(v).name.clone());
        let no_form = |why: &str| Err(format!("`{label}` ({}): {why}", op.op_type()));
        let ins: Vec<Option<ValueId>> = op.inputs().to_vec();
        let outs: Vec<Option<ValueId>> = op.outputs().to_vec();
        let x = ins.first().copied().flatten();
        let ints = |name: &str| op.attr_ints(name).ok().flatten().map(<[i64]>::to_vec);
        let mut new = op.clone();
        let mut new_ins = ins.clone();
        let mut touched = false;
        match op.op_type() {
            "Upsample" if crosses(10) => return no_form("Upsample is deprecated from opset 10"),
            "Scan" if crosses(9) => return no_form("Scan-8 has a batch axis that Scan-9 dropped"),
            "Scatter" if crosses(11) => return no_form("Scatter is deprecated from opset 11"),
            "Resize" if crosses(11) => return no_form("Resize-10 and Resize-11 interpolate differently"),
            "BatchNormalization" if crosses(9) && op.attr("spatial").is_some() => {
                if op.attr_int("spatial", 1).unwrap_or(0) != 1 {
                    return no_form("spatial=0 has no form from opset 9");
                }
                new.remove_attr("spatial");
                touched = true;
            }
            "Slice" if crosses(10) => {
                let (Some(starts), Some(ends)) = (ints("starts"), ints("ends")) else {
                    return no_form("`starts` and `ends` must be int lists");
                };
                let axes = ints("axes");
                for a in ["starts", "ends", "axes"] {
                    new.remove_attr(a);
                }
                new_ins.truncate(1);
                new_ins.push(Some(add_i64s(g, &base, "starts", &starts)));
                new_ins.push(Some(add_i64s(g, &base, "ends", &ends)));
                if let Some(axes) = axes {
                    new_ins.push(Some(add_i64s(g, &base, "axes", &axes)));
                }
                touched = true;
            }
            "TopK" if crosses(10) => {
                let Ok(k) = op.attr_int("k", -1) else { return no_form("`k` must be an int") };
                if k < 0 {
                    return no_form("`k` is missing");
                }
                new.remove_attr("k");
                new_ins.truncate(1);
                new_ins.push(Some(add_i64s(g, &base, "k", &[k])));
                touched = true;
            }
            "Pad" if crosses(11) => {
                let Some(pads) = ints("pads").or_else(|| ints("paddings")) else {
                    return no_form("`pads` must be an int list");
                };
                let Ok(value) = op.attr_float("value", 0.0) else {
                    return no_form("`value` must be a float");
                };
                let Some(elem) = x.and_then(|x| elem_in(g, x)).filter(|e| is_float(*e)) else {
                    return no_form("the element type of the padded input is unknown");
                };
                for a in ["pads", "paddings", "value"] {
                    new.remove_attr(a);
                }
                new_ins.truncate(1);
                new_ins.push(Some(add_i64s(g, &base, "pads", &pads)));
                new_ins.push(Some(add_scalar(g, &base, "value", elem, f64::from(value))));
                touched = true;
            }
            "Clip" if crosses(11) && (op.attr("min").is_some() || op.attr("max").is_some()) => {
                let (Ok(min), Ok(max)) = (op.attr_float("min", f32::MIN), op.attr_float("max", f32::MAX))
                else {
                    return no_form("`min` and `max` must be floats");
                };
                let Some(elem) = x.and_then(|x| elem_in(g, x)).filter(|e| is_float(*e)) else {
                    return no_form("the element type of the clipped input is unknown");
                };
                let (has_min, has_max) = (op.attr("min").is_some(), op.attr("max").is_some());
                new.remove_attr("min");
                new.remove_attr("max");
                new_ins.truncate(1);
                new_ins.push(has_min.then(|| add_scalar(g, &base, "min", elem, f64::from(min))));
                if has_max {
                    new_ins.push(Some(add_scalar(g, &base, "max", elem, f64::from(max))));
                }
                touched = true;
            }
            "Dropout" if crosses(12) && op.attr("ratio").is_some() => {
                let Ok(ratio) = op.attr_float("ratio", 0.5) else {
                    return no_form("`ratio` must be a float");
                };
                new.remove_attr("ratio");
                new_ins.truncate(1);
                new_ins.push(Some(add_scalar(g, &base, "ratio", ElemType::F32, f64::from(ratio))));
                touched = true;
            }
            "Squeeze" | "Unsqueeze" | "ReduceSum" if crosses(13) && op.attr("axes").is_some() => {
                let Some(axes) = ints("axes") else { return no_form("`axes` must be an int list") };
                new.remove_attr("axes");
                new_ins.truncate(1);
                new_ins.push(Some(add_i64s(g, &base, "axes", &axes)));
                touched = true;
            }
            "Split" if crosses(13) && op.attr("split").is_some() => {
                let Some(split) = ints("split") else { return no_form("`split` must be an int list") };
                new.remove_attr("split");
                new_ins.truncate(1);
                new_ins.push(Some(add_i64s(g, &base, "split", &split)));
                touched = true;
            }
            "Softmax" | "LogSoftmax" | "Hardmax" if crosses(13) => {
                let Ok(axis) = op.attr_int("axis", 1) else { return no_form("`axis` must be an int") };
                let Some(rank) = x.and_then(|x| dims::rank(g, x)).map(|r| r as i64) else {
                    return no_form("the input's rank is unknown, so the opset-13 axis cannot be chosen");
                };
                let a = if axis < 0 { axis + rank } else { axis };
                if rank == 0 || a != rank - 1 {
                    return no_form(
                        "before opset 13 it normalises over all axes from `axis` on, not the last only",
                    );
                }
                new.set_attr("axis", AttrValue::Int(a));
                touched = true;
            }
            "Resize" if crosses(13) => {
                let mode = op.attr_str("coordinate_transformation_mode", "half_pixel").unwrap_or_default();
                if mode == "tf_half_pixel_for_nn" {
                    return no_form(
                        "coordinate_transformation_mode tf_half_pixel_for_nn was removed in opset 13",
                    );
                }
            }
            _ => {}
        }
        if touched {
            count += 1;
            replace.insert(id, vec![(new, new_ins, outs)]);
        }
    }
    rebuild(g, replace);
    Ok(count)
}

fn is_float(e: ElemType) -> bool {
    matches!(e, ElemType::F16 | ElemType::F32 | ElemType::F64 | ElemType::BF16)
}

fn add_i64s(g: &mut Graph, base: &str, what: &str, v: &[i64]) -> ValueId {
    let a = Array::from_i64(vec![v.len()], v.to_vec()).expect("1-D i64 array");
    add_const(g, &format!("{base}.{what}"), &a)
}

fn add_scalar(g: &mut Graph, base: &str, what: &str, elem: ElemType, x: f64) -> ValueId {
    let a = Array::from_f64s(elem, vec![], vec![x]).expect("scalar array");
    add_const(g, &format!("{base}.{what}"), &a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use qc_ir::text::parse_model;

    fn model(ir: i64, body: &str) -> Model {
        parse_model(&format!("ir_version {ir}\nopset_import \"\" 9\n\n{body}")).unwrap()
    }

    const INIT_NOT_INPUT: &str = "graph @g(%x: f32[2]) -> (%y: f32[2]) {
  init %w = f32[2] floats [1.0, 2.0]
  %y = \"\"::Add(%x, %w)
}
";
    const INIT_INPUT: &str = "graph @g(%x: f32[2], %w: f32[2]) -> (%y: f32[2]) {
  init %w = f32[2] floats [1.0, 2.0]
  %y = \"\"::Add(%x, %w)
}
";

    #[test]
    fn the_ir_version_only_goes_up() {
        let mut m = model(3, INIT_INPUT);
        assert_eq!(raise_ir_version(&mut m, 4), Some((3, 4)));
        assert_eq!(raise_ir_version(&mut m, 4), None);
        assert_eq!(raise_ir_version(&mut m, 2), None);
        assert_eq!(m.ir_version, Some(4));
        m.ir_version = None;
        assert_eq!(raise_ir_version(&mut m, 7), None, "an unknown version is left alone");
        assert_eq!(m.ir_version, None);
    }

    #[test]
    fn initializers_that_are_not_inputs_need_ir_4() {
        let mut m = model(3, INIT_INPUT);
        assert_eq!(raise_ir_for_initializers(&mut m), None);
        let mut m = model(3, INIT_NOT_INPUT);
        assert_eq!(raise_ir_for_initializers(&mut m), Some((3, IR_INITIALIZERS_NOT_INPUTS)));
        let mut m = model(8, INIT_NOT_INPUT);
        assert_eq!(raise_ir_for_initializers(&mut m), None);
    }

    #[test]
    fn raising_the_opset_raises_the_ir_version_it_needs() {
        let mut m = model(3, INIT_INPUT);
        set_default_opset(&mut m, 13);
        assert_eq!(m.opset_version(""), Some(13));
        assert_eq!(m.ir_version, Some(ir_version_for(13)));
        assert_eq!(ir_version_for(13), 7);
        let mut m = model(9, INIT_INPUT);
        set_default_opset(&mut m, 13);
        assert_eq!(m.ir_version, Some(9), "a newer IR version is kept");
    }

    #[test]
    fn upgrading_turns_attributes_into_inputs_or_names_the_blocker() {
        let mut m = model(
            4,
            "graph @g(%x: f32[4]) -> (%y: f32[2], %z: f32[4]) {
  %y = \"\"::Slice(%x) {starts = [1], ends = [3]}
  %z = \"\"::Identity(%x)
}
",
        );
        assert_eq!(upgrade_graph(&mut m.graph, 9, 13), Ok(1));
        let (_, slice) = m.graph.ops().next().unwrap();
        assert!(slice.attr("starts").is_none());
        let ends = slice.inputs()[2].unwrap();
        assert_eq!(m.graph.value(ends).name, "y.ends");
        assert!(m.graph.initializers.contains(&ends));
        let mut m = model(4, "graph @g(%x: f32[4]) -> (%y: ?) {\n  %y = \"\"::Upsample(%x)\n}\n");
        let err = upgrade_graph(&mut m.graph, 9, 13).unwrap_err();
        assert!(err.contains("Upsample is deprecated"), "{err}");
    }
}
