//! Large customer imports side by side with user traffic, on the test
//! cluster's default `max_locks_per_transaction` (64): the dedup of an
//! import batch takes a bounded number of locks (customer_dedup_lock), so
//! two imports of 50,000 rows with overlapping customers, processed by the
//! worker while lead bundles and lists run, all succeed and create no
//! customer twice. And a database out of lock table slots (53200, provoked
//! for real on a cluster of its own) is a 503 with `Retry-After` for the
//! BFF and a retryable failure for the worker, never a 500 or a dead job.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bizos_bff::auth::Caller;
use bizos_tests::own_cluster::OwnCluster;
use bizos_tests::{spawn_app_with, TestApp, TestDb};
use serde_json::{json, Value};

const ROWS: usize = 50_000;

async fn count(db: &TestDb, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&db.owner).await.unwrap()
}

/// The customer of number `i`: no NPWP, so it is found by e-mail, phone
/// and company name, the three keys an import batch locks.
fn customer(i: usize) -> (String, String, String) {
    (
        format!("PT Grosir Nusantara {i}"),
        format!("buyer{i}@grosir{}.co.id", i % 97),
        format!("0813-{:04}-{:04}", i / 10_000, i % 10_000),
    )
}

/// A customers file of the customers numbered `numbers`, in that order.
fn customers_csv(numbers: impl Iterator<Item = usize>) -> Vec<u8> {
    let mut out = String::from("company_name,email,phone,city\n");
    for i in numbers {
        let (company, email, phone) = customer(i);
        out.push_str(&format!("{company},{email},{phone},Bandung\n"));
    }
    out.into_bytes()
}

async fn upload(app: &TestApp, who: &Caller, file: Vec<u8>) -> String {
    let (status, staged) = app
        .upload(
            who,
            "/api/imports",
            &[("module", "customers")],
            "customers.csv",
            file,
            None,
        )
        .await;
    assert_eq!(status, 201, "{staged}");
    assert_eq!(staged["total_rows"], ROWS, "{staged}");
    staged["import_id"].as_str().unwrap().to_owned()
}

