//! Leads (CRM-1, CRM-2): create as a bundle, change, assign, list, read.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::list::{List, Page, Paged};
use super::write::{rpc, Args, Call};
use crate::auth::Caller;
use crate::db::begin_as;
use crate::error::{ApiError, Result};
use crate::extract::{Json, Path, Query};
use crate::idempotency::IdempotencyKey;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_lead, list_leads))
        .routes(routes!(update_lead, get_lead))
        .routes(routes!(assign_lead))
}

/// `crm_create_lead_bundle`: the customer is found by NPWP, e-mail or phone
/// (or created), with its prospect and, with `rfq`, an RFQ ticket for ops.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct LeadCreate {
    /// website, whatsapp, referral, event, social_media, email, phone,
    /// walk_in, marketplace, partner, other
    channel: String,
    company_name: String,
    contact_name: Option<String>,
    contact_email: Option<String>,
    contact_phone: Option<String>,
    npwp: Option<String>,
    city: Option<String>,
    notes: Option<String>,
    sales_owner_user_id: Option<Uuid>,
    /// {origin, destination, commodity, weight_kg?, volume_cbm?, dept_target, priority?, subject?, description?}
    #[schema(value_type = Option<Object>)]
    rfq: Option<Value>,
}

/// Only the keys sent change; null clears an optional field.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct LeadPatch {
    /// CONTACTED, QUALIFIED, CONVERTED, DISQUALIFIED (the lead lifecycle)
    status: Option<String>,
    channel: Option<String>,
    contact_name: Option<String>,
    contact_email: Option<String>,
    contact_phone: Option<String>,
    city: Option<String>,
    notes: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct LeadAssign {
    /// The salesperson who will own the lead and its prospect.
    salesperson_user_id: Uuid,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LeadFilter {
    status: Option<String>,
    channel: Option<String>,
    sales_owner_user_id: Option<Uuid>,
    customer_id: Option<Uuid>,
    /// Created at or after (RFC 3339).
    created_from: Option<chrono::DateTime<chrono::Utc>>,
    /// Created before (RFC 3339).
    created_to: Option<chrono::DateTime<chrono::Utc>>,
    /// Substring of the lead number, company, contact or e-mail.
    q: Option<String>,
}

#[utoipa::path(post, path = "/api/leads", tag = "leads", request_body = LeadCreate,
    params(IdempotencyKey),
    responses((status = 201, description = "the lead, its customer and prospect", body = Object),
              (status = 422, description = "a field is invalid", body = super::openapi::ErrorResponse)))]
async fn create_lead(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Json(body): Json<Value>,
) -> Result<Response> {
    let call = Call::post(
        "/api/leads".into(),
        "select crm_create_lead_bundle($1)",
        Args::Body(body),
    );
    rpc(&state, &caller, key, call.created()).await
}

#[utoipa::path(patch, path = "/api/leads/{id}", tag = "leads", request_body = LeadPatch,
    params(("id" = Uuid, Path), IdempotencyKey),
    responses((status = 200, description = "the changed lead", body = Object),
              (status = 404, description = "no such lead (or not visible)", body = super::openapi::ErrorResponse),
              (status = 422, description = "a field is invalid", body = super::openapi::ErrorResponse)))]
async fn update_lead(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<Uuid>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let call = Call::patch(
        format!("/api/leads/{id}"),
        "select lead_update($1, $2)",
        Args::IdBody(id, body),
    );
    rpc(&state, &caller, key, call).await
}

#[utoipa::path(post, path = "/api/leads/{id}/assign", tag = "leads", request_body = LeadAssign,
    params(("id" = Uuid, Path), IdempotencyKey),
    responses((status = 200, description = "lead assigned", body = Object),
              (status = 403, description = "only manager roles assign", body = super::openapi::ErrorResponse)))]
async fn assign_lead(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<Uuid>,
    Json(body): Json<Value>,
) -> Result<Response> {
    let assign: LeadAssign = serde_json::from_value(body.clone()).map_err(|e| {
        ApiError::invalid("salesperson_user_id", format!("salesperson_user_id: {e}"))
    })?;
    let call = Call::post(
        format!("/api/leads/{id}/assign"),
        "select crm_assign_lead($1, ($2 ->> 'salesperson_user_id')::uuid)",
        Args::IdBody(
            id,
            json!({"salesperson_user_id": assign.salesperson_user_id}),
        ),
    );
    rpc(&state, &caller, key, call).await
}

#[utoipa::path(get, path = "/api/leads", tag = "leads", params(LeadFilter, Page),
    responses((status = 200, description = "leads the caller may see, newest first", body = Paged)))]
async fn list_leads(
    State(state): State<AppState>,
    caller: Caller,
    Query(f): Query<LeadFilter>,
    Query(page): Query<Page>,
) -> Result<Json<Paged>> {
    let mut list = List::new("leads", "lead_id");
    list.filter("status", "=", f.status.map(|s| s.to_uppercase()))
        .filter("channel", "=", f.channel.map(|s| s.to_lowercase()))
        .filter("sales_owner_user_id", "=", f.sales_owner_user_id)
        .filter("customer_id", "=", f.customer_id)
        .filter("created_at", ">=", f.created_from)
        .filter("created_at", "<", f.created_to)
        .search(
            &["lead_no", "company_name", "contact_name", "contact_email"],
            f.q,
        );
    let mut tx = begin_as(&state.pool, &caller).await?;
    let page = list.fetch(&mut tx, page).await?;
    tx.commit().await?;
    Ok(Json(page))
}

#[utoipa::path(get, path = "/api/leads/{id}", tag = "leads", params(("id" = Uuid, Path)),
    responses((status = 200, description = "the lead", body = Object),
              (status = 404, description = "no such lead (or not visible)", body = super::openapi::ErrorResponse)))]
async fn get_lead(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<Json<Value>> {
    let mut tx = begin_as(&state.pool, &caller).await?;
    let lead: Option<Value> = sqlx::query_scalar(
        "select to_jsonb(l) || jsonb_build_object('customer', to_jsonb(c))
           from leads l
           left join customers c on c.tenant_id = l.tenant_id and c.customer_id = l.customer_id
          where l.lead_id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    lead.map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no lead {id}")))
}
