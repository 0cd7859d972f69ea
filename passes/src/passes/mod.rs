//! One file per pass; the registry lists them all.

pub mod absorb_quant;
pub mod check_scales;
pub mod check_target;
pub mod clear_descriptions;
pub mod duplicate_shared_weights;
pub mod eliminate_cse;
pub mod eliminate_dead;
pub mod eliminate_identity;
pub mod fold_constants;
pub mod fuse_bn_into_conv;
pub mod fuse_consecutive_reshapes;
pub mod fuse_consecutive_transposes;
pub mod fuse_matmul_add_into_gemm;
pub mod fuse_mul_add_into_bn;
pub mod fuse_pad_into_conv;
pub mod fuse_transpose_into_gemm;
pub mod fusion;
pub mod infer_datatypes;
pub mod infer_shapes;
pub mod lower_to_loops;
pub mod propagate_scales;
pub mod qcdq_to_quant;
pub mod quant_to_qcdq;
pub mod remove_static_inputs;
pub mod replace_avgpool_with_conv;
