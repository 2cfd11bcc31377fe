//! KPI (KPI-1..3): targets, manual entries, evidence files, imports of
//! entries, and actuals (AUTO metrics computed by the database, NA with a
//! reason where the data cannot define them).

use axum::extract::State;
use axum::response::Response;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::openapi::ErrorResponse;
use super::route::{list_route, rpc_route};
use super::shapes::shapes;
use super::write::{attach, Attach};
use crate::auth::Caller;
use crate::db::read_one;
use crate::error::{ApiError, Result};
use crate::extract::Multipart;
use crate::extract::{Json, Query};
use crate::files::leading_field;

use super::files::StoredObject;
use super::shapes::Numeric;
use crate::idempotency::IdempotencyKey;
use crate::payload::{
    blank_is_none, Date, EntrySource, Id, IdList, Int, KpiTarget, KpiValue, Month, NonBlank, Text,
};
use crate::state::AppState;
use chrono::DateTime;
use chrono::Utc;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_target, list_targets))
        .routes(routes!(progress))
        .routes(routes!(create_entry))
        .routes(routes!(actuals))
}

pub fn upload_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(add_evidence))
}

/// `kpi_target_create`: a period is `period_start` + `period_end` or
/// `period_month` (YYYY-MM); targets of one metric and assignee never overlap.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetCreate {
    metric_key: NonBlank<63>,
    assignee_user_id: Id,
    #[serde(default, deserialize_with = "blank_is_none")]
    period_start: Option<Date>,
    /// The last day of the period (inclusive).
    #[serde(default, deserialize_with = "blank_is_none")]
    period_end: Option<Date>,
    #[serde(default, deserialize_with = "blank_is_none")]
    period_month: Option<Month>,
    target_value: KpiTarget,
    notes: Option<Text<2000>>,
}

/// `kpi_entry_create`: an actual of a MANUAL or IMPORTED metric (AUTO
/// metrics take none); `evidence` lists files uploaded to bucket
/// kpi-evidence. IMPORTED entries name their `import_id` and `import_row`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryCreate {
    metric_key: NonBlank<63>,
    /// Counts, amounts, minutes and days cannot be negative (the metric's unit decides).
    value: KpiValue,
    /// Today when absent; never in the future.
    #[serde(default, deserialize_with = "blank_is_none")]
    entry_date: Option<Date>,
    /// The caller when absent.
    #[serde(default, deserialize_with = "blank_is_none")]
    assignee_user_id: Option<Id>,
    /// MANUAL when absent.
    #[serde(default, deserialize_with = "blank_is_none")]
    source: Option<EntrySource>,
    #[serde(default, deserialize_with = "blank_is_none")]
    import_id: Option<Id>,
    #[serde(default, deserialize_with = "blank_is_none")]
    import_row: Option<Int<1, 2147483647>>,
    notes: Option<Text<2000>>,
    /// object_ids of uploaded files.
    evidence: Option<IdList<20>>,
}

/// Evidence for an entry: `entry_id` and the file.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct EvidenceUpload {
    entry_id: Uuid,
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActualsQuery {
    /// One metric; all active metrics of the tenant when omitted.
    metric_key: Option<String>,
    /// One person; the tenant as a whole when omitted.
    assignee_user_id: Option<Uuid>,
    /// assignee (the person's own rows, the default with an assignee), team
    /// (the person and everyone under them via their manager) or tenant (the
    /// default without one). Metrics defined tenant-wide are always the
    /// tenant's figure.
    scope: Option<String>,
    /// First day of the period (inclusive).
    from: NaiveDate,
    /// Last day of the period (inclusive).
    to: NaiveDate,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TargetFilter {
    metric_key: Option<String>,
    assignee_user_id: Option<Uuid>,
    /// Targets whose period ends on or after this day.
    from: Option<NaiveDate>,
    /// Targets whose period starts on or before this day.
    to: Option<NaiveDate>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProgressQuery {
    /// One person's targets; every target the caller may read when omitted.
    assignee_user_id: Option<Uuid>,
    metric_key: Option<String>,
    /// Targets whose period overlaps from..to (inclusive).
    from: NaiveDate,
    to: NaiveDate,
}

list_route! {
    get "/api/kpi/targets", tag = "kpi",
    fn list_targets("v_kpi_targets" by "target_id") |list, f: TargetFilter| {
        list.filter("metric_key", "=", f.metric_key)
            .filter("assignee_user_id", "=", f.assignee_user_id)
            .filter("period_end", ">=", f.from)
            .filter("period_start", "<=", f.to);
    },
    responses((status = 200, description = "targets the caller may read (their own; managers their team's; directors and admins all), newest first", body = KpiTargetPage))
}

#[utoipa::path(get, path = "/api/kpi/progress", tag = "kpi", params(ProgressQuery),
    responses((status = 200, description = "the targets overlapping the period with their actual over the target's period, progress_pct, target_status (not_started, in_progress, achieved, missed, na on the tenant's today) and achieved (null until the period is over)", body = KpiProgress),
              (status = 422, description = "to is before from", body = ErrorResponse)))]
