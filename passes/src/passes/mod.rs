//! One file per pass; the registry lists them all.

pub mod eliminate_dead;
pub mod fold_constants;
pub mod infer_shapes;
