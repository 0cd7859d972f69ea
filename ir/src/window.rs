//! Sliding windows: how `Conv`, `ConvInteger`, `QLinearConv`, `ConvTranspose` and the pools
//! place their kernel over the input, as ONNX defines it.
//!
//! One resolver for shape inference, the evaluator, lowering, `qc check` and the passes:
//! [`Window`] holds the attributes (`auto_pad`, `kernel_shape`, `strides`, `dilations`, `pads`,
//! `ceil_mode`) parsed and checked once, with the ONNX defaults; [`Window::resolve_axis`] gives
//! one spatial axis's pads and output size for a known input size, and
//! [`Window::resolve_transposed`] the same for `ConvTranspose` (with `output_padding` and
//! `output_shape`). All arithmetic is checked: a window that fits nowhere, or values whose
//! products overflow, are a [`WindowError`], never a wrapped number.
//!
//! The rules, per axis, with `eff = dilation * (kernel - 1) + 1`:
//! - `NOTSET`: `out = floor((in + pad_begin + pad_end - eff) / stride) + 1`; with `ceil_mode`
//!   the division rounds up, and a last window that would start past the input and its begin
//!   padding is dropped (`(out - 1) * stride >= in + pad_begin` takes one off).
//! - `VALID`: no padding, `out = ceil((in - eff + 1) / stride)`; `ceil_mode` does not apply.
//! - `SAME_UPPER`/`SAME_LOWER`: `out = ceil(in / stride)`, padded by
//!   `total = max(0, (out - 1) * stride + eff - in)`, the odd one at the end (`UPPER`) or the
//!   begin (`LOWER`); `ceil_mode` does not apply.
//! - `ConvTranspose`: `full = stride * (in - 1) + output_padding + eff`. With `output_shape`
//!   (or `SAME_*`, whose output is `in * stride`) the pads are derived, `total = full - out`,
//!   the odd one at the begin unless `SAME_UPPER`; otherwise `out = full - pad_begin - pad_end`
//!   with the explicit pads (none for `VALID`). Derived pads may be negative: an output larger
//!   than the input covers is padded with zeros at the end.

use crate::op::{AttrError, Op};

/// `auto_pad`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutoPad {
    /// Explicit `pads` (the default; `""` reads as this too).
    NotSet,
    SameUpper,
    SameLower,
    Valid,
}

impl AutoPad {
    /// Parses an `auto_pad` attribute value.
    pub fn parse(s: &str) -> Result<AutoPad, WindowError> {
        match s {
            "NOTSET" | "" => Ok(AutoPad::NotSet),
            "SAME_UPPER" => Ok(AutoPad::SameUpper),
            "SAME_LOWER" => Ok(AutoPad::SameLower),
            "VALID" => Ok(AutoPad::Valid),
            other => Err(WindowError::UnknownAutoPad(other.to_string())),
        }
    }

    /// `SAME_UPPER` or `SAME_LOWER`.
    pub fn is_same(self) -> bool {
        matches!(self, AutoPad::SameUpper | AutoPad::SameLower)
    }

    /// The attribute spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AutoPad::NotSet => "NOTSET",
            AutoPad::SameUpper => "SAME_UPPER",
            AutoPad::SameLower => "SAME_LOWER",
            AutoPad::Valid => "VALID",
        }
    }

    /// Splits a total padding into `(begin, end)`: the odd one goes to the end for
    /// `SAME_UPPER`, to the begin otherwise.
    fn split(self, total: u64) -> (u64, u64) {
        let small = total / 2;
        if self == AutoPad::SameUpper { (small, total - small) } else { (total - small, small) }
    }
}

/// Why a window's attributes, or a window over a given input, are impossible.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error(transparent)]
    Attr(#[from] AttrError),
    #[error("unknown auto_pad `{0}`")]
    UnknownAutoPad(String),
    #[error("{attr} has {found} values for {n} spatial axes")]
    Length { attr: &'static str, found: usize, n: usize },
    #[error("{attr} value {value} is not positive")]
    NotPositive { attr: &'static str, value: i64 },
    #[error("{attr} value {value} is negative")]
    Negative { attr: &'static str, value: i64 },
    #[error("kernel_shape is required")]
    NoKernel,
    #[error("the window ({window}) is larger than the padded input ({padded})")]
    Empty { window: u64, padded: u64 },
    #[error("the input size is 0, which a transposed convolution cannot spread")]
    EmptyInput,
    #[error("the output size {output} is larger than the transposed convolution covers ({full})")]
    Uncovered { output: u64, full: u64 },
    #[error(
        "the explicit pads {pad_begin}+{pad_end} are more than the transposed convolution covers ({full})"
    )]
    Cropped { pad_begin: u64, pad_end: u64, full: u64 },
    #[error("attribute values too large")]
    Overflow,
}

type Res<T> = Result<T, WindowError>;

/// One spatial axis of a window: kernel, stride, dilation and the explicit pads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Axis {
    pub kernel: u64,
    pub stride: u64,
    pub dilation: u64,
    pub pad_begin: u64,
    pub pad_end: u64,
}

