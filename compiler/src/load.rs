//! Loading a model file: memory-map, decode, import, check external data, verify.
//!
//! The file is memory-mapped and wrapped in a `bytes::Bytes`, so every `raw_data` initializer is
//! a slice of the map, never a copy. External data is not read at load time: its location is
//! confined to the model's folder and its offset and length are checked against the file's size;
//! the bytes are mapped only when a pass asks for them, through [`ExternalFiles`].
//!
//! Safety of the map: a memory-mapped file that another process truncates or rewrites while qc
//! runs is undefined behaviour. qc never writes a model in place (output goes to a new file that
//! is renamed over the target), and `--no-mmap` reads the file into memory instead.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use prost::Message;
use qc_ir::{DataResolver, ExternalRef, Model, TensorData};

use crate::diagnostics::{ImportError, LoadError, LoadWarning};
use crate::onnx::proto::{self as pb, MAX_IR_VERSION};

/// How to read model files.
#[derive(Clone, Copy, Debug)]
pub struct LoadOptions {
    /// Memory-map files (the default); otherwise read them into memory.
    pub mmap: bool,
}

impl Default for LoadOptions {
    fn default() -> LoadOptions {
        LoadOptions { mmap: true }
    }
}

/// A loaded, verified model and what was learnt while loading it.
#[derive(Debug)]
pub struct Loaded {
    pub model: Model,
    pub warnings: Vec<LoadWarning>,
    /// Size of the model file in bytes.
    pub file_bytes: u64,
    /// The external data files the model refers to.
    pub external_files: Vec<ExternalFile>,
}

/// One external data file and the tensors stored in it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ExternalFile {
    pub location: String,
    pub tensors: usize,
    /// Bytes the tensors occupy in the file (known when the file exists).
    pub bytes: u64,
    pub present: bool,
}

/// Reads a whole file as `Bytes`: memory-mapped, or copied into memory with `mmap: false`.
pub fn read_file(path: &Path, opts: LoadOptions) -> Result<Bytes, std::io::Error> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    if len == 0 || !opts.mmap {
        return Ok(Bytes::from(std::fs::read(path)?));
    }
    // SAFETY: the map is read-only and qc never modifies model files; see the module doc.
    let map = unsafe { memmap2::Mmap::map(&file)? };
    Ok(Bytes::from_owner(map))
}

/// Loads the model at `path`.
pub fn load(path: &Path, opts: LoadOptions) -> Result<Loaded, LoadError> {
    let file = path.display().to_string();
    let bytes = read_file(path, opts).map_err(|source| LoadError::Read { file: file.clone(), source })?;
    let dir = path.parent().map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p });
    load_bytes(bytes, &file, dir, opts)
}

/// Decodes `bytes` as a `ModelProto`, with diagnostics that say what the file looks like when it
/// is not a model.
pub fn decode(bytes: Bytes, file: &str) -> Result<pb::ModelProto, LoadError> {
    if bytes.is_empty() {
        return Err(LoadError::EmptyFile { file: file.into() });
    }
    match pb::ModelProto::decode(bytes.clone()) {
        Ok(m) if m.graph.is_some() || m.ir_version.is_some() => Ok(m),
        Ok(_) => Err(LoadError::NotAModel {
            file: file.into(),
            what: "it has neither an ir_version nor a graph".into(),
            hint: looks_like(&bytes),
        }),
        Err(e) => {
            let reason = e.to_string();
            let truncated = reason.contains("buffer underflow") || reason.contains("unexpected end");
            let hint = if truncated {
                "the file ends in the middle of a field: it was probably truncated (an interrupted download or copy?)".to_string()
            } else {
                looks_like(&bytes)
            };
            Err(LoadError::Decode { file: file.into(), reason, hint })
        }
    }
}

/// A guess at what a protobuf that is not a model holds, for hints.
fn looks_like(bytes: &Bytes) -> String {
    if let Ok(t) = pb::TensorProto::decode(bytes.clone())
        && t.data_type.is_some()
        && (t.raw_data.is_some() || !t.dims.is_empty())
    {
        return "the file looks like a serialized TensorProto (test data, such as input_0.pb), not a model"
            .into();
    }
    if let Ok(g) = pb::GraphProto::decode(bytes.clone())
        && !g.node.is_empty()
    {
        return "the file looks like a bare GraphProto; wrap it in a ModelProto with ir_version and opset_import".into();
    }
    "qc reads ONNX models (.onnx files holding a serialized ModelProto)".into()
}

