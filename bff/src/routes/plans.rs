//! The operator's plan catalogue over HTTP (tag `billing`; docs/billing.md,
//! "Plans"): list the plans with their metered prices, create a plan,
//! change its terms, set or remove a metric's overage price, retire it and
//! put it back on sale.
//! Operator's token only ([`super::operator::OperatorCaller`]), run as the
//! control database's owner. The rules are the database's
//! (`sql/api/usage.sql`, `plan_*`): each field checked and named, a code
//! in use refused, every change recorded in `plan_history` with the
//! request's `x-request-id`; a retired plan takes no new tenant
//! (`tenants_plan_on_sale`), and no plan is ever deleted.
//!
//! - `GET /api/operator/billing/plans`
//! - `POST /api/operator/billing/plans`
//! - `PATCH /api/operator/billing/plans/{code}`
//! - `PUT /api/operator/billing/plans/{code}/metrics/{metric}`
//! - `DELETE /api/operator/billing/plans/{code}/metrics/{metric}`
//! - `POST /api/operator/billing/plans/{code}/retire`
//! - `POST /api/operator/billing/plans/{code}/reinstate`: back on sale.
//! - `GET /api/operator/billing/plans/{code}/history`: the changes
//!   recorded in `plan_history`, newest first.

use axum::http::{HeaderMap, StatusCode};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::postgres::PgArguments;
use sqlx::query::QueryScalar;
use sqlx::Postgres;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::openapi::ErrorResponse;
use super::operator::OperatorCaller;
use super::shapes::{shapes, Numeric};
use crate::error::{ApiError, Result};
use crate::extract::{Json, Path};
use crate::payload::{Change, Int, NonBlank, NonNegativeAmount, Number, Patch};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_plans, create_plan))
        .routes(routes!(update_plan))
        .routes(routes!(set_plan_metric, remove_plan_metric))
        .routes(routes!(retire_plan))
        .routes(routes!(reinstate_plan))
        .routes(routes!(plan_history))
}

/// A new plan (prices in IDR).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanCreate {
    /// A lower-case letter, then letters, digits, `_` or `-` (at most 40);
    /// never reused.
    plan_code: NonBlank<40>,
    label: NonBlank<200>,
    /// IDR a month.
    monthly_price: NonNegativeAmount,
    /// IDR a year, paid at once.
    annual_price: NonNegativeAmount,
    /// Days of free trial a new subscription starts with (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trial_days: Option<Int<0, 365>>,
    /// Active users; null or absent: no cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    included_seats: Option<Int<1, 2147483647>>,
    /// AI generations a tenant-local day; null or absent: no cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ai_generations_per_day: Option<Int<0, 2147483647>>,
    /// AI tokens a tenant-local month; null or absent: no cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ai_tokens_per_month: Option<Int<0, 999999999999999>>,
    /// Bytes of stored files; null or absent: no cap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    storage_quota_bytes: Option<Int<0, 999999999999999>>,
    /// Feature flags (lower-case names, at most 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    features: Option<Vec<NonBlank<40>>>,
}

/// A plan's terms: only the keys sent change (at least one). A price
/// applies to every period closed after the change; caps and flags hold
/// at once.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanPatch {
    #[serde(default, skip_serializing_if = "Change::is_absent")]
    #[schema(value_type = NonBlank<200>)]
    label: Change<NonBlank<200>>,
    #[serde(default, skip_serializing_if = "Change::is_absent")]
    #[schema(value_type = NonNegativeAmount)]
    monthly_price: Change<NonNegativeAmount>,
    #[serde(default, skip_serializing_if = "Change::is_absent")]
    #[schema(value_type = NonNegativeAmount)]
    annual_price: Change<NonNegativeAmount>,
    /// For subscriptions started from now on.
    #[serde(default, skip_serializing_if = "Change::is_absent")]
    #[schema(value_type = Int<0, 365>)]
    trial_days: Change<Int<0, 365>>,
    /// null removes the cap.
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    #[schema(value_type = Option<Int<1, 2147483647>>)]
    included_seats: Patch<Int<1, 2147483647>>,
    /// null removes the cap.
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    #[schema(value_type = Option<Int<0, 2147483647>>)]
    ai_generations_per_day: Patch<Int<0, 2147483647>>,
    /// null removes the cap.
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    #[schema(value_type = Option<Int<0, 999999999999999>>)]
    ai_tokens_per_month: Patch<Int<0, 999999999999999>>,
    /// null removes the cap.
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    #[schema(value_type = Option<Int<0, 999999999999999>>)]
    storage_quota_bytes: Patch<Int<0, 999999999999999>>,
    /// The whole set of flags (null or []: none).
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    #[schema(value_type = Option<Vec<NonBlank<40>>>)]
    features: Patch<Vec<NonBlank<40>>>,
}

