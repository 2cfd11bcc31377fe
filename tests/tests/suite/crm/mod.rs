//! CRM: leads linked to their customer and prospect, handover to a
//! salesperson, activities and the module's acceptance criteria, run as the
//! roles concerned.

// Dedup never opens a window onto another team's customer: crm/dedup_visibility.rs.
mod dedup_visibility;
// Similar names, found after commit: crm/lookalikes.rs.
mod lookalikes;

use bizos_bff::auth::Caller;
use bizos_tests::{code, field, rpc, TestDb};
use serde_json::{json, Value};
use uuid::Uuid;

async fn find_or_create(
    db: &TestDb,
    who: &Caller,
    company: &str,
    npwp: Option<&str>,
    email: Option<&str>,
    phone: Option<&str>,
) -> Value {
    let mut tx = db.as_user(who).await;
    let v: Value = sqlx::query_scalar("select find_or_create_customer($1, $2, $3, $4)")
        .bind(company)
        .bind(npwp)
        .bind(email)
        .bind(phone)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    v
}

struct Team {
    tenant: Uuid,
    marketing: Caller,
    manager: Caller,
    alice: Caller,
    bob: Caller,
    other_manager: Caller,
    carol: Caller,
}

async fn team(db: &TestDb) -> Team {
    let tenant = db.create_tenant("acme").await;
    let marketing = db.create_user(tenant, "marketing_manager").await;
    let manager = db.create_user(tenant, "sales_manager").await;
    let alice = db.create_user(tenant, "salesperson").await;
    let bob = db.create_user(tenant, "salesperson").await;
    let other_manager = db.create_user(tenant, "sales_manager").await;
    let carol = db.create_user(tenant, "salesperson").await;
    for (member, boss) in [
        (&alice, &manager),
        (&bob, &manager),
        (&carol, &other_manager),
    ] {
        db.set_manager(member, boss).await;
    }
    Team {
        tenant,
        marketing,
        manager,
        alice,
        bob,
        other_manager,
        carol,
    }
}

/// A lead as marketing enters it: customer and prospect found or created first.
async fn lead(db: &TestDb, who: &Caller, company: &str, npwp: Option<&str>) -> (Uuid, Uuid, Uuid) {
    let mut tx = db.as_user(who).await;
    let c: Value = sqlx::query_scalar("select find_or_create_customer($1, $2)")
        .bind(company)
        .bind(npwp)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    let customer: Uuid = c["customer_id"].as_str().unwrap().parse().unwrap();
    let prospect: Uuid = sqlx::query_scalar("select find_or_create_prospect($1)")
        .bind(customer)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    let lead: Uuid = sqlx::query_scalar(
        "insert into leads (tenant_id, channel, company_name, customer_id, prospect_id)
         values (bizos.tenant_id(), 'website', $1, $2, $3) returning lead_id",
    )
    .bind(company)
    .bind(customer)
    .bind(prospect)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    (lead, customer, prospect)
}

#[tokio::test]
async fn dedup_works_on_npwp_email_phone_and_company() {
    let db = TestDb::new().await;
    let t = team(&db).await;
    let m = &t.marketing;

    let first = find_or_create(
        &db,
        m,
        "PT. Maju Jaya Tbk",
        Some("01.234.567.8-901.000"),
        Some("Sales@MajuJaya.co.id"),
        Some("0812-3456-7890"),
    )
    .await;
    assert_eq!(first["created"], true);
    let id = first["customer_id"].clone();

    let same_npwp = find_or_create(&db, m, "Maju Jaya", Some("012345678901000"), None, None).await;
    assert_eq!(
        (
            same_npwp["customer_id"].clone(),
            same_npwp["matched_on"].clone()
        ),
        (id.clone(), json!("npwp"))
    );
    let same_email = find_or_create(
        &db,
        m,
        "MJ Logistics",
        None,
        Some("sales+promo@majujaya.co.id"),
        None,
    )
    .await;
    assert_eq!(
        (
            same_email["customer_id"].clone(),
            same_email["matched_on"].clone()
        ),
        (id.clone(), json!("email"))
    );
    let same_phone = find_or_create(&db, m, "Maju", None, None, Some("+62 812 3456 7890")).await;
    assert_eq!(
        (
            same_phone["customer_id"].clone(),
            same_phone["matched_on"].clone()
        ),
        (id.clone(), json!("phone"))
    );
    let same_company = find_or_create(&db, m, "maju jaya", None, None, None).await;
    assert_eq!(
        (
            same_company["customer_id"].clone(),
            same_company["matched_on"].clone()
        ),
        (id.clone(), json!("company"))
    );

    // Same name, another NPWP: another legal entity, listed as a candidate only.
    let other = find_or_create(
        &db,
        m,
        "PT Maju Jaya",
        Some("02.222.333.4-555.000"),
        None,
        None,
    )
    .await;
    assert_eq!(other["created"], true);
    assert_ne!(other["customer_id"], id);
    let candidates = other["candidates"].as_array().unwrap();
    assert!(candidates.iter().any(|c| c["customer_id"] == id), "{other}");

    // A similar name is a new customer; its look-alikes are found after
    // commit (crm/lookalikes.rs).
    let similar = find_or_create(&db, m, "CV Maju Jaya Abadi", None, None, None).await;
    assert_eq!(
        similar["created"], true,
        "similar names are never merged silently"
    );

    let n: i64 = sqlx::query_scalar("select count(*) from customers")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(n, 3);
}

