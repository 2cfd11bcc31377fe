//! Usage metering (docs/billing-usage.md): a tenant's integration reports
//! usage events (`POST /api/v1/usage-events`, API key scope
//! `usage:write`; idempotent on each event's own id), and the tenant reads
//! its plan and the current month's usage against it
//! (`GET /api/billing/usage`). The database checks, stores and aggregates
//! (sql/api/usage.sql); this module types the bodies and the answers.

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{IntoParams, PartialSchema, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::openapi::ErrorResponse;
use super::route::rpc_route;
use super::shapes::{shapes, Numeric};
use axum::extract::State;

use crate::auth::Caller;
use crate::db::read_one;
use crate::error::Result;
use crate::extract::{Json, Query};
use crate::payload::{Date, Instant, NonBlank, Objects};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(report_usage))
        .routes(routes!(billing_usage))
}

// ------------------------------------------------------------------ requests

/// A batch of usage events.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageEventBatch {
    /// 1 to 1000 events, checked all before any is stored (the first bad
    /// one is named: `events[3].code`).
    #[schema(value_type = Vec<UsageEvent>, min_items = 1, max_items = 1000)]
    events: Objects<UsageEvent, 1000>,
}

/// One usage event (Lago's shape): the integration's own id, the code of
/// a billable metric and the properties its aggregation reads.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageEvent {
    /// The integration's own id of the event: an event whose id the tenant
    /// reported before is a duplicate and changes nothing.
    event_id: NonBlank<200>,
    /// The code of a billable metric reported by integrations.
    code: NonBlank<63>,
    /// When the usage happened (RFC 3339 with its offset; absent: now). The
    /// tenant's time zone decides its day and so its period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timestamp: Option<Instant>,
    /// Strings and numbers; the metric's property must be a number for
    /// sum, max and latest, a string or number for unique_count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    properties: Option<UsageProperties>,
}

/// At most 50 properties, each a string (up to 500 characters) or a
/// number; a number is kept with its exact digits.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageProperties(BTreeMap<String, Value>);

impl<'de> Deserialize<'de> for UsageProperties {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UsageProperties;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of strings and numbers")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    if k.is_empty() || k.len() > 63 || k.contains('\0') {
                        return Err(de::Error::custom(
                            "a property's name must be 1 to 63 characters",
                        ));
                    }
                    match &v {
                        Value::Number(_) => {}
                        Value::String(s) if s.chars().count() <= 500 && !s.contains('\0') => {}
                        _ => {
                            return Err(de::Error::custom(format!(
                                "{k}: must be a string of at most 500 characters or a number"
                            )))
                        }
                    }
                    out.insert(k, v);
                    if out.len() > 50 {
                        return Err(de::Error::custom("at most 50 properties"));
                    }
                }
                Ok(UsageProperties(out))
            }
        }
        d.deserialize_map(V)
    }
}

impl Serialize for UsageProperties {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl PartialSchema for UsageProperties {
    fn schema() -> RefOr<Schema> {
        let value = OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .max_length(Some(500)),
            )
            .item(ObjectBuilder::new().schema_type(Type::Number))
            .build();
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .max_properties(Some(50))
            .additional_properties(Some(Schema::OneOf(value)))
            .description(Some(
                "The event's properties: names of 1 to 63 characters, each a string or a number",
            ))
            .into()
    }
}

impl ToSchema for UsageProperties {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("UsageProperties")
    }
}

// ------------------------------------------------------------------ responses

shapes! {
    /// What a batch did.
    pub struct UsageIngested {
        /// Events in the batch.
        received: i64,
        /// Events stored now.
        accepted: i64,
        /// Events whose event_id was reported before (nothing changed).
        duplicates: i64,
    }

    /// The tenant's plan.
    pub struct UsagePlan {
        plan_code: String,
        label: String,
        monthly_price: Numeric,
        annual_price: Numeric,
        currency: String,
        trial_days: i32,
        /// Active users the plan has (null: no cap).
        included_seats: Option<i64>,
        ai_generations_per_day: Option<i64>,
        ai_tokens_per_month: Option<i64>,
        storage_quota_bytes: Option<i64>,
        features: Vec<String>,
    }

    /// A tenant-local period [from, to).
    pub struct UsagePeriod {
        from: NaiveDate,
        to: NaiveDate,
    }

    /// A metric's usage in the period against the plan (usage_billable).
    pub struct UsageLine {
        metric_code: String,
        label: String,
        unit: String,
        quantity: Numeric,
        /// null: the plan does not charge the metric.
        included: Option<Numeric>,
        overage: Numeric,
        unit_price: Option<Numeric>,
        /// overage × unit_price, unrounded.
        amount: Numeric,
    }

    /// A cap of the plan and what it holds now.
    pub struct UsageLimit {
        /// included_seats, ai_generations_per_day, ai_tokens_per_month or
        /// storage_quota_bytes.
        limit: String,
        /// null: no cap.
        cap: Option<i64>,
        used: i64,
    }

    /// The tenant's plan and the current month's usage.
    pub struct UsageSummary {
        /// null: the tenant has no plan (nothing is capped or charged).
        plan: Option<UsagePlan>,
        period: UsagePeriod,
        metrics: Vec<UsageLine>,
        limits: Vec<UsageLimit>,
    }
}

rpc_route! {
    /// Reports usage events of the caller's tenant (an API key with scope
    /// usage:write, or a super admin). Idempotent on each event's
    /// event_id: a batch sent again changes nothing and answers the same
    /// counts with every event a duplicate.
    post "/api/usage-events", tag = "usage",
    fn report_usage(UsageEventBatch) = "select usage_ingest($1 -> 'events')",
    responses((status = 200, description = "how many events were new and how many duplicates", body = UsageIngested),
              (status = 403, description = "usage.report (API key scope usage:write) is needed", body = ErrorResponse))
}

/// The period of `GET /api/billing/usage`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsagePeriodQuery {
    /// First day (tenant-local), YYYY-MM-DD [default: the first day of this month].
    #[param(value_type = Option<String>, format = Date)]
    from: Option<Date>,
    /// The day after the last (tenant-local), YYYY-MM-DD [default: a month after from].
    #[param(value_type = Option<String>, format = Date)]
    to: Option<Date>,
}

/// The tenant's plan, the usage of a period (default: the current
/// tenant-local month) per metric against it and each cap of the plan
/// with what it holds now.
#[utoipa::path(get, path = "/api/billing/usage", tag = "billing", params(UsagePeriodQuery),
    responses((status = 200, description = "the plan, the period's usage and the caps", body = UsageSummary),
              (status = 403, description = "super_admin, director or finance only", body = ErrorResponse),
              (status = 422, description = "to is not after from", body = ErrorResponse)))]
async fn billing_usage(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<UsagePeriodQuery>,
) -> Result<Json<Value>> {
    let summary: Value = read_one(
        &state.pool,
        &caller,
        sqlx::query_scalar("select usage_summary($1, $2)")
            .bind(q.from.map(|d| d.0))
            .bind(q.to.map(|d| d.0)),
    )
    .await?;
    Ok(Json(summary))
}
