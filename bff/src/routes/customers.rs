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
use super::files::StoredObject;
use super::leads::Lead;
use super::openapi::ErrorResponse;
use super::prospects::Prospect;
use super::receivables::Invoice;
use super::route::{list_route, rpc_route};
use super::shapes::shapes;
use super::shapes::{customer_row, Customer};
use super::write::{Attach, Writer};
use crate::auth::Caller;
use crate::db::read_one;
use crate::error::{ApiError, Result};
use crate::extract::Multipart;
use crate::extract::{Json, Path};
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

list_route! {
    get "/api/customers", tag = "customers",
    fn list_customers("customers" by "customer_id") |list, f: CustomerFilter| {
        list.filter("city", "=", f.city)
            .filter("created_at", ">=", f.created_from)
            .filter("created_at", "<", f.created_to)
            .search(&["company_name", "npwp", "email", "phone"], f.q);
    },
    responses((status = 200, description = "customers the caller may see, newest first", body = CustomerPage))
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
    write: Writer,
    Path(id): Path<Uuid>,
    multipart: Multipart,
) -> Result<Response> {
    let to = Attach {
        bucket: "customer-documents",
        sql: "select customer_document_add($1, $2)",
        parent: id,
    };
    write.attach(multipart, to).await
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

shapes! {
    /// What a merge moved to the surviving customer, per table.
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
        /// Credit notes, with their invoices (their numbers unchanged).
        credit_notes: i64,
        customer_documents: i64,
        /// Earlier merges into the duplicate, now the survivor's.
        customer_merges: i64,
    }

    /// `customer_merge`.
    pub struct CustomerMerged {
        /// The surviving customer.
        customer_id: Uuid,
        /// The duplicate, now deleted; its audit history stays under this id
        /// (`GET /api/audit?table=customers&record=`).
        merged_customer_id: Uuid,
        merge_id: Uuid,
        moved: MergeMoved,
    }

    /// The customers merged into one, newest first.
    pub struct CustomerMerges {
        items: Vec<CustomerMergeRecord>,
    }

    /// A customer merged into this one (`customer_merges`).
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
}

rpc_route! {
    patch "/api/customers/{id}", tag = "customers",
    fn update_customer(id, CustomerPatch) = "select customer_update($1, $2)",
    responses((status = 200, description = "the changed customer", body = Customer),
              (status = 403, description = "the caller may not change this customer", body = ErrorResponse),
              (status = 404, description = "no such customer (or not visible)", body = ErrorResponse),
              (status = 409, description = "another customer holds the NPWP, e-mail, phone or company name (named when the caller may read it)", body = ErrorResponse),
              (status = 422, description = "a field is invalid or nothing to change", body = ErrorResponse))
}

rpc_route! {
    post "/api/customers/{id}/merge", tag = "customers",
    fn merge_customer(id, CustomerMerge) =
        "select customer_merge($1, ($2 ->> 'duplicate_id')::uuid)",
    responses((status = 200, description = "the duplicate merged into the customer of the path", body = CustomerMerged),
              (status = 403, description = "the caller may not change both customers", body = ErrorResponse),
              (status = 404, description = "no such customer or duplicate (or not visible)", body = ErrorResponse),
              (status = 422, description = "the same customer twice, or two different NPWPs", body = ErrorResponse))
}

#[utoipa::path(get, path = "/api/customers/{id}/merges", tag = "customers", params(("id" = Uuid, Path)),
    responses((status = 200, description = "the customers merged into this one, newest first", body = CustomerMerges),
              (status = 404, description = "no such customer (or not visible)", body = ErrorResponse)))]
async fn list_merges(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<Json<Value>> {
    let merges: Option<Value> = read_one(
        &state.pool,
        &caller,
        sqlx::query_scalar("select customer_merges_of($1)").bind(id),
    )
    .await?;
    merges
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no customer {id}")))
}

// ------------------------------------------------------------------ responses
// The documented shapes of what the database returns (see shapes.rs).

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

shapes! {
    /// The customers with names similar to a customer (pg_trgm similarity of
    /// the normalised names at least 0.5), found after the customer was
    /// created by the job `customer.lookalikes`: those its own check found and
    /// newer customers whose check found it, only those the caller may read,
    /// the most similar first (at most 20).
    pub struct Lookalikes {
        /// When the customer was last checked; null: not yet (the job is
        /// queued, or the customer was created before look-alikes were kept).
        checked_at: Option<DateTime<Utc>>,
        lookalikes: Vec<Lookalike>,
    }

    /// A customer with a similar name.
    pub struct Lookalike {
        customer_id: Uuid,
        company_name: String,
        /// Trigram similarity of the normalised names, 0.5–1.
        similarity: f64,
    }

    /// One page of customers.
    pub struct CustomerPage {
        items: Vec<Customer>,
        /// Pass as `after` for the next page; null on the last page.
        next_cursor: Option<String>,
    }

    /// A file of a customer.
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
    pub struct DocumentAdded {
        document_id: Uuid,
        customer_id: Uuid,
        object_id: Uuid,
        object: StoredObject,
    }
}
