//! `bench/webhooks/run`, part 2: webhook deliveries per second to a local
//! receiver, signed.
//!
//! Against a database cloned by the test harness from `BIZOS_TEST_ADMIN_URL`
//! (the benchmark's own cluster): one tenant with one endpoint (registered
//! through `webhook_endpoint_create` with a secret sealed under the
//! webhook master key, as the BFF does) pointing at a receiver in this
//! process on 127.0.0.1 that checks every `webhook-signature` (HMAC-SHA256
//! of id.timestamp.body under the secret) and answers 204. N events with
//! lead-sized bodies are put in the outbox (plain inserts as the owner:
//! this part measures delivery, part 1 the trigger), then a `bizos worker`
//! (the library's Worker, in this process) with the webhook master key
//! delivers them: `webhook.deliver` jobs claim batches (FOR UPDATE SKIP
//! LOCKED), send them concurrently, record each batch in one call. The
//! time runs from the worker's start to the last delivery recorded as
//! succeeded in the database.
//!
//! Baseline in the same run: the same number of signed POSTs straight to
//! the receiver with the same HTTP client settings and concurrency, no
//! database (the ceiling of the HTTP side on this machine).
//!
//! BIZOS_BENCH_WEBHOOK_N (20000), BIZOS_BENCH_WEBHOOK_JOBS (1: jobs of the
//! tenant running at once), BIZOS_BENCH_WEBHOOK_BATCH (200),
//! BIZOS_BENCH_WEBHOOK_CONCURRENCY (64). Results (markdown) on stdout,
//! progress on stderr.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use bizos_bff::webhooks::{secrets, signing};
use bizos_tests::{start_worker, test_webhook_settings, worker_settings, TestDb};
use secrecy::ExposeSecret;
use serde_json::json;
use uuid::Uuid;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Sink {
    key: Vec<u8>,
    ok: AtomicU64,
    bad: AtomicU64,
}

