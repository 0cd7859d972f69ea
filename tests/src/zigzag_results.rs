//! Reading ZigZag's recorded results (`peers/zigzag-inputs/results/*.summary.json` in
//! `../shared`): the chosen spatial and temporal mappings are stored as Python `str()` of
//! dicts, lists and tuples, for example
//!
//! ```text
//! {D1: {K: 32}, D2: {C: 2, FX: 3, FY: 3}}
//! {O: [[(C, 2), (FY, 3)], [(OY, 112), (K, 2)], []], W: [[...], []], I: [[...], []]}
//! ```
//!
//! [`parse_value`] reads that syntax; [`parse_spatial`] and [`parse_temporal`] turn it into the
//! cost model's mappings. Errors are messages naming what was expected and where.

use qc_backends::mapping::{SpatialMapping, TemporalLoop, TemporalMapping};

/// A parsed Python literal: a bare word or number, a list or tuple, or a dict.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Atom(String),
    List(Vec<Value>),
    Map(Vec<(String, Value)>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Atom(_) => "a word",
            Value::List(_) => "a list",
            Value::Map(_) => "a dict",
        }
    }
}

fn tokens(s: &str) -> Vec<String> {
    let mut t = Vec::new();
    let mut cur = String::new();
    for ch in s.chars() {
        if "{}[](),:".contains(ch) || ch.is_whitespace() {
            if !cur.is_empty() {
                t.push(std::mem::take(&mut cur));
            }
            if !ch.is_whitespace() {
                t.push(ch.to_string());
            }
        } else if ch != '\'' && ch != '"' {
            // Quotes of `{'D1': ...}` (a `repr` rather than ZigZag's `str`) are dropped.
            cur.push(ch);
        }
    }
    if !cur.is_empty() {
        t.push(cur);
    }
    t
}

/// Parses one Python literal (dicts, lists, tuples, bare words); the whole text must be used.
pub fn parse_value(s: &str) -> Result<Value, String> {
    let t = tokens(s);
    let mut i = 0;
    let v = value(&t, &mut i).map_err(|e| format!("{e} in `{s}`"))?;
    if i != t.len() {
        return Err(format!("unexpected `{}` after the value in `{s}`", t[i]));
    }
    Ok(v)
}

fn value(t: &[String], i: &mut usize) -> Result<Value, String> {
    let at = |i: usize| t.get(i).map(String::as_str).ok_or_else(|| "unexpected end".to_string());
    let tok = at(*i)?;
    *i += 1;
    match tok {
        "{" => {
            let mut m = Vec::new();
            while at(*i)? != "}" {
                let k = at(*i)?.to_string();
                if "{}[](),:".contains(k.as_str()) {
                    return Err(format!("expected a dict key, found `{k}` (token {})", *i));
                }
                if at(*i + 1)? != ":" {
                    return Err(format!("expected `:` after dict key `{k}`"));
                }
                *i += 2;
                m.push((k, value(t, i)?));
                match at(*i)? {
                    "," => *i += 1,
                    "}" => {}
                    x => return Err(format!("expected `,` or `}}` in a dict, found `{x}`")),
                }
            }
            *i += 1;
            Ok(Value::Map(m))
        }
        "[" | "(" => {
            let close = if tok == "[" { "]" } else { ")" };
            let mut l = Vec::new();
            while at(*i)? != close {
                l.push(value(t, i)?);
                match at(*i)? {
                    "," => *i += 1,
                    x if x == close => {}
                    x => return Err(format!("expected `,` or `{close}` in a list, found `{x}`")),
                }
            }
            *i += 1;
            Ok(Value::List(l))
        }
        "}" | "]" | ")" | "," | ":" => Err(format!("unexpected `{tok}` (token {})", *i - 1)),
        _ => Ok(Value::Atom(tok.to_string())),
    }
}

/// A spatial unrolling factor. ZigZag records the user's (integer) unrolling, but when a
/// greedy mapping is printed from its internal form the factor is fractional (`S / ceil(S/u)`,
/// such as `2.6666666666666665` for 8 unrolled 3). The cost model takes the user's integer
/// unrolling and derives the fractional one itself, so a fractional factor `f` becomes
/// `ceil(f)`: for `f = S / ceil(S/u)` that is an unrolling with the same temporal remainder and
/// the same fractional factor (`u` itself whenever `ceil(f) == u`, as for every factor ZigZag's
/// generator produces: the largest unrolling giving that remainder).
pub fn parse_factor(s: &str) -> Result<u64, String> {
    if let Ok(n) = s.parse::<u64>() {
        return Ok(n);
    }
    let f: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if !f.is_finite() || f < 1.0 {
        return Err(format!("unrolling factor `{s}` is not at least 1"));
    }
    // Tolerate printing noise such as 3.0000000000000004.
    let r = f.round();
    Ok(if (f - r).abs() <= 1e-9 * f { r as u64 } else { f.ceil() as u64 })
}

