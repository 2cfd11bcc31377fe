//! The operator API: its own token, never a tenant's; the lifecycle
//! through it (create in a tier, list, show, suspend, resume).

use bizos_tests::{spawn_app_with, status_and_json, TestApp};
use serde_json::{json, Value};

use super::Home;

pub const OPERATOR_TOKEN: &str = "operator-token-operator-token-0123456789";

/// The BFF with the operator API on, as the control database's owner with
/// the operator's secrets, and `more` settings.
pub async fn operator_app(h: &Home, more: &[(&str, &str)]) -> TestApp {
    let operator_secrets = h.secrets_path("operator").display().to_string();
    let owner = h.db.url("bizos_owner");
    let app_secrets = h.app_secrets();
    let mut env = vec![
        ("BIZOS_SECRETS_FILE", app_secrets.as_str()),
        ("BIZOS_OPERATOR_TOKEN", OPERATOR_TOKEN),
        ("BIZOS_OPERATOR_DATABASE_URL", owner.as_str()),
        ("BIZOS_OPERATOR_SECRETS_FILE", operator_secrets.as_str()),
    ];
    env.extend_from_slice(more);
    spawn_app_with(&h.db, &env).await
}

pub async fn as_operator(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app.http.request(method, app.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    status_and_json(req.send().await.unwrap()).await
}

#[tokio::test]
async fn the_operator_api_takes_only_the_operators_token_and_suspends_and_resumes_tenants() {
    let h = Home::new().await;
    let app = operator_app(&h, &[]).await;
    let post = reqwest::Method::POST;
    let get = reqwest::Method::GET;
    let (status, created) = as_operator(
        &app,
        OPERATOR_TOKEN,
        post.clone(),
        "/api/operator/tenants",
        Some(
            json!({"slug": "op-schema", "name": "Op", "admin_email": "a@op.example",
                    "admin_name": "A", "region": "eu", "tier": "schema"}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["placement"]["tier"], "schema", "{created}");
    let tenant = created["tenant_id"].as_str().unwrap().to_owned();
    let admin = bizos_tests::caller(
        tenant.parse().unwrap(),
        created["user_id"].as_str().unwrap().parse().unwrap(),
        "super_admin",
    );
    let (status, me) = app.get_json(&admin, "/api/me").await;
    assert_eq!(status, 200, "{me}");

    // A tenant's token (its super admin's), a wrong token, none: refused.
    let tenant_token = app.token(&admin);
    for token in [
        tenant_token.as_str(),
        "operator-token-operator-token-0123456788",
    ] {
        let (status, body) =
            as_operator(&app, token, get.clone(), "/api/operator/tenants", None).await;
        assert_eq!(status, 401, "{body}");
    }
    let res = app
        .http
        .get(app.url("/api/operator/tenants"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
    let (status, body) = as_operator(
        &app,
        &tenant_token,
        post.clone(),
        &format!("/api/operator/tenants/{tenant}/suspend"),
        None,
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(app.get_json(&admin, "/api/me").await.0, 200);

    let (status, list) = as_operator(
        &app,
        OPERATOR_TOKEN,
        get.clone(),
        "/api/operator/tenants",
        None,
    )
    .await;
    assert_eq!(status, 200, "{list}");
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["tenant_id"] == tenant.as_str()),
        "{list}"
    );
    let (status, shown) = as_operator(
        &app,
        OPERATOR_TOKEN,
        get.clone(),
        &format!("/api/operator/tenants/{tenant}"),
        None,
    )
    .await;
    assert_eq!(
        (status, shown["tenant"]["slug"].as_str()),
        (200, Some("op-schema")),
        "{shown}"
    );

    let (status, body) = as_operator(
        &app,
        OPERATOR_TOKEN,
        post.clone(),
        &format!("/api/operator/tenants/{tenant}/suspend"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("suspended")),
        "{body}"
    );
    let (status, body) = app.get_json(&admin, "/api/me").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("tenant_suspended")),
        "{body}"
    );
    let (status, body) = as_operator(
        &app,
        OPERATOR_TOKEN,
        post.clone(),
        &format!("/api/operator/tenants/{tenant}/resume"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("active")),
        "{body}"
    );
    assert_eq!(app.get_json(&admin, "/api/me").await.0, 200);

    // Residency: no default cluster in a region is a refusal naming it.
    let (status, body) = as_operator(
        &app,
        OPERATOR_TOKEN,
        post.clone(),
        "/api/operator/tenants",
        Some(
            json!({"slug": "op-nowhere", "name": "Op", "admin_email": "a@op.example",
                    "admin_name": "A", "region": "mars", "tier": "shared"}),
        ),
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("region")),
        "{body}"
    );

    // The document lists the operator's routes under their own tag.
    let (status, doc) =
        status_and_json(app.http.get(app.url("/openapi.json")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(
        doc["paths"]["/api/operator/tenants"]["get"]["tags"][0], "operator",
        "{}",
        doc["paths"]["/api/operator/tenants"]
    );
}

#[tokio::test]
async fn without_an_operator_token_the_operator_api_is_not_there() {
    let h = Home::new().await;
    let app = spawn_app_with(&h.db, &[]).await;
    let res = app
        .http
        .get(app.url("/api/operator/tenants"))
        .bearer_auth("x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 404);
}
