//! `qc.Model` and the conversion of model arguments.
//!
//! Every function that takes a model takes a `Model`, a path (`str` or `os.PathLike`), the
//! serialized bytes (`bytes`, `bytearray`, `memoryview`) or an object with `SerializeToString()`
//! (an `onnx.ModelProto`, found by duck typing, so the `onnx` package is never needed), and
//! `input_shapes={"x": [1, 3, 224, 224]}`, the CLI's `--overwrite-input-shape`.

use std::path::PathBuf;
use std::sync::Arc;

use prost::Message as _;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyString};
use qc::input_shapes::InputShapeArgs;
use qc::load::{LoadOptions, Loaded};

use crate::errors::{IntoPy, error, warn_all};

/// A loaded model: the IR and what loading learnt (file name and size, external data files,
/// load warnings). Immutable: functions that change a model return a new one.
pub struct ModelData {
    pub model: qc_ir::Model,
    /// The file name reports show (`<bytes>` for a model given as bytes).
    pub file: String,
    /// The folder external data is relative to.
    pub dir: Option<PathBuf>,
    pub file_bytes: u64,
    pub external_files: Vec<qc::load::ExternalFile>,
    pub warnings: Vec<qc::diagnostics::LoadWarning>,
}

impl ModelData {
    /// The same model with another IR.
    pub fn with_model(&self, model: qc_ir::Model) -> ModelData {
        ModelData {
            model,
            file: self.file.clone(),
            dir: self.dir.clone(),
            file_bytes: self.file_bytes,
            external_files: self.external_files.clone(),
            warnings: self.warnings.clone(),
        }
    }

    fn loaded(&self) -> Loaded {
        Loaded {
            model: self.model.clone(),
            warnings: self.warnings.clone(),
            file_bytes: self.file_bytes,
            external_files: self.external_files.clone(),
        }
    }
}

/// An ONNX or QONNX model held by qc.
#[pyclass(frozen, module = "qc")]
pub struct Model {
    pub data: Arc<ModelData>,
}

#[pymethods]
impl Model {
    /// Writes the model to `path` as `qc optimize -o` does: atomically, with tensor data stored
    /// outside the model copied or linked beside it.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        let data = self.data.clone();
        crate::interrupt::run_interruptible(py, None, move || {
            let mut model = data.model.clone();
            qc_passes::opset::raise_ir_for_initializers(&mut model);
            qc::write::write_model(&mut model, &path, data.dir.as_deref(), qc::write::MAX_INLINE_BYTES)
                .map_err(|e| {
                    miette::miette!(
                        code = "qc::io::write",
                        help = "check that the output's folder exists and is writable",
                        "cannot write `{}`: {e}",
                        path.display()
                    )
                })
                .map(|_| ())
        })?
        .py_err()
    }

    /// The model serialized as an ONNX `ModelProto`. Tensors stored in external data files stay
    /// references to those files.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let mut model = self.data.model.clone();
        qc_passes::opset::raise_ir_for_initializers(&mut model);
        let bytes = qc::onnx::export::export_model(&model).encode_to_vec();
        PyBytes::new(py, &bytes)
    }

    /// The `qc inspect --format json` report as a dict (`quant=True`: `--quant`).
    #[pyo3(signature = (quant=false))]
    fn inspect<'py>(&self, py: Python<'py>, quant: bool) -> PyResult<Bound<'py, PyAny>> {
        crate::errors::json_loads(py, &self.inspect_json(quant)?)
    }

    /// The `qc inspect --format json` report as JSON text (`quant`: `--quant`).
    #[pyo3(signature = (quant=false))]
    fn inspect_json(&self, quant: bool) -> PyResult<String> {
        let report = qc::inspect::report(&self.data.loaded(), &self.data.file, quant).py_err()?;
        let mut s = serde_json::to_string_pretty(&report).map_err(|e| {
            error("qc::internal::json", format!("cannot write the report: {e}"), "a bug in qc")
        })?;
        s.push('\n');
        Ok(s)
    }

    /// The names of the graph inputs that need a value (initializers left out).
    #[getter]
    fn inputs(&self) -> Vec<String> {
        let g = &self.data.model.graph;
        g.inputs.iter().map(|&v| g.value(v)).filter(|v| v.init.is_none()).map(|v| v.name.clone()).collect()
    }

    /// The names of the graph outputs.
    #[getter]
    fn outputs(&self) -> Vec<String> {
        let g = &self.data.model.graph;
        g.outputs.iter().map(|&v| g.value(v).name.clone()).collect()
    }

    /// The file the model was read from (`<bytes>` when it came as bytes).
    #[getter]
    fn file(&self) -> String {
        self.data.file.clone()
    }

    fn __repr__(&self) -> String {
        format!(
            "<qc.Model {:?}: {} nodes, inputs {:?}, outputs {:?}>",
            self.data.file,
            self.data.model.graph.op_count(),
            self.inputs(),
            self.outputs()
        )
    }
}

