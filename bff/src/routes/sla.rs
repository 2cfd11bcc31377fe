//! Ticket SLAs (TCK-3): the SLA state of each ticket (due times in the
//! tenant's business minutes, breaches) and the median first response per
//! day. Row-level security on tickets decides which tickets count.

use axum::extract::State;
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::openapi::ErrorResponse;
use super::route::list_route;
use super::shapes::shapes;
use crate::auth::Caller;
use crate::db::{read_one, read_optional};
use crate::error::{ApiError, Result};
use crate::extract::{Json, Path, Query};
use crate::payload::{Priority, TicketType};
use crate::state::AppState;
use chrono::DateTime;
use chrono::Utc;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_sla))
        .routes(routes!(ticket_sla))
        .routes(routes!(first_response_daily))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SlaFilter {
    /// due, met or breached
    sla_status: Option<String>,
    ticket_type: Option<TicketType>,
    priority: Option<Priority>,
    dept_target: Option<String>,
    /// Created at or after (RFC 3339).
    created_from: Option<chrono::DateTime<chrono::Utc>>,
    /// Created before (RFC 3339).
    created_to: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DayRange {
    /// The first day (the tenant's calendar).
    from: NaiveDate,
    /// The last day (inclusive).
    to: NaiveDate,
}

list_route! {
    get "/api/sla/tickets", tag = "sla",
    fn list_sla("v_sla_status" by "ticket_id") |list, f: SlaFilter| {
        list.filter("sla_status", "=", f.sla_status.map(|s| s.to_lowercase()))
            .filter(
                "ticket_type",
                "=",
                f.ticket_type.map(TicketType::into_string),
            )
            .filter("priority", "=", f.priority.map(Priority::into_string))
            .filter("dept_target", "=", f.dept_target.map(|d| d.to_uppercase()))
            .filter("created_at", ">=", f.created_from)
            .filter("created_at", "<", f.created_to);
    },
    responses((status = 200, description = "the SLA of each ticket the caller may see, newest first", body = SlaPage))
}

#[utoipa::path(get, path = "/api/sla/tickets/{id}", tag = "sla", params(("id" = Uuid, Path)),
    responses((status = 200, description = "the ticket's SLA: due times, breaches, met/due/breached", body = SlaStatus),
              (status = 404, description = "no such ticket (or not visible)", body = ErrorResponse)))]
async fn ticket_sla(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<Json<Value>> {
    let sla: Option<Value> = read_optional(
        &state.pool,
        &caller,
        sqlx::query_scalar(
            "select to_jsonb(s) from v_sla_status s where s.tenant_id = $2 and s.ticket_id = $1",
        )
        .bind(id)
        .bind(caller.tenant_id),
    )
    .await?;
    sla.map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no ticket {id}")))
}

#[utoipa::path(get, path = "/api/sla/first-response", tag = "sla", params(DayRange),
    responses((status = 200, description = "per day of creation (the tenant's calendar) with tickets: the median first response in minutes and business minutes", body = FirstResponseDaily),
              (status = 422, description = "to is before from, or the range is longer than 366 days", body = ErrorResponse)))]
async fn first_response_daily(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<DayRange>,
) -> Result<Json<Value>> {
    ApiError::check_period(Some(q.from), Some(q.to))?;
    if (q.to - q.from).num_days() > 366 {
        return Err(ApiError::invalid("to", "at most 366 days after from"));
    }
    let items: Value = read_one(
        &state.pool,
        &caller,
        sqlx::query_scalar(
            "select coalesce(jsonb_agg(to_jsonb(m) order by m.day), '[]')
           from v_ticket_first_response_daily_median m
          where m.tenant_id = $3 and m.day between $1 and $2",
        )
        .bind(q.from)
        .bind(q.to)
        .bind(caller.tenant_id),
    )
    .await?;
    Ok(Json(json!({ "items": items })))
}

// ------------------------------------------------------------------ responses
// The documented shapes of what the database returns (see shapes.rs).

shapes! {
    /// The SLA of one ticket (a row of `v_sla_status`).
    pub struct SlaStatus {
        tenant_id: Uuid,
        ticket_id: Uuid,
        ticket_no: String,
        ticket_type: crate::payload::TicketType,
        priority: crate::payload::Priority,
        dept_target: String,
        /// The ticket's status (inquiry_status of RFQs, ticket_status of the others).
        ticket_state: Option<crate::payload::TicketStatus>,
        created_at: DateTime<Utc>,
        first_response_at: Option<DateTime<Utc>>,
        resolved_at: Option<DateTime<Utc>>,
        closed_at: Option<DateTime<Utc>>,
        cancelled_at: Option<DateTime<Utc>>,
        /// The policy's targets in business minutes (null: no policy).
        response_minutes: Option<i64>,
        resolution_minutes: Option<i64>,
        response_due_at: Option<DateTime<Utc>>,
        resolution_due_at: Option<DateTime<Utc>>,
        response_breached: bool,
        resolution_breached: bool,
        /// due, met or breached; null without a policy.
        sla_status: Option<String>,
    }

    /// One page of SLA states.
    pub struct SlaPage {
        items: Vec<SlaStatus>,
        next_cursor: Option<String>,
    }

    /// The median first response per day.
    pub struct FirstResponseDaily {
        items: Vec<FirstResponseDay>,
    }

    /// The tickets created on one day of the tenant's calendar (a row of
    /// `v_ticket_first_response_daily_median`).
    pub struct FirstResponseDay {
        tenant_id: Uuid,
        day: NaiveDate,
        /// Tickets created that day (that the caller may read).
        tickets: i64,
        /// Of them, the ones with a first response.
        responded: i64,
        /// Null when none was answered.
        median_first_response_minutes: Option<f64>,
        median_first_response_business_minutes: Option<f64>,
    }
}
