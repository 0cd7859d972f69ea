//! The cost model (ZigZag's, `research/zigzag.md` section 3): energy and latency of one layer
//! under one spatial and temporal mapping on an accelerator, reproducing ZigZag 3.9.1's
//! `CostModelEvaluation` number for number (`spec/cost.md`).
//!
//! - [`evaluate`]: one evaluation. For many temporal mappings of the same layer, accelerator,
//!   links and spatial mapping, build an [`Evaluator`] once and call [`Evaluator::evaluate`].
//! - [`allocate`]: ZigZag's (LOMA's) bottom-up memory allocator, which cuts one complete loop
//!   order into per-operand, per-level temporal loops.
//!
//! Conventions: energies are in the accelerator's unit (pJ for ZigZag's files), cycles are
//! cycles of the operational array, memory accesses count full `bw_max` words. Per-direction
//! arrays (`[_; 4]`) are indexed in [`Direction::ALL`] order (`fh`, `tl`, `fl`, `th`).

mod alloc;
mod eval;
pub mod imc;
pub(crate) mod model;

pub use alloc::{AllocOptions, AllocTrace, Allocation, Allocator, MappingType, allocate};
pub use eval::{EvalScratch, Evaluator, Floors, PrefixBounds};
pub use imc::{ImcLayerCost, ImcMacro};

use crate::arch::{Accelerator, Direction, MemOperand};
use crate::mapping::{OperandLinks, SpatialMapping, TemporalMapping};
use qc_ir::LoopNest;

/// Which ZigZag version's latency model to reproduce.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum LatencyModel {
    /// ZigZag 3.9.1 (PyPI): on-loading overlap reduced largest-first and clamped
    /// (`reduce_ordered`), systolic drain added, unused memory operands skipped.
    #[default]
    Zigzag391,
    /// The repository at commit 3d12a96: on-loading overlap by water filling
    /// (`reduce_balanced`, which may go below the minimum), no systolic drain.
    Zigzag3d12a96,
}

/// Options of the cost model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CostOptions {
    pub latency_model: LatencyModel,
}

/// The cost of one layer under one mapping.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LayerCost {
    /// `mac_energy + mem_energy`.
    pub energy: f64,
    /// Energy per MAC times the layer's iterations (independent of utilisation).
    pub mac_energy: f64,
    /// Sum of all memory access energies.
    pub mem_energy: f64,
    /// Per layer operand: output first, then the inputs in the layer's order.
    pub operands: Vec<OperandCost>,
    /// `ceil(iterations / MAC units)` (times the cycles per MAC of an IMC array).
    pub ideal_cycle: u64,
    /// The product of all temporal loops (integer spatial unrolling), times the cycles per MAC
    /// of an IMC array.
    pub ideal_temporal_cycle: u64,
    /// Stall (+) or slack (-) per memory port that carries at least one active link.
    pub port_stalls: Vec<PortStall>,
    /// Combined stall: `max(0, max over ports)`.
    pub stall_slack_comb: i64,
    /// Cycles loading the inputs before computation starts.
    pub onload: f64,
    /// Cycles draining the outputs after computation ends.
    pub offload: f64,
    /// Cycles for the last results to leave a systolic array (3.9.1 only, else 0).
    pub systolic_drain: u64,
    /// `ideal_temporal_cycle + stall_slack_comb` (ZigZag's `latency_total0`).
    pub latency_total0: f64,
    /// `latency_total0 + onload` (`latency_total1`).
    pub latency_total1: f64,
    /// `latency_total1 + offload + systolic_drain` (`latency_total2`): the latency.
    pub latency: f64,
    /// `ideal_cycle / ideal_temporal_cycle`.
    pub spatial_utilization: f64,
    /// `ideal_cycle / latency`.
    pub mac_utilization: f64,
    /// On an in-memory-compute array: the operational energy by part and the clock period
    /// (`mac_energy` is then the sum of the parts, and the cycles above are array cycles of
    /// `tclk` ns, `cycles_per_mac` per MAC).
    pub imc: Option<ImcLayerCost>,
}

impl LayerCost {
    /// The latency in ns, on an in-memory-compute array (whose clock period the model derives).
    pub fn latency_ns(&self) -> Option<f64> {
        self.imc.as_ref().map(|i| self.latency * i.tclk)
    }
}

