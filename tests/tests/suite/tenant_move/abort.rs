//! An operator's abort in each state before the switch rolls the move
//! back: the source has every row it had and every write made meanwhile,
//! and takes writes again; the target has none of the tenant's rows; no
//! trigger, recorded change or fence is left.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use bizos_tests::TestDb;

use super::*;

async fn aborted_in(state: &str) {
    let fx = fixture(1_000).await;
    let target = TestDb::new().await;
    let stop = Arc::new(AtomicBool::new(false));
    let writers = writers_to(&fx, &target, stop.clone());
    let before = counts(&fx.db.owner, "public", fx.tenant).await;
    let _worker = WorkerProcess::start(&fx, 1_500);
    let move_id = plan(&fx.db, fx.tenant, "isolated", &target.name, None).await;
    wait_for(&fx.db, move_id, state).await;
    let aborted: bool = sqlx::query_scalar("select tenant_move_abort($1)")
        .bind(move_id)
        .fetch_one(&fx.db.owner)
        .await
        .unwrap();
    assert!(aborted);
    wait_for(&fx.db, move_id, "rolled_back").await;
    let writes = stop_writers(&stop, writers).await;
    assert_writes_landed(&fx.db.owner, "public", fx.tenant, &writes).await;
    let after = counts(&fx.db.owner, "public", fx.tenant).await;
    for (table, n) in &before {
        assert!(
            after[table] >= *n,
            "aborted in {state}: {table} had {n} rows, now {}",
            after[table]
        );
    }
    let in_target = counts(&target.owner, "public", fx.tenant).await;
    assert!(
        in_target.values().all(|n| *n == 0),
        "aborted in {state}, left in the target: {in_target:?}"
    );
    assert_eq!(triggers_left(&fx.db.owner, move_id).await, 0);
    let (changes, fences): (i64, i64) = sqlx::query_as(
        "select (select count(*) from control.tenant_move_changes where move_id = $1),
                (select count(*) from control.tenant_move_fences where move_id = $1)",
    )
    .bind(move_id)
    .fetch_one(&fx.db.owner)
    .await
    .unwrap();
    assert_eq!((changes, fences), (0, 0));
    source_writable(&fx).await;
    let placement: String = sqlx::query_scalar(
        "select database_name from control.tenant_placements where tenant_id = $1",
    )
    .bind(fx.tenant)
    .fetch_one(&fx.db.owner)
    .await
    .unwrap();
    assert_eq!(placement, fx.db.name);
}

#[tokio::test]
async fn an_abort_while_preflight_leaves_the_source_untouched() {
    aborted_in("preflight").await;
}

#[tokio::test]
async fn an_abort_while_copying_leaves_the_source_untouched() {
    aborted_in("copying").await;
}

#[tokio::test]
async fn an_abort_while_catching_up_leaves_the_source_untouched() {
    aborted_in("catching_up").await;
}

#[tokio::test]
async fn an_abort_while_frozen_leaves_the_source_untouched() {
    aborted_in("frozen").await;
}
