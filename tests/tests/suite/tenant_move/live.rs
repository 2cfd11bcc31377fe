//! A tenant moved while four writers keep writing to it and one to another
//! tenant: every committed write is in the target once, refused writes
//! were retried, checksums and audit chains verify, invoice numbers run on
//! without a gap, the other tenant never saw an error, and the move left
//! no trigger and no recorded change behind.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bizos_bff::tenant_moves::Outcome;
use bizos_tests::TestDb;
use sqlx::PgPool;

use super::*;

/// Rows of the moving tenant: customers, each with an invoice (and audit
/// entries for both).
const CUSTOMERS: i64 = 5_000;

async fn move_under_writes(
    fx: &Fixture,
    tier: &str,
    target_db: &str,
    target_pool: PgPool,
    schema: Option<&str>,
) -> (Vec<Writes>, Writes, serde_json::Value, Duration) {
    let mut pools: BTreeMap<String, PgPool> = BTreeMap::new();
    pools.insert(fx.db.name.clone(), fx.db.owner.clone());
    pools.insert(target_db.to_owned(), target_pool);
    let pools = Arc::new(pools);
    let stop = Arc::new(AtomicBool::new(false));
    let writers = start_writers(fx, fx.tenant, 4, pools.clone(), stop.clone());
    let others = start_writers(fx, fx.other, 1, pools.clone(), stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;

    let move_id = plan(&fx.db, fx.tenant, tier, target_db, schema).await;
    let started = Instant::now();
    let outcome = run_mover(
        &fx.db,
        move_id,
        &endpoint(&fx.db.name, None),
        &endpoint(target_db, schema),
    )
    .await;
    let total = started.elapsed();
    let (state, error, progress) = state(&fx.db, move_id).await;
    assert_eq!(outcome, Outcome::Done, "{state} {error:?} {progress}");
    // Writes after the switch go to the target.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    let mut writes = Vec::new();
    for w in writers {
        writes.push(w.await.unwrap());
    }
    let other = others.into_iter().next().unwrap().await.unwrap();
    // The source keeps its triggers and the fence (refusing the tenant's
    // writes there) until the purge.
    assert!(triggers_left(&fx.db.owner, move_id).await > 0);
    let fenced: i64 =
        sqlx::query_scalar("select count(*) from control.tenant_move_fences where move_id = $1")
            .bind(move_id)
            .fetch_one(&fx.db.owner)
            .await
            .unwrap();
    assert_eq!(fenced, 1);
    let changes: i64 =
        sqlx::query_scalar("select count(*) from control.tenant_move_changes where move_id = $1")
            .bind(move_id)
            .fetch_one(&fx.db.owner)
            .await
            .unwrap();
    assert_eq!(changes, 0, "recorded changes left");
    (writes, other, progress, total)
}

fn report(what: &str, writes: &[Writes], progress: &serde_json::Value, total: Duration) {
    let refused: u64 = writes.iter().map(|w| w.refused).sum();
    let waited = writes
        .iter()
        .map(|w| w.longest_refusal)
        .max()
        .unwrap_or_default();
    let committed: usize = writes.iter().map(|w| w.committed.len()).sum();
    eprintln!(
        "{what}: {} rows copied, freeze {} ms, total {} ms; {committed} writes committed, {refused} refusals, longest wait of a write {} ms",
        progress["copied_rows"], progress["freeze_ms"], total.as_millis(), waited.as_millis()
    );
}

#[tokio::test]
async fn shared_to_schema_while_writing_loses_no_write() {
    let fx = fixture(CUSTOMERS).await;
    schema_target(&fx.db, "tenant_mover").await;
    let before = counts(&fx.db.owner, "public", fx.tenant).await;
    let (writes, other, progress, total) = move_under_writes(
        &fx,
        "schema",
        &fx.db.name.clone(),
        fx.db.owner.clone(),
        Some("tenant_mover"),
    )
    .await;
    report("shared -> schema", &writes, &progress, total);
    assert!(
        other.refused == 0,
        "the other tenant was refused {} times",
        other.refused
    );
    assert_writes_landed(&fx.db.owner, "tenant_mover", fx.tenant, &writes).await;
    // The source is as it was at the switch: the seed and the writes
    // before it, all of them in the target too.
    let after = counts(&fx.db.owner, "tenant_mover", fx.tenant).await;
    assert!(after["customers"] >= before["customers"] && after["invoices"] >= before["invoices"]);
    assert_eq!(progress["verify"]["audit_breaks"], 0, "{progress}");
    assert!(
        progress["verify"]["rows"].as_i64().unwrap() > 2 * CUSTOMERS,
        "{progress}"
    );
    // The placement points at the schema, one version on.
    let (tier, schema, version): (String, Option<String>, i64) = sqlx::query_as(
        "select tier, schema_name, version from control.tenant_placements where tenant_id = $1",
    )
    .bind(fx.tenant)
    .fetch_one(&fx.db.owner)
    .await
    .unwrap();
    assert_eq!(
        (tier.as_str(), schema.as_deref(), version),
        ("schema", Some("tenant_mover"), 2)
    );
    // A write to the source now is refused, retryably.
    let refused = sqlx::query(
        "insert into public.customers (tenant_id, company_name) values ($1, 'PT Late')",
    )
    .bind(fx.tenant)
    .execute(&fx.db.owner)
    .await
    .unwrap_err();
    assert_eq!(bizos_tests::code(&refused), "BZ503", "{refused}");
    // What a client gets for it: 503, a code it can show, a retry time.
    let answer = bizos_bff::error::ApiError::from(refused);
    assert_eq!(
        (answer.status().as_u16(), answer.code()),
        (503, "tenant_moving"),
        "{answer}"
    );
    let response = axum::response::IntoResponse::into_response(answer);
    assert_eq!(response.headers()["retry-after"], "1");
    // The other tenant still writes in the shared tier.
    sqlx::query(
        "insert into public.customers (tenant_id, company_name) values ($1, 'PT Still here')",
    )
    .bind(fx.other)
    .execute(&fx.db.owner)
    .await
    .unwrap();
}

#[tokio::test]
async fn shared_to_isolated_while_writing_loses_no_write() {
    let fx = fixture(CUSTOMERS).await;
    let target = TestDb::new().await;
    let (writes, other, progress, total) = move_under_writes(
        &fx,
        "isolated",
        &target.name.clone(),
        target.owner.clone(),
        None,
    )
    .await;
    report("shared -> isolated", &writes, &progress, total);
    assert!(
        other.refused == 0,
        "the other tenant was refused {} times",
        other.refused
    );
    assert_writes_landed(&target.owner, "public", fx.tenant, &writes).await;
    assert_eq!(progress["verify"]["audit_breaks"], 0, "{progress}");
    // The audit chain verifies in the target and goes on there.
    let breaks: i64 = sqlx::query_scalar("select count(*) from bizos.audit_verify($1)")
        .bind(fx.tenant)
        .fetch_one(&target.owner)
        .await
        .unwrap();
    assert_eq!(breaks, 0);
    // Nothing of the other tenant went.
    let others: i64 = sqlx::query_scalar("select count(*) from customers where tenant_id = $1")
        .bind(fx.other)
        .fetch_one(&target.owner)
        .await
        .unwrap();
    assert_eq!(others, 0);
}
