//! The printer: models and graphs to text, deterministically.
//!
//! Each graph is printed by a [`GraphPrinter`], which also records the order in which the parser
//! will first meet each value; when that order is not the arena order, a `values` line that
//! lists every value in arena order is written at the top of the graph's body.

use std::fmt::Write;

use super::{
    Form, is_bare_name, is_dotted, is_ident, write_bytes, write_f32, write_f64, write_hex, write_key,
    write_str,
};
use crate::attr::{AttrValue, Attribute};
use crate::graph::{Const, DeclList, Graph, ValueId};
use crate::model::{Function, Model, OpsetImport, TrainingInfo};
use crate::op::Op;
use crate::quant::{DataType, QuantParam, QuantSpec};
use crate::tensor::{ExternalRef, SparseTensor, Tensor, TensorData};
use crate::types::{Dim, ElemType, MetaEntry, Shape, TypeInfo, ValueType};

/// Words that can end a statement (tensor properties, a shape's denotations) and so are quoted
/// when they would otherwise start the next statement as an op's domain or type.
const CONTINUATIONS: [&str; 3] = ["unnamed", "default_location", "denotations"];

/// How many elements a constant may have before the summary form abbreviates it.
const SUMMARY_LIMIT: usize = 16;
/// How many elements the summary form shows of an abbreviated constant.
const SUMMARY_SHOWN: usize = 4;

pub(super) fn model(m: &Model, form: Form) -> String {
    let mut out = String::new();
    if let Some(v) = m.ir_version {
        let _ = writeln!(out, "ir_version {v}");
    }
    for o in &m.opset_imports {
        opset(&mut out, o, 0);
    }
    if let Some(s) = &m.producer_name {
        out.push_str("producer_name ");
        write_str(&mut out, s);
        out.push('\n');
    }
    if let Some(s) = &m.producer_version {
        out.push_str("producer_version ");
        write_str(&mut out, s);
        out.push('\n');
    }
    if let Some(s) = &m.domain {
        out.push_str("domain ");
        write_str(&mut out, s);
        out.push('\n');
    }
    if let Some(v) = m.model_version {
        let _ = writeln!(out, "model_version {v}");
    }
    if let Some(s) = &m.doc_string {
        out.push_str("doc ");
        write_str(&mut out, s);
        out.push('\n');
    }
    if !m.metadata.is_empty() {
        out.push_str("meta ");
        meta_map(&mut out, &m.metadata);
        out.push('\n');
    }
    for d in &m.device_configurations {
        out.push_str("device_configuration ");
        write_hex(&mut out, d);
        out.push('\n');
    }
    if !out.is_empty() {
        out.push('\n');
    }
    graph_at(&mut out, &m.graph, form, 0);
    out.push('\n');
    for f in &m.functions {
        out.push('\n');
        function(&mut out, f, form);
    }
    for t in &m.training_info {
        out.push('\n');
        training(&mut out, t, form);
    }
    out
}

pub(super) fn graph(g: &Graph, form: Form) -> String {
    let mut out = String::new();
    graph_at(&mut out, g, form, 0);
    out.push('\n');
    out
}

fn indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("  ");
    }
}

fn opset(out: &mut String, o: &OpsetImport, level: usize) {
    indent(out, level);
    out.push_str("opset_import");
    if let Some(d) = &o.domain {
        out.push(' ');
        write_str(out, d);
    }
    if let Some(v) = o.version {
        let _ = write!(out, " {v}");
    }
    out.push('\n');
}