/// Parses a recorded `spatial_mapping`: `{D1: {K: 32}, D2: {C: 2, FX: 3}}`.
pub fn parse_spatial(s: &str) -> Result<SpatialMapping, String> {
    let Value::Map(m) = parse_value(s)? else {
        return Err(format!("spatial mapping `{s}` is not a dict"));
    };
    let mut dims = Vec::with_capacity(m.len());
    for (array_dim, v) in m {
        let Value::Map(u) = v else {
            return Err(format!("spatial mapping `{s}`: `{array_dim}` maps to {}, not a dict", v.kind()));
        };
        let mut unrolls = Vec::with_capacity(u.len());
        for (d, f) in u {
            let Value::Atom(f) = f else {
                return Err(format!("spatial mapping `{s}`: factor of `{d}` is {}", f.kind()));
            };
            unrolls.push((d, parse_factor(&f).map_err(|e| format!("spatial mapping `{s}`: {e}"))?));
        }
        dims.push((array_dim, unrolls));
    }
    Ok(SpatialMapping { dims })
}

/// Parses a recorded `temporal` mapping: per operand, per memory level (lowest first), loops
/// `(dim, size)` innermost first.
pub fn parse_temporal(s: &str) -> Result<TemporalMapping, String> {
    let Value::Map(m) = parse_value(s)? else {
        return Err(format!("temporal mapping `{s}` is not a dict"));
    };
    let bad = |what: String| format!("temporal mapping `{s}`: {what}");
    let mut operands = Vec::with_capacity(m.len());
    for (role, v) in m {
        let Value::List(levels) = v else {
            return Err(bad(format!("operand `{role}` maps to {}, not a list of levels", v.kind())));
        };
        let mut out = Vec::with_capacity(levels.len());
        for (li, lv) in levels.into_iter().enumerate() {
            let Value::List(loops) = lv else {
                return Err(bad(format!("operand `{role}` level {li} is {}, not a list", lv.kind())));
            };
            let mut ls = Vec::with_capacity(loops.len());
            for l in loops {
                match &l {
                    Value::List(p) if p.len() == 2 => match (&p[0], &p[1]) {
                        (Value::Atom(d), Value::Atom(n)) => {
                            let size = parse_factor(n)
                                .map_err(|e| bad(format!("operand `{role}` level {li}: {e}")))?;
                            ls.push(TemporalLoop { dim: d.clone(), size });
                        }
                        _ => return Err(bad(format!("operand `{role}` level {li}: bad loop {l:?}"))),
                    },
                    _ => return Err(bad(format!("operand `{role}` level {li}: {l:?} is not `(dim, size)`"))),
                }
            }
            out.push(ls);
        }
        operands.push((role, out));
    }
    Ok(TemporalMapping { operands })
}

/// `|a - b| / |b|` (0 when equal).
pub fn rel_err(a: f64, b: f64) -> f64 {
    if a == b { 0.0 } else { (a - b).abs() / b.abs().max(1e-300) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_recorded_strings() {
        let sm = parse_spatial("{D1: {K: 32}, D2: {C: 2, FX: 3, FY: 3}}").unwrap();
        assert_eq!(sm.dims[1].1, vec![("C".into(), 2), ("FX".into(), 3), ("FY".into(), 3)]);
        assert_eq!(parse_spatial("{D1: {C: 2.6666666666666665}}").unwrap().dims[0].1[0].1, 3);
        assert_eq!(parse_factor("3.0000000000000004").unwrap(), 3);
        let tm = parse_temporal("{O: [[(C, 2)], []], W: [[], [(K, 2), (OX, 56)]]}").unwrap();
        assert_eq!(tm.levels("W").unwrap()[1][1], TemporalLoop { dim: "OX".into(), size: 56 });
        assert!(parse_spatial("{D1: [K, 32]}").unwrap_err().contains("not a dict"));
        assert!(parse_temporal("{O: [[(C, 2)]").unwrap_err().contains("unexpected end"));
        assert!(parse_value("{D1: {K: 32}}}").unwrap_err().contains("after the value"));
        assert!(parse_spatial("{D1: {K: x}}").unwrap_err().contains("not a number"));
    }
}

/// Reads `path` with one of the ZigZag readers (`read_accelerator_yaml`, `read_mapping_yaml`,
/// ...), the diagnostic rendered into the error.
pub fn read_with<T, E: miette::Diagnostic + Send + Sync + 'static>(
    path: &std::path::Path,
    read: impl Fn(&str, &str) -> Result<T, E>,
) -> Result<T, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    read(&text, &path.display().to_string()).map_err(|e| format!("{:?}", miette::Report::new(e)))
}

/// The workloads of ZigZag's runs, each read once: a `.yaml` with ZigZag's workload reader, an
/// ONNX model lowered as `qc lower` lowers it.
#[derive(Default)]
pub struct Workloads {
    cache: std::collections::HashMap<std::path::PathBuf, qc_ir::Workload>,
}

impl Workloads {
    /// The workload of `path`.
    pub fn get(&mut self, path: &std::path::Path) -> Result<&qc_ir::Workload, String> {
        if !self.cache.contains_key(path) {
            let w = if path.extension().is_some_and(|e| e == "yaml") {
                read_with(path, qc_backends::zigzag::read_workload_yaml)?
            } else {
                qc::lower::workload(&qc::lower::WorkloadArgs {
                    model: path.to_path_buf(),
                    default_precision: None,
                    no_mmap: false,
                    shapes: Default::default(),
                    shape_errors: Default::default(),
                    psum_bits: None,
                })
                .map_err(|e| format!("{}: {e:?}", path.display()))?
                .workload
            };
            self.cache.insert(path.to_path_buf(), w);
        }
        Ok(&self.cache[path])
    }
}