/// The memory traffic and energy of one layer operand.
#[derive(Clone, Debug, PartialEq)]
pub struct OperandCost {
    /// The operand's role letter (`O`, `W`, `I`, ...).
    pub role: String,
    /// The memory operand it is linked to.
    pub mem_operand: MemOperand,
    /// Per memory level of the operand, lowest first.
    pub levels: Vec<LevelCost>,
}

/// One (operand, memory level).
#[derive(Clone, Debug, PartialEq)]
pub struct LevelCost {
    /// Index into [`Accelerator::memories`].
    pub memory: usize,
    /// Elements of the operand one instance of this memory holds (the tile).
    pub tile_elems: u64,
    /// Bits of that tile (partial-sum precision for an output still being reduced).
    pub tile_bits: u64,
    /// Memory instances holding distinct or duplicated copies (`unit_count`).
    pub instances: u64,
    /// Full-width word accesses per direction, all instances together.
    pub accesses: [u64; 4],
    /// Energy per direction.
    pub energy: [f64; 4],
}

impl LevelCost {
    /// Total energy of this (operand, level).
    pub fn total_energy(&self) -> f64 {
        self.energy.iter().sum()
    }

    /// Accesses in direction `dir`.
    pub fn accesses_in(&self, dir: Direction) -> u64 {
        self.accesses[dir_index(dir)]
    }
}

/// The stall (positive) or slack (negative) of one memory port over the whole computation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortStall {
    /// Index into [`Accelerator::memories`].
    pub memory: usize,
    /// Index into that memory's `ports`.
    pub port: usize,
    pub stall_slack: i64,
}

pub(crate) fn dir_index(d: Direction) -> usize {
    match d {
        Direction::FromHigh => 0,
        Direction::ToLow => 1,
        Direction::FromLow => 2,
        Direction::ToHigh => 3,
    }
}

/// Evaluates one mapping: see the module documentation.
pub fn evaluate(
    layer: &LoopNest,
    acc: &Accelerator,
    links: &OperandLinks,
    spatial: &SpatialMapping,
    temporal: &TemporalMapping,
    opts: &CostOptions,
) -> Result<LayerCost, CostError> {
    Evaluator::new(layer, acc, links, spatial)?.evaluate(temporal, opts)
}

/// Why a mapping cannot be evaluated or allocated.
#[derive(Debug, Clone, PartialEq, thiserror::Error, miette::Diagnostic)]
pub enum CostError {
    #[error("layer `{layer}`: the mapping names dim `{dim}`, which the layer does not have")]
    #[diagnostic(code(qc::costmodel::unknown_dim), help("the layer's dims are: {known}"))]
    UnknownDim { layer: String, dim: String, known: String },

