//! Marketing spend and events: entered and listed.

use serde_json::json;

use super::runner::{call, Row, Who::*, GET, NONE, POST};

#[rustfmt::skip]
pub fn cases() -> Vec<Row> {
    vec![
        call(Marketing, POST, "/api/marketing/spend", json!({"channel": "website", "spend_date": "{today}", "amount": 250000, "campaign": "Kontrak"}), 201),
        call(Marketing, POST, "/api/marketing/spend", json!({"channel": "website", "spend_date": "2026-01-01", "amount": 0}), 422),
        call(Finance,   GET,  "/api/marketing/spend?channel=website", NONE, 200),
        call(Marketing, POST, "/api/marketing/events", json!({"channel": "event", "event_type": "expo", "occurred_at": "2026-03-05 10:00", "reach": 300}), 201),
        call(Marketing, GET,  "/api/marketing/events", NONE, 200),
    ]
}
