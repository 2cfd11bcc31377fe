//! The audit API (B2B-10; sql/api/audit.sql,
//! bff/src/routes/audit.rs) through HTTP: the tenant's log filtered and
//! keyset-paged, the history of a lead, ticket and invoice, the chains
//! verified (and a tampered entry found), personal data masked for
//! readers without audit.unmask, and 403 for anyone without audit.read.

use std::collections::BTreeSet;

use bizos_bff::auth::Caller;
use bizos_tests::{spawn_app, status_and_json, TestApp, TestDb};
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

/// GET /api/audit (or another audit route) with query parameters.
async fn audit(app: &TestApp, who: &Caller, path: &str, query: &[(&str, String)]) -> (u16, Value) {
    let res = app
        .http
        .get(app.url(path))
        .query(query)
        .bearer_auth(app.token(who))
        .send()
        .await
        .unwrap();
    status_and_json(res).await
}

fn items(page: &Value) -> &Vec<Value> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items in {page}"))
}

fn err(body: &Value) -> (&str, Option<&str>) {
    (
        body["error"]["code"].as_str().unwrap_or("<no code>"),
        body["error"]["field"].as_str(),
    )
}

/// A lead created (and, with `note`, changed) through HTTP; its id and
/// its customer's.
async fn lead(app: &TestApp, who: &Caller, company: &str, note: Option<&str>) -> (String, String) {
    let (status, lead) = app
        .post_json(
            who,
            "/api/leads",
            &json!({"channel": "website", "company_name": company, "contact_name": "Budi Santoso"}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{lead}");
    let id = lead["lead_id"].as_str().unwrap().to_owned();
    if let Some(note) = note {
        let (status, body) = app
            .patch_json(who, &format!("/api/leads/{id}"), &json!({"notes": note}))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    (id, lead["customer_id"].as_str().unwrap().to_owned())
}

/// Every entry of the tenant's log through the API, `limit` at a time.
async fn all_pages(
    app: &TestApp,
    who: &Caller,
    query: &[(&str, String)],
    limit: usize,
) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut q = query.to_vec();
        q.push(("limit", limit.to_string()));
        if let Some(a) = &after {
            q.push(("after", a.clone()));
        }
        let (status, page) = audit(app, who, "/api/audit", &q).await;
        assert_eq!(status, 200, "{page}");
        assert!(items(&page).len() <= limit);
        out.extend(items(&page).iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => {
                assert_eq!(items(&page).len(), limit, "a page before the last is full");
                after = Some(c.to_owned());
            }
            None => return out,
        }
    }
}

#[tokio::test]
async fn the_log_is_filtered_and_paged_newest_first() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let marketing = db.create_user(tenant, "marketing_manager").await;
    let other = db.create_tenant("other").await;
    let app = spawn_app(&db).await;
    let (first, _) = lead(&app, &marketing, "PT Satu", Some("called back")).await;
    lead(&app, &marketing, "PT Dua", None).await;
    lead(&app, &marketing, "PT Tiga", Some("visit planned")).await;
    let their_admin = db.create_user(other, "super_admin").await;
    let their_marketing = db.create_user(other, "marketing_manager").await;
    lead(&app, &their_marketing, "PT Lain", None).await;

    let total: i64 =
        sqlx::query_scalar("select count(*) from bizos.audit_log where tenant_id = $1")
            .bind(tenant)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert!(total > 10, "{total}");
    let every = all_pages(&app, &admin, &[], 4).await;
    assert_eq!(every.len() as i64, total, "every entry of the tenant, once");
    let keys: BTreeSet<(i64, i64)> = every
        .iter()
        .map(|e| (e["chain"].as_i64().unwrap(), e["seq"].as_i64().unwrap()))
        .collect();
    assert_eq!(keys.len(), every.len(), "no entry twice");
    let times: Vec<chrono::DateTime<chrono::Utc>> = every
        .iter()
        .map(|e| e["at"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    assert!(
        every
            .iter()
            .all(|e| e["record_key"]["tenant_id"] == json!(tenant)),
        "only the caller's tenant"
    );
    let theirs = all_pages(&app, &their_admin, &[], 50).await;
    assert!(!theirs.is_empty());
    assert!(theirs
        .iter()
        .all(|e| e["record_key"]["tenant_id"] == json!(other)));

    // By table, by record (exact with the table, any key without), by actor.
    let leads = all_pages(&app, &admin, &[("table", "leads".into())], 50).await;
    assert_eq!(leads.len(), 5, "three inserts and two updates: {leads:?}");
    assert!(leads.iter().all(|e| e["table"] == "leads"));
    let one = all_pages(
        &app,
        &admin,
        &[("table", "leads".into()), ("record", first.clone())],
        50,
    )
    .await;
    let actions: Vec<&str> = one.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["UPDATE", "INSERT"], "{one:?}");
    assert!(one
        .iter()
        .all(|e| e["record_key"]["lead_id"] == json!(first)));
    assert_eq!(one[0]["after"]["notes"], "called back", "{}", one[0]);
    let any_table = all_pages(&app, &admin, &[("record", first.clone())], 50).await;
    assert_eq!(any_table.len(), 2, "{any_table:?}");
    let by_marketing = all_pages(
        &app,
        &admin,
        &[("actor", marketing.user_id.to_string())],
        50,
    )
    .await;
    assert!(!by_marketing.is_empty());
    assert!(by_marketing
        .iter()
        .all(|e| e["actor"] == json!(marketing.user_id)));
    let by_admin = all_pages(&app, &admin, &[("actor", admin.user_id.to_string())], 50).await;
    assert!(by_admin.is_empty(), "{by_admin:?}");

    // By time: [from, to) splits the log.
    // (The tenant's creation wrote many entries at one instant: split at
    // the first lead, which came later.)
    let middle = leads.last().unwrap()["at"].as_str().unwrap().to_owned();
    let newer = all_pages(&app, &admin, &[("from", middle.clone())], 50).await;
    let older = all_pages(&app, &admin, &[("to", middle.clone())], 50).await;
    assert!(!newer.is_empty() && !older.is_empty());
    assert_eq!(newer.len() + older.len(), every.len());
    assert!(newer.iter().all(|e| e["at"]
        .as_str()
        .unwrap()
        .parse::<chrono::DateTime<chrono::Utc>>()
        .unwrap()
        >= middle.parse::<chrono::DateTime<chrono::Utc>>().unwrap()));

    // Bad input, named.
    for (query, status, code, field) in [
        (
            vec![("table", "secrets".to_owned())],
            422,
            "invalid",
            "table",
        ),
        (
            vec![("table", "leads".into()), ("record", "abc".into())],
            422,
            "invalid",
            "record",
        ),
        (vec![("after", "junk".into())], 400, "bad_request", "after"),
        (vec![("after", "1.2.3".into())], 200, "", ""),
        (vec![("limit", "0".into())], 400, "bad_request", "limit"),
        (vec![("limit", "201".into())], 400, "bad_request", "limit"),
        (
            vec![
                ("from", "2026-02-01T00:00:00Z".into()),
                ("to", "2026-01-01T00:00:00Z".into()),
            ],
            422,
            "invalid",
            "from",
        ),
        (
            vec![("actor", "someone".into())],
            400,
            "bad_request",
            "query",
        ),
        (
            vec![("from", "yesterday".into())],
            400,
            "bad_request",
            "query",
        ),
    ] {
        let (got, body) = audit(&app, &admin, "/api/audit", &query).await;
        if status == 200 {
            assert_eq!(got, 200, "{query:?}: {body}");
            continue;
        }
        assert_eq!(
            (got, err(&body)),
            (status, (code, Some(field))),
            "{query:?}: {body}"
        );
    }
}

#[tokio::test]
async fn only_audit_readers_read_the_log() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let director = db.create_user(tenant, "director").await;
    let marketing = db.create_user(tenant, "marketing_manager").await;
    let app = spawn_app(&db).await;
    db.create_user(tenant, "ops").await;
    let (lead_id, customer) = lead(&app, &marketing, "PT Rahasia", None).await;
    let finance = db.create_user(tenant, "finance").await;
    let (status, invoice) = app
        .post_json(
            &finance,
            "/api/invoices",
            &json!({"customer_id": customer, "subtotal": 100, "tax": 11}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{invoice}");
    let (status, ticket) = app
        .post_json(
            &marketing,
            "/api/tickets",
            &json!({"ticket_type": "complaint", "subject": "Late", "dept_target": "OPS"}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{ticket}");
    let paths = [
        "/api/audit".to_owned(),
        "/api/audit/verify".to_owned(),
        format!("/api/leads/{lead_id}/history"),
        format!(
            "/api/tickets/{}/history",
            ticket["ticket_id"].as_str().unwrap()
        ),
        format!(
            "/api/invoices/{}/history",
            invoice["invoice_id"].as_str().unwrap()
        ),
    ];
    for role in [
        "marketing_manager",
        "sales_manager",
        "salesperson",
        "ops",
        "finance",
    ] {
        let who = db.create_user(tenant, role).await;
        for path in &paths {
            let (status, body) = audit(&app, &who, path, &[]).await;
            assert_eq!(
                (status, err(&body).0),
                (403, "forbidden"),
                "{role} {path}: {body}"
            );
        }
    }
    for who in [&admin, &director] {
        for path in &paths {
            let (status, body) = audit(&app, who, path, &[]).await;
            assert_eq!(status, 200, "{path}: {body}");
        }
    }
}

/// The one audit entry of the profile `user_id` as `who` reads it.
async fn profile_entry(app: &TestApp, who: &Caller, user_id: &str) -> Value {
    let q = [
        ("table", "profiles".to_owned()),
        ("record", user_id.to_owned()),
    ];
    let (status, page) = audit(app, who, "/api/audit", &q).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(items(&page).len(), 1, "{page}");
    items(&page)[0].clone()
}

/// The history of a lead as `who` reads it.
async fn history_of(app: &TestApp, who: &Caller, lead_id: &str) -> Vec<Value> {
    let (status, page) = audit(app, who, &format!("/api/leads/{lead_id}/history"), &[]).await;
    assert_eq!(status, 200, "{page}");
    items(&page).clone()
}

#[tokio::test]
async fn readers_without_audit_unmask_get_the_images_masked() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let director = db.create_user(tenant, "director").await;
    let marketing = db.create_user(tenant, "marketing_manager").await;
    let app = spawn_app(&db).await;
    let email = format!("budi.santoso.{}@gmail.com", Uuid::new_v4().simple());
    let (status, user) = app
        .post_json(
            &admin,
            "/api/users",
            &json!({"email": email, "full_name": "Budi Santoso", "app_role": "salesperson"}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{user}");
    let user_id = user["user_id"].as_str().unwrap().to_owned();
    let note = format!("WA +62 812-3456-7890, mail {email}, KTP 3174011203900001");
    let (lead_id, _) = lead(&app, &marketing, "PT Terbuka", Some(&note)).await;

    // The super admin (audit.unmask) reads the images as written.
    let raw = profile_entry(&app, &admin, &user_id).await;
    assert_eq!(raw["masked"], json!(false));
    assert_eq!(
        (&raw["after"]["email"], &raw["after"]["full_name"]),
        (&json!(email), &json!("Budi Santoso"))
    );
    let raw_lead = history_of(&app, &admin, &lead_id).await;
    assert_eq!(raw_lead[0]["after"]["notes"], json!(note));
    assert_eq!(raw_lead[1]["after"]["contact_name"], json!("Budi Santoso"));

    // The director reads them masked as the analytics views are: the
    // personal columns by their maskers, other text through pii_mask,
    // ids and roles as stored.
    let masked = profile_entry(&app, &director, &user_id).await;
    assert_eq!(masked["masked"], json!(true), "{masked}");
    let text = masked.to_string();
    assert!(
        !text.contains(&email) && !text.contains("Budi Santoso"),
        "{masked}"
    );
    assert_eq!(masked["after"]["user_id"], json!(user_id));
    assert_eq!(masked["after"]["app_role"], json!("salesperson"));
    assert_eq!(
        masked["record_key"]["user_id"],
        json!(user_id),
        "keys are not masked"
    );
    assert_eq!(masked["actor"], json!(admin.user_id));
    assert!(
        masked["after"]["email"].as_str().unwrap().contains('*'),
        "{masked}"
    );
    let lead_entries = history_of(&app, &director, &lead_id).await;
    let text = serde_json::to_string(&lead_entries).unwrap();
    for secret in [
        "Budi Santoso",
        "812-3456-7890",
        "3174011203900001",
        email.as_str(),
    ] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    assert_eq!(
        lead_entries[1]["after"]["company_name"],
        json!("PT Terbuka"),
        "text without PII stays"
    );
    assert_eq!(lead_entries[1]["record_key"]["lead_id"], json!(lead_id));

    // audit.unmask granted to directors: the same entries unmasked.
    let (status, _) = app
        .post_json(
            &admin,
            "/api/roles/director/permissions",
            &json!({"permission": "audit.unmask"}),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let unmasked = profile_entry(&app, &director, &user_id).await;
    assert_eq!(
        (&unmasked["masked"], &unmasked["after"]["email"]),
        (&json!(false), &json!(email))
    );
}

#[tokio::test]
async fn verify_finds_a_tampered_entry_and_a_missing_head() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let director = db.create_user(tenant, "director").await;
    let marketing = db.create_user(tenant, "marketing_manager").await;
    let other = db.create_tenant("other").await;
    let their_director = db.create_user(other, "director").await;
    let app = spawn_app(&db).await;
    let (lead_id, _) = lead(&app, &marketing, "PT Asli", Some("first note")).await;

    let (status, state) = audit(&app, &director, "/api/audit/verify", &[]).await;
    assert_eq!(status, 200, "{state}");
    assert_eq!(state["intact"], json!(true), "{state}");
    let chains = state["chains"].as_array().unwrap();
    assert_eq!(chains.len(), 8, "{state}");
    assert!(chains
        .iter()
        .all(|c| c["status"] == "intact" && c["broken_seq"].is_null()));
    assert!(
        chains.iter().any(|c| c["head_seq"].as_i64().unwrap() > 0),
        "{state}"
    );

    // An entry edited behind the trigger's back (as the cluster's
    // superuser: the database owner may only read the log).
    let url = bizos_sql::derive_dsn(&bizos_tests::admin_url(), None, &db.name).unwrap();
    let mut su = PgConnection::connect(&url).await.unwrap();
    let (chain, seq): (i16, i64) = sqlx::query_as(
        "update bizos.audit_log set after = jsonb_set(after, '{company_name}', '\"PT Palsu\"')
          where tenant_id = $1 and table_name = 'public.leads' and action = 'INSERT'
            and record_key ->> 'lead_id' = $2
          returning chain, seq",
    )
    .bind(tenant)
    .bind(&lead_id)
    .fetch_one(&mut su)
    .await
    .unwrap();
    let (status, state) = audit(&app, &director, "/api/audit/verify", &[]).await;
    assert_eq!(status, 200, "{state}");
    assert_eq!(state["intact"], json!(false), "{state}");
    for c in state["chains"].as_array().unwrap() {
        if c["chain"] == json!(chain) {
            assert_eq!(
                (&c["status"], &c["broken_seq"]),
                (&json!("broken"), &json!(seq)),
                "{c}"
            );
            assert!(c["problem"].as_str().unwrap().contains("modified"), "{c}");
        } else {
            assert_eq!(c["status"], "intact", "{c}");
        }
    }

    // The other tenant is intact; its chain without its head is not.
    let (status, state) = audit(&app, &their_director, "/api/audit/verify", &[]).await;
    assert_eq!((status, &state["intact"]), (200, &json!(true)), "{state}");
    let emptied: i16 = sqlx::query_scalar(
        "delete from bizos.audit_heads
          where tenant_id = $1 and chain = (select chain from bizos.audit_log where tenant_id = $1 limit 1)
          returning chain",
    )
    .bind(other)
    .fetch_one(&mut su)
    .await
    .unwrap();
    let (status, state) = audit(&app, &their_director, "/api/audit/verify", &[]).await;
    assert_eq!((status, &state["intact"]), (200, &json!(false)), "{state}");
    let broken: Vec<&Value> = state["chains"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "broken")
        .collect();
    assert_eq!(broken.len(), 1, "{state}");
    assert_eq!(
        (&broken[0]["chain"], &broken[0]["head_seq"]),
        (&json!(emptied), &Value::Null)
    );
}

#[tokio::test]
async fn a_records_history_is_on_its_own_route() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let director = db.create_user(tenant, "director").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let marketing = db.create_user(tenant, "marketing_manager").await;
    let finance = db.create_user(tenant, "finance").await;
    let seller = db.create_user(tenant, "salesperson").await;
    db.create_user(tenant, "ops").await;
    let app = spawn_app(&db).await;
    let (lead_id, customer) = lead(&app, &marketing, "PT Riwayat", Some("second look")).await;
    let (status, _) = app
        .patch_json(
            &marketing,
            &format!("/api/leads/{lead_id}"),
            &json!({"notes": "third look"}),
        )
        .await;
    assert_eq!(status, 200);

    let path = format!("/api/leads/{lead_id}/history");
    let (status, page) = audit(&app, &director, &path, &[]).await;
    assert_eq!(status, 200, "{page}");
    let actions: Vec<&str> = items(&page)
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["UPDATE", "UPDATE", "INSERT"], "{page}");
    assert!(items(&page)
        .iter()
        .all(|e| e["table"] == "leads" && e["record_key"]["lead_id"] == json!(lead_id)));
    assert_eq!(items(&page)[0]["after"]["notes"], "third look");
    assert_eq!(items(&page)[0]["before"]["notes"], "second look");
    assert_eq!(items(&page)[2]["actor"], json!(marketing.user_id));
    // Paged like the log.
    let (status, first) = audit(&app, &director, &path, &[("limit", "2".into())]).await;
    assert_eq!(status, 200);
    assert_eq!(items(&first).len(), 2);
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let (status, rest) = audit(
        &app,
        &director,
        &path,
        &[("limit", "2".into()), ("after", cursor)],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(items(&rest).len(), 1);
    assert_eq!(items(&rest)[0]["action"], "INSERT");
    assert!(rest["next_cursor"].is_null());

    // Tickets and invoices too.
    let (status, ticket) = app
        .post_json(
            &marketing,
            "/api/tickets",
            &json!({"ticket_type": "complaint", "subject": "Late", "dept_target": "OPS"}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{ticket}");
    let ticket_id = ticket["ticket_id"].as_str().unwrap();
    let (status, page) = audit(
        &app,
        &director,
        &format!("/api/tickets/{ticket_id}/history"),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(items(&page).last().unwrap()["action"], "INSERT", "{page}");
    assert!(items(&page)
        .iter()
        .all(|e| e["record_key"]["ticket_id"] == json!(ticket_id)));
    let (status, invoice) = app
        .post_json(
            &finance,
            "/api/invoices",
            &json!({"customer_id": customer, "subtotal": 100, "tax": 11}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{invoice}");
    let invoice_id = invoice["invoice_id"].as_str().unwrap();
    let (status, page) = audit(
        &app,
        &admin,
        &format!("/api/invoices/{invoice_id}/history"),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(!items(&page).is_empty());
    assert!(items(&page)
        .iter()
        .all(|e| e["record_key"]["invoice_id"] == json!(invoice_id)));

    // No such record: 404, also for an id of another table.
    for path in [
        format!("/api/leads/{}/history", Uuid::new_v4()),
        format!("/api/tickets/{lead_id}/history"),
        format!("/api/invoices/{ticket_id}/history"),
    ] {
        let (status, body) = audit(&app, &director, &path, &[]).await;
        assert_eq!((status, err(&body).0), (404, "not_found"), "{path}: {body}");
    }
    // A record the caller cannot read is not found, as on its detail route
    // (a salesperson given audit.read reads the history of their own leads).
    let (status, _) = app
        .post_json(
            &admin,
            "/api/roles/salesperson/permissions",
            &json!({"permission": "audit.read"}),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = app
        .get_json(&seller, &format!("/api/leads/{lead_id}"))
        .await;
    assert_eq!(status, 404, "the salesperson does not see the lead");
    let (status, body) = audit(&app, &seller, &path, &[]).await;
    assert_eq!((status, err(&body).0), (404, "not_found"), "{body}");
    let (own, _) = lead(&app, &seller, "PT Milik Sendiri", None).await;
    let (status, page) = audit(&app, &seller, &format!("/api/leads/{own}/history"), &[]).await;
    assert_eq!((status, items(&page).len()), (200, 1), "{page}");
    let (status, body) = audit(
        &app,
        &seller,
        &format!("/api/leads/{own}/history"),
        &[("limit", "0".into())],
    )
    .await;
    assert_eq!(
        (status, err(&body)),
        (400, ("bad_request", Some("limit"))),
        "{body}"
    );
}
