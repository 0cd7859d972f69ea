//! Lowering of graph ops to loop nests ([`qc_ir::LoopNest`]), in ZigZag's workload form
//! (`DESIGN.md` section 4, `research/zigzag.md` 2.3-2.4), so that qc's layers and ZigZag's pair
//! by name and compare loop by loop.
//!
//! [`lower_model`] walks the main graph in program order and turns each compute op into one
//! layer (ids from 0, name = the node name, else `<op_type>#<position>`); every other node is
//! listed in [`Workload::not_lowered`] with its reason, and so is a node of a covered kind that
//! cannot be lowered (unknown shapes: run `infer-shapes` first; malformed or non-constant
//! attributes; shapes that disagree with the attributes). Nothing is dropped silently.
//!
//! # The forms, family by family
//!
//! - `Conv`, `QLinearConv`, `ConvInteger` (1-D and 2-D; grouped, depthwise, dilated, strided,
//!   padded, `auto_pad`): `O[b][g][k][oy][ox] += W[g][k][c][fy][fx] * I[b][g][c][iy][ix]` with
//!   `G = group`, `K = C_out/G`, `C = C_in/G` (depthwise: `G = C_in, C = 1`), and
//!   `iy = s_h*oy + d_h*fy - pad_top` (extent H, padding `(top, bottom)`), likewise `ix` with
//!   the W axis. A 1-D convolution has only `OX`, `FX` and `ix`. The bias is not an operand
//!   (ZigZag ignores it too).
//!   **Difference from ZigZag's ONNX parser:** ZigZag takes `FX` from `kernel_shape[0]` (the H
//!   axis) and uses `strides[0]`/`dilations[0]` in the `ix` relation; qc maps H to `FY`/`iy` and
//!   W to `FX`/`ix`. The two agree for square kernels, strides and dilations (every layer of
//!   ZigZag's example models), and differ only by a swap of the X and Y roles otherwise.
//! - `ConvTranspose` (not in ZigZag): the loops run over the *input* positions,
//!   `O[b][g][k][oy][ox] += W[g][c][k][fy][fx] * I[b][g][c][iy][ix]` with dims
//!   `B, G, K, C, IY, IX, FY, FX` and the output index derived:
//!   `oy = s_h*iy + d_h*fy - pad_top` (extent = output H; the padding is what the relation
//!   reaches outside the output, i.e. the cropped border: low `pad_top`, high
//!   `pad_bottom - output_padding` when positive). Pads come from `pads`, or from
//!   `output_shape`/`auto_pad` and the known output shape as ONNX defines them.
//! - `Gemm` (`transA`, `transB`; the bias `C` is not an operand), `MatMul`, `QLinearMatMul`,
//!   `MatMulInteger`: `O[b][h][d][k] += I[b][h][d][c] * W[b][h][c][k]` (ZigZag's order: `I`
//!   first), dims `B, H, D, K, C`: `D` rows, `K` columns, `C` the reduction, and the batch dims
//!   of the output: none for 2-D, `B` for 3-D, `B, H` for 4-D, `B0, B1, ...` beyond. An operand
//!   is indexed by a batch dim only when it has that axis with the output's size, so broadcast
//!   operands (a constant weight `[C, K]`, a `[1, H, C, K]` tensor) simply omit it: as in
//!   ZigZag, constant weights get no batch dims, and in attention (both operands produced by
//!   other layers) `W` gets them. Operand indices follow the storage layout (`transB` gives
//!   `W[k][c]`). A 1-D operand drops `D` (or `K`).
//! - `MaxPool`, `AveragePool` (1-D and 2-D), `GlobalAveragePool`, `GlobalMaxPool`: ZigZag's
//!   pooling form `O[b][g][oy][ox] += W[fy][fx] * I[b][g][iy][ix]` with compute `max`/`avg`,
//!   `G` = channels and `W` a free zero-size operand (0 bits, constant, no graph value); global
//!   pools have `OY = OX = 1` and the whole input as window. `ceil_mode` windows that pass the
//!   end count as high padding.
//! - `Add`, `Sub`, `Mul`: `O[...] = I[...] + W[...]` with `I` the first input and `W` the second
//!   (ZigZag's letters, so its default memory-operand links apply), no reduction. Dims are named
//!   after the output rank: `B, G, OY, OX` for 4-D (ZigZag's form), `B, D, K` for 3-D, `D, K`
//!   for 2-D, `K` for 1-D, `D0, D1, ...` otherwise. Broadcasting is expressed by the indices: an
//!   operand is indexed by a dim only when it has that axis with the output's size (legacy
//!   `broadcast`/`axis` attributes place the second operand at `axis`). Element-wise ops on
//!   `int64` values (shape arithmetic) are not lowered.
//!
//! - `LSTM`, `GRU`, `RNN` and `com.microsoft.DynamicQuantizeLSTM` (not in ZigZag): two matrix
//!   products per node, in MatMul's names. `NODE/input`, the input projection over every time
//!   step at once: `O[b][d][k] += I[d][c] * W[b][k][c]` with `D` = seq_length * batch rows,
//!   `K` = gates * hidden, `C` = input_size and `B` = directions (only when bidirectional).
//!   `NODE/recurrent`, the recurrent projection with the steps as a batch dim:
//!   `O[b][d][k] += I[b][d][c] * W[k][c]` with `B` = steps (bidirectional: `B` = directions,
//!   `H` = steps), `D` = batch, `K` = gates * hidden, `C` = hidden; its `I` is the layer's own
//!   hidden states (`Y`, or `Y_h` when `Y` is omitted, indexed in `Y`'s storage order, layout 0
//!   or 1; source [`Source::Other`]). `W` follows the weight's storage: ONNX's
//!   `[directions, gates*hidden, in]` gives `W[b][k][c]`, DynamicQuantizeLSTM's transposed int8
//!   `[directions, in, 4*hidden]` gives `W[b][c][k]` (8 bits from its type, bit growth). The
//!   layers' outputs are intermediates named `NODE/input_gates` and `NODE/recurrent_gates`, and
//!   later layers read `NODE/recurrent`. The gate non-linearities and the cell update are
//!   element-wise and not costed.
//! - `Attention` (opset 23; 4-D, as many key heads as query heads, no past key or value): the
//!   two matrix products it stands for, in MatMul's names, so that it costs what the unfused
//!   core costs: `NODE/qk`, `O[b][h][d][k] += I[b][h][d][c] * W[b][h][k][c]` (`I = Q`,
//!   `W = K` read in its storage order `[B, H, T, D]`; output the intermediate `NODE/scores`),
//!   and `NODE/pv`, `O[b][h][d][k] += I[b][h][d][c] * W[b][h][c][k]` (`I` the attention
//!   weights `NODE/probabilities` from `NODE/qk`, `W = V`). The scale, mask and softmax are
//!   element-wise work, not costed.
//! - qonnx's channels-last wrappers (`Conv`, `MaxPool` of domain
//!   `qonnx.custom_op.channels_last`, data `N, spatial..., C`) lower as the standard op, with the
//!   same loops; only the operands' indices follow their storage order, channels last
//!   (`O[b][oy][ox][g][k]`, `I[b][iy][ix][g][c]`, and the Conv weight, which qonnx stores
//!   `O, kH, kW, I/group`, `W[g][k][fy][fx][c]`).
//!
//! A node whose data inputs are all constants is not lowered (it folds at compile time).
//!
//! # Precisions
//!
//! Each operand's bits come, in this order, from the value's [`qc_ir::QuantSpec`] (any datatype
//! but `FLOAT32`/`FLOAT16`), from its integer or 8-bit-float element type, or (for the
//! quantized ops) from the element type of its zero point. Anything else gets the default:
//! ZigZag's (weights, activations and final outputs 8 bits), or
//! [`LowerOptions::default_precision`]. A constant operand defaults to the weight bits, an
//! operand produced at run time to the activation bits (ZigZag gives a dynamic `W` the
//! activation precision). Operand `quant` is the value's spec as it is.
//!
//! Partial sums (layers that reduce: convolutions, matrix products, pools):
//! - a ZigZag `output_size` attribute on the node gives them ([`PsumRule::Given`]);
//! - with [`PsumMode::Bits`] every layer gets those bits ([`PsumRule::Given`]);
//! - a quantized layer (an input's bits came from a spec or an integer type) gets, by
//!   [`LowerOptions::psum`]: with [`PsumMode::Zigzag`] (the default) twice the bits of its `I`
//!   operand ([`PsumRule::TwiceActivation`]), ZigZag's convention for every layer, so that a
//!   quantized model is costed as ZigZag costs it and as its float version is; with
//!   [`PsumMode::Exact`] bit growth ([`PsumRule::BitGrowth`]): `w + i + ceil(log2(R))`, +1
//!   when one of `W`, `I` is signed and the other is not, where `R` is the number of products
//!   summed into one output (`C*FY*FX` for a convolution, `C` for a matrix product; for a
//!   transposed convolution `C * ceil(FY / (s/gcd(s,d))) * ...`, the taps that land on one
//!   output); average pooling grows `i + ceil(log2(FY*FX))` (its `W` has no bits), max pooling
//!   does not grow (`i`);
//! - otherwise (no quantization) [`LowerOptions::default_precision`] gives them
//!   ([`PsumRule::Given`]), or ZigZag's default of twice the activation bits, 16
//!   ([`PsumRule::TwiceActivation`]).
//!
//! Element-wise layers have no partial sums ([`PsumRule::None`]). With [`PsumMode::Zigzag`],
//! ConvInteger and MatMulInteger (whose 32-bit output is the accumulator, dequantized and
//! requantized by the model) get their `I` operand's bits as final-output precision, as their
//! float versions have.
//!
//! # Sources
//!
//! An input operand reads [`Source::Layer`] (the producer was lowered), [`Source::Constant`]
//! (an initializer, a `Constant` op, or a value computed only from constants, such as a
//! `DequantizeLinear` of a constant weight), [`Source::GraphInput`], or [`Source::Node`] (the
//! producer was not lowered; its `not_lowered` entry lists what it reads in turn, so that data
//! flow through it can be followed, [`qc_ir::Workload::dataflow`]). Output operands are
//! [`Source::Other`].

