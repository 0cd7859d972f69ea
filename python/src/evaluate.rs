//! `qc.evaluate` and `qc.sweep`: energy and latency of a workload on accelerators, with the
//! options of `qc evaluate` and `qc sweep` as keyword arguments.
//!
//! The workload is planned as the CLI plans it (`qc::evaluate::Plan`), the designs are read as
//! its `--accelerator`, `--mapping` and `--compare` are (`qc::evaluate::design_input`), and the
//! reports are the CLI's (`qc::evaluate::Evaluated`), so the numbers and the JSON are the
//! command's by construction. Searches run on a worker thread with the GIL released; Ctrl-C sets
//! the search's cancel flag.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use qc::evaluate::{DesignInput, Evaluated, Plan};
use qc::lower::{Before, Lowered};
use qc::shape_errors::ShapeErrorArgs;
use qc_backends::cost::{LatencyModel, MappingType};
use qc_backends::locality::LocalityOptions;
use qc_backends::network::{Cancel, EvaluateOptions, SearchSettings, parse_duration};
use qc_backends::search::Objective;
use qc_backends::search::optimal::{DEFAULT_BUDGET, OptimalSettings};

use crate::errors::{IntoPy, error, warn_all};
use crate::interrupt::run_interruptible;
use crate::model::model_arg;
use crate::workload::Workload;

fn option_error(message: String, help: &str) -> PyErr {
    error("qc::evaluate::option", message, help)
}

/// The keyword options of a search or a fixed mapping, as `qc evaluate`'s flags give them.
pub struct SearchKwargs<'py> {
    pub opt: String,
    pub fixed_mapping: bool,
    /// `None`: no merging.
    pub lpf_limit: Option<Bound<'py, PyAny>>,
    pub spatial_mappings: Bound<'py, PyAny>,
    pub mixed: bool,
    pub search_budget: Option<Bound<'py, PyAny>>,
    pub mapping_type: String,
    pub latency_model: String,
    pub all_layers: bool,
    pub exploit_data_locality: bool,
    pub data_from_top_memory: bool,
    pub jobs: Option<usize>,
}

/// Takes the options out of the dict the Python layer passes (every keyword of `qc.evaluate` or
/// `qc.sweep`, with its default); what is left at the end is an unknown option.
struct Options<'py>(Bound<'py, PyDict>);

impl<'py> Options<'py> {
    fn take<T: for<'a> FromPyObject<'a, 'py>>(&self, key: &str) -> PyResult<T> {
        let value = self.0.get_item(key)?.ok_or_else(|| {
            error(
                "qc::python::option",
                format!("the option `{key}` is missing"),
                "call qc.evaluate or qc.sweep, which give every option",
            )
        })?;
        self.0.del_item(key)?;
        value.extract().map_err(|_| {
            error(
                "qc::python::option",
                format!("`{key}` has the wrong type: {}", type_name(&value)),
                "see spec/python.md for the type of each option",
            )
        })
    }

    fn take_any(&self, key: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
        let value = self.0.get_item(key)?;
        self.0.del_item(key).ok();
        Ok(value.filter(|v| !v.is_none()))
    }

    /// Refuses what was not taken.
    fn done(self) -> PyResult<()> {
        match self.0.keys().iter().next() {
            None => Ok(()),
            Some(k) => Err(error(
                "qc::python::option",
                format!("no option `{k}`"),
                "see spec/python.md for the keywords of qc.evaluate and qc.sweep",
            )),
        }
    }

    fn search(&self, fixed_mapping: bool) -> PyResult<SearchKwargs<'py>> {
        Ok(SearchKwargs {
            opt: self.take("opt")?,
            fixed_mapping,
            lpf_limit: self.take_any("lpf_limit")?,
            spatial_mappings: self.take_any("spatial_mappings")?.ok_or_else(|| {
                option_error(
                    "spatial_mappings=None is not valid".into(),
                    "give a number (1 or more) or \"all\"",
                )
            })?,
            mixed: self.take("mixed")?,
            search_budget: self.take_any("search_budget")?,
            mapping_type: self.take("mapping_type")?,
            latency_model: self.take("latency_model")?,
            all_layers: self.take("all_layers")?,
            exploit_data_locality: self.take("exploit_data_locality")?,
            data_from_top_memory: self.take("data_from_top_memory")?,
            jobs: self.take("jobs")?,
        })
    }

    fn workload(&self, optimize: bool, target: Option<String>) -> PyResult<WorkloadKwargs<'py>> {
        Ok(WorkloadKwargs {
            input_shapes: self.take_any("input_shapes")?,
            assume_dims: self.take("assume_dims")?,
            default_precision: self.take("default_precision")?,
            psum_bits: self
                .take::<Option<Bound<'py, PyAny>>>("psum_bits")?
                .map(|p| p.str().map(|s| s.to_string()))
                .transpose()?,
            allow_shape_errors: self.take("allow_shape_errors")?,
            optimize,
            target,
        })
    }
}

