//! The operator's plan catalogue through HTTP (V56, sql/api/usage.sql
//! `plan_*`, bff/src/routes/plans.rs): create, change, metered prices,
//! retire, reinstate, each bad field named, every change in plan_history
//! with the request's id; a retired plan refused at plan change and at sign-up
//! while its tenants keep it and get their month-end invoice; a price
//! change reaches the next period closed, never a closed invoice.

use bizos_tests::{code, field as db_field, spawn_app_with, status_and_json, TestApp, TestDb};
use serde_json::{json, Value};
use uuid::Uuid;

use super::lifecycle::{clock, plan, tenant_on};
use super::month_end::{close, lines};

const OPERATOR_TOKEN: &str = "plans-test-operator-token-0123456789abcdef";
const PUBLIC_URL: &str = "https://app.bizos.test";

/// The BFF with the operator API; `extra` adds settings.
async fn app(db: &TestDb, extra: &[(&str, &str)]) -> TestApp {
    let owner = db.url("bizos_owner");
    let mut env: Vec<(&str, &str)> = vec![
        ("BIZOS_OPERATOR_TOKEN", OPERATOR_TOKEN),
        ("BIZOS_OPERATOR_DATABASE_URL", &owner),
        ("TEST_WORKER", "off"),
    ];
    env.extend_from_slice(extra);
    spawn_app_with(db, &env).await
}

/// As the operator (with an x-request-id), or with another bearer token.
async fn operator(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    as_bearer(app, OPERATOR_TOKEN, method, path, body).await
}

async fn as_bearer(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app
        .http
        .request(method, app.url(path))
        .bearer_auth(token)
        .header("x-request-id", "plans-test-request");
    if let Some(b) = body {
        req = req.json(&b);
    }
    status_and_json(req.send().await.unwrap()).await
}

fn field(body: &Value) -> Option<&str> {
    body["error"]["field"].as_str()
}

const GET: reqwest::Method = reqwest::Method::GET;
const POST: reqwest::Method = reqwest::Method::POST;
const PATCH: reqwest::Method = reqwest::Method::PATCH;
const PUT: reqwest::Method = reqwest::Method::PUT;
const DELETE: reqwest::Method = reqwest::Method::DELETE;