impl Axis {
    /// The dilated kernel extent, `dilation * (kernel - 1) + 1`.
    pub fn extent(&self) -> Res<u64> {
        self.kernel
            .checked_sub(1)
            .ok_or(WindowError::NotPositive { attr: "kernel_shape", value: 0 })?
            .checked_mul(self.dilation)
            .and_then(|e| e.checked_add(1))
            .ok_or(WindowError::Overflow)
    }
}

/// One axis resolved over a known input size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub pad_begin: u64,
    pub pad_end: u64,
    pub output: u64,
    /// How far the last window reaches past the input and `pad_end` (only `ceil_mode` makes
    /// this nonzero): the padding the last window reads beyond the attribute's.
    pub overhang: u64,
}

/// One `ConvTranspose` axis resolved over a known input size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transposed {
    /// Cropped from the begin of the full output; negative pads add zeros.
    pub pad_begin: i128,
    pub pad_end: i128,
    pub output: u64,
    /// `stride * (in - 1) + eff`: the positions the input reaches before cropping, without
    /// `output_padding`.
    pub reach: u64,
}

/// The checked attributes of a window op over `n` spatial axes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    pub auto_pad: AutoPad,
    pub axes: Vec<Axis>,
    pub ceil_mode: bool,
}

/// `ConvTranspose`'s extra attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransposeAttrs {
    pub output_padding: Vec<u64>,
    /// The spatial output sizes, when given (a full-rank value is cut to its spatial part).
    pub output_shape: Option<Vec<u64>>,
}

fn list(attr: &'static str, v: Option<&[i64]>, n: usize, default: u64, min: u64) -> Res<Vec<u64>> {
    let Some(v) = v else { return Ok(vec![default; n]) };
    if v.len() != n {
        return Err(WindowError::Length { attr, found: v.len(), n });
    }
    v.iter()
        .map(|&x| match u64::try_from(x) {
            Ok(u) if u >= min => Ok(u),
            _ if min > 0 => Err(WindowError::NotPositive { attr, value: x }),
            _ => Err(WindowError::Negative { attr, value: x }),
        })
        .collect()
}

impl Window {
    /// Checks the window attributes: `kernel` (its spatial dims, as the attribute or the
    /// weight gives them) must be positive, as must `strides` and `dilations` (default 1);
    /// `pads` (default 0) has `2n` non-negative values, begins then ends.
    pub fn new(
        auto_pad: &str,
        kernel: &[i64],
        strides: Option<&[i64]>,
        dilations: Option<&[i64]>,
        pads: Option<&[i64]>,
        ceil_mode: bool,
    ) -> Res<Window> {
        let n = kernel.len();
        let kernel = list("kernel_shape", Some(kernel), n, 1, 1)?;
        let strides = list("strides", strides, n, 1, 1)?;
        let dilations = list("dilations", dilations, n, 1, 1)?;
        let pads = list("pads", pads, 2 * n, 0, 0)?;
        let auto_pad = AutoPad::parse(auto_pad)?;
        let axes = (0..n)
            .map(|i| Axis {
                kernel: kernel[i],
                stride: strides[i],
                dilation: dilations[i],
                pad_begin: pads[i],
                pad_end: pads[i + n],
            })
            .collect();
        Ok(Window { auto_pad, axes, ceil_mode })
    }

    /// The window of a `Conv`, `ConvInteger`, `QLinearConv` or `ConvTranspose` whose kernel
    /// spatial dims are `kernel_shape`, or `weight` (the weight's spatial dims) when it is
    /// absent. `None` when neither is known.
    pub fn conv(op: &Op, weight: Option<&[u64]>) -> Res<Option<Window>> {
        let kernel: Vec<i64> = match (op.attr_ints("kernel_shape")?, weight) {
            (Some(k), _) => k.to_vec(),
            (None, Some(w)) => {
                w.iter().map(|&d| i64::try_from(d).map_err(|_| WindowError::Overflow)).collect::<Res<_>>()?
            }
            (None, None) => return Ok(None),
        };
        Window::from_op(op, &kernel, false).map(Some)
    }

