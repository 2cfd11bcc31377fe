//! `scripts/bench payments` (bench/payments/run): provider events replayed
//! duplicated and out of order through the real webhooks.
//!
//! A database cloned by the test harness from `BIZOS_TEST_ADMIN_URL` (a
//! scratch database of this run, dropped at the end), BIZOS_BENCH_PAY_TENANTS
//! (50) tenants with two finalized operator invoices each, and the BFF in
//! this process. BIZOS_BENCH_PAY_EVENTS (1,000) deliveries are made up as
//! the providers send them: per invoice a failure (Stripe
//! invoice.payment_failed or Midtrans deny), the payment told twice
//! (Stripe invoice.paid and payment_intent.succeeded of the same Stripe
//! invoice, or Midtrans capture and settlement of one transaction), a late
//! failure, and the rest of the count as duplicates of those; then
//! shuffled (a fixed seed) and sent, signed by the local sender, with
//! BIZOS_BENCH_PAY_CONCURRENCY (8) in flight.
//!
//! Checked after: every delivery answered 200, events applied = distinct
//! event ids, payments = invoices (0 double effects), every invoice paid
//! and every subscription active, and no event applied after its
//! invoice's payment did anything but `after_paid`, `already_recorded` or
//! `recorded` (no state moved backwards). Reported: deliveries/s over
//! HTTP, and the same deliveries through `payment_delivery_receive` in SQL
//! alone (no HTTP, no signature check) as the baseline, on a fresh copy of
//! the invoices.

use std::sync::Arc;
use std::time::Instant;

use bizos_tests::payment_sender::{midtrans_signature, now, stripe_header};
use bizos_tests::{spawn_app_with, TestDb};
use serde_json::{json, Value};
use uuid::Uuid;

const STRIPE: &str = "whsec_bench_0123456789abcdef";
const MIDTRANS: &str = "SB-Mid-server-bench-0123456789";

