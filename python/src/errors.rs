//! qc's diagnostics as Python exceptions and warnings.
//!
//! Every error is a `qc.QcError` (or a subclass chosen by the code's family) with the attributes
//! `code` (`qc::area::name`), `message`, `help` (or `None`), `labels` (a list of
//! `{"label", "offset", "length"}` into the source the diagnostic is about) and `related` (the
//! messages of the diagnostics it groups). Warnings go through `warnings.warn` with the category
//! `qc.QcWarning`, their code leading the message.

use pyo3::exceptions::{PyException, PyUserWarning};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

pyo3::create_exception!(
    qc,
    QcError,
    PyException,
    "A qc diagnostic: `.code`, `.message`, `.help`, `.labels`, `.related`."
);
pyo3::create_exception!(
    qc,
    ModelError,
    QcError,
    "The model or its inputs: reading, decoding, verifying, shapes, input dims, running."
);
pyo3::create_exception!(
    qc,
    OptionError,
    QcError,
    "An option: a keyword argument, a pass pipeline, a lowering or search option."
);
pyo3::create_exception!(qc, TargetError, QcError, "A DLA target description (`qc.check`'s `target`).");
pyo3::create_exception!(qc, AcceleratorError, QcError, "An accelerator description.");
pyo3::create_exception!(qc, MappingError, QcError, "A mapping of a layer onto an accelerator.");
pyo3::create_exception!(qc, CostModelError, QcError, "The cost model's arithmetic (a count out of range).");
pyo3::create_exception!(qc, QcIOError, QcError, "Reading or writing a file.");
pyo3::create_exception!(qc, QcWarning, PyUserWarning, "A qc warning; the message starts with its code.");

/// Adds the exception and warning classes to the module.
pub fn register(py: Python<'_>, m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("QcError", py.get_type::<QcError>())?;
    m.add("ModelError", py.get_type::<ModelError>())?;
    m.add("OptionError", py.get_type::<OptionError>())?;
    m.add("TargetError", py.get_type::<TargetError>())?;
    m.add("AcceleratorError", py.get_type::<AcceleratorError>())?;
    m.add("MappingError", py.get_type::<MappingError>())?;
    m.add("CostModelError", py.get_type::<CostModelError>())?;
    m.add("QcIOError", py.get_type::<QcIOError>())?;
    m.add("QcWarning", py.get_type::<QcWarning>())?;
    Ok(())
}

/// The code families and their classes; a code in none of them is a plain `QcError`.
const FAMILIES: &[(&str, Family)] = &[
    ("qc::load::", Family::Model),
    ("qc::onnx::", Family::Model),
    ("qc::ir::", Family::Model),
    ("qc::verify::", Family::Model),
    ("qc::shape::", Family::Model),
    ("qc::input_shape::", Family::Model),
    ("qc::run::", Family::Model),
    ("qc::eval::", Family::Model),
    ("qc::npy::", Family::Model),
    ("qc::quant::", Family::Model),
    ("qc::datatypes::", Family::Model),
    ("qc::convert::", Family::Model),
    ("qc::zigzag::", Family::Model),
    ("qc::python::", Family::Option),
    ("qc::cli::", Family::Option),
    ("qc::pipeline::", Family::Option),
    ("qc::pass::", Family::Option),
    ("qc::lower::", Family::Option),
    ("qc::check::usage", Family::Option),
    ("qc::evaluate::", Family::Option),
    ("qc::search::", Family::Option),
    ("qc::sweep::", Family::Option),
    ("qc::target::", Family::Target),
    ("qc::accelerator::", Family::Accelerator),
    ("qc::spatial::", Family::Accelerator),
    ("qc::mapping::", Family::Mapping),
    ("qc::costmodel::", Family::CostModel),
    ("qc::io::", Family::Io),
];

#[derive(Clone, Copy)]
enum Family {
    Model,
    Option,
    Target,
    Accelerator,
    Mapping,
    CostModel,
    Io,
}

