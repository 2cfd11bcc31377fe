//! Signed webhooks (B2B-8): the outbox written by the database in
//! the transaction of the change, delivery by the worker to a real
//! receiver on 127.0.0.1 that verifies every signature with the
//! `standardwebhooks` package from PyPI (scripts/lib/webhook_receiver.py,
//! an implementation independent of bizos), retries and dead letters,
//! replay, secret rotation, the SSRF guard, endpoints disabled after
//! failing for days, and the routes' refusals.
//!
//! Every target is on loopback: the tests' BFF and worker run with
//! BIZOS_WEBHOOKS_ALLOW_LOOPBACK=1 (the harness's default) unless a test
//! shows what happens without it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bizos_bff::auth::Caller;
use bizos_bff::worker::WorkerSettings;
use bizos_tests::webhook_receiver::Receiver;
use bizos_tests::{
    rpc, spawn_app, spawn_app_with, start_worker, test_webhook_settings, worker_settings, TestApp,
    TestDb,
};
use serde_json::{json, Value};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(60);

struct Org {
    tenant: Uuid,
    admin: Caller,
    marketing: Caller,
    seller: Caller,
    ops: Caller,
    finance: Caller,
    director: Caller,
}

async fn org(db: &TestDb) -> Org {
    let tenant = db.create_tenant("hooks").await;
    Org {
        tenant,
        admin: db.create_user(tenant, "super_admin").await,
        marketing: db.create_user(tenant, "marketing_manager").await,
        seller: db.create_user(tenant, "salesperson").await,
        ops: db.create_user(tenant, "ops").await,
        finance: db.create_user(tenant, "finance").await,
        director: db.create_user(tenant, "director").await,
    }
}

fn s(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {v}"))
        .to_owned()
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&db.owner).await.unwrap()
}

/// A POST whose answer carries a signing secret: that answer may not be
/// cached (`Cache-Control: no-store`, `Pragma: no-cache`).
async fn post_for_secret(app: &TestApp, who: &Caller, path: &str, body: &Value) -> (u16, Value) {
    let res = app
        .request_as(who, reqwest::Method::POST, path, None)
        .json(body)
        .send()
        .await
        .expect("request");
    let headers = res.headers().clone();
    let (status, answer) = bizos_tests::status_and_json(res).await;
    if answer["secret"].is_string() {
        assert_eq!(
            (
                headers.get("cache-control").and_then(|v| v.to_str().ok()),
                headers.get("pragma").and_then(|v| v.to_str().ok())
            ),
            (Some("no-store"), Some("no-cache")),
            "{path}"
        );
    }
    (status, answer)
}

/// Registers an endpoint through the API; returns it and its secret.
async fn register(app: &TestApp, admin: &Caller, url: &str, types: &[&str]) -> (Value, String) {
    let (status, endpoint) = post_for_secret(
        app,
        admin,
        "/api/webhooks/endpoints",
        &json!({"url": url, "event_types": types, "description": "the tests' receiver"}),
    )
    .await;
    assert_eq!(status, 201, "{endpoint}");
    let secret = s(&endpoint, "secret");
    (endpoint, secret)
}

