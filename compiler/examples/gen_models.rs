//! Writes the models qc's docs and benchmarks use.
//!
//! - `cargo run -p qc --example gen_models -- example examples/tiny_qonnx.onnx`: the example
//!   model that ships in the repository (a test checks the file matches this code).
//! - `cargo run --release -p qc --example gen_models -- big /tmp/big.onnx 1024`: a model with
//!   1024 MiB of initializers (16 tensors of 64 MiB), for the load benchmark in the README.
//! - `cargo run --release -p qc --example gen_models -- big-external /tmp/bigx.onnx 2560`: the
//!   same with the initializers in external data (`bigx.onnx.weights`) and each read through a
//!   `Mul` by a constant, so `qc optimize` folds every one into a new tensor: the test of
//!   optimizing a model whose data passes protobuf's 2 GiB limit.

use std::io::{BufWriter, Write};
use std::process::ExitCode;

use prost::Message;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["example", path] => std::fs::write(path, qc::fixtures::tiny_qonnx().encode_to_vec()),
        ["big", path, mib] => match mib.parse::<usize>() {
            Ok(mib) if mib > 0 => std::fs::File::create(path).and_then(|f| {
                let mut w = BufWriter::with_capacity(1 << 20, f);
                let per_tensor = 64usize << 20;
                let tensors = (mib << 20).div_ceil(per_tensor);
                qc::fixtures::write_big_model(&mut w, tensors, per_tensor)?;
                w.flush()
            }),
            _ => Err(std::io::Error::other("the size is a whole number of MiB")),
        },
        ["big-external", path, mib] => match mib.parse::<usize>() {
            Ok(mib) if mib > 0 => big_external(std::path::Path::new(path), mib),
            _ => Err(std::io::Error::other("the size is a whole number of MiB")),
        },
        _ => Err(std::io::Error::other(
            "usage: gen_models example PATH | gen_models big PATH MIB | gen_models big-external PATH MIB",
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// `x -> Add(Mul(w0, two)) -> Add(Mul(w1, two)) -> ...` with every `w<i>` (64 MiB of f32) in
/// `<path>.weights`.
fn big_external(path: &std::path::Path, mib: usize) -> std::io::Result<()> {
    use qc::fixtures::{model, node, opset, scalar_f32, value_info};
    use qc::onnx::proto::{self as pb, DataType};
    let per_tensor = 64usize << 20;
    let tensors = (mib << 20).div_ceil(per_tensor);
    let elems = (per_tensor / 4) as i64;
    let data_name = format!("{}.weights", path.file_name().unwrap_or_default().to_string_lossy());
    let mut data = BufWriter::with_capacity(1 << 20, std::fs::File::create(path.with_file_name(&data_name))?);
    let mut g = pb::GraphProto { name: Some("big_external".into()), ..Default::default() };
    let mut prev = "x".to_string();
    for i in 0..tensors {
        // Different data per tensor, so that no two are merged as common subexpressions.
        let chunk: Vec<u8> =
            qc::fixtures::weights(1 << 16, i as u32).iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut left = per_tensor;
        while left > 0 {
            let n = left.min(chunk.len());
            data.write_all(&chunk[..n])?;
            left -= n;
        }
        let entry = |k: &str, v: String| pb::StringStringEntryProto { key: Some(k.into()), value: Some(v) };
        g.initializer.push(pb::TensorProto {
            name: Some(format!("w{i}")),
            dims: vec![elems],
            data_type: Some(DataType::Float as i32),
            data_location: Some(pb::DataLocation::External as i32),
            external_data: vec![
                entry("location", data_name.clone()),
                entry("offset", (i * per_tensor).to_string()),
                entry("length", per_tensor.to_string()),
            ],
            ..Default::default()
        });
        let (scaled, out) = (format!("scaled{i}"), format!("sum{i}"));
        g.node.push(node("Mul", "", &format!("mul{i}"), &[&format!("w{i}"), "two"], &[&scaled], vec![]));
        g.node.push(node("Add", "", &format!("add{i}"), &[&prev, &scaled], &[&out], vec![]));
        prev = out;
    }
    data.flush()?;
    g.initializer.push(scalar_f32("two", 2.0));
    g.input.push(value_info("x", DataType::Float, &[elems]));
    g.output.push(value_info(&prev, DataType::Float, &[elems]));
    std::fs::write(path, model(g, vec![opset("", 13)]).encode_to_vec())
}
