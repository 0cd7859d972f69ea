//! `lower-to-loops`: lowers every compute op of the main graph to a loop nest in ZigZag's
//! workload form, for the mapping and cost backends (`DESIGN.md` section 4).
//!
//! What it does: runs [`crate::lower::lower_model`] (the forms, precisions, partial-sum rules
//! and sources are documented there) and hands the [`qc_ir::Workload`] to the caller through
//! `PassContext::workload` (the pass manager puts it in `RunReport::workload`). Conv (1-D and
//! 2-D, grouped, depthwise, dilated, strided, padded), ConvTranspose, Gemm, MatMul (batched,
//! broadcast, both operands dynamic), QLinearConv, QLinearMatMul, ConvInteger, MatMulInteger,
//! MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool and element-wise Add/Sub/Mul lower;
//! LSTM, GRU, RNN and `Attention` lower as two matrix-product layers each;
//! every other node, and every node of those kinds that cannot be lowered, is listed in the
//! workload's `not_lowered` with its reason.
//!
//! Options: `weight-bits`, `act-bits`, `output-bits`, `psum-bits` replace ZigZag's defaults
//! (8, 8, 8, 16) for operands without quantization (`--default-precision`); 0 keeps the default.
//! Any of them set makes unquantized partial sums `given` instead of `twice-activation`.
//! `psum` chooses the partial sums of quantized layers ([`PsumMode`]): `zigzag` (the default:
//! twice the activation bits, ZigZag's convention, so that quantized and float models compare
//! with ZigZag's numbers), `exact` (bit growth over the reduction), or a number of bits for
//! every layer that reduces (`--psum-bits`).
//!
//! Preconditions: shapes known (run `infer-shapes` first; a node with an unknown shape is not
//! lowered), and quantization read (`absorb-quant`, optionally `propagate-scales`) for
//! precisions other than the defaults. Postconditions: the model is unchanged (an analysis).
//! Subgraphs are not visited.
//!
//! Statistics: `lowered`, `not-lowered`, and the lowered layers per family (`conv`,
//! `conv-transpose`, `gemm`, `matmul`, `pool`, `elementwise`, and per layer `recurrent`,
//! `attention`).

use qc_ir::Model;

use crate::lower::{DefaultPrecision, LowerOptions, PsumMode, lower_with_families};
use crate::pass::{Changed, Pass, PassContext, PassError};
use crate::registry::PassInfo;

pub const INFO: PassInfo = PassInfo {
    name: "lower-to-loops",
    summary: "lower compute ops to loop nests (ZigZag's workload form) for the cost backends",
    options: &[
        ("weight-bits", "bits of unquantized constant operands (0: ZigZag's 8)"),
        ("act-bits", "bits of unquantized activations (0: ZigZag's 8)"),
        ("output-bits", "bits of unquantized final outputs (0: ZigZag's 8)"),
        ("psum-bits", "bits of unquantized partial sums (0: ZigZag's 2 x activation = 16)"),
        (
            "psum",
            "partial sums of quantized layers: zigzag (2 x activation bits), exact (bit growth) or a bit count for every layer",
        ),
    ],
    build: |o| {
        let bits = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        let (w, i, out, p) = (
            bits(o.u64("weight-bits", 0)?),
            bits(o.u64("act-bits", 0)?),
            bits(o.u64("output-bits", 0)?),
            bits(o.u64("psum-bits", 0)?),
        );
        let default_precision = (w | i | out | p != 0).then(|| {
            let z = DefaultPrecision::ZIGZAG;
            let or = |x: u32, d: u32| if x == 0 { d } else { x };
            let act = or(i, z.act);
            DefaultPrecision {
                weight: or(w, z.weight),
                act,
                output: or(out, z.output),
                psum: or(p, act.saturating_mul(2)),
            }
        });
        let psum = match o.text("psum") {
            None | Some("zigzag") => PsumMode::Zigzag,
            Some("exact") => PsumMode::Exact,
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (1..=64).contains(&n) => PsumMode::Bits(n),
                _ => return Err(o.invalid("psum", v, "zigzag, exact or a bit count 1 to 64")),
            },
        };
        Ok(Box::new(LowerToLoops { options: LowerOptions { default_precision, psum } }))
    },
};

/// The `lower-to-loops` pass.
pub struct LowerToLoops {
    pub options: LowerOptions,
}

impl Pass for LowerToLoops {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        let (workload, families) = lower_with_families(model, &self.options);
        cx.count("lowered", workload.layers.len() as u64);
        cx.count("not-lowered", workload.not_lowered.len() as u64);
        for f in families {
            cx.count(f.name(), 1);
        }
        cx.workload = Some(workload);
        Ok(Changed::No)
    }
}
