//! `qc.lower` and `qc.Workload`: the loop nests of a model's compute layers.

use std::sync::Arc;

use pyo3::prelude::*;
use qc::shape_errors::ShapeErrorArgs;

use crate::errors::{IntoPy, warn_all};
use crate::interrupt::run_interruptible;
use crate::model::model_arg;

/// A lowered model: every compute layer as a loop nest with its dims, operand relations and
/// precisions (the workload `qc lower` writes).
#[pyclass(frozen, module = "qc")]
pub struct Workload {
    pub workload: Arc<qc_ir::Workload>,
    /// The model file the workload came from, as reports name it.
    pub file: String,
}

#[pymethods]
impl Workload {
    /// `qc lower --format json`: the layers, and the nodes not lowered.
    fn to_json(&self) -> String {
        qc::lower::json(&self.file, &self.workload)
    }

    /// `qc lower --format zigzag-yaml`: ZigZag's manual-workload YAML.
    fn to_zigzag_yaml(&self) -> String {
        qc_backends::zigzag::write_workload_yaml(&self.workload)
    }

    /// The layers as `qc lower --format json` lists them: name, op, dims, relations, operand
    /// precisions, ...
    #[getter]
    fn layers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let doc = crate::errors::json_loads(py, &self.to_json())?;
        doc.get_item("layers")
    }

    /// The number of layers.
    fn __len__(&self) -> usize {
        self.workload.layers.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "<qc.Workload {:?}: {} layers, {} nodes not lowered>",
            self.file,
            self.workload.layers.len(),
            self.workload.not_lowered.len()
        )
    }
}

/// `qc.lower(model, default_precision=None, psum_bits=None, input_shapes=None,
/// allow_shape_errors=False) -> Workload`: the options of `qc lower`.
#[pyfunction]
#[pyo3(signature = (model, default_precision=None, psum_bits=None, input_shapes=None, allow_shape_errors=false))]
pub fn lower(
    py: Python<'_>,
    model: &Bound<'_, PyAny>,
    default_precision: Option<String>,
    psum_bits: Option<String>,
    input_shapes: Option<&Bound<'_, PyAny>>,
    allow_shape_errors: bool,
) -> PyResult<Workload> {
    let options = qc::lower::pipeline_options(default_precision.as_deref(), psum_bits.as_deref()).py_err()?;
    let data = model_arg(py, model, input_shapes)?;
    let file = data.file.clone();
    let lowered = run_interruptible(py, None, move || {
        let mut model = data.model.clone();
        qc::input_shapes::InputShapeArgs::default().resolve(&mut model)?;
        let shape_errors = ShapeErrorArgs { allow_shape_errors };
        qc::lower::lower_model(model, &options, &shape_errors, &qc::lower::Before::default())
    })?
    .py_err()?;
    warn_all(py, &lowered.warnings)?;
    Ok(Workload { workload: Arc::new(lowered.workload), file })
}
