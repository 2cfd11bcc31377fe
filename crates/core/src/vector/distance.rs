//! Distance kernels over `f32` slices of equal length.
//!
//! Each kernel has a portable body written as eight independent lanes, which
//! the compiler turns into SIMD on any target (no fast-math needed, since
//! the lanes are explicit), and on x86-64 an AVX2/FMA body chosen at run
//! time when the CPU has those features: fused multiply-add halves the
//! instructions of the inner loop and PostgreSQL's build flags do not let
//! us assume AVX2 at compile time.

/// Which distance an index or a query orders by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Euclidean distance (`<->`); indexes compare squared distances.
    L2,
    /// Cosine distance, `1 - cos` (`<=>`).
    Cosine,
    /// Negative inner product (`<#>`), so smaller is closer like the others.
    InnerProduct,
}

impl Metric {
    /// The stable code stored in index meta pages and returned by the
    /// operator classes' support function.
    pub fn code(self) -> i32 {
        match self {
            Metric::L2 => 1,
            Metric::Cosine => 2,
            Metric::InnerProduct => 3,
        }
    }

    pub fn from_code(code: i32) -> Option<Metric> {
        match code {
            1 => Some(Metric::L2),
            2 => Some(Metric::Cosine),
            3 => Some(Metric::InnerProduct),
            _ => None,
        }
    }

    /// The ordering key of `a` and `b` for this metric, when vectors of a
    /// cosine index are stored normalised: monotonic in the SQL operator's
    /// value, cheaper to compute (no square root, no norms).
    pub fn key(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Metric::L2 => l2_squared(a, b),
            Metric::Cosine | Metric::InnerProduct => -dot(a, b),
        }
    }
}

const LANES: usize = 8;

/// Squared Euclidean distance.
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "l2_squared: lengths differ");
    #[cfg(target_arch = "x86_64")]
    match simd() {
        // SAFETY: the CPU supports the instructions (simd() checked them).
        Simd::Avx512 => return unsafe { avx512::l2_squared(a, b) },
        Simd::Avx2 => return unsafe { avx2::l2_squared(a, b) },
        Simd::None => {}
    }
    portable::l2_squared(a, b)
}

/// Inner product.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot: lengths differ");
    #[cfg(target_arch = "x86_64")]
    match simd() {
        // SAFETY: the CPU supports the instructions (simd() checked them).
        Simd::Avx512 => return unsafe { avx512::dot(a, b) },
        Simd::Avx2 => return unsafe { avx2::dot(a, b) },
        Simd::None => {}
    }
    portable::dot(a, b)
}

/// Euclidean norm.
pub fn norm(a: &[f32]) -> f32 {
    dot(a, a).sqrt()
}

/// Cosine distance `1 - a·b / (|a| |b|)`, in [0, 2]; NaN when either vector
/// is zero (the angle is undefined), as in pgvector.
pub fn cosine_distance(a: &[f32], b: &[f32]) -> f32 {
    let (ab, aa, bb) = dot3(a, b);
    let sim = ab / (aa * bb).sqrt();
    if sim.is_nan() {
        return f32::NAN;
    }
    1.0 - sim.clamp(-1.0, 1.0)
}

/// Scales `a` to unit length in place; a zero vector stays zero.
pub fn normalize(a: &mut [f32]) {
    let n = norm(a);
    if n > 0.0 {
        for x in a.iter_mut() {
            *x /= n;
        }
    }
}

/// `(a·b, a·a, b·b)` in one pass.
fn dot3(a: &[f32], b: &[f32]) -> (f32, f32, f32) {
    assert_eq!(a.len(), b.len(), "cosine_distance: lengths differ");
    #[cfg(target_arch = "x86_64")]
    match simd() {
        // SAFETY: the CPU supports the instructions (simd() checked them).
        Simd::Avx512 => return unsafe { avx512::dot3(a, b) },
        Simd::Avx2 => return unsafe { avx2::dot3(a, b) },
        Simd::None => {}
    }
    portable::dot3(a, b)
}

/// The widest kernels this CPU runs.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Simd {
    Avx512,
    Avx2,
    None,
}

#[cfg(target_arch = "x86_64")]
fn simd() -> Simd {
    // The standard library caches the CPUID answers: atomic loads.
    if std::arch::is_x86_feature_detected!("avx512f") {
        Simd::Avx512
    } else if has_avx2_fma() {
        Simd::Avx2
    } else {
        Simd::None
    }
}

#[cfg(target_arch = "x86_64")]
fn has_avx2_fma() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

