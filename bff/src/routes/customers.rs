//! Customers (CRM): the list, a customer with its prospects, leads,
//! invoices and documents, attaching documents (bucket
//! customer-documents), changing a customer and merging a duplicate into
//! it. Row-level security decides what the caller sees: sales roles their
//! own and their team's customers, CRM managers, directors and finance all
//! of them. Who may change (and merge) a customer is `customer_editable`
//! (the customers update policy): super admins and marketing managers any,
//! sales roles those their team owns a prospect of; directors none.

use axum::extract::State;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::files::FileUpload;
use super::list::{List, Page, Paged};
use super::openapi::ErrorResponse;
use super::responses::{Customer, CustomerDetail, CustomerPage, DocumentAdded};
use super::write::{attach, body, rpc, Args, Attach, Call};
use crate::auth::Caller;
use crate::db::begin_as;
use crate::error::{ApiError, Result};
use crate::extract::Multipart;
use crate::extract::{Json, Path, Query};
use crate::idempotency::IdempotencyKey;
use crate::payload::{Id, Int, Patch, Text};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_customers))
        .routes(routes!(get_customer, update_customer))
        .routes(routes!(merge_customer))
        .routes(routes!(list_merges))
}

pub fn upload_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(add_document))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CustomerFilter {
    city: Option<String>,
    /// Created at or after (RFC 3339).
    created_from: Option<chrono::DateTime<chrono::Utc>>,
    /// Created before (RFC 3339).
    created_to: Option<chrono::DateTime<chrono::Utc>>,
    /// Substring of the company name, NPWP, e-mail or phone.
    q: Option<String>,
}

#[utoipa::path(get, path = "/api/customers", tag = "customers", params(CustomerFilter, Page),
    responses((status = 200, description = "customers the caller may see, newest first", body = CustomerPage)))]
async fn list_customers(
    State(state): State<AppState>,
    caller: Caller,
    Query(f): Query<CustomerFilter>,
    Query(page): Query<Page>,
) -> Result<Json<Paged>> {
    let mut list = List::new("customers", "customer_id", caller.tenant_id);
    list.filter("city", "=", f.city)
        .filter("created_at", ">=", f.created_from)
        .filter("created_at", "<", f.created_to)
        .search(&["company_name", "npwp", "email", "phone"], f.q);
    let mut tx = begin_as(&state.pool, &caller).await?;
    let page = list.fetch(&mut tx, page).await?;
    tx.commit().await?;
    Ok(Json(page))
}

#[utoipa::path(get, path = "/api/customers/{id}", tag = "customers", params(("id" = Uuid, Path)),
    responses((status = 200, description = "the customer with its prospects, leads, invoices, documents and look-alikes as the caller may read them", body = CustomerDetail),
              (status = 404, description = "no such customer (or not visible)", body = ErrorResponse)))]
async fn get_customer(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<Json<Value>> {
    let mut tx = begin_as(&state.pool, &caller).await?;
    let customer: Option<Value> = sqlx::query_scalar("select customer_detail($1)")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    customer
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no customer {id}")))
}

#[utoipa::path(post, path = "/api/customers/{id}/documents", tag = "customers",
    request_body(content = FileUpload, content_type = "multipart/form-data"),
    params(("id" = Uuid, Path), IdempotencyKey),
    responses((status = 201, description = "file stored and attached to the customer", body = DocumentAdded),
              (status = 403, description = "the role may not attach customer documents (customer.document)", body = ErrorResponse),
              (status = 404, description = "no such customer (or not visible)", body = ErrorResponse),
              (status = 413, description = "over the bucket's size limit", body = ErrorResponse),
              (status = 415, description = "a file type the bucket does not take", body = ErrorResponse)))]
async fn add_document(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<Uuid>,
    multipart: Multipart,
) -> Result<Response> {
    let to = Attach {
        bucket: "customer-documents",
        path: format!("/api/customers/{id}/documents"),
        sql: "select customer_document_add($1, $2)",
        parent: id,
    };
    attach(&state, &caller, key, multipart, to).await
}

/// `customer_update`: only the fields present change; null (or a blank
/// string) clears an optional one. The NPWP, e-mail and phone formats are
/// the database's to judge, and so is whether another customer already
/// holds one of the dedup keys (409 naming the field).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerPatch {
    /// Required: null or blank is refused.
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    #[schema(value_type = Option<Text<200>>)]
    company_name: Patch<Text<200>>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    #[schema(value_type = Option<Text<40>>)]
    npwp: Patch<Text<40>>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    #[schema(value_type = Option<Text<320>>)]
    email: Patch<Text<320>>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    #[schema(value_type = Option<Text<50>>)]
    phone: Patch<Text<50>>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    #[schema(value_type = Option<Text<500>>)]
    address: Patch<Text<500>>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    #[schema(value_type = Option<Text<100>>)]
    city: Patch<Text<100>>,
    /// Days from issue to due date agreed with the customer.
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    #[schema(value_type = Option<Int<0, 365>>)]
    payment_terms_days: Patch<Int<0, 365>>,
}

