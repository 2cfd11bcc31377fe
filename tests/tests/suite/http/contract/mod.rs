//! The HTTP contract: the OpenAPI document against the running server.
//!
//! - every operation of the document is called with real data, and every
//!   response (successes and errors) must have a documented status and
//!   validate against the documented schema (JSON Schema 2020-12, the
//!   dialect of OpenAPI 3.1), so a drift between the database's jsonb and
//!   the documented types fails here;
//! - the document lists exactly the routes served, and its schemas are
//!   typed (no bare objects, enums and length limits on requests);
//! - request bodies are strict: wrong types, unknown keys, malformed JSON,
//!   NUL characters, too-long strings and values outside a closed set are
//!   refused with the JSON path of the problem in `field`, and nothing is
//!   written.
//!
//! The calls are tables, one `cases_<area>.rs` an area, run in the order
//! of [`every_case`] by [`runner::Runner`]. A new route is one row in its
//! area's table:
//!
//! ```text
//! call(Finance, POST, "/api/payments", json!({"invoice_id": "{invoice}", "amount": 5}), 201)
//!     .save("payment", "/payment_id"),
//! ```
//!
//! (who, method, path with the ids earlier rows saved, body, status; then
//! what the body must hold and what to save for later rows). The test
//! fails on an operation of the document that no row answers with a
//! success.

mod bad_bodies;
mod cases_admin;
mod cases_ai;
mod cases_api_keys;
mod cases_billing;
mod cases_customers;
mod cases_digest;
mod cases_files;
mod cases_imports;
mod cases_kb;
mod cases_kpi;
mod cases_leads;
mod cases_marketing;
mod cases_meta;
mod cases_operator;
mod cases_payments;
mod cases_plans;
mod cases_receivables;
mod cases_rfm;
mod cases_signup;
mod cases_sop;
mod cases_tickets;
mod cases_usage;
mod cases_webhooks;
mod document;
mod runner;

use bizos_tests::TestDb;
use runner::{Row, Runner};

/// Every area's rows, in order: later areas use what earlier ones made
/// (the lead's customer and ticket, the invoice, the customer's document).
fn every_case() -> Vec<Row> {
    [
        cases_meta::cases(),
        cases_leads::cases(),
        cases_tickets::cases(),
        cases_kpi::cases(),
        cases_imports::cases(),
        cases_receivables::cases(),
        cases_customers::cases(),
        cases_marketing::cases(),
        cases_files::cases(),
        cases_ai::cases(),
        cases_kb::cases(),
        cases_rfm::cases(),
        cases_sop::cases(),
        cases_digest::cases(),
        cases_api_keys::cases(),
        cases_admin::cases(),
        cases_webhooks::cases(),
        cases_operator::cases(),
        cases_signup::cases(),
        cases_billing::cases(),
        cases_payments::cases(),
        cases_plans::cases(),
        // Last: it gives the tenant a plan of its own.
        cases_usage::cases(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

#[tokio::test]
async fn every_response_matches_the_document() {
    every_response_matches_the_document_on(TestDb::new().await).await;
}

/// The same on Citus: every route of the BFF, with the same data, on a
/// database of the tests' cluster, so that a route whose queries Citus
/// cannot run fails here.
#[tokio::test]
async fn every_response_matches_the_document_on_citus() {
    every_response_matches_the_document_on(TestDb::on_citus().await).await;
}

async fn every_response_matches_the_document_on(db: TestDb) {
    // A master key, so that tenants may add keys of their own (no provider
    // keys: chat answers with its fallback).
    let master_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let mut run = Runner::start(db, &[("BIZOS_LLM_MASTER_KEY", master_key)]).await;
    run.run(every_case()).await;
    run.finish();
}
