//! Moves out of a schema or a database of the tenant's own and back,
//! each under four clients writing through HTTP (and one of another
//! tenant, never refused): every write a client saw committed is where
//! the tenant lives once, lead numbers run on without a gap, the
//! verification's counts and checksums are equal, the audit chain
//! verifies; the catalogue and the placement records outside the control
//! database name the target with the new version; and a move back onto
//! the rows an earlier move left for its purge takes them over (that
//! move's triggers and fence gone, its purge deleting nothing).

use bizos_bff::tenant_moves;
use bizos_tests::TestDb;

use super::http::*;
use super::*;

fn shared(s: &Served) -> Place {
    Place {
        database: s.fx.db.name.clone(),
        schema: None,
        pool: s.fx.db.owner.clone(),
    }
}

fn schema(s: &Served) -> Place {
    Place {
        database: s.fx.db.name.clone(),
        schema: Some("tenant_mover".into()),
        pool: s.fx.db.owner.clone(),
    }
}

fn isolated(db: &TestDb) -> Place {
    Place {
        database: db.name.clone(),
        schema: None,
        pool: db.owner.clone(),
    }
}

/// Runs the purge of `moved` now (as its job would after the grace
/// period); how many rows it deleted.
async fn purge_now(s: &Served, moved: &Moved, from: &Place, to: &Place) -> u64 {
    let m = tenant_moves::get(&s.fx.db.owner, moved.move_id)
        .await
        .unwrap()
        .unwrap();
    tenant_moves::purge(&s.fx.db.owner, &m, &from.endpoint(), &to.endpoint())
        .await
        .expect("the purge")
}

#[tokio::test]
async fn shared_to_schema_and_back_to_shared_while_writing_over_http() {
    let s = served(1_000).await;
    schema_target(&s.fx.db, "tenant_mover").await;
    let (shared, schema) = (shared(&s), schema(&s));
    let mut all = Vec::new();

    let there = move_over_http(&s, &shared, &schema).await;
    all.extend(there.writes.iter().map(clone_writes));
    assert_landed(&schema, s.fx.tenant, &all, &there).await;
    assert_placed(&s, &schema, 2).await;

    let back = move_over_http(&s, &schema, &shared).await;
    all.extend(back.writes.iter().map(clone_writes));
    assert_landed(&shared, s.fx.tenant, &all, &back).await;
    assert_placed(&s, &shared, 3).await;
    assert_left(&s, &schema, &shared, &back, 3).await;
    // The first move's triggers and fence on the shared tables are gone
    // (the tenant lives there again), and its purge keeps the rows.
    assert_eq!(triggers_left(&s.fx.db.owner, there.move_id).await, 0);
    let (_, _, first) = state(&s.fx.db, there.move_id).await;
    assert_eq!(first["superseded_by"], back.move_id.to_string(), "{first}");
    let before = counts(&s.fx.db.owner, "public", s.fx.tenant).await;
    assert_eq!(purge_now(&s, &there, &shared, &schema).await, 0);
    assert_eq!(counts(&s.fx.db.owner, "public", s.fx.tenant).await, before);
    // The schema's rows go with the second move's purge; the shared
    // tier's stay.
    assert!(purge_now(&s, &back, &schema, &shared).await > 0);
    let left = counts(&s.fx.db.owner, "tenant_mover", s.fx.tenant).await;
    assert!(
        left.iter()
            .all(|(t, n)| *n == 0 || t == "tenants" || t == "job_tenants"),
        "{left:?}"
    );
    assert_eq!(counts(&s.fx.db.owner, "public", s.fx.tenant).await, before);
    // Still served, over HTTP, from the shared tier.
    let (status, body) = s
        .app
        .post_json(
            &s.mover,
            "/api/leads",
            &serde_json::json!({"channel": "website", "company_name": "PT After the purge"}),
            None,
        )
        .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn shared_to_schema_to_isolated_and_back_to_shared_while_writing_over_http() {
    let s = served(1_000).await;
    schema_target(&s.fx.db, "tenant_mover").await;
    let own = TestDb::new().await;
    let (shared, schema, isolated) = (shared(&s), schema(&s), isolated(&own));
    let mut all = Vec::new();

    let first = move_over_http(&s, &shared, &schema).await;
    all.extend(first.writes.iter().map(clone_writes));
    assert_landed(&schema, s.fx.tenant, &all, &first).await;

    let second = move_over_http(&s, &schema, &isolated).await;
    all.extend(second.writes.iter().map(clone_writes));
    assert_landed(&isolated, s.fx.tenant, &all, &second).await;
    assert_placed(&s, &isolated, 3).await;
    assert_left(&s, &schema, &isolated, &second, 3).await;

    let third = move_over_http(&s, &isolated, &shared).await;
    all.extend(third.writes.iter().map(clone_writes));
    assert_landed(&shared, s.fx.tenant, &all, &third).await;
    assert_placed(&s, &shared, 4).await;
    // The isolated database's record names the shared tier with the new
    // version: a request routed there with an older one is refused.
    assert_left(&s, &isolated, &shared, &third, 4).await;
    let (_, _, p) = state(&s.fx.db, first.move_id).await;
    assert_eq!(p["superseded_by"], third.move_id.to_string(), "{p}");
    // Nothing of the other tenant went anywhere.
    let others: i64 = sqlx::query_scalar("select count(*) from customers where tenant_id = $1")
        .bind(s.fx.other)
        .fetch_one(&own.owner)
        .await
        .unwrap();
    assert_eq!(others, 0);
}

/// A move of a tenant with at least 100,000 rows across its tables (bulk
/// SQL before the move) from the shared tier to a database of its own
/// while four clients write through HTTP.
#[tokio::test]
async fn a_tenant_of_100k_rows_moves_to_its_own_database_while_writing_over_http() {
    let s = served(26_000).await;
    let own = TestDb::new().await;
    let (shared, isolated) = (shared(&s), isolated(&own));
    let moved = move_over_http(&s, &shared, &isolated).await;
    assert!(
        moved.progress["copied_rows"].as_i64().unwrap() >= 100_000,
        "{}",
        moved.progress
    );
    let all: Vec<Writes> = moved.writes.iter().map(clone_writes).collect();
    assert_landed(&isolated, s.fx.tenant, &all, &moved).await;
    assert_placed(&s, &isolated, 2).await;
}

fn clone_writes(w: &Writes) -> Writes {
    Writes {
        committed: w.committed.clone(),
        refused: w.refused,
        longest_refusal: w.longest_refusal,
    }
}
