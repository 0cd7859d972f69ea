//! The accelerator model the cost model and the mapping search read: an operational array of
//! MAC units with named dimensions, and a memory hierarchy per memory operand, lowest level
//! first (`research/zigzag.md` 2.1, `spec/accelerator.md`).
//!
//! ZigZag's accelerator YAML loads into it ([`crate::zigzag::read_accelerator_yaml`]). Layer
//! operands (`W`, `I`, `O` of a [`qc_ir::LoopNest`]) reach memories through *memory operands*
//! ([`MemOperand`]: `I1`, `I2`, `O`), linked per layer by the mapping
//! ([`crate::mapping::OperandLinks`]; ZigZag's default `O -> O`, `I -> I1`, `W -> I2`).

use std::fmt;

/// A memory operand: what a memory holds, independent of the layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MemOperand {
    I1,
    I2,
    O,
}

impl MemOperand {
    /// All three, in ZigZag's order.
    pub const ALL: [MemOperand; 3] = [MemOperand::I1, MemOperand::I2, MemOperand::O];

    /// `I1`, `I2` or `O`.
    pub fn name(self) -> &'static str {
        match self {
            MemOperand::I1 => "I1",
            MemOperand::I2 => "I2",
            MemOperand::O => "O",
        }
    }

    /// Parses `I1`, `I2`, `O`.
    pub fn parse(s: &str) -> Option<MemOperand> {
        match s {
            "I1" => Some(MemOperand::I1),
            "I2" => Some(MemOperand::I2),
            "O" => Some(MemOperand::O),
            _ => None,
        }
    }
}

impl fmt::Display for MemOperand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A direction of data movement through a memory port, seen from that memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// `fh`: written from the level above.
    FromHigh,
    /// `tl`: read out to the level below.
    ToLow,
    /// `fl`: written from the level below (outputs and partial sums).
    FromLow,
    /// `th`: read out to the level above (outputs and partial sums).
    ToHigh,
}

impl Direction {
    /// All four, in ZigZag's order (`rd_out_to_low`, `wr_in_by_low`, `rd_out_to_high`,
    /// `wr_in_by_high` are named differently there; the short names are the YAML's).
    pub const ALL: [Direction; 4] =
        [Direction::FromHigh, Direction::ToLow, Direction::FromLow, Direction::ToHigh];

    /// `fh`, `tl`, `fl`, `th`.
    pub fn short(self) -> &'static str {
        match self {
            Direction::FromHigh => "fh",
            Direction::ToLow => "tl",
            Direction::FromLow => "fl",
            Direction::ToHigh => "th",
        }
    }

    /// Parses `fh`, `tl`, `fl`, `th`.
    pub fn parse(s: &str) -> Option<Direction> {
        Direction::ALL.into_iter().find(|d| d.short() == s)
    }

    /// Whether data leaves the memory (a read): `tl`, `th`.
    pub fn is_read(self) -> bool {
        matches!(self, Direction::ToLow | Direction::ToHigh)
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short())
    }
}

/// What a port can do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PortKind {
    Read,
    Write,
    ReadWrite,
}

impl PortKind {
    /// `read`, `write`, `read_write`.
    pub fn name(self) -> &'static str {
        match self {
            PortKind::Read => "read",
            PortKind::Write => "write",
            PortKind::ReadWrite => "read_write",
        }
    }

    /// Whether a port of this kind may carry `dir` (reads carry `tl`/`th`, writes `fh`/`fl`).
    pub fn allows(self, dir: Direction) -> bool {
        match self {
            PortKind::Read => dir.is_read(),
            PortKind::Write => !dir.is_read(),
            PortKind::ReadWrite => true,
        }
    }
}

/// One port of a memory.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Port {
    pub name: String,
    pub kind: PortKind,
    /// Access granularity in bits per cycle: a partial word costs `ceil(bits / bw_min)` steps
    /// of `bw_min / bw_max` of a full word.
    pub bw_min: u64,
    /// Full word width in bits per cycle.
    pub bw_max: u64,
    /// The (memory operand, direction) links this port carries.
    pub allocation: Vec<(MemOperand, Direction)>,
}

