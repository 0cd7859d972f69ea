//! Control flow: the types of `If`, `Loop` and `Scan` outputs from the types of their bodies.
//!
//! [`super::infer_op`] sees no bodies, so these ops are typed in two steps by whoever walks the
//! graphs (the `infer-shapes` pass): [`body_inputs`] gives the facts a body's inputs receive
//! from the op (Loop: the iteration number, the condition and the loop-carried values; Scan: the
//! states and one slice of each scanned input; If: nothing), the caller infers the body with the
//! enclosing graphs' values visible, and [`outputs`] combines the bodies' output facts into the
//! op's output facts.
//!
//! Loop-carried values (Loop's `v_initial` and its condition, Scan's states) may change shape from one iteration
//! to the next, so the caller must not trust the initial facts alone: [`relax_carried`] joins
//! what the body returns into what it receives, and the caller repeats until nothing changes
//! (see [`Carried`]). If's outputs are the [`join`] of both branches (the chosen branch's when
//! the condition is known): the element type and dims the branches agree on are kept, the
//! others become unknown.
//!
//! A body whose inputs or outputs do not fit the op is a [`ShapeError::Subgraph`], never a panic.

use qc_ir::{Dim, ElemType, Op, OpKind};

use super::{Cx, Fail, Kind, R, ShapeError, SymInt, TypeFact, Values, norm_axis};

/// The join of two facts: what holds of a value that is one or the other. Element type and
/// values are kept when equal; dims when the ranks and the dims agree (others become unknown).
pub fn join(a: &TypeFact, b: &TypeFact) -> TypeFact {
    let shape = match (&a.shape, &b.shape) {
        (Some(x), Some(y)) if x.len() == y.len() => {
            Some(x.iter().zip(y).map(|(p, q)| if p == q { p.clone() } else { Dim::Unknown }).collect())
        }
        _ => None,
    };
    TypeFact {
        elem: if a.elem == b.elem { a.elem } else { None },
        shape,
        value: if a.value == b.value { a.value.clone() } else { None },
    }
}

fn join_opt(a: Option<&TypeFact>, b: Option<&TypeFact>) -> Option<TypeFact> {
    Some(join(a?, b?))
}

/// Where the loop-carried values are: body inputs `inputs..inputs + count` come back as body
/// outputs `outputs..outputs + count` for the next iteration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Carried {
    pub inputs: usize,
    pub outputs: usize,
    pub count: usize,
}

/// What a body receives: its input facts, and where its loop-carried values are.
#[derive(Clone, Debug, PartialEq)]
pub struct BodyInputs {
    pub facts: Vec<Option<TypeFact>>,
    pub carried: Option<Carried>,
}

/// Joins the loop-carried outputs of one body run into the loop-carried inputs; returns whether
/// any input fact changed (then the body must be inferred again with the new facts). A carried
/// input whose returned value is untyped becomes untyped too.
pub fn relax_carried(inputs: &mut [Option<TypeFact>], outputs: &[Option<TypeFact>], c: &Carried) -> bool {
    let mut changed = false;
    for k in 0..c.count {
        let Some(slot) = inputs.get_mut(c.inputs + k) else { continue };
        let out = outputs.get(c.outputs + k).and_then(Option::as_ref);
        let new = join_opt(slot.as_ref(), out);
        if new != *slot {
            *slot = new;
            changed = true;
        }
    }
    changed
}

/// Forgets the shapes of the loop-carried inputs (keeping their element types): the safe facts
/// when joining does not settle.
pub fn forget_carried_shapes(inputs: &mut [Option<TypeFact>], c: &Carried) {
    for k in 0..c.count {
        if let Some(Some(f)) = inputs.get_mut(c.inputs + k) {
            f.shape = None;
            f.value = None;
        }
    }
}

/// `n thing` or `n things`.
fn count(n: usize, thing: &str) -> String {
    if n == 1 { format!("1 {thing}") } else { format!("{n} {thing}s") }
}

fn sub_err<T>(msg: impl Into<String>) -> R<T> {
    Err(Fail::Bad(Kind::Subgraph, msg.into()))
}

/// The attributes of `op` that hold the bodies [`body_inputs`] and [`outputs`] know about, in
/// the order [`outputs`] expects them; `None` if `op` is not a control-flow op with rules here.
pub fn body_attrs(op: &Op) -> Option<&'static [&'static str]> {
    match op.kind() {
        OpKind::If => Some(&["then_branch", "else_branch"]),
        OpKind::Loop | OpKind::Scan => Some(&["body"]),
        _ => None,
    }
}

