//! Billing over HTTP (tag `billing`; docs/billing.md): the operator's
//! subscriptions and invoices of its tenants, and a tenant's own.
//!
//! Operator (its token, [`super::operator::OperatorCaller`]; as the
//! control database's owner):
//! - `GET /api/operator/billing/subscriptions`: every subscribed tenant with
//!   plan, status, MRR, this month's AI cost and margin and overdue amount
//!   (`v_billing_tenants`).
//! - `GET /api/operator/billing/invoices?tenant_id=&status=`: invoices.
//! - `POST /api/operator/billing/tenants/{id}/plan`: change the plan from
//!   the tenant's today (prorated on the month-end invoice); a tenant
//!   placed in a schema or database of its own gets its row in control
//!   first, in its placement's time zone.
//! - `POST /api/operator/billing/tenants/{id}/interval`: bill the plan fee
//!   monthly or by the year (annual terms from the next period; back to
//!   monthly when the term running ends).
//! - `POST /api/operator/billing/month-end`: enqueue every tenant's
//!   `billing.month_end` job now (the schedule's run, by hand).
//! - `POST /api/operator/billing/invoices/{id}/finalize`, `.../void`,
//!   `GET .../pdf`.
//!
//! Tenant (any member; the rows are the control database's, read under
//! RLS there): `GET /api/billing/subscription`, `GET /api/billing/invoices`
//! (finalized, paid and void; never drafts), `GET
//! /api/billing/invoices/{id}/pdf`.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::openapi::ErrorResponse;
use super::operator::OperatorCaller;
use crate::auth::Caller;
use crate::billing::pdf;
use crate::db::read_as;
use crate::error::{ApiError, Result};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(operator_subscriptions))
        .routes(routes!(operator_invoices))
        .routes(routes!(operator_change_plan))
        .routes(routes!(operator_set_interval))
        .routes(routes!(operator_month_end))
        .routes(routes!(operator_finalize))
        .routes(routes!(operator_void))
        .routes(routes!(operator_pdf))
        .routes(routes!(my_subscription))
        .routes(routes!(my_invoices))
        .routes(routes!(my_pdf))
}

/// A tenant's subscription.
#[derive(Debug, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    tenant_id: Uuid,
    subscription_id: Uuid,
    plan_code: String,
    #[schema(value_type = crate::payload::BillingInterval)]
    billing_interval: String,
    #[schema(value_type = crate::payload::SubscriptionStatus)]
    status: String,
    /// The first day covered (tenant's time zone).
    started_on: NaiveDate,
    /// Null: no trial.
    trial_ends_at: Option<DateTime<Utc>>,
    /// The current billing period, [start, end) in the tenant's time zone.
    current_period_start: NaiveDate,
    current_period_end: NaiveDate,
    /// The first day billed by the year: annual terms of twelve months run
    /// from it. Null: billed monthly.
    annual_from: Option<NaiveDate>,
    /// The end of the last annual term once the interval goes back to
    /// monthly. Null: the terms renew.
    annual_until: Option<NaiveDate>,
}

/// The columns of [`Subscription`]: of `subscriptions`, and of the row the
/// billing functions return.
const SUBSCRIPTION: &str =
    "tenant_id, subscription_id, plan_code, billing_interval, status, started_on,
    trial_ends_at, current_period_start, current_period_end, annual_from, annual_until";

/// A subscribed tenant as the operator sees it (`v_billing_tenants`).
#[derive(Debug, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BillingTenant {
    tenant_id: Uuid,
    slug: String,
    name: String,
    plan_code: String,
    #[schema(value_type = crate::payload::BillingInterval)]
    billing_interval: String,
    #[schema(value_type = crate::payload::SubscriptionStatus)]
    status: String,
    current_period_start: NaiveDate,
    current_period_end: NaiveDate,
    trial_ends_at: Option<DateTime<Utc>>,
    /// Monthly recurring revenue: the plan's monthly price while paying
    /// (active, past_due, soft_locked), else 0.
    mrr: f64,
    currency: String,
    /// This month's AI cost (IDR) from the LLM ledger.
    ai_cost_month: f64,
    /// mrr - ai_cost_month.
    ai_margin_month: f64,
    /// Finalized invoices past their due date.
    overdue_amount: f64,
    overdue_invoices: i64,
    /// The annual window (see [`Subscription`]).
    annual_from: Option<NaiveDate>,
    annual_until: Option<NaiveDate>,
}

