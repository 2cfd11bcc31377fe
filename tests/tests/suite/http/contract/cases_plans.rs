//! The operator's plan catalogue (tag `billing`): list, create, change
//! the terms, set and remove a metered price, retire, reinstate, the history; a code in use, a
//! negative price, an empty change and an unknown metric are refused
//! naming the field; a retired plan cannot be chosen in a plan change. A
//! tenant's token never reaches the catalogue. Single node, as the other
//! billing rows (the plan change needs the subscription the tenants
//! trigger makes).

use serde_json::{json, Value};

use super::runner::{call, Row, Who::*, DELETE, GET, NONE, PATCH, POST, PUT};

#[rustfmt::skip]
pub fn cases() -> Vec<Row> {
    let gold = json!({"plan_code": "contract-gold", "label": "Gold", "monthly_price": 750000, "annual_price": 7500000,
                      "trial_days": 0, "included_seats": 10, "ai_tokens_per_month": 2000000, "features": ["kb"]});
    vec![
        call(Admin, GET, "/api/operator/billing/plans", NONE, 401),
        call(Operator, GET, "/api/operator/billing/plans", NONE, 200)
            .at_least("/items", 1).any("/items", "/plan_code", "trial"),
        call(Operator, POST, "/api/operator/billing/plans", gold.clone(), 201)
            .is("/status", "on_sale").is("/included_seats", 10).len("/metrics", 0),
        call(Operator, POST, "/api/operator/billing/plans", gold, 409).field("plan_code"),
        call(Operator, POST, "/api/operator/billing/plans",
             json!({"plan_code": "contract-neg", "label": "N", "monthly_price": -1, "annual_price": 0}), 422)
            .field("monthly_price"),
        call(Operator, PATCH, "/api/operator/billing/plans/contract-gold",
             json!({"monthly_price": 800000, "included_seats": null}), 200)
            .is("/included_seats", Value::Null).is("/trial_days", 0),
        call(Operator, PATCH, "/api/operator/billing/plans/contract-gold", json!({}), 422).field("payload"),
        call(Operator, PATCH, "/api/operator/billing/plans/contract-none", json!({"label": "None"}), 404),
        call(Operator, PUT, "/api/operator/billing/plans/contract-gold/metrics/ai_tokens",
             json!({"included": 1000000, "unit_price": 0.05}), 200)
            .len("/metrics", 1).is("/metrics/0/metric_code", "ai_tokens"),
        call(Operator, PUT, "/api/operator/billing/plans/contract-gold/metrics/no_such_metric",
             json!({"unit_price": 1}), 422).field("metric_code"),
        call(Operator, DELETE, "/api/operator/billing/plans/contract-gold/metrics/ai_tokens", NONE, 200)
            .len("/metrics", 0),
        call(Operator, DELETE, "/api/operator/billing/plans/contract-gold/metrics/ai_tokens", NONE, 404),
        call(Operator, POST, "/api/operator/billing/plans/contract-gold/retire", NONE, 200)
            .is("/status", "retired").filled("/retired_at"),
        call(Operator, POST, "/api/operator/billing/plans/contract-none/retire", NONE, 404),
        call(Operator, GET, "/api/operator/billing/plans/contract-gold/history", NONE, 200)
            .len("/items", 5).is("/items/0/action", "retire").is("/items/4/action", "create"),
        call(Operator, GET, "/api/operator/billing/plans/contract-none/history", NONE, 404),
        call(Operator, POST, "/api/operator/billing/tenants/{tenant}/plan", json!({"plan_code": "contract-gold"}), 422)
            .field("plan_code").why("a retired plan"),
        call(Operator, POST, "/api/operator/billing/plans/contract-gold/reinstate", NONE, 200)
            .is("/status", "on_sale").is("/retired_at", Value::Null),
        call(Operator, POST, "/api/operator/billing/plans/contract-none/reinstate", NONE, 404),
    ]
    .into_iter()
    .map(Row::single_node)
    .collect()
}
