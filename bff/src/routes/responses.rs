//! The documented shapes of every successful response: the jsonb the SQL
//! functions return and the rows of the list/detail views. Handlers send
//! what the database gives; these types only document it, with
//! `deny_unknown_fields` so the document says "exactly these keys" and the
//! conformance test (`tests/tests/suite/http/contract.rs`) fails on any drift
//! between the database and this file.
//!
//! Conventions: timestamps are RFC 3339 strings, dates `YYYY-MM-DD`,
//! numeric columns JSON numbers with their exact digits ([`Numeric`]). A
//! nullable column is an `Option` (present as null); a key the function
//! strips when null is an `Option` too.
#![allow(dead_code)]

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

/// A numeric column as the database stores it: an exact decimal, sent as a
/// JSON number with every digit (`12345678901234.5678`, `110.00`), never
/// rounded through a binary float on the way.
pub struct Numeric(serde_json::Number);

impl<'de> Deserialize<'de> for Numeric {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde_json::Number::deserialize(d).map(Numeric)
    }
}

impl utoipa::PartialSchema for Numeric {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::Number)
            .format(Some(SchemaFormat::Custom("decimal".into())))
            .description(Some(
                "An exact decimal (a numeric column): a JSON number with every digit as stored, \
                 e.g. 12345678901234.5678 or 110.00. Parse it into a decimal type: a binary \
                 float (f64, double) keeps only about 15-17 significant digits.",
            ))
            .into()
    }
}

impl ToSchema for Numeric {
    fn name() -> std::borrow::Cow<'static, str> {
        "Numeric".into()
    }
}

// ------------------------------------------------------------------ leads