fn function(out: &mut String, f: &Function, form: Form) {
    out.push_str("function ");
    if let Some(d) = &f.domain {
        domain(out, d);
        out.push_str("::");
    }
    match &f.name {
        Some(n) => write_key(out, n),
        None => out.push('_'),
    }
    out.push('(');
    names(out, &f.inputs);
    out.push_str(") -> (");
    names(out, &f.outputs);
    out.push_str(") {\n");
    if let Some(o) = &f.overload {
        out.push_str("  overload ");
        write_str(out, o);
        out.push('\n');
    }
    if let Some(d) = &f.doc_string {
        out.push_str("  doc ");
        write_str(out, d);
        out.push('\n');
    }
    if !f.metadata.is_empty() {
        out.push_str("  meta ");
        meta_map(out, &f.metadata);
        out.push('\n');
    }
    for o in &f.opset_imports {
        opset(out, o, 1);
    }
    if !f.attributes.is_empty() {
        out.push_str("  attributes(");
        names(out, &f.attributes);
        out.push_str(")\n");
    }
    for a in &f.attribute_defaults {
        out.push_str("  default ");
        attribute(out, a, form, 1);
        out.push('\n');
    }
    indent(out, 1);
    graph_at(out, &f.body, form, 1);
    out.push_str("\n}\n");
}

fn training(out: &mut String, t: &TrainingInfo, form: Form) {
    out.push_str("training {\n");
    if let Some(g) = &t.initialization {
        out.push_str("  initialization ");
        graph_at(out, g, form, 1);
        out.push('\n');
    }
    if let Some(g) = &t.algorithm {
        out.push_str("  algorithm ");
        graph_at(out, g, form, 1);
        out.push('\n');
    }
    if !t.initialization_binding.is_empty() {
        out.push_str("  initialization_binding ");
        meta_map(out, &t.initialization_binding);
        out.push('\n');
    }
    if !t.update_binding.is_empty() {
        out.push_str("  update_binding ");
        meta_map(out, &t.update_binding);
        out.push('\n');
    }
    out.push_str("}\n");
}

fn names(out: &mut String, list: &[String]) {
    for (i, n) in list.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_key(out, n);
    }
}

fn domain(out: &mut String, d: &str) {
    if is_dotted(d) { out.push_str(d) } else { write_str(out, d) }
}

fn meta_map(out: &mut String, entries: &[MetaEntry]) {
    out.push('{');
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_key(out, &e.key);
        out.push_str(" = ");
        write_str(out, &e.value);
    }
    out.push('}');
}

fn doc_meta(out: &mut String, doc: &Option<String>, meta: &[MetaEntry]) {
    if let Some(d) = doc {
        out.push_str(" doc ");
        write_str(out, d);
    }
    if !meta.is_empty() {
        out.push_str(" meta ");
        meta_map(out, meta);
    }
}

/// Writes `g` starting at the current position; its body lines are indented by `level + 1`.
fn graph_at(out: &mut String, g: &Graph, form: Form, level: usize) {
    GraphPrinter::new(g, form, level).print(out);
}

struct GraphPrinter<'g> {
    g: &'g Graph,
    form: Form,
    level: usize,
    refs: Vec<String>,
    seen: Vec<bool>,
    order: Vec<ValueId>,
    ty_done: Vec<bool>,
    const_done: Vec<bool>,
    in_init_list: Vec<bool>,
}

