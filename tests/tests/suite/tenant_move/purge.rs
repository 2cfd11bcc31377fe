//! The purge of a finished move: a `tenant.move` job queued at `done` for
//! after the grace period (a few seconds here), run by a real `bizos
//! worker`. Until the grace has passed, and while the purge runs, every
//! source row is there; a worker killed in the middle of the purge leaves
//! the source whole and the next one finishes it; then the tenant's rows,
//! the move's triggers and its fence are gone from the source and the
//! target has not changed.

use std::time::{Duration, Instant};

use bizos_bff::tenant_moves::{self, MoveSettings, Outcome};
use bizos_tests::TestDb;
use sqlx::Connection;

use super::*;

/// The purge job of the move: its status and whether its time has come.
async fn purge_job(db: &TestDb, move_id: Uuid) -> Option<(String, bool)> {
    sqlx::query_as(
        "select status, run_at <= now() from jobs
          where kind = 'tenant.move' and payload ->> 'move_id' = $1::text
            and (payload ->> 'purge')::boolean",
    )
    .bind(move_id)
    .fetch_optional(&db.owner)
    .await
    .unwrap()
}

async fn audit_rows(pool: &sqlx::PgPool, tenant: Uuid) -> i64 {
    sqlx::query_scalar("select count(*) from bizos.audit_log where tenant_id = $1")
        .bind(tenant)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_purge_removes_the_source_rows_after_the_grace_period_and_resumes_when_killed() {
    let fx = fixture(500).await;
    let target = TestDb::new().await;
    let move_id = plan(&fx.db, fx.tenant, "isolated", &target.name, None).await;
    let grace = Duration::from_secs(4);
    let outcome = tenant_moves::run(
        &fx.db.pool_as("bizos_worker"),
        move_id,
        &endpoint(&fx.db.name, None),
        &endpoint(&target.name, None),
        &MoveSettings {
            grace,
            ..MoveSettings::default()
        },
    )
    .await
    .unwrap();
    let done_at = Instant::now();
    assert_eq!(outcome, Outcome::Done);

    // Visible: the job, queued for later, and the move's purge_at.
    let (status, due) = purge_job(&fx.db, move_id).await.expect("a purge job");
    assert_eq!((status.as_str(), due), ("queued", false));
    let (_, _, progress) = state(&fx.db, move_id).await;
    assert!(progress["purge_at"].is_string(), "{progress}");
    let source_before = counts(&fx.db.owner, "public", fx.tenant).await;
    let target_before = counts(&target.owner, "public", fx.tenant).await;
    assert!(source_before["customers"] >= 500 && source_before["invoices"] >= 500);
    assert_eq!(source_before["customers"], target_before["customers"]);
    let audit_before = audit_rows(&fx.db.owner, fx.tenant).await;
    assert!(audit_before > 0);

    // The purge will wait for a lock on one of its tables (an analyst's
    // long query, say); the worker that runs it is killed meanwhile.
    let mut blocker = sqlx::PgConnection::connect(&fx.db.url("bizos_owner"))
        .await
        .unwrap();
    sqlx::query("begin").execute(&mut blocker).await.unwrap();
    sqlx::query("lock table public.invoices in access exclusive mode")
        .execute(&mut blocker)
        .await
        .unwrap();
    let first = WorkerProcess::start(&fx, 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, _) = purge_job(&fx.db, move_id).await.unwrap();
        if status == "running" {
            break;
        }
        assert_eq!(status, "queued");
        assert!(Instant::now() < deadline, "the purge job never started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        done_at.elapsed() >= grace,
        "the purge started before the grace period ended"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    first.kill();
    sqlx::query("rollback").execute(&mut blocker).await.unwrap();
    assert_eq!(
        counts(&fx.db.owner, "public", fx.tenant).await,
        source_before,
        "a killed purge left the source half-purged"
    );
    assert_eq!(audit_rows(&fx.db.owner, fx.tenant).await, audit_before);

    expire_leases(&fx.db).await;
    let _second = WorkerProcess::start(&fx, 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    let purged = loop {
        let (_, _, progress) = state(&fx.db, move_id).await;
        if let Some(n) = progress["purged_rows"].as_i64() {
            break n;
        }
        assert!(Instant::now() < deadline, "no purge after 60 s: {progress}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(purged > 0);
    let left = counts(&fx.db.owner, "public", fx.tenant).await;
    // The tenants row (and its queue's round-robin row) anchor the move's
    // jobs in the control database.
    assert!(
        left.iter()
            .all(|(t, n)| *n == 0 || t == "tenants" || t == "job_tenants"),
        "left in the source: {left:?}"
    );
    assert_eq!(audit_rows(&fx.db.owner, fx.tenant).await, 0);
    assert_eq!(triggers_left(&fx.db.owner, move_id).await, 0);
    let fences: i64 =
        sqlx::query_scalar("select count(*) from control.tenant_move_fences where move_id = $1")
            .bind(move_id)
            .fetch_one(&fx.db.owner)
            .await
            .unwrap();
    assert_eq!(fences, 0);
    assert_eq!(
        counts(&target.owner, "public", fx.tenant).await,
        target_before
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _) = purge_job(&fx.db, move_id).await.unwrap();
        if status == "succeeded" {
            break;
        }
        assert!(Instant::now() < deadline, "the purge job is {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The other tenant's rows stayed.
    let others: i64 = sqlx::query_scalar("select count(*) from customers where tenant_id = $1")
        .bind(fx.other)
        .fetch_one(&fx.db.owner)
        .await
        .unwrap();
    assert_eq!(others, 50);
}