/// `input_shapes` as `--overwrite-input-shape` specs (`name:1,3,224,224`); a dim is an int or a
/// name (`"N"`, `"?"`).
pub fn shape_specs(input_shapes: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<String>> {
    let Some(shapes) = input_shapes.filter(|s| !s.is_none()) else { return Ok(Vec::new()) };
    let bad = || {
        error(
            "qc::python::input_shapes",
            format!("input_shapes must map input names to lists of dims, not {}", type_name(shapes)),
            "write input_shapes={\"x\": [1, 3, 224, 224]}; a dim may be an int or a name such as \"N\"",
        )
    };
    let dict = shapes.cast::<PyDict>().map_err(|_| bad())?;
    let mut specs = Vec::new();
    for (name, dims) in dict.iter() {
        let name: String = name.extract().map_err(|_| bad())?;
        let mut parts = Vec::new();
        for d in dims.try_iter().map_err(|_| bad())? {
            let d = d?;
            if let Ok(s) = d.cast::<PyString>() {
                parts.push(s.to_string());
            } else if let Ok(i) = d.extract::<i64>() {
                parts.push(i.to_string());
            } else {
                return Err(bad());
            }
        }
        specs.push(format!("{name}:{}", parts.join(",")));
    }
    Ok(specs)
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type().name().map_or_else(|_| "?".to_string(), |n| n.to_string())
}

/// Reads a model argument, applies `input_shapes`, and issues the load warnings that
/// `input_shapes` does not answer.
pub fn model_arg(
    py: Python<'_>,
    obj: &Bound<'_, PyAny>,
    input_shapes: Option<&Bound<'_, PyAny>>,
) -> PyResult<Arc<ModelData>> {
    let specs = shape_specs(input_shapes)?;
    let shapes = InputShapeArgs { overwrite_input_shape: specs, assume_dims: None };
    if let Ok(m) = obj.cast::<Model>() {
        let data = m.get().data.clone();
        if shapes.overwrite_input_shape.is_empty() {
            return Ok(data);
        }
        let mut model = data.model.clone();
        shapes.apply(&mut model).py_err()?;
        return Ok(Arc::new(data.with_model(model)));
    }
    enum Source {
        Path(PathBuf),
        Bytes(Vec<u8>),
    }
    let source = if let Ok(b) = obj.cast::<PyBytes>() {
        Source::Bytes(b.as_bytes().to_vec())
    } else if let Ok(b) = obj.cast::<PyByteArray>() {
        Source::Bytes(b.to_vec())
    } else if obj.is_instance_of::<pyo3::types::PyMemoryView>() {
        Source::Bytes(obj.call_method0("tobytes")?.cast::<PyBytes>()?.as_bytes().to_vec())
    } else if let Ok(p) = obj.extract::<PathBuf>() {
        Source::Path(p)
    } else if obj.hasattr("SerializeToString")? {
        let b = obj.call_method0("SerializeToString")?;
        let b = b.cast::<PyBytes>().map_err(|_| {
            error(
                "qc::python::model",
                "SerializeToString() did not return bytes",
                "pass an onnx.ModelProto, the model's bytes or its path",
            )
        })?;
        Source::Bytes(b.as_bytes().to_vec())
    } else {
        return Err(error(
            "qc::python::model",
            format!("a model is a qc.Model, a path, bytes or an onnx.ModelProto, not {}", type_name(obj)),
            "pass qc.load(...), the path of an .onnx file, its bytes, or an onnx.ModelProto",
        ));
    };
    let loaded = crate::interrupt::run_interruptible(py, None, move || {
        let opts = LoadOptions { mmap: true };
        match source {
            Source::Path(p) => qc::load::load(&p, opts).map(|l| (l, p.display().to_string(), dir_of(&p))),
            Source::Bytes(b) => qc::load::load_bytes(bytes::Bytes::from(b), "<bytes>", None, opts)
                .map(|l| (l, "<bytes>".into(), None)),
        }
    })?;
    let (mut loaded, file, dir) = loaded.py_err()?;
    warn_all(py, &shapes.unanswered(&loaded.warnings))?;
    shapes.apply(&mut loaded.model).py_err()?;
    Ok(Arc::new(ModelData {
        model: loaded.model,
        file,
        dir,
        file_bytes: loaded.file_bytes,
        external_files: loaded.external_files,
        warnings: loaded.warnings,
    }))
}

fn dir_of(p: &std::path::Path) -> Option<PathBuf> {
    p.parent().map(|d| if d.as_os_str().is_empty() { PathBuf::from(".") } else { d.to_path_buf() })
}

/// `qc.load(source, input_shapes=None) -> Model`.
#[pyfunction]
#[pyo3(signature = (source, input_shapes=None))]
pub fn load(
    py: Python<'_>,
    source: &Bound<'_, PyAny>,
    input_shapes: Option<&Bound<'_, PyAny>>,
) -> PyResult<Model> {
    Ok(Model { data: model_arg(py, source, input_shapes)? })
}