/// Declares a struct with the columns of `leads` plus `extra` fields, so the
/// list row and the detail share one list of columns.
macro_rules! lead_row {
    ($(#[$m:meta])* $name:ident { $($extra:tt)* }) => {
        $(#[$m])*
        #[derive(Deserialize, ToSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            tenant_id: Uuid,
            lead_id: Uuid,
            /// LEAD-YYYY-NNNNNN
            lead_no: Option<String>,
            channel: crate::payload::Channel,
            status: crate::payload::LeadState,
            company_name: String,
            contact_name: Option<String>,
            contact_email: Option<String>,
            contact_phone: Option<String>,
            npwp: Option<String>,
            city: Option<String>,
            notes: Option<String>,
            customer_id: Uuid,
            prospect_id: Uuid,
            sales_owner_user_id: Option<Uuid>,
            assigned_at: Option<DateTime<Utc>>,
            created_by: Option<Uuid>,
            created_at: DateTime<Utc>,
            updated_at: DateTime<Utc>,
            /// The key of the row in the file it was imported from.
            external_ref: Option<String>,
            /// Handed over to the owner of an existing customer its creator
            /// may not read (the creator no longer sees it).
            handed_over: bool,
            $($extra)*
        }
    };
}

lead_row!(
    /// A lead as the caller may read it (a row of `leads`).
    Lead {}
);

lead_row!(
    /// A lead with its customer (null when the caller may not read it).
    LeadDetail {
        customer: Option<Customer>,
    }
);

/// Declares a struct with the columns of `customers` plus `extra` fields
/// (the list row and the detail share one list of columns).
macro_rules! customer_row {
    ($(#[$m:meta])* $name:ident { $($extra:tt)* }) => {
        $(#[$m])*
        #[derive(Deserialize, ToSchema)]
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
#[serde(deny_unknown_fields)]
pub struct Lookalikes {
    /// When the customer was last checked; null: not yet (the job is
    /// queued, or the customer was created before look-alikes were kept).
    checked_at: Option<DateTime<Utc>>,
    lookalikes: Vec<Lookalike>,
}

/// A customer with a similar name.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Lookalike {
    customer_id: Uuid,
    company_name: String,
    /// Trigram similarity of the normalised names, 0.5–1.
    similarity: f64,
}

/// One page of customers.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerPage {
    items: Vec<Customer>,
    /// Pass as `after` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// A customer in the pipeline of one owner (a row of `prospects`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Prospect {
    tenant_id: Uuid,
    prospect_id: Uuid,
    customer_id: Uuid,
    /// Null: not handed to a salesperson yet.
    owner_user_id: Option<Uuid>,
    /// NEW, CONTACTED, QUALIFIED, PROPOSAL, NEGOTIATION, WON or LOST
    stage: String,
    expected_value: Option<Numeric>,
    notes: Option<String>,
    won_at: Option<DateTime<Utc>>,
    lost_at: Option<DateTime<Utc>>,
    created_by: Option<Uuid>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// A file of a customer.
#[derive(Deserialize, ToSchema)]
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
#[serde(deny_unknown_fields)]
pub struct DocumentAdded {
    document_id: Uuid,
    customer_id: Uuid,
    object_id: Uuid,
    object: StoredObject,
}

/// `prospect_move`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProspectMoved {
    prospect_id: Uuid,
    /// The stage before.
    from: String,
    /// The stage now.
    to: String,
}

// ------------------------------------------------------------------ sales activities

macro_rules! activity_row {
    ($(#[$m:meta])* $name:ident { $($extra:tt)* }) => {
        $(#[$m])*
        #[derive(Deserialize, ToSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            tenant_id: Uuid,
            activity_id: Uuid,
            /// Whose activity it is (counts in their KPIs).
            owner_user_id: Uuid,
            activity_type: crate::payload::ActivityType,
            /// manual (logged by a user) or derived (written by the database)
            source: String,
            customer_id: Option<Uuid>,
            prospect_id: Option<Uuid>,
            lead_id: Option<Uuid>,
            occurred_at: DateTime<Utc>,
            summary: String,
            /// prospect-evidence when there is a photo.
            photo_bucket: Option<String>,
            photo_object_key: Option<String>,
            gps_lat: Option<Numeric>,
            gps_lng: Option<Numeric>,
            created_by: Option<Uuid>,
            created_at: DateTime<Utc>,
            updated_at: DateTime<Utc>,
            /// The photo (download with GET /api/objects/{id}).
            photo_object_id: Option<Uuid>,
            $($extra)*
        }
    };
}

activity_row!(
    /// A sales activity (a row of `sales_activities`).
    Activity {}
);

activity_row!(
    /// A visit logged with its photo (`sales_activity_create`), and the
    /// stored photo.
    VisitLogged {
        object: StoredObject,
    }
);

/// One page of sales activities.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivityPage {
    items: Vec<Activity>,
    next_cursor: Option<String>,
}

/// `crm_create_lead_bundle`: the lead, and what dedup found. Keys the
/// caller may not learn (the customer and prospect of a customer hidden
/// from them) are left out; `handed_over` says the lead went to the
/// owner of an existing customer.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadCreated {
    lead_id: Uuid,
    lead_no: String,
    customer_id: Option<Uuid>,
    prospect_id: Option<Uuid>,
    /// The RFQ ticket, when `rfq` was sent.
    ticket_id: Option<Uuid>,
    ticket_no: Option<String>,
    /// A new customer was created (no existing one matched).
    customer_created: Option<bool>,
    /// npwp, email, phone or company: the key an existing customer matched on.
    matched_on: Option<String>,
    /// Customers a person should look at (only ones the caller may read).
    candidates: Option<Vec<Candidate>>,
    /// The lead went to the owner of a matched customer the caller may not
    /// read; then the response shows the lead as the caller typed it
    /// (the keys below) and no customer or prospect.
    handed_over: Option<bool>,
    /// NEW or ASSIGNED
    status: Option<crate::payload::LeadState>,
    channel: Option<crate::payload::Channel>,
    company_name: Option<String>,
    contact_name: Option<String>,
    contact_email: Option<String>,
    contact_phone: Option<String>,
    npwp: Option<String>,
    city: Option<String>,
    notes: Option<String>,
}

/// A possible duplicate customer.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Candidate {
    customer_id: Uuid,
    company_name: String,
    /// "same contact, different NPWP" or "same name, another NPWP or
    /// none" (customers with similar names are listed on the new customer
    /// once checked: `lookalikes` of GET /api/customers/{id})
    reason: String,
}

/// `crm_assign_lead`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadAssigned {
    lead_id: Uuid,
    sales_owner_user_id: Uuid,
    prospect_id: Uuid,
}

/// One page of leads.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadPage {
    items: Vec<Lead>,
    /// Pass as `after` for the next page; null on the last page.
    next_cursor: Option<String>,
}

// ------------------------------------------------------------------ tickets

