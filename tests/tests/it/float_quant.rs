//! QONNX `FloatQuant` in qc's reference evaluator (`qc_passes::eval`), against the formula of
//! `research/qonnx.md` §1(a) as qonnx 1.0.0's `float_quant` computes it:
//! - on the OCP FP8 E4M3 format (e=4, m=3, bias=7, max 448): every representable value
//!   quantizes to itself, ties round half to even, values past 448 saturate (or become NaN or
//!   infinity when `saturation=0`), the subnormal range, scales other than 1 and per-channel
//!   scales, the rounding modes, and agreement with ONNX's float8 casts over a sweep of f32 inputs;
//! - on `../shared/models/qonnx-testdata/floatquant_exec__qonnx_act_weight_fp8.onnx`, whose
//!   expected values were produced by qonnx 1.0.0 itself (see `model_matches_the_qonnx_reference`).

use qc_ir::{AttrValue, ElemType, Op};
use qc_passes::eval::{Array, EvalError, eval_op, float8};

/// E4M3 as FloatQuant inputs: exponent bits, mantissa bits, exponent bias, `max_val`.
const E4M3: (f32, f32, f32, f32) = (4.0, 3.0, 7.0, 448.0);

/// The attributes of a FloatQuant node.
#[derive(Clone, Copy)]
struct Attrs {
    saturation: i64,
    has_inf: i64,
    has_nan: i64,
    has_subnormal: i64,
    rounding_mode: &'static str,
}

/// The attributes of the stored FP8 model: saturating, NaN, subnormals, `round`.
const SAT: Attrs = Attrs { saturation: 1, has_inf: 0, has_nan: 1, has_subnormal: 1, rounding_mode: "round" };

fn node(a: Attrs) -> Op {
    Op::new("FloatQuant", Some("qonnx.custom_op.general".into()))
        .with_attr("saturation", AttrValue::Int(a.saturation))
        .with_attr("has_inf", AttrValue::Int(a.has_inf))
        .with_attr("has_nan", AttrValue::Int(a.has_nan))
        .with_attr("has_subnormal", AttrValue::Int(a.has_subnormal))
        .with_attr("rounding_mode", AttrValue::String(a.rounding_mode.as_bytes().to_vec().into()))
}

/// Runs one FloatQuant node; `max_val` `None` leaves the sixth input out.
fn float_quant(
    x: &Array,
    scale: &Array,
    (e, m, bias, max_val): (f32, f32, f32, f32),
    with_max: bool,
    a: Attrs,
) -> Result<Array, EvalError> {
    let p = [Array::scalar_f32(e), Array::scalar_f32(m), Array::scalar_f32(bias), Array::scalar_f32(max_val)];
    let mut ins = vec![Some(x), Some(scale), Some(&p[0]), Some(&p[1]), Some(&p[2])];
    if with_max {
        ins.push(Some(&p[3]));
    }
    let mut out = eval_op(&node(a), &ins, 21)?;
    assert_eq!(out.len(), 1);
    Ok(out.remove(0))
}

fn f32s(a: &Array) -> Vec<f32> {
    a.to_f64().unwrap().into_iter().map(|v| v as f32).collect()
}

/// FloatQuant of a list of values with a scalar scale.
fn fq(xs: &[f32], scale: f32, fmt: (f32, f32, f32, f32), a: Attrs) -> Vec<f32> {
    let x = Array::from_f32(vec![xs.len()], xs.to_vec()).unwrap();
    f32s(&float_quant(&x, &Array::scalar_f32(scale), fmt, true, a).unwrap())
}

/// Equal bit for bit, except that any NaN equals any NaN.
fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn assert_same(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            same(g, w),
            "{what}[{i}]: {g:e} ({:#010x}) instead of {w:e} ({:#010x})",
            g.to_bits(),
            w.to_bits()
        );
    }
}

/// Decodes an OCP E4M3 code, written out from the OCP FP8 spec (independent of qc's float8 module):
/// `(-1)^s * 2^(e-7) * 1.m`, subnormals `(-1)^s * 2^-6 * 0.m`; `S.1111.111` is NaN.
fn e4m3(code: u8) -> f32 {
    let (s, e, m) = (code >> 7, i32::from((code >> 3) & 0xF), f32::from(code & 7));
    let v = if e == 0 { m / 8.0 * 2f32.powi(-6) } else { (1.0 + m / 8.0) * 2f32.powi(e - 7) };
    if code & 0x7F == 0x7F {
        f32::NAN
    } else if s == 1 {
        -v
    } else {
        v
    }
}

