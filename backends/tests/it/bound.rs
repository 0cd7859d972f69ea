//! The lower bounds ([`qc_backends::bound`]) are bounds: no mapping the cost model evaluates
//! costs less energy or takes less time. Exhaustively on small layers and a small accelerator
//! (every spatial unrolling, mixed and non-dividing ones included, every loop order, LOMA's
//! allocation of each, even and uneven, and every way to cut the order into memory levels for
//! the energy), and on random mappings of random layers on several accelerators (10^4 in
//! `cargo test`; `million_random_mappings_never_beat_the_bound`, ignored, runs 10^6).

use crate::common::*;
use qc_backends::arch::Accelerator;
use qc_backends::bound::{LayerBound, layer_bound};
use qc_backends::cost::{AllocOptions, CostOptions, Evaluator, LatencyModel, LayerCost, MappingType};
use qc_backends::mapping::{OperandLinks, SpatialMapping, TemporalLoop, TemporalMapping};
use qc_ir::LoopNest;
use qc_ir::rng::SplitMix64;

/// Seeded random choices (SplitMix64), so that every run checks the same mappings.
struct Rng(SplitMix64);

impl Rng {
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.0.below(hi - lo + 1)
    }
}

/// A small accelerator whose memories are too small for most layers, so that every boundary
/// streams: a 2x3 array, a weight register per unit, an output register per column reducing
/// over D1, an input buffer broadcasting over D2, a shared input/output buffer, and DRAM.
fn tiny() -> Accelerator {
    Accelerator {
        name: "tiny".into(),
        array: array(&[2, 3], 0.5, &[1]),
        memories: vec![
            memory(
                "w_reg",
                16,
                0.01,
                0.02,
                &[I2],
                &[("r", R, 8, 8, &[(I2, TL)]), ("w", W, 8, 8, &[(I2, FH)])],
                &[],
            ),
            memory(
                "o_reg",
                64,
                0.03,
                0.04,
                &[O],
                &[("r", R, 16, 16, &[(O, TL), (O, TH)]), ("w", W, 16, 32, &[(O, FH), (O, FL)])],
                &[0],
            ),
            memory("i_buf", 96, 0.2, 0.3, &[I1], &[("rw", RW, 8, 16, &[(I1, TL), (I1, FH)])], &[1]),
            memory(
                "l1",
                640,
                2.0,
                2.5,
                &[I1, O],
                &[
                    ("r", R, 16, 64, &[(I1, TL), (O, TL), (O, TH)]),
                    ("w", W, 16, 64, &[(I1, FH), (O, FH), (O, FL)]),
                ],
                &[0, 1],
            ),
            memory(
                "dram",
                1 << 40,
                100.0,
                120.0,
                &[I1, I2, O],
                &[(
                    "rw",
                    RW,
                    16,
                    16,
                    &[(I1, FH), (I1, TL), (I2, FH), (I2, TL), (O, FH), (O, TL), (O, FL), (O, TH)],
                )],
                &[0, 1],
            ),
        ],
    }
}

fn gemm(name: &str, d0: u64, d1: u64, d2: u64) -> LoopNest {
    let mut l = gemm_layer();
    l.name = name.into();
    l.dims = dims(&[("D0", d0), ("D1", d1), ("D2", d2)]);
    l.psum_precision = Some(24);
    l
}

fn prime_factors(mut n: u64) -> Vec<u64> {
    let mut out = Vec::new();
    let mut p = 2;
    while p * p <= n {
        while n.is_multiple_of(p) {
            out.push(p);
            n /= p;
        }
        p += 1;
    }
    if n > 1 {
        out.push(n);
    }
    out
}

/// The temporal loops a spatial mapping leaves, as prime factors.
fn loops(ev: &Evaluator) -> Vec<TemporalLoop> {
    ev.temporal_sizes()
        .into_iter()
        .flat_map(|(dim, s)| {
            prime_factors(s).into_iter().map(move |p| TemporalLoop { dim: dim.clone(), size: p })
        })
        .collect()
}