impl<'g> GraphPrinter<'g> {
    fn new(g: &'g Graph, form: Form, level: usize) -> GraphPrinter<'g> {
        let n = g.value_count();
        let mut first: std::collections::HashMap<&str, ValueId> = std::collections::HashMap::new();
        let mut refs = Vec::with_capacity(n);
        for (id, v) in g.values() {
            let mut r = String::with_capacity(v.name.len() + 2);
            r.push('%');
            if is_bare_name(&v.name) {
                r.push_str(&v.name)
            } else {
                write_str(&mut r, &v.name)
            }
            if *first.entry(v.name.as_str()).or_insert(id) != id {
                let _ = write!(r, "#{}", id.index());
            }
            refs.push(r);
        }
        let mut in_init_list = vec![false; n];
        for v in g.initializers.iter().chain(&g.sparse_initializers) {
            in_init_list[v.index()] = true;
        }
        GraphPrinter {
            g,
            form,
            level,
            refs,
            seen: vec![false; n],
            order: Vec::with_capacity(n),
            ty_done: vec![false; n],
            const_done: vec![false; n],
            in_init_list,
        }
    }

    /// Records that the parser meets `v` here.
    fn note(&mut self, v: ValueId) {
        if !std::mem::replace(&mut self.seen[v.index()], true) {
            self.order.push(v);
        }
    }

    fn print(mut self, out: &mut String) {
        let g = self.g;
        let mut head = String::from("graph");
        if let Some(name) = &g.name {
            head.push_str(" @");
            if is_bare_name(name) { head.push_str(name) } else { write_str(&mut head, name) }
        }
        if !g.inputs.is_empty() || !g.outputs.is_empty() {
            head.push('(');
            for (i, &v) in g.inputs.iter().enumerate() {
                if i > 0 {
                    head.push_str(", ");
                }
                self.note(v);
                self.decl(&mut head, v, true, false);
            }
            head.push_str(") -> (");
            for (i, &v) in g.outputs.iter().enumerate() {
                if i > 0 {
                    head.push_str(", ");
                }
                self.note(v);
                self.decl(&mut head, v, true, false);
            }
            head.push(')');
        }
        doc_meta(&mut head, &g.doc_string, &g.metadata);
        head.push_str(" {\n");

        let mut body = String::new();
        let inner = self.level + 1;
        for &v in &g.value_info {
            indent(&mut body, inner);
            body.push_str("info ");
            self.note(v);
            self.decl(&mut body, v, true, false);
            body.push('\n');
        }
        for (kw, list) in [("init ", &g.initializers), ("sparse_init ", &g.sparse_initializers)] {
            for &v in list {
                indent(&mut body, inner);
                body.push_str(kw);
                self.note(v);
                self.decl(&mut body, v, true, true);
                body.push('\n');
            }
        }
        let mut produced = vec![false; g.value_count()];
        for (_, op) in g.ops() {
            for v in op.outputs().iter().flatten() {
                produced[v.index()] = true;
            }
        }
        for (id, v) in g.values() {
            let typeish =
                v.ty.is_some() || v.doc_string.is_some() || !v.metadata.is_empty() || v.quant.is_some();
            let needs_ty = typeish && !self.ty_done[id.index()] && !produced[id.index()];
            let needs_const = v.init.is_some() && !self.const_done[id.index()];
            if needs_ty || needs_const {
                indent(&mut body, inner);
                body.push_str("value ");
                self.note(id);
                self.decl(&mut body, id, true, false);
                body.push('\n');
            }
        }
        for (_, op) in g.ops() {
            self.op(&mut body, op);
        }
        for a in &g.quantization_annotations {
            indent(&mut body, inner);
            body.push_str("quant_annotation ");
            match &a.tensor_name {
                Some(n) => write_key(&mut body, n),
                None => body.push('_'),
            }
            body.push(' ');
            meta_map(&mut body, &a.entries);
            body.push('\n');
        }
        for d in &g.decl_overrides {
            indent(&mut body, inner);
            let list = match d.list {
                DeclList::Inputs => "inputs",
                DeclList::Outputs => "outputs",
                DeclList::ValueInfo => "value_info",
            };
            let _ = write!(body, "decl_override {list}[{}] ", d.index);
            write_key(&mut body, &d.name);
            if let Some(t) = &d.ty {
                body.push_str(": ");
                type_info(&mut body, t);
            }
            doc_meta(&mut body, &d.doc_string, &d.metadata);
            body.push('\n');
        }

        out.push_str(&head);
        let in_order =
            self.order.len() == g.value_count() && self.order.iter().enumerate().all(|(i, v)| v.index() == i);
        if !in_order {
            indent(out, inner);
            out.push_str("values ");
            for (i, r) in self.refs.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                    if i % 8 == 0 {
                        out.push('\n');
                        indent(out, inner + 2);
                    } else {
                        out.push(' ');
                    }
                }
                out.push_str(r);
            }
            out.push('\n');
        }
        out.push_str(&body);
        indent(out, self.level);
        out.push('}');
    }

    /// Writes a value in a declaration position with the properties not yet written.
    fn decl(&mut self, out: &mut String, id: ValueId, allow_const: bool, init_line: bool) {
        let i = id.index();
        out.push_str(&self.refs[i]);
        let v = self.g.value(id);
        if !self.ty_done[i] {
            self.ty_done[i] = true;
            if let Some(t) = &v.ty {
                out.push_str(": ");
                type_info(out, t);
            }
            doc_meta(out, &v.doc_string, &v.metadata);
            if let Some(q) = &v.quant {
                out.push(' ');
                quant(out, q);
            }
        }
        if allow_const
            && !self.const_done[i]
            && (init_line || !self.in_init_list[i])
            && let Some(c) = &v.init
        {
            self.const_done[i] = true;
            out.push_str(" = ");
            match c {
                Const::Dense(t) => tensor(out, t, self.form, Some(&v.name)),
                Const::Sparse(s) => sparse(out, s, self.form),
            }
        }
    }

    fn op(&mut self, out: &mut String, op: &Op) {
        for v in op.inputs().iter().flatten() {
            self.note(*v);
        }
        for v in op.outputs().iter().flatten() {
            self.note(*v);
        }
        indent(out, self.level + 1);
        if !op.outputs().is_empty() {
            for (i, v) in op.outputs().iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                match v {
                    Some(v) => self.decl(out, *v, false, false),
                    None => out.push('_'),
                }
            }
            out.push_str(" = ");
        }
        // An op without results starts its statement with the callee, which must not read as
        // the end of the statement before it (a tensor's `unnamed`, a shape's `denotations()`).
        let starts_stmt = op.outputs().is_empty();
        match op.domain_raw() {
            Some(d) if starts_stmt && CONTINUATIONS.contains(&d) => write_str(out, d),
            Some(d) => domain(out, d),
            None => {}
        }
        if op.domain_raw().is_some() {
            out.push_str("::");
        }
        let ty = op.op_type();
        if is_ident(ty) && !(starts_stmt && op.domain_raw().is_none() && CONTINUATIONS.contains(&ty)) {
            out.push_str(ty)
        } else {
            write_str(out, ty)
        }
        out.push('(');
        for (i, v) in op.inputs().iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            match v {
                Some(v) => out.push_str(&self.refs[v.index()]),
                None => out.push('_'),
            }
        }
        out.push(')');
        if !op.attrs.is_empty() {
            let multiline =
                op.attrs.iter().any(|a| matches!(a.value, AttrValue::Graph(_) | AttrValue::Graphs(_)));
            out.push_str(" {");
            for (i, a) in op.attrs.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                    if !multiline {
                        out.push(' ');
                    }
                }
                if multiline {
                    out.push('\n');
                    indent(out, self.level + 2);
                }
                attribute(out, a, self.form, self.level + 2);
            }
            if multiline {
                out.push('\n');
                indent(out, self.level + 1);
            }
            out.push('}');
        }
        if let Some(n) = &op.name {
            out.push_str(" name ");
            write_str(out, n);
        }
        if let Some(o) = &op.overload {
            out.push_str(" overload ");
            write_str(out, o);
        }
        doc_meta(out, &op.doc_string, &op.metadata);
        for d in &op.device_configurations {
            out.push_str(" device ");
            write_hex(out, d);
        }
        out.push('\n');
    }
}

