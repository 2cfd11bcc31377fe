//! Receivables (AR-1, AR-2): invoices, payments, refunds, credit notes,
//! collection tickets, lists and the aging report.

use axum::extract::State;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::openapi::ErrorResponse;
use super::route::{list_route, read_route, rpc_route};
use super::shapes::shapes;
use super::shapes::Numeric;
use super::shapes::SopReason;
use crate::auth::Caller;
use crate::db::read_one;
use crate::error::{ApiError, Result};
use crate::extract::{Json, Query};
use crate::payload::{
    blank_is_none, Currency, Date, Id, Int, InvoiceStatus, NewInvoiceStatus, NonBlank,
    NonNegativeAmount, Objects, PaymentMethod, Percent, PositiveAmount, Quantity, Text,
};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_invoice, list_invoices))
        .routes(routes!(get_invoice))
        .routes(routes!(create_payment, list_payments))
        .routes(routes!(create_refund, list_refunds))
        .routes(routes!(create_credit_note, list_credit_notes))
        .routes(routes!(collection_ticket))
        .routes(routes!(aging))
        .routes(routes!(dso))
        .routes(routes!(issue_invoice))
        .routes(routes!(void_invoice))
}

/// `invoice_create` (finance): due date from `due_date` or `terms_days`
/// (default: the customer's payment terms, else 30 days), never before the
/// issue date. The tenant's SOP rules judge it first (as
/// `POST /api/precheck/invoice` does): a block rule refuses it (422 with
/// every reason in `error.reasons`), warn rules come back as `warnings`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvoiceCreate {
    customer_id: Id,
    /// Required without lines; with lines, their sum when absent.
    #[serde(default, deserialize_with = "blank_is_none")]
    subtotal: Option<PositiveAmount>,
    /// At most the subtotal (PPN: 12% of a DPP of 11/12 of the price, i.e.
    /// 11%, for non-luxury goods). Required without lines; with lines, the
    /// PPN the rules expect when absent.
    #[serde(default, deserialize_with = "blank_is_none")]
    tax: Option<NonNegativeAmount>,
    /// Checked against subtotal + tax when given.
    #[serde(default, deserialize_with = "blank_is_none")]
    total: Option<NonNegativeAmount>,
    /// Sold to a business (the NPWP rule); absent: the rule's default.
    #[serde(default, deserialize_with = "blank_is_none")]
    b2b: Option<bool>,
    /// Luxury goods (PPN 12% of the full price) for lines that do not say.
    #[serde(default, deserialize_with = "blank_is_none")]
    luxury: Option<bool>,
    /// The invoice's lines, stored with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<InvoiceLineDraft>>, max_items = 200)]
    lines: Option<Objects<InvoiceLineDraft, 200>>,
    /// Today when absent.
    #[serde(default, deserialize_with = "blank_is_none")]
    issue_date: Option<Date>,
    #[serde(default, deserialize_with = "blank_is_none")]
    due_date: Option<Date>,
    #[serde(default, deserialize_with = "blank_is_none")]
    terms_days: Option<Int<0, 365>>,
    /// IDR when absent.
    #[serde(default, deserialize_with = "blank_is_none")]
    currency: Option<Currency>,
    /// ISSUED when absent.
    #[serde(default, deserialize_with = "blank_is_none")]
    status: Option<NewInvoiceStatus>,
    notes: Option<Text<2000>>,
}

/// A line of an invoice draft: amount = quantity x unit_price less the
/// discount, half-up to 2 decimals.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvoiceLineDraft {
    description: NonBlank<500>,
    quantity: Quantity,
    unit_price: NonNegativeAmount,
    /// Percent, 0 to 100 [default: 0].
    #[serde(default, deserialize_with = "blank_is_none")]
    discount_pct: Option<Percent>,
    /// Luxury goods (PPN 12% of the full price); absent: the invoice's class.
    #[serde(default, deserialize_with = "blank_is_none")]
    luxury: Option<bool>,
    /// The amount as the client computed it (checked by the totals rule).
    #[serde(default, deserialize_with = "blank_is_none")]
    amount: Option<NonNegativeAmount>,
}

