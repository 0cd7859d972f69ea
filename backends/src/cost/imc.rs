//! ZigZag 3.9.1's in-memory-compute macro model (`ImcUnit` and `ImcArray` in
//! `zigzag/hardware/architecture/`, `spec/imc.md`): the area and the clock period of an analog
//! (AIMC) or digital (DIMC) IMC array, and the operational energy of one layer under one spatial
//! mapping. The memories around the array (the `cells` included) are costed by the digital
//! cost model as usual; the array's own energy replaces `mac_energy * MACs`, and every MAC takes
//! `activation precision / bit_serial_precision` cycles of period `tclk`.
//!
//! Every formula is evaluated in ZigZag's order of floating-point operations, so that the numbers
//! agree to the last bits.

use crate::arch::{ImcKind, OperationalArray};
use crate::cost::CostError;
use crate::cost::model::{PreparedLayer, Rel};
use crate::mapping::SpatialMapping;

/// The parts of the clock period and of the area, in ZigZag's order (`tclk_breakdown`,
/// `area_breakdown`).
pub const MACRO_PARTS: [&str; 7] =
    ["cells", "dacs", "adcs", "mults", "adders_regular", "adders_pv", "accumulators"];

/// The parts of a layer's operational energy, in ZigZag's order (`mac_energy_breakdown`).
pub const ENERGY_PARTS: [&str; 8] = [
    "local_bl_precharging",
    "dacs",
    "adcs",
    "mults",
    "analog_bl_addition",
    "adders_regular",
    "adders_pv",
    "accumulators",
];

// ZigZag's 28 nm technology parameters (`ImcUnit.TECH_PARAM_28NM`), in its units: pF, mm^2, ns.
const VDD: f64 = 0.9;
const ND2_CAP: f64 = 0.7 / 1e3;
const BL_CAP: f64 = 0.7 / 2.0 / 1e3;
const WL_CAP: f64 = 0.7 / 2.0 / 1e3;
const XOR2_CAP: f64 = 0.7 * 1.5 / 1e3;
const DFF_CAP: f64 = 0.7 * 3.0 / 1e3;
const ND2_AREA: f64 = 0.614 / 1e6;
const XOR2_AREA: f64 = 0.614 * 2.4 / 1e6;
const DFF_AREA: f64 = 0.614 * 6.0 / 1e6;
const ND2_DLY: f64 = 0.0478;
const XOR2_DLY: f64 = 0.0478 * 2.4;

fn vdd2() -> f64 {
    VDD.powi(2)
}

/// A 1-bit full adder (3 NAND2 and 2 XOR2), both inputs active.
fn adder_energy() -> f64 {
    (3.0 * ND2_CAP + 2.0 * XOR2_CAP) * vdd2()
}

/// A 1-bit full adder with one input 0 (no carry).
fn adder_energy_half() -> f64 {
    (2.0 * XOR2_CAP) * vdd2()
}

/// A 1-bit multiplier (one NOR, costed as a NAND2), half switching as the weight stays.
fn multiplier_energy() -> f64 {
    0.5 * ND2_CAP * vdd2()
}

fn reg_energy() -> f64 {
    DFF_CAP * vdd2()
}

fn adder_area() -> f64 {
    3.0 * ND2_AREA + 2.0 * XOR2_AREA
}

fn adder_dly_in2sum() -> f64 {
    2.0 * XOR2_DLY
}

fn adder_dly_in2cout() -> f64 {
    XOR2_DLY + 2.0 * ND2_DLY
}

fn adder_dly_cin2cout() -> f64 {
    2.0 * ND2_DLY
}

/// Python's `sum` of a list of floats: from 0, left to right.
pub(crate) fn py_sum(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |a, x| a + x)
}

/// An IMC array as ZigZag's `ImcArray` sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct ImcMacro {
    pub kind: ImcKind,
    pub bit_serial_precision: u32,
    pub activation_precision: u32,
    pub weight_precision: u32,
    pub adc_resolution: u32,
    pub cells_area: f64,
    /// The bits of one cell group (the `cells` memory's size): `cells_size / weight_precision`
    /// weights per MAC unit.
    pub cells_size: u64,
    /// The word-line dim (the first array dim by name) and its size.
    pub wl_dim: usize,
    pub wl: u64,
    /// The bit-line dim (the second array dim by name), along which the adder trees sum.
    pub bl_dim: usize,
    pub bl: u64,
    /// The product of the other dims' sizes: the macros (banks).
    pub banks: u64,
    pub units: u64,
}

