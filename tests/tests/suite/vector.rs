//! Vector search through a real server: recall of the bizos_ivf index
//! against exact search on random and clustered data, filtered search that
//! still returns k rows when a tenant holds 1% of the rows, and RLS.
//!
//! The operators live in schema `bizos`; these sessions put it on their
//! search_path as an application would.

use bizos_tests::TestDb;
use sqlx::pool::PoolConnection;
use sqlx::{Postgres, Row};

async fn owner_conn(db: &TestDb) -> PoolConnection<Postgres> {
    let mut conn = db.owner.acquire().await.unwrap();
    sqlx::query("set search_path = public, extensions, bizos")
        .execute(&mut *conn)
        .await
        .unwrap();
    conn
}

async fn exec(conn: &mut PoolConnection<Postgres>, sql: &str) {
    sqlx::raw_sql(sql)
        .execute(&mut **conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Mean recall@10 of the index over the queries in `queries`, against an
/// exact scan of the same table (index scans off).
async fn recall(conn: &mut PoolConnection<Postgres>, table: &str, op: &str, probes: i32) -> f64 {
    let queries: Vec<String> = sqlx::query_scalar("select v::text from queries order by qid")
        .fetch_all(&mut **conn)
        .await
        .unwrap();
    let q = format!("select id from {table} order by embedding {op} $1::bizos.vector limit 10");
    let mut hits = 0usize;
    for v in &queries {
        exec(conn, "set enable_indexscan = off; set enable_seqscan = on").await;
        let exact: Vec<i32> = sqlx::query_scalar(&q)
            .bind(v)
            .fetch_all(&mut **conn)
            .await
            .unwrap();
        exec(conn, &format!("set enable_indexscan = on; set enable_seqscan = off; set bizos.ivf_probes = {probes}")).await;
        let approx: Vec<i32> = sqlx::query_scalar(&q)
            .bind(v)
            .fetch_all(&mut **conn)
            .await
            .unwrap();
        assert_eq!(exact.len(), 10);
        assert_eq!(approx.len(), 10, "the index returns k rows");
        hits += approx.iter().filter(|id| exact.contains(id)).count();
    }
    exec(
        conn,
        "reset enable_indexscan; reset enable_seqscan; reset bizos.ivf_probes",
    )
    .await;
    hits as f64 / (10 * queries.len()) as f64
}

async fn plan(conn: &mut PoolConnection<Postgres>, sql: &str) -> String {
    let rows = sqlx::query(&format!("explain (costs off) {sql}"))
        .fetch_all(&mut **conn)
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.get::<String, _>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn recall_against_exact_search_on_random_data() {
    let db = TestDb::new().await;
    let mut c = owner_conn(&db).await;
    exec(
        &mut c,
        "select setseed(0.42);
         create table docs (id int primary key, embedding bizos.vector(24) not null);
         insert into docs select i, (select array_agg(random()::real order by d) from generate_series(1, 24) d where i > 0)
           from generate_series(1, 3000) i;
         create table queries (qid int, v bizos.vector(24));
         insert into queries select q, (select array_agg(random()::real order by d) from generate_series(1, 24) d where q > 0)
           from generate_series(1, 20) q;
         create index docs_embedding_idx on docs using bizos_ivf (embedding bizos.vector_l2_ops) with (lists = 30);
         analyze docs;",
    )
    .await;
    let p = plan(&mut c, "select id from docs order by embedding <-> '[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]' limit 10").await;
    assert!(
        p.contains("Index Scan using docs_embedding_idx"),
        "the planner takes the index:\n{p}"
    );
    let all = recall(&mut c, "docs", "<->", 30).await;
    assert_eq!(all, 1.0, "probing every list is exact search");
    let some = recall(&mut c, "docs", "<->", 10).await;
    assert!(
        some >= 0.8,
        "recall@10 with 10 of 30 lists on uniform random data: {some}"
    );
    let one = recall(&mut c, "docs", "<->", 1).await;
    assert!(one < some, "fewer probes, lower recall ({one} vs {some})");
}

#[tokio::test]
async fn recall_against_exact_search_on_clustered_data_with_inserts_after_the_build() {
    let db = TestDb::new().await;
    let mut c = owner_conn(&db).await;
    exec(
        &mut c,
        "select setseed(0.7);
         create table centres as select c, array_agg((random() * 2 - 1)::real order by d) v
           from generate_series(1, 40) c, generate_series(1, 48) d group by c;
         create table docs (id int primary key, embedding bizos.vector(48) not null);
         create function point(i int) returns bizos.vector language sql as $$
           select (select array_agg(a + ((random() - 0.5) * 0.6)::real order by o)
                     from unnest(v) with ordinality t(a, o))::bizos.vector
             from centres where c = 1 + (i * 7919) % 40 $$;
         insert into docs select i, point(i) from generate_series(1, 2000) i;
         create index docs_embedding_idx on docs using bizos_ivf (embedding bizos.vector_cosine_ops) with (lists = 20);
         insert into docs select i, point(i) from generate_series(2001, 4000) i;
         create table queries as select q qid, point(q * 13) v from generate_series(1, 20) q;
         analyze docs;",
    )
    .await;
    let all = recall(&mut c, "docs", "<=>", 20).await;
    assert_eq!(
        all, 1.0,
        "probing every list is exact search, rows inserted after the build included"
    );
    let some = recall(&mut c, "docs", "<=>", 3).await;
    assert!(
        some >= 0.9,
        "recall@10 with 3 of 20 lists on clustered data: {some}"
    );

    // Vacuum removes dead rows from the index; the rest stay findable.
    exec(&mut c, "delete from docs where id % 2 = 0").await;
    sqlx::query("vacuum docs").execute(&mut *c).await.unwrap();
    exec(&mut c, "set enable_seqscan = off; set bizos.ivf_probes = 1").await;
    let n: i64 = sqlx::query_scalar(
        "select count(*) from (select id from docs order by embedding <=> (select v from queries where qid = 1) limit 5000) s",
    )
    .fetch_one(&mut *c)
    .await
    .unwrap();
    assert_eq!(n, 2000, "every live row, from every list, and none twice");
    let items: i64 = sqlx::query_scalar(
        "select reltuples::bigint from pg_class where relname = 'docs_embedding_idx'",
    )
    .fetch_one(&mut *c)
    .await
    .unwrap();
    assert_eq!(items, 2000, "vacuum counted the index items that are left");

    // Inserts after the vacuum go to pages whose vector items it deleted
    // without moving the others (codes point at them by offset): each live
    // row comes back once, and the index still ranks exactly with every
    // list probed.
    exec(
        &mut c,
        "insert into docs select i, point(i) from generate_series(4001, 5000) i",
    )
    .await;
    let (n, distinct): (i64, i64) = sqlx::query_as(
        "select count(*), count(distinct id) from (select id from docs order by embedding <=> (select v from queries where qid = 2) limit 10000) s",
    )
    .fetch_one(&mut *c)
    .await
    .unwrap();
    assert_eq!((n, distinct), (3000, 3000), "every live row once");
    exec(&mut c, "reset enable_seqscan; reset bizos.ivf_probes").await;
    let all = recall(&mut c, "docs", "<=>", 20).await;
    assert_eq!(all, 1.0, "exact with every list, after vacuum and inserts");
}

/// Tenant A holds 1% of the rows. Through RLS (the policy filters on
/// bizos.tenant_id()), A's user gets exactly k rows, all A's, through the
/// index; B's user never sees A's rows.
#[tokio::test]
async fn a_tenant_with_one_percent_of_the_rows_gets_k_rows_and_rls_applies() {
    let db = TestDb::new().await;
    let a = db.create_tenant("vec-a").await;
    let b = db.create_tenant("vec-b").await;
    let alice = db.create_user(a, "director").await;
    let bob = db.create_user(b, "director").await;
    let mut c = owner_conn(&db).await;
    exec(
        &mut c,
        "select setseed(0.3);
         create table chunks (tenant_id uuid not null, id int primary key, embedding bizos.vector(16) not null);
         alter table chunks enable row level security;
         create policy \"members read their tenant's chunks\" on chunks for select to bizos_authenticated
           using (tenant_id = (select bizos.tenant_id()));
         grant select on chunks to bizos_authenticated;",
    )
    .await;
    // Clustered data, as embeddings are: 40 centres, A's rows spread over
    // all of them.
    exec(
        &mut c,
        "create table centres as select c, array_agg((random() * 2 - 1)::real order by d) v
           from generate_series(1, 40) c, generate_series(1, 16) d group by c;
         create function point(i int) returns bizos.vector language sql as $$
           select (select array_agg(a + ((random() - 0.5) * 0.8)::real order by o)
                     from unnest(v) with ordinality t(a, o))::bizos.vector
             from centres where c = 1 + (i * 7919) % 40 $$;",
    )
    .await;
    sqlx::query(
        "insert into chunks
         select case when i % 100 = 0 then $1 else $2 end, i, point(i) from generate_series(1, 5000) i",
    )
    .bind(a)
    .bind(b)
    .execute(&mut *c)
    .await
    .unwrap();
    exec(
        &mut c,
        "create index chunks_embedding_idx on chunks using bizos_ivf (embedding bizos.vector_l2_ops) with (lists = 50);
         analyze chunks;",
    )
    .await;
    let query = "select id, tenant_id from chunks order by embedding <-> $1::bizos.vector limit 10";
    let queries: Vec<String> =
        sqlx::query_scalar("select point(q * 31)::text from generate_series(1, 10) q")
            .fetch_all(&mut *c)
            .await
            .unwrap();

    let mut hits = 0;
    for (n, q) in queries.iter().enumerate() {
        // Exact answer for A, computed by the owner (not subject to RLS).
        let exact: Vec<i32> = sqlx::query_scalar(
            "select id from chunks where tenant_id = $2 order by embedding <-> $1::bizos.vector limit 10",
        )
        .bind(q)
        .bind(a)
        .fetch_all(&mut *c)
        .await
        .unwrap();
        assert_eq!(exact.len(), 10);

        let mut tx = db.as_user(&alice).await;
        sqlx::raw_sql(
            "set local search_path = public, extensions, bizos; set local enable_seqscan = off;
             set local bizos.ivf_probes = 5",
        )
        .execute(&mut *tx)
        .await
        .unwrap();
        if n == 0 {
            let p: Vec<String> = sqlx::query_scalar(&format!(
                "explain (costs off) {}",
                query.replace("$1", &format!("'{q}'"))
            ))
            .fetch_all(&mut *tx)
            .await
            .unwrap();
            let p = p.join("\n");
            assert!(
                p.contains("Index Scan using chunks_embedding_idx"),
                "the query runs through the index:\n{p}"
            );
        }
        let rows = sqlx::query(query)
            .bind(q)
            .fetch_all(&mut *tx)
            .await
            .unwrap();
        assert_eq!(
            rows.len(),
            10,
            "k rows although the first lists hold few of A's rows"
        );
        for r in &rows {
            assert_eq!(r.get::<uuid::Uuid, _>(1), a, "only the tenant's own rows");
        }
        hits += rows
            .iter()
            .map(|r| r.get::<i32, _>(0))
            .filter(|id| exact.contains(id))
            .count();
        tx.rollback().await.unwrap();
    }
    let recall = hits as f64 / 100.0;
    assert!(recall >= 0.8, "recall@10 of the filtered scan: {recall}");

    let mut tx = db.as_user(&bob).await;
    sqlx::raw_sql(
        "set local search_path = public, extensions, bizos; set local enable_seqscan = off",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    let seen: Vec<uuid::Uuid> = sqlx::query_scalar(
        "select tenant_id from chunks order by embedding <-> $1::bizos.vector limit 10000",
    )
    .bind(&queries[0])
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    assert_eq!(seen.len(), 4950, "all of B's rows");
    assert!(seen.iter().all(|t| *t == b), "never a row of tenant A");
}

/// Settings of a session that has not loaded the library yet:
/// placeholders until the first use of bizos loads it; then a known one
/// keeps its value, a misspelled one is removed, and from then on a
/// misspelling is an error (the `bizos.` prefix is reserved).
#[tokio::test]
async fn bizos_settings_are_checked_when_the_library_loads() {
    use sqlx::Connection;
    let db = TestDb::new().await;
    let mut c = sqlx::PgConnection::connect(&db.url("bizos_owner"))
        .await
        .unwrap();
    // Not loaded yet: both are accepted as placeholders.
    sqlx::raw_sql("set bizos.ivf_probes = 7; set bizos.ivf_probe = 3")
        .execute(&mut c)
        .await
        .unwrap();
    let dims: i32 = sqlx::query_scalar("select bizos.vector_dims('[1,2]'::bizos.vector)")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(dims, 2);
    let probes: String = sqlx::query_scalar("show bizos.ivf_probes")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(probes, "7");
    let gone = sqlx::raw_sql("show bizos.ivf_probe")
        .execute(&mut c)
        .await
        .unwrap_err();
    assert!(
        gone.to_string()
            .contains("unrecognized configuration parameter"),
        "{gone}"
    );
    let refused = sqlx::raw_sql("set bizos.ivf_probe = 3")
        .execute(&mut c)
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("invalid configuration parameter name \"bizos.ivf_probe\""),
        "{refused}"
    );
    let strict: String = sqlx::query_scalar("show bizos.ivf_strict_order")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(strict, "off");
}
