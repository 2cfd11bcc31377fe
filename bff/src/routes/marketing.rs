//! Marketing spend and marketing events (`sql/api/marketing.sql`): entered
//! here or imported (`POST /api/imports`, modules `marketing_spend` and
//! `marketing_events`), read by the spend, CPL and campaigns KPIs. Writing
//! needs `marketing.write` (super admins and marketing managers by
//! default); reading follows the tables' policies (spend: marketing,
//! managers, finance and directors; events: marketing, managers and
//! directors).

use axum::extract::State;
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::list::{List, Page, Paged};
use super::openapi::ErrorResponse;
use super::shapes::Numeric;
use super::write::{body, Args, Call, Writer};
use crate::auth::Caller;
use crate::db::read_as;
use crate::error::Result;
use crate::extract::{Json, Query};
use crate::idempotency::IdempotencyKey;
use crate::payload::{Channel, Currency, Date, Int, PositiveAmount, Text};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_spend, list_spend))
        .routes(routes!(create_event, list_events))
}

/// `marketing_spend_create`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpendCreate {
    /// A lead channel: the CPL divides a channel's spend by its leads.
    channel: Channel,
    /// The day it was paid, in the tenant's time zone; not after the
    /// tenant's today.
    spend_date: Date,
    amount: PositiveAmount,
    /// IDR (the default) or a currency with an exchange rate to IDR on the
    /// spend date (the KPIs count spend in rupiah).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    currency: Option<Currency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    campaign: Option<Text<200>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    notes: Option<Text<2000>>,
}

/// `marketing_event_create`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventCreate {
    /// A lead channel.
    channel: Channel,
    /// campaign_launch, post, ad, email_blast, webinar, expo, press or
    /// other (campaign_launch counts in the campaigns-launched KPI).
    event_type: Text<30>,
    /// RFC 3339 with its offset, or a date (`2026-03-05`) or local date and
    /// time (`2026-03-05 10:00`) in the tenant's time zone.
    occurred_at: Text<40>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    campaign: Option<Text<200>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reach: Option<Int<0, 999_999_999>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    clicks: Option<Int<0, 999_999_999>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    notes: Option<Text<2000>>,
}

/// A row of `marketing_spend`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct Spend {
    tenant_id: Uuid,
    spend_id: Uuid,
    channel: String,
    spend_date: NaiveDate,
    /// In `currency`.
    amount: Numeric,
    currency: String,
    /// In rupiah at the exchange rate of the spend date (what the KPIs sum).
    amount_idr: Numeric,
    campaign: Option<String>,
    notes: Option<String>,
    created_by: Option<Uuid>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// One page of spend.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct SpendPage {
    items: Vec<Spend>,
    /// Pass as `after` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// A row of `marketing_activity_events`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct MarketingEvent {
    tenant_id: Uuid,
    event_id: Uuid,
    channel: String,
    event_type: String,
    campaign: Option<String>,
    occurred_at: DateTime<Utc>,
    reach: Option<i32>,
    clicks: Option<i32>,
    notes: Option<String>,
    created_by: Option<Uuid>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// One page of marketing events.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct MarketingEventPage {
    items: Vec<MarketingEvent>,
    /// Pass as `after` for the next page; null on the last page.
    next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SpendFilter {
    channel: Option<Channel>,
    campaign: Option<String>,
    /// Spent on or after (YYYY-MM-DD).
    from: Option<NaiveDate>,
    /// Spent on or before (YYYY-MM-DD).
    to: Option<NaiveDate>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventFilter {
    channel: Option<Channel>,
    event_type: Option<String>,
    campaign: Option<String>,
    /// At or after (RFC 3339).
    from: Option<DateTime<Utc>>,
    /// Before (RFC 3339).
    to: Option<DateTime<Utc>>,
}

#[utoipa::path(post, path = "/api/marketing/spend", tag = "marketing", request_body = SpendCreate,
    params(IdempotencyKey),
    responses((status = 201, description = "the spend recorded", body = Spend),
              (status = 403, description = "the role may not record marketing spend (marketing.write)", body = ErrorResponse),
              (status = 422, description = "a field is invalid (a date after today, a currency without a rate, ...)", body = ErrorResponse)))]
async fn create_spend(write: Writer, Json(spend): Json<SpendCreate>) -> Result<Response> {
    let call = Call::post(
        "select marketing_spend_create($1)",
        Args::Body(body(&spend)?),
    );
    write.rpc(call.created()).await
}

#[utoipa::path(get, path = "/api/marketing/spend", tag = "marketing", params(SpendFilter, Page),
    responses((status = 200, description = "spend the caller may read, newest entry first", body = SpendPage)))]
async fn list_spend(
    State(state): State<AppState>,
    caller: Caller,
    Query(f): Query<SpendFilter>,
    Query(page): Query<Page>,
) -> Result<Json<Paged>> {
    let mut list = List::new("marketing_spend", "spend_id", caller.tenant_id);
    list.filter("channel", "=", f.channel.map(Channel::into_string))
        .filter("campaign", "=", f.campaign)
        .filter("spend_date", ">=", f.from)
        .filter("spend_date", "<=", f.to);
    let page = read_as(&state.pool, &caller, async |tx| list.fetch(tx, page).await).await?;
    Ok(Json(page))
}

#[utoipa::path(post, path = "/api/marketing/events", tag = "marketing", request_body = EventCreate,
    params(IdempotencyKey),
    responses((status = 201, description = "the event recorded", body = MarketingEvent),
              (status = 403, description = "the role may not record marketing events (marketing.write)", body = ErrorResponse),
              (status = 422, description = "a field is invalid", body = ErrorResponse)))]
async fn create_event(write: Writer, Json(event): Json<EventCreate>) -> Result<Response> {
    let call = Call::post(
        "select marketing_event_create($1)",
        Args::Body(body(&event)?),
    );
    write.rpc(call.created()).await
}

#[utoipa::path(get, path = "/api/marketing/events", tag = "marketing", params(EventFilter, Page),
    responses((status = 200, description = "marketing events the caller may read, newest entry first", body = MarketingEventPage)))]
async fn list_events(
    State(state): State<AppState>,
    caller: Caller,
    Query(f): Query<EventFilter>,
    Query(page): Query<Page>,
) -> Result<Json<Paged>> {
    let mut list = List::new("marketing_activity_events", "event_id", caller.tenant_id);
    list.filter("channel", "=", f.channel.map(Channel::into_string))
        .filter("event_type", "=", f.event_type)
        .filter("campaign", "=", f.campaign)
        .filter("occurred_at", ">=", f.from)
        .filter("occurred_at", "<", f.to);
    let page = read_as(&state.pool, &caller, async |tx| list.fetch(tx, page).await).await?;
    Ok(Json(page))
}
