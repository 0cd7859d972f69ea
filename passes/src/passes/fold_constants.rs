//! `fold-constants`: replaces ops whose inputs are all constant by the constants they compute.
//!
//! What it does: walks the main graph in topological order; an op whose every input is an
//! initializer (or a value folded earlier in the same walk) is evaluated with the reference
//! evaluator, and its outputs become initializers; the op is removed. `Shape` and `Size` of a
//! value whose declared shape is fully known fold even when the value itself is not constant,
//! so the `Shape -> Gather -> Unsqueeze -> Concat -> Reshape` chains exporters emit collapse into
//! one constant shape (run `infer-shapes` first so that shapes are known).
//!
//! It leaves alone: QuantizeLinear, DequantizeLinear and the QONNX quantizers (`Quant`,
//! `IntQuant`, `BipolarQuant`, `Trunc`, `FloatQuant`) unless `{quant=true}`
//! (`--fold-quant-weights`), since deployment flows read the quantization from those nodes
//! (`{quant=qonnx-cleanup}` keeps exactly what `qonnx-cleanup` keeps, for `qc cost`); ops with subgraphs; random ops; ops
//! with no inputs other than `Constant`; and any op whose outputs would be more than
//! `max-growth-mib` (default 16) MiB larger than its constant inputs. An initializer that is also
//! a graph input is a default the caller may override, so it is not a constant.
//!
//! Preconditions: none. Postconditions: the model computes the same outputs; no remaining op
//! (apart from those left alone above) has only constant inputs.
//!
//! Statistics: `ops-folded`, `shapes-folded`, `skipped-quant`, `skipped-too-large`,
//! `skipped-unsupported`.

use std::collections::{HashMap, HashSet};

use qc_ir::{AttrValue, Const, ElemType, Model, OpKind, ValueId};

use crate::eval::{Array, eval_op};
use crate::pass::{Changed, Pass, PassContext, PassError};
use crate::registry::{PassInfo, PassOptions};

pub const INFO: PassInfo = PassInfo {
    name: "fold-constants",
    summary: "evaluate ops whose inputs are all constant (and Shape/Size of static shapes)",
    options: &[
        (
            "quant",
            "true also folds QuantizeLinear, DequantizeLinear and the QONNX quantizers; qonnx-cleanup folds all but \
             Quant, BipolarQuant, QuantizeLinear and DequantizeLinear (default false)",
        ),
        ("max-growth-mib", "skip ops whose outputs exceed their inputs by more than this (default 16)"),
    ],
    build: |o: &mut PassOptions<'_>| {
        Ok(Box::new(FoldConstants {
            quant: [QuantFolding::None, QuantFolding::All, QuantFolding::QonnxCleanup]
                [o.choice("quant", 0, &["false", "true", "qonnx-cleanup"])?],
            max_growth: o.u64("max-growth-mib", 16)?.saturating_mul(1 << 20),
        }))
    },
};

/// Which quantizer ops `fold-constants` may fold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuantFolding {
    /// None of them (the default).
    None,
    /// All of them (`{quant=true}`, `--fold-quant-weights`).
    All,
    /// All but those `qonnx-cleanup` keeps: `Quant`, `BipolarQuant`, `QuantizeLinear` and
    /// `DequantizeLinear` by op type (so `IntQuant`, `Trunc` and `FloatQuant` fold). `qc cost`
    /// uses this to reproduce the reference procedure.
    QonnxCleanup,
}

/// The `fold-constants` pass.
pub struct FoldConstants {
    /// Which quantizers to fold.
    pub quant: QuantFolding,
    /// Bytes by which outputs may exceed inputs.
    pub max_growth: u64,
}

const RANDOM: [&str; 6] =
    ["RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"];

fn is_quantizer(kind: OpKind) -> bool {
    matches!(
        kind,
        OpKind::QuantizeLinear
            | OpKind::DequantizeLinear
            | OpKind::Quant
            | OpKind::IntQuant
            | OpKind::BipolarQuant
            | OpKind::Trunc
            | OpKind::FloatQuant
    )
}

fn byte_size(a: &Array) -> u64 {
    a.elem.bits().map_or(8 * a.len() as u64, |b| (a.len() as u64 * u64::from(b)).div_ceil(8))
}

impl FoldConstants {
    /// The tensor a `ConstantOfShape` with a constant shape makes, built as raw bytes (element
    /// types of whole bytes only); `None` for any other op, or when it is over the size limit
    /// (counted).
    fn splat(
        &self,
        op: &qc_ir::Op,
        inputs: &[Option<Array>],
        opset: i64,
        cx: &mut PassContext,
    ) -> Option<qc_ir::Tensor> {
        if op.op_type() != "ConstantOfShape" || !op.domain().is_empty() || op.outputs().len() != 1 {
            return None;
        }
        let shape = inputs.first()?.as_ref()?;
        let dims: Vec<usize> =
            shape.to_i64s().ok()?.into_iter().map(|d| usize::try_from(d).ok()).collect::<Option<_>>()?;
        let n = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d))?;
        // One element, through the evaluator, for the value and its type.
        let one = Array::from_i64(vec![1], vec![1]).ok()?;
        let elem = eval_op(op, &[Some(&one)], opset).ok()?.into_iter().next()?;
        let width = elem.elem.bits().filter(|b| b % 8 == 0)? as usize / 8;
        let bytes = n.checked_mul(width)?;
        if bytes as u64 > self.max_growth.saturating_add(byte_size(shape)) {
            cx.count("skipped-too-large", 1);
            return None;
        }
        let raw = elem.raw_bytes().repeat(n);
        let mut t = elem.to_tensor("");
        t.dims = dims.iter().map(|&d| d as i64).collect();
        t.data = qc_ir::TensorData::Raw(bytes::Bytes::from(raw));
        Some(t)
    }
}

