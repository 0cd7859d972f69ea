//! One file per pass; the registry lists them all.