/// The facts the body in attribute `attr` of `op` receives, given the op's input facts and the
/// body's numbers of inputs and outputs.
pub fn body_inputs(
    op: &Op,
    attr: &str,
    ins: &[Option<TypeFact>],
    n_body_in: usize,
    n_body_out: usize,
    opset: i64,
) -> Result<BodyInputs, ShapeError> {
    let cx = Cx { op, ins, opset };
    let r = match op.kind() {
        OpKind::If => {
            if n_body_in != 0 {
                sub_err(format!("branch `{attr}` has {n_body_in} inputs; If's branches take none"))
            } else {
                Ok(BodyInputs { facts: Vec::new(), carried: None })
            }
        }
        OpKind::Loop => loop_inputs(&cx, n_body_in, n_body_out),
        OpKind::Scan => scan_inputs(&cx, n_body_in, n_body_out),
        _ => return Err(ShapeError::Unsupported { node: op.display_name(0), op_type: op.op_type().into() }),
    };
    match r {
        Ok(b) => Ok(b),
        Err(Fail::Unknown) => Ok(BodyInputs { facts: vec![None; n_body_in], carried: None }),
        Err(f) => Err(super::error(op, f)),
    }
}

/// The op's output facts from its input facts, the facts each body received (`body_in`, in the
/// order of [`body_attrs`]) and the facts of each body's outputs.
pub fn outputs(
    op: &Op,
    ins: &[Option<TypeFact>],
    body_in: &[&[Option<TypeFact>]],
    body_out: &[&[Option<TypeFact>]],
    opset: i64,
) -> Result<Vec<Option<TypeFact>>, ShapeError> {
    let cx = Cx { op, ins, opset };
    let r = match (op.kind(), body_in, body_out) {
        (OpKind::If, _, [then_out, else_out]) => if_outputs(&cx, then_out, else_out),
        (OpKind::Loop, [b_in], [b_out]) => loop_outputs(&cx, b_in, b_out),
        (OpKind::Scan, [b_in], [b_out]) => scan_outputs(&cx, b_in, b_out),
        (OpKind::If | OpKind::Loop | OpKind::Scan, _, _) => sub_err("the op's bodies are missing"),
        _ => return Err(ShapeError::Unsupported { node: op.display_name(0), op_type: op.op_type().into() }),
    };
    let n_out = op.outputs().len();
    match r {
        Ok(mut v) => {
            v.resize(n_out, None);
            Ok(v)
        }
        Err(Fail::Unknown) => Ok(vec![None; n_out]),
        Err(f) => Err(super::error(op, f)),
    }
}

fn if_outputs(
    cx: &Cx,
    then_out: &[Option<TypeFact>],
    else_out: &[Option<TypeFact>],
) -> R<Vec<Option<TypeFact>>> {
    let n = cx.op.outputs().len();
    if then_out.len() != else_out.len() {
        return sub_err(format!(
            "then_branch has {} outputs and else_branch {}; they must agree",
            then_out.len(),
            else_out.len()
        ));
    }
    if then_out.len() != n {
        return sub_err(format!("the branches have {} outputs for the op's {n}", then_out.len()));
    }
    // A known condition picks its branch.
    if let Ok(c) = cx.ints(0)
        && let [c] = c[..]
    {
        return Ok(if c != 0 { then_out.to_vec() } else { else_out.to_vec() });
    }
    Ok(then_out.iter().zip(else_out).map(|(a, b)| join_opt(a.as_ref(), b.as_ref())).collect())
}

/// Loop: inputs `(M, cond, v_initial...)`; body inputs `(iteration_num, cond, v...)`; body
/// outputs `(cond, v..., scan_outputs...)`; outputs `(v_final..., scan_outputs...)`.
fn loop_inputs(cx: &Cx, n_body_in: usize, n_body_out: usize) -> R<BodyInputs> {
    let n_in = cx.op.inputs().len();
    if n_in < 2 {
        return sub_err(format!(
            "Loop has {n_in} inputs; it needs at least M and cond (either may be empty)"
        ));
    }
    let n = n_in - 2;
    if n_body_in != n + 2 {
        return sub_err(format!(
            "the body has {n_body_in} inputs; it needs {} (the iteration number, the condition and {})",
            n + 2,
            count(n, "loop-carried value")
        ));
    }
    if n_body_out < n + 1 {
        return sub_err(format!(
            "the body has {n_body_out} outputs; it needs at least {} (the condition and {})",
            n + 1,
            count(n, "loop-carried value")
        ));
    }
    // The condition is carried like the values, with its value: it stays known only when the
    // body returns the value it receives (a `for` loop's `cond_out = Identity(cond_in)`).
    let mut cond = TypeFact::new(ElemType::Bool, vec![]);
    if cx.has(1) {
        cond.value = cx.fact(1).ok().and_then(|f| f.value.clone());
    }
    let mut facts = vec![Some(TypeFact::new(ElemType::I64, vec![])), Some(cond)];
    facts.extend((0..n).map(|k| carried_fact(cx, 2 + k)));
    Ok(BodyInputs { facts, carried: Some(Carried { inputs: 1, outputs: 0, count: n + 1 }) })
}

