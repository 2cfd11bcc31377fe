//! The audit API (B2B-10, `sql/api/audit.sql`), for holders of `audit.read`
//! (super_admin and director by default):
//!
//! - `GET /api/audit`: the tenant's audit log, newest first, keyset-paged,
//!   filtered by table, record, actor and time;
//! - `GET /api/audit/verify`: every hash chain of the tenant's log checked
//!   entry by entry (`bizos.audit_verify`), intact or broken at an entry;
//! - a record's history: `GET /api/leads/{id}/history`,
//!   `/api/tickets/{id}/history` and `/api/invoices/{id}/history`, the
//!   entries of a record the caller can read (404 otherwise), as pages of
//!   `GET /api/audit`. Routes of their own rather than a `history` key of
//!   the detail responses: a detail read stays as cheap as it was, the
//!   history pages like the log, and it has its own permission (a
//!   salesperson reads their lead, not its audit trail).
//!
//! The before/after images are masked for readers without `audit.unmask`
//! (super_admin holds it, director does not) exactly as the analytics views
//! mask the tables: personal columns by the extension's maskers, other
//! text through `bizos.pii_mask`; `masked` says which an entry is.

use std::collections::BTreeMap;

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::list::Page;
use super::openapi::ErrorResponse;
use super::route::read_route;
use super::shapes::shapes;
use crate::auth::Caller;
use crate::db::read_one;
use crate::error::{ApiError, Result};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_entries))
        .routes(routes!(verify))
        .routes(routes!(lead_history))
        .routes(routes!(ticket_history))
        .routes(routes!(invoice_history))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// An audited table: leads, tickets, invoices, profiles,
    /// role_permissions, ... (422 lists them).
    table: Option<String>,
    /// A record's key: its id (with `table`, the exact record).
    record: Option<String>,
    /// The user who made the change.
    actor: Option<Uuid>,
    /// Entries at or after (RFC 3339).
    from: Option<DateTime<Utc>>,
    /// Entries before (RFC 3339).
    to: Option<DateTime<Utc>>,
}

/// What an entry did to its row.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
#[allow(dead_code)]
pub enum AuditAction {
    Insert,
    Update,
    Delete,
}

/// Any JSON value (a column of an image or a key: a string, number,
/// boolean, null, array or object). Documented by hand: the document has no
/// schema without a type, so this one lists every type and refers to
/// itself for the members of an object.
#[derive(Deserialize)]
#[serde(transparent)]
#[allow(dead_code)]
pub struct JsonValue(Value);

impl utoipa::PartialSchema for JsonValue {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([
                Type::String,
                Type::Number,
                Type::Boolean,
                Type::Null,
                Type::Array,
                Type::Object,
            ]))
            .description(Some("Any JSON value."))
            .additional_properties(Some(utoipa::openapi::Ref::from_schema_name("JsonValue")))
            .into()
    }
}

impl ToSchema for JsonValue {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("JsonValue")
    }
}

shapes! {
    /// One change of one row.
    pub struct AuditEntry {
        /// The table of the row (leads, profiles, ...).
        table: String,
        /// The row's primary key (tenant_id and its id columns).
        record_key: BTreeMap<String, JsonValue>,
        #[schema(value_type = AuditAction)]
        action: String,
        /// The user of the request that made the change; null outside a
        /// request (migrations, the operator).
        actor: Option<Uuid>,
        /// The database login of the change (bizos_app for requests,
        /// bizos_worker for background jobs).
        db_role: String,
        at: DateTime<Utc>,
        /// The x-request-id of the request that made the change.
        request_id: Option<String>,
        /// The hash chain of the entry and its place in it.
        chain: i16,
        seq: i64,
        /// The row before the change (for UPDATE only the changed columns and
        /// the key); null for INSERT.
        before: Option<BTreeMap<String, JsonValue>>,
        /// The row after the change (for UPDATE only the changed columns and
        /// the key); null for DELETE.
        after: Option<BTreeMap<String, JsonValue>>,
        /// The images' personal data is masked (the caller lacks audit.unmask).
        masked: bool,
    }

    /// One page of audit entries, newest first.
    pub struct AuditPage {
        items: Vec<AuditEntry>,
        /// Pass as `after` for the next page; null on the last page.
        next_cursor: Option<String>,
    }
}

/// Whether a hash chain verifies.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum ChainStatus {
    Intact,
    Broken,
}

shapes! {
    /// One hash chain of the tenant's log.
    pub struct AuditChain {
        chain: i16,
        /// The sequence number of the chain's newest entry as its head records
        /// it (0: no entries); null when the chain's head is missing.
        head_seq: Option<i64>,
        #[schema(value_type = ChainStatus)]
        status: String,
        /// The first entry that does not verify (null when intact).
        broken_seq: Option<i64>,
        /// What is wrong there: an edited, deleted or reordered entry, a forged
        /// or missing head (null when intact).
        problem: Option<String>,
    }

    /// The state of the tenant's audit log.
    pub struct AuditVerification {
        /// Every chain verifies.
        intact: bool,
        checked_at: DateTime<Utc>,
        chains: Vec<AuditChain>,
    }
}

