//! Tickets (TCK-1..3): create, change, messages, attachments, list, read.

use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::files::FileUpload;
use super::openapi::ErrorResponse;
use super::route::{list_route, read_route, rpc_route};
use super::shapes::shapes;
use super::write::{Attach, Writer};
use crate::error::Result;
use crate::extract::Multipart;
use crate::extract::Path;

use super::files::StoredObject;
use super::shapes::Numeric;
use crate::idempotency::IdempotencyKey;
use crate::payload::{
    blank_is_none, Change, DeptCode, Id, NonBlank, Patch, Priority, Quantity, Text, TicketStatus,
    TicketType,
};
use crate::state::AppState;
use chrono::DateTime;
use chrono::Utc;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_ticket, list_tickets))
        .routes(routes!(update_ticket, get_ticket))
        .routes(routes!(add_message))
}

/// Upload routes (their own body limit and timeout).
pub fn upload_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(add_attachment))
}

/// `ticket_create`. RFQs (`inquiry_tariff`) also take origin and
/// destination (required for them), commodity, weight_kg, volume_cbm and
/// customer contact snapshots; the other types take none of those.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketCreate {
    ticket_type: TicketType,
    subject: NonBlank<200>,
    /// The department that works the ticket (e.g. OPS-JKT, FIN).
    dept_target: DeptCode,
    description: Option<Text<20000>>,
    /// normal when absent.
    #[serde(default, deserialize_with = "blank_is_none")]
    priority: Option<Priority>,
    /// Hide the customer from ops (default: true for RFQs).
    need_customer_masking: Option<bool>,
    #[serde(default, deserialize_with = "blank_is_none")]
    related_lead_id: Option<Id>,
    #[serde(default, deserialize_with = "blank_is_none")]
    related_customer_id: Option<Id>,
    #[serde(default, deserialize_with = "blank_is_none")]
    assignee_user_id: Option<Id>,
    origin: Option<Text<200>>,
    destination: Option<Text<200>>,
    commodity: Option<Text<200>>,
    #[serde(default, deserialize_with = "blank_is_none")]
    weight_kg: Option<Quantity>,
    #[serde(default, deserialize_with = "blank_is_none")]
    volume_cbm: Option<Quantity>,
    contact_name: Option<Text<200>>,
    contact_phone: Option<Text<40>>,
    contact_email: Option<Text<254>>,
    company_name: Option<Text<200>>,
}

/// `ticket_update`: only the keys sent change (at least one). `status`
/// moves through the lifecycle, with an optional `note` that becomes a
/// reply; `assignee_user_id` null unassigns.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketPatch {
    #[serde(default, skip_serializing_if = "Change::is_absent")]
    #[schema(value_type = TicketStatus)]
    status: Change<TicketStatus>,
    /// Goes with a status change only.
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    #[schema(value_type = Option<Text<10000>>)]
    note: Patch<Text<10000>>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    #[schema(value_type = Option<Id>)]
    assignee_user_id: Patch<Id>,
    #[serde(default, skip_serializing_if = "Change::is_absent")]
    #[schema(value_type = NonBlank<200>)]
    subject: Change<NonBlank<200>>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    #[schema(value_type = Option<Text<10000>>)]
    description: Patch<Text<10000>>,
    #[serde(default, skip_serializing_if = "Change::is_absent")]
    #[schema(value_type = Priority)]
    priority: Change<Priority>,
}

/// `ticket_add_message`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageCreate {
    body: NonBlank<20000>,
    /// Internal notes are not replies to the customer (default false).
    internal: Option<bool>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TicketFilter {
    ticket_type: Option<String>,
    /// Inquiry or ticket status, e.g. OPEN.
    status: Option<TicketStatus>,
    dept_target: Option<String>,
    priority: Option<Priority>,
    assignee_user_id: Option<Uuid>,
    related_customer_id: Option<Uuid>,
    created_from: Option<chrono::DateTime<chrono::Utc>>,
    created_to: Option<chrono::DateTime<chrono::Utc>>,
    /// Substring of the ticket number or subject.
    q: Option<String>,
}

rpc_route! {
    post "/api/tickets", tag = "tickets",
    fn create_ticket(TicketCreate) = "select ticket_create($1)",
    responses((status = 201, description = "ticket created", body = TicketCreated),
              (status = 422, description = "a field is invalid", body = ErrorResponse))
}

rpc_route! {
    patch "/api/tickets/{id}", tag = "tickets",
    fn update_ticket(id, TicketPatch) = "select ticket_update($1, $2)",
    responses((status = 200, description = "the changed ticket as the caller may read it (as GET /api/tickets/{id}, without messages and attachments)", body = Ticket),
              (status = 422, description = "not an allowed transition, nothing to change, or a field is invalid", body = ErrorResponse))
}

rpc_route! {
    post "/api/tickets/{id}/messages", tag = "tickets",
    fn add_message(id, MessageCreate) =
        "select ticket_add_message($1, $2 ->> 'body', ($2 ->> 'internal')::boolean)",
    responses((status = 201, description = "message added", body = MessageAdded),
              (status = 404, description = "no such ticket (or not visible)", body = ErrorResponse))
}

#[utoipa::path(post, path = "/api/tickets/{id}/attachments", tag = "tickets",
    request_body(content = FileUpload, content_type = "multipart/form-data"),
    params(("id" = Uuid, Path), IdempotencyKey),
    responses((status = 201, description = "file stored and attached", body = AttachmentAdded),
              (status = 413, description = "over the bucket's size limit", body = ErrorResponse),
              (status = 415, description = "a file type the bucket does not take", body = ErrorResponse)))]