impl Pass for FoldConstants {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        let Ok(order) = model.graph.topo_order() else { return Ok(Changed::No) };
        let graph_inputs: HashSet<ValueId> = model.graph.inputs.iter().copied().collect();
        let mut known: HashMap<ValueId, Array> = HashMap::new();
        let mut changed = false;
        for id in order {
            let op = model.graph.op(id);
            if op.attrs.iter().any(|a| matches!(a.value, AttrValue::Graph(_) | AttrValue::Graphs(_)))
                || (op.domain().is_empty() && RANDOM.contains(&op.op_type()))
                || (op.inputs().iter().all(Option::is_none) && op.kind() != OpKind::Constant)
                || op.outputs().iter().all(Option::is_none)
            {
                continue;
            }
            let keep = match self.quant {
                QuantFolding::None => is_quantizer(op.kind()),
                QuantFolding::All => false,
                QuantFolding::QonnxCleanup => {
                    matches!(op.op_type(), "Quant" | "BipolarQuant" | "QuantizeLinear" | "DequantizeLinear")
                }
            };
            if keep {
                cx.count("skipped-quant", 1);
                continue;
            }
            let opset = model.domain_opset(op.domain());
            // Shape and Size of a statically shaped value.
            let mut from_shape = false;
            let mut inputs: Vec<Option<Array>> = Vec::with_capacity(op.inputs().len());
            let mut all_constant = true;
            for (slot, v) in op.inputs().iter().enumerate() {
                let Some(v) = *v else {
                    inputs.push(None);
                    continue;
                };
                if let Some(a) = known.get(&v) {
                    inputs.push(Some(a.clone()));
                    continue;
                }
                let value = model.graph.value(v);
                match &value.init {
                    Some(Const::Dense(t)) if !graph_inputs.contains(&v) => match Array::from_tensor(t, model)
                    {
                        Ok(a) => {
                            known.insert(v, a.clone());
                            inputs.push(Some(a));
                        }
                        Err(_) => {
                            all_constant = false;
                            break;
                        }
                    },
                    _ if slot == 0 && op.domain().is_empty() && matches!(op.op_type(), "Shape" | "Size") => {
                        let dims = value.ty.as_ref().and_then(|t| match &t.ty {
                            Some(qc_ir::ValueType::Tensor { shape: Some(s), .. }) => s.as_known(),
                            _ => None,
                        });
                        match dims {
                            // A stand-in with the right dims: Shape and Size read only its shape.
                            Some(d) => {
                                match Array::zeros(ElemType::Bool, d.iter().map(|&x| x as usize).collect()) {
                                    Ok(a) if a.len() <= 1 << 20 => {
                                        from_shape = true;
                                        inputs.push(Some(a));
                                    }
                                    _ => {
                                        all_constant = false;
                                        break;
                                    }
                                }
                            }
                            None => {
                                all_constant = false;
                                break;
                            }
                        }
                    }
                    _ => {
                        all_constant = false;
                        break;
                    }
                }
            }
            if !all_constant {
                continue;
            }
            // ConstantOfShape straight to raw bytes: the weights of some exporters are hundreds
            // of MiB of it, and building an array first would double the memory.
            if let Some(tensor) = self.splat(op, &inputs, opset, cx) {
                let outs: Vec<Option<ValueId>> = op.outputs().to_vec();
                model.graph.remove_op(id);
                if let Some(v) = outs.into_iter().flatten().next() {
                    let mut tensor = tensor;
                    tensor.name = Some(model.graph.value(v).name.clone());
                    model.graph.value_mut(v).init = Some(Const::Dense(Box::new(tensor)));
                    model.graph.initializers.push(v);
                }
                cx.count("ops-folded", 1);
                changed = true;
                continue;
            }
            let refs: Vec<Option<&Array>> = inputs.iter().map(Option::as_ref).collect();
            let outputs = match eval_op(op, &refs, opset) {
                Ok(o) => o,
                Err(_) => {
                    cx.count("skipped-unsupported", 1);
                    continue;
                }
            };
            let in_bytes: u64 = if from_shape { 0 } else { inputs.iter().flatten().map(byte_size).sum() };
            let out_bytes: u64 = outputs.iter().map(byte_size).sum();
            if out_bytes > in_bytes.saturating_add(self.max_growth) {
                cx.count("skipped-too-large", 1);
                continue;
            }
            let outs: Vec<Option<ValueId>> = op.outputs().to_vec();
            if outputs.len() < outs.iter().flatten().count() {
                cx.count("skipped-unsupported", 1);
                continue;
            }
            model.graph.remove_op(id);
            for (v, a) in outs.into_iter().zip(outputs) {
                let Some(v) = v else { continue };
                let name = model.graph.value(v).name.clone();
                model.graph.value_mut(v).init = Some(Const::Dense(Box::new(a.to_tensor(&name))));
                model.graph.initializers.push(v);
                known.insert(v, a);
            }
            cx.count(if from_shape { "shapes-folded" } else { "ops-folded" }, 1);
            changed = true;
        }
        Ok(Changed::from_bool(changed))
    }
}
