//! AI through the LLM gateway.
//!
//! - `POST /api/ai/chat` — any user of the tenant: the conversation is
//!   masked before it leaves, metered, limited (429 with Retry-After when a
//!   limit is used up) and cached; when no model answers, the chat's
//!   fallback says plainly that the assistant is unavailable (200, `source`
//!   = `fallback`). The caller wrote every word of the conversation, so the
//!   originals of masked values come back in the answer when the feature
//!   allows it. An `Idempotency-Key` replays a finished chat without a new
//!   call (no transaction is held open while a model answers, so two
//!   requests with one key at the same moment both run). The stored
//!   answer is the masked one; a replay puts the originals back from the
//!   replayed request itself, under the same rule as a fresh answer.
//! - `GET /api/ai/usage` — the tenant's usage and cost (super admins and
//!   directors: the ledger's policy decides).
//! - `GET /api/ai/limits`, `PUT /api/ai/limits` — the limits per feature;
//!   tenant admins set the per-user limits (never above the tenant's, which
//!   the operator sets with `bizos llm limits`).
//! - `GET /api/ai/keys`, `POST /api/ai/keys`, `DELETE /api/ai/keys/{id}` —
//!   the tenant's own provider keys (super admins): sealed with the master
//!   key before they reach the database, never returned.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::openapi::ErrorResponse;
use super::route::{read_route, rpc_route};
use super::shapes::shapes;
use super::write::{body, rpc, Args, Call};
use crate::auth::Caller;
use crate::db::read_one;
use crate::error::{ApiError, Result};
use crate::extract::{Json, Path, Query};
use crate::idempotency::{self, Done, IdempotencyKey};
use crate::llm::{features, CallContext, GatewayRequest, Message, Role, Source};
use crate::payload::{Date, LlmFeature, NonBlank, Text};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(chat))
        .routes(routes!(usage))
        .routes(routes!(get_limits, put_limits))
        .routes(routes!(list_keys, add_key))
        .routes(routes!(revoke_key))
}

/// Most messages of one chat request.
const MAX_MESSAGES: usize = 50;

/// What the chat assistant is told before the conversation.
const CHAT_SYSTEM: &str = "You are the assistant of bizos, a business system used by \
    Indonesian companies. Answer briefly and in the language of the question. Values in \
    square brackets such as [PHONE_n] or [EMAIL_n] stand for personal data hidden from you; \
    keep them exactly as written when you refer to them.";

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ChatRole {
    User,
    Assistant,
}

/// One turn of the conversation.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatTurn {
    role: ChatRole,
    content: NonBlank<20000>,
}

/// A chat request: the conversation so far, oldest first; the last turn is
/// the user's question.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatBody {
    /// 1-50 turns, the last one the user's.
    messages: Vec<ChatTurn>,
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AnswerSource {
    /// A model answered (`provider`, `model`).
    Model,
    /// An identical (masked) question of this tenant was answered before.
    Cache,
    /// No model could answer; the feature's fixed text.
    Fallback,
}

/// The assistant's answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatAnswer {
    text: String,
    source: AnswerSource,
    /// The provider that answered (source model).
    provider: Option<String>,
    /// The model that answered (source model).
    model: Option<String>,
    /// The ledger rows of this call.
    call_ids: Vec<Uuid>,
}

/// The answer for the caller, and the same answer masked (what an
/// `Idempotency-Key` stores: no PII at rest beyond the cache's and the
/// ledger's, which hold masked text only).
fn answer_bodies(answer: crate::llm::Answer) -> (ChatAnswer, ChatAnswer) {
    let (source, provider, model) = match answer.source {
        Source::Model { provider, model } => (AnswerSource::Model, Some(provider), Some(model)),
        Source::Cache => (AnswerSource::Cache, None, None),
        Source::Fallback => (AnswerSource::Fallback, None, None),
    };
    let masked = ChatAnswer {
        text: answer.masked_text,
        source,
        provider: provider.clone(),
        model: model.clone(),
        call_ids: answer.call_ids.clone(),
    };
    let for_caller = ChatAnswer {
        text: answer.text,
        source,
        provider,
        model,
        call_ids: answer.call_ids,
    };
    (for_caller, masked)
}

