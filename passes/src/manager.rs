//! The pass manager: builds a pipeline's passes from the registry and runs them.
//!
//! After every pass it can verify the IR (on by default in tests and debug builds), hand the
//! model to a hook (the driver prints it for `--print-ir-after`), and stop (`--stop-after`). It
//! records each run's time, whether it changed the model, and its statistics. A `fixpoint(...)`
//! group repeats until a whole round changes nothing, or stops at its cap; the outcome and the
//! reason are reported, never silent.

use std::sync::Arc;
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use qc_ir::target::Target;
use qc_ir::{LoopError, Model, VerifyError};

use crate::pass::{Changed, Pass, PassContext, PassError, PassWarning};
use crate::pipeline::{Item, Pipeline};
use crate::registry::{self, OptionError};

/// Why a pipeline cannot be built or could not finish.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ManagerError {
    #[error("there is no pass called `{name}`")]
    #[diagnostic(code(qc::pipeline::unknown_pass), help("{help}"))]
    UnknownPass { name: String, help: String },

    #[error(transparent)]
    #[diagnostic(transparent)]
    Option(#[from] OptionError),

    #[error("`{name}` is not a pass of this pipeline ({what})")]
    #[diagnostic(code(qc::pipeline::not_in_pipeline), help("the pipeline is: {pipeline}"))]
    NotInPipeline { name: String, what: &'static str, pipeline: String },

    #[error(transparent)]
    #[diagnostic(transparent)]
    Pass(#[from] PassError),

    #[error("pass `{pass}` left an invalid IR: {count} problem(s)")]
    #[diagnostic(
        code(qc::pass::broke_ir),
        help("this is a bug in qc; please report it with the model and the pipeline")
    )]
    BrokeIr {
        pass: String,
        count: usize,
        #[related]
        problems: Vec<VerifyError>,
    },

    #[error("pass `{pass}` produced an invalid workload: {count} problem(s)")]
    #[diagnostic(
        code(qc::pass::broke_loops),
        help("this is a bug in qc; please report it with the model and the pipeline")
    )]
    BrokeLoops {
        pass: String,
        count: usize,
        #[related]
        problems: Vec<LoopError>,
    },
}

impl ManagerError {
    /// `qc::pipeline::unknown_pass` for `name`, whose hint names the closest registered pass.
    pub fn unknown_pass(name: &str) -> ManagerError {
        ManagerError::UnknownPass {
            name: name.to_string(),
            help: match registry::closest(name) {
                Some(c) => format!("did you mean `{c}`? `qc optimize --list-passes` lists them all"),
                None => "`qc optimize --list-passes` lists the passes".into(),
            },
        }
    }
}

/// How a `fixpoint(...)` group ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FixpointStop {
    /// A whole round changed nothing.
    Converged,
    /// The group ran `max` rounds and the last still changed the model.
    Cap,
    /// `--stop-after` ended the pipeline inside the group.
    Stopped,
}

/// One run of one pass.
#[derive(Clone, Debug)]
pub struct PassRun {
    pub pass: &'static str,
    pub duration: Duration,
    pub changed: bool,
    pub stats: IndexMap<String, u64>,
}

/// One run of a fixpoint group.
#[derive(Clone, Debug)]
pub struct FixpointRun {
    /// The group as text, `fixpoint(a,b){max=20}`.
    pub group: String,
    pub rounds: u32,
    pub max: u32,
    pub stop: FixpointStop,
}

/// What a pipeline run did.
#[derive(Clone, Debug, Default)]
pub struct RunReport {
    pub runs: Vec<PassRun>,
    pub fixpoints: Vec<FixpointRun>,
    pub warnings: Vec<PassWarning>,
    /// Set when `--stop-after` ended the pipeline early.
    pub stopped_after: Option<String>,
    /// The loop nests of the last pass that produced them (`lower-to-loops`).
    pub workload: Option<qc_ir::Workload>,
}

/// Totals per pass, in the order passes first ran.
#[derive(Clone, Debug, Default)]
pub struct PassTotals {
    pub runs: u32,
    pub changed: u32,
    pub duration: Duration,
    pub stats: IndexMap<String, u64>,
}

