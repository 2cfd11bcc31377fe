//! The caller's own profile, and whether AI features can reach a model
//! now (so that clients hide them while the LLM gateway cannot).

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::auth::Caller;
use crate::db::read_as;
use crate::error::{ApiError, Result};
use crate::extract::Json;
use crate::llm::{Availability, CallContext, Unavailable};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(me))
}

/// The caller's own profile and tenant.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Me {
    user_id: Uuid,
    tenant_id: Uuid,
    tenant_slug: String,
    tenant_name: String,
    email: String,
    full_name: String,
    #[schema(value_type = crate::payload::AppRole)]
    app_role: String,
    dept_code: Option<String>,
    manager_user_id: Option<Uuid>,
    active: bool,
    /// Whether AI features can reach a model now.
    #[sqlx(skip)]
    ai: AiStatus,
}

/// Whether a model could answer the tenant's AI calls now, from the LLM
/// gateway's own state (this server's): some provider of an AI feature's
/// route has a key for the tenant (its own or the platform's) that is not
/// cooling down, and a circuit breaker that is not open. While false,
/// every AI feature still answers, with its deterministic fallback.
#[derive(Debug, Default, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AiStatus {
    available: bool,
    /// Why not (null while available).
    reason: Option<AiUnavailableReason>,
}

/// Why no model can answer now.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AiUnavailableReason {
    /// No provider of the AI features' routes has a key (the tenant's or
    /// the platform's).
    NotConfigured,
    /// Every provider with a key failed repeatedly: its circuit breaker is
    /// open until its cool-off ends.
    CircuitOpen,
    /// Every key of the providers that could be called is cooling down
    /// after the provider refused it (429 rate limit, 401/403).
    KeysCooling,
}

impl From<Availability> for AiStatus {
    fn from(a: Availability) -> Self {
        let reason = match a {
            Availability::Available => None,
            Availability::Unavailable(Unavailable::NotConfigured) => {
                Some(AiUnavailableReason::NotConfigured)
            }
            Availability::Unavailable(Unavailable::CircuitOpen) => {
                Some(AiUnavailableReason::CircuitOpen)
            }
            Availability::Unavailable(Unavailable::KeysCooling) => {
                Some(AiUnavailableReason::KeysCooling)
            }
        };
        AiStatus {
            available: reason.is_none(),
            reason,
        }
    }
}

#[utoipa::path(get, path = "/api/me", tag = "me",
    responses((status = 200, description = "the caller's profile and tenant, and whether AI features can reach a model now", body = Me),
              (status = 404, description = "no profile for this user in this tenant", body = super::openapi::ErrorResponse)))]
/// Row-level security decides: a token of another or an unknown tenant
/// finds no profile.
#[tracing::instrument(skip(state, caller), fields(user_id = %caller.user_id, tenant_id = %caller.tenant_id))]
async fn me(State(state): State<AppState>, caller: Caller) -> Result<Json<Me>> {
    let me: Option<Me> = read_as(&state.pool, &caller, async |tx| {
        Ok(sqlx::query_as(
            "select p.user_id, p.tenant_id, t.slug as tenant_slug, t.name as tenant_name,
                p.email, p.full_name, p.app_role, p.dept_code, p.manager_user_id, p.active
           from profiles p
           join tenants t on t.tenant_id = p.tenant_id
          where p.user_id = (select bizos.uid())",
        )
        .fetch_optional(tx)
        .await?)
    })
    .await?;
    let mut me =
        me.ok_or_else(|| ApiError::NotFound("no profile for this user in this tenant".into()))?;
    me.ai = state
        .llm
        .availability(&CallContext::for_caller(&caller, false))
        .await
        .map_err(ApiError::from)?
        .into();
    Ok(Json(me))
}
