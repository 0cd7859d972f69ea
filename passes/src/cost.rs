//! Inference cost as `qonnx-inference-cost` counts it: MACs by datatype pair, bit operations,
//! weight and output memory (research/qonnx.md 1(c); the formulas are in `spec/cost.md`).
//!
//! [`preprocess`] runs qc's passes in the order of the reference procedure (`qonnx-cleanup`, then
//! the cost tool's own preprocessing), so that weights behind quantizers are folded into constants
//! that keep their quantizer's datatype, and sparsity is measured on the quantized weights.
//! [`inference_cost`] then counts every node. Keys, values and the list of unsupported ops match
//! the reference tool; where it crashes or is wrong (channels-last Conv, Conv without
//! `kernel_shape`, symbolic dims) qc does the right thing, as `spec/cost.md` says.
//!
//! With [`CostOptions::extended`], ops the reference leaves unsupported whose arithmetic is clear
//! are costed too (pooling, ConvTranspose, QLinearConv, QLinearMatMul, ConvInteger,
//! MatMulInteger, Softmax, Resize, element-wise ops).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use qc_ir::dims::{self, DimsError};
use qc_ir::{AttrValue, Const, DataType, Model, Op, OpId, ValueId};

use crate::manager::{ManagerError, ManagerOptions, PassManager, RunReport};
use crate::pipeline::Pipeline;
use crate::quant::{datatype_of, elem_datatype, value_elem};
use crate::shape::channels_last::DOMAIN as CHANNELS_LAST;

/// Counts by key (`op_mac_INT8_INT4`, `mem_w_INT4`, `mem_o_INT32`, `total_macs`, ...).
pub type Counts = BTreeMap<String, f64>;

/// What to count.
#[derive(Clone, Copy, Debug)]
pub struct CostOptions {
    /// Scale MACs and weight memory by the density of constant weights (the reference default).
    pub discount_sparsity: bool,
    /// Also cost the ops the reference leaves unsupported where the arithmetic is clear.
    pub extended: bool,
}

impl Default for CostOptions {
    fn default() -> Self {
        CostOptions { discount_sparsity: true, extended: false }
    }
}

/// The cost of one node.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeCost {
    pub op: OpId,
    /// The node's own name, or its qonnx name when it has none or shares it with another node.
    pub name: String,
    pub op_type: String,
    /// The name qonnx gives the node (`<OpType>_<k>`, see [`qonnx_node_names`]).
    pub qonnx_name: String,
    /// Its counts, with the `total_*` keys.
    pub counts: Counts,
}

/// A problem met while counting that did not stop it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CostWarning {
    pub code: &'static str,
    pub node: String,
    pub message: String,
}

/// The cost of a model.
#[derive(Clone, Debug, PartialEq)]
pub struct CostReport {
    /// Sums over the costed nodes, with the `total_*` keys.
    pub total: Counts,
    /// Op types that are neither costed nor known to cost nothing.
    pub unsupported: BTreeSet<String>,
    pub discount_sparsity: bool,
    pub extended: bool,
    /// Sums per op type, with the `total_*` keys.
    pub optype: BTreeMap<String, Counts>,
    /// Every costed node, in graph order.
    pub nodes: Vec<NodeCost>,
    pub warnings: Vec<CostWarning>,
}

/// The preprocessing pipeline: the reference procedure's steps in qc's passes (`qc cost
/// --print-pipeline` shows it). It drops initializer inputs, infers shapes, folds constants
/// except the quantizers `qonnx-cleanup` keeps, infers datatypes, folds the remaining constant
/// quantizers (weights keep their quantizer's datatype), removes dead ops, and infers shapes and
/// datatypes again. The reference folds every constant however large, hence the limit.
pub const PREPROCESS: &str = "remove-static-inputs,infer-shapes,\
fold-constants{quant=qonnx-cleanup,max-growth-mib=1048576},infer-shapes,infer-datatypes,\
fold-constants{quant=true,max-growth-mib=1048576},eliminate-dead,infer-shapes,infer-datatypes";

/// Prepares a model for counting with [`PREPROCESS`].
pub fn preprocess(model: &mut Model, options: ManagerOptions) -> Result<RunReport, ManagerError> {
    let pipeline = Pipeline::parse(PREPROCESS).expect("the preprocessing pipeline parses");
    PassManager::new(pipeline, options)?.run(model, &mut |_, _| {})
}

