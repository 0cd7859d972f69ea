//! What `qc check` finds: a model checked against a DLA [`Target`].
//!
//! [`check`] runs both analyses and returns a [`CheckReport`]:
//! - [`limits`]: which ops the DLA runs (placement), their operator limits (kernel sizes,
//!   strides, paddings, channels, feature-map sizes, ...), and the tensor limits of graph inputs
//!   and feature maps;
//! - [`scales`]: bit depths, scale formats (power of two, reciprocal dyadic), one scale per
//!   feature map, one weight scale per output channel, zero points, and scale coherence.
//!
//! Run [`PIPELINE`] first, so that shapes, quantization specs and propagated scales are known.
//! Every finding names a [`Rule`]; its code is `qc::check::<rule>`.
//!
//! Vocabulary: a *DLA op* is an op that matches an entry of the target's `operators`, whatever
//! its findings; an *absorbed* op is a quantizer the target lists (it describes the
//! quantization of the tensor it writes) or an op whose outputs are constants (its inputs are
//! all constants, or it is the `Shape` of a tensor of known dims: the DLA compiler folds it);
//! every other op falls back to the CPU. A *feature map* is a value that a
//! DLA op reads or writes and that is not constant; a *weight* or *bias* is a constant input in a
//! slot the operator entry names.

pub mod limits;
pub(crate) mod report;
pub mod rules;
pub mod scales;

use std::collections::{HashMap, HashSet};

use qc_ir::dims;
use qc_ir::target::{OperatorRule, Rule, Severity, Target};
use qc_ir::{Model, Op, OpId, ValueId};

/// The passes `qc check` runs before the analyses. `infer-datatypes` keeps the specs
/// `absorb-quant` read from ACCESS attributes (an `output_scale`/`output_bitdepth` is not
/// replaced by the accumulator type).
pub const PIPELINE: &str = "infer-shapes,absorb-quant,infer-datatypes,propagate-scales";

/// One problem found.
#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    pub rule: Rule,
    pub severity: Severity,
    /// The op it is about (`None` for graph inputs without a DLA reader and the whole model).
    pub op: Option<OpId>,
    /// The op's name (or `OpType#position`).
    pub node: Option<String>,
    pub op_type: Option<String>,
    /// The tensor it is about, when it is about one.
    pub tensor: Option<String>,
    /// What is wrong, in one sentence.
    pub message: String,
    /// What the model has.
    pub observed: String,
    /// What the target allows.
    pub allowed: String,
    /// How to fix it.
    pub hint: String,
    /// What the model has, typed (`observed` is its text), when the rule measures it.
    pub observed_value: Option<Quantity>,
    /// What the target allows, typed (`allowed` is its text).
    pub allowed_value: Option<Quantity>,
}

/// A value a finding observes or a limit allows, as data; the text a person reads
/// (`Finding::observed`, `Finding::allowed`) is [`Quantity::render`]ed from it, within the
/// rule's words (`rank 4`, `16 channels`).
#[derive(Clone, Debug, PartialEq)]
pub enum Quantity {
    /// One integer: a rank, a number of inputs.
    Int(i64),
    /// Per spatial axis (dims, strides, dilations); `None` where unknown.
    Dims(Vec<Option<i64>>),
    /// Integers by name: padding per side (`top`, `left`, ...), channels (`input`, `output`).
    Named(Vec<(&'static str, i64)>),
    /// The integers a target limit allows.
    Allowed(qc_ir::target::Allowed),
    /// A number that need not be an integer (a zero point).
    Float(f64),
    /// Several such numbers.
    Floats(Vec<f64>),
    /// One scale.
    Scale(f64),
    /// Several scales (a feature map's, one per slice).
    Scales(Vec<f64>),
    /// Scales by output channel: `(channel, scale)`.
    ChannelScales(Vec<(usize, f64)>),
    /// Scales by name: `input`, `output`.
    NamedScales(Vec<(&'static str, f64)>),
}

impl Quantity {
    /// The value as the reports show it (every format renders it with this): integers as
    /// written, per-axis values `3x3` (`?` where unknown), named values `top 1, left 0`, a limit
    /// as the target describes it, scales as [`show_scale`] writes them (several: their count
    /// and range; by channel: the first three, `channel 2: 0.1`).
    pub fn render(&self) -> String {
        let scales = |v: &[f64]| {
            let (lo, hi) = v.iter().fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(*x), b.max(*x)));
            format!("{} scales from {} to {}", v.len(), show_scale(lo), show_scale(hi))
        };
        match self {
            Quantity::Int(n) => n.to_string(),
            Quantity::Dims(d) => by(d),
            Quantity::Named(v) => v.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", "),
            Quantity::Allowed(a) => a.describe(),
            Quantity::Float(x) => x.to_string(),
            Quantity::Floats(v) => v.iter().map(f64::to_string).collect::<Vec<_>>().join(", "),
            Quantity::Scale(x) => show_scale(*x),
            Quantity::Scales(v) => scales(v),
            Quantity::ChannelScales(v) => {
                let shown: Vec<String> =
                    v.iter().take(3).map(|(c, s)| format!("channel {c}: {}", show_scale(*s))).collect();
                format!("{}{}", shown.join(", "), if v.len() > 3 { ", ..." } else { "" })
            }
            Quantity::NamedScales(v) => {
                v.iter().map(|(k, s)| format!("{k} {}", show_scale(*s))).collect::<Vec<_>>().join(", ")
            }
        }
    }
}

impl std::fmt::Display for Quantity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render())
    }
}

