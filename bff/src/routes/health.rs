//! Liveness and readiness.

use axum::http::StatusCode;
use axum::routing::get;
use axum::{extract::State, Router};
use serde::Serialize;

use crate::extract::Json;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
}

/// The process is up; says nothing about its dependencies.
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(Serialize)]
pub struct Readiness {
    status: &'static str,
    database: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    schema_version: Option<i32>,
    expected_schema_version: i32,
}

/// Ready when the database answers and its schema is at least the version
/// this binary was built with (a newer schema is fine during a rollout).
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let expected = bizos_sql::latest_version();
    let version: Result<Option<i32>, sqlx::Error> =
        sqlx::query_scalar("select max(version) from refinery_schema_history")
            .fetch_one(&state.pool)
            .await;
    let (status, database, schema_version) = match version {
        Ok(Some(v)) if v >= expected => (StatusCode::OK, "ok", Some(v)),
        Ok(v) => (StatusCode::SERVICE_UNAVAILABLE, "migrations pending", v),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "unreachable", None)
        }
    };
    let ready = status == StatusCode::OK;
    (
        status,
        Json(Readiness {
            status: if ready { "ready" } else { "not ready" },
            database,
            schema_version,
            expected_schema_version: expected,
        }),
    )
}