/// `payment_record` (finance): never more than the outstanding amount; the
/// bank `reference` makes a retry return the recorded payment. The invoice
/// by `invoice_id` or `invoice_no` (one of them).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentCreate {
    #[serde(default, deserialize_with = "blank_is_none")]
    invoice_id: Option<Id>,
    invoice_no: Option<Text<40>>,
    amount: PositiveAmount,
    /// Today when absent; never in the future.
    #[serde(default, deserialize_with = "blank_is_none")]
    paid_on: Option<Date>,
    /// bank_transfer when absent.
    #[serde(default, deserialize_with = "blank_is_none")]
    method: Option<PaymentMethod>,
    reference: Option<Text<200>>,
    notes: Option<Text<2000>>,
}

/// `refund_record` (finance: payment.record): pays back (part of) a
/// payment, never more than the payment net of its earlier refunds; the
/// invoice's balance opens again by the amount (a PAID invoice is ISSUED
/// again). The payment by `payment_id` or `payment_no` (one of them).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundCreate {
    #[serde(default, deserialize_with = "blank_is_none")]
    payment_id: Option<Id>,
    payment_no: Option<Text<40>>,
    amount: PositiveAmount,
    /// Why the money goes back.
    reason: NonBlank<2000>,
    /// Today when absent; never in the future nor before the payment.
    #[serde(default, deserialize_with = "blank_is_none")]
    refunded_on: Option<Date>,
    /// bank_transfer when absent.
    #[serde(default, deserialize_with = "blank_is_none")]
    method: Option<PaymentMethod>,
    reference: Option<Text<200>>,
}

