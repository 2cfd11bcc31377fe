//! Annual billing against hand-computed cases: a term billed in advance on
//! the invoice that closes the month before it, usage still monthly, the
//! next term at the term's end, an upgrade mid-term credited and charged
//! by days, a downgrade never lowering a billed term, the way back to
//! monthly when the term runs out, and MRR as a twelfth of the year.

use bizos_tests::TestDb;
use chrono::NaiveDate;
use serde_json::json;
use uuid::Uuid;

use super::lifecycle::{clock, plan, tenant_on};
use super::month_end::{close, lines, totals};

async fn annual_price(db: &TestDb, code: &str, price: i64) {
    sqlx::query("update plans set annual_price = $2 where plan_code = $1")
        .bind(code)
        .bind(price)
        .execute(&db.owner)
        .await
        .unwrap();
}

async fn set_interval(
    db: &TestDb,
    tenant: Uuid,
    interval: &str,
) -> (String, Option<NaiveDate>, Option<NaiveDate>) {
    sqlx::query_as(
        "select billing_interval, annual_from, annual_until from billing_set_interval($1, $2)",
    )
    .bind(tenant)
    .bind(interval)
    .fetch_one(&db.owner)
    .await
    .unwrap()
}

fn day(s: &str) -> Option<NaiveDate> {
    Some(s.parse().unwrap())
}

fn kinds_and_amounts(l: &[(String, String, String)]) -> Vec<(&str, &str)> {
    l.iter().map(|(k, _, a)| (k.as_str(), a.as_str())).collect()
}

async fn mrr(db: &TestDb, tenant: Uuid) -> String {
    sqlx::query_scalar("select mrr::text from v_billing_tenants where tenant_id = $1")
        .bind(tenant)
        .fetch_one(&db.owner)
        .await
        .unwrap()
}

async fn invoice_periods(db: &TestDb, tenant: Uuid) -> Vec<NaiveDate> {
    sqlx::query_scalar(
        "select period_start from billing_invoices where tenant_id = $1 order by period_start",
    )
    .bind(tenant)
    .fetch_all(&db.owner)
    .await
    .unwrap()
}

async fn period(db: &TestDb, tenant: Uuid) -> NaiveDate {
    sqlx::query_scalar("select current_period_start from subscriptions where tenant_id = $1")
        .bind(tenant)
        .fetch_one(&db.owner)
        .await
        .unwrap()
}

async fn month_end(db: &TestDb, tenant: Uuid) -> i32 {
    sqlx::query_scalar("select billing_month_end_of($1)")
        .bind(tenant)
        .fetch_one(&db.owner)
        .await
        .unwrap()
}

