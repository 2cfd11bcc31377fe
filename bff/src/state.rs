//! Shared state handed to every handler.

use std::sync::Arc;

use sqlx::PgPool;

use crate::auth::JwtVerifier;

#[derive(Clone)]
pub struct AppState {
    /// Pool of the BFF's login role; requests switch to bizos_authenticated.
    pub pool: PgPool,
    pub verifier: Arc<JwtVerifier>,
}
