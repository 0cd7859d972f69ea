//! The dims of a model's inputs, as every command that reads a model takes them:
//! `--overwrite-input-shape NAME:DIMS` (Kneron's spelling) and `--assume-dims N`.
//!
//! Real models often declare inputs with dims qc cannot know: a name (`batch`,
//! `p2o.DynamicDimension.0`), no value at all, or `-1`. Every count that depends on such a dim
//! (MACs, layers, energy) is unknown, so the commands that report one ask for the dims
//! ([`InputShapes::resolve`] fails with [`InputShapeError::UnknownDims`]) unless the user gives
//! them, or opts in to a stated assumption with `--assume-dims N`, which the outputs then show.

use std::fmt::Write as _;

use qc_ir::{Dim, Model, Shape, TypeInfo, ValueType};

/// The input-dim options shared by every command that reads a model.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct InputShapeArgs {
    /// Give a graph input new dims before anything runs (Kneron's option), e.g.
    /// `input:1,3,224,224`; a dim may be a name (`N`) or `?`. Repeatable.
    #[arg(long = "overwrite-input-shape", value_name = "NAME:DIMS")]
    pub overwrite_input_shape: Vec<String>,
    /// Set every input dim that is still unknown (a name, `?` or `-1`) to N, instead of failing;
    /// the assumption is printed with the results.
    #[arg(long, value_name = "N")]
    pub assume_dims: Option<u64>,
}

/// One input dim that `--assume-dims` set (a report type, shared with the reports).
pub use qc_backends::report::Assumption;

/// The assumptions as one line for text reports (`assumed: x dim 0 (N) = 1, ...`), or `None`.
pub fn assumptions_line(a: &[Assumption]) -> Option<String> {
    if a.is_empty() {
        return None;
    }
    let list: Vec<String> = a.iter().map(ToString::to_string).collect();
    Some(format!("assumed (--assume-dims): {}", list.join(", ")))
}

/// A problem with the input dims.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum InputShapeError {
    #[error("`--overwrite-input-shape {given}` is not NAME:DIMS")]
    #[diagnostic(
        code(qc::input_shape::syntax),
        help(
            "write the input's name, a colon and its dims separated by commas: input:1,3,224,224 (a dim may be a name or ?)"
        )
    )]
    Syntax { given: String },

    #[error("the model has no graph input called `{name}`")]
    #[diagnostic(code(qc::input_shape::unknown_input), help("its inputs are: {inputs}"))]
    UnknownInput { name: String, inputs: String },

    #[error("graph input `{name}` is not a tensor, so it has no shape to overwrite")]
    #[diagnostic(code(qc::input_shape::not_a_tensor), help("only tensor inputs have dims"))]
    NotATensor { name: String },

    #[error("`--overwrite-input-shape {given}` gives {given_rank} dims, but `{name}` is declared {declared}")]
    #[diagnostic(
        code(qc::input_shape::rank),
        help("give one dim for each of the {declared_rank} dims the model declares")
    )]
    Rank { given: String, name: String, given_rank: usize, declared: String, declared_rank: usize },

    #[error("`{given}` gives `{name}` {count} elements or more, more than a 64-bit count holds")]
    #[diagnostic(code(qc::input_shape::too_large), help("give dims whose product fits in 64 bits"))]
    TooLarge { given: String, name: String, count: String },

    #[error("the results depend on input dims the model does not fix: {list}")]
    #[diagnostic(
        code(qc::input_shape::unknown_dims),
        help(
            "give the dims: {flags}; or add --assume-dims N to set every unknown dim to N (the outputs then say so)"
        )
    )]
    UnknownDims { list: String, flags: String },
}

