//! Changing and merging customers over HTTP: PATCH /api/customers/{id}
//! (a strict body, the dedup keys kept unique, a conflict naming the other
//! customer only to a caller who may read it) and POST
//! /api/customers/{id}/merge (everything pointing at the duplicate moves,
//! invoice numbers untouched, the duplicate's audit history found from the
//! survivor, the roles of customer_editable, crossing merges without a
//! deadlock, and no foreign key to customers left unhandled).

use bizos_bff::auth::Caller;
use bizos_tests::{spawn_app, TestApp, TestDb};
use serde_json::{json, Value};

fn s(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {v}"))
        .to_owned()
}

fn field(body: &Value) -> Option<&str> {
    body["error"]["field"].as_str()
}

fn message(body: &Value) -> String {
    body["error"]["message"].as_str().unwrap_or("").to_owned()
}

fn pdf(len: usize) -> Vec<u8> {
    let mut bytes = b"%PDF-1.7\n".to_vec();
    bytes.extend((0..len).map(|i| (i % 251) as u8));
    bytes
}

/// Two sales teams (manager A with alice, bob alone), the other roles, and
/// a customer of each salesperson (with an NPWP).
struct Org {
    admin: Caller,
    marketing: Caller,
    manager_a: Caller,
    alice: Caller,
    bob: Caller,
    finance: Caller,
    director: Caller,
    customer_a: String,
    customer_b: String,
}

async fn lead(app: &TestApp, who: &Caller, body: Value) -> Value {
    let (status, lead) = app.post_json(who, "/api/leads", &body, None).await;
    assert_eq!(status, 201, "{lead}");
    lead
}

async fn org(db: &TestDb, app: &TestApp) -> Org {
    let tenant = db.create_tenant("acme").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let marketing = db.create_user(tenant, "marketing_manager").await;
    let manager_a = db.create_user(tenant, "sales_manager").await;
    let alice = db.create_user(tenant, "salesperson").await;
    let bob = db.create_user(tenant, "salesperson").await;
    let finance = db.create_user(tenant, "finance").await;
    let director = db.create_user(tenant, "director").await;
    // The department OPS (RFQ tickets).
    db.create_user(tenant, "ops").await;
    db.set_manager(&alice, &manager_a).await;
    let a = lead(
        app,
        &alice,
        json!({"channel": "website", "company_name": "PT Alpha Logistik",
               "npwp": "01.234.567.8-901.000", "city": "Jakarta"}),
    )
    .await;
    let b = lead(
        app,
        &bob,
        json!({"channel": "referral", "company_name": "PT Beta Kargo",
               "npwp": "02.345.678.9-012.000", "contact_email": "halo@beta.co.id"}),
    )
    .await;
    Org {
        admin,
        marketing,
        manager_a,
        alice,
        bob,
        finance,
        director,
        customer_a: s(&a, "customer_id"),
        customer_b: s(&b, "customer_id"),
    }
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&db.owner).await.unwrap()
}

