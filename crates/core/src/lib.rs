//! Pure-Rust building blocks of the bizos extension. Nothing here knows about
//! PostgreSQL: the extension crate wraps these functions as SQL functions, and
//! they are unit-tested and benchmarked without a server.

pub mod audit;
pub mod chunk;
pub mod normalize;
pub mod payload;
pub mod pii;
pub mod uuid7;
pub mod vector;
