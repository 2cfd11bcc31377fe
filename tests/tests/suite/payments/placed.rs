//! The soft lock reaches a tenant placed in a schema of its own: its
//! subscription is the control database's, its rows are in its schema.
//! The BFF's router reads the lock with the tenant's route, and a change of
//! the lock is announced as a placement change, so the tenant's writes are
//! refused with 402 while it lasts (reads fine) and allowed again once the
//! subscription is active.

use std::time::{Duration, Instant};

use bizos_bff::auth::Caller;
use bizos_bff::placement::Tier;
use bizos_tests::TestApp;
use serde_json::json;

use super::app;
use crate::placement::Home;

async fn spend(app: &TestApp, c: &Caller) -> (u16, serde_json::Value) {
    app.post_json(
        c,
        "/api/marketing/spend",
        &json!({"channel": "website", "spend_date": "2026-12-01", "amount": 250000}),
        None,
    )
    .await
}

/// Waits until a write answers `status` (the routers hear of the change
/// asynchronously).
async fn until_write_answers(app: &TestApp, c: &Caller, status: u16) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let (got, body) = spend(app, c).await;
        if got == status {
            return body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "writes still answer {got}, not {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn set_status(h: &Home, tenant: uuid::Uuid, statuses: &[&str]) {
    for s in statuses {
        sqlx::query("update subscriptions set status = $2 where tenant_id = $1")
            .bind(tenant)
            .bind(s)
            .execute(&h.db.owner)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_schema_tenants_writes_are_refused_while_its_subscription_is_soft_locked() {
    let h = Home::new().await;
    let app = app(
        &h.db,
        &[
            ("BIZOS_SECRETS_FILE", &h.app_secrets()),
            ("TEST_WORKER", "off"),
        ],
    )
    .await;
    let (admin, _) = h.tenant("eu", Tier::Schema, "lock-placed").await;
    let tenant = admin.tenant_id;
    sqlx::raw_sql(&format!(
        "insert into plans (plan_code, label, monthly_price) values ('locked', 'Locked', 100000);
         select billing_change_plan('{tenant}', 'locked');"
    ))
    .execute(&h.db.owner)
    .await
    .unwrap();
    assert_eq!(spend(&app, &admin).await.0, 201);

    set_status(&h, tenant, &["past_due", "soft_locked"]).await;
    let body = until_write_answers(&app, &admin, 402).await;
    assert_eq!(body["error"]["code"], "subscription_soft_locked", "{body}");
    // Reads work. (A write may have landed while the lock was on its way
    // to the router: the list holds what was written, at least the first.)
    let (status, list) = app.get_json(&admin, "/api/marketing/spend").await;
    assert_eq!(status, 200, "{list}");
    let written = list["items"].as_array().unwrap().len();
    assert!(written >= 1, "{list}");

    set_status(&h, tenant, &["active"]).await;
    until_write_answers(&app, &admin, 201).await;
    let (_, list) = app.get_json(&admin, "/api/marketing/spend").await;
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        written + 1,
        "nothing lost: {list}"
    );
}
