//! The worker's `/healthz` (the process is up) and `/readyz` (it claims
//! jobs: started, not shutting down, and its database answers).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use sqlx::PgPool;

#[derive(Clone)]
pub struct Health {
    pool: PgPool,
    ready: Arc<AtomicBool>,
}

impl Health {
    pub fn new(pool: PgPool) -> Self {
        Health {
            pool,
            ready: Arc::default(),
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