impl SearchKwargs<'_> {
    /// The options, and the search budget as the reports write it.
    fn options(&self) -> PyResult<(EvaluateOptions, Option<String>)> {
        let latency_model = match self.latency_model.as_str() {
            "zigzag-3.9.1" => LatencyModel::Zigzag391,
            "zigzag-3d12a96" => LatencyModel::Zigzag3d12a96,
            other => {
                return Err(option_error(
                    format!("latency_model={other:?} is not a latency model"),
                    "give \"zigzag-3.9.1\" (the default, ZigZag's release on PyPI) or \"zigzag-3d12a96\"",
                ));
            }
        };
        let mapping_type = match self.mapping_type.as_str() {
            "uneven" => MappingType::Uneven,
            "even" => MappingType::Even,
            other => {
                return Err(option_error(
                    format!("mapping_type={other:?} is not a temporal mapping type"),
                    "give \"uneven\" (the default, ZigZag's) or \"even\"",
                ));
            }
        };
        if self.data_from_top_memory && !self.exploit_data_locality {
            return Err(option_error(
                "data_from_top_memory=True needs exploit_data_locality=True".into(),
                "add exploit_data_locality=True, or drop data_from_top_memory",
            ));
        }
        let mut opts = EvaluateOptions {
            search: None,
            latency_model,
            mapping_type,
            all_layers: self.all_layers,
            locality: self
                .exploit_data_locality
                .then_some(LocalityOptions { data_from_top_memory: self.data_from_top_memory }),
            jobs: None,
            cancel: None,
            optimal: None,
        };
        if self.fixed_mapping {
            return Ok((opts, None));
        }
        let objective = match self.opt.as_str() {
            "energy" => Objective::Energy,
            "latency" => Objective::Latency,
            "edp" => Objective::Edp,
            other => {
                return Err(option_error(
                    format!("opt={other:?} is not an objective"),
                    "give \"energy\", \"latency\" or \"edp\"",
                ));
            }
        };
        let lpf_limit = match &self.lpf_limit {
            None => None,
            Some(v) if v.extract::<String>().is_ok_and(|s| s == "none") => None,
            Some(v) => Some(v.extract::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                option_error(
                    format!("lpf_limit={} is not valid", v.repr().map_or("?".into(), |r| r.to_string())),
                    "give a number of loop prime factors (1 or more; ZigZag's default is 6), or None for no merging",
                )
            })?),
        };
        let s = &self.spatial_mappings;
        let spatial_mappings = if s.extract::<String>().is_ok_and(|s| s == "all") {
            None
        } else {
            Some(s.extract::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                option_error(
                    format!(
                        "spatial_mappings={} is not valid",
                        s.repr().map_or("?".into(), |r| r.to_string())
                    ),
                    "give how many of ZigZag's best spatial mappings to search (1 or more), or \"all\"",
                )
            })?)
        };
        let (budget, budget_text) = match &self.search_budget {
            None => (None, None),
            Some(b) => {
                let bad = || {
                    option_error(
                        format!(
                            "search_budget={} is not a duration",
                            b.repr().map_or("?".into(), |r| r.to_string())
                        ),
                        "give seconds as a number (60, 0.5) or a duration text such as \"500ms\", \"60s\", \"2m\"",
                    )
                };
                if let Ok(text) = b.extract::<String>() {
                    (Some(parse_duration(&text).ok_or_else(bad)?), Some(text))
                } else {
                    let secs = b.extract::<f64>().map_err(|_| bad())?;
                    let d = std::time::Duration::try_from_secs_f64(secs).map_err(|_| bad())?;
                    (Some(d), Some(format!("{secs}s")))
                }
            }
        };
        if self.jobs == Some(0) {
            return Err(option_error(
                "jobs=0 is not valid".into(),
                "give 1 or more threads, or None (one per core)",
            ));
        }
        opts.search =
            Some(SearchSettings { objective, lpf_limit, spatial_mappings, mixed: self.mixed, budget });
        opts.jobs = self.jobs;
        Ok((opts, budget_text))
    }
}