/// Op types the reference counts as free.
pub const ZERO_COST: [&str; 22] = [
    "MaxPool",
    "AveragePool",
    "Quant",
    "QuantizeLinear",
    "DequantizeLinear",
    "Reshape",
    "Concat",
    "Transpose",
    "Div",
    "Mul",
    "Add",
    "Sub",
    "BatchNormalization",
    "Relu",
    "Elu",
    "Selu",
    "Sigmoid",
    "Identity",
    "Flatten",
    "Pad",
    "Clip",
    "Trunc",
];

/// Op types `--extended` costs on top of the reference's.
pub const EXTENDED: [&str; 25] = [
    "LSTM",
    "GRU",
    "RNN",
    "QLinearConv",
    "ConvInteger",
    "QLinearMatMul",
    "MatMulInteger",
    "ConvTranspose",
    "AveragePool",
    "GlobalAveragePool",
    "Softmax",
    "Resize",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Max",
    "Min",
    "Sum",
    "Mean",
    "PRelu",
    "Pow",
    "Attention",
    "LayerNormalization",
    "RMSNormalization",
];

/// Op types `--extended` counts as free: data movement, quantizers and the activations (as the
/// reference already counts Relu, Sigmoid, Elu and Selu).
pub const EXTENDED_FREE: [&str; 39] = [
    "Dropout",
    "Squeeze",
    "Unsqueeze",
    "DepthToSpace",
    "SpaceToDepth",
    "Gather",
    "Slice",
    "Split",
    "Expand",
    "Tile",
    "Cast",
    "Constant",
    "Shape",
    "GlobalMaxPool",
    "BipolarQuant",
    "IntQuant",
    "FloatQuant",
    "MultiThreshold",
    "DynamicQuantizeLinear",
    "LeakyRelu",
    "Tanh",
    "HardSigmoid",
    "HardSwish",
    "Softplus",
    "Gelu",
    "Mish",
    "Swish",
    "Erf",
    "Exp",
    "Log",
    "Sqrt",
    "Neg",
    "Abs",
    "Floor",
    "Ceil",
    "Round",
    "Sign",
    "Not",
    "Reciprocal",
];

/// Counts the cost of every node of a preprocessed model.
pub fn inference_cost(model: &Model, opts: &CostOptions) -> CostReport {
    let g = &model.graph;
    let qonnx_names = qonnx_node_names(model);
    let mut name_count: HashMap<&str, usize> = HashMap::new();
    for (_, op) in g.ops() {
        if let Some(n) = op.name.as_deref().filter(|n| !n.is_empty()) {
            *name_count.entry(n).or_default() += 1;
        }
    }
    let mut cx = Counter { model, opts, warnings: Vec::new() };
    let mut unsupported = BTreeSet::new();
    let mut nodes = Vec::new();
    for (id, op) in g.ops() {
        let qonnx_name = qonnx_names.get(&id).cloned().unwrap_or_default();
        let name = match op.name.as_deref() {
            Some(n) if !n.is_empty() && name_count.get(n) == Some(&1) => n.to_string(),
            _ => qonnx_name.clone(),
        };
        match cx.node(op, &name) {
            Outcome::Costed(counts) => nodes.push(NodeCost {
                op: id,
                name,
                op_type: op.op_type().to_string(),
                qonnx_name,
                counts: with_totals(counts),
            }),
            Outcome::Free => {}
            Outcome::Unsupported => {
                unsupported.insert(op.op_type().to_string());
            }
        }
    }
    let mut total = Counts::new();
    let mut optype: BTreeMap<String, Counts> = BTreeMap::new();
    for n in &nodes {
        for (k, v) in n.counts.iter().filter(|(k, _)| !k.starts_with("total_")) {
            *total.entry(k.clone()).or_default() += v;
            *optype.entry(n.op_type.clone()).or_default().entry(k.clone()).or_default() += v;
        }
    }
    let optype = optype.into_iter().map(|(k, c)| (k, with_totals(c))).collect();
    CostReport {
        total: with_totals(total),
        unsupported,
        discount_sparsity: opts.discount_sparsity,
        extended: opts.extended,
        optype,
        nodes,
        warnings: cx.warnings,
    }
}

