//! ZigZag accelerator YAML: reading ZigZag's own example accelerators (from `../shared`, when
//! present), and one malformed input per diagnostic, with the key and the labelled text.

use crate::common::read_broken;

use std::path::PathBuf;

use miette::Diagnostic;
use qc_backends::arch::{Accelerator, Direction, MemOperand, PortKind};
use qc_backends::zigzag::{AcceleratorError, AcceleratorErrorKind as K, read_accelerator_yaml};

/// The folder of ZigZag's example accelerators, or `None` (with a message) when it is missing.
fn hardware_dir() -> Option<PathBuf> {
    let shared = std::env::var_os("QC_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let dir = shared.join("peers/zigzag-inputs/zigzag/inputs/hardware");
    if dir.is_dir() {
        Some(dir)
    } else {
        println!("{} is missing (no ../shared checkout); skipping this test", dir.display());
        None
    }
}

fn load(dir: &std::path::Path, name: &str) -> Result<Accelerator, AcceleratorError> {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    read_accelerator_yaml(&text, &path.display().to_string())
}

fn ok(r: Result<Accelerator, AcceleratorError>) -> Accelerator {
    r.unwrap_or_else(|e| panic!("{:?}", miette::Report::new(e)))
}

#[test]
fn every_zigzag_accelerator_loads_or_is_refused_clearly() {
    let Some(dir) = hardware_dir() else { return };
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    names.sort();
    assert!(names.len() >= 11, "{names:?}");
    for name in &names {
        match (name.as_str(), load(&dir, name)) {
            ("aimc.yaml" | "dimc.yaml", r) => {
                let a = ok(r);
                let imc = a.array.imc.as_ref().unwrap_or_else(|| panic!("{name} is in-memory compute"));
                assert_eq!(imc.kind.name(), if name == "aimc.yaml" { "analog" } else { "digital" });
                assert_eq!((imc.cells_size, a.array.input_precision), (8, Some([8, 8])), "{name}");
                assert_eq!(a.memories[0].name, "cells");
            }
            (_, r) => {
                let a = ok(r);
                assert!(!a.memories.is_empty(), "{name}");
                for op in MemOperand::ALL {
                    assert!(!a.levels(op).is_empty(), "{name}: {op}");
                }
            }
        }
    }
}

#[test]
fn tpu_like() {
    let Some(dir) = hardware_dir() else { return };
    let a = ok(load(&dir, "tpu_like.yaml"));
    assert_eq!(a.name, "tpu_like");
    let dims: Vec<(&str, u64)> = a.array.dims.iter().map(|d| (d.name.as_str(), d.size)).collect();
    assert_eq!(dims, [("D1", 32), ("D2", 32)]);
    assert_eq!(a.array.units(), 1024);
    assert_eq!(a.array.mac_energy, 0.04);
    assert_eq!(a.array.mac_area, 1.0);
    assert_eq!(a.array.input_precision, None);
    assert!(a.array.systolic_dims.is_empty());

    let mems: Vec<(&str, u64, Vec<usize>)> =
        a.memories.iter().map(|m| (m.name.as_str(), m.size_bits, m.served_dims.clone())).collect();
    assert_eq!(
        mems,
        [
            ("rf_128B", 1024, vec![]),
            ("rf_2B", 16, vec![]),
            ("sram_2MB", 16_777_216, vec![0, 1]),
            ("dram", 10_000_000_000, vec![0, 1]),
        ]
    );
    let instances: Vec<u64> = (0..4).map(|i| a.instances(i)).collect();
    assert_eq!(instances, [1024, 1024, 1, 1]);
    assert_eq!(a.levels(MemOperand::I2), [0, 3]);
    assert_eq!(a.levels(MemOperand::O), [1, 2, 3]);
    assert_eq!(a.levels(MemOperand::I1), [2, 3]);
    assert_eq!(a.memories[2].operands, [MemOperand::I1, MemOperand::O]);
    assert_eq!((a.memories[2].r_cost, a.memories[2].w_cost), (416.16, 378.4));
    assert_eq!((a.memories[3].r_cost, a.memories[3].w_cost), (700.0, 750.0));
    assert!(a.memories.iter().all(|m| m.latency == 1 && m.area == 0.0 && !m.double_buffering));

    // sram_2MB has `ports` twice; as in PyYAML, the second one counts.
    let sram = &a.memories[2];
    assert_eq!(sram.ports.len(), 2);
    let r = &sram.ports[0];
    assert_eq!((r.name.as_str(), r.kind, r.bw_min, r.bw_max), ("r_port_1", PortKind::Read, 64, 2048));
    assert_eq!(
        r.allocation,
        [
            (MemOperand::I1, Direction::ToLow),
            (MemOperand::O, Direction::ToLow),
            (MemOperand::O, Direction::ToHigh)
        ]
    );
    assert_eq!(sram.port_for(MemOperand::O, Direction::FromLow).unwrap().name, "w_port_1");
    let dram = &a.memories[3];
    assert_eq!(dram.ports.len(), 1);
    assert_eq!(dram.ports[0].kind, PortKind::ReadWrite);
    assert_eq!(dram.ports[0].allocation.len(), 8);
}

/// A port as `(name, kind, bw_min, bw_max, allocation)`.
type PortFacts<'a> = (&'a str, PortKind, u64, u64, Vec<(MemOperand, Direction)>);

