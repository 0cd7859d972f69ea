//! ZigZag's mapping YAML (`zigzag/parser/mapping_validator.py`, `mapping_factory.py`, ZigZag
//! 3.9.1) read as a [`MappingFile`].
//!
//! The file is a list of entries; each is checked as ZigZag checks it (unknown keys, a missing
//! `name` and wrong types are schema errors; `spatial_mapping` and `spatial_mapping_hint` keyed
//! by `D1`..`D4`; unrollings `"DIM, n"` matching `^[A-Z]+\d*, \d+$`; hints matching
//! `^[A-Z]+\d*$`; `temporal_ordering` items `[DIM, n]` or `[DIM, "*"]`; `memory_operand_links`
//! with exactly the keys `O`, `W`, `I`), and an entry named `default` is required. Then each
//! entry becomes a [`MappingEntry`]:
//!
//! - `spatial_mapping` -> [`SpatialMapping`] (array dims and unrollings in the file's order;
//!   absent or `null` -> `None`).
//! - `spatial_mapping_hint` -> `spatial_hint`.
//! - `temporal_ordering` -> `(dim, OrderSize::Given(n) | OrderSize::Rest)`, innermost first.
//! - `memory_operand_links` -> [`OperandLinks`] (values `I1`, `I2`, `O`); absent -> ZigZag's
//!   default `O -> O`, `I -> I1`, `W -> I2`.
//!
//! qc is stricter than ZigZag in a few places (`spec/accelerator.md`): two entries with the same
//! name, a dim listed twice on one array dim (spatial mapping or hint), an unrolling or a
//! temporal size of 0, a temporal dim that is not a dim name, and links naming something other
//! than `I1`, `I2`, `O` or two layer operands on one memory operand are errors.

use std::collections::HashSet;

use serde::Deserialize;
use serde_saphyr::{DuplicateKeyPolicy, Location, Spanned};

use super::yaml_error::{IntOrStr, OrderedMap, YamlError, YamlErrorKind, YamlSource};
use qc_ir::LoopNest;

use crate::arch::{Accelerator, MemOperand};
use crate::mapping::{MappingEntry, MappingFile, OperandLinks, OrderSize, SpatialMapping};

/// What is wrong with a mapping file; the diagnostic code is `qc::mapping::<name>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MappingErrorKind {
    /// Not YAML, not a list of entries, an unknown or missing key, or a value of the wrong type.
    Schema,
    /// Two entries with the same name.
    Duplicate,
    /// No entry named `default`.
    Default,
    /// A `spatial_mapping` with an array dim other than `D1`..`D4`, an unrolling not of the form
    /// `"K, 32"`, a factor of 0, or a layer dim unrolled twice on one array dim.
    Spatial,
    /// A `spatial_mapping_hint` with an array dim other than `D1`..`D4`, or a layer dim that is
    /// not a name or is listed twice.
    Hint,
    /// A `temporal_ordering` item that is not `[DIM, n]` or `[DIM, "*"]` with `n >= 1`.
    Temporal,
    /// `memory_operand_links` naming something other than `I1`, `I2`, `O`, or linking two layer
    /// operands to one memory operand.
    Links,
    /// A `spatial_mapping` unrolling (factor above 1) or a `temporal_ordering` loop over a dim
    /// that none of the layers the entry is applied to has ([`check_mapping_fit`]).
    UnknownDim,
    /// A `spatial_mapping` unrolling more than its array dim has units, alone or together with
    /// the other unrollings on that array dim, or unrolling on an array dim the accelerator
    /// lacks ([`check_mapping_fit`]).
    Unrolling,
    /// A warning: an entry whose name is no layer name and no operator type of the workload, so
    /// that it applies to nothing ([`check_mapping_fit`]).
    UnusedEntry,
    /// A warning: an unrolling or loop over a dim of ZigZag's layer types (`OY`, `FX`, ...) that
    /// the layers the entry is applied to lack; ZigZag ignores it for them, and so does qc
    /// ([`check_mapping_fit`]).
    AbsentDim,
}

