//! Webhooks (B2B-8): a tenant's endpoints, their signing
//! secrets, the delivery log and replays, for holders of `webhook.manage`
//! (super admins by default). The database keeps the outbox and decides
//! (sql/api/webhooks.sql); this module makes and seals the secrets, checks
//! where a URL points ([`crate::webhooks::ssrf`]) and shows a secret once.
//!
//! - `GET/POST /api/webhooks/endpoints`, `GET/PATCH/DELETE
//!   /api/webhooks/endpoints/{id}`: the endpoints (URL, event types,
//!   description, enabled).
//! - `POST /api/webhooks/endpoints/{id}/secret/rotate`: a new secret; the
//!   previous one keeps signing for `overlap_hours` (default 24).
//! - `GET /api/webhooks/endpoints/{id}/deliveries`,
//!   `GET /api/webhooks/deliveries/{id}`: the deliveries and their attempts.
//! - `POST /api/webhooks/deliveries/{id}/replay`,
//!   `POST /api/webhooks/endpoints/{id}/replay`: one message again, or
//!   every event since a time.
//!
//! A secret is never stored in clear, not even in the idempotency record
//! of its request: a replay of the request (same Idempotency-Key) answers
//! with `secret: null`; a lost secret is rotated.

use axum::extract::State;
use axum::response::Response;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::openapi::ErrorResponse;
use super::route::{read_route, rpc_route};
use super::shapes::shapes;
use super::write::{self, body};
use crate::auth::Caller;
use crate::db::read_one;
use crate::error::{ApiError, Result};
use crate::extract::{Json, Path, Query};
use crate::idempotency::{self, Done, IdempotencyKey, REPLAYED};
use crate::payload::{
    blank_is_none, Change, Int, NonBlank, Patch, Text, WebhookDeliveryStatus, WebhookEventType,
};
use crate::state::AppState;
use crate::webhooks::{secrets, ssrf};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_endpoints, create_endpoint))
        .routes(routes!(get_endpoint, update_endpoint, delete_endpoint))
        .routes(routes!(rotate_secret))
        .routes(routes!(list_deliveries))
        .routes(routes!(replay_endpoint))
        .routes(routes!(get_delivery))
        .routes(routes!(replay_delivery))
}

// ------------------------------------------------------------------ requests

/// A new endpoint.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointCreate {
    /// http:// or https://; its host must resolve to public addresses only
    /// (no loopback, private, link-local, unique-local or unspecified
    /// address), checked now and at every delivery.
    url: NonBlank<2000>,
    /// The event types it receives (at least one).
    #[schema(min_items = 1, max_items = 20)]
    event_types: Vec<WebhookEventType>,
    #[serde(
        default,
        deserialize_with = "blank_is_none",
        skip_serializing_if = "Option::is_none"
    )]
    description: Option<Text<500>>,
    /// [default: true]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    enabled: Option<bool>,
}

/// A change of an endpoint: absent keys keep their value.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointChange {
    /// A new URL (checked as at registration); ends a failure streak.
    #[serde(default, skip_serializing_if = "Change::is_absent")]
    #[schema(value_type = NonBlank<2000>)]
    url: Change<NonBlank<2000>>,
    /// The event types it receives from now on (at least one).
    #[serde(default, skip_serializing_if = "Change::is_absent")]
    #[schema(value_type = Vec<WebhookEventType>, min_items = 1, max_items = 20)]
    event_types: Change<Vec<WebhookEventType>>,
    /// null clears it.
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    #[schema(value_type = Option<Text<500>>)]
    description: Patch<Text<500>>,
    /// false: no more deliveries (its pending ones are dead: replay them
    /// after enabling it); true after it was disabled for failing: it
    /// receives new events again.
    #[serde(default, skip_serializing_if = "Change::is_absent")]
    #[schema(value_type = bool)]
    enabled: Change<bool>,
}