#[utoipa::path(post, path = "/api/ai/chat", tag = "ai", request_body = ChatBody,
    params(IdempotencyKey),
    responses((status = 200, description = "the answer: a model's, the tenant's cache's, or the fallback's when no model can answer", body = ChatAnswer),
              (status = 429, description = "a limit of the tenant or the user is used up (Retry-After: seconds until the next period)", body = ErrorResponse)))]
async fn chat(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Json(chat): Json<ChatBody>,
) -> Result<Response> {
    if chat.messages.is_empty() || chat.messages.len() > MAX_MESSAGES {
        return Err(ApiError::invalid(
            "messages",
            format!("messages: give 1 to {MAX_MESSAGES} turns"),
        ));
    }
    if chat.messages.last().map(|m| m.role) != Some(ChatRole::User) {
        return Err(ApiError::invalid(
            "messages",
            "messages: the last turn must be the user's",
        ));
    }
    let fingerprint = key.json(&body(&chat)?);
    let mut messages = vec![Message {
        role: Role::System,
        content: CHAT_SYSTEM.to_owned(),
    }];
    messages.extend(chat.messages.into_iter().map(|m| Message {
        role: match m.role {
            ChatRole::User => Role::User,
            ChatRole::Assistant => Role::Assistant,
        },
        content: m.content.0,
    }));
    // The caller wrote the whole conversation: they may see its PII.
    let ctx = CallContext::for_caller(&caller, true);
    if let Some((status, mut stored)) =
        idempotency::replay_stored(&state, &caller, &fingerprint).await?
    {
        // The stored answer is masked. This request is the stored one
        // (the fingerprint says so), so it carries the originals: they
        // go back in as for a fresh answer, under the caller's rights
        // and the feature's setting as they are now.
        if let Some(text) = stored.get("text").and_then(Value::as_str) {
            let text = state
                .llm
                .reinsert(&ctx, features::CHAT, &messages, text)
                .await
                .map_err(ApiError::from)?;
            stored["text"] = Value::String(text);
        }
        return Ok(idempotency::replay_response(status, stored));
    }
    let request = GatewayRequest {
        messages,
        ..GatewayRequest::default()
    };
    let result = state.llm.chat(&ctx, features::CHAT, request).await;
    let (status, value, masked) = match result {
        Ok(answer) => {
            let (for_caller, masked) = answer_bodies(answer);
            (
                StatusCode::OK,
                serde_json::to_value(for_caller).map_err(anyhow::Error::from)?,
                serde_json::to_value(masked).map_err(anyhow::Error::from)?,
            )
        }
        Err(e) => {
            let e = ApiError::from(e);
            // Client errors are stored like in every write; a used-up limit
            // is not (a retry after Retry-After must run).
            if e.status().is_client_error() && e.status() != StatusCode::TOO_MANY_REQUESTS {
                idempotency::remember(&state, &caller, &fingerprint, e.status(), &e.body()).await?;
            }
            return Err(e);
        }
    };
    idempotency::remember(&state, &caller, &fingerprint, status, &masked).await?;
    Ok((status, axum::Json(value)).into_response())
}

/// How usage is grouped.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UsageGroup {
    Day,
    Month,
    Feature,
    Model,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// First day (tenant-local), YYYY-MM-DD [default: the first day of this month].
    #[param(value_type = Option<String>, format = Date)]
    from: Option<Date>,
    /// Last day (tenant-local), YYYY-MM-DD [default: today].
    #[param(value_type = Option<String>, format = Date)]
    to: Option<Date>,
    /// day (the default), month, feature or model.
    group_by: Option<UsageGroup>,
}

#[utoipa::path(get, path = "/api/ai/usage", tag = "ai", params(UsageQuery),
    responses((status = 200, description = "calls, cache hits, failures, tokens and cost per group (super admins and directors see rows; others none)", body = UsageList)))]
