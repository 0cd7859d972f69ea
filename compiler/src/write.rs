//! Writing output files atomically: the bytes go to a temporary file beside the target, which is
//! renamed over it only when complete. A failed run leaves no half-written file, and a model that
//! is memory-mapped while qc overwrites it keeps its old contents (the map holds the old inode).
//!
//! [`write_model`] also decides where a model's tensor data goes (see `spec/onnx.md`, "Writing
//! models"): inline, as the input had it, or, for a model that has external data or whose
//! tensors would pass protobuf's 2 GiB limit, in external-data files beside the output.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use prost::Message;
use qc_ir::{DataResolver, ExternalRef, MetaEntry, Model, TensorData};

/// A command's report: to `path` (written atomically) when given, else to `out`.
pub fn emit(path: Option<&Path>, text: &str, out: &mut dyn std::io::Write) -> miette::Result<()> {
    match path {
        Some(path) => write_atomically(path, text.as_bytes())
            .map_err(|e| miette::miette!(code = "qc::io::write", "cannot write `{}`: {e}", path.display())),
        None => out
            .write_all(text.as_bytes())
            .map_err(|e| miette::miette!(code = "qc::io::write", "cannot write: {e}")),
    }
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = AtomicFile::create(path)?;
    f.write_all(bytes)?;
    f.commit()
}

/// A file being written: a temporary beside `target`, renamed over it by [`AtomicFile::commit`].
/// Dropped without a commit, the temporary is removed.
pub struct AtomicFile {
    tmp: PathBuf,
    target: PathBuf,
    file: Option<BufWriter<File>>,
    committed: bool,
}

impl AtomicFile {
    /// Starts writing `path`.
    pub fn create(path: &Path) -> std::io::Result<AtomicFile> {
        let tmp = temp_beside(path)?;
        let file = File::create(&tmp)?;
        Ok(AtomicFile {
            tmp,
            target: path.to_path_buf(),
            file: Some(BufWriter::with_capacity(1 << 20, file)),
            committed: false,
        })
    }

    /// Prepares `target` as the same file as `source`: a hard link when both are on one file
    /// system, a copy otherwise.
    pub fn link_or_copy(source: &Path, target: &Path) -> std::io::Result<AtomicFile> {
        let tmp = temp_beside(target)?;
        let _ = std::fs::remove_file(&tmp);
        if std::fs::hard_link(source, &tmp).is_err() {
            std::fs::copy(source, &tmp)?;
        }
        Ok(AtomicFile { tmp, target: target.to_path_buf(), file: None, committed: false })
    }

    /// Flushes and syncs the temporary, then renames it over the target.
    pub fn commit(mut self) -> std::io::Result<()> {
        if let Some(w) = self.file.take() {
            let f = w.into_inner().map_err(|e| e.into_error())?;
            f.sync_all()?;
        }
        std::fs::rename(&self.tmp, &self.target)?;
        self.committed = true;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.file {
            Some(w) => w.write(buf),
            None => Err(std::io::Error::other("a linked file is not written to")),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.as_mut().map_or(Ok(()), |w| w.flush())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            self.file = None;
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// `.<name>.qc-tmp-<pid>` in the folder of `path`.
fn temp_beside(path: &Path) -> std::io::Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| std::io::Error::other("the output path names no file"))?;
    Ok(dir_of(path).join(format!(".{}.qc-tmp-{}", name.to_string_lossy(), std::process::id())))
}

/// The folder a path is in (`.` for a bare file name).
fn dir_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Tensors smaller than this stay inline even when the output has an external-data file
/// (onnx's default `size_threshold`).
const EXTERNAL_MIN_BYTES: u64 = 1024;

/// Offsets in a new external-data file are multiples of this, so a reader can map tensors
/// aligned.
const EXTERNAL_ALIGN: u64 = 64;

/// A protobuf message cannot exceed 2 GiB; above this much inline tensor data the output's
/// tensors go to an external-data file even when the input had none (headroom for the graph).
pub const MAX_INLINE_BYTES: u64 = (2 << 30) - (256 << 20);

/// Where [`write_model`] put the tensor data.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DataLayout {
    /// The new external-data file beside the output, if one was written.
    pub data_file: Option<String>,
    /// Tensors written to it, and their bytes.
    pub moved: usize,
    pub moved_bytes: u64,
    /// Tensors that still refer to the external file they were read from.
    pub kept_external: usize,
    /// External files linked (or copied) beside an output in another folder than the input.
    pub linked: Vec<String>,
    /// External files the input referred to but did not have; the output refers to them too.
    pub missing: Vec<String>,
}

impl DataLayout {
    /// One line for a summary, or `None` when all data is inline.
    pub fn summary(&self) -> Option<String> {
        if self.data_file.is_none() && self.kept_external == 0 {
            return None;
        }
        let mut s = String::from("tensor data:");
        if let Some(f) = &self.data_file {
            s += &format!(
                " {} tensors ({:.1} MiB) written to {f};",
                self.moved,
                self.moved_bytes as f64 / 1048576.0
            );
        }
        s += &format!(" {} tensors kept in their external files", self.kept_external);
        if !self.linked.is_empty() {
            s += &format!(" (linked beside the output: {})", self.linked.join(", "));
        }
        if !self.missing.is_empty() {
            s += &format!("; missing beside the input as well: {}", self.missing.join(", "));
        }
        Some(s)
    }
}

