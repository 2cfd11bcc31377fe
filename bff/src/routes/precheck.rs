//! SOP pre-check (AI-2): the tenant's SOP rules and the check of a draft
//! against them. The rules are data and run in the database
//! (sql/api/precheck.sql): `precheck_invoice` answers `{valid, reasons,
//! figures, rules}`, and `invoice_create` applies the same evaluation.
//!
//! - `POST /api/precheck/invoice` (body: the invoice draft): the verdict.
//!   With `?notes=true`, a model adds advisory notes through the LLM
//!   gateway (feature `precheck_notes`, the prompt masked by the gateway);
//!   the notes never change `valid`, and without a model there are none.
//! - `GET /api/sop/rules`, `POST /api/sop/rules`, `PATCH` and `DELETE
//!   /api/sop/rules/{id}`: the rules (every member reads them; holders of
//!   `sop.manage` change them).

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::openapi::ErrorResponse;
use super::receivables::InvoiceLineDraft;
use super::route::{read_route, rpc_route};
use super::shapes::shapes;
use super::shapes::{Numeric, SopReason};
use super::write::body;
use crate::auth::Caller;
use crate::db::read_as;
use crate::error::{ApiError, Result};
use crate::extract::{Json, Query};
use crate::llm::provider::{Message, Role};
use crate::llm::{features, CallContext, GatewayError, GatewayRequest, Source};
use crate::payload::{
    blank_is_none, Currency, Date, Id, Int, NewInvoiceStatus, NonBlank, NonNegativeAmount, Objects,
    Patch, Percent, PositiveAmount, SopRuleKind, SopSeverity, Text,
};
use crate::state::AppState;
use chrono::DateTime;
use chrono::NaiveDate;
use chrono::Utc;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(precheck_invoice))
        .routes(routes!(list_rules, create_rule))
        .routes(routes!(update_rule, delete_rule))
}

/// An invoice draft as `invoice_create` takes it, every field optional
/// (the subtotal, or lines, excepted), plus `buyer_npwp`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvoiceDraft {
    /// The customer (its NPWP and payment terms are checked).
    #[serde(default, deserialize_with = "blank_is_none")]
    customer_id: Option<Id>,
    /// Required without lines; with lines, their sum when absent.
    #[serde(default, deserialize_with = "blank_is_none")]
    subtotal: Option<PositiveAmount>,
    /// Absent: the expected PPN.
    #[serde(default, deserialize_with = "blank_is_none")]
    tax: Option<NonNegativeAmount>,
    /// Checked against subtotal + tax when given.
    #[serde(default, deserialize_with = "blank_is_none")]
    total: Option<NonNegativeAmount>,
    /// Today (the tenant's) when absent; the rules active on this date apply.
    #[serde(default, deserialize_with = "blank_is_none")]
    issue_date: Option<Date>,
    #[serde(default, deserialize_with = "blank_is_none")]
    due_date: Option<Date>,
    #[serde(default, deserialize_with = "blank_is_none")]
    terms_days: Option<Int<0, 365>>,
    /// IDR when absent (the PPN rule checks IDR drafts).
    #[serde(default, deserialize_with = "blank_is_none")]
    currency: Option<Currency>,
    #[serde(default, deserialize_with = "blank_is_none")]
    status: Option<NewInvoiceStatus>,
    notes: Option<Text<2000>>,
    /// Sold to a business (the NPWP rule); absent: the rule's default.
    #[serde(default, deserialize_with = "blank_is_none")]
    b2b: Option<bool>,
    /// Luxury goods (PPN 12% of the full price) for lines that do not say.
    #[serde(default, deserialize_with = "blank_is_none")]
    luxury: Option<bool>,
    /// The buyer's NPWP as the document will show it (else the customer's).
    buyer_npwp: Option<Text<40>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<InvoiceLineDraft>>, max_items = 200)]
    lines: Option<Objects<InvoiceLineDraft, 200>>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PrecheckQuery {
    /// Advisory notes of a model (AI gateway, feature precheck_notes);
    /// they never change `valid`.
    notes: Option<bool>,
}

