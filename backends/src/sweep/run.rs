//! Running a sweep: the designs of a shard, identical designs evaluated once, the distinct ones
//! in parallel ([`crate::network::evaluate`] each), a typed result per design handed to the
//! caller as it finishes, and the Pareto front of the results.

use std::collections::HashMap;
use std::time::Instant;

use miette::Diagnostic;
use rayon::prelude::*;
use serde_json::{Value, json};

use super::{Sweep, area, pareto_front};
use crate::arch::{Accelerator, ArrayDim, Imc, ImcKind, MemOperand, Memory, OperationalArray, Port};
use crate::mapping::MappingFile;
use crate::network::{
    EngineError, EvaluateOptions, Prepared, evaluate, latency_model_name, mapping_type_name, objective_name,
};

/// The designs of shard `i` of `n` (1-based; `None`: all), in increasing order: every `n`-th
/// of [`Sweep::design_indices`], starting at the `i`-th.
pub fn shard_designs(sweep: &Sweep, shard: Option<(u64, u64)>) -> Vec<u128> {
    let all = sweep.design_indices();
    match shard {
        Some((i, n)) if n > 0 && (1..=n).contains(&i) => {
            all.iter().enumerate().filter(|(k, _)| *k as u64 % n == i - 1).map(|(_, &d)| d).collect()
        }
        _ => all,
    }
}

/// A key equal for two accelerators exactly when every field is equal (floats compared by
/// their bits), usable in a hash map: designs with the same key cost the same, so a sweep
/// evaluates one of them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AcceleratorKey {
    name: String,
    dims: Vec<(String, u64)>,
    /// MAC energy and area, as bits.
    mac: [u64; 2],
    input_precision: Option<[u32; 2]>,
    systolic_dims: Vec<usize>,
    /// IMC type, bit-serial precision, ADC resolution, cell size and cell area (as bits).
    imc: Option<(ImcKind, u32, u32, u64, u64)>,
    memories: Vec<MemoryKey>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct MemoryKey {
    name: String,
    size_bits: u64,
    /// Read cost, write cost and area, as bits.
    costs: [u64; 3],
    latency: u64,
    operands: Vec<MemOperand>,
    ports: Vec<Port>,
    served_dims: Vec<usize>,
    double_buffering: bool,
}

/// The structural key of `acc` ([`AcceleratorKey`]).
pub fn design_key(acc: &Accelerator) -> AcceleratorKey {
    // Destructured in full, so that a field added to the model cannot be left out of the key.
    let Accelerator { name, array, memories } = acc;
    let OperationalArray { dims, mac_energy, mac_area, input_precision, systolic_dims, imc } = array;
    let memory = |m: &Memory| {
        let Memory {
            name,
            size_bits,
            r_cost,
            w_cost,
            area,
            latency,
            operands,
            ports,
            served_dims,
            double_buffering,
        } = m;
        MemoryKey {
            name: name.clone(),
            size_bits: *size_bits,
            costs: [r_cost.to_bits(), w_cost.to_bits(), area.to_bits()],
            latency: *latency,
            operands: operands.clone(),
            ports: ports.clone(),
            served_dims: served_dims.clone(),
            double_buffering: *double_buffering,
        }
    };
    AcceleratorKey {
        name: name.clone(),
        dims: dims.iter().map(|ArrayDim { name, size }| (name.clone(), *size)).collect(),
        mac: [mac_energy.to_bits(), mac_area.to_bits()],
        input_precision: *input_precision,
        systolic_dims: systolic_dims.clone(),
        imc: imc.as_ref().map(
            |Imc { kind, bit_serial_precision, adc_resolution, cells_size, cells_area }| {
                (*kind, *bit_serial_precision, *adc_resolution, *cells_size, cells_area.to_bits())
            },
        ),
        memories: memories.iter().map(memory).collect(),
    }
}

/// What changes a sweep's numbers besides its files, serialised into its fingerprint
/// ([`SweepOptionsKey::text`]).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SweepOptionsKey {
    pub objective: Option<&'static str>,
    pub lpf_limit: Option<usize>,
    pub spatial_mappings: Option<usize>,
    pub mixed: bool,
    pub budget_nanos: Option<u128>,
    pub mapping_type: &'static str,
    pub latency_model: &'static str,
    pub all_layers: bool,
    pub data_locality: bool,
    pub data_from_top_memory: bool,
    pub keep_mapping_spatial: bool,
}

