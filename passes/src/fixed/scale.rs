//! Rounding scales to the ACCESS DLA's formats: feature maps to `2^n`, weights per channel to
//! the reciprocal-dyadic `2^n / a` with `a` in `1..=max_a` (ACCESS DLA guide, section II.C).

/// Which representable scale a scale is rounded to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScaleRounding {
    /// The representable scale closest to the scale (relative distance; a tie goes up, which
    /// keeps the range).
    Nearest,
    /// The largest representable scale not above it (finer steps, more saturation).
    Down,
    /// The smallest representable scale not below it (coarser steps, the range kept).
    Up,
}

impl ScaleRounding {
    pub fn name(self) -> &'static str {
        match self {
            ScaleRounding::Nearest => "nearest",
            ScaleRounding::Down => "down",
            ScaleRounding::Up => "up",
        }
    }
}

/// A scale the ACCESS formats can hold: `2^exp / den` (`den` is 1 for a power of two).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dyadic {
    pub exp: i32,
    pub den: u32,
}

impl Dyadic {
    pub fn value(self) -> f64 {
        2f64.powi(self.exp) / f64::from(self.den)
    }
}

/// Exponents past these are not scales of 8-bit tensors that an f32 attribute can hold.
const MIN_EXP: i32 = -120;
const MAX_EXP: i32 = 120;

fn pick(s: f64, candidates: impl Iterator<Item = Dyadic>, how: ScaleRounding) -> Option<Dyadic> {
    let mut best: Option<(f64, Dyadic)> = None;
    for c in candidates {
        if !(MIN_EXP..=MAX_EXP).contains(&c.exp) {
            continue;
        }
        let v = c.value();
        let key = match how {
            ScaleRounding::Down if v > s => continue,
            ScaleRounding::Up if v < s => continue,
            // log distance, so that "nearest" is relative; a tie goes to the larger scale.
            _ => (v / s).ln().abs() - if v >= s { 1e-15 } else { 0.0 },
        };
        let better = match &best {
            None => true,
            Some((k, b)) => key < *k || (key == *k && (c.den < b.den || (c.den == b.den && c.exp < b.exp))),
        };
        if better {
            best = Some((key, c));
        }
    }
    best.map(|(_, c)| c)
}

/// `s` rounded to a power of two; `None` when `s` is not a positive finite number, or its
/// power of two is outside `2^-120..=2^120`.
pub fn round_pow2(s: f64, how: ScaleRounding) -> Option<Dyadic> {
    if !(s > 0.0 && s.is_finite()) {
        return None;
    }
    let e = s.log2().floor() as i32;
    pick(s, (e - 1..=e + 2).map(|exp| Dyadic { exp, den: 1 }), how)
}

/// `s` rounded to `2^n / a`, `a` in `1..=max_a`; `None` as for [`round_pow2`].
pub fn round_reciprocal_dyadic(s: f64, max_a: u32, how: ScaleRounding) -> Option<Dyadic> {
    if !(s > 0.0 && s.is_finite()) || max_a == 0 {
        return None;
    }
    let candidates = (1..=max_a).flat_map(move |a| {
        // 2^n / a near s: n near log2(s * a).
        let e = (s * f64::from(a)).log2().floor() as i32;
        [e, e + 1].into_iter().map(move |exp| Dyadic { exp, den: a })
    });
    let d = pick(s, candidates, how)?;
    Some(reduce(d))
}

/// `2^exp / den` with `den` odd (the same value, written once).
fn reduce(mut d: Dyadic) -> Dyadic {
    while d.den.is_multiple_of(2) && d.den > 1 {
        d.den /= 2;
        d.exp -= 1;
    }
    d
}

/// The `2^n / a` form of `x` (an f32 attribute holds it rounded), `a` in `1..=max_a`, within
/// relative tolerance `tol`.
pub fn dyadic_parts(x: f64, max_a: u32, tol: f64) -> Option<Dyadic> {
    let d = round_reciprocal_dyadic(x, max_a, ScaleRounding::Nearest)?;
    ((d.value() - x).abs() <= tol * x.abs()).then_some(d)
}

/// The exponent of `x` when it is `2^n` within relative tolerance `tol`.
pub fn pow2_exp(x: f64, tol: f64) -> Option<i32> {
    let d = round_pow2(x, ScaleRounding::Nearest)?;
    ((d.value() - x).abs() <= tol * x.abs()).then_some(d.exp)
}

/// `x` rounded to the nearest integer, a tie toward +infinity (`floor(x + 1/2)`): the DLA's
/// rounding (spec/fixed_point.md).
pub fn round_half_up(x: f64) -> f64 {
    (x + 0.5).floor()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn powers_of_two_by_policy() {
        let s = 0.003; // between 2^-9 = 0.001953 and 2^-8 = 0.003906
        assert_eq!(round_pow2(s, ScaleRounding::Down).unwrap().exp, -9);
        assert_eq!(round_pow2(s, ScaleRounding::Up).unwrap().exp, -8);
        // ln(0.003/0.001953) = 0.43 > ln(0.003906/0.003) = 0.26
        assert_eq!(round_pow2(s, ScaleRounding::Nearest).unwrap().exp, -8);
        for how in [ScaleRounding::Nearest, ScaleRounding::Down, ScaleRounding::Up] {
            assert_eq!(round_pow2(0.125, how).unwrap().exp, -3, "{how:?}");
        }
        assert_eq!(round_pow2(0.0, ScaleRounding::Nearest), None);
        assert_eq!(round_pow2(f64::NAN, ScaleRounding::Nearest), None);
        assert_eq!(round_pow2(1e-300, ScaleRounding::Nearest), None);
    }

    #[test]
    fn reciprocal_dyadic_by_policy() {
        // 0.01 = 2^0 / 100 exactly.
        let d = round_reciprocal_dyadic(0.01, 255, ScaleRounding::Nearest).unwrap();
        assert_eq!((d.exp, d.den), (-2, 25));
        let s = 0.0123456;
        let down = round_reciprocal_dyadic(s, 255, ScaleRounding::Down).unwrap().value();
        let up = round_reciprocal_dyadic(s, 255, ScaleRounding::Up).unwrap().value();
        assert!(down <= s && up >= s && down < up);
        // No representable scale lies strictly between: brute force over a and n.
        for a in 1..=255u32 {
            for n in -20..=5 {
                let v = 2f64.powi(n) / f64::from(a);
                assert!(!(v > down && v < up), "2^{n}/{a} = {v} lies between {down} and {up}");
            }
        }
        let near = round_reciprocal_dyadic(s, 255, ScaleRounding::Nearest).unwrap().value();
        assert!(near == down || near == up);
        assert_eq!(dyadic_parts(2f64.powi(-7) / 5.0, 255, 1e-6), Some(Dyadic { exp: -7, den: 5 }));
        assert_eq!(dyadic_parts(0.75, 255, 1e-6), None); // a would be 4/3
        assert_eq!(pow2_exp(0.0625, 1e-6), Some(-4));
        assert_eq!(pow2_exp(0.07, 1e-6), None);
    }

    #[test]
    fn rounding_ties_go_up() {
        assert_eq!(round_half_up(2.5), 3.0);
        assert_eq!(round_half_up(-2.5), -2.0);
        assert_eq!(round_half_up(-2.6), -3.0);
        assert_eq!(round_half_up(0.49999), 0.0);
    }
}
