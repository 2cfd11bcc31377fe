//! Receivables: an invoice 90 days old with a payment, the lists, a
//! collection ticket, aging and DSO; a draft issued and voided.

use serde_json::json;

use super::runner::{call, Row, Who::*, GET, NONE, POST};

#[rustfmt::skip]
pub fn cases() -> Vec<Row> {
    vec![
        call(Finance, POST, "/api/invoices", json!({"customer_id": "{customer}", "subtotal": "1000000.00", "tax": 110000, "issue_date": "{today-90}", "terms_days": 30}), 201)
            .save("invoice", "/invoice_id"),
        call(Sales,   POST, "/api/invoices", json!({"customer_id": "{customer}", "subtotal": 1, "tax": 0}), 403),
        call(Finance, POST, "/api/payments", json!({"invoice_id": "{invoice}", "amount": 110000, "reference": "BCA-1"}), 201),
        call(Finance, POST, "/api/payments", json!({"invoice_id": "{invoice}", "amount": 5, "reference": "BCA-1"}), 409),
        call(Finance, GET,  "/api/invoices?overdue=true", NONE, 200),
        call(Finance, GET,  "/api/invoices/{invoice}", NONE, 200),
        call(Finance, POST, "/api/invoices/{invoice}/collection-ticket", NONE, 200),
        call(Finance, GET,  "/api/ar/aging", NONE, 200).at_least("/items", 2),
        call(Finance, GET,  "/api/ar/dso?currency=IDR", NONE, 200).len("/items", 90),
        call(Finance, GET,  "/api/ar/dso?from={today}&to=2020-01-01", NONE, 422),

        call(Finance, POST, "/api/invoices", json!({"customer_id": "{customer}", "subtotal": 1000, "tax": 110, "status": "DRAFT"}), 201)
            .save("draft", "/invoice_id"),
        call(Finance, POST, "/api/invoices/{draft}/issue", NONE, 200),
        call(Finance, POST, "/api/invoices/{draft}/issue", NONE, 422),
        call(Sales,   POST, "/api/invoices/{draft}/void", NONE, 403),
        call(Finance, POST, "/api/invoices/{draft}/void", NONE, 200),
        call(Finance, POST, "/api/invoices/{invoice}/void", NONE, 422).why("it has a payment"),
    ]
}