/// Applies the options to a loaded model.
impl InputShapeArgs {
    /// Whether the load warning `w` is answered by these options: a warning of graph-input dims
    /// without a size is moot when `--overwrite-input-shape` gives every such input its dims.
    pub fn answers(&self, w: &crate::diagnostics::LoadWarning) -> bool {
        let given = |input: &str| {
            self.overwrite_input_shape
                .iter()
                .any(|spec| spec.rsplit_once(':').is_some_and(|(n, _)| n == input))
        };
        match w {
            crate::diagnostics::LoadWarning::UnnamedDim { inputs, .. } => inputs.iter().all(|i| given(i)),
            _ => false,
        }
    }

    /// The load warnings these options do not answer, as reports.
    pub fn unanswered(&self, warnings: &[crate::diagnostics::LoadWarning]) -> Vec<miette::Report> {
        warnings.iter().filter(|w| !self.answers(w)).cloned().map(miette::Report::new).collect()
    }

    /// Applies `--overwrite-input-shape` and, when given, `--assume-dims`. Unknown dims may
    /// remain (for commands whose output does not depend on them: inspect, optimize, convert).
    pub fn apply(&self, model: &mut Model) -> Result<Vec<Assumption>, InputShapeError> {
        for spec in &self.overwrite_input_shape {
            overwrite(model, spec)?;
        }
        let Some(n) = self.assume_dims else { return Ok(Vec::new()) };
        let assumed = assume(model, n);
        let g = &model.graph;
        for a in &assumed {
            let Some(&v) = g.inputs.iter().find(|&&v| g.value(v).name == a.input) else { continue };
            if let Some(ValueType::Tensor { shape: Some(s), .. }) =
                g.value(v).ty.as_ref().and_then(|t| t.ty.as_ref())
                && s.dims
                    .iter()
                    .try_fold(1u64, |p, d| if let Dim::Known(k) = d { p.checked_mul(*k) } else { Some(p) })
                    .is_none()
            {
                return Err(InputShapeError::TooLarge {
                    given: format!("--assume-dims {n}"),
                    name: a.input.clone(),
                    count: "2^64".into(),
                });
            }
        }
        Ok(assumed)
    }

    /// As [`apply`](Self::apply), then fails when a graph input still has a dim that is not a
    /// number, naming each such input and the flag that would fix it.
    pub fn resolve(&self, model: &mut Model) -> Result<Vec<Assumption>, InputShapeError> {
        let assumed = self.apply(model)?;
        let unknown = unknown_inputs(model);
        if unknown.is_empty() {
            return Ok(assumed);
        }
        let mut list = String::new();
        let mut flags = Vec::new();
        for (i, (name, dims)) in unknown.iter().enumerate() {
            if i > 0 {
                list.push_str("; ");
            }
            let _ = write!(list, "`{name}` {}", shape_text(dims));
            flags.push(overwrite_flag(name, dims));
        }
        Err(InputShapeError::UnknownDims { list, flags: flags.join(" ") })
    }
}

/// `[N,3,?,W]`, as `qc_ir::Shape` prints.
/// `--overwrite-input-shape NAME:DIMS` for an input of `dims`: its known dims as they are, each
/// other one as the placeholder `D<k>` for the user to replace.
pub(crate) fn overwrite_flag(name: &str, dims: &[Dim]) -> String {
    let example: Vec<String> = dims
        .iter()
        .enumerate()
        .map(|(k, d)| match d {
            Dim::Known(n) => n.to_string(),
            _ => format!("D{k}"),
        })
        .collect();
    format!("--overwrite-input-shape {name}:{}", example.join(","))
}

fn shape_text(dims: &[Dim]) -> String {
    Shape { dims: dims.to_vec(), denotations: Vec::new() }.to_string()
}

/// The graph inputs (without initializers) whose declared dims are not all numbers.
fn unknown_inputs(model: &Model) -> Vec<(String, Vec<Dim>)> {
    let g = &model.graph;
    let mut out = Vec::new();
    for &v in &g.inputs {
        if g.initializers.contains(&v) {
            continue;
        }
        let value = g.value(v);
        if let Some(ValueType::Tensor { shape: Some(s), .. }) = value.ty.as_ref().and_then(|t| t.ty.as_ref())
            && s.dims.iter().any(|d| !matches!(d, Dim::Known(_)))
        {
            out.push((value.name.clone(), s.dims.clone()));
        }
    }
    out
}

