//! Temporal mapping search: ZigZag 3.9.1's LOMA (loop-order-based memory allocation,
//! `research/zigzag.md` 4.2) for one layer and one spatial mapping, exact, deterministic, and
//! extended beyond LOMA's `lpf_limit` with a budget.
//!
//! [`search_temporal`]:
//! 1. The temporal loops ([`crate::cost::Evaluator::temporal_sizes`], size-1 dims dropped) are
//!    factorised into loop prime factors (LPFs), and merged down to `lpf_limit` with ZigZag's
//!    rule (the limit is raised to the number of temporal dims; while there are too many LPFs,
//!    the first dim in layer order with the most LPFs multiplies its two smallest factors that
//!    are not user-fixed sizes). The resulting multiset is exactly LOMA's.
//! 2. Every distinct permutation of the multiset is an ordering (innermost first), enumerated in
//!    lexicographic order of `(layer dim index, size)`; a partial `temporal_ordering` restricts
//!    them as ZigZag's `LayerTemporalOrdering.get_constraints` does (entry `i` fixes the dim, and
//!    with a size also the size, of the loop at position `i`; after a `("*", Rest)` marker,
//!    positions count from the outermost loop). A complete `temporal_ordering` (every size given,
//!    multiplying to the temporal loops) is used as is, as in ZigZag.
//! 3. Each ordering is allocated to the memories (ZigZag's bottom-up allocator,
//!    [`crate::cost::Evaluator::allocate_order`]); orderings the memories cannot hold are
//!    skipped, as ZigZag skips them; the others are evaluated, and the best under the
//!    [`Objective`] is kept. Ties go to the other metric (energy <-> latency, EDP
//!    ties to energy), then to the first evaluated, so the result is deterministic.
//!
//! Beyond LOMA: with `lpf_limit: None` (no merging) or a limit above [`SEED_LPF_LIMIT`], the
//! space can be huge. The search then runs in three phases, all within the budget:
//! (a) the LOMA space at [`SEED_LPF_LIMIT`] (at most 720 orderings of merged loops), (b) the
//! refinements of its best ordering (each merged loop split back into its factors, in every
//! arrangement, in place), (c) the full space in lexicographic order. The result is the best of
//! everything evaluated (a merged ordering is a valid mapping too); `exhaustive` says whether (c)
//! finished, `visited`/`space` how far it got.
//!
//! Exactness notes (checked against ZigZag 3.9.1 on every recorded run: same LPF multiset and
//! space size on all 191 layers, and a best mapping as good as ZigZag's on every layer):
//! - ZigZag's merging breaks ties between dims by its parser's dim order, which for ONNX layers
//!   differs from qc's lowering; pass [`zigzag_onnx_dim_order`] as `merge_order` for those.
//! - Fixed sizes that ZigZag's `reduce_static_fps` or merging mishandles (a fixed size of two
//!   distinct primes, or merging a dim that has a fixed size) make ZigZag go on with loops that
//!   do not multiply to the layer; qc reports `qc::search::inconsistent_ordering` instead.
//! - ZigZag's workload reader drops `temporal_ordering` entries whose dim the layer lacks, which
//!   includes the `("*", "*")` outer-loop marker, so ZigZag never applies it; qc's mapping reader
//!   rejects `*` as a dim. This API accepts `("*", OrderSize::Rest)` and applies it as
//!   `get_constraints` defines (later entries count from the outermost loop).
//!
//! Pruning ([`TemporalOptions::prune`], on by default; exact): orderings are enumerated with the
//! innermost loops varying last, so the orderings sharing the first `j` loops come together.
//! After each evaluation, [`crate::cost::Evaluator::prefix_bounds`] gives, for every `j`, lower
//! bounds on the energy and latency of all orderings sharing its first `j` loops (the cost terms
//! those loops decide, exactly; floors for the rest); the search skips the rest of the shortest
//! such group that cannot beat the best so far, and likewise the rest of a group whose first
//! loops already overflow a memory. `pruned` counts the orderings skipped.
//! `tests/tests/it/loma_zigzag.rs` checks that the bounds are lower bounds (560,700 (ordering,
//! prefix) pairs) and that pruning changes no result (894 searches, both mapping types, three
//! objectives). The gain is modest on ZigZag's example accelerators, whose large lowest memories
//! leave most decisions to the outermost loops: 14% fewer orderings allocated over those 894
//! LOMA-6 searches, which about pays for the bounds; with hint-only mapping files and every
//! spatial candidate it skips a fifth of the orderings.
//!
//! Memoised allocation: the allocator's decision for a memory depends on the innermost loops up
//! to [`crate::cost::AllocTrace::cut_req`] only, so one [`crate::cost::Allocator`] carried from
//! ordering to ordering replays the decisions whose loops the next ordering shares (the lowest
//! memories, decided once per group of orderings) and makes only the others. The same test
//! checks that memoised allocations, traces and errors equal fresh ones on its 80,100
//! orderings (a third of the memory decisions are replayed there).
//!
//! Speed: each ordering costs one memoised allocation, one evaluation
//! ([`crate::cost::Evaluator::evaluate_order`], with buffers reused so that the inner loop
//! allocates no memory) and its bounds. ResNet-18 on tpu_like at `--lpf-limit 8` (219,764
//! orderings allocated) takes 0.72 s on one thread, about 300,000 orderings per second (before
//! the buffers were reused and the allocator memoised: 2.0 s, 110,000 per second, 40% of it in
//! malloc and free).