#[tokio::test]
async fn dedup_is_race_free() {
    let db = TestDb::new().await;
    let t = team(&db).await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let m = t.marketing.clone();
            let app = db.app.clone();
            tokio::spawn(async move {
                let mut tx = bizos_bff::db::begin_as(&app, &m).await.unwrap();
                let (npwp, email) = if i % 2 == 0 {
                    (Some("01.234.567.8-901.000"), None)
                } else {
                    (None, Some("ops@sinarabadi.co.id"))
                };
                let v: Value = sqlx::query_scalar("select find_or_create_customer($1, $2, $3)")
                    .bind(if i % 2 == 0 {
                        "PT Maju"
                    } else {
                        "CV Sinar Abadi"
                    })
                    .bind(npwp)
                    .bind(email)
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
                v["customer_id"].as_str().unwrap().to_owned()
            })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 2, "{ids:?}");
}

#[tokio::test]
async fn bad_customer_input_names_the_field_and_writes_nothing() {
    let db = TestDb::new().await;
    let t = team(&db).await;
    for (args, field) in [
        ((" ", None, None, None), "company_name"),
        (("PT A", Some("12345"), None, None), "npwp"),
        (("PT A", None, Some("not-an-email"), None), "email"),
        (("PT A", None, None, Some("call me")), "phone"),
    ] {
        let mut tx = db.as_user(&t.marketing).await;
        let err = sqlx::query("select find_or_create_customer($1, $2, $3, $4)")
            .bind(args.0)
            .bind(args.1)
            .bind(args.2)
            .bind(args.3)
            .fetch_one(&mut *tx)
            .await
            .unwrap_err();
        let db_err = err.as_database_error().unwrap();
        assert_eq!(db_err.code().as_deref(), Some("P0001"));
        assert!(db_err.message().starts_with(field), "{}", db_err.message());
        let pg = db_err
            .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .unwrap();
        assert_eq!(pg.column(), Some(field));
    }
    let n: i64 = sqlx::query_scalar("select count(*) from customers")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(n, 0);
    let ops = db.create_user(t.tenant, "ops").await;
    let mut tx = db.as_user(&ops).await;
    let err = sqlx::query("select find_or_create_customer('PT A')")
        .fetch_one(&mut *tx)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "42501");
}

