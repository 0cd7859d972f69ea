//! Python's set iteration order, as CPython 3 gives it for ZigZag's names.
//!
//! Why this exists: ZigZag 3.9.1 keeps layer dims, spatial-mapping hints and the array dims a
//! memory serves in Python `set`s, and which spatial mapping it keeps among equally ranked ones
//! follows the order those sets iterate in. To return ZigZag's mappings, in its order, qc has to
//! reproduce that order. It is deterministic: a `LayerDim` or `OADimension` hashes as the SHA-512
//! of its pickled name XOR the SHA-512 of its pickled class, reduced as Python reduces a large
//! integer to a hash, and a set's order follows from CPython's open addressing with perturbation.
//! [`PySet`] reproduces both; [`sha512`] is written here (FIPS 180-4) because it is the only
//! digest qc needs and only for these short inputs, so a crate would be a dependency for 100
//! lines. Nothing else in qc should depend on Python's hashing.

/// SHA-512 (FIPS 180-4) of `data`.
fn sha512(data: &[u8]) -> [u8; 64] {
    // The first 64 bits of the fractional parts of the cube roots of the first 80 primes.
    const K: [u64; 80] = [
        0x428a2f98d728ae22,
        0x7137449123ef65cd,
        0xb5c0fbcfec4d3b2f,
        0xe9b5dba58189dbbc,
        0x3956c25bf348b538,
        0x59f111f1b605d019,
        0x923f82a4af194f9b,
        0xab1c5ed5da6d8118,
        0xd807aa98a3030242,
        0x12835b0145706fbe,
        0x243185be4ee4b28c,
        0x550c7dc3d5ffb4e2,
        0x72be5d74f27b896f,
        0x80deb1fe3b1696b1,
        0x9bdc06a725c71235,
        0xc19bf174cf692694,
        0xe49b69c19ef14ad2,
        0xefbe4786384f25e3,
        0x0fc19dc68b8cd5b5,
        0x240ca1cc77ac9c65,
        0x2de92c6f592b0275,
        0x4a7484aa6ea6e483,
        0x5cb0a9dcbd41fbd4,
        0x76f988da831153b5,
        0x983e5152ee66dfab,
        0xa831c66d2db43210,
        0xb00327c898fb213f,
        0xbf597fc7beef0ee4,
        0xc6e00bf33da88fc2,
        0xd5a79147930aa725,
        0x06ca6351e003826f,
        0x142929670a0e6e70,
        0x27b70a8546d22ffc,
        0x2e1b21385c26c926,
        0x4d2c6dfc5ac42aed,
        0x53380d139d95b3df,
        0x650a73548baf63de,
        0x766a0abb3c77b2a8,
        0x81c2c92e47edaee6,
        0x92722c851482353b,
        0xa2bfe8a14cf10364,
        0xa81a664bbc423001,
        0xc24b8b70d0f89791,
        0xc76c51a30654be30,
        0xd192e819d6ef5218,
        0xd69906245565a910,
        0xf40e35855771202a,
        0x106aa07032bbd1b8,
        0x19a4c116b8d2d0c8,
        0x1e376c085141ab53,
        0x2748774cdf8eeb99,
        0x34b0bcb5e19b48a8,
        0x391c0cb3c5c95a63,
        0x4ed8aa4ae3418acb,
        0x5b9cca4f7763e373,
        0x682e6ff3d6b2b8a3,
        0x748f82ee5defb2fc,
        0x78a5636f43172f60,
        0x84c87814a1f0ab72,
        0x8cc702081a6439ec,
        0x90befffa23631e28,
        0xa4506cebde82bde9,
        0xbef9a3f7b2c67915,
        0xc67178f2e372532b,
        0xca273eceea26619c,
        0xd186b8c721c0c207,
        0xeada7dd6cde0eb1e,
        0xf57d4f7fee6ed178,
        0x06f067aa72176fba,
        0x0a637dc5a2c898a6,
        0x113f9804bef90dae,
        0x1b710b35131c471b,
        0x28db77f523047d84,
        0x32caab7b40c72493,
        0x3c9ebe0a15c9bebc,
        0x431d67c49c100d4c,
        0x4cc5d4becb3e42b6,
        0x597f299cfc657e2a,
        0x5fcb6fab3ad6faec,
        0x6c44198c4a475817,
    ];
    // The first 64 bits of the fractional parts of the square roots of the first 8 primes.
    let mut h: [u64; 8] = [
        0x6a09e667f3bcc908,
        0xbb67ae8584caa73b,
        0x3c6ef372fe94f82b,
        0xa54ff53a5f1d36f1,
        0x510e527fade682d1,
        0x9b05688c2b3e6c1f,
        0x1f83d9abfb41bd6b,
        0x5be0cd19137e2179,
    ];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 128 != 112 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u128) * 8).to_be_bytes());
    for block in msg.chunks_exact(128) {
        let mut w = [0u64; 80];
        for (i, word) in block.chunks_exact(8).enumerate() {
            w[i] = u64::from_be_bytes(word.try_into().unwrap_or([0; 8]));
        }
        for i in 16..80 {
            let s0 = w[i - 15].rotate_right(1) ^ w[i - 15].rotate_right(8) ^ (w[i - 15] >> 7);
            let s1 = w[i - 2].rotate_right(19) ^ w[i - 2].rotate_right(61) ^ (w[i - 2] >> 6);
            w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
        }
        let mut v = h;
        for i in 0..80 {
            let s1 = v[4].rotate_right(14) ^ v[4].rotate_right(18) ^ v[4].rotate_right(41);
            let ch = (v[4] & v[5]) ^ (!v[4] & v[6]);
            let t1 = v[7].wrapping_add(s1).wrapping_add(ch).wrapping_add(K[i]).wrapping_add(w[i]);
            let s0 = v[0].rotate_right(28) ^ v[0].rotate_right(34) ^ v[0].rotate_right(39);
            let maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
            let t2 = s0.wrapping_add(maj);
            v = [t1.wrapping_add(t2), v[0], v[1], v[2], v[3].wrapping_add(t1), v[4], v[5], v[6]];
        }
        for (a, b) in h.iter_mut().zip(v) {
            *a = a.wrapping_add(b);
        }
    }
    let mut out = [0u8; 64];
    for (i, x) in h.iter().enumerate() {
        out[i * 8..i * 8 + 8].copy_from_slice(&x.to_be_bytes());
    }
    out
}