/// What a period of the plan includes of a billable metric and the price
/// of each unit over it: only the keys sent change (a new metric starts at
/// 0 and 0).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanMetricSet {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Number<4, 2>>)]
    included: Option<Number<4, 2>>,
    /// IDR a unit over `included`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Number<6, 2>>)]
    unit_price: Option<Number<6, 2>>,
}

/// Whether a plan takes new tenants.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum PlanStatus {
    OnSale,
    Retired,
}

shapes! {
    /// A plan of the catalogue.
    pub struct Plan {
        plan_code: String,
        label: String,
        /// IDR.
        currency: String,
        monthly_price: Numeric,
        annual_price: Numeric,
        trial_days: i32,
        /// Null: no cap (also below).
        included_seats: Option<i32>,
        ai_generations_per_day: Option<i32>,
        ai_tokens_per_month: Option<i64>,
        storage_quota_bytes: Option<i64>,
        features: Vec<String>,
        /// retired: no new tenants, sign-ups or plan changes to it; its
        /// tenants keep it and are billed.
        status: PlanStatus,
        retired_at: Option<DateTime<Utc>>,
        /// Tenants on the plan now.
        tenants: i64,
        /// Metered charges, by metric code.
        metrics: Vec<PlanMetric>,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
    }

    /// A metered charge of a plan.
    pub struct PlanMetric {
        metric_code: String,
        label: String,
        unit: String,
        /// The quantity a period includes.
        included: Numeric,
        /// IDR a unit over it.
        unit_price: Numeric,
    }

    /// Every plan: on sale first, then retired; by code.
    pub struct PlanList {
        items: Vec<Plan>,
    }

    /// One change of the catalogue by the operator.
    pub struct PlanChangeRecord {
        history_id: Uuid,
        plan_code: String,
        /// The metered charge changed (metric_set, metric_remove).
        metric_code: Option<String>,
        action: PlanAction,
        /// The plan before (null: created).
        before: Option<Plan>,
        after: Option<Plan>,
        /// The database login that made it.
        changed_by: String,
        /// The x-request-id of the operator's request.
        request_id: Option<String>,
        changed_at: DateTime<Utc>,
    }

    /// A plan's changes, newest first.
    pub struct PlanHistory {
        items: Vec<PlanChangeRecord>,
    }
}

/// What the operator did to the catalogue.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum PlanAction {
    Create,
    Update,
    MetricSet,
    MetricRemove,
    Retire,
}

/// Runs one catalogue function as the owner, in a transaction that carries
/// the request's id into `plan_history`.
async fn write(
    OperatorCaller(api): OperatorCaller,
    headers: &HeaderMap,
    query: QueryScalar<'_, Postgres, Option<Value>, PgArguments>,
) -> Result<Value> {
    let mut tx = api.operator.control.begin().await?;
    if let Some(id) = headers.get("x-request-id").and_then(|v| v.to_str().ok()) {
        sqlx::query("select set_config('request.id', $1, true)")
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    let plan = query.fetch_one(&mut *tx).await?;
    tx.commit().await?;
    plan.ok_or_else(|| ApiError::NotFound("no such plan".into()))
}

fn body<T: Serialize>(body: &T) -> Result<Value> {
    super::write::body(body)
}

#[utoipa::path(get, path = "/api/operator/billing/plans", tag = "billing", security(("operator" = [])),
    responses((status = 200, description = "every plan with its metered prices, status and tenants on it", body = PlanList),
              (status = 401, description = "not the operator's token", body = ErrorResponse),
              (status = 404, description = "the operator API is off (no BIZOS_OPERATOR_TOKEN)", body = ErrorResponse)))]