/// Every distinct permutation of `items` (by dim and size).
fn permutations(items: &[TemporalLoop]) -> Vec<Vec<TemporalLoop>> {
    fn go(rest: &mut Vec<TemporalLoop>, cur: &mut Vec<TemporalLoop>, out: &mut Vec<Vec<TemporalLoop>>) {
        if rest.is_empty() {
            out.push(cur.clone());
            return;
        }
        let mut tried: Vec<TemporalLoop> = Vec::new();
        for i in 0..rest.len() {
            if tried.contains(&rest[i]) {
                continue;
            }
            tried.push(rest[i].clone());
            let x = rest.remove(i);
            cur.push(x.clone());
            go(rest, cur, out);
            cur.pop();
            rest.insert(i, x);
        }
    }
    let mut out = Vec::new();
    go(&mut items.to_vec(), &mut Vec::new(), &mut out);
    out
}

/// The memory levels of each layer operand on `acc` (default links).
fn level_counts(layer: &LoopNest, acc: &Accelerator) -> Vec<(String, usize)> {
    let links = OperandLinks::default();
    std::iter::once(&layer.output)
        .chain(&layer.inputs)
        .map(|o| (o.role.clone(), acc.levels(links.mem(&o.role).unwrap()).len()))
        .collect()
}

/// `order` cut at `cuts` (per operand, the end of each level but the top, non-decreasing).
fn cut(order: &[TemporalLoop], roles: &[(String, usize)], cuts: &[Vec<usize>]) -> TemporalMapping {
    let operands = roles
        .iter()
        .zip(cuts)
        .map(|((role, n), c)| {
            let mut levels = Vec::new();
            let mut from = 0;
            // The ends of the levels: the cuts, then the order's end for the top.
            for &to in c.iter().take(n - 1).chain(std::iter::once(&order.len())) {
                levels.push(order[from..to].to_vec());
                from = to;
            }
            (role.clone(), levels)
        })
        .collect();
    TemporalMapping { operands }
}

/// Every non-decreasing list of `n` cut positions in `0..=len`.
fn all_cuts(n: usize, len: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![Vec::new()];
    }
    let mut out = Vec::new();
    for rest in all_cuts(n - 1, len) {
        let lo = rest.last().copied().unwrap_or(0);
        for c in lo..=len {
            let mut v = rest.clone();
            v.push(c);
            out.push(v);
        }
    }
    out
}

/// Every spatial mapping of `layer` on `acc`: per array dim, a list of `(layer dim, factor)`
/// with factors >= 2 whose product fits the array dim, each layer dim's total unrolling at most
/// its size (so non-dividing and mixed unrollings are included).
fn all_spatial(layer: &LoopNest, acc: &Accelerator) -> Vec<SpatialMapping> {
    fn per_dim(layer: &LoopNest, room: u64, from: usize) -> Vec<Vec<(String, u64)>> {
        let mut out = vec![Vec::new()];
        for (i, d) in layer.dims.iter().enumerate().skip(from) {
            for f in 2..=room.min(d.size) {
                for mut rest in per_dim(layer, room / f, i + 1) {
                    rest.insert(0, (d.name.clone(), f));
                    out.push(rest);
                }
            }
        }
        out
    }
    let mut maps: Vec<SpatialMapping> = vec![SpatialMapping::default()];
    for a in &acc.array.dims {
        let options = per_dim(layer, a.size, 0);
        maps = maps
            .into_iter()
            .flat_map(|m| {
                options.iter().map(move |o| {
                    let mut m = m.clone();
                    if !o.is_empty() {
                        m.dims.push((a.name.clone(), o.clone()));
                    }
                    m
                })
            })
            .collect();
    }
    maps.retain(|m| layer.dims.iter().all(|d| m.unrolling(&d.name) <= d.size));
    maps
}

fn check(b: &LayerBound, c: &LayerCost, what: &dyn Fn() -> String) {
    assert!(
        c.energy >= b.energy * (1.0 - 1e-9),
        "{}: energy {} is below the bound {} ({:?})",
        what(),
        c.energy,
        b.energy,
        b.traffic
    );
    if let Some(l) = b.latency {
        assert!(
            c.latency >= l * (1.0 - 1e-9),
            "{}: latency {} is below the bound {l} ({:?})",
            what(),
            c.latency,
            b
        );
    }
}

