//! Background jobs as their users see them: `GET /api/jobs/{id}` (v_jobs
//! under RLS: the creator, managers of their team, super admins and
//! directors of the tenant).

use axum::extract::State;
use serde_json::Value;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::openapi::ErrorResponse;
use super::responses::JobState;
use crate::auth::Caller;
use crate::db::read_optional;
use crate::error::{ApiError, Result};
use crate::extract::{Json, Path};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_job))
}

#[utoipa::path(get, path = "/api/jobs/{id}", tag = "jobs", params(("id" = Uuid, Path)),
    responses((status = 200, description = "status, attempts, progress and the last error", body = JobState),
              (status = 404, description = "no such job (or not visible)", body = ErrorResponse)))]
async fn get_job(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<Json<Value>> {
    let job: Option<Value> = read_optional(
        &state.pool,
        &caller,
        sqlx::query_scalar(
            "select to_jsonb(v) from v_jobs v where v.tenant_id = $2 and v.job_id = $1",
        )
        .bind(id)
        .bind(caller.tenant_id),
    )
    .await?;
    job.map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no job {id}")))
}
