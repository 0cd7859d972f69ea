//! `convert-f16`: float16 weights become float32 (Kneron's `convert_f16`), for exporters that
//! store half-precision weights behind `Cast(to = FLOAT)` in a float32 model: the toolchain then
//! sees float32 constants and no Cast.
//!
//! What it does: a float16 constant of the main graph (a dense initializer that is not a graph
//! input, or the output of a `Constant` op with a float16 `value`) whose every reader is a
//! `Cast` becomes a float32 constant with the same values (every float16 is exactly a float32).
//! Each `Cast(to = FLOAT)` that reads it then casts float32 to float32: it is removed and its
//! readers read the constant. A Cast to another type stays; it reads the float32 constant and
//! gives the same result (the values are the same, and float32 to float16 gives the original
//! float16 back). The declared type of a converted value says float32.
//!
//! When a constant stays float16 (statistic, and one warning `qc::f16::kept` per reason naming
//! the values):
//! - an op other than `Cast` reads it (`kept-f16-reader`): that op computes in float16 with
//!   its other float16 operands (`Add`, `MatMul`, `Conv` need one element type), so converting
//!   the constant alone would make the model invalid; the model computes in float16 there;
//! - it is a graph output, or a body reads it by name (`kept-interface`): its type is part of
//!   what the model gives out.
//!
//! A `Cast(to = FLOAT)` whose output is a graph output and that reads an initializer stays (the
//! output keeps its name and its producer): it is an identity cast after the conversion, exact.
//!
//! Preconditions: the main graph only; Casts in the default domain. Postconditions: no float16
//! constant read only by Casts is left, and no `Cast(to = FLOAT)` of a converted constant but
//! those that write graph outputs; the model computes the same outputs, exactly.
//!
//! Statistics: `initializers`, `constants` (converted), `casts-removed`, `kept-f16-reader`,
//! `kept-interface`.

use qc_ir::{AttrValue, Const, ElemType, Graph, Model, OpKind, TypeInfo, ValueId, ValueType};

use crate::pass::{Changed, Pass, PassContext, PassError, report_kept};
use crate::quant::const_array;
use crate::registry::PassInfo;
use crate::rewrite::{Readers, Rewrite, is_onnx, sole_output};

pub const INFO: PassInfo = PassInfo {
    name: "convert-f16",
    summary: "turn float16 initializers and Constants into float32 and remove the Casts to float32 after them",
    options: &[],
    build: |_| Ok(Box::new(ConvertF16)),
};

/// The `convert-f16` pass.
pub struct ConvertF16;

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Keep {
    F16Reader,
    Interface,
}

impl Keep {
    fn stat(self) -> &'static str {
        match self {
            Keep::F16Reader => "kept-f16-reader",
            Keep::Interface => "kept-interface",
        }
    }
    fn rule(self) -> &'static str {
        match self {
            Keep::F16Reader => "an op other than Cast computes with it in float16",
            Keep::Interface => "it is a graph output or a body reads it by name",
        }
    }
    fn help(self) -> &'static str {
        match self {
            Keep::F16Reader => {
                "the op needs all its operands in one type; a model that computes in float16 stays float16 \
                 (export it in float32 to run it in float32)"
            }
            Keep::Interface => "the model gives this value out as float16; it is left as it is",
        }
    }
}

/// Where a float16 constant comes from.
enum Source {
    Initializer,
    /// The `Constant` op that writes it.
    ConstantOp(qc_ir::OpId),
}

const FLOAT: i64 = 1;