mod attention;
mod conv;
mod elementwise;
mod matmul;
mod pool;
mod recurrent;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};

use qc_ir::{
    Compute, DataType, ElemType, LoopDim, LoopNest, Model, NotLowered, Op, OpId, OpKind, Operand, PsumRule,
    Relation, Source, ValueId, Workload,
};

use crate::quant::{elem_datatype, value_elem};
pub(crate) use qc_ir::window::Axis;
use qc_ir::window::Window;

/// Precisions for operands the model says nothing about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DefaultPrecision {
    /// Constant operands (weights).
    pub weight: u32,
    /// Operands produced at run time (activations).
    pub act: u32,
    /// Final outputs.
    pub output: u32,
    /// Partial sums of layers that reduce.
    pub psum: u32,
}

impl DefaultPrecision {
    /// ZigZag's defaults: 8-bit weights, activations and outputs, 16-bit partial sums.
    pub const ZIGZAG: DefaultPrecision = DefaultPrecision { weight: 8, act: 8, output: 8, psum: 16 };
}

/// Options of [`lower_model`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LowerOptions {
    /// Overrides ZigZag's defaults for operands without quantization (`--default-precision`);
    /// partial sums of unquantized layers then use its `psum` ([`PsumRule::Given`]).
    pub default_precision: Option<DefaultPrecision>,
    /// The partial sums of quantized layers (`--psum-bits`).
    pub psum: PsumMode,
}