/// A loop-carried input's initial fact, without values (they change from one iteration to the
/// next).
fn carried_fact(cx: &Cx, i: usize) -> Option<TypeFact> {
    cx.fact(i).ok().map(|f| TypeFact { value: None, ..f.clone() })
}

fn loop_outputs(
    cx: &Cx,
    body_in: &[Option<TypeFact>],
    body_out: &[Option<TypeFact>],
) -> R<Vec<Option<TypeFact>>> {
    let n = cx.op.inputs().len().saturating_sub(2);
    if body_out.len() < n + 1 || body_in.len() != n + 2 {
        return sub_err("the body's inputs or outputs do not fit the op's");
    }
    // A final value is the initial one (no iteration) or what the body returned.
    let mut out: Vec<Option<TypeFact>> = (0..n)
        .map(|k| {
            let f = join_opt(carried_fact(cx, 2 + k).as_ref(), body_in[2 + k].as_ref());
            join_opt(f.as_ref(), body_out[1 + k].as_ref())
        })
        .collect();
    // The trip count is M when there is no condition input to stop the loop early, or when the
    // condition is true and the body keeps it true (its value survived the carried join).
    let always =
        |f: Option<&TypeFact>| f.and_then(|f| f.value.as_ref()).and_then(Values::as_i64) == Some(vec![1]);
    let stays_true = always(cx.fact(1).ok()) && always(body_in[1].as_ref());
    let trips = if cx.has(1) && !stays_true {
        Dim::Unknown
    } else {
        match cx.sym_ints(0).as_deref() {
            Ok([SymInt::Int(m)]) => Dim::Known((*m).max(0) as u64),
            Ok([s @ SymInt::Sym(_)]) => s.to_dim().unwrap_or(Dim::Unknown),
            _ => Dim::Unknown,
        }
    };
    for f in &body_out[n + 1..] {
        out.push(match f {
            Some(f) => Some(stacked(f, 0, std::slice::from_ref(&trips))?),
            None => None,
        });
    }
    Ok(out)
}

/// `f` with `dims` inserted before axis `axis` (of the result; negative counts from the end).
fn stacked(f: &TypeFact, axis: i64, dims: &[Dim]) -> R<TypeFact> {
    let shape = match &f.shape {
        Some(s) => {
            let a = norm_axis(axis, s.len() + 1)?;
            let mut out = s[..a].to_vec();
            out.extend(dims.iter().cloned());
            out.extend(s[a..].iter().cloned());
            Some(out)
        }
        None => None,
    };
    Ok(TypeFact { elem: f.elem, shape, value: None })
}

/// The most precise of dims that must all be equal at run time (a known size, else a name).
fn agreed(dims: impl IntoIterator<Item = Dim>) -> Dim {
    let mut best = Dim::Unknown;
    for d in dims {
        match (&best, d) {
            (Dim::Known(_), _) => {}
            (_, d @ Dim::Known(_)) => best = d,
            (Dim::Unknown, d) => best = d,
            _ => {}
        }
    }
    best
}

/// Scan's layout: `(leading inputs, states, scanned inputs)`, and whether it is the opset-8 form
/// (an optional `sequence_lens` first, and a batch axis on every input and output).
fn scan_layout(cx: &Cx) -> R<(usize, usize, usize, bool)> {
    let v8 = cx.opset < 9;
    let m = cx.attr_int("num_scan_inputs", -1)?;
    let lead = usize::from(v8);
    let n_in = cx.op.inputs().len();
    if m < 1 || m as usize + lead > n_in {
        return Err(Fail::Bad(
            Kind::Attribute,
            format!("num_scan_inputs is {m}, but the op has {n_in} inputs"),
        ));
    }
    let m = m as usize;
    Ok((lead, n_in - lead - m, m, v8))
}

