//! One-bit codes of vectors (RaBitQ: Gao and Long, SIGMOD 2024) for the IVF
//! index: a scan estimates the distance of a code to the query with a
//! table lookup per byte instead of a pass over the floats, with a bound on
//! the estimate's error, and computes the exact distance only for the
//! codes whose lower bound could still place them next.
//!
//! A vector `o` of list `c` is coded by its residual `o - c`:
//!
//! - `x = P (o - c) / |o - c|`, where `P` is a random rotation of the
//!   dimensions padded to a multiple of 64 ([`Rotation`]);
//! - the code is the signs of `x` (bit set for a positive coordinate), read
//!   as the unit vector `x̄ = (2b - 1) / √D`;
//! - `<x̄, P v> / <x̄, x>` estimates `<(o - c)/|o - c|, v>` for any `v` with
//!   an error that is, with high probability, at most
//!   `ε₀ · √(1/<x̄,x>² - 1) / √(D - 1) · |v|` (the paper's bound, ε₀ = 1.9).
//!
//! With `v = q - c` the estimate is of the residuals' inner product, from
//! which follow the squared L2 distance and the inner product. `<x̄, P q>` is
//! one lookup per code byte in a table built once per query
//! ([`QueryTable`]); `<x̄, P c>` is the same for every query, so it is
//! stored with the code ([`Factors::g`]), and a query needs no work per
//! list beyond `<q, c>` and `|q - c|`, which ranking the lists computes
//! anyway.

use super::distance::{dot, Metric};
use super::rng::Rng;

/// The confidence parameter of the error bound (the paper's ε₀, which
/// takes 1.9). The estimate's error, in units of the bound at ε₀ = 1, is
/// close to a standard normal: measured on 200,000 pairs of random vectors
/// of 100 and of 384 dimensions, 10% of the errors exceed 1.3 units, 0.1%
/// exceed 3.0, 0.01% exceed 3.6, none 4.1. A failed bound lets a row come a
/// few places late, never drops it. On 100,000 sentence embeddings
/// (docs/benchmarks/vector.md) 3.0 gave the exact top 10 of all 200 queries
/// with every list probed (2.5: 0.9995, 2: 0.998, 1.5: 0.992 recall@10)
/// and re-ranked about 60 codes per query where 4.0 took 113, at 1.4 times
/// the queries per second; below 3 the speed no longer rose.
///
/// The index's scan no longer takes this value: it passes its own margin
/// to [`estimate_with`] (`bizos.ivf_rerank_confidence`, default 5 since
/// issue 49, because at 3 about one query in 300 on held-out sentence
/// embeddings got a row out of distance order).
pub const EPSILON: f32 = 3.0;

/// The seed of every index's rotation: fixed, so that a build of the same
/// rows in the same order gives the same index.
pub const ROTATION_SEED: u64 = 0x6269_7a6f_735f_7271;

/// Rounds of sign flips and Hadamard transforms in [`Rotation`].
const ROUNDS: usize = 4;

/// Dimensions as coded: `dims` rounded up to a multiple of 64 (whole
/// 64-bit words, whole bytes).
pub fn padded(dims: usize) -> usize {
    dims.div_ceil(64).max(1) * 64
}

/// Bytes of the code of a vector of `dims` dimensions.
pub fn code_bytes(dims: usize) -> usize {
    padded(dims) / 8
}

/// A random orthogonal transform of `padded(dims)` coordinates, fixed by a
/// seed: rounds of random sign flips each followed by a normalised
/// Walsh–Hadamard transform of the first `T` and (when `T` is not all of
/// them) of the last `T` coordinates, `T` the largest power of two that
/// fits. Every step is orthogonal, so the whole is; it costs O(D log D) per
/// vector and stores no matrix.
#[derive(Clone, Debug)]
pub struct Rotation {
    dims: usize,
    block: usize,
    /// Per round, two sign vectors (before each of the two transforms).
    signs: Vec<[Vec<f32>; 2]>,
}

impl Rotation {
    pub fn new(dims: usize, seed: u64) -> Rotation {
        let dims = padded(dims);
        let block = 1usize << (usize::BITS - 1 - dims.leading_zeros());
        let mut rng = Rng::new(seed);
        let mut signs = || -> Vec<f32> {
            (0..dims)
                .map(|_| if rng.next_u64() & 1 == 0 { 1.0 } else { -1.0 })
                .collect()
        };
        let signs = (0..ROUNDS).map(|_| [signs(), signs()]).collect();
        Rotation { dims, block, signs }
    }

