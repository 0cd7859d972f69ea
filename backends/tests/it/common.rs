//! Fixtures shared by the integration tests of `qc-backends`: ZigZag's accelerators
//! (`gemm_l1`, `tpu_like`) and layers (`gemm_layer`, resnet18 convs) built in Rust, and small
//! builders of spatial and temporal mappings, and the broken-input generator of the readers'
//! no-panic tests.

#![allow(dead_code)]

use qc_backends::arch::{
    Accelerator, ArrayDim, Direction, MemOperand, Memory, OperationalArray, Port, PortKind,
};
use qc_backends::mapping::{SpatialMapping, TemporalLoop, TemporalMapping};
use qc_ir::{Compute, LoopDim, LoopNest, Operand, PsumRule, Relation, Source};

// ---------------------------------------------------------------- builders

pub type PortSpec<'a> = (&'a str, PortKind, u64, u64, &'a [(MemOperand, Direction)]);

#[allow(clippy::too_many_arguments)]
pub fn memory(
    name: &str,
    size_bits: u64,
    r_cost: f64,
    w_cost: f64,
    operands: &[MemOperand],
    ports: &[PortSpec],
    served_dims: &[usize],
) -> Memory {
    Memory {
        name: name.into(),
        size_bits,
        r_cost,
        w_cost,
        area: 0.0,
        latency: 1,
        operands: operands.to_vec(),
        ports: ports
            .iter()
            .map(|(n, kind, bw_min, bw_max, alloc)| Port {
                name: (*n).into(),
                kind: *kind,
                bw_min: *bw_min,
                bw_max: *bw_max,
                allocation: alloc.to_vec(),
            })
            .collect(),
        served_dims: served_dims.to_vec(),
        double_buffering: false,
    }
}

pub fn array(sizes: &[u64], mac_energy: f64, systolic: &[usize]) -> OperationalArray {
    OperationalArray {
        dims: sizes
            .iter()
            .enumerate()
            .map(|(i, &s)| ArrayDim { name: format!("D{}", i + 1), size: s })
            .collect(),
        mac_energy,
        mac_area: 1.0,
        input_precision: None,
        imc: None,
        systolic_dims: systolic.to_vec(),
    }
}

pub use Direction::{FromHigh as FH, FromLow as FL, ToHigh as TH, ToLow as TL};
pub use MemOperand::{I1, I2, O};
pub use PortKind::{Read as R, ReadWrite as RW, Write as W};

/// `gemm_l1.yaml`.
pub fn gemm_l1() -> Accelerator {
    Accelerator {
        name: "gemm_l1".into(),
        array: array(&[8, 8, 8], 0.04, &[]),
        memories: vec![
            memory(
                "reg_O",
                32,
                0.02,
                0.02,
                &[O],
                &[
                    ("w_port_1", W, 32, 32, &[(O, FH)]),
                    ("r_port_1", R, 32, 32, &[(O, TL)]),
                    ("w_port_2", W, 32, 32, &[(O, FL)]),
                    ("r_port_2", R, 32, 32, &[(O, TH)]),
                ],
                &[1],
            ),
            memory(
                "l1",
                4194304,
                22.9,
                52.01,
                &[I1, I2, O],
                &[
                    ("rw_port_1", RW, 64, 512, &[(I1, TL)]),
                    ("rw_port_2", RW, 64, 512, &[(I2, TL)]),
                    ("rw_port_3", RW, 64, 2048, &[(O, TL), (O, FL)]),
                ],
                &[0, 1, 2],
            ),
        ],
    }
}

/// `tpu_like.yaml`.
pub fn tpu_like() -> Accelerator {
    Accelerator {
        name: "tpu_like".into(),
        array: array(&[32, 32], 0.04, &[]),
        memories: vec![
            memory(
                "rf_128B",
                1024,
                0.095,
                0.095,
                &[I2],
                &[("r_port_1", R, 8, 8, &[(I2, TL)]), ("w_port_1", W, 8, 8, &[(I2, FH)])],
                &[],
            ),
            memory(
                "rf_2B",
                16,
                0.021,
                0.021,
                &[O],
                &[
                    ("r_port_1", R, 16, 16, &[(O, TL)]),
                    ("r_port_2", R, 16, 16, &[(O, TH)]),
                    ("w_port_1", W, 16, 16, &[(O, FH)]),
                    ("w_port_2", W, 16, 16, &[(O, FL)]),
                ],
                &[],
            ),
            memory(
                "sram_2MB",
                16777216,
                416.16,
                378.4,
                &[I1, O],
                &[
                    ("r_port_1", R, 64, 2048, &[(I1, TL), (O, TL), (O, TH)]),
                    ("w_port_1", W, 64, 2048, &[(I1, FH), (O, FH), (O, FL)]),
                ],
                &[0, 1],
            ),
            memory(
                "dram",
                10000000000,
                700.0,
                750.0,
                &[I1, I2, O],
                &[(
                    "rw_port_1",
                    RW,
                    64,
                    64,
                    &[(I1, FH), (I1, TL), (I2, FH), (I2, TL), (O, FH), (O, TL), (O, FL), (O, TH)],
                )],
                &[0, 1],
            ),
        ],
    }
}

