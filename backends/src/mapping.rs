//! Mappings of a layer onto an accelerator ([`crate::arch`]): which layer dims are unrolled over
//! which array dims (spatial), and in which order and at which memory level the remaining loops
//! run (temporal). ZigZag's mapping YAML loads into [`MappingFile`]
//! ([`crate::zigzag::read_mapping_yaml`]); the cost model ([`crate::cost`]) takes a
//! [`SpatialMapping`] and a [`TemporalMapping`].

use crate::arch::MemOperand;

/// How layer operands reach memory operands: ZigZag's `memory_operand_links`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperandLinks {
    /// `(layer operand role, memory operand)`, for example `("W", I2)`.
    pub links: Vec<(String, MemOperand)>,
}

impl Default for OperandLinks {
    /// ZigZag's default: `O -> O`, `I -> I1`, `W -> I2`.
    fn default() -> Self {
        OperandLinks {
            links: vec![
                ("O".into(), MemOperand::O),
                ("I".into(), MemOperand::I1),
                ("W".into(), MemOperand::I2),
            ],
        }
    }
}

impl OperandLinks {
    /// The memory operand of layer operand `role`.
    pub fn mem(&self, role: &str) -> Option<MemOperand> {
        self.links.iter().find(|(r, _)| r == role).map(|(_, m)| *m)
    }

    /// The layer operand linked to `mem`.
    pub fn role(&self, mem: MemOperand) -> Option<&str> {
        self.links.iter().find(|(_, m)| *m == mem).map(|(r, _)| r.as_str())
    }
}

/// The unrolling of layer dims over the array dims: per array dim (by name, as in
/// [`crate::arch::OperationalArray::dims`]: `D1`, `D2`, ...), the `(layer dim, factor)` pairs
/// unrolled on it (several = ZigZag's mixed unrolling; their product is at most the array
/// dim's size). Array dims not listed unroll nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpatialMapping {
    pub dims: Vec<(String, Vec<(String, u64)>)>,
}

impl SpatialMapping {
    /// The total unrolling of layer dim `dim`.
    pub fn unrolling(&self, dim: &str) -> u64 {
        self.dims.iter().flat_map(|(_, u)| u).filter(|(d, _)| d == dim).map(|(_, f)| *f).product()
    }
}

/// A temporal loop: a layer dim and its size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemporalLoop {
    pub dim: String,
    pub size: u64,
}

/// The temporal loops of a layer, per layer operand and memory level, innermost first: for
/// operand `role`, `levels[m]` are the loops whose iterations run with level `m`'s tile in
/// place (ZigZag's `mapping_dic_origin`). Every operand sees the same loop order, cut at its
/// own levels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TemporalMapping {
    /// `(layer operand role, loops per memory level of that operand)`.
    pub operands: Vec<(String, Vec<Vec<TemporalLoop>>)>,
}

impl TemporalMapping {
    /// The levels of operand `role`.
    pub fn levels(&self, role: &str) -> Option<&[Vec<TemporalLoop>]> {
        self.operands.iter().find(|(r, _)| r == role).map(|(_, l)| l.as_slice())
    }
}

/// The size of one loop of a user's `temporal_ordering`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderSize {
    /// A given size.
    Given(u64),
    /// `"*"`: whatever remains of the dim.
    Rest,
}

/// One entry of a mapping file, chosen per layer by name, then operator type, then `default`
/// ([`MappingFile::entry_for`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappingEntry {
    /// A layer name, an operator type, or `default`.
    pub name: String,
    /// The spatial mapping, if given.
    pub spatial: Option<SpatialMapping>,
    /// Candidate layer dims per array dim (by name) for the spatial mapping search.
    pub spatial_hint: Option<Vec<(String, Vec<String>)>>,
    /// The loop order, innermost first (complete: used as is; partial: search constraints).
    pub temporal_ordering: Option<Vec<(String, OrderSize)>>,
    pub links: OperandLinks,
}

/// A mapping file: its entries in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MappingFile {
    pub entries: Vec<MappingEntry>,
}

impl MappingFile {
    /// The entry ZigZag picks for a layer: by layer name, else by operator type, else `default`.
    pub fn entry_for(&self, layer_name: &str, operator_type: &str) -> Option<&MappingEntry> {
        let by = |n: &str| self.entries.iter().find(|e| e.name == n);
        by(layer_name).or_else(|| by(operator_type)).or_else(|| by("default"))
    }
}