mod loma;
mod lpf;
pub mod optimal;

pub use loma::{PROGRESS_BATCH, search_temporal, search_temporal_observed, temporal_space};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::cost::{CostError, CostOptions, LayerCost, MappingType};
use crate::mapping::{TemporalLoop, TemporalMapping};
use qc_ir::LoopNest;

/// The LPF limit of the seed phase for larger spaces (ZigZag's API default).
pub const SEED_LPF_LIMIT: usize = 6;

/// What the search minimises.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Objective {
    /// Energy; ties broken by latency (ZigZag's `MinimalEnergyStage`).
    Energy,
    /// Latency (ZigZag's `latency_total2`); ties broken by energy (`MinimalLatencyStage`).
    #[default]
    Latency,
    /// Energy times latency; ties broken by energy.
    Edp,
}

impl Objective {
    /// Whether `a` is strictly better than `b`.
    pub fn better(self, a: &LayerCost, b: &LayerCost) -> bool {
        match self {
            Objective::Energy => a.energy < b.energy || (a.energy == b.energy && a.latency < b.latency),
            Objective::Latency => a.latency < b.latency || (a.latency == b.latency && a.energy < b.energy),
            Objective::Edp => {
                let (x, y) = (a.energy * a.latency, b.energy * b.latency);
                x < y || (x == y && a.energy < b.energy)
            }
        }
    }
}