/// The kinds of ZigZag names whose sets matter, by the SHA-512 of their pickled class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PyKind {
    /// `zigzag.datatypes.LayerDim`.
    LayerDim,
    /// `zigzag.datatypes.OADimension`.
    OaDim,
}

impl PyKind {
    /// SHA-512 of `pickle.dumps(cls)` (protocol 4), a reference to the class by module and name.
    fn class_digest(self) -> [u8; 64] {
        let (module, name): (&str, &str) = match self {
            PyKind::LayerDim => ("zigzag.datatypes", "LayerDim"),
            PyKind::OaDim => ("zigzag.datatypes", "OADimension"),
        };
        let mut body = Vec::new();
        for s in [module, name] {
            body.push(0x8c); // SHORT_BINUNICODE
            body.push(s.len() as u8);
            body.extend_from_slice(s.as_bytes());
            body.push(0x94); // MEMOIZE
        }
        body.extend_from_slice(&[0x93, 0x94]); // STACK_GLOBAL, MEMOIZE
        sha512(&pickled(&body))
    }
}

/// A protocol-4 pickle: the header, one frame holding `body`, and STOP.
fn pickled(body: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80, 0x04, 0x95];
    out.extend_from_slice(&((body.len() + 1) as u64).to_le_bytes());
    out.extend_from_slice(body);
    out.push(b'.');
    out
}

/// The pickle of a string: SHORT_BINUNICODE up to 255 bytes, BINUNICODE beyond.
fn pickled_str(s: &str) -> Vec<u8> {
    let mut body = Vec::new();
    if s.len() < 256 {
        body.push(0x8c);
        body.push(s.len() as u8);
    } else {
        body.push(b'X');
        body.extend_from_slice(&(s.len() as u32).to_le_bytes());
    }
    body.extend_from_slice(s.as_bytes());
    body.push(0x94);
    pickled(&body)
}

