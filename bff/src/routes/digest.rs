//! The CEO digest card (AI-1), for the tenant's directors and super admins
//! (`digest.read`):
//! - `GET /api/digest/latest`: the newest digest;
//! - `GET /api/digest?date=YYYY-MM-DD`: the digest of a business day.
//!
//! The worker writes digests (`bizos_bff::digest`); these routes only read
//! them, under the caller's claims.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::openapi::ErrorResponse;
use crate::auth::Caller;
use crate::db::read_one;
use crate::error::{ApiError, Result};
use crate::extract::{Json, Query};
use crate::payload::Date;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(latest))
        .routes(routes!(for_day))
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
