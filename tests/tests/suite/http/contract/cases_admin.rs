//! Administration and audit: users, roles and their permissions, the audit
//! log, its chains and the history of a lead, a ticket and an invoice
//! (masked for the director).

use serde_json::{json, Value};
use uuid::Uuid;

use super::runner::{call, Row, Who::*, DELETE, GET, NONE, PATCH, POST};

#[rustfmt::skip]
pub fn cases() -> Vec<Row> {
    let email = format!("contract-{}@example.test", Uuid::new_v4().simple());
    vec![
        call(Admin, POST, "/api/users", json!({"email": email, "full_name": "Contract User", "app_role": "ops", "dept_code": "ops-jkt", "manager_user_id": "{manager}"}), 201)
            .save("user", "/user_id"),
        call(Admin, POST, "/api/users", json!({"email": "x@example.test", "full_name": "X", "app_role": "ops"}), 422).why("ops need a department"),
        call(Sales, POST, "/api/users", json!({"email": "y@example.test", "full_name": "Y", "app_role": "salesperson"}), 403).why("profile.manage"),
        call(Admin, GET, "/api/users?limit=2&app_role=ops", NONE, 200),
        call(Admin, GET, "/api/users?active=true&q=contract", NONE, 200),
        call(Sales, GET, "/api/users", NONE, 403),
        call(Admin, GET, "/api/users?app_role=janitor", NONE, 400),
        call(Admin, GET, "/api/users/{user}", NONE, 200),
        call(Admin, GET, "/api/users/{missing}", NONE, 404),
        call(Admin, PATCH, "/api/users/{user}", json!({"full_name": "Contract Two", "manager_user_id": Value::Null}), 200),
        call(Admin, PATCH, "/api/users/{user}", json!({"dept_code": Value::Null}), 422),
        call(Admin, PATCH, "/api/users/{user}", json!({"manager_user_id": "{user}"}), 422),
        call(Admin, POST, "/api/users/{user}/deactivate", NONE, 200),
        call(Admin, POST, "/api/users/{user}/reactivate", NONE, 200),
        call(Admin, POST, "/api/users/{admin}/deactivate", NONE, 422).why("the last super admin"),
        call(Sales, POST, "/api/users/{user}/reactivate", NONE, 403),

        call(Admin,    GET, "/api/roles", NONE, 200),
        call(Director, GET, "/api/roles", NONE, 403),
        call(Admin, POST, "/api/roles/finance/permissions", json!({"permission": "audit.read"}), 200),
        call(Admin, POST, "/api/roles/finance/permissions", json!({"permission": "audit.all"}), 422),
        call(Admin, POST, "/api/roles/janitor/permissions", json!({"permission": "audit.read"}), 422),
        call(Admin,    DELETE, "/api/roles/finance/permissions/audit.read", NONE, 200),
        call(Admin,    DELETE, "/api/roles/super_admin/permissions/profile.manage", NONE, 422),
        call(Director, DELETE, "/api/roles/finance/permissions/kb.manage", NONE, 403),

        call(Admin,    GET, "/api/audit?limit=3", NONE, 200).len("/items", 3).a("/next_cursor", "string"),
        call(Director, GET, "/api/audit?table=profiles", NONE, 200),
        call(Director, GET, "/api/audit?table=nope", NONE, 422),
        call(Admin,    GET, "/api/audit?after=nope", NONE, 400),
        call(Sales,    GET, "/api/audit", NONE, 403),
        call(Director, GET, "/api/audit/verify", NONE, 200),
        call(Finance,  GET, "/api/audit/verify", NONE, 403),
        call(Director, GET, "/api/leads/{lead}/history", NONE, 200).filled("/items"),
        call(Director, GET, "/api/leads/{missing}/history", NONE, 404),
        call(Director, GET, "/api/tickets/{ticket}/history", NONE, 200).filled("/items"),
        call(Director, GET, "/api/tickets/{missing}/history", NONE, 404),
        call(Director, GET, "/api/invoices/{invoice}/history", NONE, 200).filled("/items"),
        call(Director, GET, "/api/invoices/{missing}/history", NONE, 404),
    ]
}