async fn usage(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<UsageQuery>,
) -> Result<Json<Value>> {
    let group = match q.group_by.unwrap_or(UsageGroup::Day) {
        UsageGroup::Day => "day",
        UsageGroup::Month => "month",
        UsageGroup::Feature => "feature",
        UsageGroup::Model => "model",
    };
    let rows: Value = read_one(
        &state.pool,
        &caller,
        sqlx::query_scalar(
            "select jsonb_build_object('items', coalesce(jsonb_agg(u.row), '[]'::jsonb))
           from llm_usage(coalesce($1, date_trunc('month', tenant_today())::date),
                          coalesce($2, tenant_today()), $3) as u(row)",
        )
        .bind(q.from.map(|d| d.0))
        .bind(q.to.map(|d| d.0))
        .bind(group),
    )
    .await?;
    Ok(Json(rows))
}

read_route! {
    get "/api/ai/limits", tag = "ai",
    fn get_limits(tenant) =
        "select jsonb_build_object('items',
                  coalesce(jsonb_agg(to_jsonb(l) order by f.position, l.scope), '[]'::jsonb))
           from v_llm_limits l join llm_features f on f.code = l.feature
          where l.tenant_id = $1",
    responses((status = 200, description = "each feature's limits for the tenant and for each user (null: unlimited), and what is used in the current periods", body = LimitList))
}

/// A per-user limit of one feature (each user of the tenant); null is
/// unlimited, never above the tenant's limit.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitSet {
    feature: LlmFeature,
    #[schema(value_type = Option<i64>, minimum = 0)]
    generations_per_day: Option<crate::payload::Int<0, 2147483647>>,
    #[schema(value_type = Option<i64>, minimum = 0)]
    tokens_per_month: Option<crate::payload::Int<0, 9007199254740991>>,
}

rpc_route! {
    put "/api/ai/limits", tag = "ai",
    fn put_limits(LimitSet) =
        "select llm_limit_set(bizos.tenant_id(), $1 ->> 'feature', 'user',
                              ($1 ->> 'generations_per_day')::int,
                              ($1 ->> 'tokens_per_month')::bigint)",
    responses((status = 200, description = "the feature's per-user limit after the change", body = LimitRecord),
              (status = 403, description = "only super admins set limits", body = ErrorResponse))
}

read_route! {
    get "/api/ai/keys", tag = "ai",
    fn list_keys(tenant) =
        "select jsonb_build_object('items',
                  coalesce(jsonb_agg(to_jsonb(k) order by k.created_at, k.key_id), '[]'::jsonb))
           from v_llm_keys k
          where k.tenant_id = $1",
    responses((status = 200, description = "the tenant's own provider keys: metadata only, never the key (super admins see them; others none)", body = KeyList))
}

/// A provider key of the tenant's own. The key is sealed before it is
/// stored and is never shown again.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyAdd {
    /// A provider of the catalogue (openai, gemini, …).
    provider: NonBlank<40>,
    /// A name to tell keys apart.
    label: NonBlank<200>,
    /// The API key.
    #[schema(value_type = String, min_length = 8, max_length = 1000)]
    key: Text<1000>,
}

impl std::fmt::Debug for KeyAdd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyAdd")
            .field("provider", &self.provider)
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

#[utoipa::path(post, path = "/api/ai/keys", tag = "ai", request_body = KeyAdd,
    params(IdempotencyKey),
    responses((status = 201, description = "the key's metadata (never the key)", body = KeyRecord),
              (status = 403, description = "only super admins add keys", body = ErrorResponse)))]
