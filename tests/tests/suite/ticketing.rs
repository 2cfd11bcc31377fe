//! Ticketing (TCK-1..3: four fixed types, RFQs masked for ops, SLA events
//! recorded by the database and the first response time; C4, C5, C7),
//! run as the roles concerned.

use bizos_bff::auth::Caller;
use bizos_tests::{rpc, TestDb};
use serde_json::{json, Value};
use uuid::Uuid;

async fn create(db: &TestDb, who: &Caller, payload: Value) -> Result<Value, sqlx::Error> {
    rpc(db, who, "select ticket_create($1)", &[payload]).await
}

fn ticket_id(v: &Value) -> Uuid {
    v["ticket_id"].as_str().unwrap().parse().unwrap()
}

/// SQLSTATE and the error's column (the field the BFF reports).
fn code_and_field(err: &sqlx::Error) -> (String, Option<String>) {
    let db_err = err.as_database_error().expect("a database error");
    let pg = db_err
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .unwrap();
    (
        db_err.code().unwrap_or_default().to_string(),
        pg.column().map(str::to_owned),
    )
}

async fn visible_tickets(db: &TestDb, who: &Caller) -> Vec<Uuid> {
    let mut tx = db.as_user(who).await;
    sqlx::query_scalar("select ticket_id from tickets order by ticket_id")
        .fetch_all(&mut *tx)
        .await
        .unwrap()
}

fn rfq(company: &str) -> Value {
    json!({
        "ticket_type": "inquiry_tariff", "subject": "Tarif JKT-SUB 20ft", "dept_target": "OPS",
        "origin": "Jakarta", "destination": "Surabaya", "weight_kg": 1200,
        "company_name": company, "contact_name": "Budi", "contact_phone": "0811-222-3333",
        "contact_email": "budi@example.co.id"
    })
}

#[tokio::test]
async fn tickets_get_numbers_and_start_open_in_the_column_of_their_type() {
    let db = TestDb::new().await;
    let t = db.create_tenant("acme").await;
    // The harness gives ops users department OPS, the target used below.
    db.create_user(t, "ops").await;
    let sales = db.create_user(t, "salesperson").await;

    let inquiry = create(&db, &sales, rfq("PT Rahasia")).await.unwrap();
    assert!(inquiry["ticket_no"].as_str().unwrap().starts_with("TCK-"));
    let complaint = create(
        &db,
        &sales,
        json!({"ticket_type": "complaint", "subject": "Barang rusak", "dept_target": "OPS"}),
    )
    .await
    .unwrap();
    assert_ne!(inquiry["ticket_no"], complaint["ticket_no"]);

    let rows: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "select ticket_type, inquiry_status, ticket_status from tickets order by ticket_type",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![
            ("complaint".into(), None, Some("OPEN".into())),
            ("inquiry_tariff".into(), Some("OPEN".into()), None),
        ]
    );
}

#[tokio::test]
async fn bad_input_names_the_field_and_writes_nothing() {
    let db = TestDb::new().await;
    let t = db.create_tenant("acme").await;
    // The harness gives ops users department OPS, the target used below.
    db.create_user(t, "ops").await;
    let sales = db.create_user(t, "salesperson").await;
    let cases = [
        (json!({"subject": "x", "dept_target": "OPS"}), "ticket_type"),
        (
            json!({"ticket_type": "question", "subject": "x", "dept_target": "OPS"}),
            "ticket_type",
        ),
        (
            json!({"ticket_type": "complaint", "dept_target": "OPS"}),
            "subject",
        ),
        (
            json!({"ticket_type": "complaint", "subject": "x", "dept_target": "OPS", "priority": "asap"}),
            "priority",
        ),
        (
            json!({"ticket_type": "complaint", "subject": "x", "dept_target": "NOWHERE"}),
            "dept_target",
        ),
        (
            json!({"ticket_type": "complaint", "subject": "x", "dept_target": "OPS", "ticket_no": "TCK-1"}),
            "ticket_no",
        ),
        (
            json!({"ticket_type": "complaint", "subject": "x", "dept_target": "OPS", "origin": "Jakarta"}),
            "origin",
        ),
        (
            json!({"ticket_type": "complaint", "subject": "x", "dept_target": "OPS", "related_lead_id": Uuid::new_v4()}),
            "related_lead_id",
        ),
        (
            json!({"ticket_type": "inquiry_tariff", "subject": "x", "dept_target": "OPS", "destination": "Medan"}),
            "origin",
        ),
        (
            json!({"ticket_type": "inquiry_tariff", "subject": "x", "dept_target": "OPS", "origin": "A", "destination": "B", "weight_kg": -1}),
            "weight_kg",
        ),
        (
            json!({"ticket_type": "inquiry_tariff", "subject": "x", "dept_target": "OPS", "origin": "A", "destination": "B", "contact_email": "budi@"}),
            "contact_email",
        ),
    ];
    for (payload, field) in cases {
        let err = create(&db, &sales, payload.clone()).await.unwrap_err();
        assert_eq!(
            code_and_field(&err),
            ("P0001".to_owned(), Some(field.to_owned())),
            "{payload}"
        );
    }
    let n: i64 = sqlx::query_scalar("select count(*) from tickets")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(n, 0);

    let director = db.create_user(t, "director").await;
    let err = create(
        &db,
        &director,
        json!({"ticket_type": "complaint", "subject": "x", "dept_target": "OPS"}),
    )
    .await
    .unwrap_err();
    assert_eq!(code_and_field(&err).0, "42501");
}

