//! The ONNX front end: hand-written protobuf types ([`proto`]), import into the IR ([`import`])
//! and export back ([`export`]).

pub mod export;
pub mod import;
pub mod proto;

pub use export::export_model;
pub use import::{import_model, import_tensor};