/// A rotation of the signing secret.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretRotate {
    /// Hours the previous secret keeps signing beside the new one (0-168,
    /// default 24): every message carries both signatures meanwhile.
    #[serde(
        default,
        deserialize_with = "blank_is_none",
        skip_serializing_if = "Option::is_none"
    )]
    overlap_hours: Option<Int<0, 168>>,
}

/// Replay everything since a time.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaySince {
    /// Events from this time on (RFC 3339), of the types the endpoint
    /// receives now, are sent again (or for the first time).
    since: DateTime<Utc>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// Only deliveries in this state.
    #[param(value_type = Option<WebhookDeliveryStatus>)]
    status: Option<String>,
    /// 1-500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i32>,
    /// The next page: `next_cursor` of the previous one.
    cursor: Option<Uuid>,
}

// ------------------------------------------------------------------ responses

shapes! {
    /// A signing secret's metadata (never the secret).
    pub struct WebhookSecretInfo {
        secret_id: Uuid,
        created_at: DateTime<Utc>,
        /// null: the current secret; else a rotated one, signing until then.
        expires_at: Option<DateTime<Utc>>,
    }
}

shapes! {
    columns {
        endpoint_id: Uuid,
        url: String,
        description: Option<String>,
        event_types: Vec<WebhookEventType>,
        enabled: bool,
        /// When and why it was disabled (by a webhook manager, or after
        /// failing every delivery for 5 days).
        disabled_at: Option<DateTime<Utc>>,
        disabled_reason: Option<String>,
        /// The first failed attempt since the last success (null: not
        /// failing). Failing for 5 days disables the endpoint and
        /// e-mails the tenant's webhook managers.
        failing_since: Option<DateTime<Utc>>,
        last_success_at: Option<DateTime<Utc>>,
        last_failure_at: Option<DateTime<Utc>>,
        /// The secrets that sign now (the current one first).
        secrets: Vec<WebhookSecretInfo>,
        created_by: Option<Uuid>,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
    }

    /// A webhook endpoint.
    pub struct WebhookEndpoint {}

    /// A webhook endpoint with its new signing secret.
    pub struct WebhookEndpointWithSecret {
        /// `whsec_<base64>`: shown in this response only (the database
        /// keeps it encrypted). Verify `webhook-signature` with it
        /// (Standard Webhooks). null when the request was replayed with
        /// its Idempotency-Key: rotate the secret if it was lost.
        secret: Option<String>,
    }
}

shapes! {
    pub struct WebhookEndpointList {
        items: Vec<WebhookEndpoint>,
    }

    pub struct WebhookEndpointDeleted {
        endpoint_id: Uuid,
        deleted: bool,
    }
}

shapes! {
    columns {
        delivery_id: Uuid,
        event_id: Uuid,
        event_type: WebhookEventType,
        /// The `webhook-id` header of every attempt (receivers
        /// deduplicate with it).
        message_id: String,
        endpoint_id: Uuid,
        status: WebhookDeliveryStatus,
        /// Attempts of the current round (a replay starts a new one).
        attempts: i32,
        /// When the next attempt is due (pending only).
        next_attempt_at: Option<DateTime<Utc>>,
        last_attempt_at: Option<DateTime<Utc>>,
        last_status_code: Option<i32>,
        last_error: Option<String>,
        succeeded_at: Option<DateTime<Utc>>,
        dead_at: Option<DateTime<Utc>>,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
    }

    /// A delivery of an event to an endpoint.
    pub struct WebhookDelivery {}

    /// A delivery with its body and every attempt.
    pub struct WebhookDeliveryDetail {
        payload: WebhookPayload,
        /// Every attempt, oldest first.
        attempts_log: Vec<WebhookAttempt>,
    }
}