async fn progress(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ProgressQuery>,
) -> Result<Json<Value>> {
    ApiError::check_period(Some(q.from), Some(q.to))?;
    let items: Value = read_one(
        &state.pool,
        &caller,
        sqlx::query_scalar("select kpi_progress($1, $2, $3, $4)")
            .bind(q.assignee_user_id)
            .bind(q.from)
            .bind(q.to)
            .bind(&q.metric_key),
    )
    .await?;
    Ok(Json(serde_json::json!({ "items": items })))
}

rpc_route! {
    post "/api/kpi/targets", tag = "kpi",
    fn create_target(TargetCreate) = "select kpi_target_create($1)",
    responses((status = 201, description = "target created", body = TargetCreated),
              (status = 409, description = "overlaps another target of the metric and assignee", body = ErrorResponse),
              (status = 403, description = "manager roles only", body = ErrorResponse))
}

rpc_route! {
    post "/api/kpi/entries", tag = "kpi",
    fn create_entry(EntryCreate) = "select kpi_entry_create($1)",
    responses((status = 201, description = "entry recorded", body = EntryCreated),
              (status = 409, description = "an evidence file already belongs to another entry", body = ErrorResponse),
              (status = 422, description = "a field is invalid (e.g. an AUTO metric)", body = ErrorResponse))
}

#[utoipa::path(post, path = "/api/kpi/evidence", tag = "kpi",
    request_body(content = EvidenceUpload, content_type = "multipart/form-data"),
    params(IdempotencyKey),
    responses((status = 201, description = "file stored and attached to the entry", body = EvidenceAdded),
              (status = 404, description = "no such entry (or not visible)", body = ErrorResponse),
              (status = 413, description = "over the bucket's size limit", body = ErrorResponse),
              (status = 415, description = "a file type the bucket does not take", body = ErrorResponse)))]
async fn add_evidence(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    mut multipart: Multipart,
) -> Result<Response> {
    // entry_id first, so a bad one costs no upload.
    let entry_id = leading_field(&mut multipart, "entry_id")
        .await?
        .and_then(|t| Uuid::parse_str(t.trim()).ok())
        .ok_or_else(|| ApiError::invalid("entry_id", "must be the id of a KPI entry"))?;
    let to = Attach {
        bucket: "kpi-evidence",
        sql: "select kpi_evidence_add($1, $2)",
        parent: entry_id,
    };
    // The entry is read before the form, so it joins the request's path.
    let key = key.with_query("entry_id", entry_id);
    attach(&state, &caller, key, multipart, to).await
}

#[utoipa::path(get, path = "/api/kpi/actuals", tag = "kpi", params(ActualsQuery),
    responses((status = 200, description = "one result per metric: its value, or NA with the reason", body = Actuals),
              (status = 404, description = "no such active metric", body = ErrorResponse),
              (status = 422, description = "to is before from, or a scope other than assignee, team, tenant (team and assignee need assignee_user_id)", body = ErrorResponse)))]
async fn actuals(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ActualsQuery>,
) -> Result<Json<Value>> {
    ApiError::check_period(Some(q.from), Some(q.to))?;
    let items: Value = read_one(
        &state.pool,
        &caller,
        sqlx::query_scalar("select kpi_actuals($1, $2, daterange($3, $4, '[]'), $5)")
            .bind(&q.metric_key)
            .bind(q.assignee_user_id)
            .bind(q.from)
            .bind(q.to)
            .bind(&q.scope),
    )
    .await?;
    if q.metric_key.is_some() && items.as_array().is_some_and(Vec::is_empty) {
        return Err(ApiError::NotFound(format!(
            "no active metric {}",
            q.metric_key.unwrap_or_default()
        )));
    }
    Ok(Json(serde_json::json!({ "items": items })))
}

// ------------------------------------------------------------------ responses
// The documented shapes of what the database returns (see shapes.rs).

