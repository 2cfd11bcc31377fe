//! The caller's own profile.

use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::auth::Caller;
use crate::db::read_as;
use crate::error::{ApiError, Result};
use crate::extract::Json;
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
}

#[utoipa::path(get, path = "/api/me", tag = "me",
    responses((status = 200, description = "the caller's profile and tenant", body = Me),
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
    me.map(Json)
        .ok_or_else(|| ApiError::NotFound("no profile for this user in this tenant".into()))
}
