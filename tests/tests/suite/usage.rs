//! Usage metering and the plan's caps through HTTP: events an integration
//! reports on /api/v1 (idempotent on its own ids), each aggregation
//! against hand-computed numbers, periods cut in the tenant's time zone,
//! and the caps of seats, storage and AI refused naming the cap.

use bizos_bff::auth::Caller;
use bizos_tests::{spawn_app, status_and_json, TestApp, TestDb};
use serde_json::{json, Value};
use uuid::Uuid;

/// A plan of the test's own (NULL caps unless given).
async fn plan(db: &TestDb, code: &str, caps: &str) {
    sqlx::raw_sql(&format!(
        "insert into plans (plan_code, label, monthly_price, annual_price) values ('{code}', 'Plan {code}', 500000, 5000000);
         update plans set {caps} where plan_code = '{code}';"
    ))
    .execute(&db.owner)
    .await
    .expect("plan");
}

async fn on_plan(db: &TestDb, tenant: Uuid, code: &str) {
    sqlx::query("update tenants set plan_code = $2 where tenant_id = $1")
        .bind(tenant)
        .bind(code)
        .execute(&db.owner)
        .await
        .expect("tenant on plan");
}

/// Metrics reported by integrations: one per aggregation.
async fn metrics(db: &TestDb) {
    sqlx::raw_sql(
        "insert into billable_metrics (code, label, unit, aggregation, field_name) values
           ('api_calls', 'API calls', 'calls', 'count', null),
           ('active_drivers', 'drivers', 'drivers', 'unique_count', 'driver'),
           ('shipped_kg', 'shipped', 'kg', 'sum', 'kg'),
           ('peak_trucks', 'trucks at once', 'trucks', 'max', 'trucks'),
           ('fleet_size', 'fleet', 'trucks', 'latest', 'trucks')",
    )
    .execute(&db.owner)
    .await
    .expect("metrics");
}

async fn report(app: &TestApp, who: &Caller, events: Value) -> (u16, Value) {
    app.post_json(who, "/api/usage-events", &json!({ "events": events }), None)
        .await
}

async fn report_with_key(app: &TestApp, secret: &str, events: &Value) -> (u16, Value) {
    let res = app
        .http
        .post(app.url("/api/v1/usage-events"))
        .bearer_auth(secret)
        .json(&json!({ "events": events }))
        .send()
        .await
        .expect("request");
    status_and_json(res).await
}

/// The period's lines of GET /api/billing/usage by metric code.
async fn usage(app: &TestApp, who: &Caller, from: &str, to: &str) -> Value {
    let (status, body) = app
        .get_json(who, &format!("/api/billing/usage?from={from}&to={to}"))
        .await;
    assert_eq!(status, 200, "{body}");
    let mut by_code = serde_json::Map::new();
    for line in body["metrics"].as_array().unwrap() {
        by_code.insert(
            line["metric_code"].as_str().unwrap().to_owned(),
            line.clone(),
        );
    }
    Value::Object(by_code)
}

fn num(v: &Value) -> f64 {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("not a number: {v}"))
}

