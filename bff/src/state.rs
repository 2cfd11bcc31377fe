//! Shared state handed to every handler.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use sqlx::PgPool;

use crate::api_keys::KeyAuth;
use crate::files::{Files, Storage};
use crate::jwt::JwtVerifier;
use crate::vocabulary::Vocabulary;

#[derive(Clone)]
pub struct AppState {
    /// Pool of the BFF's login role; requests switch to bizos_authenticated.
    pub pool: PgPool,
    pub verifier: Arc<JwtVerifier>,
    pub storage: Storage,
    /// Second key of this process's upload owner lock (see
    /// [`crate::files::sweep`]), recorded in every upload intent.
    pub upload_owner_lock: i32,
    /// Upper bound of any upload (buckets have their own, lower limits).
    pub upload_max_bytes: u64,
    /// Time limit of upload requests; also their statement timeout.
    pub upload_timeout: Duration,
    pub idempotency_ttl: Duration,
    pub import_batch_rows: u32,
    /// The database's vocabularies (read at startup), which request
    /// fields and the OpenAPI document take their terms from.
    pub vocabulary: Arc<Vocabulary>,
    /// The LLM gateway: the one way to call a model.
    pub llm: crate::llm::Gateway,
    /// The knowledge base's embedder (BIZOS_KB_MODEL_DIR); None: the
    /// knowledge-base search and answers are unavailable on this server.
    pub kb_embedder: Option<Arc<crate::kb::embed::Embedder>>,
    /// Reverse proxies whose X-Forwarded-For is believed (the client
    /// address API keys' allowed IPs are checked against).
    pub trusted_proxies: Arc<crate::api_keys::client_ip::TrustedProxies>,
    /// Webhooks: the master key that seals new signing secrets, the SSRF
    /// guard's setting.
    pub webhooks: crate::webhooks::Webhooks,
    /// Routing of tenants to their placements (the control database is
    /// `pool`'s).
    pub placements: crate::placement::Router,
    /// The operator API (None: BIZOS_OPERATOR_TOKEN unset, its routes 404).
    pub operator: Option<Arc<crate::placement::operator::OperatorApi>>,
    /// Sign-up, invitations by link and the first-party login.
    pub signup: crate::signup::Signup,
    /// The payment providers' webhook secrets.
    pub payments: Arc<crate::payments::PaymentSettings>,
}

impl AppState {
    /// File handling with this state's pool, store and upload limits.
    pub fn files(&self) -> Files {
        Files::new(
            self.pool.clone(),
            self.storage.clone(),
            self.upload_owner_lock,
            self.upload_max_bytes,
        )
    }
}

/// The verifier the [`crate::auth::Caller`] extractor checks tokens with.
impl FromRef<AppState> for Arc<JwtVerifier> {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}

/// What the [`crate::auth::Caller`] extractor needs to accept an API key.
impl FromRef<AppState> for KeyAuth {
    fn from_ref(state: &AppState) -> Self {
        KeyAuth {
            pool: state.pool.clone(),
            proxies: state.trusted_proxies.clone(),
            placements: Some(state.placements.clone()),
        }
    }
}

/// The router the [`crate::auth::Caller`] extractor hands every caller.
impl FromRef<AppState> for crate::placement::Router {
    fn from_ref(state: &AppState) -> Self {
        state.placements.clone()
    }
}

/// The vocabularies request fields are read with.
impl FromRef<AppState> for Arc<Vocabulary> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.vocabulary)
    }
}