/// Where an op runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Dla,
    Cpu,
}

impl Unit {
    pub fn name(self) -> &'static str {
        match self {
            Unit::Dla => "dla",
            Unit::Cpu => "cpu",
        }
    }
}

/// Where one op runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Placement {
    pub op: OpId,
    pub node: String,
    pub op_type: String,
    pub unit: Unit,
    /// The target's operator entry it matched (`conv`, `max-pool`), if any.
    pub operator: Option<String>,
    /// For an op on the CPU: the rule that sent it there (the first limit it breaks, or
    /// `unsupported-op`) and that finding's message.
    pub because: Option<(Rule, String)>,
}

/// Why an op is not placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbsorbReason {
    /// A quantizer the target absorbs into the tensor it writes.
    Quantizer,
    /// Every input is a constant: the DLA compiler folds it.
    Constant,
}

impl AbsorbReason {
    pub fn name(self) -> &'static str {
        match self {
            AbsorbReason::Quantizer => "quantizer",
            AbsorbReason::Constant => "constant",
        }
    }
}

/// An op that is not placed.
#[derive(Clone, Debug, PartialEq)]
pub struct Absorbed {
    pub op: OpId,
    pub node: String,
    pub op_type: String,
    pub reason: AbsorbReason,
}

/// The result of checking a model.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckReport {
    pub target: String,
    /// Every finding, ordered by the op it is about (model-level findings first).
    pub findings: Vec<Finding>,
    /// Every placed op, in graph order.
    pub placement: Vec<Placement>,
    /// Every absorbed op, in graph order.
    pub absorbed: Vec<Absorbed>,
}

impl CheckReport {
    pub fn errors(&self) -> usize {
        self.findings.iter().filter(|f| f.severity == Severity::Error).count()
    }

    pub fn warnings(&self) -> usize {
        self.findings.iter().filter(|f| f.severity == Severity::Warning).count()
    }

    /// No finding is an error.
    pub fn ok(&self) -> bool {
        self.errors() == 0
    }

    pub fn count(&self, unit: Unit) -> usize {
        self.placement.iter().filter(|p| p.unit == unit).count()
    }
}

/// Checks `model` against `target`: operator and tensor limits, then scales.
pub fn check(model: &Model, target: &Target) -> CheckReport {
    let facts = Facts::new(model, target);
    let (mut findings, placement) = limits::check(&facts);
    findings.extend(scales::check(&facts));
    // Model-level findings first, then by op in graph order; stable otherwise.
    findings.sort_by_key(|f| f.op.map_or(0, |op| facts.position(op) + 1));
    let absorbed = facts
        .absorbed
        .iter()
        .map(|(op, reason)| Absorbed {
            op: *op,
            node: model.graph.op_label(*op),
            op_type: model.graph.op(*op).op_type().to_string(),
            reason: *reason,
        })
        .collect();
    CheckReport { target: target.name.clone(), findings, placement, absorbed }
}

