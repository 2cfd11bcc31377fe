//! Over HTTP: issuing and voiding draft invoices (the lifecycle,
//! never a paid or partly paid invoice), and the rolling DSO, which must
//! agree with the AR aging route: both come from one ledger, so the
//! aging's outstanding per currency is DSO's AR on the tenant's today, for
//! every caller's scope.

use std::collections::BTreeMap;

use bizos_bff::auth::Caller;
use bizos_tests::{spawn_app, TestApp, TestDb};
use chrono::Days;
use serde_json::{json, Value};
use uuid::Uuid;

mod documents;

fn field(body: &Value) -> Option<&str> {
    body["error"]["field"].as_str()
}

fn s(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {v}"))
        .to_owned()
}

async fn lead(app: &TestApp, who: &Caller, company: &str, npwp: &str) -> String {
    let (status, l) = app
        .post_json(
            who,
            "/api/leads",
            &json!({"channel": "website", "company_name": company, "npwp": npwp}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{l}");
    s(&l, "customer_id")
}

async fn invoice(app: &TestApp, finance: &Caller, body: Value) -> Value {
    let (status, inv) = app.post_json(finance, "/api/invoices", &body, None).await;
    assert_eq!(status, 201, "{inv}");
    inv
}

async fn pay(app: &TestApp, finance: &Caller, invoice: &str, amount: f64, paid_on: &str) {
    let (status, p) = app
        .post_json(
            finance,
            "/api/payments",
            &json!({"invoice_id": invoice, "amount": amount, "paid_on": paid_on}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{p}");
}

#[tokio::test]
async fn draft_invoices_are_issued_and_voided_but_never_with_payments() {
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let tenant = db.create_tenant("acme").await;
    let finance = db.create_user(tenant, "finance").await;
    let alice = db.create_user(tenant, "salesperson").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let customer = lead(&app, &alice, "PT Faktur", "01.234.567.8-901.000").await;
    let today = bizos_tests::tenant_today().to_string();

    let draft = invoice(
        &app,
        &finance,
        json!({"customer_id": customer, "subtotal": 1000, "tax": 110, "status": "DRAFT"}),
    )
    .await;
    assert_eq!(draft["status"], "DRAFT");
    let id = s(&draft, "invoice_id");
    let issue = format!("/api/invoices/{id}/issue");
    let void = format!("/api/invoices/{id}/void");

    // Not finance: refused, nothing changes; an unknown invoice: 404.
    let (status, err) = app.post_json(&alice, &issue, &json!(null), None).await;
    assert_eq!(status, 403, "{err}");
    let (status, err) = app
        .post_json(
            &finance,
            &format!("/api/invoices/{}/issue", Uuid::new_v4()),
            &json!(null),
            None,
        )
        .await;
    assert_eq!(status, 404, "{err}");

    let (status, issued) = app
        .post_json(&finance, &issue, &json!(null), Some("issue-1"))
        .await;
    assert_eq!(status, 200, "{issued}");
    assert_eq!(issued["status"], "ISSUED");
    assert!(issued["issued_at"].is_string(), "{issued}");
    assert_eq!(
        issued["outstanding"].as_f64(),
        Some(1110.0),
        "a receivable now: {issued}"
    );
    // A retry with the same key is the same answer; without one, refused.
    let (status, again) = app
        .post_json(&finance, &issue, &json!(null), Some("issue-1"))
        .await;
    assert_eq!(
        (status, &again["status"]),
        (200, &json!("ISSUED")),
        "{again}"
    );
    let (status, err) = app.post_json(&finance, &issue, &json!(null), None).await;
    assert_eq!((status, field(&err)), (422, Some("status")), "{err}");

    // Void an ISSUED invoice without payments, then never again.
    let (status, voided) = app.post_json(&finance, &void, &json!(null), None).await;
    assert_eq!(status, 200, "{voided}");
    assert_eq!(voided["status"], "VOID");
    assert!(voided["voided_at"].is_string(), "{voided}");
    assert_eq!(
        voided["outstanding"].as_f64(),
        Some(0.0),
        "never a receivable: {voided}"
    );
    let (status, err) = app.post_json(&finance, &void, &json!(null), None).await;
    assert_eq!((status, field(&err)), (422, Some("status")), "{err}");
    let (status, err) = app.post_json(&finance, &issue, &json!(null), None).await;
    assert_eq!((status, field(&err)), (422, Some("status")), "{err}");

    // A DRAFT is voided directly.
    let draft2 = invoice(
        &app,
        &finance,
        json!({"customer_id": customer, "subtotal": 500, "tax": 55, "status": "DRAFT"}),
    )
    .await;
    let (status, voided) = app
        .post_json(
            &admin,
            &format!("/api/invoices/{}/void", s(&draft2, "invoice_id")),
            &json!(null),
            None,
        )
        .await;
    assert_eq!(
        (status, &voided["status"]),
        (200, &json!("VOID")),
        "{voided}"
    );

    // Partly paid and paid invoices are refused naming amount_paid.
    let partly = invoice(
        &app,
        &finance,
        json!({"customer_id": customer, "subtotal": 1000, "tax": 110}),
    )
    .await;
    pay(&app, &finance, &s(&partly, "invoice_id"), 100.0, &today).await;
    let paid = invoice(
        &app,
        &finance,
        json!({"customer_id": customer, "subtotal": 200, "tax": 22}),
    )
    .await;
    pay(&app, &finance, &s(&paid, "invoice_id"), 222.0, &today).await;
    for (inv, status_now) in [(&partly, "ISSUED"), (&paid, "PAID")] {
        let id = s(inv, "invoice_id");
        let (status, err) = app
            .post_json(
                &finance,
                &format!("/api/invoices/{id}/void"),
                &json!(null),
                None,
            )
            .await;
        assert_eq!((status, field(&err)), (422, Some("amount_paid")), "{err}");
        assert!(
            err["error"]["message"]
                .as_str()
                .unwrap()
                .contains("payments"),
            "{err}"
        );
        let now: String =
            sqlx::query_scalar("select status from invoices where invoice_id = $1::uuid")
                .bind(&id)
                .fetch_one(&db.owner)
                .await
                .unwrap();
        assert_eq!(now, status_now, "nothing changed");
    }
}

/// Per currency: (aging's total outstanding, DSO's AR on the last day).
async fn reconcile(app: &TestApp, who: &Caller) -> BTreeMap<String, (f64, f64)> {
    let (status, aging) = app.get_json(who, "/api/ar/aging").await;
    assert_eq!(status, 200, "{aging}");
    let (status, dso) = app.get_json(who, "/api/ar/dso").await;
    assert_eq!(status, 200, "{dso}");
    let today = bizos_tests::tenant_today().to_string();
    let mut out: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for row in aging["items"].as_array().unwrap() {
        if row["is_total"] == json!(true) {
            out.entry(s(row, "currency")).or_default().0 = row["outstanding"].as_f64().unwrap();
        }
    }
    let days = dso["items"].as_array().unwrap();
    for row in days {
        if row["day"] == json!(today) {
            out.entry(s(row, "currency")).or_default().1 = row["ar_outstanding"].as_f64().unwrap();
        }
    }
    // 90 days per currency, today the last.
    let currencies = days
        .iter()
        .map(|d| s(d, "currency"))
        .collect::<std::collections::BTreeSet<_>>();
    assert_eq!(days.len(), 90 * currencies.len(), "{dso}");
    out
}

#[tokio::test]
async fn dso_and_aging_routes_agree_for_every_scope() {
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let tenant = db.create_tenant("acme").await;
    let finance = db.create_user(tenant, "finance").await;
    let alice = db.create_user(tenant, "salesperson").await;
    let bob = db.create_user(tenant, "salesperson").await;
    let ca = lead(&app, &alice, "PT Satu", "01.234.567.8-901.000").await;
    let cb = lead(&app, &bob, "PT Dua", "02.345.678.9-012.000").await;
    let today = bizos_tests::tenant_today();
    let ago = |d: u64| (today - Days::new(d)).to_string();

    // Old and new invoices, partly paid, in two currencies; a draft and a
    // voided one, which are not receivables.
    for (customer, days, currency, subtotal, paid) in [
        (&ca, 100, "IDR", 1_000_000.0, 300_000.0),
        (&ca, 45, "IDR", 2_000_000.0, 0.0),
        (&ca, 5, "USD", 1_000.0, 250.0),
        (&cb, 70, "IDR", 5_000_000.0, 5_000_000.0),
        (&cb, 20, "IDR", 700_000.0, 100_000.0),
        (&cb, 0, "USD", 300.0, 0.0),
    ] {
        let inv = invoice(
            &app,
            &finance,
            json!({"customer_id": customer, "subtotal": subtotal, "tax": 0, "currency": currency,
                   "issue_date": ago(days), "terms_days": 30}),
        )
        .await;
        if paid > 0.0 {
            pay(&app, &finance, &s(&inv, "invoice_id"), paid, &ago(days / 2)).await;
        }
    }
    let draft = invoice(
        &app,
        &finance,
        json!({"customer_id": ca, "subtotal": 9_999, "tax": 0, "status": "DRAFT"}),
    )
    .await;
    let voided = invoice(
        &app,
        &finance,
        json!({"customer_id": cb, "subtotal": 8_888, "tax": 0}),
    )
    .await;
    let (status, _) = app
        .post_json(
            &finance,
            &format!("/api/invoices/{}/void", s(&voided, "invoice_id")),
            &json!(null),
            None,
        )
        .await;
    assert_eq!(status, 200);

    let all = reconcile(&app, &finance).await;
    assert_eq!(
        all,
        BTreeMap::from([
            ("IDR".to_owned(), (3_300_000.0, 3_300_000.0)),
            ("USD".to_owned(), (1_050.0, 1_050.0)),
        ]),
        "finance: aging outstanding = DSO's AR today"
    );
    // Each salesperson sees their customers only, and the two routes still agree.
    let mine = reconcile(&app, &alice).await;
    assert_eq!(
        mine,
        BTreeMap::from([
            ("IDR".to_owned(), (2_700_000.0, 2_700_000.0)),
            ("USD".to_owned(), (750.0, 750.0)),
        ]),
        "alice"
    );
    let bobs = reconcile(&app, &bob).await;
    assert_eq!(
        bobs,
        BTreeMap::from([
            ("IDR".to_owned(), (600_000.0, 600_000.0)),
            ("USD".to_owned(), (300.0, 300.0)),
        ]),
        "bob"
    );
    // Issuing the draft moves both the same way.
    let (status, _) = app
        .post_json(
            &finance,
            &format!("/api/invoices/{}/issue", s(&draft, "invoice_id")),
            &json!(null),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        reconcile(&app, &alice).await["IDR"],
        (2_709_999.0, 2_709_999.0)
    );

    // Filters and bad ranges.
    let (status, usd) = app
        .get_json(
            &finance,
            &format!("/api/ar/dso?currency=usd&from={}&to={}", ago(9), ago(0)),
        )
        .await;
    assert_eq!(status, 200, "{usd}");
    let days = usd["items"].as_array().unwrap();
    assert_eq!(days.len(), 10, "{usd}");
    assert!(days.iter().all(|d| d["currency"] == "USD"), "{usd}");
    // The USD window's sales: 1 000 (5 days ago) and 300 (today): DSO = AR / sales x 30.
    let last = days.last().unwrap();
    assert_eq!(
        (last["credit_sales_30d"].as_f64(), last["dso_days"].as_f64()),
        (Some(1_300.0), Some(24.2)),
        "{last}"
    );
    let (status, err) = app
        .get_json(
            &finance,
            &format!("/api/ar/dso?from={}&to={}", ago(0), ago(9)),
        )
        .await;
    assert_eq!((status, field(&err)), (422, Some("to")), "{err}");
    let (status, err) = app.get_json(&finance, "/api/ar/dso?from=soon").await;
    assert_eq!(status, 400, "{err}");
    let ops = db.create_user(tenant, "ops").await;
    let (status, none) = app.get_json(&ops, "/api/ar/dso").await;
    assert_eq!(
        (status, none["items"].as_array().map(Vec::len)),
        (200, Some(0)),
        "ops read no AR: {none}"
    );
}
