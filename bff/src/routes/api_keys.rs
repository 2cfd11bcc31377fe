//! API keys of the tenant (holders of `api_key.manage`): list, create
//! (the secret is in this one response), revoke. See [`crate::api_keys`].

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::route::rpc_route;
use super::shapes::shapes;
use super::write::{body, with_secret};
use crate::api_keys::NewKey;
use crate::auth::Caller;
use crate::db::read_as;
use crate::error::Result;
use crate::extract::Json;
use crate::idempotency::{self, Done, IdempotencyKey, REPLAYED};
use crate::payload::{ApiScope, Instant, NonBlank, Text};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_keys, create_key))
        .routes(routes!(revoke_key))
}

#[utoipa::path(get, path = "/api/api-keys", tag = "api-keys",
    responses((status = 200, description = "the tenant's API keys, newest first: never their secrets", body = ApiKeyList)))]
async fn list_keys(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>> {
    let rows: Value = read_as(&state.pool, &caller, async |tx| {
        sqlx::query("select require_permission('api_key.manage')")
            .execute(&mut *tx)
            .await?;
        Ok(sqlx::query_scalar(
        "select jsonb_build_object('items',
                  coalesce(jsonb_agg(to_jsonb(k) - 'tenant_id' order by k.created_at desc, k.key_id), '[]'::jsonb))
           from v_api_keys k
          where k.tenant_id = $1",
    )
        .bind(caller.tenant_id)
        .fetch_one(tx)
        .await?)
    })
    .await?;
    Ok(Json(rows))
}

/// A new API key.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyCreate {
    /// What the key is for (e.g. the system that uses it).
    name: NonBlank<100>,
    /// What the key may do; at least one.
    #[schema(min_items = 1)]
    scopes: Vec<ApiScope>,
    /// When the key stops working (in the future); absent: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<Instant>,
    /// Addresses or CIDR blocks the key may be used from (1 to 50);
    /// absent: from anywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<String>>)]
    allowed_ips: Option<Vec<Text<50>>>,
}

#[utoipa::path(post, path = "/api/api-keys", tag = "api-keys", request_body = ApiKeyCreate,
    params(IdempotencyKey),
    responses((status = 201, description = "the key, with its secret in `secret`: shown this once (a replay of the request answers without it)", body = ApiKeyCreated)))]
async fn create_key(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Json(create): Json<ApiKeyCreate>,
) -> Result<Response> {
    let payload = body(&create)?;
    let new = NewKey::generate_for(caller.tenant_id)?;
    let hash = new.hash();
    let prefix = new.display_prefix().to_owned();
    // The stored response (for replays) holds the key without its secret.
    let fingerprint = key.json(&payload);
    let response = idempotency::run(&state, &caller, fingerprint, async |conn| {
        let row: Value = sqlx::query_scalar("select api_key_create($1, $2, $3)")
            .bind(&payload)
            .bind(hash.as_slice())
            .bind(&prefix)
            .fetch_one(&mut *conn)
            .await?;
        Ok(Done::created(row))
    })
    .await?;
    if response.headers().contains_key(REPLAYED) {
        return Ok(response);
    }
    with_secret(response, &new.token).await
}

rpc_route! {
    post "/api/api-keys/{id}/revoke", tag = "api-keys",
    fn revoke_key(id) = "select api_key_revoke($1)",
    responses((status = 200, description = "the revoked key: its next request is refused (401)", body = ApiKeyRecord))
}

// ------------------------------------------------------------------ responses
// The documented shapes of what the database returns (see shapes.rs).

shapes! {
    /// The tenant's API keys.
    pub struct ApiKeyList {
        items: Vec<ApiKeyRecord>,
    }

    /// An API key as lists show it: never its secret.
    pub struct ApiKeyRecord {
        key_id: Uuid,
        name: String,
        /// The secret's first 16 characters, to tell keys apart.
        display_prefix: String,
        scopes: Vec<ApiScope>,
        allowed_ips: Option<Vec<String>>,
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
        /// active, expired or revoked.
        status: String,
        /// Recorded to the minute.
        last_used_at: Option<chrono::DateTime<chrono::Utc>>,
        last_used_ip: Option<String>,
        created_by: Option<Uuid>,
        created_at: chrono::DateTime<chrono::Utc>,
        revoked_at: Option<chrono::DateTime<chrono::Utc>>,
        revoked_by: Option<Uuid>,
    }

    /// A created key: the record and, this once, its secret.
    pub struct ApiKeyCreated {
        key_id: Uuid,
        name: String,
        display_prefix: String,
        scopes: Vec<ApiScope>,
        allowed_ips: Option<Vec<String>>,
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
        status: String,
        last_used_at: Option<chrono::DateTime<chrono::Utc>>,
        last_used_ip: Option<String>,
        created_by: Option<Uuid>,
        created_at: chrono::DateTime<chrono::Utc>,
        revoked_at: Option<chrono::DateTime<chrono::Utc>>,
        revoked_by: Option<Uuid>,
        /// `bz_live_…`: send it as `Authorization: Bearer <secret>` to /api/v1.
        /// Absent from a replayed response.
        #[serde(default)]
        secret: Option<String>,
    }
}