#[tokio::test]
async fn ops_see_their_department_and_rfqs_masked() {
    let db = TestDb::new().await;
    let t = db.create_tenant("acme").await;
    // The harness gives ops users department OPS, the target used below.
    db.create_user(t, "ops").await;
    let other = db.create_tenant("other").await;
    let sales = db.create_user(t, "salesperson").await;
    let ops = db.create_user(t, "ops").await;
    let ops_sby = db.create_user(t, "ops").await;
    let finance = db.create_user(t, "finance").await;
    let ops_other_tenant = db.create_user(other, "ops").await;
    sqlx::query("update profiles set dept_code = 'OPS-SBY' where user_id = $1")
        .bind(ops_sby.user_id)
        .execute(&db.owner)
        .await
        .unwrap();

    let inquiry = ticket_id(&create(&db, &sales, rfq("PT Rahasia")).await.unwrap());
    let fin = ticket_id(
        &create(
            &db,
            &finance,
            json!({"ticket_type": "general_request", "subject": "Tagihan", "dept_target": "FIN"}),
        )
        .await
        .unwrap(),
    );

    assert_eq!(visible_tickets(&db, &ops).await, vec![inquiry]);
    assert_eq!(visible_tickets(&db, &finance).await, vec![fin]);
    assert_eq!(visible_tickets(&db, &sales).await, vec![inquiry]);
    assert!(visible_tickets(&db, &ops_sby).await.is_empty());
    assert!(visible_tickets(&db, &ops_other_tenant).await.is_empty());

    let mut tx = db.as_user(&ops).await;
    let (company, contact, phone, origin): (String, String, String, String) = sqlx::query_as(
        "select company_name, contact_name, contact_phone, origin from v_ops_rfqs_masked where ticket_id = $1",
    )
    .bind(inquiry)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(
        (
            company.as_str(),
            contact.as_str(),
            phone.as_str(),
            origin.as_str()
        ),
        ("MASKED", "***", "***", "Jakarta")
    );
    drop(tx);

    // Sales keep reading the real company through the table.
    let mut tx = db.as_user(&sales).await;
    let company: String =
        sqlx::query_scalar("select company_name from tickets where ticket_id = $1")
            .bind(inquiry)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert_eq!(company, "PT Rahasia");
}

#[tokio::test]
async fn the_first_reply_by_someone_else_is_the_first_response() {
    let db = TestDb::new().await;
    let t = db.create_tenant("acme").await;
    // The harness gives ops users department OPS, the target used below.
    db.create_user(t, "ops").await;
    let sales = db.create_user(t, "salesperson").await;
    let ops = db.create_user(t, "ops").await;
    let id = ticket_id(
        &create(
            &db,
            &sales,
            json!({"ticket_type": "service_request", "subject": "Pickup", "dept_target": "OPS"}),
        )
        .await
        .unwrap(),
    );
    let first_response = |who: Caller| {
        let db = &db;
        async move {
            let mut tx = db.as_user(&who).await;
            sqlx::query_scalar::<_, Option<f64>>(
                "select first_response_minutes::float8 from v_ticket_first_response where ticket_id = $1",
            )
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .unwrap()
        }
    };

    let sql = "select ticket_add_message(($1#>>'{}')::uuid, $2#>>'{}', ($3#>>'{}')::boolean)";
    rpc(
        &db,
        &sales,
        sql,
        &[json!(id), json!("Mohon dicek"), json!(false)],
    )
    .await
    .unwrap();
    rpc(
        &db,
        &ops,
        sql,
        &[json!(id), json!("internal note"), json!(true)],
    )
    .await
    .unwrap();
    assert_eq!(first_response(sales.clone()).await, None);

    let r = rpc(
        &db,
        &ops,
        sql,
        &[json!(id), json!("Sedang dicek"), json!(false)],
    )
    .await
    .unwrap();
    assert!(r["first_response_at"].is_string());
    assert!(first_response(sales.clone()).await.unwrap() >= 0.0);

    let events: Vec<(String, Option<Uuid>)> = sqlx::query_as(
        "select event_type, actor_user_id from sla_events where ticket_id = $1 order by occurred_at",
    )
    .bind(id)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert_eq!(
        events,
        vec![("FIRST_RESPONSE".to_owned(), Some(ops.user_id))]
    );
}

