//! Operator and tensor limits, and where each op runs.
//!
//! Every op that is not absorbed either matches an operator entry of the target (a DLA op) or
//! falls back to the CPU (`unsupported-op`). A DLA op is checked against its entry's limits:
//! rank, kernel size (and squareness), input feature-map size, input and output channels,
//! strides, paddings (range and allowed sides, `auto_pad` and pooling's `ceil_mode` included),
//! dilations, number of inputs, and the op that must come before it. A DLA op with an
//! error-severity finding cannot run on the DLA as it is, and is placed on the CPU, as Vela does.
//! Then the tensor limits: the channels and spatial size of the 4-D graph inputs and feature maps
//! that DLA ops read or write. A limit that needs an unknown dim is reported once per op as
//! `unchecked`.

use qc_ir::target::{Allowed, OperatorRule, Rule, Severity, TensorLimits};
use qc_ir::window::{Resolved, Window as OnnxWindow};
use qc_ir::{OpId, OpKind, ValueId};

use super::{Facts, Finding, Placement, Quantity, Unit, by, rules};

/// The op-level findings and the placement of every placed op.
pub fn check(f: &Facts<'_>) -> (Vec<Finding>, Vec<Placement>) {
    let mut findings = Vec::new();
    let mut placement = Vec::new();
    for &id in &f.order {
        if f.is_absorbed(id) {
            continue;
        }
        let op = f.op(id);
        let (unit, operator, because) = match f.entry.get(&id) {
            Some(entry) => {
                let before = findings.len();
                check_op(f, id, entry, &mut findings);
                let blocked = findings[before..].iter().find(|x: &&Finding| x.severity == Severity::Error);
                match blocked {
                    Some(x) => (Unit::Cpu, Some(entry.name.clone()), Some((x.rule, x.message.clone()))),
                    None => (Unit::Dla, Some(entry.name.clone()), None),
                }
            }
            None => {
                let x = unsupported(f, id);
                let because = Some((x.rule, x.message.clone()));
                findings.push(x);
                (Unit::Cpu, None, because)
            }
        };
        placement.push(Placement {
            op: id,
            node: f.label(id),
            op_type: op.op_type().to_string(),
            unit,
            operator,
            because,
        });
    }
    findings.extend(tensor_limits(f));
    (findings, placement)
}