/// The scan axis of scanned input `j`, normalised against `rank`.
fn scan_input_axis(cx: &Cx, j: usize, rank: usize, v8: bool) -> R<usize> {
    if v8 {
        return if rank >= 2 { Ok(1) } else { bad_rank(rank) };
    }
    let axes = cx.attr_ints("scan_input_axes")?;
    let a = axes.as_ref().map_or(Some(0), |a| a.get(j).copied());
    let Some(a) = a else {
        return Err(Fail::Bad(
            Kind::Attribute,
            "scan_input_axes has fewer entries than scanned inputs".into(),
        ));
    };
    norm_axis(a, rank)
}

fn bad_rank<T>(rank: usize) -> R<T> {
    Err(Fail::Bad(Kind::Rank, format!("a scanned input of rank {rank} has no batch and scan axes")))
}

/// Scan: inputs `([sequence_lens,] states..., scanned...)`; body inputs `(states..., one slice of
/// each scanned input)`; body outputs `(states..., scan outputs...)`; outputs `(final states...,
/// scan outputs...)`.
fn scan_inputs(cx: &Cx, n_body_in: usize, n_body_out: usize) -> R<BodyInputs> {
    let (lead, n, m, v8) = scan_layout(cx)?;
    if n_body_in != n + m {
        return sub_err(format!(
            "the body has {n_body_in} inputs; it needs {} ({} and {})",
            n + m,
            count(n, "state"),
            count(m, "scanned input")
        ));
    }
    if n_body_out < n {
        return sub_err(format!(
            "the body has {n_body_out} outputs; it needs at least {}",
            count(n, "state")
        ));
    }
    let mut facts: Vec<Option<TypeFact>> = (0..n)
        .map(|k| {
            let mut f = carried_fact(cx, lead + k)?;
            if v8 {
                f.shape = f.shape.and_then(|s| s.get(1..).map(<[Dim]>::to_vec));
            }
            Some(f)
        })
        .collect();
    for j in 0..m {
        let Ok(f) = cx.fact(lead + n + j) else {
            facts.push(None);
            continue;
        };
        let shape = match &f.shape {
            Some(s) => {
                let a = scan_input_axis(cx, j, s.len(), v8)?;
                let mut s = s.clone();
                s.remove(a);
                if v8 {
                    s.remove(0);
                }
                Some(s)
            }
            None => None,
        };
        facts.push(Some(TypeFact { elem: f.elem, shape, value: None }));
    }
    Ok(BodyInputs { facts, carried: Some(Carried { inputs: 0, outputs: 0, count: n }) })
}

fn scan_outputs(
    cx: &Cx,
    body_in: &[Option<TypeFact>],
    body_out: &[Option<TypeFact>],
) -> R<Vec<Option<TypeFact>>> {
    let (lead, n, m, v8) = scan_layout(cx)?;
    if body_out.len() < n || body_in.len() != n + m {
        return sub_err("the body's inputs or outputs do not fit the op's");
    }
    // The number of iterations: the scan axis of the scanned inputs (and the batch, for opset 8).
    let mut seq = Vec::new();
    let mut batch = Vec::new();
    for j in 0..m {
        if let Ok(s) = cx.dims(lead + n + j) {
            seq.push(s[scan_input_axis(cx, j, s.len(), v8)?].clone());
            batch.extend(s.first().cloned());
        }
    }
    for k in 0..n {
        if let Ok(s) = cx.dims(lead + k) {
            batch.extend(s.first().cloned());
        }
    }
    let (seq, batch) = (agreed(seq), agreed(batch));
    let mut out = Vec::with_capacity(body_out.len());
    for k in 0..n {
        let f = join_opt(body_in[k].as_ref(), body_out[k].as_ref());
        out.push(match f {
            Some(f) if v8 => Some(stacked(&f, 0, std::slice::from_ref(&batch))?),
            f => {
                let initial = carried_fact(cx, lead + k);
                join_opt(initial.as_ref(), f.as_ref())
            }
        });
    }
    let out_axes = if v8 { None } else { cx.attr_ints("scan_output_axes")? };
    for (j, f) in body_out[n..].iter().enumerate() {
        let Some(f) = f else {
            out.push(None);
            continue;
        };
        out.push(Some(if v8 {
            stacked(f, 0, &[batch.clone(), seq.clone()])?
        } else {
            let a = match &out_axes {
                Some(a) => *a.get(j).ok_or_else(|| {
                    Fail::Bad(Kind::Attribute, "scan_output_axes has fewer entries than scan outputs".into())
                })?,
                None => 0,
            };
            stacked(f, a, std::slice::from_ref(&seq))?
        }));
    }
    Ok(out)
}