async fn make_key(app: &TestApp, admin: &Caller, scopes: &[&str]) -> String {
    let (status, key) = app
        .post_json(
            admin,
            "/api/api-keys",
            &json!({"name": "metering", "scopes": scopes}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{key}");
    key["secret"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_replayed_event_id_changes_nothing() {
    let db = TestDb::new().await;
    metrics(&db).await;
    let tenant = db.create_tenant("usage-replay").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let app = spawn_app(&db).await;
    let key = make_key(&app, &admin, &["usage:write"]).await;

    let events = json!([
        {"event_id": "inv-1", "code": "shipped_kg", "timestamp": "2026-03-02T10:00:00+07:00", "properties": {"kg": 120}},
        {"event_id": "inv-2", "code": "shipped_kg", "timestamp": "2026-03-02T11:00:00+07:00", "properties": {"kg": "30.5"}},
        // The same id twice in one batch: once.
        {"event_id": "inv-2", "code": "shipped_kg", "timestamp": "2026-03-02T11:00:00+07:00", "properties": {"kg": 999}}
    ]);
    let (status, body) = report_with_key(&app, &key, &events).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"received": 3, "accepted": 2, "duplicates": 1}));
    // The whole batch again, and an id reported before with other values.
    let (status, body) = report_with_key(&app, &key, &events).await;
    assert_eq!(
        (status, body),
        (200, json!({"received": 3, "accepted": 0, "duplicates": 3}))
    );
    let (status, body) = report_with_key(
        &app,
        &key,
        &json!([{"event_id": "inv-1", "code": "shipped_kg", "timestamp": "2026-03-03T10:00:00+07:00", "properties": {"kg": 5000}}]),
    )
    .await;
    assert_eq!((status, &body["duplicates"]), (200, &json!(1)), "{body}");

    let lines = usage(&app, &admin, "2026-03-01", "2026-04-01").await;
    assert_eq!(num(&lines["shipped_kg"]["quantity"]), 150.5, "{lines}");
    let stored: i64 = sqlx::query_scalar("select count(*) from usage_events where tenant_id = $1")
        .bind(tenant)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(stored, 2);

    // A key without the scope, and a user without the permission.
    let reader = make_key(&app, &admin, &["leads:read"]).await;
    let (status, body) = report_with_key(&app, &reader, &events).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("insufficient_scope")),
        "{body}"
    );
    let sales = db.create_user(tenant, "salesperson").await;
    let (status, _) = report(&app, &sales, events.clone()).await;
    assert_eq!(status, 403);

    // Bad events name the event and the field; nothing of the batch is kept.
    for (events, field) in [
        (
            json!([{"event_id": "ok-1", "code": "shipped_kg", "properties": {"kg": 1}},
                {"event_id": "bad", "code": "nope"}]),
            "events[1].code",
        ),
        (
            json!([{"event_id": "bad", "code": "ai_tokens"}]),
            "events[0].code",
        ),
        (
            json!([{"event_id": "bad", "code": "shipped_kg", "properties": {"kg": "many"}}]),
            "events[0].properties.kg",
        ),
        (
            json!([{"event_id": "bad", "code": "shipped_kg", "properties": {}}]),
            "events[0].properties.kg",
        ),
        (
            json!([{"event_id": "bad", "code": "api_calls", "timestamp": "2999-01-01T00:00:00Z"}]),
            "events[0].timestamp",
        ),
        (
            json!([{"event_id": "bad", "code": "api_calls", "timestamp": "yesterday"}]),
            "events[0].timestamp",
        ),
        (
            json!([{"event_id": "", "code": "api_calls"}]),
            "events[0].event_id",
        ),
        (
            json!([{"event_id": "bad", "code": "api_calls", "extra": 1}]),
            "events[0]",
        ),
    ] {
        let (status, body) = report_with_key(&app, &key, &events).await;
        assert_eq!(status, 422, "{events}: {body}");
        assert!(
            body["error"]["field"]
                .as_str()
                .unwrap_or("")
                .starts_with(field),
            "{events}: {body}"
        );
    }
    let stored: i64 = sqlx::query_scalar("select count(*) from usage_events where tenant_id = $1")
        .bind(tenant)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(stored, 2, "a refused batch keeps nothing");
}