    /// The padded dimension.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// `P v`, `v` zero-padded to [`Rotation::dims`].
    pub fn apply(&self, v: &[f32]) -> Vec<f32> {
        assert!(
            v.len() <= self.dims,
            "rotation: vector longer than its dims"
        );
        let mut x = vec![0.0; self.dims];
        x[..v.len()].copy_from_slice(v);
        let (n, t) = (self.dims, self.block);
        for [first, second] in &self.signs {
            flip(&mut x, first);
            hadamard(&mut x[..t]);
            if t < n {
                flip(&mut x, second);
                hadamard(&mut x[n - t..]);
            }
        }
        x
    }
}

fn flip(x: &mut [f32], signs: &[f32]) {
    for (a, s) in x.iter_mut().zip(signs) {
        *a *= s;
    }
}

/// The normalised (orthogonal) Walsh–Hadamard transform; `x.len()` is a
/// power of two.
fn hadamard(x: &mut [f32]) {
    let n = x.len();
    let mut h = 1;
    while h < n {
        for start in (0..n).step_by(2 * h) {
            for i in start..start + h {
                let (a, b) = (x[i], x[i + h]);
                x[i] = a + b;
                x[i + h] = a - b;
            }
        }
        h *= 2;
    }
    let scale = 1.0 / (n as f32).sqrt();
    for a in x.iter_mut() {
        *a *= scale;
    }
}

/// What a code needs beside its bits to estimate a distance (stored with
/// each code).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C)]
pub struct Factors {
    /// `|o - c| / <x̄, x>`: scales `<x̄, P v>` to `<o - c, v>`.
    pub scale: f32,
    /// `<x̄, P c>`, so that `<x̄, P (q - c)> = <x̄, P q> - g`.
    pub g: f32,
    /// L2: `|o - c|²`; inner product and cosine: `<o - c, c>`.
    pub bias: f32,
    /// The error bound of `<o - c, q - c>` per unit of `|q - c|` at
    /// ε₀ = 1 (the scan multiplies by [`EPSILON`]).
    pub error: f32,
}

/// The code of `v` (as the index stores it: normalised for cosine) in the
/// list of `centroid`, written into `code` (`code_bytes(dims)` bytes); the
/// rotated centroid `pc = P c` is passed in because the caller codes many
/// vectors per list.
pub fn encode(
    metric: Metric,
    rotation: &Rotation,
    centroid: &[f32],
    pc: &[f32],
    v: &[f32],
    code: &mut [u8],
) -> Factors {
    let d = rotation.dims();
    assert_eq!(code.len(), d / 8, "encode: code length");
    let residual: Vec<f32> = v.iter().zip(centroid).map(|(a, c)| a - c).collect();
    let r2 = dot(&residual, &residual);
    let r = r2.sqrt();
    let bias = match metric {
        Metric::L2 => r2,
        Metric::Cosine | Metric::InnerProduct => dot(&residual, centroid),
    };
    code.fill(0);
    if r == 0.0 || !r.is_finite() {
        // The vector is its centroid: its distance is the centroid's.
        return Factors {
            scale: 0.0,
            g: 0.0,
            bias,
            error: 0.0,
        };
    }
    let x = rotation.apply(&residual);
    let unit = 1.0 / (d as f32).sqrt();
    let (mut l1, mut g) = (0.0f32, 0.0f32);
    for (i, (&xi, &ci)) in x.iter().zip(pc).enumerate() {
        if xi > 0.0 {
            code[i / 8] |= 1 << (i % 8);
            g += ci;
        } else {
            g -= ci;
        }
        l1 += xi.abs();
    }
    // <x̄, x> with x = P(o - c) / r.
    let a = (l1 / r * unit).clamp(f32::MIN_POSITIVE, 1.0);
    Factors {
        scale: r / a,
        g: g * unit,
        bias,
        error: r * (1.0 / (a * a) - 1.0).max(0.0).sqrt() / ((d - 1) as f32).sqrt(),
    }
}

/// The per-query lookup table: for each code byte and each of its 256
/// values, `Σ y_i` over the dimensions whose bits are set, times `2/√D`,
/// with `y = P q`; so `<x̄, P q>` is the sum of one entry per byte less a
/// constant.
pub struct QueryTable {
    table: Vec<f32>,
    /// `Σ y_i / √D`.
    offset: f32,
}

