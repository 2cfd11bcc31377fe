//! The CEO digest card (AI-1), for the tenant's directors and super admins
//! (`digest.read`):
//! - `GET /api/digest/latest`: the newest digest;
//! - `GET /api/digest?date=YYYY-MM-DD`: the digest of a business day;
//! - `POST /api/digest` {day?}: the digest of a past business day on
//!   demand: 202 with the `digest.build` job (the daily schedule's job, for
//!   that day) and its Location, `GET /api/jobs/{id}`; requests for the
//!   same day while its job is queued or running (or after it succeeded)
//!   get that job (`digest_request`).
//!
//! The worker writes digests (`bizos_bff::digest`); the GET routes only
//! read them, under the caller's claims.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::openapi::ErrorResponse;
use crate::auth::Caller;
use crate::db::read_one;
use crate::error::{ApiError, Result};
use crate::extract::{Json, Query};
use crate::idempotency::{self, Done, IdempotencyKey};
use crate::payload::{blank_is_none, Date, JobStatus};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(latest))
        .routes(routes!(for_day, request))
}

/// Where the insights came from.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DigestSource {
    /// All three from a model (every number checked).
    Model,
    /// Some replaced by deterministic insights.
    Mixed,
    /// No model answered: all three deterministic.
    Fallback,
}

/// One insight: its text and the figures (paths into `aggregates`) it cites.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DigestInsight {
    text: String,
    figures: Vec<String>,
    /// model or fallback.
    source: String,
}

/// A digest card.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Digest {
    /// The business day summarised (tenant-local).
    digest_date: chrono::NaiveDate,
    /// id or en.
    locale: String,
    source: DigestSource,
    /// Exactly three.
    insights: Vec<DigestInsight>,
    /// The figures as the database computed them (`digest_aggregates`).
    aggregates: DigestAggregates,
    /// Whether the e-mail to the directors and super admins was queued.
    emailed: bool,
    created_at: chrono::DateTime<chrono::Utc>,
}

/// What a digest summarises (sql/api/digest.sql explains every figure).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DigestAggregates {
    /// The business day.
    day: chrono::NaiveDate,
    /// The business day before (the day's comparison).
    prev_day: chrono::NaiveDate,
    /// The month to date runs from here to `day`.
    month_start: chrono::NaiveDate,
    /// The previous month to date: these days.
    prev_month_start: chrono::NaiveDate,
    prev_month_end: chrono::NaiveDate,
    /// IDR: amounts are rupiah.
    currency: String,
    time_zone: String,
    locale: String,
    /// Every figure by name (revenue_invoiced_mtd, ar_overdue,
    /// sla_breaches_day, ..._change_pct, ...); null when it cannot be
    /// computed (a change against 0, an attainment without a target).
    figures: std::collections::BTreeMap<String, Option<f64>>,
    /// The five largest customers by revenue invoiced month to date.
    top_customers: Vec<DigestTopCustomer>,
    /// The five largest overdue balances.
    largest_overdue: Vec<DigestOverdueCustomer>,
    /// KPI attainment per metric with a target running on the day.
    kpi: Vec<DigestKpi>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DigestTopCustomer {
    customer_id: uuid::Uuid,
    company_name: String,
    invoiced_mtd: f64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DigestOverdueCustomer {
    customer_id: uuid::Uuid,
    company_name: String,
    overdue: f64,
    /// Of the customer's oldest overdue invoice.
    days_past_due: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DigestKpi {
    metric_key: String,
    name: String,
    /// higher or lower is better.
    direction: String,
    targets: i64,
    /// Average of actual / target x 100 over the targets.
    attainment_pct: f64,
    /// Of the targets, on the tenant's today (`target_status` of
    /// `GET /api/kpi/progress`): still running,
    in_progress: i64,
    /// over and reached,
    achieved: i64,
    /// over and not reached.
    missed: i64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DigestQuery {
    /// The business day, YYYY-MM-DD.
    #[param(value_type = String, format = Date)]
    date: Date,
}

/// The digest of a day, on demand.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DigestRequest {
    /// The business day (YYYY-MM-DD, tenant-local) [default: the last
    /// business day before the tenant's today, the day the next scheduled
    /// digest summarises]. Must be over (before the tenant's today) and not
    /// before the tenant existed.
    #[serde(
        default,
        deserialize_with = "blank_is_none",
        skip_serializing_if = "Option::is_none"
    )]
    day: Option<Date>,
}

