//! The operator HTTP API (`/api/operator/…`, tag `operator`): the tenant
//! lifecycle of [`crate::placement::lifecycle`] for the fleet's operator,
//! not for any tenant, authenticated by the operator's token
//! ([`crate::placement::operator`]); a tenant's token or API key is refused
//! (401). Without a token configured the routes answer 404.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use utoipa::{OpenApi, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::error::{ApiError, Result};
use crate::placement::lifecycle::{ClusterAddArgs, Status};
use crate::placement::operator::OperatorApi;
use crate::placement::Tier;
use crate::state::AppState;
use crate::tenants::NewTenant;

/// A request that presented the operator's token.
pub struct OperatorCaller(Arc<OperatorApi>);

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
        created in a tier (shared, schema, isolated) on their region's default cluster, listed, shown, suspended \
        and resumed. Authenticated by the operator's token (BIZOS_OPERATOR_TOKEN), never by a tenant's token or \
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
    /// shared, schema or isolated.
    #[schema(value_type = String)]
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

#[utoipa::path(post, path = "/api/operator/tenants", tag = "operator", security(("operator" = [])),
    request_body = OperatorTenantCreate,
    responses((status = 201, description = "{tenant_id, user_id, placement}")))]
async fn create_tenant(
    OperatorCaller(api): OperatorCaller,
    Json(req): Json<OperatorTenantCreate>,
) -> Result<(StatusCode, Json<Value>)> {
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
    Ok((StatusCode::CREATED, Json(created)))
}

#[utoipa::path(get, path = "/api/operator/tenants", tag = "operator", security(("operator" = [])),
    responses((status = 200, description = "every tenant's placement (version 0: the control database's shared tier, no row)")))]
async fn list_tenants(OperatorCaller(api): OperatorCaller) -> Result<Json<Value>> {
    Ok(Json(api.operator.list().await?))
}

#[utoipa::path(get, path = "/api/operator/tenants/{id}", tag = "operator", security(("operator" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "{tenant_id, placement, tenant: {slug, name, status, …}}")))]
async fn show_tenant(
    OperatorCaller(api): OperatorCaller,
    Path(id): Path<Uuid>,
) -> Result<Json<Value>> {
    Ok(Json(api.operator.show(id).await?))
}

#[utoipa::path(post, path = "/api/operator/tenants/{id}/suspend", tag = "operator", security(("operator" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "{tenant_id, status}: every request of the tenant is refused (403 tenant_suspended)")))]
async fn suspend_tenant(
    OperatorCaller(api): OperatorCaller,
    Path(id): Path<Uuid>,
) -> Result<Json<Value>> {
    Ok(Json(api.operator.set_status(id, Status::Suspended).await?))
}

#[utoipa::path(post, path = "/api/operator/tenants/{id}/resume", tag = "operator", security(("operator" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "{tenant_id, status}: active again")))]
async fn resume_tenant(
    OperatorCaller(api): OperatorCaller,
    Path(id): Path<Uuid>,
) -> Result<Json<Value>> {
    Ok(Json(api.operator.set_status(id, Status::Active).await?))
}

#[utoipa::path(post, path = "/api/operator/clusters", tag = "operator", security(("operator" = [])),
    request_body = OperatorClusterAdd,
    responses((status = 201, description = "{cluster, region, backfilled}")))]
async fn add_cluster(
    OperatorCaller(api): OperatorCaller,
    Json(req): Json<OperatorClusterAdd>,
) -> Result<(StatusCode, Json<Value>)> {
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
        Json(api.operator.cluster_add(&args).await?),
    ))
}