/// How the partial-sum bits of quantized layers are chosen (`--psum-bits`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PsumMode {
    /// Twice the activation bits, as ZigZag gives every layer.
    #[default]
    Zigzag,
    /// Bit growth over the reduction: the width that holds every sum exactly.
    Exact,
    /// These bits for every layer that reduces.
    Bits(u32),
}

/// The family an op lowers as (statistics of `lower-to-loops`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    Conv,
    ConvTranspose,
    Gemm,
    MatMul,
    Pool,
    Elementwise,
    /// `LSTM`, `GRU`, `RNN`, `com.microsoft.DynamicQuantizeLSTM`: two matrix-product layers.
    Recurrent,
    /// `Attention`: two matrix-product layers, `Q K^T` and `P V`.
    Attention,
}

impl Family {
    /// The family of an op kind, if it is one that lowers (the op table's `lower` column).
    pub fn of(kind: OpKind) -> Option<Family> {
        crate::ops::rules(kind).and_then(|r| r.lower)
    }

    /// Its name in statistics.
    pub fn name(self) -> &'static str {
        match self {
            Family::Conv => "conv",
            Family::ConvTranspose => "conv-transpose",
            Family::Gemm => "gemm",
            Family::MatMul => "matmul",
            Family::Pool => "pool",
            Family::Elementwise => "elementwise",
            Family::Recurrent => "recurrent",
            Family::Attention => "attention",
        }
    }
}

/// Lowers the compute ops of `model`'s main graph to loop nests; see the module doc.
pub fn lower_model(model: &Model, opts: &LowerOptions) -> Workload {
    lower_with_families(model, opts).0
}

