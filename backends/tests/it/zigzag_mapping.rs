//! ZigZag mapping YAML: reading ZigZag's own example mappings (from `../shared`, when present),
//! and one malformed input per diagnostic, with the key and the labelled text.

use crate::common::read_broken;

use std::path::PathBuf;

use miette::Diagnostic;
use qc_backends::arch::{Accelerator, MemOperand};
use qc_backends::mapping::{MappingFile, OperandLinks, OrderSize, SpatialMapping};
use qc_backends::zigzag::{
    MappingError, MappingErrorKind as K, MappingFit, YamlErrorKind, check_mapping_fit, read_mapping_yaml,
};

/// The folder of ZigZag's example mappings, or `None` (with a message) when it is missing.
fn mapping_dir() -> Option<PathBuf> {
    let shared = std::env::var_os("QC_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let dir = shared.join("peers/zigzag-inputs/zigzag/inputs/mapping");
    if dir.is_dir() {
        Some(dir)
    } else {
        println!("{} is missing (no ../shared checkout); skipping this test", dir.display());
        None
    }
}

fn ok(r: Result<MappingFile, MappingError>) -> MappingFile {
    r.unwrap_or_else(|e| panic!("{:?}", miette::Report::new(e)))
}

fn load(dir: &std::path::Path, name: &str) -> MappingFile {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    ok(read_mapping_yaml(&text, &path.display().to_string()))
}

fn unroll(dims: &[(&str, &[(&str, u64)])]) -> SpatialMapping {
    SpatialMapping {
        dims: dims
            .iter()
            .map(|(d, u)| (d.to_string(), u.iter().map(|(l, f)| (l.to_string(), *f)).collect()))
            .collect(),
    }
}

#[test]
fn every_zigzag_mapping_loads() {
    let Some(dir) = mapping_dir() else { return };
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    names.sort();
    assert!(names.len() >= 14, "{names:?}");
    for name in &names {
        let m = load(&dir, name);
        assert!(m.entries.iter().any(|e| e.name == "default"), "{name}");
        for e in &m.entries {
            assert_eq!(e.links, OperandLinks::default(), "{name}: {}", e.name);
        }
    }
}

#[test]
fn tpu_like_mapping() {
    let Some(dir) = mapping_dir() else { return };
    let m = load(&dir, "tpu_like.yaml");
    let names: Vec<&str> = m.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["default", "Add", "Pooling", "example_name_of_layer0"]);
    assert_eq!(m.entries[0].spatial, Some(unroll(&[("D1", &[("K", 32)]), ("D2", &[("C", 32)])])));
    assert_eq!(m.entries[1].spatial, Some(unroll(&[("D1", &[("G", 32)]), ("D2", &[("C", 1)])])));
    assert!(m.entries.iter().all(|e| e.spatial_hint.is_none()));
    assert_eq!(m.entries[0].temporal_ordering, None);
    let order = m.entries[3].temporal_ordering.as_ref().unwrap();
    let want: Vec<(String, OrderSize)> = [("OX", 112), ("OY", 112), ("FX", 7), ("FY", 7), ("K", 2)]
        .iter()
        .map(|(d, n)| (d.to_string(), OrderSize::Given(*n)))
        .collect();
    assert_eq!(order, &want);
    // Entry selection: layer name, then operator type, then `default`.
    assert_eq!(m.entry_for("example_name_of_layer0", "Conv").unwrap().name, "example_name_of_layer0");
    assert_eq!(m.entry_for("add3", "Add").unwrap().name, "Add");
    assert_eq!(m.entry_for("conv1", "Conv").unwrap().name, "default");
    assert_eq!(m.entries[0].links.mem("W"), Some(MemOperand::I2));
}

#[test]
fn mixed_and_hint_mappings() {
    let Some(dir) = mapping_dir() else { return };
    let m = load(&dir, "ascend_like_mixed.yaml");
    let d = m.entry_for("x", "Conv").unwrap();
    assert_eq!(
        d.spatial,
        Some(unroll(&[
            ("D1", &[("K", 16)]),
            ("D2", &[("C", 4), ("FX", 3)]),
            ("D3", &[("OX", 2)]),
            ("D4", &[("OY", 2)]),
        ]))
    );
    assert_eq!(d.spatial.as_ref().unwrap().unrolling("C"), 4);
    let h = load(&dir, "default_imc.yaml");
    let d = &h.entries[0];
    assert_eq!(d.spatial, None);
    let hint = d.spatial_hint.as_ref().unwrap();
    assert_eq!(hint[1], ("D2".to_string(), vec!["C".to_string(), "FX".to_string(), "FY".to_string()]));
}

