//! The worker's `/healthz` (the process is up), `/readyz` (it claims
//! jobs: started, not shutting down, and its database answers) and
//! `/metrics` (Prometheus: the process's series, see [`crate::metrics`],
//! with the queue depth of every kind sampled from the `job_queue` view at
//! scrape time; behind the bearer token `BIZOS_METRICS_TOKEN` when set).
//! An internal port, like the BFF's metrics listener: never the API.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use secrecy::SecretString;
use serde_json::{json, Value};
use sqlx::PgPool;

#[derive(Clone)]
pub struct Health {
    pool: PgPool,
    ready: Arc<AtomicBool>,
    metrics_token: Option<Arc<SecretString>>,
}

impl Health {
    pub fn new(pool: PgPool, metrics_token: Option<SecretString>) -> Self {
        Health {
            pool,
            ready: Arc::default(),
            metrics_token: metrics_token.map(Arc::new),
        }
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }
}

pub fn router(health: Health) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(health)
}

async fn readyz(State(h): State<Health>) -> (StatusCode, Json<Value>) {
    let claiming = h.ready.load(Ordering::SeqCst);
    let database = tokio::time::timeout(
        Duration::from_secs(2),
        sqlx::query_scalar::<_, i32>("select 1").fetch_one(&h.pool),
    )
    .await
    .map(|r| r.is_ok())
    .unwrap_or(false);
    let ready = claiming && database;
    (
        if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(json!({
            "status": if ready { "ready" } else { "not ready" },
            "claiming": claiming,
            "database": if database { "ok" } else { "unreachable" },
        })),
    )
}

/// The token is checked before the queue is counted (no query for a
/// refused scraper); a queue that cannot be counted in time leaves the
/// depth gauges at their last values and the scrape still answers.
async fn metrics(State(h): State<Health>, headers: HeaderMap) -> Response {
    let token = h.metrics_token.as_deref();
    if let Some(refused) = crate::metrics::refuse(token, &headers) {
        return refused;
    }
    match tokio::time::timeout(
        Duration::from_secs(5),
        crate::metrics::sample_queue(&h.pool),
    )
    .await
    {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "sampling the queue depth failed"),
        Err(_) => tracing::warn!("sampling the queue depth timed out"),
    }
    crate::metrics::scrape(&h.pool, token, &headers).into_response()
}
