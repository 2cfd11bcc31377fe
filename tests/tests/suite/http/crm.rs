//! Over HTTP: customers (list, detail with prospects, leads,
//! invoices and documents), prospect stage changes, sales activities and
//! visits with their photo in bucket prospect-evidence. Happy paths, bad
//! inputs naming the field, 403 without the permission, and row-level
//! security (a salesperson never sees another team's customer).

use bizos_bff::auth::Caller;
use bizos_tests::{spawn_app, TestApp, TestDb};
use serde_json::{json, Value};
use uuid::Uuid;

fn pdf(len: usize) -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n".to_vec();
    bytes.extend((0..len).map(|i| (i % 251) as u8));
    bytes
}

/// A PNG header and some bytes (sniffed as image/png).
fn png() -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0".to_vec();
    bytes.extend((0..512).map(|i| (i % 199) as u8));
    bytes
}

fn s(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {v}"))
        .to_owned()
}

fn field(body: &Value) -> Option<&str> {
    body["error"]["field"].as_str()
}

fn items(body: &Value) -> Vec<Value> {
    body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("items in {body}"))
        .clone()
}

fn ids(body: &Value, key: &str) -> Vec<String> {
    items(body).iter().map(|i| s(i, key)).collect()
}

/// Two sales teams (manager A with alice, manager B with bob), and the
/// other roles; alice and bob each have a lead (customer and prospect).
struct Org {
    admin: Caller,
    marketing: Caller,
    manager_a: Caller,
    alice: Caller,
    manager_b: Caller,
    bob: Caller,
    ops: Caller,
    finance: Caller,
    director: Caller,
    /// alice's customer and prospect
    customer_a: String,
    prospect_a: String,
    lead_a: String,
    /// bob's customer and prospect
    customer_b: String,
    prospect_b: String,
}