async fn add_key(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Json(add): Json<KeyAdd>,
) -> Result<Response> {
    let secret = add.key.as_str().trim();
    if secret.len() < 8 || !secret.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::invalid(
            "key",
            "key: must be 8 to 1000 visible ASCII characters",
        ));
    }
    let Some(master) = state.llm.master_keys() else {
        return Err(ApiError::Unprocessable {
            message: "this server keeps no tenant keys (BIZOS_LLM_MASTER_KEY is not set)".into(),
            field: None,
        });
    };
    // The request as it identifies itself for replays: the key only as a hash.
    let fingerprint = key.parts(&[
        add.provider.as_str().as_bytes(),
        add.label.as_str().as_bytes(),
        &Sha256::digest(secret.as_bytes())[..],
    ]);
    let provider = add.provider.as_str().to_owned();
    let sealed = master
        .seal(caller.tenant_id, &provider, &SecretString::from(secret))
        .map_err(|e| ApiError::Internal(e.into()))?;
    let label = add.label.as_str().to_owned();
    let response = idempotency::run(&state, &caller, fingerprint, async |conn| {
        let add = sqlx::query_scalar("select llm_key_add($1, $2, $3, $4, $5, $6, $7)")
            .bind(&provider)
            .bind(&label);
        let key_id: Uuid = sealed.bind(add).fetch_one(&mut *conn).await?;
        let row: Value = sqlx::query_scalar("select llm_key_row($1)")
            .bind(key_id)
            .fetch_one(&mut *conn)
            .await?;
        Ok(Done::created(row))
    })
    .await;
    state.llm.forget_tenant_keys(caller.tenant_id);
    response
}

#[utoipa::path(delete, path = "/api/ai/keys/{id}", tag = "ai", params(("id" = Uuid, Path), IdempotencyKey),
    responses((status = 200, description = "the revoked key's metadata", body = KeyRecord),
              (status = 403, description = "only super admins revoke keys", body = ErrorResponse)))]
async fn revoke_key(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<Uuid>,
) -> Result<Response> {
    let call = Call::delete("select llm_key_revoke($1)", Args::Id(id));
    let response = rpc(&state, &caller, key, call).await;
    state.llm.forget_tenant_keys(caller.tenant_id);
    response
}

// ------------------------------------------------------------------ responses
// The documented shapes of what the database returns (see shapes.rs).

shapes! {
    /// Usage rows of `llm_usage`.
    pub struct UsageList {
        items: Vec<UsageRow>,
    }

    /// One group of usage: by day, month, feature, or provider and model (the
    /// key of the group is present, the others absent), per currency.
    pub struct UsageRow {
        tenant_id: Uuid,
        day: Option<chrono::NaiveDate>,
        month: Option<chrono::NaiveDate>,
        feature: Option<String>,
        provider: Option<String>,
        model: Option<String>,
        /// Ledger rows: provider attempts, cache hits and fallbacks.
        calls: i64,
        cache_hits: i64,
        failures: i64,
        tokens_in: i64,
        tokens_out: i64,
        /// Null when a call of the group has no price.
        cost: Option<f64>,
        currency: Option<String>,
    }

    pub struct LimitList {
        items: Vec<LimitRow>,
    }

    /// The limits of a feature in force for the tenant (scope tenant) or each
    /// user (scope user), and what the tenant, or the caller, used of them.
    pub struct LimitRow {
        tenant_id: Uuid,
        feature: String,
        /// tenant or user
        scope: String,
        /// Null: unlimited.
        generations_per_day: Option<i64>,
        /// Null: unlimited.
        tokens_per_month: Option<i64>,
        /// The feature's defaults (no limit of the tenant's own).
        is_default: bool,
        generations_today: i64,
        tokens_this_month: i64,
    }

    /// A limit as stored (`llm_limits`).
    pub struct LimitRecord {
        tenant_id: Uuid,
        feature: String,
        scope: String,
        generations_per_day: Option<i64>,
        tokens_per_month: Option<i64>,
        updated_by: Option<Uuid>,
        created_at: chrono::DateTime<chrono::Utc>,
        updated_at: chrono::DateTime<chrono::Utc>,
    }

    pub struct KeyList {
        items: Vec<KeyRecord>,
    }

    /// A tenant's provider key: metadata only (`v_llm_keys`).
    pub struct KeyRecord {
        tenant_id: Uuid,
        key_id: Uuid,
        provider: String,
        label: String,
        /// The master key its data key is sealed under.
        master_key_id: String,
        /// active or revoked
        status: String,
        created_by: Option<Uuid>,
        created_at: chrono::DateTime<chrono::Utc>,
        updated_at: chrono::DateTime<chrono::Utc>,
        revoked_at: Option<chrono::DateTime<chrono::Utc>>,
    }
}