/// All 254 non-NaN E4M3 codes.
fn e4m3_codes() -> impl Iterator<Item = u8> {
    (0..=255u8).filter(|c| c & 0x7F != 0x7F)
}

#[test]
fn every_e4m3_value_quantizes_to_itself() {
    let codes: Vec<u8> = e4m3_codes().collect();
    assert_eq!(codes.len(), 254);
    let xs: Vec<f32> = codes.iter().map(|&c| e4m3(c)).collect();
    // The decoder above agrees with qc's float8 module (ONNX's float8e4m3fn).
    for (&c, &v) in codes.iter().zip(&xs) {
        assert!(same(float8::decode(ElemType::F8E4M3FN, c), v), "code {c:#04x}");
    }
    assert_eq!(xs.iter().copied().fold(0.0f32, f32::max), 448.0);
    assert_same(&fq(&xs, 1.0, E4M3, SAT), &xs, "E4M3 values");
    // Also without saturation, with either special value, and with every rounding mode: the
    // values are exact, so nothing rounds and nothing is out of range.
    for a in [
        Attrs { saturation: 0, ..SAT },
        Attrs { saturation: 0, has_inf: 1, has_nan: 0, ..SAT },
        Attrs { has_subnormal: 0, ..SAT },
    ] {
        assert_same(&fq(&xs, 1.0, E4M3, a), &xs, "E4M3 values, other attributes");
    }
    for mode in ["ROUND", "HALF_EVEN", "CEIL", "FLOOR", "UP", "DOWN", "HALF_UP", "HALF_DOWN"] {
        let got = fq(&xs, 1.0, E4M3, Attrs { rounding_mode: mode, ..SAT });
        // numpy's `sign(±0)` is +0, so UP and HALF_UP give +0 for both zeros, and HALF_DOWN
        // `0 * ceil(-0.5)` = -0 (as the reference does); every other value is unchanged.
        for (g, x) in got.iter().zip(&xs) {
            let want = match mode {
                "UP" | "HALF_UP" if *x == 0.0 => 0.0,
                "HALF_DOWN" if *x == 0.0 => -0.0,
                _ => *x,
            };
            assert!(same(*g, want), "{mode}: {x:e} gave {g:e}");
        }
    }
}

#[test]
fn ties_round_half_to_even() {
    // Consecutive non-negative codes hold increasing values; the midpoint of each pair (exact in
    // f32) goes to the code with the even last bit (an even mantissa, for the formula's
    // `round(X / 2^e)`). Includes the subnormal ties and the tie between 7 * 2^-9 and 2^-6.
    let (mut ties, mut want) = (Vec::new(), Vec::new());
    for c in 0u8..0x7E {
        let (lo, hi) = (e4m3(c), e4m3(c + 1));
        let mid = (lo + hi) / 2.0;
        assert!(mid > lo && mid < hi && f64::from(mid) == (f64::from(lo) + f64::from(hi)) / 2.0);
        let even = if c % 2 == 0 { lo } else { hi };
        ties.extend([mid, -mid]);
        want.extend([even, -even]);
        // One f32 step off the tie decides it.
        let (below, above) = (f32::from_bits(mid.to_bits() - 1), f32::from_bits(mid.to_bits() + 1));
        ties.extend([below, above, -below, -above]);
        want.extend([lo, hi, -lo, -hi]);
    }
    assert_eq!(ties.len(), 126 * 6);
    assert_same(&fq(&ties, 1.0, E4M3, SAT), &want, "E4M3 ties");
    // Spot checks written out.
    let spot =
        [1.0625, 1.1875, 0.001953125 * 0.5, 0.001953125 * 1.5, 0.001953125 * 7.5, 15.5 / 8.0, 232.0, 464.0];
    let want = [1.0, 1.25, 0.0, 0.00390625, 0.015625, 2.0, 224.0, 448.0];
    assert_same(&fq(&spot, 1.0, E4M3, SAT), &want, "E4M3 ties, spot checks");
    // With a power-of-two scale a tie stays a tie.
    let scaled: Vec<f32> = ties.iter().map(|t| t * 0.25).collect();
    let want_scaled: Vec<f32> = fq(&ties, 1.0, E4M3, SAT).iter().map(|w| w * 0.25).collect();
    assert_same(&fq(&scaled, 0.25, E4M3, SAT), &want_scaled, "E4M3 ties at scale 1/4");
}

