//! AI: chat (no provider keys: its fallback answers), usage, limits and
//! the tenant's own provider keys.

use serde_json::{json, Value};

use super::runner::{call, Row, Who::*, DELETE, GET, NONE, POST, PUT};

#[rustfmt::skip]
pub fn cases() -> Vec<Row> {
    vec![
        call(Sales, POST, "/api/ai/chat", json!({"messages": [{"role": "user", "content": "Halo, hubungi 0812-3456-7890"}]}), 200)
            .is("/source", "fallback"),
        call(Sales, POST, "/api/ai/chat", json!({"messages": []}), 422),
        call(Admin, GET,  "/api/ai/usage?group_by=day", NONE, 200).len("/items", 1),
        call(Admin, GET,  "/api/ai/usage?group_by=month", NONE, 200).len("/items", 1),
        call(Admin, GET,  "/api/ai/usage?group_by=feature", NONE, 200).len("/items", 1),
        call(Admin, GET,  "/api/ai/usage?group_by=model", NONE, 200).len("/items", 1),
        call(Sales, GET,  "/api/ai/limits", NONE, 200).at_least("/items", 10),
        call(Admin, PUT,  "/api/ai/limits", json!({"feature": "chat", "generations_per_day": 20, "tokens_per_month": Value::Null}), 200),
        call(Sales, PUT,  "/api/ai/limits", json!({"feature": "chat", "generations_per_day": 20}), 403),
        call(Admin, POST, "/api/ai/keys", json!({"provider": "openai", "label": "ours", "key": "sk-contract-0001"}), 201)
            .save("ai_key", "/key_id"),
        call(Admin, GET,    "/api/ai/keys", NONE, 200).len("/items", 1),
        call(Admin, DELETE, "/api/ai/keys/{ai_key}", NONE, 200),
        call(Admin, DELETE, "/api/ai/keys/{missing}", NONE, 404),
    ]
}
