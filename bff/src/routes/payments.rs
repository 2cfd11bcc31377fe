//! Payments of the operator's invoices (tag `payments`, docs/payments.md):
//!
//! - `POST /api/payments/stripe`, `POST /api/payments/midtrans`: the
//!   providers' webhooks, with no bearer token: a delivery is believed for
//!   its signature alone ([`crate::payments::signature`]). Every delivery
//!   is stored raw; a bad signature answers 401, a duplicate 200.
//! - `POST /api/billing/invoices/{id}/transfer-proofs`: a tenant's proof of
//!   a bank transfer (upload, bucket transfer-proofs); it works while the
//!   tenant is soft-locked (paying is the way out).
//! - `GET /api/billing/transfer-proofs`, `GET /api/billing/payments`: the
//!   tenant's proofs and payments.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{json, Value};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::files::{FileUpload, StoredObject};
use super::openapi::ErrorResponse;
use super::shapes::shapes;
use super::write::{Attach, Writer};
use crate::auth::Caller;
use crate::db::read_one;
use crate::error::{ApiError, Result};
use crate::extract::{Json, Multipart, Path};
use crate::idempotency::IdempotencyKey;
use crate::payload::{BillingPaymentMethod, BillingTransferProofStatus};
use crate::payments::{events, signature};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(stripe_webhook))
        .routes(routes!(midtrans_webhook))
        .routes(routes!(list_transfer_proofs))
        .routes(routes!(list_payments))
}

pub fn upload_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(add_transfer_proof))
}

shapes! {
    /// What became of a provider delivery.
    pub struct PaymentDeliveryReceived {
        delivery_id: Uuid,
        /// accepted (its event applied now) or duplicate (applied before:
        /// nothing happens again).
        outcome: String,
        /// For an accepted event: payment_recorded, already_recorded
        /// (the same payment by another event), failure_recorded,
        /// after_paid (a failure of a paid invoice: nothing), not_due,
        /// unmatched (no such invoice) or recorded (nothing to do).
        effect: Option<String>,
    }

    /// A tenant's proof of a bank transfer.
    pub struct TransferProof {
        proof_id: Uuid,
        billing_invoice_id: Uuid,
        object_id: Uuid,
        status: BillingTransferProofStatus,
        reject_reason: Option<String>,
        /// The payment recorded by the approval.
        payment_id: Option<Uuid>,
        decided_at: Option<String>,
        created_at: String,
        /// The stored file (in the answer to its upload).
        object: Option<StoredObject>,
    }

    /// The tenant's transfer proofs, newest first.
    pub struct TransferProofList {
        items: Vec<TransferProof>,
    }

    /// A payment of an operator invoice.
    pub struct BillingPayment {
        payment_id: Uuid,
        billing_invoice_id: Uuid,
        method: BillingPaymentMethod,
        /// Decimal string.
        amount: String,
        currency: String,
        reference: String,
        received_at: String,
    }

    /// The tenant's payments, newest first.
    pub struct BillingPaymentList {
        items: Vec<BillingPayment>,
    }
}

/// A Stripe Event, as Stripe sends it (`invoice.paid`,
/// `invoice.payment_failed`, `payment_intent.succeeded`,
/// `payment_intent.payment_failed`; other types are stored and answered
/// 200).
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct StripeEvent {
    id: String,
    #[schema(rename = "type")]
    r#type: String,
    created: i64,
    #[schema(value_type = Object)]
    data: Value,
}

/// A Midtrans HTTP notification.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct MidtransNotification {
    order_id: String,
    status_code: String,
    /// Exactly as Midtrans sends it ("15000.00"): the signature is over it.
    gross_amount: String,
    signature_key: String,
    transaction_id: String,
    transaction_status: String,
    fraud_status: Option<String>,
    payment_type: Option<String>,
    transaction_time: Option<String>,
    currency: Option<String>,
}

/// Stores the delivery and applies its event; 401 for a refused
/// signature, 400 for a signed body not of the provider's shape.
async fn receive(
    state: &AppState,
    provider: &str,
    headers: Value,
    body: &[u8],
    verdict: std::result::Result<
        std::result::Result<events::ProviderEvent, events::BadPayload>,
        signature::Refusal,
    >,
) -> Result<axum::Json<Value>> {
    let (refusal, event, bad) = match verdict {
        Err(r) => (Some(r.as_str()), None, None),
        Ok(Ok(e)) => (None, Some(e.to_json()), None),
        Ok(Err(b)) => (None, None, Some(b)),
    };
    let done: Value = crate::telemetry::db_call(
        "payment_delivery_receive",
        sqlx::query_scalar("select payment_delivery_receive($1, $2, $3, $4, $5)")
            .bind(provider)
            .bind(&headers)
            .bind(body)
            .bind(refusal)
            .bind(&event)
            .fetch_one(&state.pool),
    )
    .await?;
    if let Some(r) = refusal {
        tracing::warn!(
            provider,
            refusal = r,
            "payment webhook refused: bad signature"
        );
        return Err(ApiError::Unauthorized("invalid signature".into()));
    }
    if let Some(events::BadPayload(message)) = bad {
        let field = message.split(':').next().map(str::to_owned);
        return Err(ApiError::BadRequest { message, field });
    }
    Ok(axum::Json(done))
}

