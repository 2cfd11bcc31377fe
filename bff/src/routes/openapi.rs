//! The OpenAPI 3.1 document, generated from the route annotations (utoipa)
//! and served at /openapi.json. Request bodies are the typed structs the
//! handlers parse (see [`crate::payload`]); responses are the shapes in
//! [`super::responses`]; every error is an [`ErrorResponse`].

use std::sync::Arc;

use axum::Extension;
use serde::Serialize;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr};
use utoipa::{Modify, OpenApi, ToSchema};

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::extract::Json;
use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "bizos API", description = "The BFF of bizos: one atomic database RPC per request under the caller's claims. \
        Every POST/PATCH takes an optional Idempotency-Key header (Stripe's semantics). \
        Request bodies are strict: unknown keys, wrong JSON types, NUL characters (\\u0000), strings over their \
        limit and values outside a closed set are refused with 422 and `field` set to the JSON path \
        (`company_name`, `rfq.origin`, `evidence[2]`; `body` for the body as a whole); a body that is not \
        JSON is 400 with `field` = the path reached or `body`; a body without content-type application/json is 415. \
        /api/v1/<path> serves every /api/<path> operation: the stable, versioned surface for integrations, which \
        takes a user's token or an API key (`Authorization: Bearer bz_live_…`); a key may call the operations \
        whose `api_key` security requirement names one of its scopes (403 insufficient_scope otherwise)."),
    tags((name = "webhooks", description = "Signed webhooks (Standard Webhooks). A tenant's webhook managers \
        (permission webhook.manage) register endpoints for event types; every change of a subscribed type is \
        written to an outbox in the transaction of the change and POSTed to the endpoint as {type, timestamp, data} \
        with the headers webhook-id (msg_<event id>: the same for every retry and replay; deduplicate with it), \
        webhook-timestamp (Unix seconds) and webhook-signature (v1,<base64 HMAC-SHA256 of id.timestamp.body> keyed \
        with the base64-decoded part of the whsec_ secret; during a rotation's overlap one v1 signature per secret, \
        space-separated). A 2xx answer within the timeout (15 s) is a success; failures are retried after 5 s, 5 min, \
        30 min, 2 h, 5 h, 10 h and 10 h, then the delivery is dead (replay it). An endpoint failing every delivery \
        for 5 days is disabled and the tenant's webhook managers are e-mailed. Deliveries are at least once and \
        NOT ordered, not even per endpoint: order by data timestamps and deduplicate by webhook-id. URLs must be \
        http(s) and resolve to public addresses only (checked at registration and at every delivery).")),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    // LlmFeature: the closed set of the AI routes' `feature` fields, listed
    // here too so the document carries every vocabulary of the database.
    components(schemas(ErrorResponse, ErrorDetail, ErrorCode, crate::payload::LlmFeature)),
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
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("bz_live_… API key: on /api/v1 only; the requirement lists the scope the operation needs")
                    .build(),
            ),
        );
    }
}

/// Every error of the API.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorResponse {
    error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErrorDetail {
    code: ErrorCode,
    /// What is wrong, for people.
    message: String,
    /// The request field at fault, when there is one: a JSON path of the
    /// body (`rfq.origin`, `items[2].qty`, `body`), a query parameter, a
    /// header (`Idempotency-Key`, `content-type`) or `path`.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
    /// A refusal by the tenant's SOP rules (invoice_create): every reason,
    /// the refusing ones and the warnings.
    #[serde(skip_serializing_if = "Option::is_none")]
    reasons: Option<Vec<super::shapes::SopReason>>,
}

