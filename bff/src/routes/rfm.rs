//! RFM segments (RFM-1) and segment content (RFM-2). The
//! database computes and decides (sql/api/rfm.sql): snapshots are written
//! by `rfm.compute` jobs (weekly schedule, or `POST /api/rfm/runs`), read
//! under the customers' RLS.
//!
//! - `GET /api/rfm/segments?week=`: customers, revenue share and movement
//!   against the previous snapshot per segment, and when the next run is
//!   due; before the first run (no `week`) an empty snapshot.
//! - `GET /api/rfm/segments/{segment}/customers?week=&limit=&cursor=`: a
//!   page of the customers of a segment the caller may read.
//! - `POST /api/rfm/runs`: a manager's on-demand run (202, the job).
//! - `PUT /api/rfm/settings`: the window in days.
//! - `GET /api/rfm/templates`, `PUT /api/rfm/templates/{segment}/{channel}`:
//!   the prompt templates per segment and channel (versioned).
//! - `POST /api/rfm/segments/{segment}/content`: content for a segment and
//!   channel through the LLM gateway (feature `segment_content`: cached per
//!   prompt, 10 generations a day per tenant, 429 with Retry-After beyond);
//!   without a model, the rendered template itself (source `template`).

use axum::extract::State;
use axum::response::Response;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::openapi::ErrorResponse;
use super::route::{read_route, rpc_route};
use super::shapes::shapes;
use super::write::body;
use crate::auth::Caller;
use crate::db::read_one;
use crate::error::{ApiError, Result};
use crate::extract::{Json, Path, Query};
use crate::idempotency::{self, Done, IdempotencyKey};
use crate::llm::{features, CallContext, GatewayRequest, Message, Role, Source};
use crate::payload::{blank_is_none, Date, Int, NonBlank, RfmChannel, RfmSegment};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(segments))
        .routes(routes!(segment_customers))
        .routes(routes!(segment_content))
        .routes(routes!(request_run))
        .routes(routes!(set_settings))
        .routes(routes!(list_templates))
        .routes(routes!(set_template))
}

/// Tokens a segment's content may take (the product's limit: 500).
const CONTENT_MAX_TOKENS: u32 = 500;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WeekQuery {
    /// Any date of the snapshot's week [default: the latest snapshot].
    week: Option<NaiveDate>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CustomersQuery {
    /// Any date of the snapshot's week [default: the latest snapshot].
    week: Option<NaiveDate>,
    /// 1-500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i32>,
    /// The next page: `next_cursor` of the previous one.
    cursor: Option<Uuid>,
}

shapes! {
    /// One segment of a snapshot (over the customers the caller may read).
    pub struct RfmSegmentFigures {
        segment: RfmSegment,
        label: String,
        customers: i64,
        /// Sum of the customers' monetary values (IDR).
        revenue: f64,
        /// Share of the snapshot's revenue (0-1, 4 decimals).
        revenue_share: f64,
        /// Customers in the segment in the previous snapshot (null: none).
        previous_customers: Option<i64>,
        /// In the segment then and now.
        stayed: Option<i64>,
        /// In it now, in another segment (or not scored) then.
        moved_in: Option<i64>,
        /// In it then, in another segment (or not scored) now.
        moved_out: Option<i64>,
    }

    /// Customers who changed segment between the previous snapshot and this one.
    pub struct RfmMovement {
        /// null: not scored in the previous snapshot.
        from: Option<RfmSegment>,
        /// null: no purchase left in the window.
        to: Option<RfmSegment>,
        customers: i64,
    }

    /// The segments of a weekly snapshot; before the tenant's first run (no
    /// `week` asked for) an empty one: `week`, `as_of`, `window_start` and
    /// `computed_at` null, no customers, and `next_run` says when the first is
    /// due.
    pub struct RfmSegmentsReport {
        /// The Monday of the snapshot's week (null: no snapshot yet).
        week: Option<NaiveDate>,
        /// The tenant-local date it was computed at (null: no snapshot yet).
        as_of: Option<NaiveDate>,
        /// The window of the snapshot (no snapshot yet: the tenant's setting).
        window_days: i32,
        /// The first payment date counted (null: no snapshot yet).
        window_start: Option<NaiveDate>,
        /// Null: no snapshot yet.
        computed_at: Option<DateTime<Utc>>,
        /// The snapshot movements are counted against (null: none).
        previous_week: Option<NaiveDate>,
        /// When the next run (the weekly schedule's, or an on-demand run
        /// waiting for a worker) is due; null when none is scheduled.
        next_run: Option<RfmNextRun>,
        customers: i64,
        /// What the customers shown paid in the window, in IDR.
        revenue: f64,
        /// Every segment, in list order.
        segments: Vec<RfmSegmentFigures>,
        movements: Vec<RfmMovement>,
    }

    /// When the tenant's next RFM run is due.
    pub struct RfmNextRun {
        /// The instant (in the past when it is due now and waits for a worker).
        at: DateTime<Utc>,
        /// The same in the tenant's time zone, without offset
        /// (YYYY-MM-DDTHH:MM:SS).
        #[schema(value_type = String, example = "2026-12-07T06:00:00")]
        local: chrono::NaiveDateTime,
        /// The tenant's time zone (IANA).
        time_zone: String,
    }

    /// A customer of a segment.
    pub struct RfmCustomer {
        customer_id: Uuid,
        company_name: String,
        city: Option<String>,
        /// Days from the last purchase to the snapshot's as_of.
        recency_days: i32,
        /// Paid invoices in the window.
        frequency: i32,
        /// Their sum in IDR: a purchase in another currency at the `fx_rates`
        /// rate in force on its date.
        monetary: f64,
        r: i32,
        f: i32,
        m: i32,
        /// (F + M) / 2 rounded half up.
        fm: i32,
        /// The customer's segment in the previous snapshot.
        previous_segment: Option<RfmSegment>,
    }

    pub struct RfmCustomerPage {
        segment: RfmSegment,
        week: NaiveDate,
        items: Vec<RfmCustomer>,
        /// The `cursor` of the next page (null: this is the last).
        next_cursor: Option<Uuid>,
    }
}

/// An on-demand run.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// The date to compute at [default: the tenant's today]; the run
    /// replaces the snapshot of its week.
    #[serde(
        default,
        deserialize_with = "blank_is_none",
        skip_serializing_if = "Option::is_none"
    )]
    as_of: Option<Date>,
}