/// What both analyses need to know about the model: constants, absorbed ops, the operator
/// entry each op matches, positions.
pub struct Facts<'a> {
    pub model: &'a Model,
    pub target: &'a Target,
    /// Indexed by value: an initializer (also one listed as a graph input), written by an op
    /// whose inputs are all constant, or the `Shape`/`Size` of a tensor of known dims.
    pub constant: Vec<bool>,
    /// Absorbed ops in graph order.
    pub absorbed: Vec<(OpId, AbsorbReason)>,
    absorbed_by_op: HashMap<OpId, AbsorbReason>,
    /// The operator entry of each DLA op.
    pub entry: HashMap<OpId, &'a OperatorRule>,
    /// Ops in graph order.
    pub order: Vec<OpId>,
    /// Each op's index in `order`.
    pub positions: HashMap<OpId, usize>,
}

impl<'a> Facts<'a> {
    pub fn new(model: &'a Model, target: &'a Target) -> Facts<'a> {
        let g = &model.graph;
        let mut constant = vec![false; g.value_count()];
        // Graph inputs with an initializer count as constants too: old exporters list every
        // weight among the inputs, and a deployed model does not override its weights.
        for (v, value) in g.values() {
            if value.init.is_some() {
                constant[v.index()] = true;
            }
        }
        let order: Vec<OpId> = g.ops().map(|(id, _)| id).collect();
        // Topological order where there is one, so constants propagate in one sweep.
        let topo = g.topo_order().unwrap_or_else(|_| order.clone());
        for &id in &topo {
            let op = g.op(id);
            if is_random(op) {
                continue;
            }
            // `Shape` and `Size` of a tensor whose dims are all known are constants too.
            let static_shape = matches!(op.op_type(), "Shape" | "Size")
                && op.domain().is_empty()
                && op
                    .inputs()
                    .first()
                    .copied()
                    .flatten()
                    .is_some_and(|x| dims::known(&model.graph, x).is_ok());
            if static_shape || op.inputs().iter().flatten().all(|v| constant[v.index()]) {
                for v in op.outputs().iter().flatten() {
                    constant[v.index()] = true;
                }
            }
        }
        let mut absorbed = Vec::new();
        let mut entry = HashMap::new();
        for &id in &order {
            let op = g.op(id);
            if target.is_absorbed(op) || clips_codes(model, target, op) {
                absorbed.push((id, AbsorbReason::Quantizer));
            } else if !is_random(op) && op.outputs().iter().flatten().all(|v| constant[v.index()]) {
                absorbed.push((id, AbsorbReason::Constant));
            } else if let Some(e) = matching_entry(model, target, op) {
                entry.insert(id, e);
            }
        }
        let positions = order.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        let absorbed_by_op = absorbed.iter().copied().collect();
        Facts { model, target, constant, absorbed, absorbed_by_op, entry, order, positions }
    }

    pub fn position(&self, op: OpId) -> usize {
        self.positions.get(&op).copied().unwrap_or(0)
    }

    pub fn is_constant(&self, v: ValueId) -> bool {
        self.constant[v.index()]
    }

    pub fn is_absorbed(&self, op: OpId) -> bool {
        self.absorbed_by_op.contains_key(&op)
    }

    pub fn op(&self, id: OpId) -> &'a Op {
        self.model.graph.op(id)
    }

    pub fn label(&self, id: OpId) -> String {
        self.model.graph.op_label(id)
    }

    pub fn name(&self, v: ValueId) -> String {
        self.model.graph.value(v).name.clone()
    }

    /// Input `slot` of `op`.
    pub fn input(&self, op: OpId, slot: usize) -> Option<ValueId> {
        self.op(op).inputs().get(slot).copied().flatten()
    }

    /// Output 0 of `op`.
    pub fn output(&self, op: OpId) -> Option<ValueId> {
        self.op(op).outputs().first().copied().flatten()
    }

    /// The dims of a value (`None` per unknown dim), when its rank is known.
    pub fn dims(&self, v: ValueId) -> Option<Vec<Option<u64>>> {
        dims::partial(&self.model.graph, v)
    }

    /// The feature map `v` stands for: `v` itself, or, when an absorbed quantizer writes `v`,
    /// the quantizer's input (followed through chains such as QuantizeLinear ->
    /// DequantizeLinear). On the DLA the two are one tensor, which the layer that writes it
    /// requantizes; reporting it once avoids a finding per quantizer.
    pub fn canonical(&self, v: ValueId) -> ValueId {
        let mut v = v;
        for _ in 0..self.model.graph.value_count() {
            let Some(p) = self.model.graph.value(v).producer() else { break };
            let x = self.input(p, 0);
            match x {
                Some(x)
                    if self.absorbed_by_op.get(&p) == Some(&AbsorbReason::Quantizer)
                        && !self.is_constant(x)
                        && self.output(p) == Some(v) =>
                {
                    v = x
                }
                _ => break,
            }
        }
        v
    }

    /// The feature maps of the DLA ops (canonical, see [`Facts::canonical`]), in the order the
    /// ops touch them: each with the op a finding about it names (its producer, or its first DLA
    /// reader when it is a graph input or an absorbed op writes it), whether it is a graph input,
    /// and whether it is fused away.
    pub fn feature_maps(&self) -> Vec<FeatureMap> {
        let g = &self.model.graph;
        let mut seen = vec![false; g.value_count()];
        let mut out = Vec::new();
        for &id in &self.order {
            if !self.entry.contains_key(&id) {
                continue;
            }
            let op = self.op(id);
            for v in op.inputs().iter().chain(op.outputs()).flatten().copied() {
                if self.is_constant(v) {
                    continue;
                }
                let c = self.canonical(v);
                if std::mem::replace(&mut seen[c.index()], true) {
                    continue;
                }
                let input = self.input_like(c);
                let at = match g.value(c).producer() {
                    Some(p) if !g.inputs.contains(&c) && !self.is_absorbed(p) => p,
                    _ => id,
                };
                out.push(FeatureMap { value: c, at, input, fused: self.fused_away(c) });
            }
        }
        out
    }

    /// The feature map that `v`'s producer passes on to `v` unchanged in kind: when a DLA op
    /// that is not absorbed writes `v` and reads a feature map in input 0 (canonical), that
    /// feature map. A finding `v` would share with it (the same channel count, the same
    /// quantization) is reported once, at that input.
    pub fn passed_on_from(&self, v: ValueId, fms: &HashSet<ValueId>) -> Option<ValueId> {
        let p = self.model.graph.value(v).producer()?;
        if !self.entry.contains_key(&p) {
            return None;
        }
        let x = self.canonical(self.input(p, 0)?);
        (x != v && fms.contains(&x)).then_some(x)
    }

    /// Whether `v` lives only inside a fused pair of DLA ops: a DLA op writes it, and every
    /// reader is a DLA op that runs fused with its producer (a pipelined activation, a folded
    /// batch normalization). Such a value is never a feature map in memory.
    pub fn fused_away(&self, v: ValueId) -> bool {
        let g = &self.model.graph;
        let readers = self.readers(v);
        !g.outputs.contains(&v)
            && g.value(v).producer().is_some_and(|p| self.entry.contains_key(&p))
            && !readers.is_empty()
            && readers.iter().all(|op| self.entry.get(op).is_some_and(|e| e.fused))
    }

    /// The ops that read `v`, directly or through absorbed quantizers (QDQ pairs): the readers
    /// of the feature map `v` stands for.
    pub fn readers(&self, v: ValueId) -> Vec<OpId> {
        let g = &self.model.graph;
        let mut out = Vec::new();
        let mut stack = vec![v];
        let mut seen = HashSet::new();
        while let Some(v) = stack.pop() {
            if !seen.insert(v) {
                continue;
            }
            for &(op, slot) in g.value(v).uses() {
                match self.absorbed_by_op.get(&op) {
                    Some(AbsorbReason::Quantizer) if slot == 0 => {
                        stack.extend(self.output(op).filter(|y| !g.outputs.contains(y)));
                    }
                    _ => out.push(op),
                }
            }
        }
        out
    }

    /// Whether the feature map `v` is the network's input: a graph input, or one moved by
    /// layout ops only (`Transpose`, `Reshape`, `Flatten`, `Squeeze`, `Unsqueeze`, `Identity`),
    /// as exporters of channels-last models write it. The graph-input limits apply to it.
    pub fn input_like(&self, v: ValueId) -> bool {
        let g = &self.model.graph;
        let mut v = self.canonical(v);
        for _ in 0..g.value_count() {
            if g.inputs.contains(&v) {
                return true;
            }
            let Some(p) = g.value(v).producer() else { return false };
            let op = self.op(p);
            let layout = op.domain().is_empty()
                && matches!(
                    op.op_type(),
                    "Transpose" | "Reshape" | "Flatten" | "Squeeze" | "Unsqueeze" | "Identity"
                );
            match self.input(p, 0) {
                Some(x) if layout && !self.is_constant(x) => v = self.canonical(x),
                _ => return false,
            }
        }
        false
    }

    /// A finding about op `op` (with its name and type filled in).
    pub fn finding(&self, rule: Rule, op: Option<OpId>, tensor: Option<ValueId>) -> Finding {
        Finding {
            rule,
            severity: self.target.severity(rule),
            op,
            node: op.map(|o| self.label(o)),
            op_type: op.map(|o| self.op(o).op_type().to_string()),
            tensor: tensor.map(|v| self.name(v)),
            message: String::new(),
            observed: String::new(),
            allowed: String::new(),
            hint: String::new(),
            observed_value: None,
            allowed_value: None,
        }
    }
}

