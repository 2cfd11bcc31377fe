//! The operator's side of payments (`/api/operator/payments/…`, tag
//! `operator`): transfer proofs to approve or reject, and the provider
//! deliveries as they came. Authenticated like every operator route
//! ([`super::operator::OperatorCaller`]); it acts as the control
//! database's owner. What a decision does is sql/api/payments.sql's.

use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::openapi::ErrorResponse;
use super::operator::OperatorCaller;
use super::shapes::shapes;
use crate::error::Result;
use crate::extract::{Json, Path, Query};
use crate::payload::BillingTransferProofStatus;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_proofs))
        .routes(routes!(approve_proof))
        .routes(routes!(reject_proof))
        .routes(routes!(list_deliveries))
}

/// Approval of a transfer proof.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProofApprove {
    /// What the transfer paid; absent: what is outstanding on the invoice.
    #[schema(value_type = Option<f64>)]
    pub amount: Option<serde_json::Number>,
}

/// Rejection of a transfer proof.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProofReject {
    /// Why (shown to the tenant), 1 to 500 characters.
    pub reason: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProofFilter {
    /// pending (default), approved, rejected or all.
    #[param(value_type = Option<String>)]
    status: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryFilter {
    /// stripe or midtrans; absent: both.
    provider: Option<String>,
    /// At most this many, newest first (default 100, at most 1000).
    limit: Option<i64>,
}

shapes! {
    /// A transfer proof as the operator sees it: with its tenant and
    /// invoice.
    pub struct OperatorTransferProof {
        proof_id: Uuid,
        tenant_id: Uuid,
        billing_invoice_id: Uuid,
        invoice_no: Option<String>,
        /// Decimal string.
        total: String,
        object_id: Uuid,
        /// Where the file is in object storage.
        object_key: String,
        status: BillingTransferProofStatus,
        reject_reason: Option<String>,
        payment_id: Option<Uuid>,
        created_at: String,
    }

    /// Transfer proofs, oldest first (the queue).
    pub struct OperatorTransferProofList {
        items: Vec<OperatorTransferProof>,
    }

    /// A proof after the operator's decision (and the payment an approval
    /// recorded).
    pub struct OperatorTransferProofDecided {
        proof_id: Uuid,
        tenant_id: Uuid,
        billing_invoice_id: Uuid,
        object_id: Uuid,
        status: BillingTransferProofStatus,
        reject_reason: Option<String>,
        payment_id: Option<Uuid>,
        decided_at: Option<String>,
        created_at: String,
        /// What an approval recorded; null for a rejection.
        payment: Option<BillingPaymentRecorded>,
    }

    /// What recording a payment did (billing_record_payment).
    pub struct BillingPaymentRecorded {
        payment_id: Uuid,
        /// false: a payment with this reference was recorded before.
        recorded: bool,
        invoice_status: String,
        /// Paid on the invoice so far.
        #[schema(value_type = f64)]
        paid: Value,
        #[schema(value_type = f64)]
        outstanding: Value,
        subscription_status: Option<String>,
    }

    /// A provider delivery as it came.
    pub struct OperatorPaymentDelivery {
        delivery_id: Uuid,
        provider: String,
        received_at: String,
        signature_ok: bool,
        refusal: Option<String>,
        event_id: Option<String>,
        /// accepted, duplicate, rejected or invalid.
        outcome: String,
        /// What its event did (the first delivery of the event).
        effect: Option<String>,
        /// The headers that matter for verification, by name.
        headers: std::collections::BTreeMap<String, String>,
        /// The body as received (UTF-8, lossy).
        body: String,
    }

    /// Provider deliveries, newest first.
    pub struct OperatorPaymentDeliveryList {
        items: Vec<OperatorPaymentDelivery>,
    }
}

#[utoipa::path(get, path = "/api/operator/payments/transfer-proofs", tag = "operator", security(("operator" = [])),
    params(ProofFilter),
    responses((status = 200, description = "transfer proofs, oldest first", body = OperatorTransferProofList),
              (status = 404, description = "the operator API is off (no BIZOS_OPERATOR_TOKEN)", body = ErrorResponse),
              (status = 422, description = "an unknown status (status)", body = ErrorResponse)))]