/// How to read a model argument into a workload.
pub struct WorkloadKwargs<'py> {
    pub input_shapes: Option<Bound<'py, PyAny>>,
    pub assume_dims: Option<u64>,
    pub default_precision: Option<String>,
    pub psum_bits: Option<String>,
    pub allow_shape_errors: bool,
    pub optimize: bool,
    pub target: Option<String>,
}

/// A workload argument planned: the plan, its load and lowering warnings, and the model file's
/// name and size (a sweep's fingerprint covers them).
struct Planned {
    plan: Plan,
    warnings: Vec<miette::Report>,
    model_key: (String, u64),
}

fn file_name(file: &str) -> String {
    std::path::Path::new(file).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn is_yaml_path(obj: &Bound<'_, PyAny>) -> Option<PathBuf> {
    if obj.is_instance_of::<pyo3::types::PyBytes>() {
        return None;
    }
    let p = obj.extract::<PathBuf>().ok()?;
    p.extension().is_some_and(|e| e == "yaml" || e == "yml").then_some(p)
}

/// Plans a model, a `qc.Workload` or a ZigZag workload YAML path.
fn plan_of(
    py: Python<'_>,
    obj: &Bound<'_, PyAny>,
    w: &WorkloadKwargs<'_>,
    all_layers: bool,
) -> PyResult<Planned> {
    let graph_options = w.optimize || w.target.is_some();
    let refuse_graph_options = |what: &str| {
        option_error(
            format!("{what} has no graph to optimize or place: optimize and target work on the ONNX model"),
            "give the ONNX model (a path, bytes, a qc.Model or an onnx.ModelProto) instead",
        )
    };
    let bare = |workload: qc_ir::Workload| Lowered {
        workload,
        warnings: Vec::new(),
        assumed: Vec::new(),
        placement: None,
        optimized: Vec::new(),
    };
    if let Ok(wl) = obj.cast::<Workload>() {
        if graph_options {
            return Err(refuse_graph_options("a qc.Workload"));
        }
        let wl = wl.get();
        let (plan, warnings) =
            Plan::new(bare((*wl.workload).clone()), wl.file.clone(), false, all_layers).py_err()?;
        return Ok(Planned { plan, warnings, model_key: (file_name(&wl.file), 0) });
    }
    if let Some(path) = is_yaml_path(obj) {
        let file = path.display().to_string();
        if graph_options {
            return Err(refuse_graph_options(&format!("`{file}`, a ZigZag workload YAML,")));
        }
        let (_, text) = read_named(&path)?;
        let workload = qc::lower::yaml_workload(&text, &file).py_err()?;
        let (plan, warnings) = Plan::new(bare(workload), file.clone(), true, all_layers).py_err()?;
        return Ok(Planned { plan, warnings, model_key: (file_name(&file), text.len() as u64) });
    }
    let options =
        qc::lower::pipeline_options(w.default_precision.as_deref(), w.psum_bits.as_deref()).py_err()?;
    let target = w
        .target
        .as_deref()
        .map(qc::targets::resolve)
        .transpose()
        .map_err(|e| crate::errors::to_py_err((*e).into()))?;
    let data = model_arg(py, obj, w.input_shapes.as_ref())?;
    let model_key = (file_name(&data.file), data.file_bytes);
    let assume =
        qc::input_shapes::InputShapeArgs { overwrite_input_shape: Vec::new(), assume_dims: w.assume_dims };
    let shape_errors = ShapeErrorArgs { allow_shape_errors: w.allow_shape_errors };
    let optimize = w.optimize;
    let planned = run_interruptible(py, None, move || {
        let mut model = data.model.clone();
        let assumed = assume.resolve(&mut model)?;
        let mut lowered =
            qc::lower::lower_model(model, &options, &shape_errors, &Before { optimize, target })?;
        lowered.assumed = assumed;
        Plan::new(lowered, data.file.clone(), false, all_layers)
    })?
    .py_err()?;
    let (plan, mut warnings) = planned;
    if let Some(line) = qc::input_shapes::assumptions_line(&plan.assumed) {
        warnings.push(miette::miette!(
            severity = miette::Severity::Advice,
            code = "qc::input_shape::assumed",
            "{line}"
        ));
    }
    Ok(Planned { plan, warnings, model_key })
}

/// An accelerator argument: a built-in name, or a path (`str` or `os.PathLike`).
fn accelerator_spec(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = obj.extract::<String>() {
        return Ok(s);
    }
    if let Ok(p) = obj.extract::<PathBuf>() {
        let s = p.display().to_string();
        // A path given as a path object is a path even without a directory part.
        return Ok(if qc::accelerators::is_path(&s) { s } else { format!("./{s}") });
    }
    Err(error(
        "qc::python::option",
        format!("an accelerator is a built-in name or a path, not {}", type_name(obj)),
        "give a name from qc.accelerators() or the path of an accelerator YAML",
    ))
}

/// The file at `path`: its name as diagnostics give it, and its text.
fn read_named(path: &std::path::Path) -> PyResult<(String, String)> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        crate::errors::to_py_err(miette::miette!(code = "qc::io::read", "cannot read `{name}`: {e}"))
    })?;
    Ok((name, text))
}