shapes! {
    /// `kpi_target_create`.
    pub struct TargetCreated {
        target_id: Uuid,
        metric_key: String,
        assignee_user_id: Uuid,
        period_start: NaiveDate,
        /// The last day of the period (inclusive).
        period_end: NaiveDate,
        target_value: Numeric,
    }

    /// `kpi_entry_create`.
    pub struct EntryCreated {
        entry_id: Uuid,
        /// An IMPORTED entry of the same import row was updated instead.
        replayed: bool,
        evidence_ids: Vec<Uuid>,
    }

    /// `kpi_evidence_add`, with the stored file.
    pub struct EvidenceAdded {
        evidence_id: Uuid,
        entry_id: Uuid,
        object_id: Uuid,
        object: StoredObject,
    }

    /// The actuals of the requested metrics.
    pub struct Actuals {
        items: Vec<Actual>,
    }

    /// `kpi_actual`: a metric's value over the period, or NA with a reason.
    pub struct Actual {
        metric_key: String,
        assignee_user_id: Option<Uuid>,
        period: Period,
        /// The day the value is as of: the last day of the period, not after
        /// the tenant's today.
        as_of: NaiveDate,
        /// assignee, team or tenant: the scope the value was computed in
        scope: String,
        /// Members of the team (the manager included), for scope team.
        team_size: Option<i64>,
        /// AUTO, MANUAL or IMPORTED
        source: String,
        /// count, IDR, percent, minutes, days or score
        unit: String,
        /// How the value was computed (metric-specific numbers).
        #[schema(value_type = Option<Object>)]
        breakdown: Option<Value>,
        /// Null when `status` is na.
        value: Option<Numeric>,
        /// ok or na
        status: String,
        /// Why the metric is NA.
        reason: Option<String>,
    }

    pub struct Period {
        from: NaiveDate,
        to: NaiveDate,
    }

    /// A KPI target (a row of `v_kpi_targets`).
    pub struct KpiTargetRow {
        tenant_id: Uuid,
        target_id: Uuid,
        metric_key: String,
        metric_name: String,
        /// count, IDR, percent, minutes, days or score
        unit: String,
        /// higher or lower: which way is better
        direction: String,
        assignee_user_id: Uuid,
        period_start: NaiveDate,
        /// The last day of the period (inclusive).
        period_end: NaiveDate,
        target_value: Numeric,
        notes: Option<String>,
        created_by: Option<Uuid>,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
    }

    /// One page of KPI targets.
    pub struct KpiTargetPage {
        items: Vec<KpiTargetRow>,
        next_cursor: Option<String>,
    }

    /// Targets with their actuals (`kpi_progress`).
    pub struct KpiProgress {
        items: Vec<KpiProgressRow>,
    }

    /// A target and its actual over the target's period
    /// (`v_kpi_actual_vs_target`), with the progress towards it.
    pub struct KpiProgressRow {
        tenant_id: Uuid,
        target_id: Uuid,
        metric_key: String,
        metric_name: String,
        department: String,
        /// AUTO, MANUAL or IMPORTED
        source: String,
        unit: String,
        /// higher or lower: which way is better
        direction: String,
        assignee_user_id: Uuid,
        period_start: NaiveDate,
        period_end: NaiveDate,
        target_value: Numeric,
        /// Null when `status` is na.
        actual_value: Option<Numeric>,
        /// ok or na
        status: Option<String>,
        /// Why the metric is NA.
        reason: Option<String>,
        /// assignee, team or tenant: the scope the actual was computed in
        scope: Option<String>,
        /// How the actual was computed (metric-specific numbers).
        #[schema(value_type = Option<Object>)]
        breakdown: Option<Value>,
        /// actual / target x 100, 1 decimal (null when NA or the target is 0).
        progress_pct: Option<Numeric>,
        /// Judged once the period is over: true when the target was reached
        /// (at least it for `higher`, at most it for `lower`), false when it
        /// was missed; null while the period has not started or is running,
        /// and when the actual is NA.
        achieved: Option<bool>,
        /// The target's state on the tenant's today.
        target_status: KpiTargetStatus,
    }
}

/// The state of a KPI target on the tenant's today (`kpi_target_status`).
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "snake_case")]
pub enum KpiTargetStatus {
    /// Today is before the period's first day.
    NotStarted,
    /// Today is within the period (its last day included).
    InProgress,
    /// The period is over and the actual reached the target.
    Achieved,
    /// The period is over and the actual did not reach the target.
    Missed,
    /// The period is over and the actual is NA (`reason` says why).
    Na,
}