impl QueryTable {
    pub fn new(rotation: &Rotation, query: &[f32]) -> QueryTable {
        let y = rotation.apply(query);
        let unit = 1.0 / (rotation.dims() as f32).sqrt();
        let bytes = rotation.dims() / 8;
        let mut table = vec![0.0f32; bytes * 256];
        for j in 0..bytes {
            let t = &mut table[j * 256..(j + 1) * 256];
            for b in 1..256usize {
                let low = b.trailing_zeros() as usize;
                t[b] = t[b & (b - 1)] + 2.0 * unit * y[8 * j + low];
            }
        }
        QueryTable {
            table,
            offset: y.iter().sum::<f32>() * unit,
        }
    }

    /// `<x̄, P q>` of `code`.
    #[inline]
    pub fn project(&self, code: &[u8]) -> f32 {
        let mut acc = [0.0f32; 4];
        let mut chunks = code.chunks_exact(4);
        let mut base = 0;
        for c in &mut chunks {
            acc[0] += self.table[base + c[0] as usize];
            acc[1] += self.table[base + 256 + c[1] as usize];
            acc[2] += self.table[base + 512 + c[2] as usize];
            acc[3] += self.table[base + 768 + c[3] as usize];
            base += 1024;
        }
        for &b in chunks.remainder() {
            acc[0] += self.table[base + b as usize];
            base += 256;
        }
        (acc[0] + acc[1]) + (acc[2] + acc[3]) - self.offset
    }
}

/// What a query knows of one list: `<q, c>` and `|q - c|`.
#[derive(Clone, Copy, Debug)]
pub struct ListQuery {
    pub qc_dot: f32,
    pub qc_dist: f32,
}

impl ListQuery {
    /// From the query, the centroid and the centroid's squared norm.
    pub fn new(query: &[f32], centroid: &[f32], centroid_norm2: f32) -> ListQuery {
        let qc_dot = dot(query, centroid);
        let qq = dot(query, query);
        ListQuery {
            qc_dot,
            qc_dist: (qq - 2.0 * qc_dot + centroid_norm2).max(0.0).sqrt(),
        }
    }
}

/// The estimated ordering key (as [`Metric::key`]) of a code whose
/// projection is `projected` (`QueryTable::project`), and a lower bound of
/// the exact key.
#[inline]
pub fn estimate(metric: Metric, f: &Factors, list: &ListQuery, projected: f32) -> (f32, f32) {
    estimate_with(metric, f, list, projected, EPSILON)
}