/// Subscribed tenants.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BillingTenantList {
    items: Vec<BillingTenant>,
}

/// A line of an operator invoice.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BillingInvoiceLine {
    position: i32,
    #[schema(value_type = crate::payload::BillingLineKind)]
    kind: String,
    /// States its rule (a proration: days of the period x monthly price / days).
    description: String,
    plan_code: Option<String>,
    metric_code: Option<String>,
    period_start: NaiveDate,
    period_end: NaiveDate,
    quantity: f64,
    unit: String,
    unit_price: f64,
    amount: f64,
}

/// An operator invoice to a tenant.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BillingInvoice {
    billing_invoice_id: Uuid,
    tenant_id: Uuid,
    /// BIL-<year>-<n>; null while a draft.
    invoice_no: Option<String>,
    #[schema(value_type = crate::payload::BillingInvoiceStatus)]
    status: String,
    period_start: NaiveDate,
    period_end: NaiveDate,
    currency: String,
    issue_date: Option<NaiveDate>,
    due_date: Option<NaiveDate>,
    subtotal: f64,
    /// 11/12 of the subtotal.
    dpp: f64,
    /// PPN: 12% of the DPP.
    tax: f64,
    total: f64,
    /// A draft is finalized once the billing clock passes this.
    finalize_after: DateTime<Utc>,
    void_reason: Option<String>,
    lines: Vec<BillingInvoiceLine>,
}

/// Operator invoices.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BillingInvoiceList {
    items: Vec<BillingInvoice>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InvoiceFilter {
    /// Only this tenant's.
    tenant_id: Option<Uuid>,
    /// Only invoices in this status.
    #[param(value_type = Option<crate::payload::BillingInvoiceStatus>)]
    status: Option<String>,
}

/// The plan a tenant changes to.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanChange {
    plan_code: String,
}

/// How often a tenant's plan fee is billed from the next period on.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntervalChange {
    #[schema(value_type = crate::payload::BillingInterval)]
    billing_interval: String,
}

/// Why an invoice is voided.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvoiceVoid {
    reason: String,
}

/// Month-end jobs enqueued.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MonthEndEnqueued {
    tenants: i32,
}

/// Invoices with their lines, as JSON (numbers as JSON numbers).
const INVOICES: &str = "select coalesce(jsonb_agg(to_jsonb(i) - 'subscription_id' - 'finalized_at' - 'paid_at'
                                     - 'voided_at' - 'emailed_at' - 'created_at' - 'updated_at'
                                     || jsonb_build_object('lines', (
                                          select coalesce(jsonb_agg(jsonb_build_object(
                                                   'position', l.position, 'kind', l.kind,
                                                   'description', l.description, 'plan_code', l.plan_code,
                                                   'metric_code', l.metric_code, 'period_start', l.period_start,
                                                   'period_end', l.period_end, 'quantity', l.quantity,
                                                   'unit', l.unit, 'unit_price', l.unit_price,
                                                   'amount', l.amount) order by l.position), '[]'::jsonb)
                                            from billing_invoice_lines l
                                           where l.tenant_id = i.tenant_id
                                             and l.billing_invoice_id = i.billing_invoice_id))
                                     order by i.period_start desc, i.billing_invoice_id), '[]'::jsonb)
                       from billing_invoices i";

fn pdf_response(doc: &pdf::InvoiceDoc) -> Response {
    let mut response = (StatusCode::OK, Body::from(pdf::render(doc))).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pdf"),
    );
    let name = format!("attachment; filename=\"{}.pdf\"", doc.invoice_no);
    if let Ok(v) = HeaderValue::from_str(&name) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The tenant of an invoice (operator routes name the invoice alone).
