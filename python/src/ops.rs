//! `qc.optimize`, `qc.run`, `qc.cost`, `qc.check` and the `qc` command.

use std::ffi::OsString;
use std::sync::Arc;

use numpy::{PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use qc::shape_errors::ShapeErrorArgs;
use qc_ir::{ElemType, Tensor, TensorData};
use qc_passes::eval::{Array, Data};

use crate::errors::{IntoPy, error, warn_all};
use crate::interrupt::run_interruptible;
use crate::model::{Model, model_arg};

/// The keyword options of `qc.optimize`: the `qc optimize` flags, by their Kneron names.
const OPTIMIZE_OPTIONS: [&str; 14] = [
    "fold_quant_weights",
    "clear_descriptions",
    "replace_avgpool_with_conv",
    "duplicate_shared_weights",
    "skip_fuse_qkv",
    "verify_each",
    "stop_after",
    "allow_shape_errors",
    "skip",
    "clear_shapes",
    "convert_f16",
    "defuse_gaps",
    "replace_dilated_conv",
    "opt_matmul",
];

/// The names `qc.optimize` takes as keyword options.
#[pyfunction]
pub fn optimize_options() -> Vec<&'static str> {
    OPTIMIZE_OPTIONS.to_vec()
}

fn flag(options: &Bound<'_, PyDict>, key: &str) -> PyResult<bool> {
    match options.get_item(key)? {
        None => Ok(false),
        Some(v) => v.extract::<bool>().map_err(|_| {
            error("qc::python::option", format!("`{key}` must be True or False"), format!("write {key}=True"))
        }),
    }
}

/// Kneron's `skipped_optimizers`, `clear_shapes`, `convert_f16`, `defuse_gaps`,
/// `replace_dilated_conv` and `opt_matmul` keywords, read into `args`.
fn kneron_options(options: &Bound<'_, PyDict>, args: &mut qc::optimize::OptimizeArgs) -> PyResult<()> {
    args.clear_shapes = flag(options, "clear_shapes")?;
    args.convert_f16 = flag(options, "convert_f16")?;
    args.replace_dilated_conv = flag(options, "replace_dilated_conv")?;
    if let Some(v) = options.get_item("skip")?
        && !v.is_none()
    {
        if v.is_instance_of::<PyString>() {
            return Err(error(
                "qc::python::option",
                "`skip` must be a list of pass names, not one string",
                "write skip=[\"fuse-pad-into-conv\"]",
            ));
        }
        args.skip = v.extract::<Vec<String>>().map_err(|_| {
            error(
                "qc::python::option",
                "`skip` must be a list of pass names",
                "write skip=[\"fuse-pad-into-conv\"]",
            )
        })?;
    }
    // `True` (the flag's default value), `False`/`None` (off), or the flag's value as text.
    let valued = |key: &str, default: &str, hint: &str| -> PyResult<Option<String>> {
        match options.get_item(key)? {
            None => Ok(None),
            Some(v) if v.is_none() => Ok(None),
            Some(v) => {
                if let Ok(b) = v.extract::<bool>() {
                    return Ok(b.then(|| default.to_string()));
                }
                v.extract::<String>().map(Some).map_err(|_| {
                    error(
                        "qc::python::option",
                        format!("`{key}` must be True, False or a string"),
                        hint.to_string(),
                    )
                })
            }
        }
    };
    args.defuse_gaps =
        valued("defuse_gaps", "reduce-mean", "write defuse_gaps=True or defuse_gaps=\"average-pool\"")?;
    args.opt_matmul =
        valued("opt_matmul", "access-dla", "write opt_matmul=True or opt_matmul=\"access-dla\"")?;
    Ok(())
}