#[test]
fn gemm_l1() {
    let Some(dir) = hardware_dir() else { return };
    let a = ok(load(&dir, "gemm_l1.yaml"));
    assert_eq!(a.array.dims.iter().map(|d| d.size).collect::<Vec<_>>(), [8, 8, 8]);
    assert_eq!(a.array.input_precision, Some([8, 8]));
    let reg = &a.memories[0];
    assert_eq!((reg.name.as_str(), reg.size_bits, reg.r_cost, reg.w_cost), ("reg_O", 32, 0.02, 0.02));
    assert_eq!(reg.served_dims, [1]);
    assert_eq!(a.instances(0), 64);
    let ports: Vec<PortFacts> = reg
        .ports
        .iter()
        .map(|p| (p.name.as_str(), p.kind, p.bw_min, p.bw_max, p.allocation.clone()))
        .collect();
    assert_eq!(
        ports,
        [
            ("w_port_1", PortKind::Write, 32, 32, vec![(MemOperand::O, Direction::FromHigh)]),
            ("r_port_1", PortKind::Read, 32, 32, vec![(MemOperand::O, Direction::ToLow)]),
            ("w_port_2", PortKind::Write, 32, 32, vec![(MemOperand::O, Direction::FromLow)]),
            ("r_port_2", PortKind::Read, 32, 32, vec![(MemOperand::O, Direction::ToHigh)]),
        ]
    );
    let l1 = &a.memories[1];
    assert_eq!((l1.name.as_str(), l1.size_bits, l1.r_cost, l1.w_cost), ("l1", 4_194_304, 22.9, 52.01));
    assert_eq!(l1.served_dims, [0, 1, 2]);
    assert_eq!(a.instances(1), 1);
    let ports: Vec<PortFacts> = l1
        .ports
        .iter()
        .map(|p| (p.name.as_str(), p.kind, p.bw_min, p.bw_max, p.allocation.clone()))
        .collect();
    assert_eq!(
        ports,
        [
            ("rw_port_1", PortKind::ReadWrite, 64, 512, vec![(MemOperand::I1, Direction::ToLow)]),
            ("rw_port_2", PortKind::ReadWrite, 64, 512, vec![(MemOperand::I2, Direction::ToLow)]),
            (
                "rw_port_3",
                PortKind::ReadWrite,
                64,
                2048,
                vec![(MemOperand::O, Direction::ToLow), (MemOperand::O, Direction::FromLow)]
            ),
        ]
    );
    // The top level of I1 has no write port: ZigZag accepts that, and so does qc.
    assert!(l1.port_for(MemOperand::I1, Direction::FromHigh).is_none());
}