shapes! {
    pub struct RfmRunRequested {
        /// The rfm.compute job (GET /api/jobs/{id}).
        job_id: Uuid,
        as_of: NaiveDate,
        /// The snapshot it replaces.
        week: NaiveDate,
    }
}

/// The tenant's RFM settings.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RfmSettings {
    /// Payments of the last window_days days count (7-3650).
    window_days: Int<7, 3650>,
}

shapes! {
    /// A prompt template of a segment and channel.
    pub struct RfmTemplate {
        segment: RfmSegment,
        channel: RfmChannel,
        /// The prompt, with {{variables}}.
        body: String,
        /// The system message sent with it.
        system: String,
        /// 0: the built-in; +1 with every saved change.
        version: i32,
        is_default: bool,
        updated_at: Option<DateTime<Utc>>,
    }

    pub struct RfmTemplateList {
        items: Vec<RfmTemplate>,
        /// The variables a template may use ({{name}}).
        variables: Vec<String>,
    }
}

/// A template's new text.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateSet {
    /// With {{variables}} of the list's `variables`.
    body: NonBlank<4000>,
}

/// What to write content for.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContentRequest {
    channel: RfmChannel,
    /// Any date of the snapshot's week [default: the latest snapshot].
    #[serde(default, deserialize_with = "blank_is_none")]
    week: Option<Date>,
}

/// Where content came from.
#[derive(Debug, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum RfmContentSource {
    /// A model wrote it (one generation of the day).
    Model,
    /// The tenant's cache of the same prompt (no generation used).
    Cache,
    /// No model answered: the rendered template, to write by hand.
    Template,
}

shapes! {
    /// Content for a segment and channel.
    pub struct RfmContent {
        segment: RfmSegment,
        channel: RfmChannel,
        week: NaiveDate,
        template_version: i32,
        /// Customers of the segment (that the caller may read).
        customers: i64,
        text: String,
        source: RfmContentSource,
        /// The LLM ledger rows of this request.
        call_ids: Vec<Uuid>,
    }
}

#[utoipa::path(get, path = "/api/rfm/segments", tag = "rfm", params(WeekQuery),
    responses((status = 200, description = "per segment: customers, revenue share and movement against the previous snapshot, over the customers the caller may read, and when the next run is due; before the first run an empty snapshot", body = RfmSegmentsReport),
              (status = 404, description = "no snapshot of the week asked for", body = ErrorResponse)))]
async fn segments(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<WeekQuery>,
) -> Result<Json<Value>> {
    let report: Value = read_one(
        &state.pool,
        &caller,
        sqlx::query_scalar("select rfm_segments_report($1)").bind(q.week),
    )
    .await?;
    Ok(Json(report))
}

#[utoipa::path(get, path = "/api/rfm/segments/{segment}/customers", tag = "rfm",
    params(("segment" = RfmSegment, Path), CustomersQuery),
    responses((status = 200, description = "the customers of the segment the caller may read, highest spend first", body = RfmCustomerPage),
              (status = 404, description = "no snapshot (of that week)", body = ErrorResponse),
              (status = 422, description = "unknown segment, limit out of range or a cursor not of this page", body = ErrorResponse)))]
async fn segment_customers(
    State(state): State<AppState>,
    caller: Caller,
    Path(segment): Path<String>,
    Query(q): Query<CustomersQuery>,
) -> Result<Json<Value>> {
    let page: Value = read_one(
        &state.pool,
        &caller,
        sqlx::query_scalar("select rfm_segment_customers($1, $2, $3, $4)")
            .bind(segment)
            .bind(q.week)
            .bind(q.limit.unwrap_or(50))
            .bind(q.cursor),
    )
    .await?;
    Ok(Json(page))
}