/// `qc.optimize(model, passes=None, input_shapes=None, **options) -> Model`.
#[pyfunction]
#[pyo3(signature = (model, passes=None, input_shapes=None, **options))]
pub fn optimize(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    passes: Option<String>,
    input_shapes: Option<&Bound<'_, PyAny>>,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<Model> {
    let mut args = qc::optimize::OptimizeArgs { passes, ..Default::default() };
    if let Some(options) = options {
        for key in options.keys() {
            let key: String = key.extract()?;
            if !OPTIMIZE_OPTIONS.contains(&key.as_str()) {
                return Err(error(
                    "qc::python::option",
                    format!("qc.optimize has no option `{key}`"),
                    format!("the options are: {}", OPTIMIZE_OPTIONS.join(", ")),
                ));
            }
        }
        args.fold_quant_weights = flag(options, "fold_quant_weights")?;
        args.clear_descriptions = flag(options, "clear_descriptions")?;
        args.replace_avgpool_with_conv = flag(options, "replace_avgpool_with_conv")?;
        args.duplicate_shared_weights = flag(options, "duplicate_shared_weights")?;
        args.skip_fuse_qkv = flag(options, "skip_fuse_qkv")?;
        args.verify_each = flag(options, "verify_each")?;
        args.shape_errors.allow_shape_errors = flag(options, "allow_shape_errors")?;
        kneron_options(options, &mut args)?;
        if let Some(v) = options.get_item("stop_after")?
            && !v.is_none()
        {
            args.stop_after = Some(v.extract::<String>().map_err(|_| {
                error(
                    "qc::python::option",
                    "`stop_after` must be a pass name",
                    "write stop_after=\"fold-constants\"",
                )
            })?);
        }
    }
    // The pipeline and its options are checked before the model is read.
    let (pipeline, skip_warnings) = qc::optimize::pipeline_with_warnings(&args).py_err()?;
    drop(qc::optimize::manager(pipeline.clone(), &args).py_err()?);
    let skip_warnings: Vec<miette::Report> = skip_warnings.into_iter().map(miette::Report::new).collect();
    warn_all(py, &skip_warnings)?;
    let data = model_arg(py, model, input_shapes)?;
    let source = data.clone();
    let (model, warnings) = run_interruptible(py, None, move || {
        let mut manager = qc::optimize::manager(pipeline, &args)?;
        let mut model = source.model.clone();
        let (report, _) =
            qc::optimize::optimize_model(&mut manager, &mut model, &args.shape_errors, &mut |_, _| {})?;
        let warnings: Vec<miette::Report> = report.warnings.into_iter().map(miette::Report::new).collect();
        Ok::<_, miette::Report>((model, warnings))
    })?
    .py_err()?;
    warn_all(py, &warnings)?;
    Ok(Model { data: Arc::new(data.with_model(model)) })
}

/// The IR element type of a NumPy dtype the evaluator takes.
fn elem_of(array: &Bound<'_, PyUntypedArray>) -> Option<ElemType> {
    let py = array.py();
    let dtype = array.dtype();
    use numpy::PyArrayDescrMethods;
    let types: [(ElemType, bool); 12] = [
        (ElemType::F32, dtype.is_equiv_to(&numpy::dtype::<f32>(py))),
        (ElemType::F64, dtype.is_equiv_to(&numpy::dtype::<f64>(py))),
        (ElemType::F16, dtype.is_equiv_to(&numpy::dtype::<half::f16>(py))),
        (ElemType::I8, dtype.is_equiv_to(&numpy::dtype::<i8>(py))),
        (ElemType::I16, dtype.is_equiv_to(&numpy::dtype::<i16>(py))),
        (ElemType::I32, dtype.is_equiv_to(&numpy::dtype::<i32>(py))),
        (ElemType::I64, dtype.is_equiv_to(&numpy::dtype::<i64>(py))),
        (ElemType::U8, dtype.is_equiv_to(&numpy::dtype::<u8>(py))),
        (ElemType::U16, dtype.is_equiv_to(&numpy::dtype::<u16>(py))),
        (ElemType::U32, dtype.is_equiv_to(&numpy::dtype::<u32>(py))),
        (ElemType::U64, dtype.is_equiv_to(&numpy::dtype::<u64>(py))),
        (ElemType::Bool, dtype.is_equiv_to(&numpy::dtype::<bool>(py))),
    ];
    types.iter().find(|(_, ok)| *ok).map(|(e, _)| *e)
}

/// The little-endian bytes of a C-contiguous array of `T`.
fn bytes_of<T: numpy::Element + Copy>(a: &Bound<'_, PyAny>, to_le: fn(T) -> Vec<u8>) -> PyResult<Vec<u8>> {
    let a = a.cast::<PyArrayDyn<T>>()?.readonly();
    let slice = a.as_slice().map_err(|e| {
        error(
            "qc::python::input",
            format!("the array is not contiguous: {e}"),
            "pass numpy.ascontiguousarray(a)",
        )
    })?;
    Ok(slice.iter().flat_map(|&x| to_le(x)).collect())
}