#[test]
fn values_beyond_448_saturate_or_become_special() {
    let big = [448.0, 449.0, 463.99997, 464.0, 464.00003, 480.0, 1000.0, 1e6, 1e30, f32::MAX];
    let xs: Vec<f32> = big.iter().flat_map(|&v| [v, -v]).collect();
    let sat: Vec<f32> = xs.iter().map(|v| 448f32.copysign(*v)).collect();
    assert_same(&fq(&xs, 1.0, E4M3, SAT), &sat, "saturation=1");
    // `saturation=0`: what rounds past 448 (from 464 on, the tie 464 itself rounding down to
    // 448) becomes NaN with `has_nan`, or ±inf with `has_inf` (which wins when both are set).
    // f32::MAX rounds to 2^128 = inf inside, which `has_nan` also turns into NaN.
    let past = |v: f32| v.abs() > 464.0;
    let nan: Vec<f32> = xs.iter().map(|&v| if past(v) { f32::NAN } else { 448f32.copysign(v) }).collect();
    assert_same(&fq(&xs, 1.0, E4M3, Attrs { saturation: 0, ..SAT }), &nan, "saturation=0 has_nan=1");
    let inf: Vec<f32> = xs.iter().map(|&v| if past(v) { f32::INFINITY } else { 448.0 }.copysign(v)).collect();
    for (has_inf, has_nan) in [(1, 0), (1, 1)] {
        let a = Attrs { saturation: 0, has_inf, has_nan, ..SAT };
        assert_same(&fq(&xs, 1.0, E4M3, a), &inf, "saturation=0 has_inf=1");
    }
    // Non-finite inputs: NaN stays NaN; ±inf become NaN in every mode (the reference computes
    // inf / inf on the way), so they do not saturate.
    let special = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY];
    for a in [SAT, Attrs { saturation: 0, ..SAT }, Attrs { saturation: 0, has_inf: 1, has_nan: 0, ..SAT }] {
        assert_same(&fq(&special, 1.0, E4M3, a), &[f32::NAN; 3], "non-finite inputs");
    }
    // The reference raises for a non-saturating node with neither special value, whatever the
    // input; so does qc.
    let x = Array::from_f32(vec![1], vec![1.0]).unwrap();
    let a = Attrs { saturation: 0, has_inf: 0, has_nan: 0, ..SAT };
    let e = float_quant(&x, &Array::scalar_f32(1.0), E4M3, true, a).unwrap_err();
    assert!(e.to_string().contains("saturation=0"), "{e}");
}

#[test]
fn max_val_and_the_format_maximum() {
    // The bound is min(max_val, format max); the format max reserves no code for inf/NaN:
    // (2 - 2^-m) * 2^(2^e - 1 - bias), 480 for e=4 m=3 bias=7. Without the sixth input the
    // format max is used. All values in this test were checked against qonnx 1.0.0's
    // `float_quant`.
    let xs = [100.0, 104.0, 120.0, 472.0, 500.0, -1e9];
    assert_same(
        &fq(&xs, 1.0, (4.0, 3.0, 7.0, 1000.0), SAT),
        &[96.0, 104.0, 120.0, 480.0, 480.0, -480.0],
        "max 1000",
    );
    assert_same(
        &fq(&xs, 1.0, (4.0, 3.0, 7.0, 100.0), SAT),
        &[96.0, 100.0, 100.0, 100.0, 100.0, -100.0],
        "max 100",
    );
    let x = Array::from_f32(vec![6], xs.to_vec()).unwrap();
    let got = f32s(&float_quant(&x, &Array::scalar_f32(1.0), E4M3, false, SAT).unwrap());
    assert_same(&got, &[96.0, 104.0, 120.0, 480.0, 480.0, -480.0], "no max_val input");
    // OCP E5M2 (max 57344) and FP4 E2M1 (max 6).
    let e5m2 = (5.0, 2.0, 15.0, 57344.0);
    let xs = [57344.0, 61439.0, 61440.0, 1e6, 0.3, 1.5e-5, 2.0f32.powi(-17)];
    assert_same(
        &fq(&xs, 1.0, e5m2, SAT),
        &[57344.0, 57344.0, 57344.0, 57344.0, 0.3125, 1.5258789e-5, 0.0],
        "E5M2",
    );
    let e2m1 = (2.0, 1.0, 1.0, 6.0);
    let xs = [0.25, 0.3, 0.75, 1.25, 2.5, 3.5, 5.0, 7.0, -100.0];
    assert_same(&fq(&xs, 1.0, e2m1, SAT), &[0.0, 0.5, 1.0, 1.0, 2.0, 4.0, 4.0, 6.0, -6.0], "E2M1");
}