impl SweepOptionsKey {
    /// The key of `opts` (threads and the cancellation flag change no number, so they are left
    /// out), with whether the mapping's pinned unrollings were kept.
    pub fn of(opts: &EvaluateOptions, keep_mapping_spatial: bool) -> SweepOptionsKey {
        let s = opts.search.as_ref();
        SweepOptionsKey {
            objective: s.map(|s| objective_name(s.objective)),
            lpf_limit: s.and_then(|s| s.lpf_limit),
            spatial_mappings: s.and_then(|s| s.spatial_mappings),
            mixed: s.is_some_and(|s| s.mixed),
            budget_nanos: s.and_then(|s| s.budget).map(|b| b.as_nanos()),
            mapping_type: mapping_type_name(opts.mapping_type),
            latency_model: latency_model_name(opts.latency_model),
            all_layers: opts.all_layers,
            data_locality: opts.locality.is_some(),
            data_from_top_memory: opts.locality.is_some_and(|l| l.data_from_top_memory),
            keep_mapping_spatial,
        }
    }

    /// The key as JSON text (one line, fields in declaration order).
    pub fn text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// FNV-1a (64 bits) over the parts that make a sweep, each followed by a 0xff byte, in hex: what
/// `qc sweep merge` checks the shards share.
pub fn fingerprint(parts: &[&[u8]]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in p.iter().chain(&[0xff]) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// A design's network cost.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DesignCost {
    pub energy: f64,
    pub latency: f64,
    /// Energy times latency.
    pub edp: f64,
    /// On an in-memory-compute array, whose clock period depends on the design: the clock
    /// period and the latency in ns (what the front compares then).
    pub ns: Option<(f64, f64)>,
}

impl DesignCost {
    /// The latency the front compares: in ns on an in-memory-compute array, else in cycles.
    pub fn front_latency(&self) -> f64 {
        self.ns.map_or(self.latency, |(_, ns)| ns)
    }
}

/// Why a design cannot run the workload: the diagnostic's code and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesignError {
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for DesignError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// One evaluated design.
#[derive(Clone, Debug, PartialEq)]
pub struct DesignResult {
    /// Its index in the sweep's grid.
    pub design: u128,
    /// The swept parameters' values, in the sweep file's order.
    pub parameters: Vec<(String, f64)>,
    /// [`area`] of its accelerator.
    pub area: Option<f64>,
    /// Its evaluation's wall time (0 for a design identical to one evaluated before).
    pub seconds: f64,
    /// Its cost, or why it cannot run the workload (it is then on no front).
    pub outcome: Result<DesignCost, DesignError>,
}

/// A whole number as an integer, others as they are.
fn number(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 9.0e15 { json!(v as i64) } else { json!(v) }
}

impl DesignResult {
    /// The design's line of `qc sweep`'s JSON-lines file (`spec/sweep.md`), for the sweep with
    /// fingerprint `sweep`, without a newline.
    pub fn json_line(&self, sweep: &str) -> String {
        self.json(sweep).to_string()
    }

    /// [`DesignResult::json_line`] as a JSON value.
    pub fn json(&self, sweep: &str) -> Value {
        let params: serde_json::Map<String, Value> =
            self.parameters.iter().map(|(p, v)| (p.clone(), number(*v))).collect();
        let mut v = json!({
            "sweep": sweep,
            "design": self.design.to_string(),
            "parameters": params,
            "area": self.area,
            "seconds": self.seconds,
        });
        match &self.outcome {
            Ok(c) => {
                v["energy"] = json!(c.energy);
                v["latency"] = json!(c.latency);
                v["edp"] = json!(c.edp);
                if let Some((tclk, ns)) = c.ns {
                    v["tclk_ns"] = json!(tclk);
                    v["latency_ns"] = json!(ns);
                }
            }
            Err(e) => v["error"] = json!(e.to_string()),
        }
        v
    }
}

/// Which results are designs that run the workload, which cannot, and the Pareto front.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepSummary {
    /// Indices (into the results) of the designs that run the workload.
    pub points: Vec<usize>,
    /// Indices of those that cannot.
    pub infeasible: Vec<usize>,
    /// Indices of the designs no other one beats in energy, latency and (when the accelerator
    /// gives areas) area, by increasing energy.
    pub front: Vec<usize>,
}