fn path_arg(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<PathBuf> {
    obj.extract::<PathBuf>().map_err(|_| {
        error(
            "qc::python::option",
            format!("`{what}` is a path, not {}", type_name(obj)),
            "give a str or os.PathLike path",
        )
    })
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type().name().map_or_else(|_| "?".to_string(), |n| n.to_string())
}

/// The designs: `accelerator` with `mapping`, then each of `compare` (a name or path, with
/// `mapping`; or an `(accelerator, mapping)` pair).
fn designs(
    accelerator: Option<&Bound<'_, PyAny>>,
    mapping: Option<&Bound<'_, PyAny>>,
    compare: Option<&Bound<'_, PyAny>>,
    fixed_mapping: bool,
) -> PyResult<Vec<DesignInput>> {
    let mapping = mapping.map(|m| path_arg(m, "mapping")).transpose()?;
    let acc = accelerator.map(accelerator_spec).transpose()?;
    let mut specs: Vec<(Option<String>, Option<PathBuf>)> = vec![(acc, mapping.clone())];
    if let Some(compare) = compare {
        if compare.is_instance_of::<PyString>() {
            return Err(error(
                "qc::python::option",
                "`compare` is a list of designs, not one string",
                "write compare=[\"edge_tpu_like\"] or compare=[(\"my_acc.yaml\", \"my_map.yaml\")]",
            ));
        }
        for item in compare.try_iter()? {
            let item = item?;
            if let Ok(t) = item.cast::<PyTuple>() {
                if t.len() != 2 {
                    return Err(error(
                        "qc::python::option",
                        format!("a `compare` pair is (accelerator, mapping), not {} items", t.len()),
                        "write (\"my_acc.yaml\", \"my_map.yaml\")",
                    ));
                }
                specs.push((
                    Some(accelerator_spec(&t.get_item(0)?)?),
                    Some(path_arg(&t.get_item(1)?, "mapping")?),
                ));
            } else {
                specs.push((Some(accelerator_spec(&item)?), mapping.clone()));
            }
        }
    }
    specs
        .into_iter()
        .map(|(acc, map)| qc::evaluate::design_input(acc.as_deref(), map.as_deref(), fixed_mapping).py_err())
        .collect()
}

/// The evaluated reports of `qc.evaluate`, in every format of `qc evaluate`.
#[pyclass(frozen, module = "qc._qc")]
pub struct EvaluationReport {
    evaluated: Arc<Evaluated>,
}

#[pymethods]
impl EvaluationReport {
    /// `qc evaluate --format json`.
    fn to_json(&self) -> String {
        self.evaluated.json()
    }

    /// `qc evaluate --format html`.
    fn to_html(&self) -> String {
        self.evaluated.html()
    }

    /// `qc evaluate --format md`.
    fn to_markdown(&self) -> String {
        self.evaluated.markdown()
    }

    /// `qc evaluate` (text), `width` columns wide, without colour.
    #[pyo3(signature = (width=120))]
    fn to_text(&self, width: usize) -> String {
        self.evaluated.text(width, false)
    }

    /// Whether every layer found a mapping on every design.
    #[getter]
    fn all_fit(&self) -> bool {
        self.evaluated.all_fit()
    }
}

/// Writes `text` to `path` whole or not at all.
#[pyfunction]
pub fn write_text_atomically(path: PathBuf, text: &str) -> PyResult<()> {
    qc::write::write_atomically(&path, text.as_bytes()).map_err(|e| {
        error(
            "qc::io::write",
            format!("cannot write `{}`: {e}", path.display()),
            "check that the directory exists and is writable",
        )
    })
}

/// `qc.evaluate`'s `optimal`, `optimal_budget` and `optimal_gap` (`--optimal`,
/// `--optimal-budget`, `--optimal-gap`): the settings of the exact search, or `None` without it.
fn optimal_settings(o: &Options<'_>, fixed_mapping: bool) -> PyResult<Option<OptimalSettings>> {
    let optimal: bool = o.take("optimal")?;
    let budget = o.take_any("optimal_budget")?;
    let gap = o.take_any("optimal_gap")?;
    let repr = |v: &Bound<'_, PyAny>| v.repr().map_or("?".into(), |r| r.to_string());
    let budget = match &budget {
        None => None,
        Some(b) if b.extract::<String>().is_ok_and(|s| s == "none") => None,
        Some(b) => Some(b.extract::<u64>().ok().filter(|n| *n >= 1).ok_or_else(|| {
            option_error(
                format!("optimal_budget={} is not valid", repr(b)),
                "give a number of orderings per layer (1 or more), or None for no limit",
            )
        })?),
    };
    let tolerance = match &gap {
        None => 0.0,
        Some(g) => {
            let value = match g.extract::<String>() {
                Ok(text) => qc::evaluate::parse_gap(&text),
                Err(_) => g.extract::<f64>().ok().filter(|x| x.is_finite() && *x >= 0.0),
            };
            value.ok_or_else(|| {
                option_error(
                    format!("optimal_gap={} is not valid", repr(g)),
                    "give a fraction such as 0.01 or a percentage such as \"1%\" (0 or more; 0 is exact)",
                )
            })?
        }
    };
    if !optimal {
        let default_budget = budget == Some(DEFAULT_BUDGET);
        if !default_budget || tolerance != 0.0 {
            return Err(option_error(
                "optimal_budget and optimal_gap need optimal=True".into(),
                "add optimal=True, or drop optimal_budget and optimal_gap",
            ));
        }
        return Ok(None);
    }
    if fixed_mapping {
        return Err(option_error(
            "optimal=True searches the mappings, fixed_mapping=True evaluates the given one".into(),
            "drop one of optimal and fixed_mapping",
        ));
    }
    Ok(Some(OptimalSettings { budget, mixed: true, tolerance }))
}

/// `qc.evaluate(model, accelerator, mapping, options)`: `options` holds every other keyword of
/// `qc.evaluate` (see `spec/python.md`).
#[pyfunction]
pub fn evaluate<'py>(
    py: Python<'py>,
    model: &Bound<'py, PyAny>,
    accelerator: Option<&Bound<'py, PyAny>>,
    mapping: Option<&Bound<'py, PyAny>>,
    options: Bound<'py, PyDict>,
) -> PyResult<EvaluationReport> {
    let o = Options(options.copy()?);
    let fixed_mapping: bool = o.take("fixed_mapping")?;
    let compare = o.take_any("compare")?;
    let target: Option<String> = o.take("target")?;
    let optimize: bool = o.take("optimize")?;
    let search = o.search(fixed_mapping)?;
    let optimal = optimal_settings(&o, fixed_mapping)?;
    let w = o.workload(optimize, target)?;
    o.done()?;
    let (mut opts, budget_text) = search.options()?;
    opts.optimal = optimal;
    let designs = designs(accelerator, mapping, compare.as_ref(), fixed_mapping)?;
    let Planned { plan, mut warnings, .. } = plan_of(py, model, &w, search.all_layers)?;
    let flag = Arc::new(AtomicBool::new(false));
    opts.cancel = Some(Cancel(flag.clone()));
    let (evaluated, found) = run_interruptible(py, Some(flag), move || {
        qc::evaluate::evaluate_plan(plan, designs, opts, budget_text, &|_, _| {}, &|_| {})
    })?
    .py_err()?;
    warnings.extend(found);
    warn_all(py, &warnings)?;
    Ok(EvaluationReport { evaluated: Arc::new(evaluated) })
}

