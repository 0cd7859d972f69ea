//! `qc run`: execute a model with the reference evaluator on given inputs.
//!
//! Inputs are `.npy` files or serialized `TensorProto`s (`.pb`, as in the ONNX test data). Each
//! output is written as `<output-dir>/<name>.npy` (atomically); a summary of every output goes to
//! standard output. Types NumPy cannot hold are widened: bfloat16 and the 8-bit floats to `f4`,
//! 4- and 2-bit integers to 8-bit ones.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use prost::Message;
use qc_ir::ElemType;
use qc_passes::eval::{Array, run_graph};

use crate::load::{self, LoadOptions};

/// Arguments of `qc run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The model to execute.
    pub model: PathBuf,
    /// A graph input and the file holding its value (`.npy` or a serialized TensorProto `.pb`).
    #[arg(long = "input", value_name = "NAME=FILE")]
    pub inputs: Vec<String>,
    /// Write every output there as `<name>.npy`.
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// Read the model into memory instead of memory-mapping it.
    #[arg(long)]
    pub no_mmap: bool,
    /// Simulate a DLA's fixed-point arithmetic instead (`access-dla`: 8-bit feature maps and
    /// weights, 16-bit biases, integer accumulation; spec/fixed_point.md): the outputs are the
    /// fixed-point ones, and each layer's SNR and max error against the float evaluation is
    /// printed.
    #[arg(long, value_enum, value_name = "TARGET")]
    pub fixed_point: Option<crate::run_fixed::FixedPointTarget>,
}

/// A problem with `qc run`'s inputs.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RunError {
    #[error("`--input {given}` is not NAME=FILE")]
    #[diagnostic(code(qc::run::input_syntax), help("write --input x=x.npy, once per graph input"))]
    InputSyntax { given: String },

    #[error("the model has no graph input called `{name}`")]
    #[diagnostic(code(qc::run::unknown_input), help("its inputs are: {inputs}"))]
    UnknownInput { name: String, inputs: String },

    #[error("graph input `{name}` needs a value")]
    #[diagnostic(code(qc::run::missing_input), help("add --input {name}=FILE ({ty})"))]
    MissingInput { name: String, ty: String },

    #[error("graph input `{name}` is given twice")]
    #[diagnostic(code(qc::run::duplicate_input), help("give each graph input one --input"))]
    DuplicateInput { name: String },

    #[error("graph input `{name}` has the wrong element type: declared {declared}, given {given}")]
    #[diagnostic(code(qc::run::input_type), help("{hint}"))]
    InputType { name: String, declared: String, given: String, hint: String },

    #[error("graph input `{name}` has rank {given_rank}, not {rank}: declared {declared}, given {given}")]
    #[diagnostic(
        code(qc::run::input_rank),
        help("give `{name}` an array with {rank} dimension(s), shaped like {declared}")
    )]
    InputRank { name: String, rank: usize, given_rank: usize, declared: String, given: String },

    #[error(
        "graph input `{name}`: dimension {index} is {got}, not {want}: declared {declared}, given {given}"
    )]
    #[diagnostic(
        code(qc::run::input_dim),
        help(
            "dimension {index} of `{name}` must be {want}; only named (`N`) and unknown (`?`) dimensions take any size"
        )
    )]
    InputDim { name: String, index: usize, got: i64, want: u64, declared: String, given: String },

    #[error(
        "graph input `{name}`: dimension {index} (`{sym}`) is {got}, but `{sym}` is {first} in input `{first_input}`: declared {declared}, given {given}"
    )]
    #[diagnostic(
        code(qc::run::input_dim_binding),
        help(
            "a dimension name stands for one size: give `{sym}` the same size in every input that declares it"
        )
    )]
    InputDimBinding {
        name: String,
        index: usize,
        sym: String,
        got: i64,
        first: i64,
        first_input: String,
        declared: String,
        given: String,
    },

    #[error("{count} problems with the inputs given to `{model}`; nothing was run")]
    #[diagnostic(code(qc::run::inputs), help("each problem below names the graph input it is about"))]
    Inputs {
        model: String,
        count: usize,
        #[related]
        problems: Vec<RunError>,
    },

    #[error("cannot read `{file}`: {problem}")]
    #[diagnostic(
        code(qc::run::input_file),
        help("inputs are .npy files (numpy.save) or serialized TensorProto .pb files")
    )]
    InputFile { file: String, problem: String },
}

fn read_input(path: &Path, name: &str) -> miette::Result<qc_ir::Tensor> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path)
        .map_err(|e| RunError::InputFile { file: file.clone(), problem: e.to_string() })?;
    if bytes.starts_with(b"\x93NUMPY") {
        return Ok(crate::npy::read(&bytes, &file, name)?);
    }
    let proto = crate::onnx::proto::TensorProto::decode(bytes.as_slice()).map_err(|e| {
        RunError::InputFile { file: file.clone(), problem: format!("not .npy, and not a TensorProto: {e}") }
    })?;
    let mut t = crate::onnx::import_tensor(proto).map_err(|errors| RunError::InputFile {
        file: file.clone(),
        problem: errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "),
    })?;
    t.name = Some(name.to_string());
    Ok(t)
}