/// [`lower_model`], with the family of each lowered layer.
pub fn lower_with_families(model: &Model, opts: &LowerOptions) -> (Workload, Vec<Family>) {
    let g = &model.graph;
    let cx = Cx { model, opts, constant: constant_values(model), node_of: HashMap::new() };
    let mut drafts: Vec<Pending> = Vec::new();
    let mut workload = Workload::default();
    let mut names: HashSet<String> = HashSet::new();
    // The ops not lowered: their entry in `not_lowered`, and their names for `Source::Node`.
    let mut unlowered: Vec<OpId> = Vec::new();
    for (pos, (id, op)) in g.ops().enumerate() {
        let label = op.display_name(pos);
        let (standard, layout) = standard_form(op);
        let op = standard.as_ref().unwrap_or(op);
        let result = match Family::of(op.kind()) {
            None => Err(not_covered(op)),
            Some(Family::Recurrent) => cx.lower_recurrent(op, &label).map(|parts| (Family::Recurrent, parts)),
            Some(Family::Attention) => cx.lower_attention(op, &label).map(|parts| (Family::Attention, parts)),
            Some(family) => cx.lower_op(op, family, layout).map(|d| {
                let part =
                    recurrent::Part { suffix: "", draft: d, out_name: None, i_source: None, i_value: None };
                (family, vec![part])
            }),
        };
        // A layer whose iteration count does not fit in 128 bits cannot be counted: not lowered.
        let result = result.and_then(|(family, parts)| {
            let fits = |p: &recurrent::Part| {
                p.draft.dims.iter().try_fold(1u128, |n, (_, s)| n.checked_mul(u128::from(*s))).is_some()
            };
            if parts.iter().all(fits) {
                Ok((family, parts))
            } else {
                Err("its loop sizes multiply past 2^128 iterations: check the model's dims".to_string())
            }
        });
        match result {
            Ok((family, parts)) => {
                let name =
                    if names.contains(&label) { format!("{}#{pos}", op.op_type()) } else { label.clone() };
                for mut part in parts {
                    // A part that reads an earlier part names it after the node's label.
                    if let Some(Source::Layer(l)) = &mut part.i_source
                        && let Some(rest) = l.strip_prefix(label.as_str()).filter(|r| r.starts_with('/'))
                    {
                        *l = format!("{name}{rest}");
                    }
                    let name =
                        if part.suffix.is_empty() { name.clone() } else { format!("{name}/{}", part.suffix) };
                    names.insert(name.clone());
                    drafts.push(Pending { id, name, family, part });
                }
            }
            Err(reason) => {
                unlowered.push(id);
                workload.not_lowered.push(NotLowered {
                    node: label,
                    op_type: op.op_type().to_string(),
                    reason,
                    elements: cx.vector_elements(op),
                    inputs: Vec::new(),
                })
            }
        }
    }
    // An op lowered as several layers (a recurrent op) is read through its last one.
    let layer_of: HashMap<OpId, String> = drafts.iter().map(|p| (p.id, p.name.clone())).collect();
    let node_of: HashMap<OpId, String> =
        unlowered.iter().zip(&workload.not_lowered).map(|(id, n)| (*id, n.node.clone())).collect();
    let cx = Cx { node_of, ..cx };
    for (id, n) in unlowered.iter().zip(workload.not_lowered.iter_mut()) {
        n.inputs = g.op(*id).inputs().iter().flatten().map(|&v| cx.source(v, &layer_of)).collect();
    }
    let mut families = Vec::new();
    for (i, Pending { id, name, family, part }) in drafts.into_iter().enumerate() {
        let op = g.op(id);
        let mut nest = cx.finish(op, name, u32::try_from(i).unwrap_or(u32::MAX), part.draft, &layer_of);
        if let Some(out) = part.out_name {
            nest.output.value = out;
        }
        if let Some(src) = part.i_source {
            for o in nest.inputs.iter_mut().filter(|o| o.role == "I") {
                o.source = src.clone();
            }
        }
        if let Some(value) = part.i_value {
            for o in nest.inputs.iter_mut().filter(|o| o.role == "I") {
                o.value = value.clone();
            }
        }
        workload.layers.push(nest);
        families.push(family);
    }
    (workload, families)
}

/// A layer drafted from op `id`, named `name`.
struct Pending {
    id: OpId,
    name: String,
    family: Family,
    part: recurrent::Part,
}

/// Where a layer's activations keep their channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    /// `N, C, spatial...`: ONNX's layout.
    ChannelsFirst,
    /// `N, spatial..., C`: qonnx's channels-last wrappers.
    ChannelsLast,
}

impl Layout {
    /// The dims of an activation (or of a Conv's weight) in `N, C, spatial...` order.
    pub(crate) fn channels_first(self, dims: Vec<u64>) -> Vec<u64> {
        match self {
            Layout::ChannelsLast if dims.len() >= 3 => crate::shape::channels_last::to_first(&dims),
            _ => dims,
        }
    }

    /// An operand's index in storage order, from `[lead..., channels..., spatial...]` (`lead`
    /// leading indices, `spatial` spatial ones): channels last puts the spatial indices before
    /// the channels.
    fn storage_index(self, index: Vec<String>, lead: usize, spatial: usize) -> Vec<String> {
        match self {
            Layout::ChannelsLast if index.len() > spatial + lead => {
                let split = index.len() - spatial;
                let mut v = index[..lead].to_vec();
                v.extend_from_slice(&index[split..]);
                v.extend_from_slice(&index[lead..split]);
                v
            }
            _ => index,
        }
    }
}

/// The standard op a qonnx channels-last wrapper (`Conv`, `MaxPool`, `BatchNormalization` of
/// domain `qonnx.custom_op.channels_last`) stands for, with its layout; `None` for any other op.
fn standard_form(op: &Op) -> (Option<Op>, Layout) {
    let wrapped = matches!(
        op.kind(),
        OpKind::ChannelsLastConv | OpKind::ChannelsLastMaxPool | OpKind::ChannelsLastBatchNormalization
    );
    if wrapped { (Some(op.in_domain(None)), Layout::ChannelsLast) } else { (None, Layout::ChannelsFirst) }
}

