//! The operator HTTP API (`/api/operator/…`, tag `operator`): the tenant
//! lifecycle of [`crate::placement::lifecycle`] for the fleet's operator,
//! not for any tenant, authenticated by the operator's token
//! ([`crate::placement::operator`]); a tenant's token or API key is refused
//! (401). Without a token configured the routes answer 404.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::openapi::ErrorResponse;
use super::shapes::shapes;
use crate::error::{ApiError, Result};
use crate::extract::{Json, Path};
use crate::placement::lifecycle::{ClusterAddArgs, Status};
use crate::placement::operator::OperatorApi;
use crate::placement::Tier;
use crate::state::AppState;
use crate::tenant_moves::request::{self, MoveTo};
use crate::tenants::NewTenant;

/// A request that presented the operator's token.
pub struct OperatorCaller(pub Arc<OperatorApi>);

impl FromRequestParts<AppState> for OperatorCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let Some(api) = state.operator.clone() else {
            return Err(ApiError::NotFound(
                "the operator API is off on this server (no BIZOS_OPERATOR_TOKEN)".into(),
            ));
        };
        let presented = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::Unauthorized("the operator API needs the operator's token".into())
            })?;
        if !api.accepts(presented) {
            return Err(ApiError::Unauthorized(
                "not the operator's token (a tenant's token or API key is never accepted here)"
                    .into(),
            ));
        }
        Ok(OperatorCaller(api))
    }
}

#[derive(OpenApi)]
#[openapi(
    tags((name = "operator", description = "The fleet operator's tenant lifecycle: clusters by region, tenants \
        created in a tier (shared, schema, isolated) on their region's default cluster, listed, shown, suspended, \
        resumed and moved live to another tier. Authenticated by the operator's token (BIZOS_OPERATOR_TOKEN), never by a tenant's token or \
        API key; 404 when the server has no operator token.")),
    modifiers(&OperatorAuth),
)]
struct OperatorDoc;

struct OperatorAuth;

impl utoipa::Modify for OperatorAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "operator",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("BIZOS_OPERATOR_TOKEN"))
                    .build(),
            ),
        );
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(OperatorDoc::openapi())
        .routes(routes!(create_tenant, list_tenants))
        .routes(routes!(show_tenant))
        .routes(routes!(suspend_tenant))
        .routes(routes!(resume_tenant))
        .routes(routes!(add_cluster))
        .routes(routes!(move_tenant))
        .routes(routes!(abort_move))
        .routes(routes!(show_move))
}

/// A new tenant, its first user and where it goes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorTenantCreate {
    pub slug: String,
    pub name: String,
    pub time_zone: Option<String>,
    pub locale: Option<String>,
    pub admin_email: String,
    pub admin_name: String,
    pub admin_user_id: Option<Uuid>,
    /// Its region: it is created on the region's default cluster.
    pub region: String,
    pub tier: Tier,
}

/// A cluster of a region (its URL's secret by name, never the URL).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorClusterAdd {
    pub cluster: String,
    pub region: String,
    pub url_secret: String,
    #[serde(default)]
    pub default: bool,
    #[serde(default)]
    pub home: bool,
}

