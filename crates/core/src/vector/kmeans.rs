//! k-means for the lists of the IVF index: k-means++ seeding, then Lloyd
//! iterations on a sample of the table. Spherical mode (centroids scaled to
//! unit length after every update) serves cosine indexes, whose vectors are
//! stored normalised: there, squared L2 ranks like cosine distance.

use super::distance::{l2_squared, normalize};
use super::rng::Rng;

/// Parameters of one clustering.
#[derive(Clone, Copy, Debug)]
pub struct KMeans {
    /// Wanted clusters; fewer when the sample has fewer points.
    pub k: usize,
    /// Upper bound of Lloyd iterations (it stops early once stable).
    pub max_iterations: usize,
    /// Scale centroids to unit length (cosine indexes).
    pub spherical: bool,
    pub seed: u64,
}

/// Centroids of `data` (`n` points of `dims` floats, row-major) as `k' × dims`
/// floats, `k' = min(k, n)`.
pub fn train(data: &[f32], dims: usize, params: KMeans) -> Vec<f32> {
    assert!(dims > 0, "k-means: dims must be positive");
    assert_eq!(data.len() % dims, 0, "k-means: data is not n × dims");
    let n = data.len() / dims;
    let k = params.k.min(n);
    if k == 0 {
        return Vec::new();
    }
    let point = |i: usize| &data[i * dims..(i + 1) * dims];
    let mut rng = Rng::new(params.seed);
    let mut centroids = seed_plus_plus(data, dims, k, &mut rng);
    if params.spherical {
        centroids.chunks_exact_mut(dims).for_each(normalize);
    }

    let mut assign = vec![usize::MAX; n];
    let mut sums = vec![0.0f64; k * dims];
    let mut counts = vec![0usize; k];
    for _ in 0..params.max_iterations {
        let mut changed = 0usize;
        for (i, a) in assign.iter_mut().enumerate() {
            let c = nearest(&centroids, dims, point(i));
            if *a != c {
                *a = c;
                changed += 1;
            }
        }
        if changed == 0 {
            break;
        }
        sums.iter_mut().for_each(|s| *s = 0.0);
        counts.iter_mut().for_each(|c| *c = 0);
        for (i, &c) in assign.iter().enumerate() {
            counts[c] += 1;
            for (s, &x) in sums[c * dims..(c + 1) * dims].iter_mut().zip(point(i)) {
                *s += f64::from(x);
            }
        }
        for c in 0..k {
            let centroid = &mut centroids[c * dims..(c + 1) * dims];
            if counts[c] == 0 {
                // An empty cluster takes a random point, so no list is wasted.
                centroid.copy_from_slice(point(rng.below(n as u64) as usize));
            } else {
                let inv = 1.0 / counts[c] as f64;
                for (x, s) in centroid.iter_mut().zip(&sums[c * dims..(c + 1) * dims]) {
                    *x = (s * inv) as f32;
                }
            }
            if params.spherical {
                normalize(centroid);
            }
        }
    }
    centroids
}

/// Index of the centroid nearest to `v` by squared L2.
pub fn nearest(centroids: &[f32], dims: usize, v: &[f32]) -> usize {
    let mut best = (0usize, f32::INFINITY);
    for (c, centroid) in centroids.chunks_exact(dims).enumerate() {
        let d = l2_squared(centroid, v);
        if d < best.1 {
            best = (c, d);
        }
    }
    best.0
}

/// k-means++ seeding: each next centre is drawn with probability
/// proportional to its squared distance from the nearest centre so far.
fn seed_plus_plus(data: &[f32], dims: usize, k: usize, rng: &mut Rng) -> Vec<f32> {
    let n = data.len() / dims;
    let point = |i: usize| &data[i * dims..(i + 1) * dims];
    let mut centroids = Vec::with_capacity(k * dims);
    centroids.extend_from_slice(point(rng.below(n as u64) as usize));
    let mut d2: Vec<f64> = (0..n)
        .map(|i| f64::from(l2_squared(point(i), &centroids[..dims])))
        .collect();
    while centroids.len() < k * dims {
        let total: f64 = d2.iter().sum();
        let pick = if total > 0.0 {
            let mut target = rng.next_f64() * total;
            let mut chosen = n - 1;
            for (i, &d) in d2.iter().enumerate() {
                if target < d {
                    chosen = i;
                    break;
                }
                target -= d;
            }
            chosen
        } else {
            // Every point coincides with a centre: any point will do.
            rng.below(n as u64) as usize
        };
        let start = centroids.len();
        centroids.extend_from_slice(point(pick));
        let newest = &centroids[start..start + dims];
        for (i, d) in d2.iter_mut().enumerate() {
            let nd = f64::from(l2_squared(point(i), newest));
            if nd < *d {
                *d = nd;
            }
        }
    }
    centroids
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points around `centres` with a small jitter.
    fn blobs(centres: &[[f32; 2]], per: usize, rng: &mut Rng) -> Vec<f32> {
        let mut out = Vec::new();
        for c in centres {
            for _ in 0..per {
                out.push(c[0] + (rng.next_f32() - 0.5) * 0.1);
                out.push(c[1] + (rng.next_f32() - 0.5) * 0.1);
            }
        }
        out
    }

    #[test]
    fn finds_well_separated_blobs() {
        let centres = [[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]];
        let data = blobs(&centres, 50, &mut Rng::new(1));
        let found = train(
            &data,
            2,
            KMeans {
                k: 4,
                max_iterations: 20,
                spherical: false,
                seed: 5,
            },
        );
        assert_eq!(found.len(), 8);
        for c in centres {
            let i = nearest(&found, 2, &c);
            let d = l2_squared(&found[i * 2..i * 2 + 2], &c);
            assert!(d < 0.05, "no centroid near {c:?}: {found:?}");
        }
    }

    #[test]
    fn fewer_points_than_clusters_gives_one_centroid_per_point() {
        let data = [1.0, 2.0, 3.0, 4.0];
        let found = train(
            &data,
            2,
            KMeans {
                k: 10,
                max_iterations: 5,
                spherical: false,
                seed: 1,
            },
        );
        assert_eq!(found.len(), 4);
        assert!(train(
            &[],
            2,
            KMeans {
                k: 3,
                max_iterations: 5,
                spherical: false,
                seed: 1
            }
        )
        .is_empty());
    }

    #[test]
    fn spherical_centroids_have_unit_length() {
        let data = blobs(&[[3.0, 4.0], [-4.0, 3.0]], 30, &mut Rng::new(2));
        let found = train(
            &data,
            2,
            KMeans {
                k: 2,
                max_iterations: 10,
                spherical: true,
                seed: 9,
            },
        );
        for c in found.chunks_exact(2) {
            assert!((super::super::distance::norm(c) - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn nearest_picks_the_closest() {
        let centroids = [0.0, 0.0, 5.0, 5.0, -5.0, 5.0];
        assert_eq!(nearest(&centroids, 2, &[4.0, 4.0]), 1);
        assert_eq!(nearest(&centroids, 2, &[-4.0, 6.0]), 2);
        assert_eq!(nearest(&centroids, 2, &[0.5, -1.0]), 0);
    }
}
