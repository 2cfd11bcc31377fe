//! Vector indexes that stay trained (issue 49): `vector_index_states()`
//! tells when a bizos_ivf index no longer fits its table, a REINDEX
//! CONCURRENTLY killed in the middle leaves the old index valid and in use,
//! and the next `vector.retrain` drops the half-built copy and finishes the
//! rebuild, by hand and through the worker.

use std::time::Duration;

use bizos_bff::vector_index::retrain;
use bizos_tests::TestDb;
use sqlx::{Connection, PgConnection, Row};
use uuid::Uuid;

const INDEX: &str = "public.vdocs_embedding_idx";

/// A table of `rows` random 16-dimension vectors with an IVF index built
/// while it was empty (trained on no rows, one list), as V28 built
/// kb_chunks' index.
async fn table(db: &TestDb, rows: i32) {
    sqlx::raw_sql(&format!(
        "create table vdocs (id int primary key, embedding bizos.vector(16) not null);
         create index vdocs_embedding_idx on vdocs using bizos_ivf (embedding bizos.vector_l2_ops);
         select setseed(0.25);
         insert into vdocs select i, (select array_agg(random()::real order by d)
                                        from generate_series(1, 16) d where i > 0)::bizos.vector(16)
           from generate_series(1, {rows}) i;
         analyze vdocs;"
    ))
    .execute(&db.owner)
    .await
    .unwrap();
}

#[derive(Debug)]
struct State {
    trained_rows: i64,
    current_rows: i64,
    lists: i32,
    needs_retrain: bool,
    reason: Option<String>,
    leftovers: Vec<String>,
}

async fn state(db: &TestDb) -> State {
    // As the worker's login: the function is granted to it.
    let worker = db.pool_as("bizos_worker");
    let r = sqlx::query(
        "select trained_rows, current_rows, lists, needs_retrain, reason, leftovers
           from vector_index_states() where index_name = $1",
    )
    .bind(INDEX)
    .fetch_one(&worker)
    .await
    .unwrap();
    State {
        trained_rows: r.get(0),
        current_rows: r.get(1),
        lists: r.get(2),
        needs_retrain: r.get(3),
        reason: r.get(4),
        leftovers: r.get(5),
    }
}

/// The plan of a nearest-neighbour query and its ids, and the exact ids.
async fn nearest(db: &TestDb) -> (String, Vec<i32>, Vec<i32>) {
    let mut c = db.owner.acquire().await.unwrap();
    let q = "select id from vdocs order by embedding operator(bizos.<->)
               (select embedding from vdocs where id = 7) limit 10";
    sqlx::raw_sql("set enable_seqscan = off; set bizos.ivf_probes = 10000")
        .execute(&mut *c)
        .await
        .unwrap();
    let plan: Vec<String> = sqlx::query_scalar(&format!("explain (costs off) {q}"))
        .fetch_all(&mut *c)
        .await
        .unwrap();
    let by_index: Vec<i32> = sqlx::query_scalar(q).fetch_all(&mut *c).await.unwrap();
    sqlx::raw_sql("set enable_indexscan = off; set enable_seqscan = on")
        .execute(&mut *c)
        .await
        .unwrap();
    let exact: Vec<i32> = sqlx::query_scalar(q).fetch_all(&mut *c).await.unwrap();
    sqlx::raw_sql("reset all").execute(&mut *c).await.unwrap();
    (plan.join(" | "), by_index, exact)
}

