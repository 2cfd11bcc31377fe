//! Leads: a bundle with an RFQ, a duplicate matched on its NPWP, the list,
//! one lead, its assignment and a change; then the errors every route
//! shares (no token, not found, a bad path, a bad query, bad bodies).

use serde_json::json;

use super::runner::{call, raw, Bytes, Row, Who::*, GET, NONE, PATCH, POST};

#[rustfmt::skip]
pub fn cases() -> Vec<Row> {
    let bundle = json!({"channel": "website", "company_name": "PT Kontrak Jaya",
        "npwp": "01.234.567.8-901.000", "contact_name": "Budi",
        "contact_email": "budi@kontrak.co.id", "contact_phone": "0812-1111-2222",
        "rfq": {"origin": "Jakarta", "destination": "Surabaya", "commodity": "Kopi",
                "weight_kg": 1200.5, "dept_target": "OPS"}});
    vec![
        call(Marketing, POST, "/api/leads", bundle, 201)
            .save("lead", "/lead_id").save("rfq_ticket", "/ticket_id").save("customer", "/customer_id"),
        call(Marketing, POST, "/api/leads", json!({"channel": "referral", "company_name": "PT Kontrak Jaya Abadi", "npwp": "01.234.567.8-901.000"}), 201)
            .is("/matched_on", "npwp"),
        call(Marketing, GET, "/api/leads?limit=1", NONE, 200).len("/items", 1).a("/next_cursor", "string"),
        call(Marketing, GET, "/api/leads/{lead}", NONE, 200).a("/customer", "object"),
        call(Marketing, POST, "/api/leads/{lead}/assign", json!({"salesperson_user_id": "{sales}"}), 200),
        call(Sales, PATCH, "/api/leads/{lead}", json!({"status": "contacted", "city": "Bekasi"}), 200).is("/city", "Bekasi"),

        call(Nobody, GET, "/api/leads", NONE, 401),
        call(Sales, GET, "/api/leads/{missing}", NONE, 404),
        call(Sales, GET, "/api/leads/not-a-uuid", NONE, 400),
        call(Sales, GET, "/api/leads?limit=0", NONE, 400),
        call(Sales, GET, "/api/leads?channel=pigeon", NONE, 400).is("/error/field", "query"),
        call(Marketing, POST, "/api/leads", raw("application/json", Bytes::Literal(b"{\"channel\": ")), 400),
        call(Marketing, POST, "/api/leads", raw("text/plain", Bytes::Literal(b"{}")), 415),
        call(Marketing, POST, "/api/leads", json!({"channel": "website", "company_name": "PT X", "colour": 1}), 422),
        call(Marketing, POST, "/api/leads", raw("application/json", Bytes::Blank(3 * 1024 * 1024)), 413),
        call(Ops, PATCH, "/api/leads/{lead}", json!({"city": "Bogor"}), [403, 404]),
    ]
}
