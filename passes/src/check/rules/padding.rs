//! `qc::check::padding`: padding too large, or on a side the op may not pad.
//!
//! Why: the DLA pads at most 3 on a side (ACCESS DLA guide lines 80, 87, 101), and its max
//! pooling pads only the bottom and right, its average pooling only the top and left (lines
//! 102-103). `auto_pad = SAME_*` is resolved from the shapes (`qc_ir::window`), and a pool's
//! `ceil_mode` window that reaches past the end counts as extra end padding.
//!
//! Example: `Conv(x: f32[1,16,32,32], w) {kernel_shape = [9, 9], pads = [4, 4, 4, 4]}` pads 4
//! on each side; `MaxPool(x) {kernel_shape = [2, 2], pads = [1, 1, 0, 0]}` pads the top and
//! left.

use qc_ir::target::{Rule, Side};

use super::super::Quantity;
use super::{OpCx, Out};

pub(super) fn check(cx: &OpCx<'_, '_>, out: &mut Out<'_>) {
    let (Some(w), l) = (&cx.win, cx.limits) else { return };
    if l.padding.is_none() && l.pad_sides.is_none() {
        return;
    }
    match &w.pads {
        Some((b, e)) => {
            let e: Vec<i64> = e.iter().zip(&w.ceil_extra).map(|(p, c)| p.saturating_add(*c)).collect();
            check_padding(cx, out, b, &e, &w.ceil_extra);
        }
        None => out.unchecked.push("padding"),
    }
}

/// The padding of a 2-D (or n-D) window: `begin` and `end` per axis, `end` with what
/// `ceil_mode` adds.
fn check_padding(cx: &OpCx<'_, '_>, out: &mut Out<'_>, begin: &[i64], end: &[i64], ceil_extra: &[i64]) {
    let (l, what) = (cx.limits, &cx.what);
    let sides: Vec<(Side, i64)> = if begin.len() == 2 {
        vec![(Side::Top, begin[0]), (Side::Left, begin[1]), (Side::Bottom, end[0]), (Side::Right, end[1])]
    } else {
        Vec::new()
    };
    let observed = if sides.is_empty() {
        Quantity::Dims(begin.iter().chain(end).map(|p| Some(*p)).collect())
    } else {
        Quantity::Named(sides.iter().map(|(s, p)| (s.name(), *p)).collect())
    };
    // Begin and end of an n-D window are two lists, not one of 2n dims.
    let shown = if sides.is_empty() { format!("begin {begin:?}, end {end:?}") } else { observed.render() };
    let too_big = l.padding.as_ref().is_some_and(|r| begin.iter().chain(end).any(|p| !r.contains(*p)));
    let wrong_side =
        l.pad_sides.as_ref().is_some_and(|ok| sides.iter().any(|(s, p)| *p != 0 && !ok.contains(s)));
    if !too_big && !wrong_side {
        return;
    }
    let mut allowed =
        l.padding.as_ref().map_or("any".to_string(), |r| format!("{} on each side", r.describe()));
    if let Some(ok) = &l.pad_sides {
        let names: Vec<&str> = ok.iter().map(|s| s.name()).collect();
        allowed.push_str(&format!(", {} only", names.join(" and ")));
    }
    let ceil = if ceil_extra.iter().any(|c| *c > 0) { " (ceil_mode pads the end further)" } else { "" };
    let hint = if wrong_side {
        let ok = l.pad_sides.as_deref().unwrap_or(&[]);
        let names: Vec<&str> = ok.iter().map(|s| s.name()).collect();
        let slot = |s: Side, name: &str| if ok.contains(&s) { name.to_string() } else { "0".into() };
        format!(
            "pad only the {} side(s): pads = [{}, {}, {}, {}]",
            names.join(" and "),
            slot(Side::Top, "top"),
            slot(Side::Left, "left"),
            slot(Side::Bottom, "bottom"),
            slot(Side::Right, "right")
        )
    } else {
        let max = l.padding.as_ref().and_then(|r| r.max).unwrap_or(0);
        format!(
            "pad at most {max} per side; a wider 'same' padding means a kernel larger than the limits allow"
        )
    };
    let x = cx.push(
        out,
        Rule::Padding,
        format!("padding {shown}{ceil} is not supported by {what}"),
        shown,
        allowed,
        hint,
    );
    x.observed_value = Some(observed);
    x.allowed_value = l.padding.clone().map(Quantity::Allowed);
}
