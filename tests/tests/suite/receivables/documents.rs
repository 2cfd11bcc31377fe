//! Refunds and credit notes, as finance makes them: a refund never more
//! than its payment net of earlier refunds, re-opening the invoice; a
//! credit note never more than the invoice's open balance, in its
//! currency; both numbered gapless per tenant (RF-, CN-) also when
//! transactions race and one rolls back; and the receivables reports
//! (aging, DSO, the digest's AR) agreeing with each other and with the
//! figures worked out by hand, for tenants in two time zones.

use bizos_bff::auth::Caller;
use bizos_tests::{code, field, num, rpc, TestDb};
use serde_json::{json, Value};
use uuid::Uuid;

struct Org {
    tenant: Uuid,
    finance: Caller,
    director: Caller,
    customer: Uuid,
}

async fn org(db: &TestDb, slug: &str, zone: &str) -> Org {
    let tenant = db.create_tenant(slug).await;
    sqlx::query("update tenants set time_zone = $2 where tenant_id = $1")
        .bind(tenant)
        .bind(zone)
        .execute(&db.owner)
        .await
        .unwrap();
    let finance = db.create_user(tenant, "finance").await;
    let director = db.create_user(tenant, "director").await;
    let customer: Uuid = sqlx::query_scalar(
        "insert into customers (tenant_id, company_name) values ($1, 'PT Retur Abadi') returning customer_id",
    )
    .bind(tenant)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    Org {
        tenant,
        finance,
        director,
        customer,
    }
}

/// An invoice of `subtotal` + 11% PPN issued `issued_ago` days before the
/// tenant's today, due 30 days after, in `currency`.
async fn invoice(db: &TestDb, o: &Org, issued_ago: i32, subtotal: i64, currency: &str) -> Value {
    rpc(
        db,
        &o.finance,
        "select invoice_create(jsonb_build_object('customer_id', $1::jsonb #>> '{}', 'subtotal', $2, 'tax', $3,
                'currency', $5::jsonb #>> '{}', 'issue_date', tenant_today() - ($4::jsonb #>> '{}')::int,
                'due_date', tenant_today() - ($4::jsonb #>> '{}')::int + 30))",
        &[
            json!(o.customer),
            json!(subtotal),
            json!(subtotal * 11 / 100),
            json!(issued_ago),
            json!(currency),
        ],
    )
    .await
    .expect("invoice_create")
}

/// The tenant's today minus `ago` days, as the tenant's finance user sees it.
async fn day(db: &TestDb, o: &Org, ago: i32) -> String {
    let mut tx = db.as_user(&o.finance).await;
    let d: String = sqlx::query_scalar("select (tenant_today() - $1)::text")
        .bind(ago)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    d
}

async fn pay(db: &TestDb, o: &Org, inv: &Value, amount: f64, paid_on: &str) -> Value {
    rpc(
        db,
        &o.finance,
        "select payment_record($1)",
        &[json!({"invoice_id": inv["invoice_id"], "amount": amount, "paid_on": paid_on})],
    )
    .await
    .expect("payment_record")
}

async fn refund(db: &TestDb, who: &Caller, body: Value) -> Result<Value, sqlx::Error> {
    rpc(db, who, "select refund_record($1)", &[body]).await
}

async fn credit(db: &TestDb, who: &Caller, body: Value) -> Result<Value, sqlx::Error> {
    rpc(db, who, "select credit_note_create($1)", &[body]).await
}

/// The invoice row as the owner reads it.
async fn invoice_row(db: &TestDb, inv: &Value) -> Value {
    sqlx::query_scalar(
        "select jsonb_build_object('status', status, 'amount_paid', amount_paid, 'amount_credited', amount_credited,
                                   'paid_at', paid_at, 'issued_at', issued_at,
                                   'outstanding', (select o.outstanding from v_invoice_outstanding o
                                                    where o.tenant_id = i.tenant_id and o.invoice_id = i.invoice_id))
           from invoices i where invoice_id = $1",
    )
    .bind(inv["invoice_id"].as_str().unwrap().parse::<Uuid>().unwrap())
    .fetch_one(&db.owner)
    .await
    .unwrap()
}