/// Under an integral spatial unrolling, the latency is at least the integral streaming floor
/// ([`LayerBound::stall_floor`]); returns whether that floor is above the ideal cycles (so that
/// it, not the MAC count, was checked).
fn check_integral(b: &LayerBound, ev: &Evaluator, c: &LayerCost, what: &dyn Fn() -> String) -> bool {
    if b.latency.is_none() || !ev.integral_unrolling() {
        return false;
    }
    let floor = b.stall_floor(true);
    assert!(
        c.latency >= floor * (1.0 - 1e-9),
        "{}: latency {} is below the integral streaming floor {floor} ({b:?})",
        what(),
        c.latency
    );
    floor > b.ideal_cycles as f64
}

/// The energy bound without the refetch term, which needs every tile to fit its memory (cuts
/// made without the allocator need not).
fn unfitted(b: &LayerBound) -> f64 {
    b.energy - b.refetch.as_ref().map_or(0.0, |r| r.energy)
}

const MODELS: [LatencyModel; 2] = [LatencyModel::Zigzag391, LatencyModel::Zigzag3d12a96];

#[test]
fn every_mapping_of_small_layers_is_at_or_above_the_bound() {
    let acc = tiny();
    let links = OperandLinks::default();
    let layers =
        [gemm("g", 4, 3, 5), gemm("g2", 6, 2, 4), conv("c", 3, 2, 3, 2, 1), conv("c2", 2, 3, 3, 3, 2)];
    let (mut mappings, mut cuts_checked, mut streaming) = (0u64, 0u64, 0u64);
    for layer in &layers {
        let roles = level_counts(layer, &acc);
        for model in MODELS {
            let opts = CostOptions { latency_model: model };
            let b = layer_bound(layer, &acc, &links, &opts).unwrap();
            for sm in all_spatial(layer, &acc) {
                let Ok(ev) = Evaluator::new(layer, &acc, &links, &sm) else { continue };
                let base = loops(&ev);
                for order in permutations(&base) {
                    for mt in [MappingType::Uneven, MappingType::Even] {
                        let Ok(tm) = ev.allocate(&order, &AllocOptions { mapping_type: mt }) else {
                            continue;
                        };
                        let Ok(c) = ev.evaluate(&tm, &opts) else { continue };
                        mappings += 1;
                        check(&b, &c, &|| format!("{} {sm:?} {tm:?}", layer.name));
                        streaming += u64::from(check_integral(&b, &ev, &c, &|| {
                            format!("{} {sm:?} {tm:?}", layer.name)
                        }));
                    }
                    // Every cut of this order into levels: the energy bound needs no capacity.
                    if model == LatencyModel::Zigzag391 && order.len() <= 3 {
                        let per_op: Vec<Vec<Vec<usize>>> =
                            roles.iter().map(|(_, n)| all_cuts(n - 1, order.len())).collect();
                        let mut idx = vec![0usize; per_op.len()];
                        loop {
                            let cuts: Vec<Vec<usize>> =
                                idx.iter().zip(&per_op).map(|(&i, p)| p[i].clone()).collect();
                            if let Ok(c) = ev.evaluate(&cut(&order, &roles, &cuts), &opts) {
                                cuts_checked += 1;
                                assert!(
                                    c.energy >= unfitted(&b) * (1.0 - 1e-9),
                                    "{} {sm:?} {order:?} {cuts:?}: energy {} below {}",
                                    layer.name,
                                    c.energy,
                                    unfitted(&b)
                                );
                            }
                            let mut k = 0;
                            while k < idx.len() {
                                idx[k] += 1;
                                if idx[k] < per_op[k].len() {
                                    break;
                                }
                                idx[k] = 0;
                                k += 1;
                            }
                            if k == idx.len() {
                                break;
                            }
                        }
                    }
                }
            }
        }
    }
    println!(
        "{mappings} allocated mappings ({streaming} against an integral streaming floor above the ideal cycles) and {cuts_checked} cuts checked"
    );
    assert!(mappings > 10_000, "{mappings}");
    assert!(cuts_checked > 1_000, "{cuts_checked}");
}