/// The operational side of one layer's cost on an IMC array.
#[derive(Clone, Debug, PartialEq)]
pub struct ImcLayerCost {
    /// The operational energy per part, in [`ENERGY_PARTS`] order (their sum is the layer's
    /// `mac_energy`).
    pub energy: [f64; 8],
    /// The clock period in ns.
    pub tclk: f64,
    /// Array cycles per MAC: `activation precision / bit_serial_precision`.
    pub cycles_per_mac: u64,
}

impl ImcMacro {
    /// The macro model of `array`, if it computes in memory. The readers have checked what
    /// ZigZag asserts (at least two dims, precisions powers of 2, a digital bit-line dim a power
    /// of 2, `bit_serial_precision <= activation precision`).
    pub fn new(array: &OperationalArray) -> Option<ImcMacro> {
        let imc = array.imc.as_ref()?;
        let [act, weight] = array.input_precision?;
        let mut order: Vec<usize> = (0..array.dims.len()).collect();
        order.sort_by(|&a, &b| array.dims[a].name.cmp(&array.dims[b].name));
        let (&wl_dim, &bl_dim) = (order.first()?, order.get(1)?);
        Some(ImcMacro {
            kind: imc.kind,
            bit_serial_precision: imc.bit_serial_precision,
            activation_precision: act,
            weight_precision: weight,
            adc_resolution: imc.adc_resolution,
            cells_area: imc.cells_area,
            cells_size: imc.cells_size,
            wl_dim,
            wl: array.dims[wl_dim].size,
            bl_dim,
            bl: array.dims[bl_dim].size,
            banks: order[2..].iter().map(|&i| array.dims[i].size).product(),
            units: array.units(),
        })
    }

    /// The energy of one local bit-line precharge of one MAC unit's cell group (ZigZag's
    /// `single_pe_precharge_energy`), when a group holds more than one weight; `None` when it
    /// holds one (no precharge).
    pub fn precharge_energy(&self) -> Option<f64> {
        let depth = self.cells_size as f64 / f64::from(self.weight_precision);
        if depth <= 1.0 {
            return None;
        }
        Some((WL_CAP * vdd2() + BL_CAP * vdd2() * depth) * f64::from(self.weight_precision))
    }

    /// A lower bound on a layer's operational energy (pJ) over every spatial and temporal
    /// mapping, from its MAC count alone (`spec/bounds.md`): each part of section 4 of
    /// `spec/imc.md` with the active columns at most the word-line size and the active rows at
    /// most the bit-line size, the regular adder trees at their least energy per active row, and
    /// no precharge.
    pub fn energy_floor(&self, macs: u64) -> f64 {
        let (w, b, s, n) = (
            f64::from(self.weight_precision),
            f64::from(self.bit_serial_precision),
            self.serial(),
            macs as f64,
        );
        let (wl, bl) = (self.wl as f64, self.bl as f64);
        let mut floor = 0.0;
        if self.analog() {
            // One DAC per active row, `rows >= R` and `cols <= wl`: `e_dac rows s m >= e_dac s
            // MACs / wl`; likewise with the rows at most `bl` and the columns at most `wl` below.
            floor += self.dac_energy() * s * n / wl;
            floor += self.adc().2 * w * s * n / bl;
            floor += multiplier_energy() * w * s * n;
            floor += BL_CAP * vdd2() * w * s * n;
        } else {
            floor += multiplier_energy() * b * w * s * n;
            // min over k of E_tree(k) / k: a tree with `rows` active inputs, `R <= rows` of them
            // counted in the activations, costs at least this per counted row.
            let least = (1..=self.bl)
                .map(|k| regular_tree_energy(self.weight_precision, k, self.bl) / k as f64)
                .fold(f64::INFINITY, f64::min);
            floor += least * b * s * n;
        }
        floor += adder_energy() * self.pv_adders() * s * n / bl;
        if let Some(bits) = self.accumulator_bits() {
            floor += (adder_energy() + reg_energy()) * bits * s * n / bl;
        }
        floor * (1.0 - 1e-9)
    }