/// Adds `total_macs`, `total_bops`, `total_mem_w_bits`, `total_mem_w_elems`,
/// `total_mem_o_bits` and `total_mem_o_elems` to per-key counts.
pub fn with_totals(mut c: Counts) -> Counts {
    let (mut macs, mut bops) = (0.0, 0.0);
    let (mut wb, mut we, mut ob, mut oe) = (0.0, 0.0, 0.0, 0.0);
    for (k, v) in &c {
        if let Some(rest) = k.strip_prefix("op_mac_") {
            // Datatype names contain no `_`, so the key splits cleanly.
            let mut parts = rest.split('_');
            let bits = |p: Option<&str>| p.and_then(DataType::parse).map_or(0.0, |d| f64::from(d.bitwidth()));
            let (a, b) = (bits(parts.next()), bits(parts.next()));
            bops += a * b * v;
            macs += v;
        } else if let Some(dt) = k.strip_prefix("mem_w_") {
            wb += DataType::parse(dt).map_or(0.0, |d| f64::from(d.bitwidth())) * v;
            we += v;
        } else if let Some(dt) = k.strip_prefix("mem_o_") {
            ob += DataType::parse(dt).map_or(0.0, |d| f64::from(d.bitwidth())) * v;
            oe += v;
        }
    }
    for (k, v) in [
        ("total_macs", macs),
        ("total_bops", bops),
        ("total_mem_w_bits", wb),
        ("total_mem_w_elems", we),
        ("total_mem_o_bits", ob),
        ("total_mem_o_elems", oe),
    ] {
        c.insert(k.into(), v);
    }
    c
}

/// The names qonnx gives the nodes of a graph: `<OpType>_<k>`, counting each op type from 0 in
/// the order of qonnx's `SortGraph` (nodes by depth, the length of the longest path from a node
/// with no producer among its inputs; ties in graph order), as `GiveUniqueNodeNames` does.
pub fn qonnx_node_names(model: &Model) -> HashMap<OpId, String> {
    let g = &model.graph;
    let order: Vec<OpId> = g.topo_order().unwrap_or_else(|_| g.ops().map(|(id, _)| id).collect());
    let mut depth: HashMap<OpId, usize> = HashMap::new();
    for &id in &order {
        let d = g
            .op(id)
            .inputs()
            .iter()
            .flatten()
            .filter_map(|v| g.value(*v).producer())
            .filter_map(|p| depth.get(&p).map(|d| d + 1))
            .max()
            .unwrap_or(0);
        depth.insert(id, d);
    }
    let mut sorted: Vec<(usize, usize, OpId)> =
        g.ops().enumerate().map(|(i, (id, _))| (depth.get(&id).copied().unwrap_or(0), i, id)).collect();
    sorted.sort();
    let mut per_type: HashMap<&str, usize> = HashMap::new();
    let mut out = HashMap::new();
    for (_, _, id) in sorted {
        let t = g.op(id).op_type();
        let k = per_type.entry(t).or_default();
        out.insert(id, format!("{t}_{k}"));
        *k += 1;
    }
    out
}

enum Outcome {
    Costed(Counts),
    Free,
    Unsupported,
}

struct Counter<'m> {
    model: &'m Model,
    opts: &'m CostOptions,
    warnings: Vec<CostWarning>,
}