#[tokio::test]
async fn lifecycles_are_enforced_and_stamped_by_the_database() {
    let db = TestDb::new().await;
    let t = db.create_tenant("acme").await;
    // The harness gives ops users department OPS, the target used below.
    db.create_user(t, "ops").await;
    let sales = db.create_user(t, "salesperson").await;
    let ops = db.create_user(t, "ops").await;
    let id = ticket_id(
        &create(
            &db,
            &sales,
            json!({"ticket_type": "complaint", "subject": "Rusak", "dept_target": "OPS"}),
        )
        .await
        .unwrap(),
    );
    let go = |who: &Caller, to: &str| {
        let (db, who, to) = (&db, who.clone(), to.to_owned());
        async move {
            rpc(
                db,
                &who,
                "select ticket_transition(($1#>>'{}')::uuid, $2#>>'{}')",
                &[json!(id), json!(to)],
            )
            .await
        }
    };

    let err = go(&ops, "CLOSED").await.unwrap_err();
    assert_eq!(
        code_and_field(&err),
        ("P0001".to_owned(), Some("to_status".to_owned()))
    );
    let err = go(&sales, "IN_PROGRESS").await.unwrap_err();
    assert_eq!(
        code_and_field(&err).0,
        "42501",
        "salespeople do not work tickets"
    );

    for to in ["IN_PROGRESS", "WAITING_CUSTOMER", "IN_PROGRESS", "RESOLVED"] {
        go(&ops, to).await.unwrap();
    }
    let resolved: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("select resolved_at from tickets where ticket_id = $1")
            .bind(id)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert!(resolved.is_some());
    go(&ops, "IN_PROGRESS").await.unwrap();
    go(&ops, "RESOLVED").await.unwrap();
    let r = go(&ops, "CLOSED").await.unwrap();
    assert!(r["closed_at"].is_string() && r["resolved_at"].is_string());
    let err = go(&ops, "IN_PROGRESS").await.unwrap_err();
    assert_eq!(code_and_field(&err).0, "P0001", "CLOSED is final");

    let counts: Vec<(String, i64)> = sqlx::query_as(
        "select event_type, count(*) from sla_events where ticket_id = $1 group by 1 order by 1",
    )
    .bind(id)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert_eq!(
        counts,
        vec![
            ("CLOSED".to_owned(), 1),
            ("RESOLVED".to_owned(), 2),
            ("STATUS_CHANGE".to_owned(), 7)
        ]
    );

    // Stamps belong to triggers: the request role may not write them.
    let mut tx = db.as_user(&ops).await;
    let err = sqlx::query("update tickets set resolved_at = null where ticket_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert_eq!(code_and_field(&err).0, "42501");
}

#[tokio::test]
async fn business_minutes_skip_nights_weekends_and_holidays() {
    let db = TestDb::new().await;
    let t = db.create_tenant("acme").await;
    // The harness gives ops users department OPS, the target used below.
    db.create_user(t, "ops").await;
    sqlx::query(
        "insert into holidays (tenant_id, holiday_date, name) values ($1, '2025-03-11', 'Nyepi')",
    )
    .bind(t)
    .execute(&db.owner)
    .await
    .unwrap();
    // Default calendar: Monday-Friday 08:00-17:00 Asia/Jakarta (UTC+7).
    let minutes = |from: &'static str, to: &'static str| {
        let db = &db;
        async move {
            sqlx::query_scalar::<_, f64>(
                "select business_minutes_between($1, $2::timestamptz, $3::timestamptz)::float8",
            )
            .bind(t)
            .bind(from)
            .bind(to)
            .fetch_one(&db.owner)
            .await
            .unwrap()
        }
    };
    assert_eq!(
        minutes("2025-03-07 16:00+07", "2025-03-10 09:00+07").await,
        120.0
    );
    assert_eq!(
        minutes("2025-03-10 16:00+07", "2025-03-12 09:00+07").await,
        120.0
    );
    assert_eq!(
        minutes("2025-03-03 00:00+00", "2025-03-03 02:00+00").await,
        60.0
    );

    let due: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("select add_business_minutes($1, '2025-03-10 16:30+07', 60)")
            .bind(t)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(due.to_rfc3339(), "2025-03-12T01:30:00+00:00");
}
