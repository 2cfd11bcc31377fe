//! The worker's schedules tick asks every few seconds which tenants have
//! month-end work (`billing_month_end_enqueue(true)`: a period ended, a
//! draft past its grace period) or dunning work (`billing_dunning_enqueue`:
//! an open dunning, an invoice past its due date). Among 3,000 subscribed
//! tenants a tick costs the tenants due, not every subscription, and it
//! enqueues exactly those, by each tenant's own today (a tenant at UTC+14
//! is due hours before one in Jakarta).

use std::collections::BTreeSet;

use bizos_tests::TestDb;
use uuid::Uuid;

use super::lifecycle::{clock, plan};
use crate::list_cost::heap_rows;

const TENANTS: i64 = 3000;

/// One tick's question in a transaction of its own: the tenants it
/// enqueued a job of `kind` for, and the rows of subscriptions and
/// billing_invoices it read.
async fn tick(db: &TestDb, sql: &str, kind: &str) -> (BTreeSet<Uuid>, i64, i64) {
    sqlx::query("delete from jobs where kind = $1")
        .bind(kind)
        .execute(&db.owner)
        .await
        .unwrap();
    let mut tx = db.owner.begin().await.unwrap();
    let (subs, invoices) = (
        heap_rows(&mut tx, "subscriptions").await,
        heap_rows(&mut tx, "billing_invoices").await,
    );
    let n: i32 = sqlx::query_scalar(sql).fetch_one(&mut *tx).await.unwrap();
    let read = (
        heap_rows(&mut tx, "subscriptions").await - subs,
        heap_rows(&mut tx, "billing_invoices").await - invoices,
    );
    let enqueued: Vec<Uuid> = sqlx::query_scalar("select tenant_id from jobs where kind = $1")
        .bind(kind)
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(n as usize, enqueued.len(), "{sql}");
    (enqueued.into_iter().collect(), read.0, read.1)
}

const MONTH_END: &str = "select billing_month_end_enqueue(true)";
const DUNNING: &str = "select billing_dunning_enqueue()";

#[tokio::test]
async fn a_tick_reads_the_tenants_due_not_every_subscription() {
    let db = TestDb::new().await;
    plan(&db, "basic", 310_000, 0).await;
    clock(&db, "2026-12-10T03:00:00Z").await;
    sqlx::query(
        "insert into tenants (slug, name, plan_code)
         select 'tick-' || i, 'Tick ' || i, 'basic' from generate_series(1, $1) i",
    )
    .bind(TENANTS)
    .execute(&db.owner)
    .await
    .unwrap();
    let far_east: Uuid = sqlx::query_scalar(
        "insert into tenants (slug, name, plan_code, time_zone)
         values ('tick-kiritimati', 'Kiritimati', 'basic', 'Pacific/Kiritimati') returning tenant_id",
    )
    .fetch_one(&db.owner)
    .await
    .unwrap();
    let subscribed: i64 = sqlx::query_scalar(
        "select count(*) from subscriptions where current_period_end = '2027-01-01'",
    )
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(
        subscribed,
        TENANTS + 1,
        "every tenant subscribed for December"
    );
    sqlx::raw_sql("analyze subscriptions; analyze billing_invoices; analyze tenants")
        .execute(&db.owner)
        .await
        .unwrap();

    // Mid-December nothing is due: nothing enqueued, no subscription read.
    let (enqueued, subs, _) = tick(&db, MONTH_END, "billing.month_end").await;
    assert_eq!(enqueued, BTreeSet::new());
    assert!(
        subs <= 5,
        "a tick with nothing due read {subs} subscriptions"
    );
    let (enqueued, subs, invoices) = tick(&db, DUNNING, "billing.dunning").await;
    assert_eq!(enqueued, BTreeSet::new());
    assert!(
        subs <= 5 && invoices <= 5,
        "a dunning tick with nothing due read {subs} subscriptions and {invoices} invoices"
    );

    // Work due for five tenants: three periods that ended on 1 December,
    // a draft past its grace period, and a finalized invoice past its due
    // date (14 days' terms from 10 December).
    let some: Vec<Uuid> = sqlx::query_scalar(
        "select tenant_id from tenants where slug like 'tick-%' and tenant_id <> $1 order by slug limit 5",
    )
    .bind(far_east)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    sqlx::query(
        "update subscriptions set current_period_start = '2026-11-01', current_period_end = '2026-12-01'
          where tenant_id = any($1)",
    )
    .bind(&some[..3])
    .execute(&db.owner)
    .await
    .unwrap();
    for (tenant, finalize_after) in [
        (some[3], "2026-12-05T00:00:00Z"),
        (some[4], "2026-12-01T00:00:00Z"),
    ] {
        sqlx::query(
            "insert into billing_invoices (tenant_id, subscription_id, period_start, period_end, finalize_after)
             select s.tenant_id, s.subscription_id, '2026-10-01', '2026-11-01', $2::timestamptz
               from subscriptions s where s.tenant_id = $1",
        )
        .bind(tenant)
        .bind(finalize_after)
        .execute(&db.owner)
        .await
        .unwrap();
    }
    sqlx::query("select billing_finalize(i.tenant_id, i.billing_invoice_id) from billing_invoices i where i.tenant_id = $1")
        .bind(some[4])
        .execute(&db.owner)
        .await
        .unwrap();
    let due: chrono::NaiveDate =
        sqlx::query_scalar("select due_date from billing_invoices where tenant_id = $1")
            .bind(some[4])
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(due.to_string(), "2026-12-24");
    clock(&db, "2026-12-27T03:00:00Z").await;

    let (enqueued, subs, _) = tick(&db, MONTH_END, "billing.month_end").await;
    assert_eq!(enqueued, some[..4].iter().copied().collect::<BTreeSet<_>>());
    assert!(
        subs <= 20,
        "a tick with 3 periods due read {subs} subscriptions"
    );
    let (enqueued, subs, invoices) = tick(&db, DUNNING, "billing.dunning").await;
    assert_eq!(enqueued, BTreeSet::from([some[4]]));
    assert!(
        subs <= 10 && invoices <= 10,
        "a dunning tick with one invoice overdue read {subs} subscriptions and {invoices} invoices"
    );

    // 31 December 10:30 UTC: 1 January 00:30 at UTC+14, where December has
    // ended; 17:30 in Jakarta, where it has not.
    clock(&db, "2026-12-31T10:30:00Z").await;
    let (enqueued, _, _) = tick(&db, MONTH_END, "billing.month_end").await;
    let mut expected: BTreeSet<Uuid> = some[..4].iter().copied().collect();
    expected.insert(far_east);
    assert_eq!(enqueued, expected);
    // Once Jakarta's December has ended too, every tenant is due.
    clock(&db, "2026-12-31T17:30:00Z").await;
    let (enqueued, _, _) = tick(&db, MONTH_END, "billing.month_end").await;
    assert_eq!(enqueued.len() as i64, TENANTS + 1);
}