impl Pass for ConvertF16 {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        let g = &model.graph;
        let readers = Readers::new(g);
        let mut kept: Vec<(Keep, String, String)> = Vec::new();
        let mut plans: Vec<(ValueId, Source)> = Vec::new();
        for (v, value) in g.values() {
            let source = match (value.tensor(), value.producer()) {
                (Some(t), None) if t.elem == Some(ElemType::F16) && !g.inputs.contains(&v) => {
                    if !g.initializers.contains(&v) {
                        continue;
                    }
                    Source::Initializer
                }
                (None, Some(p)) if is_f16_constant_op(g, p) => Source::ConstantOp(p),
                _ => continue,
            };
            let name = value.name.clone();
            if g.outputs.contains(&v) || readers.captured(g, v) {
                kept.push((Keep::Interface, name, "float16".into()));
                continue;
            }
            if let Some((r, _)) = value.uses().iter().find(|(r, _)| {
                let op = g.op(*r);
                !(op.kind() == OpKind::Cast && is_onnx(op))
            }) {
                let reader = format!("read by {} `{}`", g.op(*r).op_type(), g.op_label(*r));
                kept.push((Keep::F16Reader, name, reader));
                continue;
            }
            if value.uses().is_empty() {
                // Dead: `eliminate-dead` removes it; converting it changes nothing.
                continue;
            }
            plans.push((v, source));
        }
        let mut rw = Rewrite::default();
        let mut casts = 0u64;
        for (v, source) in &plans {
            let Some(a) = const_array(model, *v) else { continue };
            let Ok(values) = a.to_f64() else { continue };
            let Ok(f32s) = crate::eval::Array::from_f64s(ElemType::F32, a.dims.clone(), values) else {
                continue;
            };
            let g = &mut model.graph;
            let name = g.value(*v).name.clone();
            match source {
                Source::Initializer => {
                    let mut t = f32s.to_tensor(&name);
                    if let Some(Const::Dense(old)) = &g.value(*v).init {
                        t.doc_string = old.doc_string.clone();
                        t.metadata = old.metadata.clone();
                    }
                    g.value_mut(*v).init = Some(Const::Dense(Box::new(t)));
                    cx.count("initializers", 1);
                }
                Source::ConstantOp(p) => {
                    let op = g.op_mut(*p);
                    let old_name = match op.attr("value").map(|a| &a.value) {
                        Some(AttrValue::Tensor(t)) => t.name.clone(),
                        _ => None,
                    };
                    let mut t = f32s.to_tensor(&name);
                    t.name = old_name;
                    op.set_attr("value", AttrValue::Tensor(Box::new(t)));
                    cx.count("constants", 1);
                }
            }
            set_f32(&mut g.value_mut(*v).ty);
            let g = &model.graph;
            for &(r, _) in g.value(*v).uses() {
                let cast = g.op(r);
                if cast.attr_int("to", 0).ok() != Some(FLOAT) {
                    continue;
                }
                let Some(out) = sole_output(cast) else { continue };
                if rw.replace_uses(g, out, *v) {
                    rw.set(r, Vec::new());
                    rw.drop_if_unused([out]);
                    casts += 1;
                }
            }
        }
        if casts > 0 {
            cx.count("casts-removed", casts);
        }
        rw.apply(&mut model.graph);
        report_kept(
            cx,
            INFO.name,
            "qc::f16::kept",
            "float16 constant(s)",
            &mut kept,
            Keep::stat,
            Keep::rule,
            Keep::help,
        );
        Ok(Changed::from_bool(!plans.is_empty()))
    }
}

/// Whether op `p` is a default-domain `Constant` whose `value` is a float16 tensor.
fn is_f16_constant_op(g: &Graph, p: qc_ir::OpId) -> bool {
    let op = g.op(p);
    op.kind() == OpKind::Constant
        && is_onnx(op)
        && matches!(op.attr("value").map(|a| &a.value), Some(AttrValue::Tensor(t)) if t.elem == Some(ElemType::F16))
}

/// Makes a declared float16 tensor type say float32.
fn set_f32(ty: &mut Option<TypeInfo>) {
    if let Some(TypeInfo { ty: Some(ValueType::Tensor { elem: elem @ Some(ElemType::F16), .. }), .. }) = ty {
        *elem = Some(ElemType::F32);
    }
}