/// Decodes, imports and verifies a model held in memory. `dir` is the folder external data is
/// relative to (`None`: external data is treated as missing).
pub fn load_bytes(
    bytes: Bytes,
    file: &str,
    dir: Option<&Path>,
    opts: LoadOptions,
) -> Result<Loaded, LoadError> {
    let file_bytes = bytes.len() as u64;
    let proto = decode(bytes, file)?;
    match proto.ir_version {
        Some(v) if (1..=MAX_IR_VERSION).contains(&v) => {}
        v => {
            return Err(LoadError::IrVersion {
                file: file.into(),
                version: v.map_or("(none)".into(), |v| v.to_string()),
                max: MAX_IR_VERSION,
            });
        }
    }
    let invalid = |problems: Vec<ImportError>| LoadError::Invalid {
        file: file.into(),
        count: problems.len(),
        problems,
    };
    let (mut model, mut warnings) = crate::onnx::import::import_model_warning(proto).map_err(invalid)?;
    unnamed_input_dims(&model, &mut warnings);
    let mut problems = Vec::new();
    let resolver = dir.map(|d| Arc::new(ExternalFiles::new(d, opts)));
    let external_files = check_external(&model, resolver.as_deref(), &mut problems, &mut warnings);
    problems.extend(qc_ir::verify_model(&model).into_iter().map(ImportError::Verify));
    if !problems.is_empty() {
        return Err(invalid(problems));
    }
    if let Some(r) = resolver {
        model.resolver = Some(r);
    }
    Ok(Loaded { model, warnings, file_bytes, external_files })
}

/// Checks every external tensor's location and bounds without reading it.
fn check_external(
    model: &Model,
    files: Option<&ExternalFiles>,
    problems: &mut Vec<ImportError>,
    warnings: &mut Vec<LoadWarning>,
) -> Vec<ExternalFile> {
    let mut by_location: BTreeMap<String, ExternalFile> = BTreeMap::new();
    model.visit_tensors(&mut |t| {
        let TensorData::External(r) = &t.data else { return };
        let tensor = t.name.clone().unwrap_or_default();
        let entry = by_location.entry(r.location.clone()).or_insert_with(|| ExternalFile {
            location: r.location.clone(),
            tensors: 0,
            bytes: 0,
            present: false,
        });
        entry.tensors += 1;
        let path = match confine(files.map(|f| f.dir.as_path()), &r.location) {
            Err(problem) => {
                problems.push(ImportError::ExternalPath { tensor, location: r.location.clone(), problem });
                return;
            }
            Ok(None) => return,
            Ok(Some(p)) => p,
        };
        entry.present = true;
        let file_len = match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => m.len(),
            _ => {
                problems.push(ImportError::ExternalPath {
                    tensor,
                    location: r.location.clone(),
                    problem: "is not a regular file".into(),
                });
                return;
            }
        };
        let bounds = |problem: String| ImportError::ExternalBounds {
            tensor: tensor.clone(),
            location: r.location.clone(),
            problem,
        };
        let Some(len) = extent(r, file_len) else {
            let want = r.length.map_or("the rest of the file".into(), |l| format!("{l} bytes"));
            problems.push(bounds(format!(
                "asks for {want} at offset {}, past the end of the file ({file_len} bytes)",
                r.offset
            )));
            return;
        };
        entry.bytes += len;
        let expected = t.element_count().ok().and_then(|n| t.elem_type().raw_len(n));
        if let Some(expected) = expected
            && expected != len
        {
            let offset = r.offset;
            problems.push(bounds(format!(
                "holds {len} bytes at offset {offset}, but the tensor's dims and type need {expected}"
            )));
        }
    });
    for f in by_location.values() {
        if !f.present
            && !problems
                .iter()
                .any(|p| matches!(p, ImportError::ExternalPath { location, .. } if *location == f.location))
        {
            warnings.push(LoadWarning::MissingExternal { location: f.location.clone(), tensors: f.tensors });
        }
    }
    by_location.into_values().collect()
}