pub fn operand(role: &str, index: &[&str], precision: u32) -> Operand {
    Operand {
        role: role.into(),
        index: index.iter().map(|s| (*s).to_string()).collect(),
        precision: Some(precision),
        quant: None,
        source: Source::Other,
        value: role.to_lowercase(),
    }
}

pub fn dims(d: &[(&str, u64)]) -> Vec<LoopDim> {
    d.iter().map(|(n, s)| LoopDim { name: (*n).into(), size: *s }).collect()
}

/// `gemm_layer.yaml`: `O[d0][d1] += I[d0][d2] * W[d2][d1]`, 128^3, W/I 8 b, O 32 b (final 8 b).
pub fn gemm_layer() -> LoopNest {
    LoopNest {
        name: "Layer0".into(),
        id: 0,
        op_type: "Gemm".into(),
        compute: Compute::Mac,
        dims: dims(&[("D0", 128), ("D1", 128), ("D2", 128)]),
        output: operand("O", &["d0", "d1"], 8),
        inputs: vec![operand("I", &["d0", "d2"], 8), operand("W", &["d2", "d1"], 8)],
        relations: vec![],
        psum_precision: Some(32),
        psum_rule: PsumRule::Given,
    }
}

/// A resnet18 conv as ZigZag's ONNX parser lowers it.
pub fn conv(name: &str, k: u64, c: u64, ox: u64, fx: u64, stride: u64) -> LoopNest {
    let pad = (fx - 1) / 2;
    let rel = |n: &str, o: &str, f: &str| Relation {
        name: n.into(),
        terms: vec![(stride as i64, o.into()), (1, f.into())],
        offset: -(pad as i64),
        extent: stride * ox,
        padding: (pad, pad),
    };
    LoopNest {
        name: name.into(),
        id: 0,
        op_type: "Conv".into(),
        compute: Compute::Mac,
        dims: dims(&[("B", 1), ("K", k), ("G", 1), ("OX", ox), ("OY", ox), ("C", c), ("FX", fx), ("FY", fx)]),
        output: operand("O", &["b", "g", "k", "oy", "ox"], 8),
        inputs: vec![
            operand("W", &["g", "k", "c", "fy", "fx"], 8),
            operand("I", &["b", "g", "c", "iy", "ix"], 8),
        ],
        relations: vec![rel("ix", "ox", "fx"), rel("iy", "oy", "fy")],
        psum_precision: Some(16),
        psum_rule: PsumRule::TwiceActivation,
    }
}

// ---------------------------------------------------------------- mappings

/// A spatial mapping: per array dim, `(layer dim, factor)` pairs.
pub fn spatial(dims: &[(&str, &[(&str, u64)])]) -> SpatialMapping {
    SpatialMapping {
        dims: dims
            .iter()
            .map(|(a, u)| ((*a).into(), u.iter().map(|(d, f)| ((*d).into(), *f)).collect()))
            .collect(),
    }
}

/// Loops `(dim, size)`, innermost first.
pub type Loops<'a> = &'a [(&'a str, u64)];

/// A temporal mapping: per operand, per memory level, loops innermost first.
pub fn temporal(ops: &[(&str, &[Loops])]) -> TemporalMapping {
    TemporalMapping {
        operands: ops
            .iter()
            .map(|(role, levels)| ((*role).into(), levels.iter().map(|l| order(l)).collect()))
            .collect(),
    }
}

pub fn order(s: &[(&str, u64)]) -> Vec<TemporalLoop> {
    s.iter().map(|(d, n)| TemporalLoop { dim: (*d).into(), size: *n }).collect()
}

/// `|a - b| <= 1e-9 |b|`.
pub fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs()
}

/// The YAML readers' no-panic check: reads every prefix of `base`, `base` with each character
/// deleted in turn, and each of `extra` with `read`; renders every error as a miette report and
/// hands every success to `on_ok`. Returns how many were read and how many rejected.
pub fn read_broken<T, E>(
    base: &str,
    extra: &[&str],
    read: impl Fn(&str) -> Result<T, E>,
    mut on_ok: impl FnMut(T),
) -> (usize, usize)
where
    E: miette::Diagnostic + Send + Sync + 'static,
{
    let (mut read_ok, mut rejected) = (0, 0);
    let mut check = |t: &str| match read(t) {
        Ok(v) => {
            read_ok += 1;
            on_ok(v);
        }
        Err(e) => {
            rejected += 1;
            let _ = format!("{:?}", miette::Report::new(e));
        }
    };
    for (i, _) in base.char_indices() {
        check(&base[..i]);
        let mut s = base.to_string();
        s.remove(i);
        check(&s);
    }
    for junk in extra {
        check(junk);
    }
    (read_ok, rejected)
}