async fn receive(
    axum::extract::State(sink): axum::extract::State<Arc<Sink>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    let (id, ts, sig) = (
        h("webhook-id"),
        h("webhook-timestamp"),
        h("webhook-signature"),
    );
    let body = std::str::from_utf8(&body).unwrap_or("");
    let expected = signing::sign(&sink.key, id, ts.parse().unwrap_or(0), body);
    if sig.split(' ').any(|s| s == expected) {
        sink.ok.fetch_add(1, Ordering::Relaxed);
        StatusCode::NO_CONTENT
    } else {
        sink.bad.fetch_add(1, Ordering::Relaxed);
        StatusCode::UNAUTHORIZED
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: i64 = env_or("BIZOS_BENCH_WEBHOOK_N", 20_000);
    let jobs: i64 = env_or("BIZOS_BENCH_WEBHOOK_JOBS", 1);
    let batch: u32 = env_or("BIZOS_BENCH_WEBHOOK_BATCH", 200);
    let concurrency: usize = env_or("BIZOS_BENCH_WEBHOOK_CONCURRENCY", 64);

    let db = TestDb::new().await;
    let tenant = db.create_tenant("bench-hooks").await;
    let admin = db.create_user(tenant, "super_admin").await;

    // The secret, made and sealed as the BFF does.
    let settings = test_webhook_settings(&HashMap::from([
        ("BIZOS_WEBHOOKS_BATCH".to_owned(), batch.to_string()),
        (
            "BIZOS_WEBHOOKS_CONCURRENCY".to_owned(),
            concurrency.to_string(),
        ),
    ]));
    let keys = settings.master_keys()?.expect("the test master key");
    let secret = secrets::generate()?;
    let key = secrets::key_of(secret.expose_secret())
        .expect("whsec_")
        .to_vec();

    let sink = Arc::new(Sink {
        key: key.clone(),
        ok: AtomicU64::new(0),
        bad: AtomicU64::new(0),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(sink.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let url = format!("http://127.0.0.1:{port}/hook");

    let (endpoint, secret_id) = (Uuid::new_v4(), Uuid::new_v4());
    let sealed = secrets::seal(&keys, tenant, endpoint, secret_id, &secret)?;
    let mut tx = db.as_user(&admin).await;
    let _: serde_json::Value =
        sqlx::query_scalar("select webhook_endpoint_create($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(json!({"url": url, "event_types": ["lead.created"]}))
            .bind(endpoint)
            .bind(secret_id)
            .bind(&sealed.ciphertext)
            .bind(&sealed.nonce)
            .bind(&sealed.wrapped_dek)
            .bind(&sealed.dek_nonce)
            .bind(&sealed.master_key_id)
            .fetch_one(&mut *tx)
            .await?;
    tx.commit().await?;

    eprintln!("==> {n} events with their deliveries into the outbox");
    sqlx::query(
        "with ev as (
           insert into webhook_events (tenant_id, event_type, subject_id, payload)
           select $1, 'lead.created', g.id,
                  jsonb_build_object('type', 'lead.created',
                    'timestamp', to_char(now() at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),
                    'data', jsonb_build_object('lead_id', g.id, 'lead_no', 'LEAD-2026-' || lpad(g.i::text, 6, '0'),
                      'channel', 'website', 'status', 'NEW', 'customer_id', gen_random_uuid(),
                      'prospect_id', gen_random_uuid(), 'sales_owner_user_id', null, 'assigned_at', null,
                      'created_by', gen_random_uuid(), 'created_at', now(), 'updated_at', now()))
             from (select i, gen_random_uuid() as id from generate_series(1, $2) i) g
           returning event_id)
         insert into webhook_deliveries (tenant_id, event_id, endpoint_id)
         select $1, event_id, $3 from ev",
    )
    .bind(tenant)
    .bind(n)
    .bind(endpoint)
    .execute(&db.owner)
    .await?;
    sqlx::query("analyze webhook_deliveries; ")
        .execute(&db.owner)
        .await?;
    sqlx::query("analyze webhook_events")
        .execute(&db.owner)
        .await?;
    for _ in 0..jobs {
        sqlx::query("select job_enqueue_for($1, 'webhook.deliver')")
            .bind(tenant)
            .execute(&db.owner)
            .await?;
    }

    eprintln!("==> the worker delivers them (batch {batch}, {concurrency} at once, {jobs} job(s))");
    let storage = bizos_bff::config::StorageSettings::Local {
        root: std::env::temp_dir().join("bizos-webhook-bench-files"),
    };
    let started = Instant::now();
    let worker = start_worker(bizos_bff::worker::WorkerSettings {
        webhooks: settings.clone(),
        concurrency: (jobs as usize).max(1) + 1,
        poll_interval: Duration::from_millis(200),
        ..worker_settings(&db, 2000, storage)
    })
    .await;
    let elapsed = loop {
        let done: i64 = sqlx::query_scalar(
            "select count(*) from webhook_deliveries where tenant_id = $1 and status = 'succeeded'",
        )
        .bind(tenant)
        .fetch_one(&db.owner)
        .await?;
        if done >= n {
            break started.elapsed();
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "{done} of {n} delivered in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    drop(worker.stop);
    let _ = worker.stopped.await;
    let (ok, bad) = (
        sink.ok.load(Ordering::Relaxed),
        sink.bad.load(Ordering::Relaxed),
    );
    let attempts: i64 =
        sqlx::query_scalar("select count(*) from webhook_attempts where tenant_id = $1")
            .bind(tenant)
            .fetch_one(&db.owner)
            .await?;
    let rate = n as f64 / elapsed.as_secs_f64();

    eprintln!("==> baseline: {n} signed POSTs straight to the receiver, {concurrency} at once");
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let body = r#"{"data": {"lead_id": "00000000-0000-4000-8000-000000000000", "status": "NEW"}, "type": "lead.created", "timestamp": "2026-01-01T00:00:00.000000Z"}"#;
    let before = sink.ok.load(Ordering::Relaxed);
    let t0 = Instant::now();
    use futures_util::StreamExt;
    futures_util::stream::iter(0..n)
        .map(|i| {
            let client = &client;
            let url = &url;
            let key = &key;
            async move {
                let id = format!("msg_{i}");
                let ts = chrono::Utc::now().timestamp();
                client
                    .post(url.as_str())
                    .header("content-type", "application/json")
                    .header("webhook-id", &id)
                    .header("webhook-timestamp", ts.to_string())
                    .header("webhook-signature", signing::sign(key, &id, ts, body))
                    .body(body)
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false)
            }
        })
        .buffer_unordered(concurrency)
        .for_each(|_| async {})
        .await;
    let direct = t0.elapsed();
    let direct_ok = sink.ok.load(Ordering::Relaxed) - before;

    println!(
        "| webhook deliveries, {n} events, one endpoint on 127.0.0.1, signed (HMAC-SHA256) and verified by the receiver | per second |"
    );
    println!("|---|---:|");
    println!(
        "| through the outbox: `bizos worker` ({jobs} job(s), batches of {batch}, {concurrency} at once): claim, sign, POST, record | {rate:.0} ({:.1} s; {ok} verified, {bad} refused; {attempts} attempts logged) |",
        elapsed.as_secs_f64()
    );
    println!(
        "| baseline: the same number of signed POSTs straight to the receiver, {concurrency} at once, no database | {:.0} ({:.1} s; {direct_ok} verified) |",
        n as f64 / direct.as_secs_f64(),
        direct.as_secs_f64()
    );
    anyhow::ensure!(
        ok as i64 >= n && bad == 0,
        "{ok} verified, {bad} refused of {n}"
    );
    Ok(())
}