/// A NumPy array as an IR tensor named `name` (a copy of its elements, little-endian).
fn tensor_of(py: Python<'_>, name: &str, value: &Bound<'_, PyAny>) -> PyResult<Tensor> {
    let numpy = py.import("numpy")?;
    let array = numpy.call_method1("ascontiguousarray", (value,))?;
    let untyped = array.cast::<PyUntypedArray>()?;
    let Some(elem) = elem_of(untyped) else {
        let dtype = untyped.dtype().to_string();
        return Err(error(
            "qc::run::input_type",
            format!("graph input `{name}` is given as a numpy array of dtype {dtype}, which qc cannot run"),
            "give float16, float32, float64, int8 to int64, uint8 to uint64 or bool arrays",
        ));
    };
    let dims: Vec<i64> = untyped.shape().iter().map(|&d| d as i64).collect();
    let raw = match elem {
        ElemType::F32 => bytes_of::<f32>(&array, |x| x.to_le_bytes().to_vec())?,
        ElemType::F64 => bytes_of::<f64>(&array, |x| x.to_le_bytes().to_vec())?,
        ElemType::F16 => bytes_of::<half::f16>(&array, |x| x.to_le_bytes().to_vec())?,
        ElemType::I8 => bytes_of::<i8>(&array, |x| x.to_le_bytes().to_vec())?,
        ElemType::I16 => bytes_of::<i16>(&array, |x| x.to_le_bytes().to_vec())?,
        ElemType::I32 => bytes_of::<i32>(&array, |x| x.to_le_bytes().to_vec())?,
        ElemType::I64 => bytes_of::<i64>(&array, |x| x.to_le_bytes().to_vec())?,
        ElemType::U8 => bytes_of::<u8>(&array, |x| vec![x])?,
        ElemType::U16 => bytes_of::<u16>(&array, |x| x.to_le_bytes().to_vec())?,
        ElemType::U32 => bytes_of::<u32>(&array, |x| x.to_le_bytes().to_vec())?,
        ElemType::U64 => bytes_of::<u64>(&array, |x| x.to_le_bytes().to_vec())?,
        ElemType::Bool => bytes_of::<bool>(&array, |x| vec![u8::from(x)])?,
        _ => unreachable!("elem_of returns only the types above"),
    };
    Ok(Tensor {
        name: Some(name.to_string()),
        elem: Some(elem),
        dims,
        data: TensorData::Raw(bytes::Bytes::from(raw)),
        segment: None,
        doc_string: None,
        metadata: Vec::new(),
        explicit_default_location: false,
    })
}

/// An evaluator array as a NumPy array; the element vector is handed over without a copy.
fn to_numpy<'py>(py: Python<'py>, a: Array) -> PyResult<Bound<'py, PyAny>> {
    use numpy::PyArray;
    let dims = a.dims.clone();
    macro_rules! hand_over {
        ($v:expr) => {
            PyArray::from_vec(py, $v).reshape(dims)?.into_any()
        };
    }
    Ok(match a.data {
        Data::F32(v) => hand_over!(v),
        Data::F64(v) => hand_over!(v),
        Data::F16(v) => hand_over!(v),
        Data::I8(v) => hand_over!(v),
        Data::I16(v) => hand_over!(v),
        Data::I32(v) => hand_over!(v),
        Data::I64(v) => hand_over!(v),
        Data::U8(v) => hand_over!(v),
        Data::U16(v) => hand_over!(v),
        Data::U32(v) => hand_over!(v),
        Data::U64(v) => hand_over!(v),
        Data::Bool(v) => hand_over!(v),
        Data::BF16(v) => hand_over!(v.into_iter().map(f32::from).collect::<Vec<f32>>()),
        Data::Str(v) => {
            let numpy = py.import("numpy")?;
            let kwargs = PyDict::new(py);
            kwargs.set_item("dtype", "object")?;
            let flat = numpy.call_method("array", (v,), Some(&kwargs))?;
            flat.call_method1("reshape", (dims,))?
        }
    })
}

