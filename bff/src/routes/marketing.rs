//! Marketing spend and marketing events (`sql/api/marketing.sql`): entered
//! here or imported (`POST /api/imports`, modules `marketing_spend` and
//! `marketing_events`), read by the spend, CPL and campaigns KPIs. Writing
//! needs `marketing.write` (super admins and marketing managers by
//! default); reading follows the tables' policies (spend: marketing,
//! managers, finance and directors; events: marketing, managers and
//! directors).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::openapi::ErrorResponse;
use super::route::{list_route, rpc_route};
use super::shapes::shapes;
use super::shapes::Numeric;
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

shapes! {
    /// A row of `marketing_spend`.
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
    pub struct SpendPage {
        items: Vec<Spend>,
        /// Pass as `after` for the next page; null on the last page.
        next_cursor: Option<String>,
    }

    /// A row of `marketing_activity_events`.
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
    pub struct MarketingEventPage {
        items: Vec<MarketingEvent>,
        /// Pass as `after` for the next page; null on the last page.
        next_cursor: Option<String>,
    }
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

rpc_route! {
    post "/api/marketing/spend", tag = "marketing",
    fn create_spend(SpendCreate) = "select marketing_spend_create($1)",
    responses((status = 201, description = "the spend recorded", body = Spend),
              (status = 403, description = "the role may not record marketing spend (marketing.write)", body = ErrorResponse),
              (status = 422, description = "a field is invalid (a date after today, a currency without a rate, ...)", body = ErrorResponse))
}

list_route! {
    get "/api/marketing/spend", tag = "marketing",
    fn list_spend("marketing_spend" by "spend_id") |list, f: SpendFilter| {
        list.filter("channel", "=", f.channel.map(Channel::into_string))
            .filter("campaign", "=", f.campaign)
            .filter("spend_date", ">=", f.from)
            .filter("spend_date", "<=", f.to);
    },
    responses((status = 200, description = "spend the caller may read, newest entry first", body = SpendPage))
}

rpc_route! {
    post "/api/marketing/events", tag = "marketing",
    fn create_event(EventCreate) = "select marketing_event_create($1)",
    responses((status = 201, description = "the event recorded", body = MarketingEvent),
              (status = 403, description = "the role may not record marketing events (marketing.write)", body = ErrorResponse),
              (status = 422, description = "a field is invalid", body = ErrorResponse))
}

list_route! {
    get "/api/marketing/events", tag = "marketing",
    fn list_events("marketing_activity_events" by "event_id") |list, f: EventFilter| {
        list.filter("channel", "=", f.channel.map(Channel::into_string))
            .filter("event_type", "=", f.event_type)
            .filter("campaign", "=", f.campaign)
            .filter("occurred_at", ">=", f.from)
            .filter("occurred_at", "<", f.to);
    },
    responses((status = 200, description = "marketing events the caller may read, newest entry first", body = MarketingEventPage))
}
