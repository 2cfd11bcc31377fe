//! The bizos BFF: verifies callers and runs one atomic RPC per request under
//! their claims. Business rules live in the database; this crate moves
//! requests, files and messages.

pub mod api_keys;
pub mod auth;
pub mod billing;
pub mod cli;
pub mod config;
pub mod crm;
pub mod db;
pub mod digest;
pub mod email;
pub mod error;
pub mod extract;
pub mod files;
pub mod fleet;
pub mod idempotency;
pub mod imports;
pub mod job;
pub mod jwt;
pub mod kb;
pub mod llm;
pub mod metrics;
pub mod payload;
pub mod payments;
pub mod placement;
pub mod pool;
pub mod retry;
pub mod rfm;
pub mod routes;
pub mod shutdown;
pub mod signup;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod tenant_moves;
pub mod tenants;
pub mod vars;
pub mod vector_index;
pub mod vocabulary;
pub mod webhooks;
pub mod worker;

pub use error::{ApiError, Result};
