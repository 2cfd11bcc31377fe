//! The HTTP API through a running BFF: every route's happy
//! path and bad inputs, pagination, the error shape, and the OpenAPI
//! document. Idempotency, files and imports have files of their own.

use bizos_bff::auth::Caller;
use bizos_tests::{num, spawn_app, TestApp, TestDb};
use serde_json::{json, Value};
use uuid::Uuid;

struct Org {
    tenant: Uuid,
    marketing: Caller,
    manager: Caller,
    alice: Caller,
    ops: Caller,
    finance: Caller,
    director: Caller,
}

async fn org(db: &TestDb) -> Org {
    let tenant = db.create_tenant("acme").await;
    let marketing = db.create_user(tenant, "marketing_manager").await;
    let manager = db.create_user(tenant, "sales_manager").await;
    let alice = db.create_user(tenant, "salesperson").await;
    let ops = db.create_user(tenant, "ops").await;
    let finance = db.create_user(tenant, "finance").await;
    let director = db.create_user(tenant, "director").await;
    db.set_manager(&alice, &manager).await;
    Org {
        tenant,
        marketing,
        manager,
        alice,
        ops,
        finance,
        director,
    }
}

fn error_of(body: &Value) -> (&str, Option<&str>) {
    (
        body["error"]["code"].as_str().expect("an error code"),
        body["error"]["field"].as_str(),
    )
}

fn id(v: &Value, key: &str) -> Uuid {
    v[key]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{key} in {v}"))
}

fn lead_body(company: &str, npwp: &str) -> Value {
    json!({"channel": "website", "company_name": company, "npwp": npwp,
           "contact_name": "Budi", "contact_email": format!("budi@{}.co.id", npwp.replace(['.', '-'], ""))})
}