/// The lines and summary of `qc.sweep`.
#[pyclass(frozen, module = "qc._qc")]
pub struct SweepReport {
    swept: qc::sweep::Swept,
    title: String,
}

#[pymethods]
impl SweepReport {
    /// The JSON lines, one per design in design order (`qc sweep -o`).
    fn lines_json(&self) -> Vec<String> {
        self.swept.lines.iter().map(|l| l.to_string()).collect()
    }

    /// `qc sweep --format json`: the front, the infeasible designs, the time.
    fn summary_json(&self) -> String {
        self.swept.summary(qc::formats::TextOrJson::Json)
    }

    /// `qc sweep` (text).
    fn summary_text(&self) -> String {
        self.swept.summary(qc::formats::TextOrJson::Text)
    }

    /// `qc sweep --html`.
    fn to_html(&self) -> String {
        self.swept.html(&self.title)
    }
}

/// `qc.sweep(model, accelerator, sweep, mapping, options)`: `options` holds every other keyword
/// of `qc.sweep` (see `spec/python.md`).
#[pyfunction]
pub fn sweep<'py>(
    py: Python<'py>,
    model: &Bound<'py, PyAny>,
    accelerator: &Bound<'py, PyAny>,
    sweep: &Bound<'py, PyAny>,
    mapping: Option<&Bound<'py, PyAny>>,
    options: Bound<'py, PyDict>,
) -> PyResult<SweepReport> {
    let o = Options(options.copy()?);
    let keep_mapping_spatial: bool = o.take("keep_mapping_spatial")?;
    let shard: Option<(u64, u64)> = o.take("shard")?;
    let output: Option<PathBuf> = o.take("output")?;
    let mut search = o.search(false)?;
    // The designs at a time; each design's search runs in the sweep's threads.
    let jobs = search.jobs.take();
    let w = o.workload(false, None)?;
    o.done()?;
    let (mut opts, _) = search.options()?;
    if jobs == Some(0) {
        return Err(option_error(
            "jobs=0 is not valid".into(),
            "give 1 or more designs at a time, or None (one per core)",
        ));
    }
    if let Some((i, n)) = shard
        && (i == 0 || n == 0 || i > n)
    {
        return Err(error(
            "qc::sweep::shard",
            format!("shard=({i}, {n}) is not (I, N) with 1 <= I <= N"),
            "give the slice as (I, N), for example (3, 8)",
        ));
    }
    let acc = accelerator_spec(accelerator)?;
    // The sweep: a path, or the sweep as a dict (JSON is YAML).
    let sweep_file = if let Ok(d) = sweep.cast::<PyDict>() {
        let text: String = py.import("json")?.call_method1("dumps", (d,))?.extract()?;
        ("<sweep dict>".to_string(), text)
    } else {
        read_named(&path_arg(sweep, "sweep")?)?
    };
    let mapping_file = mapping.map(|m| read_named(&path_arg(m, "mapping")?)).transpose()?;
    let Planned { plan, mut warnings, model_key } = plan_of(py, model, &w, search.all_layers)?;
    let title = format!("{} on {} swept by {}", plan.name, acc, sweep_file.0);
    let flag = Arc::new(AtomicBool::new(false));
    opts.cancel = Some(Cancel(flag.clone()));
    let mut setup = qc::sweep::SweepSetup::new(qc::sweep::SweepInput {
        plan,
        model_key,
        accelerator: acc,
        sweep_file,
        mapping: mapping_file,
        opts,
        keep_mapping_spatial,
        shard,
        jobs,
    })
    .py_err()?;
    warnings.extend(setup.take_warnings());
    // The lines go to `output` as designs finish, as `qc sweep -o` writes them.
    let sink = match &output {
        None => None,
        Some(path) => {
            Some(Mutex::new(std::io::BufWriter::new(std::fs::File::create(path).map_err(|e| {
                error("qc::io::write", format!("cannot write `{}`: {e}", path.display()), "check the path")
            })?)))
        }
    };
    let swept = run_interruptible(py, Some(flag), move || {
        let fp = setup.fingerprint().to_string();
        let on_done = |done: &[qc_backends::sweep::DesignResult]| -> miette::Result<()> {
            let Some(sink) = &sink else { return Ok(()) };
            let mut w =
                sink.lock().map_err(|_| miette::miette!(code = "qc::io::write", "a writer panicked"))?;
            for d in done {
                writeln!(w, "{}", d.json_line(&fp)).and_then(|_| w.flush()).map_err(|e| {
                    miette::miette!(code = "qc::io::write", "cannot write the sweep's lines: {e}")
                })?;
            }
            Ok(())
        };
        setup.run(&on_done)
    })?
    .py_err()?;
    warn_all(py, &warnings)?;
    Ok(SweepReport { swept, title })
}

/// The names of the built-in accelerators.
#[pyfunction]
pub fn accelerators(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
    PyList::new(py, qc::accelerators::BUILTIN.iter().map(|(name, _)| *name))
}