/// Bodies any CPU runs; the fixed-width lanes let LLVM vectorise them.
pub mod portable {
    use super::LANES;

    fn sum(lanes: [f32; LANES]) -> f32 {
        lanes.iter().sum()
    }

    pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
        let mut acc = [0.0f32; LANES];
        let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
        let (ra, rb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            for i in 0..LANES {
                let d = x[i] - y[i];
                acc[i] += d * d;
            }
        }
        let mut s = sum(acc);
        for (x, y) in ra.iter().zip(rb) {
            let d = x - y;
            s += d * d;
        }
        s
    }

    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        let mut acc = [0.0f32; LANES];
        let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
        let (ra, rb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            for i in 0..LANES {
                acc[i] += x[i] * y[i];
            }
        }
        sum(acc) + ra.iter().zip(rb).map(|(x, y)| x * y).sum::<f32>()
    }

    pub fn dot3(a: &[f32], b: &[f32]) -> (f32, f32, f32) {
        let (mut ab, mut aa, mut bb) = ([0.0f32; LANES], [0.0f32; LANES], [0.0f32; LANES]);
        let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
        let (ra, rb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            for i in 0..LANES {
                ab[i] += x[i] * y[i];
                aa[i] += x[i] * x[i];
                bb[i] += y[i] * y[i];
            }
        }
        let (mut s_ab, mut s_aa, mut s_bb) = (sum(ab), sum(aa), sum(bb));
        for (x, y) in ra.iter().zip(rb) {
            s_ab += x * y;
            s_aa += x * x;
            s_bb += y * y;
        }
        (s_ab, s_aa, s_bb)
    }
}

/// AVX2 + FMA bodies: two 8-wide accumulators to hide the FMA latency.
#[cfg(target_arch = "x86_64")]
pub mod avx2 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma")]
    unsafe fn hsum(v: __m256) -> f32 {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps(v, 1);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0x55));
        _mm_cvtss_f32(s)
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA; `a` and `b` have equal lengths.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let (mut s0, mut s1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut i = 0;
        while i + 16 <= n {
            let d0 = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
            let d1 = _mm256_sub_ps(
                _mm256_loadu_ps(pa.add(i + 8)),
                _mm256_loadu_ps(pb.add(i + 8)),
            );
            s0 = _mm256_fmadd_ps(d0, d0, s0);
            s1 = _mm256_fmadd_ps(d1, d1, s1);
            i += 16;
        }
        if i + 8 <= n {
            let d0 = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
            s0 = _mm256_fmadd_ps(d0, d0, s0);
            i += 8;
        }
        let mut s = hsum(_mm256_add_ps(s0, s1));
        while i < n {
            let d = a[i] - b[i];
            s += d * d;
            i += 1;
        }
        s
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA; `a` and `b` have equal lengths.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let (mut s0, mut s1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut i = 0;
        while i + 16 <= n {
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s0);
            s1 = _mm256_fmadd_ps(
                _mm256_loadu_ps(pa.add(i + 8)),
                _mm256_loadu_ps(pb.add(i + 8)),
                s1,
            );
            i += 16;
        }
        if i + 8 <= n {
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s0);
            i += 8;
        }
        let mut s = hsum(_mm256_add_ps(s0, s1));
        while i < n {
            s += a[i] * b[i];
            i += 1;
        }
        s
    }

    /// # Safety
    /// The CPU must support AVX2 and FMA; `a` and `b` have equal lengths.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn dot3(a: &[f32], b: &[f32]) -> (f32, f32, f32) {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let (mut ab, mut aa, mut bb) = (
            _mm256_setzero_ps(),
            _mm256_setzero_ps(),
            _mm256_setzero_ps(),
        );
        let mut i = 0;
        while i + 8 <= n {
            let x = _mm256_loadu_ps(pa.add(i));
            let y = _mm256_loadu_ps(pb.add(i));
            ab = _mm256_fmadd_ps(x, y, ab);
            aa = _mm256_fmadd_ps(x, x, aa);
            bb = _mm256_fmadd_ps(y, y, bb);
            i += 8;
        }
        let (mut s_ab, mut s_aa, mut s_bb) = (hsum(ab), hsum(aa), hsum(bb));
        while i < n {
            s_ab += a[i] * b[i];
            s_aa += a[i] * a[i];
            s_bb += b[i] * b[i];
            i += 1;
        }
        (s_ab, s_aa, s_bb)
    }
}