/// Converts an array to a type NumPy can hold, widening where needed.
pub fn numpy_compatible(a: Array) -> Result<Array, qc_passes::eval::EvalError> {
    use ElemType::*;
    match a.elem {
        BF16 | F8E4M3FN | F8E4M3FNUZ | F8E5M2 | F8E5M2FNUZ | F8E8M0 | F4E2M1 => {
            Array::from_f64s(F32, a.dims.clone(), a.to_f64()?)
        }
        I4 | I2 => Array::from_i128s(I8, a.dims.clone(), a.to_i128()?),
        U4 | U2 => Array::from_i128s(U8, a.dims.clone(), a.to_i128()?),
        _ => Ok(a),
    }
}

/// A file name for an output value: its name with anything but letters, digits, `-`, `_` and
/// `.` replaced by `_`.
pub(crate) fn file_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
        .collect();
    if s.is_empty() || s.starts_with('.') { format!("_{s}") } else { s }
}

/// NumPy's name for an element type, for hints.
fn numpy_name(elem: ElemType) -> Option<&'static str> {
    use ElemType::*;
    Some(match elem {
        F16 => "float16",
        F32 => "float32",
        F64 => "float64",
        I8 => "int8",
        I16 => "int16",
        I32 => "int32",
        I64 => "int64",
        U8 => "uint8",
        U16 => "uint16",
        U32 => "uint32",
        U64 => "uint64",
        Bool => "bool_",
        _ => return None,
    })
}

/// A given tensor's type as qc prints types: `f64[1,3,48,192]`.
fn given_type(t: &qc_ir::Tensor) -> String {
    let dims: Vec<String> = t.dims.iter().map(|d| d.to_string()).collect();
    format!("{}[{}]", t.elem_type(), dims.join(","))
}

/// Checks the given tensors against the graph inputs they are bound to: element type, rank,
/// fixed dimensions, and that every dimension name stands for one size across all inputs.
/// Returns every mismatch, in graph input order.
fn check_inputs(g: &qc_ir::Graph, given: &[(String, qc_ir::Tensor)]) -> Vec<RunError> {
    use qc_ir::{Dim, ValueType};
    let mut problems = Vec::new();
    // A dimension name's first size: (size, input).
    let mut bound: indexmap::IndexMap<String, (i64, String)> = indexmap::IndexMap::new();
    for &v in &g.inputs {
        let value = g.value(v);
        let Some((_, t)) = given.iter().find(|(n, _)| *n == value.name) else { continue };
        let Some(declared_ty) = value.ty.as_ref().and_then(|ti| ti.ty.as_ref()) else { continue };
        let name = value.name.clone();
        let declared = declared_ty.to_string();
        let given_s = given_type(t);
        let (elem, shape) = match declared_ty {
            ValueType::Tensor { elem, shape } => (elem, shape),
            _ => {
                problems.push(RunError::InputType {
                    name,
                    hint: format!("`{}` is not a tensor; qc run gives graph inputs tensors only", value.name),
                    declared,
                    given: given_s,
                });
                continue;
            }
        };
        if let Some(want) = elem
            && *want != t.elem_type()
        {
            let hint = match numpy_name(*want) {
                Some(np) => format!(
                    "save the array as {want} (numpy: a.astype(numpy.{np})), qc does not convert inputs"
                ),
                None => format!("NumPy has no {want}: give a serialized TensorProto .pb of type {want}"),
            };
            problems.push(RunError::InputType {
                name: name.clone(),
                declared: declared.clone(),
                given: given_s.clone(),
                hint,
            });
        }
        let Some(shape) = shape else { continue };
        if shape.rank() != t.dims.len() {
            problems.push(RunError::InputRank {
                name,
                rank: shape.rank(),
                given_rank: t.dims.len(),
                declared,
                given: given_s,
            });
            continue;
        }
        for (index, (d, &got)) in shape.dims.iter().zip(&t.dims).enumerate() {
            match d {
                Dim::Known(want) if u64::try_from(got).ok() != Some(*want) => {
                    problems.push(RunError::InputDim {
                        name: name.clone(),
                        index,
                        got,
                        want: *want,
                        declared: declared.clone(),
                        given: given_s.clone(),
                    });
                }
                // Exporters (Paddle2ONNX) write the name `?` for "any size": not a binding name.
                Dim::Sym(sym) if sym != "?" => match bound.get(sym) {
                    Some((first, first_input)) if *first != got => {
                        problems.push(RunError::InputDimBinding {
                            name: name.clone(),
                            index,
                            sym: sym.clone(),
                            got,
                            first: *first,
                            first_input: first_input.clone(),
                            declared: declared.clone(),
                            given: given_s.clone(),
                        });
                    }
                    Some(_) => {}
                    None => {
                        bound.insert(sym.clone(), (got, name.clone()));
                    }
                },
                _ => {}
            }
        }
    }
    problems
}