#[utoipa::path(post, path = "/api/payments/stripe", tag = "payments", security(()),
    request_body(content = StripeEvent, description = "the raw Event as Stripe signs it"),
    params(("Stripe-Signature" = String, Header, description = "t=<unix seconds>,v1=<HMAC-SHA256 hex of t.body>[,v1=…]")),
    responses((status = 200, description = "stored; its event applied (accepted) or applied before (duplicate)", body = PaymentDeliveryReceived),
              (status = 400, description = "signed, but not a Stripe event (stored)", body = ErrorResponse),
              (status = 401, description = "the signature is missing, wrong, under no configured secret or outside the tolerance window (stored)", body = ErrorResponse)))]
async fn stripe_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<Value>> {
    let header = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let settings = &state.payments;
    let verdict = signature::stripe_verify(
        header,
        &body,
        &settings.stripe_secrets,
        settings.stripe_tolerance_secs,
        chrono::Utc::now().timestamp(),
    )
    .map(|_| events::stripe(&body));
    let stored = json!({"stripe-signature": header, "content-type": content_type(&headers)});
    receive(&state, "stripe", stored, &body, verdict).await
}

#[utoipa::path(post, path = "/api/payments/midtrans", tag = "payments", security(()),
    request_body(content = MidtransNotification, description = "the notification as Midtrans sends it"),
    responses((status = 200, description = "stored; its event applied (accepted) or applied before (duplicate)", body = PaymentDeliveryReceived),
              (status = 400, description = "signed, but not of a Midtrans notification's shape (stored)", body = ErrorResponse),
              (status = 401, description = "signature_key is missing or not the SHA-512 of order_id, status_code, gross_amount and a configured server key (stored)", body = ErrorResponse)))]
async fn midtrans_webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<Value>> {
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let verdict = match parsed.as_ref().map(events::midtrans_signed) {
        None | Some(Err(_)) => Err(signature::Refusal::Malformed),
        Some(Ok(s)) => signature::midtrans_verify(
            s.order_id,
            s.status_code,
            s.gross_amount,
            s.signature_key,
            &state.payments.midtrans_server_keys,
        ),
    }
    .map(|()| events::midtrans(parsed.as_ref().unwrap_or(&Value::Null)));
    let stored = json!({"content-type": content_type(&headers)});
    receive(&state, "midtrans", stored, &body, verdict).await
}

fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}

#[utoipa::path(post, path = "/api/billing/invoices/{id}/transfer-proofs", tag = "payments",
    request_body(content = FileUpload, content_type = "multipart/form-data"),
    params(("id" = Uuid, Path, description = "the operator invoice (billing_invoice_id)"), IdempotencyKey),
    responses((status = 201, description = "the proof is stored and waits for the operator", body = TransferProof),
              (status = 403, description = "the role may not pay the operator's invoices (billing.pay)", body = ErrorResponse),
              (status = 404, description = "no such invoice of the tenant", body = ErrorResponse),
              (status = 413, description = "over the bucket's size limit", body = ErrorResponse),
              (status = 415, description = "not an image or a PDF", body = ErrorResponse),
              (status = 422, description = "the invoice is paid or void (billing_invoice_id)", body = ErrorResponse)))]
async fn add_transfer_proof(
    write: Writer,
    Path(id): Path<Uuid>,
    multipart: Multipart,
) -> Result<Response> {
    // Paying is the one write a soft-locked tenant may make.
    crate::payments::lock::allow_payment();
    let to = Attach {
        bucket: "transfer-proofs",
        sql: "select billing_transfer_proof_add($1, $2)",
        parent: id,
    };
    write.attach(multipart, to).await
}

#[utoipa::path(get, path = "/api/billing/transfer-proofs", tag = "payments",
    responses((status = 200, description = "the tenant's transfer proofs, newest first", body = TransferProofList)))]
async fn list_transfer_proofs(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>> {
    let items: Value = read_one(
        &state.pool,
        &caller,
        sqlx::query_scalar(
            "select coalesce(jsonb_agg(billing_transfer_proof_json(p) order by p.created_at desc), '[]')
               from billing_transfer_proofs p where p.tenant_id = $1",
        )
        .bind(caller.tenant_id),
    )
    .await?;
    Ok(Json(json!({ "items": items })))
}

#[utoipa::path(get, path = "/api/billing/payments", tag = "payments",
    responses((status = 200, description = "the tenant's payments of the operator's invoices, newest first", body = BillingPaymentList)))]
async fn list_payments(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>> {
    let items: Value = read_one(
        &state.pool,
        &caller,
        sqlx::query_scalar(
            "select coalesce(jsonb_agg(jsonb_build_object('payment_id', p.payment_id,
                      'billing_invoice_id', p.billing_invoice_id, 'method', p.method,
                      'amount', p.amount::text, 'currency', p.currency, 'reference', p.reference,
                      'received_at', p.received_at) order by p.received_at desc), '[]')
               from billing_payments p where p.tenant_id = $1",
        )
        .bind(caller.tenant_id),
    )
    .await?;
    Ok(Json(json!({ "items": items })))
}
