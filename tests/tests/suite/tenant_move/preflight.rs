//! Preflight refuses before anything is copied: a tenant table without a
//! key, a target at another schema version. The move fails with the
//! reason; no trigger, no row went anywhere.

use bizos_bff::tenant_moves::Outcome;
use bizos_tests::TestDb;

use super::*;

#[tokio::test]
async fn a_table_without_a_key_is_refused_before_anything_is_copied() {
    let fx = fixture(20).await;
    let target = TestDb::new().await;
    for db in [&fx.db, &target] {
        sqlx::query("create table public.tenant_notes (tenant_id uuid not null, note text)")
            .execute(&db.owner)
            .await
            .unwrap();
    }
    let move_id = plan(&fx.db, fx.tenant, "isolated", &target.name, None).await;
    let outcome = run_mover(
        &fx.db,
        move_id,
        &endpoint(&fx.db.name, None),
        &endpoint(&target.name, None),
    )
    .await;
    let Outcome::Failed(message) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(
        message.contains("tables without a primary key") && message.contains("public.tenant_notes"),
        "{message}"
    );
    assert_eq!(state(&fx.db, move_id).await.0, "failed");
    assert_nothing_copied(&fx, &target, move_id).await;
}

#[tokio::test]
async fn a_target_at_another_version_is_refused_before_anything_is_copied() {
    let fx = fixture(20).await;
    let target = TestDb::new().await;
    sqlx::query("delete from refinery_schema_history where version = (select max(version) from refinery_schema_history)")
        .execute(&target.owner)
        .await
        .unwrap();
    let move_id = plan(&fx.db, fx.tenant, "isolated", &target.name, None).await;
    let outcome = run_mover(
        &fx.db,
        move_id,
        &endpoint(&fx.db.name, None),
        &endpoint(&target.name, None),
    )
    .await;
    let Outcome::Failed(message) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(message.contains("is at migration"), "{message}");
    assert_nothing_copied(&fx, &target, move_id).await;

    // And a target schema that was never migrated.
    let move_id = plan(
        &fx.db,
        fx.tenant,
        "schema",
        &fx.db.name,
        Some("never_migrated"),
    )
    .await;
    let outcome = run_mover(
        &fx.db,
        move_id,
        &endpoint(&fx.db.name, None),
        &endpoint(&fx.db.name, Some("never_migrated")),
    )
    .await;
    let Outcome::Failed(message) = outcome else {
        panic!("{outcome:?}")
    };
    assert!(message.contains("none (not migrated)"), "{message}");
}

async fn assert_nothing_copied(fx: &Fixture, target: &TestDb, move_id: uuid::Uuid) {
    assert_eq!(triggers_left(&fx.db.owner, move_id).await, 0);
    let copied: i64 = sqlx::query_scalar("select count(*) from customers where tenant_id = $1")
        .bind(fx.tenant)
        .fetch_one(&target.owner)
        .await
        .unwrap();
    assert_eq!(copied, 0);
    // The tenant still writes where it is.
    sqlx::query("insert into customers (tenant_id, company_name) values ($1, 'PT After')")
        .bind(fx.tenant)
        .execute(&fx.db.owner)
        .await
        .unwrap();
}
