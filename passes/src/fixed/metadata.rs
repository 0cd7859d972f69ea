//! The two forms of the ACCESS attributes in an ONNX model.
//!
//! - **Inline** (the guide's form, section III.B): `input_scale`, `weight_ch_scales`,
//!   `output_bitdepth`, ... are attributes of the standard ops (Conv, Gemm, MatMul, Add, ...).
//!   This is what the ACCESS DLA compiler reads. ONNX's schemas do not list these attributes, so
//!   `onnx.checker` rejects such a model ("Unrecognized attribute").
//! - **Metadata**: the same keys and values in each node's `metadata_props` (NodeProto field 9,
//!   IR version 10 and later), where ONNX allows any key, so `onnx.checker` accepts the model.
//!   Each value is its attribute's value as text: a number for a scalar, `[a,b,...]` for
//!   `weight_ch_scales` (both read by JSON parsers); floats are written as the shortest decimal
//!   that reads back to the same 32-bit float the inline attribute would hold.
//!
//! [`to_metadata`] moves the attributes into the metadata (and raises the IR version to 10);
//! [`lift_metadata`] is its inverse, run by `qc check` and the simulation before they read the
//! attributes, so that both forms give the same findings and the same numbers.

use qc_ir::{AttrValue, MetaEntry, Model, Op};

use super::FixedError;

/// Every attribute the guide names (section III.B), the deprecated `weight_scale` and
/// `bias_scale` included.
pub const ACCESS_KEYS: &[&str] = &[
    "input_scale",
    "input_bitdepth",
    "weight_scale",
    "weight_bitdepth",
    "weight_ch_scales",
    "output_scale",
    "output_bitdepth",
    "bias_scale",
    "bias_bitdepth",
    "A_scale",
    "A_bitdepth",
    "B_scale",
    "B_bitdepth",
];

/// The IR version that has `NodeProto.metadata_props`.
pub const IR_NODE_METADATA: i64 = 10;

/// The kind of value an ACCESS key holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyKind {
    Float,
    Int,
    Floats,
}

fn key_kind(key: &str) -> KeyKind {
    if key.ends_with("_bitdepth") {
        KeyKind::Int
    } else if key == "weight_ch_scales" {
        KeyKind::Floats
    } else {
        KeyKind::Float
    }
}

/// The metadata text of an ACCESS attribute's value; `None` for a value of another kind than
/// the key's (left as an attribute, where `qc check` reports it).
fn value_text(key: &str, v: &AttrValue) -> Option<String> {
    match (key_kind(key), v) {
        (KeyKind::Float, AttrValue::Float(x)) => Some(x.to_string()),
        (KeyKind::Int, AttrValue::Int(x)) => Some(x.to_string()),
        (KeyKind::Floats, AttrValue::Floats(xs)) => {
            let items: Vec<String> = xs.iter().map(|x| x.to_string()).collect();
            Some(format!("[{}]", items.join(",")))
        }
        _ => None,
    }
}

fn parse_float(text: &str) -> Result<f32, String> {
    let t = text.trim();
    match t.parse::<f32>() {
        Ok(x) if x.is_finite() => Ok(x),
        Ok(_) => Err(format!("`{t}` is not a finite number")),
        Err(_) => Err(format!("`{t}` is not a number")),
    }
}

/// The attribute value of an ACCESS key's metadata text.
fn parse_value(key: &str, text: &str) -> Result<AttrValue, String> {
    match key_kind(key) {
        KeyKind::Float => parse_float(text).map(AttrValue::Float),
        KeyKind::Int => {
            let t = text.trim();
            t.parse::<i64>().map(AttrValue::Int).map_err(|_| format!("`{t}` is not an integer"))
        }
        KeyKind::Floats => {
            let t = text.trim();
            let inner = t
                .strip_prefix('[')
                .and_then(|r| r.strip_suffix(']'))
                .ok_or_else(|| format!("`{t}` is not a list of numbers in brackets, [a,b,...]"))?;
            if inner.trim().is_empty() {
                return Ok(AttrValue::Floats(Vec::new()));
            }
            inner.split(',').map(parse_float).collect::<Result<Vec<_>, _>>().map(AttrValue::Floats)
        }
    }
}

/// Moves every ACCESS attribute of `op` into its metadata; returns how many moved.
fn op_to_metadata(op: &mut Op) -> usize {
    let mut moved = 0;
    for key in ACCESS_KEYS {
        let Some(text) = op.attr(key).and_then(|a| value_text(key, &a.value)) else { continue };
        op.remove_attr(key);
        match op.metadata.iter_mut().find(|e| e.key == *key) {
            Some(e) => e.value = text,
            None => op.metadata.push(MetaEntry::new(*key, text)),
        }
        moved += 1;
    }
    moved
}

/// Writes the ACCESS attributes of every op of the main graph as node metadata instead, and
/// raises the IR version to 10 (the first with node metadata) when any moved. Returns the number
/// of ops whose attributes moved.
pub fn to_metadata(model: &mut Model) -> usize {
    let ids: Vec<_> = model.graph.ops().map(|(id, _)| id).collect();
    let mut ops = 0;
    for id in ids {
        if op_to_metadata(model.graph.op_mut(id)) > 0 {
            ops += 1;
        }
    }
    if ops > 0 {
        match model.ir_version {
            Some(_) => {
                crate::opset::raise_ir_version(model, IR_NODE_METADATA);
            }
            None => model.ir_version = Some(IR_NODE_METADATA),
        }
    }
    ops
}