/// The outcome of [`run_sweep`].
#[derive(Clone, Debug, PartialEq)]
pub struct SweepOutcome {
    /// One result per design, in design order.
    pub results: Vec<DesignResult>,
    /// How many distinct designs were evaluated (identical ones share one evaluation).
    pub distinct: usize,
    /// The wall time of the whole run.
    pub seconds: f64,
}

impl SweepOutcome {
    /// The feasible and infeasible designs and the front.
    pub fn summary(&self) -> SweepSummary {
        summarize(&self.results)
    }
}

/// [`SweepOutcome::summary`] of any results (from several shards, for example).
pub fn summarize(results: &[DesignResult]) -> SweepSummary {
    let points: Vec<usize> = (0..results.len()).filter(|&i| results[i].outcome.is_ok()).collect();
    let infeasible = (0..results.len()).filter(|&i| results[i].outcome.is_err()).collect();
    let coords: Vec<(f64, f64, Option<f64>)> = points
        .iter()
        .filter_map(|&i| {
            results[i].outcome.as_ref().ok().map(|c| (c.energy, c.front_latency(), results[i].area))
        })
        .collect();
    let mut front: Vec<usize> = pareto_front(&coords).into_iter().map(|k| points[k]).collect();
    let energy = |i: usize| results[i].outcome.as_ref().map_or(f64::INFINITY, |c| c.energy);
    front.sort_by(|&a, &b| energy(a).total_cmp(&energy(b)));
    SweepSummary { points, infeasible, front }
}