/// `unsupported-op` for an op no entry covers.
fn unsupported(f: &Facts<'_>, id: OpId) -> Finding {
    let op = f.op(id);
    let mut x = f.finding(Rule::UnsupportedOp, Some(id), None);
    let ty = op.op_type();
    let shown = if op.domain().is_empty() { ty.to_string() } else { format!("{}::{ty}", op.domain()) };
    x.allowed = format!("the operators `qc targets show {}` lists", f.target.name);
    if !f.target.entries_for(op).is_empty() && matches!(op.kind(), OpKind::Conv) {
        // Covered by name, but neither standard nor depth-wise: a grouped convolution.
        let group = op.attr_int("group", 1).unwrap_or(1);
        let channels = f.input(id, 0).and_then(|v| f.dims(v)).and_then(|d| d.get(1).copied().flatten());
        let channels = channels.map_or("?".to_string(), |c| c.to_string());
        x.message = format!(
            "a convolution with group {group} over {channels} input channels is neither standard nor depth-wise; it runs on the CPU"
        );
        x.observed = format!("group {group}, {channels} input channels");
        x.allowed = "group 1 (standard) or one input channel per group (depth-wise)".into();
        x.hint =
            format!("split it into {group} standard convolutions joined by a Concat, or make it depth-wise");
        return x;
    }
    x.message = format!("`{shown}` is not an operator of {}; it runs on the CPU", f.target.name);
    x.observed = shown;
    // What produced input 0 (and what produced that op's input 0), for hints that depend on it.
    let producer_of = |op: OpId| f.input(op, 0).and_then(|v| f.model.graph.value(v).producer());
    let producer = producer_of(id).map(|p| f.op(p).kind());
    let integer_result = |op: OpId| {
        producer_of(op).map(|p| f.op(p).kind()) == Some(OpKind::Cast)
            && producer_of(op)
                .and_then(producer_of)
                .is_some_and(|p| matches!(f.op(p).kind(), OpKind::ConvInteger | OpKind::MatMulInteger))
    };
    let dynamic = "dynamic quantization (onnxruntime's quantize_dynamic): its scales are computed at run time, \
                   which a fixed-point DLA cannot do; quantize statically (QDQ, constant scales) so that the layer \
                   is a quantized Conv or MatMul";
    x.hint = match ty {
        _ if op.domain() == crate::shape::channels_last::DOMAIN => {
            "a qonnx channels-last wrapper: convert the model back to channels-first (NCHW) so that it is the standard op".into()
        }
        "Identity" | "Dropout" => "it computes nothing at inference: remove it before export".into(),
        "Softmax" | "LogSoftmax" => "a final softmax usually stays on the CPU; nothing to do if it is the last op".into(),
        "Pad" => "fold it into the next convolution's pads (zeros, at most 3 per side)".into(),
        _ if op.domain() == qc_ir::op::MICROSOFT_DOMAIN
            && matches!(ty, "FusedConv" | "FusedGemm" | "FusedMatMul") =>
        {
            "onnxruntime's offline optimizer fused it with its activation: save the model without its \
             extended optimizations (ORT_ENABLE_BASIC) so that it is the standard op and activation"
                .into()
        }
        _ if op.domain() == qc_ir::op::MICROSOFT_DOMAIN => {
            "an onnxruntime contrib op: save the model without onnxruntime's offline optimizations so that \
             it is made of standard ops"
                .into()
        }
        "DynamicQuantizeLinear" | "ConvInteger" | "MatMulInteger" => dynamic.to_string(),
        "Mul" if producer == Some(OpKind::DynamicQuantizeLinear) => {
            format!("it multiplies a run-time scale of DynamicQuantizeLinear by the weight's scale: {dynamic}")
        }
        "Mul" if integer_result(id) => {
            format!("it scales an integer layer's result by the run-time scales of its operands: {dynamic}")
        }
        "Cast" if matches!(producer, Some(OpKind::ConvInteger | OpKind::MatMulInteger)) => {
            format!("it turns an integer layer's int32 result to float before the Mul by the scales: {dynamic}")
        }
        "Shape" | "Gather" | "ConstantOfShape" | "Cast" | "Range" => {
            "shape arithmetic: fold it into constants (`qc optimize` folds constants)".into()
        }
        "Clip" => "a Clip from 0 is a ReLU with saturation: use Relu and let the 8-bit output saturate".into(),
        "Mul" | "Sub" => "a multiplication or subtraction by constants is an affine map: fold it into the neighbouring convolution or batch normalization".into(),
        _ => "the CPU runs it between DLA segments, with a transfer each way; replace it with a DLA operator where the model allows".into(),
    };
    x
}

/// A window op's geometry: kernel, strides, dilations, padding per spatial dim.
pub(super) struct Window {
    pub kernel: Option<Vec<Option<i64>>>,
    pub strides: Vec<i64>,
    pub dilations: Vec<i64>,
    /// `(begin, end)` per spatial dim; `None` when `auto_pad` needs unknown sizes.
    pub pads: Option<(Vec<i64>, Vec<i64>)>,
    /// Extra end padding that `ceil_mode` adds, per spatial dim.
    pub ceil_extra: Vec<i64>,
    pub global: bool,
}

