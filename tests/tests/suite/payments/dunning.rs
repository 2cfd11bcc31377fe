//! The whole dunning path with the billing clock moved (never a sleep
//! for time to pass): an overdue invoice, reminders on day 0, 3 and 7 at
//! the SMTP sink, the soft lock after the grace period (writes refused
//! over HTTP with 402, reads and the tenant's data all there), a payment
//! while locked (a transfer proof, which a locked tenant may still send)
//! and the unlock in the transaction that records it; and a period
//! already paid for that is never locked because of another invoice.

use std::time::Duration;

use bizos_bff::email::MailSettings;
use bizos_bff::worker::{Worker, WorkerSettings};
use bizos_tests::{smtp_sink, TestDb};
use serde_json::json;
use uuid::Uuid;

use super::*;

/// A worker that sends mail to the tests' SMTP sink.
async fn mail_worker(db: &TestDb) -> tokio::sync::oneshot::Sender<()> {
    let settings = WorkerSettings {
        concurrency: 2,
        poll_interval: Duration::from_millis(200),
        name: format!("payments-test-{}", Uuid::new_v4().simple()),
        mail: Some(MailSettings {
            smtp_url: format!("smtp://127.0.0.1:{}", smtp_sink::port()).into(),
            username: None,
            password: None,
            timeout: Duration::from_secs(5),
            from: "Bizos Billing <billing@bizos.test>".parse().unwrap(),
        }),
        ..bizos_tests::worker_settings(
            db,
            100,
            bizos_bff::config::StorageSettings::Local {
                root: std::env::temp_dir().join("bizos-payments-test-files"),
            },
        )
    };
    let worker = Worker::build(settings).await.expect("worker");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(worker.run_until(async move {
        let _ = stopped.await;
    }));
    stop
}

/// Moves the billing clock to 03:00 UTC (10:00 in Jakarta) of `day`, and
/// runs what the worker runs every minute: the dunning jobs of the day,
/// waited for until they and their e-mails are done.
async fn day(db: &TestDb, day: &str) {
    clock(db, &format!("{day}T03:00:00Z")).await;
    sqlx::query("select billing_dunning_enqueue()")
        .execute(&db.owner)
        .await
        .unwrap();
    wait_until(
        db,
        "select not exists (select 1 from jobs where kind in ('billing.dunning', 'email.send')
                              and status in ('queued', 'running'))",
        "the dunning jobs and their e-mails",
    )
    .await;
}

fn subjects(email: &str) -> Vec<String> {
    // The Subject header, unfolded (a long one continues on lines that
    // start with white space).
    let subject = |m: &str| -> Option<String> {
        let mut lines = m.lines().skip_while(|l| !l.starts_with("Subject: "));
        let mut s = lines.next()?.strip_prefix("Subject: ")?.to_owned();
        for l in lines.take_while(|l| l.starts_with(' ') || l.starts_with('\t')) {
            s.push(' ');
            s.push_str(l.trim());
        }
        Some(s)
    };
    let mut s: Vec<String> = smtp_sink::messages_to(email)
        .iter()
        .filter_map(|m| subject(m))
        .collect();
    s.sort();
    s
}

async fn subscription(db: &TestDb, tenant: Uuid) -> String {
    sqlx::query_scalar("select status from subscriptions where tenant_id = $1")
        .bind(tenant)
        .fetch_one(&db.owner)
        .await
        .unwrap()
}

fn email_of(c: &bizos_bff::auth::Caller) -> String {
    format!("{}@example.test", c.user_id.simple())
}

async fn spend(
    app: &bizos_tests::TestApp,
    c: &bizos_bff::auth::Caller,
) -> (u16, serde_json::Value) {
    app.post_json(
        c,
        "/api/marketing/spend",
        &json!({"channel": "website", "spend_date": "2026-03-01", "amount": 250000}),
        None,
    )
    .await
}

#[tokio::test]
async fn overdue_reminders_then_soft_lock_then_unlock_on_payment() {
    overdue_reminders_then_soft_lock_then_unlock_on_payment_on(TestDb::new().await).await;
}

/// The same on Citus, where the soft lock is read by every request's
/// authentication from the distributed subscriptions.
#[tokio::test]
async fn overdue_reminders_then_soft_lock_then_unlock_on_payment_on_citus() {
    overdue_reminders_then_soft_lock_then_unlock_on_payment_on(TestDb::on_citus().await).await;
}

