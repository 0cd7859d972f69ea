//! A model: the main graph plus everything around it (opset imports, producer, metadata,
//! model-local functions, training information).

use std::fmt;

use bytes::Bytes;

use crate::attr::Attribute;
use crate::graph::Graph;
use crate::tensor::{DataResolver, SharedResolver, Tensor, TensorError};
use crate::types::MetaEntry;

/// An operator set the model imports.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OpsetImport {
    /// `None` or `""`: the default ONNX domain.
    pub domain: Option<String>,
    pub version: Option<i64>,
}

/// A model-local function.
#[derive(Clone, Debug, PartialEq)]
pub struct Function {
    pub name: Option<String>,
    pub domain: Option<String>,
    pub overload: Option<String>,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    /// Names of the attributes the function takes.
    pub attributes: Vec<String>,
    /// Attributes with default values.
    pub attribute_defaults: Vec<Attribute>,
    /// The body: its ops and `value_info`. Its inputs and outputs are the names above.
    pub body: Graph,
    pub opset_imports: Vec<OpsetImport>,
    pub doc_string: Option<String>,
    pub metadata: Vec<MetaEntry>,
}

/// `TrainingInfoProto`: graphs for initialisation and one training step.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainingInfo {
    pub initialization: Option<Graph>,
    pub algorithm: Option<Graph>,
    pub initialization_binding: Vec<MetaEntry>,
    pub update_binding: Vec<MetaEntry>,
}

/// The newest `ai.onnx` opset qc's shape inference and evaluator know (opset 22, ONNX 1.17).
pub const NEWEST_ONNX_OPSET: i64 = 22;

/// A whole model.
#[derive(Clone, Default)]
pub struct Model {
    pub ir_version: Option<i64>,
    pub opset_imports: Vec<OpsetImport>,
    pub producer_name: Option<String>,
    pub producer_version: Option<String>,
    pub domain: Option<String>,
    pub model_version: Option<i64>,
    pub doc_string: Option<String>,
    pub metadata: Vec<MetaEntry>,
    pub graph: Graph,
    pub functions: Vec<Function>,
    pub training_info: Vec<TrainingInfo>,
    /// Multi-device configurations, carried as encoded bytes that qc does not interpret.
    pub device_configurations: Vec<Bytes>,
    /// Reads external tensor data on demand (attached by the front end).
    pub resolver: Option<SharedResolver>,
}

impl PartialEq for Model {
    fn eq(&self, o: &Model) -> bool {
        self.ir_version == o.ir_version
            && self.opset_imports == o.opset_imports
            && self.producer_name == o.producer_name
            && self.producer_version == o.producer_version
            && self.domain == o.domain
            && self.model_version == o.model_version
            && self.doc_string == o.doc_string
            && self.metadata == o.metadata
            && self.graph == o.graph
            && self.functions == o.functions
            && self.training_info == o.training_info
            && self.device_configurations == o.device_configurations
    }
}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model")
            .field("ir_version", &self.ir_version)
            .field("opset_imports", &self.opset_imports)
            .field("producer_name", &self.producer_name)
            .field("graph", &self.graph)
            .finish_non_exhaustive()
    }
}

impl Model {
    /// The version of the default (`ai.onnx`) opset the model's ops follow: the imported one;
    /// without an import, 1 for models from before opset imports (IR version 1 and 2, as ONNX
    /// defines it) and [`NEWEST_ONNX_OPSET`] otherwise (a model built in code or written as text
    /// without an `opset_import` line). Every pass, the evaluator and shape inference read the
    /// version here, so they agree on what an op means.
    pub fn onnx_opset(&self) -> i64 {
        match self.opset_version("") {
            Some(v) => v,
            None if self.ir_version.is_some_and(|v| v < 3) => 1,
            None => NEWEST_ONNX_OPSET,
        }
    }

    /// The opset version of `domain` the model's ops follow: [`Model::onnx_opset`] for the
    /// default domain, else the imported version, or 1.
    pub fn domain_opset(&self, domain: &str) -> i64 {
        if crate::op::is_default_domain(domain) {
            self.onnx_opset()
        } else {
            self.opset_version(domain).unwrap_or(1)
        }
    }

    /// The opset version imported for `domain` (`""` for the default domain).
    pub fn opset_version(&self, domain: &str) -> Option<i64> {
        let default = crate::op::is_default_domain(domain);
        self.opset_imports
            .iter()
            .find(|o| {
                let d = o.domain.as_deref().unwrap_or("");
                if default { crate::op::is_default_domain(d) } else { d == domain }
            })
            .and_then(|o| o.version)
    }

    /// Every graph of the model: the main graph, function bodies, training graphs.
    pub fn top_graphs(&self) -> impl Iterator<Item = &Graph> {
        std::iter::once(&self.graph)
            .chain(self.functions.iter().map(|f| &f.body))
            .chain(self.training_info.iter().flat_map(|t| t.initialization.iter().chain(&t.algorithm)))
    }

    /// Calls `f` on every constant tensor anywhere in the model (see [`Graph::visit_tensors`]).
    pub fn visit_tensors<'a>(&'a self, f: &mut dyn FnMut(&'a Tensor)) {
        for g in self.top_graphs() {
            g.visit_tensors(f);
        }
        for func in &self.functions {
            for a in &func.attribute_defaults {
                if let crate::AttrValue::Tensor(t) = &a.value {
                    f(t);
                }
            }
        }
    }

    /// [`Model::visit_tensors`] with mutable access, in the same order.
    pub fn visit_tensors_mut(&mut self, f: &mut dyn FnMut(&mut Tensor)) {
        self.graph.visit_tensors_mut(f);
        for func in &mut self.functions {
            func.body.visit_tensors_mut(f);
        }
        for t in &mut self.training_info {
            for g in t.initialization.iter_mut().chain(&mut t.algorithm) {
                g.visit_tensors_mut(f);
            }
        }
        for func in &mut self.functions {
            for a in &mut func.attribute_defaults {
                if let crate::AttrValue::Tensor(t) = &mut a.value {
                    f(t);
                }
            }
        }
    }

    /// The raw bytes of a tensor, reading external data through the attached resolver.
    pub fn tensor_bytes(&self, t: &Tensor) -> Result<Bytes, TensorError> {
        t.raw_bytes(self.resolver.as_deref().map(|r| r as &dyn DataResolver))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_onnx_opset_without_an_import_follows_the_ir_version() {
        let mut m = Model::default();
        assert_eq!(m.onnx_opset(), NEWEST_ONNX_OPSET, "built in code or written as text");
        m.ir_version = Some(2);
        assert_eq!(m.onnx_opset(), 1, "before opset imports, ONNX means opset 1");
        m.opset_imports.push(OpsetImport { domain: Some("ai.onnx".into()), version: Some(11) });
        m.opset_imports
            .push(OpsetImport { domain: Some("qonnx.custom_op.general".into()), version: Some(2) });
        assert_eq!((m.onnx_opset(), m.domain_opset("")), (11, 11));
        assert_eq!(m.domain_opset("qonnx.custom_op.general"), 2);
        assert_eq!(m.domain_opset("com.example"), 1);
    }
}
