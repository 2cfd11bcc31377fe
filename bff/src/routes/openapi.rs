//! The OpenAPI 3 document, generated from the route annotations (utoipa)
//! and served at /openapi.json.

use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::{Modify, OpenApi, ToSchema};

use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "bizos API", description = "The BFF of bizos: one atomic database RPC per request under the caller's claims. \
        Every POST/PATCH takes an optional Idempotency-Key header (Stripe's semantics)."),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(ErrorResponse, ErrorDetail)),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Every error of the API.
#[derive(Serialize, ToSchema)]
pub struct ErrorResponse {
    error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid`, `not_found`, `conflict`.
    code: String,
    /// What is wrong, for people.
    message: String,
    /// The request field at fault, when there is one.
    field: Option<String>,
}

/// Serves the finished document.
pub fn router(doc: Document) -> Router<AppState> {
    Router::new().route(
        "/openapi.json",
        get(move || async move { Json(doc.clone()) }),
    )
}