/// The dims of ZigZag's layer types (convolutions and matrix products; qc's lowering writes
/// these too): a mapping naming one that a layer lacks is ignored for that layer, any other
/// name is an error.
const LAYER_DIMS: &[&str] = &["B", "G", "K", "C", "OY", "OX", "FY", "FX", "D", "H"];

impl MappingErrorKind {
    /// The last part of the diagnostic code.
    pub fn name(self) -> &'static str {
        self.code().rsplit("::").next().unwrap_or_default()
    }
}

impl YamlErrorKind for MappingErrorKind {
    const FILE_KIND: &'static str = "ZigZag mapping";

    /// Written out so that the tidy test finds each one documented in spec/diagnostics.md.
    fn code(self) -> &'static str {
        match self {
            MappingErrorKind::Schema => "qc::mapping::schema",
            MappingErrorKind::Duplicate => "qc::mapping::duplicate",
            MappingErrorKind::Default => "qc::mapping::default",
            MappingErrorKind::Spatial => "qc::mapping::spatial",
            MappingErrorKind::Hint => "qc::mapping::hint",
            MappingErrorKind::Temporal => "qc::mapping::temporal",
            MappingErrorKind::Links => "qc::mapping::links",
            MappingErrorKind::UnknownDim => "qc::mapping::unknown_dim",
            MappingErrorKind::Unrolling => "qc::mapping::unrolling",
            MappingErrorKind::UnusedEntry => "qc::mapping::unused_entry",
            MappingErrorKind::AbsentDim => "qc::mapping::absent_dim",
        }
    }

    fn is_warning(self) -> bool {
        matches!(self, MappingErrorKind::UnusedEntry | MappingErrorKind::AbsentDim)
    }
}

/// A ZigZag mapping file that qc cannot read.
pub type MappingError = YamlError<MappingErrorKind>;

type Kind = MappingErrorKind;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    name: Spanned<String>,
    #[serde(default)]
    spatial_mapping: Option<OrderedMap<Vec<Spanned<String>>>>,
    #[serde(default)]
    spatial_mapping_hint: Option<OrderedMap<Vec<Spanned<String>>>>,
    #[serde(default)]
    temporal_ordering: Option<Vec<Spanned<Vec<Spanned<IntOrStr>>>>>,
    #[serde(default)]
    memory_operand_links: Option<RawLinks>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLinks {
    #[serde(rename = "O")]
    o: Spanned<String>,
    #[serde(rename = "W")]
    w: Spanned<String>,
    #[serde(rename = "I")]
    i: Spanned<String>,
}

/// `^[A-Z]+\d*$`: a layer dim name as ZigZag's mapping schema has it.
fn is_dim_name(s: &str) -> bool {
    let letters = s.bytes().take_while(u8::is_ascii_uppercase).count();
    letters > 0 && s.bytes().skip(letters).all(|c| c.is_ascii_digit())
}

/// `^[A-Z]+\d*, \d+$`, as `(dim, factor)`; `None` for the factor when it overflows.
fn parse_unrolling(s: &str) -> Option<(&str, Option<u64>)> {
    let (d, n) = s.split_once(", ")?;
    (is_dim_name(d) && !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit())).then(|| (d, n.parse().ok()))
}

const SCHEMA_HELP: &str = "a ZigZag mapping is a YAML list of entries, each with a `name` (a layer name, an operator \
     type or `default`) and optionally `spatial_mapping`, `spatial_mapping_hint`, `temporal_ordering` and \
     `memory_operand_links`; see spec/accelerator.md";
const SPATIAL_HELP: &str = "a spatial mapping gives, per array dim `D1`..`D4`, a list of unrollings `\"<layer dim>, \
     <factor>\"` such as `\"K, 32\"` (factor >= 1, each layer dim once per array dim)";
const HINT_HELP: &str = "a spatial mapping hint gives, per array dim `D1`..`D4`, a list of layer dims such as `[K, \
     C]`, each once";
