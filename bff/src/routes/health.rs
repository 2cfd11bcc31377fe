//! Liveness and readiness.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::extract::Json;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// Liveness.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// ok
    status: &'static str,
}

/// The process is up; says nothing about its dependencies.
#[utoipa::path(get, path = "/healthz", tag = "meta", security(()),
    responses((status = 200, description = "the process is up", body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: the database answers and its schema is recent enough.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Readiness {
    /// ready or not ready
    status: &'static str,
    /// ok, migrations pending or unreachable
    database: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    schema_version: Option<i32>,
    expected_schema_version: i32,
}

#[utoipa::path(get, path = "/readyz", tag = "meta", security(()),
    responses((status = 200, description = "ready", body = Readiness),
              (status = 503, description = "not ready: the database is unreachable or migrations are pending", body = Readiness)))]
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
