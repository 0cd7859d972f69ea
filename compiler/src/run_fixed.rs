//! `qc run MODEL --fixed-point access-dla`: the integer simulation of the ACCESS DLA
//! (`qc_passes::fixed::sim`, specified in `spec/fixed_point.md`) on given inputs. The outputs
//! written are the fixed-point ones (dequantized, as `.npy`); the report gives every layer's
//! placement (integer or float), output scale, SNR and maximum absolute error against the float
//! evaluation of the same model, and how many values saturated.

use std::fmt::Write as _;

use qc_passes::eval::Array;
use qc_passes::fixed;

use crate::run::{RunArgs, RunError};

/// The DLAs whose arithmetic `--fixed-point` simulates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FixedPointTarget {
    /// The ACCESS co-design CNN accelerator (the built-in target `access-dla`).
    AccessDla,
}

/// The report of a simulation: one line per layer, then the outputs.
pub fn render(sim: &fixed::Simulation) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<28} {:<18} {:<8} {:>11} {:>10} {:>11} {:>9}",
        "node", "op", "runs in", "scale", "SNR", "max |err|", "saturated"
    );
    for l in &sim.layers {
        let scale = l.scale.map_or("-".to_string(), |x| format!("2^{}", x.log2().round() as i64));
        let _ = writeln!(
            s,
            "{:<28} {:<18} {:<8} {:>11} {:>10} {:>11.3e} {:>9}",
            l.node,
            l.op_type,
            l.placement.name(),
            scale,
            crate::convert_access::show_db(l.snr_db),
            l.max_abs_error,
            l.saturated
        );
    }
    for ((name, a), (_, r)) in sim.outputs.iter().zip(&sim.reference) {
        let (db, max) = match (r.to_f64(), a.to_f64()) {
            (Ok(r), Ok(f)) if r.len() == f.len() => fixed::sim::snr(&r, &f),
            _ => (f64::NAN, f64::NAN),
        };
        let head: Vec<String> = match a.to_f64() {
            Ok(v) => v.iter().take(6).map(|x| format!("{x:.6}")).collect(),
            Err(_) => vec!["...".into()],
        };
        let more = if a.len() > 6 { " ..." } else { "" };
        let dims: Vec<String> = a.dims.iter().map(|d| d.to_string()).collect();
        let _ = writeln!(
            s,
            "{name}: {}[{}] = [{}{more}]  (fixed point; against float: SNR {}, max |err| {max:.3e})",
            a.elem,
            dims.join(","),
            head.join(", "),
            crate::convert_access::show_db(db)
        );
    }
    s
}

/// Runs the simulation for `qc run --fixed-point`.
pub fn run(
    args: &RunArgs,
    _target: FixedPointTarget,
    model: &qc_ir::Model,
    given: &[(String, qc_ir::Tensor)],
    mut problems: Vec<RunError>,
    out: &mut dyn std::io::Write,
) -> miette::Result<()> {
    problems.extend(crate::run::input_problems(&model.graph, given));
    match problems.len() {
        0 => {}
        1 => return Err(problems.remove(0).into()),
        count => {
            return Err(RunError::Inputs { model: args.model.display().to_string(), count, problems }.into());
        }
    }
    let mut bound: Vec<(String, Array)> = Vec::new();
    for (name, tensor) in given {
        bound.push((name.clone(), Array::from_tensor(tensor, model)?));
    }
    let target = crate::targets::builtin("access-dla").expect("access-dla is built in");
    let sim = fixed::simulate(model, &target, &bound)?;
    let mut files = Vec::new();
    if let Some(dir) = &args.output_dir {
        for (name, array) in &sim.outputs {
            let a = crate::run::numpy_compatible(array.clone())?;
            let path = dir.join(format!("{}.npy", crate::run::file_name(name)));
            let bytes = crate::npy::write(a.elem, &a.dims, &a.raw_bytes()).ok_or_else(|| {
                miette::miette!(
                    code = "qc::io::write",
                    "output `{name}` of type {} cannot be written as .npy",
                    a.elem
                )
            })?;
            files.push((path, bytes));
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| miette::miette!(code = "qc::io::write", "cannot create `{}`: {e}", dir.display()))?;
    }
    for (path, bytes) in &files {
        crate::write::write_atomically(path, bytes)
            .map_err(|e| miette::miette!(code = "qc::io::write", "cannot write `{}`: {e}", path.display()))?;
    }
    let mut s = render(&sim);
    for (path, _) in &files {
        let _ = writeln!(s, "  -> {}", path.display());
    }
    out.write_all(s.as_bytes())
        .map_err(|e| miette::miette!(code = "qc::io::write", "cannot write output: {e}"))?;
    Ok(())
}