const TEMPORAL_HELP: &str = "temporal_ordering lists loops innermost first, each `[<layer dim>, <size>]` with a size \
     >= 1 or `\"*\"` for whatever remains of the dim";
const LINKS_HELP: &str = "memory_operand_links maps the layer operands O, W, I to distinct memory operands I1, I2, \
     O (ZigZag's default: `{O: O, W: I2, I: I1}`)";

/// Reads ZigZag's mapping YAML as a [`MappingFile`]; `file` names it in diagnostics. The rules
/// are in the module documentation and `spec/accelerator.md`.
pub fn read_mapping_yaml(text: &str, file: &str) -> Result<MappingFile, MappingError> {
    let src = YamlSource { text, file };
    // As PyYAML: the last of duplicate keys wins.
    let mut options = serde_saphyr::Options::default();
    options.duplicate_keys = DuplicateKeyPolicy::LastWins;
    let raw: Spanned<Vec<Spanned<RawEntry>>> = src.parse(options, Kind::Schema, SCHEMA_HELP)?;
    let mut file_out = MappingFile::default();
    for (i, e) in raw.value.iter().enumerate() {
        let name = &e.value.name;
        let item_s = format!("entry {i} (`{}`)", name.value);
        if let Some(j) = file_out.entries.iter().position(|x| x.name == name.value) {
            return Err(src.error(
                Kind::Duplicate,
                Some(&item_s),
                "name",
                Some(&name.referenced),
                format!("entry {j} has the same name `{}`", name.value),
                "ZigZag uses the first entry of a name and ignores the others; give each entry its own name",
            ));
        }
        file_out.entries.push(entry(&src, &item_s, &e.value)?);
    }
    if !file_out.entries.iter().any(|e| e.name == "default") {
        return Err(src.error(
            Kind::Default,
            None,
            "",
            Some(&raw.referenced),
            "the mapping has no entry named `default`",
            "ZigZag requires a `default` entry, used for layers whose name and operator type no entry names; \
             add `- name: default` (with, for example, `spatial_mapping_hint` for the search)",
        ));
    }
    Ok(file_out)
}

/// Checks the array dim keys of a spatial mapping or hint: `D1`..`D4`, each once.
fn check_array_dims<V>(
    src: &YamlSource<'_>,
    kind: Kind,
    item: &str,
    key: &str,
    map: &OrderedMap<V>,
    help: &str,
) -> Result<(), MappingError> {
    let mut seen = HashSet::new();
    for (d, _) in &map.0 {
        let msg = if !matches!(d.value.as_str(), "D1" | "D2" | "D3" | "D4") {
            format!("`{}` is not one of the array dims D1..D4", d.value)
        } else if !seen.insert(d.value.as_str()) {
            format!("`{}` is given twice", d.value)
        } else {
            continue;
        };
        return Err(src.error(kind, Some(item), key, Some(&d.referenced), msg, help));
    }
    Ok(())
}

/// What [`check_mapping_fit`] finds: errors (the mapping cannot be used as written) and
/// warnings, each in file order.
#[derive(Debug, Default)]
pub struct MappingFit {
    pub errors: Vec<MappingError>,
    pub warnings: Vec<MappingError>,
}

impl MappingFit {
    /// Files a problem as an error or a warning, by its kind.
    fn push(&mut self, e: MappingError) {
        if e.kind.is_warning() { self.warnings.push(e) } else { self.errors.push(e) }
    }
}

/// Up to three layer names, `and N more` for the rest.
fn some_layers(layers: &[&LoopNest]) -> String {
    let mut s: Vec<String> = layers.iter().take(3).map(|l| format!("`{}`", l.name)).collect();
    if layers.len() > 3 {
        s.push(format!("and {} more", layers.len() - 3));
    }
    s.join(", ")
}

