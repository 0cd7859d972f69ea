//! In-memory-compute arrays (`spec/imc.md`): the IMC keys read from both accelerator formats, one
//! malformed input per rule with its key and label, and the cost model's IMC side (cycles per
//! MAC, the operational energy replacing `unit_energy`), on fixtures built here.

use miette::Diagnostic;
use qc_backends::accelerator_file::{read_qc_accelerator, write_qc_accelerator};
use qc_backends::arch::ImcKind;
use qc_backends::cost::{CostOptions, ImcMacro, evaluate};
use qc_backends::mapping::{OperandLinks, SpatialMapping, TemporalLoop, TemporalMapping};
use qc_backends::zigzag::{
    AcceleratorError, AcceleratorErrorKind as K, read_accelerator_yaml, read_workload_yaml,
};

/// A small digital IMC array, laid out as ZigZag's `dimc.yaml` (cells, input and output
/// registers, a DRAM), 8 word lines by 4 bit lines.
const DIMC: &str = "\
name: small_dimc
memories:
  cells:
    size: 8
    r_cost: 0
    w_cost: 0.095
    area: 0.001
    latency: 0
    operands: [I2]
    ports:
      - {name: rw_port_1, type: read_write, bandwidth_min: 8, bandwidth_max: 8, allocation: [\"I2, fh\", \"I2, tl\"]}
    served_dimensions: []
  rf_1B:
    size: 8
    r_cost: 0.021
    w_cost: 0.021
    area: 0
    latency: 1
    operands: [I1]
    ports:
      - {name: r_port_1, type: read, bandwidth_min: 8, bandwidth_max: 8, allocation: [\"I1, tl\"]}
      - {name: w_port_1, type: write, bandwidth_min: 8, bandwidth_max: 8, allocation: [\"I1, fh\"]}
    served_dimensions: [D1]
  rf_2B:
    size: 16
    r_cost: 0.021
    w_cost: 0.021
    area: 0
    latency: 1
    operands: [O]
    ports:
      - {name: r_port_1, type: read, bandwidth_min: 16, bandwidth_max: 16, allocation: [\"O, tl\"]}
      - {name: r_port_2, type: read, bandwidth_min: 16, bandwidth_max: 16, allocation: [\"O, th\"]}
      - {name: w_port_1, type: write, bandwidth_min: 16, bandwidth_max: 16, allocation: [\"O, fh\"]}
      - {name: w_port_2, type: write, bandwidth_min: 16, bandwidth_max: 16, allocation: [\"O, fl\"]}
    served_dimensions: [D2]
  dram:
    size: 10000000000
    r_cost: 700
    w_cost: 750
    area: 0
    latency: 1
    operands: [I1, I2, O]
    ports:
      - name: rw_port_1
        type: read_write
        bandwidth_min: 64
        bandwidth_max: 64
        allocation: [\"I1, fh\", \"I1, tl\", \"I2, fh\", \"I2, tl\", \"O, fh\", \"O, tl\", \"O, fl\", \"O, th\"]
    served_dimensions: [D1, D2]
operational_array:
  is_imc: True
  imc_type: digital
  input_precision: [8, 8]
  bit_serial_precision: 1
  dimensions: [D1, D2]
  sizes: [8, 4]
";

/// The same array, analog, with 2-bit serial inputs and 6-bit ADCs.
fn aimc() -> String {
    DIMC.replace("imc_type: digital", "imc_type: analog")
        .replace("bit_serial_precision: 1", "bit_serial_precision: 2\n  adc_resolution: 6")
}

fn read(text: &str) -> qc_backends::arch::Accelerator {
    read_accelerator_yaml(text, "imc.yaml").unwrap_or_else(|e| panic!("{:?}", miette::Report::new(e)))
}

/// `DIMC` with cell groups of two 8-bit weights (`cells.size` 16).
fn dimc_two_weight_cells() -> qc_backends::arch::Accelerator {
    read(&DIMC.replace("  cells:\n    size: 8\n", "  cells:\n    size: 16\n"))
}

fn error_of(text: &str) -> AcceleratorError {
    match read_accelerator_yaml(text, "bad.yaml") {
        Ok(a) => panic!("expected an error for\n{text}\ngot {a:?}"),
        Err(e) => e,
    }
}

#[test]
fn both_kinds_read_with_their_parameters() {
    let d = read(DIMC);
    let imc = d.array.imc.as_ref().unwrap();
    assert_eq!((imc.kind, imc.bit_serial_precision, imc.adc_resolution), (ImcKind::Digital, 1, 0));
    assert_eq!((imc.cells_size, imc.cells_area), (8, 0.001));
    assert_eq!((d.array.mac_energy, d.array.mac_area), (0.0, 0.0));
    let a = read(&aimc());
    let imc = a.array.imc.as_ref().unwrap();
    assert_eq!((imc.kind, imc.bit_serial_precision, imc.adc_resolution), (ImcKind::Analog, 2, 6));
    let m = ImcMacro::new(&a.array).unwrap();
    assert_eq!((m.wl, m.bl, m.banks, m.cycles_per_mac()), (8, 4, 1, 4));
    // The cells' area counts once per MAC unit.
    assert_eq!(m.area_breakdown()[0], 32.0 * 0.001);
}

#[test]
fn the_qc_format_carries_the_imc_keys_and_reads_back_exactly() {
    for acc in [read(DIMC), read(&aimc())] {
        let text = write_qc_accelerator(&acc, "an IMC test array", "written by the test");
        assert!(text.contains("  imc:") && !text.contains("mac_energy_pj"), "{text}");
        let back = read_qc_accelerator(&text, "imc.qc.yaml").unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back.accelerator, acc);
        // A qc file with a malformed IMC block gets the same code as ZigZag's.
        let bad = text.replace("bit_serial_precision_bits: ", "bit_serial_precision_bits: 3");
        let e = read_qc_accelerator(&bad, "bad.qc.yaml").unwrap_err();
        assert_eq!(e.code().unwrap().to_string(), "qc::accelerator::imc");
        assert_eq!(e.key(), Some("bit_serial_precision_bits"));
    }
}

/// One case: the text, the key, and the labelled text (or a part of it).
type Case = (String, Option<&'static str>, &'static str);

#[test]
fn malformed_imc_arrays_give_the_imc_code_the_key_and_a_label() {
    let r = |from: &str, to: &str| {
        assert!(DIMC.contains(from), "{from:?}");
        DIMC.replacen(from, to, 1)
    };
    let cases: Vec<Case> = vec![
        (r("  imc_type: digital\n", ""), Some("imc_type"), "True"),
        (r("imc_type: digital", "imc_type: optical"), Some("imc_type"), "optical"),
        (r("  bit_serial_precision: 1\n", ""), Some("bit_serial_precision"), "True"),
        (r("bit_serial_precision: 1", "bit_serial_precision: 3"), Some("bit_serial_precision"), "3"),
        (r("bit_serial_precision: 1", "bit_serial_precision: 16"), Some("bit_serial_precision"), "16"),
        (r("bit_serial_precision: 1", "bit_serial_precision: 1.5"), Some("bit_serial_precision"), "1.5"),
        (
            r("bit_serial_precision: 1", "bit_serial_precision: 1\n  adc_resolution: 4"),
            Some("adc_resolution"),
            "4",
        ),
        (aimc().replace("adc_resolution: 6", "adc_resolution: -1"), Some("adc_resolution"), "-1"),
        (r("input_precision: [8, 8]", "input_precision: [8, 6]"), Some("input_precision"), "["),
        (r("  input_precision: [8, 8]\n", ""), Some("input_precision"), "True"),
        (r("sizes: [8, 4]", "sizes: [8, 6]"), Some("sizes"), "["),
        (r("  is_imc: True\n", "  is_imc: True\n  unit_energy: 0.1\n"), Some("unit_energy"), "0.1"),
        (
            r("  is_imc: True\n", "  is_imc: True\n  systolic_dimensions: [D1]\n"),
            Some("systolic_dimensions"),
            "D1",
        ),
        (r("  is_imc: True\n", "  is_imc: False\n"), Some("imc_type"), "digital"),
        // The cells.
        (r("  cells:\n", "  cellz:\n"), Some("is_imc"), "True"),
        (r("  cells:\n    size: 8\n", "  cells:\n    size: 12\n"), Some("size"), "cells"),
        (
            r("    served_dimensions: []\n  rf_1B", "    served_dimensions: [D1]\n  rf_1B"),
            Some("served_dimensions"),
            "cells",
        ),
    ];
    for (text, key, label) in cases {
        let e = error_of(&text);
        let report = format!("{:?}", miette::Report::new_boxed(Box::new(error_of(&text))));
        assert_eq!(e.kind, K::Imc, "{report}\nfor\n{text}");
        assert_eq!(e.key(), key, "{report}");
        assert_eq!(e.code().unwrap().to_string(), "qc::accelerator::imc");
        assert!(e.help().is_some());
        let labelled = e.labelled_text().unwrap_or_default();
        assert!(labelled.contains(label), "label {labelled:?} lacks {label:?}: {report}");
    }
}

/// A 1x1 convolution of 16 output and 8 input channels on 4x4 pixels.
const CONV: &str = "\
- id: 0
  name: conv
  operator_type: Conv
  equation: O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]
  dimension_relations: [ix=1*ox+1*fx, iy=1*oy+1*fy]
  loop_dims: [B, K, C, OY, OX, FY, FX]
  loop_sizes: [1, 16, 8, 4, 4, 1, 1]
  operand_precision:
    W: 8
    I: 8
    O: 16
    O_final: 8
  operand_source:
    I: 0
    W: 0
";

fn spatial(d1: &[(&str, u64)], d2: &[(&str, u64)]) -> SpatialMapping {
    let list = |l: &[(&str, u64)]| l.iter().map(|(d, f)| (d.to_string(), *f)).collect();
    SpatialMapping { dims: vec![("D1".into(), list(d1)), ("D2".into(), list(d2))] }
}

/// Every temporal loop at the top level of every operand (DRAM).
fn at_top(acc: &qc_backends::arch::Accelerator, loops: &[(&str, u64)]) -> TemporalMapping {
    let links = OperandLinks::default();
    let operands = ["O", "W", "I"]
        .iter()
        .map(|role| {
            let n = acc.levels(links.mem(role).unwrap()).len();
            let mut levels = vec![Vec::new(); n];
            levels[n - 1] =
                loops.iter().map(|(d, s)| TemporalLoop { dim: d.to_string(), size: *s }).collect();
            (role.to_string(), levels)
        })
        .collect();
    TemporalMapping { operands }
}

#[test]
fn an_imc_layer_costs_its_macro_energy_and_takes_its_serial_cycles() {
    let w = read_workload_yaml(CONV, "conv.yaml").unwrap();
    let layer = &w.layers[0];
    let links = OperandLinks::default();
    for (text, serial) in [(DIMC.to_string(), 8u64), (aimc(), 4)] {
        let acc = read(&text);
        // K 8 on the word lines, C 4 on the bit lines: 2 x 2 x 4 x 4 = 64 temporal iterations.
        let sm = spatial(&[("K", 8)], &[("C", 4)]);
        let tm = at_top(&acc, &[("K", 2), ("C", 2), ("OY", 4), ("OX", 4)]);
        let c = evaluate(layer, &acc, &links, &sm, &tm, &CostOptions::default()).unwrap();
        let imc = c.imc.as_ref().expect("an IMC cost");
        assert_eq!(imc.cycles_per_mac, serial);
        assert_eq!(c.ideal_temporal_cycle, 64 * serial);
        assert_eq!(c.ideal_cycle, (16 * 8 * 16u64).div_ceil(32) * serial);
        assert_eq!(c.mac_energy, imc.energy.iter().fold(0.0, |a, x| a + x));
        assert!(c.mac_energy > 0.0 && c.energy == c.mem_energy + c.mac_energy, "{c:?}");
        assert_eq!(c.latency_ns(), Some(c.latency * imc.tclk));
        let m = ImcMacro::new(&acc.array).unwrap();
        assert_eq!(imc.tclk, m.tclk());
        // The array's parts: digital arrays add in trees, analog ones convert with ADCs.
        let [_, dacs, adcs, _, analog_bl, adders_regular, ..] = imc.energy;
        if m.kind == ImcKind::Digital {
            assert!(adders_regular > 0.0 && dacs == 0.0 && adcs == 0.0 && analog_bl == 0.0);
        } else {
            assert!(adders_regular == 0.0 && dacs > 0.0 && adcs > 0.0 && analog_bl > 0.0);
        }
        // Half the bit lines active: less energy in the array, the same cycles per MAC.
        let half = spatial(&[("K", 8)], &[("C", 2)]);
        let tm = at_top(&acc, &[("K", 2), ("C", 4), ("OY", 4), ("OX", 4)]);
        let h = evaluate(layer, &acc, &links, &half, &tm, &CostOptions::default()).unwrap();
        assert_eq!(h.ideal_temporal_cycle, 128 * serial);
        // The same MACs through twice the activations of a half-used array.
        let per_activation =
            |c: &qc_backends::cost::LayerCost, rows: f64| c.mac_energy / (16.0 * 8.0 * 16.0 / (8.0 * rows));
        assert!(per_activation(&h, 2.0) < per_activation(&c, 4.0));
    }
}

#[test]
fn a_layer_without_an_input_in_the_cells_is_an_error_naming_it() {
    use qc_backends::arch::MemOperand;
    let w = read_workload_yaml(CONV, "conv.yaml").unwrap();
    let acc = read(DIMC);
    // Both inputs linked to I1: nothing is kept in the cells.
    let links = OperandLinks {
        links: vec![("O".into(), MemOperand::O), ("I".into(), MemOperand::I1), ("W".into(), MemOperand::I1)],
    };
    let e = qc_backends::cost::Evaluator::new(&w.layers[0], &acc, &links, &spatial(&[("K", 8)], &[("C", 4)]))
        .unwrap_err();
    assert_eq!(e.code().unwrap().to_string(), "qc::costmodel::imc_weights");
    assert!(e.to_string().contains("`conv`") && e.to_string().contains("small_dimc"), "{e}");
}

/// Cell groups of two weights (`cells.size` 16 for 8-bit weights): the local bit lines are
/// precharged once per run of weight-irrelevant loops at the bottom of the cells' level
/// (`spec/imc.md` section 4), worked out by hand here.
#[test]
fn deeper_cell_groups_charge_the_precharge_per_run_of_irrelevant_loops() {
    let w = read_workload_yaml(CONV, "conv.yaml").unwrap();
    let layer = &w.layers[0];
    let links = OperandLinks::default();
    let acc = dimc_two_weight_cells();
    assert_eq!(acc.array.imc.as_ref().unwrap().cells_size, 16);
    let sm = spatial(&[("K", 8)], &[("C", 4)]);
    let with_cells = |cells: &[(&str, u64)], above: &[(&str, u64)]| {
        let mut tm = at_top(&acc, &[("K", 2), ("C", 2), ("OY", 4), ("OX", 4)]);
        let loops = |l: &[(&str, u64)]| -> Vec<TemporalLoop> {
            l.iter().map(|(d, s)| TemporalLoop { dim: d.to_string(), size: *s }).collect()
        };
        let (_, levels) = tm.operands.iter_mut().find(|(r, _)| r == "W").unwrap();
        let n = levels.len();
        levels[0] = loops(cells);
        levels[n - 1] = loops(above);
        evaluate(layer, &acc, &links, &sm, &tm, &CostOptions::default()).unwrap()
    };
    // 2048 MACs, no weight-irrelevant unrolling: 2048 weight reads before stationarity.
    // One precharge of a two-weight group: (c_wl + 2 c_bl) vdd^2 W = 3 x 0.35e-3 x 0.81 x 8 pJ.
    let one = 3.0 * 0.35e-3 * 0.81 * 8.0;
    // OX 4 below K 2 in the cells: each weight stays 4 cycles (512 reads), and the group is
    // precharged once per 4 cycles of OX: 512 / 4 = 128 precharges.
    let c = with_cells(&[("OX", 4), ("K", 2)], &[("C", 2), ("OY", 4)]);
    let pre = c.imc.as_ref().unwrap().energy[0];
    assert!((pre / (128.0 * one) - 1.0).abs() < 1e-12, "{pre} vs {}", 128.0 * one);
    assert_eq!(c.mac_energy, c.imc.as_ref().unwrap().energy.iter().fold(0.0, |a, x| a + x));
    // K 2 innermost: a new weight every cycle, a precharge every cycle: 2048.
    let c = with_cells(&[("K", 2), ("OX", 4)], &[("C", 2), ("OY", 4)]);
    let pre = c.imc.as_ref().unwrap().energy[0];
    assert!((pre / (2048.0 * one) - 1.0).abs() < 1e-12, "{pre} vs {}", 2048.0 * one);
    // One weight per group: no precharge at all.
    let acc1 = read(DIMC);
    let tm = at_top(&acc1, &[("K", 2), ("C", 2), ("OY", 4), ("OX", 4)]);
    let c = evaluate(layer, &acc1, &links, &sm, &tm, &CostOptions::default()).unwrap();
    assert_eq!(c.imc.as_ref().unwrap().energy[0], 0.0);
}

/// The exact search on an array with two-weight cell groups keeps the walk: the dominance test,
/// whose prefix states do not record the loop order the precharge reads, is not applied, and the
/// result is the walk's.
#[test]
fn the_exact_search_on_deeper_cells_walks_every_order() {
    use qc_backends::search::{Objective, TemporalOptions, search_temporal};
    let w = read_workload_yaml(CONV, "conv.yaml").unwrap();
    let layer = &w.layers[0];
    let links = OperandLinks::default();
    let acc = dimc_two_weight_cells();
    let sm = spatial(&[("K", 8)], &[("C", 4)]);
    let ev = qc_backends::cost::Evaluator::new(layer, &acc, &links, &sm).unwrap();
    assert!(ev.charges_precharge());
    let run = |dominance: bool| {
        let opts = TemporalOptions { lpf_limit: None, dominance, ..TemporalOptions::default() };
        search_temporal(layer, &acc, &links, &sm, None, Objective::Energy, &opts).unwrap()
    };
    let (with, without) = (run(true), run(false));
    assert_eq!((with.pruned_dominated, with.states), (0, 0));
    assert_eq!(with.cost.energy, without.cost.energy);
    assert_eq!(with.evaluated, without.evaluated);
    assert!(with.cost.imc.as_ref().unwrap().energy[0] > 0.0, "a precharge is charged");
}