/// `qc.run(model, inputs, input_shapes=None) -> {name: numpy.ndarray}`.
#[pyfunction]
#[pyo3(signature = (model, inputs, input_shapes=None))]
pub fn run<'py>(
    py: Python<'py>,
    model: &Bound<'py, PyAny>,
    inputs: &Bound<'py, PyAny>,
    input_shapes: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let data = model_arg(py, model, input_shapes)?;
    let inputs = inputs.cast::<PyDict>().map_err(|_| {
        error(
            "qc::python::inputs",
            "inputs must be a dict of graph input names to numpy arrays",
            "write qc.run(model, {\"x\": numpy.zeros((1, 3, 8, 8), numpy.float32)})",
        )
    })?;
    let g = &data.model.graph;
    let names: Vec<&str> = g.inputs.iter().map(|&v| g.value(v).name.as_str()).collect();
    let mut problems = Vec::new();
    let mut given = Vec::new();
    for (name, value) in inputs.iter() {
        let name: String = name
            .cast::<PyString>()
            .map_err(|_| {
                error("qc::python::inputs", "input names must be strings", "key the dict by input names")
            })?
            .to_string();
        if !names.contains(&name.as_str()) {
            problems.push(qc::run::RunError::UnknownInput { name, inputs: names.join(", ") });
        } else {
            given.push((name.clone(), tensor_of(py, &name, &value)?));
        }
    }
    let source = data.clone();
    let outputs = run_interruptible(py, None, move || -> miette::Result<Vec<(String, Array)>> {
        let outputs = qc::run::run_model(&source.model, &given, problems, &source.file)?;
        let mut widened = Vec::with_capacity(outputs.len());
        for (name, a) in outputs {
            widened.push((name, qc::run::numpy_compatible(a)?));
        }
        Ok(widened)
    })?
    .py_err()?;
    let result = PyDict::new(py);
    for (name, a) in outputs {
        result.set_item(name, to_numpy(py, a)?)?;
    }
    Ok(result)
}

/// Checks that the model's input dims are known (`qc::input_shape::unknown_dims` otherwise).
fn resolve_dims(model: &mut qc_ir::Model) -> miette::Result<()> {
    qc::input_shapes::InputShapeArgs::default().resolve(model)?;
    Ok(())
}

/// `qc cost --format json` of a model as JSON text (the Python layer shapes it as qonnx's
/// `inference_cost` result).
#[pyfunction]
#[pyo3(signature = (model, cost_breakdown=false, discount_sparsity=true, extended=false, input_shapes=None, allow_shape_errors=false))]
pub fn cost_json(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    cost_breakdown: bool,
    discount_sparsity: bool,
    extended: bool,
    input_shapes: Option<&Bound<'_, PyAny>>,
    allow_shape_errors: bool,
) -> PyResult<String> {
    let data = model_arg(py, model, input_shapes)?;
    let (text, warnings) = run_interruptible(py, None, move || {
        let mut model = data.model.clone();
        resolve_dims(&mut model)?;
        let opts = qc_passes::cost::CostOptions { discount_sparsity, extended };
        let shape_errors = ShapeErrorArgs { allow_shape_errors };
        let (report, warnings) = qc::cost::cost_model(&mut model, &opts, &shape_errors)?;
        Ok::<_, miette::Report>((qc::cost::json(&data.file, &report, cost_breakdown), warnings))
    })?
    .py_err()?;
    warn_all(py, &warnings)?;
    Ok(text)
}

/// `qc check --format json` of a model as JSON text.
#[pyfunction]
#[pyo3(signature = (model, target="access-dla", input_shapes=None, allow_shape_errors=false))]
pub fn check_json(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    target: &str,
    input_shapes: Option<&Bound<'_, PyAny>>,
    allow_shape_errors: bool,
) -> PyResult<String> {
    let target = qc::targets::resolve(target).map_err(|e| crate::errors::to_py_err((*e).into()))?;
    let data = model_arg(py, model, input_shapes)?;
    let (text, warnings) = run_interruptible(py, None, move || {
        let mut model = data.model.clone();
        let shape_errors = ShapeErrorArgs { allow_shape_errors };
        let checked = qc::check::check_model(&mut model, &target, &shape_errors)?;
        Ok::<_, miette::Report>((qc::check::json(&data.file, &checked.report), checked.warnings))
    })?
    .py_err()?;
    warn_all(py, &warnings)?;
    Ok(text)
}

/// Runs the `qc` command line in this process: `args` are the arguments after the program name.
/// Standard output and error are the process's; returns the exit code. Ctrl-C is left to the
/// caller (the `qc` console script restores the default handler, which ends the process).
#[pyfunction]
pub fn cli_main(py: Python<'_>, args: Vec<OsString>) -> u8 {
    use std::io::IsTerminal;
    let mut argv = vec![OsString::from("qc")];
    argv.extend(args);
    py.detach(move || {
        let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let mut out = std::io::stdout().lock();
        let mut err = std::io::stderr().lock();
        let code = qc::cli::main_with(argv, &mut out, &mut err, color);
        use std::io::Write;
        let _ = out.flush();
        let _ = err.flush();
        code
    })
}