/// The job that builds the digest (`Location`: `GET /api/jobs/{id}`); once
/// it succeeded, `GET /api/digest?date=` answers with the card.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct DigestRequested {
    /// The digest.build job (GET /api/jobs/{id}).
    job_id: uuid::Uuid,
    /// The business day it summarises.
    day: chrono::NaiveDate,
    /// The job's status now: queued for a new job; a repeated request for
    /// the same day gets the same job in whatever status it has reached.
    status: JobStatus,
}

/// One digest function's answer: the card, or 404.
async fn read(
    state: &AppState,
    caller: &Caller,
    sql: &str,
    day: Option<Date>,
) -> Result<Json<Digest>> {
    let mut query = sqlx::query_scalar::<_, Option<Value>>(sql);
    if let Some(day) = day {
        query = query.bind(day.0);
    }
    let found = read_one(&state.pool, caller, query).await?;
    let value = found.ok_or_else(|| ApiError::NotFound("no digest for that day".into()))?;
    let digest: Digest = serde_json::from_value(value).map_err(anyhow::Error::from)?;
    Ok(Json(digest))
}

#[utoipa::path(get, path = "/api/digest/latest", tag = "digest",
    responses((status = 200, description = "the newest digest of the tenant", body = Digest),
              (status = 403, description = "the caller may not read digests (digest.read)", body = ErrorResponse),
              (status = 404, description = "no digest yet", body = ErrorResponse)))]
#[tracing::instrument(skip(state, caller), fields(user_id = %caller.user_id, tenant_id = %caller.tenant_id))]
async fn latest(State(state): State<AppState>, caller: Caller) -> Result<Json<Digest>> {
    read(&state, &caller, "select digest_latest()", None).await
}

#[utoipa::path(get, path = "/api/digest", tag = "digest", params(DigestQuery),
    responses((status = 200, description = "the digest of the business day", body = Digest),
              (status = 403, description = "the caller may not read digests (digest.read)", body = ErrorResponse),
              (status = 404, description = "no digest for that day", body = ErrorResponse)))]
#[tracing::instrument(skip(state, caller), fields(user_id = %caller.user_id, tenant_id = %caller.tenant_id))]
async fn for_day(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<DigestQuery>,
) -> Result<Json<Digest>> {
    read(&state, &caller, "select digest_for($1)", Some(q.date)).await
}

#[utoipa::path(post, path = "/api/digest", tag = "digest", request_body = DigestRequest,
    params(IdempotencyKey),
    responses((status = 202, description = "a digest.build job of the day (the same job while one is queued or running, or once it succeeded); Location: GET /api/jobs/{id}", body = DigestRequested,
                headers(("Location" = String, description = "the job: /api/jobs/{job_id}"))),
              (status = 403, description = "the caller may not read digests (digest.read)", body = ErrorResponse),
              (status = 422, description = "day: not over yet in the tenant's time zone, or before the tenant existed", body = ErrorResponse)))]
#[tracing::instrument(skip(state, caller, key, req), fields(user_id = %caller.user_id, tenant_id = %caller.tenant_id))]
async fn request(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Json(req): Json<DigestRequest>,
) -> Result<Response> {
    let payload = super::write::body(&req)?;
    let fingerprint = key.json(&payload);
    let mut response = idempotency::run(&state, &caller, fingerprint, async |conn| {
        let job: Value = crate::telemetry::db_call(
            "digest_request",
            sqlx::query_scalar("select digest_request($1)")
                .bind(&payload)
                .fetch_one(&mut *conn),
        )
        .await?;
        Ok(Done::accepted(job))
    })
    .await?;
    // From the body, so a replayed answer has it too.
    let body = axum::body::to_bytes(std::mem::take(response.body_mut()), usize::MAX)
        .await
        .map_err(anyhow::Error::from)?;
    let job: Value = serde_json::from_slice(&body).map_err(anyhow::Error::from)?;
    if let Some(id) = job["job_id"].as_str() {
        response.headers_mut().insert(
            header::LOCATION,
            HeaderValue::from_str(&format!("/api/jobs/{id}")).map_err(anyhow::Error::from)?,
        );
    }
    *response.body_mut() = axum::body::Body::from(body);
    Ok(response)
}
