//! `qc::check::scale-mismatch`: two scales that must be equal differ. Either an op on the DLA
//! that may not change scale (anything but convolution, fully connected, matrix multiplication,
//! average pooling, ReduceSum, the saturating activations and element-wise add/div) has
//! different input and output scales; or an op declares a different `input_scale` (`A_scale`,
//! `B_scale`) for a feature map than its producer's `output_scale`, or than another reader's.
//!
//! Why: a feature map has one scale, and only the layers that requantize may change it (ACCESS
//! DLA guide line 141); the DLA compiler takes a feature map's scale from one declaration, so
//! two that differ mean one of them is wrong.
//!
//! Example: `Conv(x, w) {output_scale = 0.125}` writes `y`, and `Add(y, z) {A_scale = 0.25}`
//! reads it: set `A_scale` of the Add to 0.125. `MaxPool(x: scale 2^-3) -> y: scale 2^-2`: give
//! `y` the scale of `x`.

use qc_ir::target::Rule;
use qc_ir::{OpId, QuantParam, ValueId};

use super::super::scales::{Claim, claims, close, same, scale_of};
use super::super::{Facts, Finding, Quantity, show_scale};

/// Op `id`, which may not change scale: its output's scale equals each data input's.
pub(crate) fn keeps(f: &Facts<'_>, id: OpId, out: &mut Vec<Finding>) {
    let g = &f.model.graph;
    let op = f.op(id);
    let Some(y) = f.output(id) else { return };
    let Some(sy) = scale_of(f.model, y) else { return };
    for x in op.inputs().iter().flatten().copied().filter(|x| !f.is_constant(*x)) {
        let Some(sx) = scale_of(f.model, x) else { continue };
        if same(&sx, &sy, f.target.scales.tolerance) {
            continue;
        }
        let mut fi = f.finding(Rule::ScaleMismatch, Some(id), Some(y));
        fi.message = format!(
            "{} may not change scale, but its input `{}` and its output `{}` have different scales",
            op.op_type(),
            g.value(x).name,
            g.value(y).name
        );
        fi.observed_value = match (one(&sx), one(&sy)) {
            (Some(a), Some(b)) => Some(Quantity::NamedScales(vec![("input", a), ("output", b)])),
            _ => None,
        };
        fi.observed = match &fi.observed_value {
            Some(q) => q.render(),
            None => format!("input {}, output {}", show_param(&sx), show_param(&sy)),
        };
        fi.allowed = format!("equal scales ({} keeps its input's scale)", op.op_type());
        fi.hint = format!("give `{}` the scale of `{}`", g.value(y).name, g.value(x).name);
        out.push(fi);
    }
}

/// The one scale of `p`, when all its scales are equal.
fn one(p: &QuantParam) -> Option<f64> {
    let v = p.values();
    v.windows(2).all(|p| p[0] == p[1]).then(|| v.first().copied()).flatten()
}

fn show_param(p: &QuantParam) -> String {
    match p.values() {
        [x] => show_scale(*x),
        v if v.windows(2).all(|p| p[0] == p[1]) => show_scale(v[0]),
        v => format!("{} per-channel scales", v.len()),
    }
}

/// Every op that declares the scale of a feature map it reads agrees with the producer's
/// declaration (or, without one, with the first declaration).
pub(crate) fn coherence(f: &Facts<'_>, out: &mut Vec<Finding>) {
    let g = &f.model.graph;
    for v in (0..g.value_count()).map(ValueId::from_index) {
        let claims = claims(f.model, v, &f.positions);
        let Some(reference) = claims.first() else { continue };
        let name = &g.value(v).name;
        let by_whom = |c: &Claim| format!("`{}` {} {}", f.label(c.op), c.attr, Quantity::Scale(c.scale));
        for c in &claims[1..] {
            if close(c.scale, reference.scale, f.target.scales.tolerance) {
                continue;
            }
            let mut x = f.finding(Rule::ScaleMismatch, Some(c.op), Some(v));
            x.message = if reference.producer {
                format!(
                    "`{}` reads `{name}` with another scale than its producer writes it with",
                    f.label(c.op)
                )
            } else {
                format!(
                    "`{}` and `{}` read `{name}` with different scales",
                    f.label(reference.op),
                    f.label(c.op)
                )
            };
            let allowed = Quantity::Scale(reference.scale);
            x.observed = by_whom(c);
            x.allowed = format!("{allowed} ({})", by_whom(reference));
            x.observed_value = Some(Quantity::Scale(c.scale));
            x.allowed_value = Some(allowed);
            x.hint = format!(
                "a feature map has one scale: set {} of `{}` to {}",
                c.attr,
                f.label(c.op),
                reference.scale
            );
            out.push(x);
        }
    }
}
