//! Dedup keeps one customer per company but never opens a
//! window onto a customer the caller may not read. A salesperson who types
//! another team's customer's e-mail, phone or NPWP gets a lead handed over
//! to that customer's owner, learns nothing of the stored customer (no id,
//! no NPWP/e-mail/phone, no invoices), and candidates list only customers
//! the caller may read. Through HTTP and through SQL as the user.

use bizos_bff::auth::Caller;
use bizos_tests::{code, rpc, spawn_app, TestApp, TestDb};
use serde_json::{json, Value};
use uuid::Uuid;

// Bob's customer as stored (real-looking identifiers the detector finds).
const STORED_NPWP: &str = "01.681.742.1-093.000";
const STORED_EMAIL: &str = "keuangan@rahasia-bersama.co.id";
const STORED_PHONE: &str = "0812-7766-5544";
// The same identifiers as Alice types them (other spelling, same keys).
const TYPED_NPWP: &str = "016817421093000";
const TYPED_EMAIL: &str = "KEUANGAN@Rahasia-Bersama.co.id";
const TYPED_PHONE: &str = "+62 812 7766 5544";

struct Org {
    marketing: Caller,
    manager_a: Caller,
    alice: Caller,
    bob: Caller,
    finance: Caller,
}

async fn org(db: &TestDb) -> Org {
    let tenant = db.create_tenant("acme").await;
    let marketing = db.create_user(tenant, "marketing_manager").await;
    let manager_a = db.create_user(tenant, "sales_manager").await;
    let alice = db.create_user(tenant, "salesperson").await;
    let manager_b = db.create_user(tenant, "sales_manager").await;
    let bob = db.create_user(tenant, "salesperson").await;
    let finance = db.create_user(tenant, "finance").await;
    for (member, boss) in [(&alice, &manager_a), (&bob, &manager_b)] {
        db.set_manager(member, boss).await;
    }
    sqlx::query(
        "insert into profiles (tenant_id, user_id, email, full_name, app_role, dept_code)
         values ($1, gen_random_uuid(), 'ops-jkt@example.test', 'Ops JKT', 'ops', 'OPS-JKT')",
    )
    .bind(tenant)
    .execute(&db.owner)
    .await
    .unwrap();
    Org {
        marketing,
        manager_a,
        alice,
        bob,
        finance,
    }
}

fn uuid_of(v: &Value, key: &str) -> Uuid {
    v[key]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{key} in {v}"))
}

/// The identifiers in `text` as the detector finds them, normalised (e-mail
/// lower case; numbers as digits with 62 → 0), so spellings compare equal.
async fn pii(db: &TestDb, text: &str) -> Vec<String> {
    // Offsets are counted on ASCII text.
    let ascii: String = text
        .chars()
        .map(|c| if c.is_ascii() { c } else { '?' })
        .collect();
    let spans: Vec<(String, String)> = sqlx::query_as(
        "select s->>'type', substr($1, (s->>'start')::int + 1, (s->>'end')::int - (s->>'start')::int)
           from jsonb_array_elements(bizos.pii_detect($1)) s",
    )
    .bind(&ascii)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    spans.into_iter().map(|(t, v)| normalise(&t, &v)).collect()
}

fn normalise(kind: &str, value: &str) -> String {
    if kind == "EMAIL" {
        return format!("EMAIL {}", value.to_lowercase());
    }
    let digits: String = value.chars().filter(char::is_ascii_digit).collect();
    let digits = match digits.strip_prefix("62") {
        Some(rest) if kind == "PHONE" => format!("0{rest}"),
        _ => digits,
    };
    format!("{kind} {digits}")
}

/// Every identifier the detector finds in `body` is one the caller typed,
/// and none of the stored spellings appears verbatim unless typed so.
async fn assert_only_typed(db: &TestDb, body: &str, typed: &[&str], what: &str) {
    // What the detector finds in the typed values, alone and as JSON.
    let mut allowed = pii(db, &json!(typed).to_string()).await;
    for t in typed {
        allowed.extend(pii(db, t).await);
        allowed.extend(pii(db, &json!({ "npwp": t, "contact_email": t }).to_string()).await);
    }
    for found in pii(db, body).await {
        assert!(
            allowed.contains(&found),
            "{what}: {found} was not typed by the caller: {body}"
        );
    }
    for stored in [STORED_NPWP, STORED_EMAIL, STORED_PHONE] {
        // (A typed value may come back normalised, i.e. spelled as stored.)
        let same_as_typed = pii(db, stored).await.iter().all(|n| allowed.contains(n));
        if !same_as_typed {
            assert!(!body.contains(stored), "{what}: {stored} in {body}");
        }
    }
}