/// Why an op of a kind that has no loop nest is not lowered.
fn not_covered(op: &Op) -> String {
    use OpKind::*;
    let t = op.op_type();
    let what = match op.kind() {
        Relu | LeakyRelu | PRelu | Clip | Sigmoid | HardSigmoid | HardSwish | Tanh | Elu | Selu | Gelu
        | Mish | Swish | Softplus | Erf | Exp | Log | Sqrt | Abs | Neg | Reciprocal | Ceil | Floor
        | Round | Sign | Acos | Not => "element-wise activation or unary math",
        Div | Pow | Max | Min | Sum | Mean | And | Equal | Greater | Less | Where => {
            "element-wise op other than Add/Sub/Mul"
        }
        Reshape | Transpose | Concat | Flatten | Squeeze | Unsqueeze | Gather | Slice | Split | Pad
        | Expand | Tile | Identity | Dropout | DepthToSpace | SpaceToDepth | Resize | Upsample | Cast => {
            "data movement"
        }
        BatchNormalization | LayerNormalization | RmsNormalization | InstanceNormalization | LRN => {
            "normalization"
        }
        ReduceMax | ReduceMean | ReduceMin | ReduceSum | Softmax | ArgMax | ArgMin | TopK => {
            "reduction or softmax"
        }
        Quant | IntQuant | BipolarQuant | Trunc | FloatQuant | MultiThreshold | QuantizeLinear
        | DequantizeLinear => "quantizer",
        If | Loop | Scan => {
            // Say how much compute the bodies hold: qc does not cost it.
            let mut compute = 0usize;
            for a in &op.attrs {
                let graphs: Vec<&qc_ir::Graph> = match &a.value {
                    qc_ir::AttrValue::Graph(g) => vec![g.as_ref()],
                    qc_ir::AttrValue::Graphs(gs) => gs.iter().collect(),
                    _ => Vec::new(),
                };
                for g in graphs {
                    let mut count = |g: &qc_ir::Graph| {
                        compute += g.ops().filter(|(_, o)| Family::of(o.kind()).is_some()).count();
                    };
                    count(g);
                    g.visit_subgraphs(&mut count);
                }
            }
            return format!(
                "no compute loop nest for {t} (control flow: its bodies, which hold {compute} compute op(s), are not lowered, so they are not costed; which body runs, and how often, depends on the inputs' values)"
            );
        }
        Constant | ConstantOfShape | Shape => "constant or shape op",
        _ if op.domain().is_empty() || op.domain() == "ai.onnx" => "op without a lowering",
        _ if op.domain() == qc_ir::op::MICROSOFT_DOMAIN => "onnxruntime contrib op without a loop nest",
        _ => {
            return format!(
                "no compute loop nest for {t} (custom op of domain `{}`, not costed)",
                op.domain()
            );
        }
    };
    format!("no compute loop nest for {t} ({what}, not costed)")
}

/// Whether an op of this kind is vector work: element-wise math, activations, normalizations,
/// reductions, softmax and quantizers, which a DLA runs on its vector unit, not its MAC array.
fn vector_work(kind: OpKind) -> bool {
    use OpKind::*;
    matches!(
        kind,
        Relu | LeakyRelu
            | PRelu
            | Clip
            | Sigmoid
            | HardSigmoid
            | HardSwish
            | Tanh
            | Elu
            | Selu
            | Gelu
            | Softplus
            | Erf
            | Exp
            | Log
            | Sqrt
            | Abs
            | Neg
            | Reciprocal
            | Ceil
            | Floor
            | Round
            | Sign
            | Acos
            | Not
            | Add
            | Sub
            | Mul
            | Div
            | Pow
            | Max
            | Min
            | Sum
            | Mean
            | And
            | Equal
            | Greater
            | Less
            | Where
            | BatchNormalization
            | LayerNormalization
            | SimplifiedLayerNormalization
            | SkipLayerNormalization
            | SkipSimplifiedLayerNormalization
            | InstanceNormalization
            | LRN
            | ReduceMax
            | ReduceMean
            | ReduceMin
            | ReduceSum
            | Softmax
            | LogSoftmax
            | ArgMax
            | ArgMin
            | Quant
            | IntQuant
            | BipolarQuant
            | Trunc
            | FloatQuant
            | MultiThreshold
            | QuantizeLinear
            | DequantizeLinear
    )
}

/// Which values are constants: initializers, `Constant` outputs, and outputs of deterministic
/// ops whose inputs are all constants.
fn constant_values(model: &Model) -> Vec<bool> {
    let g = &model.graph;
    let mut constant = vec![false; g.value_count()];
    for (id, v) in g.values() {
        if v.init.is_some() && !g.inputs.contains(&id) {
            constant[id.index()] = true;
        }
    }
    let order: Vec<OpId> = match g.topo_order() {
        Ok(o) => o,
        Err(_) => g.ops().map(|(id, _)| id).collect(),
    };
    for id in order {
        let op = g.op(id);
        let random = ["Random", "Bernoulli", "Multinomial"].iter().any(|p| op.op_type().starts_with(p));
        let ins: Vec<ValueId> = op.inputs().iter().flatten().copied().collect();
        let is_const = if ins.is_empty() {
            op.kind() == OpKind::Constant
        } else {
            !random && op.kind() != OpKind::Custom && ins.iter().all(|v| constant[v.index()])
        };
        if is_const {
            for v in op.outputs().iter().flatten() {
                constant[v.index()] = true;
            }
        }
    }
    constant
}

pub(crate) type Res<T> = Result<T, String>;

/// An input operand being built.
pub(crate) struct In {
    pub role: &'static str,
    pub index: Vec<String>,
    /// The graph value; `None` for the free `W` of a pooling layer.
    pub value: Option<ValueId>,
    /// The zero point of the quantized ops, whose element type gives the precision.
    pub zp: Option<ValueId>,
    /// Whether the operand's bits count in the bit growth of the partial sums.
    pub grows: bool,
}