/// A lead through the API, as `who`, with a contact's personal data.
async fn lead(app: &TestApp, who: &Caller, company: &str) -> Value {
    let n = Uuid::new_v4().as_u128() % 10_000_000;
    let (status, lead) = app
        .post_json(
            who,
            "/api/leads",
            &json!({"channel": "website", "company_name": company, "contact_name": "Budi Santoso",
                    "contact_email": format!("budi.santoso.{n}@example.co.id"),
                    "contact_phone": format!("0811{n:07}")}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{lead}");
    lead
}

/// The endpoint's deliveries through the API.
async fn deliveries(app: &TestApp, admin: &Caller, endpoint: &str) -> Vec<Value> {
    let (status, page) = app
        .get_json(
            admin,
            &format!("/api/webhooks/endpoints/{endpoint}/deliveries?limit=500"),
        )
        .await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

/// Waits until the endpoint has `n` deliveries in `status`.
async fn wait_status(
    app: &TestApp,
    admin: &Caller,
    endpoint: &str,
    status: &str,
    n: usize,
) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let all = deliveries(app, admin, endpoint).await;
        let matching: Vec<Value> = all
            .iter()
            .filter(|d| d["status"] == status)
            .cloned()
            .collect();
        if matching.len() >= n {
            return matching;
        }
        assert!(
            start.elapsed() < WAIT,
            "{n} {status} deliveries expected: {all:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An endpoint of `who`'s tenant made directly in the database (a sealed
/// secret the tests never open): for the database-only tests.
async fn endpoint_in_db(db: &TestDb, who: &Caller, types: &[&str]) -> Uuid {
    let out = rpc(
        db,
        who,
        "select webhook_endpoint_create($1, gen_random_uuid(), gen_random_uuid(), '\\x01',
                '\\x000000000000000000000000', decode(repeat('ab', 48), 'hex'),
                '\\x000000000000000000000000', 'k1')",
        &[json!({"url": "https://hooks.example.com/bizos", "event_types": types})],
    )
    .await
    .expect("webhook_endpoint_create");
    s(&out, "endpoint_id").parse().unwrap()
}

#[tokio::test]
async fn deliveries_are_signed_and_verify_with_standardwebhooks() {
    let db = TestDb::new().await;
    let o = org(&db).await;
    let app = spawn_app(&db).await;
    let receiver = Receiver::new().await;
    let (endpoint, secret) = register(&app, &o.admin, &receiver.url(), &["lead.created"]).await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    // Verified with the endpoint's secret and with another one, which
    // must fail (the check is not vacuous).
    receiver
        .configure(&[&secret, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"], 200)
        .await;

    let created = lead(&app, &o.marketing, "PT Kirim Cepat").await;
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let r = &got[0];
    assert_eq!(r.verified, [true, false], "{:?}", r.errors);
    assert!(
        r.errors[1]
            .as_deref()
            .is_some_and(|e| e.contains("signature")),
        "{:?}",
        r.errors
    );
    assert_eq!(r.answered, 200);
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
    assert_eq!(r.body["type"], "lead.created", "{}", r.body);
    assert!(r.body["timestamp"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
    let data = &r.body["data"];
    assert_eq!(data["lead_id"], created["lead_id"], "{data}");
    assert_eq!(data["lead_no"], created["lead_no"], "{data}");
    assert_eq!(data["channel"], "website");
    // No personal data leaves the tenant in a webhook.
    let text = r.body.to_string();
    for pii in ["Budi", "budi.santoso", "0811", "Kirim Cepat"] {
        assert!(!text.contains(pii), "{pii} in {text}");
    }
    for key in [
        "contact_name",
        "contact_email",
        "contact_phone",
        "npwp",
        "notes",
        "company_name",
    ] {
        assert!(data.get(key).is_none(), "{key} in {data}");
    }
    // The id is the event's, the timestamp now.
    let event: Uuid = sqlx::query_scalar("select event_id from webhook_events")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(r.id, format!("msg_{}", event.simple()));
    let ts: i64 = r.timestamp.parse().unwrap();
    assert!((ts - chrono::Utc::now().timestamp()).abs() < 120, "{ts}");
    assert!(r.signature.starts_with("v1,") && !r.signature.contains(' '));

    // The log through the API.
    let endpoint_id = s(&endpoint, "endpoint_id");
    let done = wait_status(&app, &o.admin, &endpoint_id, "succeeded", 1).await;
    assert_eq!(done[0]["message_id"], r.id.as_str());
    assert_eq!(done[0]["attempts"], 1);
    assert_eq!(done[0]["last_status_code"], 200);
    let (status, detail) = app
        .get_json(
            &o.admin,
            &format!("/api/webhooks/deliveries/{}", s(&done[0], "delivery_id")),
        )
        .await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["payload"], r.body);
    let log = detail["attempts_log"].as_array().unwrap();
    assert_eq!(log.len(), 1, "{detail}");
    assert_eq!(
        (
            &log[0]["status_code"],
            &log[0]["succeeded"],
            &log[0]["attempt_no"]
        ),
        (&json!(200), &json!(true), &json!(1))
    );
    assert!(log[0]["duration_ms"].as_i64().is_some());
    assert_eq!(log[0]["response_excerpt"], r#"{"ok": true}"#);

    // A type the endpoint does not receive writes nothing.
    let (status, t) = app
        .post_json(
            &o.seller,
            "/api/tickets",
            &json!({"ticket_type": "complaint", "subject": "Rusak", "dept_target": "OPS"}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{t}");
    assert_eq!(count(&db, "select count(*) from webhook_events").await, 1);
}

#[tokio::test]
async fn every_event_type_is_written_by_its_change() {
    let db = TestDb::new().await;
    let o = org(&db).await;
    let all = [
        "lead.created",
        "lead.assigned",
        "ticket.created",
        "ticket.status_changed",
        "invoice.created",
        "invoice.paid",
        "payment.recorded",
    ];
    let endpoint = endpoint_in_db(&db, &o.admin, &all).await;
    let created = rpc(
        &db,
        &o.marketing,
        "select crm_create_lead_bundle($1)",
        &[json!({"channel": "website", "company_name": "PT Semua Jenis", "contact_name": "Sari"})],
    )
    .await
    .unwrap();
    rpc(
        &db,
        &o.marketing,
        "select crm_assign_lead(($1 ->> 'lead_id')::uuid, ($1 ->> 'to')::uuid)",
        &[json!({"lead_id": created["lead_id"], "to": o.seller.user_id})],
    )
    .await
    .unwrap();
    let ticket = rpc(
        &db,
        &o.seller,
        "select ticket_create($1)",
        &[json!({"ticket_type": "complaint", "subject": "Rusak", "dept_target": "OPS"})],
    )
    .await
    .unwrap();
    rpc(
        &db,
        &o.ops,
        "select ticket_update(($1 ->> 'id')::uuid, $1 -> 'patch')",
        &[json!({"id": ticket["ticket_id"], "patch": {"status": "IN_PROGRESS"}})],
    )
    .await
    .unwrap();
    let invoice = rpc(
        &db,
        &o.finance,
        "select invoice_create(jsonb_build_object('customer_id', $1 ->> 'customer_id', 'subtotal', 1000,
                'tax', 110, 'issue_date', tenant_today(), 'due_date', tenant_today() + 30))",
        &[json!({"customer_id": created["customer_id"]})],
    )
    .await
    .unwrap();
    rpc(
        &db,
        &o.finance,
        "select payment_record($1)",
        &[json!({"invoice_id": invoice["invoice_id"], "amount": 1110, "reference": "TRF-1"})],
    )
    .await
    .unwrap();

    let events: Vec<(String, Value, Option<Uuid>)> = sqlx::query_as(
        "select event_type, payload, created_by from webhook_events order by created_at, event_type",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap();
    let mut types: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
    types.sort();
    let mut want = all.to_vec();
    want.sort();
    assert_eq!(types, want, "one event per change: {events:#?}");
    let of = |t: &str| &events.iter().find(|e| e.0 == t).unwrap().1;
    assert_eq!(
        of("lead.assigned")["data"]["sales_owner_user_id"],
        json!(o.seller.user_id)
    );
    assert_eq!(
        of("lead.assigned")["data"]["previous_sales_owner_user_id"],
        Value::Null
    );
    assert_eq!(of("ticket.status_changed")["data"]["status"], "IN_PROGRESS");
    assert_eq!(
        of("ticket.status_changed")["data"]["previous_status"],
        "OPEN"
    );
    assert_eq!(of("invoice.paid")["data"]["status"], "PAID");
    assert_eq!(
        of("payment.recorded")["data"]["invoice_id"],
        invoice["invoice_id"]
    );
    for (t, payload, _) in &events {
        assert_eq!(&payload["type"], t);
        assert!(payload["timestamp"].is_string() && payload["data"].is_object());
    }
    // The actor of each change.
    let by = |t: &str| events.iter().find(|e| e.0 == t).unwrap().2;
    assert_eq!(by("lead.created"), Some(o.marketing.user_id));
    assert_eq!(by("payment.recorded"), Some(o.finance.user_id));
    // Waiting for the worker's fan-out, and one job to deliver them (the
    // first change queued it; the others found it queued).
    assert_eq!(
        count(
            &db,
            "select count(*) from webhook_events where fanned_out_at is null"
        )
        .await,
        7
    );
    assert_eq!(
        count(&db, "select count(*) from webhook_deliveries").await,
        0
    );
    assert_eq!(
        count(
            &db,
            "select count(*) from jobs where kind = 'webhook.deliver'"
        )
        .await,
        1
    );
    // The fan-out (the worker's claim): one delivery per event to the
    // endpoint, all claimed by the batch.
    let claimed: i64 = sqlx::query_scalar(
        "select count(*) from webhook_deliveries_claim($1, 100, 60) where endpoint_id = $2",
    )
    .bind(o.tenant)
    .bind(endpoint)
    .fetch_one(&db.pool_as("bizos_worker"))
    .await
    .unwrap();
    assert_eq!(claimed, 7);
    assert_eq!(
        count(
            &db,
            "select count(*) from webhook_events where fanned_out_at is null"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn a_rolled_back_change_emits_nothing_and_a_committed_one_exactly_one_event() {
    let db = TestDb::new().await;
    let o = org(&db).await;
    let bundle = json!({"channel": "website", "company_name": "PT Transaksi"});

    // No endpoint: a change writes nothing at all.
    rpc(
        &db,
        &o.marketing,
        "select crm_create_lead_bundle($1)",
        std::slice::from_ref(&bundle),
    )
    .await
    .unwrap();
    assert_eq!(count(&db, "select count(*) from leads").await, 1);
    assert_eq!(count(&db, "select count(*) from webhook_events").await, 0);
    assert_eq!(
        count(
            &db,
            "select count(*) from jobs where kind = 'webhook.deliver'"
        )
        .await,
        0
    );

    let endpoint = endpoint_in_db(&db, &o.admin, &["lead.created"]).await;
    // Rolled back: no lead, no event, no job.
    let mut tx = db.as_user(&o.marketing).await;
    let _: Value = sqlx::query_scalar("select crm_create_lead_bundle($1)")
        .bind(json!({"channel": "website", "company_name": "PT Batal"}))
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    let inside: i64 = sqlx::query_scalar("select count(*) from webhook_events")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(inside, 0, "not visible before the commit");
    tx.rollback().await.unwrap();
    assert_eq!(count(&db, "select count(*) from leads").await, 1);
    assert_eq!(
        count(&db, "select count(*) from webhook_events").await,
        0,
        "events after a rollback"
    );
    // Of any kind: the only job is the first bundle's look-alike check.
    assert_eq!(
        count(&db, "select count(*) from jobs").await,
        1,
        "jobs after a rollback"
    );
    // Committed: exactly one event (for the worker to fan out), one job.
    let created = rpc(
        &db,
        &o.marketing,
        "select crm_create_lead_bundle($1)",
        &[bundle],
    )
    .await
    .unwrap();
    assert_eq!(count(&db, "select count(*) from leads").await, 2);
    assert_eq!(
        count(
            &db,
            &format!(
                "select count(*) from webhook_events where subject_id = '{}'",
                s(&created, "lead_id")
            )
        )
        .await,
        1
    );
    assert_eq!(count(&db, "select count(*) from webhook_events").await, 1);
    assert_eq!(
        count(
            &db,
            "select count(*) from webhook_events where fanned_out_at is null"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &db,
            "select count(*) from jobs where kind = 'webhook.deliver' and status = 'queued'"
        )
        .await,
        1
    );
    // A disabled endpoint receives nothing: no event is written for it.
    let mut tx = db.as_user(&o.admin).await;
    let _: Value = sqlx::query_scalar("select webhook_endpoint_update($1, '{\"enabled\": false}')")
        .bind(endpoint)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    rpc(
        &db,
        &o.marketing,
        "select crm_create_lead_bundle($1)",
        &[json!({"channel": "website", "company_name": "PT Tiga"})],
    )
    .await
    .unwrap();
    assert_eq!(count(&db, "select count(*) from leads").await, 3);
    assert_eq!(count(&db, "select count(*) from webhook_events").await, 1);
}

#[tokio::test]
async fn failures_are_retried_on_the_schedule_then_dead_and_replayed() {
    let db = TestDb::new().await;
    let o = org(&db).await;
    // Two retries, quickly (the schedule's setting; the default is Svix's).
    let app = spawn_app_with(&db, &[("BIZOS_WEBHOOKS_RETRY_SCHEDULE", "200ms,200ms")]).await;
    let receiver = Receiver::new().await;
    let (endpoint, secret) = register(&app, &o.admin, &receiver.url(), &["lead.created"]).await;
    let endpoint_id = s(&endpoint, "endpoint_id");
    receiver.configure(&[&secret], 500).await;

    lead(&app, &o.marketing, "PT Gagal Terus").await;
    let dead = wait_status(&app, &o.admin, &endpoint_id, "dead", 1).await;
    assert_eq!(dead[0]["attempts"], 3, "{}", dead[0]);
    assert_eq!(dead[0]["last_status_code"], 500);
    assert_eq!(dead[0]["last_error"], "HTTP 500 Internal Server Error");
    let got = receiver.received().await;
    assert_eq!(got.len(), 3, "one try and two retries: {got:?}");
    assert!(got
        .iter()
        .all(|r| r.id == got[0].id && r.verified == [true]));
    let delivery = s(&dead[0], "delivery_id");
    let (_, detail) = app
        .get_json(&o.admin, &format!("/api/webhooks/deliveries/{delivery}"))
        .await;
    let log = detail["attempts_log"].as_array().unwrap();
    assert_eq!(
        log.iter()
            .map(|a| a["attempt_no"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert!(log.iter().all(|a| a["status_code"] == 500
        && a["succeeded"] == false
        && a["response_excerpt"]
            .as_str()
            .unwrap()
            .contains("failing on purpose")));
    // The waits came from the schedule (at least its 200 ms).
    let at: Vec<chrono::DateTime<chrono::Utc>> = log
        .iter()
        .map(|a| a["attempted_at"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(
        at.windows(2)
            .all(|w| w[1] - w[0] >= chrono::Duration::milliseconds(200)),
        "{at:?}"
    );
    // The endpoint is failing (not for days: still enabled).
    let (_, e) = app
        .get_json(&o.admin, &format!("/api/webhooks/endpoints/{endpoint_id}"))
        .await;
    assert!(
        e["failing_since"].is_string() && e["enabled"] == true,
        "{e}"
    );

    // Replay of the dead message, now that the receiver works: the same id.
    receiver.configure(&[&secret], 200).await;
    let (status, replayed) = app
        .post_json(
            &o.admin,
            &format!("/api/webhooks/deliveries/{delivery}/replay"),
            &json!(null),
            None,
        )
        .await;
    assert_eq!(status, 200, "{replayed}");
    assert_eq!(
        (&replayed["status"], &replayed["attempts"]),
        (&json!("pending"), &json!(0))
    );
    wait_status(&app, &o.admin, &endpoint_id, "succeeded", 1).await;
    let got = receiver.wait_for(4, WAIT).await;
    assert_eq!(got[3].id, got[0].id, "a replay carries the message's id");
    assert_eq!(got[3].answered, 200);
    let (_, e) = app
        .get_json(&o.admin, &format!("/api/webhooks/endpoints/{endpoint_id}"))
        .await;
    assert!(
        e["failing_since"].is_null() && e["last_success_at"].is_string(),
        "{e}"
    );

    // Everything since a time: both messages go again.
    let since = chrono::Utc::now() - chrono::Duration::minutes(10);
    lead(&app, &o.marketing, "PT Kedua").await;
    wait_status(&app, &o.admin, &endpoint_id, "succeeded", 2).await;
    let before = receiver.received().await.len();
    assert_eq!(before, 5);
    let (status, out) = app
        .post_json(
            &o.admin,
            &format!("/api/webhooks/endpoints/{endpoint_id}/replay"),
            &json!({"since": since}),
            None,
        )
        .await;
    assert_eq!((status, &out["replayed"]), (200, &json!(2)), "{out}");
    let got = receiver.wait_for(7, WAIT).await;
    let mut ids: Vec<&str> = got[5..].iter().map(|r| r.id.as_str()).collect();
    ids.sort();
    let mut want: Vec<&str> = vec![got[0].id.as_str(), got[4].id.as_str()];
    want.sort();
    assert_eq!(ids, want);
    // Nothing since now.
    let (status, out) = app
        .post_json(
            &o.admin,
            &format!("/api/webhooks/endpoints/{endpoint_id}/replay"),
            &json!({"since": chrono::Utc::now()}),
            None,
        )
        .await;
    assert_eq!((status, &out["replayed"]), (200, &json!(0)), "{out}");
}

#[tokio::test]
async fn a_rotated_secret_keeps_signing_until_its_overlap_ends() {
    let db = TestDb::new().await;
    let o = org(&db).await;
    let app = spawn_app(&db).await;
    let receiver = Receiver::new().await;
    let (endpoint, old) = register(&app, &o.admin, &receiver.url(), &["lead.created"]).await;
    let endpoint_id = s(&endpoint, "endpoint_id");
    let old_id = s(&endpoint["secrets"][0], "secret_id");
    receiver.configure(&[&old], 200).await;
    lead(&app, &o.marketing, "PT Satu").await;
    assert_eq!(receiver.wait_for(1, WAIT).await[0].verified, [true]);

    let (status, rotated) = post_for_secret(
        &app,
        &o.admin,
        &format!("/api/webhooks/endpoints/{endpoint_id}/secret/rotate"),
        &json!({"overlap_hours": 24}),
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let new = s(&rotated, "secret");
    assert_ne!(new, old);
    let secrets = rotated["secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 2, "{rotated}");
    assert!(secrets[0]["expires_at"].is_null() && secrets[1]["expires_at"].is_string());
    assert_eq!(secrets[1]["secret_id"], old_id.as_str());

    // During the overlap: both secrets verify the same delivery.
    receiver.configure(&[&old, &new], 200).await;
    lead(&app, &o.marketing, "PT Dua").await;
    let got = receiver.wait_for(2, WAIT).await;
    assert_eq!(got[1].verified, [true, true], "{:?}", got[1].errors);
    assert_eq!(
        got[1].signature.split(' ').count(),
        2,
        "{}",
        got[1].signature
    );

    // After the overlap (time moved on: the old secret's end is past):
    // only the new one verifies.
    sqlx::query(
        "update webhook_secrets set expires_at = now() - interval '1 second' where secret_id = $1",
    )
    .bind(old_id.parse::<Uuid>().unwrap())
    .execute(&db.owner)
    .await
    .unwrap();
    lead(&app, &o.marketing, "PT Tiga").await;
    let got = receiver.wait_for(3, WAIT).await;
    assert_eq!(got[2].verified, [false, true], "{:?}", got[2].errors);
    assert_eq!(got[2].signature.split(' ').count(), 1);
    let (_, e) = app
        .get_json(&o.admin, &format!("/api/webhooks/endpoints/{endpoint_id}"))
        .await;
    assert_eq!(e["secrets"].as_array().unwrap().len(), 1, "{e}");

    // Overlap 0: the previous secret stops at once.
    let (status, again) = app
        .post_json(
            &o.admin,
            &format!("/api/webhooks/endpoints/{endpoint_id}/secret/rotate"),
            &json!({"overlap_hours": 0}),
            None,
        )
        .await;
    assert_eq!(status, 200, "{again}");
    let newest = s(&again, "secret");
    assert_eq!(again["secrets"].as_array().unwrap().len(), 1, "{again}");
    receiver.configure(&[&new, &newest], 200).await;
    lead(&app, &o.marketing, "PT Empat").await;
    let got = receiver.wait_for(4, WAIT).await;
    assert_eq!(got[3].verified, [false, true], "{:?}", got[3].errors);
}

#[tokio::test]
async fn secrets_are_shown_once_and_stored_only_sealed() {
    let db = TestDb::new().await;
    let o = org(&db).await;
    let app = spawn_app(&db).await;
    let receiver = Receiver::new().await;
    let body = json!({"url": receiver.url(), "event_types": ["lead.created"]});
    let (status, first) = app
        .post_json(&o.admin, "/api/webhooks/endpoints", &body, Some("create-1"))
        .await;
    assert_eq!(status, 201, "{first}");
    let secret = s(&first, "secret");
    // A replay with the same key: the same endpoint, the secret not again.
    let res = app
        .request_as(
            &o.admin,
            reqwest::Method::POST,
            "/api/webhooks/endpoints",
            Some("create-1"),
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    assert_eq!(res.headers()["idempotent-replayed"], "true");
    let again: Value = res.json().await.unwrap();
    assert_eq!(again["endpoint_id"], first["endpoint_id"]);
    assert!(again["secret"].is_null(), "{again}");
    assert_eq!(
        count(&db, "select count(*) from webhook_endpoints").await,
        1
    );
    // Neither the secret nor its key bytes are anywhere in the database.
    let b64 = secret.trim_start_matches("whsec_").to_owned();
    let dump: String = sqlx::query_scalar(
        "select concat_ws(' ',
           (select string_agg(i::text, ' ') from idempotency_keys i),
           (select string_agg(k::text, ' ') from webhook_secrets k),
           (select string_agg(encode(k.ciphertext, 'base64') || encode(k.ciphertext, 'escape'), ' ')
              from webhook_secrets k),
           (select string_agg(e::text, ' ') from webhook_endpoints e),
           (select string_agg(j::text, ' ') from jobs j),
           (select string_agg(a::text, ' ') from bizos.audit_log a))",
    )
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert!(dump.contains("create-1"), "the dump is not empty");
    assert!(
        !dump.contains(&secret) && !dump.contains(&b64),
        "the secret is stored"
    );
    // Request roles read the secret's metadata, never its bytes.
    let mut tx = db.as_user(&o.admin).await;
    let err = sqlx::query("select ciphertext from webhook_secrets")
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert_eq!(bizos_tests::code(&err), "42501");
    drop(tx);
    let mut tx = db.as_user(&o.admin).await;
    let n: i64 = sqlx::query_scalar("select count(secret_id) from webhook_secrets")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn the_ssrf_guard_refuses_private_and_loopback_addresses() {
    let db = TestDb::new().await;
    let o = org(&db).await;
    // Production mode: no loopback.
    let app = spawn_app_with(&db, &[("BIZOS_WEBHOOKS_ALLOW_LOOPBACK", "0")]).await;
    let receiver = Receiver::new().await;
    for url in [
        receiver.url(),
        "http://localhost:9/hook".to_owned(),
        "http://127.1.2.3/hook".to_owned(),
        "http://10.0.0.1/hook".to_owned(),
        "http://172.16.5.4/hook".to_owned(),
        "http://192.168.1.1/hook".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://0.0.0.0/hook".to_owned(),
        "http://[::1]/hook".to_owned(),
        "http://[fd00::1]/hook".to_owned(),
        "http://[fe80::1]/hook".to_owned(),
        "http://[::ffff:127.0.0.1]/hook".to_owned(),
        // IPv4 inside IPv6 and the other non-global ranges.
        "http://[::ffff:0:a9fe:a9fe]/hook".to_owned(),
        "http://[::ffff:0:7f00:1]/hook".to_owned(),
        "http://[64:ff9b:1::a00:1]/hook".to_owned(),
        "http://[64:ff9b::808:808]/hook".to_owned(),
        "http://[2002:a00:1::1]/hook".to_owned(),
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook".to_owned(),
        "http://[::a9fe:a9fe]/hook".to_owned(),
        "http://[fec0::1]/hook".to_owned(),
        "http://[5f00::1]/hook".to_owned(),
        "http://100.64.0.1/hook".to_owned(),
        "http://192.0.0.9/hook".to_owned(),
        "http://198.18.0.1/hook".to_owned(),
        "http://240.0.0.1/hook".to_owned(),
        "http://255.255.255.255/hook".to_owned(),
        "http://224.0.0.1/hook".to_owned(),
        "ftp://example.com/hook".to_owned(),
        "https://user:pw@example.com/hook".to_owned(),
    ] {
        let (status, err) = app
            .post_json(
                &o.admin,
                "/api/webhooks/endpoints",
                &json!({"url": url, "event_types": ["lead.created"]}),
                None,
            )
            .await;
        assert_eq!(
            (status, err["error"]["field"].as_str()),
            (422, Some("url")),
            "{url}: {err}"
        );
    }
    assert_eq!(
        count(&db, "select count(*) from webhook_endpoints").await,
        0
    );
    drop(app);

    // The development flag opens loopback, nothing else.
    let app = spawn_app_with(&db, &[("TEST_WORKER", "off")]).await;
    for url in [
        "http://10.0.0.1/hook",
        "http://169.254.169.254/",
        "http://[fd00::1]/",
        // Loopback's IPv4-in-IPv6 forms are not what the flag opens.
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:0:7f00:1]/",
        "http://[64:ff9b::7f00:1]/",
    ] {
        let (status, err) = app
            .post_json(
                &o.admin,
                "/api/webhooks/endpoints",
                &json!({"url": url, "event_types": ["lead.created"]}),
                None,
            )
            .await;
        assert_eq!(
            (status, err["error"]["field"].as_str()),
            (422, Some("url")),
            "{url}: {err}"
        );
    }
    let by_name = Receiver::new().await;
    let named_url = by_name.url().replace("127.0.0.1", "localhost");
    let (literal, _) = register(&app, &o.admin, &receiver.url(), &["lead.created"]).await;
    let (named, _) = register(&app, &o.admin, &named_url, &["lead.created"]).await;
    // Checked again at delivery: a worker without the flag connects to
    // neither (the name resolves to loopback only).
    let storage = bizos_bff::config::StorageSettings::Local {
        root: app.files.path().to_owned(),
    };
    let strict = HashMap::from([
        ("BIZOS_WEBHOOKS_ALLOW_LOOPBACK".to_owned(), "0".to_owned()),
        ("BIZOS_WEBHOOKS_RETRY_SCHEDULE".to_owned(), "1h".to_owned()),
    ]);
    let worker = start_worker(WorkerSettings {
        webhooks: test_webhook_settings(&strict),
        ..worker_settings(&db, 2000, storage)
    })
    .await;
    lead(&app, &o.marketing, "PT Tidak Boleh").await;
    let start = Instant::now();
    let errors: Vec<(Uuid, String)> = loop {
        let rows: Vec<(Uuid, String)> = sqlx::query_as(
            "select d.endpoint_id, a.error from webhook_attempts a
               join webhook_deliveries d using (tenant_id, delivery_id) order by 1",
        )
        .fetch_all(&db.owner)
        .await
        .unwrap();
        if rows.len() == 2 {
            break rows;
        }
        assert!(start.elapsed() < WAIT, "{rows:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let error_of = |e: &Value| {
        let id: Uuid = s(e, "endpoint_id").parse().unwrap();
        errors.iter().find(|(x, _)| *x == id).unwrap().1.clone()
    };
    let literal_error = error_of(&literal);
    assert!(
        literal_error.contains("127.0.0.1") && literal_error.contains("refused"),
        "{literal_error}"
    );
    let named_error = error_of(&named);
    assert!(named_error.contains("no public address"), "{named_error}");
    assert!(receiver.received().await.is_empty());
    assert!(by_name.received().await.is_empty());
    drop(worker);
}

#[tokio::test]
async fn an_endpoint_failing_for_days_is_disabled_and_its_managers_are_emailed() {
    let db = TestDb::new().await;
    let o = org(&db).await;
    let app = spawn_app_with(&db, &[("BIZOS_WEBHOOKS_RETRY_SCHEDULE", "1h")]).await;
    let receiver = Receiver::new().await;
    let (endpoint, secret) = register(&app, &o.admin, &receiver.url(), &["lead.created"]).await;
    let endpoint_id = s(&endpoint, "endpoint_id");
    receiver.configure(&[&secret], 503).await;
    lead(&app, &o.marketing, "PT Mati Lama").await;
    receiver.wait_for(1, WAIT).await;
    let pending = wait_status(&app, &o.admin, &endpoint_id, "pending", 1).await;
    let start = Instant::now();
    while deliveries(&app, &o.admin, &endpoint_id).await[0]["attempts"] != 1 {
        assert!(start.elapsed() < WAIT);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // One failure is no reason to disable it.
    let (_, e) = app
        .get_json(&o.admin, &format!("/api/webhooks/endpoints/{endpoint_id}"))
        .await;
    assert_eq!(e["enabled"], true, "{e}");
    assert_eq!(count(&db, "select count(*) from emails").await, 0);

    // Six days later (time moved in the database), the next failure.
    sqlx::raw_sql(&format!(
        "update webhook_endpoints set failing_since = now() - interval '6 days';
         update webhook_deliveries set next_attempt_at = now();
         select job_enqueue_for('{}', 'webhook.deliver');",
        o.tenant
    ))
    .execute(&db.owner)
    .await
    .unwrap();
    receiver.wait_for(2, WAIT).await;
    let start = Instant::now();
    let e = loop {
        let (_, e) = app
            .get_json(&o.admin, &format!("/api/webhooks/endpoints/{endpoint_id}"))
            .await;
        if e["enabled"] == false {
            break e;
        }
        assert!(start.elapsed() < WAIT, "{e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        e["disabled_reason"].as_str().unwrap().contains("5 days"),
        "{e}"
    );
    assert!(e["disabled_at"].is_string());
    let d = &deliveries(&app, &o.admin, &endpoint_id).await[0];
    assert_eq!(d["delivery_id"], pending[0]["delivery_id"]);
    assert_eq!(d["status"], "dead", "{d}");
    // The tenant's webhook managers (super admins) are told, no one else.
    let mails: Vec<(Vec<String>, String, String)> = sqlx::query_as(
        "select to_addresses::text[], subject, text_body from emails where template = 'webhook.endpoint_disabled'",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let admin_email: String = sqlx::query_scalar("select email from profiles where user_id = $1")
        .bind(o.admin.user_id)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(mails[0].0, [admin_email]);
    assert!(
        mails[0].2.contains(&receiver.url()) && mails[0].2.contains("HTTP 503"),
        "{}",
        mails[0].2
    );
    // Disabled: new changes write nothing for it.
    lead(&app, &o.marketing, "PT Sesudahnya").await;
    assert_eq!(count(&db, "select count(*) from webhook_events").await, 1);
    // Enabled again: it receives, and the failure streak starts afresh.
    receiver.configure(&[&secret], 200).await;
    let (status, e) = app
        .patch_json(
            &o.admin,
            &format!("/api/webhooks/endpoints/{endpoint_id}"),
            &json!({"enabled": true}),
        )
        .await;
    assert_eq!(status, 200, "{e}");
    assert!(
        e["failing_since"].is_null() && e["disabled_at"].is_null(),
        "{e}"
    );
    lead(&app, &o.marketing, "PT Hidup Lagi").await;
    wait_status(&app, &o.admin, &endpoint_id, "succeeded", 1).await;
}

#[tokio::test]
async fn routes_refuse_bad_input_and_callers_without_webhook_manage() {
    let db = TestDb::new().await;
    let o = org(&db).await;
    let app = spawn_app(&db).await;
    let receiver = Receiver::new().await;
    let (endpoint, _) = register(&app, &o.admin, &receiver.url(), &["lead.created"]).await;
    let id = s(&endpoint, "endpoint_id");
    let good = json!({"url": receiver.url(), "event_types": ["lead.created"]});

    // Without webhook.manage (directors read everything else, but not
    // this; a salesperson even less): 403 on every route, nothing written.
    for who in [&o.director, &o.seller, &o.marketing, &o.finance] {
        let list = app.get_json(who, "/api/webhooks/endpoints").await;
        assert_eq!(list.0, 403, "{}", list.1);
        let calls: Vec<(reqwest::Method, String, Value)> = vec![
            (
                reqwest::Method::POST,
                "/api/webhooks/endpoints".into(),
                good.clone(),
            ),
            (
                reqwest::Method::GET,
                format!("/api/webhooks/endpoints/{id}"),
                Value::Null,
            ),
            (
                reqwest::Method::PATCH,
                format!("/api/webhooks/endpoints/{id}"),
                json!({"enabled": false}),
            ),
            (
                reqwest::Method::DELETE,
                format!("/api/webhooks/endpoints/{id}"),
                Value::Null,
            ),
            (
                reqwest::Method::POST,
                format!("/api/webhooks/endpoints/{id}/secret/rotate"),
                json!({}),
            ),
            (
                reqwest::Method::GET,
                format!("/api/webhooks/endpoints/{id}/deliveries"),
                Value::Null,
            ),
            (
                reqwest::Method::POST,
                format!("/api/webhooks/endpoints/{id}/replay"),
                json!({"since": "2026-01-01T00:00:00Z"}),
            ),
        ];
        for (method, path, body) in calls {
            let mut req = app.request_as(who, method.clone(), &path, None);
            if !body.is_null() {
                req = req.json(&body);
            }
            let res = req.send().await.unwrap();
            assert_eq!(res.status().as_u16(), 403, "{method} {path}");
        }
    }
    let mut tx = db.as_user(&o.director).await;
    let seen: i64 = sqlx::query_scalar("select count(*) from webhook_endpoints")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(seen, 0, "RLS: directors do not read webhook endpoints");
    drop(tx);
    assert_eq!(
        count(&db, "select count(*) from webhook_endpoints where enabled").await,
        1
    );
    assert_eq!(count(&db, "select count(*) from webhook_secrets").await, 1);

    // Bad bodies name the field.
    for (body, field) in [
        (json!({"event_types": ["lead.created"]}), "url"),
        (json!({"url": receiver.url()}), "event_types"),
        (
            json!({"url": receiver.url(), "event_types": []}),
            "event_types",
        ),
        (
            json!({"url": receiver.url(), "event_types": ["lead.deleted"]}),
            "event_types[0]",
        ),
        (
            json!({"url": receiver.url(), "event_types": "lead.created"}),
            "event_types",
        ),
        (
            json!({"url": receiver.url(), "event_types": ["lead.created"], "description": "d".repeat(501)}),
            "description",
        ),
        (
            json!({"url": receiver.url(), "event_types": ["lead.created"], "colour": "red"}),
            "colour",
        ),
        (
            json!({"url": "mailto:ops@example.com", "event_types": ["lead.created"]}),
            "url",
        ),
    ] {
        let (status, err) = app
            .post_json(&o.admin, "/api/webhooks/endpoints", &body, None)
            .await;
        assert_eq!(
            (status, err["error"]["field"].as_str()),
            (422, Some(field)),
            "{body}: {err}"
        );
    }
    for (body, field) in [
        (json!({"url": null}), "url"),
        (json!({"enabled": null}), "enabled"),
        (json!({"event_types": []}), "event_types"),
        (json!({"url": "http://10.1.1.1/"}), "url"),
    ] {
        let (status, err) = app
            .patch_json(&o.admin, &format!("/api/webhooks/endpoints/{id}"), &body)
            .await;
        assert_eq!(
            (status, err["error"]["field"].as_str()),
            (422, Some(field)),
            "{body}: {err}"
        );
    }
    for (body, field) in [
        (json!({"overlap_hours": 169}), "overlap_hours"),
        (json!({"overlap_hours": -1}), "overlap_hours"),
        (json!({"overlap": 1}), "overlap"),
    ] {
        let (status, err) = app
            .post_json(
                &o.admin,
                &format!("/api/webhooks/endpoints/{id}/secret/rotate"),
                &body,
                None,
            )
            .await;
        assert_eq!(
            (status, err["error"]["field"].as_str()),
            (422, Some(field)),
            "{body}: {err}"
        );
    }
    for (body, field) in [
        (json!({}), "since"),
        (json!({"since": "yesterday"}), "since"),
        (
            json!({"since": (chrono::Utc::now() + chrono::Duration::hours(1))}),
            "since",
        ),
    ] {
        let (status, err) = app
            .post_json(
                &o.admin,
                &format!("/api/webhooks/endpoints/{id}/replay"),
                &body,
                None,
            )
            .await;
        assert_eq!(
            (status, err["error"]["field"].as_str()),
            (422, Some(field)),
            "{body}: {err}"
        );
    }
    for (query, field) in [
        ("status=lost", "status"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        (&*format!("cursor={}", Uuid::new_v4()), "cursor"),
    ] {
        let (status, err) = app
            .get_json(
                &o.admin,
                &format!("/api/webhooks/endpoints/{id}/deliveries?{query}"),
            )
            .await;
        assert_eq!(
            (status, err["error"]["field"].as_str()),
            (422, Some(field)),
            "{query}: {err}"
        );
    }
    // Unknown ids: 404.
    let nobody = Uuid::new_v4();
    for path in [
        format!("/api/webhooks/endpoints/{nobody}"),
        format!("/api/webhooks/endpoints/{nobody}/deliveries"),
        format!("/api/webhooks/deliveries/{nobody}"),
    ] {
        assert_eq!(app.get_json(&o.admin, &path).await.0, 404, "{path}");
    }
    assert_eq!(
        app.post_json(
            &o.admin,
            &format!("/api/webhooks/deliveries/{nobody}/replay"),
            &json!(null),
            None
        )
        .await
        .0,
        404
    );
    // Nothing of the refused requests was written.
    assert_eq!(
        count(&db, "select count(*) from webhook_endpoints").await,
        1
    );
    assert_eq!(count(&db, "select count(*) from webhook_secrets").await, 1);
    // Another tenant's admin sees none of it.
    let other = db.create_tenant("other").await;
    let stranger = db.create_user(other, "super_admin").await;
    let (status, list) = app.get_json(&stranger, "/api/webhooks/endpoints").await;
    assert_eq!(
        (status, list["items"].as_array().map(Vec::len)),
        (200, Some(0))
    );
    assert_eq!(
        app.get_json(&stranger, &format!("/api/webhooks/endpoints/{id}"))
            .await
            .0,
        404
    );

    // A server without the master key keeps no secrets: 422, nothing written.
    let bare = spawn_app_with(
        &db,
        &[("BIZOS_WEBHOOKS_MASTER_KEY", ""), ("TEST_WORKER", "off")],
    )
    .await;
    let (status, err) = bare
        .post_json(&o.admin, "/api/webhooks/endpoints", &good, None)
        .await;
    assert_eq!(status, 422, "{err}");
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("BIZOS_WEBHOOKS_MASTER_KEY"));
    assert_eq!(
        count(&db, "select count(*) from webhook_endpoints").await,
        1
    );

    // Deleting: gone with its secrets.
    let res = app
        .request_as(
            &o.admin,
            reqwest::Method::DELETE,
            &format!("/api/webhooks/endpoints/{id}"),
            None,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        count(&db, "select count(*) from webhook_endpoints").await,
        0
    );
    assert_eq!(count(&db, "select count(*) from webhook_secrets").await, 0);
}
