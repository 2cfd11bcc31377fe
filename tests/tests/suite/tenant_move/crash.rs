//! The mover (a `bizos worker` process) killed with SIGKILL in each state
//! of a move from the shared tier to a database of its own, while two
//! writers write: a second worker resumes the move to done, with every
//! committed write in the target once, invoice numbers without a gap and
//! the audit chain intact; killed while frozen (holding the freeze lock),
//! the source is writable again at once.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use bizos_tests::TestDb;
use serde_json::json;

use super::*;

async fn killed_in(state: &str) {
    let fx = fixture(1_000).await;
    let target = TestDb::new().await;
    let stop = Arc::new(AtomicBool::new(false));
    let writers = writers_to(&fx, &target, stop.clone());
    let slow = WorkerProcess::start(&fx, 1_500);
    let move_id = plan(&fx.db, fx.tenant, "isolated", &target.name, None).await;
    wait_for(&fx.db, move_id, state).await;
    slow.kill();
    if state == "frozen" {
        // The freeze lock went with the mover's connection.
        source_writable(&fx).await;
    }
    expire_leases(&fx.db).await;
    let _worker = WorkerProcess::start(&fx, 0);
    wait_for(&fx.db, move_id, "done").await;
    let writes = stop_writers(&stop, writers).await;
    let (_, _, progress) = super::state(&fx.db, move_id).await;
    assert_writes_landed(&target.owner, "public", fx.tenant, &writes).await;
    let breaks: i64 = sqlx::query_scalar("select count(*) from bizos.audit_verify($1)")
        .bind(fx.tenant)
        .fetch_one(&target.owner)
        .await
        .unwrap();
    assert_eq!(breaks, 0, "killed in {state}: {progress}");
    assert_eq!(triggers_left(&target.owner, move_id).await, 0);
}

#[tokio::test]
async fn a_mover_killed_while_preflight_resumes_to_done() {
    killed_in("preflight").await;
}

#[tokio::test]
async fn a_mover_killed_while_copying_resumes_to_done() {
    killed_in("copying").await;
}

#[tokio::test]
async fn a_mover_killed_while_catching_up_resumes_to_done() {
    killed_in("catching_up").await;
}

#[tokio::test]
async fn a_mover_killed_while_frozen_frees_the_source_and_resumes_to_done() {
    killed_in("frozen").await;
}

#[tokio::test]
async fn a_mover_killed_once_switched_resumes_to_done() {
    killed_in("switched").await;
}

#[tokio::test]
async fn a_mover_killed_once_verified_resumes_to_done() {
    killed_in("verified").await;
}

/// The source's placement record (outside the control database) as JSON.
async fn record_of(pool: &sqlx::PgPool, tenant: Uuid) -> serde_json::Value {
    sqlx::query_scalar(
        "select jsonb_build_object(
                  'placement', (select to_jsonb(p) from control.tenant_placements p where p.tenant_id = $1),
                  'clusters', (select jsonb_agg(c order by c.cluster) from control.clusters c))",
    )
    .bind(tenant)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// A mover that died after it wrote the new placement into the source's
/// record and before the catalogue switched, then an abort: the rollback
/// puts the source's record back exactly (version included), so requests
/// routed there with the catalogue's version pass again.
#[tokio::test]
async fn an_abort_after_a_mover_died_between_the_sources_record_and_the_switch_restores_the_source()
{
    use sqlx::Connection;

    let fx = fixture(300).await;
    let own = TestDb::new().await;
    // First to a database of its own (in this process): from there the
    // tenant's placement record is one of the source's own.
    let there = plan(&fx.db, fx.tenant, "isolated", &own.name, None).await;
    let outcome = run_mover(
        &fx.db,
        there,
        &endpoint(&fx.db.name, None),
        &endpoint(&own.name, None),
    )
    .await;
    assert_eq!(outcome, Outcome::Done);
    let before = record_of(&own.owner, fx.tenant).await;
    let version = before["placement"]["version"].as_i64().unwrap();

    let back = plan(&fx.db, fx.tenant, "shared", &fx.db.name, None).await;
    let slow = WorkerProcess::start(&fx, 1_000);
    wait_for(&fx.db, back, "frozen").await;
    // The mover holds the freeze lock (an exclusive advisory lock in the
    // source): the move's row is locked now, so its switch will wait.
    let admin = sqlx::PgPool::connect(&bizos_tests::url_for("postgres", &fx.db.name))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let frozen: i64 = sqlx::query_scalar(
            "select count(*) from pg_locks l join pg_database d on d.oid = l.database
              where d.datname = $1 and l.locktype = 'advisory' and l.mode = 'ExclusiveLock' and l.granted",
        )
        .bind(&own.name)
        .fetch_one(&admin)
        .await
        .unwrap();
        if frozen > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the mover never froze"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut blocker = sqlx::PgConnection::connect(&fx.db.url("bizos_owner"))
        .await
        .unwrap();
    sqlx::query("begin").execute(&mut blocker).await.unwrap();
    sqlx::query("select 1 from control.tenant_moves where move_id = $1 for update")
        .bind(back)
        .execute(&mut blocker)
        .await
        .unwrap();
    // The source's record names the target...
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = record_of(&own.owner, fx.tenant).await;
        if r["placement"]["database_name"] == fx.db.name.as_str() {
            assert_eq!(r["placement"]["version"], version + 1);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the source's record was never written"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // ...and the switch waits: the mover dies here, its waiting switch
    // with it.
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity
              where datname = $1 and query like '%tenant_move_switch%' and wait_event_type = 'Lock'",
        )
        .bind(&fx.db.name)
        .fetch_one(&admin)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    slow.kill();
    sqlx::query(
        "select pg_terminate_backend(pid) from pg_stat_activity
          where datname = $1 and query like '%tenant_move_switch%' and pid <> pg_backend_pid()",
    )
    .bind(&fx.db.name)
    .execute(&admin)
    .await
    .unwrap();
    sqlx::query("rollback").execute(&mut blocker).await.unwrap();

    let aborted: bool = sqlx::query_scalar("select tenant_move_abort($1)")
        .bind(back)
        .fetch_one(&fx.db.owner)
        .await
        .unwrap();
    assert!(aborted);
    expire_leases(&fx.db).await;
    let _worker = WorkerProcess::start(&fx, 0);
    wait_for(&fx.db, back, "rolled_back").await;

    assert_eq!(
        record_of(&own.owner, fx.tenant).await,
        before,
        "the source's placement record after the abort"
    );
    let catalogue: i64 =
        sqlx::query_scalar("select version from control.tenant_placements where tenant_id = $1")
            .bind(fx.tenant)
            .fetch_one(&fx.db.owner)
            .await
            .unwrap();
    assert_eq!(catalogue, version);
    // A request routed there with the catalogue's version passes its
    // placement check, and the tenant writes there again.
    let mut conn = sqlx::PgConnection::connect(&own.url("postgres"))
        .await
        .unwrap();
    sqlx::query("select set_config('request.jwt.claims', $1, false)")
        .bind(json!({"tenant_id": fx.tenant, "placement_version": version}).to_string())
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("select control.placement_check()")
        .execute(&mut conn)
        .await
        .expect("a request routed with the catalogue's version");
    sqlx::query(
        "insert into public.customers (tenant_id, company_name) values ($1, 'PT After The Abort')",
    )
    .bind(fx.tenant)
    .execute(&own.owner)
    .await
    .expect("the source takes writes");
    assert_eq!(triggers_left(&own.owner, back).await, 0);
}