/// What is wrong with the tensors `given` for the graph inputs of `g`: a graph input without a
/// value (and without an initializer), then every mismatch of element type, rank, fixed
/// dimension or dimension name, in graph input order. `qc run` runs the graph only when there is
/// none.
pub fn input_problems(g: &qc_ir::Graph, given: &[(String, qc_ir::Tensor)]) -> Vec<RunError> {
    let mut problems = Vec::new();
    for &v in &g.inputs {
        let value = g.value(v);
        if value.init.is_none() && !given.iter().any(|(n, _)| *n == value.name) {
            let ty = value.ty.as_ref().map_or("?".to_string(), |t| t.to_string());
            problems.push(RunError::MissingInput { name: value.name.clone(), ty });
        }
    }
    problems.extend(check_inputs(g, given));
    problems
}

/// Runs an in-memory model on the tensors `given` for its graph inputs. `problems` are those
/// the caller already found (unknown or repeated names); with the problems of [`input_problems`]
/// they are the error, one or all (`file` names the model). The outputs come in graph order
/// ([`numpy_compatible`] widens them for NumPy).
pub fn run_model(
    model: &qc_ir::Model,
    given: &[(String, qc_ir::Tensor)],
    mut problems: Vec<RunError>,
    file: &str,
) -> miette::Result<Vec<(String, Array)>> {
    problems.extend(input_problems(&model.graph, given));
    match problems.len() {
        0 => {}
        1 => return Err(problems.remove(0).into()),
        count => return Err(RunError::Inputs { model: file.to_string(), count, problems }.into()),
    }
    let mut bound: Vec<(String, Array)> = Vec::new();
    for (name, tensor) in given {
        bound.push((name.clone(), Array::from_tensor(tensor, model)?));
    }
    Ok(run_graph(model, &bound)?)
}

/// Runs `qc run`, writing the summary to `out`.
pub fn run(args: &RunArgs, out: &mut dyn std::io::Write) -> miette::Result<()> {
    let loaded = load::load(&args.model, LoadOptions { mmap: !args.no_mmap })?;
    let model = &loaded.model;
    let g = &model.graph;
    let names: Vec<&str> = g.inputs.iter().map(|&v| g.value(v).name.as_str()).collect();
    let mut problems = Vec::new();
    let mut given: Vec<(String, qc_ir::Tensor)> = Vec::new();
    for arg in &args.inputs {
        let (name, file) = arg.split_once('=').ok_or_else(|| RunError::InputSyntax { given: arg.clone() })?;
        if !names.contains(&name) {
            problems.push(RunError::UnknownInput { name: name.into(), inputs: names.join(", ") });
        } else if given.iter().any(|(n, _)| n == name) {
            problems.push(RunError::DuplicateInput { name: name.into() });
        } else {
            given.push((name.to_string(), read_input(Path::new(file), name)?));
        }
    }
    if let Some(fp) = args.fixed_point {
        return crate::run_fixed::run(args, fp, model, &given, problems, out);
    }
    let outputs = run_model(model, &given, problems, &args.model.display().to_string())?;
    let mut files = Vec::new();
    for (name, array) in outputs.iter() {
        let a = numpy_compatible(array.clone())?;
        if let Some(dir) = &args.output_dir {
            std::fs::create_dir_all(dir).map_err(|e| {
                miette::miette!(code = "qc::io::write", "cannot create `{}`: {e}", dir.display())
            })?;
            let path = dir.join(format!("{}.npy", file_name(name)));
            let bytes = crate::npy::write(a.elem, &a.dims, &a.raw_bytes()).ok_or_else(|| {
                miette::miette!(
                    code = "qc::io::write",
                    "output `{name}` of type {} cannot be written as .npy",
                    a.elem
                )
            })?;
            files.push((path, bytes));
        }
    }
    for (path, bytes) in &files {
        crate::write::write_atomically(path, bytes)
            .map_err(|e| miette::miette!(code = "qc::io::write", "cannot write `{}`: {e}", path.display()))?;
    }
    let mut s = String::new();
    for (i, (name, a)) in outputs.iter().enumerate() {
        let dims: Vec<String> = a.dims.iter().map(|d| d.to_string()).collect();
        let head: Vec<String> = match a.to_f64() {
            Ok(v) => v.iter().take(6).map(|x| format!("{x:.6}")).collect(),
            Err(_) => vec!["...".into()],
        };
        let more = if a.len() > 6 { " ..." } else { "" };
        let _ = write!(s, "{name}: {}[{}] = [{}{more}]", a.elem, dims.join(","), head.join(", "));
        if let Some((path, _)) = files.get(i) {
            let _ = write!(s, "  -> {}", path.display());
        }
        s.push('\n');
    }
    out.write_all(s.as_bytes())
        .map_err(|e| miette::miette!(code = "qc::io::write", "cannot write output: {e}"))?;
    Ok(())
}
