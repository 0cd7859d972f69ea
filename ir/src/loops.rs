//! The loop-nest IR: one compute layer as a typed, quantized einsum-style loop nest, the form
//! the mapping and cost backends work on (`DESIGN.md` section 4, ZigZag's workload form).
//!
//! A [`LoopNest`] names its loop dims with sizes (ZigZag's `B, G, K, C, OY, OX, FY, FX` for
//! convolutions, `B, H, D, K, C` style dims for matrix products, any other upper-case name
//! allowed), one output operand and its input operands, each indexed by loop dims or by derived
//! indices that [`Relation`]s define (`iy = 2*oy + 1*fy - 3`, with the true extent and padding of
//! `iy`). Operands carry their precision, quantization and source.
//!
//! Example, a 7x7 stride-2 convolution:
//!
//! ```text
//! O[b][g][k][oy][ox] += W[g][k][c][fy][fx] * I[b][g][c][iy][ix]
//! iy = 2*oy + 1*fy - 3   (extent 224, padding 3, 3)
//! ```
//!
//! The textual form is in [`crate::text`] and `spec/ir.md`; this module only holds the data.

use crate::QuantSpec;

/// One compute layer as a loop nest.
#[derive(Clone, Debug, PartialEq)]
pub struct LoopNest {
    /// The layer's name: the ONNX node name (ZigZag's `name`), so results pair by name.
    pub name: String,
    /// The layer's number in the workload (ZigZag's `id`), in program order from 0.
    pub id: u32,
    /// The op it was lowered from (`Conv`, `MatMul`, `QLinearConv`, `MaxPool`, `Add`, ...).
    pub op_type: String,
    /// What the body computes.
    pub compute: Compute,
    /// The loops, outermost first as written; names are upper case and unique.
    pub dims: Vec<LoopDim>,
    /// The output operand (role `O`).
    pub output: Operand,
    /// The input operands in order (`W` then `I` for a MAC layer, as ZigZag writes them).
    pub inputs: Vec<Operand>,
    /// Derived indices (`iy`, `ix`, or `oy` for a transposed conv), each defined once.
    pub relations: Vec<Relation>,
    /// Bits of the partial sums of the output (ZigZag's `O`), when the layer reduces; the final
    /// output's bits are the output operand's `precision` (ZigZag's `O_final`).
    pub psum_precision: Option<u32>,
    /// How `psum_precision` was chosen.
    pub psum_rule: PsumRule,
}

/// What a loop-nest body computes for each point of the iteration space.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Compute {
    /// `O += W * I`: a multiply-accumulate (Conv, Gemm, MatMul, AveragePool as a sum).
    Mac,
    /// `O = max(O, I)` over the reduction dims (MaxPool).
    Max,
    /// `O += I` over the reduction dims, then a division by the window (AveragePool,
    /// GlobalAveragePool).
    Avg,
    /// `O = A + B` element-wise, no reduction.
    Add,
    /// `O = A - B` element-wise.
    Sub,
    /// `O = A * B` element-wise.
    Mul,
}

impl Compute {
    /// The name the textual form writes.
    pub fn name(self) -> &'static str {
        match self {
            Compute::Mac => "mac",
            Compute::Max => "max",
            Compute::Avg => "avg",
            Compute::Add => "add",
            Compute::Sub => "sub",
            Compute::Mul => "mul",
        }
    }

    /// The compute called `name` in the textual form.
    pub fn parse(name: &str) -> Option<Compute> {
        [Compute::Mac, Compute::Max, Compute::Avg, Compute::Add, Compute::Sub, Compute::Mul]
            .into_iter()
            .find(|c| c.name() == name)
    }
}

/// A loop: an upper-case dim name and its trip count.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LoopDim {
    pub name: String,
    pub size: u64,
}

/// An operand of the layer: its role letter, index expression and what is known about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Operand {
    /// The role letter: `O` for the output; `W`, `I` (or other upper-case letters) for inputs.
    pub role: String,
    /// The indices, outermost first: lower-case loop dim names (`oy`) or derived indices
    /// defined by a [`Relation`] (`iy`).
    pub index: Vec<String>,
    /// Bits per element (for `O`, the final output's bits). `None`: unknown.
    pub precision: Option<u32>,
    /// The quantization the graph declares for the value, if any.
    pub quant: Option<QuantSpec>,
    /// Where the data comes from.
    pub source: Source,
    /// The graph value the operand reads or writes (for the output, the value written).
    pub value: String,
}

/// Where an operand's data comes from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// The output of another layer of the workload, by layer name.
    Layer(String),
    /// The output of a node that was not lowered, by node name (an entry of
    /// [`Workload::not_lowered`], which says what that node reads).
    Node(String),
    /// A constant (an initializer or a folded value): weights.
    Constant,
    /// A graph input, by name.
    GraphInput(String),
    /// The layer's own output, or a source the workload does not know.
    Other,
}

/// A derived index: `name = sum(coef * dim) + offset`, where `offset` is minus the low padding.
/// `extent` is the true (unpadded) size of the indexed axis, and `padding` its low and high
/// padding, so an index outside `0..extent` reads padding.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Relation {
    /// Lower-case name (`iy`).
    pub name: String,
    /// `(coefficient, lower-case loop dim)` terms, as written (`2*oy + 1*fy`).
    pub terms: Vec<(i64, String)>,
    /// The constant term (`-pad_top`).
    pub offset: i64,
    /// The true extent of the indexed axis (ZigZag's `pr_loop_sizes`).
    pub extent: u64,
    /// Low and high padding of the axis (ZigZag's `padding`).
    pub padding: (u64, u64),
}

