//! One module per resource; each exposes `router()` (JSON routes) and, when
//! it takes files, `upload_router()` (their own body limit and timeout).

pub mod activities;
pub mod admin;
pub mod ai;
pub mod api_keys;
pub mod audit;
pub mod billing;
pub mod customers;
pub mod digest;
pub mod files;
pub mod health;
pub mod imports;
pub mod invitations;
pub mod jobs;
pub mod kb;
pub mod kpi;
pub mod leads;
pub mod list;
pub mod marketing;
pub mod me;
pub mod openapi;
pub mod operator;
pub mod operator_payments;
pub mod payments;
pub mod plans;
pub mod precheck;
pub mod prospects;
pub mod receivables;
pub mod rfm;
pub mod route;
pub mod shapes;
pub mod signup;
pub mod sla;
pub mod tickets;
pub mod usage;
pub mod webhooks;
pub mod write;

use axum::Router;
use utoipa::openapi::OpenApi as Document;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::api_keys::scopes::RouteScopes;
use crate::state::AppState;
use crate::vocabulary::Vocabulary;

/// The JSON API routes with their part of the OpenAPI document. Every
/// route is registered with `routes!`, which adds it to the document too,
/// so the document lists exactly the routes served.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(health::router())
        .merge(me::router())
        .merge(openapi::router())
        .merge(leads::router())
        .merge(tickets::router())
        .merge(kpi::router())
        .merge(receivables::router())
        .merge(imports::router())
        .merge(jobs::router())
        .merge(files::router())
        .merge(ai::router())
        .merge(kb::router())
        .merge(digest::router())
        .merge(precheck::router())
        .merge(rfm::router())
        .merge(api_keys::router())
        .merge(admin::router())
        .merge(audit::router())
        .merge(customers::router())
        .merge(marketing::router())
        .merge(prospects::router())
        .merge(activities::router())
        .merge(sla::router())
        .merge(webhooks::router())
        .merge(operator::router())
        .merge(usage::router())
        .merge(signup::router())
        .merge(billing::router())
        .merge(plans::router())
        .merge(invitations::router())
        .merge(operator_payments::router())
        .merge(payments::router())
}

/// The routes that take file uploads.
pub fn uploads() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(tickets::upload_router())
        .merge(kpi::upload_router())
        .merge(imports::upload_router())
        .merge(files::upload_router())
        .merge(kb::upload_router())
        .merge(customers::upload_router())
        .merge(activities::upload_router())
        .merge(payments::upload_router())
}

/// Everything the server serves: the JSON routes, the upload routes, the
/// finished OpenAPI document (with the error responses every operation can
/// give, the terms of the database's vocabulary as the enums of its closed
/// sets, and the scope API keys need on each operation) and those scopes.
pub struct Api {
    pub json: Router<AppState>,
    pub uploads: Router<AppState>,
    pub document: Document,
    pub scopes: RouteScopes,
}

pub fn all(vocabulary: &Vocabulary) -> Api {
    let (json, mut doc) = api().split_for_parts();
    let (uploads, upload_doc) = uploads().split_for_parts();
    doc.merge(upload_doc);
    openapi::add_common_errors_to_all(&mut doc);
    let mut document = vocabulary.fill_document(doc);
    let scopes = RouteScopes::apply(&mut document, vocabulary);
    Api {
        json,
        uploads,
        document,
        scopes,
    }
}

/// The OpenAPI document as served at /openapi.json by a server that read
/// this vocabulary.
pub fn document(vocabulary: &Vocabulary) -> Document {
    all(vocabulary).document
}