/// A layer being built, before precisions and sources.
pub(crate) struct Draft {
    pub compute: Compute,
    pub dims: Vec<(String, u64)>,
    pub out_index: Vec<String>,
    pub out: ValueId,
    pub out_zp: Option<ValueId>,
    pub inputs: Vec<In>,
    pub relations: Vec<Relation>,
    /// Products (or elements) summed into one output; `None`: no reduction.
    pub reduction: Option<u64>,
    /// Whether the partial sums grow with the reduction (false for max).
    pub grows: bool,
}

pub(crate) struct Cx<'m> {
    pub model: &'m Model,
    pub opts: &'m LowerOptions,
    constant: Vec<bool>,
    /// The ops not lowered, by the name their `NotLowered` entry has.
    node_of: HashMap<OpId, String>,
}

/// Bits of one operand, and whether they came from the model (a spec or an integer type).
struct Bits {
    bits: u32,
    from_model: bool,
    signed: bool,
}

impl Cx<'_> {
    fn lower_op(&self, op: &Op, family: Family, layout: Layout) -> Res<Draft> {
        let mut draft = match (family, layout) {
            (Family::Conv, _) => conv::lower_conv(self, op, layout)?,
            (Family::Pool, _) => pool::lower_pool(self, op, layout)?,
            (_, Layout::ChannelsLast) => return Err("channels-last form of this op is not lowered".into()),
            (Family::ConvTranspose, _) => conv::lower_conv_transpose(self, op)?,
            (Family::Gemm, _) => matmul::lower_gemm(self, op)?,
            (Family::MatMul, _) => matmul::lower_matmul(self, op)?,
            (Family::Elementwise, _) => elementwise::lower_elementwise(self, op)?,
            (Family::Recurrent, _) => return Err("a recurrent op lowers as several layers".into()),
            (Family::Attention, _) => return Err("an Attention op lowers as two layers".into()),
        };
        if layout == Layout::ChannelsLast {
            // Activations `[b, channels..., spatial...]`; a Conv's weight `[g, k, c, spatial...]`
            // is stored `O, kH, kW, I/group`; a pool's free W has no channels.
            let spatial = draft.relations.len();
            draft.out_index = layout.storage_index(std::mem::take(&mut draft.out_index), 1, spatial);
            for i in draft.inputs.iter_mut().filter(|i| i.value.is_some()) {
                let lead = if i.role == "W" { 2 } else { 1 };
                i.index = layout.storage_index(std::mem::take(&mut i.index), lead, spatial);
            }
        }
        self.check(&draft)?;
        Ok(draft)
    }

    /// The elements a node that is vector work processes (see [`NotLowered::elements`]): `None`
    /// for other nodes, for nodes on constants only (they fold at compile time), for int64
    /// results (index and shape arithmetic), and when a shape is not known.
    fn vector_elements(&self, op: &Op) -> Option<u64> {
        let g = &self.model.graph;
        let data: Vec<ValueId> = op.inputs().iter().flatten().copied().collect();
        if !vector_work(op.kind()) || data.iter().all(|v| self.is_constant(*v)) {
            return None;
        }
        // int64 results are index or shape arithmetic, which the host computes.
        if op.outputs().iter().flatten().any(|&v| self.elem(v) == Some(ElemType::I64)) {
            return None;
        }
        let count = |v: ValueId| qc_ir::dims::element_count(g, v).ok();
        let mut n = count(*data.first()?)?;
        for v in op.outputs().iter().flatten() {
            n = n.max(count(*v)?);
        }
        Some(n)
    }

    /// The two layers of an `Attention` op (see [`attention`]).
    fn lower_attention(&self, op: &Op, label: &str) -> Res<Vec<recurrent::Part>> {
        let parts = attention::lower(self, op, label)?;
        for p in &parts {
            self.check(&p.draft)?;
        }
        Ok(parts)
    }

    /// The layers of a recurrent op (see [`recurrent`]).
    fn lower_recurrent(&self, op: &Op, label: &str) -> Res<Vec<recurrent::Part>> {
        let parts = recurrent::lower(self, op, label)?;
        for p in &parts {
            self.check(&p.draft)?;
        }
        Ok(parts)
    }

    /// Refuses drafts that are no run-time layer: empty loops, or only constant inputs.
    fn check(&self, draft: &Draft) -> Res<()> {
        // Legal ONNX, but no layer (and ZigZag refuses a size below 1).
        if let Some((name, _)) = draft.dims.iter().find(|(_, s)| *s == 0) {
            return Err(format!("loop {name} has size 0: an empty tensor"));
        }
        if let Some(r) = draft.relations.iter().find(|r| r.extent == 0) {
            return Err(format!("{} has extent 0: an empty tensor", r.name));
        }
        let data: Vec<ValueId> = draft.inputs.iter().filter_map(|i| i.value).collect();
        if !data.is_empty() && data.iter().all(|v| self.is_constant(*v)) {
            return Err("every input is a constant: it folds at compile time (run fold-constants), \
                        not a run-time layer"
                .into());
        }
        Ok(())
    }

    pub(crate) fn is_constant(&self, v: ValueId) -> bool {
        self.constant.get(v.index()).copied().unwrap_or(false)
    }

    /// Input `i` of `op`, or why it is missing.
    pub(crate) fn input(&self, op: &Op, i: usize) -> Res<ValueId> {
        op.inputs().get(i).copied().flatten().ok_or_else(|| format!("input {i} is missing"))
    }

    /// Output 0 of `op`, or why it is missing.
    pub(crate) fn output(&self, op: &Op) -> Res<ValueId> {
        op.outputs().first().copied().flatten().ok_or_else(|| "output 0 is missing".to_string())
    }

    /// The known dims of `v`.
    pub(crate) fn dims(&self, v: ValueId) -> Res<Vec<u64>> {
        let g = &self.model.graph;
        qc_ir::dims::known(g, v).map_err(|_| {
            format!(
                "the shape of `{}` is not known: shape inference could not follow the ops before it (when they compute constants, `qc optimize` folds them first: lower its output)",
                g.value(v).name
            )
        })
    }

    /// The element type of `v`, if known.
    pub(crate) fn elem(&self, v: ValueId) -> Option<ElemType> {
        value_elem(self.model, v)
    }

    /// Bits of `v` from the model: its spec, its integer type, or its zero point's type.
    fn model_bits(&self, v: Option<ValueId>, zp: Option<ValueId>) -> Option<(u32, bool)> {
        let g = &self.model.graph;
        let useful = |d: &DataType| !matches!(d, DataType::F32 | DataType::F16);
        if let Some(q) = v.and_then(|v| g.value(v).quant.as_ref()).filter(|q| useful(&q.dtype)) {
            return Some((q.dtype.bitwidth(), q.dtype.signed()));
        }
        [v, zp].into_iter().flatten().find_map(|x| {
            let dt = self.elem(x).and_then(elem_datatype).filter(useful)?;
            Some((dt.bitwidth(), dt.signed()))
        })
    }

    fn defaults(&self) -> DefaultPrecision {
        self.opts.default_precision.unwrap_or(DefaultPrecision::ZIGZAG)
    }

    fn input_bits(&self, i: &In) -> Bits {
        match (i.value, self.model_bits(i.value, i.zp)) {
            (None, _) => Bits { bits: 0, from_model: false, signed: false },
            (Some(_), Some((bits, signed))) => Bits { bits, from_model: true, signed },
            (Some(v), None) => {
                let d = self.defaults();
                Bits {
                    bits: if self.is_constant(v) { d.weight } else { d.act },
                    from_model: false,
                    signed: true,
                }
            }
        }
    }

    /// The value's source, as an input operand.
    fn source(&self, v: ValueId, layer_of: &HashMap<OpId, String>) -> Source {
        let g = &self.model.graph;
        let val = g.value(v);
        if let Some(name) = val.producer().and_then(|p| layer_of.get(&p)) {
            return Source::Layer(name.clone());
        }
        if self.is_constant(v) {
            return Source::Constant;
        }
        if g.inputs.contains(&v) {
            return Source::GraphInput(val.name.clone());
        }
        match val.producer().and_then(|p| self.node_of.get(&p)) {
            Some(name) => Source::Node(name.clone()),
            None => Source::Other,
        }
    }

    /// Turns a draft into the layer: precisions, partial sums, sources.
    fn finish(&self, op: &Op, name: String, id: u32, d: Draft, layer_of: &HashMap<OpId, String>) -> LoopNest {
        let g = &self.model.graph;
        let bits: Vec<Bits> = d.inputs.iter().map(|i| self.input_bits(i)).collect();
        let mut out_bits = self.model_bits(Some(d.out), d.out_zp).map_or(self.defaults().output, |(b, _)| b);
        // ConvInteger and MatMulInteger write their 32-bit accumulator; the model dequantizes it
        // and requantizes it for the next layer (quantize_dynamic's pattern), so under ZigZag's
        // convention their final output has the activation bits, as the same layer's float
        // version has (`psum=exact` keeps the 32 bits).
        if matches!(op.kind(), OpKind::ConvInteger | OpKind::MatMulInteger)
            && self.opts.psum == PsumMode::Zigzag
            && let Some(act) = d.inputs.iter().zip(&bits).find(|(i, _)| i.role == "I").map(|(_, b)| b.bits)
        {
            out_bits = act;
        }
        let (psum_precision, psum_rule) = match d.reduction {
            None => (None, PsumRule::None),
            Some(r) => self.psum(op, &d, &bits, r),
        };
        let inputs = d
            .inputs
            .iter()
            .zip(&bits)
            .map(|(i, b)| Operand {
                role: i.role.to_string(),
                index: i.index.clone(),
                precision: Some(b.bits),
                quant: i.value.and_then(|v| g.value(v).quant.clone()),
                source: i.value.map_or(Source::Constant, |v| self.source(v, layer_of)),
                value: i.value.map_or_else(String::new, |v| g.value(v).name.clone()),
            })
            .collect();
        LoopNest {
            name,
            id,
            op_type: op.op_type().to_string(),
            compute: d.compute,
            dims: d.dims.into_iter().map(|(name, size)| LoopDim { name, size }).collect(),
            output: Operand {
                role: "O".into(),
                index: d.out_index,
                precision: Some(out_bits),
                quant: g.value(d.out).quant.clone(),
                source: Source::Other,
                value: g.value(d.out).name.clone(),
            },
            inputs,
            relations: d.relations,
            psum_precision,
            psum_rule,
        }
    }

    fn psum(&self, op: &Op, d: &Draft, bits: &[Bits], reduction: u64) -> (Option<u32>, PsumRule) {
        if let Some(given) =
            op.attr_int("output_size", 0).ok().and_then(|x| u32::try_from(x).ok()).filter(|x| *x > 0)
        {
            return (Some(given), PsumRule::Given);
        }
        if let PsumMode::Bits(n) = self.opts.psum {
            return (Some(n), PsumRule::Given);
        }
        let growing: Vec<&Bits> =
            d.inputs.iter().zip(bits).filter(|(i, _)| i.grows).map(|(_, b)| b).collect();
        let quantized = growing.iter().any(|b| b.from_model);
        if quantized && self.opts.psum == PsumMode::Exact {
            let mut sum = growing.iter().fold(0u32, |acc, b| acc.saturating_add(b.bits));
            if d.grows {
                sum = sum.saturating_add(ceil_log2(reduction));
            }
            if growing.len() == 2 && growing[0].signed != growing[1].signed {
                sum = sum.saturating_add(1);
            }
            return (Some(sum), PsumRule::BitGrowth);
        }
        if let Some(dp) = self.opts.default_precision
            && !quantized
        {
            return (Some(dp.psum), PsumRule::Given);
        }
        let act = d
            .inputs
            .iter()
            .zip(bits)
            .find(|(i, _)| i.role == "I")
            .map_or(self.defaults().act, |(_, b)| b.bits);
        (Some(act.saturating_mul(2)), PsumRule::TwiceActivation)
    }
}