    fn analog(&self) -> bool {
        self.kind == ImcKind::Analog
    }

    /// Array cycles per MAC (`cycles_per_op`).
    pub fn cycles_per_mac(&self) -> u64 {
        u64::from(self.activation_precision / self.bit_serial_precision)
    }

    /// `activation_precision / bit_serial_precision` as ZigZag divides it.
    fn serial(&self) -> f64 {
        f64::from(self.activation_precision) / f64::from(self.bit_serial_precision)
    }

    /// One ADC: (area mm^2, delay ns, energy pJ).
    fn adc(&self) -> (f64, f64, f64) {
        let r = f64::from(self.adc_resolution);
        let area = if self.adc_resolution <= 1 {
            0.0
        } else {
            10f64.powf(-0.0369 * r + 1.206) * 2f64.powi(self.adc_resolution as i32) * 1e-6
        };
        let delay = if self.adc_resolution == 0 { 0.0 } else { r * (0.00653 * self.bl as f64 + 0.640) };
        let energy = if self.adc_resolution == 0 {
            0.0
        } else {
            (100.0 * r + 0.001 * 4f64.powi(self.adc_resolution as i32)) * vdd2() / 1000.0
        };
        (area, delay, energy)
    }

    /// One DAC's energy in pJ (its area and delay are neglected).
    fn dac_energy(&self) -> f64 {
        if self.bit_serial_precision == 1 {
            0.0
        } else {
            50e-3 * f64::from(self.bit_serial_precision) * vdd2()
        }
    }

    /// `log2` of the bit-line size (the regular adder tree's depth), as an integer.
    fn depth_regular(&self) -> u64 {
        u64::from(self.bl.max(1).ilog2())
    }

    /// The place-value adder tree: (inputs, input precision).
    fn pv_tree(&self) -> (f64, f64) {
        let w = f64::from(self.weight_precision);
        if self.analog() {
            (w, f64::from(self.adc_resolution))
        } else {
            (f64::from(self.bit_serial_precision), w + self.depth_regular() as f64)
        }
    }

    /// 1-bit adders in one place-value adder tree.
    fn pv_adders(&self) -> f64 {
        let (n, prec) = self.pv_tree();
        if n == 1.0 { 0.0 } else { prec * (n - 1.0) + n * (n.log2() - 0.5) }
    }

    /// Output bits of an accumulator, if the array has them (bit-serial input).
    fn accumulator_bits(&self) -> Option<f64> {
        if self.bit_serial_precision == self.activation_precision {
            return None;
        }
        let (a, w) = (f64::from(self.activation_precision), f64::from(self.weight_precision));
        Some(if self.analog() {
            a + f64::from(self.adc_resolution) + w
        } else {
            a + (self.bl as f64).log2() + w
        })
    }

    /// 1-bit multipliers of the whole array.
    fn multipliers(&self) -> f64 {
        let w = u64::from(self.weight_precision);
        let n = if self.analog() {
            w * self.wl * self.bl * self.banks
        } else {
            u64::from(self.bit_serial_precision) * w * self.wl * self.bl * self.banks
        };
        n as f64
    }

    /// 1-bit adders of one regular adder tree (digital), and the trees.
    fn regular_trees(&self) -> (f64, f64) {
        let w = self.weight_precision as i64;
        let depth = self.depth_regular() as i64;
        let per_tree = self.bl as i64 * (w + 1) - (w + depth + 1);
        let trees = u64::from(self.bit_serial_precision) * self.wl * self.banks;
        (per_tree as f64, trees as f64)
    }