/// The parameters of a rule; which ones a kind takes is
/// `sop_rule_kinds.parameters` (a key of another kind is refused).
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SopRuleParameters {
    /// vat_ppn: the PPN class of lines and drafts that do not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    luxury: Option<bool>,
    /// vat_ppn, totals_match: the difference allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tolerance: Option<NonNegativeAmount>,
    /// max_discount: the highest discount in percent (equal passes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_pct: Option<Percent>,
    /// due_date: days the due date is at least after the issue date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    min_days: Option<Int<0, 365>>,
    /// due_date: the terms of customers without payment terms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    default_terms_days: Option<Int<0, 365>>,
    /// npwp_b2b: the total above which a B2B invoice needs an NPWP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    threshold: Option<NonNegativeAmount>,
    /// npwp_b2b: whether a draft that does not say is B2B.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    b2b_default: Option<bool>,
}

/// `sop_rule_create` (sop.manage).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SopRuleCreate {
    kind: SopRuleKind,
    /// Unique in the tenant; reasons name the rule by it.
    name: NonBlank<100>,
    description: Option<Text<1000>>,
    /// Absent keys take the kind's defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parameters: Option<SopRuleParameters>,
    /// The kind's default severity when absent.
    #[serde(default, deserialize_with = "blank_is_none")]
    severity: Option<SopSeverity>,
    /// true when absent; false switches the rule off.
    #[serde(default, deserialize_with = "blank_is_none")]
    enabled: Option<bool>,
    /// Applies to drafts issued on or after this day (open when absent).
    #[serde(default, deserialize_with = "blank_is_none")]
    active_from: Option<Date>,
    /// Applies to drafts issued on or before this day (open when absent).
    #[serde(default, deserialize_with = "blank_is_none")]
    active_to: Option<Date>,
}

/// `sop_rule_update` (sop.manage): absent fields keep their value; null
/// clears the description and the dates and resets the parameters to the
/// kind's defaults. The kind never changes.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SopRulePatch {
    #[serde(default, deserialize_with = "blank_is_none")]
    name: Option<NonBlank<100>>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    #[schema(value_type = Option<Text<1000>>)]
    description: Patch<Text<1000>>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    #[schema(value_type = Option<SopRuleParameters>)]
    parameters: Patch<SopRuleParameters>,
    #[serde(default, deserialize_with = "blank_is_none")]
    severity: Option<SopSeverity>,
    #[serde(default, deserialize_with = "blank_is_none")]
    enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    #[schema(value_type = Option<Date>)]
    active_from: Patch<Date>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    #[schema(value_type = Option<Date>)]
    active_to: Patch<Date>,
}

/// What the model is asked: advisory notes on a checked draft.
const NOTES_SYSTEM: &str = "You review invoice drafts of an Indonesian company against its \
    SOP rules. The rules were already applied by the system; their verdict and reasons are \
    final and you must not contradict or repeat them. Give at most three short advisory \
    notes a finance clerk may find useful (unusual values, missing descriptions, wording), \
    one per line, in plain text. Say 'No notes.' when there is nothing to add.";

/// The prompt: the draft as sent and the verdict.
fn notes_prompt(draft: &Value, verdict: &Value) -> Vec<Message> {
    let user = format!(
        "Draft:\n{}\n\nVerdict: valid = {}\nReasons:\n{}",
        serde_json::to_string_pretty(draft).unwrap_or_default(),
        verdict["valid"],
        verdict["reasons"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| format!(
                "- [{}] {}",
                r["severity"].as_str().unwrap_or(""),
                r["message"].as_str().unwrap_or("")
            ))
            .collect::<Vec<_>>()
            .join("\n")
    );
    vec![
        Message {
            role: Role::System,
            content: NOTES_SYSTEM.to_owned(),
        },
        Message {
            role: Role::User,
            content: user,
        },
    ]
}

#[utoipa::path(post, path = "/api/precheck/invoice", tag = "precheck", request_body = InvoiceDraft,
    params(PrecheckQuery),
    responses((status = 200, description = "the draft judged by the tenant's SOP rules active on its issue date (valid: no block reason); with notes=true, a model's advisory notes", body = PrecheckResult),
              (status = 404, description = "no such customer (or not visible)", body = ErrorResponse),
              (status = 422, description = "a field of the draft is malformed", body = ErrorResponse)))]