fn window(f: &Facts<'_>, id: OpId) -> Option<Window> {
    let op = f.op(id);
    let x = f.input(id, 0).and_then(|v| f.dims(v));
    let spatial_in: Option<Vec<Option<i64>>> =
        x.as_ref().filter(|d| d.len() > 2).map(|d| d[2..].iter().map(|s| s.map(|s| s as i64)).collect());
    let (kernel, strides, dilations, pads, auto_pad, ceil_mode, global) = match op.kind() {
        OpKind::Conv | OpKind::ConvInteger | OpKind::QLinearConv => {
            let a = op.conv().ok()?;
            let w_slot = if op.kind() == OpKind::QLinearConv { 3 } else { 1 };
            let kernel = a.kernel_shape.map(|k| k.into_iter().map(Some).collect()).or_else(|| {
                let w = f.input(id, w_slot).and_then(|w| f.dims(w))?;
                (w.len() > 2).then(|| w[2..].iter().map(|d| d.map(|d| d as i64)).collect())
            });
            (kernel, a.strides, a.dilations, a.pads, a.auto_pad, false, false)
        }
        OpKind::MaxPool | OpKind::AveragePool => {
            let a = op.pool().ok()?;
            let kernel = Some(a.kernel_shape.into_iter().map(Some).collect());
            (kernel, a.strides, a.dilations, a.pads, a.auto_pad, a.ceil_mode, false)
        }
        OpKind::GlobalAveragePool | OpKind::GlobalMaxPool => {
            (spatial_in.clone(), None, None, None, "NOTSET".to_string(), false, true)
        }
        _ => return None,
    };
    let n = kernel.as_ref().map(Vec::len).or_else(|| spatial_in.as_ref().map(Vec::len)).unwrap_or(2);
    let strides = strides.filter(|s| s.len() == n).unwrap_or_else(|| vec![1; n]);
    let dilations = dilations.filter(|d| d.len() == n).unwrap_or_else(|| vec![1; n]);
    let known_kernel: Option<Vec<i64>> = kernel.as_ref().and_then(|k| k.iter().copied().collect());
    let known_in: Option<Vec<i64>> = spatial_in.as_ref().and_then(|s| s.iter().copied().collect());
    let explicit = pads.filter(|p| p.len() == 2 * n);
    // The resolver, when the kernel is known and the attributes are valid; the limits below
    // still see the attributes as written.
    let resolver = known_kernel.as_ref().filter(|k| k.len() == n).and_then(|k| {
        OnnxWindow::new(&auto_pad, k, Some(&strides), Some(&dilations), explicit.as_deref(), ceil_mode).ok()
    });
    let resolve = |d: usize| -> Option<Resolved> {
        let x = u64::try_from(*known_in.as_ref()?.get(d)?).ok()?;
        resolver.as_ref()?.resolve_axis(d, x).ok()
    };
    let wide = |x: u64| i64::try_from(x).unwrap_or(i64::MAX);
    let pads = match auto_pad.as_str() {
        "SAME_UPPER" | "SAME_LOWER" => (0..n)
            .map(|d| resolve(d).map(|r| (wide(r.pad_begin), wide(r.pad_end))))
            .collect::<Option<Vec<_>>>()
            .map(|p| p.into_iter().unzip()),
        "VALID" => Some((vec![0; n], vec![0; n])),
        _ => Some(match explicit {
            Some(p) => (p[..n].to_vec(), p[n..].to_vec()),
            None => (vec![0; n], vec![0; n]),
        }),
    };
    // ceil_mode's last window may reach past the end padding.
    let ceil_extra =
        (0..n).map(|d| if ceil_mode { resolve(d).map_or(0, |r| wide(r.overhang)) } else { 0 }).collect();
    Some(Window { kernel, strides, dilations, pads, ceil_extra, global })
}

/// Checks one DLA op against its entry's limits: each rule of [`rules::OP_RULES`] in turn,
/// then one `unchecked` finding naming the limits that needed an unknown dim.
fn check_op(f: &Facts<'_>, id: OpId, entry: &OperatorRule, findings: &mut Vec<Finding>) {
    let x = f.input(id, 0);
    let cx = rules::OpCx {
        f,
        id,
        op: f.op(id),
        limits: &entry.limits,
        what: entry.title.to_lowercase(),
        x,
        xd: x.and_then(|v| f.dims(v)),
        win: window(f, id),
    };
    let mut out = rules::Out { findings, unchecked: Vec::new() };
    for (_, rule) in rules::OP_RULES {
        rule(&cx, &mut out);
    }
    if !out.unchecked.is_empty() {
        let mut x = f.finding(Rule::Unchecked, Some(id), None);
        x.message = format!("{} could not be checked: a shape is unknown", out.unchecked.join(", "));
        x.observed = match x_shape(f, x_value(f, id)) {
            Some(s) => format!("input shape {s}"),
            None => "input shape unknown".into(),
        };
        x.allowed = "known shapes".into();
        x.hint = unknown_shape_hint(f);
        out.findings.push(x);
    }
}

/// The hint for a shape qc check needs but does not know: the inputs' dims when they are not
/// fixed, else the shape rules (the inputs are fixed, so an op on the way has no rule).
fn unknown_shape_hint(f: &Facts<'_>) -> String {
    let g = &f.model.graph;
    let open: Vec<String> = g
        .inputs
        .iter()
        .filter(|v| !g.initializers.contains(v))
        .filter(|&&v| match g.value(v).ty.as_ref().and_then(|t| t.ty.as_ref()) {
            Some(qc_ir::ValueType::Tensor { shape: Some(s), .. }) => {
                s.dims.iter().any(|d| !matches!(d, qc_ir::Dim::Known(_)))
            }
            _ => true,
        })
        .map(|&v| g.value(v).name.clone())
        .collect();
    if open.is_empty() {
        "the inputs' dims are fixed, but shape inference could not follow an op before this one (see the qc::shape warnings)".into()
    } else {
        format!(
            "give the inputs fixed dims with --overwrite-input-shape NAME:DIMS (not fixed: {}); qc check infers the rest",
            open.join(", ")
        )
    }
}