    /// The area per part, in [`MACRO_PARTS`] order (mm^2).
    pub fn area_breakdown(&self) -> [f64; 7] {
        let cells = self.units as f64 * self.cells_area;
        let dacs = 0.0;
        let adcs = if self.analog() {
            self.adc().0 * f64::from(self.weight_precision) * self.wl as f64 * self.banks as f64
        } else {
            0.0
        };
        let mults = ND2_AREA * self.multipliers();
        let adders_regular = if self.analog() {
            0.0
        } else {
            let (per_tree, trees) = self.regular_trees();
            adder_area() * per_tree * trees
        };
        let adders_pv = adder_area() * self.pv_adders() * (self.wl * self.banks) as f64;
        let accumulators = match self.accumulator_bits() {
            None => 0.0,
            Some(bits) => {
                let n = bits * self.wl as f64 * self.banks as f64;
                adder_area() * n + DFF_AREA * n
            }
        };
        [cells, dacs, adcs, mults, adders_regular, adders_pv, accumulators]
    }

    /// The area of the array (cells and logic; not the memories around it).
    pub fn area(&self) -> f64 {
        py_sum(&self.area_breakdown())
    }

    /// The clock period per part, in [`MACRO_PARTS`] order (ns): the critical path DACs ->
    /// multipliers -> ADCs -> adder trees -> accumulators.
    pub fn tclk_breakdown(&self) -> [f64; 7] {
        let adcs = if self.analog() { self.adc().1 } else { 0.0 };
        let mults = ND2_DLY;
        let (adders_regular, out_regular) = if self.analog() {
            (0.0, 0.0)
        } else {
            let depth = self.depth_regular() as f64;
            let out = f64::from(self.weight_precision) + depth;
            (
                (depth - 1.0) * adder_dly_in2sum()
                    + adder_dly_in2cout()
                    + (out - 1.0 - 1.0) * adder_dly_cin2cout(),
                out,
            )
        };
        let (n, prec) = if self.analog() {
            (f64::from(self.weight_precision), f64::from(self.adc_resolution))
        } else {
            (f64::from(self.bit_serial_precision), out_regular)
        };
        let (adders_pv, out_pv) = if n == 1.0 {
            (0.0, prec)
        } else {
            let depth = n.log2().trunc();
            let out = n + prec;
            (
                (depth - 1.0) * adder_dly_in2sum()
                    + adder_dly_in2cout()
                    + (out - prec - 1.0) * adder_dly_cin2cout(),
                out,
            )
        };
        let accumulators = match self.accumulator_bits() {
            None => 0.0,
            Some(bits) => adder_dly_in2cout() + (bits - out_pv - 1.0) * adder_dly_cin2cout(),
        };
        [0.0, 0.0, adcs, mults, adders_regular, adders_pv, accumulators]
    }

    /// The clock period in ns.
    pub fn tclk(&self) -> f64 {
        py_sum(&self.tclk_breakdown())
    }

    /// The energy of one cycle at full utilisation, in [`ENERGY_PARTS`] order (pJ).
    pub fn peak_energy_breakdown(&self) -> [f64; 8] {
        let (wl, bl, banks) = (self.wl as f64, self.bl as f64, self.banks as f64);
        let w = f64::from(self.weight_precision);
        let dacs = if self.analog() { self.dac_energy() * bl * banks } else { 0.0 };
        let adcs = if self.analog() { self.adc().2 * w * wl * banks } else { 0.0 };
        let mults = multiplier_energy() * self.multipliers();
        let analog_bl = if self.analog() { BL_CAP * vdd2() * w * wl * bl * banks } else { 0.0 };
        let adders_regular = if self.analog() {
            0.0
        } else {
            let (per_tree, trees) = self.regular_trees();
            adder_energy() * per_tree * trees
        };
        let adders_pv = adder_energy() * self.pv_adders() * (self.wl * self.banks) as f64;
        let accumulators = match self.accumulator_bits() {
            None => 0.0,
            Some(bits) => {
                let n = bits * wl * banks;
                adder_energy() * n + reg_energy() * n
            }
        };
        [0.0, dacs, adcs, mults, analog_bl, adders_regular, adders_pv, accumulators]
    }

    /// Peak TOP/s, TOP/s/W and TOP/s/mm^2 of the array (full utilisation, no weight updates).
    pub fn peak(&self) -> (f64, f64, f64) {
        let macs = self.wl as f64 * self.bl as f64 / self.serial() * self.banks as f64;
        let tops = macs * 2.0 / self.tclk() / 1000.0;
        let topsw = macs * 2.0 / py_sum(&self.peak_energy_breakdown());
        (tops, topsw, tops / self.area())
    }