/// `customer_merge`: the customer of the path survives, `duplicate_id` is
/// merged into it and removed.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerMerge {
    /// The duplicate: its prospects, leads, activities, tickets, invoices,
    /// documents and earlier merges move to the customer of the path; it
    /// is deleted (kept in the survivor's merges).
    duplicate_id: Id,
}

/// What a merge moved to the surviving customer, per table.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct MergeMoved {
    /// Prospects moved or folded.
    prospects: i64,
    /// Of them, prospects folded into the survivor's prospect of the same
    /// owner (one prospect per customer and owner).
    prospects_folded: i64,
    leads: i64,
    sales_activities: i64,
    /// Tickets related to the customer.
    tickets: i64,
    /// Invoices (their numbers unchanged).
    invoices: i64,
    customer_documents: i64,
    /// Earlier merges into the duplicate, now the survivor's.
    customer_merges: i64,
}

/// `customer_merge`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct CustomerMerged {
    /// The surviving customer.
    customer_id: Uuid,
    /// The duplicate, now deleted; its audit history stays under this id
    /// (`GET /api/audit?table=customers&record=`).
    merged_customer_id: Uuid,
    merge_id: Uuid,
    moved: MergeMoved,
}

/// A customer merged into this one (`customer_merges`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct CustomerMergeRecord {
    merge_id: Uuid,
    /// The duplicate's id: its audit history is
    /// `GET /api/audit?table=customers&record=<merged_customer_id>`.
    merged_customer_id: Uuid,
    /// The duplicate's company name at the merge.
    company_name: String,
    merged_by: Option<Uuid>,
    merged_at: DateTime<Utc>,
    moved: MergeMoved,
}

#[utoipa::path(patch, path = "/api/customers/{id}", tag = "customers", request_body = CustomerPatch,
    params(("id" = Uuid, Path), IdempotencyKey),
    responses((status = 200, description = "the changed customer", body = Customer),
              (status = 403, description = "the caller may not change this customer", body = ErrorResponse),
              (status = 404, description = "no such customer (or not visible)", body = ErrorResponse),
              (status = 409, description = "another customer holds the NPWP, e-mail, phone or company name (named when the caller may read it)", body = ErrorResponse),
              (status = 422, description = "a field is invalid or nothing to change", body = ErrorResponse)))]
async fn update_customer(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<Uuid>,
    Json(patch): Json<CustomerPatch>,
) -> Result<Response> {
    let call = Call::patch(
        format!("/api/customers/{id}"),
        "select customer_update($1, $2)",
        Args::IdBody(id, body(&patch)?),
    );
    rpc(&state, &caller, key, call).await
}

#[utoipa::path(post, path = "/api/customers/{id}/merge", tag = "customers", request_body = CustomerMerge,
    params(("id" = Uuid, Path), IdempotencyKey),
    responses((status = 200, description = "the duplicate merged into the customer of the path", body = CustomerMerged),
              (status = 403, description = "the caller may not change both customers", body = ErrorResponse),
              (status = 404, description = "no such customer or duplicate (or not visible)", body = ErrorResponse),
              (status = 422, description = "the same customer twice, or two different NPWPs", body = ErrorResponse)))]
async fn merge_customer(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<Uuid>,
    Json(merge): Json<CustomerMerge>,
) -> Result<Response> {
    let call = Call::post(
        format!("/api/customers/{id}/merge"),
        "select customer_merge($1, ($2 ->> 'duplicate_id')::uuid)",
        Args::IdBody(id, body(&merge)?),
    );
    rpc(&state, &caller, key, call).await
}

#[utoipa::path(get, path = "/api/customers/{id}/merges", tag = "customers", params(("id" = Uuid, Path)),
    responses((status = 200, description = "the customers merged into this one, newest first", body = Vec<CustomerMergeRecord>),
              (status = 404, description = "no such customer (or not visible)", body = ErrorResponse)))]
async fn list_merges(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<Json<Value>> {
    let mut tx = begin_as(&state.pool, &caller).await?;
    let merges: Option<Value> = sqlx::query_scalar("select customer_merges_of($1)")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    merges
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no customer {id}")))
}
