//! Billing (tag `billing`): the operator changes the tenant's plan and
//! its billing interval, a closed month's draft is the operator's alone
//! (its PDF says DRAFT), is finalized and then the tenant's to list and
//! download, and is voided with a reason; the operator's list of
//! subscribed tenants and the month-end run. A tenant's token never
//! reaches the operator's routes.
//! Single node (see the end).

use serde_json::json;

use super::runner::{call, sql, Row, Who::*, GET, NONE, POST};

#[rustfmt::skip]
pub fn cases() -> Vec<Row> {
    vec![
        sql("insert into plans (plan_code, label, monthly_price, annual_price) values ('contract-basic', 'Basic', 310000, 3100000) on conflict do nothing", &[]),
        call(Admin, GET, "/api/billing/subscription", NONE, 404),
        call(Admin, GET, "/api/operator/billing/subscriptions", NONE, 401),
        call(Admin, POST, "/api/operator/billing/tenants/{tenant}/plan", json!({"plan_code": "contract-basic"}), 401),
        call(Operator, POST, "/api/operator/billing/tenants/{tenant}/plan", json!({"plan_code": "no-such-plan"}), 422)
            .field("plan_code"),
        call(Operator, POST, "/api/operator/billing/tenants/{tenant}/plan", json!({"plan_code": "contract-basic", "price": 1}), 422)
            .field("price"),
        call(Operator, POST, "/api/operator/billing/tenants/{missing}/plan", json!({"plan_code": "contract-basic"}), 404),
        call(Operator, POST, "/api/operator/billing/tenants/{tenant}/plan", json!({"plan_code": "contract-basic"}), 200)
            .is("/plan_code", "contract-basic").is("/status", "active").is("/billing_interval", "monthly"),
        // By the year from the next period, then back before it began:
        // the month below closes monthly (one line).
        call(Admin, POST, "/api/operator/billing/tenants/{tenant}/interval", json!({"billing_interval": "annual"}), 401),
        call(Operator, POST, "/api/operator/billing/tenants/{tenant}/interval", json!({"billing_interval": "weekly"}), 422)
            .field("billing_interval"),
        call(Operator, POST, "/api/operator/billing/tenants/{missing}/interval", json!({"billing_interval": "annual"}), 404),
        call(Operator, POST, "/api/operator/billing/tenants/{tenant}/interval", json!({"billing_interval": "annual"}), 200)
            .is("/billing_interval", "annual"),
        call(Operator, POST, "/api/operator/billing/tenants/{tenant}/interval", json!({"billing_interval": "monthly"}), 200)
            .is("/billing_interval", "monthly"),
        call(Admin, GET, "/api/billing/subscription", NONE, 200).is("/plan_code", "contract-basic"),
        call(Sales, GET, "/api/billing/subscription", NONE, 200).is("/status", "active"),

        // The month closed (the billing clock 40 days on): a draft.
        sql("select billing_clock_set(now() + interval '40 days')::text", &[]),
        sql("select billing_close_period($1::uuid, (select current_period_start from subscriptions where tenant_id = $1::uuid), null)", &["tenant"])
            .save("billing_invoice", ""),
        call(Admin, GET, "/api/billing/invoices", NONE, 200).len("/items", 0),
        call(Admin, GET, "/api/billing/invoices/{billing_invoice}/pdf", NONE, 404),
        call(Operator, GET, "/api/operator/billing/invoices?status=draft", NONE, 200)
            .at_least("/items", 1).any("/items", "/status", "draft"),
        call(Operator, GET, "/api/operator/billing/invoices?status=unknown", NONE, 200).len("/items", 0),
        call(Operator, GET, "/api/operator/billing/invoices/{billing_invoice}/pdf", NONE, 200),
        call(Operator, GET, "/api/operator/billing/invoices/{missing}/pdf", NONE, 404),
        call(Operator, POST, "/api/operator/billing/invoices/{billing_invoice}/finalize", NONE, 200)
            .is("/status", "finalized").prefix("/invoice_no", "BIL-").len("/lines", 1),
        call(Admin, GET, "/api/billing/invoices", NONE, 200).len("/items", 1).is("/items/0/status", "finalized"),
        call(Admin, GET, "/api/billing/invoices/{billing_invoice}/pdf", NONE, 200),
        call(Operator, POST, "/api/operator/billing/invoices/{billing_invoice}/void", json!({"reason": " "}), 422)
            .field("reason"),
        call(Operator, POST, "/api/operator/billing/invoices/{billing_invoice}/void", json!({"reason": "issued twice"}), 200)
            .is("/status", "void").is("/void_reason", "issued twice"),
        call(Operator, POST, "/api/operator/billing/invoices/{billing_invoice}/finalize", NONE, 422)
            .field("status"),
        call(Operator, GET, "/api/operator/billing/subscriptions", NONE, 200)
            .at_least("/items", 1).any("/items", "/plan_code", "contract-basic"),
        // The contract tenant and the organisation the sign-up rows made.
        call(Operator, POST, "/api/operator/billing/month-end", NONE, 202).is("/tenants", 2),
        sql("select billing_clock_set(null)::text", &[]),
    ]
    .into_iter()
    // Single node: on Citus tenants get no subscription (billing's
    // trigger on tenants is not installed there), as in cases_payments.
    .map(Row::single_node)
    .collect()
}