shapes! {
    /// One HTTP attempt of a delivery.
    pub struct WebhookAttempt {
        /// 1 for the first attempt of a round.
        attempt_no: i32,
        attempted_at: DateTime<Utc>,
        duration_ms: i32,
        /// null: no HTTP answer (refused address, connection, timeout).
        status_code: Option<i32>,
        succeeded: bool,
        error: Option<String>,
        /// The first 1,000 characters of the answer.
        response_excerpt: Option<String>,
    }

    /// The body every webhook carries (Standard Webhooks).
    pub struct WebhookPayload {
        #[serde(rename = "type")]
        event_type: WebhookEventType,
        /// When the change happened (RFC 3339, UTC).
        timestamp: String,
        /// The changed record's identifiers, states, amounts and dates (never
        /// contact names, e-mail addresses, phone numbers, NPWP or free text).
        #[schema(value_type = std::collections::BTreeMap<String, WebhookDataValue>)]
        data: Value,
    }
}

/// A value of an event's data: an id, a state, a date or time (text), an
/// amount (number), or null.
pub struct WebhookDataValue;

impl utoipa::PartialSchema for WebhookDataValue {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([
                Type::String,
                Type::Number,
                Type::Null,
            ]))
            .description(Some(
                "An id, a state, a date or time (text), an amount (number), or null.",
            ))
            .into()
    }
}

impl ToSchema for WebhookDataValue {}

shapes! {
    pub struct WebhookDeliveryPage {
        items: Vec<WebhookDelivery>,
        /// The `cursor` of the next page (null: this is the last).
        next_cursor: Option<Uuid>,
    }

    pub struct WebhookReplayed {
        endpoint_id: Uuid,
        since: DateTime<Utc>,
        /// Deliveries queued again (or for the first time).
        replayed: i64,
    }
}

// ------------------------------------------------------------------ handlers

/// The master keys that seal new secrets, or 422 on a server without.
fn master(state: &AppState) -> Result<std::sync::Arc<crate::llm::crypto::MasterKeys>> {
    state
        .webhooks
        .master
        .clone()
        .ok_or_else(|| ApiError::Unprocessable {
            message: "this server keeps no webhook secrets (BIZOS_WEBHOOKS_MASTER_KEY is not set)"
                .into(),
            field: None,
        })
}

/// The SSRF guard of a URL, after the caller's permission (so that a
/// caller without it learns nothing about names and resolves none).
async fn check_url(conn: &mut sqlx::PgConnection, state: &AppState, url: &str) -> Result<()> {
    sqlx::query("select require_permission('webhook.manage')")
        .execute(&mut *conn)
        .await?;
    ssrf::check_url(url, state.webhooks.allow_loopback)
        .await
        .map(|_| ())
        .map_err(|why| ApiError::invalid("url", format!("url: {why}")))
}

/// A new signing secret of an endpoint: made and sealed before the
/// transaction (so a retry of it stores the same one), shown once.
struct NewSecret {
    id: Uuid,
    secret: SecretString,
    sealed: crate::llm::crypto::Sealed,
}

impl NewSecret {
    fn for_endpoint(state: &AppState, caller: &Caller, endpoint_id: Uuid) -> Result<Self> {
        let master = master(state)?;
        let secret = secrets::generate().map_err(|e| ApiError::Internal(e.into()))?;
        let id = Uuid::new_v4();
        let sealed = secrets::seal(&master, caller.tenant_id, endpoint_id, id, &secret)
            .map_err(|e| ApiError::Internal(e.into()))?;
        Ok(Self { id, secret, sealed })
    }

    /// Runs `query` (its first arguments bound, the sealed columns last)
    /// and answers the endpoint it returns, without the secret: what is
    /// stored for a replay never holds it ([`with_secret`] adds it).
    async fn store<'q>(
        &'q self,
        conn: &mut sqlx::PgConnection,
        query: sqlx::query::QueryScalar<'q, sqlx::Postgres, Value, sqlx::postgres::PgArguments>,
    ) -> Result<Value> {
        let mut endpoint = self.sealed.bind(query).fetch_one(&mut *conn).await?;
        endpoint["secret"] = Value::Null;
        Ok(endpoint)
    }
}

