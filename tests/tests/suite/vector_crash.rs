//! The bizos_ivf index survives a crash: a cluster of its own (so the shared
//! test cluster is never disturbed) with fsync on, an index built and then
//! grown by inserts, the postmaster and its backends killed with SIGKILL,
//! a restart through WAL recovery, and index scans that still agree with
//! exact search and find the rows inserted after the build.
//!
//! Needs root (the server runs as the `postgres` OS user through runuser)
//! and the installed extension, like the rest of the suite; port 54339.

use bizos_tests::own_cluster::OwnCluster;

const PORT: u16 = 54339;

async fn connect() -> tokio_postgres::Client {
    let url = format!("host=127.0.0.1 port={PORT} user=postgres dbname=postgres");
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

/// Ids of the 10 nearest rows to row `id`'s vector, through the index
/// (probing every list) or through an exact scan.
async fn nearest(c: &tokio_postgres::Client, id: i32, index: bool) -> Vec<i32> {
    let settings = if index {
        "set enable_seqscan = off; set enable_indexscan = on; set bizos.ivf_probes = 16"
    } else {
        "set enable_seqscan = on; set enable_indexscan = off"
    };
    c.batch_execute(settings).await.unwrap();
    c.query(
        "select id from docs
          order by embedding operator(bizos.<->) (select embedding from docs where id = $1), id limit 10",
        &[&id],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

#[tokio::test]
async fn the_index_survives_kill_9_and_finds_rows_inserted_after_the_build() {
    let cluster = OwnCluster::start(
        "vector-crash",
        &format!(
            "port = {PORT}\nlisten_addresses = '127.0.0.1'\n\
             fsync = on\nsynchronous_commit = on\nfull_page_writes = on"
        ),
    );
    let c = connect().await;
    c.batch_execute(
        "create extension bizos;
         select setseed(0.5);
         create table docs (id int primary key, embedding bizos.vector(8) not null);
         insert into docs select i, (select array_agg(random()::real order by d) from generate_series(1, 8) d where i > 0)
           from generate_series(1, 3000) i;
         create index docs_embedding_idx on docs using bizos_ivf (embedding bizos.vector_l2_ops) with (lists = 16);
         checkpoint;
         -- After the checkpoint: only WAL knows about these.
         insert into docs select i, (select array_agg(random()::real * 3 order by d) from generate_series(1, 8) d where i > 0)
           from generate_series(3001, 4000) i;
         delete from docs where id between 1 and 100;",
    )
    .await
    .unwrap();
    let before: Vec<Vec<i32>> = {
        let mut v = Vec::new();
        for id in [200, 1500, 3500, 3999] {
            v.push(nearest(&c, id, true).await);
        }
        v
    };
    drop(c);

    cluster.crash();
    cluster.start_again();
    let c = connect().await;
    let total: i64 = c
        .query_one("select count(*) from docs", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(total, 3900);

    for (i, id) in [200, 1500, 3500, 3999].into_iter().enumerate() {
        let via_index = nearest(&c, id, true).await;
        let exact = nearest(&c, id, false).await;
        assert_eq!(
            via_index, exact,
            "index and exact search agree after recovery (row {id})"
        );
        assert_eq!(
            via_index, before[i],
            "same answer as before the crash (row {id})"
        );
        assert_eq!(
            via_index[0], id,
            "a row is its own nearest neighbour (row {id})"
        );
    }
    // Every row, including all 1000 inserted after the build, is reachable
    // through the index, and the deleted ones are not.
    c.batch_execute("set enable_seqscan = off; set bizos.ivf_probes = 1")
        .await
        .unwrap();
    let plan: Vec<String> = c
        .query(
            "explain (costs off) select id from docs order by embedding operator(bizos.<->) '[0,0,0,0,0,0,0,0]' limit 5000",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        plan.join("\n")
            .contains("Index Scan using docs_embedding_idx"),
        "{plan:?}"
    );
    let ids: Vec<i32> = c
        .query(
            "select id from docs order by embedding operator(bizos.<->) '[0,0,0,0,0,0,0,0]' limit 5000",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids.len(), 3900);
    assert_eq!(ids.iter().filter(|&&id| id > 3000).count(), 1000);
    assert!(ids.iter().all(|&id| id > 100));

    // And the recovered index takes new rows.
    c.batch_execute(
        "insert into docs values (5000, '[9,9,9,9,9,9,9,9]');
         set bizos.ivf_probes = 16;",
    )
    .await
    .unwrap();
    let top: i32 = c
        .query_one(
            "select id from docs order by embedding operator(bizos.<->) '[9,9,9,9,9,9,9,8.9]' limit 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(top, 5000);
    drop(c);
    drop(cluster);
}