/// A feature map of the DLA (see [`Facts::feature_maps`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeatureMap {
    pub value: ValueId,
    /// The op findings about it name.
    pub at: OpId,
    /// It is a graph input (the graph input rules apply).
    pub input: bool,
    /// It lives only between two fused DLA ops (see [`Facts::fused_away`]): never in memory, so
    /// tensor limits do not apply, but a scale declared for it still must have the format.
    pub fused: bool,
}

/// A `Clip` of integer codes between two absorbed quantizers (QuantizeLinear -> Clip ->
/// DequantizeLinear, as QCDQ narrows a bit width): part of the quantizer.
fn clips_codes(model: &Model, target: &Target, op: &Op) -> bool {
    let g = &model.graph;
    let absorbed = |id: OpId| target.is_absorbed(g.op(id));
    op.op_type() == "Clip"
        && op.domain().is_empty()
        && op.inputs().first().copied().flatten().and_then(|x| g.value(x).producer()).is_some_and(absorbed)
        && op.outputs().first().copied().flatten().is_some_and(|y| {
            !g.value(y).uses().is_empty() && g.value(y).uses().iter().all(|(r, _)| absorbed(*r))
        })
}

/// Ops whose output is not a function of their inputs.
fn is_random(op: &Op) -> bool {
    op.op_type().starts_with("Random") || op.op_type() == "Multinomial"
}