async fn tenant_of(pool: &sqlx::PgPool, invoice: Uuid) -> Result<Uuid> {
    sqlx::query_scalar("select tenant_id from billing_invoices where billing_invoice_id = $1")
        .bind(invoice)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such billing invoice".into()))
}

#[utoipa::path(get, path = "/api/operator/billing/subscriptions", tag = "billing", security(("operator" = [])),
    responses((status = 200, description = "every subscribed tenant: plan, status, MRR, AI cost and margin this month, overdue", body = BillingTenantList),
              (status = 401, description = "not the operator's token", body = ErrorResponse),
              (status = 404, description = "the operator API is off (no BIZOS_OPERATOR_TOKEN)", body = ErrorResponse)))]
async fn operator_subscriptions(OperatorCaller(api): OperatorCaller) -> Result<axum::Json<Value>> {
    let items: Value = sqlx::query_scalar(
        "select coalesce(jsonb_agg(to_jsonb(v) order by v.slug), '[]'::jsonb) from v_billing_tenants v",
    )
    .fetch_one(&api.operator.control)
    .await?;
    Ok(axum::Json(serde_json::json!({ "items": items })))
}

#[utoipa::path(get, path = "/api/operator/billing/invoices", tag = "billing", security(("operator" = [])),
    params(InvoiceFilter),
    responses((status = 200, description = "operator invoices with their lines, newest period first", body = BillingInvoiceList),
              (status = 401, description = "not the operator's token", body = ErrorResponse),
              (status = 404, description = "the operator API is off", body = ErrorResponse)))]
async fn operator_invoices(
    OperatorCaller(api): OperatorCaller,
    Query(filter): Query<InvoiceFilter>,
) -> Result<axum::Json<Value>> {
    let items: Value = sqlx::query_scalar(&format!(
        "{INVOICES} where ($1::uuid is null or i.tenant_id = $1) and ($2::text is null or i.status = lower($2))"
    ))
    .bind(filter.tenant_id)
    .bind(filter.status)
    .fetch_one(&api.operator.control)
    .await?;
    Ok(axum::Json(serde_json::json!({ "items": items })))
}

#[utoipa::path(post, path = "/api/operator/billing/tenants/{id}/plan", tag = "billing", security(("operator" = [])),
    params(("id" = Uuid, Path)), request_body = PlanChange,
    responses((status = 200, description = "the subscription on its new plan (from the tenant's today; prorated on the month-end invoice)", body = Subscription),
              (status = 401, description = "not the operator's token", body = ErrorResponse),
              (status = 404, description = "no such tenant, or the operator API is off", body = ErrorResponse),
              (status = 422, description = "no such plan, or the subscription is canceled (plan_code)", body = ErrorResponse)))]
async fn operator_change_plan(
    OperatorCaller(api): OperatorCaller,
    Path(id): Path<Uuid>,
    Json(req): Json<PlanChange>,
) -> Result<axum::Json<Subscription>> {
    // A tenant placed elsewhere has no row in control until its first
    // plan: its anchor is written in the zone its placement has.
    let in_control: bool =
        sqlx::query_scalar("select exists (select 1 from tenants where tenant_id = $1)")
            .bind(id)
            .fetch_one(&api.operator.control)
            .await?;
    let time_zone = if in_control {
        None
    } else {
        let shown = api.operator.show(id).await?;
        shown["tenant"]["time_zone"].as_str().map(str::to_owned)
    };
    let sub: Subscription = sqlx::query_as(&format!(
        "select {SUBSCRIPTION} from billing_change_plan($1, $2, $3)"
    ))
    .bind(id)
    .bind(&req.plan_code)
    .bind(time_zone)
    .fetch_one(&api.operator.control)
    .await?;
    Ok(axum::Json(sub))
}