/// `credit_note_create` (finance: invoice.create): a negative document
/// against an ISSUED invoice, in its currency, never more than its open
/// balance (total less payments net of refunds less earlier credit notes);
/// numbered CN-YYYY-NNNNNN, gapless per tenant and year. The invoice by
/// `invoice_id` or `invoice_no` (one of them).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditNoteCreate {
    #[serde(default, deserialize_with = "blank_is_none")]
    invoice_id: Option<Id>,
    invoice_no: Option<Text<40>>,
    amount: PositiveAmount,
    /// Why the invoice is credited.
    reason: NonBlank<2000>,
    /// Today when absent; never in the future nor before the invoice's.
    #[serde(default, deserialize_with = "blank_is_none")]
    issue_date: Option<Date>,
    /// The invoice's currency; another one is refused.
    #[serde(default, deserialize_with = "blank_is_none")]
    currency: Option<Currency>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PaymentFilter {
    invoice_id: Option<Uuid>,
    customer_id: Option<Uuid>,
    /// Paid on or after this day.
    from: Option<NaiveDate>,
    /// Paid on or before this day.
    to: Option<NaiveDate>,
    /// Substring of the payment number or the bank reference.
    q: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RefundFilter {
    invoice_id: Option<Uuid>,
    payment_id: Option<Uuid>,
    customer_id: Option<Uuid>,
    /// Refunded on or after this day.
    from: Option<NaiveDate>,
    /// Refunded on or before this day.
    to: Option<NaiveDate>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CreditNoteFilter {
    invoice_id: Option<Uuid>,
    customer_id: Option<Uuid>,
    /// Issued on or after this day.
    from: Option<NaiveDate>,
    /// Issued on or before this day.
    to: Option<NaiveDate>,
    /// Substring of the credit note number.
    q: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InvoiceFilter {
    status: Option<InvoiceStatus>,
    customer_id: Option<Uuid>,
    /// Only invoices past due with an outstanding amount.
    overdue: Option<bool>,
    due_from: Option<NaiveDate>,
    due_to: Option<NaiveDate>,
    /// Substring of the invoice number.
    q: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DsoFilter {
    currency: Option<String>,
    /// The first day (default: 89 days before the tenant's today).
    from: Option<NaiveDate>,
    /// The last day (default: the tenant's today).
    to: Option<NaiveDate>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AgingFilter {
    customer_id: Option<Uuid>,
    currency: Option<String>,
}

rpc_route! {
    post "/api/invoices", tag = "receivables",
    fn create_invoice(InvoiceCreate) = "select invoice_create($1)",
    responses((status = 201, description = "invoice created with its INV number (and the warnings of the tenant's SOP rules)", body = InvoiceCreated),
              (status = 422, description = "a field is invalid, or a block rule of the tenant's SOP refuses the draft (error.reasons lists every reason)", body = ErrorResponse),
              (status = 403, description = "finance only", body = ErrorResponse),
              (status = 404, description = "no such customer (or not visible)", body = ErrorResponse))
}

rpc_route! {
    post "/api/payments", tag = "receivables",
    fn create_payment(PaymentCreate) = "select payment_record($1)",
    responses((status = 201, description = "payment recorded (or, with a known reference and the same values, the recorded one)", body = PaymentRecorded),
              (status = 404, description = "no such invoice (or not visible)", body = ErrorResponse),
              (status = 409, description = "the reference is recorded on the invoice with other values", body = ErrorResponse),
              (status = 422, description = "over the outstanding amount, or a field is invalid", body = ErrorResponse))
}

rpc_route! {
    post "/api/invoices/{id}/collection-ticket", tag = "receivables",
    fn collection_ticket(id) = "select create_collection_ticket($1)",
    responses((status = 200, description = "the collection ticket (created once per invoice)", body = CollectionTicket),
              (status = 422, description = "the invoice is not overdue", body = ErrorResponse))
}

list_route! {
    get "/api/invoices", tag = "receivables",
    fn list_invoices("v_invoices" by "invoice_id") |list, f: InvoiceFilter| {
        list.filter("status", "=", f.status.map(InvoiceStatus::into_string))
            .filter("customer_id", "=", f.customer_id)
            .filter("is_overdue", "=", f.overdue)
            .filter("due_date", ">=", f.due_from)
            .filter("due_date", "<=", f.due_to)
            .search(&["invoice_no"], f.q);
    },
    responses((status = 200, description = "invoices the caller may see with outstanding amounts, newest first", body = InvoicePage))
}

read_route! {
    get "/api/invoices/{id}", tag = "receivables",
    fn get_invoice(id) =
        "select to_jsonb(i) || jsonb_build_object(
                  'amount_credited', (select x.amount_credited from invoices x
                                       where x.tenant_id = i.tenant_id and x.invoice_id = i.invoice_id),
                  'payments', coalesce((select jsonb_agg(to_jsonb(p) order by p.paid_on, p.created_at)
                                          from payments p
                                         where p.tenant_id = i.tenant_id and p.invoice_id = i.invoice_id), '[]'),
                  'refunds', coalesce((select jsonb_agg(to_jsonb(r) order by r.refunded_on, r.created_at)
                                         from refunds r
                                        where r.tenant_id = i.tenant_id and r.invoice_id = i.invoice_id), '[]'),
                  'credit_notes', coalesce((select jsonb_agg(to_jsonb(c) order by c.issue_date, c.created_at)
                                              from credit_notes c
                                             where c.tenant_id = i.tenant_id and c.invoice_id = i.invoice_id), '[]'))
           from v_invoices i
          where i.tenant_id = $2 and i.invoice_id = $1",
    missing = "no invoice",
    responses((status = 200, description = "the invoice with its payments, refunds and credit notes", body = InvoiceDetail),
              (status = 404, description = "no such invoice (or not visible)", body = ErrorResponse))
}

#[utoipa::path(get, path = "/api/ar/aging", tag = "receivables", params(AgingFilter),
    responses((status = 200, description = "outstanding per customer and currency by days past due, with totals", body = Aging)))]
async fn aging(
    State(state): State<AppState>,
    caller: Caller,
    Query(f): Query<AgingFilter>,
) -> Result<Json<Value>> {
    let rows: Value = read_one(&state.pool, &caller, sqlx::query_scalar(
        "select coalesce(jsonb_agg(to_jsonb(a) order by a.currency, a.is_total, a.outstanding desc), '[]')
           from v_ar_aging a
          where a.tenant_id = $3
            and ($1::uuid is null or a.customer_id = $1)
            and ($2::text is null or a.currency = upper($2))",
    )
    .bind(f.customer_id)
    .bind(&f.currency)
    .bind(caller.tenant_id)).await?;
    Ok(Json(json!({ "items": rows })))
}

#[utoipa::path(get, path = "/api/ar/dso", tag = "receivables", params(DsoFilter),
    responses((status = 200, description = "rolling 30-day DSO per currency for each of the tenant's last 90 days (from the same ledger as the aging: AR on today = the aging's outstanding)", body = Dso),
              (status = 422, description = "to is before from", body = ErrorResponse)))]