#[tokio::test]
async fn each_aggregation_matches_hand_computed_numbers() {
    let db = TestDb::new().await;
    metrics(&db).await;
    plan(&db, "metered", "included_seats = null").await;
    sqlx::raw_sql(
        "insert into plan_metrics (plan_code, metric_code, included, unit_price) values
           ('metered', 'api_calls', 2, 100),
           ('metered', 'shipped_kg', 10, 1500),
           ('metered', 'active_drivers', 5, 20000)",
    )
    .execute(&db.owner)
    .await
    .unwrap();
    let tenant = db.create_tenant("usage-agg").await;
    on_plan(&db, tenant, "metered").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let finance = db.create_user(tenant, "finance").await;
    let app = spawn_app(&db).await;

    let t1 = "2026-01-10T12:00:00+07:00";
    let t2 = "2026-01-20T08:00:00+07:00";
    let t0 = "2026-01-20T07:00:00+07:00";
    let (status, body) = report(&app, &admin, json!([
        {"event_id": "c1", "code": "api_calls", "timestamp": t1},
        {"event_id": "c2", "code": "api_calls", "timestamp": t1},
        {"event_id": "c3", "code": "api_calls", "timestamp": t2},
        {"event_id": "u1", "code": "active_drivers", "timestamp": t1, "properties": {"driver": "andi"}},
        {"event_id": "u2", "code": "active_drivers", "timestamp": t1, "properties": {"driver": "budi"}},
        {"event_id": "u3", "code": "active_drivers", "timestamp": t2, "properties": {"driver": "andi"}},
        {"event_id": "s1", "code": "shipped_kg", "timestamp": t1, "properties": {"kg": 2.5}},
        {"event_id": "s2", "code": "shipped_kg", "timestamp": t2, "properties": {"kg": "4"}},
        {"event_id": "m1", "code": "peak_trucks", "timestamp": t1, "properties": {"trucks": 3}},
        {"event_id": "m2", "code": "peak_trucks", "timestamp": t2, "properties": {"trucks": 11}},
        {"event_id": "l1", "code": "fleet_size", "timestamp": t1, "properties": {"trucks": 4}},
        {"event_id": "l2", "code": "fleet_size", "timestamp": t2, "properties": {"trucks": 9}}
    ])).await;
    assert_eq!((status, &body["accepted"]), (200, &json!(12)), "{body}");
    // A second batch: more of each, one latest value older than the last.
    let (status, body) = report(&app, &admin, json!([
        {"event_id": "c4", "code": "api_calls", "timestamp": t2},
        {"event_id": "c5", "code": "api_calls", "timestamp": t2},
        {"event_id": "u4", "code": "active_drivers", "timestamp": t2, "properties": {"driver": "citra"}},
        {"event_id": "u5", "code": "active_drivers", "timestamp": t2, "properties": {"driver": "budi"}},
        {"event_id": "s3", "code": "shipped_kg", "timestamp": t2, "properties": {"kg": 7.25}},
        {"event_id": "m3", "code": "peak_trucks", "timestamp": t2, "properties": {"trucks": 7}},
        {"event_id": "l3", "code": "fleet_size", "timestamp": t0, "properties": {"trucks": 6}}
    ])).await;
    assert_eq!((status, &body["accepted"]), (200, &json!(7)), "{body}");

    let lines = usage(&app, &finance, "2026-01-01", "2026-02-01").await;
    let want = [
        // code, quantity, included, overage, unit price, amount
        ("api_calls", 5.0, Some(2.0), 3.0, Some(100.0), 300.0),
        ("active_drivers", 3.0, Some(5.0), 0.0, Some(20000.0), 0.0),
        ("shipped_kg", 13.75, Some(10.0), 3.75, Some(1500.0), 5625.0),
        ("peak_trucks", 11.0, None, 0.0, None, 0.0),
        ("fleet_size", 9.0, None, 0.0, None, 0.0),
    ];
    for (code, quantity, included, overage, unit_price, amount) in want {
        let l = &lines[code];
        assert_eq!(num(&l["quantity"]), quantity, "{code}: {l}");
        assert_eq!(
            l["included"]
                .as_f64()
                .or_else(|| l["included"].as_str().and_then(|s| s.parse().ok())),
            included,
            "{code}: {l}"
        );
        assert_eq!(num(&l["overage"]), overage, "{code}: {l}");
        assert_eq!(
            l["unit_price"]
                .as_f64()
                .or_else(|| l["unit_price"].as_str().and_then(|s| s.parse().ok())),
            unit_price,
            "{code}: {l}"
        );
        assert_eq!(num(&l["amount"]), amount, "{code}: {l}");
    }
    // The first half of the month alone: its own days only.
    let lines = usage(&app, &finance, "2026-01-01", "2026-01-15").await;
    for (code, quantity) in [
        ("api_calls", 2.0),
        ("active_drivers", 2.0),
        ("shipped_kg", 2.5),
        ("peak_trucks", 3.0),
        ("fleet_size", 4.0),
    ] {
        assert_eq!(num(&lines[code]["quantity"]), quantity, "{code}: {lines}");
    }
    // The same numbers as the billing run reads them (usage_billable).
    let amount: f64 = sqlx::query_scalar(
        "select sum(amount)::float8 from usage_billable($1, '2026-01-01', '2026-02-01')",
    )
    .bind(tenant)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(amount, 5925.0);
    let sales = db.create_user(tenant, "salesperson").await;
    let (status, _) = app.get_json(&sales, "/api/billing/usage").await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn periods_are_cut_in_the_tenants_time_zone() {
    let db = TestDb::new().await;
    metrics(&db).await;
    let jakarta = db.create_tenant("usage-jkt").await;
    let la = db.create_tenant("usage-la").await;
    sqlx::query("update tenants set time_zone = 'America/Los_Angeles' where tenant_id = $1")
        .bind(la)
        .execute(&db.owner)
        .await
        .unwrap();
    let app = spawn_app(&db).await;
    // 2026-01-31T18:30Z: 1 February 01:30 in Jakarta, 31 January 10:30 in
    // Los Angeles; 2026-02-01T05:00Z: 1 February 12:00 in Jakarta, still
    // 31 January 21:00 in Los Angeles.
    let events = json!([
        {"event_id": "e1", "code": "api_calls", "timestamp": "2026-01-31T18:30:00Z"},
        {"event_id": "e2", "code": "api_calls", "timestamp": "2026-02-01T05:00:00Z"},
        {"event_id": "e3", "code": "api_calls", "timestamp": "2026-01-31T16:59:59Z"}
    ]);
    for (tenant, jan, feb) in [(jakarta, 1.0, 2.0), (la, 3.0, 0.0)] {
        let admin = db.create_user(tenant, "super_admin").await;
        let (status, body) = report(&app, &admin, events.clone()).await;
        assert_eq!(status, 200, "{body}");
        let january = usage(&app, &admin, "2026-01-01", "2026-02-01").await;
        let february = usage(&app, &admin, "2026-02-01", "2026-03-01").await;
        let q = |lines: &Value| lines.get("api_calls").map_or(0.0, |l| num(&l["quantity"]));
        assert_eq!(
            (q(&january), q(&february)),
            (jan, feb),
            "{tenant}: {january} {february}"
        );
    }
}

#[tokio::test]
async fn plan_caps_are_refused_naming_the_cap() {
    let db = TestDb::new().await;
    plan(
        &db,
        "small",
        "included_seats = 3, storage_quota_bytes = 20000",
    )
    .await;
    plan(&db, "no_ai", "ai_generations_per_day = 0").await;
    plan(&db, "no_tokens", "ai_tokens_per_month = 0").await;
    let tenant = db.create_tenant("usage-caps").await;
    on_plan(&db, tenant, "small").await;
    let admin = db.create_user(tenant, "super_admin").await;
    db.create_user(tenant, "ops").await; // the OPS department exists
    let app = spawn_app(&db).await;

    // Seats: the admin, ops and one more; an API key is no seat.
    let invite = |n: u32| json!({"email": format!("user{n}@caps.example"), "full_name": format!("User {n}"), "app_role": "salesperson"});
    let (status, body) = app.post_json(&admin, "/api/users", &invite(1), None).await;
    assert_eq!(status, 201, "{body}");
    let second = body["user_id"].as_str().unwrap().to_owned();
    make_key(&app, &admin, &["usage:write"]).await;
    let (status, body) = app.post_json(&admin, "/api/users", &invite(2), None).await;
    assert_eq!(
        (
            status,
            body["error"]["code"].as_str(),
            body["error"]["field"].as_str()
        ),
        (402, Some("plan_limit_reached"), Some("included_seats")),
        "{body}"
    );
    assert!(
        body["error"]["message"].as_str().unwrap().contains("small"),
        "{body}"
    );
    // A deactivated user frees the seat; reactivating takes it back.
    let (status, body) = app
        .post_json(
            &admin,
            &format!("/api/users/{second}/deactivate"),
            &json!({}),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app.post_json(&admin, "/api/users", &invite(2), None).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app
        .post_json(
            &admin,
            &format!("/api/users/{second}/reactivate"),
            &json!({}),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (402, Some("included_seats")),
        "{body}"
    );

    // Storage: 20,000 bytes; a 12,000-byte file fits, a second does not.
    let (status, t) = app
        .post_json(
            &admin,
            "/api/tickets",
            &json!({"ticket_type": "general_request", "subject": "Dokumen", "dept_target": "OPS"}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{t}");
    let path = format!(
        "/api/tickets/{}/attachments",
        t["ticket_id"].as_str().unwrap()
    );
    let pdf = |len: usize| [b"%PDF-1.7\n".to_vec(), vec![b'x'; len]].concat();
    let (status, body) = app
        .upload(&admin, &path, &[], "a.pdf", pdf(12_000), None)
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app
        .upload(&admin, &path, &[], "b.pdf", pdf(12_000), None)
        .await;
    assert_eq!(
        (
            status,
            body["error"]["code"].as_str(),
            body["error"]["field"].as_str()
        ),
        (402, Some("plan_limit_reached"), Some("storage_quota_bytes")),
        "{body}"
    );
    let (used, cap) = {
        let (_, s) = app.get_json(&admin, "/api/billing/usage").await;
        let l = s["limits"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["limit"] == "storage_quota_bytes")
            .unwrap()
            .clone();
        (l["used"].as_i64().unwrap(), l["cap"].as_i64().unwrap())
    };
    assert_eq!((used, cap), (12_009, 20_000));

    // AI: a plan without generations, and one without tokens.
    for (code, cap) in [
        ("no_ai", "ai_generations_per_day"),
        ("no_tokens", "ai_tokens_per_month"),
    ] {
        on_plan(&db, tenant, code).await;
        let res = app
            .request_as(&admin, reqwest::Method::POST, "/api/ai/chat", None)
            .json(&json!({"messages": [{"role": "user", "content": "Halo"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 429, "{code}");
        assert!(res.headers().contains_key("retry-after"));
        let (_, body) = status_and_json(res).await;
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with(cap) && message.contains(code),
            "{message}"
        );
    }
}

#[tokio::test]
async fn the_plans_ai_caps_count_every_feature_and_give_back_what_failed() {
    let db = TestDb::new().await;
    plan(
        &db,
        "two_a_day",
        "ai_generations_per_day = 2, ai_tokens_per_month = 1000",
    )
    .await;
    let tenant = db.create_tenant("usage-ai").await;
    on_plan(&db, tenant, "two_a_day").await;
    let begin = |feature: &'static str, tokens: i64| {
        sqlx::query_scalar::<_, Value>("select llm_begin($1, null, $2, null, $3, null)")
            .bind(tenant)
            .bind(feature)
            .bind(tokens)
    };
    // Two features, one cap: the third generation of the day is refused.
    let first = begin("chat", 100).fetch_one(&db.owner).await.unwrap();
    begin("digest", 100).fetch_one(&db.owner).await.unwrap();
    let err = begin("rag_answer", 100)
        .fetch_one(&db.owner)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("ai_generations_per_day"), "{err}");
    // A generation that no model answered is given back.
    let reservation: Uuid = first["reservation_id"].as_str().unwrap().parse().unwrap();
    sqlx::query(
        "select llm_finish($1, $2, '[{\"outcome\": \"error\", \"error\": \"down\"}]', null)",
    )
    .bind(tenant)
    .bind(reservation)
    .execute(&db.owner)
    .await
    .unwrap();
    begin("rag_answer", 100).fetch_one(&db.owner).await.unwrap();
    // Tokens: 1000 a month; 100 + 100 are held, 900 more are not there.
    let month: i64 = sqlx::query_scalar(
        "select used from llm_plan_counters where tenant_id = $1 and period = 'month'",
    )
    .bind(tenant)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(month, 200);
}
