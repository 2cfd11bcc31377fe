//! Customers (the lead's, with its documents), prospects' stages,
//! activities and visits with a photo.

use serde_json::json;

use super::runner::{call, form, sql, Bytes, Row, Who::*, GET, NONE, POST};

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
    ]
}