macro_rules! ticket_row {
    ($(#[$m:meta])* $name:ident { $($extra:tt)* }) => {
        $(#[$m])*
        #[derive(Deserialize, ToSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
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
            $($extra)*
        }
    };
}

ticket_row!(
    /// A ticket as the caller may read it (a row of `v_tickets`: customer
    /// details of masked tickets hidden from ops).
    Ticket {}
);

ticket_row!(
    /// A ticket with its messages and attachments.
    TicketDetail {
        messages: Vec<TicketMessage>,
        attachments: Vec<AttachmentInfo>,
    }
);

/// A message of a ticket (a row of `ticket_messages`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
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
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
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
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketCreated {
    ticket_id: Uuid,
    ticket_no: String,
    ticket_type: crate::payload::TicketType,
    status: crate::payload::TicketStatus,
}

/// `ticket_add_message`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageAdded {
    message_id: Uuid,
    ticket_id: Uuid,
    /// When the ticket got its first response (this message, or earlier).
    first_response_at: Option<DateTime<Utc>>,
}

/// `ticket_attachment_add`, with the stored file.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachmentAdded {
    attachment_id: Uuid,
    ticket_id: Uuid,
    object_id: Uuid,
    object: StoredObject,
}

/// One page of tickets.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketPage {
    items: Vec<Ticket>,
    next_cursor: Option<String>,
}

// ------------------------------------------------------------------ files

/// A stored file (a row of `objects`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StoredObject {
    tenant_id: Uuid,
    object_id: Uuid,
    bucket: String,
    /// Where the bytes are: `<tenant>/<bucket>/<object_id>`.
    object_key: String,
    file_name: String,
    content_type: String,
    size_bytes: i64,
    /// Hex SHA-256 of the bytes.
    sha256: String,
    created_by: Option<Uuid>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

// ------------------------------------------------------------------ KPI

/// `kpi_target_create`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
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
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryCreated {
    entry_id: Uuid,
    /// An IMPORTED entry of the same import row was updated instead.
    replayed: bool,
    evidence_ids: Vec<Uuid>,
}

/// `kpi_evidence_add`, with the stored file.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceAdded {
    evidence_id: Uuid,
    entry_id: Uuid,
    object_id: Uuid,
    object: StoredObject,
}

/// The actuals of the requested metrics.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Actuals {
    items: Vec<Actual>,
}

/// `kpi_actual`: a metric's value over the period, or NA with a reason.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Period {
    from: NaiveDate,
    to: NaiveDate,
}

// ------------------------------------------------------------------ imports

/// An import's progress and counts (`import_state`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportState {
    import_id: Uuid,
    /// leads, customers, invoices, payments or kpi_entries
    module: String,
    object_id: Uuid,
    file_name: String,
    columns: Vec<String>,
    /// staged, processing, done or failed
    status: String,
    total_rows: i64,
    processed_rows: i64,
    ok_rows: i64,
    error_rows: i64,
    pending_rows: i64,
    created_by: Option<Uuid>,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

/// An import with a page of its row errors.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportDetail {
    import: ImportState,
    errors: Vec<ImportRowError>,
    /// Pass as `errors_after` for the next page of errors; null on the last.
    next_errors_after: Option<i64>,
}

/// A row the import refused, with the reason.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportRowError {
    /// The line of the file (1 = the first data row).
    row_no: i64,
    field: Option<String>,
    message: Option<String>,
    /// The row's cells by column name (empty cells absent).
    data: BTreeMap<String, String>,
}

// ------------------------------------------------------------------ receivables