/// AVX-512F bodies: 16 lanes, two accumulators, and a masked load for the
/// tail instead of a scalar loop.
#[cfg(target_arch = "x86_64")]
pub mod avx512 {
    use std::arch::x86_64::*;

    /// Lanes `i..n` of a 16-lane block starting at `i` (all when `n - i >= 16`).
    #[inline]
    fn tail_mask(n: usize, i: usize) -> __mmask16 {
        let left = n - i;
        if left >= 16 {
            0xffff
        } else {
            ((1u32 << left) - 1) as __mmask16
        }
    }

    /// # Safety
    /// The CPU must support AVX-512F; `a` and `b` have equal lengths.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let (mut s0, mut s1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
        let mut i = 0;
        while i + 32 <= n {
            let d0 = _mm512_sub_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)));
            let d1 = _mm512_sub_ps(
                _mm512_loadu_ps(pa.add(i + 16)),
                _mm512_loadu_ps(pb.add(i + 16)),
            );
            s0 = _mm512_fmadd_ps(d0, d0, s0);
            s1 = _mm512_fmadd_ps(d1, d1, s1);
            i += 32;
        }
        while i < n {
            let m = tail_mask(n, i);
            let d = _mm512_sub_ps(
                _mm512_maskz_loadu_ps(m, pa.add(i)),
                _mm512_maskz_loadu_ps(m, pb.add(i)),
            );
            s0 = _mm512_fmadd_ps(d, d, s0);
            i += 16;
        }
        _mm512_reduce_add_ps(_mm512_add_ps(s0, s1))
    }

    /// # Safety
    /// The CPU must support AVX-512F; `a` and `b` have equal lengths.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let (mut s0, mut s1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
        let mut i = 0;
        while i + 32 <= n {
            s0 = _mm512_fmadd_ps(_mm512_loadu_ps(pa.add(i)), _mm512_loadu_ps(pb.add(i)), s0);
            s1 = _mm512_fmadd_ps(
                _mm512_loadu_ps(pa.add(i + 16)),
                _mm512_loadu_ps(pb.add(i + 16)),
                s1,
            );
            i += 32;
        }
        while i < n {
            let m = tail_mask(n, i);
            s0 = _mm512_fmadd_ps(
                _mm512_maskz_loadu_ps(m, pa.add(i)),
                _mm512_maskz_loadu_ps(m, pb.add(i)),
                s0,
            );
            i += 16;
        }
        _mm512_reduce_add_ps(_mm512_add_ps(s0, s1))
    }

    /// # Safety
    /// The CPU must support AVX-512F; `a` and `b` have equal lengths.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn dot3(a: &[f32], b: &[f32]) -> (f32, f32, f32) {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let z = _mm512_setzero_ps();
        let (mut ab, mut aa, mut bb) = (z, z, z);
        // A second set of accumulators: six independent FMA chains.
        let (mut ab1, mut aa1, mut bb1) = (z, z, z);
        let mut i = 0;
        while i + 32 <= n {
            let x = _mm512_loadu_ps(pa.add(i));
            let y = _mm512_loadu_ps(pb.add(i));
            let x1 = _mm512_loadu_ps(pa.add(i + 16));
            let y1 = _mm512_loadu_ps(pb.add(i + 16));
            ab = _mm512_fmadd_ps(x, y, ab);
            aa = _mm512_fmadd_ps(x, x, aa);
            bb = _mm512_fmadd_ps(y, y, bb);
            ab1 = _mm512_fmadd_ps(x1, y1, ab1);
            aa1 = _mm512_fmadd_ps(x1, x1, aa1);
            bb1 = _mm512_fmadd_ps(y1, y1, bb1);
            i += 32;
        }
        ab = _mm512_add_ps(ab, ab1);
        aa = _mm512_add_ps(aa, aa1);
        bb = _mm512_add_ps(bb, bb1);
        while i < n {
            let m = tail_mask(n, i);
            let x = _mm512_maskz_loadu_ps(m, pa.add(i));
            let y = _mm512_maskz_loadu_ps(m, pb.add(i));
            ab = _mm512_fmadd_ps(x, y, ab);
            aa = _mm512_fmadd_ps(x, x, aa);
            bb = _mm512_fmadd_ps(y, y, bb);
            i += 16;
        }
        (
            _mm512_reduce_add_ps(ab),
            _mm512_reduce_add_ps(aa),
            _mm512_reduce_add_ps(bb),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::rng::Rng;

    fn random(n: usize, rng: &mut Rng) -> Vec<f32> {
        (0..n).map(|_| rng.next_f32() * 2.0 - 1.0).collect()
    }

    fn close(a: f32, b: f32) -> bool {
        (a - b).abs() <= 1e-4 * (1.0 + a.abs().max(b.abs()))
    }

    fn naive_l2(a: &[f32], b: &[f32]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(x, y)| ((x - y) as f64).powi(2))
            .sum::<f64>() as f32
    }

    fn naive_dot(a: &[f32], b: &[f32]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (*x as f64) * (*y as f64))
            .sum::<f64>() as f32
    }

    #[test]
    fn kernels_match_a_naive_sum_at_every_length() {
        let mut rng = Rng::new(7);
        for n in [0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 100, 384, 1536] {
            let (a, b) = (random(n, &mut rng), random(n, &mut rng));
            assert!(close(l2_squared(&a, &b), naive_l2(&a, &b)), "l2 n={n}");
            assert!(close(dot(&a, &b), naive_dot(&a, &b)), "dot n={n}");
            assert!(
                close(portable::l2_squared(&a, &b), naive_l2(&a, &b)),
                "portable l2 n={n}"
            );
            assert!(
                close(portable::dot(&a, &b), naive_dot(&a, &b)),
                "portable dot n={n}"
            );
        }
    }

    #[cfg(target_arch = "x86_64")]
    type Kernel = unsafe fn(&[f32], &[f32]) -> f32;
    #[cfg(target_arch = "x86_64")]
    type Kernel3 = unsafe fn(&[f32], &[f32]) -> (f32, f32, f32);

    /// Checks one SIMD path against the portable one at lengths around its
    /// block sizes.
    #[cfg(target_arch = "x86_64")]
    fn agrees_with_portable(name: &str, seed: u64, l2: Kernel, dot: Kernel, dot3: Kernel3) {
        let mut rng = Rng::new(seed);
        for n in [1, 5, 8, 13, 15, 16, 17, 24, 31, 32, 33, 100, 384, 1000] {
            let (a, b) = (random(n, &mut rng), random(n, &mut rng));
            // SAFETY: the caller checked the CPU features.
            let (l, d, t) = unsafe { (l2(&a, &b), dot(&a, &b), dot3(&a, &b)) };
            assert!(close(l, portable::l2_squared(&a, &b)), "{name} l2 n={n}");
            assert!(close(d, portable::dot(&a, &b)), "{name} dot n={n}");
            let p = portable::dot3(&a, &b);
            assert!(
                close(t.0, p.0) && close(t.1, p.1) && close(t.2, p.2),
                "{name} dot3 n={n}"
            );
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_and_portable_paths_agree() {
        if !has_avx2_fma() {
            eprintln!("CPU without AVX2/FMA: only the portable path exists here");
            return;
        }
        agrees_with_portable("avx2", 11, avx2::l2_squared, avx2::dot, avx2::dot3);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx512_and_portable_paths_agree() {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            eprintln!("CPU without AVX-512F: the AVX2 or portable path runs here");
            return;
        }
        agrees_with_portable("avx512", 12, avx512::l2_squared, avx512::dot, avx512::dot3);
        assert_eq!(simd(), Simd::Avx512);
    }

    #[test]
    fn cosine_distance_of_known_pairs() {
        assert!(close(cosine_distance(&[1.0, 0.0], &[0.0, 1.0]), 1.0));
        assert!(close(cosine_distance(&[1.0, 2.0], &[2.0, 4.0]), 0.0));
        assert!(close(cosine_distance(&[1.0, 0.0], &[-3.0, 0.0]), 2.0));
        assert!(cosine_distance(&[0.0, 0.0], &[1.0, 0.0]).is_nan());
    }

    #[test]
    fn normalised_keys_order_like_the_operators() {
        let mut rng = Rng::new(3);
        let q = random(32, &mut rng);
        let mut qn = q.clone();
        normalize(&mut qn);
        let (a, b) = (random(32, &mut rng), random(32, &mut rng));
        let (mut an, mut bn) = (a.clone(), b.clone());
        normalize(&mut an);
        normalize(&mut bn);
        let by_cos = cosine_distance(&q, &a) < cosine_distance(&q, &b);
        let by_key = Metric::Cosine.key(&qn, &an) < Metric::Cosine.key(&qn, &bn);
        assert_eq!(by_cos, by_key);
        assert!(close(norm(&an), 1.0));
        for m in [Metric::L2, Metric::Cosine, Metric::InnerProduct] {
            assert_eq!(Metric::from_code(m.code()), Some(m));
        }
        assert_eq!(Metric::from_code(0), None);
    }
}