/// A write whose answer carries a new secret: the effect stores its answer
/// without it (idempotency), the first answer gets it added (and is not
/// to be cached, [`write::with_secret`]).
async fn with_secret(response: Result<Response>, secret: &SecretString) -> Result<Response> {
    let response = response?;
    if !response.status().is_success() || response.headers().contains_key(REPLAYED) {
        return Ok(response);
    }
    write::with_secret(response, secret.expose_secret()).await
}

read_route! {
    get "/api/webhooks/endpoints", tag = "webhooks",
    fn list_endpoints() = "select webhook_endpoints_list()",
    responses((status = 200, description = "the tenant's webhook endpoints, oldest first", body = WebhookEndpointList),
              (status = 403, description = "webhook.manage is needed", body = ErrorResponse))
}

#[utoipa::path(post, path = "/api/webhooks/endpoints", tag = "webhooks", request_body = EndpointCreate,
    params(IdempotencyKey),
    responses((status = 201, description = "the endpoint and its signing secret (shown once)", body = WebhookEndpointWithSecret),
              (status = 403, description = "webhook.manage is needed", body = ErrorResponse),
              (status = 422, description = "a bad field; a URL that is not http(s) or resolves to a loopback, private, link-local, unique-local or unspecified address (field url); no master key on this server", body = ErrorResponse)))]
async fn create_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Json(create): Json<EndpointCreate>,
) -> Result<Response> {
    let endpoint_id = Uuid::new_v4();
    let new = NewSecret::for_endpoint(&state, &caller, endpoint_id)?;
    let request = body(&create)?;
    let fingerprint = key.json(&request);
    let response = idempotency::run(&state, &caller, fingerprint, async |conn| {
        check_url(conn, &state, create.url.as_str()).await?;
        let create =
            sqlx::query_scalar("select webhook_endpoint_create($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(&request)
                .bind(endpoint_id)
                .bind(new.id);
        Ok(Done::created(new.store(conn, create).await?))
    })
    .await;
    with_secret(response, &new.secret).await
}

read_route! {
    get "/api/webhooks/endpoints/{id}", tag = "webhooks",
    fn get_endpoint(id) = "select webhook_endpoint_get($1)",
    responses((status = 200, description = "the endpoint", body = WebhookEndpoint),
              (status = 403, description = "webhook.manage is needed", body = ErrorResponse),
              (status = 404, description = "no such endpoint", body = ErrorResponse))
}

#[utoipa::path(patch, path = "/api/webhooks/endpoints/{id}", tag = "webhooks", request_body = EndpointChange,
    params(("id" = Uuid, Path), IdempotencyKey),
    responses((status = 200, description = "the changed endpoint", body = WebhookEndpoint),
              (status = 403, description = "webhook.manage is needed", body = ErrorResponse),
              (status = 404, description = "no such endpoint", body = ErrorResponse),
              (status = 422, description = "a bad field; a URL the SSRF guard refuses (field url)", body = ErrorResponse)))]
async fn update_endpoint(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<Uuid>,
    Json(change): Json<EndpointChange>,
) -> Result<Response> {
    let request = body(&change)?;
    let fingerprint = key.json(&request);
    idempotency::run(&state, &caller, fingerprint, async |conn| {
        if let Change::Set(url) = &change.url {
            check_url(conn, &state, url.as_str()).await?;
        }
        let endpoint: Value = sqlx::query_scalar("select webhook_endpoint_update($1, $2)")
            .bind(id)
            .bind(&request)
            .fetch_one(&mut *conn)
            .await?;
        Ok(Done::ok(endpoint))
    })
    .await
}

rpc_route! {
    delete "/api/webhooks/endpoints/{id}", tag = "webhooks",
    fn delete_endpoint(id) = "select webhook_endpoint_delete($1)",
    responses((status = 200, description = "the endpoint is gone, with its secrets, deliveries and their log", body = WebhookEndpointDeleted),
              (status = 403, description = "webhook.manage is needed", body = ErrorResponse),
              (status = 404, description = "no such endpoint", body = ErrorResponse))
}