/// Writes `name[: kind][ ref "r"][ doc "d"] = value`; nested graphs are indented at `level`.
fn attribute(out: &mut String, a: &Attribute, form: Form, level: usize) {
    write_key(out, &a.name);
    if a.declared_kind != Some(a.value.kind()) {
        out.push_str(": ");
        out.push_str(a.declared_kind.map_or("?", |k| k.name()));
    }
    if let Some(r) = &a.ref_attr_name {
        out.push_str(" ref ");
        write_str(out, r);
    }
    if let Some(d) = &a.doc_string {
        out.push_str(" doc ");
        write_str(out, d);
    }
    out.push_str(" = ");
    attr_value(out, &a.value, form, level);
}

fn list<T>(out: &mut String, kind: &str, items: &[T], mut each: impl FnMut(&mut String, &T)) {
    if items.is_empty() {
        out.push_str(kind);
        out.push_str("[]");
        return;
    }
    out.push('[');
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        each(out, x);
    }
    out.push(']');
}

fn attr_value(out: &mut String, v: &AttrValue, form: Form, level: usize) {
    match v {
        AttrValue::None => out.push_str("none"),
        AttrValue::Float(x) => write_f32(out, *x),
        AttrValue::Int(x) => {
            let _ = write!(out, "{x}");
        }
        AttrValue::String(s) => write_bytes(out, s),
        AttrValue::Tensor(t) => tensor(out, t, form, None),
        AttrValue::Graph(g) => graph_at(out, g, form, level),
        AttrValue::SparseTensor(s) => sparse(out, s, form),
        AttrValue::TypeProto(t) => {
            out.push_str("type ");
            type_info(out, t);
        }
        AttrValue::Floats(v) => list(out, "floats", v, |o, x| write_f32(o, *x)),
        AttrValue::Ints(v) => list(out, "ints", v, |o, x| {
            let _ = write!(o, "{x}");
        }),
        AttrValue::Strings(v) => list(out, "strings", v, |o, x| write_bytes(o, x)),
        AttrValue::Tensors(v) => list(out, "tensors", v, |o, t| tensor(o, t, form, None)),
        AttrValue::Graphs(v) => list(out, "graphs", v, |o, g| graph_at(o, g, form, level)),
        AttrValue::SparseTensors(v) => list(out, "sparse_tensors", v, |o, s| sparse(o, s, form)),
        AttrValue::TypeProtos(v) => list(out, "type_protos", v, |o, t| {
            o.push_str("type ");
            type_info(o, t);
        }),
    }
}