/// Writes `model` to `output` atomically, with its tensor data placed as `spec/onnx.md`
/// describes. `source_dir` is the folder the model was read from (its external data locations
/// are relative to it); `max_inline` is [`MAX_INLINE_BYTES`] except in tests.
///
/// When the model has external data, or more than `max_inline` bytes of inline tensor data:
/// tensors that still refer to an external file keep referring to it (a file in another folder
/// than the output is hard-linked, or copied, beside the output under the same relative name);
/// every other tensor of at least 1 KiB, new or changed by the passes, is written to
/// `<output file name>.data` beside the output. The data files are renamed into place before the
/// model, so the output never refers to data that is not there. The model's tensors are updated
/// to the written layout.
pub fn write_model(
    model: &mut Model,
    output: &Path,
    source_dir: Option<&Path>,
    max_inline: u64,
) -> std::io::Result<DataLayout> {
    let out_dir = dir_of(output);
    let file_name =
        output.file_name().ok_or_else(|| std::io::Error::other("the output path names no file"))?;
    let data_name = format!("{}.data", file_name.to_string_lossy());
    let (mut has_external, mut inline) = (false, 0u64);
    model.visit_tensors(&mut |t| match t.data {
        TensorData::External(_) => has_external = true,
        _ => inline += t.stored_bytes(),
    });
    let mut layout = DataLayout::default();
    let mut files: Vec<AtomicFile> = Vec::new();
    if has_external || inline > max_inline {
        let source_dir = match source_dir {
            Some(d) if !d.as_os_str().is_empty() => d,
            Some(_) => Path::new("."),
            None => out_dir,
        };
        let same_dir = same_file(source_dir, out_dir);
        let resolver = model.resolver.clone();
        let mut data: Option<AtomicFile> = None;
        let mut offset = 0u64;
        let mut links = BTreeSet::new();
        let mut failure: Option<std::io::Error> = None;
        model.visit_tensors_mut(&mut |t| {
            if failure.is_some() {
                return;
            }
            let move_in = match &t.data {
                // The new data file replaces this one: its tensors move into the new file.
                TensorData::External(r) if r.location == data_name => true,
                TensorData::External(r) => {
                    if !same_dir {
                        links.insert(r.location.clone());
                    }
                    layout.kept_external += 1;
                    false
                }
                TensorData::Strings(_) | TensorData::Empty => false,
                _ => t.stored_bytes() >= EXTERNAL_MIN_BYTES,
            };
            if !move_in {
                return;
            }
            let mut put = || -> std::io::Result<()> {
                let bytes = t
                    .raw_bytes(resolver.as_deref().map(|r| r as &dyn DataResolver))
                    .map_err(std::io::Error::other)?;
                let f = match &mut data {
                    Some(f) => f,
                    None => data.insert(AtomicFile::create(&out_dir.join(&data_name))?),
                };
                let start = offset.next_multiple_of(EXTERNAL_ALIGN);
                f.write_all(&vec![0u8; (start - offset) as usize])?;
                f.write_all(&bytes)?;
                let length = bytes.len() as u64;
                offset = start + length;
                t.data = TensorData::External(ExternalRef {
                    entries: vec![
                        MetaEntry::new("location", data_name.clone()),
                        MetaEntry::new("offset", start.to_string()),
                        MetaEntry::new("length", length.to_string()),
                    ],
                    location: data_name.clone(),
                    offset: start,
                    length: Some(length),
                });
                t.explicit_default_location = false;
                layout.moved += 1;
                layout.moved_bytes += length;
                Ok(())
            };
            if let Err(e) = put() {
                failure = Some(e);
            }
        });
        if let Some(e) = failure {
            return Err(e);
        }
        for location in links {
            let (src, dst) = (source_dir.join(&location), out_dir.join(&location));
            if same_file(&src, &dst) {
                continue;
            }
            if !src.is_file() {
                // The input referred to data that was not there (shape-only models do); the
                // output refers to it the same way.
                layout.missing.push(location);
                continue;
            }
            if let Some(parent) = dst.parent() {
                std::fs::create_dir_all(parent)?;
            }
            files.push(AtomicFile::link_or_copy(&src, &dst)?);
            layout.linked.push(location);
        }
        if let Some(d) = data {
            files.push(d);
            layout.data_file = Some(data_name);
        }
    }
    let proto = crate::onnx::export_model(model);
    let len = proto.encoded_len();
    if len > i32::MAX as usize {
        return Err(std::io::Error::other(format!(
            "the model is {len} bytes without its tensor data, over protobuf's 2 GiB limit"
        )));
    }
    let mut main = AtomicFile::create(output)?;
    main.write_all(&proto.encode_to_vec())?;
    for f in files {
        f.commit()?;
    }
    main.commit()?;
    Ok(layout)
}

/// Whether two paths name the same existing file or folder.
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_atomic_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.bin");
        {
            let mut f = AtomicFile::create(&target).unwrap();
            f.write_all(b"half").unwrap();
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let mut f = AtomicFile::create(&target).unwrap();
        f.write_all(b"whole").unwrap();
        f.commit().unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"whole");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