/// `ceil(log2(n))`, 0 for `n <= 1`.
pub(crate) fn ceil_log2(n: u64) -> u32 {
    if n <= 1 { 0 } else { 64 - (n - 1).leading_zeros() }
}

/// The windows of a Conv or pool over `input` spatial dims, with the pads [`Window`] resolves;
/// the declared `output` dims must be the ones it gives.
pub(crate) fn window_axes(window: &Window, input: &[u64], output: &[u64]) -> Res<Vec<Axis>> {
    let n = window.rank();
    if input.len() != n || output.len() != n {
        return Err(format!(
            "the kernel has {n} spatial axes, the input {} and the output {}",
            input.len(),
            output.len()
        ));
    }
    let mut axes = Vec::with_capacity(n);
    for (i, a) in window.axes.iter().enumerate() {
        let (x, y) = (input[i], output[i]);
        let r = window.resolve_axis(i, x).map_err(|e| e.to_string())?;
        if r.output != y {
            let eff = a.extent().map_err(|e| e.to_string())?;
            return Err(format!(
                "the output size {y} disagrees with the attributes (input {x}, window {eff}, stride {}, pads {}+{} give {})",
                a.stride, r.pad_begin, r.pad_end, r.output
            ));
        }
        axes.push(Axis { pad_begin: r.pad_begin, pad_end: r.pad_end, ..*a });
    }
    Ok(axes)
}

