//! The mover (a `bizos worker` process) killed with SIGKILL in each state
//! of a move from the shared tier to a database of its own, while two
//! writers write: a second worker resumes the move to done, with every
//! committed write in the target once, invoice numbers without a gap and
//! the audit chain intact; killed while frozen (holding the freeze lock),
//! the source is writable again at once.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use bizos_tests::TestDb;

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
