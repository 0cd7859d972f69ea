//! Shape and element-type inference rules, one file per op family.
