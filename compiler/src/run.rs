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
fn numpy_compatible(a: Array) -> Result<Array, qc_passes::eval::EvalError> {
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
fn file_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
        .collect();
    if s.is_empty() || s.starts_with('.') { format!("_{s}") } else { s }
}

/// Runs `qc run`, writing the summary to `out`.
pub fn run(args: &RunArgs, out: &mut dyn std::io::Write) -> miette::Result<()> {
    let loaded = load::load(&args.model, LoadOptions { mmap: !args.no_mmap })?;
    let model = &loaded.model;
    let g = &model.graph;
    let names: Vec<&str> = g.inputs.iter().map(|&v| g.value(v).name.as_str()).collect();
    let mut bound: Vec<(String, Array)> = Vec::new();
    for given in &args.inputs {
        let (name, file) =
            given.split_once('=').ok_or_else(|| RunError::InputSyntax { given: given.clone() })?;
        if !names.contains(&name) {
            return Err(RunError::UnknownInput { name: name.into(), inputs: names.join(", ") }.into());
        }
        let tensor = read_input(Path::new(file), name)?;
        bound.push((name.to_string(), Array::from_tensor(&tensor, model)?));
    }
    for &v in &g.inputs {
        let value = g.value(v);
        if value.init.is_none() && !bound.iter().any(|(n, _)| *n == value.name) {
            let ty = value.ty.as_ref().map_or("?".to_string(), |t| t.to_string());
            return Err(RunError::MissingInput { name: value.name.clone(), ty }.into());
        }
    }
    let outputs = run_graph(model, &bound)?;
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