fn x_value(f: &Facts<'_>, id: OpId) -> Option<ValueId> {
    f.input(id, 0)
}

fn x_shape(f: &Facts<'_>, v: Option<ValueId>) -> Option<String> {
    let d = f.dims(v?)?;
    Some(format!(
        "[{}]",
        d.iter().map(|x| x.map_or("?".to_string(), |x| x.to_string())).collect::<Vec<_>>().join(",")
    ))
}

/// Channel and size limits of the 4-D graph inputs and feature maps the DLA reads or writes.
fn tensor_limits(f: &Facts<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let fms: Vec<_> = f.feature_maps().into_iter().filter(|fm| !fm.fused).collect();
    let set = fms.iter().map(|fm| fm.value).collect();
    for fm in &fms {
        let (limits, kind) = if fm.input {
            (&f.target.tensors.input, "graph input")
        } else {
            (&f.target.tensors.feature_map, "feature map")
        };
        // The same channel count as the feature map the producer reads: reported there.
        let from = f.passed_on_from(fm.value, &set).filter(|x| !f.input_like(*x));
        let inherited = from.is_some_and(|x| {
            let c = |v| f.dims(v).filter(|d| d.len() == 4).and_then(|d| d[1]);
            c(x).is_some() && c(x) == c(fm.value)
        });
        tensor(f, fm.value, Some(fm.at), limits, kind, !inherited, &mut out);
    }
    out
}

fn tensor(
    f: &Facts<'_>,
    v: ValueId,
    at: Option<OpId>,
    l: &TensorLimits,
    kind: &str,
    check_channels: bool,
    out: &mut Vec<Finding>,
) {
    if l.channels.is_none() && l.size.is_none() {
        return;
    }
    let Some(d) = f.dims(v) else {
        let mut x = f.finding(Rule::Unchecked, at, Some(v));
        x.message = format!(
            "the channels and size of {kind} `{}` could not be checked: its shape is unknown",
            f.name(v)
        );
        x.observed = "shape unknown".into();
        x.allowed = "a known shape".into();
        x.hint = unknown_shape_hint(f);
        out.push(x);
        return;
    };
    if d.len() != 4 {
        return;
    }
    let name = f.name(v);
    let limit = |a: &Option<Allowed>, n: Option<u64>| -> Option<(i64, String)> {
        let a = a.as_ref()?;
        let n = i64::try_from(n?).ok()?;
        (!a.contains(n)).then(|| (n, a.describe()))
    };
    if let Some((n, allowed)) = limit(&l.channels, d[1]).filter(|_| check_channels) {
        let mut x = f.finding(Rule::Channels, at, Some(v));
        let noun = if n == 1 { "channel" } else { "channels" };
        x.message = format!("{kind} `{name}` has {n} {noun}");
        x.observed = format!("{n} {noun}");
        x.allowed = format!("{allowed} channels");
        x.observed_value = Some(Quantity::Int(n));
        x.allowed_value = l.channels.clone().map(Quantity::Allowed);
        x.hint = match &l.channels {
            Some(a) if a.multiple_of.is_some_and(|m| n % m != 0) && a.max.is_none_or(|m| n < m) => format!(
                "give the layer that writes it {} output channels (pad with zero filters), or change the architecture",
                round_up(n, a)
            ),
            _ if kind == "graph input" => "change the number of input channels, or split the input".into(),
            _ => "change the layer's channel count to fit".into(),
        };
        out.push(x);
    }
    let sizes: Vec<Option<i64>> = d[2..].iter().map(|s| s.map(|s| s as i64)).collect();
    if let Some(size) = &l.size
        && sizes.iter().flatten().any(|s| !size.contains(*s))
    {
        let mut x = f.finding(Rule::FeatureMapSize, at, Some(v));
        x.message = format!("{kind} `{name}` is {} (H x W)", by(&sizes));
        x.observed = by(&sizes);
        x.allowed = size.describe_square();
        x.observed_value = Some(Quantity::Dims(sizes.clone()));
        x.allowed_value = Some(Quantity::Allowed(size.clone()));
        x.hint = if kind == "graph input" {
            format!("resize the input to at most {}", size.describe_square())
        } else {
            "downsample earlier (a stride-2 layer or a pooling) so that feature maps fit".into()
        };
        out.push(x);
    }
}

/// The smallest allowed value at least `n` (for "pad to a multiple of 16").
fn round_up(n: i64, a: &Allowed) -> i64 {
    let m = a.multiple_of.unwrap_or(1).max(1);
    let up = n.saturating_add(m - 1) / m * m;
    up.max(a.min.unwrap_or(up))
}