#[test]
fn subnormal_range() {
    // E4M3 subnormals are k * 2^-9 (k = 1..7); the normals start at 2^-6 = 8 * 2^-9, with the
    // same step 2^-9 up to 2^-5. The step never gets finer, whatever `has_subnormal` says (the
    // reference ignores it).
    let step = 2f32.powi(-9);
    let mut xs = Vec::new();
    let mut want = Vec::new();
    for k in 0..16 {
        let v = k as f32 * step;
        // Exact values, values a third of a step above (round down) and two thirds (round up).
        xs.extend([v, v + step / 3.0, v + step * 2.0 / 3.0, -(v + step / 3.0)]);
        want.extend([v, v, v + step, -v]);
    }
    let below = [step * 0.49, 2f32.powi(-20), 1e-40, f32::from_bits(1), -1e-40, -f32::from_bits(1)];
    xs.extend(below);
    want.extend([0.0, 0.0, 0.0, 0.0, -0.0, -0.0]);
    for a in [SAT, Attrs { has_subnormal: 0, ..SAT }] {
        assert_same(&fq(&xs, 1.0, E4M3, a), &want, "subnormals");
    }
    // Signed zero: -0 and negative values that round to zero stay -0.
    assert_same(&fq(&[-0.0, -step * 0.25], 1.0, E4M3, SAT), &[-0.0, -0.0], "negative zero");
    // A format with a large bias reaches f32's own subnormals: e=8, m=3, bias=127 has the step
    // t = 2^-129. Here the `+ tiny` (2^-126) inside the reference's `log2(|X| + tiny)` matters:
    // it moves every X in [2^-126, 2^-125) one binade up (step 2^-128), so 13t is a tie there and
    // goes to 12t, and 1.3 * 2^-126 to 10t. Values from qonnx 1.0.0's `float_quant`.
    let t = 2f32.powi(-129);
    let xs = [
        f32::from_bits(1),
        t,
        1.4 * t,
        2.6 * t,
        1.0e-38,
        13.0 * t,
        1.3 * 2f32.powi(-126),
        0.99 * 2f32.powi(-125),
    ];
    let want = [0.0, t, t, 3.0 * t, 7.0 * t, 12.0 * t, 10.0 * t, 16.0 * t];
    assert_same(&fq(&xs, 1.0, (8.0, 3.0, 127.0, 1e38), SAT), &want, "bias 127");
}

/// `y = scale * E4M3(x / scale)`, the expected result for a scale, from qc's float8 cast (which
/// the sweep below checks against FloatQuant with scale 1).
fn scaled_e4m3(x: f32, s: f32) -> f32 {
    (f64::from(float8::round_to(ElemType::F8E4M3FN, x / s, true)) * f64::from(s)) as f32
}