/// The byte length of an external tensor, if offset and length lie inside the file.
fn extent(r: &ExternalRef, file_len: u64) -> Option<u64> {
    let len = match r.length {
        Some(l) => l,
        None => file_len.checked_sub(r.offset)?,
    };
    (r.offset.checked_add(len)? <= file_len).then_some(len)
}

/// Resolves `location` inside `dir`: `Ok(Some(path))` if it exists inside the folder, `Ok(None)`
/// if it does not exist, `Err` if it is absolute, climbs out with `..`, or leads outside through
/// a link.
fn confine(dir: Option<&Path>, location: &str) -> Result<Option<PathBuf>, String> {
    if location.is_empty() {
        return Err("is empty".into());
    }
    let rel = Path::new(location);
    for c in rel.components() {
        match c {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => return Err("contains `..`".into()),
            Component::RootDir | Component::Prefix(_) => return Err("is an absolute path".into()),
        }
    }
    if location.contains('\\') && location.contains("..") {
        return Err("contains `..`".into());
    }
    let Some(dir) = dir else { return Ok(None) };
    let joined = dir.join(rel);
    match joined.canonicalize() {
        Ok(real) => {
            let root = dir.canonicalize().map_err(|e| format!("cannot be resolved: {e}"))?;
            if real.starts_with(&root) {
                Ok(Some(real))
            } else {
                Err(format!("leads outside the model's folder (to {})", real.display()))
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot be resolved: {e}")),
    }
}

/// Reads external tensor data on demand: one map per file, shared by all tensors in it.
#[derive(Debug)]
pub struct ExternalFiles {
    dir: PathBuf,
    opts: LoadOptions,
    files: Mutex<HashMap<String, Bytes>>,
}

impl ExternalFiles {
    pub fn new(dir: &Path, opts: LoadOptions) -> ExternalFiles {
        ExternalFiles { dir: dir.to_path_buf(), opts, files: Mutex::new(HashMap::new()) }
    }
}

impl DataResolver for ExternalFiles {
    fn read(&self, r: &ExternalRef) -> Result<Bytes, String> {
        let whole = {
            let mut files = self.files.lock().map_err(|_| "external data cache poisoned".to_string())?;
            match files.get(&r.location) {
                Some(b) => b.clone(),
                None => {
                    let path = confine(Some(&self.dir), &r.location)?
                        .ok_or_else(|| format!("`{}` does not exist", r.location))?;
                    let b = read_file(&path, self.opts)
                        .map_err(|e| format!("cannot read `{}`: {e}", r.location))?;
                    files.insert(r.location.clone(), b.clone());
                    b
                }
            }
        };
        let len = extent(r, whole.len() as u64)
            .ok_or_else(|| format!("`{}` is shorter than offset + length", r.location))?;
        Ok(whole.slice(r.offset as usize..(r.offset + len) as usize))
    }
}

/// Warns of graph-input dims with neither a value nor a name (a `-1` has its own warning): they
/// load as unknown dims, which the commands that count ask for.
fn unnamed_input_dims(model: &Model, warnings: &mut Vec<LoadWarning>) {
    let negative = warnings
        .iter()
        .find_map(|w| match w {
            LoadWarning::NegativeDim { all, .. } => Some(all.clone()),
            _ => None,
        })
        .unwrap_or_default();
    let g = &model.graph;
    let mut found = Vec::new();
    let mut inputs: Vec<String> = Vec::new();
    for &v in g.inputs.iter().filter(|v| !g.initializers.contains(v)) {
        let value = g.value(v);
        if let Some(qc_ir::ValueType::Tensor { shape: Some(s), .. }) =
            value.ty.as_ref().and_then(|t| t.ty.as_ref())
        {
            for (i, d) in s.dims.iter().enumerate() {
                let at = format!("`{}` dim {i}", value.name);
                if matches!(d, qc_ir::Dim::Unknown) && !negative.contains(&format!("{at} (")) {
                    found.push(at);
                    if !inputs.contains(&value.name) {
                        inputs.push(value.name.clone());
                    }
                }
            }
        }
    }
    if !found.is_empty() {
        warnings.push(LoadWarning::UnnamedDim { count: found.len(), all: found.join(", "), inputs });
    }
}
