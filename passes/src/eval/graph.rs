//! Running graphs: the main graph and the bodies of `If`, `Loop` and `Scan`, with one runner.
//!
//! A graph runs in a [`Scope`]: its own values (inputs, initializers, op outputs) by value id,
//! and a link to the scope of the graph that holds it. A value a body reads but does not define
//! is looked up by name in the enclosing scopes, innermost first, as ONNX defines for subgraphs.
//! The main graph runs with no enclosing scope ([`Runner::run_main`]); a body runs with the
//! scope of the op that holds it ([`Runner::run_body`], called by [`super::control`]).
//!
//! Ops run in a topological order that counts the values an op's bodies read from the graph as
//! inputs of the op, so a body never runs before what it reads is computed.

use qc_ir::{Graph, Model};

use super::{Array, EvalError, Ins};

/// The values visible to a graph being run: its own, then those of the enclosing graphs.
pub(crate) struct Scope<'a> {
    graph: &'a Graph,
    vals: &'a [Option<Array>],
    parent: Option<&'a Scope<'a>>,
}

impl<'a> Scope<'a> {
    /// The value called `name` in this scope or an enclosing one, innermost first.
    pub(crate) fn lookup(&self, name: &str) -> Option<&'a Array> {
        let mut s = Some(self);
        while let Some(sc) = s {
            if let Some(a) = sc.graph.find(name).and_then(|v| sc.vals.get(v.index())).and_then(Option::as_ref)
            {
                return Some(a);
            }
            s = sc.parent;
        }
        None
    }
}

/// Runs graphs of one model: the model gives external data and the opset.
pub(crate) struct Runner<'m> {
    pub model: &'m Model,
    pub opset: i64,
}

impl Runner<'_> {
    /// Runs the main graph on `inputs` (bound by graph input name; initializers supply the
    /// rest) and returns the graph outputs, in order, by name.
    pub(crate) fn run_main(&self, inputs: &[(String, Array)]) -> Result<Vec<(String, Array)>, EvalError> {
        let g = &self.model.graph;
        let mut vals = self.initial(g)?;
        for (name, a) in inputs {
            if let Some(v) = g.find(name) {
                vals[v.index()] = Some(a.clone());
            }
        }
        for &v in &g.inputs {
            if vals[v.index()].is_none() {
                return Err(EvalError::MissingInput { name: g.value(v).name.clone() });
            }
        }
        let vals = self.exec(g, vals, None)?;
        g.outputs
            .iter()
            .map(|&v| {
                let name = g.value(v).name.clone();
                vals[v.index()].clone().map(|a| (name.clone(), a)).ok_or(EvalError::MissingInput { name })
            })
            .collect()
    }

    /// Runs the main graph like [`Runner::run_main`] and returns every value of it, by value
    /// index (`None` for values no op computed).
    pub(crate) fn run_main_all(&self, inputs: &[(String, Array)]) -> Result<Vec<Option<Array>>, EvalError> {
        let g = &self.model.graph;
        let mut vals = self.initial(g)?;
        for (name, a) in inputs {
            if let Some(v) = g.find(name) {
                vals[v.index()] = Some(a.clone());
            }
        }
        for &v in &g.inputs {
            if vals[v.index()].is_none() {
                return Err(EvalError::MissingInput { name: g.value(v).name.clone() });
            }
        }
        self.exec(g, vals, None)
    }

    /// Runs the body `g` with its inputs bound in order to `inputs`, inside `outer`, and returns
    /// its outputs in order.
    pub(crate) fn run_body(
        &self,
        g: &Graph,
        inputs: Vec<Array>,
        outer: &Scope<'_>,
    ) -> Result<Vec<Array>, EvalError> {
        if inputs.len() != g.inputs.len() {
            return Err(EvalError::unsupported(format!(
                "the body takes {} inputs but is given {}",
                g.inputs.len(),
                inputs.len()
            )));
        }
        let mut vals = self.initial(g)?;
        for (&v, a) in g.inputs.iter().zip(inputs) {
            vals[v.index()] = Some(a);
        }
        let vals = self.exec(g, vals, Some(outer))?;
        let scope = Scope { graph: g, vals: &vals, parent: Some(outer) };
        g.outputs
            .iter()
            .map(|&v| {
                let name = &g.value(v).name;
                match vals[v.index()].as_ref() {
                    Some(a) => Ok(a.clone()),
                    // A body may return a value of an enclosing graph as it is.
                    None => scope.lookup(name).cloned().ok_or(EvalError::MissingInput { name: name.clone() }),
                }
            })
            .collect()
    }

    /// The graph's value slots with its initializers filled in.
    fn initial(&self, g: &Graph) -> Result<Vec<Option<Array>>, EvalError> {
        let mut vals: Vec<Option<Array>> = vec![None; g.value_count()];
        for &v in &g.initializers {
            if let Some(t) = g.value(v).tensor() {
                vals[v.index()] = Some(Array::from_tensor(t, self.model)?);
            }
        }
        Ok(vals)
    }

    /// Runs the ops of `g` on `vals`; values `g` does not define are read from `outer`.
    fn exec(
        &self,
        g: &Graph,
        mut vals: Vec<Option<Array>>,
        outer: Option<&Scope<'_>>,
    ) -> Result<Vec<Option<Array>>, EvalError> {
        let order = g
            .topo_order()
            .map_err(|c| EvalError::Cycle { ops: c.iter().map(|&o| g.op_label(o)).collect() })?;
        let order = if g.ops().any(|(_, op)| crate::rewrite::subgraphs(op).next().is_some()) {
            crate::rewrite::visit_order(g)
        } else {
            order
        };
        let defined = g.defined_values();
        for id in order {
            let op = g.op(id);
            let label = g.op_label(id);
            let outs = {
                let scope = Scope { graph: g, vals: &vals, parent: outer };
                let mut args: Vec<Option<&Array>> = Vec::with_capacity(op.inputs().len());
                for slot in op.inputs() {
                    let Some(v) = slot else {
                        args.push(None);
                        continue;
                    };
                    let local = vals[v.index()].as_ref();
                    let a = match (local, outer) {
                        (Some(a), _) => Some(a),
                        (None, Some(o)) if !defined[v.index()] => o.lookup(&g.value(*v).name),
                        _ => None,
                    };
                    match a {
                        Some(a) => args.push(Some(a)),
                        None => return Err(EvalError::MissingInput { name: g.value(*v).name.clone() }),
                    }
                }
                let x = Ins { v: &args };
                match super::control::eval(op, &x, &scope, self) {
                    Ok(Some(r)) => Ok(r),
                    Ok(None) => super::dispatch(op, &x, self.opset),
                    Err(e) => Err(e),
                }
                .map_err(|e| e.at(&label))?
            };
            let mut outs = outs.into_iter();
            for slot in op.outputs() {
                let a = outs.next();
                if let (Some(v), Some(a)) = (slot, a) {
                    vals[v.index()] = Some(a);
                }
            }
        }
        Ok(vals)
    }
}