#[test]
fn scale_and_per_channel_scale() {
    let xs: Vec<f32> = (0..2000).map(|i| ((i * 37 % 2001) as f32 - 1000.0) * 0.0137).collect();
    for s in [0.37f32, 0.002232143, 3.5, 0.25, 1e-3] {
        let want: Vec<f32> = xs.iter().map(|&x| scaled_e4m3(x, s)).collect();
        assert_same(&fq(&xs, s, E4M3, SAT), &want, &format!("scale {s}"));
    }
    // Written out: with scale 0.5 the grid is halved and the bound is 224.
    assert_same(&fq(&[0.53, 100.0, 1000.0, -0.0], 0.5, E4M3, SAT), &[0.5, 96.0, 224.0, -0.0], "scale 0.5");

    // Per-channel scale [C, 1] on x [C, N]: each representable value times its channel's scale
    // is reproduced, and off-grid values follow their own channel's scale.
    let scales = [1.0f32, 0.37, 3.5, 0.002232143];
    let mut vals: Vec<f32> = e4m3_codes().map(e4m3).collect();
    vals.extend([0.3, -0.3, 1000.0, 1e-4]);
    let n = vals.len();
    let x: Vec<f32> = scales.iter().flat_map(|&s| vals.iter().map(move |&v| v * s)).collect();
    let want: Vec<f32> = x.iter().enumerate().map(|(i, &v)| scaled_e4m3(v, scales[i / n])).collect();
    let xa = Array::from_f32(vec![4, n], x.clone()).unwrap();
    let sa = Array::from_f32(vec![4, 1], scales.to_vec()).unwrap();
    let got = float_quant(&xa, &sa, E4M3, true, SAT).unwrap();
    assert_eq!(got.dims, vec![4, n]);
    let got = f32s(&got);
    assert_same(&got, &want, "per-channel [4,1]");
    for (i, v) in vals.iter().enumerate().take(254) {
        for (c, s) in scales.iter().enumerate() {
            assert!(same(got[c * n + i], v * s), "channel {c}: {v:e} * {s}");
        }
    }
    // The same along the last axis: x [N, C], scale [C] (numpy broadcasting).
    let xt: Vec<f32> = (0..n).flat_map(|j| (0..4).map(move |c| (j, c))).map(|(j, c)| x[c * n + j]).collect();
    let wt: Vec<f32> =
        (0..n).flat_map(|j| (0..4).map(move |c| (j, c))).map(|(j, c)| want[c * n + j]).collect();
    let xa = Array::from_f32(vec![n, 4], xt).unwrap();
    let sa = Array::from_f32(vec![4], scales.to_vec()).unwrap();
    assert_same(&f32s(&float_quant(&xa, &sa, E4M3, true, SAT).unwrap()), &wt, "per-channel [4] on [N,4]");
    // A scale that does not broadcast is an error.
    let sa = Array::from_f32(vec![3], vec![1.0; 3]).unwrap();
    assert!(float_quant(&xa, &sa, E4M3, true, SAT).is_err());
}

#[test]
fn rounding_modes() {
    // 1.0625 is the tie between 1 and 1.125; 1.07 is nearer 1.125. numpy's `sign(-0.0)` is +0,
    // so UP and HALF_UP map -0 to +0; HALF_DOWN gives `0 * ceil(-0.5)` = -0. Values from
    // qonnx 1.0.0's `float_quant`.
    let xs = [1.0625, -1.0625, 1.07, -1.07, -0.0, 500.0];
    let cases: [(&str, [f32; 6]); 8] = [
        ("ROUND", [1.0, -1.0, 1.125, -1.125, -0.0, 448.0]),
        ("half_even", [1.0, -1.0, 1.125, -1.125, -0.0, 448.0]),
        ("FLOOR", [1.0, -1.125, 1.0, -1.125, -0.0, 448.0]),
        ("ceil", [1.125, -1.0, 1.125, -1.0, -0.0, 448.0]),
        ("UP", [1.125, -1.125, 1.125, -1.125, 0.0, 448.0]),
        ("DOWN", [1.0, -1.0, 1.0, -1.0, -0.0, 448.0]),
        ("HALF_UP", [1.125, -1.125, 1.125, -1.125, 0.0, 448.0]),
        ("HALF_DOWN", [1.0, -1.0, 1.125, -1.125, -0.0, 448.0]),
    ];
    for (mode, want) in cases {
        assert_same(&fq(&xs, 1.0, E4M3, Attrs { rounding_mode: mode, ..SAT }), &want, mode);
    }
    let x = Array::from_f32(vec![1], vec![1.0]).unwrap();
    let a = Attrs { rounding_mode: "ROUND_TO_ZERO", ..SAT };
    assert!(float_quant(&x, &Array::scalar_f32(1.0), E4M3, true, a).is_err());
}

