//! Payments (V55 + sql/api/payments.sql, bff/src/payments/): provider
//! webhooks signed by a local sender (Stripe-Signature, Midtrans
//! signature_key), one effect per event whatever the order and the
//! replays, manual transfer proofs decided by the operator, and the whole
//! dunning path with the billing clock moved: reminders at the SMTP sink,
//! the soft lock (402 on writes over HTTP, reads fine, nothing deleted),
//! and the unlock in the transaction that records the payment.

mod dunning;
mod placed;
mod providers;
mod transfer;

use std::time::Duration;

use bizos_bff::auth::Caller;
use bizos_tests::payment_sender::{midtrans_signature, now, stripe_header};
use bizos_tests::{spawn_app_with, status_and_json, TestApp, TestDb};
use serde_json::{json, Value};
use uuid::Uuid;

pub const STRIPE_OLD: &str = "whsec_test_old_0123456789abcdef";
pub const STRIPE_NEW: &str = "whsec_test_new_0123456789abcdef";
pub const MIDTRANS_KEY: &str = "SB-Mid-server-test-0123456789abcdef";
pub const OPERATOR_TOKEN: &str = "payments-test-operator-token-0123456789abcdef";

/// The BFF with both Stripe secrets (a roll under way), the Midtrans key
/// and the operator API; `extra` overrides.
pub async fn app(db: &TestDb, extra: &[(&str, &str)]) -> TestApp {
    let secrets = format!("{STRIPE_OLD},{STRIPE_NEW}");
    let owner = db.url("bizos_owner");
    let mut env: Vec<(&str, &str)> = vec![
        ("BIZOS_STRIPE_WEBHOOK_SECRETS", &secrets),
        ("BIZOS_MIDTRANS_SERVER_KEYS", MIDTRANS_KEY),
        ("BIZOS_OPERATOR_TOKEN", OPERATOR_TOKEN),
        ("BIZOS_OPERATOR_DATABASE_URL", &owner),
    ];
    env.extend_from_slice(extra);
    spawn_app_with(db, &env).await
}

/// Freezes the billing clock.
pub async fn clock(db: &TestDb, at: &str) {
    sqlx::query("select billing_clock_set($1::timestamptz)")
        .bind(at)
        .execute(&db.owner)
        .await
        .unwrap();
}

/// A tenant (Asia/Jakarta) on the plan `pay` (no trial: active), with a
/// super admin, whose e-mail gets the billing mail.
pub async fn tenant(db: &TestDb, slug: &str) -> (Uuid, Caller) {
    sqlx::query(
        "insert into plans (plan_code, label, monthly_price, trial_days) values ('pay', 'Pay', 100000, 0)
         on conflict (plan_code) do nothing",
    )
    .execute(&db.owner)
    .await
    .unwrap();
    let mut tx = db.owner.begin().await.unwrap();
    let id: Uuid = sqlx::query_scalar("select tenant_create($1, $2, 'Asia/Jakarta')")
        .bind(slug)
        .bind(format!("Tenant {slug}"))
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    sqlx::query("select tenant_set_plan($1, 'pay')")
        .bind(id)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let admin = db.create_user(id, "super_admin").await;
    (id, admin)
}

/// A finalized operator invoice of the tenant: the period, its total and
/// due date.
pub async fn invoice(
    db: &TestDb,
    tenant: Uuid,
    from: &str,
    to: &str,
    total: i64,
    due: &str,
) -> Uuid {
    let id: Uuid = sqlx::query_scalar(
        "insert into billing_invoices (tenant_id, subscription_id, period_start, period_end, finalize_after,
                                       subtotal, total)
         select tenant_id, subscription_id, $2::date, $3::date, now(), $4, $4
           from subscriptions where tenant_id = $1
         returning billing_invoice_id",
    )
    .bind(tenant)
    .bind(from)
    .bind(to)
    .bind(total)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    sqlx::query(
        "update billing_invoices set status = 'finalized', invoice_no = 'BIL-T-' || billing_invoice_id::text,
                issue_date = $2::date - 14, due_date = $2::date
          where billing_invoice_id = $1",
    )
    .bind(id)
    .bind(due)
    .execute(&db.owner)
    .await
    .unwrap();
    id
}

