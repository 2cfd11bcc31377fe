//! Vector math of the bizos vector search: distance kernels and k-means.
//!
//! Kept free of PostgreSQL types so the kernels are unit-tested (portable and
//! AVX2/FMA paths against each other) and benchmarked without a server; the
//! extension's `vector` type and IVF index call into this module.

pub mod distance;
pub mod kmeans;
pub mod rabitq;
pub mod rng;

pub use distance::{cosine_distance, dot, l2_squared, norm, normalize, Metric};
