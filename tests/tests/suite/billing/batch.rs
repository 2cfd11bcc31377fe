//! The month-end of many tenants in one transaction: a tenant's
//! `billing.month_end` job closes the tenants of other queued month-end
//! jobs with its own and marks those jobs succeeded in the same
//! transaction (billing_month_end_batch, job_take). A tenant metered in a
//! placement of its own is left to its own job; one tenant's failure rolls
//! the batch back whole, and through the worker it costs only its own job.

use bizos_tests::TestDb;
use uuid::Uuid;

use super::lifecycle::{clock, plan, tenant_on};
use super::worker::month_end_run;

async fn invoice_count(db: &TestDb, tenant: Uuid) -> i64 {
    sqlx::query_scalar("select count(*) from billing_invoices where tenant_id = $1")
        .bind(tenant)
        .fetch_one(&db.owner)
        .await
        .unwrap()
}

/// The tenant's month-end job: status, attempts, progress done.
async fn job(db: &TestDb, tenant: Uuid) -> (String, i32, Option<i64>) {
    sqlx::query_as(
        "select status, attempts, progress_done from jobs
          where tenant_id = $1 and kind = 'billing.month_end'",
    )
    .bind(tenant)
    .fetch_one(&db.owner)
    .await
    .unwrap()
}

/// Tenant `poison`'s invoices cannot be written (a failure of that tenant
/// only); `None` lifts it.
async fn poison(db: &TestDb, tenant: Option<Uuid>) {
    let sql = match tenant {
        Some(t) => format!(
            "create function test_poison() returns trigger language plpgsql as $$
             begin
               if new.tenant_id = '{t}' then raise exception 'this tenant cannot be billed'; end if;
               return new;
             end $$;
             create trigger test_poison before insert on billing_invoices
               for each row execute function test_poison();"
        ),
        None => "drop trigger test_poison on billing_invoices; drop function test_poison();".into(),
    };
    sqlx::raw_sql(&sql).execute(&db.owner).await.unwrap();
}

/// Four tenants on a paid plan in December; with `place`, the fourth
/// metered in a schema of its own in this database's home cluster (a
/// placement row only: its month-end is never run here).
async fn december(db: &TestDb, place: bool) -> [Uuid; 4] {
    plan(db, "basic", 310_000, 0).await;
    clock(db, "2026-12-01T03:00:00Z").await;
    let tenants = [
        tenant_on(db, "batch-a", "basic").await,
        tenant_on(db, "batch-b", "basic").await,
        tenant_on(db, "batch-c", "basic").await,
        tenant_on(db, "batch-placed", "basic").await,
    ];
    if place {
        sqlx::raw_sql(&format!(
        "insert into control.clusters (cluster, region, url_secret, home) values ('local', 'id', 'LOCAL_URL', true);
         insert into control.tenant_placements (tenant_id, region, tier, cluster, database_name, schema_name)
         values ('{}', 'id', 'schema', 'local', current_database(), 'tenant_placed');",
        tenants[3]
    ))
    .execute(&db.owner)
    .await
    .unwrap();
    }
    // 1 Jan 00:30 in Jakarta: December has ended for all of them.
    clock(db, "2026-12-31T17:30:00Z").await;
    tenants
}

#[tokio::test]
async fn one_job_closes_the_queued_tenants_with_its_own_and_a_failure_rolls_back_all_of_them() {
    let db = TestDb::new().await;
    let [a, b, c, placed] = december(&db, true).await;
    let enqueued: i32 = sqlx::query_scalar("select billing_month_end_enqueue()")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert!(enqueued >= 4, "{enqueued} month-end jobs");

    // One tenant fails: nothing of the batch is written, the others' jobs
    // are still queued, untouched.
    poison(&db, Some(c)).await;
    let failed = sqlx::query("select * from billing_month_end_batch($1, 200)")
        .bind(a)
        .execute(&db.owner)
        .await;
    assert!(
        failed.is_err(),
        "the batch with a failing tenant went through"
    );
    for t in [a, b, c] {
        assert_eq!(invoice_count(&db, t).await, 0);
    }
    assert_eq!(job(&db, b).await, ("queued".into(), 0, None));
    poison(&db, None).await;

    // Batched: a's month-end with every other queued tenant's but the one
    // metered elsewhere, whose job stays queued for its own run.
    let (done, others): (i32, i32) =
        sqlx::query_as("select done, others from billing_month_end_batch($1, 200)")
            .bind(a)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(done, 1);
    assert_eq!(
        others,
        enqueued - 2,
        "every queued tenant but a and the placed one"
    );
    for t in [a, b, c] {
        assert_eq!(invoice_count(&db, t).await, 1, "tenant {t}");
    }
    for t in [b, c] {
        assert_eq!(job(&db, t).await, ("succeeded".into(), 1, Some(1)));
    }
    assert_eq!(invoice_count(&db, placed).await, 0);
    assert_eq!(job(&db, placed).await.0, "queued");
    // a's own job is its handler's to complete.
    assert_eq!(job(&db, a).await.0, "queued");

    // A batch of one takes no other job (b's month-end is done already).
    let (_, others): (i32, i32) =
        sqlx::query_as("select done, others from billing_month_end_batch($1, 1)")
            .bind(b)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(others, 0);
    assert_eq!(job(&db, a).await.0, "queued");
    assert_eq!(job(&db, placed).await.0, "queued");
}