/// Basic: 310,000 a month, 3,100,000 a year. Started on 10 Nov, annual
/// from the next period (1 Dec): November bills 10..30 Nov monthly, 21 of
/// 30 days x 310,000 = 217,000, and the term 1 Dec 2026 - 30 Nov 2027 in
/// advance, 3,100,000; subtotal 3,317,000, PPN 364,870, total 3,681,870.
/// December bills its usage only. The next term comes on the invoice of
/// November 2027; after the switch back to monthly (asked in May) it does
/// not, and December 2027 is a month's fee again.
#[tokio::test]
async fn a_term_is_billed_in_advance_usage_monthly_and_the_way_back_to_monthly_at_its_end() {
    let db = TestDb::new().await;
    plan(&db, "basic", 310_000, 0).await;
    annual_price(&db, "basic", 3_100_000).await;
    clock(&db, "2026-11-10T03:00:00Z").await;
    let t = tenant_on(&db, "bill-an", "basic").await;

    // Asked for and taken back before the first term: nothing changes.
    clock(&db, "2026-11-20T03:00:00Z").await;
    assert_eq!(
        set_interval(&db, t, "annual").await,
        ("annual".into(), day("2026-12-01"), None)
    );
    assert_eq!(
        set_interval(&db, t, "monthly").await,
        ("monthly".into(), None, None)
    );
    assert_eq!(
        set_interval(&db, t, "annual").await,
        ("annual".into(), day("2026-12-01"), None)
    );
    assert_eq!(
        mrr(&db, t).await,
        "310000",
        "November is still billed monthly"
    );

    clock(&db, "2026-11-30T17:00:00Z").await; // 1 Dec 00:00 in Jakarta
    let nov = close(&db, t, None).await.expect("November's invoice");
    let l = lines(&db, nov).await;
    assert_eq!(
        kinds_and_amounts(&l),
        [("proration", "217000"), ("plan", "3100000")],
        "{l:?}"
    );
    assert!(
        l[0].1
            .starts_with("Plan basic, 10 Nov 2026 - 30 Nov 2026: prorated 21 of 30 days"),
        "{}",
        l[0].1
    );
    assert_eq!(l[1].1, "Plan basic annual, 1 Dec 2026 - 30 Nov 2027");
    assert_eq!(
        totals(&db, nov).await,
        ("3317000".into(), "364870".into(), "3681870".into())
    );
    assert_eq!(mrr(&db, t).await, "258333", "3,100,000 / 12");
    // The AI margin's revenue is the same twelfth (its month is the real
    // one, inside the open-ended window).
    let revenue: String =
        sqlx::query_scalar("select revenue::text from v_llm_margin_monthly where tenant_id = $1")
            .bind(t)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(revenue, "258333");

    // December: the term is paid; its usage is billed as every month's.
    clock(&db, "2026-12-31T17:00:00Z").await;
    let usage = json!([
        {"metric_code": "ai_tokens", "label": "AI tokens", "unit": "token", "quantity": 1_500_000,
         "included": 1_000_000, "overage": 500_000, "unit_price": 0.05, "amount": 25_000}
    ]);
    let dec = close(&db, t, Some(usage))
        .await
        .expect("December's invoice");
    assert_eq!(
        kinds_and_amounts(&lines(&db, dec).await),
        [("overage", "25000")]
    );

    // The months of the term with no usage make no invoice; November 2027
    // brings the next term.
    clock(&db, "2027-11-30T17:00:00Z").await;
    month_end(&db, t).await;
    assert_eq!(
        period(&db, t).await,
        day("2027-12-01").unwrap(),
        "January to November 2027 closed"
    );
    let periods = invoice_periods(&db, t).await;
    assert_eq!(
        periods,
        [
            day("2026-11-01").unwrap(),
            day("2026-12-01").unwrap(),
            day("2027-11-01").unwrap()
        ]
    );
    let nov27: Uuid = sqlx::query_scalar(
        "select billing_invoice_id from billing_invoices where tenant_id = $1 and period_start = '2027-11-01'",
    )
    .bind(t)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    let l = lines(&db, nov27).await;
    assert_eq!(kinds_and_amounts(&l), [("plan", "3100000")]);
    assert_eq!(l[0].1, "Plan basic annual, 1 Dec 2027 - 30 Nov 2028");

    // Back to monthly in May 2028: the term running (to 30 Nov 2028) is
    // paid and runs out; asking for annual again would renew it.
    clock(&db, "2028-05-10T03:00:00Z").await;
    assert_eq!(
        set_interval(&db, t, "monthly").await,
        ("monthly".into(), day("2026-12-01"), day("2028-12-01"))
    );
    assert_eq!(
        set_interval(&db, t, "annual").await,
        ("annual".into(), day("2026-12-01"), None)
    );
    assert_eq!(
        set_interval(&db, t, "monthly").await,
        ("monthly".into(), day("2026-12-01"), day("2028-12-01"))
    );
    clock(&db, "2028-11-30T16:59:00Z").await;
    assert_eq!(mrr(&db, t).await, "258333", "November 2028 is in the term");
    clock(&db, "2028-11-30T17:00:00Z").await;
    month_end(&db, t).await;
    assert_eq!(period(&db, t).await, day("2028-12-01").unwrap());
    assert_eq!(
        invoice_periods(&db, t).await.len(),
        3,
        "no term after the last one"
    );
    assert_eq!(mrr(&db, t).await, "310000", "December 2028 is monthly");
    clock(&db, "2028-12-31T17:00:00Z").await;
    let dec28 = close(&db, t, None).await.expect("December 2028's invoice");
    let l = lines(&db, dec28).await;
    assert_eq!(kinds_and_amounts(&l), [("plan", "310000")]);
    assert_eq!(l[0].1, "Plan basic, 1 Dec 2028 - 31 Dec 2028");
}