/// The import once done; fails at once when its job is dead.
async fn wait_done(db: &TestDb, app: &TestApp, who: &Caller, import: &str) -> Value {
    for _ in 0..3000 {
        let dead: Option<String> = sqlx::query_scalar(
            "select last_error from jobs where kind = 'import.process' and status = 'dead' \
              and payload ->> 'import_id' = $1",
        )
        .bind(import)
        .fetch_optional(&db.owner)
        .await
        .unwrap();
        assert!(
            dead.is_none(),
            "the job of import {import} is dead: {dead:?}"
        );
        let (status, body) = app
            .get_json(who, &format!("/api/imports/{import}?limit=3"))
            .await;
        assert_eq!(status, 200, "{body}");
        if body["import"]["status"] == "done" {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("import {import} did not finish in 10 minutes");
}

#[tokio::test]
async fn two_large_imports_and_user_traffic_at_once() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let first = db.create_user(tenant, "marketing_manager").await;
    let second = db.create_user(tenant, "marketing_manager").await;
    let seller = db.create_user(tenant, "marketing_manager").await;
    let reader = db.create_user(tenant, "salesperson").await;
    // Batches of 10,000 rows: 30,000 keys, one lock each before
    // customer_dedup_lock, so two at once needed more than the lock table
    // of the test cluster holds (64 x 322 slots, and the spare shared
    // memory a full table grows into: two batches of 5,000 still fit).
    // The first batches of the two files have no customer in common, so
    // neither waits for the other before it has all its locks. The first
    // batch runs in the request, and now the two take turns: more than the
    // default 30 s of a request on two busy cores. The worker runs beside
    // the BFF.
    let app = Arc::new(
        spawn_app_with(
            &db,
            &[
                ("BIZOS_IMPORT_BATCH_ROWS", "10000"),
                ("BIZOS_REQUEST_TIMEOUT_SECS", "300"),
            ],
        )
        .await,
    );

    // Customers 1-50,000 and 25,001-75,000, the second file backwards: the
    // two imports meet on 25,000 customers, in every batch.
    let a = upload(&app, &first, customers_csv(1..=ROWS)).await;
    let b = upload(
        &app,
        &second,
        customers_csv((ROWS / 2 + 1..=ROWS / 2 + ROWS).rev()),
    )
    .await;

    // User traffic while the imports run: lead bundles whose customers are
    // customers of the files (found or created, whoever comes first), and
    // lists of customers.
    let stop = Arc::new(AtomicBool::new(false));
    let mut traffic = Vec::new();
    for lane in 0..2usize {
        let (app, stop, seller) = (app.clone(), stop.clone(), seller.clone());
        traffic.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            let mut n = 0usize;
            while !stop.load(Ordering::SeqCst) || n < 20 {
                let i = 1 + (lane * 7_919 + n * 1_013) % (ROWS + ROWS / 2);
                let (company, email, phone) = customer(i);
                let (status, body) = app
                    .post_json(
                        &seller,
                        "/api/leads",
                        &json!({"channel": "website", "company_name": company,
                                "contact_email": email, "contact_phone": phone}),
                        None,
                    )
                    .await;
                if status != 201 {
                    failures.push(format!("lead bundle {i}: {status} {body}"));
                }
                n += 1;
            }
            (n, failures)
        }));
    }
    {
        let (app, stop, reader) = (app.clone(), stop.clone(), reader.clone());
        traffic.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            let mut n = 0usize;
            while !stop.load(Ordering::SeqCst) || n < 20 {
                let (status, body) = app.get_json(&reader, "/api/customers?limit=20").await;
                if status != 200 {
                    failures.push(format!("customer list: {status} {body}"));
                }
                let (status, body) = app.get_json(&reader, "/api/leads?limit=20").await;
                if status != 200 {
                    failures.push(format!("lead list: {status} {body}"));
                }
                n += 1;
            }
            (n, failures)
        }));
    }

    // Both imports at once: the first batch of each in its request, the
    // rest in the worker, side by side.
    let (path_a, path_b) = (
        format!("/api/imports/{a}/process"),
        format!("/api/imports/{b}/process"),
    );
    let (pa, pb) = tokio::join!(
        app.post_json(&first, &path_a, &json!(null), None),
        app.post_json(&second, &path_b, &json!(null), None),
    );
    // (Only when both started: a failed start says enough.)
    let done = if (pa.0, pb.0) == (202, 202) {
        Some([
            wait_done(&db, &app, &first, &a).await,
            wait_done(&db, &app, &second, &b).await,
        ])
    } else {
        None
    };
    stop.store(true, Ordering::SeqCst);
    let mut failures = Vec::new();
    let mut requests = 0;
    let mut bundles = 0;
    for (lane, t) in traffic.into_iter().enumerate() {
        let (n, f) = t.await.unwrap();
        requests += n;
        if lane < 2 {
            bundles += n;
        }
        failures.extend(f);
    }

    assert_eq!(
        (pa.0, pb.0),
        (202, 202),
        "the first batches: {} {}; user requests failed meanwhile: {} of {requests}, the first: {:?}",
        pa.1,
        pb.1,
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    for done in done.unwrap() {
        assert_eq!(
            (
                done["import"]["ok_rows"].as_i64(),
                done["import"]["error_rows"].as_i64()
            ),
            (Some(ROWS as i64), Some(0)),
            "{done}"
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {requests} user requests failed, the first: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    // Every import job ran once: no batch failed for lack of locks (a
    // retried batch would show as a second attempt).
    let jobs: Vec<(String, i32, Option<String>)> = sqlx::query_as(
        "select status, attempts, last_error from jobs where kind = 'import.process' order by created_at",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert_eq!(
        jobs.iter()
            .map(|(s, n, _)| (s.as_str(), *n))
            .collect::<Vec<_>>(),
        [("succeeded", 1), ("succeeded", 1)],
        "{jobs:?}"
    );

    // No customer twice: 75,000 customers, each e-mail, phone and name once,
    // whoever created them (either import or a lead bundle).
    assert_eq!(
        count(&db, "select count(*) from customers").await,
        (ROWS + ROWS / 2) as i64
    );
    for key in ["email_norm", "phone_norm", "company_norm"] {
        assert_eq!(
            count(
                &db,
                &format!("select count(*) from (select {key} from customers group by {key} having count(*) > 1) d")
            )
            .await,
            0,
            "customers sharing a {key}"
        );
    }
    assert_eq!(
        count(&db, "select count(*) from leads").await,
        bundles as i64,
        "one lead per bundle"
    );
}

#[tokio::test]
async fn out_of_lock_table_slots_is_503_with_retry_after_and_a_retryable_job() {
    use axum::response::IntoResponse;
    use bizos_bff::error::ApiError;
    use bizos_bff::worker::JobError;

    // A cluster of its own (so the shared test cluster's lock table is never
    // filled), reached only through its Unix socket, with a lock table of a
    // few hundred slots.
    let cluster = OwnCluster::start(
        "lock-table",
        "listen_addresses = ''\nport = 5432\n\
         max_connections = 10\nmax_locks_per_transaction = 10\nshared_buffers = 1MB",
    );
    let mut conn = {
        use sqlx::Connection;
        let opts = sqlx::postgres::PgConnectOptions::new()
            .socket(cluster.dir())
            .port(5432)
            .username("postgres")
            .database("postgres");
        sqlx::PgConnection::connect_with(&opts).await.unwrap()
    };
    // One advisory lock per row, as an import's dedup took one per key:
    // far more than the cluster's lock table holds.
    let err = sqlx::query_scalar::<_, i64>(
        "select count(pg_advisory_xact_lock(i)) from generate_series(1, 100000) i",
    )
    .fetch_one(&mut conn)
    .await
    .expect_err("the lock table is full long before");
    let sqlstate = err
        .as_database_error()
        .and_then(|d| d.code())
        .map(|c| c.into_owned());
    assert_eq!(sqlstate.as_deref(), Some("53200"), "{err}");

    // The worker: queued again with backoff, not dead.
    assert!(
        matches!(JobError::from_db(&err), JobError::Retryable(_)),
        "{err}"
    );
    // The BFF: 503 with Retry-After, the server's text not sent.
    let api = ApiError::from(err);
    let response = api.into_response();
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.headers().get("retry-after").map(|v| v.as_bytes()),
        Some(&b"5"[..])
    );
    let body: Value = serde_json::from_slice(
        &axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    assert!(
        !body.to_string().contains("shared memory"),
        "no server text: {body}"
    );

    // The session recovers once the transaction is gone.
    let n: i64 =
        sqlx::query_scalar("select count(pg_advisory_xact_lock(i)) from generate_series(1, 5) i")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!(n, 5);
}