/// The page size and cursor of an audit list: 1-200 (default 50), and a
/// cursor of the shape the database gives out (the database checks it
/// again).
fn page_args(page: &Page) -> Result<(i32, Option<&str>)> {
    let limit = page.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::BadRequest {
            message: "must be between 1 and 200".into(),
            field: Some("limit".into()),
        });
    }
    let after = page.after.as_deref();
    if let Some(a) = after {
        let parts: Vec<&str> = a.split('.').collect();
        let numeric = |s: &str, max: usize| {
            let digits = s.strip_prefix('-').unwrap_or(s);
            !digits.is_empty() && digits.len() <= max && digits.bytes().all(|b| b.is_ascii_digit())
        };
        if parts.len() != 3
            || !numeric(parts[0], 18)
            || !numeric(parts[1], 4)
            || !numeric(parts[2], 18)
        {
            return Err(ApiError::BadRequest {
                message: "is not a cursor this API gave out".into(),
                field: Some("after".into()),
            });
        }
    }
    Ok((limit as i32, after))
}

#[utoipa::path(get, path = "/api/audit", tag = "audit", params(AuditFilter, Page),
    responses((status = 200, description = "the tenant's audit entries, newest first (images masked without audit.unmask)", body = AuditPage),
              (status = 403, description = "the audit.read permission is missing", body = ErrorResponse),
              (status = 422, description = "not an audited table (field table), a record that is not a key of it (field record), from after to (field from)", body = ErrorResponse)))]
async fn list_entries(
    State(state): State<AppState>,
    caller: Caller,
    Query(f): Query<AuditFilter>,
    Query(page): Query<Page>,
) -> Result<Json<Value>> {
    let (limit, after) = page_args(&page)?;
    let entries: Value = read_one(
        &state.pool,
        &caller,
        sqlx::query_scalar("select audit_entries($1, $2, $3, $4, $5, $6, $7)")
            .bind(f.table.as_deref())
            .bind(f.record.as_deref())
            .bind(f.actor)
            .bind(f.from)
            .bind(f.to)
            .bind(after)
            .bind(limit),
    )
    .await?;
    Ok(Json(entries))
}

read_route! {
    get "/api/audit/verify", tag = "audit",
    fn verify() = "select audit_chains()",
    responses((status = 200, description = "every hash chain of the tenant's audit log, intact or broken at an entry", body = AuditVerification),
              (status = 403, description = "the audit.read permission is missing", body = ErrorResponse))
}

/// The history of one record of `table`, a page of its audit entries.
async fn history(
    state: &AppState,
    caller: &Caller,
    table: &'static str,
    id: Uuid,
    page: &Page,
) -> Result<Json<Value>> {
    let (limit, after) = page_args(page)?;
    let entries: Value = read_one(
        &state.pool,
        caller,
        sqlx::query_scalar("select record_history($1, $2, $3, $4)")
            .bind(table)
            .bind(id)
            .bind(after)
            .bind(limit),
    )
    .await?;
    Ok(Json(entries))
}

#[utoipa::path(get, path = "/api/leads/{id}/history", tag = "audit", params(("id" = Uuid, Path), Page),
    responses((status = 200, description = "the lead's audit entries, newest first", body = AuditPage),
              (status = 403, description = "the audit.read permission is missing", body = ErrorResponse),
              (status = 404, description = "no such lead (or not visible)", body = ErrorResponse)))]
async fn lead_history(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(page): Query<Page>,
) -> Result<Json<Value>> {
    history(&state, &caller, "leads", id, &page).await
}

#[utoipa::path(get, path = "/api/tickets/{id}/history", tag = "audit", params(("id" = Uuid, Path), Page),
    responses((status = 200, description = "the ticket's audit entries, newest first", body = AuditPage),
              (status = 403, description = "the audit.read permission is missing", body = ErrorResponse),
              (status = 404, description = "no such ticket (or not visible)", body = ErrorResponse)))]
async fn ticket_history(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(page): Query<Page>,
) -> Result<Json<Value>> {
    history(&state, &caller, "tickets", id, &page).await
}

#[utoipa::path(get, path = "/api/invoices/{id}/history", tag = "audit", params(("id" = Uuid, Path), Page),
    responses((status = 200, description = "the invoice's audit entries, newest first", body = AuditPage),
              (status = 403, description = "the audit.read permission is missing", body = ErrorResponse),
              (status = 404, description = "no such invoice (or not visible)", body = ErrorResponse)))]
async fn invoice_history(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(page): Query<Page>,
) -> Result<Json<Value>> {
    history(&state, &caller, "invoices", id, &page).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(limit: Option<i64>, after: Option<&str>) -> Page {
        Page {
            limit,
            after: after.map(str::to_owned),
        }
    }

    #[test]
    fn page_args_take_the_databases_cursors_only() {
        assert_eq!(page_args(&page(None, None)).unwrap(), (50, None));
        assert_eq!(
            page_args(&page(Some(200), Some("1796293067000745.5.12"))).unwrap(),
            (200, Some("1796293067000745.5.12"))
        );
        for bad in [Some(0), Some(201), Some(-1)] {
            let e = page_args(&page(bad, None)).unwrap_err();
            assert_eq!(e.field(), Some("limit"));
        }
        for junk in ["", "1.2", "a.b.c", "1.2.3.4", "1.99999.3", "1..3"] {
            let e = page_args(&page(None, Some(junk))).unwrap_err();
            assert_eq!(e.field(), Some("after"), "{junk}");
        }
    }
}