#[tokio::test]
async fn through_the_worker_a_failing_tenant_costs_only_its_own_job() {
    let db = TestDb::new().await;
    let [a, b, c, _] = december(&db, false).await;
    poison(&db, Some(c)).await;
    // One slot: every job's batch would hold the failing tenant.
    let dead = month_end_run(&db, 1, None).await;
    assert_eq!(dead, 1, "only the failing tenant's job is dead");
    assert_eq!(job(&db, c).await.0, "dead");
    for t in [a, b] {
        assert_eq!(invoice_count(&db, t).await, 1, "tenant {t}");
        assert_eq!(job(&db, t).await.0, "succeeded");
    }
    assert_eq!(invoice_count(&db, c).await, 0);
}

#[tokio::test]
async fn the_worker_enqueues_the_month_end_of_tenants_with_work_due_by_itself() {
    let db = TestDb::new().await;
    let [a, b, _, _] = december(&db, false).await;
    // Mid-December nothing is due: no job.
    clock(&db, "2026-12-15T03:00:00Z").await;
    let due: i32 = sqlx::query_scalar("select billing_month_end_enqueue(true)")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(due, 0);
    // December ended: a worker closes it without the operator's call (its
    // schedules tick fires at start).
    clock(&db, "2026-12-31T17:30:00Z").await;
    let storage = bizos_bff::config::StorageSettings::Local {
        root: std::env::temp_dir(),
    };
    let worker = bizos_tests::start_worker(bizos_bff::worker::WorkerSettings {
        poll_interval: std::time::Duration::from_millis(100),
        kb_model_dir: None,
        ..bizos_tests::worker_settings(&db, 2000, storage)
    })
    .await;
    let started = std::time::Instant::now();
    while invoice_count(&db, a).await + invoice_count(&db, b).await < 2 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "December was not closed by the worker"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    drop(worker.stop);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(60), worker.stopped).await;
}

/// One batch closes months missed by several tenants in passes over all
/// of them (billing_close_due), each tenant month by month with its own
/// count: one from October (three periods), one from December (one), one
/// on a free plan (its periods close with no invoice).
#[tokio::test]
async fn a_batch_catches_up_each_tenants_missed_months_with_its_own_count() {
    let db = TestDb::new().await;
    plan(&db, "basic", 310_000, 0).await;
    plan(&db, "free", 0, 0).await;
    clock(&db, "2026-10-01T03:00:00Z").await;
    let october = tenant_on(&db, "catch-oct", "basic").await;
    let free = tenant_on(&db, "catch-free", "free").await;
    clock(&db, "2026-12-01T03:00:00Z").await;
    let december = tenant_on(&db, "catch-dec", "basic").await;
    clock(&db, "2026-12-31T17:30:00Z").await;
    let enqueued: i32 = sqlx::query_scalar("select billing_month_end_enqueue()")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert!(enqueued >= 3, "{enqueued} month-end jobs");

    let (done, others): (i32, i32) =
        sqlx::query_as("select done, others from billing_month_end_batch($1, 10)")
            .bind(october)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(done, 3, "October's three periods");
    assert_eq!(others, enqueued - 1, "every other queued tenant");
    let invoices: Vec<(Uuid, String, String)> = sqlx::query_as(
        "select tenant_id, period_start::text, total::text from billing_invoices
          where tenant_id = any($2) order by tenant_id = $1 desc, period_start",
    )
    .bind(october)
    .bind(vec![october, free, december])
    .fetch_all(&db.owner)
    .await
    .unwrap();
    // 310,000 + 11% PPN a month, nothing prorated.
    assert_eq!(
        invoices,
        vec![
            (october, "2026-10-01".into(), "344100".into()),
            (october, "2026-11-01".into(), "344100".into()),
            (october, "2026-12-01".into(), "344100".into()),
            (december, "2026-12-01".into(), "344100".into()),
        ]
    );
    assert_eq!(job(&db, december).await, ("succeeded".into(), 1, Some(1)));
    assert_eq!(job(&db, free).await, ("succeeded".into(), 1, Some(3)));
    let periods: Vec<(Uuid, String)> = sqlx::query_as(
        "select tenant_id, current_period_start::text from subscriptions
          where tenant_id = any($1) order by current_period_start, tenant_id",
    )
    .bind(vec![october, free, december])
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert!(
        periods.iter().all(|(_, p)| p == "2027-01-01"),
        "every subscription moved to January: {periods:?}"
    );
    // A rerun closes nothing.
    let (done, _): (i32, i32) =
        sqlx::query_as("select done, others from billing_month_end_batch($1, 10)")
            .bind(october)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(done, 0);
    assert_eq!(invoice_count(&db, october).await, 3);
}
