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
use super::files::StoredObject;
use super::leads::Lead;
use super::list::{List, Page, Paged};
use super::openapi::ErrorResponse;
use super::prospects::Prospect;
use super::receivables::Invoice;
use super::write::{attach, Attach};
use crate::auth::Caller;
use crate::db::{read_as, read_one};
use crate::error::{ApiError, Result};
use crate::extract::Multipart;
use crate::extract::{Json, Path, Query};
use crate::idempotency::IdempotencyKey;
use crate::state::AppState;
use chrono::DateTime;
use chrono::Utc;
use utoipa::ToSchema;

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

// ------------------------------------------------------------------ responses
// The documented shapes of what the database returns (see shapes.rs).

/// Declares a struct with the columns of `customers` plus `extra` fields
/// (the list row and the detail share one list of columns).
macro_rules! customer_row {
    ($(#[$m:meta])* $name:ident { $($extra:tt)* }) => {
        $(#[$m])*
        #[derive(Deserialize, ToSchema)]
        #[allow(dead_code)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            tenant_id: Uuid,
            customer_id: Uuid,
            company_name: String,
            npwp: Option<String>,
            email: Option<String>,
            phone: Option<String>,
            address: Option<String>,
            city: Option<String>,
            npwp_norm: Option<String>,
            email_norm: Option<String>,
            phone_norm: Option<String>,
            company_norm: Option<String>,
            created_by: Option<Uuid>,
            created_at: DateTime<Utc>,
            updated_at: DateTime<Utc>,
            /// Days from issue to due date agreed with the customer (null: none).
            payment_terms_days: Option<i32>,
            $($extra)*
        }
    };
}

customer_row!(
    /// A customer (a row of `customers`).
    Customer {}
);

customer_row!(
    /// A customer with what the caller may read of its pipeline, leads,
    /// invoices (the 100 most recent of each), documents and look-alikes.
    CustomerDetail {
        /// Its prospects (one per owner) the caller may read.
        prospects: Vec<Prospect>,
        /// Its leads the caller may read, newest first.
        leads: Vec<Lead>,
        /// Its invoices the caller may read (none for roles without AR),
        /// newest issue date first.
        invoices: Vec<Invoice>,
        /// Its files (bucket customer-documents), newest first.
        documents: Vec<CustomerDocument>,
        /// Customers with similar names, for review.
        lookalikes: Lookalikes,
    }
);

/// The customers with names similar to a customer (pg_trgm similarity of
/// the normalised names at least 0.5), found after the customer was
/// created by the job `customer.lookalikes`: those its own check found and
/// newer customers whose check found it, only those the caller may read,
/// the most similar first (at most 20).
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
pub struct Lookalikes {
    /// When the customer was last checked; null: not yet (the job is
    /// queued, or the customer was created before look-alikes were kept).
    checked_at: Option<DateTime<Utc>>,
    lookalikes: Vec<Lookalike>,
}

/// A customer with a similar name.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
pub struct Lookalike {
    customer_id: Uuid,
    company_name: String,
    /// Trigram similarity of the normalised names, 0.5–1.
    similarity: f64,
}

/// One page of customers.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
pub struct CustomerPage {
    items: Vec<Customer>,
    /// Pass as `after` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// A file of a customer.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
pub struct CustomerDocument {
    document_id: Uuid,
    /// Download with GET /api/objects/{id}.
    object_id: Uuid,
    file_name: String,
    content_type: String,
    size_bytes: i64,
    sha256: String,
    created_by: Option<Uuid>,
    created_at: DateTime<Utc>,
}

/// `customer_document_add`, with the stored file.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(deny_unknown_fields)]
pub struct DocumentAdded {
    document_id: Uuid,
    customer_id: Uuid,
    object_id: Uuid,
    object: StoredObject,
}