impl RunReport {
    /// Statistics and time summed per pass.
    pub fn totals(&self) -> IndexMap<&'static str, PassTotals> {
        let mut out: IndexMap<&'static str, PassTotals> = IndexMap::new();
        for r in &self.runs {
            let t = out.entry(r.pass).or_default();
            t.runs += 1;
            t.changed += u32::from(r.changed);
            t.duration += r.duration;
            for (k, v) in &r.stats {
                *t.stats.entry(k.clone()).or_default() += v;
            }
        }
        out
    }

    /// The statistics as deterministic text (no times), for snapshots:
    /// `pass: counter=N, counter=N` per pass, then one line per fixpoint group.
    pub fn stats_text(&self) -> String {
        let mut s = String::new();
        for (pass, t) in self.totals() {
            let stats: Vec<String> = t.stats.iter().map(|(k, v)| format!("{k}={v}")).collect();
            s.push_str(&format!("{pass}: runs={} changed={}", t.runs, t.changed));
            if !stats.is_empty() {
                s.push_str(&format!(" {}", stats.join(" ")));
            }
            s.push('\n');
        }
        for f in &self.fixpoints {
            s.push_str(&format!("{}: {} round(s), {}\n", f.group, f.rounds, f.stop_text()));
        }
        s
    }

    /// The `--time-passes` table.
    pub fn timing_table(&self) -> String {
        let totals = self.totals();
        let all: Duration = totals.values().map(|t| t.duration).sum();
        let w = totals.keys().map(|k| k.len()).max().unwrap_or(4).max(4);
        let mut s = format!(
            "{:<w$}  {:>4}  {:>7}  {:>10}  {:>6}  statistics\n",
            "pass", "runs", "changed", "time", "share"
        );
        for (pass, t) in &totals {
            let share =
                if all.is_zero() { 0.0 } else { 100.0 * t.duration.as_secs_f64() / all.as_secs_f64() };
            let stats: Vec<String> = t.stats.iter().map(|(k, v)| format!("{k}={v}")).collect();
            s.push_str(&format!(
                "{pass:<w$}  {:>4}  {:>7}  {:>10}  {share:>5.1}%  {}\n",
                t.runs,
                t.changed,
                format!("{:.3} ms", t.duration.as_secs_f64() * 1e3),
                stats.join(" ")
            ));
        }
        s.push_str(&format!(
            "{:<w$}  {:>4}  {:>7}  {:>10}\n",
            "total",
            "",
            "",
            format!("{:.3} ms", all.as_secs_f64() * 1e3)
        ));
        s
    }
}

impl FixpointRun {
    pub fn stop_text(&self) -> String {
        match self.stop {
            FixpointStop::Converged => "converged".into(),
            FixpointStop::Cap => {
                format!("stopped at its cap of {} rounds while still changing the model", self.max)
            }
            FixpointStop::Stopped => "ended by --stop-after".into(),
        }
    }
}

enum Node {
    Pass(Box<dyn Pass>),
    Fixpoint { nodes: Vec<Node>, max: u32, text: String },
}

/// Options of a run.
pub struct ManagerOptions {
    /// Verify the IR after every pass (default: in debug builds and tests).
    pub verify_each: bool,
    /// Stop the whole pipeline after the first run of this pass.
    pub stop_after: Option<String>,
}

impl Default for ManagerOptions {
    fn default() -> ManagerOptions {
        ManagerOptions { verify_each: cfg!(debug_assertions), stop_after: None }
    }
}

/// Runs a pipeline.
pub struct PassManager {
    nodes: Vec<Node>,
    pipeline: Pipeline,
    options: ManagerOptions,
    target: Option<Arc<Target>>,
}

/// Called after every pass run with the pass name and the model.
pub type AfterPass<'a> = dyn FnMut(&str, &Model) + 'a;

impl PassManager {
    /// Builds every pass of `pipeline` from the registry.
    pub fn new(pipeline: Pipeline, options: ManagerOptions) -> Result<PassManager, ManagerError> {
        fn build(items: &[Item]) -> Result<Vec<Node>, ManagerError> {
            items
                .iter()
                .map(|item| match item {
                    Item::Pass { name, options } => {
                        let info = registry::lookup(name).ok_or_else(|| ManagerError::unknown_pass(name))?;
                        Ok(Node::Pass(registry::build(info, options)?))
                    }
                    Item::Fixpoint { items, max } => {
                        Ok(Node::Fixpoint { nodes: build(items)?, max: *max, text: item.to_string() })
                    }
                })
                .collect()
        }
        let nodes = build(&pipeline.items)?;
        if let Some(name) = &options.stop_after {
            Self::check_in_pipeline(&pipeline, name, "--stop-after")?;
        }
        Ok(PassManager { nodes, pipeline, options, target: None })
    }

    /// Gives every pass the DLA target to check against (see `PassContext::target`).
    pub fn with_target(mut self, target: Arc<Target>) -> PassManager {
        self.target = Some(target);
        self
    }

