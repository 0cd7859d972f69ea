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

use super::{Facts, Finding, Placement, Quantity, Unit, rules};

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
                let x = rules::unsupported_op::check(f, id);
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
        let x = rules::unchecked::op(f, id, &out.unchecked);
        out.findings.push(x);
    }
}

/// Channel and size limits of the 4-D graph inputs and feature maps the DLA reads or writes.
fn tensor_limits(f: &Facts<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let fms: Vec<_> = f.feature_maps().into_iter().filter(|fm| !fm.fused).collect();
    let set = fms.iter().map(|fm| fm.value).collect();
    for fm in &fms {
        if f.dims(fm.value).is_some_and(|d| d.len() == 4) && matrix_like(f, fm.value) {
            // [batch, heads, tokens, features]: not channels and an image.
            continue;
        }
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

/// Whether a feature map holds matrices rather than an image (a transformer's
/// `[batch, heads, tokens, features]` attention tensors): through data movement (`Transpose`,
/// `Reshape`, `Squeeze`, `Slice`, `Concat`, ...), element-wise ops and absorbed quantizers, it
/// reaches a matrix op (`MatMul`, `Gemm`, `Softmax`, a normalization over the last axis) and no
/// op over images (convolutions, pools, batch normalization, resizes).
/// The image limits of `tensors.feature_map` (channels in dim 1, H x W in dims 2 and 3) do not
/// apply to it.
fn matrix_like(f: &Facts<'_>, v: ValueId) -> bool {
    let g = &f.model.graph;
    // Ops that keep the kind of tensor they move or combine element by element.
    let through = |op: &qc_ir::Op| {
        f.target.is_absorbed(op)
            || (op.domain().is_empty()
                && matches!(
                    op.op_type(),
                    "Transpose"
                        | "Reshape"
                        | "Flatten"
                        | "Squeeze"
                        | "Unsqueeze"
                        | "Identity"
                        | "Slice"
                        | "Split"
                        | "Concat"
                        | "Add"
                        | "Sub"
                        | "Mul"
                        | "Div"
                        | "Where"
                        | "Relu"
                        | "Sigmoid"
                        | "Tanh"
                        | "Clip"
                        | "Cast"
                ))
    };
    let matrix_op = |op: &qc_ir::Op| {
        matches!(
            op.kind(),
            OpKind::MatMul
                | OpKind::Gemm
                | OpKind::MatMulInteger
                | OpKind::QLinearMatMul
                | OpKind::Softmax
                | OpKind::LogSoftmax
                | OpKind::LayerNormalization
        )
    };
    let image_op = |op: &qc_ir::Op| {
        matches!(
            op.kind(),
            OpKind::Conv
                | OpKind::ConvTranspose
                | OpKind::ConvInteger
                | OpKind::QLinearConv
                | OpKind::MaxPool
                | OpKind::AveragePool
                | OpKind::GlobalAveragePool
                | OpKind::GlobalMaxPool
                | OpKind::LpPool
                | OpKind::BatchNormalization
                | OpKind::InstanceNormalization
                | OpKind::Resize
                | OpKind::Upsample
                | OpKind::DepthToSpace
                | OpKind::SpaceToDepth
        )
    };
    let mut matrix = false;
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![v];
    while let Some(v) = stack.pop() {
        if !seen.insert(v) {
            continue;
        }
        let producer = g.value(v).producer().into_iter();
        let readers = g.value(v).uses().iter().map(|(r, _)| *r);
        for id in producer.chain(readers) {
            let op = g.op(id);
            if image_op(op) {
                return false;
            }
            matrix |= matrix_op(op);
            if through(op) {
                let ins = op.inputs().iter().flatten().filter(|x| !f.is_constant(**x));
                stack.extend(ins.chain(op.outputs().iter().flatten()).copied());
            }
        }
    }
    matrix
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
        out.push(rules::unchecked::tensor(f, v, at, kind));
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
        let observed = Quantity::Int(n);
        x.message = format!("{kind} `{name}` has {observed} {noun}");
        x.observed = format!("{observed} {noun}");
        x.allowed = format!("{allowed} channels");
        x.observed_value = Some(observed);
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
        let observed = Quantity::Dims(sizes);
        x.message = format!("{kind} `{name}` is {observed} (H x W)");
        x.observed = observed.render();
        x.allowed = size.describe_square();
        x.observed_value = Some(observed);
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