async fn list_plans(OperatorCaller(api): OperatorCaller) -> Result<axum::Json<Value>> {
    let items: Value = sqlx::query_scalar("select plans_list()")
        .fetch_one(&api.operator.control)
        .await?;
    Ok(axum::Json(serde_json::json!({ "items": items })))
}

#[utoipa::path(post, path = "/api/operator/billing/plans", tag = "billing", security(("operator" = [])),
    request_body = PlanCreate,
    responses((status = 201, description = "the plan, on sale (its metered prices are set one by one)", body = Plan),
              (status = 401, description = "not the operator's token", body = ErrorResponse),
              (status = 404, description = "the operator API is off", body = ErrorResponse),
              (status = 409, description = "a plan with this code exists (plan_code)", body = ErrorResponse),
              (status = 422, description = "a field is invalid (named in field)", body = ErrorResponse)))]
async fn create_plan(
    operator: OperatorCaller,
    headers: HeaderMap,
    Json(req): Json<PlanCreate>,
) -> Result<(StatusCode, axum::Json<Value>)> {
    let args = body(&req)?;
    let plan = write(
        operator,
        &headers,
        sqlx::query_scalar("select plan_create($1)").bind(args),
    )
    .await?;
    Ok((StatusCode::CREATED, axum::Json(plan)))
}

#[utoipa::path(patch, path = "/api/operator/billing/plans/{code}", tag = "billing", security(("operator" = [])),
    params(("code" = String, Path, description = "the plan's code")), request_body = PlanPatch,
    responses((status = 200, description = "the plan with its new terms (a price applies to every period closed from now on; closed invoices keep theirs)", body = Plan),
              (status = 401, description = "not the operator's token", body = ErrorResponse),
              (status = 404, description = "no such plan, or the operator API is off", body = ErrorResponse),
              (status = 422, description = "a field is invalid, or nothing to change", body = ErrorResponse)))]
async fn update_plan(
    operator: OperatorCaller,
    headers: HeaderMap,
    Path(code): Path<String>,
    Json(req): Json<PlanPatch>,
) -> Result<axum::Json<Value>> {
    let args = body(&req)?;
    let plan = write(
        operator,
        &headers,
        sqlx::query_scalar("select plan_update($1, $2)")
            .bind(code)
            .bind(args),
    )
    .await?;
    Ok(axum::Json(plan))
}

#[utoipa::path(put, path = "/api/operator/billing/plans/{code}/metrics/{metric}", tag = "billing", security(("operator" = [])),
    params(("code" = String, Path, description = "the plan's code"),
           ("metric" = String, Path, description = "a billable metric's code")),
    request_body = PlanMetricSet,
    responses((status = 200, description = "the plan with the metric's included quantity and overage price set", body = Plan),
              (status = 401, description = "not the operator's token", body = ErrorResponse),
              (status = 404, description = "no such plan, or the operator API is off", body = ErrorResponse),
              (status = 422, description = "an unknown metric (metric_code), a bad number (included, unit_price), or nothing to set", body = ErrorResponse)))]
async fn set_plan_metric(
    operator: OperatorCaller,
    headers: HeaderMap,
    Path((code, metric)): Path<(String, String)>,
    Json(req): Json<PlanMetricSet>,
) -> Result<axum::Json<Value>> {
    let args = body(&req)?;
    let plan = write(
        operator,
        &headers,
        sqlx::query_scalar("select plan_metric_set($1, $2, $3)")
            .bind(code)
            .bind(metric)
            .bind(args),
    )
    .await?;
    Ok(axum::Json(plan))
}