const BASE: &str = "\
- name: default
  spatial_mapping:
    D1:
      - K, 32
    D2:
      - C, 16
      - FX, 2
  temporal_ordering:
    - [OX, 4]
    - [K, \"*\"]
  memory_operand_links:
    O: O
    W: I2
    I: I1
- name: Add
  spatial_mapping_hint:
    D1: [G]
    D2: [C, OX]
";

#[test]
fn base_fixture_reads() {
    let m = ok(read_mapping_yaml(BASE, "base.yaml"));
    let d = &m.entries[0];
    assert_eq!(d.spatial, Some(unroll(&[("D1", &[("K", 32)]), ("D2", &[("C", 16), ("FX", 2)])])));
    assert_eq!(
        d.temporal_ordering,
        Some(vec![("OX".to_string(), OrderSize::Given(4)), ("K".to_string(), OrderSize::Rest)])
    );
    assert_eq!(d.links, OperandLinks::default());
    let a = &m.entries[1];
    assert_eq!(a.links, OperandLinks::default());
    assert_eq!(
        a.spatial_hint,
        Some(vec![("D1".into(), vec!["G".into()]), ("D2".into(), vec!["C".into(), "OX".into()])])
    );
    // Other links, and a null spatial mapping.
    let text = "- name: default\n  spatial_mapping: null\n  memory_operand_links: {O: O, W: I1, I: I2}\n";
    let m = ok(read_mapping_yaml(text, "links.yaml"));
    assert_eq!(m.entries[0].spatial, None);
    assert_eq!(m.entries[0].links.mem("W"), Some(MemOperand::I1));
    assert_eq!(m.entries[0].links.role(MemOperand::I2), Some("I"));
}

fn error_of(text: &str) -> MappingError {
    match read_mapping_yaml(text, "bad.yaml") {
        Ok(m) => panic!("expected an error for\n{text}\ngot {m:?}"),
        Err(e) => e,
    }
}

/// One case: the text, the kind, the key, a part of the item (`""`: no item), and the labelled
/// text (or a part of it).
type Case = (String, K, Option<&'static str>, &'static str, &'static str);

#[test]
fn malformed_inputs_give_codes_keys_and_labels() {
    let r = |from: &str, to: &str| {
        assert!(BASE.contains(from), "{from:?}");
        BASE.replacen(from, to, 1)
    };
    let cases: Vec<Case> = vec![
        (
            r("    D1:\n      - K", "    D5:\n      - K"),
            K::Spatial,
            Some("spatial_mapping"),
            "entry 0 (`default`)",
            "D5",
        ),
        (r("    D2:\n      - C", "    D1:\n      - C"), K::Spatial, Some("spatial_mapping"), "default", "D1"),
        (r("K, 32", "K,32"), K::Spatial, Some("spatial_mapping"), "default", "K,32"),
        (r("K, 32", "k, 32"), K::Spatial, Some("spatial_mapping"), "default", "k, 32"),
        (r("K, 32", "K, 0"), K::Spatial, Some("spatial_mapping"), "default", "K, 0"),
        (r("K, 32", "K, 99999999999999999999"), K::Spatial, Some("spatial_mapping"), "default", "K, 9"),
        (r("FX, 2", "C, 2"), K::Spatial, Some("spatial_mapping"), "default", "C, 2"),
        (r("D2: [C, OX]", "D2: [C, C]"), K::Hint, Some("spatial_mapping_hint"), "entry 1 (`Add`)", "C"),
        (r("D1: [G]", "D1: [g]"), K::Hint, Some("spatial_mapping_hint"), "Add", "g"),
        (r("D1: [G]", "D0: [G]"), K::Hint, Some("spatial_mapping_hint"), "Add", "D0"),
        (r("[OX, 4]", "[OX, 0]"), K::Temporal, Some("temporal_ordering"), "default", "0"),
        (r("[OX, 4]", "[OX, -3]"), K::Temporal, Some("temporal_ordering"), "default", "-3"),
        (r("[OX, 4]", "[OX, 4, 1]"), K::Temporal, Some("temporal_ordering"), "default", "["),
        (r("[OX, 4]", "[4, OX]"), K::Temporal, Some("temporal_ordering"), "default", "4"),
        (r("[K, \"*\"]", "[K, \"+\"]"), K::Temporal, Some("temporal_ordering"), "default", "+"),
        (r("W: I2", "W: I3"), K::Links, Some("memory_operand_links"), "default", "I3"),
        (r("W: I2", "W: I1"), K::Links, Some("memory_operand_links"), "default", "I1"),
        (r("name: Add", "name: default"), K::Duplicate, Some("name"), "entry 1 (`default`)", "default"),
        (r("name: default", "name: Conv"), K::Default, None, "", "-"),
        ("[]\n".to_string(), K::Default, None, "", "["),
        // Schema.
        (r("name: Add", "nme: Add"), K::Schema, None, "", "nme"),
        (r("    I: I1\n", ""), K::Schema, None, "", ""),
        (r("    I: I1\n", "    I: I1\n    X: I1\n"), K::Schema, None, "", "X"),
        (r("temporal_ordering", "temporal_order"), K::Schema, None, "", "temporal_order"),
        ("name: default\n".to_string(), K::Schema, None, "", ""),
        (String::new(), K::Schema, None, "", ""),
        ("- name: [default\n".to_string(), K::Schema, None, "", ""),
    ];
    for (text, kind, key, item, label) in cases {
        let e = error_of(&text);
        let report = format!("{:?}", miette::Report::new(error_of(&text)));
        assert_eq!(e.kind, kind, "{report}\nfor\n{text}");
        assert_eq!(e.key(), key, "{report}");
        assert_eq!(e.code().unwrap().to_string(), format!("qc::mapping::{}", kind.name()));
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
    }
}

#[test]
fn duplicate_name_label_points_at_the_second() {
    let text = BASE.replacen("name: Add", "name: default", 1);
    let e = error_of(&text);
    assert!(e.span().unwrap().start > text.find("default").unwrap(), "{:?}", e.span());
}

/// Every prefix and every single-byte deletion of a valid mapping reads or gives an error, never
/// a panic.
#[test]
fn broken_yaml_never_panics() {
    let (n_ok, n_err) = read_broken(
        BASE,
        &[
            "\0",
            "[[[[",
            "- !!binary x",
            "- name: default\n  temporal_ordering: [[K, 99999999999999999999]]\n",
        ],
        |t| read_mapping_yaml(t, "fuzz.yaml"),
        |_| {},
    );
    assert!(n_ok > 0 && n_err > 0, "{n_ok} read, {n_err} rejected");
}

/// ZigZag's example inputs folder (`mapping/`, `hardware/`, `workload/`), if present.
fn inputs_dir() -> Option<PathBuf> {
    mapping_dir().map(|d| d.parent().unwrap().to_path_buf())
}

/// ZigZag's workload and accelerator `name` from its inputs folder.
fn workload_and_acc(inputs: &std::path::Path, workload: &str, acc: &str) -> (qc_ir::Workload, Accelerator) {
    let read = |p: PathBuf| (std::fs::read_to_string(&p).unwrap(), p.display().to_string());
    let (text, file) = read(inputs.join("workload").join(workload));
    let w = qc_backends::zigzag::read_workload_yaml(&text, &file).unwrap_or_else(|e| panic!("{e}"));
    let (text, file) = read(inputs.join("hardware").join(acc));
    let a = qc_backends::zigzag::read_accelerator_yaml(&text, &file).unwrap_or_else(|e| panic!("{e}"));
    (w, a)
}

/// What `check_mapping_fit` says of `text` applied to every layer of `w` on `acc`.
fn fit(text: &str, w: &qc_ir::Workload, acc: &Accelerator) -> MappingFit {
    let map = ok(read_mapping_yaml(text, "map.yaml"));
    let layers: Vec<&qc_ir::LoopNest> = w.layers.iter().collect();
    check_mapping_fit(text, "map.yaml", &map, &layers, &[], acc)
}

#[test]
fn zigzags_mappings_fit_their_accelerators_and_workloads() {
    let Some(inputs) = inputs_dir() else { return };
    let pairs = [
        ("ascend_like", "ascend_like", "resnet18.yaml"),
        ("ascend_like_mixed", "ascend_like", "resnet18.yaml"),
        ("default", "tpu_like", "resnet18.yaml"),
        ("edge_tpu_like", "edge_tpu_like", "resnet18.yaml"),
        ("edge_tpu_like_mixed", "edge_tpu_like", "resnet18.yaml"),
        ("meta_prototype_like", "meta_prototype", "resnet18.yaml"),
        ("meta_prototype_like_mixed", "meta_prototype", "resnet18.yaml"),
        ("tesla_npu_like", "tesla_npu_like", "resnet18.yaml"),
        ("tesla_npu_like_mixed", "tesla_npu_like", "resnet18.yaml"),
        ("tpu_like", "tpu_like", "resnet18.yaml"),
        ("tpu_like_mixed", "tpu_like", "resnet18.yaml"),
        ("gemm_l1", "gemm_l1", "gemm_layer.yaml"),
        ("gemm_l1_l3", "gemm_l1_l3", "gemm_layer.yaml"),
    ];
    for (map, acc, workload) in pairs {
        let (w, a) = workload_and_acc(&inputs, workload, &format!("{acc}.yaml"));
        let path = inputs.join("mapping").join(format!("{map}.yaml"));
        let f = fit(&std::fs::read_to_string(&path).unwrap(), &w, &a);
        let show = |v: Vec<MappingError>| {
            v.into_iter().map(|e| format!("{:?}", miette::Report::new(e))).collect::<Vec<_>>()
        };
        assert!(f.errors.is_empty(), "{map} on {acc}: {:#?}", show(f.errors));
        assert!(f.warnings.is_empty(), "{map} on {acc}: {:#?}", show(f.warnings));
    }
}

#[test]
fn entries_that_do_not_fit_the_layers_or_the_array_are_errors_at_their_key() {
    let Some(inputs) = inputs_dir() else { return };
    let (w, a) = workload_and_acc(&inputs, "resnet18.yaml", "tpu_like.yaml");
    let base = "- name: default\n  spatial_mapping:\n    D1:\n      - K, 32\n    D2:\n      - C, 32\n";
    assert!(fit(base, &w, &a).errors.is_empty());
    let one = |text: &str, kind: K, label: &str, parts: &[&str]| {
        let f = fit(text, &w, &a);
        assert_eq!(f.errors.len(), 1, "{text}: {:?}", f.errors);
        let e = &f.errors[0];
        assert_eq!(e.kind, kind, "{text}: {e}");
        assert_eq!(e.labelled_text(), Some(label), "{text}: {e}");
        assert_eq!(e.code().unwrap().to_string(), kind.code());
        for p in parts {
            assert!(
                e.to_string().contains(p) || e.hint().contains(p),
                "{text}: `{p}` not in {e} / {}",
                e.hint()
            );
        }
    };
    // A dim no Conv has, on the default entry: named with the layers it is applied to.
    one(
        &base.replace("K, 32", "Q, 32"),
        K::UnknownDim,
        "Q, 32",
        &["`Q, 32` unrolls `Q`", "`example_name_of_layer0`", "B, K, C, OY, OX, FY, FX"],
    );
    // Unrolling 1 of a missing dim is a no-op (ZigZag's `C, 1` on Add layers).
    assert!(
        fit(
            &format!(
                "{base}- name: Add\n  spatial_mapping:\n    D1:\n      - G, 32\n    D2:\n      - C, 1\n"
            ),
            &w,
            &a
        )
        .errors
        .is_empty()
    );
    // A layer dim the Add entry's layers lack (but the default layers have) is ignored for
    // them, as ZigZag ignores it: a warning at its key, no error.
    let f = fit(
        &format!("{base}- name: Add\n  spatial_mapping:\n    D1:\n      - G, 32\n    D2:\n      - C, 4\n"),
        &w,
        &a,
    );
    assert!(f.errors.is_empty(), "{:?}", f.errors);
    assert_eq!(f.warnings.len(), 1, "{:?}", f.warnings);
    let warn = &f.warnings[0];
    assert_eq!(warn.kind, K::AbsentDim);
    assert_eq!(warn.labelled_text(), Some("C, 4"));
    assert!(warn.to_string().contains("ignored for them") && warn.hint().contains("B, G, OY, OX"), "{warn}");
    // A name that is no layer dim at all, on the Add entry: an error naming its layers' dims.
    one(
        &format!("{base}- name: Add\n  spatial_mapping:\n    D1:\n      - G, 32\n    D2:\n      - Z, 4\n"),
        K::UnknownDim,
        "Z, 4",
        &["entry 1 (`Add`)", "their dims: B, G, OY, OX"],
    );
    one(
        &format!("{base}  temporal_ordering:\n    - [FX, 3]\n    - [QQ, \"*\"]\n"),
        K::UnknownDim,
        "QQ",
        &["a loop over `QQ`", "temporal_ordering"],
    );
    one(
        &base.replace("K, 32", "K, 64"),
        K::Unrolling,
        "K, 64",
        &["`K, 64` unrolls 64 on D1, which has 32 units", "D1 = 32, D2 = 32"],
    );
    one(
        &base.replace("      - K, 32\n", "      - K, 16\n      - FX, 4\n"),
        K::Unrolling,
        "FX, 4",
        &["multiply to 64, but D1 has 32 units"],
    );
    one(&format!("{base}    D3:\n      - OX, 2\n"), K::Unrolling, "OX, 2", &["D3, which accelerator"]);
    // Every error at once.
    assert_eq!(fit(&base.replace("K, 32", "Q, 64"), &w, &a).errors.len(), 2);

    // An entry that names nothing in the workload is a warning at its name.
    let f = fit(&format!("{base}- name: Convolution\n  spatial_mapping:\n    D1:\n      - K, 32\n"), &w, &a);
    assert!(f.errors.is_empty(), "{:?}", f.errors);
    let [warning] = f.warnings.as_slice() else { panic!("{:?}", f.warnings) };
    assert_eq!(warning.kind, K::UnusedEntry);
    assert_eq!(warning.severity(), Some(miette::Severity::Warning));
    assert_eq!(warning.labelled_text(), Some("Convolution"));
    assert!(warning.hint().contains("Add, Conv, Conv_downsample, Pooling"), "{}", warning.hint());
}