fn elem(out: &mut String, e: Option<ElemType>) {
    match e {
        Some(e) => out.push_str(&e.name()),
        None => out.push('?'),
    }
}

pub(super) fn type_info(out: &mut String, t: &TypeInfo) {
    match &t.ty {
        None => out.push('?'),
        Some(v) => value_type(out, v),
    }
    if let Some(d) = &t.denotation {
        out.push_str(" denotation ");
        write_str(out, d);
    }
}

fn opt_type(out: &mut String, t: &Option<Box<TypeInfo>>) {
    if let Some(t) = t {
        type_info(out, t);
    }
}

fn value_type(out: &mut String, v: &ValueType) {
    match v {
        ValueType::Tensor { elem: e, shape: s } => {
            elem(out, *e);
            shape(out, s);
        }
        ValueType::SparseTensor { elem: e, shape: s } => {
            out.push_str("sparse ");
            elem(out, *e);
            shape(out, s);
        }
        ValueType::Sequence(t) => {
            out.push_str("seq<");
            opt_type(out, t);
            out.push('>');
        }
        ValueType::Map { key, value } => {
            out.push_str("map<");
            elem(out, *key);
            out.push_str(", ");
            opt_type(out, value);
            out.push('>');
        }
        ValueType::Optional(t) => {
            out.push_str("optional<");
            opt_type(out, t);
            out.push('>');
        }
        ValueType::Opaque { domain, name } => {
            out.push_str("opaque<");
            for (i, s) in [domain, name].into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                match s {
                    Some(s) => write_str(out, s),
                    None => out.push('?'),
                }
            }
            out.push('>');
        }
    }
}