macro_rules! invoice_row {
    ($(#[$m:meta])* $name:ident { $($extra:tt)* }) => {
        $(#[$m])*
        #[derive(Deserialize, ToSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            tenant_id: Uuid,
            invoice_id: Uuid,
            /// INV-YYYY-NNNNNN
            invoice_no: Option<String>,
            customer_id: Uuid,
            issue_date: NaiveDate,
            due_date: NaiveDate,
            currency: String,
            subtotal: Numeric,
            tax: Numeric,
            total: Numeric,
            amount_paid: Numeric,
            status: crate::payload::InvoiceStatus,
            notes: Option<String>,
            collection_ticket_id: Option<Uuid>,
            issued_at: Option<DateTime<Utc>>,
            paid_at: Option<DateTime<Utc>>,
            voided_at: Option<DateTime<Utc>>,
            created_by: Option<Uuid>,
            created_at: DateTime<Utc>,
            updated_at: DateTime<Utc>,
            external_ref: Option<String>,
            /// The customer's name (null when the caller may not read it).
            company_name: Option<String>,
            outstanding: Numeric,
            days_past_due: i64,
            is_overdue: bool,
            /// current, 1-30, 31-60, 61-90 or >90 (null when nothing is outstanding)
            aging_bucket: Option<String>,
            $($extra)*
        }
    };
}

invoice_row!(
    /// An invoice with what is outstanding (a row of `v_invoices`).
    Invoice {}
);

invoice_row!(
    /// An invoice with its payments.
    InvoiceDetail {
        payments: Vec<Payment>,
    }
);

/// A payment (a row of `payments`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Payment {
    tenant_id: Uuid,
    payment_id: Uuid,
    payment_no: Option<String>,
    invoice_id: Uuid,
    paid_on: NaiveDate,
    amount: Numeric,
    method: crate::payload::PaymentMethod,
    reference: Option<String>,
    notes: Option<String>,
    created_by: Option<Uuid>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// `invoice_create`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvoiceCreated {
    invoice_id: Uuid,
    invoice_no: Option<String>,
    status: crate::payload::NewInvoiceStatus,
    subtotal: Numeric,
    tax: Numeric,
    total: Numeric,
    due_date: NaiveDate,
    /// The reasons of the tenant's warn rules (the invoice was written).
    warnings: Vec<SopReason>,
}

/// `payment_record`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentRecorded {
    payment_id: Uuid,
    payment_no: Option<String>,
    invoice_id: Uuid,
    outstanding: Numeric,
    /// ISSUED or PAID
    invoice_status: crate::payload::InvoiceStatus,
    /// The same bank reference was already recorded with the same values.
    replayed: bool,
}

/// `create_collection_ticket`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectionTicket {
    ticket_id: Uuid,
    ticket_no: String,
    invoice_id: Uuid,
    /// false when the invoice already had its collection ticket.
    created: bool,
}

/// One page of invoices.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvoicePage {
    items: Vec<Invoice>,
    next_cursor: Option<String>,
}

/// AR aging rows.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Aging {
    items: Vec<AgingRow>,
}

/// Outstanding of one customer (or, with `is_total`, of all) in one
/// currency by days past due (a row of `v_ar_aging`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgingRow {
    tenant_id: Uuid,
    /// Null on the total row.
    customer_id: Option<Uuid>,
    company_name: Option<String>,
    currency: String,
    is_total: bool,
    current: Numeric,
    d1_30: Numeric,
    d31_60: Numeric,
    d61_90: Numeric,
    d90_plus: Numeric,
    outstanding: Numeric,
    overdue: Numeric,
    open_invoices: i64,
}

// ------------------------------------------------------------------ jobs

/// A background job's state (`v_jobs`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobState {
    job_id: Uuid,
    tenant_id: Uuid,
    kind: crate::payload::JobKind,
    status: crate::payload::JobStatus,
    /// Higher runs first within the tenant.
    priority: i32,
    /// Claims so far.
    attempts: i32,
    /// Claims before the job is dead-lettered.
    max_attempts: i32,
    /// Not started before this time (retries wait here).
    run_at: DateTime<Utc>,
    progress_done: Option<i64>,
    progress_total: Option<i64>,
    /// The error of the last failed attempt.
    last_error: Option<String>,
    dedup_key: Option<String>,
    created_by: Option<Uuid>,
    /// The x-request-id of the request that enqueued it.
    request_id: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

// ------------------------------------------------------------------ SOP rules and pre-check

/// One failing check of an SOP rule.
#[derive(Deserialize, serde::Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SopReason {
    /// The rule's name.
    rule: String,
    rule_id: Uuid,
    kind: crate::payload::SopRuleKind,
    /// The draft's field at fault (`tax`, `lines[0].discount_pct`).
    field: String,
    message: String,
    severity: crate::payload::SopSeverity,
}

/// The parameters of a rule (each kind takes some of them; see
/// sop_rule_kinds).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SopParameters {
    /// vat_ppn: the PPN class of lines and drafts that do not say.
    luxury: Option<bool>,
    /// vat_ppn, totals_match: the difference allowed.
    tolerance: Option<Numeric>,
    /// max_discount: the highest discount in percent (equal passes).
    max_pct: Option<Numeric>,
    /// due_date: days the due date is at least after the issue date.
    min_days: Option<i32>,
    /// due_date: the terms of customers without payment terms.
    default_terms_days: Option<i32>,
    /// npwp_b2b: the total above which a B2B invoice needs an NPWP.
    threshold: Option<Numeric>,
    /// npwp_b2b: whether a draft that does not say is B2B.
    b2b_default: Option<bool>,
}

