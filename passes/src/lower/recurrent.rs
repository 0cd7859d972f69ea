//! Recurrent layers: `LSTM`, `GRU`, `RNN` and `com.microsoft.DynamicQuantizeLSTM`, each lowered
//! as its two matrix products (see the module doc of [`crate::lower`] for the forms): the input
//! projection `X * W^T` over all time steps at once, and the recurrent projection `H * R^T`
//! with the time steps as a batch dim. The gate non-linearities and the cell update are
//! element-wise work that is not costed.

use qc_ir::{Compute, Op, OpKind, Source, ValueId};

use super::{Cx, Draft, In, Res, idx};

/// The gates of a recurrent op, or `None` if `op` is not one.
pub(crate) fn gates(op: &Op) -> Option<u64> {
    match op.kind() {
        OpKind::Lstm | OpKind::DynamicQuantizeLstm => Some(4),
        OpKind::Gru => Some(3),
        OpKind::Rnn => Some(1),
        _ => None,
    }
}

/// One layer of a recurrent op: its name suffix, its draft, the name of its output operand
/// (an intermediate with no graph value) and the source of its `I` operand when that is not
/// the value's producer.
pub(crate) struct Part {
    /// Empty for the one layer of a non-recurrent op.
    pub suffix: &'static str,
    pub draft: Draft,
    pub out_name: Option<String>,
    pub i_source: Option<Source>,
    /// The name of the `I` operand's value when it is an intermediate with no graph value.
    pub i_value: Option<String>,
}

fn attr_err(e: qc_ir::AttrError) -> String {
    e.to_string()
}

/// The two layers of recurrent op `op` (named `name` in the graph).
pub(crate) fn lower(cx: &Cx<'_>, op: &Op, name: &str) -> Res<Vec<Part>> {
    let g = gates(op).ok_or("not a recurrent op")?;
    let contrib = op.kind() == OpKind::DynamicQuantizeLstm;
    let (x, w, r) = (cx.input(op, 0)?, cx.input(op, 1)?, cx.input(op, 2)?);
    let nd: u64 = match op.attr_str("direction", "forward").map_err(attr_err)?.as_str() {
        "forward" | "reverse" => 1,
        "bidirectional" => 2,
        other => return Err(format!("unknown direction `{other}`")),
    };
    let layout1 = !contrib && op.attr_int("layout", 0).map_err(attr_err)? != 0;
    let (xd, wd, rd) = (cx.dims(x)?, cx.dims(w)?, cx.dims(r)?);
    let [a, b, input] = xd[..] else { return Err(format!("X has dims {xd:?}; it must be 3-D")) };
    let (seq, batch) = if layout1 { (b, a) } else { (a, b) };
    if rd.len() != 3 {
        return Err(format!("R has dims {rd:?}; it must be 3-D"));
    }
    let hidden = match op.attr_int("hidden_size", -1).map_err(attr_err)? {
        -1 => rd[if contrib { 1 } else { 2 }],
        h => u64::try_from(h).map_err(|_| format!("hidden_size {h} is negative"))?,
    };
    let gh = g.checked_mul(hidden).ok_or("the gate dims overflow")?;
    let rows = seq.checked_mul(batch).ok_or("the time steps times the batch overflow")?;
    // ONNX stores W [nd, gates*hidden, input] and R [nd, gates*hidden, hidden]; the contrib op
    // stores them transposed.
    let (want_w, want_r) =
        if contrib { ([nd, input, gh], [nd, hidden, gh]) } else { ([nd, gh, input], [nd, gh, hidden]) };
    if wd != want_w || rd != want_r {
        let dirs = if nd == 1 { "1 direction" } else { "2 directions" };
        return Err(format!("W {wd:?} and R {rd:?} disagree with X {xd:?} ({dirs}, hidden {hidden})"));
    }
    let w_index = |bd: &[&str]| {
        let mut v: Vec<&str> = bd.to_vec();
        v.extend_from_slice(if contrib { &["c", "k"] } else { &["k", "c"] });
        idx(&v)
    };
    let opt = |i: usize| op.inputs().get(i).copied().flatten();
    let (w_zp, r_zp) = if contrib { (opt(9), opt(11)) } else { (None, None) };
    // The hidden states: Y, else Y_h (the value that names them; the output operands' precision
    // follows it).
    let y: ValueId =
        op.outputs().iter().take(2).flatten().copied().next().ok_or("the op has no Y or Y_h output")?;
    let two = nd > 1;

    // Input projection: O[b][d][k] += I[d][c] * W[b][k][c], D = seq*batch, C = input.
    let mut dims = Vec::new();
    let mut out_index = Vec::new();
    if two {
        dims.push(("B".to_string(), nd));
        out_index.push("b");
    }
    dims.extend([("D".to_string(), rows), ("K".to_string(), gh), ("C".to_string(), input)]);
    out_index.extend(["d", "k"]);
    let proj = Draft {
        compute: Compute::Mac,
        dims,
        out_index: idx(&out_index),
        out: y,
        out_zp: None,
        inputs: vec![
            In { role: "I", index: idx(&["d", "c"]), value: Some(x), zp: None, grows: true },
            In {
                role: "W",
                index: w_index(if two { &["b"] } else { &[] }),
                value: Some(w),
                zp: w_zp,
                grows: true,
            },
        ],
        relations: vec![],
        reduction: Some(input),
        grows: true,
    };

    // Recurrent projection: the time steps (and directions) as batch dims, MatMul's names:
    // O[b][d][k] (or O[b][h][d][k] with B = directions, H = steps) += I[..][d][c] * W[..][k][c],
    // D = batch, C = hidden. I reads the layer's own hidden states, indexed in the storage order
    // of Y (layout 0: steps, directions, batch; layout 1: batch, steps, directions).
    let (dir, step) = if two { (Some("b"), "h") } else { (None, "b") };
    let mut dims = Vec::new();
    if two {
        dims.push(("B".to_string(), nd));
    }
    dims.push((step.to_ascii_uppercase(), seq));
    dims.extend([("D".to_string(), batch), ("K".to_string(), gh), ("C".to_string(), hidden)]);
    let mut out_index: Vec<&str> = dir.into_iter().collect();
    out_index.extend([step, "d", "k"]);
    let i_index: Vec<&str> = if layout1 {
        let mut v = vec!["d", step];
        v.extend(dir);
        v.push("c");
        v
    } else {
        let mut v = vec![step];
        v.extend(dir);
        v.extend(["d", "c"]);
        v
    };
    let rec = Draft {
        compute: Compute::Mac,
        dims,
        out_index: idx(&out_index),
        out: y,
        out_zp: None,
        inputs: vec![
            In { role: "I", index: idx(&i_index), value: Some(y), zp: None, grows: true },
            In { role: "W", index: w_index(dir.as_slice()), value: Some(r), zp: r_zp, grows: true },
        ],
        relations: vec![],
        reduction: Some(hidden),
        grows: true,
    };
    Ok(vec![
        Part {
            suffix: "input",
            draft: proj,
            out_name: Some(format!("{name}/input_gates")),
            i_source: None,
            i_value: None,
        },
        Part {
            suffix: "recurrent",
            draft: rec,
            out_name: Some(format!("{name}/recurrent_gates")),
            // The previous hidden state is the layer's own output.
            i_source: Some(Source::Other),
            i_value: None,
        },
    ])
}
