//! Receivables: an invoice 90 days old with a payment, the lists, a
//! collection ticket, aging and DSO; a draft issued and voided; payments
//! listed, a refund and a credit note (with their refusals), their lists
//! and the invoice detail that shows them.

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

        // 2,220 owed, 1,000 paid: a refund of at most the payment, a credit
        // note of at most what is left (1,320 after the refund of 100).
        call(Finance, POST, "/api/invoices", json!({"customer_id": "{customer}", "subtotal": 2000, "tax": 220, "issue_date": "{today-5}", "terms_days": 30}), 201)
            .save("refunded", "/invoice_id"),
        call(Finance, POST, "/api/payments", json!({"invoice_id": "{refunded}", "amount": 1000}), 201)
            .save("refunded_payment", "/payment_id"),
        call(Finance, GET,  "/api/payments?invoice_id={refunded}&limit=5", NONE, 200),
        call(Finance, POST, "/api/refunds", json!({"payment_id": "{refunded_payment}", "amount": 1000.01, "reason": "retur"}), 422)
            .why("more than the payment"),
        call(Finance, POST, "/api/refunds", json!({"payment_id": "{refunded_payment}", "amount": 100, "reason": "retur"}), 201),
        call(Sales,   POST, "/api/refunds", json!({"payment_id": "{refunded_payment}", "amount": 1, "reason": "retur"}), 403),
        call(Finance, GET,  "/api/refunds?invoice_id={refunded}", NONE, 200),
        call(Finance, POST, "/api/credit-notes", json!({"invoice_id": "{refunded}", "amount": 1320.01, "reason": "diskon"}), 422)
            .why("more than is left to pay"),
        call(Finance, POST, "/api/credit-notes", json!({"invoice_id": "{refunded}", "amount": 220, "reason": "diskon"}), 201),
        call(Finance, GET,  "/api/credit-notes?customer_id={customer}", NONE, 200),
        call(Finance, GET,  "/api/invoices/{refunded}", NONE, 200)
            .len("/refunds", 1).len("/credit_notes", 1),
    ]
}
