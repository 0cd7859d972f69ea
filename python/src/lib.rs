//! `qc._qc`: the Python extension module of the `qc` package.
//!
//! The bindings call the library functions of the `qc` crate on in-memory models and convert at
//! the edges only: models in (a `Model`, a path, bytes or an `onnx.ModelProto`), numbers and
//! reports out. Reports the CLI writes as JSON cross as the same JSON text, which the Python
//! layer (`qc/__init__.py`) decodes, so the values are the CLI's by construction.
//!
//! Helpers a new binding reuses:
//! - [`errors::to_py_err`]: a miette diagnostic as a `qc.QcError` subclass (code, message,
//!   labels, help);
//! - [`errors::warn_all`]: diagnostics as Python warnings of category `qc.QcWarning`;
//! - [`interrupt::run_interruptible`]: Rust work on a worker thread with the GIL released,
//!   KeyboardInterrupt on Ctrl-C and an optional cancel flag;
//! - [`model::model_arg`]: a model argument (Model, path, bytes, ModelProto) with `input_shapes`.

mod errors;
mod evaluate;
mod interrupt;
mod model;
mod ops;
mod workload;

use pyo3::prelude::*;

#[pymodule]
fn _qc(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(py, m)?;
    m.add_class::<model::Model>()?;
    m.add_class::<workload::Workload>()?;
    m.add_function(wrap_pyfunction!(model::load, m)?)?;
    m.add_function(wrap_pyfunction!(ops::optimize, m)?)?;
    m.add_function(wrap_pyfunction!(ops::optimize_options, m)?)?;
    m.add_function(wrap_pyfunction!(ops::run, m)?)?;
    m.add_function(wrap_pyfunction!(ops::cost_json, m)?)?;
    m.add_function(wrap_pyfunction!(ops::check_json, m)?)?;
    m.add_function(wrap_pyfunction!(workload::lower, m)?)?;
    m.add_class::<evaluate::EvaluationReport>()?;
    m.add_class::<evaluate::SweepReport>()?;
    m.add_function(wrap_pyfunction!(evaluate::evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate::sweep, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate::accelerators, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate::write_text_atomically, m)?)?;
    m.add_function(wrap_pyfunction!(ops::cli_main, m)?)?;
    m.add_function(wrap_pyfunction!(interrupt::_sleep_for_test, m)?)?;
    Ok(())
}