async fn precheck_invoice(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<PrecheckQuery>,
    Json(draft): Json<InvoiceDraft>,
) -> Result<Json<Value>> {
    let draft = body(&draft)?;
    let mut verdict: Value = read_as(&state.pool, &caller, async |tx| {
        let verdict = sqlx::query_scalar("select precheck_invoice($1)")
            .bind(&draft)
            .fetch_one(tx);
        Ok(crate::telemetry::db_call("precheck_invoice", verdict).await?)
    })
    .await?;
    if q.notes == Some(true) {
        // The caller wrote the draft: the originals of masked values may
        // come back to them.
        let ctx = CallContext::for_caller(&caller, true);
        let request = GatewayRequest {
            messages: notes_prompt(&draft, &verdict),
            temperature: Some(0.0),
            max_output_tokens: Some(400),
            ..GatewayRequest::default()
        };
        // The verdict stands whatever the model does: a used-up AI limit
        // gives no notes, like the deterministic fallback.
        let (source, text, call_ids) = match state
            .llm
            .chat(&ctx, features::PRECHECK_NOTES, request)
            .await
        {
            Ok(reply) => match reply.source {
                Source::Model { .. } => ("model", Some(reply.text), reply.call_ids),
                Source::Cache => ("cache", Some(reply.text), reply.call_ids),
                Source::Fallback => ("unavailable", None, reply.call_ids),
            },
            Err(GatewayError::Limited { .. }) => ("unavailable", None, Vec::new()),
            Err(e) => return Err(ApiError::from(e)),
        };
        verdict["notes"] = json!({"source": source, "text": text, "call_ids": call_ids});
    }
    Ok(Json(verdict))
}

read_route! {
    get "/api/sop/rules", tag = "precheck",
    fn list_rules() = "select sop_rule_list()",
    responses((status = 200, description = "the tenant's SOP rules in the order they are applied", body = SopRuleList))
}

rpc_route! {
    post "/api/sop/rules", tag = "precheck",
    fn create_rule(SopRuleCreate) = "select sop_rule_create($1)",
    responses((status = 201, description = "the rule (applied from now on to drafts within its dates)", body = SopRule),
              (status = 403, description = "the sop.manage permission is missing", body = ErrorResponse),
              (status = 409, description = "the tenant has a rule of this name", body = ErrorResponse),
              (status = 422, description = "a field is invalid (parameters.<key> for a parameter)", body = ErrorResponse))
}

rpc_route! {
    patch "/api/sop/rules/{id}", tag = "precheck",
    fn update_rule(id, SopRulePatch) = "select sop_rule_update($1, $2)",
    responses((status = 200, description = "the changed rule (enabled false or an active_to in the past switches it off)", body = SopRule),
              (status = 403, description = "the sop.manage permission is missing", body = ErrorResponse),
              (status = 404, description = "no such rule in the tenant", body = ErrorResponse),
              (status = 409, description = "the tenant has a rule of this name", body = ErrorResponse))
}

rpc_route! {
    delete "/api/sop/rules/{id}", tag = "precheck",
    fn delete_rule(id) = "select sop_rule_delete($1)",
    responses((status = 200, description = "the rule is gone", body = SopRuleDeleted),
              (status = 403, description = "the sop.manage permission is missing", body = ErrorResponse),
              (status = 404, description = "no such rule in the tenant", body = ErrorResponse))
}

// ------------------------------------------------------------------ responses
// The documented shapes of what the database returns (see shapes.rs).

shapes! {
    /// The parameters of a rule (each kind takes some of them; see
    /// sop_rule_kinds).
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
    pub struct SopRuleList {
        items: Vec<SopRule>,
    }

    /// `sop_rule_delete`.
    pub struct SopRuleDeleted {
        rule_id: Uuid,
        deleted: bool,
    }

    /// The draft's money and dates as the rules computed them.
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
}

/// Where advisory notes came from.
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "lowercase")]
pub enum PrecheckNotesSource {
    Model,
    Cache,
    /// No model answered: no notes.
    Unavailable,
}

shapes! {
    /// Advisory notes of a model on the draft and its reasons (never change
    /// `valid`).
    pub struct PrecheckNotes {
        source: PrecheckNotesSource,
        /// Null when no model answered.
        text: Option<String>,
        /// The gateway's ledger rows of the call.
        call_ids: Vec<Uuid>,
    }

    /// `precheck_invoice`, with notes when asked for.
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
}