#[tokio::test]
async fn customers_are_changed_with_their_dedup_keys_kept_unique() {
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let o = org(&db, &app).await;
    let path_a = format!("/api/customers/{}", o.customer_a);

    // alice changes her customer; only the fields sent change.
    let (status, c) = app
        .patch_json(
            &o.alice,
            &path_a,
            &json!({"city": "Bandung", "email": "Ops@Alpha.co.id", "payment_terms_days": 45}),
        )
        .await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(
        (
            &c["city"],
            &c["email_norm"],
            &c["payment_terms_days"],
            &c["company_name"]
        ),
        (
            &json!("Bandung"),
            &json!("ops@alpha.co.id"),
            &json!(45),
            &json!("PT Alpha Logistik")
        ),
        "{c}"
    );
    // null clears an optional field.
    let (status, c) = app
        .patch_json(&o.manager_a, &path_a, &json!({"city": null}))
        .await;
    assert_eq!((status, &c["city"]), (200, &Value::Null), "{c}");

    // A strict body: unknown keys and bad values name the field; nothing
    // is written.
    let before = count(
        &db,
        "select count(*) from bizos.audit_log where table_name = 'public.customers'",
    )
    .await;
    for (patch, status_want, field_want) in [
        (json!({"colour": "red"}), 422, "colour"),
        (json!({}), 422, "payload"),
        (json!({"company_name": null}), 422, "company_name"),
        (json!({"company_name": "   "}), 422, "company_name"),
        (json!({"email": "not an address"}), 422, "email"),
        (json!({"phone": "12"}), 422, "phone"),
        (json!({"npwp": "12345"}), 422, "npwp"),
        (
            json!({"payment_terms_days": 400}),
            422,
            "payment_terms_days",
        ),
        (json!({"city": "Medan", "email": "broken@"}), 422, "email"),
    ] {
        let (status, body) = app.patch_json(&o.alice, &path_a, &patch).await;
        assert_eq!(
            (status, field(&body)),
            (status_want, Some(field_want)),
            "{patch}: {body}"
        );
    }
    assert_eq!(
        count(
            &db,
            "select count(*) from bizos.audit_log where table_name = 'public.customers'"
        )
        .await,
        before,
        "a refused change writes nothing"
    );

    // Who: not another team's customer (invisible), not a director (writes
    // nothing), not finance (reads customers, may not change them).
    let path_b = format!("/api/customers/{}", o.customer_b);
    let (status, body) = app
        .patch_json(&o.alice, &path_b, &json!({"city": "Medan"}))
        .await;
    assert_eq!(status, 404, "{body}");
    for who in [&o.director, &o.finance] {
        let (status, body) = app
            .patch_json(who, &path_a, &json!({"city": "Medan"}))
            .await;
        assert_eq!(status, 403, "{body}");
    }

    // Dedup keys: bob's NPWP is taken; alice may not read bob's customer,
    // so the conflict does not say whose it is.
    let (status, body) = app
        .patch_json(&o.alice, &path_a, &json!({"npwp": "023456789012000"}))
        .await;
    assert_eq!((status, field(&body)), (409, Some("npwp")), "{body}");
    assert!(
        message(&body).contains("another customer") && !message(&body).contains(&o.customer_b),
        "{body}"
    );
    // The marketing manager reads both: the conflict names the customer.
    // Without an NPWP customer A would match B's e-mail in the dedup.
    let (status, body) = app
        .patch_json(
            &o.marketing,
            &path_a,
            &json!({"npwp": null, "email": "HALO@beta.co.id"}),
        )
        .await;
    assert_eq!((status, field(&body)), (409, Some("email")), "{body}");
    assert!(
        message(&body).contains(&o.customer_b) && message(&body).contains("PT Beta Kargo"),
        "{body}"
    );
    // With both NPWPs the same e-mail is two legal entities sharing a
    // contact, as the dedup allows.
    let (status, body) = app
        .patch_json(&o.marketing, &path_a, &json!({"email": "halo@beta.co.id"}))
        .await;
    assert_eq!(status, 200, "{body}");
    // A customer without an NPWP may not take a name another customer has.
    let g = lead(
        &app,
        &o.alice,
        json!({"channel": "website", "company_name": "CV Gamma", "contact_phone": "0812-7777-1111"}),
    )
    .await;
    let path_g = format!("/api/customers/{}", s(&g, "customer_id"));
    let (status, body) = app
        .patch_json(
            &o.marketing,
            &path_g,
            &json!({"company_name": "pt  beta kargo"}),
        )
        .await;
    assert_eq!(
        (status, field(&body)),
        (409, Some("company_name")),
        "{body}"
    );
    assert!(message(&body).contains(&o.customer_b), "{body}");
    // Nor a phone another customer without an NPWP has.
    let h = lead(
        &app,
        &o.alice,
        json!({"channel": "website", "company_name": "CV Delta", "contact_phone": "0813-1234-5678"}),
    )
    .await;
    let (status, body) = app
        .patch_json(&o.alice, &path_g, &json!({"phone": "+62 813 1234 5678"}))
        .await;
    assert_eq!((status, field(&body)), (409, Some("phone")), "{body}");
    assert!(message(&body).contains(&s(&h, "customer_id")), "{body}");
    // Unchanged keys are not checked again: the name stays as it is.
    let (status, body) = app
        .patch_json(&o.alice, &path_g, &json!({"company_name": "CV  GAMMA"}))
        .await;
    assert_eq!(status, 200, "{body}");

    // The change is audited.
    assert!(
        count(
            &db,
            &format!(
                "select count(*) from bizos.audit_log where table_name = 'public.customers' and action = 'UPDATE'
                   and record_key ->> 'customer_id' = '{}'",
                o.customer_a
            )
        )
        .await
            >= 3
    );
    let _ = &o.admin;
    let _ = &o.bob;
}