    /// Fails unless `name` is a pass of `pipeline` (for `--stop-after` and `--print-ir-after`).
    pub fn check_in_pipeline(
        pipeline: &Pipeline,
        name: &str,
        what: &'static str,
    ) -> Result<(), ManagerError> {
        if pipeline.pass_names().contains(&name) {
            Ok(())
        } else {
            Err(ManagerError::NotInPipeline { name: name.into(), what, pipeline: pipeline.to_string() })
        }
    }

    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// Runs the pipeline on `model`, calling `after` after every pass.
    pub fn run(&mut self, model: &mut Model, after: &mut AfterPass<'_>) -> Result<RunReport, ManagerError> {
        let mut report = RunReport::default();
        let mut run = Run {
            options: &self.options,
            report: &mut report,
            after,
            stopped: false,
            target: self.target.clone(),
        };
        run.nodes(&mut self.nodes, model)?;
        Ok(report)
    }
}

struct Run<'r, 'a> {
    options: &'r ManagerOptions,
    report: &'r mut RunReport,
    after: &'r mut AfterPass<'a>,
    stopped: bool,
    target: Option<Arc<Target>>,
}

impl Run<'_, '_> {
    /// Runs `nodes` once; returns whether any pass changed the model.
    fn nodes(&mut self, nodes: &mut [Node], model: &mut Model) -> Result<bool, ManagerError> {
        let mut changed = false;
        for node in nodes {
            if self.stopped {
                break;
            }
            changed |= match node {
                Node::Pass(pass) => self.pass(pass.as_mut(), model)?,
                Node::Fixpoint { nodes, max, text } => {
                    let mut rounds = 0;
                    let mut any = false;
                    let stop = loop {
                        rounds += 1;
                        let round_changed = self.nodes(nodes, model)?;
                        any |= round_changed;
                        if self.stopped {
                            break FixpointStop::Stopped;
                        }
                        if !round_changed {
                            break FixpointStop::Converged;
                        }
                        if rounds >= *max {
                            break FixpointStop::Cap;
                        }
                    };
                    let run = FixpointRun { group: text.clone(), rounds, max: *max, stop };
                    if run.stop == FixpointStop::Cap {
                        self.report.warnings.push(PassWarning {
                            pass: "fixpoint",
                            code: "qc::pass::fixpoint_cap".into(),
                            message: format!("{} {}", run.group, run.stop_text()),
                            help: Some(
                                "raise the cap with {max=N}, or look for two passes that undo each other"
                                    .into(),
                            ),
                        });
                    }
                    self.report.fixpoints.push(run);
                    any
                }
            };
        }
        Ok(changed)
    }

