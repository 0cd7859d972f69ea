//! One file per pass; the registry lists them all.

pub mod absorb_quant;
pub mod check_scales;
pub mod check_target;
pub mod eliminate_dead;
pub mod fold_constants;
pub mod infer_datatypes;
pub mod infer_shapes;
pub mod propagate_scales;
pub mod qcdq_to_quant;
pub mod quant_to_qcdq;
pub mod remove_static_inputs;