#[tokio::test]
async fn the_operator_creates_changes_prices_and_retires_plans_and_each_bad_field_is_named() {
    let db = TestDb::new().await;
    let app = app(&db, &[]).await;
    let tenant = db.create_tenant("plans-a").await;
    let admin = db.create_user(tenant, "super_admin").await;

    // A tenant's token never reaches the catalogue.
    let (status, _) = as_bearer(
        &app,
        &app.token(&admin),
        GET,
        "/api/operator/billing/plans",
        None,
    )
    .await;
    assert_eq!(status, 401);

    let gold = json!({"plan_code": "gold", "label": "Gold", "monthly_price": 750000, "annual_price": 7500000,
                      "trial_days": 14, "included_seats": 10, "ai_tokens_per_month": 2000000,
                      "features": ["kb", "rfm"]});
    let (status, created) = operator(
        &app,
        POST,
        "/api/operator/billing/plans",
        Some(gold.clone()),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "on_sale", "{created}");
    assert_eq!(created["monthly_price"], json!(750000), "{created}");
    assert_eq!(created["included_seats"], 10);
    assert_eq!(created["ai_generations_per_day"], Value::Null);
    assert_eq!(created["features"], json!(["kb", "rfm"]));
    assert_eq!(created["metrics"], json!([]));
    assert_eq!(created["tenants"], 0);

    // Bad input: refused naming the field, nothing written.
    for (body, status, want) in [
        (gold.clone(), 409, "plan_code"),
        (
            json!({"plan_code": "Gold Plan", "label": "G", "monthly_price": 1, "annual_price": 1}),
            422,
            "plan_code",
        ),
        (
            json!({"plan_code": "silver", "label": "S", "monthly_price": -1, "annual_price": 1}),
            422,
            "monthly_price",
        ),
        (
            json!({"plan_code": "silver", "label": "S", "monthly_price": 1}),
            422,
            "annual_price",
        ),
        (
            json!({"plan_code": "silver", "label": "S", "monthly_price": 1, "annual_price": 1, "trial_days": 400}),
            422,
            "trial_days",
        ),
        (
            json!({"plan_code": "silver", "label": "S", "monthly_price": 1, "annual_price": 1, "features": ["Not A Flag"]}),
            422,
            "features",
        ),
        (
            json!({"plan_code": "silver", "label": "S", "monthly_price": 1, "annual_price": 1, "price": 1}),
            422,
            "price",
        ),
    ] {
        let (got, err) = operator(
            &app,
            POST,
            "/api/operator/billing/plans",
            Some(body.clone()),
        )
        .await;
        assert_eq!((got, field(&err)), (status, Some(want)), "{body} -> {err}");
    }
    let silver: i64 = sqlx::query_scalar("select count(*) from plans where plan_code = 'silver'")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(silver, 0, "nothing half-written");

    // The database names the field itself (the rule is there, not only in
    // the BFF's types).
    for (sql, want) in [
        ("select plan_create('{\"plan_code\": \"silver\", \"label\": \"S\", \"monthly_price\": 1, \"annual_price\": -5}')", "annual_price"),
        ("select plan_create('{\"plan_code\": \"silver\", \"label\": \"S\", \"monthly_price\": -1, \"annual_price\": 5}')", "monthly_price"),
        ("select plan_update('gold', '{\"included_seats\": 0}')", "included_seats"),
        ("select plan_update('gold', '{\"storage_quota_bytes\": -1}')", "storage_quota_bytes"),
        ("select plan_metric_set('gold', 'ai_tokens', '{\"unit_price\": -0.5}')", "unit_price"),
        ("select plan_metric_set('gold', 'no_such_metric', '{\"unit_price\": 1}')", "metric_code"),
    ] {
        let err = sqlx::query(sql).execute(&db.owner).await.unwrap_err();
        assert_eq!((code(&err), db_field(&err).as_deref()), ("P0001".into(), Some(want)), "{sql}: {err}");
    }

    // Change the terms: only the keys sent; null removes a cap.
    let (status, changed) = operator(
        &app,
        PATCH,
        "/api/operator/billing/plans/gold",
        Some(json!({"monthly_price": 800000, "included_seats": null})),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["monthly_price"], json!(800000));
    assert_eq!(changed["included_seats"], Value::Null);
    assert_eq!(changed["trial_days"], 14, "kept: {changed}");
    let (status, err) = operator(
        &app,
        PATCH,
        "/api/operator/billing/plans/gold",
        Some(json!({})),
    )
    .await;
    assert_eq!((status, field(&err)), (422, Some("payload")), "{err}");
    let (status, err) = operator(
        &app,
        PATCH,
        "/api/operator/billing/plans/gold",
        Some(json!({"trial_days": -1})),
    )
    .await;
    assert_eq!((status, field(&err)), (422, Some("trial_days")), "{err}");
    let (status, _) = operator(
        &app,
        PATCH,
        "/api/operator/billing/plans/tin",
        Some(json!({"label": "Tin"})),
    )
    .await;
    assert_eq!(status, 404);

    // Metered prices.
    let (status, priced) = operator(
        &app,
        PUT,
        "/api/operator/billing/plans/gold/metrics/ai_tokens",
        Some(json!({"included": 1000000, "unit_price": 0.05})),
    )
    .await;
    assert_eq!(status, 200, "{priced}");
    assert_eq!(priced["metrics"][0]["metric_code"], "ai_tokens", "{priced}");
    assert_eq!(priced["metrics"][0]["unit_price"], json!(0.05), "{priced}");
    let (status, priced) = operator(
        &app,
        PUT,
        "/api/operator/billing/plans/gold/metrics/ai_tokens",
        Some(json!({"unit_price": 0.04})),
    )
    .await;
    assert_eq!(status, 200, "{priced}");
    assert_eq!(
        priced["metrics"][0]["included"],
        json!(1000000),
        "kept: {priced}"
    );
    for (path, body, want) in [
        (
            "/api/operator/billing/plans/gold/metrics/no_such_metric",
            json!({"unit_price": 1}),
            "metric_code",
        ),
        (
            "/api/operator/billing/plans/gold/metrics/ai_tokens",
            json!({"unit_price": -1}),
            "unit_price",
        ),
        (
            "/api/operator/billing/plans/gold/metrics/ai_tokens",
            json!({"included": "lots"}),
            "included",
        ),
    ] {
        let (status, err) = operator(&app, PUT, path, Some(body.clone())).await;
        assert_eq!(
            (status, field(&err)),
            (422, Some(want)),
            "{path} {body}: {err}"
        );
    }
    let (status, removed) = operator(
        &app,
        DELETE,
        "/api/operator/billing/plans/gold/metrics/ai_tokens",
        None,
    )
    .await;
    assert_eq!(status, 200, "{removed}");
    assert_eq!(removed["metrics"], json!([]));
    let (status, _) = operator(
        &app,
        DELETE,
        "/api/operator/billing/plans/gold/metrics/ai_tokens",
        None,
    )
    .await;
    assert_eq!(status, 404);

    // Retire: twice is once.
    let (status, retired) =
        operator(&app, POST, "/api/operator/billing/plans/gold/retire", None).await;
    assert_eq!(status, 200, "{retired}");
    assert_eq!(retired["status"], "retired");
    let at = retired["retired_at"].clone();
    assert!(at.is_string(), "{retired}");
    let (_, again) = operator(&app, POST, "/api/operator/billing/plans/gold/retire", None).await;
    assert_eq!(again["retired_at"], at);
    let (status, _) = operator(&app, POST, "/api/operator/billing/plans/tin/retire", None).await;
    assert_eq!(status, 404);

    // The list: on sale first (the seeded trial), then retired.
    let (status, list) = operator(&app, GET, "/api/operator/billing/plans", None).await;
    assert_eq!(status, 200, "{list}");
    let codes: Vec<(&str, &str)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["plan_code"].as_str().unwrap(),
                p["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(codes, [("trial", "on_sale"), ("gold", "retired")], "{list}");
    assert!(
        !list["items"][0]["metrics"].as_array().unwrap().is_empty(),
        "{list}"
    );

    // Every change the operator made, newest first, with the request's id;
    // the refused ones left no trace.
    let (status, history) =
        operator(&app, GET, "/api/operator/billing/plans/gold/history", None).await;
    assert_eq!(status, 200, "{history}");
    let items = history["items"].as_array().unwrap();
    let actions: Vec<(&str, Option<&str>)> = items
        .iter()
        .map(|h| (h["action"].as_str().unwrap(), h["metric_code"].as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("retire", None),
            ("metric_remove", Some("ai_tokens")),
            ("metric_set", Some("ai_tokens")),
            ("metric_set", Some("ai_tokens")),
            ("update", None),
            ("create", None),
        ],
        "{history}"
    );
    assert!(
        items
            .iter()
            .all(|h| h["request_id"] == "plans-test-request"),
        "{history}"
    );
    let update = &items[4];
    assert_eq!(update["before"]["monthly_price"], json!(750000), "{update}");
    assert_eq!(update["after"]["monthly_price"], json!(800000), "{update}");
    assert_eq!(items[5]["before"], Value::Null);
    assert_eq!(items[0]["after"]["status"], "retired");
    let (status, _) = operator(&app, GET, "/api/operator/billing/plans/tin/history", None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_retired_plan_takes_no_new_tenant_yet_its_tenants_keep_it_and_get_their_month_end_invoice(
) {
    let db = TestDb::new().await;
    plan(&db, "basic", 310_000, 0).await;
    plan(&db, "pro", 620_000, 0).await;
    clock(&db, "2026-12-01T03:00:00Z").await;
    let kept = tenant_on(&db, "plans-kept", "basic").await;
    let other = tenant_on(&db, "plans-other", "pro").await;
    let app = app(
        &db,
        &[
            ("BIZOS_PUBLIC_URL", PUBLIC_URL),
            ("BIZOS_SIGNUP_PLAN", "basic"),
        ],
    )
    .await;

    // A sign-up asked for while the plan is on sale.
    let email = format!("retired-{}@example.test", Uuid::new_v4().simple());
    let res = app
        .http
        .post(app.url("/api/signup"))
        .json(&json!({"email": email, "company_name": "PT Pensiun", "full_name": "Andi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 202);
    let token: String = sqlx::query_scalar(
        "select substring(text_body from 'token=([A-Za-z0-9_-]+)') from emails
          where template = 'signup.verify' and $1 = any (to_addresses::text[]) order by created_at desc limit 1",
    )
    .bind(&email)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    let (status, retired) =
        operator(&app, POST, "/api/operator/billing/plans/basic/retire", None).await;
    assert_eq!(status, 200, "{retired}");
    assert_eq!(retired["tenants"], 1, "{retired}");

    // A plan change to it: refused, naming plan_code; nothing changed.
    let (status, err) = operator(
        &app,
        POST,
        &format!("/api/operator/billing/tenants/{other}/plan"),
        Some(json!({"plan_code": "basic"})),
    )
    .await;
    assert_eq!((status, field(&err)), (422, Some("plan_code")), "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("retired"),
        "{err}"
    );
    let err = sqlx::query("select billing_change_plan($1, 'basic')")
        .bind(other)
        .execute(&db.owner)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("is retired"), "{err}");
    let plans: Vec<String> = sqlx::query_scalar(
        "select plan_code from subscriptions where tenant_id = $1
         union all select plan_code from tenants where tenant_id = $1",
    )
    .bind(other)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert_eq!(plans, ["pro", "pro"]);

    // Sign-up on it (BIZOS_SIGNUP_PLAN) is refused when asked for, naming
    // the setting's field, and no link is sent.
    let late = format!("late-{}@example.test", Uuid::new_v4().simple());
    let res = app
        .http
        .post(app.url("/api/signup"))
        .json(&json!({"email": late, "company_name": "PT Terlambat", "full_name": "Budi"}))
        .send()
        .await
        .unwrap();
    let (status, err) = status_and_json(res).await;
    assert_eq!((status, field(&err)), (422, Some("plan")), "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("retired"),
        "{err}"
    );
    let sent: i64 = sqlx::query_scalar(
        "select count(*) from emails where template = 'signup.verify' and $1 = any (to_addresses::text[])",
    )
    .bind(&late)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(sent, 0);
    // A link sent before the plan was retired is refused when used, naming
    // the field; no organisation made, the link still unused.
    let res = app
        .http
        .post(app.url("/api/signup/verify"))
        .json(&json!({"token": token, "password": "a long enough passphrase"}))
        .send()
        .await
        .unwrap();
    let (status, err) = status_and_json(res).await;
    assert_eq!((status, field(&err)), (422, Some("plan")), "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("retired"),
        "{err}"
    );
    let made: i64 = sqlx::query_scalar("select count(*) from tenants where name = 'PT Pensiun'")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(made, 0);

    // The tenant on it keeps it: other changes of the tenant go through,
    // and December is invoiced at its price.
    sqlx::query(
        "update tenants set name = 'Kept on basic', plan_code = 'basic' where tenant_id = $1",
    )
    .bind(kept)
    .execute(&db.owner)
    .await
    .unwrap();
    clock(&db, "2026-12-31T17:00:00Z").await;
    let dec = close(&db, kept, None).await.expect("December's invoice");
    let l = lines(&db, dec).await;
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!(
        (l[0].0.as_str(), l[0].2.as_str()),
        ("plan", "310000"),
        "{l:?}"
    );

    // Back on sale: the plan change refused above goes through now, and
    // the history says who put it back; reinstating again changes nothing.
    let (status, back) = operator(
        &app,
        POST,
        "/api/operator/billing/plans/basic/reinstate",
        None,
    )
    .await;
    assert_eq!(status, 200, "{back}");
    assert_eq!(
        (&back["status"], &back["retired_at"]),
        (&json!("on_sale"), &Value::Null),
        "{back}"
    );
    let (status, again) = operator(
        &app,
        POST,
        "/api/operator/billing/plans/basic/reinstate",
        None,
    )
    .await;
    assert_eq!(
        (status, &again["updated_at"]),
        (200, &back["updated_at"]),
        "{again}"
    );
    let (status, _) = operator(
        &app,
        POST,
        "/api/operator/billing/plans/tin/reinstate",
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, changed) = operator(
        &app,
        POST,
        &format!("/api/operator/billing/tenants/{other}/plan"),
        Some(json!({"plan_code": "basic"})),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    let plan_of_other: String =
        sqlx::query_scalar("select plan_code from subscriptions where tenant_id = $1")
            .bind(other)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(plan_of_other, "basic");
    let (_, history) = operator(&app, GET, "/api/operator/billing/plans/basic/history", None).await;
    let actions: Vec<&str> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions[..2], ["reinstate", "retire"], "{history}");
    assert_eq!(
        history["items"][0]["before"]["status"], "retired",
        "{history}"
    );
}

/// The rule docs/billing.md states: the month-end run prices the period
/// it closes from the plan as it is then, so a new price covers the whole
/// period closed after the change (from its first day); the invoices
/// closed before keep their lines.
#[tokio::test]
async fn a_price_change_reaches_the_next_period_closed_and_never_a_closed_invoice() {
    let db = TestDb::new().await;
    plan(&db, "basic", 310_000, 0).await;
    clock(&db, "2026-12-01T03:00:00Z").await;
    let t = tenant_on(&db, "plans-price", "basic").await;
    let app = app(&db, &[]).await;

    clock(&db, "2026-12-31T17:00:00Z").await;
    let dec = close(&db, t, None).await.expect("December's invoice");
    assert_eq!(lines(&db, dec).await[0].2, "310000");

    clock(&db, "2027-01-15T03:00:00Z").await;
    let (status, body) = operator(
        &app,
        PATCH,
        "/api/operator/billing/plans/basic",
        Some(json!({"monthly_price": 400000})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (dec_lines, dec_total): (String, String) = sqlx::query_as(
        "select (select string_agg(amount::text, ',') from billing_invoice_lines where billing_invoice_id = $1),
                (select total::text from billing_invoices where billing_invoice_id = $1)",
    )
    .bind(dec)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(
        (dec_lines.as_str(), dec_total.as_str()),
        ("310000", "344100")
    );

    clock(&db, "2027-01-31T17:00:00Z").await;
    let jan = close(&db, t, None).await.expect("January's invoice");
    let l = lines(&db, jan).await;
    assert_eq!(
        (l[0].0.as_str(), l[0].2.as_str()),
        ("plan", "400000"),
        "{l:?}"
    );
}