impl Counter<'_> {
    fn node(&mut self, op: &Op, name: &str) -> Outcome {
        let t = op.op_type();
        let ms = op.domain() == qc_ir::op::MICROSOFT_DOMAIN;
        let result = match t {
            "Conv" if !ms => self.conv(op, 0, 1),
            "MatMul" | "Gemm" if !ms => self.matmul(op, 0, 1),
            "Upsample" => self.upsample(op),
            // onnxruntime's fused ops are their Conv, Gemm and MatMul (the activation is free).
            "FusedConv" if ms => self.conv(op, 0, 1),
            "FusedGemm" | "FusedMatMul" if ms => self.matmul(op, 0, 1),
            _ if ms && self.opts.extended => match t {
                "QLinearAdd" | "QLinearMul" => self.qlinear_binary(op),
                "QLinearGlobalAveragePool" | "QLinearAveragePool" => self.average_pool(op),
                "QLinearSoftmax" => self.softmax(op),
                "QGemm" => self.matmul(op, 0, 3),
                "DynamicQuantizeLSTM" => self.recurrent(op),
                "QLinearSigmoid" | "QLinearLeakyRelu" | "QLinearConcat" | "QuantizeLinear"
                | "DequantizeLinear" | "Gelu" | "FastGelu" | "QuickGelu" => return Outcome::Free,
                _ => return Outcome::Unsupported,
            },
            _ if self.opts.extended && EXTENDED.contains(&t) => match t {
                "QLinearConv" => self.conv(op, 0, 3),
                "ConvInteger" => self.conv(op, 0, 1),
                "QLinearMatMul" => self.matmul(op, 0, 3),
                "MatMulInteger" => self.matmul(op, 0, 1),
                "ConvTranspose" => self.conv_transpose(op),
                "AveragePool" | "GlobalAveragePool" => self.average_pool(op),
                "Softmax" => self.softmax(op),
                "Resize" => self.resize(op),
                "LSTM" | "GRU" | "RNN" => self.recurrent(op),
                "Attention" => self.attention(op),
                "LayerNormalization" => self.normalization(op, 6),
                "RMSNormalization" => self.normalization(op, 3),
                _ => self.elementwise(op),
            },
            _ if ZERO_COST.contains(&t) => return Outcome::Free,
            _ if self.opts.extended && EXTENDED_FREE.contains(&t) => return Outcome::Free,
            _ => return Outcome::Unsupported,
        };
        match result {
            Ok(c) => Outcome::Costed(c),
            Err(message) => {
                self.warnings.push(CostWarning {
                    code: "qc::cost::uncosted",
                    node: name.to_string(),
                    message,
                });
                Outcome::Unsupported
            }
        }
    }

    fn input(&self, op: &Op, i: usize) -> Result<ValueId, String> {
        op.inputs().get(i).copied().flatten().ok_or_else(|| format!("input {i} is missing"))
    }

    fn output(&self, op: &Op) -> Result<ValueId, String> {
        op.outputs().first().copied().flatten().ok_or_else(|| "output 0 is missing".to_string())
    }

    /// The dims of a value, every product of which fits in 64 bits; a symbolic or unknown dim
    /// is an error (the node is not costed; a symbolic dim is never counted as 1).
    fn dims(&self, v: ValueId) -> Result<Vec<u64>, String> {
        dims::counted(&self.model.graph, v).map_err(|e| match e {
            DimsError::Symbolic { .. } => format!("{e} (give the inputs' dims with --overwrite-input-shape)"),
            e => e.to_string(),
        })
    }

    /// Nonzero elements over all elements of a constant; `None` when `v` is not a constant.
    fn density(&self, v: ValueId) -> Option<f64> {
        let Some(Const::Dense(t)) = &self.model.graph.value(v).init else { return None };
        let (nonzero, total) = count_nonzero(self.model, t)?;
        Some(nonzero as f64 / total as f64)
    }

    /// The datatype name of a value: its spec's, else QONNX's default; with `extended`, an
    /// integer tensor without a spec is its element type's integer datatype (QONNX would say
    /// FLOAT32).
    fn dt(&self, v: ValueId) -> String {
        let val = self.model.graph.value(v);
        let defaulted = val
            .quant
            .as_ref()
            .is_none_or(|q| q.dtype == DataType::F32 && q.origin == qc_ir::QuantOrigin::Inferred);
        if self.opts.extended
            && defaulted
            && let Some(d) = value_elem(self.model, v).and_then(elem_datatype).filter(DataType::is_integer)
        {
            return d.name();
        }
        datatype_of(self.model, v).name()
    }

    fn keys(&self, i: ValueId, w: ValueId, o: ValueId) -> (String, String, String) {
        (
            format!("op_mac_{}_{}", self.dt(i), self.dt(w)),
            format!("mem_w_{}", self.dt(w)),
            format!("mem_o_{}", self.dt(o)),
        )
    }

    /// Output-only counts: `macs` keyed by the datatypes of inputs `a` and `b`, and the output.
    fn plain(&mut self, op: &Op, a: ValueId, b: ValueId, macs: u64) -> Result<Counts, String> {
        let o = self.output(op)?;
        let o_mem: u64 = self.dims(o)?.iter().product();
        Ok(counts([
            (format!("op_mac_{}_{}", self.dt(a), self.dt(b)), macs as f64),
            (format!("mem_o_{}", self.dt(o)), o_mem as f64),
        ]))
    }

    /// `QLinearAdd`/`QLinearMul`: one operation per output element, keyed by the datatypes of
    /// the two quantized operands (inputs 0 and 3), as their float counterparts are.
    fn qlinear_binary(&mut self, op: &Op) -> Result<Counts, String> {
        let (a, b, o) = (self.input(op, 0)?, self.input(op, 3)?, self.output(op)?);
        let n: u64 = self.dims(o)?.iter().product();
        self.plain(op, a, b, n)
    }

    fn conv_transpose(&mut self, op: &Op) -> Result<Counts, String> {
        let (i, w, o) = (self.input(op, 0)?, self.input(op, 1)?, self.output(op)?);
        let (is, ws, os) = (self.dims(i)?, self.dims(w)?, self.dims(o)?);
        if is.len() < 3 || ws.len() != is.len() || os.len() != is.len() {
            return Err("ranks do not make a transposed convolution".into());
        }
        if ws[0] != is[1] {
            return Err(format!("{} input channels do not fit weight {ws:?}", is[1]));
        }
        // Every input pixel meets every kernel tap for each output channel of its group (the
        // weight is [C, K/group, k...]).
        let macs = count(&[is[0], is[1], ws[1], ws[2..].iter().product(), is[2..].iter().product()])?;
        let w_mem: u64 = ws.iter().product();
        let o_mem: u64 = os.iter().product();
        let density = self.sparsity(w);
        let (mk, wk, ok) = self.keys(i, w, o);
        Ok(counts([(mk, macs as f64 * density), (wk, w_mem as f64 * density), (ok, o_mem as f64)]))
    }

    /// LSTM, GRU, RNN (and DynamicQuantizeLSTM): the input and recurrent projections, one
    /// multiply-accumulate per element of `W` and of `R` for each time step and batch row:
    /// `seq * batch * (|W| + |R|)` = `seq * batch * dirs * gates * hidden * (input + hidden)`.
    /// Weights are `W` and `R`; outputs `Y`.
    fn recurrent(&mut self, op: &Op) -> Result<Counts, String> {
        let (x, w, r) = (self.input(op, 0)?, self.input(op, 1)?, self.input(op, 2)?);
        let (xs, ws, rs) = (self.dims(x)?, self.dims(w)?, self.dims(r)?);
        let input = *xs.last().ok_or("X has no dims")?;
        if xs.len() != 3 || ws.len() != 3 || rs.len() != 3 || input == 0 {
            return Err(format!("X {xs:?}, W {ws:?} and R {rs:?} are not a recurrent layer's"));
        }
        // Checked: declared dims can be anything, and a wrapped count would be a wrong number.
        let product = dims::product;
        let overflow = || "the dims of X, W and R overflow a 64-bit count".to_string();
        let rows = xs[0].checked_mul(xs[1]).ok_or_else(overflow)?;
        let (w_mem, r_mem) = (product(&ws).ok_or_else(overflow)?, product(&rs).ok_or_else(overflow)?);
        let weights = w_mem.checked_add(r_mem).ok_or_else(overflow)?;
        let macs = rows.checked_mul(weights).ok_or_else(overflow)?;
        let o_mem: u64 = match op.outputs().first().copied().flatten() {
            Some(y) => product(&self.dims(y)?).ok_or_else(overflow)?,
            None => 0,
        };
        let (mk, wk, ok) = self.keys(x, w, op.outputs().first().copied().flatten().unwrap_or(x));
        Ok(counts([(mk, macs as f64), (wk, weights as f64), (ok, o_mem as f64)]))
    }

    fn average_pool(&mut self, op: &Op) -> Result<Counts, String> {
        let (i, o) = (self.input(op, 0)?, self.output(op)?);
        let (is, os) = (self.dims(i)?, self.dims(o)?);
        if is.len() < 3 {
            return Err("pooling needs a batch, a channel and a spatial dim".into());
        }
        let channels_last = op.attr_int("channels_last", 0).unwrap_or(0) != 0;
        let window: u64 = if op.op_type().ends_with("GlobalAveragePool") {
            if channels_last { is[1..is.len() - 1].iter().product() } else { is[2..].iter().product() }
        } else {
            match op.attr("kernel_shape").map(|a| &a.value) {
                Some(AttrValue::Ints(k)) => count(&k.iter().map(|&x| x.max(0) as u64).collect::<Vec<_>>())?,
                _ => return Err("AveragePool without kernel_shape".into()),
            }
        };
        // One multiply-accumulate (by 1/window) per window element and output.
        self.plain(op, i, i, count(&[os.iter().product(), window])?)
    }

    fn softmax(&mut self, op: &Op) -> Result<Counts, String> {
        let i = self.input(op, 0)?;
        let n: u64 = self.dims(i)?.iter().product();
        // The sum of the exponentials and the scaling by its reciprocal; exponentials not counted.
        self.plain(op, i, i, count(&[2, n])?)
    }

    /// `per_element` operations on each input element: LayerNormalization's mean, centring,
    /// variance, normalisation, scale and bias (6); RMSNormalization's mean square,
    /// normalisation and scale (3). The square root and reciprocal per row are not counted.
    fn normalization(&mut self, op: &Op, per_element: u64) -> Result<Counts, String> {
        let i = self.input(op, 0)?;
        let n: u64 = self.dims(i)?.iter().product();
        self.plain(op, i, i, count(&[per_element, n])?)
    }

    /// ONNX `Attention` (opset 23): the two products it contains, `Q·K^T` and `softmax(..)·V`,
    /// for every query head: batch · q_heads · q_seq · kv_seq · (qk_head_size + v_head_size)
    /// MACs, keyed by the datatypes of Q and K. 4-D inputs are `[batch, heads, seq, head_size]`;
    /// 3-D inputs `[batch, seq, heads · head_size]` take their head counts from `q_num_heads`
    /// and `kv_num_heads`. The softmax, scale and mask are not counted.
    fn attention(&mut self, op: &Op) -> Result<Counts, String> {
        let (q, k, v) = (self.input(op, 0)?, self.input(op, 1)?, self.input(op, 2)?);
        let (qs, ks, vs) = (self.dims(q)?, self.dims(k)?, self.dims(v)?);
        let macs = match (qs.as_slice(), ks.as_slice(), vs.as_slice()) {
            (&[b, hq, sq, dqk], &[_, _, skv, _], &[_, _, _, dv]) => count(&[b, hq, sq, skv, sum(dqk, dv)?])?,
            (&[b, sq, q_hidden], &[_, skv, _], &[_, _, v_hidden]) => {
                let heads = |name: &str| match op.attr_int(name, 0) {
                    Ok(h) if h > 0 => Ok(h as u64),
                    _ => Err(format!("3-D inputs need a positive `{name}` attribute")),
                };
                let (hq, hkv) = (heads("q_num_heads")?, heads("kv_num_heads")?);
                if v_hidden % hkv != 0 {
                    return Err(format!(
                        "V's hidden size {v_hidden} is not a multiple of kv_num_heads {hkv}"
                    ));
                }
                let dv = v_hidden / hkv;
                count(&[b, sq, skv, sum(q_hidden, count(&[hq, dv])?)?])?
            }
            _ => return Err("Q, K and V must be all 3-D or all 4-D".into()),
        };
        let o = self.output(op)?;
        let o_mem: u64 = self.dims(o)?.iter().product();
        Ok(counts([
            (format!("op_mac_{}_{}", self.dt(q), self.dt(k)), macs as f64),
            (format!("mem_o_{}", self.dt(o)), o_mem as f64),
        ]))
    }

    fn resize(&mut self, op: &Op) -> Result<Counts, String> {
        let (i, o) = (self.input(op, 0)?, self.output(op)?);
        let (is, os) = (self.dims(i)?, self.dims(o)?);
        let taps = match op.attr_str("mode", "nearest").map_err(|e| e.to_string())?.as_str() {
            "nearest" => 0,
            "linear" => 2,
            "cubic" => 4,
            other => return Err(format!("mode `{other}` is not costed")),
        };
        let scaled = is.iter().zip(&os).filter(|(a, b)| a != b).count() as u64;
        self.plain(op, i, i, count(&[taps, scaled, os.iter().product()])?)
    }

    fn elementwise(&mut self, op: &Op) -> Result<Counts, String> {
        let ins: Vec<ValueId> = op.inputs().iter().flatten().copied().collect();
        let (Some(&a), Some(&b)) = (ins.first(), ins.get(1).or(ins.first())) else {
            return Err("no inputs".into());
        };
        let o = self.output(op)?;
        let n: u64 = self.dims(o)?.iter().product();
        // One operation per output element for each input after the first.
        self.plain(op, a, b, count(&[n, ins.len().max(2) as u64 - 1])?)
    }

    fn conv(&mut self, op: &Op, x: usize, wi: usize) -> Result<Counts, String> {
        let (i, w, o) = (self.input(op, x)?, self.input(op, wi)?, self.output(op)?);
        let (is, ws, os) = (self.dims(i)?, self.dims(w)?, self.dims(o)?);
        if is.len() < 3 || os.len() != is.len() || ws.len() != is.len() {
            return Err(format!(
                "ranks {}, {} and {} do not make a convolution",
                is.len(),
                ws.len(),
                os.len()
            ));
        }
        // The kernel: the attribute, else the weight's spatial dims (qonnx crashes without it).
        let kernel: Vec<u64> = match op.attr("kernel_shape").map(|a| &a.value) {
            Some(AttrValue::Ints(k)) => k.iter().map(|&x| x.max(0) as u64).collect(),
            _ => ws[2..].to_vec(),
        };
        let group = op.attr_int("group", 1).map_err(|e| e.to_string())?.max(1) as u64;
        let last = is.len() - 1;
        // qonnx's channels-last Conv is NHWC; qonnx itself costs it as NCHW and fails.
        let (batch, in_ch, out_ch, pixels): (u64, u64, u64, u64) = if op.domain() == CHANNELS_LAST {
            (is[0], is[last], os[last], os[1..last].iter().product())
        } else {
            (is[0], is[1], os[1], os[2..].iter().product())
        };
        if out_ch != ws[0] || out_ch % group != 0 {
            return Err(format!("{out_ch} output channels do not fit weight {ws:?} with group {group}"));
        }
        let macs = count(&[batch, out_ch / group, in_ch, count(&kernel)?, pixels])?;
        let w_mem: u64 = ws.iter().product();
        let o_mem: u64 = os.iter().product();
        let density = self.sparsity(w);
        let (mk, wk, ok) = self.keys(i, w, o);
        Ok(counts([(mk, macs as f64 * density), (wk, w_mem as f64 * density), (ok, o_mem as f64)]))
    }

    fn sparsity(&self, w: ValueId) -> f64 {
        if self.opts.discount_sparsity { self.density(w).unwrap_or(1.0) } else { 1.0 }
    }

    fn matmul(&mut self, op: &Op, ai: usize, bi: usize) -> Result<Counts, String> {
        let (a, b, o) = (self.input(op, ai)?, self.input(op, bi)?, self.output(op)?);
        let (mut as_, mut bs, os) = (self.dims(a)?, self.dims(b)?, self.dims(o)?);
        if matches!(op.op_type(), "Gemm" | "FusedGemm" | "QGemm") {
            if as_.len() != 2 || bs.len() != 2 {
                return Err("Gemm operands must be 2-D".into());
            }
            if op.attr_int("transA", 0).unwrap_or(0) != 0 {
                as_.reverse();
            }
            if op.attr_int("transB", 0).unwrap_or(0) != 0 {
                bs.reverse();
            }
        }
        // FusedMatMul's transA swaps A's last two dims (transBatchA moves only batch dims).
        if op.op_type() == "FusedMatMul" && op.attr_int("transA", 0).unwrap_or(0) != 0 && as_.len() >= 2 {
            let r = as_.len();
            as_.swap(r - 2, r - 1);
        }
        let k = *as_.last().ok_or("operand A is a scalar")?;
        let macs = count(&[k, os.iter().product()])?;
        let is_const = |v: ValueId| matches!(self.model.graph.value(v).init, Some(Const::Dense(_)));
        // The static operand holds the weights; with both dynamic there are none. (Both
        // constant is folded away by preprocessing; were it not, B counts as the weights.)
        let (w_mem, weights) = match (is_const(a), is_const(b)) {
            (true, false) => (as_.iter().product::<u64>(), Some(a)),
            (false, false) => (0, None),
            (_, true) => (bs.iter().product::<u64>(), Some(b)),
        };
        let density = weights.map_or(1.0, |w| self.sparsity(w));
        let (mk, wk, ok) = self.keys(a, b, o);
        let o_mem: u64 = os.iter().product();
        Ok(counts([(mk, macs as f64 * density), (wk, w_mem as f64 * density), (ok, o_mem as f64)]))
    }

    fn upsample(&mut self, op: &Op) -> Result<Counts, String> {
        let (i, o) = (self.input(op, 0)?, self.output(op)?);
        let (is, os) = (self.dims(i)?, self.dims(o)?);
        if is.len() < 2 {
            return Err("the input needs a batch and a channel dim".into());
        }
        let mode = op.attr_str("mode", "nearest").map_err(|e| e.to_string())?;
        let macs = match mode.as_str() {
            "nearest" => 0,
            "linear" | "bilinear" => {
                let scales: Vec<f64> = match op.inputs().get(1).copied().flatten() {
                    Some(s) => crate::quant::const_values(self.model, Some(s))
                        .map(|(_, v)| v)
                        .ok_or("the scales are not constant")?,
                    None => match op.attr("scales").map(|a| &a.value) {
                        Some(AttrValue::Floats(f)) => f.iter().map(|&x| f64::from(x)).collect(),
                        _ => return Err("no scales".into()),
                    },
                };
                let scaled = scales.iter().filter(|s| **s > 1.0).count() as u64;
                count(&[2, scaled, os[2..].iter().product(), is[1], is[0]])?
            }
            other => return Err(format!("mode `{other}` is not costed")),
        };
        let o_mem: u64 = os.iter().product();
        Ok(counts([
            (format!("op_mac_{}_{}", self.dt(i), self.dt(i)), macs as f64),
            (format!("mem_o_{}", self.dt(o)), o_mem as f64),
        ]))
    }
}

