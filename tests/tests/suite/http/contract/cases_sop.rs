//! SOP pre-check: the rules, a draft's verdict, and an invoice refused by
//! a block rule with its reasons (and one created with a warning).

use serde_json::{json, Value};
use uuid::Uuid;

use super::runner::{call, sql, Row, Who::*, DELETE, GET, NONE, PATCH, POST};

#[rustfmt::skip]
pub fn cases() -> Vec<Row> {
    let draft = json!({"subtotal": 1000000, "tax": 110001, "b2b": false, "buyer_npwp": "01.000.013.1-093.000",
                       "lines": [{"description": "Sewa truk", "quantity": 1, "unit_price": 1000000,
                                  "discount_pct": 0, "luxury": false, "amount": 1000000}]});
    vec![
        call(Sales,   GET,  "/api/sop/rules", NONE, 200).len("/items", 5),
        call(Finance, POST, "/api/sop/rules", json!({"kind": "max_discount", "name": "Diskon 10", "parameters": {"max_pct": 10}, "severity": "warn", "active_from": "2025-01-01"}), 201)
            .save("rule", "/rule_id"),
        call(Sales,   POST, "/api/sop/rules", json!({"kind": "max_discount", "name": "Nope"}), 403),
        call(Finance, POST, "/api/sop/rules", json!({"kind": "max_discount", "name": "Diskon 10"}), 409),
        call(Finance, POST, "/api/sop/rules", json!({"kind": "max_discount", "name": "X", "parameters": {"max_pct": 101}}), 422),
        call(Finance, PATCH, "/api/sop/rules/{rule}", json!({"enabled": false, "active_from": Value::Null, "description": "Off for now"}), 200)
            .is("/applies_today", false),
        call(Finance, PATCH, "/api/sop/rules/{missing}", json!({"enabled": true}), 404),
        call(Finance, POST, "/api/precheck/invoice?notes=true", draft, 200).is("/valid", true).is("/notes/source", "unavailable"),
        call(Finance, POST, "/api/precheck/invoice", json!({"customer_id": Uuid::new_v4(), "subtotal": 1}), 404),
        call(Finance, POST, "/api/precheck/invoice", json!({"lines": [{"description": "x", "quantity": 0, "unit_price": 1}]}), 422),

        sql("insert into customers (tenant_id, company_name) values ($1::uuid, 'PT Aturan') returning customer_id", &["tenant"])
            .save("rule_customer", ""),
        call(Finance, POST, "/api/invoices", json!({"customer_id": "{rule_customer}", "lines": [{"description": "Sewa truk", "quantity": 1, "unit_price": 1000000, "discount_pct": 50}]}), 422)
            .is("/error/reasons/0/field", "lines[0].discount_pct").why("a block rule refuses it"),
        call(Finance, POST, "/api/invoices", json!({"customer_id": "{rule_customer}", "tax": 1, "lines": [{"description": "Sewa truk", "quantity": 1, "unit_price": 1000000}]}), 201)
            .is("/warnings/0/field", "tax"),
        call(Finance, DELETE, "/api/sop/rules/{rule}", NONE, 200),
        call(Finance, DELETE, "/api/sop/rules/{rule}", NONE, 404),
    ]
}
