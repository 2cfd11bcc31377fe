//! Sign-up, the first-party login, invitations by link and the
//! organisation. The links' tokens are read from the outbox as the owner
//! (the worker would e-mail them).

use serde_json::{json, Value};
use uuid::Uuid;

use super::runner::{call, sql, Row, Who::*, GET, NONE, PATCH, POST};

#[rustfmt::skip]
pub fn cases() -> Vec<Row> {
    let founder = format!("contract-founder-{}@example.test", Uuid::new_v4().simple());
    let invitee = format!("contract-invitee-{}@example.test", Uuid::new_v4().simple());
    let revokee = format!("contract-revokee-{}@example.test", Uuid::new_v4().simple());
    let password = "contract passphrase";
    vec![
        call(Nobody, POST, "/api/signup", json!({"email": founder, "company_name": "PT Kontrak", "full_name": "Andi"}), 202)
            .is("/status", "check_your_email"),
        call(Nobody, POST, "/api/signup", json!({"email": "not an address", "company_name": "PT X", "full_name": "X"}), 422).field("email"),
        sql("select substring(text_body from 'token=([A-Za-z0-9_-]+)') from emails
              where template = 'signup.verify' order by created_at desc limit 1", &[]).save("signup_link", ""),
        call(Nobody, POST, "/api/signup/verify", json!({"token": "{signup_link}", "password": "short"}), 422).field("password"),
        call(Nobody, POST, "/api/signup/verify", json!({"token": "{signup_link}", "password": password}), 201)
            .is("/plan_code", "trial"),
        call(Nobody, POST, "/api/signup/verify", json!({"token": "{signup_link}", "password": password}), 422)
            .field("token").why("a used link"),
        call(Nobody, POST, "/api/login", json!({"email": founder, "password": password}), 200).a("/token", "string"),
        call(Nobody, POST, "/api/login", json!({"email": founder, "password": "not the passphrase"}), 401),

        call(Sales, GET, "/api/organisation", NONE, 200).is("/slug", "acme"),
        call(Admin, PATCH, "/api/organisation", json!({"logo_url": "https://cdn.example.test/logo.png", "default_currency": "IDR"}), 200)
            .is("/logo_url", "https://cdn.example.test/logo.png"),
        call(Admin, PATCH, "/api/organisation", json!({"logo_url": Value::Null}), 200).is("/logo_url", Value::Null),
        call(Admin, PATCH, "/api/organisation", json!({"default_currency": "rupiah"}), 422).field("default_currency"),
        call(Admin, PATCH, "/api/organisation", json!({}), 422),
        call(Sales, PATCH, "/api/organisation", json!({"locale": "en"}), 403),

        call(Admin, POST, "/api/invitations", json!({"email": invitee, "full_name": "Dewi", "app_role": "finance"}), 201)
            .is("/app_role", "finance"),
        call(Admin, POST, "/api/invitations", json!({"email": "x@example.test", "full_name": "X", "app_role": "ops"}), 422)
            .field("dept_code"),
        call(Sales, POST, "/api/invitations", json!({"email": "y@example.test", "full_name": "Y", "app_role": "salesperson"}), 403),
        sql("select substring(text_body from 'token=([A-Za-z0-9_-]+)') from emails
              where template = 'signup.invitation' order by created_at desc limit 1", &[]).save("invitation_link", ""),
        call(Nobody, POST, "/api/invitations/accept", json!({"token": "{invitation_link}", "password": password}), 201)
            .is("/app_role", "finance"),
        call(Nobody, POST, "/api/invitations/accept", json!({"token": "{invitation_link}", "password": password}), 422)
            .field("token").why("a used link"),

        // The user managers' list (never a link's secret) and revocation.
        call(Admin, GET, "/api/invitations", NONE, 200).at_least("/items", 1).any("/items", "/app_role", "finance"),
        call(Admin, GET, "/api/invitations?status=revoked&limit=5", NONE, 200),
        call(Admin, GET, "/api/invitations?status=lost", NONE, 400),
        call(Sales, GET, "/api/invitations", NONE, 200).len("/items", 0).why("no profile.manage: row-level security"),
        call(Admin, POST, "/api/invitations", json!({"email": revokee, "full_name": "Rudi", "app_role": "salesperson"}), 201)
            .save("invitation", "/invitation_id"),
        call(Sales, POST, "/api/invitations/{invitation}/revoke", NONE, 403),
        call(Admin, POST, "/api/invitations/{missing}/revoke", NONE, 404),
        call(Admin, POST, "/api/invitations/{invitation}/revoke", NONE, 200).is("/status", "revoked").filled("/revoked_at"),
    ]
}