/// Checks a mapping file that [`read_mapping_yaml`] read from `text` against the workload and
/// accelerator it is used with. `applied` are the layers the mapping is applied to (each gets
/// its entry by [`MappingFile::entry_for`]); `others` are the workload's other layers, which
/// count only for whether an entry names something in the workload.
///
/// - A `spatial_mapping` unrolling with a factor above 1, or a `temporal_ordering` loop, over a
///   dim that none of the layers the entry is applied to has, is an error
///   ([`MappingErrorKind::UnknownDim`]) naming those layers, unless the dim is one of ZigZag's
///   layer dims ([`LAYER_DIMS`]), which ZigZag ignores for layers without it: a warning then
///   ([`MappingErrorKind::AbsentDim`]; a generic file's `OY` on a 1-D network). An entry applied to several layers
///   may name a dim only some of them have: ZigZag drops it for the others (`default`'s `OX` on
///   a fully connected layer), and so does qc. An unrolling of 1 unrolls nothing and is accepted
///   (ZigZag's own files unroll `C, 1` for `Add` layers, which have no `C`).
/// - An unrolling larger than its array dim, unrollings on one array dim whose product is
///   larger than it, or an unrolling above 1 on an array dim the accelerator lacks, is an error
///   ([`MappingErrorKind::Unrolling`]); ZigZag would silently shrink or drop it.
/// - An entry other than `default` whose name is no layer name and no operator type of the
///   workload is a warning ([`MappingErrorKind::UnusedEntry`]).
pub fn check_mapping_fit(
    text: &str,
    file: &str,
    map: &MappingFile,
    applied: &[&LoopNest],
    others: &[&LoopNest],
    acc: &Accelerator,
) -> MappingFit {
    let src = YamlSource { text, file };
    let mut options = serde_saphyr::Options::default();
    options.duplicate_keys = DuplicateKeyPolicy::LastWins;
    let mut fit = MappingFit::default();
    // The text read into `map` already; it parses again.
    let Ok(raw) = src.parse::<Spanned<Vec<Spanned<RawEntry>>>, _>(options, Kind::Schema, SCHEMA_HELP) else {
        return fit;
    };
    for (i, e) in raw.value.iter().enumerate() {
        let e = &e.value;
        let name = e.name.value.as_str();
        let item = format!("entry {i} (`{name}`)");
        let named = |l: &&LoopNest| l.name == name || l.op_type == name;
        if name != "default" && !applied.iter().chain(others).any(named) {
            let mut types: Vec<&str> = applied.iter().chain(others).map(|l| l.op_type.as_str()).collect();
            types.sort_unstable();
            types.dedup();
            fit.warnings.push(src.error(
                Kind::UnusedEntry,
                Some(&item),
                "name",
                Some(&e.name.referenced),
                format!("`{name}` is no layer name and no operator type of the workload, so the entry applies to nothing"),
                format!(
                    "ZigZag applies an entry to the layer of that name, else to the layers of that operator type \
                     (this workload's: {}); correct the name or remove the entry",
                    types.join(", ")
                ),
            ));
        }
        let layers: Vec<&LoopNest> = applied
            .iter()
            .copied()
            .filter(|l| map.entry_for(&l.name, &l.op_type).is_some_and(|x| x.name == name))
            .collect();
        let lacks = |dim: &str| !layers.is_empty() && layers.iter().all(|l| l.size(dim).is_none());
        let unknown_dim = |dim: &str, what: String, key: &str, loc: &Location| {
            let mut dims: Vec<&str> = Vec::new();
            for l in &layers {
                for d in &l.dims {
                    if !dims.contains(&d.name.as_str()) {
                        dims.push(&d.name);
                    }
                }
            }
            let whose = if layers.len() == 1 { "its dims" } else { "their dims" };
            // A dim of ZigZag's layer types that these layers lack (a generic file's `OY` on a
            // 1-D network) is dropped for them, as ZigZag drops it: a warning. Any other name
            // (`Q`, a typo) is an error.
            if LAYER_DIMS.contains(&dim) {
                return src.error(
                    Kind::AbsentDim,
                    Some(&item),
                    key,
                    Some(loc),
                    format!(
                        "{what} `{dim}`, which layer(s) {} do not have: ignored for them, as ZigZag ignores it",
                        some_layers(&layers)
                    ),
                    format!("{whose}: {}; give these layers their own entry to map them on purpose", dims.join(", ")),
                );
            }
            src.error(
                Kind::UnknownDim,
                Some(&item),
                key,
                Some(loc),
                format!(
                    "{what} `{dim}`, but the entry is applied to layer(s) {} and none of them has `{dim}`",
                    some_layers(&layers)
                ),
                format!(
                    "{whose}: {}; name one of these, or give these layers their own entry",
                    dims.join(", ")
                ),
            )
        };
        if let Some(map) = &e.spatial_mapping {
            for (oa, list) in &map.0 {
                let size = acc.array.dims.iter().find(|d| d.name == oa.value).map(|d| d.size);
                let mut product: u128 = 1;
                for u in list {
                    let Some((dim, Some(factor))) = parse_unrolling(&u.value) else { continue };
                    product = product.saturating_mul(u128::from(factor));
                    let bad = |msg: String, help: String| {
                        src.error(
                            Kind::Unrolling,
                            Some(&item),
                            "spatial_mapping",
                            Some(&u.referenced),
                            msg,
                            help,
                        )
                    };
                    let array: Vec<String> =
                        acc.array.dims.iter().map(|d| format!("{} = {}", d.name, d.size)).collect();
                    match size {
                        None if factor > 1 => fit.errors.push(bad(
                            format!("`{}` unrolls on {}, which accelerator `{}` does not have", u.value, oa.value, acc.name),
                            format!("the array dims of `{}`: {}", acc.name, array.join(", ")),
                        )),
                        Some(size) if factor > size => fit.errors.push(bad(
                            format!("`{}` unrolls {factor} on {}, which has {size} units", u.value, oa.value),
                            format!("an unrolling is at most its array dim's size ({}); ZigZag would shrink it silently", array.join(", ")),
                        )),
                        Some(size) if product > u128::from(size) => fit.errors.push(bad(
                            format!("the unrollings on {} up to `{}` multiply to {product}, but {} has {size} units", oa.value, u.value, oa.value),
                            "the unrollings on one array dim multiply to at most its size; ZigZag would drop some silently".into(),
                        )),
                        _ => {}
                    }
                    if factor > 1 && lacks(dim) {
                        fit.push(unknown_dim(
                            dim,
                            format!("`{}` unrolls", u.value),
                            "spatial_mapping",
                            &u.referenced,
                        ));
                    }
                }
            }
        }
        if let Some(items) = &e.temporal_ordering {
            for it in items {
                if let Some(dim) = it.value.first()
                    && let IntOrStr::Str(d) = &dim.value
                    && lacks(d)
                {
                    fit.push(unknown_dim(d, "a loop over".into(), "temporal_ordering", &dim.referenced));
                }
            }
        }
    }
    fit
}