    fn pass(&mut self, pass: &mut dyn Pass, model: &mut Model) -> Result<bool, ManagerError> {
        let mut cx = PassContext { target: self.target.clone(), ..Default::default() };
        let start = Instant::now();
        let changed = pass.run(model, &mut cx)? == Changed::Yes;
        let duration = start.elapsed();
        let name = pass.name();
        if self.options.verify_each {
            let problems = qc_ir::verify_model(model);
            if !problems.is_empty() {
                return Err(ManagerError::BrokeIr { pass: name.into(), count: problems.len(), problems });
            }
        }
        if let Some(w) = cx.workload.take() {
            // Always checked (it is cheap): the cost backends rely on a well-formed workload.
            let problems = qc_ir::verify_workload(&w);
            if !problems.is_empty() {
                return Err(ManagerError::BrokeLoops { pass: name.into(), count: problems.len(), problems });
            }
            self.report.workload = Some(w);
        }
        for w in cx.warnings {
            if !self.report.warnings.contains(&w) {
                self.report.warnings.push(w);
            }
        }
        self.report.runs.push(PassRun { pass: name, duration, changed, stats: cx.stats });
        (self.after)(name, model);
        if self.options.stop_after.as_deref() == Some(name) {
            self.stopped = true;
            self.report.stopped_after = Some(name.into());
        }
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qc_ir::{Graph, Op};

    /// Changes the model (renames the graph) on its first `times` runs.
    struct Countdown {
        times: u32,
    }

    impl Pass for Countdown {
        fn name(&self) -> &'static str {
            "countdown"
        }
        fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
            if self.times == 0 {
                return Ok(Changed::No);
            }
            self.times -= 1;
            model.graph.name = Some(format!("left {}", self.times));
            cx.count("ticks", 1);
            Ok(Changed::Yes)
        }
    }

    /// Adds an op that reads a value nothing defines.
    struct Breaker;

    impl Pass for Breaker {
        fn name(&self) -> &'static str {
            "breaker"
        }
        fn run(&mut self, model: &mut Model, _: &mut PassContext) -> Result<Changed, PassError> {
            let g = &mut model.graph;
            let (a, b) = (g.value_named("ghost"), g.value_named("out"));
            g.add_op(Op::new("Relu", None), vec![Some(a)], vec![Some(b)]);
            Ok(Changed::Yes)
        }
    }

    fn manager(nodes: Vec<Node>, stop_after: Option<&str>) -> PassManager {
        PassManager {
            nodes,
            pipeline: Pipeline::default(),
            options: ManagerOptions { verify_each: true, stop_after: stop_after.map(str::to_string) },
            target: None,
        }
    }

    fn fixpoint(times: u32, max: u32) -> Node {
        Node::Fixpoint {
            nodes: vec![Node::Pass(Box::new(Countdown { times }))],
            max,
            text: format!("fixpoint(countdown){{max={max}}}"),
        }
    }

    #[test]
    fn fixpoints_converge_or_report_their_cap() {
        let mut model = Model { graph: Graph::new(), ..Default::default() };
        let report = manager(vec![fixpoint(3, 10)], None).run(&mut model, &mut |_, _| {}).unwrap();
        assert_eq!(report.fixpoints[0].rounds, 4);
        assert_eq!(report.fixpoints[0].stop, FixpointStop::Converged);
        assert_eq!(report.totals()["countdown"].stats["ticks"], 3);
        assert!(report.warnings.is_empty());

        let report = manager(vec![fixpoint(30, 5)], None).run(&mut model, &mut |_, _| {}).unwrap();
        assert_eq!(report.fixpoints[0].rounds, 5);
        assert_eq!(report.fixpoints[0].stop, FixpointStop::Cap);
        assert_eq!(report.warnings[0].code, "qc::pass::fixpoint_cap");
        assert!(report.stats_text().contains("stopped at its cap of 5 rounds"), "{}", report.stats_text());
    }

    #[test]
    fn stop_after_ends_the_pipeline_and_hooks_see_every_pass() {
        let mut model = Model::default();
        let nodes = vec![Node::Pass(Box::new(Countdown { times: 1 })), fixpoint(5, 10)];
        let mut seen = Vec::new();
        let report =
            manager(nodes, Some("countdown")).run(&mut model, &mut |p, _| seen.push(p.to_string())).unwrap();
        assert_eq!(seen, ["countdown"]);
        assert_eq!(report.stopped_after.as_deref(), Some("countdown"));
        assert!(report.fixpoints.is_empty());
    }

    #[test]
    fn a_pass_that_breaks_the_ir_is_caught() {
        let mut model = Model::default();
        let err =
            manager(vec![Node::Pass(Box::new(Breaker))], None).run(&mut model, &mut |_, _| {}).unwrap_err();
        assert!(
            matches!(&err, ManagerError::BrokeIr { pass, problems, .. } if pass == "breaker" && !problems.is_empty()),
            "{err:?}"
        );
    }

    /// Hands back a workload whose layer loops over a dim of size 0, read by an undeclared index.
    struct BadLowering;

    impl Pass for BadLowering {
        fn name(&self) -> &'static str {
            "bad-lowering"
        }
        fn run(&mut self, _: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
            let operand = |role: &str, index: &str| qc_ir::Operand {
                role: role.into(),
                index: vec![index.into()],
                precision: Some(8),
                quant: None,
                source: qc_ir::Source::Constant,
                value: role.to_lowercase(),
            };
            let layer = qc_ir::LoopNest {
                name: "layer".into(),
                id: 0,
                op_type: "Relu".into(),
                compute: qc_ir::Compute::Add,
                dims: vec![qc_ir::LoopDim { name: "K".into(), size: 0 }],
                output: operand("O", "k"),
                inputs: vec![operand("I", "c")],
                relations: Vec::new(),
                psum_precision: None,
                psum_rule: qc_ir::PsumRule::None,
            };
            cx.workload = Some(qc_ir::Workload { layers: vec![layer], not_lowered: Vec::new() });
            Ok(Changed::No)
        }
    }

    #[test]
    fn a_pass_that_produces_an_invalid_workload_is_caught_even_without_verify_each() {
        let mut model = Model::default();
        let mut m = manager(vec![Node::Pass(Box::new(BadLowering))], None);
        m.options.verify_each = false;
        let err = m.run(&mut model, &mut |_, _| {}).unwrap_err();
        let ManagerError::BrokeLoops { pass, problems, .. } = &err else { panic!("{err:?}") };
        assert_eq!(pass, "bad-lowering");
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "layer `layer`: loop dim `K` has size 0",
                "layer `layer`: index `c` of operand `I` is neither a loop dim nor a relation",
            ]
        );
    }

    #[test]
    fn pipelines_are_built_from_the_registry() {
        let p = Pipeline::parse("fixpoint(eliminate-dead){max=3}").unwrap();
        assert!(PassManager::new(p.clone(), ManagerOptions::default()).is_ok());
        let bad = Pipeline::parse("eliminate-dead,nonsense").unwrap();
        assert!(matches!(
            PassManager::new(bad, ManagerOptions::default()),
            Err(ManagerError::UnknownPass { .. })
        ));
        let opts = ManagerOptions { stop_after: Some("infer".into()), ..Default::default() };
        assert!(matches!(PassManager::new(p, opts), Err(ManagerError::NotInPipeline { .. })));
    }
}