    /// The window of a `MaxPool`, `AveragePool` or `LpPool` (`kernel_shape` required).
    pub fn pool(op: &Op) -> Res<Window> {
        let kernel = op.attr_ints("kernel_shape")?.ok_or(WindowError::NoKernel)?.to_vec();
        let ceil_mode = op.attr_int("ceil_mode", 0)? != 0;
        Window::from_op(op, &kernel, ceil_mode)
    }

    /// Reads only the window attributes, so that an op's other attributes (a bad `group`, say)
    /// are left to the code that needs them.
    fn from_op(op: &Op, kernel: &[i64], ceil_mode: bool) -> Res<Window> {
        Window::new(
            &op.attr_str("auto_pad", "NOTSET")?,
            kernel,
            op.attr_ints("strides")?,
            op.attr_ints("dilations")?,
            op.attr_ints("pads")?,
            ceil_mode,
        )
    }

    /// The number of spatial axes.
    pub fn rank(&self) -> usize {
        self.axes.len()
    }

    /// The kernel's spatial dims.
    pub fn kernel(&self) -> Vec<u64> {
        self.axes.iter().map(|a| a.kernel).collect()
    }

    /// Axis `i` over an input of size `input`: pads and output size.
    pub fn resolve_axis(&self, i: usize, input: u64) -> Res<Resolved> {
        let a = self.axes[i];
        let (s, eff) = (a.stride, a.extent()?);
        let (pad_begin, pad_end, output) = match self.auto_pad {
            AutoPad::SameUpper | AutoPad::SameLower => {
                let output = input.div_ceil(s);
                let need = output.saturating_sub(1).checked_mul(s).and_then(|v| v.checked_add(eff));
                let total = need.ok_or(WindowError::Overflow)?.saturating_sub(input);
                let (b, e) = self.auto_pad.split(total);
                (b, e, output)
            }
            AutoPad::Valid | AutoPad::NotSet => {
                let (b, e) = if self.auto_pad == AutoPad::Valid { (0, 0) } else { (a.pad_begin, a.pad_end) };
                let padded =
                    input.checked_add(b).and_then(|v| v.checked_add(e)).ok_or(WindowError::Overflow)?;
                let span = padded.checked_sub(eff).ok_or(WindowError::Empty { window: eff, padded })?;
                let mut output = span / s + 1;
                if self.ceil_mode && self.auto_pad == AutoPad::NotSet {
                    output = span.div_ceil(s) + 1;
                    // ONNX: the last window must start inside the input or its begin padding.
                    if (output - 1).checked_mul(s).is_none_or(|start| start >= input.saturating_add(b)) {
                        output -= 1;
                    }
                }
                (b, e, output)
            }
        };
        // In u128: the end of the last window can pass u64 only by less than a stride.
        let last_end = u128::from(output.saturating_sub(1)) * u128::from(s) + u128::from(eff);
        let covered = u128::from(input) + u128::from(pad_begin) + u128::from(pad_end);
        let overhang =
            if output == 0 { 0 } else { u64::try_from(last_end.saturating_sub(covered)).unwrap_or(u64::MAX) };
        Ok(Resolved { pad_begin, pad_end, output, overhang })
    }

    /// Every axis over the input's spatial dims (`input.len()` must be the rank).
    pub fn resolve(&self, input: &[u64]) -> Res<Vec<Resolved>> {
        if input.len() != self.rank() {
            return Err(WindowError::Length { attr: "kernel_shape", found: self.rank(), n: input.len() });
        }
        input.iter().enumerate().map(|(i, &x)| self.resolve_axis(i, x)).collect()
    }

    /// `ConvTranspose`'s `output_padding` (default 0) and `output_shape`, checked against this
    /// window's rank.
    pub fn transpose_attrs(&self, op: &Op) -> Res<TransposeAttrs> {
        let n = self.rank();
        let output_padding = list("output_padding", op.attr_ints("output_padding")?, n, 0, 0)?;
        let output_shape = match op.attr_ints("output_shape")? {
            None => None,
            Some(v) => {
                let v = if v.len() == n + 2 { &v[2..] } else { v };
                Some(list("output_shape", Some(v), n, 0, 0)?)
            }
        };
        Ok(TransposeAttrs { output_padding, output_shape })
    }