/// One memory of the hierarchy (one *instance*; the array replicates it, see
/// [`Accelerator::instances`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Memory {
    pub name: String,
    /// Capacity in bits.
    pub size_bits: u64,
    /// Energy of reading one full `bw_max` word (the accelerator file's unit, pJ for ZigZag's).
    pub r_cost: f64,
    /// Energy of writing one full word.
    pub w_cost: f64,
    pub area: f64,
    /// The file's `latency`; like ZigZag, the cost model does not use it (bandwidth is the only
    /// timing parameter of a memory).
    pub latency: u64,
    /// The memory operands it holds; more than one makes it a shared memory (capacity and
    /// ports shared).
    pub operands: Vec<MemOperand>,
    pub ports: Vec<Port>,
    /// Indices into [`OperationalArray::dims`] of the array dims one instance serves
    /// (broadcasts to or reduces over).
    pub served_dims: Vec<usize>,
    /// ZigZag's `force_double_buffering`.
    pub double_buffering: bool,
}

impl Memory {
    /// The port carrying `(op, dir)`, if any; when several ports list it, the last one (as in
    /// ZigZag, whose port allocation overwrites earlier ones).
    pub fn port_for(&self, op: MemOperand, dir: Direction) -> Option<&Port> {
        self.ports.iter().rev().find(|p| p.allocation.contains(&(op, dir)))
    }

    /// Whether it holds `op`.
    pub fn holds(&self, op: MemOperand) -> bool {
        self.operands.contains(&op)
    }
}

/// One dimension of the operational array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArrayDim {
    /// `D1`, `D2`, ...
    pub name: String,
    pub size: u64,
}

/// The array of MAC units.
#[derive(Clone, Debug, PartialEq)]
pub struct OperationalArray {
    pub dims: Vec<ArrayDim>,
    /// Energy per MAC.
    pub mac_energy: f64,
    /// Area per MAC unit.
    pub mac_area: f64,
    /// The operand precisions the MAC units take, when the file gives them.
    pub input_precision: Option<[u32; 2]>,
    /// Indices of the systolic dims (ZigZag 3.9.1's `systolic_dimensions`; adds a drain latency).
    pub systolic_dims: Vec<usize>,
    /// In-memory compute: the array computes inside its `cells` memory, costed by ZigZag's
    /// IMC macro model ([`crate::cost::imc`], `spec/imc.md`) instead of `mac_energy`.
    pub imc: Option<Imc>,
}

/// Analog or digital in-memory compute (ZigZag's `imc_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImcKind {
    /// Analog (AIMC): DACs drive the word lines, bit lines add in charge, ADCs read them out.
    Analog,
    /// Digital (DIMC): 1-bit multipliers and adder trees next to the cells.
    Digital,
}

impl ImcKind {
    /// `analog` or `digital`, as the files spell it.
    pub fn name(self) -> &'static str {
        match self {
            ImcKind::Analog => "analog",
            ImcKind::Digital => "digital",
        }
    }
}

/// The in-memory-compute parameters of an operational array (ZigZag 3.9.1's `ImcArray`). The
/// activation and weight precisions are the array's `input_precision`, which an IMC array must
/// have.
#[derive(Clone, Debug, PartialEq)]
pub struct Imc {
    pub kind: ImcKind,
    /// Activation bits fed per cycle; a MAC takes `activation precision / bit_serial_precision`
    /// cycles.
    pub bit_serial_precision: u32,
    /// ADC bits (analog; 0 for digital).
    pub adc_resolution: u32,
    /// Bits of one cell group (the `cells` memory's `size`).
    pub cells_size: u64,
    /// Area of one cell group (the `cells` memory's `area`).
    pub cells_area: f64,
}

impl OperationalArray {
    /// The number of MAC units.
    pub fn units(&self) -> u64 {
        self.dims.iter().map(|d| d.size).product()
    }

    /// The index of the dim named `name`.
    pub fn dim_index(&self, name: &str) -> Option<usize> {
        self.dims.iter().position(|d| d.name == name)
    }
}

/// An accelerator: its array and its memories, lowest level first.
#[derive(Clone, Debug, PartialEq)]
pub struct Accelerator {
    pub name: String,
    pub array: OperationalArray,
    /// In the file's order, which is the hierarchy's: for each memory operand, the memories
    /// holding it, in this order, are its levels from the array upwards.
    pub memories: Vec<Memory>,
}

impl Accelerator {
    /// The memories holding `op`, lowest level first (indices into [`Accelerator::memories`]).
    pub fn levels(&self, op: MemOperand) -> Vec<usize> {
        self.memories.iter().enumerate().filter(|(_, m)| m.holds(op)).map(|(i, _)| i).collect()
    }

    /// How many instances of memory `mem` there are: the product of the sizes of the array
    /// dims it does not serve.
    pub fn instances(&self, mem: usize) -> u64 {
        let served = &self.memories[mem].served_dims;
        self.array.dims.iter().enumerate().filter(|(i, _)| !served.contains(i)).map(|(_, d)| d.size).product()
    }
}