async fn org(db: &TestDb, app: &TestApp) -> Org {
    let tenant = db.create_tenant("acme").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let marketing = db.create_user(tenant, "marketing_manager").await;
    let manager_a = db.create_user(tenant, "sales_manager").await;
    let alice = db.create_user(tenant, "salesperson").await;
    let manager_b = db.create_user(tenant, "sales_manager").await;
    let bob = db.create_user(tenant, "salesperson").await;
    let ops = db.create_user(tenant, "ops").await;
    let finance = db.create_user(tenant, "finance").await;
    let director = db.create_user(tenant, "director").await;
    db.set_manager(&alice, &manager_a).await;
    db.set_manager(&bob, &manager_b).await;
    let (status, a) = app
        .post_json(
            &alice,
            "/api/leads",
            &json!({"channel": "website", "company_name": "PT Alpha Logistik",
                    "npwp": "01.234.567.8-901.000", "city": "Jakarta"}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{a}");
    let (status, b) = app
        .post_json(
            &bob,
            "/api/leads",
            &json!({"channel": "referral", "company_name": "PT Beta Kargo",
                    "npwp": "02.345.678.9-012.000", "city": "Surabaya"}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{b}");
    Org {
        admin,
        marketing,
        manager_a,
        alice,
        manager_b,
        bob,
        ops,
        finance,
        director,
        customer_a: s(&a, "customer_id"),
        prospect_a: s(&a, "prospect_id"),
        lead_a: s(&a, "lead_id"),
        customer_b: s(&b, "customer_id"),
        prospect_b: s(&b, "prospect_id"),
    }
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&db.owner).await.unwrap()
}

#[tokio::test]
async fn customers_are_listed_and_read_with_what_the_caller_may_see() {
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let o = org(&db, &app).await;

    // Lists: each salesperson and their manager see their team's customer
    // only; CRM managers, finance and directors see both.
    for (who, want) in [
        (&o.alice, vec![&o.customer_a]),
        (&o.manager_a, vec![&o.customer_a]),
        (&o.bob, vec![&o.customer_b]),
        (&o.manager_b, vec![&o.customer_b]),
        (&o.marketing, vec![&o.customer_b, &o.customer_a]),
        (&o.finance, vec![&o.customer_b, &o.customer_a]),
        (&o.director, vec![&o.customer_b, &o.customer_a]),
    ] {
        let (status, page) = app.get_json(who, "/api/customers").await;
        assert_eq!(status, 200, "{page}");
        let got = ids(&page, "customer_id");
        let want: Vec<String> = want.into_iter().cloned().collect();
        assert_eq!(got, want, "{:?}: {page}", who.claims["app_role"]);
    }
    let (_, page) = app.get_json(&o.ops, "/api/customers").await;
    assert_eq!(items(&page).len(), 0, "ops read no customers: {page}");

    // Filters and pages.
    let (status, page) = app
        .get_json(&o.marketing, "/api/customers?q=beta&limit=1")
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        ids(&page, "customer_id"),
        std::slice::from_ref(&o.customer_b)
    );
    assert!(page["next_cursor"].is_null(), "{page}");
    let (_, page) = app
        .get_json(&o.marketing, "/api/customers?city=Jakarta")
        .await;
    assert_eq!(
        ids(&page, "customer_id"),
        std::slice::from_ref(&o.customer_a)
    );
    let (_, page) = app.get_json(&o.marketing, "/api/customers?limit=1").await;
    let cursor = page["next_cursor"].as_str().expect("a second page");
    let (_, next) = app
        .get_json(
            &o.marketing,
            &format!("/api/customers?limit=1&after={cursor}"),
        )
        .await;
    assert_eq!(
        ids(&next, "customer_id"),
        std::slice::from_ref(&o.customer_a)
    );
    for (query, field_name) in [
        ("limit=0", "limit"),
        ("after=junk", "after"),
        ("created_from=yesterday", "query"),
    ] {
        let (status, body) = app
            .get_json(&o.alice, &format!("/api/customers?{query}"))
            .await;
        assert_eq!(
            (status, field(&body)),
            (400, Some(field_name)),
            "{query}: {body}"
        );
    }

    // An invoice of alice's customer and a document of it.
    let today = bizos_tests::tenant_today();
    let (status, inv) = app
        .post_json(
            &o.finance,
            "/api/invoices",
            &json!({"customer_id": o.customer_a, "subtotal": 1000000, "tax": 110000,
                    "issue_date": today.to_string()}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{inv}");
    let (status, doc) = app
        .upload(
            &o.alice,
            &format!("/api/customers/{}/documents", o.customer_a),
            &[],
            "kontrak.pdf",
            pdf(2048),
            None,
        )
        .await;
    assert_eq!(status, 201, "{doc}");
    assert_eq!(doc["object"]["bucket"], "customer-documents", "{doc}");
    let object = s(&doc, "object_id");

    // The detail, as alice: everything of her customer.
    let path_a = format!("/api/customers/{}", o.customer_a);
    let (status, detail) = app.get_json(&o.alice, &path_a).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["company_name"], "PT Alpha Logistik");
    assert_eq!(
        ids(&json!({"items": detail["prospects"]}), "prospect_id"),
        std::slice::from_ref(&o.prospect_a)
    );
    assert_eq!(
        ids(&json!({"items": detail["leads"]}), "lead_id"),
        std::slice::from_ref(&o.lead_a)
    );
    assert_eq!(
        ids(&json!({"items": detail["invoices"]}), "invoice_id"),
        [s(&inv, "invoice_id")]
    );
    assert_eq!(
        detail["invoices"][0]["outstanding"].as_f64(),
        Some(1110000.0),
        "{detail}"
    );
    assert_eq!(
        ids(&json!({"items": detail["documents"]}), "object_id"),
        std::slice::from_ref(&object)
    );
    assert_eq!(detail["documents"][0]["file_name"], "kontrak.pdf");

    // Finance reads the customer and its invoices, not the pipeline;
    // marketing the pipeline, not the invoices.
    let (status, seen) = app.get_json(&o.finance, &path_a).await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(
        (
            seen["invoices"].as_array().map(Vec::len),
            seen["prospects"].as_array().map(Vec::len)
        ),
        (Some(1), Some(0)),
        "{seen}"
    );
    let (_, seen) = app.get_json(&o.marketing, &path_a).await;
    assert_eq!(
        (
            seen["invoices"].as_array().map(Vec::len),
            seen["prospects"].as_array().map(Vec::len)
        ),
        (Some(0), Some(1)),
        "{seen}"
    );

    // Another team's customer does not exist for alice or her manager;
    // bob's team reads it.
    let path_b = format!("/api/customers/{}", o.customer_b);
    for who in [&o.alice, &o.manager_a, &o.ops] {
        let (status, body) = app.get_json(who, &path_b).await;
        assert_eq!(status, 404, "{body}");
    }
    let (status, seen) = app.get_json(&o.bob, &path_b).await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["documents"], json!([]), "{seen}");
    let (status, _) = app
        .get_json(&o.alice, &format!("/api/customers/{}", Uuid::new_v4()))
        .await;
    assert_eq!(status, 404);
    let (status, body) = app.get_json(&o.alice, "/api/customers/not-an-id").await;
    assert_eq!(status, 400, "{body}");

    // The document's file follows the customer: alice's manager downloads
    // it, bob does not see it.
    let file = format!("/api/objects/{object}");
    assert_eq!(app.get_as(&o.manager_a, &file).await.status(), 200);
    assert_eq!(app.get_as(&o.finance, &file).await.status(), 200);
    assert_eq!(app.get_as(&o.bob, &file).await.status(), 404);

    // Attaching: to a customer the caller does not read (404), without the
    // permission (403: ops, directors), a type the bucket refuses (415).
    let docs_b = format!("/api/customers/{}/documents", o.customer_b);
    let (status, body) = app
        .upload(&o.alice, &docs_b, &[], "x.pdf", pdf(10), None)
        .await;
    assert_eq!(status, 404, "{body}");
    for who in [&o.ops, &o.director] {
        let (status, body) = app
            .upload(
                who,
                &format!("{path_a}/documents"),
                &[],
                "x.pdf",
                pdf(10),
                None,
            )
            .await;
        assert_eq!(status, 403, "{body}");
    }
    let (status, body) = app
        .upload(
            &o.alice,
            &format!("{path_a}/documents"),
            &[],
            "x.exe",
            b"MZ\x90\x00binary".to_vec(),
            None,
        )
        .await;
    assert_eq!(status, 415, "{body}");
    assert_eq!(
        count(&db, "select count(*) from customer_documents").await,
        1,
        "only the first document was attached"
    );
}

#[tokio::test]
async fn prospects_move_through_their_stages() {
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let o = org(&db, &app).await;
    let path = format!("/api/prospects/{}/stage", o.prospect_a);

    let (status, moved) = app
        .post_json(
            &o.alice,
            &path,
            &json!({"stage": "contacted", "note": "Called the buyer"}),
            None,
        )
        .await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(
        (moved["from"].as_str(), moved["to"].as_str()),
        (Some("NEW"), Some("CONTACTED"))
    );
    // The history and the derived activity are the database's.
    assert_eq!(
        count(
            &db,
            "select count(*) from prospect_stage_history where to_stage = 'CONTACTED'"
        )
        .await,
        1
    );
    let (_, acts) = app
        .get_json(&o.alice, "/api/activities?activity_type=stage_change")
        .await;
    assert_eq!(items(&acts).len(), 1, "{acts}");
    assert_eq!(items(&acts)[0]["source"], "derived");

    for (body, want) in [
        (json!({"stage": "WON"}), "stage"),
        (json!({"stage": "SHIPPED"}), "stage"),
        (json!({"stage": ""}), "stage"),
        (json!({}), "stage"),
        (json!({"stage": "QUALIFIED", "colour": "red"}), "colour"),
        (json!({"stage": "QUALIFIED", "note": 5}), "note"),
    ] {
        let (status, err) = app.post_json(&o.alice, &path, &body, None).await;
        assert_eq!((status, field(&err)), (422, Some(want)), "{body}: {err}");
    }
    // Another team's prospect is invisible; roles without prospect.stage
    // are refused.
    let (status, err) = app
        .post_json(
            &o.alice,
            &format!("/api/prospects/{}/stage", o.prospect_b),
            &json!({"stage": "CONTACTED"}),
            None,
        )
        .await;
    assert_eq!(status, 404, "{err}");
    for who in [&o.finance, &o.marketing, &o.ops, &o.director] {
        let (status, err) = app
            .post_json(who, &path, &json!({"stage": "QUALIFIED"}), None)
            .await;
        assert_eq!(status, 403, "{err}");
    }
    // Nothing moved meanwhile; the manager moves their team's prospect.
    let stages: Vec<String> = sqlx::query_scalar(
        "select stage from prospects where prospect_id in ($1::uuid, $2::uuid)
          order by prospect_id = $1::uuid desc",
    )
    .bind(&o.prospect_a)
    .bind(&o.prospect_b)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert_eq!(stages, ["CONTACTED", "NEW"]);
    let (status, moved) = app
        .post_json(&o.manager_a, &path, &json!({"stage": "QUALIFIED"}), None)
        .await;
    assert_eq!(
        (status, moved["to"].as_str()),
        (200, Some("QUALIFIED")),
        "{moved}"
    );
}

#[tokio::test]
async fn activities_and_visits_are_logged_with_photo_and_gps() {
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let o = org(&db, &app).await;

    // A call about alice's customer.
    let (status, call) = app
        .post_json(
            &o.alice,
            "/api/activities",
            &json!({"activity_type": "Call", "summary": "Asked about rates", "customer_id": o.customer_a}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{call}");
    assert_eq!(
        (
            call["activity_type"].as_str(),
            call["source"].as_str(),
            call["owner_user_id"].as_str()
        ),
        (
            Some("call"),
            Some("manual"),
            Some(o.alice.user_id.to_string().as_str())
        ),
        "{call}"
    );
    // Through the lead: its prospect and customer come with it.
    let (status, note) = app
        .post_json(
            &o.alice,
            "/api/activities",
            &json!({"activity_type": "note", "summary": "Prefers e-mail", "lead_id": o.lead_a,
                    "occurred_at": "2026-01-05T09:30:00+07:00"}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{note}");
    assert_eq!(
        (note["customer_id"].as_str(), note["prospect_id"].as_str()),
        (Some(o.customer_a.as_str()), Some(o.prospect_a.as_str())),
        "{note}"
    );
    let at: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(note["occurred_at"].clone()).unwrap();
    assert_eq!(at.to_rfc3339(), "2026-01-05T02:30:00+00:00", "{note}");

    // A visit in one request: fields and the photo.
    let (status, visit) = app
        .upload(
            &o.alice,
            "/api/visits",
            &[
                ("summary", "Visited the warehouse"),
                ("customer_id", o.customer_a.as_str()),
                ("gps_lat", "-6.2088"),
                ("gps_lng", "106.8456"),
            ],
            "gudang.png",
            png(),
            Some("visit-1"),
        )
        .await;
    assert_eq!(status, 201, "{visit}");
    assert_eq!(visit["activity_type"], "visit");
    assert_eq!(visit["object"]["bucket"], "prospect-evidence", "{visit}");
    assert_eq!(
        visit["photo_object_id"], visit["object"]["object_id"],
        "{visit}"
    );
    assert_eq!(
        visit["photo_object_key"], visit["object"]["object_key"],
        "{visit}"
    );
    assert_eq!(
        (visit["gps_lat"].as_f64(), visit["gps_lng"].as_f64()),
        (Some(-6.2088), Some(106.8456))
    );
    // A retry with the same key answers the same visit, once.
    let (status, again) = app
        .upload(
            &o.alice,
            "/api/visits",
            &[
                ("summary", "Visited the warehouse"),
                ("customer_id", o.customer_a.as_str()),
                ("gps_lat", "-6.2088"),
                ("gps_lng", "106.8456"),
            ],
            "gudang.png",
            png(),
            Some("visit-1"),
        )
        .await;
    assert_eq!(
        (status, &again["activity_id"]),
        (201, &visit["activity_id"]),
        "{again}"
    );
    assert_eq!(
        count(
            &db,
            "select count(*) from sales_activities where activity_type = 'visit'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &db,
            "select count(*) from objects where bucket = 'prospect-evidence'"
        )
        .await,
        1
    );

    // A visit through JSON with a photo uploaded first.
    let (status, photo) = app
        .upload(
            &o.alice,
            "/api/objects",
            &[("bucket", "prospect-evidence")],
            "foto.png",
            png(),
            None,
        )
        .await;
    assert_eq!(status, 201, "{photo}");
    let photo_id = s(&photo, "object_id");
    let visit_body = json!({"activity_type": "visit", "summary": "Second visit", "prospect_id": o.prospect_a,
                            "gps_lat": -6.2, "gps_lng": "106.8", "photo_object_id": photo_id});
    let (status, second) = app
        .post_json(&o.alice, "/api/activities", &visit_body, None)
        .await;
    assert_eq!(status, 201, "{second}");
    assert_eq!(second["customer_id"].as_str(), Some(o.customer_a.as_str()));

    // Bad inputs, each naming its field, nothing written.
    let before = count(&db, "select count(*) from sales_activities").await;
    let with = |k: &str, v: Value| {
        let mut b = json!({"activity_type": "visit", "summary": "Visit", "customer_id": o.customer_a,
                           "gps_lat": -6.2, "gps_lng": 106.8});
        b[k] = v;
        b
    };
    let (status, other_photo) = app
        .upload(
            &o.alice,
            "/api/objects",
            &[("bucket", "customer-documents")],
            "npwp.pdf",
            pdf(100),
            None,
        )
        .await;
    assert_eq!(status, 201, "{other_photo}");
    let (status, bobs_photo) = app
        .upload(
            &o.bob,
            "/api/objects",
            &[("bucket", "prospect-evidence")],
            "b.png",
            png(),
            None,
        )
        .await;
    assert_eq!(status, 201, "{bobs_photo}");
    for (body, want_status, want) in [
        (with("summary", json!("x")), 422, Some("photo_object_id")),
        (
            with("photo_object_id", json!(photo_id)),
            409,
            Some("photo_object_id"),
        ),
        (
            with("photo_object_id", other_photo["object_id"].clone()),
            422,
            Some("photo_object_id"),
        ),
        // Someone else's upload is not even visible.
        (
            with("photo_object_id", bobs_photo["object_id"].clone()),
            404,
            None,
        ),
        (with("gps_lat", json!(91)), 422, Some("gps_lat")),
        (with("gps_lng", json!(-180.5)), 422, Some("gps_lng")),
        (with("gps_lng", json!("east")), 422, Some("gps_lng")),
        (with("gps_lat", Value::Null), 422, Some("gps_lat")),
        (
            with("activity_type", json!("stage_change")),
            422,
            Some("activity_type"),
        ),
        (
            with("activity_type", json!("pigeon")),
            422,
            Some("activity_type"),
        ),
        (
            with("occurred_at", json!("2999-01-01T00:00:00Z")),
            422,
            Some("occurred_at"),
        ),
        (
            with("occurred_at", json!("yesterday")),
            422,
            Some("occurred_at"),
        ),
        (
            with("occurred_at", json!("2026-01-05T09:30:00")),
            422,
            Some("occurred_at"),
        ),
        (
            json!({"activity_type": "call", "summary": "x", "customer_id": o.customer_b}),
            404,
            None,
        ),
        (
            json!({"activity_type": "call", "summary": "x", "customer_id": null}),
            422,
            Some("customer_id"),
        ),
        (
            json!({"activity_type": "call", "summary": "x", "prospect_id": o.prospect_b}),
            404,
            None,
        ),
        (with("summary", json!("  ")), 422, Some("summary")),
        (with("colour", json!("red")), 422, Some("colour")),
    ] {
        let (status, err) = app
            .post_json(&o.alice, "/api/activities", &body, None)
            .await;
        assert_eq!((status, field(&err)), (want_status, want), "{body}: {err}");
    }
    // The prospect and the customer must agree.
    let mut mixed = visit_body.clone();
    mixed["customer_id"] = json!(Uuid::new_v4());
    mixed["activity_type"] = json!("meeting");
    let (status, err) = app
        .post_json(&o.alice, "/api/activities", &mixed, None)
        .await;
    assert_eq!((status, field(&err)), (422, Some("customer_id")), "{err}");
    // A visit form without its position or its file, or with a bad field.
    let visit_fields = [
        ("summary", "Visit"),
        ("customer_id", o.customer_a.as_str()),
        ("gps_lat", "-6.2"),
    ];
    let (status, err) = app
        .upload(&o.alice, "/api/visits", &visit_fields, "v.png", png(), None)
        .await;
    assert_eq!((status, field(&err)), (422, Some("gps_lng")), "{err}");
    let (status, err) = app
        .upload(
            &o.alice,
            "/api/visits",
            &[
                ("summary", "Visit"),
                ("customer_id", o.customer_a.as_str()),
                ("gps_lat", "-6.2"),
                ("gps_lng", "106.8"),
                ("weather", "sunny"),
            ],
            "v.png",
            png(),
            None,
        )
        .await;
    assert_eq!((status, field(&err)), (422, Some("weather")), "{err}");
    let (status, err) = app
        .upload(
            &o.alice,
            "/api/visits",
            &[
                ("summary", "Visit"),
                ("customer_id", o.customer_a.as_str()),
                ("gps_lat", "-6.2"),
                ("gps_lng", "106.8"),
            ],
            "v.exe",
            b"MZ\x90\x00binary".to_vec(),
            None,
        )
        .await;
    assert_eq!(status, 415, "{err}");
    let res = app
        .request_as(&o.alice, reqwest::Method::POST, "/api/visits", None)
        .multipart(reqwest::multipart::Form::new().text("summary", "Visit"))
        .send()
        .await
        .unwrap();
    let (status, err) = bizos_tests::status_and_json(res).await;
    assert_eq!((status, field(&err)), (422, Some("file")), "{err}");
    assert_eq!(
        count(&db, "select count(*) from sales_activities").await,
        before,
        "nothing half-written"
    );

    // Roles without activity.create.
    for who in [&o.ops, &o.finance, &o.director] {
        let (status, err) = app
            .post_json(
                who,
                "/api/activities",
                &json!({"activity_type": "call", "summary": "x", "customer_id": o.customer_a}),
                None,
            )
            .await;
        assert_eq!(status, 403, "{err}");
    }

    // Lists: alice her own, her manager the team's, bob none of them.
    let (status, mine) = app
        .get_json(&o.alice, "/api/activities?source=manual")
        .await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(items(&mine).len(), 4, "{mine}");
    let (_, team) = app
        .get_json(
            &o.manager_a,
            &format!(
                "/api/activities?activity_type=visit&customer_id={}",
                o.customer_a
            ),
        )
        .await;
    assert_eq!(items(&team).len(), 2, "{team}");
    let (_, bobs) = app.get_json(&o.bob, "/api/activities").await;
    assert!(
        items(&bobs)
            .iter()
            .all(|a| a["owner_user_id"] == json!(o.bob.user_id)),
        "{bobs}"
    );
    let (status, err) = app
        .get_json(&o.alice, "/api/activities?activity_type=pigeon")
        .await;
    assert_eq!(status, 400, "{err}");
    // The visit's photo follows the activity: the manager downloads it,
    // bob does not see it.
    let photo = format!("/api/objects/{}", s(&visit, "photo_object_id"));
    assert_eq!(app.get_as(&o.manager_a, &photo).await.status(), 200);
    assert_eq!(app.get_as(&o.admin, &photo).await.status(), 200);
    assert_eq!(app.get_as(&o.bob, &photo).await.status(), 404);
    assert_eq!(app.get_as(&o.manager_b, &photo).await.status(), 404);
}
