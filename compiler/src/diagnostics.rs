//! The front end's diagnostics. Every error has a stable code (`qc::<area>::<name>`, explained
//! in `spec/diagnostics.md`), names the file and the node or tensor it is about, and gives a hint.
//! Libraries return these; only `main` renders them.

use miette::Diagnostic;
use qc_ir::VerifyError;

/// Why a model could not be loaded. The process exits with code 2.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum LoadError {
    #[error("cannot read `{file}`: {source}")]
    #[diagnostic(code(qc::io::read), help("check that the path exists and is a readable file"))]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },

    #[error("`{file}` is empty")]
    #[diagnostic(
        code(qc::onnx::empty_file),
        help("an ONNX model is a serialized ModelProto; this file has no bytes at all")
    )]
    EmptyFile { file: String },

    #[error("`{file}` is not a valid ONNX protobuf: {reason}")]
    #[diagnostic(code(qc::onnx::decode), help("{hint}"))]
    Decode { file: String, reason: String, hint: String },

    #[error("`{file}` is a protobuf but not an ONNX model: {what}")]
    #[diagnostic(code(qc::onnx::not_a_model), help("{hint}"))]
    NotAModel { file: String, what: String, hint: String },

    #[error("`{file}` has IR version {version}, which qc does not support")]
    #[diagnostic(
        code(qc::onnx::ir_version),
        help("qc reads ONNX IR versions 1 to {max}; re-export the model with an ONNX version qc supports")
    )]
    IrVersion { file: String, version: String, max: i64 },

    #[error("`{file}` is not a valid model: {count} problem(s)")]
    #[diagnostic(code(qc::onnx::invalid), help("each problem below names the node or tensor it is about"))]
    Invalid {
        file: String,
        count: usize,
        #[related]
        problems: Vec<ImportError>,
    },
}

/// One problem inside a model. Several are reported together under [`LoadError::Invalid`].
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum ImportError {
    #[error("the model has no graph")]
    #[diagnostic(code(qc::onnx::no_graph), help("ModelProto.graph must be set"))]
    NoGraph,

    #[error("{at}node `{node}` has no op_type")]
    #[diagnostic(code(qc::onnx::no_op_type), help("every node must name the operator it runs"))]
    NoOpType { at: String, node: String },

    #[error("{owner}: attribute `{attr}` has unknown type code {code}")]
    #[diagnostic(
        code(qc::onnx::attribute_kind),
        help("AttributeProto.type must be one of the codes in the ONNX IR specification")
    )]
    AttributeKind { owner: String, attr: String, code: i32 },

    #[error("{owner}: attribute `{attr}` is declared {declared} but holds {held}")]
    #[diagnostic(
        code(qc::onnx::attribute_mismatch),
        help("an attribute holds exactly one value, of the kind its `type` field names")
    )]
    AttributeMismatch { owner: String, attr: String, declared: String, held: String },

    #[error("{at}tensor `{tensor}` has unknown data_location {code}")]
    #[diagnostic(code(qc::onnx::data_location), help("data_location is 0 (DEFAULT) or 1 (EXTERNAL)"))]
    DataLocation { at: String, tensor: String, code: i32 },

    #[error("{at}tensor `{tensor}` {problem}")]
    #[diagnostic(
        code(qc::onnx::tensor_data),
        help(
            "a tensor stores its elements in exactly one place: raw_data, one typed *_data field, or external data"
        )
    )]
    TensorData { at: String, tensor: String, problem: String },

    #[error("{at}tensor `{tensor}`: bad external_data entries: {problem}")]
    #[diagnostic(
        code(qc::onnx::external_data_entries),
        help("external_data needs `location`, and optional decimal `offset` and `length`")
    )]
    ExternalEntries { at: String, tensor: String, problem: String },

    #[error("tensor `{tensor}`: external data location `{location}` {problem}")]
    #[diagnostic(
        code(qc::onnx::external_data_path),
        help(
            "external data must be a relative path inside the model's folder, without `..` or links that lead outside it"
        )
    )]
    ExternalPath { tensor: String, location: String, problem: String },

    #[error("tensor `{tensor}`: external data `{location}` {problem}")]
    #[diagnostic(
        code(qc::onnx::external_data_bounds),
        help("offset and length must lie within the external file and cover exactly the tensor's bytes")
    )]
    ExternalBounds { tensor: String, location: String, problem: String },

    #[error(transparent)]
    #[diagnostic(transparent)]
    Verify(#[from] VerifyError),
}

/// Something a user should know about a model that still loaded.
#[derive(Clone, Debug, thiserror::Error, Diagnostic)]
pub enum LoadWarning {
    #[error("external data file `{location}` is missing ({tensors} tensor(s) refer to it)")]
    #[diagnostic(
        code(qc::onnx::external_data_missing),
        severity(Warning),
        help(
            "shape-only work (inspect, cost, evaluate) still runs; anything that needs the tensor values will fail"
        )
    )]
    MissingExternal { location: String, tensors: usize },

    #[error("{count} declared dim(s) are negative, first {first}; qc reads them as unknown dims")]
    #[diagnostic(
        code(qc::onnx::negative_dim),
        severity(Warning),
        help(
            "ONNX has no negative sizes (exporters write -1 for 'any'); give the real dims with --overwrite-input-shape NAME:DIMS, and written models carry the dim without a value. All: {all}"
        )
    )]
    NegativeDim { count: usize, first: String, all: String },

    #[error(
        "{count} graph-input dim(s) have neither a size nor a name: {all}; qc reads them as unknown dims"
    )]
    #[diagnostic(
        code(qc::onnx::unnamed_dim),
        severity(Warning),
        help(
            "commands that count (cost, lower, evaluate, sweep) need them: give them with --overwrite-input-shape NAME:DIMS, or --assume-dims N"
        )
    )]
    UnnamedDim {
        count: usize,
        all: String,
        /// The graph inputs those dims belong to.
        inputs: Vec<String>,
    },
}