#[tokio::test]
async fn handover_to_sales_does_not_split_data() {
    let db = TestDb::new().await;
    let t = team(&db).await;
    let (lead1, customer, prospect) = lead(
        &db,
        &t.marketing,
        "PT Sinar Abadi",
        Some("01.234.567.8-901.000"),
    )
    .await;
    let (lead2, customer2, prospect2) =
        lead(&db, &t.marketing, "Sinar Abadi", Some("012345678901000")).await;
    assert_eq!(
        (customer2, prospect2),
        (customer, prospect),
        "one customer, one unassigned prospect"
    );

    let owner: Option<Uuid> =
        sqlx::query_scalar("select sales_owner_user_id from leads where lead_id = $1")
            .bind(lead1)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(owner, None, "no sales owner before the handover");

    let out = rpc(
        &db,
        &t.manager,
        "select crm_assign_lead(($1#>>'{}')::uuid, ($2#>>'{}')::uuid)",
        &[json!(lead1), json!(t.alice.user_id)],
    )
    .await
    .unwrap();
    assert_eq!(
        out["prospect_id"],
        json!(prospect),
        "the unassigned prospect becomes Alice's"
    );
    rpc(
        &db,
        &t.manager,
        "select crm_assign_lead(($1#>>'{}')::uuid, ($2#>>'{}')::uuid)",
        &[json!(lead2), json!(t.alice.user_id)],
    )
    .await
    .unwrap();

    let (prospects, owners): (i64, i64) = sqlx::query_as(
        "select count(*), count(distinct owner_user_id) from prospects where customer_id = $1",
    )
    .bind(customer)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!((prospects, owners), (1, 1));
    let (owner, status): (Uuid, String) =
        sqlx::query_as("select sales_owner_user_id, status from leads where lead_id = $1")
            .bind(lead1)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!((owner, status.as_str()), (t.alice.user_id, "ASSIGNED"));

    // Reassigning to Bob gives Bob his own prospect; Alice keeps hers.
    rpc(
        &db,
        &t.manager,
        "select crm_assign_lead(($1#>>'{}')::uuid, ($2#>>'{}')::uuid)",
        &[json!(lead2), json!(t.bob.user_id)],
    )
    .await
    .unwrap();
    let owners: i64 = sqlx::query_scalar(
        "select count(distinct owner_user_id) from prospects where customer_id = $1",
    )
    .bind(customer)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(owners, 2);
}

#[tokio::test]
async fn only_managers_assign_and_sales_managers_only_within_their_team() {
    let db = TestDb::new().await;
    let t = team(&db).await;
    let (lead1, _, _) = lead(&db, &t.marketing, "PT Sinar Abadi", None).await;
    let assign = "select crm_assign_lead(($1#>>'{}')::uuid, ($2#>>'{}')::uuid)";
    let err = rpc(
        &db,
        &t.alice,
        assign,
        &[json!(lead1), json!(t.alice.user_id)],
    )
    .await
    .unwrap_err();
    assert_eq!(code(&err), "42501");
    let err = rpc(
        &db,
        &t.manager,
        assign,
        &[json!(lead1), json!(t.carol.user_id)],
    )
    .await
    .unwrap_err();
    assert_eq!(code(&err), "42501", "Carol is in another team");
    let err = rpc(
        &db,
        &t.manager,
        assign,
        &[json!(lead1), json!(t.marketing.user_id)],
    )
    .await
    .unwrap_err();
    assert_eq!(code(&err), "P0001", "marketing is no salesperson");
    rpc(
        &db,
        &t.marketing,
        assign,
        &[json!(lead1), json!(t.carol.user_id)],
    )
    .await
    .unwrap();
    let err = rpc(
        &db,
        &t.manager,
        assign,
        &[json!(lead1), json!(t.alice.user_id)],
    )
    .await
    .unwrap_err();
    assert_eq!(code(&err), "42501", "the lead now belongs to another team");
}