    /// The operational energy of `layer` under the spatial mapping `sm` (ZigZag's
    /// `get_energy_for_a_layer`); `weights` is the index (in `model.ops`) of the operand the cells
    /// hold, `acts` that of the other input.
    pub(crate) fn layer_cost(
        &self,
        model: &PreparedLayer,
        sm: &SpatialMapping,
        array_dims: &[String],
        weights: usize,
        acts: Option<usize>,
    ) -> Result<ImcLayerCost, CostError> {
        let unroll = |a: usize| -> Option<Vec<(usize, u64)>> {
            let (_, list) = sm.dims.iter().find(|(n, _)| *n == array_dims[a])?;
            let mut out = Vec::new();
            for (d, f) in list {
                let d = model.dim_or_err(d).ok()?;
                out.push((d, *f));
            }
            Some(out)
        };
        let wl_map = unroll(self.wl_dim);
        let bl_map = unroll(self.bl_dim);
        let in_macro: u64 =
            [&wl_map, &bl_map].iter().filter_map(|m| m.as_ref()).flatten().map(|(_, f)| *f).product();
        let w_op = &model.ops[weights];
        let w_ir = |d: usize| w_op.rel[d] == Rel::Ir;
        let (cols, ir_on_wl) = match &wl_map {
            None => (1u64, false),
            Some(list) => (list.iter().map(|(_, f)| *f).product(), list.iter().any(|&(d, _)| w_ir(d))),
        };
        let rows: u64 = match &bl_map {
            None => 1,
            Some(list) => {
                let total: u64 = list.iter().map(|(_, f)| *f).product();
                if !ir_on_wl || total == 1 {
                    total
                } else {
                    // Diagonal mapping: an output pixel dim (irrelevant to the weights) on the
                    // word lines with its filter dim on the bit lines needs `OXu + FXu - 1` rows.
                    let mut rows = 1u64;
                    for &(d, f) in list {
                        let mut extra = 0;
                        if let Some(a) = acts {
                            for &p in &model.ops[a].prs {
                                let pr = &model.prs[p as usize];
                                if pr.terms != 2 {
                                    continue;
                                }
                                // ZigZag keys each pair by its member that is not
                                // irrelevant to the weights (the filter dim).
                                let [d1, d2] = pr.dims;
                                let (key, partner) = if w_ir(d1) { (d2, d1) } else { (d1, d2) };
                                if key != d {
                                    continue;
                                }
                                extra = if w_ir(partner) {
                                    let on_wl: u64 = wl_map
                                        .iter()
                                        .flatten()
                                        .filter(|(x, _)| *x == partner)
                                        .map(|(_, f)| *f)
                                        .product();
                                    on_wl - 1
                                } else {
                                    0
                                };
                            }
                        }
                        rows *= f + extra;
                    }
                    rows
                }
            }
        };
        let activations = model.total_macs as f64 / in_macro as f64;
        let serial = self.serial();
        let (rows_f, cols_f) = (rows as f64, cols as f64);
        let w = f64::from(self.weight_precision);
        let dacs = if self.analog() { self.dac_energy() * rows_f * serial * activations } else { 0.0 };
        let adcs = if self.analog() { self.adc().2 * w * cols_f * serial * activations } else { 0.0 };
        let active_mults = if self.analog() {
            (u64::from(self.weight_precision) * self.wl * rows) as f64
        } else {
            (u64::from(self.bit_serial_precision) * u64::from(self.weight_precision) * self.wl * self.bl)
                as f64
        };
        let mults = multiplier_energy() * active_mults * serial * activations;
        let analog_bl = if self.analog() {
            BL_CAP * vdd2() * w * cols_f * self.bl as f64 * serial * activations
        } else {
            0.0
        };
        let adders_regular = if self.analog() {
            0.0
        } else {
            let per_tree = regular_tree_energy(self.weight_precision, rows, self.bl);
            let trees = (u64::from(self.bit_serial_precision) * cols) as f64;
            per_tree * trees * serial * activations
        };
        let adders_pv = adder_energy() * self.pv_adders() * cols_f * serial * activations;
        let accumulators = match self.accumulator_bits() {
            None => 0.0,
            Some(bits) => (adder_energy() + reg_energy()) * bits * cols_f * serial * activations,
        };
        Ok(ImcLayerCost {
            energy: [0.0, dacs, adcs, mults, analog_bl, adders_regular, adders_pv, accumulators],
            tclk: self.tclk(),
            cycles_per_mac: self.cycles_per_mac(),
        })
    }
}

