//! One file per pass; the registry lists them all.

pub mod eliminate_dead;
