//! Usage metering: an integration's events (a metric of the contract's
//! own), replayed; the tenant's plan and month (a plan of its own without
//! caps, so that no cap of users holds a later area back).

use serde_json::json;

use super::runner::{call, sql, Row, Who::*, GET, NONE, POST};

#[rustfmt::skip]
pub fn cases() -> Vec<Row> {
    let batch = json!({"events": [{"event_id": "contract-1", "code": "contract_calls", "timestamp": "2026-01-15T10:00:00+07:00", "properties": {"n": 3}},
                                  {"event_id": "contract-2", "code": "contract_calls", "properties": {"n": "1.5", "note": "x"}}]});
    vec![
        sql("insert into billable_metrics (code, label, unit, aggregation, field_name)
             values ('contract_calls', 'contract calls', 'calls', 'sum', 'n') returning code", &[]),
        // A plan of its own without caps or trial: the contract tenant has
        // more users than the trial's seats, and later rows add users.
        sql("insert into plans (plan_code, label, monthly_price) values ('contract-usage', 'Contract usage', 0)
             on conflict do nothing returning plan_code", &[]),
        sql("update tenants set plan_code = 'contract-usage' where tenant_id = $1::uuid returning plan_code", &["tenant"]),
        call(Sales, POST, "/api/usage-events", batch.clone(), 403).why("usage.report"),
        call(Admin, POST, "/api/usage-events", batch.clone(), 200).is("/accepted", 2).is("/duplicates", 0),
        call(Admin, POST, "/api/usage-events", batch, 200).is("/accepted", 0).is("/duplicates", 2),
        call(Admin, POST, "/api/usage-events", json!({"events": [{"event_id": "contract-3", "code": "nope"}]}), 422)
            .field("events[0].code"),
        call(Admin, POST, "/api/usage-events", json!({"events": []}), 422),
        call(Admin, GET, "/api/billing/usage", NONE, 200).is("/plan/plan_code", "contract-usage").filled("/metrics"),
        call(Sales, GET, "/api/billing/usage", NONE, 403),
    ]
}
