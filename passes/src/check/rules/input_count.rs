//! `qc::check::input-count`: more (or fewer) inputs than the op takes.
//!
//! Why: the DLA's element-wise add and division have two sources (ACCESS DLA guide line 107),
//! so a `Sum` of three inputs does not fit.
//!
//! Example: `Sum(a, b, c)`: chain ops of two inputs, `Add(Add(a, b), c)`.

use qc_ir::target::Rule;

use super::super::Quantity;
use super::{OpCx, Out, typed};

pub(super) fn check(cx: &OpCx<'_, '_>, out: &mut Out<'_>) {
    let Some(n) = &cx.limits.inputs else { return };
    let given = cx.op.inputs().iter().flatten().count() as i64;
    if !n.contains(given) {
        let observed = Quantity::Int(given);
        let x = cx.push(
            out,
            Rule::InputCount,
            format!("{given} inputs; {} takes {}", cx.what, n.describe()),
            format!("{observed} inputs"),
            format!("{} inputs", n.describe()),
            "chain ops of two inputs: Sum(a, b, c) is Add(Add(a, b), c)".into(),
        );
        typed(x, observed, n);
    }
}
