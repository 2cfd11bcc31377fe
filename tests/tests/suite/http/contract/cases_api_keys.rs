//! API keys: created by an admin only, listed, revoked.

use serde_json::json;

use super::runner::{call, Row, Who::*, GET, NONE, POST};

#[rustfmt::skip]
pub fn cases() -> Vec<Row> {
    vec![
        call(Admin, POST, "/api/api-keys", json!({"name": "contract", "scopes": ["leads:read"], "allowed_ips": ["127.0.0.1"], "expires_at": "2099-01-01T00:00:00Z"}), 201)
            .save("api_key", "/key_id"),
        call(Sales, POST, "/api/api-keys", json!({"name": "contract", "scopes": ["leads:read"]}), 403),
        call(Admin, GET,  "/api/api-keys", NONE, 200).len("/items", 1),
        call(Admin, POST, "/api/api-keys/{api_key}/revoke", NONE, 200),
        call(Admin, POST, "/api/api-keys/{missing}/revoke", NONE, 404),
    ]
}