/// The energy of one regular ripple-carry adder tree with `physical` inputs of `prec` bits of
/// which `active` carry data (ZigZag's `get_regular_adder_trees_energy`): fully active 1-bit
/// adders (both inputs) and half active ones (one input, no carry).
fn regular_tree_energy(prec: u32, active: u64, physical: u64) -> f64 {
    if active < 1 {
        return 0.0;
    }
    let p = f64::from(prec);
    let depth = physical.max(1).ilog2() as f64;
    let adders = physical as f64 * (p + 1.0) - (p + depth + 1.0);
    let (full, half) = if active >= physical {
        (adders, 0.0)
    } else {
        let (mut full, mut half) = (0.0, 0.0);
        let mut left = active as f64;
        let mut baseline = physical as f64;
        while left != 0.0 {
            baseline /= 2.0;
            let d = baseline.log2().trunc();
            if left <= 1.0 && baseline == 1.0 {
                half += p;
                left = 0.0;
            } else if left > baseline {
                full += baseline * (p + 1.0) - (p + d + 1.0) + (p + d);
                left -= baseline;
            } else if left < baseline {
                half += p + d;
            } else {
                full += baseline * (p + 1.0) - (p + d + 1.0);
                half += p + d;
                left -= baseline;
            }
            if baseline < 1.0 {
                // Only reachable with a non-power-of-2 tree, which the readers refuse.
                break;
            }
        }
        (full, half)
    };
    full * adder_energy() + half * adder_energy_half()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::{ArrayDim, Imc};

    fn array(kind: ImcKind, bsp: u32, adc: u32) -> OperationalArray {
        OperationalArray {
            dims: vec![ArrayDim { name: "D1".into(), size: 128 }, ArrayDim { name: "D2".into(), size: 128 }],
            mac_energy: 0.0,
            mac_area: 0.0,
            input_precision: Some([8, 8]),
            systolic_dims: vec![],
            imc: Some(Imc {
                kind,
                bit_serial_precision: bsp,
                adc_resolution: adc,
                cells_size: 8,
                cells_area: 0.0,
            }),
        }
    }

    #[test]
    fn clock_period_and_area_are_zigzags() {
        // ZigZag's own test suite (tests/main/test_imc): dimc.yaml tclk 3.75708 ns, area
        // 0.8018113024 mm^2; aimc.yaml tclk 14.07244 ns, area 2.2878123152749223 mm^2 (the
        // memories around the arrays have area 0).
        let d = ImcMacro::new(&array(ImcKind::Digital, 1, 0)).unwrap();
        assert!((d.tclk() - 3.75708).abs() < 1e-12, "{}", d.tclk());
        assert!((d.area() - 0.8018113024).abs() < 1e-12, "{}", d.area());
        assert_eq!(d.cycles_per_mac(), 8);
        let a = ImcMacro::new(&array(ImcKind::Analog, 2, 8)).unwrap();
        assert!((a.tclk() - 14.07244).abs() < 1e-12, "{}", a.tclk());
        assert_eq!(a.area(), 2.2878123152749223);
        assert_eq!(a.cycles_per_mac(), 4);
        assert_eq!((a.wl_dim, a.bl_dim, a.banks), (0, 1, 1));
    }

    #[test]
    fn adder_trees_count_full_and_half_active_adders() {
        // All inputs active: every adder of the tree.
        let all = regular_tree_energy(8, 128, 128);
        assert_eq!(all, (128.0 * 9.0 - 16.0) * adder_energy());
        // One input of two: the special case, `prec` half-active adders.
        assert_eq!(regular_tree_energy(8, 1, 2), 8.0 * adder_energy_half());
        assert_eq!(regular_tree_energy(8, 0, 128), 0.0);
        assert!(regular_tree_energy(8, 49, 128) < all);
    }
}
