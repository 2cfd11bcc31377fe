//! The integration tests of bizos: one test binary (it links the BFF and
//! the harness once), a module per area, as zero2prod's `tests/api/main.rs`.
//!
//! Adding an area is one line: put the tests in `suite/<area>.rs` (or
//! `suite/<area>/mod.rs` with submodules) and add `mod <area>;` below.
//! Test names read `<area>::<test>`, so `cargo test -p bizos-tests <area>::`
//! runs one area. Every test shares this process: use `TestDb::new()` for a
//! database of its own, never `std::env::set_var` or process-wide state
//! (settings go through `spawn_app_with`).

mod admin;
mod analytics;
mod api_apply;
mod api_keys;
mod audit_api;
mod audit_coverage;
mod auth;
mod billing;
mod citus;
mod cli_health;
mod cli_tenant;
mod crm;
mod demo;
mod digest;
mod email;
mod extension_upgrade;
mod fleet;
mod http;
mod imports_stage;
mod jobs;
mod kb;
mod kb_sql;
mod kpi;
mod list_cost;
mod llm_gateway;
mod llm_provider;
mod llm_sql;
mod observability;
mod payload_contract;
mod payments;
mod pii_corpus;
mod placement;
mod platform;
mod precheck;
mod primitives;
mod profile_authority;
mod receivables;
mod rfm;
mod rls_matrix;
mod schedules;
mod schema_api;
mod security_catalog;
mod signup;
mod sql_scripts;
mod team_list_cost;
mod team_lists;
mod tenancy;
mod tenant_move;
mod ticketing;
mod trusted_numbers;
mod upload_crash;
mod usage;
mod vector;
mod vector_crash;
mod vector_retrain;
mod vocabulary;
mod webhooks;