#[test]
fn gemm_l1_l3_and_others() {
    let Some(dir) = hardware_dir() else { return };
    let a = ok(load(&dir, "gemm_l1_l3.yaml"));
    assert!(a.memories.iter().any(|m| m.double_buffering), "force_double_buffering: True");
    assert_eq!((a.memories[0].r_cost, a.memories[0].w_cost), (3.0, 4.0));
    // generic_array_cacti.yaml gives its costs (despite the name), so it loads.
    let g = ok(load(&dir, "generic_array_cacti.yaml"));
    assert_eq!(g.array.units(), 65536);
    assert_eq!(
        g.memories.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        ["rf_I", "rf_W", "rf_O", "sram_32MB", "dram"]
    );
    assert_eq!(g.memories[3].ports.len(), 4);
    let e = ok(load(&dir, "eyeriss_like.yaml"));
    assert_eq!(e.array.mac_energy, 0.5);
}

const BASE: &str = "\
name: small
memories:
  reg_W:
    size: 8
    r_cost: 0.1
    w_cost: 0.1
    area: 0
    latency: 1
    operands: [I2]
    ports:
      - name: r_port_1
        type: read
        bandwidth_min: 8
        bandwidth_max: 8
        allocation: [\"I2, tl\"]
      - name: w_port_1
        type: write
        bandwidth_min: 8
        bandwidth_max: 8
        allocation: [\"I2, fh\"]
    served_dimensions: []
  dram:
    size: 1000000
    r_cost: 100
    w_cost: 100
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
  unit_energy: 0.04
  unit_area: 1
  dimensions: [D1, D2]
  sizes: [4, 4]
";

fn replace(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?}");
    text.replacen(from, to, 1)
}

fn error_of(text: &str) -> AcceleratorError {
    match read_accelerator_yaml(text, "bad.yaml") {
        Ok(a) => panic!("expected an error for\n{text}\ngot {a:?}"),
        Err(e) => e,
    }
}

#[test]
fn base_fixture_reads() {
    let a =
        read_accelerator_yaml(BASE, "base.yaml").unwrap_or_else(|e| panic!("{:?}", miette::Report::new(e)));
    assert_eq!(a.memories.len(), 2);
    assert_eq!(a.instances(0), 16);
    assert_eq!(a.instances(1), 1);
    assert_eq!(a.memories[1].r_cost, 100.0);
    assert_eq!(a.memories[1].served_dims, [0, 1]);
}

/// One case: the text, the kind, the key, a part of the item (`""`: no item), and the labelled
/// text (or a part of it).
type Case = (String, K, Option<&'static str>, &'static str, &'static str);

#[test]
fn malformed_inputs_give_codes_keys_and_labels() {
    let r = |from: &str, to: &str| replace(BASE, from, to);
    let unit = "  unit_energy: 0.04\n";
    let cases: Vec<Case> = vec![
        // The array.
        (
            r("\n  dimensions: [D1, D2]", "\n  dimensions: [D1, X2]"),
            K::Array,
            Some("dimensions"),
            "operational_array",
            "X2",
        ),
        (
            r("\n  dimensions: [D1, D2]", "\n  dimensions: [D1, D1]"),
            K::Array,
            Some("dimensions"),
            "operational_array",
            "D1",
        ),
        (r("sizes: [4, 4]", "sizes: [4]"), K::Array, Some("sizes"), "operational_array", "["),
        (r("sizes: [4, 4]", "sizes: [4, 0]"), K::Array, Some("sizes"), "operational_array", "0"),
        (
            r(unit, "  unit_energy: 0.04\n  systolic_dimensions: [D5]\n"),
            K::Array,
            Some("systolic_dimensions"),
            "operational_array",
            "D5",
        ),
        (
            r(unit, "  unit_energy: 0.04\n  input_precision: [8]\n"),
            K::Array,
            Some("input_precision"),
            "",
            "[",
        ),
        (
            r(unit, "  unit_energy: 0.04\n  input_precision: [8, -1]\n"),
            K::Array,
            Some("input_precision"),
            "",
            "-1",
        ),
        // IMC and CACTI.
        (
            r(unit, "  unit_energy: 0.04\n  is_imc: true\n"),
            K::Imc,
            Some("unit_energy"),
            "operational_array",
            "0.04",
        ),
        (r(unit, "  unit_energy: 0.04\n  imc_type: digital\n"), K::Imc, Some("imc_type"), "", "digital"),
        (
            r(unit, "  unit_energy: 0.04\n  bit_serial_precision: 2\n"),
            K::Imc,
            Some("bit_serial_precision"),
            "",
            "2",
        ),
        (
            r("    latency: 1\n", "    latency: 1\n    auto_cost_extraction: true\n"),
            K::Cacti,
            Some("auto_cost_extraction"),
            "memory `reg_W`",
            "true",
        ),
        // Costs.
        (r("    r_cost: 0.1\n", ""), K::Cost, Some("r_cost"), "memory `reg_W`", "reg_W"),
        (r("w_cost: 0.1", "w_cost: -1"), K::Cost, Some("w_cost"), "memory `reg_W`", "-1"),
        (r("area: 0", "area: .nan"), K::Cost, Some("area"), "memory `reg_W`", ".nan"),
        (r(unit, ""), K::Cost, Some("unit_energy"), "operational_array", "u"),
        // Memories.
        (r("  dram:", "  reg_W:"), K::Memory, Some("memories"), "memory `reg_W`", "reg_W"),
        (r("size: 8", "size: 0"), K::Memory, Some("size"), "memory `reg_W`", "0"),
        (r("latency: 1", "latency: -1"), K::Memory, Some("latency"), "memory `reg_W`", "-1"),
        // Operands.
        (r("operands: [I2]", "operands: [I3]"), K::Operand, Some("operands"), "memory `reg_W`", "I3"),
        (r("operands: [I2]", "operands: [I2, I2]"), K::Operand, Some("operands"), "memory `reg_W`", "I2"),
        (
            replace(&r("operands: [I1, I2, O]", "operands: [I2, O]"), "[\"I1, fh\", \"I1, tl\", ", "["),
            K::Operand,
            Some("memories"),
            "",
            "r", // the start of the first memory
        ),
        // Ports.
        (r("name: r_port_1", "name: x_port_1"), K::Port, Some("name"), "port `x_port_1`", "x_port_1"),
        (
            r("name: w_port_1", "name: r_port_1"),
            K::Port,
            Some("name"),
            "memory `reg_W`, port `r_port_1`",
            "r_port_1",
        ),
        (r("type: read\n", "type: reed\n"), K::Port, Some("type"), "port `r_port_1`", "reed"),
        // Allocations.
        (r("[\"I2, tl\"]", "[\"I2; tl\"]"), K::Allocation, Some("allocation"), "port `r_port_1`", "I2; tl"),
        (r("[\"I2, tl\"]", "[\"I1, tl\"]"), K::Allocation, Some("allocation"), "memory `reg_W`", "I1, tl"),
        (
            r("[\"I2, tl\"]", "[\"I2, tl\", \"I2, tl\"]"),
            K::Allocation,
            Some("allocation"),
            "port `r_port_1`",
            "I2, tl",
        ),
        // Directions.
        (r("[\"I2, tl\"]", "[\"I2, fh\"]"), K::Direction, Some("allocation"), "port `r_port_1`", "I2, fh"),
        (r("[\"I2, fh\"]", "[\"I2, tl\"]"), K::Direction, Some("allocation"), "port `w_port_1`", "I2, tl"),
        // Bandwidths.
        (
            r("bandwidth_min: 64", "bandwidth_min: 128"),
            K::Bandwidth,
            Some("bandwidth_min"),
            "port `rw_port_1`",
            "128",
        ),
        (
            r("bandwidth_min: 8", "bandwidth_min: 0"),
            K::Bandwidth,
            Some("bandwidth_min"),
            "port `r_port_1`",
            "0",
        ),
        // Served dims.
        (
            r("served_dimensions: [D1, D2]", "served_dimensions: [D1, D3]"),
            K::ServedDims,
            Some("served_dimensions"),
            "memory `dram`",
            "D3",
        ),
        (
            r("served_dimensions: [D1, D2]", "served_dimensions: [D1, D1]"),
            K::ServedDims,
            Some("served_dimensions"),
            "memory `dram`",
            "D1",
        ),
        // Dataflows.
        (BASE.to_string() + "dataflows:\n  D1: [\"K; 4\"]\n", K::Dataflows, Some("dataflows"), "", "K; 4"),
        (BASE.to_string() + "dataflows:\n  D7: [\"K, 4\"]\n", K::Dataflows, Some("dataflows"), "", "D7"),
        // Schema.
        (r("latency: 1", "latncy: 1"), K::Schema, None, "", "latncy"),
        (r("    size: 8\n", ""), K::Schema, None, "", ""),
        (r("size: 8", "size: big"), K::Schema, None, "", "big"),
        (r("name: small", "nam: small"), K::Schema, None, "", "nam"),
        (r("operands: [I2]", "operands: I2"), K::Schema, None, "", ""),
        ("- 1\n".to_string(), K::Schema, None, "", ""),
        (String::new(), K::Schema, None, "", ""),
        ("name: [unclosed\n".to_string(), K::Schema, None, "", ""),
    ];
    for (text, kind, key, item, label) in cases {
        let e = error_of(&text);
        let report = format!("{:?}", miette::Report::new_boxed(Box::new(error_of(&text))));
        assert_eq!(e.kind, kind, "{report}\nfor\n{text}");
        assert_eq!(e.key(), key, "{report}");
        assert_eq!(e.code().unwrap().to_string(), format!("qc::accelerator::{}", kind.name()));
        assert!(e.help().is_some());
        if !item.is_empty() {
            assert!(e.item().is_some_and(|i| i.contains(item)), "{item:?} in {report}");
        }
        if let Some(key) = key {
            assert!(e.to_string().contains(&format!("`{key}`")), "{e}");
        }
        if !label.is_empty() {
            let got = e.labelled_text().unwrap_or_else(|| panic!("no label: {report}"));
            assert!(got.contains(label), "label {got:?}, wanted {label:?}: {report}");
        }
        if kind != K::Schema {
            assert!(e.labels().is_some(), "{report}");
        }
    }
}

#[test]
fn duplicate_memory_label_points_at_the_second() {
    let text = replace(BASE, "  dram:", "  reg_W:");
    let e = error_of(&text);
    let first = text.find("reg_W").unwrap();
    assert!(e.span().unwrap().start > first, "{:?}", e.span());
}

#[test]
fn wrong_direction_message() {
    let e = error_of(&replace(BASE, "[\"I2, tl\"]", "[\"I2, fh\"]"));
    assert!(e.message().contains("port allocation on a port of the wrong direction"), "{e}");
    assert!(e.message().contains("read port"), "{e}");
}

/// Every prefix and every single-byte deletion of a valid accelerator reads or gives an error,
/// never a panic.
#[test]
fn broken_yaml_never_panics() {
    let huge = replace(BASE, "sizes: [4, 4]", "sizes: [4294967296, 4294967296, 4294967296]");
    let extra = [
        "\0".to_string(),
        "name: x\nmemories: {}\noperational_array: {dimensions: [], sizes: []}\n".into(),
        "[[[[".into(),
        "- !!binary x".into(),
        replace(BASE, "size: 1000000", "size: 99999999999999999999"),
        replace(&huge, "\n  dimensions: [D1, D2]", "\n  dimensions: [D1, D2, D3]"),
        huge,
    ];
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let (n_ok, n_err) = read_broken(BASE, &extra, |t| read_accelerator_yaml(t, "fuzz.yaml"), |_| {});
    assert!(n_ok > 0 && n_err > 0, "{n_ok} read, {n_err} rejected");
}