async fn new_lead(app: &TestApp, who: &Caller, company: &str, npwp: &str) -> Value {
    let (status, body) = app
        .post_json(who, "/api/leads", &lead_body(company, npwp), None)
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

#[tokio::test]
async fn leads_create_list_read_update_and_assign() {
    let db = TestDb::new().await;
    let o = org(&db).await;
    let app = spawn_app(&db).await;

    let a = new_lead(&app, &o.marketing, "PT Maju Jaya", "01.234.567.8-901.000").await;
    assert!(a["lead_no"].as_str().unwrap().starts_with("LEAD-"), "{a}");
    new_lead(&app, &o.marketing, "CV Sinar Abadi", "02.345.678.9-012.000").await;
    new_lead(
        &app,
        &o.marketing,
        "PT Samudra Biru",
        "03.456.789.0-123.000",
    )
    .await;

    // Bad input: 422 naming the field, nothing written; no token: 401.
    let (status, body) = app
        .post_json(
            &o.marketing,
            "/api/leads",
            &json!({"channel": "website"}),
            None,
        )
        .await;
    assert_eq!(
        (status, error_of(&body)),
        (422, ("invalid", Some("company_name"))),
        "{body}"
    );
    let (status, body) = app
        .post_json(
            &o.marketing,
            "/api/leads",
            &json!({"channel": "pigeon", "company_name": "PT X"}),
            None,
        )
        .await;
    assert_eq!(
        (status, error_of(&body).1),
        (422, Some("channel")),
        "{body}"
    );
    let (status, body) = app
        .post_json(&o.marketing, "/api/leads", &json!([1, 2]), None)
        .await;
    assert_eq!(status, 422, "{body}");
    let res = app
        .http
        .post(app.url("/api/leads"))
        .json(&lead_body("PT Y", "1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let (_, page) = app.get_json(&o.marketing, "/api/leads?limit=50").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 3, "{page}");

    // Pagination: newest first, two pages.
    let (status, p1) = app.get_json(&o.marketing, "/api/leads?limit=2").await;
    assert_eq!(status, 200);
    assert_eq!(p1["items"].as_array().unwrap().len(), 2);
    assert_eq!(p1["items"][0]["company_name"], "PT Samudra Biru");
    let cursor = p1["next_cursor"].as_str().expect("a next page").to_owned();
    let (_, p2) = app
        .get_json(&o.marketing, &format!("/api/leads?limit=2&after={cursor}"))
        .await;
    assert_eq!(p2["items"].as_array().unwrap().len(), 1);
    assert_eq!(p2["items"][0]["company_name"], "PT Maju Jaya");
    assert!(p2["next_cursor"].is_null());
    // Filters and search.
    let (_, found) = app.get_json(&o.marketing, "/api/leads?q=sinar").await;
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    let (_, found) = app
        .get_json(&o.marketing, "/api/leads?status=new&channel=WEBSITE")
        .await;
    assert_eq!(found["items"].as_array().unwrap().len(), 3);
    let (status, body) = app.get_json(&o.marketing, "/api/leads?limit=0").await;
    assert_eq!((status, error_of(&body).1), (400, Some("limit")));
    let (status, body) = app.get_json(&o.marketing, "/api/leads?after=junk").await;
    assert_eq!((status, error_of(&body).1), (400, Some("after")));
    let (status, _) = app
        .get_json(&o.marketing, "/api/leads?created_from=yesterday")
        .await;
    assert_eq!(status, 400);

    // Detail, with its customer; unknown or invisible → 404.
    let lead_id = id(&a, "lead_id");
    let (status, lead) = app
        .get_json(&o.marketing, &format!("/api/leads/{lead_id}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(lead["customer"]["company_name"], "PT Maju Jaya");
    let (status, body) = app
        .get_json(&o.marketing, &format!("/api/leads/{}", Uuid::new_v4()))
        .await;
    assert_eq!((status, error_of(&body).0), (404, "not_found"));
    let (status, _) = app
        .get_json(&o.alice, &format!("/api/leads/{lead_id}"))
        .await;
    assert_eq!(status, 404, "an unassigned lead is not the salesperson's");
    let (status, _) = app.get_json(&o.marketing, "/api/leads/not-a-uuid").await;
    assert_eq!(status, 400);

    // Assign: managers only; the salesperson then sees it.
    let path = format!("/api/leads/{lead_id}/assign");
    let (status, body) = app
        .post_json(
            &o.alice,
            &path,
            &json!({"salesperson_user_id": o.alice.user_id}),
            None,
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = app
        .post_json(
            &o.manager,
            &path,
            &json!({"salesperson_user_id": "bob"}),
            None,
        )
        .await;
    assert_eq!(
        (status, error_of(&body).1),
        (422, Some("salesperson_user_id")),
        "{body}"
    );
    let (status, body) = app
        .post_json(
            &o.manager,
            &path,
            &json!({"salesperson_user_id": o.alice.user_id}),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, mine) = app.get_json(&o.alice, "/api/leads").await;
    assert_eq!((status, mine["items"].as_array().unwrap().len()), (200, 1));

    // PATCH: only the keys sent; the lifecycle is the database's.
    let path = format!("/api/leads/{lead_id}");
    let (status, body) = app
        .patch_json(
            &o.alice,
            &path,
            &json!({"status": "contacted", "city": "Bekasi"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["status"].as_str(), body["city"].as_str()),
        (Some("CONTACTED"), Some("Bekasi"))
    );
    assert_eq!(body["contact_name"], "Budi");
    let (status, body) = app
        .patch_json(&o.alice, &path, &json!({"status": "NEW"}))
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = app
        .patch_json(&o.alice, &path, &json!({"owner": "me"}))
        .await;
    assert_eq!((status, error_of(&body).1), (422, Some("owner")), "{body}");
    let (status, body) = app
        .patch_json(&o.alice, &path, &json!({"contact_email": "not-an-email"}))
        .await;
    assert_eq!(
        (status, error_of(&body).1),
        (422, Some("contact_email")),
        "{body}"
    );
    let (status, _) = app
        .patch_json(&o.ops, &path, &json!({"city": "Bogor"}))
        .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn tickets_create_change_message_list_and_mask() {
    let db = TestDb::new().await;
    let o = org(&db).await;
    let app = spawn_app(&db).await;

    let rfq = json!({"ticket_type": "inquiry_tariff", "subject": "Tarif JKT-SUB 20ft", "dept_target": "OPS",
                     "origin": "Jakarta", "destination": "Surabaya", "weight_kg": 1200,
                     "company_name": "PT Rahasia", "contact_name": "Budi", "contact_phone": "0811-222-3333"});
    let (status, t) = app.post_json(&o.alice, "/api/tickets", &rfq, None).await;
    assert_eq!(status, 201, "{t}");
    let ticket = id(&t, "ticket_id");
    let (status, body) = app
        .post_json(
            &o.alice,
            "/api/tickets",
            &json!({"ticket_type": "gossip", "subject": "x", "dept_target": "OPS"}),
            None,
        )
        .await;
    assert_eq!(
        (status, error_of(&body).1),
        (422, Some("ticket_type")),
        "{body}"
    );

    // Ops see the RFQ with the customer masked; the creator sees it plain.
    let (status, list) = app
        .get_json(&o.ops, "/api/tickets?ticket_type=inquiry_tariff")
        .await;
    assert_eq!(status, 200);
    assert_eq!(list["items"][0]["company_name"], "MASKED", "{list}");
    assert_eq!(list["items"][0]["contact_phone"], "***");
    let (_, mine) = app
        .get_json(&o.alice, &format!("/api/tickets/{ticket}"))
        .await;
    assert_eq!(mine["company_name"], "PT Rahasia");

    // Messages: the first reply by ops is the first response.
    let path = format!("/api/tickets/{ticket}/messages");
    let (status, body) = app
        .post_json(&o.ops, &path, &json!({"body": "Tarif Rp 4.500.000"}), None)
        .await;
    assert_eq!(status, 201, "{body}");
    assert!(!body["first_response_at"].is_null(), "{body}");
    let (status, body) = app
        .post_json(&o.ops, &path, &json!({"body": ""}), None)
        .await;
    assert_eq!((status, error_of(&body).1), (422, Some("body")), "{body}");
    let (status, body) = app
        .post_json(&o.ops, &path, &json!({"text": "hi"}), None)
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = app
        .post_json(
            &o.ops,
            &format!("/api/tickets/{}/messages", Uuid::new_v4()),
            &json!({"body": "x"}),
            None,
        )
        .await;
    assert_eq!(status, 404);

    // PATCH: a transition with a note, then an invalid one.
    let path = format!("/api/tickets/{ticket}");
    let (status, body) = app
        .patch_json(
            &o.ops,
            &path,
            &json!({"status": "IN_PROGRESS", "priority": "high"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["inquiry_status"].as_str(), body["priority"].as_str()),
        (Some("IN_PROGRESS"), Some("high"))
    );
    let (status, body) = app
        .patch_json(&o.ops, &path, &json!({"status": "OPEN"}))
        .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = app
        .patch_json(&o.ops, &path, &json!({"priority": "whenever"}))
        .await;
    assert_eq!(
        (status, error_of(&body).1),
        (422, Some("priority")),
        "{body}"
    );
    let (status, body) = app.patch_json(&o.ops, &path, &json!({})).await;
    assert_eq!(
        (status, error_of(&body).1),
        (422, Some("payload")),
        "{body}"
    );

    let (_, detail) = app.get_json(&o.ops, &path).await;
    assert_eq!(detail["messages"].as_array().unwrap().len(), 1, "{detail}");
    assert_eq!(detail["company_name"], "MASKED");
    let (_, filtered) = app
        .get_json(&o.ops, "/api/tickets?status=in_progress&priority=high")
        .await;
    assert_eq!(filtered["items"].as_array().unwrap().len(), 1);
    let (_, none) = app.get_json(&o.finance, "/api/tickets").await;
    assert_eq!(
        none["items"].as_array().unwrap().len(),
        0,
        "finance sees no OPS tickets"
    );
}

#[tokio::test]
async fn kpi_targets_entries_and_actuals() {
    let db = TestDb::new().await;
    let o = org(&db).await;
    let app = spawn_app(&db).await;

    let target = json!({"metric_key": "quotations_sent", "assignee_user_id": o.alice.user_id,
                        "period_month": "2026-11", "target_value": 20});
    let (status, body) = app
        .post_json(&o.manager, "/api/kpi/targets", &target, None)
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app
        .post_json(&o.manager, "/api/kpi/targets", &target, None)
        .await;
    assert_eq!(
        (status, error_of(&body)),
        (409, ("conflict", Some("period"))),
        "{body}"
    );
    let (status, _) = app
        .post_json(&o.alice, "/api/kpi/targets", &target, None)
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .post_json(&o.director, "/api/kpi/targets", &target, None)
        .await;
    assert_eq!(status, 403);

    let (status, body) = app
        .post_json(
            &o.alice,
            "/api/kpi/entries",
            &json!({"metric_key": "quotations_sent", "value": 4}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app
        .post_json(
            &o.alice,
            "/api/kpi/entries",
            &json!({"metric_key": "revenue", "value": 4}),
            None,
        )
        .await;
    assert_eq!(
        (status, error_of(&body).1),
        (422, Some("metric_key")),
        "{body}"
    );
    let (status, body) = app
        .post_json(
            &o.alice,
            "/api/kpi/entries",
            &json!({"metric_key": "quotations_sent"}),
            None,
        )
        .await;
    assert_eq!((status, error_of(&body).1), (422, Some("value")), "{body}");

    let today = bizos_tests::tenant_today();
    let path = format!(
        "/api/kpi/actuals?metric_key=quotations_sent&assignee_user_id={}&from={}&to={}",
        o.alice.user_id,
        today - chrono::Days::new(3),
        today
    );
    let (status, body) = app.get_json(&o.manager, &path).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(num(&body["items"][0]["value"]), 4.0, "{body}");
    let all = format!(
        "/api/kpi/actuals?from={}&to={}",
        today - chrono::Days::new(30),
        today
    );
    let (status, body) = app.get_json(&o.director, &all).await;
    assert_eq!(status, 200);
    let items = body["items"].as_array().unwrap();
    assert!(items.len() >= 20, "every active metric: {}", items.len());
    assert!(
        items
            .iter()
            .any(|m| m["status"] == "na" && m["reason"].is_string()),
        "NA with a reason"
    );
    let (status, body) = app
        .get_json(&o.manager, "/api/kpi/actuals?from=2026-02-01&to=2026-01-01")
        .await;
    assert_eq!((status, error_of(&body).1), (422, Some("to")));
    let (status, _) = app
        .get_json(&o.manager, "/api/kpi/actuals?from=2026-01-01")
        .await;
    assert_eq!(status, 400);
    let (status, _) = app
        .get_json(
            &o.manager,
            "/api/kpi/actuals?metric_key=nope&from=2026-01-01&to=2026-01-31",
        )
        .await;
    assert_eq!(status, 404);
    let _ = o.tenant;
}

#[tokio::test]
async fn invoices_payments_collection_and_aging() {
    let db = TestDb::new().await;
    let o = org(&db).await;
    let app = spawn_app(&db).await;
    let lead = new_lead(
        &app,
        &o.marketing,
        "PT Pelanggan Setia",
        "04.567.890.1-234.000",
    )
    .await;
    let customer = id(&lead, "customer_id");

    let overdue = json!({"customer_id": customer, "subtotal": 1000000, "tax": 110000,
                         "issue_date": "2026-09-01", "due_date": "2026-10-01"});
    let (status, inv) = app
        .post_json(&o.finance, "/api/invoices", &overdue, None)
        .await;
    assert_eq!(status, 201, "{inv}");
    assert!(
        inv["invoice_no"].as_str().unwrap().starts_with("INV-"),
        "{inv}"
    );
    let invoice = id(&inv, "invoice_id");
    let (status, _) = app
        .post_json(&o.alice, "/api/invoices", &overdue, None)
        .await;
    assert_eq!(status, 403);
    let (status, body) = app
        .post_json(
            &o.finance,
            "/api/invoices",
            &json!({"customer_id": customer, "subtotal": -5, "tax": 0}),
            None,
        )
        .await;
    assert_eq!(
        (status, error_of(&body).1),
        (422, Some("subtotal")),
        "{body}"
    );

    let pay = json!({"invoice_id": invoice, "amount": 110000, "paid_on": "2026-10-05", "reference": "BCA-77"});
    let (status, body) = app.post_json(&o.finance, "/api/payments", &pay, None).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app
        .post_json(
            &o.finance,
            "/api/payments",
            &json!({"invoice_id": invoice, "amount": 5000000}),
            None,
        )
        .await;
    assert_eq!((status, error_of(&body).1), (422, Some("amount")), "{body}");

    let (status, list) = app.get_json(&o.finance, "/api/invoices?overdue=true").await;
    assert_eq!(status, 200);
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(num(&list["items"][0]["outstanding"]), 1_000_000.0);
    let (status, detail) = app
        .get_json(&o.finance, &format!("/api/invoices/{invoice}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(detail["payments"].as_array().unwrap().len(), 1);
    let (_, aging) = app.get_json(&o.finance, "/api/ar/aging").await;
    let total = aging["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["is_total"] == true)
        .cloned()
        .unwrap();
    assert_eq!(num(&total["outstanding"]), 1_000_000.0, "{aging}");
    let (_, aging) = app
        .get_json(&o.finance, &format!("/api/ar/aging?customer_id={customer}"))
        .await;
    assert_eq!(aging["items"].as_array().unwrap().len(), 1, "{aging}");

    let path = format!("/api/invoices/{invoice}/collection-ticket");
    let (status, first) = app.post_json(&o.finance, &path, &json!(null), None).await;
    assert_eq!(status, 200, "{first}");
    let (status, again) = app.post_json(&o.finance, &path, &json!(null), None).await;
    assert_eq!(status, 200);
    assert_eq!(
        first["ticket_id"], again["ticket_id"],
        "one collection ticket per invoice"
    );
    let (status, _) = app
        .post_json(
            &o.finance,
            &format!("/api/invoices/{}/collection-ticket", Uuid::new_v4()),
            &json!(null),
            None,
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let doc: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/leads", "post"),
        ("/api/leads", "get"),
        ("/api/leads/{id}", "patch"),
        ("/api/leads/{id}", "get"),
        ("/api/leads/{id}/assign", "post"),
        ("/api/tickets", "post"),
        ("/api/tickets", "get"),
        ("/api/tickets/{id}", "patch"),
        ("/api/tickets/{id}", "get"),
        ("/api/tickets/{id}/messages", "post"),
        ("/api/tickets/{id}/attachments", "post"),
        ("/api/kpi/targets", "post"),
        ("/api/kpi/entries", "post"),
        ("/api/kpi/import", "post"),
        ("/api/kpi/evidence", "post"),
        ("/api/kpi/actuals", "get"),
        ("/api/imports", "post"),
        ("/api/imports/{id}/process", "post"),
        ("/api/imports/{id}", "get"),
        ("/api/invoices", "post"),
        ("/api/invoices", "get"),
        ("/api/invoices/{id}", "get"),
        ("/api/payments", "post"),
        ("/api/invoices/{id}/collection-ticket", "post"),
        ("/api/ar/aging", "get"),
        ("/api/objects", "post"),
        ("/api/objects/{id}", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    let post = &paths["/api/leads"]["post"];
    assert!(post["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "Idempotency-Key"));
    assert!(doc["components"]["schemas"]["ErrorResponse"].is_object());
}