#[tokio::test]
async fn salesperson_sees_only_assigned_leads_and_manager_the_team() {
    let db = TestDb::new().await;
    let t = team(&db).await;
    let mut leads = Vec::new();
    for (name, owner) in [("PT A", &t.alice), ("PT B", &t.bob), ("PT C", &t.carol)] {
        let (l, _, _) = lead(&db, &t.marketing, name, None).await;
        rpc(
            &db,
            &t.marketing,
            "select crm_assign_lead(($1#>>'{}')::uuid, ($2#>>'{}')::uuid)",
            &[json!(l), json!(owner.user_id)],
        )
        .await
        .unwrap();
        leads.push(l);
    }
    let (unassigned, _, _) = lead(&db, &t.marketing, "PT D", None).await;

    let visible = |who: Caller| {
        let db = &db;
        async move {
            let mut tx = db.as_user(&who).await;
            let mut ids: Vec<Uuid> = sqlx::query_scalar("select lead_id from leads")
                .fetch_all(&mut *tx)
                .await
                .unwrap();
            ids.sort();
            ids
        }
    };
    let sorted = |mut v: Vec<Uuid>| {
        v.sort();
        v
    };
    assert_eq!(visible(t.alice.clone()).await, vec![leads[0]]);
    assert_eq!(visible(t.carol.clone()).await, vec![leads[2]]);
    assert_eq!(
        visible(t.manager.clone()).await,
        sorted(vec![leads[0], leads[1], unassigned])
    );
    assert_eq!(
        visible(t.other_manager.clone()).await,
        sorted(vec![leads[2], unassigned])
    );
    assert_eq!(visible(t.marketing.clone()).await.len(), 4);

    // Alice cannot edit Bob's lead: the update finds no row.
    let mut tx = db.as_user(&t.alice).await;
    let n = sqlx::query("update leads set notes = 'x' where lead_id = $1")
        .bind(leads[1])
        .execute(&mut *tx)
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn activity_is_not_entered_twice_and_is_auditable() {
    let db = TestDb::new().await;
    let t = team(&db).await;
    let (l, _, prospect) = lead(&db, &t.marketing, "PT Sinar Abadi", None).await;
    rpc(
        &db,
        &t.manager,
        "select crm_assign_lead(($1#>>'{}')::uuid, ($2#>>'{}')::uuid)",
        &[json!(l), json!(t.alice.user_id)],
    )
    .await
    .unwrap();
    let stage = "select prospect_change_stage(($1#>>'{}')::uuid, $2#>>'{}')";
    rpc(&db, &t.alice, stage, &[json!(prospect), json!("CONTACTED")])
        .await
        .unwrap();
    rpc(&db, &t.alice, stage, &[json!(prospect), json!("qualified")])
        .await
        .unwrap();
    let err = rpc(&db, &t.alice, stage, &[json!(prospect), json!("WON")])
        .await
        .unwrap_err();
    assert_eq!(code(&err), "P0001", "QUALIFIED cannot jump to WON");
    let err = rpc(&db, &t.carol, stage, &[json!(prospect), json!("PROPOSAL")])
        .await
        .unwrap_err();
    assert_eq!(code(&err), "P0002", "Carol cannot see Alice's prospect");

    let history: Vec<(Option<String>, String)> = sqlx::query_as(
        "select from_stage, to_stage from prospect_stage_history where prospect_id = $1 order by changed_at, to_stage",
    )
    .bind(prospect)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert_eq!(
        history,
        [
            (None, "NEW".to_owned()),
            (Some("NEW".into()), "CONTACTED".into()),
            (Some("CONTACTED".into()), "QUALIFIED".into())
        ]
    );
    let derived: i64 = sqlx::query_scalar(
        "select count(*) from sales_activities where prospect_id = $1 and activity_type = 'stage_change' and source = 'derived'",
    )
    .bind(prospect)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(derived, 2);

    // Alice sees her derived activities, cannot forge one, and every change is audited.
    let mut tx = db.as_user(&t.alice).await;
    let mine: i64 = sqlx::query_scalar("select count(*) from sales_activities")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(mine, 3, "two stage changes and the assignment");
    let err = sqlx::query(
        "insert into sales_activities (tenant_id, activity_type, source, summary) values (bizos.tenant_id(), 'call', 'derived', 'fake')",
    )
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert_eq!(code(&err), "42501");
    drop(tx);
    let audited: i64 = sqlx::query_scalar(
        "select count(*) from bizos.audit_log where table_name = 'public.prospects' and record_key->>'prospect_id' = $1",
    )
    .bind(prospect.to_string())
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert!(
        audited >= 4,
        "insert, assignment and two stage changes: {audited}"
    );
    let breaks: i64 = sqlx::query_scalar("select count(*) from bizos.audit_verify($1)")
        .bind(t.tenant)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(breaks, 0);
}

#[tokio::test]
async fn a_visit_needs_a_photo_and_gps() {
    let db = TestDb::new().await;
    let t = team(&db).await;
    let mut tx = db.as_user(&t.alice).await;
    let err = sqlx::query("insert into sales_activities (tenant_id, activity_type, summary) values (bizos.tenant_id(), 'visit', 'Visited')")
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "23514");
    drop(tx);
    // A photo is a stored object of bucket prospect-evidence that the
    // writer uploaded (so no one attaches another's file); a made-up key
    // is refused, naming the field.
    let mut tx = db.as_user(&t.alice).await;
    let err = sqlx::query(
        "insert into sales_activities (tenant_id, activity_type, summary, photo_bucket, photo_object_key, gps_lat, gps_lng)
         values (bizos.tenant_id(), 'visit', 'Visited the warehouse', 'prospect-evidence', 'visits/a.jpg', -6.2, 106.8)",
    )
    .execute(&mut *tx)
    .await
    .unwrap_err();
    assert_eq!(
        (code(&err).as_str(), field(&err).as_deref()),
        ("P0001", Some("photo_object_id"))
    );
    drop(tx);
    let upload = |who: Uuid, bucket: &'static str| {
        let owner = db.owner.clone();
        async move {
            sqlx::query_scalar::<_, Uuid>(
                "insert into objects (tenant_id, bucket, file_name, content_type, size_bytes, sha256, created_by)
                 select tenant_id, $2, 'visit.jpg', 'image/jpeg', 10, repeat('ab', 32), user_id
                   from profiles where user_id = $1
                 returning object_id",
            )
            .bind(who)
            .bind(bucket)
            .fetch_one(&owner)
            .await
            .unwrap()
        }
    };
    let mine = upload(t.alice.user_id, "prospect-evidence").await;
    let theirs = upload(t.bob.user_id, "prospect-evidence").await;
    let elsewhere = upload(t.alice.user_id, "media").await;
    let visit = "insert into sales_activities (tenant_id, activity_type, summary, photo_object_id, gps_lat, gps_lng)
                 values (bizos.tenant_id(), 'visit', 'Visited the warehouse', $1, -6.2, 106.8)
                 returning photo_bucket || ' ' || photo_object_key";
    for (photo, state) in [(theirs, "P0002"), (elsewhere, "P0001")] {
        let mut tx = db.as_user(&t.alice).await;
        let err = sqlx::query_scalar::<_, String>(visit)
            .bind(photo)
            .fetch_one(&mut *tx)
            .await
            .unwrap_err();
        assert_eq!(
            (code(&err).as_str(), field(&err).as_deref()),
            (state, Some("photo_object_id")),
            "{err}"
        );
    }
    let mut tx = db.as_user(&t.alice).await;
    let key = sqlx::query_scalar::<_, String>(visit)
        .bind(mine)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(
        key,
        format!("prospect-evidence {}/prospect-evidence/{mine}", t.tenant)
    );
    tx.commit().await.unwrap();
}