/// Python's `hash()` of a ZigZag name: the 512-bit integer SHA-512(pickled name) XOR
/// SHA-512(pickled class), reduced modulo the Mersenne prime 2^61 - 1 as CPython hashes ints.
fn py_hash(kind: PyKind, name: &str) -> u64 {
    const MODULUS: u128 = (1 << 61) - 1;
    let a = sha512(&pickled_str(name));
    let b = kind.class_digest();
    let mut r: u128 = 0;
    for (x, y) in a.iter().zip(b) {
        r = ((r << 8) | u128::from(x ^ y)) % MODULUS;
    }
    r as u64
}

/// A CPython set of ZigZag names, for its iteration order: entries go at `hash & mask`, then
/// up to 9 linear probes, then perturbed jumps; the table (8 slots at first) grows to the
/// smallest power of two above 4 x the entries once 5 x the filled slots reach 3 x the mask.
pub(crate) struct PySet<'a> {
    kind: PyKind,
    table: Vec<Option<(&'a str, u64)>>,
    used: usize,
}

impl<'a> PySet<'a> {
    pub(crate) fn new(kind: PyKind) -> Self {
        PySet { kind, table: vec![None; 8], used: 0 }
    }

    /// A set built from `names` in order, as `set(names)` or `{x for x in names}`.
    fn from_iter(kind: PyKind, names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut s = PySet::new(kind);
        for n in names {
            s.add(n);
        }
        s
    }

    /// The slot for `hash` in `table`: the first free one, or the one holding `name`.
    fn slot(table: &[Option<(&'a str, u64)>], name: &str, hash: u64) -> usize {
        let mask = table.len() - 1;
        let mut perturb = hash;
        let mut i = (hash as usize) & mask;
        loop {
            let probes = if i + 9 <= mask { 9 } else { 0 };
            for (j, entry) in table.iter().enumerate().skip(i).take(probes + 1) {
                match *entry {
                    None => return j,
                    Some((n, _)) if n == name => return j,
                    Some(_) => {}
                }
            }
            perturb >>= 5;
            i = (i.wrapping_mul(5).wrapping_add(1).wrapping_add(perturb as usize)) & mask;
        }
    }

    pub(crate) fn add(&mut self, name: &'a str) {
        let hash = py_hash(self.kind, name);
        let j = Self::slot(&self.table, name, hash);
        if self.table[j].is_some() {
            return;
        }
        self.table[j] = Some((name, hash));
        self.used += 1;
        // No deletions, so the filled slots are the used ones.
        if self.used * 5 >= (self.table.len() - 1) * 3 {
            let mut size = 8;
            while size <= self.used * 4 {
                size <<= 1;
            }
            let old = std::mem::replace(&mut self.table, vec![None; size]);
            for (n, h) in old.into_iter().flatten() {
                let j = Self::slot(&self.table, n, h);
                self.table[j] = Some((n, h));
            }
        }
    }

    /// The names in iteration order.
    pub(crate) fn order(&self) -> Vec<&'a str> {
        self.table.iter().flatten().map(|(n, _)| *n).collect()
    }
}

/// `names` in the order a Python set built from them iterates.
pub(crate) fn set_order<'a>(kind: PyKind, names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    PySet::from_iter(kind, names).order()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_hashes() {
        // hash(LayerDim(...)) and hash(OADimension(...)) in ZigZag 3.9.1.
        assert_eq!(py_hash(PyKind::LayerDim, "B"), 2274680621932004355);
        assert_eq!(py_hash(PyKind::LayerDim, "OX"), 1754239838488883382);
        assert_eq!(py_hash(PyKind::LayerDim, "ABCDEFGHIJKLMNOP"), 1682218978388949384);
        assert_eq!(py_hash(PyKind::OaDim, "D1"), 2048910558639910025);
        assert_eq!(py_hash(PyKind::OaDim, "D4"), 1190809941726157689);
    }

    #[test]
    fn python_set_order() {
        let all = ["B", "K", "G", "OX", "OY", "C", "FX", "FY"];
        assert_eq!(set_order(PyKind::LayerDim, all), ["FY", "FX", "B", "G", "OX", "C", "K", "OY"]);
        assert_eq!(set_order(PyKind::LayerDim, ["K", "C", "FX", "FY"]), ["K", "FX", "C", "FY"]);
        let conv = ["B", "K", "C", "OY", "OX", "FY", "FX"];
        assert_eq!(set_order(PyKind::LayerDim, conv), ["FY", "FX", "B", "OX", "C", "K", "OY"]);
    }
}