fn refused(result: Result<Value, sqlx::Error>, sqlstate: &str, column: &str, what: &str) -> String {
    let e = result.expect_err(what);
    assert_eq!(code(&e), sqlstate, "{what}: {e}");
    assert_eq!(field(&e).as_deref(), Some(column), "{what}: {e}");
    e.to_string()
}

#[tokio::test]
async fn a_refund_never_exceeds_its_payment_net_of_earlier_refunds_and_reopens_the_invoice() {
    let db = TestDb::new().await;
    let o = org(&db, "refunds", "Asia/Jakarta").await;
    let inv = invoice(&db, &o, 10, 1_000_000, "IDR").await;
    let today = day(&db, &o, 0).await;
    let p = pay(&db, &o, &inv, 1_110_000.0, &day(&db, &o, 5).await).await;
    assert_eq!(p["invoice_status"], "PAID", "{p}");
    let issued_at = invoice_row(&db, &inv).await["issued_at"].clone();

    // More than was paid: refused naming the amount, nothing written.
    let msg = refused(
        refund(
            &db,
            &o.finance,
            json!({"payment_id": p["payment_id"], "amount": 1_110_000.01, "reason": "retur"}),
        )
        .await,
        "P0001",
        "amount",
        "a refund above the payment",
    );
    assert!(msg.contains("1110000.00 left to refund"), "{msg}");
    // Not before the payment, not in the future, with a reason.
    refused(
        refund(&db, &o.finance, json!({"payment_id": p["payment_id"], "amount": 1, "reason": "x", "refunded_on": day(&db, &o, 6).await})).await,
        "P0001",
        "refunded_on",
        "a refund before its payment",
    );
    refused(
        refund(&db, &o.finance, json!({"payment_id": p["payment_id"], "amount": 1, "reason": "x", "refunded_on": day(&db, &o, -1).await})).await,
        "P0001",
        "refunded_on",
        "a refund dated tomorrow",
    );
    refused(
        refund(
            &db,
            &o.finance,
            json!({"payment_id": p["payment_id"], "amount": 1}),
        )
        .await,
        "P0001",
        "reason",
        "a refund without a reason",
    );
    let n: i64 = sqlx::query_scalar("select count(*) from refunds")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(n, 0);

    // A part: the invoice opens again by that much (PAID -> ISSUED, paid_at
    // cleared, issued_at kept), and the balance is AR again.
    let r1 = refund(
        &db,
        &o.finance,
        json!({"payment_no": p["payment_no"], "amount": 400_000, "reason": "retur barang"}),
    )
    .await
    .expect("a partial refund");
    assert!(r1["refund_no"].as_str().unwrap().starts_with("RF-"), "{r1}");
    assert_eq!(r1["refunded_on"], today.as_str());
    assert_eq!(num(&r1["refundable"]), 710_000.0, "{r1}");
    assert_eq!(num(&r1["outstanding"]), 400_000.0, "{r1}");
    assert_eq!(r1["invoice_status"], "ISSUED", "{r1}");
    let row = invoice_row(&db, &inv).await;
    assert_eq!(row["status"], "ISSUED", "{row}");
    assert_eq!(num(&row["amount_paid"]), 710_000.0, "{row}");
    assert_eq!(num(&row["outstanding"]), 400_000.0, "{row}");
    assert!(row["paid_at"].is_null(), "{row}");
    assert_eq!(
        row["issued_at"], issued_at,
        "re-opened, the invoice keeps when it was issued"
    );

    // The rest of the payment, net of the first refund: one cent more is
    // refused, exactly the rest is taken.
    refused(
        refund(
            &db,
            &o.finance,
            json!({"payment_id": p["payment_id"], "amount": 710_000.01, "reason": "retur"}),
        )
        .await,
        "P0001",
        "amount",
        "a second refund above what is left",
    );
    let r2 = refund(
        &db,
        &o.finance,
        json!({"payment_id": p["payment_id"], "amount": 710_000, "reason": "batal"}),
    )
    .await
    .expect("the rest");
    assert_eq!(num(&r2["refundable"]), 0.0);
    assert_eq!(num(&r2["outstanding"]), 1_110_000.0);
    // Paid again in full: PAID again, with a new paid_at.
    let again = pay(&db, &o, &inv, 1_110_000.0, &today).await;
    assert_eq!(again["invoice_status"], "PAID", "{again}");
    assert!(!invoice_row(&db, &inv).await["paid_at"].is_null());

    // Audited: every refund in the audit log, as finance's insert.
    let audited: i64 = sqlx::query_scalar(
        "select count(*) from bizos.audit_log where table_name = 'public.refunds' and action = 'INSERT' and actor = $1",
    )
    .bind(o.finance.user_id)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(audited, 2);
    // Never changed once recorded, even by the owner.
    let e = sqlx::query("update refunds set amount = 1")
        .execute(&db.owner)
        .await
        .expect_err("a refund changed");
    assert_eq!(field(&e).as_deref(), Some("amount"), "{e}");
    // Not finance: refused.
    let e = refund(
        &db,
        &o.director,
        json!({"payment_id": p["payment_id"], "amount": 1, "reason": "x"}),
    )
    .await
    .expect_err("a director refunds");
    assert_eq!(code(&e), "42501", "{e}");
}