#[utoipa::path(delete, path = "/api/operator/billing/plans/{code}/metrics/{metric}", tag = "billing", security(("operator" = [])),
    params(("code" = String, Path, description = "the plan's code"),
           ("metric" = String, Path, description = "a billable metric's code")),
    responses((status = 200, description = "the plan without the metered charge (its usage is no longer billed from the next close on)", body = Plan),
              (status = 401, description = "not the operator's token", body = ErrorResponse),
              (status = 404, description = "no such plan, the plan charges no such metric, or the operator API is off", body = ErrorResponse)))]
async fn remove_plan_metric(
    operator: OperatorCaller,
    headers: HeaderMap,
    Path((code, metric)): Path<(String, String)>,
) -> Result<axum::Json<Value>> {
    let plan = write(
        operator,
        &headers,
        sqlx::query_scalar("select plan_metric_remove($1, $2)")
            .bind(code)
            .bind(metric),
    )
    .await?;
    Ok(axum::Json(plan))
}

#[utoipa::path(post, path = "/api/operator/billing/plans/{code}/retire", tag = "billing", security(("operator" = [])),
    params(("code" = String, Path, description = "the plan's code")),
    responses((status = 200, description = "the plan, retired: no new tenants, sign-ups or plan changes to it; its tenants keep it and are billed (retiring again changes nothing)", body = Plan),
              (status = 401, description = "not the operator's token", body = ErrorResponse),
              (status = 404, description = "no such plan, or the operator API is off", body = ErrorResponse)))]
async fn retire_plan(
    operator: OperatorCaller,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> Result<axum::Json<Value>> {
    on_sale(operator, &headers, code, false).await
}

#[utoipa::path(post, path = "/api/operator/billing/plans/{code}/reinstate", tag = "billing", security(("operator" = [])),
    params(("code" = String, Path, description = "the plan's code")),
    responses((status = 200, description = "the plan, back on sale: new tenants, sign-ups and plan changes may take it again (reinstating a plan on sale changes nothing)", body = Plan),
              (status = 401, description = "not the operator's token", body = ErrorResponse),
              (status = 404, description = "no such plan, or the operator API is off", body = ErrorResponse)))]
async fn reinstate_plan(
    operator: OperatorCaller,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> Result<axum::Json<Value>> {
    on_sale(operator, &headers, code, true).await
}

/// Retires the plan or puts it back on sale (`plan_on_sale`).
async fn on_sale(
    operator: OperatorCaller,
    headers: &HeaderMap,
    code: String,
    on_sale: bool,
) -> Result<axum::Json<Value>> {
    let plan = write(
        operator,
        headers,
        sqlx::query_scalar("select plan_on_sale($1, $2)")
            .bind(code)
            .bind(on_sale),
    )
    .await?;
    Ok(axum::Json(plan))
}

#[utoipa::path(get, path = "/api/operator/billing/plans/{code}/history", tag = "billing", security(("operator" = [])),
    params(("code" = String, Path, description = "the plan's code")),
    responses((status = 200, description = "the operator's changes of the plan (plan_history), newest first", body = PlanHistory),
              (status = 401, description = "not the operator's token", body = ErrorResponse),
              (status = 404, description = "no such plan, or the operator API is off", body = ErrorResponse)))]
async fn plan_history(
    OperatorCaller(api): OperatorCaller,
    Path(code): Path<String>,
) -> Result<axum::Json<Value>> {
    let items: Option<Value> = sqlx::query_scalar("select plan_history_of($1)")
        .bind(code)
        .fetch_one(&api.operator.control)
        .await?;
    let items = items.ok_or_else(|| ApiError::NotFound("no such plan".into()))?;
    Ok(axum::Json(serde_json::json!({ "items": items })))
}