/// Whether any op of the main graph has an ACCESS key in its metadata.
pub fn has_metadata_form(model: &Model) -> bool {
    model.graph.ops().any(|(_, op)| op.metadata.iter().any(|e| ACCESS_KEYS.contains(&e.key.as_str())))
}

/// Reads the ACCESS keys of every node's metadata (main graph) as the attributes they stand
/// for, and removes them from the metadata, so that the model is in the inline form. A key
/// whose text is not a value of its kind, or that differs from an attribute of the same name
/// on the node, is an error ([`FixedError::BadMetadata`]). Returns the number of ops changed.
pub fn lift_metadata(model: &mut Model) -> Result<usize, FixedError> {
    let ids: Vec<_> = model
        .graph
        .ops()
        .filter(|(_, op)| op.metadata.iter().any(|e| ACCESS_KEYS.contains(&e.key.as_str())))
        .map(|(id, _)| id)
        .collect();
    for &id in &ids {
        let node = model.graph.op_label(id);
        let op = model.graph.op_mut(id);
        let entries: Vec<MetaEntry> = op.metadata.clone();
        let mut keep = Vec::with_capacity(entries.len());
        for e in entries {
            if !ACCESS_KEYS.contains(&e.key.as_str()) {
                keep.push(e);
                continue;
            }
            let bad = |reason: String| FixedError::BadMetadata {
                node: node.clone(),
                key: e.key.clone(),
                value: e.value.clone(),
                reason,
            };
            let v = parse_value(&e.key, &e.value).map_err(bad)?;
            match op.attr(&e.key) {
                Some(a) if a.value != v => {
                    return Err(bad(format!(
                        "the node also has the attribute {} with another value ({})",
                        e.key,
                        value_text(&e.key, &a.value).unwrap_or_else(|| format!("{:?}", a.value.kind()))
                    )));
                }
                Some(_) => {}
                None => op.set_attr(&e.key, v),
            }
        }
        op.metadata = keep;
    }
    Ok(ids.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> Model {
        let text = "ir_version 8\nopset_import \"\" 13\ngraph @g(%x: f32[1,2]) -> (%y: f32[1,2]) {\n\
                    init %w = f32[2,2] floats [0.5, 0.25, 0.25, 0.5]\n\
                    %y = \"\"::Gemm(%x, %w) {transB = 1, input_scale = 0.5, input_bitdepth = 8, weight_bitdepth = 8, \
                    weight_ch_scales = [0.25, 0.083333336], output_scale = 0.0000009536743, output_bitdepth = 8} name \"fc\"\n}\n";
        qc_ir::text::parse_model(text).unwrap()
    }

    #[test]
    fn the_metadata_form_reads_back_as_the_inline_form() {
        let inline = model();
        let mut meta = inline.clone();
        assert_eq!(to_metadata(&mut meta), 1);
        assert_eq!(meta.ir_version, Some(10));
        let (_, op) = meta.graph.ops().next().unwrap();
        // Only the standard attribute stays an attribute.
        assert_eq!(op.attrs.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["transB"]);
        let text = |k: &str| op.metadata.iter().find(|e| e.key == k).unwrap().value.clone();
        assert_eq!(text("weight_ch_scales"), "[0.25,0.083333336]");
        assert_eq!(text("input_bitdepth"), "8");
        assert_eq!(text("output_scale").parse::<f32>().unwrap(), 2f32.powi(-20));
        assert!(has_metadata_form(&meta));
        assert_eq!(lift_metadata(&mut meta).unwrap(), 1);
        assert!(!has_metadata_form(&meta));
        // The same attributes, values bit for bit (the order: transB first, then the rest).
        let (_, a) = inline.graph.ops().next().unwrap();
        let (_, b) = meta.graph.ops().next().unwrap();
        for attr in &a.attrs {
            assert_eq!(b.attr(&attr.name).map(|x| &x.value), Some(&attr.value), "{}", attr.name);
        }
        assert_eq!(a.attrs.len(), b.attrs.len());
    }

    #[test]
    fn bad_metadata_is_an_error_naming_the_node_and_key() {
        let mut m = model();
        to_metadata(&mut m);
        let id = m.graph.ops().next().unwrap().0;
        let op = m.graph.op_mut(id);
        op.metadata.iter_mut().find(|e| e.key == "output_bitdepth").unwrap().value = "eight".into();
        let e = lift_metadata(&mut m.clone()).unwrap_err();
        let FixedError::BadMetadata { node, key, .. } = &e else { panic!("{e:?}") };
        assert_eq!((node.as_str(), key.as_str()), ("fc", "output_bitdepth"));
        // The same key inline with another value.
        let op = m.graph.op_mut(id);
        op.metadata.iter_mut().find(|e| e.key == "output_bitdepth").unwrap().value = "8".into();
        op.set_attr("input_scale", AttrValue::Float(0.25));
        let e = lift_metadata(&mut m.clone()).unwrap_err();
        assert!(e.to_string().contains("input_scale"), "{e}");
        // The same value inline is no conflict.
        m.graph.op_mut(id).set_attr("input_scale", AttrValue::Float(0.5));
        assert_eq!(lift_metadata(&mut m).unwrap(), 1);
        for bad in ["[0.25,x]", "0.25", "[inf]"] {
            assert!(parse_value("weight_ch_scales", bad).is_err(), "{bad}");
        }
    }
}