    /// `ConvTranspose` axis `i` over an input of size `input`.
    pub fn resolve_transposed(&self, t: &TransposeAttrs, i: usize, input: u64) -> Res<Transposed> {
        let a = self.axes[i];
        let eff = a.extent()?;
        let big = WindowError::Overflow;
        let reach = input
            .checked_sub(1)
            .ok_or(WindowError::EmptyInput)?
            .checked_mul(a.stride)
            .and_then(|v| v.checked_add(eff))
            .ok_or(big.clone())?;
        let full = reach.checked_add(t.output_padding[i]).ok_or(big.clone())?;
        let target = match (&t.output_shape, self.auto_pad) {
            (Some(o), _) => Some(o[i]),
            (None, p) if p.is_same() => Some(input.checked_mul(a.stride).ok_or(big)?),
            _ => None,
        };
        Ok(match target {
            Some(output) => {
                let total = i128::from(full) - i128::from(output);
                let small = total.div_euclid(2);
                let (b, e) = if self.auto_pad == AutoPad::SameUpper {
                    (small, total - small)
                } else {
                    (total - small, small)
                };
                Transposed { pad_begin: b, pad_end: e, output, reach }
            }
            None => {
                let (b, e) = if self.auto_pad == AutoPad::Valid { (0, 0) } else { (a.pad_begin, a.pad_end) };
                let output = full
                    .checked_sub(b)
                    .and_then(|v| v.checked_sub(e))
                    .filter(|&o| o > 0)
                    .ok_or(WindowError::Cropped { pad_begin: b, pad_end: e, full })?;
                Transposed { pad_begin: i128::from(b), pad_end: i128::from(e), output, reach }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attr::AttrValue;

    fn win(auto_pad: &str, k: i64, s: i64, d: i64, pads: (i64, i64), ceil: bool) -> Window {
        Window::new(auto_pad, &[k], Some(&[s]), Some(&[d]), Some(&[pads.0, pads.1]), ceil).unwrap()
    }

    fn out(w: &Window, input: u64) -> Res<(u64, u64, u64)> {
        w.resolve_axis(0, input).map(|r| (r.pad_begin, r.pad_end, r.output))
    }

    #[test]
    fn notset_floor_and_explicit_pads() {
        assert_eq!(out(&win("NOTSET", 3, 1, 1, (1, 1), false), 5), Ok((1, 1, 5)));
        assert_eq!(out(&win("NOTSET", 3, 2, 1, (0, 0), false), 6), Ok((0, 0, 2)));
        assert_eq!(out(&win("", 3, 2, 1, (0, 1), false), 6), Ok((0, 1, 3)));
        assert_eq!(out(&win("NOTSET", 1, 1, 1, (0, 0), false), 1), Ok((0, 0, 1)));
    }

    #[test]
    fn same_upper_and_lower_split_the_odd_pad() {
        // in 5, k 3, s 2: out 3, total (3-1)*2 + 3 - 5 = 2
        assert_eq!(out(&win("SAME_UPPER", 3, 2, 1, (0, 0), false), 5), Ok((1, 1, 3)));
        // in 6, k 4, s 1: out 6, total 3: UPPER puts the odd one last, LOWER first
        assert_eq!(out(&win("SAME_UPPER", 4, 1, 1, (0, 0), false), 6), Ok((1, 2, 6)));
        assert_eq!(out(&win("SAME_LOWER", 4, 1, 1, (0, 0), false), 6), Ok((2, 1, 6)));
        // a stride larger than the kernel needs no padding
        assert_eq!(out(&win("SAME_UPPER", 1, 2, 1, (0, 0), false), 5), Ok((0, 0, 3)));
        // ceil_mode does not apply, nor do the explicit pads
        assert_eq!(out(&win("SAME_LOWER", 3, 2, 1, (5, 5), true), 5), Ok((1, 1, 3)));
    }

    #[test]
    fn valid_pads_nothing() {
        assert_eq!(out(&win("VALID", 3, 2, 1, (0, 0), false), 5), Ok((0, 0, 2)));
        assert_eq!(out(&win("VALID", 3, 1, 1, (2, 2), false), 3), Ok((0, 0, 1)));
        // ceil_mode does not round VALID up
        assert_eq!(out(&win("VALID", 2, 2, 1, (0, 0), true), 5), Ok((0, 0, 2)));
        assert_eq!(
            out(&win("VALID", 3, 1, 1, (0, 0), false), 2),
            Err(WindowError::Empty { window: 3, padded: 2 })
        );
    }

    #[test]
    fn dilations_widen_the_window() {
        // k 3, d 2: extent 5
        assert_eq!(win("NOTSET", 3, 1, 2, (0, 0), false).axes[0].extent(), Ok(5));
        assert_eq!(out(&win("NOTSET", 3, 1, 2, (0, 0), false), 7), Ok((0, 0, 3)));
        assert_eq!(out(&win("SAME_UPPER", 3, 1, 2, (0, 0), false), 7), Ok((2, 2, 7)));
        assert_eq!(out(&win("VALID", 3, 2, 2, (0, 0), false), 9), Ok((0, 0, 3)));
        assert_eq!(
            out(&win("NOTSET", 3, 1, 3, (0, 0), false), 6),
            Err(WindowError::Empty { window: 7, padded: 6 })
        );
    }

    #[test]
    fn ceil_mode_rounds_up_but_never_starts_in_the_end_padding() {
        let w = win("NOTSET", 3, 2, 1, (0, 0), true);
        assert_eq!(w.resolve_axis(0, 6), Ok(Resolved { pad_begin: 0, pad_end: 0, output: 3, overhang: 1 }));
        // exact division: no extra window
        assert_eq!(out(&win("NOTSET", 3, 2, 1, (0, 0), true), 7), Ok((0, 0, 3)));
        // k 1, s 2 over 2: ceil would give 2, whose window starts at 2 = the end: dropped
        assert_eq!(out(&win("NOTSET", 1, 2, 1, (0, 0), true), 2), Ok((0, 0, 1)));
        // with end padding the extra window starts at 4 < in + pad_begin = 5: kept
        let w = win("NOTSET", 2, 2, 1, (0, 1), true);
        assert_eq!(w.resolve_axis(0, 5), Ok(Resolved { pad_begin: 0, pad_end: 1, output: 3, overhang: 0 }));
        // a window starting in the end padding (at 6 >= 5 + 0) is dropped
        assert_eq!(out(&win("NOTSET", 2, 3, 1, (0, 2), true), 5), Ok((0, 2, 2)));
    }

    #[test]
    fn bad_attributes_are_errors() {
        let e = Window::new("NOTSET", &[3, 3], Some(&[1]), None, None, false);
        assert_eq!(e, Err(WindowError::Length { attr: "strides", found: 1, n: 2 }));
        let e = Window::new("NOTSET", &[3], Some(&[0]), None, None, false);
        assert_eq!(e, Err(WindowError::NotPositive { attr: "strides", value: 0 }));
        let e = Window::new("NOTSET", &[0], None, None, None, false);
        assert_eq!(e.unwrap_err().to_string(), "kernel_shape value 0 is not positive");
        let e = Window::new("NOTSET", &[3], None, Some(&[-1]), None, false);
        assert_eq!(e, Err(WindowError::NotPositive { attr: "dilations", value: -1 }));
        let e = Window::new("NOTSET", &[3], None, None, Some(&[0, -2]), false);
        assert_eq!(e, Err(WindowError::Negative { attr: "pads", value: -2 }));
        let e = Window::new("SAME", &[3], None, None, None, false);
        assert_eq!(e.unwrap_err().to_string(), "unknown auto_pad `SAME`");
    }

    #[test]
    fn overflow_is_an_error_not_a_wrapped_number() {
        let max = i64::MAX;
        let w = Window::new("NOTSET", &[max], None, Some(&[max]), None, false).unwrap();
        assert_eq!(w.axes[0].extent(), Err(WindowError::Overflow));
        let w = Window::new("NOTSET", &[1], None, None, Some(&[max, max]), false).unwrap();
        assert_eq!(w.resolve_axis(0, u64::MAX), Err(WindowError::Overflow));
        let w = Window::new("SAME_UPPER", &[2], Some(&[max]), None, None, false).unwrap();
        assert_eq!(out(&w, u64::MAX), Err(WindowError::Overflow));
        // large but representable values resolve exactly
        let w = Window::new("NOTSET", &[2], Some(&[max]), None, None, true).unwrap();
        assert_eq!(out(&w, u64::MAX), Ok((0, 0, 3)));
    }

    fn transpose_op(attrs: &[(&str, AttrValue)]) -> Op {
        let mut op = Op::new("ConvTranspose", None);
        for (k, v) in attrs {
            op = op.with_attr(k, v.clone());
        }
        op
    }

    fn transposed(attrs: &[(&str, AttrValue)], kernel: u64, input: u64) -> Res<Transposed> {
        let op = transpose_op(attrs);
        let w = Window::conv(&op, Some(&[kernel]))?.unwrap();
        let t = w.transpose_attrs(&op)?;
        w.resolve_transposed(&t, 0, input)
    }

    #[test]
    fn conv_transpose_pads_output_padding_and_output_shape() {
        let ints = |v: &[i64]| AttrValue::Ints(v.to_vec());
        // in 3, k 3, s 2: full 7
        let t = transposed(&[("strides", ints(&[2]))], 3, 3).unwrap();
        assert_eq!((t.pad_begin, t.pad_end, t.output, t.reach), (0, 0, 7, 7));
        let t = transposed(&[("strides", ints(&[2])), ("pads", ints(&[1, 1]))], 3, 3).unwrap();
        assert_eq!(t.output, 5);
        let t = transposed(
            &[("strides", ints(&[2])), ("pads", ints(&[1, 1])), ("output_padding", ints(&[1]))],
            3,
            3,
        )
        .unwrap();
        assert_eq!((t.output, t.reach), (6, 7));
        // SAME: out = in * stride, total 7 + 0 - 6 = 1, the odd one at the end for UPPER
        let same = |p: &str| {
            transposed(
                &[
                    ("strides", ints(&[2])),
                    ("auto_pad", AttrValue::String(bytes::Bytes::copy_from_slice(p.as_bytes()))),
                ],
                3,
                3,
            )
        };
        let t = same("SAME_UPPER").unwrap();
        assert_eq!((t.pad_begin, t.pad_end, t.output), (0, 1, 6));
        let t = same("SAME_LOWER").unwrap();
        assert_eq!((t.pad_begin, t.pad_end, t.output), (1, 0, 6));
        // output_shape (spatial, or full rank) wins over pads; total 7 - 5 = 2
        let t = transposed(
            &[("strides", ints(&[2])), ("pads", ints(&[3, 3])), ("output_shape", ints(&[5]))],
            3,
            3,
        )
        .unwrap();
        assert_eq!((t.pad_begin, t.pad_end, t.output), (1, 1, 5));
        let t = transposed(&[("strides", ints(&[2])), ("output_shape", ints(&[1, 1, 5]))], 3, 3).unwrap();
        assert_eq!(t.output, 5);
        // an output larger than covered: negative pads, the zeros at the end (ONNX's
        // convtranspose_output_shape: in 3, k 3, s 3 gives 9, asked for 10)
        let t = transposed(&[("strides", ints(&[3])), ("output_shape", ints(&[10]))], 3, 3).unwrap();
        assert_eq!((t.pad_begin, t.pad_end, t.output), (0, -1, 10));
    }

    #[test]
    fn conv_transpose_impossible_windows() {
        let ints = |v: &[i64]| AttrValue::Ints(v.to_vec());
        assert_eq!(transposed(&[], 3, 0), Err(WindowError::EmptyInput));
        assert_eq!(
            transposed(&[("pads", ints(&[2, 2]))], 3, 1),
            Err(WindowError::Cropped { pad_begin: 2, pad_end: 2, full: 3 })
        );
        assert_eq!(
            transposed(&[("output_shape", ints(&[4, 4]))], 3, 3).unwrap_err().to_string(),
            "output_shape has 2 values for 1 spatial axes"
        );
        assert_eq!(
            transposed(&[("output_padding", ints(&[-1]))], 3, 3),
            Err(WindowError::Negative { attr: "output_padding", value: -1 })
        );
        assert_eq!(transposed(&[("strides", ints(&[i64::MAX]))], 3, u64::MAX), Err(WindowError::Overflow));
    }

    #[test]
    fn pool_requires_kernel_shape_and_reads_ceil_mode() {
        let op = Op::new("MaxPool", None);
        assert_eq!(Window::pool(&op), Err(WindowError::NoKernel));
        let op = Op::new("MaxPool", None)
            .with_attr("kernel_shape", AttrValue::Ints(vec![2, 2]))
            .with_attr("ceil_mode", AttrValue::Int(1));
        let w = Window::pool(&op).unwrap();
        assert!(w.ceil_mode);
        assert_eq!(w.kernel(), vec![2, 2]);
        assert_eq!(w.resolve(&[5, 4]).unwrap().iter().map(|r| r.output).collect::<Vec<_>>(), vec![4, 3]);
        assert!(w.resolve(&[5]).is_err());
    }
}
