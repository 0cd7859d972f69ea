//! `qc::check::unchecked`: a limit could not be checked because a shape it needs is unknown (a
//! symbolic height, say). Reported once per op, naming the limits it could not check, and once
//! per graph input or feature map whose shape is unknown.
//!
//! Why: the DLA's limits are on sizes (kernel 1x1 to 7x7, feature maps up to 256x256, 16 to
//! 2048 channels: ACCESS DLA guide lines 68-69, 76-88), and a model whose shapes are not fixed
//! may break any of them. Saying so is better than passing the op silently; give the model
//! fixed input shapes and `qc check` infers the rest.
//!
//! Example: `Conv(x: f32[1,16,H,W], w: f32[32,16,3,3])` with a symbolic `H` and `W`: the
//! feature-map size and the `SAME` padding cannot be checked. Run
//! `qc check model.onnx --target access-dla --overwrite-input-shape x:1,16,224,224`.

use qc_ir::target::Rule;
use qc_ir::{OpId, ValueId};

use super::super::{Facts, Finding, Quantity};

/// The finding for op `id` whose limits `unchecked` (in order) needed an unknown dim.
pub(crate) fn op(f: &Facts<'_>, id: OpId, unchecked: &[&str]) -> Finding {
    let mut x = f.finding(Rule::Unchecked, Some(id), None);
    x.message = format!("{} could not be checked: a shape is unknown", unchecked.join(", "));
    let dims = f.input(id, 0).and_then(|v| f.dims(v));
    x.observed = match &dims {
        Some(d) => format!(
            "input shape [{}]",
            d.iter().map(|x| x.map_or("?".to_string(), |x| x.to_string())).collect::<Vec<_>>().join(",")
        ),
        None => "input shape unknown".into(),
    };
    x.observed_value =
        dims.map(|d| Quantity::Dims(d.iter().map(|x| x.and_then(|x| i64::try_from(x).ok())).collect()));
    x.allowed = "known shapes".into();
    x.hint = unknown_shape_hint(f);
    x
}

/// The finding for a graph input or feature map `v` (`kind`) whose shape is unknown.
pub(crate) fn tensor(f: &Facts<'_>, v: ValueId, at: Option<OpId>, kind: &str) -> Finding {
    let mut x = f.finding(Rule::Unchecked, at, Some(v));
    x.message =
        format!("the channels and size of {kind} `{}` could not be checked: its shape is unknown", f.name(v));
    x.observed = "shape unknown".into();
    x.allowed = "a known shape".into();
    x.hint = unknown_shape_hint(f);
    x
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
