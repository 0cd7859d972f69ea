//! NumPy `.npy` files (format versions 1, 2 and 3) to and from IR tensors, for `qc run`.
//!
//! Supported dtypes: `f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1`, little-endian (`<`) or
//! byte-order-free (`|`), C order. NumPy has no bfloat16 or sub-byte types: such outputs are
//! written widened (bfloat16 as `f4`, 4- and 2-bit integers as `i1`/`u1`) by the caller.

use bytes::Bytes;
use qc_ir::{ElemType, Tensor, TensorData};

/// Why a `.npy` file cannot be read or a tensor cannot be written.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum NpyError {
    #[error("`{file}` is not a .npy file: {problem}")]
    #[diagnostic(
        code(qc::npy::format),
        help("qc reads .npy files written by numpy.save (C order, little-endian)")
    )]
    Format { file: String, problem: String },

    #[error("`{file}` holds dtype `{dtype}`, which qc does not read")]
    #[diagnostic(
        code(qc::npy::dtype),
        help("supported: f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1, little-endian, C order")
    )]
    Dtype { file: String, dtype: String },
}

fn dtype_of(descr: &str) -> Option<ElemType> {
    // The byte order, then the code (an empty descr has neither).
    let mut chars = descr.chars();
    if !matches!(chars.next()?, '<' | '|' | '=') {
        return None;
    }
    let code = chars.as_str();
    Some(match code {
        "f2" => ElemType::F16,
        "f4" => ElemType::F32,
        "f8" => ElemType::F64,
        "i1" => ElemType::I8,
        "i2" => ElemType::I16,
        "i4" => ElemType::I32,
        "i8" => ElemType::I64,
        "u1" => ElemType::U8,
        "u2" => ElemType::U16,
        "u4" => ElemType::U32,
        "u8" => ElemType::U64,
        "b1" => ElemType::Bool,
        _ => return None,
    })
}

fn descr_of(elem: ElemType) -> Option<&'static str> {
    Some(match elem {
        ElemType::F16 => "<f2",
        ElemType::F32 => "<f4",
        ElemType::F64 => "<f8",
        ElemType::I8 => "|i1",
        ElemType::I16 => "<i2",
        ElemType::I32 => "<i4",
        ElemType::I64 => "<i8",
        ElemType::U8 => "|u1",
        ElemType::U16 => "<u2",
        ElemType::U32 => "<u4",
        ElemType::U64 => "<u8",
        ElemType::Bool => "|b1",
        _ => return None,
    })
}

/// The value of `key` in a header dict such as `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`.
fn header_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = header[at..].trim_start().strip_prefix(':')?.trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else if let Some(r) = rest.strip_prefix('\'') {
        r.find('\'')? + 2
    } else {
        rest.find([',', '}']).unwrap_or(rest.len())
    };
    Some(rest[..end].trim())
}

/// Reads a `.npy` file's bytes into a tensor named `name`.
pub fn read(bytes: &[u8], file: &str, name: &str) -> Result<Tensor, NpyError> {
    let bad = |problem: &str| NpyError::Format { file: file.into(), problem: problem.into() };
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("it does not start with the .npy magic bytes"));
    }
    let (header_len, start): (usize, usize) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => {
            (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
        }
        v => return Err(bad(&format!("format version {v} is not known"))),
    };
    let end = start
        .checked_add(header_len)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| bad("the header is cut short"))?;
    let header = std::str::from_utf8(&bytes[start..end]).map_err(|_| bad("the header is not text"))?;
    let descr =
        header_value(header, "descr").ok_or_else(|| bad("the header has no 'descr'"))?.trim_matches('\'');
    let elem = dtype_of(descr).ok_or_else(|| NpyError::Dtype { file: file.into(), dtype: descr.into() })?;
    if header_value(header, "fortran_order") != Some("False") {
        return Err(bad("only C-order arrays are read (fortran_order must be False)"));
    }
    let shape = header_value(header, "shape").ok_or_else(|| bad("the header has no 'shape'"))?;
    let dims: Vec<i64> = shape
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<i64>().map_err(|_| bad(&format!("shape entry `{s}` is not a size"))))
        .collect::<Result<_, _>>()?;
    let tensor = Tensor {
        name: Some(name.into()),
        elem: Some(elem),
        dims,
        data: TensorData::Raw(Bytes::copy_from_slice(&bytes[end..])),
        segment: None,
        doc_string: None,
        metadata: vec![],
        explicit_default_location: false,
    };
    tensor.check().map_err(|e| bad(&format!("the data does not match the header: {e}")))?;
    Ok(tensor)
}

/// Writes `raw` (little-endian elements of `elem`) with `dims` as a version-1 `.npy` file.
/// Returns `None` for element types NumPy cannot hold.
pub fn write(elem: ElemType, dims: &[usize], raw: &[u8]) -> Option<Vec<u8>> {
    let descr = descr_of(elem)?;
    let shape = match dims {
        [d] => format!("({d},)"),
        _ => format!("({})", dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // Pad so that the data starts on a 64-byte boundary, ending the header with a newline.
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat(total.next_multiple_of(64) - total));
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(raw);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_reads_back() {
        let raw: Vec<u8> = [1.0f32, -2.5, 3.0, 0.0, 5.0, 6.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let file = write(ElemType::F32, &[2, 3], &raw).unwrap();
        assert_eq!((file.len() - raw.len()) % 64, 0, "data is 64-byte aligned");
        let t = read(&file, "a.npy", "a").unwrap();
        assert_eq!(t.dims, vec![2, 3]);
        assert_eq!(t.elem, Some(ElemType::F32));
        assert!(matches!(&t.data, TensorData::Raw(b) if b[..] == raw[..]));
        let scalar = write(ElemType::I64, &[], &7i64.to_le_bytes()).unwrap();
        assert_eq!(read(&scalar, "s.npy", "s").unwrap().dims, Vec::<i64>::new());
        let one = write(ElemType::Bool, &[1], &[1]).unwrap();
        assert!(String::from_utf8_lossy(&one).contains("'shape': (1,)"));
    }

    #[test]
    fn reads_numpys_own_header_and_rejects_what_it_cannot_read() {
        let header = "{'descr': '<i2', 'fortran_order': False, 'shape': (3,), }";
        let mut file = b"\x93NUMPY\x01\x00".to_vec();
        file.extend_from_slice(&(header.len() as u16).to_le_bytes());
        file.extend_from_slice(header.as_bytes());
        file.extend_from_slice(&[1, 0, 2, 0, 3, 0]);
        assert_eq!(read(&file, "x.npy", "x").unwrap().elem, Some(ElemType::I16));
        assert!(matches!(read(&file[..file.len() - 1], "x.npy", "x"), Err(NpyError::Format { .. })));
        let replace = |from: &[u8], to: &[u8]| {
            let at = file.windows(from.len()).position(|w| w == from).unwrap();
            let mut f = file.clone();
            f[at..at + from.len()].copy_from_slice(to);
            f
        };
        assert!(matches!(read(&replace(b"<i2", b">i2"), "x.npy", "x"), Err(NpyError::Dtype { .. })));
        assert!(matches!(read(&replace(b"False", b"True "), "x.npy", "x"), Err(NpyError::Format { .. })));
        assert!(matches!(read(b"garbage", "g.npy", "g"), Err(NpyError::Format { .. })));
    }
}