/// `name = s*out + d*filt - pad_begin` over an input axis of `extent`; the high padding is the
/// larger of the attribute's and what the last window reaches past the end (ceil mode).
pub(crate) fn window_relation(
    name: &str,
    out: &str,
    filt: &str,
    out_size: u64,
    extent: u64,
    a: Axis,
) -> Res<Relation> {
    let big = || "attribute values too large".to_string();
    let coef = |x: u64| i64::try_from(x).map_err(|_| big());
    let last = out_size
        .saturating_sub(1)
        .checked_mul(a.stride)
        .and_then(|v| v.checked_add(a.kernel.checked_sub(1)?.checked_mul(a.dilation)?))
        .ok_or_else(|| if a.kernel == 0 { format!("the window over {name} has size 0") } else { big() })?;
    // last index reached, relative to the unpadded axis: last - pad_begin
    let overshoot = last.saturating_sub(a.pad_begin).saturating_add(1).saturating_sub(extent);
    Ok(Relation {
        name: name.into(),
        terms: vec![(coef(a.stride)?, out.into()), (coef(a.dilation)?, filt.into())],
        offset: -coef(a.pad_begin)?,
        extent,
        padding: (a.pad_begin, a.pad_end.max(overshoot)),
    })
}

/// `(name, size)` pairs.
pub(crate) fn dims_of(names: &[&str], sizes: &[u64]) -> Vec<(String, u64)> {
    names.iter().zip(sizes).map(|(n, s)| (n.to_string(), *s)).collect()
}

/// Lower-case index names.
pub(crate) fn idx(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_ascii_lowercase()).collect()
}