shapes! {
    /// Where a tenant's rows live: a row of control.tenant_placements.
    pub struct OperatorPlacement {
        tenant_id: Uuid,
        region: String,
        tier: Tier,
        cluster: String,
        database_name: String,
        /// The tenant's schema (schema tier).
        schema_name: Option<String>,
        /// Grows with every change of placement.
        version: i64,
    }

    /// A tenant created by the operator and its first administrator.
    pub struct OperatorTenantCreated {
        tenant_id: Uuid,
        user_id: Uuid,
        placement: OperatorPlacement,
    }

    /// Every tenant's placement.
    pub struct OperatorTenantList {
        items: Vec<OperatorTenantListItem>,
    }

    /// A tenant's placement as the list shows it: version 0 and no cluster
    /// for a tenant of the control database's shared tier without a row.
    pub struct OperatorTenantListItem {
        tenant_id: Uuid,
        region: String,
        tier: Tier,
        cluster: Option<String>,
        database_name: String,
        schema_name: Option<String>,
        version: i64,
    }

    /// A tenant's placement and its row there.
    pub struct OperatorTenant {
        tenant_id: Uuid,
        /// Version 0 and an empty cluster: the control database's shared
        /// tier, no catalogue row.
        placement: OperatorPlacement,
        tenant: OperatorTenantRow,
    }

    /// The tenant's row in its placement.
    pub struct OperatorTenantRow {
        slug: String,
        name: String,
        status: OperatorTenantStatus,
        time_zone: String,
        locale: String,
    }

    /// A tenant's status after a suspend or resume.
    pub struct OperatorTenantStatusChanged {
        tenant_id: Uuid,
        status: OperatorTenantStatus,
    }

    /// A tier move asked for: the worker's tenant.move job runs it.
    pub struct OperatorMoveRequested {
        move_id: Uuid,
    }

    /// A move asked to roll back at its next step.
    pub struct OperatorMoveAbortRequested {
        move_id: Uuid,
        abort_requested: bool,
    }

    /// A tier move: planned → preflight → copying → catching_up → frozen
    /// → switched → verified → done, or failed / rolled_back.
    pub struct OperatorMove {
        move_id: Uuid,
        tenant_id: Uuid,
        from_tier: Tier,
        to_tier: Tier,
        to_cluster: String,
        to_database: String,
        to_schema: Option<String>,
        state: OperatorMoveState,
        /// What the steps so far recorded.
        #[schema(value_type = OperatorMoveProgress)]
        progress: Value,
        /// Why it failed or rolled back.
        error: Option<String>,
        abort_requested: bool,
        frozen_at: Option<String>,
        switched_at: Option<String>,
        finished_at: Option<String>,
        created_at: String,
        updated_at: String,
    }

    /// What a move's steps recorded so far (each step adds its keys).
    pub struct OperatorMoveProgress {
        /// What preflight checked.
        preflight: Option<OperatorMovePreflight>,
        /// Tables copied so far, of `tables`.
        copied: Option<i64>,
        tables: Option<i64>,
        copied_rows: Option<i64>,
        copy_ms: Option<i64>,
        /// Captured changes applied before the freeze.
        changes_applied: Option<i64>,
        /// Tries to start the freeze while writes were under way.
        freeze_attempts: Option<i64>,
        last_freeze_wait_ms: Option<i64>,
        /// How long the tenant's writes were held.
        freeze_ms: Option<i64>,
        verify: Option<OperatorMoveVerify>,
        /// Verified after a resume past the switch.
        verify_resumed: Option<bool>,
        verify_differences: Option<Vec<String>>,
        /// Source rows removed after the grace period.
        purged_rows: Option<i64>,
        purge_skipped: Option<String>,
        /// The later move that took the tenant back onto this move's
        /// source rows (its purge keeps them).
        superseded_by: Option<Uuid>,
    }

    /// Preflight's findings: tables to move, and the version both sides
    /// are at.
    pub struct OperatorMovePreflight {
        tables: i64,
        /// The extension's version (null: not installed).
        extension: Option<String>,
        /// The last migration (V<n>).
        migration: String,
    }

    /// The comparison of source and target.
    pub struct OperatorMoveVerify {
        /// Per table (schema.table): its rows and checksum.
        #[schema(value_type = std::collections::BTreeMap<String, OperatorMoveTableCheck>)]
        tables: Value,
        rows: i64,
        audit_breaks: i64,
    }

    /// A table's rows and their order-independent checksum (a decimal).
    pub struct OperatorMoveTableCheck {
        rows: i64,
        checksum: String,
    }

    /// A registered cluster.
    pub struct OperatorClusterAdded {
        cluster: String,
        region: String,
        /// Tenants of this database given a placement row (with `home`).
        backfilled: i64,
    }
}

/// A tenant's status: suspended refuses every request (403
/// tenant_suspended), read_only every write.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum OperatorTenantStatus {
    Active,
    ReadOnly,
    Suspended,
}

/// The states of a tier move.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum OperatorMoveState {
    Planned,
    Preflight,
    Copying,
    CatchingUp,
    Frozen,
    Switched,
    Verified,
    Done,
    Failed,
    RolledBack,
}

#[utoipa::path(post, path = "/api/operator/tenants", tag = "operator", security(("operator" = [])),
    request_body = OperatorTenantCreate,
    responses((status = 201, description = "the tenant, its first administrator and its placement", body = OperatorTenantCreated),
              (status = 404, description = "the operator API is off (no BIZOS_OPERATOR_TOKEN)", body = ErrorResponse),
              (status = 422, description = "a field is invalid: no default cluster in the region (region), a slug taken (slug), …", body = ErrorResponse)))]
async fn create_tenant(
    OperatorCaller(api): OperatorCaller,
    Json(req): Json<OperatorTenantCreate>,
) -> Result<(StatusCode, axum::Json<Value>)> {
    let new = NewTenant {
        slug: req.slug,
        name: req.name,
        time_zone: req.time_zone,
        locale: req.locale,
        admin_email: req.admin_email,
        admin_name: req.admin_name,
        admin_user_id: req.admin_user_id,
    };
    let created = api.operator.create(&req.region, req.tier, &new).await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

#[utoipa::path(get, path = "/api/operator/tenants", tag = "operator", security(("operator" = [])),
    responses((status = 200, description = "every tenant's placement (version 0: the control database's shared tier, no row)", body = OperatorTenantList),
              (status = 404, description = "the operator API is off (no BIZOS_OPERATOR_TOKEN)", body = ErrorResponse)))]
