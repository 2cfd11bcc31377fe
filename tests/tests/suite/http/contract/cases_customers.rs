//! Customers (the lead's, with its documents), prospects' stages,
//! activities and visits with a photo; two customers of the marketing
//! manager, one changed, a conflict, a merge and the survivor's merges.

use serde_json::json;

use super::runner::{call, form, sql, Bytes, Row, Who::*, GET, NONE, PATCH, POST};

#[rustfmt::skip]
const VISIT: &[(&str, &str)] = &[("summary", "Visited the warehouse"), ("customer_id", "{customer}"), ("gps_lat", "-6.2"), ("gps_lng", "106.8")];
/// A longitude that is not a number.
#[rustfmt::skip]
const VISIT_EAST: &[(&str, &str)] = &[("summary", "Visited the warehouse"), ("customer_id", "{customer}"), ("gps_lat", "-6.2"), ("gps_lng", "east")];

#[rustfmt::skip]
pub fn cases() -> Vec<Row> {
    vec![
        call(Sales, GET,  "/api/customers?limit=5", NONE, 200).filled("/items"),
        call(Sales, POST, "/api/customers/{customer}/documents", form(&[], "kontrak.pdf", Bytes::Pdf(1024)), 201),
        call(Ops,   POST, "/api/customers/{customer}/documents", form(&[], "kontrak.pdf", Bytes::Pdf(1024)), 403),
        call(Sales, GET,  "/api/customers/{customer}", NONE, 200)
            .filled("/prospects").filled("/leads").filled("/invoices").filled("/documents"),
        call(Ops,   GET,  "/api/customers/{customer}", NONE, 404),

        sql("select prospect_id from leads where lead_id = $1::uuid", &["lead"]).save("prospect", ""),
        call(Sales, POST, "/api/prospects/{prospect}/stage", json!({"stage": "CONTACTED", "note": "Called"}), 200),
        call(Sales, POST, "/api/prospects/{prospect}/stage", json!({"stage": "WON"}), 422),

        call(Sales, POST, "/api/activities", json!({"activity_type": "call", "summary": "Follow-up", "customer_id": "{customer}"}), 201),
        call(Sales, POST, "/api/activities", json!({"activity_type": "visit", "summary": "No photo", "customer_id": "{customer}"}), 422),
        call(Sales, POST, "/api/visits", form(VISIT, "gudang.png", Bytes::Png), 201),
        call(Sales, POST, "/api/visits", form(VISIT_EAST, "gudang.png", Bytes::Png), 422),
        call(Manager, GET, "/api/activities?source=manual", NONE, 200).len("/items", 2),

        call(Marketing, POST, "/api/leads", json!({"channel": "website", "company_name": "PT Gabung Satu", "contact_email": "satu@gabung.co.id"}), 201)
            .save("keep", "/customer_id"),
        call(Marketing, POST, "/api/leads", json!({"channel": "website", "company_name": "CV Gabung Dua", "contact_email": "dua@gabung.co.id"}), 201)
            .save("duplicate", "/customer_id"),
        call(Marketing, PATCH, "/api/customers/{keep}", json!({"city": "Semarang", "payment_terms_days": 30}), 200),
        call(Marketing, PATCH, "/api/customers/{keep}", json!({"email": "DUA@gabung.co.id"}), 409).why("the other's email"),
        call(Marketing, POST,  "/api/customers/{keep}/merge", json!({"duplicate_id": "{duplicate}"}), 200),
        call(Marketing, GET,   "/api/customers/{keep}/merges", NONE, 200).len("/items", 1),
    ]
}