/// Bob's customer with a lead, a prospect and an issued invoice.
async fn bobs_customer(db: &TestDb, app: &TestApp, o: &Org) -> (Uuid, Uuid) {
    let (status, lead) = app
        .post_json(
            &o.bob,
            "/api/leads",
            &json!({"channel": "referral", "company_name": "PT Rahasia Bersama", "npwp": STORED_NPWP,
                    "contact_email": STORED_EMAIL, "contact_phone": STORED_PHONE}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{lead}");
    assert_eq!(lead["handed_over"], false, "{lead}");
    let customer = uuid_of(&lead, "customer_id");
    let invoice = rpc(
        db,
        &o.finance,
        "select invoice_create(jsonb_build_object('customer_id', $1 #>> '{}', 'subtotal', 1000000, 'tax', 110000))",
        &[json!(customer)],
    )
    .await
    .expect("invoice");
    (customer, uuid_of(&invoice, "invoice_id"))
}

async fn count_as(db: &TestDb, who: &Caller, sql: &str, id: Uuid) -> i64 {
    let mut tx = db.as_user(who).await;
    let n: i64 = sqlx::query_scalar(sql)
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    n
}

async fn stored(db: &TestDb, customer: Uuid) -> Value {
    sqlx::query_scalar(
        "select jsonb_build_object('n', (select count(*) from customers), 'row',
                to_jsonb(c) - 'updated_at')
           from customers c where c.customer_id = $1",
    )
    .bind(customer)
    .fetch_one(&db.owner)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_lead_on_another_teams_customer_is_handed_over_and_reveals_nothing() {
    let db = TestDb::new().await;
    let o = org(&db).await;
    let app = spawn_app(&db).await;
    let (customer, invoice) = bobs_customer(&db, &app, &o).await;
    let before = stored(&db, customer).await;
    assert_eq!(before["n"], 1);

    // The fixture is readable where it should be: Bob reads the stored
    // identifiers and the invoice (so the checks below are not vacuous).
    let (status, bob_list) = app.get_json(&o.bob, "/api/leads").await;
    assert_eq!(status, 200);
    let bob_lead = uuid_of(&bob_list["items"][0], "lead_id");
    let (_, bob_view) = app
        .get_json(&o.bob, &format!("/api/leads/{bob_lead}"))
        .await;
    assert_eq!(bob_view["customer"]["npwp"], STORED_NPWP, "{bob_view}");
    let sql_inv = "select count(*) from v_invoices where invoice_id = $1";
    assert_eq!(count_as(&db, &o.bob, sql_inv, invoice).await, 1);
    assert_eq!(count_as(&db, &o.alice, sql_inv, invoice).await, 0);

    let cases = [
        json!({"contact_email": TYPED_EMAIL,
               "rfq": {"origin": "Jakarta", "destination": "Surabaya", "dept_target": "OPS-JKT"}}),
        json!({"contact_phone": TYPED_PHONE}),
        json!({"npwp": TYPED_NPWP, "city": "Bandung"}),
    ];
    for (i, extra) in cases.iter().enumerate() {
        let mut body = json!({"channel": "website", "company_name": format!("Rahasia cabang {i}")});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let typed: Vec<&str> = [TYPED_EMAIL, TYPED_PHONE, TYPED_NPWP]
            .into_iter()
            .filter(|t| body.to_string().contains(t))
            .collect();
        let (status, lead) = app.post_json(&o.alice, "/api/leads", &body, None).await;
        assert_eq!(status, 201, "{lead}");
        assert_eq!(lead["handed_over"], true, "{lead}");
        assert_eq!(lead["status"], "ASSIGNED", "{lead}");
        for hidden in [
            "customer_id",
            "prospect_id",
            "candidates",
            "matched_on",
            "customer_created",
        ] {
            assert!(lead.get(hidden).is_none(), "{hidden} in {lead}");
        }
        let text = lead.to_string();
        assert!(!text.contains(&customer.to_string()), "{text}");
        assert_only_typed(&db, &text, &typed, "bundle response").await;
        let lead_id = uuid_of(&lead, "lead_id");

        // Routed to Bob, linked to the one customer, invisible to Alice.
        let (owner, linked, handed): (Option<Uuid>, Uuid, bool) = sqlx::query_as(
            "select sales_owner_user_id, customer_id, handed_over from leads where lead_id = $1",
        )
        .bind(lead_id)
        .fetch_one(&db.owner)
        .await
        .unwrap();
        assert_eq!(
            (owner, linked, handed),
            (Some(o.bob.user_id), customer, true)
        );
        let (status, got) = app
            .get_json(&o.alice, &format!("/api/leads/{lead_id}"))
            .await;
        assert_eq!(status, 404, "{got}");
        let (status, _) = app.get_json(&o.bob, &format!("/api/leads/{lead_id}")).await;
        assert_eq!(status, 200, "Bob gets the lead");

        // The RFQ is Alice's ticket, with only what she typed.
        if let Some(ticket) = lead["ticket_id"].as_str() {
            let (status, t) = app
                .get_json(&o.alice, &format!("/api/tickets/{ticket}"))
                .await;
            assert_eq!(status, 200, "{t}");
            assert!(t["related_customer_id"].is_null(), "{t}");
            assert_only_typed(&db, &t.to_string(), &typed, "RFQ ticket").await;
        }
    }

    // Still one customer, not enriched from Alice's input.
    assert_eq!(stored(&db, customer).await, before);
    // Alice gets no prospect of it, so neither the customer nor its invoice.
    for sql in [
        "select count(*) from customers where customer_id = $1",
        "select count(*) from prospects where customer_id = $1",
        "select count(*) from leads where customer_id = $1",
        "select count(*) from v_invoices where customer_id = $1",
        "select count(*) from v_ar_aging where customer_id = $1",
    ] {
        assert_eq!(count_as(&db, &o.alice, sql, customer).await, 0, "{sql}");
    }
    for path in ["/api/leads", "/api/invoices", "/api/tickets"] {
        let (status, list) = app.get_json(&o.alice, path).await;
        assert_eq!(status, 200, "{path}: {list}");
        let text = list.to_string();
        assert!(!text.contains(&customer.to_string()), "{path}: {text}");
        assert!(!text.contains(&invoice.to_string()), "{path}: {text}");
        assert_only_typed(&db, &text, &[TYPED_EMAIL], path).await;
    }

    // find_or_create_customer directly: no id, nothing but "not visible".
    let v = rpc(
        &db,
        &o.alice,
        "select find_or_create_customer('PT Apa Saja', null, $1 #>> '{}')",
        &[json!(TYPED_EMAIL)],
    )
    .await
    .unwrap();
    assert_eq!(v["customer_id"], Value::Null, "{v}");
    assert_eq!(v["visible"], false, "{v}");
    assert_only_typed(
        &db,
        &v.to_string(),
        &[TYPED_EMAIL],
        "find_or_create_customer",
    )
    .await;
    assert_eq!(stored(&db, customer).await, before);

    // Nor can she take a prospect of it by its id (that would open it).
    let err = rpc(
        &db,
        &o.alice,
        "select to_jsonb(find_or_create_prospect(($1 #>> '{}')::uuid, ($2 #>> '{}')::uuid))",
        &[json!(customer), json!(o.alice.user_id)],
    )
    .await
    .unwrap_err();
    assert_eq!(code(&err), "P0002", "{err}");
    assert_eq!(
        count_as(
            &db,
            &o.alice,
            "select count(*) from customers where customer_id = $1",
            customer
        )
        .await,
        0
    );

    // The visible case is unchanged: Bob types his customer's NPWP again.
    let (status, again) = app
        .post_json(
            &o.bob,
            "/api/leads",
            &json!({"channel": "phone", "company_name": "Rahasia", "npwp": TYPED_NPWP}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["handed_over"], false, "{again}");
    assert_eq!(uuid_of(&again, "customer_id"), customer);
    assert_eq!(again["matched_on"], "npwp");
}

#[tokio::test]
async fn without_a_current_owner_the_lead_waits_unassigned_for_managers() {
    let db = TestDb::new().await;
    let o = org(&db).await;
    let app = spawn_app(&db).await;
    // Marketing's customer, nobody's pipeline yet.
    let (status, m) = app
        .post_json(
            &o.marketing,
            "/api/leads",
            &json!({"channel": "event", "company_name": "PT Tanpa Pemilik", "npwp": STORED_NPWP,
                    "contact_phone": STORED_PHONE}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{m}");
    let customer = uuid_of(&m, "customer_id");
    let (status, lead) = app
        .post_json(
            &o.alice,
            "/api/leads",
            &json!({"channel": "website", "company_name": "Tanpa Pemilik", "npwp": TYPED_NPWP}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{lead}");
    assert_eq!(
        (lead["handed_over"].as_bool(), lead["status"].as_str()),
        (Some(true), Some("NEW")),
        "{lead}"
    );
    assert_only_typed(&db, &lead.to_string(), &[TYPED_NPWP], "bundle response").await;
    let (owner, handed): (Option<Uuid>, bool) =
        sqlx::query_as("select sales_owner_user_id, handed_over from leads where lead_id = $1")
            .bind(uuid_of(&lead, "lead_id"))
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!((owner, handed), (None, true));
    assert_eq!(
        count_as(
            &db,
            &o.alice,
            "select count(*) from customers where customer_id = $1",
            customer
        )
        .await,
        0
    );
    // A manager routes it (no current owner: the managers' call).
    let (status, assigned) = app
        .post_json(
            &o.manager_a,
            &format!("/api/leads/{}/assign", lead["lead_id"].as_str().unwrap()),
            &json!({"salesperson_user_id": o.alice.user_id}),
            None,
        )
        .await;
    assert_eq!(status, 200, "{assigned}");
    assert_eq!(
        count_as(
            &db,
            &o.alice,
            "select count(*) from customers where customer_id = $1",
            customer
        )
        .await,
        1,
        "routed by a manager, the customer is Alice's now"
    );
}

#[tokio::test]
async fn a_manager_cannot_route_another_owners_customer_into_their_team() {
    let db = TestDb::new().await;
    let o = org(&db).await;
    let app = spawn_app(&db).await;
    let (customer, _) = bobs_customer(&db, &app, &o).await;
    // Marketing files an unassigned lead on Bob's customer: it is in the
    // pool every sales manager reads.
    let (status, pool) = app
        .post_json(
            &o.marketing,
            "/api/leads",
            &json!({"channel": "event", "company_name": "Rahasia", "contact_email": TYPED_EMAIL}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{pool}");
    assert_eq!(uuid_of(&pool, "customer_id"), customer);
    let path = format!("/api/leads/{}/assign", pool["lead_id"].as_str().unwrap());
    let (status, err) = app
        .post_json(
            &o.manager_a,
            &path,
            &json!({"salesperson_user_id": o.alice.user_id}),
            None,
        )
        .await;
    assert_eq!(status, 403, "{err}");
    assert_only_typed(&db, &err.to_string(), &[], "assign error").await;
    let sql = "select count(*) from customers where customer_id = $1";
    assert_eq!(count_as(&db, &o.alice, sql, customer).await, 0);
    assert_eq!(count_as(&db, &o.manager_a, sql, customer).await, 0);
    // Its owner's manager chain (or marketing) may route it to Bob.
    let (status, ok) = app
        .post_json(
            &o.marketing,
            &path,
            &json!({"salesperson_user_id": o.bob.user_id}),
            None,
        )
        .await;
    assert_eq!(status, 200, "{ok}");
}

#[tokio::test]
async fn candidates_list_only_customers_the_caller_may_read() {
    let db = TestDb::new().await;
    let o = org(&db).await;
    let (customer, _) = {
        let app = spawn_app(&db).await;
        bobs_customer(&db, &app, &o).await
    };
    let bundle = "select crm_create_lead_bundle($1)";
    // A similar name and the same e-mail with another NPWP: a new company,
    // whose look-alikes would be Bob's customer.
    let mine = rpc(
        &db,
        &o.alice,
        bundle,
        &[
            json!({"channel": "website", "company_name": "PT Rahasia Bersama Jaya",
                 "npwp": "04.567.890.1-234.000", "contact_email": STORED_EMAIL}),
        ],
    )
    .await
    .unwrap();
    assert_eq!(mine["handed_over"], false, "{mine}");
    assert_eq!(mine["customer_created"], true, "{mine}");
    assert_eq!(mine["candidates"], json!([]), "{mine}");
    assert!(!mine.to_string().contains(&customer.to_string()), "{mine}");

    // The same call by someone who reads every customer lists it (same
    // contact, another NPWP), so the check above can fail.
    let theirs = rpc(
        &db,
        &o.marketing,
        bundle,
        &[
            json!({"channel": "website", "company_name": "PT Rahasia Bersama Abadi",
                 "npwp": "01.001.608.7-093.000", "contact_email": STORED_EMAIL}),
        ],
    )
    .await
    .unwrap();
    let listed: Vec<&str> = theirs["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["customer_id"].as_str())
        .collect();
    assert!(listed.contains(&customer.to_string().as_str()), "{theirs}");

    // Similar names, found after commit, follow the same rule: Alice's new
    // customer resembles Bob's, and she is not shown it.
    let mut tx = db.as_user(&o.alice).await;
    let v: Value =
        sqlx::query_scalar("select find_or_create_customer('PT Rahasia Bersama Makmur')")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(v["candidates"], json!([]), "{v}");
    let alices = uuid_of(&v, "customer_id");
    let stored: i32 = sqlx::query_scalar("select customer_lookalikes_find($1, array[$2])")
        .bind(o.alice.tenant_id)
        .bind(alices)
        .fetch_one(&db.pool_as("bizos_worker"))
        .await
        .unwrap();
    assert!(stored >= 1, "fixture: Bob's customer is a look-alike");
    let as_marketing = rpc(
        &db,
        &o.marketing,
        "select customer_detail(($1 #>> '{}')::uuid)",
        &[json!(alices)],
    )
    .await
    .unwrap();
    assert!(
        as_marketing["lookalikes"]
            .to_string()
            .contains(&customer.to_string()),
        "{as_marketing}"
    );
    let as_alice = rpc(
        &db,
        &o.alice,
        "select customer_detail(($1 #>> '{}')::uuid)",
        &[json!(alices)],
    )
    .await
    .unwrap();
    assert!(
        as_alice["lookalikes"]["checked_at"].is_string(),
        "{as_alice}"
    );
    assert!(
        !as_alice.to_string().contains(&customer.to_string()),
        "{as_alice}"
    );
}

#[tokio::test]
async fn imported_leads_follow_the_same_rule() {
    let db = TestDb::new().await;
    let o = org(&db).await;
    let app = spawn_app(&db).await;
    let (customer, _) = bobs_customer(&db, &app, &o).await;
    let before = stored(&db, customer).await;
    let csv = format!(
        "external_ref,channel,company_name,contact_email,contact_phone,city\n\
         X-1,website,Rahasia Impor,{TYPED_EMAIL},,Medan\n\
         X-2,website,PT Baru Sekali,baru@baru-sekali.co.id,0813-1111-2222,Medan\n"
    );
    let (status, staged) = app
        .upload(
            &o.alice,
            "/api/imports",
            &[("module", "leads")],
            "leads.csv",
            csv.into_bytes(),
            None,
        )
        .await;
    assert_eq!(status, 201, "{staged}");
    let import = staged["import_id"].as_str().unwrap().to_owned();
    let (status, done) = app
        .post_json(
            &o.alice,
            &format!("/api/imports/{import}/process"),
            &json!(null),
            None,
        )
        .await;
    assert!(status == 200 || status == 202, "{status} {done}");
    assert_eq!(done["ok_rows"], 2, "{done}");
    let (owner, handed, linked): (Option<Uuid>, bool, Uuid) = sqlx::query_as(
        "select sales_owner_user_id, handed_over, customer_id from leads where external_ref = 'X-1'",
    )
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(
        (owner, handed, linked),
        (Some(o.bob.user_id), true, customer)
    );
    let (owner, handed): (Option<Uuid>, bool) = sqlx::query_as(
        "select sales_owner_user_id, handed_over from leads where external_ref = 'X-2'",
    )
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!((owner, handed), (Some(o.alice.user_id), false));
    // One customer more (the new company), the hidden one unchanged.
    let after = stored(&db, customer).await;
    assert_eq!(after["row"], before["row"]);
    assert_eq!(after["n"], 2);
    assert_eq!(
        count_as(
            &db,
            &o.alice,
            "select count(*) from prospects where customer_id = $1",
            customer
        )
        .await,
        0
    );
    let (_, rows) = app
        .get_json(&o.alice, &format!("/api/imports/{import}"))
        .await;
    assert!(!rows.to_string().contains(&customer.to_string()), "{rows}");

    // A customers import row matching it is refused, changing nothing.
    let csv = format!("company_name,npwp,city\nRahasia,{TYPED_NPWP},Medan\n");
    let (status, staged) = app
        .upload(
            &o.alice,
            "/api/imports",
            &[("module", "customers")],
            "customers.csv",
            csv.into_bytes(),
            None,
        )
        .await;
    assert_eq!(status, 201, "{staged}");
    let import = staged["import_id"].as_str().unwrap().to_owned();
    let (status, done) = app
        .post_json(
            &o.alice,
            &format!("/api/imports/{import}/process"),
            &json!(null),
            None,
        )
        .await;
    assert!(status == 200 || status == 202, "{status} {done}");
    assert_eq!(done["error_rows"], 1, "{done}");
    assert_eq!(stored(&db, customer).await["row"], before["row"]);
    let err = rpc(
        &db,
        &o.alice,
        "select count(*)::text::jsonb from import_rows where target_id = ($1 #>> '{}')::uuid",
        &[json!(customer)],
    )
    .await
    .unwrap();
    assert_eq!(err, json!(0));
}