async fn dso(
    State(state): State<AppState>,
    caller: Caller,
    Query(f): Query<DsoFilter>,
) -> Result<Json<Value>> {
    ApiError::check_period(f.from, f.to)?;
    let rows: Value = read_one(
        &state.pool,
        &caller,
        sqlx::query_scalar(
            "select coalesce(jsonb_agg(to_jsonb(d) order by d.currency, d.day), '[]')
           from v_dso_rolling_30 d
          where d.tenant_id = $4
            and ($1::text is null or d.currency = upper($1))
            and ($2::date is null or d.day >= $2)
            and ($3::date is null or d.day <= $3)",
        )
        .bind(&f.currency)
        .bind(f.from)
        .bind(f.to)
        .bind(caller.tenant_id),
    )
    .await?;
    Ok(Json(json!({ "items": rows })))
}

rpc_route! {
    post "/api/invoices/{id}/issue", tag = "receivables",
    fn issue_invoice(id) = "select invoice_issue($1)",
    responses((status = 200, description = "the invoice, now ISSUED (a receivable from its issue date)", body = Invoice),
              (status = 403, description = "finance only (invoice.create)", body = ErrorResponse),
              (status = 404, description = "no such invoice (or not visible)", body = ErrorResponse),
              (status = 422, description = "the invoice is not a DRAFT (field status)", body = ErrorResponse))
}

rpc_route! {
    post "/api/invoices/{id}/void", tag = "receivables",
    fn void_invoice(id) = "select invoice_void($1)",
    responses((status = 200, description = "the invoice, now VOID (counts as never issued)", body = Invoice),
              (status = 403, description = "finance only (invoice.create)", body = ErrorResponse),
              (status = 404, description = "no such invoice (or not visible)", body = ErrorResponse),
              (status = 422, description = "the invoice has payments (field amount_paid) or is already VOID (field status)", body = ErrorResponse))
}

// ------------------------------------------------------------------ responses
// The documented shapes of what the database returns (see shapes.rs).

shapes! {
    columns {
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
    }

    /// An invoice with what is outstanding (a row of `v_invoices`).
    pub struct Invoice {}
}

shapes! {
    /// A payment (a row of `payments`).
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
    pub struct CollectionTicket {
        ticket_id: Uuid,
        ticket_no: String,
        invoice_id: Uuid,
        /// false when the invoice already had its collection ticket.
        created: bool,
    }

    /// One page of invoices.
    pub struct InvoicePage {
        items: Vec<Invoice>,
        next_cursor: Option<String>,
    }

    /// AR aging rows.
    pub struct Aging {
        items: Vec<AgingRow>,
    }

    /// Outstanding of one customer (or, with `is_total`, of all) in one
    /// currency by days past due (a row of `v_ar_aging`).
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

    /// Rolling 30-day DSO per currency and day.
    pub struct Dso {
        items: Vec<DsoDay>,
    }

    /// DSO on one day (a row of `v_dso_rolling_30`): AR as of the day over the
    /// credit sales of the 30 days up to it, x 30.
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
}

