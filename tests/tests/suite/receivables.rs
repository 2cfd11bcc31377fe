//! Receivables (AR/DSO), run as the roles concerned:
//! invoices and payments by finance, outstanding / overdue / aging / DSO
//! views, sales scope by customer ownership, collection tickets.

use bizos_bff::auth::Caller;
use bizos_tests::{code, field, num, rpc, TestDb};
use serde_json::{json, Value};
use uuid::Uuid;

mod documents;

/// Runs `sql` (one jsonb result) as `who` in its own committed transaction.
/// The field the database named in the error (`column`).
struct Ar {
    tenant: Uuid,
    finance: Caller,
    director: Caller,
    manager: Caller,
    alice: Caller,
    bob: Caller,
    ops: Caller,
    /// Owned by alice (team of manager).
    c_alice: Uuid,
    /// Owned by bob (no manager).
    c_bob: Uuid,
}

async fn customer(db: &TestDb, tenant: Uuid, name: &str, owner: Option<&Caller>) -> Uuid {
    let id: Uuid = sqlx::query_scalar(
        "insert into customers (tenant_id, company_name) values ($1, $2) returning customer_id",
    )
    .bind(tenant)
    .bind(name)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    if let Some(owner) = owner {
        sqlx::query(
            "insert into prospects (tenant_id, customer_id, owner_user_id) values ($1, $2, $3)",
        )
        .bind(tenant)
        .bind(id)
        .bind(owner.user_id)
        .execute(&db.owner)
        .await
        .unwrap();
    }
    id
}

async fn setup(db: &TestDb) -> Ar {
    let tenant = db.create_tenant("acme").await;
    let finance = db.create_user(tenant, "finance").await;
    let director = db.create_user(tenant, "director").await;
    let manager = db.create_user(tenant, "sales_manager").await;
    let alice = db.create_user(tenant, "salesperson").await;
    let bob = db.create_user(tenant, "salesperson").await;
    let ops = db.create_user(tenant, "ops").await;
    sqlx::query("update profiles set manager_user_id = $1 where user_id = $2")
        .bind(manager.user_id)
        .bind(alice.user_id)
        .execute(&db.owner)
        .await
        .unwrap();
    let c_alice = customer(db, tenant, "PT Alice Logistik", Some(&alice)).await;
    let c_bob = customer(db, tenant, "CV Bob Trans", Some(&bob)).await;
    Ar {
        tenant,
        finance,
        director,
        manager,
        alice,
        bob,
        ops,
        c_alice,
        c_bob,
    }
}

/// An invoice issued `issued_ago` days ago, due `due_ago` days ago (negative: in the future).
async fn invoice(
    db: &TestDb,
    fin: &Caller,
    customer: Uuid,
    issued_ago: i32,
    due_ago: i32,
    subtotal: i64,
    tax: i64,
) -> Value {
    let mut tx = db.as_user(fin).await;
    let out: Value = sqlx::query_scalar(
        "select invoice_create(jsonb_build_object('customer_id', $1::uuid, 'subtotal', $2::bigint, 'tax', $3::bigint,
                'issue_date', tenant_today() - $4::int, 'due_date', tenant_today() - $5::int))",
    )
    .bind(customer)
    .bind(subtotal)
    .bind(tax)
    .bind(issued_ago)
    .bind(due_ago)
    .fetch_one(&mut *tx)
    .await
    .expect("invoice_create");
    tx.commit().await.unwrap();
    out
}

fn uuid_of(v: &Value, key: &str) -> Uuid {
    v[key].as_str().unwrap().parse().unwrap()
}

/// create_collection_ticket(invoice_id) as `who`.
async fn collect(db: &TestDb, who: &Caller, invoice: &Value) -> Result<Value, sqlx::Error> {
    let mut tx = db.as_user(who).await;
    let out = sqlx::query_scalar::<_, Value>("select create_collection_ticket($1)")
        .bind(uuid_of(invoice, "invoice_id"))
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(out)
}