/// Stable machine-readable error codes.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: the body is not JSON, a path or query parameter is malformed.
    BadRequest,
    /// 401: no or an invalid token.
    Unauthorized,
    /// 403: the role may not do this.
    Forbidden,
    /// 403: the token's user has no profile in the tenant.
    NoProfile,
    /// 403: the user is deactivated.
    UserInactive,
    /// 403: the tenant is suspended.
    TenantSuspended,
    /// 403: the tenant is read-only (reads work, writes are refused).
    TenantReadOnly,
    /// 403: the API key's scopes do not cover the operation, or the
    /// operation is not available to API keys.
    InsufficientScope,
    /// 403: the API key may not be used from the request's address.
    ApiKeyIpNotAllowed,
    /// 404: no such record, or not visible to the caller.
    NotFound,
    /// 405
    MethodNotAllowed,
    /// 409: a duplicate, an overlap, a concurrent request with the same key.
    Conflict,
    /// 413
    PayloadTooLarge,
    /// 415
    UnsupportedMediaType,
    /// 422: a field is invalid (see `field`).
    Invalid,
    /// 402: a cap of the tenant's plan is reached (active users, stored
    /// bytes; `field` names the cap): a bigger plan, not waiting, helps.
    PlanLimitReached,
    /// 429: a limit is used up (AI generations a day, tokens a month, of
    /// a feature or of the plan); retry after `Retry-After` seconds.
    RateLimited,
    /// 500 (details are logged, never sent).
    Internal,
    /// 501: this deployment does not offer the feature (imports on a
    /// Citus cluster: docs/citus.md).
    NotSupported,
    /// 503: transient; retry (Retry-After).
    Unavailable,
}

/// Adds the errors every operation can answer with, so a client (and the
/// conformance test) finds every status the server sends in the document.
/// Runs on the finished document (after every router is merged).
pub fn add_common_errors_to_all(doc: &mut Document) {
    for (path, item) in doc.paths.paths.iter_mut() {
        let ops = [
            item.get.as_mut(),
            item.post.as_mut(),
            item.put.as_mut(),
            item.patch.as_mut(),
            item.delete.as_mut(),
        ];
        for op in ops.into_iter().flatten() {
            add_common_errors(path, op);
        }
    }
}

fn add_common_errors(path: &str, op: &mut Operation) {
    let public = op
        .security
        .as_ref()
        .and_then(|s| serde_json::to_value(s).ok())
        .is_some_and(|v| v == serde_json::json!([{}]));
    let body_types: Vec<String> = op
        .request_body
        .as_ref()
        .map(|b| b.content.keys().cloned().collect())
        .unwrap_or_default();
    let params: Vec<serde_json::Value> = op
        .parameters
        .iter()
        .flatten()
        .filter_map(|p| serde_json::to_value(p).ok())
        .collect();
    let has_query = params
        .iter()
        .any(|p| p["in"] == "query" || p["in"] == "header");
    let idempotent = params.iter().any(|p| p["name"] == "Idempotency-Key");
    // Reasons per status, joined into one description; a status the
    // route documents itself keeps its own.
    let mut reasons: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    let mut add = |status: &'static str, description: &'static str| {
        reasons.entry(status).or_default().push(description);
    };
    if !public {
        add("401", "no token, or an invalid or expired one");
        add(
            "403",
            "the role may not do this, or the user or tenant may not act now \
             (no_profile, user_inactive, tenant_suspended, tenant_read_only)",
        );
    }
    if path.contains('{') {
        add("400", "a path parameter is malformed");
        if !public {
            add("404", "no such record, or not visible to the caller");
        }
    }
    if has_query {
        add("400", "a query parameter or header is malformed");
    }
    if body_types.iter().any(|t| t == "application/json") {
        add(
            "400",
            "the body is not valid JSON (field: the JSON path reached, or body)",
        );
        add("413", "the body is larger than the limit");
        add("415", "the body is not application/json");
        add(
            "422",
            "a field is invalid: a wrong type, an unknown key, a NUL character, too long, \
             outside its set, or refused by the database (field: its JSON path)",
        );
    }
    if body_types.iter().any(|t| t.starts_with("multipart/")) {
        add("400", "the multipart body is malformed");
        add("413", "the file is over the bucket's size limit");
        add("415", "a file type the bucket does not take");
        add("422", "a form field is missing or invalid");
    }
    if idempotent {
        add(
            "409",
            "a request with this Idempotency-Key is still in progress (field Idempotency-Key)",
        );
        add(
            "422",
            "this Idempotency-Key was used with a different request (field Idempotency-Key)",
        );
    }
    if !public && (idempotent || body_types.iter().any(|t| t.starts_with("multipart/"))) {
        add(
            "402",
            "a cap of the tenant's plan is reached: active users (field included_seats) or \
             stored bytes (field storage_quota_bytes); code plan_limit_reached",
        );
    }
    // Every route of the API reaches the database, also the public ones
    // (a payment provider's webhook stores its delivery).
    if !public || (path.starts_with("/api/") && !path.ends_with("/openapi.json")) {
        add(
            "503",
            "transient: the database is busy or unavailable; retry",
        );
    }
    for (status, descriptions) in reasons {
        op.responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| error_response(&descriptions.join("; ")));
    }
}

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorResponse")))
                .build(),
        )
        .build()
        .into()
}

