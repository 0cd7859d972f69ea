//! One file per pass; the registry lists them all. Passes share code only through
//! [`crate::rewrite`] and [`crate::opset`] (and the analysis modules), never with each other.

pub mod absorb_quant;
pub mod check_scales;
pub mod check_target;
pub mod clear_descriptions;
pub mod clear_shapes;
pub mod convert_f16;
pub mod defuse_gaps;
pub mod duplicate_shared_weights;
pub mod eliminate_cse;
pub mod eliminate_dead;
pub mod eliminate_identity;
pub mod eliminate_layout_roundtrips;
pub mod fold_constants;
pub mod fold_reshape_own_dims;
pub mod fuse_activations;
pub mod fuse_attention;
pub mod fuse_bn_into_conv;
pub mod fuse_consecutive_reshapes;
pub mod fuse_consecutive_slices;
pub mod fuse_consecutive_transposes;
pub mod fuse_matmul_add_into_gemm;
pub mod fuse_mul_add_into_bn;
pub mod fuse_normalization;
pub mod fuse_pad_into_conv;
pub mod fuse_qkv;
pub mod fuse_scale_bias_into_conv;
pub mod fuse_transpose_into_gemm;
pub mod infer_datatypes;
pub mod infer_shapes;
pub mod lower_to_loops;
pub mod opt_matmul;
pub mod propagate_scales;
pub mod qcdq_to_quant;
pub mod quant_to_qcdq;
pub mod remove_static_inputs;
pub mod replace_avgpool_with_conv;
pub mod replace_dilated_conv;
pub mod to_channels_last;

#[cfg(test)]
mod tests {
    use crate::pass::{Changed, PassContext};
    use crate::registry::{PassOptions, lookup};

    /// The fusions, and the Kneron-style rewrites that read the same kinds of ops.
    const FUSIONS: [&str; 21] = [
        "fuse-consecutive-slices",
        "fold-reshape-own-dims",
        "convert-f16",
        "defuse-gaps",
        "opt-matmul",
        "replace-dilated-conv",
        "duplicate-shared-weights",
        "eliminate-layout-roundtrips",
        "fuse-activations",
        "fuse-normalization",
        "replace-avgpool-with-conv",
        "fuse-attention",
        "fuse-bn-into-conv",
        "fuse-consecutive-reshapes",
        "fuse-consecutive-transposes",
        "fuse-matmul-add-into-gemm",
        "fuse-mul-add-into-bn",
        "fuse-pad-into-conv",
        "fuse-qkv",
        "fuse-scale-bias-into-conv",
        "fuse-transpose-into-gemm",
    ];

    /// Malformed ops of every pattern: wrong arity, bad attributes, mismatched dims, huge pads.
    const MALFORMED: &str = r#"
ir_version 8
opset_import "" 13

graph @g(%x: f32[1,2,3,3], %v: f32[2,3]) -> (%y1, %y2, %y3, %y4, %y5, %y6, %y7, %y8, %y9, %y10, %y11, %y12, %y13, %y14, %y15, %y16, %y17) {
  init %w = f32[2,2,1,1] floats [0.1, -0.2, 0.3, 0.4]
  init %s3 = f32[3] floats [1.0, 2.0, 3.0]
  init %pads = i64[3] int64s [0, 0, 9223372036854775807]
  init %big = i64[8] int64s [0, 0, 9223372036854775807, 0, 0, 0, 0, 0]
  init %m = f32[3,4] floats [0.1, -0.2, 0.3, 0.4, 0.5, -0.6, 0.7, 0.8, 0.9, 1.0, 1.1, -1.2]
  %c = ""::Conv(%x, %w)
  %y1 = ""::BatchNormalization(%c, %s3, %s3)
  %c2 = ""::Conv(%x, %w) {group = "two"}
  %y2 = ""::BatchNormalization(%c2, %s3, %s3, %s3, %s3)
  %t = ""::Transpose(%v) {perm = [5, 0]}
  %y3 = ""::Transpose(%t) {perm = [0, 0]}
  %p = ""::Pad(%x, %pads)
  %y4 = ""::Conv(%p, %w) {pads = [9223372036854775807, 0, 0, 0]}
  %p2 = ""::Pad(%x, %big)
  %y5 = ""::Conv(%p2, %w) {pads = [9223372036854775807, 0, 0, 0]}
  %mm = ""::MatMul(%v, %m)
  %y6 = ""::Add(%mm, %s3)
  %mu = ""::Mul(%x, %s3)
  %y7 = ""::Add(%mu, %s3)
  %tg = ""::Transpose(%v) {perm = "x"}
  %y8 = ""::Gemm(%tg, %m)
  %y9 = ""::AveragePool(%x) {kernel_shape = [0, -1], strides = [0, 0], pads = [-1, 0, 0, 0]}
  %y10 = ""::AveragePool(%x) {kernel_shape = [9223372036854775807, 1], auto_pad = "SAME_UPPER"}
  %y11 = ""::GlobalAveragePool(%v)
  %y12 = ""::AveragePool(%x) {kernel_shape = "k", ceil_mode = 1, dilations = [9223372036854775807, 1]}
  %sq = ""::Mul(%v, %v)
  %rv = ""::ReduceMean(%sq) {axes = "a"}
  %re = ""::Add(%rv, %s3)
  %rs = ""::Sqrt(%re)
  %y13 = ""::Div(%v, %rs)
  %hs = ""::HardSigmoid(%v) {alpha = "a"}
  %y14 = ""::Mul(%v, %hs)
  %t1 = ""::Transpose(%v) {perm = [1, 0]}
  %sg = ""::Sigmoid(%t1)
  %y15 = ""::Transpose(%sg) {perm = [1, 1]}
  %y16 = ""::Conv(%x, %w) {dilations = [0, 9223372036854775807]}
  %y17 = ""::Conv(%x, %w) {dilations = [2]}
}
"#;

    #[test]
    fn malformed_patterns_do_not_panic_and_a_second_run_changes_nothing() {
        for name in FUSIONS {
            let mut model = qc_ir::text::parse_model(MALFORMED).unwrap();
            // The model is invalid on purpose (arity, attribute kinds); a pass adds no problem.
            let before: Vec<String> = qc_ir::verify_model(&model).iter().map(ToString::to_string).collect();
            let info = lookup(name).unwrap();
            let mut pass = (info.build)(&mut PassOptions::new(info.name, &[])).unwrap();
            let mut cx = PassContext::default();
            pass.run(&mut model, &mut cx).unwrap();
            let after: Vec<String> = qc_ir::verify_model(&model).iter().map(ToString::to_string).collect();
            assert_eq!(before, after, "{name}");
            let mut cx = PassContext::default();
            assert_eq!(pass.run(&mut model, &mut cx).unwrap(), Changed::No, "{name}");
        }
    }
}