/// The invoice's status, the subscription's status and the payments of
/// the invoice.
pub async fn state(db: &TestDb, invoice: Uuid) -> (String, String, i64) {
    sqlx::query_as(
        "select i.status, s.status,
                (select count(*) from billing_payments p
                  where p.tenant_id = i.tenant_id and p.billing_invoice_id = i.billing_invoice_id)
           from billing_invoices i join subscriptions s on s.tenant_id = i.tenant_id
          where i.billing_invoice_id = $1",
    )
    .bind(invoice)
    .fetch_one(&db.owner)
    .await
    .unwrap()
}

/// A Stripe Event as Stripe documents it.
pub fn stripe_event(
    id: &str,
    kind: &str,
    invoice: Uuid,
    amount_idr: i64,
    stripe_invoice: &str,
) -> Value {
    let object = match kind {
        "payment_intent.succeeded" | "payment_intent.payment_failed" => json!({
            "id": format!("pi_{id}"), "object": "payment_intent", "amount": amount_idr * 100,
            "amount_received": if kind.ends_with("succeeded") { amount_idr * 100 } else { 0 },
            "currency": "idr", "invoice": stripe_invoice, "status": "succeeded",
            "last_payment_error": if kind.ends_with("failed") { json!({"message": "Your card was declined."}) } else { Value::Null },
            "metadata": {"bizos_invoice_id": invoice.to_string()}
        }),
        _ => json!({
            "id": stripe_invoice, "object": "invoice", "amount_due": amount_idr * 100,
            "amount_paid": if kind == "invoice.paid" { amount_idr * 100 } else { 0 },
            "attempt_count": 1, "currency": "idr", "customer": "cus_test",
            "status": if kind == "invoice.paid" { "paid" } else { "open" },
            "metadata": {"bizos_invoice_id": invoice.to_string()}
        }),
    };
    json!({
        "id": format!("evt_{id}"), "object": "event", "api_version": "2024-06-20",
        "created": now(), "livemode": false, "pending_webhooks": 1, "type": kind,
        "data": {"object": object}
    })
}

/// POSTs `raw` to the Stripe webhook with this Stripe-Signature.
pub async fn post_stripe_raw(app: &TestApp, raw: Vec<u8>, header: Option<String>) -> (u16, Value) {
    let mut req = app
        .http
        .post(app.url("/api/payments/stripe"))
        .header("content-type", "application/json");
    if let Some(h) = header {
        req = req.header("Stripe-Signature", h);
    }
    status_and_json(req.body(raw).send().await.unwrap()).await
}

/// Sends an Event signed now with the new secret.
pub async fn send_stripe(app: &TestApp, event: &Value) -> (u16, Value) {
    let raw = serde_json::to_vec(event).unwrap();
    let header = stripe_header(&[STRIPE_NEW], now(), &raw);
    post_stripe_raw(app, raw, Some(header)).await
}

/// A Midtrans notification as Midtrans documents it, signed with `key`.
pub fn midtrans_notification(
    invoice: Uuid,
    transaction: &str,
    status: &str,
    fraud: Option<&str>,
    gross_amount: &str,
    key: &str,
) -> Value {
    let order_id = format!("{invoice}.1");
    let status_code = match status {
        "settlement" | "capture" => "200",
        "pending" => "201",
        "expire" => "407",
        _ => "202",
    };
    let mut n = json!({
        "transaction_time": "2026-03-12 10:15:00", "transaction_status": status,
        "transaction_id": transaction, "status_message": "midtrans payment notification",
        "status_code": status_code, "signature_key": midtrans_signature(&order_id, status_code, gross_amount, key),
        "payment_type": "bank_transfer", "order_id": order_id, "merchant_id": "G141532850",
        "gross_amount": gross_amount, "currency": "IDR"
    });
    if let Some(f) = fraud {
        n["fraud_status"] = json!(f);
    }
    n
}

pub async fn send_midtrans(app: &TestApp, notification: &Value) -> (u16, Value) {
    status_and_json(
        app.http
            .post(app.url("/api/payments/midtrans"))
            .json(notification)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// As the operator.
pub async fn operator(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app
        .http
        .request(method, app.url(path))
        .bearer_auth(OPERATOR_TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    status_and_json(req.send().await.unwrap()).await
}

/// Waits (10 s at most) until `sql` (one bool) holds.
pub async fn wait_until(db: &TestDb, sql: &str, what: &str) {
    for _ in 0..200 {
        let done: bool = sqlx::query_scalar(sql).fetch_one(&db.owner).await.unwrap();
        if done {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}