#[tokio::test]
async fn a_credit_note_never_exceeds_the_open_balance_and_keeps_the_invoices_currency() {
    let db = TestDb::new().await;
    let o = org(&db, "credits", "Asia/Jakarta").await;
    let inv = invoice(&db, &o, 10, 1_000, "USD").await;
    pay(&db, &o, &inv, 300.0, &day(&db, &o, 3).await).await;

    // Open: 1110 - 300 = 810.
    let msg = refused(
        credit(
            &db,
            &o.finance,
            json!({"invoice_id": inv["invoice_id"], "amount": 810.01, "reason": "diskon"}),
        )
        .await,
        "P0001",
        "amount",
        "a credit note above the open balance",
    );
    assert!(msg.contains("open balance 810.00"), "{msg}");
    refused(
        credit(&db, &o.finance, json!({"invoice_id": inv["invoice_id"], "amount": 10, "reason": "diskon", "currency": "IDR"})).await,
        "P0001",
        "currency",
        "a credit note in another currency",
    );
    refused(
        credit(&db, &o.finance, json!({"invoice_id": inv["invoice_id"], "amount": 10, "reason": "diskon", "issue_date": day(&db, &o, 11).await})).await,
        "P0001",
        "issue_date",
        "a credit note before its invoice",
    );
    refused(
        credit(
            &db,
            &o.finance,
            json!({"invoice_id": Uuid::new_v4(), "amount": 10, "reason": "x"}),
        )
        .await,
        "P0002",
        "invoice_id",
        "a credit note of no invoice",
    );

    let c1 = credit(&db, &o.finance, json!({"invoice_no": inv["invoice_no"], "amount": 110, "reason": "potongan harga", "currency": "usd"}))
        .await
        .expect("a credit note");
    let no = c1["credit_note_no"].as_str().unwrap();
    assert!(
        no.starts_with("CN-") && no.ends_with("-000001"),
        "the tenant's first credit note: {c1}"
    );
    assert_eq!(c1["currency"], "USD");
    assert_eq!(num(&c1["outstanding"]), 700.0);
    let row = invoice_row(&db, &inv).await;
    assert_eq!(num(&row["amount_credited"]), 110.0, "{row}");
    assert_eq!(num(&row["outstanding"]), 700.0, "{row}");
    // A payment now fits only what is left after the credit note.
    let e = rpc(
        &db,
        &o.finance,
        "select payment_record($1)",
        &[json!({"invoice_id": inv["invoice_id"], "amount": 700.01})],
    )
    .await
    .expect_err("a payment above what the credit note left");
    assert_eq!(field(&e).as_deref(), Some("amount"), "{e}");

    // Crediting the rest settles it (PAID); then nothing is open to credit,
    // and a void is refused for the credit notes.
    let c2 = credit(
        &db,
        &o.finance,
        json!({"invoice_id": inv["invoice_id"], "amount": 700, "reason": "retur penuh"}),
    )
    .await
    .expect("the rest");
    assert_eq!(c2["invoice_status"], "PAID", "{c2}");
    assert!(c2["credit_note_no"].as_str().unwrap().ends_with("-000002"));
    refused(
        credit(
            &db,
            &o.finance,
            json!({"invoice_id": inv["invoice_id"], "amount": 1, "reason": "x"}),
        )
        .await,
        "P0001",
        "invoice_id",
        "a credit note of a PAID invoice",
    );

    // Back-dated before a payment that used what was open then: refused
    // (the invoice would be below zero on the days between).
    let inv2 = invoice(&db, &o, 10, 1_000, "USD").await;
    let p2 = pay(&db, &o, &inv2, 1_110.0, &day(&db, &o, 5).await).await;
    refund(&db, &o.finance, json!({"payment_id": p2["payment_id"], "amount": 1_110, "reason": "salah transfer", "refunded_on": day(&db, &o, 2).await}))
        .await
        .expect("refund");
    let msg = refused(
        credit(&db, &o.finance, json!({"invoice_id": inv2["invoice_id"], "amount": 100, "reason": "x", "issue_date": day(&db, &o, 8).await})).await,
        "P0001",
        "amount",
        "a credit note dated before a payment of the whole",
    );
    assert!(msg.contains("open balance 0.00"), "{msg}");
    credit(&db, &o.finance, json!({"invoice_id": inv2["invoice_id"], "amount": 100, "reason": "x", "issue_date": day(&db, &o, 2).await}))
        .await
        .expect("dated after the refund");
    let mut tx = db.as_user(&o.finance).await;
    let e = sqlx::query("select invoice_void($1)")
        .bind(
            inv2["invoice_id"]
                .as_str()
                .unwrap()
                .parse::<Uuid>()
                .unwrap(),
        )
        .execute(&mut *tx)
        .await
        .expect_err("a credited invoice voided");
    drop(tx);
    assert_eq!(field(&e).as_deref(), Some("amount_credited"), "{e}");

    // Not finance: refused.
    let e = credit(
        &db,
        &o.director,
        json!({"invoice_id": inv2["invoice_id"], "amount": 1, "reason": "x"}),
    )
    .await
    .expect_err("a director credits");
    assert_eq!(code(&e), "42501", "{e}");
}