/// The first entry of `target` that covers `op` and whose condition holds.
pub fn matching_entry<'a>(model: &Model, target: &'a Target, op: &Op) -> Option<&'a OperatorRule> {
    target.entries_for(op).into_iter().find(|e| match e.when {
        None => true,
        Some(c) => conv_kind(model, op) == Some(c),
    })
}

/// Whether a convolution is standard or depth-wise (`None`: neither, a grouped convolution).
pub fn conv_kind(model: &Model, op: &Op) -> Option<qc_ir::target::Condition> {
    use qc_ir::target::Condition;
    let group = op.attr_int("group", 1).unwrap_or(1);
    if group == 1 {
        return Some(Condition::Standard);
    }
    let w = op.inputs().get(1).copied().flatten().and_then(|w| dims::partial(&model.graph, w));
    let per_group = w.as_ref().and_then(|d| d.get(1).copied().flatten());
    let x = op.inputs().first().copied().flatten().and_then(|x| dims::partial(&model.graph, x));
    let in_channels = x.as_ref().and_then(|d| d.get(1).copied().flatten());
    let depthwise = match (per_group, in_channels) {
        (Some(p), _) => p == 1,
        (None, Some(c)) => i64::try_from(c).is_ok_and(|c| c == group),
        (None, None) => false,
    };
    depthwise.then_some(Condition::Depthwise)
}

/// `9x9`, `?x3`: a list of dims joined by `x`.
pub fn by(dims: &[Option<i64>]) -> String {
    dims.iter().map(|d| d.map_or("?".to_string(), |x| x.to_string())).collect::<Vec<_>>().join("x")
}

/// A scale as people read it: `0.125 (2^-3)`, or `0.1`.
pub fn show_scale(x: f64) -> String {
    let plain =
        if x != 0.0 && (x.abs() < 1e-4 || x.abs() >= 1e6) { format!("{x:e}") } else { format!("{x}") };
    if x > 0.0 && x.is_finite() && x.log2().fract() == 0.0 {
        format!("{plain} (2^{})", x.log2() as i64)
    } else {
        plain
    }
}