list_route! {
    get "/api/payments", tag = "receivables",
    fn list_payments("v_payments" by "payment_id") |list, f: PaymentFilter| {
        list.filter("invoice_id", "=", f.invoice_id)
            .filter("customer_id", "=", f.customer_id)
            .filter("paid_on", ">=", f.from)
            .filter("paid_on", "<=", f.to)
            .search(&["payment_no", "reference"], f.q);
    },
    responses((status = 200, description = "payments of the invoices the caller may see, with what was refunded, newest first", body = PaymentPage),
              (status = 400, description = "a bad cursor or limit", body = ErrorResponse))
}

rpc_route! {
    post "/api/refunds", tag = "receivables",
    fn create_refund(RefundCreate) = "select refund_record($1)",
    responses((status = 201, description = "refund recorded with its RF number; the invoice's balance opens again by the amount", body = RefundRecorded),
              (status = 403, description = "finance only (payment.record)", body = ErrorResponse),
              (status = 404, description = "no such payment (or not visible)", body = ErrorResponse),
              (status = 422, description = "more than is left to refund of the payment (field amount), or a field is invalid", body = ErrorResponse))
}

list_route! {
    get "/api/refunds", tag = "receivables",
    fn list_refunds("v_refunds" by "refund_id") |list, f: RefundFilter| {
        list.filter("invoice_id", "=", f.invoice_id)
            .filter("payment_id", "=", f.payment_id)
            .filter("customer_id", "=", f.customer_id)
            .filter("refunded_on", ">=", f.from)
            .filter("refunded_on", "<=", f.to);
    },
    responses((status = 200, description = "refunds of the invoices the caller may see, newest first", body = RefundPage),
              (status = 400, description = "a bad cursor or limit", body = ErrorResponse))
}

rpc_route! {
    post "/api/credit-notes", tag = "receivables",
    fn create_credit_note(CreditNoteCreate) = "select credit_note_create($1)",
    responses((status = 201, description = "credit note issued with its CN number; the invoice's outstanding falls by the amount", body = CreditNoteIssued),
              (status = 403, description = "finance only (invoice.create)", body = ErrorResponse),
              (status = 404, description = "no such invoice (or not visible)", body = ErrorResponse),
              (status = 422, description = "more than the invoice's open balance (field amount), another currency (field currency), an invoice that is not ISSUED (field invoice_id), or a field is invalid", body = ErrorResponse))
}

list_route! {
    get "/api/credit-notes", tag = "receivables",
    fn list_credit_notes("v_credit_notes" by "credit_note_id") |list, f: CreditNoteFilter| {
        list.filter("invoice_id", "=", f.invoice_id)
            .filter("customer_id", "=", f.customer_id)
            .filter("issue_date", ">=", f.from)
            .filter("issue_date", "<=", f.to)
            .search(&["credit_note_no"], f.q);
    },
    responses((status = 200, description = "credit notes of the invoices the caller may see, newest first", body = CreditNotePage),
              (status = 400, description = "a bad cursor or limit", body = ErrorResponse))
}

// The documented shapes of refunds and credit notes, and of the invoice
// that shows them.