#[test]
fn agrees_with_the_onnx_float8_casts() {
    // For finite inputs, FloatQuant with the OCP parameters is ONNX's `Cast` to float8e4m3fn
    // (saturate=1; saturation=0 with has_nan is saturate=0) and to float8e5m2 (saturation=0 with
    // has_inf is saturate=0). A sweep of every 4099th f32 bit pattern (about a million values).
    let xs: Vec<f32> = (0..=u32::MAX).step_by(4099).map(f32::from_bits).filter(|v| v.is_finite()).collect();
    let e5m2 = (5.0, 2.0, 15.0, 57344.0);
    let checks = [
        (E4M3, SAT, ElemType::F8E4M3FN, true),
        (E4M3, Attrs { saturation: 0, ..SAT }, ElemType::F8E4M3FN, false),
        (e5m2, SAT, ElemType::F8E5M2, true),
        (e5m2, Attrs { saturation: 0, has_inf: 1, has_nan: 0, ..SAT }, ElemType::F8E5M2, false),
    ];
    for (fmt, a, elem, sat) in checks {
        let got = fq(&xs, 1.0, fmt, a);
        let want: Vec<f32> = xs.iter().map(|&x| float8::round_to(elem, x, sat)).collect();
        assert_same(&got, &want, &format!("{elem} saturate={sat}"));
    }
}

/// Expected values for the stored FP8 model, produced by qonnx 1.0.0 itself: in a throw-away venv
/// (`pip install qonnx onnx==1.22.0 onnxruntime`: qonnx 1.0.0, onnx 1.22.0, onnxruntime 1.31.1,
/// numpy 2.4.6), `qonnx.core.onnx_exec.execute_onnx(ModelWrapper(path), {"x.1": x},
/// return_full_exec_context=True)` on each row `x` (float32, shape [1, 3]); printed with numpy's
/// shortest round-trip `repr`. Columns: the input, the quantized input (output of
/// `/input_quant/export_handler/FloatQuant`, activation scale 0.002232143, so E4M3's 448 is 1.0),
/// and the model output `11` (`Gemm` through onnxruntime). Row 3 holds ties: x / scale is exactly
/// 1.0625, -1.1875 and 1.5 * 2^-9 in f32.
const MODEL_ROWS: [([f32; 3], [f32; 3], [f32; 16]); 5] = [
    (
        [0.3, -1.7, 100.0],
        [0.2857143, -1.0, 1.0],
        [
            -0.49010342,
            1.3783514,
            0.4200853,
            -0.460901,
            0.2605499,
            0.7358962,
            -0.22892736,
            -0.49639314,
            -0.10377109,
            0.7754467,
            0.46397376,
            0.79416364,
            -0.24906167,
            -0.9964478,
            0.65943074,
            0.049247324,
        ],
    ),
    (
        [1e-5, -1e-6, 0.0],
        [8.719308e-6, -0.0, 0.0],
        [
            -0.5017361,
            0.5206026,
            0.17084885,
            -0.57429713,
            -0.5419526,
            0.44804364,
            0.2319295,
            -0.5167453,
            0.5155548,
            -0.0386884,
            -0.05648997,
            0.09960257,
            -0.041163184,
            -0.4821588,
            0.16659033,
            -0.29240325,
        ],
    ),
    (
        [0.0023716518, -0.0026506698, 6.5394815e-6],
        [0.002232143, -0.0027901786, 8.719308e-6],
        [
            -0.5014859,
            0.5222729,
            0.17141213,
            -0.5743422,
            -0.53918517,
            0.44999206,
            0.2314798,
            -0.51563615,
            0.5148022,
            -0.03702943,
            -0.05440348,
            0.10053421,
            -0.041505966,
            -0.48181996,
            0.16741379,
            -0.29228532,
        ],
    ),
    (
        [-0.0, 0.999, -1.0],
        [-0.0, 1.0, -1.0],
        [
            -0.58314776,
            -0.2324779,
            -0.0027937442,
            -0.63535905,
            -1.1932673,
            0.2648595,
            0.5881179,
            -0.49639314,
            1.1261582,
            -0.7714147,
            -0.48391506,
            -0.59241444,
            0.25395903,
            0.0699271,
            -0.20995185,
            -0.7503521,
        ],
    ),
    (
        [0.123456, 0.5, -0.25],
        [0.125, 0.5, -0.25],
        [
            -0.6238546,
            0.3017999,
            0.16289598,
            -0.5259593,
            -0.7811101,
            0.34627324,
            0.2421094,
            -0.565086,
            0.72544986,
            -0.2778438,
            -0.24476212,
            -0.15370244,
            0.16236857,
            -0.33205336,
            0.13096827,
            -0.5493619,
        ],
    ),
];

