//! `propagate-scales`: gives every feature map the quantization its producer or its reader
//! declares, through the ops that keep scales.
//!
//! What it does (`crate::check::scales::propagate`):
//! 0. a `QuantizeLinear`/`DequantizeLinear` whose scale or zero point a `Constant` op holds (as
//!    QCDQ exporters write them) gets it into its spec (`absorb-quant` reads initializers only);
//! 1. a value that no source describes (no spec, or only an `inferred` datatype without a scale)
//!    and that a quantizer reads (`Quant`, `IntQuant`, `BipolarQuant`, `QuantizeLinear`) takes
//!    the quantizer's output spec: on a DLA the layer that writes the value requantizes it, so
//!    `Conv -> Relu -> Quant` gives the Relu's output (and, next step, the Conv's) the Quant's
//!    scale;
//! 2. to a fixpoint, forward and backward through the ops that keep scales (data movement, the
//!    ReLU family, max pooling, `Concat`, and `BatchNormalization`, which a DLA folds into the
//!    layer before it; the list is `check::scales::KEEPS_SCALE`): an output without a scale
//!    takes its data input's spec, a data input without one takes the output's. A per-axis
//!    scale passes only through ops that keep elements on their axis, and through `Transpose`,
//!    whose permutation moves the axis.
//!
//! Values that a source describes (QONNX, QDQ, QLinear, ACCESS or ZigZag attributes, annotations)
//! are never changed. What remains inconsistent is counted as `conflicts`: scale-keeping ops whose
//! input and output scales differ, and feature maps whose ACCESS attributes (`output_scale` of
//! the producer, `input_scale`/`A_scale`/`B_scale` of the readers) disagree; `check-scales`
//! reports each of them.
//!
//! Preconditions: `absorb-quant` (and usually `infer-datatypes`) ran. Postconditions: ops and
//! types unchanged; propagated specs have origin `inferred`. Subgraphs are not visited.
//!
//! Statistics: `from-constant-ops`, `from-quantizers`, `forward`, `backward`, `conflicts`.

use qc_ir::Model;

use crate::check::scales::propagate;
use crate::pass::{Changed, Pass, PassContext, PassError};
use crate::registry::PassInfo;

pub const INFO: PassInfo = PassInfo {
    name: "propagate-scales",
    summary: "give feature maps the scale of their producer or reader, through scale-keeping ops",
    options: &[],
    build: |_| Ok(Box::new(PropagateScales)),
};

/// The `propagate-scales` pass.
pub struct PropagateScales;

impl Pass for PropagateScales {
    fn name(&self) -> &'static str {
        INFO.name
    }

    fn run(&mut self, model: &mut Model, cx: &mut PassContext) -> Result<Changed, PassError> {
        let p = propagate(model);
        for (name, n) in [
            ("from-constant-ops", p.from_constant_ops),
            ("from-quantizers", p.from_quantizers),
            ("forward", p.forward),
            ("backward", p.backward),
            ("conflicts", p.conflicts),
        ] {
            if n > 0 {
                cx.count(name, n);
            }
        }
        Ok(Changed::from_bool(p.from_constant_ops + p.from_quantizers + p.forward + p.backward > 0))
    }
}