#[tokio::test]
async fn a_duplicate_is_merged_with_everything_pointing_at_it() {
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let o = org(&db, &app).await;

    // alice's duplicate of her customer A: no NPWP, an e-mail, a lead with
    // an RFQ (a ticket related to it), a prospect of hers (as A has one),
    // an activity, a document and an issued invoice.
    let d = lead(
        &app,
        &o.alice,
        json!({"channel": "whatsapp", "company_name": "CV Alfa Logistik Jakarta",
               "contact_email": "finance@alfa.co.id", "contact_phone": "0811-2222-3333",
               "rfq": {"origin": "Jakarta", "destination": "Medan", "commodity": "Kopi",
                       "weight_kg": 100, "dept_target": "OPS"}}),
    )
    .await;
    let dup = s(&d, "customer_id");
    assert_ne!(dup, o.customer_a);
    let dup_lead = s(&d, "lead_id");
    let (status, act) = app
        .post_json(
            &o.alice,
            "/api/activities",
            &json!({"activity_type": "call", "summary": "Called the duplicate", "customer_id": dup}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{act}");
    let (status, doc) = app
        .upload(
            &o.alice,
            &format!("/api/customers/{dup}/documents"),
            &[],
            "npwp.pdf",
            pdf(512),
            None,
        )
        .await;
    assert_eq!(status, 201, "{doc}");
    let today = bizos_tests::tenant_today();
    let (status, inv) = app
        .post_json(
            &o.finance,
            "/api/invoices",
            &json!({"customer_id": dup, "subtotal": 1000000, "tax": 110000,
                    "issue_date": today.to_string()}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{inv}");
    assert_eq!(inv["status"], "ISSUED", "{inv}");
    let invoice_no = s(&inv, "invoice_no");
    // A credit note on the duplicate's invoice moves with it.
    let (status, note) = app
        .post_json(
            &o.finance,
            "/api/credit-notes",
            &json!({"invoice_id": s(&inv, "invoice_id"), "amount": 10000, "reason": "diskon"}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{note}");
    let ticket = s(&d, "ticket_id");

    // Refusals first: nothing moves.
    let merge_a = format!("/api/customers/{}/merge", o.customer_a);
    for (who, body, want_status, want_field) in [
        (
            &o.alice,
            json!({"duplicate_id": o.customer_a}),
            422,
            Some("duplicate_id"),
        ),
        (&o.alice, json!({}), 422, Some("duplicate_id")),
        (
            &o.alice,
            json!({"duplicate_id": dup, "force": true}),
            422,
            Some("force"),
        ),
        // bob reads neither A nor the duplicate.
        (
            &o.bob,
            json!({"duplicate_id": dup}),
            404,
            Some("customer_id"),
        ),
        // alice may not read bob's customer.
        (
            &o.alice,
            json!({"duplicate_id": o.customer_b}),
            404,
            Some("duplicate_id"),
        ),
        // Directors write nothing; finance reads customers but may not change them.
        (&o.director, json!({"duplicate_id": dup}), 403, None),
        (&o.finance, json!({"duplicate_id": dup}), 403, None),
        // Two NPWPs are two legal entities.
        (
            &o.marketing,
            json!({"duplicate_id": o.customer_b}),
            422,
            Some("duplicate_id"),
        ),
    ] {
        let (status, res) = app.post_json(who, &merge_a, &body, None).await;
        assert_eq!(status, want_status, "{body}: {res}");
        if want_field.is_some() && status != 404 {
            assert_eq!(field(&res), want_field, "{body}: {res}");
        }
    }
    assert_eq!(
        count(
            &db,
            &format!("select count(*) from customers where customer_id = '{dup}'")
        )
        .await,
        1
    );

    // alice merges her duplicate into A.
    let (status, merged) = app
        .post_json(&o.alice, &merge_a, &json!({"duplicate_id": dup}), None)
        .await;
    assert_eq!(status, 200, "{merged}");
    assert_eq!(merged["merged_customer_id"], json!(dup), "{merged}");
    let moved = &merged["moved"];
    assert_eq!(
        (
            &moved["prospects"],
            &moved["prospects_folded"],
            &moved["leads"],
            &moved["invoices"],
            &moved["credit_notes"],
            &moved["tickets"],
            &moved["customer_documents"]
        ),
        (
            &json!(1),
            &json!(1),
            &json!(1),
            &json!(1),
            &json!(1),
            &json!(1),
            &json!(1)
        ),
        "{merged}"
    );

    // The duplicate is gone; everything is A's; the invoice keeps its number.
    let (status, _) = app
        .get_json(&o.alice, &format!("/api/customers/{dup}"))
        .await;
    assert_eq!(status, 404);
    let (status, detail) = app
        .get_json(&o.alice, &format!("/api/customers/{}", o.customer_a))
        .await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(
        detail["email"], "finance@alfa.co.id",
        "gaps filled: {detail}"
    );
    assert_eq!(detail["npwp"], "01.234.567.8-901.000", "{detail}");
    let prospects = detail["prospects"].as_array().unwrap();
    assert_eq!(prospects.len(), 1, "one prospect per owner: {detail}");
    let leads: Vec<&str> = detail["leads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["lead_id"].as_str().unwrap())
        .collect();
    assert!(leads.contains(&dup_lead.as_str()), "{detail}");
    assert!(
        detail["leads"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["prospect_id"] == prospects[0]["prospect_id"]),
        "{detail}"
    );
    assert_eq!(detail["documents"].as_array().unwrap().len(), 1, "{detail}");
    let (_, finance_view) = app
        .get_json(&o.finance, &format!("/api/customers/{}", o.customer_a))
        .await;
    assert_eq!(finance_view["invoices"][0]["invoice_no"], json!(invoice_no));
    assert_eq!(
        count(
            &db,
            &format!(
                "select count(*) from tickets where ticket_id = '{ticket}' and related_customer_id = '{}'",
                o.customer_a
            )
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &db,
            &format!(
                "select count(*) from sales_activities where customer_id = '{dup}'
                 union all select count(*) from leads where customer_id = '{dup}'"
            )
        )
        .await,
        0
    );

    // The duplicate's audit history is found from the survivor.
    let (status, merges) = app
        .get_json(&o.alice, &format!("/api/customers/{}/merges", o.customer_a))
        .await;
    assert_eq!(status, 200, "{merges}");
    assert_eq!(
        merges["items"][0]["merged_customer_id"],
        json!(dup),
        "{merges}"
    );
    assert_eq!(
        merges["items"][0]["company_name"], "CV Alfa Logistik Jakarta",
        "{merges}"
    );
    let (status, audit) = app
        .get_json(
            &o.admin,
            &format!("/api/audit?table=customers&record={dup}"),
        )
        .await;
    assert_eq!(status, 200, "{audit}");
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"INSERT") && actions.contains(&"DELETE"),
        "{audit}"
    );
    let (status, audit) = app
        .get_json(&o.admin, "/api/audit?table=customer_merges")
        .await;
    assert_eq!(status, 200, "{audit}");
    assert!(!audit["items"].as_array().unwrap().is_empty(), "{audit}");

    // The dedup keys are the survivor's: a new lead with the duplicate's
    // e-mail finds A.
    let again = lead(
        &app,
        &o.alice,
        json!({"channel": "email", "company_name": "Alfa", "contact_email": "FINANCE@alfa.co.id"}),
    )
    .await;
    assert_eq!(again["customer_id"], json!(o.customer_a), "{again}");

    // Merging again: the duplicate is gone.
    let (status, res) = app
        .post_json(&o.alice, &merge_a, &json!({"duplicate_id": dup}), None)
        .await;
    assert_eq!(status, 404, "{res}");
    assert!(message(&res).starts_with("duplicate_id:"), "{res}");
}

#[tokio::test]
async fn crossing_merges_wait_for_each_other() {
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let o = org(&db, &app).await;
    for round in 0..5 {
        let x = lead(
            &app,
            &o.marketing,
            json!({"channel": "website", "company_name": format!("CV Silang {round}"),
                   "contact_email": format!("x{round}@silang.co.id")}),
        )
        .await;
        let y = lead(
            &app,
            &o.marketing,
            json!({"channel": "website", "company_name": format!("CV Lintang {round}"),
                   "contact_email": format!("y{round}@silang.co.id")}),
        )
        .await;
        let (x, y) = (s(&x, "customer_id"), s(&y, "customer_id"));
        let into_x = format!("/api/customers/{x}/merge");
        let into_y = format!("/api/customers/{y}/merge");
        let bx = json!({"duplicate_id": y});
        let by = json!({"duplicate_id": x});
        let ((s1, r1), (s2, r2)) = tokio::join!(
            app.post_json(&o.marketing, &into_x, &bx, None),
            app.post_json(&o.admin, &into_y, &by, None),
        );
        let mut got = [s1, s2];
        got.sort();
        assert_eq!(got, [200, 404], "{r1} {r2}");
        assert_eq!(
            count(
                &db,
                &format!("select count(*) from customers where customer_id in ('{x}', '{y}')")
            )
            .await,
            1
        );
    }
}

#[tokio::test]
async fn every_foreign_key_to_customers_is_handled_by_the_merge() {
    let db = TestDb::new().await;
    let unhandled: Vec<String> = sqlx::query_scalar("select unnest(customer_merge_unhandled())")
        .fetch_all(&db.owner)
        .await
        .unwrap();
    assert!(
        unhandled.is_empty(),
        "foreign keys to customers that customer_merge does not handle \
         (sql/api/customers.sql, customer_merge_references): {unhandled:?}"
    );

    // A new table pointing at customers stops the merge before it moves
    // anything (its rows would otherwise go with the duplicate).
    let app = spawn_app(&db).await;
    let o = org(&db, &app).await;
    let d = lead(
        &app,
        &o.alice,
        json!({"channel": "website", "company_name": "CV Alfa", "contact_email": "a@alfa.co.id"}),
    )
    .await;
    sqlx::raw_sql(
        "create table customer_notes (tenant_id uuid not null, note_id uuid primary key,
           customer_id uuid not null,
           constraint customer_notes_customer_id_fkey foreign key (tenant_id, customer_id)
             references customers (tenant_id, customer_id) on delete cascade)",
    )
    .execute(&db.owner)
    .await
    .unwrap();
    let (status, res) = app
        .post_json(
            &o.alice,
            &format!("/api/customers/{}/merge", o.customer_a),
            &json!({"duplicate_id": s(&d, "customer_id")}),
            None,
        )
        .await;
    assert_eq!(status, 500, "{res}");
    assert_eq!(
        count(
            &db,
            &format!(
                "select count(*) from customers where customer_id = '{}'",
                s(&d, "customer_id")
            )
        )
        .await,
        1
    );
}