/// The quantized weights (output of `/weight_quant/export_handler/FloatQuant`, [16, 3], weight
/// scale 0.00127209), as f32 bit patterns, from the same qonnx 1.0.0 run.
const MODEL_WEIGHTS_Q: [u32; 48] = [
    0xbe7a1a63, 0xbe91e4ba, 0xbe506b52, 0x3ebb93ca, 0xbe9c507e, 0x3ee542db, 0x3e8778f6, 0x3c1c507e,
    0x3e3b93ca, 0x3e3b93ca, 0x3e26bc42, 0x3e6542db, 0x3f0778f6, 0xbf11e4ba, 0x3da6bc42, 0x3ebb93ca,
    0xbed06b52, 0xbe6542db, 0xbebb93ca, 0xbe0778f6, 0xbefa1a63, 0x3e11e4ba, 0xbe91e4ba, 0xbe9c507e,
    0xbcfa1a63, 0x3e7a1a63, 0xbebb93ca, 0x3e91e4ba, 0xbebb93ca, 0x3ebb93ca, 0x3ea6bc42, 0xbefa1a63,
    0xbd7a1a63, 0x3c11e4ba, 0xbea6bc42, 0x3ebb93ca, 0x3e9c507e, 0x3ebb93ca, 0x3d91e4ba, 0x3e0778f6,
    0xbc91e4ba, 0xbf11e4ba, 0x3ed06b52, 0x3cfa1a63, 0x3ed06b52, 0xbed06b52, 0xbebb93ca, 0x3dbb93ca,
];

const MODEL: &str = "models/qonnx-testdata/floatquant_exec__qonnx_act_weight_fp8.onnx";
const ACT_Q: &str = "/input_quant/export_handler/FloatQuant_output_0";
const WEIGHT_Q: &str = "/weight_quant/export_handler/FloatQuant_output_0";

#[test]
fn model_matches_the_qonnx_reference() {
    let Some(shared) = qc_tests::shared_or_say("float_quant") else { return };
    let path = shared.join(MODEL);
    let mut model = qc::load::load(&path, Default::default()).expect("the FP8 model loads").model;
    // Expose both FloatQuant outputs as graph outputs, after `11`.
    for name in [ACT_Q, WEIGHT_Q] {
        let v = model.graph.find(name).unwrap_or_else(|| panic!("no value `{name}`"));
        model.graph.outputs.push(v);
    }
    for (row, (x, xq, y)) in MODEL_ROWS.iter().enumerate() {
        let input = Array::from_f32(vec![1, 3], x.to_vec()).unwrap();
        let outs = qc_passes::eval::run_graph(&model, &[("x.1".into(), input)]).expect("the model runs");
        let names: Vec<&str> = outs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["11", ACT_Q, WEIGHT_Q]);
        // The FloatQuant outputs match bit for bit.
        assert_eq!(outs[1].1.dims, vec![1, 3]);
        assert_same(&f32s(&outs[1].1), xq, &format!("row {row}: quantized input"));
        let wq: Vec<f32> = MODEL_WEIGHTS_Q.iter().map(|&b| f32::from_bits(b)).collect();
        assert_eq!(outs[2].1.dims, vec![16, 3]);
        assert_same(&f32s(&outs[2].1), &wq, "quantized weights");
        // The Gemm (onnxruntime in the reference) may sum in another order: within 1e-6.
        assert_eq!(outs[0].1.dims, vec![1, 16]);
        for (i, (g, w)) in f32s(&outs[0].1).iter().zip(y).enumerate() {
            assert!(
                (g - w).abs() <= 1e-6 + 1e-6 * w.abs(),
                "row {row}: output 11[{i}] is {g:e}, expected {w:e}"
            );
        }
    }
}

#[test]
fn qc_inspect_and_run_handle_the_fp8_model() {
    let Some(shared) = qc_tests::shared_or_say("float_quant") else { return };
    let path = shared.join(MODEL);
    let model = path.to_str().unwrap();
    let (code, out, err) = qc_tests::qc(&["inspect", model]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("FloatQuant") && out.contains("x.1"), "{out}");
    let dir = tempfile::tempdir().unwrap();
    let x: Vec<u8> = MODEL_ROWS[0].0.iter().flat_map(|v| v.to_le_bytes()).collect();
    let xfile = dir.path().join("x.npy");
    std::fs::write(&xfile, qc::npy::write(ElemType::F32, &[1, 3], &x).unwrap()).unwrap();
    let (code, out, err) = qc_tests::qc(&["run", model, "--input", &format!("x.1={}", xfile.display())]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("11: f32[1,16] = [-0.490103, 1.378351, 0.420085"), "{out}");
}
