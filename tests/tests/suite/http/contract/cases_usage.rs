//! Usage metering: an integration's events (a metric of the contract's
//! own), replayed; the tenant's plan and month (the trial plan, set last
//! of all areas so its cap of users holds no other area back).

use serde_json::json;

use super::runner::{call, sql, Row, Who::*, GET, NONE, POST};

#[rustfmt::skip]
pub fn cases() -> Vec<Row> {
    let batch = json!({"events": [{"event_id": "contract-1", "code": "contract_calls", "timestamp": "2026-01-15T10:00:00+07:00", "properties": {"n": 3}},
                                  {"event_id": "contract-2", "code": "contract_calls", "properties": {"n": "1.5", "note": "x"}}]});
    vec![
        sql("insert into billable_metrics (code, label, unit, aggregation, field_name)
             values ('contract_calls', 'contract calls', 'calls', 'sum', 'n') returning code", &[]),
        sql("update tenants set plan_code = 'trial' where tenant_id = $1::uuid returning plan_code", &["tenant"]),
        call(Sales, POST, "/api/usage-events", batch.clone(), 403).why("usage.report"),
        call(Admin, POST, "/api/usage-events", batch.clone(), 200).is("/accepted", 2).is("/duplicates", 0).on_citus(501),
        call(Admin, POST, "/api/usage-events", batch, 200).is("/accepted", 0).is("/duplicates", 2).on_citus(501),
        call(Admin, POST, "/api/usage-events", json!({"events": [{"event_id": "contract-3", "code": "nope"}]}), 422)
            .field("events[0].code").on_citus(501),
        call(Admin, POST, "/api/usage-events", json!({"events": []}), 422).on_citus(501),
        call(Admin, GET, "/api/billing/usage", NONE, 200).is("/plan/plan_code", "trial").filled("/metrics").on_citus(501),
        call(Sales, GET, "/api/billing/usage", NONE, 403),
    ]
}