/// Sets every unknown dim of every graph input to `n`.
fn assume(model: &mut Model, n: u64) -> Vec<Assumption> {
    let mut assumed = Vec::new();
    for (name, dims) in unknown_inputs(model) {
        let mut new = Vec::with_capacity(dims.len());
        for (index, d) in dims.iter().enumerate() {
            match d {
                Dim::Known(k) => new.push(Dim::Known(*k)),
                other => {
                    assumed.push(Assumption {
                        input: name.clone(),
                        index,
                        declared: other.to_string(),
                        value: n,
                    });
                    new.push(Dim::Known(n));
                }
            }
        }
        set_dims(model, &name, new);
    }
    assumed
}

/// Sets the declared dims of a graph input (`NAME:1,3,224,224`); the element type is kept.
fn overwrite(model: &mut Model, spec: &str) -> Result<(), InputShapeError> {
    let syntax = || InputShapeError::Syntax { given: spec.to_string() };
    let (name, dims) = spec.rsplit_once(':').ok_or_else(syntax)?;
    let dims: Vec<Dim> = dims
        .split(',')
        .map(|d| match d.trim() {
            "?" => Ok(Dim::Unknown),
            d if d.bytes().all(|c| c.is_ascii_digit()) && !d.is_empty() => {
                d.parse().map(Dim::Known).map_err(|_| syntax())
            }
            d if !d.is_empty() && d.chars().all(|c| c.is_alphanumeric() || c == '_') => {
                Ok(Dim::Sym(d.to_string()))
            }
            _ => Err(syntax()),
        })
        .collect::<Result<_, _>>()?;
    let known = dims.iter().filter_map(|d| if let Dim::Known(n) = d { Some(u128::from(*n)) } else { None });
    let count = known.fold(1u128, |a, n| a.saturating_mul(n));
    if count > u128::from(u64::MAX) {
        let count = if count == u128::MAX { "2^128".to_string() } else { count.to_string() };
        return Err(InputShapeError::TooLarge { given: spec.to_string(), name: name.to_string(), count });
    }
    let g = &model.graph;
    let Some(&v) = g.inputs.iter().find(|&&v| g.value(v).name == name) else {
        let inputs = g
            .inputs
            .iter()
            .filter(|v| !g.initializers.contains(v))
            .map(|&v| g.value(v).name.clone())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(InputShapeError::UnknownInput { name: name.to_string(), inputs });
    };
    match g.value(v).ty.as_ref().and_then(|t| t.ty.as_ref()) {
        Some(ValueType::Tensor { shape: Some(s), .. }) if s.dims.len() != dims.len() => {
            return Err(InputShapeError::Rank {
                given: spec.to_string(),
                name: name.to_string(),
                given_rank: dims.len(),
                declared: shape_text(&s.dims),
                declared_rank: s.dims.len(),
            });
        }
        Some(ValueType::Tensor { .. }) | None => {}
        Some(_) => return Err(InputShapeError::NotATensor { name: name.to_string() }),
    }
    set_dims(model, name, dims);
    Ok(())
}