/// Options of [`search_temporal`].
#[derive(Clone, Debug, PartialEq)]
pub struct TemporalOptions {
    /// LOMA's `lpf_limit` (ZigZag's API default: 6); `None` merges no factors.
    pub lpf_limit: Option<usize>,
    pub mapping_type: MappingType,
    /// Stop after this much wall time (checked before each evaluation), once an ordering that
    /// fits the memories has been found: a search cut short still returns a mapping.
    pub budget: Option<Duration>,
    /// Stop after this many allocations (orderings tried, fitting or not).
    pub max_evaluations: Option<u64>,
    pub cost: CostOptions,
    /// The order in which LOMA's factor merging visits the dims, deciding ties between dims
    /// with equally many factors: ZigZag visits them in the order its parser created them.
    /// `None` (or dims not listed, after the listed ones) = the layer's own order, which is
    /// ZigZag's for layers read from ZigZag's workload YAML; for layers lowered from ONNX, pass
    /// [`zigzag_onnx_dim_order`].
    pub merge_order: Option<Vec<String>>,
    /// Skip the orderings that share innermost loops with an evaluated one when a lower bound
    /// on their cost ([`crate::cost::Evaluator::prefix_bounds`]) shows none can be better than the
    /// best so far. Exact: the result is the same with and without (only faster).
    pub prune: bool,
    /// Stop as soon as this flag is set (checked where the budget is): the search returns what
    /// it has, and the caller, which set the flag, discards it.
    pub cancel: Option<Cancel>,
    /// A cost reached elsewhere (under another spatial mapping of the same layer, by
    /// [`optimal`]'s branch and bound): orderings whose lower bounds show they cannot beat it are
    /// pruned as if it were the best so far. The result is still the best ordering this search
    /// found, which may be worse than the incumbent. `None` (the default) changes nothing.
    pub incumbent: Option<LayerCost>,
    /// With `prune`, no `lpf_limit`, no ordering constraints, the energy objective and the
    /// uneven mapping type: also skip the orderings whose innermost loops reach a state (the
    /// multiset of those loops and the allocation so far) that an earlier prefix reached with
    /// no more decided energy (`spec/optimal.md`, "Dominance"). Exact, like `prune`; counted in
    /// [`TemporalResult::pruned_dominated`]. Ignored where its conditions do not hold.
    pub dominance: bool,
    /// With `prune`: also skip the orderings whose lower bound, raised by this fraction, is
    /// above the best so far (`bound * (1 + tolerance) > best`): those that could improve on it
    /// by less than the fraction. 0 (the default) is exact. The least bound of what was skipped
    /// is [`TemporalResult::least_pruned_bound`], so a caller can prove how far the result may be
    /// above the optimum.
    pub tolerance: f64,
    /// With `prune`: a lower bound on the temporal cycles plus the stall of every ordering under
    /// this spatial mapping ([`crate::bound::LayerBound::stall_floor`], as the exact search gives
    /// it), which raises the latency prefix bounds. 0 (the default) adds nothing.
    pub streaming_floor: f64,
}

/// A cancellation flag shared between a running search and whoever may stop it (a Ctrl-C
/// handler, another thread): [`Cancel::cancel`] sets it, the search polls it between orderings.
/// Two flags are equal when they are the same flag.
#[derive(Clone, Debug, Default)]
pub struct Cancel(pub Arc<AtomicBool>);