#[utoipa::path(post, path = "/api/operator/billing/tenants/{id}/interval", tag = "billing", security(("operator" = [])),
    params(("id" = Uuid, Path)), request_body = IntervalChange,
    responses((status = 200, description = "the subscription: annual terms from the next period (annual_from), or back to monthly when the term running ends (annual_until)", body = Subscription),
              (status = 401, description = "not the operator's token", body = ErrorResponse),
              (status = 404, description = "no subscription for this tenant, or the operator API is off", body = ErrorResponse),
              (status = 422, description = "no such interval, or the subscription is canceled (billing_interval)", body = ErrorResponse)))]
async fn operator_set_interval(
    OperatorCaller(api): OperatorCaller,
    Path(id): Path<Uuid>,
    Json(req): Json<IntervalChange>,
) -> Result<axum::Json<Subscription>> {
    let sub: Subscription = sqlx::query_as(&format!(
        "select {SUBSCRIPTION} from billing_set_interval($1, $2)"
    ))
    .bind(id)
    .bind(&req.billing_interval)
    .fetch_one(&api.operator.control)
    .await?;
    Ok(axum::Json(sub))
}

#[utoipa::path(post, path = "/api/operator/billing/month-end", tag = "billing", security(("operator" = [])),
    responses((status = 202, description = "every subscribed tenant's billing.month_end job enqueued (one a tenant and day)", body = MonthEndEnqueued),
              (status = 401, description = "not the operator's token", body = ErrorResponse),
              (status = 404, description = "the operator API is off", body = ErrorResponse)))]
async fn operator_month_end(
    OperatorCaller(api): OperatorCaller,
) -> Result<(StatusCode, axum::Json<MonthEndEnqueued>)> {
    let tenants: i32 = sqlx::query_scalar("select billing_month_end_enqueue()")
        .fetch_one(&api.operator.control)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(MonthEndEnqueued { tenants }),
    ))
}

async fn one_invoice(pool: &sqlx::PgPool, invoice: Uuid) -> Result<Value> {
    let items: Value = sqlx::query_scalar(&format!("{INVOICES} where i.billing_invoice_id = $1"))
        .bind(invoice)
        .fetch_one(pool)
        .await?;
    items
        .get(0)
        .cloned()
        .ok_or_else(|| ApiError::NotFound("no such billing invoice".into()))
}

#[utoipa::path(post, path = "/api/operator/billing/invoices/{id}/finalize", tag = "billing", security(("operator" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "finalized now (numbered, e-mailed), without waiting for the grace period; a finalized one as it is", body = BillingInvoice),
              (status = 401, description = "not the operator's token", body = ErrorResponse),
              (status = 404, description = "no such invoice, or the operator API is off", body = ErrorResponse),
              (status = 422, description = "a void invoice cannot be finalized", body = ErrorResponse)))]
async fn operator_finalize(
    OperatorCaller(api): OperatorCaller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Value>> {
    let pool = &api.operator.control;
    let tenant = tenant_of(pool, id).await?;
    let status: String =
        sqlx::query_scalar("select status from billing_invoices where billing_invoice_id = $1")
            .bind(id)
            .fetch_one(pool)
            .await?;
    if status == "void" {
        return Err(ApiError::invalid(
            "status",
            "a void invoice cannot be finalized",
        ));
    }
    sqlx::query("select billing_finalize($1, $2)")
        .bind(tenant)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(axum::Json(one_invoice(pool, id).await?))
}

#[utoipa::path(post, path = "/api/operator/billing/invoices/{id}/void", tag = "billing", security(("operator" = [])),
    params(("id" = Uuid, Path)), request_body = InvoiceVoid,
    responses((status = 200, description = "voided (its number stays used)", body = BillingInvoice),
              (status = 401, description = "not the operator's token", body = ErrorResponse),
              (status = 404, description = "no such invoice, or the operator API is off", body = ErrorResponse),
              (status = 422, description = "no reason, or the invoice is paid or void already", body = ErrorResponse)))]
