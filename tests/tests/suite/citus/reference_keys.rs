//! Keys from distributed tables to reference tables are kept by triggers on
//! Citus (sql/citus/extension.sql): dropping an old shard after a move then
//! locks that shard alone, not the node's copy of `tenants` that every
//! request reads.

use bizos_tests::citus_cluster::{own_database, pool_in, url_for};
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

/// The error's SQLSTATE and message.
fn refusal(result: Result<sqlx::postgres::PgQueryResult, sqlx::Error>) -> (String, String) {
    let err = result.expect_err("refused");
    let db = err.as_database_error().expect("a database error");
    (
        db.code().unwrap_or_default().into_owned(),
        db.message().to_owned(),
    )
}

/// A superuser connection to `database` on the node at `port`.
async fn node(database: &str, port: i32) -> PgConnection {
    let options: PgConnectOptions = url_for("postgres", database)
        .parse::<PgConnectOptions>()
        .expect("valid DSN")
        .port(u16::try_from(port).expect("a TCP port"))
        .ssl_mode(PgSslMode::Disable);
    PgConnection::connect_with(&options)
        .await
        .expect("connect to a Citus node")
}

/// Drops `shard` on its node in a transaction that is rolled back, with a
/// reader of the node's copy of `tenants` holding it open meanwhile: the
/// drop's error, if it waited past its 1 s lock timeout.
async fn drop_beside_a_reader(
    database: &str,
    port: i32,
    shard: &str,
    tenants: &str,
) -> Option<String> {
    let mut reader = node(database, port).await;
    sqlx::query("begin").execute(&mut reader).await.unwrap();
    sqlx::query(&format!("select count(*) from {tenants}"))
        .execute(&mut reader)
        .await
        .unwrap();
    let mut dropper = node(database, port).await;
    sqlx::query("begin").execute(&mut dropper).await.unwrap();
    sqlx::raw_sql(
        "set local lock_timeout = '1s'; set local citus.enable_manual_changes_to_shards = on",
    )
    .execute(&mut dropper)
    .await
    .unwrap();
    let dropped = sqlx::query(&format!("drop table {shard}"))
        .execute(&mut dropper)
        .await;
    sqlx::query("rollback").execute(&mut dropper).await.unwrap();
    sqlx::query("rollback").execute(&mut reader).await.unwrap();
    dropped.err().map(|e| e.to_string())
}

#[tokio::test]
async fn keys_to_reference_tables_are_triggers_so_a_shard_drop_waits_for_no_reader_of_them() {
    let database = own_database("refkeys").await;
    let owner: PgPool = pool_in("bizos_owner", &database).await;

    // Every such key of the schema and of the extension is a trigger now.
    let left: i64 = sqlx::query_scalar(
        "select count(*) from pg_constraint k
           join pg_dist_partition d on d.logicalrelid = k.conrelid and d.partmethod = 'h'
           join pg_dist_partition r on r.logicalrelid = k.confrelid and r.repmodel = 't'
          where k.contype = 'f'",
    )
    .fetch_one(&owner)
    .await
    .unwrap();
    assert_eq!(
        left, 0,
        "foreign keys of distributed tables to reference tables"
    );
    let kept: Vec<String> = sqlx::query_scalar(
        "select table_name::text || '.' || constraint_name from sql_api.citus_reference_keys order by 1",
    )
    .fetch_all(&owner)
    .await
    .unwrap();
    assert!(kept.len() > 100, "{} keys kept by triggers", kept.len());
    for key in [
        "leads.leads_status_fkey",
        "id_counters.id_counters_kind_fkey",
    ] {
        assert!(kept.iter().any(|k| k == key), "{key} in {kept:?}");
    }

    // A new tenant table with a key to `tenants`, distributed beside the
    // others, as a migration and distribute.sql would leave it.
    let tenant: Uuid = sqlx::query_scalar("select tenant_create('refkeys', 'Reference keys')")
        .fetch_one(&owner)
        .await
        .unwrap();
    sqlx::raw_sql(
        "create table refkeys_notes (
           tenant_id uuid not null references tenants (tenant_id),
           id bigint not null,
           channel text references lead_channels (code),
           primary key (tenant_id, id));
         select create_distributed_table('refkeys_notes', 'tenant_id', colocate_with => 'leads');",
    )
    .execute(&owner)
    .await
    .unwrap();
    let (port, shard, tenants): (i32, String, String) = sqlx::query_as(
        "select n.nodeport,
                shard_name('refkeys_notes'::regclass, s.shardid),
                (select shard_name('tenants'::regclass, t.shardid) from pg_dist_shard t
                  where t.logicalrelid = 'tenants'::regclass)
           from pg_dist_shard s
           join pg_dist_placement p using (shardid)
           join pg_dist_node n on n.groupid = p.groupid
          where s.shardid = get_shard_id_for_distribution_column('refkeys_notes', $1)",
    )
    .bind(tenant)
    .fetch_one(&owner)
    .await
    .unwrap();

    // With the foreign key, the drop waits for the reader of `tenants`.
    let waited = drop_beside_a_reader(&database, port, &shard, &tenants).await;
    assert!(
        waited
            .as_deref()
            .is_some_and(|e| e.contains("lock timeout")),
        "with the key, the drop waits for the reader: {waited:?}"
    );

    let replaced: i32 = sqlx::query_scalar("select sql_api.citus_reference_keys_replace('public')")
        .fetch_one(&owner)
        .await
        .unwrap();
    assert_eq!(replaced, 2, "the new table's two keys");
    assert_eq!(
        drop_beside_a_reader(&database, port, &shard, &tenants).await,
        None,
        "with the triggers, the drop waits for nothing"
    );

    // The triggers keep the keys: inserts and updates are checked against
    // the node's copy of the reference table, NULL refers to nothing.
    sqlx::query("insert into refkeys_notes values ($1, 1, 'website'), ($1, 2, null)")
        .bind(tenant)
        .execute(&owner)
        .await
        .unwrap();
    let (code, message) = refusal(
        sqlx::query("insert into refkeys_notes values ($1, 3, null)")
            .bind(Uuid::new_v4())
            .execute(&owner)
            .await,
    );
    assert_eq!(code, "23503", "{message}");
    assert!(
        message.contains("refkeys_notes_tenant_id_fkey"),
        "{message}"
    );
    let (code, message) = refusal(
        sqlx::query(
            "update refkeys_notes set channel = 'carrier pigeon' where tenant_id = $1 and id = 2",
        )
        .bind(tenant)
        .execute(&owner)
        .await,
    );
    assert_eq!(code, "23503", "{message}");
    assert!(message.contains("refkeys_notes_channel_fkey"), "{message}");

    // The referenced rows are kept: no delete, no new key; other columns
    // change as before.
    let (code, message) = refusal(
        sqlx::query("delete from lead_channels where code = 'website'")
            .execute(&owner)
            .await,
    );
    assert_eq!(code, "23503", "{message}");
    let (code, message) = refusal(
        sqlx::query("update tenants set tenant_id = $2 where tenant_id = $1")
            .bind(tenant)
            .bind(Uuid::new_v4())
            .execute(&owner)
            .await,
    );
    assert_eq!(code, "23503", "{message}");
    sqlx::query("update tenants set name = 'Reference keys, renamed' where tenant_id = $1")
        .bind(tenant)
        .execute(&owner)
        .await
        .unwrap();
    let rows: i64 = sqlx::query_scalar("select count(*) from refkeys_notes where tenant_id = $1")
        .bind(tenant)
        .fetch_one(&owner)
        .await
        .unwrap();
    assert_eq!(rows, 2);
}
