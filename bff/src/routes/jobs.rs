//! Background jobs as their users see them: `GET /api/jobs/{id}` (v_jobs
//! under RLS: the creator, managers of their team, super admins and
//! directors of the tenant).

use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::openapi::ErrorResponse;
use super::route::read_route;
use super::shapes::shapes;
use crate::state::AppState;
use chrono::DateTime;
use chrono::Utc;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_job))
}

read_route! {
    get "/api/jobs/{id}", tag = "jobs",
    fn get_job(id) =
        "select to_jsonb(v) from v_jobs v where v.tenant_id = $2 and v.job_id = $1",
    missing = "no job",
    responses((status = 200, description = "status, attempts, progress and the last error", body = JobState),
              (status = 404, description = "no such job (or not visible)", body = ErrorResponse))
}

// ------------------------------------------------------------------ responses
// The documented shapes of what the database returns (see shapes.rs).

shapes! {
    /// A background job's state (`v_jobs`).
    pub struct JobState {
        job_id: Uuid,
        tenant_id: Uuid,
        kind: crate::payload::JobKind,
        status: crate::payload::JobStatus,
        /// Higher runs first within the tenant.
        priority: i32,
        /// Claims so far.
        attempts: i32,
        /// Claims before the job is dead-lettered.
        max_attempts: i32,
        /// Not started before this time (retries wait here).
        run_at: DateTime<Utc>,
        progress_done: Option<i64>,
        progress_total: Option<i64>,
        /// The error of the last failed attempt.
        last_error: Option<String>,
        dedup_key: Option<String>,
        created_by: Option<Uuid>,
        /// The x-request-id of the request that enqueued it.
        request_id: Option<String>,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
        started_at: Option<DateTime<Utc>>,
        finished_at: Option<DateTime<Utc>>,
    }
}