async fn bundle(db: &TestDb, who: &Caller, payload: Value) -> Result<Value, sqlx::Error> {
    rpc(db, who, "select crm_create_lead_bundle($1)", &[payload]).await
}

#[tokio::test]
async fn create_lead_always_auto_links_customer_and_prospect() {
    let db = TestDb::new().await;
    let t = team(&db).await;
    let ops = db.create_user(t.tenant, "ops").await;
    let out = bundle(
        &db,
        &t.marketing,
        json!({"channel": "website", "company_name": "PT Sinar Abadi Logistik", "npwp": "01.234.567.8-901.000",
               "contact_name": "Budi Hartono", "contact_phone": "0812-3456-7890", "contact_email": "budi@sinarabadi.co.id",
               "rfq": {"origin": "Jakarta", "destination": "Makassar", "commodity": "spare parts", "weight_kg": 1200,
                       "dept_target": "OPS"}}),
    )
    .await
    .unwrap();
    for key in ["lead_id", "customer_id", "prospect_id", "ticket_id"] {
        assert!(out[key].is_string(), "{key} missing: {out}");
    }
    assert!(out["lead_no"].as_str().unwrap().starts_with("LEAD-"));

    // Same NPWP again: same customer, same unassigned prospect, no ticket.
    let again = bundle(
        &db,
        &t.marketing,
        json!({"channel": "whatsapp", "company_name": "Sinar Abadi", "npwp": "012345678901000"}),
    )
    .await
    .unwrap();
    assert_eq!(
        (again["customer_id"].clone(), again["prospect_id"].clone()),
        (out["customer_id"].clone(), out["prospect_id"].clone())
    );
    assert!(again.get("ticket_id").is_none());
    let orphans: i64 = sqlx::query_scalar(
        "select count(*) from leads where customer_id is null or prospect_id is null",
    )
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(orphans, 0);

    // The RFQ is an inquiry for ops, masked, linked, and logged as an activity.
    let (kind, status, masked, lead): (String, String, bool, String) = sqlx::query_as(
        "select ticket_type, inquiry_status, need_customer_masking, related_lead_id::text from tickets where ticket_id = $1::text::uuid",
    )
    .bind(out["ticket_id"].as_str().unwrap())
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(
        (kind.as_str(), status.as_str(), masked, lead.as_str()),
        (
            "inquiry_tariff",
            "OPEN",
            true,
            out["lead_id"].as_str().unwrap()
        )
    );
    let mut tx = db.as_user(&ops).await;
    let company: String = sqlx::query_scalar("select company_name from v_ops_rfqs_masked")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(company, "MASKED");
    drop(tx);
    let logged: i64 = sqlx::query_scalar(
        "select count(*) from sales_activities where activity_type = 'rfq_created'",
    )
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(logged, 1);

    // A salesperson's own lead is theirs from the start.
    let own = bundle(
        &db,
        &t.alice,
        json!({"channel": "referral", "company_name": "CV Berkah Jaya"}),
    )
    .await
    .unwrap();
    let owner: Uuid =
        sqlx::query_scalar("select sales_owner_user_id from leads where lead_id = $1::text::uuid")
            .bind(own["lead_id"].as_str().unwrap())
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(owner, t.alice.user_id);
}