fn shape(out: &mut String, s: &Option<Shape>) {
    let Some(s) = s else {
        out.push_str("[*]");
        return;
    };
    out.push('[');
    for (i, d) in s.dims.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match d {
            Dim::Known(n) => {
                let _ = write!(out, "{n}");
            }
            Dim::Sym(n) => write_key(out, n),
            Dim::Unknown => out.push('?'),
        }
    }
    out.push(']');
    if !s.denotations.is_empty() {
        out.push_str(" denotations(");
        for (i, (d, text)) in s.denotations.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let _ = write!(out, "{d} = ");
            write_str(out, text);
        }
        out.push(')');
    }
}

/// Writes a tensor literal. `value_name`: the name of the value it initializes, which is the
/// default for the tensor's own name.
fn tensor(out: &mut String, t: &Tensor, form: Form, value_name: Option<&str>) {
    elem(out, t.elem);
    out.push('[');
    for (i, d) in t.dims.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{d}");
    }
    out.push(']');
    let summary = form == Form::Summary;
    match &t.data {
        TensorData::Empty => {}
        TensorData::Raw(b) => {
            out.push_str(" raw ");
            if summary && b.len() > 4 * SUMMARY_LIMIT {
                raw_summary(out, t.elem_type(), b);
            } else {
                write_hex(out, b);
            }
        }
        TensorData::Floats(v) => data_list(out, "floats", v, summary, |o, x| write_f32(o, *x)),
        TensorData::Int32s(v) => data_list(out, "int32s", v, summary, |o, x| {
            let _ = write!(o, "{x}");
        }),
        TensorData::Int64s(v) => data_list(out, "int64s", v, summary, |o, x| {
            let _ = write!(o, "{x}");
        }),
        TensorData::Doubles(v) => data_list(out, "doubles", v, summary, |o, x| write_f64(o, *x)),
        TensorData::Uint64s(v) => data_list(out, "uint64s", v, summary, |o, x| {
            let _ = write!(o, "{x}");
        }),
        TensorData::Strings(v) => data_list(out, "strings", v, summary, |o, x| write_bytes(o, x)),
        TensorData::External(r) => external(out, r),
    }
    match (&t.name, value_name) {
        (Some(n), Some(v)) if n == v => {}
        (None, None) => {}
        (None, Some(_)) => out.push_str(" unnamed"),
        (Some(n), _) => {
            out.push_str(" name ");
            write_str(out, n);
        }
    }
    if let Some((b, e)) = t.segment {
        out.push_str(" segment(");
        opt_int(out, b);
        out.push_str(", ");
        opt_int(out, e);
        out.push(')');
    }
    doc_meta(out, &t.doc_string, &t.metadata);
    if t.explicit_default_location {
        out.push_str(" default_location");
    }
}

fn opt_int(out: &mut String, x: Option<i64>) {
    match x {
        Some(x) => {
            let _ = write!(out, "{x}");
        }
        None => out.push('?'),
    }
}

fn data_list<T>(out: &mut String, kind: &str, v: &[T], summary: bool, mut each: impl FnMut(&mut String, &T)) {
    out.push(' ');
    out.push_str(kind);
    if summary && v.len() > SUMMARY_LIMIT {
        let _ = write!(out, " <{} values: ", v.len());
        for x in &v[..SUMMARY_SHOWN] {
            each(out, x);
            out.push_str(", ");
        }
        out.push_str("...>");
        return;
    }
    out.push_str(" [");
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        each(out, x);
    }
    out.push(']');
}