/// Gives graph input `name` the dims `dims` and forgets every shape derived from the old ones.
fn set_dims(model: &mut Model, name: &str, dims: Vec<Dim>) {
    let g = &mut model.graph;
    let Some(&v) = g.inputs.iter().find(|&&v| g.value(v).name == name) else { return };
    let value = g.value_mut(v);
    let elem = match value.ty.as_ref().and_then(|t| t.ty.as_ref()) {
        Some(ValueType::Tensor { elem, .. }) => *elem,
        _ => None,
    };
    let denotation = value.ty.as_ref().and_then(|t| t.denotation.clone());
    value.ty = Some(TypeInfo {
        ty: Some(ValueType::Tensor { elem, shape: Some(Shape { dims, denotations: Vec::new() }) }),
        denotation,
    });
    // Declared shapes downstream described the old input; drop their dims (the element types
    // stay) so that shape inference derives them again from the new one.
    let produced: Vec<_> =
        g.ops().flat_map(|(_, op)| op.outputs().iter().flatten().copied().collect::<Vec<_>>()).collect();
    for v in produced {
        if let Some(TypeInfo { ty: Some(ValueType::Tensor { shape, .. }), .. }) = &mut g.value_mut(v).ty {
            *shape = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(dims: Vec<Dim>) -> Model {
        let text = "ir_version 8\nopset_import \"\" 13\n\ngraph @g(%x: f32[1]) -> (%y: f32[1]) {\n  %y = \"\"::Relu(%x)\n}\n";
        let mut m = qc_ir::text::parse_model(text).expect("parses");
        set_dims(&mut m, "x", dims);
        m
    }

    #[test]
    fn unknown_dims_are_an_error_naming_the_input_and_the_flag() {
        let mut m = model(vec![Dim::Sym("N".into()), Dim::Known(3), Dim::Unknown]);
        let e = InputShapeArgs::default().resolve(&mut m).unwrap_err();
        let InputShapeError::UnknownDims { list, flags } = &e else { panic!("{e:?}") };
        assert_eq!(list, "`x` [N,3,?]");
        assert_eq!(flags, "--overwrite-input-shape x:D0,3,D2");
    }

    #[test]
    fn assume_dims_sets_and_reports_each_unknown_dim() {
        let mut m = model(vec![Dim::Sym("N".into()), Dim::Known(3), Dim::Unknown]);
        let args = InputShapeArgs { assume_dims: Some(1), ..Default::default() };
        let a = args.resolve(&mut m).unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].to_string(), "x dim 0 (N) = 1");
        assert_eq!(a[1].to_string(), "x dim 2 (?) = 1");
        assert!(unknown_inputs(&m).is_empty());
    }

    #[test]
    fn overwrite_checks_the_rank() {
        let mut m = model(vec![Dim::Sym("N".into()), Dim::Known(3)]);
        let args = InputShapeArgs { overwrite_input_shape: vec!["x:1,3,4".into()], ..Default::default() };
        assert!(matches!(args.resolve(&mut m), Err(InputShapeError::Rank { given_rank: 3, .. })));
        let args = InputShapeArgs { overwrite_input_shape: vec!["x:2,3".into()], ..Default::default() };
        assert!(args.resolve(&mut m).unwrap().is_empty());
        let args = InputShapeArgs { overwrite_input_shape: vec!["y:2,3".into()], ..Default::default() };
        assert!(matches!(args.resolve(&mut m), Err(InputShapeError::UnknownInput { .. })));
        let huge = format!("x:{},{}", u64::MAX, 2);
        let args = InputShapeArgs { overwrite_input_shape: vec![huge], ..Default::default() };
        assert!(matches!(args.resolve(&mut m), Err(InputShapeError::TooLarge { .. })));
    }

    #[test]
    fn a_shape_given_for_every_input_answers_the_unnamed_dim_warning() {
        use crate::diagnostics::LoadWarning;
        let w =
            LoadWarning::UnnamedDim { count: 2, all: String::new(), inputs: vec!["x".into(), "y".into()] };
        let only_x = InputShapeArgs { overwrite_input_shape: vec!["x:1,3".into()], ..Default::default() };
        assert!(!only_x.answers(&w));
        let both = InputShapeArgs {
            overwrite_input_shape: vec!["x:1,3".into(), "y:2".into()],
            ..Default::default()
        };
        assert!(both.answers(&w));
        assert_eq!(both.unanswered(std::slice::from_ref(&w)).len(), 0);
        // --assume-dims states an assumption, which is printed instead; the warning stays.
        let assumed = InputShapeArgs { assume_dims: Some(1), ..Default::default() };
        assert!(!assumed.answers(&w));
    }
}
