//! Customers (CRM): the list, a customer with its prospects, leads,
//! invoices and documents, and attaching documents (bucket
//! customer-documents). Row-level security decides what the caller sees:
//! sales roles their own and their team's customers, CRM managers,
//! directors and finance all of them.

use axum::extract::State;
use axum::response::Response;
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::files::FileUpload;
use super::list::{List, Page, Paged};
use super::openapi::ErrorResponse;
use super::responses::{CustomerDetail, CustomerPage, DocumentAdded};
use super::write::{attach, Attach};
use crate::auth::Caller;
use crate::db::{read_as, read_one};
use crate::error::{ApiError, Result};
use crate::extract::Multipart;
use crate::extract::{Json, Path, Query};
use crate::idempotency::IdempotencyKey;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_customers))
        .routes(routes!(get_customer))
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
    let page = read_as(&state.pool, &caller, async |tx| list.fetch(tx, page).await).await?;
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
    let customer: Option<Value> = read_one(
        &state.pool,
        &caller,
        sqlx::query_scalar("select customer_detail($1)").bind(id),
    )
    .await?;
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
        sql: "select customer_document_add($1, $2)",
        parent: id,
    };
    attach(&state, &caller, key, multipart, to).await
}