async fn operator_void(
    OperatorCaller(api): OperatorCaller,
    Path(id): Path<Uuid>,
    Json(req): Json<InvoiceVoid>,
) -> Result<axum::Json<Value>> {
    let pool = &api.operator.control;
    let tenant = tenant_of(pool, id).await?;
    sqlx::query("select billing_void($1, $2, $3)")
        .bind(tenant)
        .bind(id)
        .bind(&req.reason)
        .execute(pool)
        .await?;
    Ok(axum::Json(one_invoice(pool, id).await?))
}

#[utoipa::path(get, path = "/api/operator/billing/invoices/{id}/pdf", tag = "billing", security(("operator" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "the invoice as a PDF (a draft says DRAFT)", content_type = "application/pdf"),
              (status = 401, description = "not the operator's token", body = ErrorResponse),
              (status = 404, description = "no such invoice, or the operator API is off", body = ErrorResponse)))]
async fn operator_pdf(
    OperatorCaller(api): OperatorCaller,
    Path(id): Path<Uuid>,
) -> Result<Response> {
    let pool = &api.operator.control;
    let tenant = tenant_of(pool, id).await?;
    let doc = pdf::load(pool, tenant, id)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such billing invoice".into()))?;
    Ok(pdf_response(&doc))
}

/// The caller without its placement: billing rows are the control
/// database's whatever the tenant's tier.
fn in_control(caller: &Caller) -> Caller {
    Caller {
        placement: None,
        ..caller.clone()
    }
}

#[utoipa::path(get, path = "/api/billing/subscription", tag = "billing",
    responses((status = 200, description = "the tenant's subscription", body = Subscription),
              (status = 404, description = "the tenant has no subscription (no plan)", body = ErrorResponse)))]
#[tracing::instrument(skip(state, caller), fields(tenant_id = %caller.tenant_id))]
async fn my_subscription(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<Subscription>> {
    let tenant = caller.tenant_id;
    let sub: Option<Subscription> = read_as(&state.pool, &in_control(&caller), async |tx| {
        Ok(sqlx::query_as(&format!(
            "select {SUBSCRIPTION} from subscriptions where tenant_id = $1"
        ))
        .bind(tenant)
        .fetch_optional(tx)
        .await?)
    })
    .await?;
    sub.map(axum::Json)
        .ok_or_else(|| ApiError::NotFound("this organisation has no subscription".into()))
}

#[utoipa::path(get, path = "/api/billing/invoices", tag = "billing",
    responses((status = 200, description = "the tenant's invoices from the operator (finalized, paid, void; never drafts), newest period first", body = BillingInvoiceList)))]
#[tracing::instrument(skip(state, caller), fields(tenant_id = %caller.tenant_id))]
async fn my_invoices(State(state): State<AppState>, caller: Caller) -> Result<axum::Json<Value>> {
    let tenant = caller.tenant_id;
    let items: Value = read_as(&state.pool, &in_control(&caller), async |tx| {
        Ok(
            sqlx::query_scalar(&format!("{INVOICES} where i.tenant_id = $1"))
                .bind(tenant)
                .fetch_one(tx)
                .await?,
        )
    })
    .await?;
    Ok(axum::Json(serde_json::json!({ "items": items })))
}

#[utoipa::path(get, path = "/api/billing/invoices/{id}/pdf", tag = "billing",
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "the invoice as a PDF", content_type = "application/pdf"),
              (status = 404, description = "no such invoice of the tenant (drafts are the operator's)", body = ErrorResponse)))]
#[tracing::instrument(skip(state, caller), fields(tenant_id = %caller.tenant_id))]
async fn my_pdf(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<Response> {
    let tenant = caller.tenant_id;
    let doc = read_as(&state.pool, &in_control(&caller), async |tx| {
        Ok(pdf::load(tx, tenant, id).await?)
    })
    .await?
    .ok_or_else(|| ApiError::NotFound("no such billing invoice".into()))?;
    Ok(pdf_response(&doc))
}
