//! The 8- and 4-bit floating-point formats: decoding codes to `f32` and encoding `f32` with
//! round-to-nearest-even, following ONNX's `Cast` table (saturation to the largest finite value,
//! or infinity/NaN on overflow without saturation; the `FNUZ` types have no negative zero).

use qc_ir::ElemType;

fn pow2(e: i32) -> f32 {
    (2.0f64).powi(e) as f32
}

/// Decodes one code (the low 4 bits for `float4e2m1`).
pub fn decode(elem: ElemType, c: u8) -> f32 {
    use ElemType::*;
    let (sbit, ebits, mbits, bias) = match elem {
        F8E4M3FN => (0x80, 4, 3, 7),
        F8E4M3FNUZ => (0x80, 4, 3, 8),
        F8E5M2 => (0x80, 5, 2, 15),
        F8E5M2FNUZ => (0x80, 5, 2, 16),
        F4E2M1 => (0x08, 2, 1, 1),
        F8E8M0 => {
            return if c == 0xFF { f32::NAN } else { pow2(i32::from(c) - 127) };
        }
        _ => return f32::NAN,
    };
    let uz = matches!(elem, F8E4M3FNUZ | F8E5M2FNUZ);
    if uz && c == 0x80 {
        return f32::NAN;
    }
    let neg = c & sbit != 0;
    let e = i32::from((c >> mbits) & ((1 << ebits) - 1));
    let m = i32::from(c & ((1 << mbits) - 1));
    let emax = (1 << ebits) - 1;
    let v = match elem {
        F8E4M3FN if e == emax && m == 7 => f32::NAN,
        F8E5M2 if e == emax => {
            if m == 0 {
                f32::INFINITY
            } else {
                f32::NAN
            }
        }
        _ if e == 0 => m as f32 / (1 << mbits) as f32 * pow2(1 - bias),
        _ => (1.0 + m as f32 / (1 << mbits) as f32) * pow2(e - bias),
    };
    if neg { -v } else { v }
}

fn max_code(elem: ElemType) -> u8 {
    match elem {
        ElemType::F8E4M3FN => 0x7E,
        ElemType::F8E5M2 => 0x7B,
        ElemType::F4E2M1 => 0x07,
        _ => 0x7F,
    }
}

/// Encodes `x`, rounding to nearest even.
pub fn encode(elem: ElemType, x: f32, saturate: bool) -> u8 {
    use ElemType::*;
    if elem == F8E8M0 {
        return encode_e8m0(x, saturate, "up");
    }
    let uz = matches!(elem, F8E4M3FNUZ | F8E5M2FNUZ);
    let sbit: u8 = if elem == F4E2M1 { 0x08 } else { 0x80 };
    let saturate = saturate || elem == F4E2M1;
    let max = max_code(elem);
    let nan = match elem {
        F8E4M3FN => 0x7F,
        F8E5M2 => 0x7F,
        // float4e2m1 has no NaN; the reference writes the code 0x8 (-0).
        F4E2M1 => 0x08,
        _ => 0x80,
    };
    if x.is_nan() {
        return nan;
    }
    let sign = if x.is_sign_negative() { sbit } else { 0 };
    let overflow = |sign: u8| -> u8 {
        if saturate {
            sign | max
        } else if elem == F8E5M2 {
            sign | 0x7C
        } else if uz {
            0x80
        } else {
            sign | nan
        }
    };
    let a = x.abs();
    if a.is_infinite() {
        return overflow(sign);
    }
    let vmax = decode(elem, max);
    let code = if a >= vmax {
        let ulp = vmax - decode(elem, max - 1);
        let next = vmax + ulp;
        let d_lo = a - vmax;
        let d_hi = next - a;
        if d_lo < d_hi || (d_lo == d_hi && max.is_multiple_of(2)) {
            max
        } else {
            return overflow(sign);
        }
    } else {
        // Positive codes are increasing in value: binary search the interval.
        let (mut lo, mut hi) = (0u8, max);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if decode(elem, mid) <= a {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let (vl, vh) = (decode(elem, lo), decode(elem, hi));
        let (dl, dh) = (a - vl, vh - a);
        if dl < dh || (dl == dh && lo % 2 == 0) { lo } else { hi }
    };
    if code == 0 && uz {
        return 0;
    }
    code | sign
}

/// Encodes `x` as `float8e8m0` (a power of two) with ONNX's rounding modes.
pub fn encode_e8m0(x: f32, saturate: bool, round_mode: &str) -> u8 {
    if x.is_nan() {
        return 0xFF;
    }
    if x.is_infinite() {
        return if saturate { 0xFE } else { 0xFF };
    }
    let bits = x.to_bits();
    let mut e = i32::try_from((bits >> 23) & 0xFF).unwrap_or(0);
    let m = bits & 0x7F_FFFF;
    match round_mode {
        "up" if m != 0 => e += 1,
        "nearest" if m >= 0x40_0000 => e += 1,
        _ => {}
    }
    if e > 254 {
        return if saturate { 0xFE } else { 0xFF };
    }
    e as u8
}

/// `x` rounded to the nearest value of `elem`.
pub fn round_to(elem: ElemType, x: f32, saturate: bool) -> f32 {
    decode(elem, encode(elem, x, saturate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn e4m3fn_round_trip_and_saturation() {
        assert_eq!(decode(ElemType::F8E4M3FN, 0x7E), 448.0);
        assert_eq!(round_to(ElemType::F8E4M3FN, 1000.0, true), 448.0);
        assert!(round_to(ElemType::F8E4M3FN, 1000.0, false).is_nan());
        assert_eq!(round_to(ElemType::F8E4M3FN, 0.3, true), 0.3125);
        assert_eq!(decode(ElemType::F8E5M2, 0x7C), f32::INFINITY);
        assert_eq!(round_to(ElemType::F4E2M1, 5.0, true), 4.0);
        assert_eq!(round_to(ElemType::F4E2M1, 100.0, false), 6.0);
    }
}