/// The document itself.
#[utoipa::path(get, path = "/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "this OpenAPI 3.1 document", body = Object)))]
async fn openapi_json(Extension(doc): Extension<Arc<Document>>) -> Json<Document> {
    Json(doc.as_ref().clone())
}

/// The path of the integration document (not rewritten to `/api/…`).
pub const INTEGRATION_DOCUMENT: &str = "/api/v1/openapi.json";

/// The integration document: every operation an API key may call, under
/// its `/api/v1` path, with `servers`; for client generators.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "the OpenAPI 3.1 document of /api/v1: the operations API keys may call, at their /api/v1 paths", body = Object)))]
async fn integration_json(Extension(doc): Extension<Arc<Document>>) -> Json<Document> {
    Json(integration_document(&doc))
}

/// Serves the finished document and the integration document derived from
/// it; add the finished document with `Extension(Arc<Document>)`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(openapi_json))
        .routes(routes!(integration_json))
}

/// The document of `/api/v1` for integrations, derived from the finished
/// document (`doc`, with each operation's `api_key` requirement: see
/// [`crate::api_keys::scopes`]), so it is never a copy to keep in step:
///
/// - only the operations whose security names `api_key` (what a key may
///   call), each at `/api/v1/<path>` for its `/api/<path>`, with the same
///   parameters, bodies, responses and security (`bearer`: a user's
///   token; `api_key`: a key with the scope listed);
/// - `servers`: this server (the document's own origin), so a generated
///   client calls `/api/v1/…`, the paths that take API keys;
/// - the same components (schemas, security schemes).
pub fn integration_document(doc: &Document) -> Document {
    use utoipa::openapi::path::Paths;
    use utoipa::openapi::server::ServerBuilder;

    let mut out = doc.clone();
    let mut paths = Paths::new();
    for (path, item) in &doc.paths.paths {
        let Some(rest) = path.strip_prefix("/api/") else {
            continue;
        };
        if path.starts_with("/api/v1/") {
            continue;
        }
        let mut item = item.clone();
        let mut any = false;
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ] {
            if op.as_ref().is_some_and(for_keys) {
                any = true;
            } else {
                *op = None;
            }
        }
        if any {
            paths.paths.insert(format!("/api/v1/{rest}"), item);
        }
    }
    out.paths = paths;
    out.servers = Some(vec![ServerBuilder::new()
        .url("/")
        .description(Some(
            "this server: the document's own origin (operations are at /api/v1/…)",
        ))
        .build()]);
    out.info.title = "bizos integration API (/api/v1)".into();
    out.info.description = Some(
        "The operations of bizos that an API key may call, at their stable, versioned paths \
         /api/v1/…. Authenticate with `Authorization: Bearer bz_live_…` (an API key; a user's \
         token works too): each operation's `api_key` security requirement names the scope the \
         key needs (403 insufficient_scope otherwise). Every POST/PATCH takes an optional \
         Idempotency-Key header (Stripe's semantics). Request bodies are strict (unknown keys, \
         wrong types: 422 with `field` = the JSON path). Numbers are exact: amounts are JSON \
         numbers with every decimal digit kept from request to database to response (schema \
         Numeric, format decimal); read them into a decimal type, not a binary float. \
         The whole API, for user tokens at /api/…: GET /openapi.json."
            .into(),
    );
    out
}

/// Whether an API key may call the operation: its security names `api_key`.
fn for_keys(op: &Operation) -> bool {
    op.security
        .as_ref()
        .and_then(|s| serde_json::to_value(s).ok())
        .and_then(|v| v.as_array().cloned())
        .is_some_and(|reqs| reqs.iter().any(|r| r.get("api_key").is_some()))
}