async fn list_proofs(
    OperatorCaller(api): OperatorCaller,
    Query(f): Query<ProofFilter>,
) -> Result<Json<Value>> {
    let status = f.status.unwrap_or_else(|| "pending".into());
    if !["pending", "approved", "rejected", "all"].contains(&status.as_str()) {
        return Err(crate::ApiError::invalid(
            "status",
            "status: must be pending, approved, rejected or all",
        ));
    }
    let items: Value = sqlx::query_scalar(
        "select coalesce(jsonb_agg(jsonb_build_object(
                  'proof_id', p.proof_id, 'tenant_id', p.tenant_id, 'billing_invoice_id', p.billing_invoice_id,
                  'invoice_no', i.invoice_no, 'total', i.total::text, 'object_id', p.object_id,
                  'object_key', o.object_key, 'status', p.status, 'reject_reason', p.reject_reason,
                  'payment_id', p.payment_id, 'created_at', p.created_at) order by p.created_at), '[]')
           from billing_transfer_proofs p
           join billing_invoices i on i.tenant_id = p.tenant_id and i.billing_invoice_id = p.billing_invoice_id
           join objects o on o.tenant_id = p.tenant_id and o.object_id = p.object_id
          where $1 = 'all' or p.status = $1",
    )
    .bind(&status)
    .fetch_one(&api.operator.control)
    .await?;
    Ok(Json(json!({ "items": items })))
}

#[utoipa::path(post, path = "/api/operator/payments/transfer-proofs/{id}/approve", tag = "operator", security(("operator" = [])),
    params(("id" = Uuid, Path)),
    request_body = ProofApprove,
    responses((status = 200, description = "approved: the payment is recorded, and a fully paid invoice makes the subscription active and unlocked, in one transaction", body = OperatorTransferProofDecided),
              (status = 404, description = "no such proof, or the operator API is off", body = ErrorResponse),
              (status = 422, description = "the proof is decided already (proof_id), or nothing is outstanding (amount)", body = ErrorResponse)))]
async fn approve_proof(
    OperatorCaller(api): OperatorCaller,
    Path(id): Path<Uuid>,
    Json(req): Json<ProofApprove>,
) -> Result<Json<Value>> {
    let decided: Value =
        sqlx::query_scalar("select billing_transfer_proof_approve($1, $2::numeric, 'operator')")
            .bind(id)
            .bind(req.amount.map(|n| n.to_string()))
            .fetch_one(&api.operator.control)
            .await?;
    Ok(Json(decided))
}

#[utoipa::path(post, path = "/api/operator/payments/transfer-proofs/{id}/reject", tag = "operator", security(("operator" = [])),
    params(("id" = Uuid, Path)),
    request_body = ProofReject,
    responses((status = 200, description = "rejected with the reason", body = OperatorTransferProofDecided),
              (status = 404, description = "no such proof, or the operator API is off", body = ErrorResponse),
              (status = 422, description = "no reason (reason), or the proof is decided already (proof_id)", body = ErrorResponse)))]
async fn reject_proof(
    OperatorCaller(api): OperatorCaller,
    Path(id): Path<Uuid>,
    Json(req): Json<ProofReject>,
) -> Result<Json<Value>> {
    let decided: Value =
        sqlx::query_scalar("select billing_transfer_proof_reject($1, $2, 'operator')")
            .bind(id)
            .bind(req.reason)
            .fetch_one(&api.operator.control)
            .await?;
    Ok(Json(decided))
}

#[utoipa::path(get, path = "/api/operator/payments/deliveries", tag = "operator", security(("operator" = [])),
    params(DeliveryFilter),
    responses((status = 200, description = "provider deliveries as they came, newest first", body = OperatorPaymentDeliveryList),
              (status = 404, description = "the operator API is off (no BIZOS_OPERATOR_TOKEN)", body = ErrorResponse)))]
async fn list_deliveries(
    OperatorCaller(api): OperatorCaller,
    Query(f): Query<DeliveryFilter>,
) -> Result<Json<Value>> {
    let limit = f.limit.unwrap_or(100).clamp(1, 1000);
    let items: Value = sqlx::query_scalar(
        "select coalesce(jsonb_agg(x.d order by x.received_at desc), '[]') from (
           select d.received_at, jsonb_build_object(
                    'delivery_id', d.delivery_id, 'provider', d.provider, 'received_at', d.received_at,
                    'signature_ok', d.signature_ok, 'refusal', d.refusal, 'event_id', d.event_id,
                    'outcome', d.outcome, 'effect', e.effect, 'headers', d.headers,
                    'body', convert_from(d.body, 'UTF8')) as d
             from control.payment_deliveries d
             left join control.payment_events e on e.delivery_id = d.delivery_id
            where $1::text is null or d.provider = $1
            order by d.received_at desc
            limit $2) x",
    )
    .bind(f.provider)
    .bind(limit)
    .fetch_one(&api.operator.control)
    .await?;
    Ok(Json(json!({ "items": items })))
}