/// Credit notes and refunds raced by concurrent transactions, one of
/// which rolls back after it drew its number: the numbers that remain are
/// 1..n without a gap, each once.
#[tokio::test]
async fn credit_note_and_refund_numbers_are_gapless_under_concurrency() {
    let db = TestDb::new().await;
    let o = org(&db, "gapless", "Asia/Jakarta").await;
    let today = day(&db, &o, 0).await;
    let mut invoices = Vec::new();
    let mut payments = Vec::new();
    for _ in 0..6 {
        let inv = invoice(&db, &o, 3, 1_000, "IDR").await;
        payments.push(pay(&db, &o, &inv, 500.0, &today).await);
        invoices.push(inv);
    }
    // Futures of one task, each on a connection of its own: the database
    // serialises them on the tenant's counters.
    let race = invoices
        .iter()
        .zip(&payments)
        .enumerate()
        .map(|(i, (inv, p))| {
            let (db, finance) = (&db, &o.finance);
            async move {
                let mut tx = db.as_user(finance).await;
                let c: Value = sqlx::query_scalar("select credit_note_create($1)")
                    .bind(json!({"invoice_id": inv["invoice_id"], "amount": 10, "reason": "race"}))
                    .fetch_one(&mut *tx)
                    .await
                    .expect("credit note");
                let r: Value = sqlx::query_scalar("select refund_record($1)")
                    .bind(json!({"payment_id": p["payment_id"], "amount": 10, "reason": "race"}))
                    .fetch_one(&mut *tx)
                    .await
                    .expect("refund");
                // Hold the numbers a moment so that the others queue behind.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                if i == 2 {
                    tx.rollback().await.unwrap();
                } else {
                    tx.commit().await.unwrap();
                }
                (c, r)
            }
        });
    futures_util::future::join_all(race).await;
    for (table, col) in [("credit_notes", "credit_note_no"), ("refunds", "refund_no")] {
        let numbers: Vec<i64> = sqlx::query_scalar(&format!(
            "select split_part({col}, '-', 3)::bigint from {table} where tenant_id = $1 order by 1"
        ))
        .bind(o.tenant)
        .fetch_all(&db.owner)
        .await
        .unwrap();
        assert_eq!(
            numbers,
            (1..=5).collect::<Vec<i64>>(),
            "{table}: {numbers:?}"
        );
    }
}