async fn pay(db: &TestDb, fin: &Caller, body: Value) -> Result<Value, sqlx::Error> {
    rpc(db, fin, "select payment_record($1)", &[body]).await
}

#[tokio::test]
async fn outstanding_overdue_and_aging_buckets_are_valid() {
    let db = TestDb::new().await;
    let ar = setup(&db).await;
    let inv_95 = invoice(&db, &ar.finance, ar.c_alice, 100, 95, 1_000_000, 110_000).await;
    let inv_40 = invoice(&db, &ar.finance, ar.c_alice, 50, 40, 2_000_000, 220_000).await;
    let inv_10 = invoice(&db, &ar.finance, ar.c_bob, 20, 10, 500_000, 0).await;
    let inv_70 = invoice(&db, &ar.finance, ar.c_bob, 80, 70, 300_000, 33_000).await;
    let inv_cur = invoice(&db, &ar.finance, ar.c_bob, 0, -30, 100_000, 11_000).await;

    // Outstanding drops with a payment.
    let paid = pay(
        &db,
        &ar.finance,
        json!({"invoice_id": inv_95["invoice_id"], "amount": 110000}),
    )
    .await
    .unwrap();
    assert_eq!(num(&paid["outstanding"]), 1_000_000.0);
    // Paying the rest of inv_40 makes it PAID: no longer overdue.
    pay(
        &db,
        &ar.finance,
        json!({"invoice_id": inv_40["invoice_id"], "amount": 2220000}),
    )
    .await
    .unwrap();

    let mut tx = db.as_user(&ar.finance).await;
    let rows: Vec<(Uuid, f64, i32, bool, Option<String>)> = sqlx::query_as(
        "select invoice_id, outstanding::float8, days_past_due, is_overdue, aging_bucket
           from v_invoice_outstanding order by due_date",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    let by_id = |v: &Value| {
        let id = uuid_of(v, "invoice_id");
        rows.iter().find(|r| r.0 == id).cloned().unwrap()
    };
    assert_eq!(
        by_id(&inv_95),
        (by_id(&inv_95).0, 1_000_000.0, 95, true, Some(">90".into()))
    );
    assert_eq!(by_id(&inv_40).1, 0.0);
    assert!(!by_id(&inv_40).3, "a paid invoice is not overdue");
    assert_eq!(by_id(&inv_70).4.as_deref(), Some("61-90"));
    assert_eq!(by_id(&inv_10).4.as_deref(), Some("1-30"));
    assert_eq!(
        (
            by_id(&inv_cur).2,
            by_id(&inv_cur).3,
            by_id(&inv_cur).4.as_deref()
        ),
        (0, false, Some("current"))
    );

    let totals: (f64, f64, f64, f64, f64, f64, f64) = sqlx::query_as(
        "select current::float8, d1_30::float8, d31_60::float8, d61_90::float8, d90_plus::float8,
                outstanding::float8, overdue::float8
           from v_ar_aging where is_total and currency = 'IDR'",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(
        totals,
        (
            111_000.0,
            500_000.0,
            0.0,
            333_000.0,
            1_000_000.0,
            1_944_000.0,
            1_833_000.0
        )
    );
    let unbalanced: i64 = sqlx::query_scalar(
        "select count(*) from v_ar_aging where current + d1_30 + d31_60 + d61_90 + d90_plus <> outstanding",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!(unbalanced, 0);
}

#[tokio::test]
async fn sales_see_ar_only_of_customers_they_own() {
    let db = TestDb::new().await;
    let ar = setup(&db).await;
    let a = invoice(&db, &ar.finance, ar.c_alice, 40, 10, 1_000_000, 110_000).await;
    let b = invoice(&db, &ar.finance, ar.c_bob, 40, 10, 500_000, 0).await;
    pay(
        &db,
        &ar.finance,
        json!({"invoice_id": b["invoice_id"], "amount": 100000}),
    )
    .await
    .unwrap();

    let visible = |who: Caller| {
        let db = &db;
        async move {
            let mut tx = db.as_user(&who).await;
            let invoices: Vec<Uuid> =
                sqlx::query_scalar("select invoice_id from invoices order by invoice_no")
                    .fetch_all(&mut *tx)
                    .await
                    .unwrap();
            let payments: i64 = sqlx::query_scalar("select count(*) from payments")
                .fetch_one(&mut *tx)
                .await
                .unwrap();
            let aging: i64 =
                sqlx::query_scalar("select count(*) from v_ar_aging where not is_total")
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap();
            (invoices, payments, aging)
        }
    };
    let id = |v: &Value| uuid_of(v, "invoice_id");

    assert_eq!(visible(ar.alice.clone()).await, (vec![id(&a)], 0, 1));
    assert_eq!(
        visible(ar.manager.clone()).await,
        (vec![id(&a)], 0, 1),
        "team scope"
    );
    assert_eq!(visible(ar.bob.clone()).await, (vec![id(&b)], 1, 1));
    assert_eq!(
        visible(ar.director.clone()).await,
        (vec![id(&a), id(&b)], 1, 2)
    );
    assert_eq!(
        visible(ar.finance.clone()).await,
        (vec![id(&a), id(&b)], 1, 2)
    );
    assert_eq!(visible(ar.ops.clone()).await, (vec![], 0, 0));

    // Sales and directors cannot write AR.
    for who in [&ar.alice, &ar.director] {
        let err = rpc(
            &db,
            who,
            "select invoice_create($1)",
            &[json!({"customer_id": ar.c_alice, "subtotal": 1, "tax": 0})],
        )
        .await
        .unwrap_err();
        assert_eq!(code(&err), "42501");
        let err = pay(
            &db,
            who,
            json!({"invoice_id": a["invoice_id"], "amount": 1}),
        )
        .await
        .unwrap_err();
        assert_eq!(code(&err), "42501");
    }
    // Another tenant's finance does not even find the invoice.
    let other = db.create_tenant("other").await;
    let intruder = db.create_user(other, "finance").await;
    let err = pay(
        &db,
        &intruder,
        json!({"invoice_id": a["invoice_id"], "amount": 1}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (code(&err), field(&err).as_deref()),
        ("P0002".into(), Some("invoice_id"))
    );
}

#[tokio::test]
async fn finance_write_flow_is_simple_and_retry_safe() {
    let db = TestDb::new().await;
    let ar = setup(&db).await;
    let inv = rpc(
        &db,
        &ar.finance,
        "select invoice_create($1)",
        &[json!({"customer_id": ar.c_alice, "subtotal": 1000000, "tax": 110000})],
    )
    .await
    .unwrap();
    let year: i32 = sqlx::query_scalar("select extract(year from now())::int")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert!(
        inv["invoice_no"]
            .as_str()
            .unwrap()
            .starts_with(&format!("INV-{year}-")),
        "{inv}"
    );
    assert_eq!(inv["status"], "ISSUED");

    let body = json!({"invoice_id": inv["invoice_id"], "amount": 500000, "reference": "BCA-7781"});
    let first = pay(&db, &ar.finance, body.clone()).await.unwrap();
    let retry = pay(&db, &ar.finance, body).await.unwrap();
    assert_eq!(
        first["payment_id"], retry["payment_id"],
        "a retried transfer is recognised"
    );
    assert_eq!(retry["replayed"], true);
    assert_eq!(num(&retry["outstanding"]), 610_000.0);

    let err = pay(
        &db,
        &ar.finance,
        json!({"invoice_id": inv["invoice_id"], "amount": 610000.01}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (code(&err), field(&err).as_deref()),
        ("P0001".into(), Some("amount"))
    );

    let last = pay(
        &db,
        &ar.finance,
        json!({"invoice_no": inv["invoice_no"], "amount": 610000}),
    )
    .await
    .unwrap();
    assert_eq!(
        (num(&last["outstanding"]), last["invoice_status"].as_str()),
        (0.0, Some("PAID"))
    );
    let (status, paid_at): (String, Option<chrono::DateTime<chrono::Utc>>) =
        sqlx::query_as("select status, paid_at from invoices where invoice_no = $1")
            .bind(inv["invoice_no"].as_str())
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(status, "PAID");
    assert!(paid_at.is_some());

    // Audited with the actor.
    let audited: i64 = sqlx::query_scalar(
        "select count(*) from bizos.audit_log where table_name in ('public.invoices', 'public.payments') and actor = $1",
    )
    .bind(ar.finance.user_id)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert!(audited >= 3, "{audited}");
}

#[tokio::test]
async fn concurrent_payments_never_exceed_the_outstanding_amount() {
    let db = TestDb::new().await;
    let ar = setup(&db).await;
    let inv = invoice(&db, &ar.finance, ar.c_alice, 1, -30, 100, 0).await;

    // The first payment holds the invoice lock while the second one starts.
    let mut tx1 = db.as_user(&ar.finance).await;
    let _: Value = sqlx::query_scalar("select payment_record($1)")
        .bind(json!({"invoice_id": inv["invoice_id"], "amount": 60}))
        .fetch_one(&mut *tx1)
        .await
        .unwrap();
    let second = {
        let db_app = db.app.clone();
        let fin = ar.finance.clone();
        let body = json!({"invoice_id": inv["invoice_id"], "amount": 60});
        tokio::spawn(async move {
            let mut tx = bizos_bff::db::begin_as(&db_app, &fin).await.unwrap();
            let r = sqlx::query_scalar::<_, Value>("select payment_record($1)")
                .bind(body)
                .fetch_one(&mut *tx)
                .await;
            if r.is_ok() {
                tx.commit().await.unwrap();
            }
            r
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !second.is_finished(),
        "the second payment waits for the invoice lock"
    );
    tx1.commit().await.unwrap();
    let err = second.await.unwrap().unwrap_err();
    assert_eq!(
        (code(&err), field(&err).as_deref()),
        ("P0001".into(), Some("amount"))
    );

    let (paid, n): (f64, i64) = sqlx::query_as(
        "select coalesce(sum(amount), 0)::float8, count(*) from payments where invoice_id = $1",
    )
    .bind(uuid_of(&inv, "invoice_id"))
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!((paid, n), (60.0, 1));
}

#[tokio::test]
async fn rolling_dso_changes_with_the_data() {
    let db = TestDb::new().await;
    let ar = setup(&db).await;
    let dso_today = |who: Caller| {
        let db = &db;
        async move {
            let mut tx = db.as_user(&who).await;
            sqlx::query_as::<_, (f64, f64, Option<f64>)>(
                "select ar_outstanding::float8, credit_sales_30d::float8, dso_days::float8
                   from v_dso_rolling_30 where day = tenant_today() and currency = 'IDR'",
            )
            .fetch_optional(&mut *tx)
            .await
            .unwrap()
        }
    };
    assert_eq!(
        dso_today(ar.finance.clone()).await,
        None,
        "no invoices: no DSO rows"
    );

    // Sales only outside the window: DSO is undefined (NULL), not a number.
    invoice(&db, &ar.finance, ar.c_alice, 45, 15, 300_000, 0).await;
    assert_eq!(
        dso_today(ar.finance.clone()).await,
        Some((300_000.0, 0.0, None))
    );

    // DSO = AR / credit sales of the last 30 days x 30.
    let inv = invoice(&db, &ar.finance, ar.c_bob, 10, -20, 600_000, 0).await;
    assert_eq!(
        dso_today(ar.finance.clone()).await,
        Some((900_000.0, 600_000.0, Some(45.0)))
    );
    pay(
        &db,
        &ar.finance,
        json!({"invoice_id": inv["invoice_id"], "amount": 300000}),
    )
    .await
    .unwrap();
    assert_eq!(
        dso_today(ar.finance.clone()).await,
        Some((600_000.0, 600_000.0, Some(30.0)))
    );
}

#[tokio::test]
async fn collection_ticket_for_an_overdue_invoice_is_created_once() {
    let db = TestDb::new().await;
    let ar = setup(&db).await;
    let overdue = invoice(&db, &ar.finance, ar.c_alice, 40, 10, 1_000_000, 0).await;
    let not_due = invoice(&db, &ar.finance, ar.c_alice, 1, -29, 1_000_000, 0).await;
    let bobs = invoice(&db, &ar.finance, ar.c_bob, 40, 10, 1_000_000, 0).await;

    let first = collect(&db, &ar.alice, &overdue).await.unwrap();
    let again = collect(&db, &ar.alice, &overdue).await.unwrap();
    assert_eq!(first["created"], true);
    assert_eq!(
        (again["created"].clone(), again["ticket_id"].clone()),
        (json!(false), first["ticket_id"].clone())
    );

    let ticket_id = uuid_of(&first, "ticket_id");
    let (ticket_type, dept, customer): (String, String, Uuid) = sqlx::query_as(
        "select ticket_type, dept_target, related_customer_id from tickets where ticket_id = $1",
    )
    .bind(ticket_id)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(
        (ticket_type.as_str(), dept.as_str(), customer),
        ("general_request", "FIN", ar.c_alice)
    );

    let err = collect(&db, &ar.alice, &not_due).await.unwrap_err();
    assert_eq!(
        (code(&err), field(&err).as_deref()),
        ("P0001".into(), Some("invoice_id"))
    );
    let err = collect(&db, &ar.alice, &bobs).await.unwrap_err();
    assert_eq!(
        code(&err),
        "P0002",
        "another salesperson's customer is invisible"
    );
    let err = collect(&db, &ar.director, &bobs).await.unwrap_err();
    assert_eq!(code(&err), "42501");
    let ok = collect(&db, &ar.finance, &bobs).await.unwrap();
    assert_eq!(ok["created"], true);
}

#[tokio::test]
async fn bad_invoice_input_names_the_field_and_writes_nothing() {
    let db = TestDb::new().await;
    let ar = setup(&db).await;
    let cases = [
        (json!({"subtotal": 1, "tax": 0}), "P0001", "customer_id"),
        (
            json!({"customer_id": Uuid::new_v4(), "subtotal": 1, "tax": 0}),
            "P0002",
            "customer_id",
        ),
        (
            json!({"customer_id": ar.c_alice, "subtotal": 0, "tax": 0}),
            "P0001",
            "subtotal",
        ),
        (
            json!({"customer_id": ar.c_alice, "subtotal": 10}),
            "P0001",
            "tax",
        ),
        (
            json!({"customer_id": ar.c_alice, "subtotal": 10, "tax": -1}),
            "P0001",
            "tax",
        ),
        (
            json!({"customer_id": ar.c_alice, "subtotal": 10, "tax": 0, "issue_date": "2026-03-10", "due_date": "2026-03-01"}),
            "P0001",
            "due_date",
        ),
        (
            json!({"customer_id": ar.c_alice, "subtotal": 10, "tax": 0, "currency": "rupiah"}),
            "P0001",
            "currency",
        ),
        (
            json!({"customer_id": ar.c_alice, "subtotal": 10, "tax": 0, "invoice_no": "INV-1"}),
            "P0001",
            "invoice_no",
        ),
    ];
    for (body, state, column) in cases {
        let err = rpc(
            &db,
            &ar.finance,
            "select invoice_create($1)",
            std::slice::from_ref(&body),
        )
        .await
        .unwrap_err();
        assert_eq!(
            (code(&err), field(&err)),
            (state.to_owned(), Some(column.to_owned())),
            "{body}"
        );
    }
    let n: i64 = sqlx::query_scalar("select count(*) from invoices where tenant_id = $1")
        .bind(ar.tenant)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(n, 0);
    // No gapless number was used up by the failures.
    let inv = rpc(
        &db,
        &ar.finance,
        "select invoice_create($1)",
        &[json!({"customer_id": ar.c_alice, "subtotal": 10, "tax": 0})],
    )
    .await
    .unwrap();
    assert!(
        inv["invoice_no"].as_str().unwrap().ends_with("-000001"),
        "{inv}"
    );
}