fn env_usize(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

struct Delivery {
    provider: &'static str,
    body: Vec<u8>,
}

fn stripe(id: String, kind: &str, invoice: Uuid, stripe_invoice: &str) -> Value {
    let object = if kind.starts_with("payment_intent") {
        json!({"id": format!("pi_{id}"), "object": "payment_intent", "amount_received": 11_000_000,
               "currency": "idr", "invoice": stripe_invoice, "metadata": {"bizos_invoice_id": invoice.to_string()}})
    } else {
        json!({"id": stripe_invoice, "object": "invoice", "amount_paid": 11_000_000, "attempt_count": 1,
               "currency": "idr", "metadata": {"bizos_invoice_id": invoice.to_string()}})
    };
    json!({"id": format!("evt_{id}"), "object": "event", "type": kind, "created": now(), "data": {"object": object}})
}

fn midtrans(invoice: Uuid, tx: &str, status: &str, fraud: &str) -> Value {
    let order = format!("{invoice}.1");
    let code = if status == "deny" { "202" } else { "200" };
    json!({"order_id": order, "status_code": code, "gross_amount": "110000.00", "transaction_id": tx,
           "transaction_status": status, "fraud_status": fraud, "payment_type": "credit_card",
           "transaction_time": "2026-03-12 10:00:00", "currency": "IDR",
           "signature_key": midtrans_signature(&order, code, "110000.00", MIDTRANS)})
}

/// A small deterministic shuffle (xorshift), so runs compare.
fn shuffle<T>(v: &mut [T]) {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
}

async fn invoices(db: &TestDb, tenants: usize) -> Vec<Uuid> {
    sqlx::query(
        "insert into plans (plan_code, label, monthly_price) values ('bench', 'Bench', 100000)",
    )
    .execute(&db.owner)
    .await
    .unwrap();
    let mut out = Vec::new();
    for i in 0..tenants {
        let t = db.create_tenant(&format!("pay-bench-{i}")).await;
        sqlx::query("update tenants set plan_code = 'bench' where tenant_id = $1")
            .bind(t)
            .execute(&db.owner)
            .await
            .unwrap();
        for (from, to) in [("2026-01-01", "2026-02-01"), ("2026-02-01", "2026-03-01")] {
            let id: Uuid = sqlx::query_scalar(
                "insert into billing_invoices (tenant_id, subscription_id, period_start, period_end, finalize_after, subtotal, total)
                 select tenant_id, subscription_id, $2::date, $3::date, now(), 110000, 110000
                   from subscriptions where tenant_id = $1 returning billing_invoice_id",
            )
            .bind(t)
            .bind(from)
            .bind(to)
            .fetch_one(&db.owner)
            .await
            .unwrap();
            sqlx::query(
                "update billing_invoices set status = 'finalized', invoice_no = 'BIL-B-' || billing_invoice_id::text,
                        issue_date = $2::date, due_date = '2099-01-01' where billing_invoice_id = $1",
            )
            .bind(id)
            .bind(to)
            .execute(&db.owner)
            .await
            .unwrap();
            out.push(id);
        }
    }
    out
}

fn deliveries(invoices: &[Uuid], n: usize) -> Vec<Delivery> {
    let mut base = Vec::new();
    for (i, inv) in invoices.iter().enumerate() {
        let si = format!("in_{i}");
        let bodies: Vec<(&'static str, Value)> = if i % 2 == 0 {
            vec![
                (
                    "stripe",
                    stripe(format!("{i}f"), "invoice.payment_failed", *inv, &si),
                ),
                ("stripe", stripe(format!("{i}p"), "invoice.paid", *inv, &si)),
                (
                    "stripe",
                    stripe(format!("{i}s"), "payment_intent.succeeded", *inv, &si),
                ),
                (
                    "stripe",
                    stripe(format!("{i}l"), "invoice.payment_failed", *inv, &si),
                ),
            ]
        } else {
            let tx = format!("tx-{i}");
            vec![
                (
                    "midtrans",
                    midtrans(*inv, &format!("{tx}-d"), "deny", "deny"),
                ),
                ("midtrans", midtrans(*inv, &tx, "capture", "accept")),
                ("midtrans", midtrans(*inv, &tx, "settlement", "accept")),
                ("midtrans", midtrans(*inv, &tx, "expire", "accept")),
            ]
        };
        for (provider, b) in bodies {
            base.push(Delivery {
                provider,
                body: serde_json::to_vec(&b).unwrap(),
            });
        }
    }
    let mut all = Vec::with_capacity(n);
    let mut k = 0;
    while all.len() < n {
        let d = &base[k % base.len()];
        all.push(Delivery {
            provider: d.provider,
            body: d.body.clone(),
        });
        k += 1;
    }
    shuffle(&mut all);
    all
}

async fn check(db: &TestDb, invoices: usize, distinct: usize) -> Vec<String> {
    let (events, payments, paid, active, backwards): (i64, i64, i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from control.payment_events),
                (select count(*) from billing_payments),
                (select count(*) from billing_invoices where status = 'paid'),
                (select count(*) from subscriptions where status = 'active'),
                (select count(*) from control.payment_events e
                  where e.effect not in ('after_paid', 'already_recorded', 'recorded')
                    and exists (select 1 from control.payment_events p
                                 where p.billing_invoice_id = e.billing_invoice_id
                                   and p.effect = 'payment_recorded' and p.processed_at < e.processed_at))",
    )
    .fetch_one(&db.owner)
    .await
    .unwrap();
    let mut problems = Vec::new();
    if events as usize != distinct {
        problems.push(format!("{events} events applied, {distinct} distinct"));
    }
    if payments as usize != invoices {
        problems.push(format!(
            "{payments} payments for {invoices} invoices (double effects)"
        ));
    }
    if paid as usize != invoices {
        problems.push(format!("{paid} of {invoices} invoices paid"));
    }
    if backwards != 0 {
        problems.push(format!("{backwards} events moved a paid invoice backwards"));
    }
    let _ = active;
    problems
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let tenants = env_usize("BIZOS_BENCH_PAY_TENANTS", 50);
    let n = env_usize("BIZOS_BENCH_PAY_EVENTS", 1000);
    let concurrency = env_usize("BIZOS_BENCH_PAY_CONCURRENCY", 8);

    eprintln!("==> HTTP: {tenants} tenants, {n} deliveries, {concurrency} in flight");
    let db = TestDb::new().await;
    let invs = invoices(&db, tenants).await;
    let all = Arc::new(deliveries(&invs, n));
    let distinct = {
        let mut ids: Vec<&[u8]> = all.iter().map(|d| d.body.as_slice()).collect();
        ids.sort();
        ids.dedup();
        ids.len()
    };
    let app = Arc::new(
        spawn_app_with(
            &db,
            &[
                ("BIZOS_STRIPE_WEBHOOK_SECRETS", STRIPE),
                ("BIZOS_MIDTRANS_SERVER_KEYS", MIDTRANS),
                ("BIZOS_DB_MAX_CONNECTIONS", "16"),
                ("TEST_WORKER", "off"),
            ],
        )
        .await,
    );
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (app, all, next) = (app.clone(), all.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut bad = 0usize;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(d) = all.get(i) else { break };
                let url = app.url(&format!("/api/payments/{}", d.provider));
                let mut req = app
                    .http
                    .post(url)
                    .header("content-type", "application/json");
                if d.provider == "stripe" {
                    req = req.header("Stripe-Signature", stripe_header(&[STRIPE], now(), &d.body));
                }
                let res = req.body(d.body.clone()).send().await.unwrap();
                if res.status().as_u16() != 200 {
                    bad += 1;
                }
            }
            bad
        }));
    }
    let mut not_ok = 0;
    for t in tasks {
        not_ok += t.await.unwrap();
    }
    let http_secs = started.elapsed().as_secs_f64();
    let mut problems = check(&db, invs.len(), distinct).await;
    if not_ok > 0 {
        problems.push(format!("{not_ok} deliveries not answered 200"));
    }

    eprintln!("==> SQL baseline: the same deliveries through payment_delivery_receive");
    let db2 = TestDb::new().await;
    let invs2 = invoices(&db2, tenants).await;
    let all2 = deliveries(&invs2, n);
    // The events as the BFF hands them over (read by its own parser).
    let prepared: Vec<(&str, Vec<u8>, Value)> = all2
        .iter()
        .map(|d| {
            let e = if d.provider == "stripe" {
                bizos_bff::payments::events::stripe(&d.body).unwrap()
            } else {
                bizos_bff::payments::events::midtrans(&serde_json::from_slice(&d.body).unwrap())
                    .unwrap()
            };
            (d.provider, d.body.clone(), e.to_json())
        })
        .collect();
    let prepared = Arc::new(prepared);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (pool, prepared, next) = (db2.owner.clone(), prepared.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((provider, body, event)) = prepared.get(i) else {
                    break;
                };
                sqlx::query("select payment_delivery_receive($1, '{}', $2, null, $3)")
                    .bind(*provider)
                    .bind(body)
                    .bind(event)
                    .execute(&pool)
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let sql_secs = started.elapsed().as_secs_f64();
    problems.extend(
        check(&db2, invs2.len(), distinct)
            .await
            .into_iter()
            .map(|p| format!("SQL: {p}")),
    );

    println!("| what | deliveries | distinct events | invoices | seconds | deliveries/s |");
    println!("|---|---:|---:|---:|---:|---:|");
    println!(
        "| HTTP: signed, verified, stored, applied ({concurrency} in flight) | {n} | {distinct} | {} | {http_secs:.2} | {:.0} |",
        invs.len(),
        n as f64 / http_secs
    );
    println!(
        "| SQL alone: payment_delivery_receive ({concurrency} connections) | {n} | {distinct} | {} | {sql_secs:.2} | {:.0} |",
        invs2.len(),
        n as f64 / sql_secs
    );
    println!();
    if problems.is_empty() {
        println!("Checked: every delivery answered 200; events applied = distinct events; one payment per invoice (0 double effects); every invoice paid; no event moved a paid invoice back.");
        Ok(())
    } else {
        println!("PROBLEMS: {}", problems.join("; "));
        anyhow::bail!("the replay had problems")
    }
}
