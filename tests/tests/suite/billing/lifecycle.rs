//! The subscription follows the tenant's plan (created in the tenant's
//! transaction, trial from the plan) and its statuses move only as the
//! lifecycle guard allows.

use bizos_tests::TestDb;
use uuid::Uuid;

/// A plan of the tests' own (price in IDR a month, trial days).
pub async fn plan(db: &TestDb, code: &str, monthly: i64, trial_days: i32) {
    sqlx::query(
        "insert into plans (plan_code, label, monthly_price, trial_days) values ($1, $1, $2, $3)
         on conflict (plan_code) do update set monthly_price = excluded.monthly_price, trial_days = excluded.trial_days",
    )
    .bind(code)
    .bind(monthly)
    .bind(trial_days)
    .execute(&db.owner)
    .await
    .unwrap();
}

/// Freezes the billing clock.
pub async fn clock(db: &TestDb, at: &str) {
    sqlx::query("select billing_clock_set($1::timestamptz)")
        .bind(at)
        .execute(&db.owner)
        .await
        .unwrap();
}

/// A tenant on `plan` (time zone Asia/Jakarta), created with it.
pub async fn tenant_on(db: &TestDb, slug: &str, plan: &str) -> Uuid {
    let mut tx = db.owner.begin().await.unwrap();
    let id: Uuid = sqlx::query_scalar("select tenant_create($1, $2)")
        .bind(slug)
        .bind(format!("Tenant {slug}"))
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    sqlx::query("select tenant_set_plan($1, $2)")
        .bind(id)
        .bind(plan)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    id
}

async fn status(db: &TestDb, tenant: Uuid) -> String {
    sqlx::query_scalar("select status from subscriptions where tenant_id = $1")
        .bind(tenant)
        .fetch_one(&db.owner)
        .await
        .unwrap()
}

async fn set_status(db: &TestDb, tenant: Uuid, to: &str) -> Result<(), sqlx::Error> {
    sqlx::query("update subscriptions set status = $2 where tenant_id = $1")
        .bind(tenant)
        .bind(to)
        .execute(&db.owner)
        .await
        .map(|_| ())
}

#[tokio::test]
async fn a_tenant_given_a_plan_gets_a_trialing_subscription_and_the_guard_refuses_illegal_moves() {
    let db = TestDb::new().await;
    plan(&db, "basic", 310_000, 14).await;
    clock(&db, "2026-12-10T03:00:00Z").await;
    let t = tenant_on(&db, "bill-a", "basic").await;

    let (status0, start, end, trial): (String, String, String, String) = sqlx::query_as(
        "select status, current_period_start::text, current_period_end::text,
                (trial_ends_at at time zone 'Asia/Jakarta')::text
           from subscriptions where tenant_id = $1",
    )
    .bind(t)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(
        (
            status0.as_str(),
            start.as_str(),
            end.as_str(),
            trial.as_str()
        ),
        (
            "trialing",
            "2026-12-01",
            "2027-01-01",
            "2026-12-24 00:00:00"
        )
    );

    // trialing -> soft_locked skips past_due: refused, nothing changed.
    let err = set_status(&db, t, "soft_locked").await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("subscription cannot move from \"trialing\" to \"soft_locked\""),
        "{msg}"
    );
    assert_eq!(status(&db, t).await, "trialing");

    // The legal path, then canceled is final.
    for to in ["active", "past_due", "soft_locked", "active", "canceled"] {
        set_status(&db, t, to).await.unwrap();
    }
    let err = set_status(&db, t, "active").await.unwrap_err();
    assert!(
        err.to_string().contains("cannot move from \"canceled\""),
        "{err}"
    );
    assert_eq!(status(&db, t).await, "canceled");
}

#[tokio::test]
async fn a_tenant_without_a_plan_has_no_subscription_and_a_plan_without_trial_starts_active() {
    let db = TestDb::new().await;
    plan(&db, "flat", 100_000, 0).await;
    clock(&db, "2026-12-10T03:00:00Z").await;
    let none = db.create_tenant("bill-none").await;
    let n: i64 = sqlx::query_scalar("select count(*) from subscriptions where tenant_id = $1")
        .bind(none)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(n, 0);
    let t = tenant_on(&db, "bill-flat", "flat").await;
    assert_eq!(status(&db, t).await, "active");
}
