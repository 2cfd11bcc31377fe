//! Idempotency-Key with Stripe's semantics, through the BFF: a replay
//! returns the stored response, the same key with another request is 422, a
//! concurrent duplicate 409 — and 50 identical POSTs at once make one lead.

use std::sync::Arc;

use bizos_tests::{spawn_app, url_for, TestDb};
use serde_json::json;

async fn count(db: &TestDb, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&db.owner).await.unwrap()
}

#[tokio::test]
async fn replay_mismatch_and_stored_errors() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let marketing = db.create_user(tenant, "marketing_manager").await;
    let other = db.create_user(tenant, "marketing_manager").await;
    let app = spawn_app(&db).await;
    let body = json!({"channel": "website", "company_name": "PT Sekali Saja", "npwp": "01.111.222.3-444.000"});

    let first = app
        .request_as(
            &marketing,
            reqwest::Method::POST,
            "/api/leads",
            Some("key-1"),
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: serde_json::Value = first.json().await.unwrap();

    // The same request again, with keys in another order: the stored response.
    let reordered = json!({"npwp": "01.111.222.3-444.000", "company_name": "PT Sekali Saja", "channel": "website"});
    let again = app
        .request_as(
            &marketing,
            reqwest::Method::POST,
            "/api/leads",
            Some("key-1"),
        )
        .json(&reordered)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<serde_json::Value>().await.unwrap(), first);
    assert_eq!(count(&db, "select count(*) from leads").await, 1);

    // The same key with another body, or on another route: 422 naming the header.
    let (status, err) = app
        .post_json(
            &marketing,
            "/api/leads",
            &json!({"channel": "email", "company_name": "PT Lain"}),
            Some("key-1"),
        )
        .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("Idempotency-Key")),
        "{err}"
    );
    let (status, _) = app
        .post_json(
            &marketing,
            "/api/tickets",
            &json!({"ticket_type": "complaint", "subject": "x", "dept_target": "OPS"}),
            Some("key-1"),
        )
        .await;
    assert_eq!(status, 422);
    assert_eq!(count(&db, "select count(*) from leads").await, 1);
    assert_eq!(count(&db, "select count(*) from tickets").await, 0);

    // Keys are per user: another user's "key-1" is a new request.
    let (status, _) = app
        .post_json(
            &other,
            "/api/leads",
            &json!({"channel": "website", "company_name": "PT Dua"}),
            Some("key-1"),
        )
        .await;
    assert_eq!(status, 201);

    // A client error of the database is stored too: the retry gets the
    // same answer.
    let bad =
        json!({"channel": "website", "company_name": "PT Tiga", "contact_email": "not-an-email"});
    let (s1, e1) = app
        .post_json(&marketing, "/api/leads", &bad, Some("key-2"))
        .await;
    let (s2, e2) = app
        .post_json(&marketing, "/api/leads", &bad, Some("key-2"))
        .await;
    assert_eq!((s1, s2), (422, 422));
    assert_eq!(e1, e2);
    assert_eq!(e1["error"]["field"], "contact_email", "{e1}");
    assert_eq!(count(&db, "select count(*) from idempotency_keys").await, 3);
    // A body the BFF cannot parse never reaches the database, so nothing
    // is stored for its key (Stripe: requests that fail validation are not
    // saved); the corrected request may use the same key.
    let (status, err) = app
        .post_json(
            &marketing,
            "/api/leads",
            &json!({"channel": "website"}),
            Some("key-3"),
        )
        .await;
    assert_eq!(
        (status, err["error"]["field"].as_str()),
        (422, Some("company_name"))
    );
    assert_eq!(count(&db, "select count(*) from idempotency_keys").await, 3);
    let (status, _) = app
        .post_json(
            &marketing,
            "/api/leads",
            &json!({"channel": "website", "company_name": "PT Empat"}),
            Some("key-3"),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(count(&db, "select count(*) from idempotency_keys").await, 4);

    // Malformed keys are refused before anything runs.
    let res = app
        .request_as(
            &marketing,
            reqwest::Method::POST,
            "/api/leads",
            Some("has space"),
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let err: serde_json::Value = res.json().await.unwrap();
    assert_eq!(err["error"]["field"], "Idempotency-Key");

    // Keys are kept at least 24 hours, then purged.
    let kept: bool = sqlx::query_scalar(
        "select bool_and(expires_at >= created_at + interval '24 hours') from idempotency_keys",
    )
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert!(kept);
    // Age one key by a day (as the superuser, past the timestamp trigger).
    let (admin, conn) =
        tokio_postgres::connect(&url_for("postgres", &db.name), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(conn);
    admin
        .batch_execute(
            "set session_replication_role = replica;
             update idempotency_keys set created_at = now() - interval '25 hours',
                                         expires_at = now() - interval '1 hour'
              where idempotency_key = 'key-2'",
        )
        .await
        .unwrap();
    let purged: i64 = sqlx::query_scalar("select purge_idempotency_keys()")
        .fetch_one(&db.pool_as("bizos_app"))
        .await
        .unwrap();
    assert_eq!(purged, 1);
}

#[tokio::test]
async fn fifty_concurrent_identical_posts_make_one_lead() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let marketing = db.create_user(tenant, "marketing_manager").await;
    let app = Arc::new(spawn_app(&db).await);
    let body = json!({"channel": "whatsapp", "company_name": "PT Serentak", "contact_phone": "0812-1111-2222"});

    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (app, who, body) = (app.clone(), marketing.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            app.post_json(&who, "/api/leads", &body, Some("same-key"))
                .await
        }));
    }
    let mut created = Vec::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            201 => created.push(body),
            409 => assert_eq!(body["error"]["field"], "Idempotency-Key", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(!created.is_empty());
    assert!(
        created.iter().all(|b| b == &created[0]),
        "every 201 is the same response"
    );
    assert_eq!(count(&db, "select count(*) from leads").await, 1);
    assert_eq!(count(&db, "select count(*) from customers").await, 1);
}