#[tokio::test]
async fn a_killed_rebuild_leaves_the_old_index_in_use_and_the_next_run_finishes_it() {
    let db = TestDb::new().await;
    table(&db, 5000).await;
    let s = state(&db).await;
    assert_eq!((s.trained_rows, s.current_rows, s.lists), (0, 5000, 1));
    assert!(s.needs_retrain, "{s:?}");
    assert!(s.reason.unwrap().contains("trained on no rows"));
    assert!(s.leftovers.is_empty());

    // A reader's snapshot makes REINDEX CONCURRENTLY wait once it has
    // created its copy of the index; the session is killed there.
    let mut reader = PgConnection::connect(&db.url("bizos_owner")).await.unwrap();
    sqlx::raw_sql("begin isolation level repeatable read; select count(*) from vdocs;")
        .execute(&mut reader)
        .await
        .unwrap();
    let mut reindexer = PgConnection::connect(&db.url("bizos_owner")).await.unwrap();
    let pid: i32 = sqlx::query_scalar("select pg_backend_pid()")
        .fetch_one(&mut reindexer)
        .await
        .unwrap();
    let rebuild = tokio::spawn(async move {
        sqlx::query(&format!("reindex index concurrently {INDEX}"))
            .execute(&mut reindexer)
            .await
    });
    let admin = db.pool_as("postgres");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let copies: i64 = sqlx::query_scalar(
            "select count(*) from pg_class where relname like 'vdocs_embedding_idx_ccnew%'",
        )
        .fetch_one(&admin)
        .await
        .unwrap();
        let waiting: bool = sqlx::query_scalar(
            "select coalesce(bool_or(wait_event_type = 'Lock'), false) from pg_stat_activity where pid = $1",
        )
        .bind(pid)
        .fetch_one(&admin)
        .await
        .unwrap();
        if copies > 0 && waiting {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "REINDEX CONCURRENTLY never reached its wait"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let killed: bool = sqlx::query_scalar("select pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(&admin)
        .await
        .unwrap();
    assert!(killed);
    assert!(rebuild.await.unwrap().is_err(), "the rebuild was killed");
    sqlx::raw_sql("commit").execute(&mut reader).await.unwrap();

    // The old index: valid, chosen, right; the copy: invalid, left over.
    let valid: bool = sqlx::query_scalar(
        "select indisvalid from pg_index where indexrelid = 'vdocs_embedding_idx'::regclass",
    )
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert!(valid);
    let (plan, by_index, exact) = nearest(&db).await;
    assert!(
        plan.contains("Index Scan using vdocs_embedding_idx on vdocs"),
        "{plan}"
    );
    assert_eq!(by_index, exact);
    let s = state(&db).await;
    assert_eq!(
        s.leftovers,
        vec!["public.vdocs_embedding_idx_ccnew".to_owned()]
    );
    assert!(s.needs_retrain);
    // Writes go on beside the invalid copy.
    sqlx::query(
        "insert into vdocs select i, (select array_agg(random()::real order by d)
                                        from generate_series(1, 16) d where i > 0)::bizos.vector(16)
           from generate_series(5001, 5100) i",
    )
    .execute(&db.owner)
    .await
    .unwrap();

    // The next run: the copy dropped, the index rebuilt and trained on
    // every row (lists derived from them: 5,100 / 250).
    let mut maintenance = PgConnection::connect(&db.url("bizos_owner")).await.unwrap();
    let done = retrain(&mut maintenance, INDEX, false).await.unwrap();
    assert_eq!(
        done.dropped,
        vec!["public.vdocs_embedding_idx_ccnew".to_owned()]
    );
    assert!(done.rebuilt);
    let s = state(&db).await;
    assert_eq!((s.trained_rows, s.current_rows, s.lists), (5100, 5100, 20));
    assert!(!s.needs_retrain, "{s:?}");
    assert!(s.leftovers.is_empty());
    let copies: i64 = sqlx::query_scalar(
        "select count(*) from pg_class where relname like 'vdocs_embedding_idx_cc%'",
    )
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(copies, 0);
    let (plan, by_index, exact) = nearest(&db).await;
    assert!(
        plan.contains("Index Scan using vdocs_embedding_idx"),
        "{plan}"
    );
    assert_eq!(by_index, exact);
    // Nothing left to do: a second run rebuilds nothing.
    let again = retrain(&mut maintenance, INDEX, false).await.unwrap();
    assert!(!again.rebuilt && again.dropped.is_empty());
}

#[tokio::test]
async fn the_worker_rebuilds_an_index_that_outgrew_its_lists() {
    let db = TestDb::new().await;
    db.create_tenant("vectors").await;
    // The platform's job goes to the operator's own tenant (the sign-up
    // e-mails' sender), not to the oldest customer.
    let operator = db.create_tenant("operator").await;
    sqlx::query("insert into signup_sender (sender_tenant_id) values ($1)")
        .bind(operator)
        .execute(&db.owner)
        .await
        .unwrap();
    table(&db, 3000).await;
    assert!(state(&db).await.needs_retrain);
    let storage = bizos_bff::config::StorageSettings::Local {
        root: std::env::temp_dir(),
    };
    let worker = bizos_tests::start_worker(bizos_bff::worker::WorkerSettings {
        purge_every: Duration::from_secs(1),
        poll_interval: Duration::from_millis(200),
        ..bizos_tests::worker_settings(&db, 2000, storage)
    })
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let done: Option<String> = sqlx::query_scalar(
            "select status from jobs where kind = 'vector.retrain' and status in ('succeeded', 'dead')",
        )
        .fetch_optional(&db.owner)
        .await
        .unwrap();
        if let Some(status) = done {
            assert_eq!(status, "succeeded");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no vector.retrain job finished"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(worker.stop);
    let s = state(&db).await;
    assert_eq!((s.trained_rows, s.current_rows, s.lists), (3000, 3000, 12));
    assert!(!s.needs_retrain, "{s:?}");
    let (payload, tenant): (serde_json::Value, Uuid) =
        sqlx::query_as("select payload, tenant_id from jobs where kind = 'vector.retrain'")
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(payload, serde_json::json!({"index": INDEX}));
    assert_eq!(tenant, operator, "filed under the operator's tenant");
}