/// `<N values: a, b, c, d, ...>` for raw data of the common element types, else `<N bytes>`.
fn raw_summary(out: &mut String, e: ElemType, b: &[u8]) {
    fn show<const N: usize>(out: &mut String, b: &[u8], f: impl Fn(&mut String, [u8; N])) {
        let _ = write!(out, "<{} values: ", b.len() / N);
        for c in b.chunks_exact(N).take(SUMMARY_SHOWN) {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            f(out, a);
            out.push_str(", ");
        }
        out.push_str("...>");
    }
    match e {
        ElemType::F32 => show::<4>(out, b, |o, a| write_f32(o, f32::from_le_bytes(a))),
        ElemType::F64 => show::<8>(out, b, |o, a| write_f64(o, f64::from_le_bytes(a))),
        ElemType::I8 => show::<1>(out, b, |o, a| {
            let _ = write!(o, "{}", a[0] as i8);
        }),
        ElemType::U8 | ElemType::Bool => show::<1>(out, b, |o, a| {
            let _ = write!(o, "{}", a[0]);
        }),
        ElemType::I16 => show::<2>(out, b, |o, a| {
            let _ = write!(o, "{}", i16::from_le_bytes(a));
        }),
        ElemType::U16 => show::<2>(out, b, |o, a| {
            let _ = write!(o, "{}", u16::from_le_bytes(a));
        }),
        ElemType::I32 => show::<4>(out, b, |o, a| {
            let _ = write!(o, "{}", i32::from_le_bytes(a));
        }),
        ElemType::U32 => show::<4>(out, b, |o, a| {
            let _ = write!(o, "{}", u32::from_le_bytes(a));
        }),
        ElemType::I64 => show::<8>(out, b, |o, a| {
            let _ = write!(o, "{}", i64::from_le_bytes(a));
        }),
        ElemType::U64 => show::<8>(out, b, |o, a| {
            let _ = write!(o, "{}", u64::from_le_bytes(a));
        }),
        _ => {
            let _ = write!(out, "<{} bytes>", b.len());
        }
    }
}

fn external(out: &mut String, r: &ExternalRef) {
    out.push_str(" external ");
    write_str(out, &r.location);
    let _ = write!(out, " offset {}", r.offset);
    if let Some(l) = r.length {
        let _ = write!(out, " length {l}");
    }
    out.push(' ');
    meta_map(out, &r.entries);
}

fn sparse(out: &mut String, s: &SparseTensor, form: Form) {
    out.push_str("sparse[");
    for (i, d) in s.dims.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{d}");
    }
    out.push_str("](");
    if let Some(v) = &s.values {
        out.push_str("values = ");
        tensor(out, v, form, None);
    }
    if let Some(ix) = &s.indices {
        if s.values.is_some() {
            out.push_str(", ");
        }
        out.push_str("indices = ");
        tensor(out, ix, form, None);
    }
    out.push(')');
}

/// QONNX's canonical name, except that `UINT1` stays `UINT1` (the name normalises it to `BINARY`,
/// and the text must round-trip the IR as it is).
pub(super) fn dtype_name(d: &DataType) -> String {
    match d {
        DataType::Int { bits: 1, signed: false } => "UINT1".into(),
        d => d.name(),
    }
}

fn qparam(out: &mut String, p: &QuantParam) {
    match p {
        QuantParam::PerTensor(x) => write_f64(out, *x),
        QuantParam::PerAxis { axis, values } => {
            let _ = write!(out, "axis {axis} ");
            f64_list(out, values);
        }
        QuantParam::Blocked { axis, block_size, dims, values } => {
            let _ = write!(out, "axis {axis} block {block_size} dims [");
            for (i, d) in dims.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let _ = write!(out, "{d}");
            }
            out.push_str("] ");
            f64_list(out, values);
        }
    }
}

fn f64_list(out: &mut String, values: &[f64]) {
    out.push('[');
    for (i, x) in values.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_f64(out, *x);
    }
    out.push(']');
}

pub(super) fn quant(out: &mut String, q: &QuantSpec) {
    out.push_str("quant(");
    out.push_str(&dtype_name(&q.dtype));
    if let Some(s) = &q.scale {
        out.push_str(", scale = ");
        qparam(out, s);
    }
    if let Some(z) = &q.zero_point {
        out.push_str(", zero_point = ");
        qparam(out, z);
    }
    if q.narrow {
        out.push_str(", narrow");
    }
    let (r, o) = (q.rounding.name(), q.origin.name());
    let _ = write!(out, ", rounding = {r}, origin = {o})");
}
