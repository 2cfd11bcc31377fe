//! The month-end close: plan fee and prorations against hand-computed
//! cases, PPN, idempotence of a rerun, and the operator view's figures
//! reconciled with the invoices.

use bizos_tests::TestDb;
use serde_json::json;
use uuid::Uuid;

use super::lifecycle::{clock, plan, tenant_on};

pub async fn close(db: &TestDb, tenant: Uuid, usage: Option<serde_json::Value>) -> Option<Uuid> {
    let due: Option<chrono::NaiveDate> =
        sqlx::query_scalar("select period_start from billing_period_due($1)")
            .bind(tenant)
            .fetch_optional(&db.owner)
            .await
            .unwrap();
    let due = due?;
    sqlx::query_scalar("select billing_close_period($1, $2, $3)")
        .bind(tenant)
        .bind(due)
        .bind(usage)
        .fetch_one(&db.owner)
        .await
        .unwrap()
}

pub async fn lines(db: &TestDb, invoice: Uuid) -> Vec<(String, String, String)> {
    sqlx::query_as(
        "select kind, description, amount::text from billing_invoice_lines
          where billing_invoice_id = $1 order by position",
    )
    .bind(invoice)
    .fetch_all(&db.owner)
    .await
    .unwrap()
}

pub async fn totals(db: &TestDb, invoice: Uuid) -> (String, String, String) {
    sqlx::query_as(
        "select subtotal::text, tax::text, total::text from billing_invoices where billing_invoice_id = $1",
    )
    .bind(invoice)
    .fetch_one(&db.owner)
    .await
    .unwrap()
}

/// Basic (310,000) from 1 Dec, Pro (620,000) from 15 Dec (a 31-day
/// month): by hand, Basic 14/31 x 310,000 = 140,000 and Pro 17/31 x
/// 620,000 = 340,000; subtotal 480,000, PPN 11% = 52,800, total 532,800.
/// The tenant started on 10 Nov with a 5-day trial: November bills
/// 15..30 Nov, 16 of 30 days x 310,000 = 165,333.33 -> 165,333.
#[tokio::test]
async fn a_plan_change_mid_month_is_prorated_by_days_as_computed_by_hand() {
    let db = TestDb::new().await;
    plan(&db, "basic", 310_000, 5).await;
    plan(&db, "pro", 620_000, 0).await;
    clock(&db, "2026-11-10T03:00:00Z").await;
    let t = tenant_on(&db, "bill-pr", "basic").await;

    // Nothing is due before the month ends.
    clock(&db, "2026-11-30T16:59:00Z").await; // 23:59 in Jakarta
    assert_eq!(close(&db, t, None).await, None);

    clock(&db, "2026-11-30T17:00:00Z").await; // 1 Dec 00:00 in Jakarta
    let nov = close(&db, t, None).await.expect("November's invoice");
    let l = lines(&db, nov).await;
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!(l[0].0, "proration");
    assert_eq!(l[0].2, "165333");
    assert!(l[0].1.contains("16 of 30 days"), "{}", l[0].1);
    assert_eq!(
        totals(&db, nov).await,
        ("165333".into(), "18187".into(), "183520".into())
    );

    sqlx::query("update subscriptions set status = 'active' where tenant_id = $1")
        .bind(t)
        .execute(&db.owner)
        .await
        .unwrap();
    clock(&db, "2026-12-15T02:00:00Z").await;
    sqlx::query("select billing_change_plan($1, 'pro')")
        .bind(t)
        .execute(&db.owner)
        .await
        .unwrap();
    clock(&db, "2026-12-31T17:00:00Z").await;
    let dec = close(&db, t, None).await.expect("December's invoice");
    let l = lines(&db, dec).await;
    let amounts: Vec<(&str, &str)> = l.iter().map(|(k, _, a)| (k.as_str(), a.as_str())).collect();
    assert_eq!(amounts, [("proration", "140000"), ("proration", "340000")], "{l:?}");
    assert!(l[0].1.starts_with("Plan basic, 1 Dec 2026 - 14 Dec 2026: prorated 14 of 31 days"), "{}", l[0].1);
    assert!(l[1].1.starts_with("Plan pro, 15 Dec 2026 - 31 Dec 2026: prorated 17 of 31 days"), "{}", l[1].1);
    assert_eq!(
        totals(&db, dec).await,
        ("480000".into(), "52800".into(), "532800".into())
    );

    // January: a whole month on Pro is the plan fee, plus overage.
    clock(&db, "2027-01-31T17:00:00Z").await;
    let usage = json!([
        {"metric_code": "ai_tokens", "label": "AI tokens", "unit": "token", "quantity": 1_500_000,
         "included": 1_000_000, "overage": 500_000, "unit_price": 0.05, "amount": 25_000},
        {"metric_code": "seats", "label": "Seats", "unit": "seat", "quantity": 3,
         "included": 5, "overage": 0, "unit_price": 50_000, "amount": 0}
    ]);
    let jan = close(&db, t, Some(usage)).await.expect("January's invoice");
    let l = lines(&db, jan).await;
    let amounts: Vec<(&str, &str)> = l.iter().map(|(k, _, a)| (k.as_str(), a.as_str())).collect();
    assert_eq!(amounts, [("plan", "620000"), ("overage", "25000")], "{l:?}");
    assert_eq!(
        totals(&db, jan).await,
        ("645000".into(), "70950".into(), "715950".into())
    );
}

#[tokio::test]
async fn closing_a_period_again_makes_no_second_invoice() {
    let db = TestDb::new().await;
    plan(&db, "basic", 310_000, 0).await;
    clock(&db, "2026-12-01T03:00:00Z").await;
    let t = tenant_on(&db, "bill-rr", "basic").await;
    clock(&db, "2027-01-01T00:00:00Z").await;
    let first = close(&db, t, None).await.expect("an invoice");
    // The same period once more, by its start date, as a rerun would.
    let again: Option<Uuid> = sqlx::query_scalar("select billing_close_period($1, '2026-12-01', null)")
        .bind(t)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(again, Some(first));
    assert_eq!(close(&db, t, None).await, None, "January has not ended");
    let n: i64 = sqlx::query_scalar("select count(*) from billing_invoices where tenant_id = $1")
        .bind(t)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(n, 1);
}
