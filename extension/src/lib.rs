//! The bizos extension: generic primitives that the business schema attaches.
//!
//! Everything lives in schema `bizos`. Pure logic sits in plain modules (and
//! in the `bizos-core` crate) so it is unit-tested without a server; the
//! `#[pg_extern]` wrappers are thin.

::pgrx::pg_module_magic!(name, version);

pub mod audit;
mod cache;
mod citus;
pub mod claims;
pub mod error;
pub mod ids;
pub mod lifecycle;
pub mod normalize;
pub mod pii;
pub mod privilege;
mod row_jsonb;
mod rows;
pub mod sla;
pub mod vector;

pgrx::extension_sql!(
    r#"
-- Policies and RPCs of every role call the claims helpers.
grant usage on schema bizos to public;
"#,
    name = "schema_grants",
    bootstrap
);

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
