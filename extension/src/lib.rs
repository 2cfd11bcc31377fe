//! The bizos extension: generic primitives that the business schema attaches.
//!
//! Everything lives in schema `bizos`. Pure logic sits in plain modules (and
//! in the `bizos-core` crate) so it is unit-tested without a server; the
//! `#[pg_extern]` wrappers are thin.

::pgrx::pg_module_magic!(name, version);

pub mod audit;
mod before_row;
mod cache;
mod citus;
pub mod claims;
pub mod error;
pub mod ids;
pub mod lifecycle;
pub mod normalize;
mod payload;
pub mod pii;
pub mod privilege;
mod row_jsonb;
mod rows;
pub mod sla;
mod stamps;
mod uuid7;
pub mod vector;

/// Runs when a backend loads the library: the settings of the vector
/// index exist from then on (also before any index is used), and the
/// `bizos.` prefix is reserved for them, so a misspelled `bizos.` setting
/// is an error instead of a silent placeholder (as pgvector does for its
/// prefixes). Placeholders set before the library loaded are checked then:
/// a known one takes its value, an unknown one is removed with a warning.
#[pgrx::pg_guard]
pub extern "C-unwind" fn _PG_init() {
    vector::am::options::init();
    unsafe { pgrx::pg_sys::MarkGUCPrefixReserved(c"bizos".as_ptr()) };
}

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