/// AR outstanding in the aging = DSO's AR on the tenant's today = the
/// digest's AR outstanding for that day, and the overdue part likewise,
/// with payments, refunds and credit notes in every report, for tenants
/// east and west of UTC; and each equals the figure worked out by hand.
#[tokio::test]
async fn aging_dso_and_the_digest_agree_on_ar_with_refunds_and_credit_notes() {
    let db = TestDb::new().await;
    for (slug, zone) in [
        ("ar-wib", "Asia/Jakarta"),
        ("ar-pst", "America/Los_Angeles"),
    ] {
        let o = org(&db, slug, zone).await;
        // A: 1110 issued 40 days ago (due 10 days ago), paid in full 20 days
        // ago, 300 refunded 5 days ago: 300 overdue (1-30).
        let a = invoice(&db, &o, 40, 1_000_000, "IDR").await;
        let pa = pay(&db, &o, &a, 1_110_000.0, &day(&db, &o, 20).await).await;
        refund(&db, &o.finance, json!({"payment_id": pa["payment_id"], "amount": 300_000, "reason": "retur", "refunded_on": day(&db, &o, 5).await}))
            .await
            .unwrap();
        // B: 2220 issued 5 days ago (current), 220 credited today: 2000.
        let b = invoice(&db, &o, 5, 2_000_000, "IDR").await;
        credit(
            &db,
            &o.finance,
            json!({"invoice_id": b["invoice_id"], "amount": 220_000, "reason": "diskon"}),
        )
        .await
        .unwrap();
        // C: 5550 issued 100 days ago (due 70 days ago), 1000 paid 60 days
        // ago, 550 credited 50 days ago: 4000 overdue (61-90).
        let c = invoice(&db, &o, 100, 5_000_000, "IDR").await;
        pay(&db, &o, &c, 1_000_000.0, &day(&db, &o, 60).await).await;
        credit(&db, &o.finance, json!({"invoice_id": c["invoice_id"], "amount": 550_000, "reason": "klaim", "issue_date": day(&db, &o, 50).await}))
            .await
            .unwrap();
        let (outstanding, overdue) = (6_300_000.0, 4_300_000.0);

        let today = day(&db, &o, 0).await;
        let mut tx = db.as_user(&o.director).await;
        let aging: Value = sqlx::query_scalar(
            "select to_jsonb(a) from v_ar_aging a where a.tenant_id = $1 and a.is_total and a.currency = 'IDR'",
        )
        .bind(o.tenant)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        let dso: Value = sqlx::query_scalar(
            "select to_jsonb(d) from v_dso_rolling_30 d where d.tenant_id = $1 and d.currency = 'IDR' and d.day = $2::date",
        )
        .bind(o.tenant)
        .bind(&today)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
        let digest =
            crate::digest::reconcile::aggregates(&db, o.tenant, today.parse().unwrap()).await;
        let f = &digest["figures"];

        assert_eq!(
            num(&aging["outstanding"]),
            outstanding,
            "{zone}: aging {aging}"
        );
        assert_eq!(num(&aging["overdue"]), overdue, "{zone}: aging {aging}");
        assert_eq!(num(&aging["d1_30"]), 300_000.0, "{zone}: aging {aging}");
        assert_eq!(num(&aging["d61_90"]), 4_000_000.0, "{zone}: aging {aging}");
        assert_eq!(num(&aging["current"]), 2_000_000.0, "{zone}: aging {aging}");
        assert_eq!(
            num(&dso["ar_outstanding"]),
            outstanding,
            "{zone}: dso {dso}"
        );
        // Net credit sales of the last 30 days: B less its credit note.
        assert_eq!(
            num(&dso["credit_sales_30d"]),
            2_000_000.0,
            "{zone}: dso {dso}"
        );
        assert_eq!(num(&f["ar_outstanding"]), outstanding, "{zone}: digest {f}");
        assert_eq!(num(&f["ar_overdue"]), overdue, "{zone}: digest {f}");
        assert_eq!(num(&f["ar_overdue_1_30"]), 300_000.0, "{zone}: digest {f}");
        assert_eq!(
            num(&f["ar_overdue_61_90"]),
            4_000_000.0,
            "{zone}: digest {f}"
        );
    }
}