/// Evaluates `prepared` under `map` with `opts` on the designs `designs` (grid indices of
/// `sweep` over `base`, [`shard_designs`]), `jobs` designs at a time (`None`: one per core);
/// identical designs ([`design_key`]) are evaluated once. `on_done` is called, from the
/// evaluating threads, with the results of each distinct design and its identical ones as soon
/// as they are known; its error stops the run. A design that cannot run the workload is a
/// result, not an error. With `opts.cancel` set, no more designs start and the run returns
/// [`EngineError::Cancelled`] (the results handed to `on_done` stay valid).
#[allow(clippy::too_many_arguments)]
pub fn run_sweep(
    base: &Accelerator,
    sweep: &Sweep,
    designs: &[u128],
    map: &MappingFile,
    prepared: &Prepared<'_>,
    opts: &EvaluateOptions,
    jobs: Option<usize>,
    on_done: &(dyn Fn(&[DesignResult]) -> miette::Result<()> + Sync),
) -> miette::Result<SweepOutcome> {
    let start = Instant::now();
    let designs: Vec<(u128, Vec<f64>, Accelerator)> = designs
        .iter()
        .map(|&d| {
            let values = sweep.values_of(d);
            let acc = sweep.design(base, &values);
            (d, values, acc)
        })
        .collect();
    // The first design equal to each one.
    let mut first_of: HashMap<AcceleratorKey, usize> = HashMap::new();
    let same: Vec<Option<usize>> = designs
        .iter()
        .enumerate()
        .map(|(k, (_, _, acc))| match first_of.get(&design_key(acc)) {
            Some(&j) => Some(j),
            None => {
                first_of.insert(design_key(acc), k);
                None
            }
        })
        .collect();
    let result_of = |k: usize, outcome: &Result<DesignCost, DesignError>, seconds: f64| {
        let (d, values, acc) = &designs[k];
        DesignResult {
            design: *d,
            parameters: sweep.parameters.iter().zip(values).map(|(p, &v)| (p.name.clone(), v)).collect(),
            area: area(acc),
            seconds,
            outcome: outcome.clone(),
        }
    };
    // `None`: cancelled before or while this design was evaluated.
    let evaluate_one = |k: usize| -> Option<(Result<DesignCost, DesignError>, f64)> {
        if opts.cancelled() {
            return None;
        }
        let t = Instant::now();
        let res = evaluate(prepared, designs[k].2.clone(), map, opts, &|_| {}).and_then(|e| e.network_cost());
        let res = match res {
            Ok((energy, latency)) => {
                let tclk = crate::cost::ImcMacro::new(&designs[k].2.array).map(|m| m.tclk());
                let ns = tclk.map(|t| (t, latency * t));
                Ok(DesignCost { energy, latency, edp: energy * latency, ns })
            }
            Err(EngineError::Cancelled) => return None,
            Err(e) => Err(DesignError {
                code: e.code().map(|c| c.to_string()).unwrap_or_default(),
                message: e.to_string(),
            }),
        };
        Some((res, t.elapsed().as_secs_f64()))
    };
    let distinct: Vec<usize> = (0..designs.len()).filter(|&k| same[k].is_none()).collect();
    let run_all = || {
        distinct
            .par_iter()
            .map(|&k| {
                let Some((res, secs)) = evaluate_one(k) else { return Ok(Vec::new()) };
                let mut results = vec![result_of(k, &res, secs)];
                results.extend(
                    (0..designs.len()).filter(|&j| same[j] == Some(k)).map(|j| result_of(j, &res, 0.0)),
                );
                on_done(&results)?;
                Ok(results)
            })
            .collect::<miette::Result<Vec<Vec<DesignResult>>>>()
    };
    let done = match jobs {
        Some(n) => match rayon::ThreadPoolBuilder::new().num_threads(n).build() {
            Ok(pool) => pool.install(run_all),
            Err(_) => run_all(),
        },
        None => run_all(),
    }?;
    if opts.cancelled() {
        return Err(EngineError::Cancelled.into());
    }
    let mut results: Vec<DesignResult> = done.into_iter().flatten().collect();
    results.sort_by_key(|r| r.design);
    Ok(SweepOutcome { results, distinct: distinct.len(), seconds: start.elapsed().as_secs_f64() })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::network::{Cancel, default_mapping};
    use crate::sweep::Parameter;

    #[test]
    fn the_design_key_is_equal_exactly_for_equal_designs() {
        let (_, acc, _) = crate::network::tests::inputs();
        assert_eq!(design_key(&acc), design_key(&acc.clone()));
        let changed: Vec<fn(&mut Accelerator)> = vec![
            |a| a.name.push('2'),
            |a| a.array.dims[0].size = 4,
            |a| a.array.mac_energy = 0.05,
            |a| a.array.mac_area = 2.0,
            |a| a.array.systolic_dims = vec![0],
            |a| a.memories[1].size_bits /= 2,
            |a| a.memories[1].r_cost += 1e-9,
            |a| a.memories[1].area = 1.0,
            |a| a.memories[1].ports[0].bw_max = 256,
            |a| a.memories[0].served_dims.clear(),
            |a| a.memories[0].double_buffering = true,
        ];
        let mut keys = vec![design_key(&acc)];
        for change in &changed {
            let mut a = acc.clone();
            change(&mut a);
            assert_ne!(a, acc);
            keys.push(design_key(&a));
        }
        for i in 0..keys.len() {
            for j in 0..i {
                assert_ne!(keys[i], keys[j], "changes {i} and {j} give one key");
            }
        }
        // The same change made twice gives the same key.
        let (mut a, mut b) = (acc.clone(), acc.clone());
        changed[6](&mut a);
        changed[6](&mut b);
        assert_eq!(design_key(&a), design_key(&b));
    }

    fn sweep() -> Sweep {
        Sweep {
            parameters: vec![
                Parameter { name: "operational_array.sizes.D1".into(), values: vec![8.0, 4.0, 8.0] },
                Parameter { name: "memories.l1.size".into(), values: vec![4194304.0, 64.0] },
            ],
            sample: None,
            seed: 0,
        }
    }

    #[test]
    fn a_sweep_evaluates_identical_designs_once_and_reports_each() {
        let (w, base, _) = crate::network::tests::inputs();
        let p = Prepared::new(&w, true, false, &|_| None);
        let map = default_mapping();
        let sweep = sweep();
        let designs = shard_designs(&sweep, None);
        assert_eq!(designs, [0, 1, 2, 3, 4, 5]);
        assert_eq!(shard_designs(&sweep, Some((2, 4))), [1, 5]);
        let seen = Mutex::new(Vec::new());
        let opts = EvaluateOptions::default();
        let out = run_sweep(&base, &sweep, &designs, &map, &p, &opts, Some(2), &|r| {
            seen.lock().unwrap().extend(r.iter().map(|d| d.design));
            Ok(())
        })
        .unwrap();
        // Designs 4 and 5 are designs 0 and 1 again (D1 = 8 twice).
        assert_eq!(out.distinct, 4);
        let mut seen = seen.into_inner().unwrap();
        seen.sort_unstable();
        assert_eq!(seen, designs);
        assert_eq!(out.results.iter().map(|r| r.design).collect::<Vec<_>>(), designs);
        let r = &out.results;
        assert_eq!((r[4].outcome.clone(), r[4].seconds), (r[0].outcome.clone(), 0.0));
        assert_eq!(r[5].outcome, r[1].outcome);
        // Each design is what evaluating its accelerator alone gives.
        let alone = |d: u128| {
            let acc = sweep.design(&base, &sweep.values_of(d));
            evaluate(&p, acc, &map, &opts, &|_| {}).and_then(|e| e.network_cost())
        };
        let c = r[0].outcome.as_ref().unwrap();
        assert_eq!(alone(0).unwrap(), (c.energy, c.latency));
        assert_eq!(c.edp, c.energy * c.latency);
        // A 64-bit L1 holds no tile of the GEMM: that design cannot run it, and says why.
        let e = r[1].outcome.as_ref().unwrap_err();
        let alone = alone(1).unwrap_err();
        assert_eq!(e.code, miette::Diagnostic::code(&alone).unwrap().to_string());
        assert_eq!(e.message, alone.to_string());
        let s = out.summary();
        assert_eq!(s.points, [0, 2, 4]);
        assert_eq!(s.infeasible, [1, 3, 5]);
        assert!(!s.front.is_empty() && s.front.iter().all(|i| s.points.contains(i)));
        // The line: keys sorted, whole parameters as integers.
        let line = r[0].json_line("abc");
        assert!(line.starts_with("{\"area\":"), "{line}");
        assert!(line.contains("\"design\":\"0\",\"edp\":"), "{line}");
        assert!(
            line.contains("\"parameters\":{\"memories.l1.size\":4194304,\"operational_array.sizes.D1\":8}"),
            "{line}"
        );
        assert!(line.ends_with("\"sweep\":\"abc\"}"), "{line}");
        assert!(r[1].json_line("abc").contains(&format!("\"error\":\"{}: ", e.code)));
    }

    #[test]
    fn a_cancelled_sweep_starts_no_design() {
        let (w, base, _) = crate::network::tests::inputs();
        let p = Prepared::new(&w, true, false, &|_| None);
        let cancel = Cancel::new();
        cancel.cancel();
        let opts = EvaluateOptions { cancel: Some(cancel), ..EvaluateOptions::default() };
        let sweep = sweep();
        let called = Mutex::new(0);
        let e = run_sweep(
            &base,
            &sweep,
            &shard_designs(&sweep, None),
            &default_mapping(),
            &p,
            &opts,
            None,
            &|_| {
                *called.lock().unwrap() += 1;
                Ok(())
            },
        )
        .unwrap_err();
        assert_eq!(e.code().map(|c| c.to_string()).as_deref(), Some("qc::search::cancelled"));
        assert_eq!(*called.lock().unwrap(), 0);
    }

    #[test]
    fn the_options_key_changes_with_every_option_that_changes_numbers() {
        let base = EvaluateOptions::default();
        let key = |o: &EvaluateOptions, keep| SweepOptionsKey::of(o, keep).text();
        let mut search = base.search.clone().unwrap();
        search.lpf_limit = None;
        let variants = [
            key(&base, true),
            key(&EvaluateOptions { search: Some(search), ..base.clone() }, false),
            key(&EvaluateOptions { all_layers: true, ..base.clone() }, false),
            key(&EvaluateOptions { mapping_type: crate::cost::MappingType::Even, ..base.clone() }, false),
            key(&EvaluateOptions { locality: Some(Default::default()), ..base.clone() }, false),
        ];
        for v in &variants {
            assert_ne!(*v, key(&base, false));
        }
        // Threads and the flag change no number.
        let same = EvaluateOptions { jobs: Some(3), cancel: Some(Cancel::new()), ..base.clone() };
        assert_eq!(key(&same, false), key(&base, false));
    }
}