#[utoipa::path(post, path = "/api/rfm/runs", tag = "rfm", request_body = RunRequest,
    params(IdempotencyKey),
    responses((status = 202, description = "an rfm.compute job is queued; it replaces the snapshot of the week", body = RfmRunRequested),
              (status = 403, description = "the rfm.manage permission is missing", body = ErrorResponse)))]
async fn request_run(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Json(run): Json<RunRequest>,
) -> Result<Response> {
    let payload = body(&run)?;
    idempotency::run(&state, &caller, key.json(&payload), async |conn| {
        let job: Value = sqlx::query_scalar("select rfm_run_request($1)")
            .bind(&payload)
            .fetch_one(&mut *conn)
            .await?;
        Ok(Done::accepted(job))
    })
    .await
}

rpc_route! {
    put "/api/rfm/settings", tag = "rfm",
    fn set_settings(RfmSettings) = "select rfm_settings_set($1)",
    responses((status = 200, description = "the settings (the next run uses them)", body = RfmSettings),
              (status = 403, description = "the rfm.manage permission is missing", body = ErrorResponse))
}

read_route! {
    get "/api/rfm/templates", tag = "rfm",
    fn list_templates() = "select rfm_template_list()",
    responses((status = 200, description = "the template of every segment and channel (built-ins as version 0)", body = RfmTemplateList))
}

#[utoipa::path(put, path = "/api/rfm/templates/{segment}/{channel}", tag = "rfm", request_body = TemplateSet,
    params(("segment" = RfmSegment, Path), ("channel" = RfmChannel, Path), IdempotencyKey),
    responses((status = 200, description = "the saved template (a changed text gets the next version)", body = RfmTemplate),
              (status = 403, description = "the rfm.manage permission is missing", body = ErrorResponse),
              (status = 422, description = "unknown segment, channel or {{variable}}", body = ErrorResponse)))]
async fn set_template(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path((segment, channel)): Path<(String, String)>,
    Json(template): Json<TemplateSet>,
) -> Result<Response> {
    let payload = body(&template)?;
    idempotency::run(&state, &caller, key.json(&payload), async |conn| {
        let saved: Value = sqlx::query_scalar("select rfm_template_set($1, $2, $3)")
            .bind(&segment)
            .bind(&channel)
            .bind(&payload)
            .fetch_one(&mut *conn)
            .await?;
        Ok(Done::ok(saved))
    })
    .await
}

#[utoipa::path(post, path = "/api/rfm/segments/{segment}/content", tag = "rfm", request_body = ContentRequest,
    params(("segment" = RfmSegment, Path)),
    responses((status = 200, description = "content for the segment and channel: from a model, the cache of the same prompt, or (no model) the rendered template", body = RfmContent),
              (status = 403, description = "the rfm.manage permission is missing", body = ErrorResponse),
              (status = 404, description = "no snapshot (of that week)", body = ErrorResponse),
              (status = 429, description = "the tenant's generations of the day are used up (Retry-After)", body = ErrorResponse)))]
async fn segment_content(
    State(state): State<AppState>,
    caller: Caller,
    Path(segment): Path<String>,
    Json(req): Json<ContentRequest>,
) -> Result<Json<Value>> {
    let prompt: Value = read_one(
        &state.pool,
        &caller,
        sqlx::query_scalar("select rfm_content_prompt($1, $2, $3)")
            .bind(&segment)
            .bind(req.channel.as_str())
            .bind(req.week.map(|d| d.0)),
    )
    .await?;
    let text_of = |key: &str| prompt[key].as_str().unwrap_or_default().to_owned();
    let user = text_of("user");
    let request = GatewayRequest {
        messages: vec![
            Message {
                role: Role::System,
                content: text_of("system"),
            },
            Message {
                role: Role::User,
                content: user.clone(),
            },
        ],
        temperature: Some(0.7),
        max_output_tokens: Some(CONTENT_MAX_TOKENS),
        json_schema: None,
    };
    // The prompt holds a segment's figures, no customer's data.
    let reply = state
        .llm
        .chat(
            &CallContext::for_caller(&caller, false),
            features::SEGMENT_CONTENT,
            request,
        )
        .await
        .map_err(ApiError::from)?;
    let (text, source) = match reply.source {
        Source::Model { .. } => (reply.text, RfmContentSource::Model),
        Source::Cache => (reply.text, RfmContentSource::Cache),
        Source::Fallback => (user, RfmContentSource::Template),
    };
    Ok(Json(json!({
        "segment": prompt["segment"],
        "channel": prompt["channel"],
        "week": prompt["week"],
        "template_version": prompt["template_version"],
        "customers": prompt["customers"],
        "text": text,
        "source": source,
        "call_ids": reply.call_ids,
    })))
}