/// The class of an error with `code`.
fn class<'py>(py: Python<'py>, code: &str) -> Bound<'py, pyo3::types::PyType> {
    let family = FAMILIES.iter().find(|(prefix, _)| code.starts_with(prefix)).map(|(_, f)| *f);
    match family {
        Some(Family::Model) => py.get_type::<ModelError>(),
        Some(Family::Option) => py.get_type::<OptionError>(),
        Some(Family::Target) => py.get_type::<TargetError>(),
        Some(Family::Accelerator) => py.get_type::<AcceleratorError>(),
        Some(Family::Mapping) => py.get_type::<MappingError>(),
        Some(Family::CostModel) => py.get_type::<CostModelError>(),
        Some(Family::Io) => py.get_type::<QcIOError>(),
        None => py.get_type::<QcError>(),
    }
}

/// The parts of a diagnostic Python sees.
struct Parts {
    code: String,
    message: String,
    help: Option<String>,
    labels: Vec<(Option<String>, usize, usize)>,
    related: Vec<String>,
}

fn parts(d: &dyn miette::Diagnostic) -> Parts {
    let labels = d
        .labels()
        .map(|ls| ls.map(|l| (l.label().map(str::to_string), l.offset(), l.len())).collect())
        .unwrap_or_default();
    let related = d
        .related()
        .map(|rs| {
            rs.map(|r| match r.code() {
                Some(c) => format!("{r} [{c}]"),
                None => r.to_string(),
            })
            .collect()
        })
        .unwrap_or_default();
    Parts {
        code: d.code().map_or_else(|| "qc::error".to_string(), |c| c.to_string()),
        message: d.to_string(),
        help: d.help().map(|h| h.to_string()),
        labels,
        related,
    }
}

/// The exception's text: the message and its code, the grouped diagnostics, the help.
fn text(p: &Parts) -> String {
    let mut s = format!("{} [{}]", p.message, p.code);
    for r in &p.related {
        s.push_str("\n  - ");
        s.push_str(r);
    }
    if let Some(h) = &p.help {
        s.push_str("\nhelp: ");
        s.push_str(h);
    }
    s
}

/// A diagnostic as the `qc.QcError` subclass of its code family, with its attributes set.
pub fn to_py_err(report: miette::Report) -> PyErr {
    Python::attach(|py| {
        let p = parts(report.as_ref());
        let err = PyErr::from_type(class(py, &p.code), text(&p));
        if let Err(e) = set_attributes(py, &err, &p) {
            return e;
        }
        err
    })
}

fn set_attributes(py: Python<'_>, err: &PyErr, p: &Parts) -> PyResult<()> {
    let value = err.value(py);
    value.setattr("code", &p.code)?;
    value.setattr("message", &p.message)?;
    value.setattr("help", p.help.as_deref())?;
    let labels = PyList::empty(py);
    for (label, offset, length) in &p.labels {
        let d = PyDict::new(py);
        d.set_item("label", label.as_deref())?;
        d.set_item("offset", offset)?;
        d.set_item("length", length)?;
        labels.append(d)?;
    }
    value.setattr("labels", labels)?;
    value.setattr("related", PyList::new(py, &p.related)?)?;
    Ok(())
}

/// A binding's own error (bad argument types, unknown keywords): an `OptionError` unless the
/// code says otherwise.
pub fn error(code: &str, message: impl Into<String>, help: impl Into<String>) -> PyErr {
    let message = message.into();
    let help = help.into();
    to_py_err(miette::miette!(code = code.to_string(), help = help, "{message}"))
}

/// Extension for results of the library.
pub trait IntoPy<T> {
    fn py_err(self) -> PyResult<T>;
}

impl<T, E: Into<miette::Report>> IntoPy<T> for Result<T, E> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(|e| to_py_err(e.into()))
    }
}

/// Issues each diagnostic as a Python warning of category `qc.QcWarning`.
pub fn warn_all(py: Python<'_>, warnings: &[miette::Report]) -> PyResult<()> {
    let category = py.get_type::<QcWarning>();
    for w in warnings {
        let p = parts(w.as_ref());
        let text = match &p.help {
            Some(h) => format!("[{}] {} (help: {h})", p.code, p.message),
            None => format!("[{}] {}", p.code, p.message),
        };
        let message = std::ffi::CString::new(text.replace('\0', " ")).expect("no NUL left");
        PyErr::warn(py, &category, &message, 2)?;
    }
    Ok(())
}

/// Decodes JSON text the library wrote into Python objects.
pub fn json_loads<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?.call_method1("loads", (text,))
}
