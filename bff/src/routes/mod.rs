//! One module per resource; each exposes `router()` (JSON routes) and, when
//! it takes files, `upload_router()` (their own body limit and timeout).

pub mod files;
pub mod health;
pub mod imports;
pub mod kpi;
pub mod leads;
pub mod list;
pub mod me;
pub mod openapi;
pub mod receivables;
pub mod tickets;
pub mod write;

use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// The JSON API routes with their part of the OpenAPI document.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(leads::router())
        .merge(tickets::router())
        .merge(kpi::router())
        .merge(receivables::router())
        .merge(imports::router())
        .merge(files::router())
}

/// The routes that take file uploads.
pub fn uploads() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(tickets::upload_router())
        .merge(kpi::upload_router())
        .merge(imports::upload_router())
        .merge(files::upload_router())
}