#[tokio::test]
async fn bad_bundles_name_the_field_and_write_nothing() {
    let db = TestDb::new().await;
    let t = team(&db).await;
    db.create_user(t.tenant, "ops").await;
    let cases = [
        (json!({"company_name": "PT A"}), "channel"),
        (
            json!({"channel": "carrier pigeon", "company_name": "PT A"}),
            "channel",
        ),
        (json!({"channel": "website"}), "company_name"),
        (
            json!({"channel": "website", "company_name": "PT A", "contact_email": "nope"}),
            "contact_email",
        ),
        (
            json!({"channel": "website", "company_name": "PT A", "contact_phone": "12"}),
            "contact_phone",
        ),
        (
            json!({"channel": "website", "company_name": "PT A", "npwp": "123"}),
            "npwp",
        ),
        (
            json!({"channel": "website", "company_name": "PT A", "sales_owner_user_id": "x"}),
            "sales_owner_user_id",
        ),
        (
            json!({"channel": "website", "company_name": "PT A", "rfq": {"origin": "Jakarta"}}),
            "rfq.dept_target",
        ),
        (
            json!({"channel": "website", "company_name": "PT A", "rfq": {"dept_target": "OPS", "destination": "Medan"}}),
            "rfq.origin",
        ),
        // The ticket fails after customer, prospect and lead were written: all
        // roll back (the field named as sent: rfq.dept_target).
        (
            json!({"channel": "website", "company_name": "PT A",
                   "rfq": {"dept_target": "NOPE", "origin": "Jakarta", "destination": "Medan"}}),
            "rfq.dept_target",
        ),
    ];
    for (payload, field) in cases {
        let err = bundle(&db, &t.marketing, payload.clone())
            .await
            .unwrap_err();
        let db_err = err.as_database_error().unwrap();
        let pg = db_err
            .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .unwrap();
        assert_eq!(
            (db_err.code().as_deref(), pg.column()),
            (Some("P0001"), Some(field)),
            "{payload}: {}",
            db_err.message()
        );
    }
    for table in [
        "customers",
        "prospects",
        "leads",
        "tickets",
        "sales_activities",
    ] {
        let n: i64 = sqlx::query_scalar(&format!("select count(*) from {table}"))
            .fetch_one(&db.owner)
            .await
            .unwrap();
        assert_eq!(n, 0, "{table} was written");
    }
    let err = bundle(
        &db,
        &db.create_user(t.tenant, "director").await,
        json!({"channel": "website", "company_name": "PT A"}),
    )
    .await
    .unwrap_err();
    assert_eq!(code(&err), "42501");
}

#[tokio::test]
async fn rows_cannot_be_written_in_someone_elses_name() {
    let db = TestDb::new().await;
    let t = team(&db).await;
    let mut tx = db.as_user(&t.alice).await;
    let c: Value = sqlx::query_scalar("select find_or_create_customer('PT Jujur Abadi')")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    let customer: Uuid = c["customer_id"].as_str().unwrap().parse().unwrap();
    let prospect: Uuid = sqlx::query_scalar("select find_or_create_prospect($1, $2)")
        .bind(customer)
        .bind(t.alice.user_id)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    let created_by: Uuid = sqlx::query_scalar(
        "insert into leads (tenant_id, channel, company_name, customer_id, prospect_id, created_by)
         values (bizos.tenant_id(), 'phone', 'PT Jujur Abadi', $1, $2, $3) returning created_by",
    )
    .bind(customer)
    .bind(prospect)
    .bind(t.bob.user_id)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(created_by, t.alice.user_id);
}