/// `sop_rule_json`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SopRule {
    rule_id: Uuid,
    kind: crate::payload::SopRuleKind,
    name: String,
    description: Option<String>,
    /// As set on the rule.
    parameters: SopParameters,
    /// The kind's defaults overlaid with the rule's parameters: what is applied.
    effective_parameters: SopParameters,
    severity: crate::payload::SopSeverity,
    enabled: bool,
    active_from: Option<NaiveDate>,
    active_to: Option<NaiveDate>,
    /// Applied to a draft issued today (enabled and within its dates).
    applies_today: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// `sop_rule_list`: in the order the rules are applied.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SopRuleList {
    items: Vec<SopRule>,
}

/// `sop_rule_delete`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SopRuleDeleted {
    rule_id: Uuid,
    deleted: bool,
}

/// The draft's money and dates as the rules computed them.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrecheckFigures {
    /// The sum of the line amounts (null without lines).
    lines_subtotal: Option<Numeric>,
    /// The draft's subtotal, else the sum of the lines.
    subtotal: Option<Numeric>,
    /// The PPN tax base: 11/12 of the non-luxury price + the luxury price.
    dpp: Option<Numeric>,
    /// 12% of the DPP, half-up to the rupiah once per invoice.
    ppn_expected: Option<Numeric>,
    /// The draft's tax, else the expected PPN.
    tax: Option<Numeric>,
    total: Option<Numeric>,
    issue_date: NaiveDate,
    due_date: NaiveDate,
    /// The customer's payment terms (null: none agreed).
    terms_days: Option<i32>,
}

/// Where advisory notes came from.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PrecheckNotesSource {
    Model,
    Cache,
    /// No model answered: no notes.
    Unavailable,
}

/// Advisory notes of a model on the draft and its reasons (never change
/// `valid`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrecheckNotes {
    source: PrecheckNotesSource,
    /// Null when no model answered.
    text: Option<String>,
    /// The gateway's ledger rows of the call.
    call_ids: Vec<Uuid>,
}

/// `precheck_invoice`, with notes when asked for.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrecheckResult {
    /// No reason of a block rule.
    valid: bool,
    /// Every failing check, in the order the rules run.
    reasons: Vec<SopReason>,
    figures: PrecheckFigures,
    /// The names of the rules applied (enabled and active on the issue date).
    rules: Vec<String>,
    /// With `notes=true` only.
    notes: Option<PrecheckNotes>,
}

// ------------------------------------------------------------------ files (lists)

/// One page of stored files the caller may read.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectPage {
    items: Vec<StoredObject>,
    next_cursor: Option<String>,
}

// ------------------------------------------------------------------ KPI targets and progress

/// A KPI target (a row of `v_kpi_targets`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
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
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KpiTargetPage {
    items: Vec<KpiTargetRow>,
    next_cursor: Option<String>,
}

/// Targets with their actuals (`kpi_progress`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KpiProgress {
    items: Vec<KpiProgressRow>,
}

/// A target and its actual over the target's period
/// (`v_kpi_actual_vs_target`), with the progress towards it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
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

/// The state of a KPI target on the tenant's today (`kpi_target_status`).
#[derive(Deserialize, ToSchema)]
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

// ------------------------------------------------------------------ SLA

/// The SLA of one ticket (a row of `v_sla_status`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
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
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlaPage {
    items: Vec<SlaStatus>,
    next_cursor: Option<String>,
}

/// The median first response per day.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FirstResponseDaily {
    items: Vec<FirstResponseDay>,
}

/// The tickets created on one day of the tenant's calendar (a row of
/// `v_ticket_first_response_daily_median`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
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

// ------------------------------------------------------------------ DSO

/// Rolling 30-day DSO per currency and day.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Dso {
    items: Vec<DsoDay>,
}

/// DSO on one day (a row of `v_dso_rolling_30`): AR as of the day over the
/// credit sales of the 30 days up to it, x 30.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DsoDay {
    tenant_id: Uuid,
    currency: String,
    day: NaiveDate,
    /// AR as of the day: on the tenant's today, the aging's outstanding.
    ar_outstanding: Numeric,
    credit_sales_30d: Numeric,
    /// Null when the window had no credit sales.
    dso_days: Option<Numeric>,
}
