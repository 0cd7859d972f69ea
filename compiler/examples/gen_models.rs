//! Writes the models qc's docs and benchmarks use.
//!
//! - `cargo run -p qc --example gen_models -- example examples/tiny_qonnx.onnx`: the example
//!   model that ships in the repository (a test checks the file matches this code).
//! - `cargo run --release -p qc --example gen_models -- big /tmp/big.onnx 1024`: a model with
//!   1024 MiB of initializers (16 tensors of 64 MiB), for the load benchmark in the README.

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
        _ => Err(std::io::Error::other("usage: gen_models example PATH | gen_models big PATH MIB")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