/// How the partial-sum precision of a layer was chosen (documented in `spec/ir.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PsumRule {
    /// The layer does not reduce, or has no psum precision.
    None,
    /// ZigZag's default for layers without quantization: 2 x the activation bits.
    TwiceActivation,
    /// Bit growth over the reduction: `w + i + ceil(log2(reduction size))` (+1 when signs
    /// differ), for quantized layers.
    BitGrowth,
    /// Given by the user (`--default-precision`) or the workload file.
    Given,
}

impl PsumRule {
    /// The name the textual form writes.
    pub fn name(self) -> &'static str {
        match self {
            PsumRule::None => "none",
            PsumRule::TwiceActivation => "twice-activation",
            PsumRule::BitGrowth => "bit-growth",
            PsumRule::Given => "given",
        }
    }

    /// The rule called `name` in the textual form.
    pub fn parse(name: &str) -> Option<PsumRule> {
        [PsumRule::None, PsumRule::TwiceActivation, PsumRule::BitGrowth, PsumRule::Given]
            .into_iter()
            .find(|r| r.name() == name)
    }
}

/// A node the lowering did not turn into a loop nest, and why: nothing is dropped silently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotLowered {
    /// The node's name (or `<op_type>#<position>` when it has none).
    pub node: String,
    pub op_type: String,
    pub reason: String,
    /// For vector work (element-wise, activation, normalization, reduction, softmax and
    /// quantizer nodes on run-time data: what a DLA runs on its vector unit rather than its MAC
    /// array), the elements it processes: the larger of its first input's and its outputs'
    /// element counts. `None` for other nodes, for int64 results (index and shape arithmetic),
    /// or when the shapes are not known.
    pub elements: Option<u64>,
    /// Where its inputs come from, in input order (omitted optional inputs left out), so that
    /// data flow through it can be followed ([`Workload::dataflow`]).
    pub inputs: Vec<Source>,
}

/// A workload: the loop nests of a model's compute layers in program order, and the nodes that
/// were not lowered.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Workload {
    pub layers: Vec<LoopNest>,
    pub not_lowered: Vec<NotLowered>,
}

impl Workload {
    /// The data flow between the layers `keep` selects, as ZigZag sees it once it has removed
    /// the nodes it does not cost: for each layer of `self.layers` (by index; empty for layers
    /// not kept), the kept layers whose outputs it reads, directly or through layers not kept
    /// and nodes not lowered (each replaced by what it reads), in order of first appearance.
    pub fn dataflow(&self, keep: impl Fn(&LoopNest) -> bool) -> Vec<Vec<usize>> {
        let layer_index: std::collections::HashMap<&str, usize> =
            self.layers.iter().enumerate().map(|(i, l)| (l.name.as_str(), i)).collect();
        let node_index: std::collections::HashMap<&str, usize> =
            self.not_lowered.iter().enumerate().map(|(i, n)| (n.node.as_str(), i)).collect();
        let kept: Vec<bool> = self.layers.iter().map(&keep).collect();
        self.layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let mut preds = Vec::new();
                if !kept[i] {
                    return preds;
                }
                // (visited layers, visited nodes), to follow each once.
                let mut seen_layers = vec![false; self.layers.len()];
                let mut seen_nodes = vec![false; self.not_lowered.len()];
                let mut stack: Vec<&Source> = l.inputs.iter().rev().map(|o| &o.source).collect();
                while let Some(src) = stack.pop() {
                    match src {
                        Source::Layer(n) => {
                            let Some(&j) = layer_index.get(n.as_str()) else { continue };
                            if std::mem::replace(&mut seen_layers[j], true) {
                                continue;
                            }
                            if kept[j] {
                                preds.push(j);
                            } else {
                                stack.extend(self.layers[j].inputs.iter().rev().map(|o| &o.source));
                            }
                        }
                        Source::Node(n) => {
                            let Some(&j) = node_index.get(n.as_str()) else { continue };
                            if !std::mem::replace(&mut seen_nodes[j], true) {
                                stack.extend(self.not_lowered[j].inputs.iter().rev());
                            }
                        }
                        Source::Constant | Source::GraphInput(_) | Source::Other => {}
                    }
                }
                preds
            })
            .collect()
    }
}

impl LoopNest {
    /// The size of the loop called `name`.
    pub fn size(&self, name: &str) -> Option<u64> {
        self.dims.iter().find(|d| d.name == name).map(|d| d.size)
    }

    /// The number of iterations of the body (for a MAC layer, its MACs). The loop-nest verifier
    /// ([`crate::loop_verify`]) refuses a nest whose sizes multiply past 2^128, and every
    /// workload is verified when it is made; for one that was not, the count saturates at
    /// `u128::MAX` instead of wrapping ([`LoopNest::checked_iterations`] tells).
    pub fn iterations(&self) -> u128 {
        self.checked_iterations().unwrap_or(u128::MAX)
    }

    /// The number of iterations of the body, or `None` when the sizes multiply past 2^128.
    pub fn checked_iterations(&self) -> Option<u128> {
        crate::dims::product_u128(self.dims.iter().map(|d| d.size))
    }

    /// The operand with role `role` (`O`, `W`, `I`).
    pub fn operand(&self, role: &str) -> Option<&Operand> {
        std::iter::once(&self.output).chain(&self.inputs).find(|o| o.role == role)
    }

    /// The relation defining index `name`.
    pub fn relation(&self, name: &str) -> Option<&Relation> {
        self.relations.iter().find(|r| r.name == name)
    }
}
