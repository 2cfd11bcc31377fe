//! Vector search inside the extension: the `bizos.vector(n)` type, its
//! distance operators, and the `bizos_ivf` index access method.
//!
//! The SQL surface is written by hand in `extension/sql/vector.sql`; the
//! functions it declares are the version-1 C functions of [`types`],
//! [`ops`] and [`am`]. The math is `bizos_core::vector`'s.

pub mod am;
mod fmgr;
pub mod ops;
pub mod types;

pgrx::extension_sql_file!(
    "../../sql/vector.sql",
    name = "vector",
    requires = ["schema_grants"]
);

#[cfg(any(test, feature = "pg_test"))]
mod tests;