/// [`estimate`] with the lower bound at `epsilon` units of the error
/// instead of [`EPSILON`].
#[inline]
pub fn estimate_with(
    metric: Metric,
    f: &Factors,
    list: &ListQuery,
    projected: f32,
    epsilon: f32,
) -> (f32, f32) {
    // <o - c, q - c>, and its error bound.
    let ip = f.scale * (projected - f.g);
    let err = epsilon * f.error * list.qc_dist;
    match metric {
        Metric::L2 => {
            let key = f.bias + list.qc_dist * list.qc_dist - 2.0 * ip;
            (key, key - 2.0 * err)
        }
        // <o, q> = <o - c, q - c> + <o - c, c> + <c, q>
        Metric::Cosine | Metric::InnerProduct => {
            let key = -(ip + f.bias + list.qc_dot);
            (key, key - err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::{l2_squared, normalize};

    fn random(rng: &mut Rng, n: usize) -> Vec<f32> {
        (0..n).map(|_| rng.next_f32() * 2.0 - 1.0).collect()
    }

    #[test]
    fn the_rotation_keeps_lengths_and_angles() {
        for dims in [3, 64, 100, 384, 1000] {
            let rot = Rotation::new(dims, 7);
            let mut rng = Rng::new(dims as u64);
            let (a, b) = (random(&mut rng, dims), random(&mut rng, dims));
            let (pa, pb) = (rot.apply(&a), rot.apply(&b));
            let rel = |x: f32, y: f32| (x - y).abs() / y.abs().max(1.0);
            assert!(rel(dot(&pa, &pa), dot(&a, &a)) < 1e-4, "{dims}: length");
            assert!(rel(dot(&pa, &pb), dot(&a, &b)) < 1e-4, "{dims}: angle");
            // It is not the identity.
            let mut padded_a = a.clone();
            padded_a.resize(rot.dims(), 0.0);
            assert!(l2_squared(&pa, &padded_a) > 1e-2, "{dims}: moves vectors");
        }
    }

    #[test]
    fn the_table_projects_as_the_sign_vector_would() {
        let dims = 200;
        let rot = Rotation::new(dims, 3);
        let mut rng = Rng::new(11);
        let q = random(&mut rng, dims);
        let table = QueryTable::new(&rot, &q);
        let y = rot.apply(&q);
        let mut code = vec![0u8; code_bytes(dims)];
        for b in code.iter_mut() {
            *b = rng.next_u64() as u8;
        }
        let unit = 1.0 / (rot.dims() as f32).sqrt();
        let direct: f32 = (0..rot.dims())
            .map(|i| {
                let bit = (code[i / 8] >> (i % 8)) & 1;
                (if bit == 1 { unit } else { -unit }) * y[i]
            })
            .sum();
        assert!((table.project(&code) - direct).abs() < 1e-4);
    }

    /// Estimates are close to the exact key, and the lower bound holds for
    /// all but a few pairs (the paper: with high probability).
    fn check_estimates(metric: Metric, dims: usize) {
        let rot = Rotation::new(dims, 5);
        let mut rng = Rng::new(dims as u64 * 31 + metric.code() as u64);
        let prep = |mut v: Vec<f32>| {
            if metric == Metric::Cosine {
                normalize(&mut v);
            }
            v
        };
        let centroid = prep(random(&mut rng, dims));
        let pc = rot.apply(&centroid);
        let cn2 = dot(&centroid, &centroid);
        let (mut violations, mut pairs) = (0, 0);
        // The estimate's error, and the error of knowing nothing of the
        // residual's direction (its inner product with q - c taken as 0).
        let (mut err, mut blind) = (0.0f64, 0.0f64);
        for _ in 0..20 {
            let q = prep(random(&mut rng, dims));
            let table = QueryTable::new(&rot, &q);
            let list = ListQuery::new(&q, &centroid, cn2);
            for i in 0..100 {
                // Near the centroid, as a list's members are, and some of
                // them in the query's direction from it (as its neighbours).
                let share = i as f32 / 100.0;
                let noise = random(&mut rng, dims);
                let v: Vec<f32> = (0..dims)
                    .map(|j| {
                        centroid[j]
                            + 0.3 * (share * (q[j] - centroid[j]) + (1.0 - share) * noise[j])
                    })
                    .collect();
                let v = prep(v);
                let mut code = vec![0u8; code_bytes(dims)];
                let f = encode(metric, &rot, &centroid, &pc, &v, &mut code);
                let (key, lower) = estimate(metric, &f, &list, table.project(&code));
                let exact = metric.key(&q, &v);
                err += f64::from((key - exact).abs());
                blind += f64::from((estimate(metric, &f, &list, f.g).0 - exact).abs());
                pairs += 1;
                if lower > exact + 1e-4 * exact.abs().max(1.0) {
                    violations += 1;
                }
            }
        }
        assert!(
            violations * 100 <= pairs * 3,
            "{metric:?} {dims}: {violations} of {pairs} bounds failed"
        );
        assert!(
            err < 0.2 * blind,
            "{metric:?} {dims}: error {err} against {blind} knowing nothing"
        );
    }

    #[test]
    fn estimates_and_bounds_hold_for_every_metric() {
        for metric in [Metric::L2, Metric::Cosine, Metric::InnerProduct] {
            for dims in [64, 100, 384] {
                check_estimates(metric, dims);
            }
        }
    }

    #[test]
    fn a_vector_equal_to_its_centroid_estimates_exactly() {
        let dims = 64;
        let rot = Rotation::new(dims, 1);
        let c: Vec<f32> = (0..dims).map(|i| i as f32 / 64.0).collect();
        let pc = rot.apply(&c);
        let q: Vec<f32> = (0..dims).map(|i| 1.0 - i as f32 / 64.0).collect();
        let mut code = vec![0u8; code_bytes(dims)];
        for metric in [Metric::L2, Metric::InnerProduct] {
            let f = encode(metric, &rot, &c, &pc, &c, &mut code);
            let list = ListQuery::new(&q, &c, dot(&c, &c));
            let (key, lower) =
                estimate(metric, &f, &list, QueryTable::new(&rot, &q).project(&code));
            let exact = metric.key(&q, &c);
            assert!(
                (key - exact).abs() < 1e-3 * exact.abs().max(1.0),
                "{metric:?}"
            );
            assert!(lower <= exact + 1e-3, "{metric:?}");
        }
    }
}
