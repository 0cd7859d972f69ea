//! Proptest generators shared by the round-trip suites (`text_roundtrip.rs` for graphs,
//! `loops_roundtrip.rs` for loop nests): quantization specs, which both forms print with the same
//! `quant(...)` syntax.

use proptest::prelude::*;
use qc_ir::{DataType, QuantOrigin, QuantParam, QuantSpec, Rounding};

/// Small integers mostly, any `i64` sometimes.
pub fn small_i64() -> impl Strategy<Value = i64> + Clone {
    prop_oneof![3 => 0i64..8, 1 => any::<i64>()]
}

/// Scales and zero points of every granularity, with values from `f64s`.
pub fn quant_param<F>(f64s: F) -> impl Strategy<Value = QuantParam> + Clone
where
    F: Strategy<Value = f64> + Clone,
{
    prop_oneof![
        f64s.clone().prop_map(QuantParam::PerTensor),
        (small_i64(), prop::collection::vec(f64s.clone(), 0..3))
            .prop_map(|(axis, values)| QuantParam::PerAxis { axis, values }),
        (
            small_i64(),
            small_i64(),
            prop::collection::vec(small_i64(), 0..3),
            prop::collection::vec(f64s, 0..3)
        )
            .prop_map(|(axis, block_size, dims, values)| QuantParam::Blocked {
                axis,
                block_size,
                dims,
                values
            }),
    ]
}

/// Every datatype, rounding and origin; scale and zero point (values from `f64s`) present or not.
pub fn quant_spec<F>(f64s: F) -> impl Strategy<Value = QuantSpec> + Clone
where
    F: Strategy<Value = f64> + Clone,
{
    let dtype = prop_oneof![
        (prop_oneof![1u32..33, any::<u32>()], any::<bool>())
            .prop_map(|(bits, signed)| DataType::Int { bits, signed }),
        Just(DataType::Bipolar),
        Just(DataType::Ternary),
        Just(DataType::Binary),
        (any::<u32>(), any::<u32>()).prop_map(|(w, i)| DataType::Fixed { w, i }),
        any::<u32>().prop_map(|bits| DataType::ScaledInt { bits }),
        (any::<u32>(), any::<u32>(), any::<i32>()).prop_map(|(e, m, bias)| DataType::Float { e, m, bias }),
        Just(DataType::F32),
        Just(DataType::F16),
    ];
    let rounding = prop::sample::select(vec![
        Rounding::HalfEven,
        Rounding::HalfAway,
        Rounding::HalfTowardZero,
        Rounding::Ceil,
        Rounding::Floor,
        Rounding::Trunc,
        Rounding::AwayFromZero,
    ]);
    let origin = prop::sample::select(vec![
        QuantOrigin::QonnxQuant,
        QuantOrigin::QonnxBipolarQuant,
        QuantOrigin::QonnxTrunc,
        QuantOrigin::QonnxFloatQuant,
        QuantOrigin::OnnxQdq,
        QuantOrigin::OnnxQLinear,
        QuantOrigin::OnnxDynamic,
        QuantOrigin::AccessAttributes,
        QuantOrigin::ZigZagAttributes,
        QuantOrigin::Annotation,
        QuantOrigin::Inferred,
    ]);
    let param = || prop::option::weighted(0.4, quant_param(f64s.clone()));
    (dtype, param(), param(), any::<bool>(), rounding, origin).prop_map(
        |(dtype, scale, zero_point, narrow, rounding, origin)| QuantSpec {
            dtype,
            scale,
            zero_point,
            narrow,
            rounding,
            origin,
        },
    )
}