/// A random spatial mapping of `layer` on `acc` (possibly mixed, possibly not dividing).
fn random_spatial(rng: &mut Rng, layer: &LoopNest, acc: &Accelerator) -> SpatialMapping {
    let mut left: Vec<u64> = layer.dims.iter().map(|d| d.size).collect();
    let mut m = SpatialMapping::default();
    for a in &acc.array.dims {
        let mut room = a.size;
        let mut list: Vec<(String, u64)> = Vec::new();
        for _ in 0..rng.range(0, 2) {
            let d = rng.range(0, layer.dims.len() as u64 - 1) as usize;
            let hi = room.min(left[d]);
            if hi < 2 || list.iter().any(|(n, _)| *n == layer.dims[d].name) {
                continue;
            }
            // Favour the largest factors, as the search's candidates do.
            let f = if rng.range(0, 1) == 0 { hi } else { rng.range(2, hi) };
            room /= f;
            left[d] /= f;
            list.push((layer.dims[d].name.clone(), f));
        }
        if !list.is_empty() {
            m.dims.push((a.name.clone(), list));
        }
    }
    m
}

fn random_layer(rng: &mut Rng, i: usize) -> LoopNest {
    let sizes = [1, 2, 3, 4, 5, 6, 7, 8, 12, 14, 16, 28, 32, 56, 64, 96];
    let pick = |r: &mut Rng| sizes[r.range(0, sizes.len() as u64 - 1) as usize];
    if rng.range(0, 2) == 0 {
        gemm(&format!("gemm{i}"), pick(rng), pick(rng), pick(rng))
    } else {
        let fx = rng.range(1, 3) * 2 - 1;
        conv(&format!("conv{i}"), pick(rng), pick(rng), pick(rng).max(fx), fx, rng.range(1, 2))
    }
}

/// `n` random mappings of random layers on `tiny`, `gemm_l1` and `tpu_like`: a random spatial
/// mapping, a random order of the prime-factor loops, LOMA's allocation (uneven or even) for
/// energy and latency, and a random cut of the same order for energy.
fn random_mappings(n: u64, seed: u64) -> (u64, u64) {
    let mut rng = Rng(SplitMix64::new(seed));
    let accs = [tiny(), gemm_l1(), tpu_like()];
    let links = OperandLinks::default();
    let (mut checked, mut streaming) = (0u64, 0u64);
    let mut i = 0;
    while checked < n {
        i += 1;
        let layer = random_layer(&mut rng, i);
        let acc = &accs[rng.range(0, accs.len() as u64 - 1) as usize];
        let roles = level_counts(&layer, acc);
        let model = MODELS[rng.range(0, 1) as usize];
        let opts = CostOptions { latency_model: model };
        let b = layer_bound(&layer, acc, &links, &opts).unwrap();
        // Several spatial mappings per layer, several orders per spatial mapping.
        for _ in 0..20 {
            let sm = random_spatial(&mut rng, &layer, acc);
            let Ok(ev) = Evaluator::new(&layer, acc, &links, &sm) else { continue };
            let mut order = loops(&ev);
            for _ in 0..25 {
                for j in (1..order.len()).rev() {
                    order.swap(j, rng.range(0, j as u64) as usize);
                }
                let mt = if rng.range(0, 3) == 0 { MappingType::Even } else { MappingType::Uneven };
                if let Ok(tm) = ev.allocate(&order, &AllocOptions { mapping_type: mt })
                    && let Ok(c) = ev.evaluate(&tm, &opts)
                {
                    checked += 1;
                    let what = || format!("{} on {} {sm:?} {tm:?}", layer.name, acc.name);
                    check(&b, &c, &what);
                    streaming += u64::from(check_integral(&b, &ev, &c, &what));
                }
                let cuts: Vec<Vec<usize>> = roles
                    .iter()
                    .map(|(_, lv)| {
                        let mut c: Vec<usize> =
                            (0..lv - 1).map(|_| rng.range(0, order.len() as u64) as usize).collect();
                        c.sort_unstable();
                        c
                    })
                    .collect();
                if let Ok(c) = ev.evaluate(&cut(&order, &roles, &cuts), &opts) {
                    checked += 1;
                    assert!(
                        c.energy >= unfitted(&b) * (1.0 - 1e-9),
                        "{} on {} {sm:?} {order:?} {cuts:?}: energy {} below {}",
                        layer.name,
                        acc.name,
                        c.energy,
                        unfitted(&b)
                    );
                }
            }
        }
    }
    (checked, streaming)
}