async fn overdue_reminders_then_soft_lock_then_unlock_on_payment_on(db: TestDb) {
    clock(&db, "2026-03-01T03:00:00Z").await;
    let app = app(&db, &[("TEST_WORKER", "off")]).await;
    let _worker = mail_worker(&db).await;
    let (t, admin) = tenant(&db, "pay-dun").await;
    let finance = db.create_user(t, "finance").await;
    let sales = db.create_user(t, "salesperson").await;
    let inv = invoice(&db, t, "2026-02-01", "2026-03-01", 110_000, "2026-03-10").await;
    // The tenant's data before: a write works.
    assert_eq!(spend(&app, &admin).await.0, 201);

    // Not due yet: nothing.
    day(&db, "2026-03-10").await;
    assert!(subjects(&email_of(&admin)).is_empty());
    assert_eq!(subscription(&db, t).await, "active");

    // Day 0 (the day after the due date): the first reminder, past_due,
    // to the users who pay (super admin, finance), not to the others.
    day(&db, "2026-03-11").await;
    let first = subjects(&email_of(&admin));
    assert_eq!(first.len(), 1, "{first:?}");
    assert!(
        first[0].contains("is unpaid (reminder 1 of 3)"),
        "{first:?}"
    );
    assert_eq!(subjects(&email_of(&finance)).len(), 1);
    assert!(subjects(&email_of(&sales)).is_empty());
    assert_eq!(subscription(&db, t).await, "past_due");
    // Past due is not locked: writes still work.
    assert_eq!(spend(&app, &admin).await.0, 201);
    // The same day again (a second worker, a rerun): nothing more.
    day(&db, "2026-03-11").await;
    let again: serde_json::Value = sqlx::query_scalar("select billing_dunning_run($1)")
        .bind(t)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(again["reminders"], 0);
    assert_eq!(subjects(&email_of(&admin)).len(), 1);

    day(&db, "2026-03-13").await;
    assert_eq!(subjects(&email_of(&admin)).len(), 1, "day 2: no reminder");
    day(&db, "2026-03-14").await;
    day(&db, "2026-03-18").await;
    let three = subjects(&email_of(&admin));
    assert_eq!(three.len(), 3, "{three:?}");
    assert!(three[2].contains("reminder 3 of 3"), "{three:?}");
    // The grace period (3 days after the last reminder) runs.
    day(&db, "2026-03-20").await;
    assert_eq!(subscription(&db, t).await, "past_due");
    assert_eq!(spend(&app, &admin).await.0, 201);

    // Locked.
    day(&db, "2026-03-21").await;
    assert_eq!(subscription(&db, t).await, "soft_locked");
    let mail = subjects(&email_of(&admin));
    assert!(
        mail.iter()
            .any(|s| s.contains("is read-only until invoice")),
        "{mail:?}"
    );
    let spent_before: i64 =
        sqlx::query_scalar("select count(*) from marketing_spend where tenant_id = $1")
            .bind(t)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    // Every write refused with 402 and a code to show; reads fine.
    let (status, body) = spend(&app, &admin).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (402, Some("subscription_soft_locked")),
        "{body}"
    );
    let (status, body) = app.get_json(&admin, "/api/marketing/spend").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"].as_array().unwrap().len() as i64, spent_before);
    assert_eq!(app.get_json(&sales, "/api/me").await.0, 200);
    let (status, _) = app.get_json(&admin, "/api/billing/payments").await;
    assert_eq!(status, 200);
    // Nothing deleted.
    let spent_after: i64 =
        sqlx::query_scalar("select count(*) from marketing_spend where tenant_id = $1")
            .bind(t)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(spent_after, spent_before);
    assert_eq!(spent_before, 3);

    // Paying is the one write a locked tenant may make: a transfer proof.
    let (status, proof) = app
        .upload(
            &admin,
            &format!("/api/billing/invoices/{inv}/transfer-proofs"),
            &[],
            "transfer.pdf",
            b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n".to_vec(),
            Some("proof-1"),
        )
        .await;
    assert_eq!(status, 201, "{proof}");
    assert_eq!(proof["status"], "pending");
    assert_eq!(subscription(&db, t).await, "soft_locked");
    // The operator approves: the payment, the invoice paid and the unlock
    // in one transaction.
    let (status, decided) = operator(
        &app,
        reqwest::Method::POST,
        &format!(
            "/api/operator/payments/transfer-proofs/{}/approve",
            proof["proof_id"].as_str().unwrap()
        ),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["payment"]["subscription_status"], "active");
    assert_eq!(state(&db, inv).await, ("paid".into(), "active".into(), 1));
    assert_eq!(spend(&app, &admin).await.0, 201);
    // And the next day's dunning leaves it alone.
    day(&db, "2026-03-22").await;
    assert_eq!(subscription(&db, t).await, "active");
}

/// Reminders and the lock on the same day (reminder days {0}, no grace),
/// a provider payment unlocking, and a period paid for that is not locked
/// for another invoice until it ends.
#[tokio::test]
async fn a_paid_period_is_not_locked_for_another_invoice_and_a_provider_payment_unlocks() {
    let db = TestDb::new().await;
    sqlx::query(
        "update billing_settings set dunning_reminder_days = '{0}', dunning_grace_days = 0",
    )
    .execute(&db.owner)
    .await
    .unwrap();
    clock(&db, "2026-03-02T03:00:00Z").await;
    let app = app(&db, &[("TEST_WORKER", "off")]).await;
    let _worker = mail_worker(&db).await;
    let (t, admin) = tenant(&db, "pay-period").await;
    // March is paid for; an overage invoice of February is not.
    let march = invoice(&db, t, "2026-03-01", "2026-04-01", 110_000, "2026-03-05").await;
    send_stripe(
        &app,
        &stripe_event("pp1", "invoice.paid", march, 110_000, "in_march"),
    )
    .await;
    let feb = invoice(&db, t, "2026-02-01", "2026-03-01", 55_000, "2026-03-05").await;
    day(&db, "2026-03-06").await;
    assert_eq!(
        subjects(&email_of(&admin)).len(),
        1,
        "the reminder went out"
    );
    assert_eq!(
        subscription(&db, t).await,
        "past_due",
        "not locked inside the paid March"
    );
    assert_eq!(spend(&app, &admin).await.0, 201);
    day(&db, "2026-03-31").await;
    assert_eq!(subscription(&db, t).await, "past_due");
    // April is not paid for: locked.
    day(&db, "2026-04-01").await;
    assert_eq!(subscription(&db, t).await, "soft_locked");
    assert_eq!(spend(&app, &admin).await.0, 402);
    // A card payment of February unlocks in the transaction recording it.
    let (status, body) = send_stripe(
        &app,
        &stripe_event("pp2", "invoice.paid", feb, 55_000, "in_feb"),
    )
    .await;
    assert_eq!(
        (status, body["effect"].as_str()),
        (200, Some("payment_recorded")),
        "{body}"
    );
    assert_eq!(state(&db, feb).await, ("paid".into(), "active".into(), 1));
    assert_eq!(spend(&app, &admin).await.0, 201);
}