impl Cancel {
    /// A flag not set.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Sets the flag: the searches polling it stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether the flag is set.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl PartialEq for Cancel {
    fn eq(&self, other: &Cancel) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl From<Arc<AtomicBool>> for Cancel {
    fn from(flag: Arc<AtomicBool>) -> Cancel {
        Cancel(flag)
    }
}

/// The dims of `layer` in the order ZigZag 3.9.1's ONNX parsers create them (`B K G OX OY C FX
/// FY` for convolutions, `C D K B H` for Gemm and MatMul); dims ZigZag would not create come
/// last, in the layer's order. qc's lowering orders dims differently (`B G K C OY OX FY FX`).
pub fn zigzag_onnx_dim_order(layer: &LoopNest) -> Vec<String> {
    let has = |n: &str| layer.dims.iter().any(|d| d.name == n);
    let zz: &[&str] =
        if has("D") { &["C", "D", "K", "B", "H"] } else { &["B", "K", "G", "OX", "OY", "C", "FX", "FY"] };
    let mut out: Vec<String> = zz.iter().filter(|n| has(n)).map(|n| (*n).to_string()).collect();
    for d in &layer.dims {
        if !out.contains(&d.name) {
            out.push(d.name.clone());
        }
    }
    out
}

impl Default for TemporalOptions {
    fn default() -> Self {
        TemporalOptions {
            lpf_limit: Some(6),
            mapping_type: MappingType::Uneven,
            budget: None,
            max_evaluations: None,
            cost: CostOptions::default(),
            merge_order: None,
            prune: true,
            cancel: None,
            incumbent: None,
            dominance: false,
            tolerance: 0.0,
            streaming_floor: 0.0,
        }
    }
}

/// The best temporal mapping found.
#[derive(Clone, Debug, PartialEq)]
pub struct TemporalResult {
    /// The allocated mapping (what [`crate::cost::evaluate`] takes).
    pub temporal: TemporalMapping,
    /// Its loop order, innermost first.
    pub order: Vec<TemporalLoop>,
    pub cost: LayerCost,
    /// Orderings allocated (all phases; an ordering the memories cannot hold counts too).
    pub evaluated: u64,
    /// Orderings allocated that the memories could not hold.
    pub skipped: u64,
    /// Orderings of the space not allocated because a lower bound showed they cannot be
    /// better, or their innermost loops already overflowed a memory (counted in `visited`).
    pub pruned: u64,
    /// Of `pruned`, those of the space (`pruned` also counts the orderings of merged loops a
    /// search beyond LOMA's limit skips in its seed phase).
    pub space_pruned: u64,
    /// Of `space_pruned`, the orderings skipped because their innermost loops already overflow
    /// a memory (the others were skipped by a lower bound or dominated).
    pub pruned_capacity: u64,
    /// Of `space_pruned`, the orderings skipped because their innermost loops reach a state an
    /// earlier prefix reached with no more decided energy ([`TemporalOptions::dominance`]).
    pub pruned_dominated: u64,
    /// Distinct states of prefixes recorded by the dominance test (0 without it).
    pub states: u64,
    /// The least lower bound (the objective's value: energy, cycles or their product) of the
    /// orderings of the space skipped by a bound (`None`: none was). With no tolerance it is
    /// above the best found at the time of the skip; with one it may be below the result, and
    /// no ordering so skipped (nor any skipped as dominated) is below it.
    pub least_pruned_bound: Option<f64>,
    /// Orderings of the full space visited (before constraints), at most `space`.
    pub visited: u64,
    /// Distinct orderings of the LPF multiset (ZigZag's `nb_permutations`, before constraints;
    /// saturates at `u64::MAX`).
    pub space: u64,
    /// The LPFs: `(dim, size)` pairs, the multiset whose orderings form the space.
    pub lpfs: Vec<TemporalLoop>,
    /// Whether the whole space was visited.
    pub exhaustive: bool,
}

/// Why the search found nothing.
#[derive(Debug, Clone, PartialEq, thiserror::Error, miette::Diagnostic)]
pub enum SearchError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Cost(#[from] CostError),

    #[error("layer `{layer}`: no loop ordering fits the memories: {reason}")]
    #[diagnostic(
        code(qc::search::nothing_fits),
        help(
            "every ordering tried overflows memory `{memory}`; use a smaller spatial unrolling, a bigger `{memory}`, or another temporal_ordering"
        )
    )]
    NothingFits { layer: String, memory: String, reason: String, tried: u64 },

    /// The budget ran out before an ordering that fits the memories was found (`tried`
    /// orderings were allocated, none fitting).
    #[error(
        "layer `{layer}`: the budget ran out before an ordering that fits the memories was found ({tried} tried)"
    )]
    #[diagnostic(code(qc::search::no_budget), help("give the search more time or evaluations"))]
    NoBudget { layer: String, tried: u64 },

    #[error(
        "layer `{layer}`: the temporal_ordering fixes a loop of `{dim}` of size {size}, which the temporal loops of `{dim}` (size {temporal}) cannot provide"
    )]
    #[diagnostic(
        code(qc::search::bad_ordering_size),
        help("a fixed size must be a product of prime factors of the dim's temporal loop size")
    )]
    BadOrderingSize { layer: String, dim: String, size: u64, temporal: u64 },

    #[error(
        "layer `{layer}`: the temporal_ordering's sizes for `{dim}` leave factors that do not multiply to its temporal size {temporal}"
    )]
    #[diagnostic(
        code(qc::search::inconsistent_ordering),
        help(
            "ZigZag's factor merging cannot honour these fixed sizes (it only handles sizes that are products of one prime); give prime sizes or a complete ordering"
        )
    )]
    InconsistentOrdering { layer: String, dim: String, temporal: u64 },

    #[error(
        "layer `{layer}`: the temporal_ordering constrains position {position}, but there are only {loops} temporal loops"
    )]
    #[diagnostic(
        code(qc::search::ordering_too_long),
        help("give at most as many entries as there are loop prime factors (after merging)")
    )]
    OrderingTooLong { layer: String, position: i64, loops: usize },
}