#[test]
fn random_mappings_never_beat_the_bound() {
    let start = std::time::Instant::now();
    let (n, streaming) = random_mappings(10_000, 26);
    println!(
        "{n} random mappings checked in {:.2} s, {streaming} against an integral streaming floor above the ideal cycles",
        start.elapsed().as_secs_f64()
    );
    assert!(streaming > 100, "{streaming}");
}

/// The 10^6 case (`.ci/run` runs it): `cargo test -p qc-backends --test it -- --ignored bound::million`.
#[test]
#[ignore]
fn million_random_mappings_never_beat_the_bound() {
    let start = std::time::Instant::now();
    let (n, streaming) = random_mappings(1_000_000, 2026);
    println!(
        "{n} random mappings checked in {:.2} s, {streaming} against an integral streaming floor above the ideal cycles",
        start.elapsed().as_secs_f64()
    );
}

#[test]
fn the_bound_of_a_gemm_on_gemm_l1_is_its_compulsory_traffic() {
    // 128^3 MACs at 0.04; each 128x128 operand of 8 bits crosses l1 once (reads of I and W to
    // the array, writes of O from reg_O); the output register takes one 32-bit partial sum per
    // cycle per group of the 8 units on D2 it reduces over, in 32-bit words.
    let acc = gemm_l1();
    let b = layer_bound(&gemm_layer(), &acc, &OperandLinks::default(), &CostOptions::default()).unwrap();
    assert_eq!(b.macs, 1 << 21);
    assert!(close(b.mac_energy, 83_886.08));
    assert_eq!(b.ideal_cycles, 4096);
    let find = |mem: &str, role: &str, dir| {
        b.traffic
            .iter()
            .find(|t| acc.memories[t.memory].name == mem && t.role == role && t.direction == dir)
            .unwrap_or_else(|| panic!("{mem} {role} {dir:?}: {:?}", b.traffic))
    };
    // I and W: 16384 elements of 8 bits over 512-bit words; O into l1: 16384 final outputs of 8
    // bits (the smaller precision) over 2048-bit words; each less the rounding allowance, which
    // a 128-long dim split over an 8-wide array dim calls for.
    for (role, dir, words) in [("I", TL, 256.0), ("W", TL, 256.0), ("O", FL, 64.0)] {
        let t = find("l1", role, dir);
        assert!(t.allowance >= 2.0 / 3.0 && t.allowance <= 1.0, "{t:?}");
        assert_eq!(t.words, (t.allowance * words * (1.0 - 1e-12)).floor() as u64, "{t:?}");
    }
    let acc_floor = find("reg_O", "O", FL);
    assert_eq!(acc_floor.kind, qc_backends::bound::FloorKind::Accumulation);
    assert_eq!(acc_floor.elements, (1u64 << 21) as f64 / 8.0);
    assert!(b.energy > b.mac_energy && b.energy < 511_349.76, "{}", b.energy);
    assert_eq!(b.latency, Some(4096.0));
    // The repository's latency model can make on-loading negative: no latency bound.
    let old = CostOptions { latency_model: LatencyModel::Zigzag3d12a96 };
    assert_eq!(layer_bound(&gemm_layer(), &acc, &OperandLinks::default(), &old).unwrap().latency, None);
}

#[test]
fn a_layer_that_cannot_stay_on_chip_is_bounded_by_the_dram_port() {
    // A 1000x512 fully connected layer on tpu_like: the weights (512 kB of 8 bits) cannot fit
    // in the 1024 weight registers, so they stream over DRAM's 64-bit port.
    let layer = gemm("fc", 1, 1000, 512);
    let b = layer_bound(&layer, &tpu_like(), &OperandLinks::default(), &CostOptions::default()).unwrap();
    let l = b.latency.unwrap();
    assert!(l > b.ideal_cycles as f64 * 4.0, "{b:?}");
    assert!(b.bandwidth.iter().any(|p| p.links.iter().any(|(r, _)| r == "W")), "{:?}", b.bandwidth);
}