async fn list_tenants(OperatorCaller(api): OperatorCaller) -> Result<axum::Json<Value>> {
    Ok(axum::Json(
        serde_json::json!({"items": api.operator.list().await?}),
    ))
}

#[utoipa::path(get, path = "/api/operator/tenants/{id}", tag = "operator", security(("operator" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "the tenant's placement and its row there", body = OperatorTenant),
              (status = 404, description = "no such tenant, or the operator API is off", body = ErrorResponse)))]
async fn show_tenant(
    OperatorCaller(api): OperatorCaller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Value>> {
    Ok(axum::Json(api.operator.show(id).await?))
}

#[utoipa::path(post, path = "/api/operator/tenants/{id}/suspend", tag = "operator", security(("operator" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "suspended: every request of the tenant is refused (403 tenant_suspended)", body = OperatorTenantStatusChanged),
              (status = 404, description = "no such tenant, or the operator API is off", body = ErrorResponse)))]
async fn suspend_tenant(
    OperatorCaller(api): OperatorCaller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Value>> {
    Ok(axum::Json(
        api.operator.set_status(id, Status::Suspended).await?,
    ))
}

#[utoipa::path(post, path = "/api/operator/tenants/{id}/resume", tag = "operator", security(("operator" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "active again", body = OperatorTenantStatusChanged),
              (status = 404, description = "no such tenant, or the operator API is off", body = ErrorResponse)))]
async fn resume_tenant(
    OperatorCaller(api): OperatorCaller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Value>> {
    Ok(axum::Json(
        api.operator.set_status(id, Status::Active).await?,
    ))
}

#[utoipa::path(post, path = "/api/operator/clusters", tag = "operator", security(("operator" = [])),
    request_body = OperatorClusterAdd,
    responses((status = 201, description = "the cluster is registered", body = OperatorClusterAdded),
              (status = 404, description = "the operator API is off (no BIZOS_OPERATOR_TOKEN)", body = ErrorResponse),
              (status = 422, description = "a field is invalid: a name taken (cluster), a URL given for url_secret, a second default of the region (default) or a second home (home)", body = ErrorResponse)))]
async fn add_cluster(
    OperatorCaller(api): OperatorCaller,
    Json(req): Json<OperatorClusterAdd>,
) -> Result<(StatusCode, axum::Json<Value>)> {
    let args = ClusterAddArgs {
        cluster: req.cluster,
        region: req.region,
        url_secret: req.url_secret,
        default: req.default,
        home: req.home,
        database_url: String::new(),
    };
    Ok((
        StatusCode::CREATED,
        axum::Json(api.operator.cluster_add(&args).await?),
    ))
}

#[utoipa::path(post, path = "/api/operator/tenants/{id}/move", tag = "operator", security(("operator" = [])),
    params(("id" = Uuid, Path)),
    request_body = MoveTo,
    responses((status = 202, description = "the move is planned and its job enqueued; follow it at /api/operator/moves/{move_id}", body = OperatorMoveRequested),
              (status = 404, description = "no such tenant or no placement of it, or the operator API is off", body = ErrorResponse),
              (status = 422, description = "a field is invalid: the tenant is there already or moving (to, tenant), a schema for another tier (schema), …", body = ErrorResponse)))]
async fn move_tenant(
    OperatorCaller(api): OperatorCaller,
    Path(id): Path<Uuid>,
    Json(to): Json<MoveTo>,
) -> Result<(StatusCode, axum::Json<Value>)> {
    let op = &api.operator;
    let move_id = request::request(&op.control, op.control_url(), id, &to).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({ "move_id": move_id })),
    ))
}

#[utoipa::path(post, path = "/api/operator/tenants/{id}/move/abort", tag = "operator", security(("operator" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "the move under way rolls back at its next step, to the untouched source", body = OperatorMoveAbortRequested),
              (status = 404, description = "the tenant has no move under way, or the operator API is off", body = ErrorResponse),
              (status = 409, description = "the move is past its switch: it can no longer be aborted", body = ErrorResponse)))]
async fn abort_move(
    OperatorCaller(api): OperatorCaller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Value>> {
    let move_id = request::abort(&api.operator.control, id).await?;
    Ok(axum::Json(
        serde_json::json!({ "move_id": move_id, "abort_requested": true }),
    ))
}

#[utoipa::path(get, path = "/api/operator/moves/{id}", tag = "operator", security(("operator" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "the move's state and progress", body = OperatorMove),
              (status = 404, description = "no such move, or the operator API is off", body = ErrorResponse)))]
async fn show_move(
    OperatorCaller(api): OperatorCaller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Value>> {
    Ok(axum::Json(request::state(&api.operator.control, id).await?))
}