async fn add_attachment(
    write: Writer,
    Path(id): Path<Uuid>,
    multipart: Multipart,
) -> Result<Response> {
    let to = Attach {
        bucket: "ticket-attachments",
        sql: "select ticket_attachment_add($1, $2)",
        parent: id,
    };
    write.attach(multipart, to).await
}

list_route! {
    get "/api/tickets", tag = "tickets",
    fn list_tickets("v_tickets" by "ticket_id") |list, f: TicketFilter| {
        list.filter("ticket_type", "=", f.ticket_type.map(|s| s.to_lowercase()))
            .filter("status", "=", f.status.map(TicketStatus::into_string))
            .filter("dept_target", "=", f.dept_target)
            .filter("priority", "=", f.priority.map(Priority::into_string))
            .filter("assignee_user_id", "=", f.assignee_user_id)
            .filter("related_customer_id", "=", f.related_customer_id)
            .filter("created_at", ">=", f.created_from)
            .filter("created_at", "<", f.created_to)
            .search(&["ticket_no", "subject"], f.q);
    },
    responses((status = 200, description = "tickets the caller may see, newest first (customer details masked for ops)", body = TicketPage))
}

read_route! {
    get "/api/tickets/{id}", tag = "tickets",
    fn get_ticket(id) =
        "select to_jsonb(t)
                || jsonb_build_object(
                     'messages', coalesce((select jsonb_agg(to_jsonb(m) order by m.created_at)
                                             from ticket_messages m
                                            where m.tenant_id = t.tenant_id and m.ticket_id = t.ticket_id), '[]'),
                     'attachments', coalesce((select jsonb_agg(jsonb_build_object(
                                                'attachment_id', a.attachment_id, 'object_id', a.object_id,
                                                'file_name', o.file_name, 'content_type', o.content_type,
                                                'size_bytes', o.size_bytes, 'sha256', o.sha256,
                                                'created_at', a.created_at) order by a.created_at)
                                                from ticket_attachments a
                                                join objects o on o.tenant_id = a.tenant_id and o.object_id = a.object_id
                                               where a.tenant_id = t.tenant_id and a.ticket_id = t.ticket_id), '[]'))
           from v_tickets t
          where t.tenant_id = $2 and t.ticket_id = $1",
    missing = "no ticket",
    responses((status = 200, description = "the ticket with its messages and attachments", body = TicketDetail),
              (status = 404, description = "no such ticket (or not visible)", body = ErrorResponse))
}

// ------------------------------------------------------------------ responses
// The documented shapes of what the database returns (see shapes.rs).

shapes! {
    columns {
        tenant_id: Uuid,
        ticket_id: Uuid,
        ticket_no: String,
        ticket_type: crate::payload::TicketType,
        subject: String,
        description: Option<String>,
        priority: crate::payload::Priority,
        dept_target: String,
        /// inquiry_status of RFQs, ticket_status of the others.
        status: crate::payload::TicketStatus,
        inquiry_status: Option<crate::payload::TicketStatus>,
        ticket_status: Option<crate::payload::TicketStatus>,
        need_customer_masking: bool,
        related_lead_id: Option<Uuid>,
        related_customer_id: Option<Uuid>,
        assignee_user_id: Option<Uuid>,
        created_by: Option<Uuid>,
        origin: Option<String>,
        destination: Option<String>,
        commodity: Option<String>,
        weight_kg: Option<Numeric>,
        volume_cbm: Option<Numeric>,
        /// "MASKED" for ops on masked tickets (RFQs).
        company_name: Option<String>,
        /// "***" for ops on masked tickets.
        contact_name: Option<String>,
        /// "***" for ops on masked tickets.
        contact_phone: Option<String>,
        /// "***" for ops on masked tickets.
        contact_email: Option<String>,
        first_response_at: Option<DateTime<Utc>>,
        quoted_at: Option<DateTime<Utc>>,
        resolved_at: Option<DateTime<Utc>>,
        closed_at: Option<DateTime<Utc>>,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
    }

    /// A ticket as the caller may read it (a row of `v_tickets`: customer
    /// details of masked tickets hidden from ops).
    pub struct Ticket {}

    /// A ticket with its messages and attachments.
    pub struct TicketDetail {
        messages: Vec<TicketMessage>,
        attachments: Vec<AttachmentInfo>,
    }
}

shapes! {
    /// A message of a ticket (a row of `ticket_messages`).
    pub struct TicketMessage {
        tenant_id: Uuid,
        message_id: Uuid,
        ticket_id: Uuid,
        author_user_id: Option<Uuid>,
        body: String,
        internal: bool,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
    }

    /// A file attached to a ticket.
    pub struct AttachmentInfo {
        attachment_id: Uuid,
        object_id: Uuid,
        file_name: String,
        content_type: String,
        size_bytes: i64,
        sha256: String,
        created_at: DateTime<Utc>,
    }

    /// `ticket_create`.
    pub struct TicketCreated {
        ticket_id: Uuid,
        ticket_no: String,
        ticket_type: crate::payload::TicketType,
        status: crate::payload::TicketStatus,
    }

    /// `ticket_add_message`.
    pub struct MessageAdded {
        message_id: Uuid,
        ticket_id: Uuid,
        /// When the ticket got its first response (this message, or earlier).
        first_response_at: Option<DateTime<Utc>>,
    }

    /// `ticket_attachment_add`, with the stored file.
    pub struct AttachmentAdded {
        attachment_id: Uuid,
        ticket_id: Uuid,
        object_id: Uuid,
        object: StoredObject,
    }

    /// One page of tickets.
    pub struct TicketPage {
        items: Vec<Ticket>,
        next_cursor: Option<String>,
    }
}