#[utoipa::path(post, path = "/api/webhooks/endpoints/{id}/secret/rotate", tag = "webhooks",
    request_body = SecretRotate, params(("id" = Uuid, Path), IdempotencyKey),
    responses((status = 200, description = "the endpoint and its new signing secret (shown once); the previous secret signs beside it until the overlap ends", body = WebhookEndpointWithSecret),
              (status = 403, description = "webhook.manage is needed", body = ErrorResponse),
              (status = 404, description = "no such endpoint", body = ErrorResponse),
              (status = 422, description = "overlap_hours out of range; no master key on this server", body = ErrorResponse)))]
async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<Uuid>,
    Json(rotate): Json<SecretRotate>,
) -> Result<Response> {
    let new = NewSecret::for_endpoint(&state, &caller, id)?;
    let request = body(&rotate)?;
    let fingerprint = key.json(&request);
    let response = idempotency::run(&state, &caller, fingerprint, async |conn| {
        let rotate =
            sqlx::query_scalar("select webhook_secret_rotate($1, $2, $3, $4, $5, $6, $7, $8)")
                .bind(id)
                .bind(&request)
                .bind(new.id);
        Ok(Done::ok(new.store(conn, rotate).await?))
    })
    .await;
    with_secret(response, &new.secret).await
}

#[utoipa::path(get, path = "/api/webhooks/endpoints/{id}/deliveries", tag = "webhooks",
    params(("id" = Uuid, Path), DeliveriesQuery),
    responses((status = 200, description = "the endpoint's deliveries, newest first", body = WebhookDeliveryPage),
              (status = 403, description = "webhook.manage is needed", body = ErrorResponse),
              (status = 404, description = "no such endpoint", body = ErrorResponse),
              (status = 422, description = "an unknown status, a limit out of range or a cursor not of this endpoint", body = ErrorResponse)))]
async fn list_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(q): Query<DeliveriesQuery>,
) -> Result<Json<Value>> {
    let page: Value = read_one(
        &state.pool,
        &caller,
        sqlx::query_scalar("select webhook_deliveries_list($1, $2, $3, $4)")
            .bind(id)
            .bind(q.status)
            .bind(q.limit.unwrap_or(50))
            .bind(q.cursor),
    )
    .await?;
    Ok(Json(page))
}

rpc_route! {
    post "/api/webhooks/endpoints/{id}/replay", tag = "webhooks",
    fn replay_endpoint(id, ReplaySince) = "select webhook_endpoint_replay($1, $2)",
    responses((status = 200, description = "how many events are sent (again) to the endpoint, at once", body = WebhookReplayed),
              (status = 403, description = "webhook.manage is needed", body = ErrorResponse),
              (status = 404, description = "no such endpoint", body = ErrorResponse),
              (status = 422, description = "since in the future; the endpoint is disabled", body = ErrorResponse))
}

read_route! {
    get "/api/webhooks/deliveries/{id}", tag = "webhooks",
    fn get_delivery(id) = "select webhook_delivery_get($1)",
    responses((status = 200, description = "the delivery, its body and every attempt", body = WebhookDeliveryDetail),
              (status = 403, description = "webhook.manage is needed", body = ErrorResponse),
              (status = 404, description = "no such delivery", body = ErrorResponse))
}

rpc_route! {
    post "/api/webhooks/deliveries/{id}/replay", tag = "webhooks",
    fn replay_delivery(id) = "select webhook_delivery_replay($1)",
    responses((status = 200, description = "the delivery, due at once with a fresh round of retries (same message id)", body = WebhookDelivery),
              (status = 403, description = "webhook.manage is needed", body = ErrorResponse),
              (status = 404, description = "no such delivery", body = ErrorResponse),
              (status = 422, description = "the endpoint is disabled", body = ErrorResponse))
}