fn entry(src: &YamlSource<'_>, item: &str, e: &RawEntry) -> Result<MappingEntry, MappingError> {
    let err = |kind, key: &str, loc: &Location, msg: String, help: &str| {
        src.error(kind, Some(item), key, Some(loc), msg, help)
    };

    let spatial = match &e.spatial_mapping {
        None => None,
        Some(map) => {
            check_array_dims(src, Kind::Spatial, item, "spatial_mapping", map, SPATIAL_HELP)?;
            let mut dims = Vec::with_capacity(map.0.len());
            for (d, list) in &map.0 {
                let mut unrolled: Vec<(String, u64)> = Vec::with_capacity(list.len());
                for u in list {
                    let bad =
                        |msg: String| err(Kind::Spatial, "spatial_mapping", &u.referenced, msg, SPATIAL_HELP);
                    let Some((dim, factor)) = parse_unrolling(&u.value) else {
                        return Err(bad(format!("`{}` on {} is not of the form `K, 32`", u.value, d.value)));
                    };
                    let Some(factor) = factor.filter(|f| *f >= 1) else {
                        return Err(bad(format!(
                            "the factor of `{}` on {} is not in 1..2^64",
                            u.value, d.value
                        )));
                    };
                    if unrolled.iter().any(|(x, _)| x == dim) {
                        return Err(bad(format!("`{dim}` is unrolled twice on {}", d.value)));
                    }
                    unrolled.push((dim.to_string(), factor));
                }
                dims.push((d.value.clone(), unrolled));
            }
            Some(SpatialMapping { dims })
        }
    };

    let spatial_hint = match &e.spatial_mapping_hint {
        None => None,
        Some(map) => {
            check_array_dims(src, Kind::Hint, item, "spatial_mapping_hint", map, HINT_HELP)?;
            let mut dims = Vec::with_capacity(map.0.len());
            for (d, list) in &map.0 {
                let mut hinted: Vec<String> = Vec::with_capacity(list.len());
                for h in list {
                    let msg = if !is_dim_name(&h.value) {
                        format!("`{}` on {} is not a layer dim name", h.value, d.value)
                    } else if hinted.contains(&h.value) {
                        format!("`{}` is listed twice on {}", h.value, d.value)
                    } else {
                        hinted.push(h.value.clone());
                        continue;
                    };
                    return Err(err(Kind::Hint, "spatial_mapping_hint", &h.referenced, msg, HINT_HELP));
                }
                dims.push((d.value.clone(), hinted));
            }
            Some(dims)
        }
    };

    let temporal_ordering = match &e.temporal_ordering {
        None => None,
        Some(items) => {
            let mut order = Vec::with_capacity(items.len());
            for it in items {
                let bad = |loc: &Location, msg: String| {
                    err(Kind::Temporal, "temporal_ordering", loc, msg, TEMPORAL_HELP)
                };
                let [dim, size] = it.value.as_slice() else {
                    return Err(bad(&it.referenced, format!("an item of {} values, not 2", it.value.len())));
                };
                let dim = match &dim.value {
                    IntOrStr::Str(s) if is_dim_name(s) => s.clone(),
                    IntOrStr::Str(s) => {
                        return Err(bad(&dim.referenced, format!("`{s}` is not a layer dim name")));
                    }
                    IntOrStr::Int(n) => {
                        return Err(bad(&dim.referenced, format!("`{n}` is not a layer dim name")));
                    }
                };
                let size = match &size.value {
                    IntOrStr::Str(s) if s == "*" => OrderSize::Rest,
                    IntOrStr::Int(n) if *n >= 1 => OrderSize::Given(*n as u64),
                    IntOrStr::Int(n) => {
                        return Err(bad(&size.referenced, format!("the size of `{dim}` is {n}")));
                    }
                    IntOrStr::Str(s) => {
                        return Err(bad(
                            &size.referenced,
                            format!("the size of `{dim}` is `{s}`, not a number or `*`"),
                        ));
                    }
                };
                order.push((dim, size));
            }
            Some(order)
        }
    };

    let links = match &e.memory_operand_links {
        None => OperandLinks::default(),
        Some(l) => {
            let mut links = Vec::with_capacity(3);
            // In the order of `OperandLinks::default()`, so that equal links compare equal.
            for (role, v) in [("O", &l.o), ("I", &l.i), ("W", &l.w)] {
                let Some(m) = MemOperand::parse(&v.value) else {
                    return Err(err(
                        Kind::Links,
                        "memory_operand_links",
                        &v.referenced,
                        format!("`{role}: {}` does not name a memory operand", v.value),
                        LINKS_HELP,
                    ));
                };
                if let Some((other, _)) = links.iter().find(|(_, x)| *x == m) {
                    return Err(err(
                        Kind::Links,
                        "memory_operand_links",
                        &v.referenced,
                        format!("`{role}` and `{other}` are both linked to `{m}`"),
                        LINKS_HELP,
                    ));
                }
                links.push((role.to_string(), m));
            }
            OperandLinks { links }
        }
    };

    Ok(MappingEntry { name: e.name.value.clone(), spatial, spatial_hint, temporal_ordering, links })
}