fn counts<const N: usize>(items: [(String, f64); N]) -> Counts {
    let mut c = Counts::new();
    for (k, v) in items {
        *c.entry(k).or_default() += v;
    }
    c
}

/// Nonzero and total element counts of a dense tensor (`-0.0` counts as zero, as in NumPy).
/// Raw data is scanned in place, without decoding.
pub fn count_nonzero(model: &Model, t: &qc_ir::Tensor) -> Option<(u64, u64)> {
    use qc_ir::{ElemType, TensorData};
    let total = t.element_count().ok()?;
    if total == 0 {
        return Some((0, 0));
    }
    let e = t.elem_type();
    let raw_width = match e {
        ElemType::F32 | ElemType::F64 | ElemType::F16 | ElemType::BF16 => e.bits().map(|b| b as usize / 8),
        _ => None,
    };
    if let (TensorData::Raw(_) | TensorData::External(_), Some(w)) = (&t.data, raw_width) {
        let bytes = model.tensor_bytes(t).ok()?;
        let n = usize::try_from(total).ok()?;
        let b = bytes.get(..n.checked_mul(w)?)?;
        // A float is zero when every bit but the sign bit (the top bit of the last byte) is 0.
        let nonzero =
            b.chunks_exact(w).filter(|c| c[w - 1] & 0x7f != 0 || c[..w - 1].iter().any(|x| *x != 0)).count()
                as u64;
        return Some((nonzero, total));
    }
    let a = crate::eval::Array::from_tensor(t, model).ok()?;
    let nonzero = a.to_f64().ok()?.iter().filter(|x| **x != 0.0).count() as u64;
    Some((nonzero, total))
}

/// The product of `parts`, or an error when it does not fit in 64 bits (never a wrapped count).
fn count(parts: &[u64]) -> Result<u64, String> {
    dims::product(parts).ok_or_else(|| format!("the count {parts:?} multiplies past 2^64"))
}

fn sum(a: u64, b: u64) -> Result<u64, String> {
    a.checked_add(b).ok_or_else(|| format!("the count {a} + {b} adds past 2^64"))
}