/// A term 1 Jan - 31 Dec 2027 (365 days) on Basic (3,100,000 a year),
/// Pro (6,200,000) from 15 Mar: 73 days on Basic, 292 on Pro. By hand:
/// the billed year credited (-3,100,000), Basic 73/365 x 3,100,000 =
/// 620,000, Pro 292/365 x 6,200,000 = 4,960,000; subtotal 2,480,000 =
/// (6,200,000 - 3,100,000) x 292/365, PPN 272,800, total 2,752,800. Back
/// to Basic on 1 Jun would credit more than it charges: the term stays as
/// billed and June has no invoice; a cancellation gives nothing back.
#[tokio::test]
async fn an_upgrade_mid_term_is_credited_and_charged_by_days_a_downgrade_never_lowers_the_term() {
    let db = TestDb::new().await;
    plan(&db, "basic", 310_000, 0).await;
    plan(&db, "pro", 620_000, 0).await;
    annual_price(&db, "basic", 3_100_000).await;
    annual_price(&db, "pro", 6_200_000).await;
    clock(&db, "2026-12-01T03:00:00Z").await;
    let t = tenant_on(&db, "bill-up", "basic").await;
    set_interval(&db, t, "annual").await;
    clock(&db, "2026-12-31T17:00:00Z").await;
    let dec = close(&db, t, None).await.expect("December's invoice");
    assert_eq!(
        kinds_and_amounts(&lines(&db, dec).await),
        [("plan", "310000"), ("plan", "3100000")]
    );

    clock(&db, "2027-03-15T02:00:00Z").await;
    sqlx::query("select billing_change_plan($1, 'pro')")
        .bind(t)
        .execute(&db.owner)
        .await
        .unwrap();
    // Closed late, January and February do not bill a change of March.
    clock(&db, "2027-03-31T17:00:00Z").await;
    month_end(&db, t).await;
    assert_eq!(period(&db, t).await, day("2027-04-01").unwrap());
    let periods = invoice_periods(&db, t).await;
    assert_eq!(
        periods,
        [day("2026-12-01").unwrap(), day("2027-03-01").unwrap()],
        "nothing in January or February"
    );
    let mar: Uuid = sqlx::query_scalar(
        "select billing_invoice_id from billing_invoices where tenant_id = $1 and period_start = '2027-03-01'",
    )
    .bind(t)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    let l = lines(&db, mar).await;
    assert_eq!(
        kinds_and_amounts(&l),
        [
            ("credit", "-3100000"),
            ("proration", "620000"),
            ("proration", "4960000")
        ],
        "{l:?}"
    );
    assert_eq!(
        l[0].1,
        "Credit: plan basic annual, 1 Jan 2027 - 31 Dec 2027, billed before at 3,100,000"
    );
    assert!(
        l[1].1
            .starts_with("Plan basic annual, 1 Jan 2027 - 14 Mar 2027: prorated 73 of 365 days"),
        "{}",
        l[1].1
    );
    assert!(
        l[2].1
            .starts_with("Plan pro annual, 15 Mar 2027 - 31 Dec 2027: prorated 292 of 365 days"),
        "{}",
        l[2].1
    );
    assert_eq!(
        totals(&db, mar).await,
        ("2480000".into(), "272800".into(), "2752800".into())
    );
    assert_eq!(mrr(&db, t).await, "516667", "6,200,000 / 12");

    // A plan sold by the month only is refused to a subscription billed by
    // the year, and the year to a subscription on it.
    plan(&db, "monthly-only", 100_000, 0).await;
    let refused = sqlx::query("select billing_change_plan($1, 'monthly-only')")
        .bind(t)
        .execute(&db.owner)
        .await
        .expect_err("no annual price");
    assert_eq!(
        bizos_tests::field(&refused).as_deref(),
        Some("plan_code"),
        "{refused}"
    );
    let refused = sqlx::query("select plan_update('pro', '{\"annual_price\": 0}')")
        .execute(&db.owner)
        .await
        .expect_err("Pro has a tenant billed by the year");
    assert_eq!(
        bizos_tests::field(&refused).as_deref(),
        Some("annual_price"),
        "{refused}"
    );
    let other = tenant_on(&db, "bill-mo", "monthly-only").await;
    let refused = sqlx::query("select billing_set_interval($1, 'annual')")
        .bind(other)
        .execute(&db.owner)
        .await
        .expect_err("no annual price");
    assert_eq!(
        bizos_tests::field(&refused).as_deref(),
        Some("billing_interval"),
        "{refused}"
    );

    // Down to Basic from 1 Jun, then canceled on 10 August: the term's fee
    // is never lowered once billed.
    clock(&db, "2027-06-01T02:00:00Z").await;
    sqlx::query("select billing_change_plan($1, 'basic')")
        .bind(t)
        .execute(&db.owner)
        .await
        .unwrap();
    clock(&db, "2027-06-30T17:00:00Z").await;
    month_end(&db, t).await;
    assert_eq!(period(&db, t).await, day("2027-07-01").unwrap());
    assert_eq!(
        invoice_periods(&db, t).await.len(),
        2,
        "no credit for the downgrade"
    );
    clock(&db, "2027-08-10T02:00:00Z").await;
    // The guard stamps the real time; the test clock's day is set after.
    for change in ["status = 'canceled'", "canceled_at = billing_now()"] {
        sqlx::query(&format!(
            "update subscriptions set {change} where tenant_id = $1"
        ))
        .bind(t)
        .execute(&db.owner)
        .await
        .unwrap();
    }
    clock(&db, "2027-08-31T17:00:00Z").await;
    month_end(&db, t).await;
    assert_eq!(
        period(&db, t).await,
        day("2027-09-01").unwrap(),
        "August closed"
    );
    assert_eq!(
        invoice_periods(&db, t).await.len(),
        2,
        "no credit for the cancellation"
    );
    let billed: String = sqlx::query_scalar(
        "select sum(l.amount)::text from billing_invoice_lines l join billing_invoices i using (tenant_id, billing_invoice_id)
          where l.tenant_id = $1 and l.period_start >= '2027-01-01' and i.status <> 'void'",
    )
    .bind(t)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(billed, "5580000", "3,100,000 + 2,480,000 for the term");
}