    #[error(
        "layer `{layer}`: the spatial mapping names array dim `{array_dim}`, which `{accelerator}` does not have"
    )]
    #[diagnostic(code(qc::costmodel::unknown_array_dim), help("the operational array's dims are: {known}"))]
    UnknownArrayDim { layer: String, array_dim: String, accelerator: String, known: String },

    #[error("layer `{layer}`: array dim `{array_dim}` is listed twice in the spatial mapping")]
    #[diagnostic(
        code(qc::costmodel::duplicate_array_dim),
        help("list each array dim once, with all its unrollings")
    )]
    DuplicateArrayDim { layer: String, array_dim: String },

    #[error("layer `{layer}`: array dim `{array_dim}` (size {size}) unrolls {product} iterations")]
    #[diagnostic(
        code(qc::costmodel::array_dim_overfull),
        help("the product of the unrollings on an array dim must not exceed its size")
    )]
    ArrayDimOverfull { layer: String, array_dim: String, product: u64, size: u64 },

    #[error("layer `{layer}`: dim `{dim}` (size {size}) is unrolled {unrolling} times")]
    #[diagnostic(
        code(qc::costmodel::over_unrolled),
        help("the total spatial unrolling of a dim must be at least 1 and at most its size")
    )]
    OverUnrolled { layer: String, dim: String, unrolling: u64, size: u64 },

    #[error("layer `{layer}`: operand `{role}` has no memory operand link")]
    #[diagnostic(code(qc::costmodel::no_link), help("add `{role}` to the mapping's memory operand links"))]
    NoLink { layer: String, role: String },

    #[error(
        "layer `{layer}`: operand `{role}` is linked to `{mem_operand}`, which no memory of `{accelerator}` holds"
    )]
    #[diagnostic(
        code(qc::costmodel::no_memory),
        help("give the accelerator a memory hierarchy for `{mem_operand}`")
    )]
    NoMemory { layer: String, role: String, mem_operand: MemOperand, accelerator: String },

    #[error("layer `{layer}`: its loop sizes {sizes} multiply past 2^64 iterations")]
    #[diagnostic(
        code(qc::costmodel::too_large),
        help(
            "the cost model counts a layer's iterations in 64 bits; check the model's dims (--overwrite-input-shape)"
        )
    )]
    TooLarge { layer: String, sizes: String },

    #[error("layer `{layer}`: the data-transfer stalls at memory `{memory}` pass 2^63 cycles")]
    #[diagnostic(
        code(qc::costmodel::stall_too_large),
        help("the memory's bandwidth is far too small for this layer's data, or the layer's dims are wrong")
    )]
    StallTooLarge { layer: String, memory: String },

    #[error("layer `{layer}`: operand `{role}` has no precision")]
    #[diagnostic(
        code(qc::costmodel::missing_precision),
        help("give the operand a bit width (`--default-precision`)")
    )]
    MissingPrecision { layer: String, role: String },

    #[error("layer `{layer}`: relation `{relation}` is not supported: {reason}")]
    #[diagnostic(
        code(qc::costmodel::unsupported_relation),
        help(
            "ZigZag's cost model handles `x = a*d1 + b*d2` with positive coefficients, at most 4 relations"
        )
    )]
    UnsupportedRelation { layer: String, relation: String, reason: String },

    #[error(
        "layer `{layer}`: `{accelerator}` computes in memory, but no input of the layer is linked to `I2`, the operand its `cells` hold"
    )]
    #[diagnostic(
        code(qc::costmodel::imc_weights),
        help(
            "an in-memory-compute array keeps one input (the weights) in its cells: link the layer's constant input to I2 in the mapping's memory_operand_links"
        )
    )]
    ImcWeights { layer: String, accelerator: String },

    #[error("layer `{layer}`: the temporal mapping has no loops for operand `{role}`")]
    #[diagnostic(
        code(qc::costmodel::missing_temporal),
        help("give the temporal loops of every layer operand")
    )]
    MissingTemporal { layer: String, role: String },

    #[error(
        "layer `{layer}`: operand `{role}` has {given} temporal levels, but `{mem_operand}` has {expected} memory levels"
    )]
    #[diagnostic(
        code(qc::costmodel::level_count),
        help("give one list of loops per memory level (empty lists allowed)")
    )]
    LevelCount { layer: String, role: String, mem_operand: MemOperand, given: usize, expected: usize },

    #[error(
        "layer `{layer}`: operand `{role}`'s temporal loops of `{dim}` multiply to {product}, expected {expected}"
    )]
    #[diagnostic(
        code(qc::costmodel::temporal_mismatch),
        help("the temporal loops of a dim must multiply to ceil(size / spatial unrolling)")
    )]
    TemporalMismatch { layer: String, role: String, dim: String, product: u64, expected: u64 },

    #[error(
        "layer `{layer}`: memory `{memory}` has no port for `{mem_operand}` direction `{direction}`, but the mapping moves data that way"
    )]
    #[diagnostic(
        code(qc::costmodel::missing_port),
        help("allocate `{mem_operand}, {direction}` to a port of `{memory}`")
    )]
    MissingPort { layer: String, memory: String, mem_operand: MemOperand, direction: Direction },

    #[error(
        "layer `{layer}`: memory `{memory}` ({capacity_bits} bits) is too small for operand `{role}`: it needs {needed_bits} bits"
    )]
    #[diagnostic(
        code(qc::costmodel::memory_too_small),
        help(
            "the tiles that lower levels and the spatial unrolling put there do not fit; use a smaller spatial unrolling or a bigger memory"
        )
    )]
    MemoryTooSmall { layer: String, memory: String, role: String, needed_bits: f64, capacity_bits: u64 },

    #[error(
        "layer `{layer}`: memory `{memory}`, the top level of operand `{role}`, cannot hold all its remaining loops"
    )]
    #[diagnostic(
        code(qc::costmodel::hierarchy_too_small),
        help("the operand does not fit in its memory hierarchy")
    )]
    HierarchyTooSmall { layer: String, memory: String, role: String },
}
