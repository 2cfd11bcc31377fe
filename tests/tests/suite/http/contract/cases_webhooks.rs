//! Webhooks: an endpoint nothing listens at (port 9 of loopback, which
//! the tests' server allows), so deliveries stay pending; a lead's event
//! fanned out to it by the worker, read and replayed.

use serde_json::json;

use super::runner::{call, Row, Who::*, DELETE, GET, NONE, PATCH, POST};

#[rustfmt::skip]
pub fn cases() -> Vec<Row> {
    let hook = json!({"url": "http://127.0.0.1:9/contract", "event_types": ["lead.created"], "description": "contract"});
    vec![
        call(Sales, POST, "/api/webhooks/endpoints", hook.clone(), 403).why("webhook.manage"),
        call(Admin, POST, "/api/webhooks/endpoints", json!({"url": "http://10.0.0.1/", "event_types": ["lead.created"]}), 422).why("a private address"),
        call(Admin, POST, "/api/webhooks/endpoints", hook, 201).prefix("/secret", "whsec_").save("endpoint", "/endpoint_id"),
        call(Admin, GET, "/api/webhooks/endpoints", NONE, 200),
        call(Sales, GET, "/api/webhooks/endpoints", NONE, 403),
        call(Admin, GET, "/api/webhooks/endpoints/{endpoint}", NONE, 200),
        call(Admin, GET, "/api/webhooks/endpoints/{missing}", NONE, 404),
        call(Admin, PATCH, "/api/webhooks/endpoints/{endpoint}", json!({"description": "the contract's", "event_types": ["lead.created", "lead.assigned"]}), 200),
        call(Admin, PATCH, "/api/webhooks/endpoints/{endpoint}", json!({"event_types": []}), 422),
        call(Admin, POST, "/api/webhooks/endpoints/{endpoint}/secret/rotate", json!({"overlap_hours": 1}), 200).len("/secrets", 2),
        call(Admin, POST, "/api/leads", json!({"channel": "website", "company_name": "PT Kontrak Hook"}), 201),
        call(Admin, GET, "/api/webhooks/endpoints/{endpoint}/deliveries?limit=10", NONE, 200)
            .filled("/items").poll().save("delivery", "/items/0/delivery_id"),
        call(Admin, GET, "/api/webhooks/endpoints/{endpoint}/deliveries?status=lost", NONE, 422),
        call(Admin, GET, "/api/webhooks/deliveries/{delivery}", NONE, 200).is("/payload/type", "lead.created"),
        call(Admin, GET, "/api/webhooks/deliveries/{missing}", NONE, 404),
        call(Admin, POST, "/api/webhooks/deliveries/{delivery}/replay", NONE, 200),
        call(Admin, POST, "/api/webhooks/endpoints/{endpoint}/replay", json!({"since": "2020-01-01T00:00:00Z"}), 200).is("/replayed", 1),
        call(Admin, POST, "/api/webhooks/endpoints/{endpoint}/replay", json!({"since": "tomorrow"}), 422),
        call(Admin, DELETE, "/api/webhooks/endpoints/{endpoint}", NONE, 200),
    ]
}