shapes! {
    /// An invoice with its payments, refunds and credit notes (a row of
    /// `v_invoices` and the invoice's `amount_credited`).
    pub struct InvoiceDetail {
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
        /// Payments net of their refunds.
        amount_paid: Numeric,
        /// The credit notes.
        amount_credited: Numeric,
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
        /// total - amount_paid - amount_credited as of the tenant's today.
        outstanding: Numeric,
        days_past_due: i64,
        is_overdue: bool,
        /// current, 1-30, 31-60, 61-90 or >90 (null when nothing is outstanding)
        aging_bucket: Option<String>,
        payments: Vec<Payment>,
        refunds: Vec<Refund>,
        credit_notes: Vec<CreditNote>,
    }

    /// A refund (a row of `refunds`).
    pub struct Refund {
        tenant_id: Uuid,
        refund_id: Uuid,
        /// RF-YYYY-NNNNNN, gapless per tenant and year
        refund_no: Option<String>,
        payment_id: Uuid,
        invoice_id: Uuid,
        refunded_on: NaiveDate,
        amount: Numeric,
        method: crate::payload::PaymentMethod,
        reference: Option<String>,
        reason: String,
        created_by: Option<Uuid>,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
    }

    /// A credit note (a row of `credit_notes`).
    pub struct CreditNote {
        tenant_id: Uuid,
        credit_note_id: Uuid,
        /// CN-YYYY-NNNNNN, gapless per tenant and year
        credit_note_no: Option<String>,
        invoice_id: Uuid,
        customer_id: Uuid,
        /// The invoice's currency.
        currency: String,
        issue_date: NaiveDate,
        amount: Numeric,
        reason: String,
        created_by: Option<Uuid>,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
    }

    /// `refund_record`.
    pub struct RefundRecorded {
        refund_id: Uuid,
        refund_no: Option<String>,
        payment_id: Uuid,
        payment_no: Option<String>,
        invoice_id: Uuid,
        invoice_no: Option<String>,
        amount: Numeric,
        refunded_on: NaiveDate,
        /// What is left to refund of the payment.
        refundable: Numeric,
        /// The invoice's open balance after the refund.
        outstanding: Numeric,
        /// ISSUED (a PAID invoice opens again)
        invoice_status: crate::payload::InvoiceStatus,
    }

    /// `credit_note_create`.
    pub struct CreditNoteIssued {
        credit_note_id: Uuid,
        credit_note_no: Option<String>,
        invoice_id: Uuid,
        invoice_no: Option<String>,
        currency: String,
        amount: Numeric,
        issue_date: NaiveDate,
        /// The invoice's open balance after the credit note.
        outstanding: Numeric,
        /// ISSUED, or PAID when nothing is left open
        invoice_status: crate::payload::InvoiceStatus,
    }

    /// A payment with its invoice, customer and refunds (a row of `v_payments`).
    pub struct PaymentRow {
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
        invoice_no: Option<String>,
        customer_id: Uuid,
        /// The customer's name (null when the caller may not read it).
        company_name: Option<String>,
        currency: String,
        /// The refunds of the payment.
        refunded: Numeric,
        /// amount - refunded
        net_amount: Numeric,
    }

    /// A refund with its payment, invoice and customer (a row of `v_refunds`).
    pub struct RefundRow {
        tenant_id: Uuid,
        refund_id: Uuid,
        refund_no: Option<String>,
        payment_id: Uuid,
        invoice_id: Uuid,
        refunded_on: NaiveDate,
        amount: Numeric,
        method: crate::payload::PaymentMethod,
        reference: Option<String>,
        reason: String,
        created_by: Option<Uuid>,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
        payment_no: Option<String>,
        invoice_no: Option<String>,
        customer_id: Uuid,
        company_name: Option<String>,
        currency: String,
    }

    /// A credit note with its invoice number and customer (a row of
    /// `v_credit_notes`).
    pub struct CreditNoteRow {
        tenant_id: Uuid,
        credit_note_id: Uuid,
        credit_note_no: Option<String>,
        invoice_id: Uuid,
        customer_id: Uuid,
        currency: String,
        issue_date: NaiveDate,
        amount: Numeric,
        reason: String,
        created_by: Option<Uuid>,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
        invoice_no: Option<String>,
        company_name: Option<String>,
    }

    /// One page of payments.
    pub struct PaymentPage {
        items: Vec<PaymentRow>,
        next_cursor: Option<String>,
    }

    /// One page of refunds.
    pub struct RefundPage {
        items: Vec<RefundRow>,
        next_cursor: Option<String>,
    }

    /// One page of credit notes.
    pub struct CreditNotePage {
        items: Vec<CreditNoteRow>,
        next_cursor: Option<String>,
    }
}
