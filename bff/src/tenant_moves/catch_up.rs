//! Catching up: the keys the capture recorded are copied again (the
//! source's current row replaces the target's, or the target's is deleted
//! when the source has none). A batch is the recorded rows the mover sees;
//! they are deleted from the source's record only once the target has
//! committed them, so a change whose transaction commits later (its row
//! was numbered earlier) is never skipped, and a crash between the two
//! only copies a key twice.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use super::catalog::{literal, Follow, Table};
use super::copy::stream;

/// One batch of at most `limit` recorded changes applied; how many.
pub async fn round(
    source: &mut PgConnection,
    target: &mut PgConnection,
    tables: &[Table],
    move_id: Uuid,
    tenant: Uuid,
    limit: i64,
) -> Result<i64, sqlx::Error> {
    let changes: Vec<(i64, String, Value)> = sqlx::query_as(
        "select seq, table_name, pk from control.tenant_move_changes
          where move_id = $1 order by seq limit $2",
    )
    .bind(move_id)
    .bind(limit)
    .fetch_all(&mut *source)
    .await?;
    if changes.is_empty() {
        return Ok(0);
    }
    // A key written several times is copied once: deduplicated by its
    // text in a set (a linear search of a batch's keys was quadratic,
    // seconds for a batch of 10,000 of a busy tenant).
    let mut by_table: BTreeMap<&str, (BTreeSet<String>, Vec<&Value>)> = BTreeMap::new();
    for (_, table, pk) in &changes {
        let (seen, keys) = by_table.entry(table.as_str()).or_default();
        if seen.insert(pk.to_string()) {
            keys.push(pk);
        }
    }
    let mut tx = target.begin().await?;
    sqlx::query("set local session_replication_role = replica")
        .execute(&mut *tx)
        .await?;
    for (name, (_, keys)) in by_table {
        let table = tables
            .iter()
            .find(|t| t.qualified() == name)
            .ok_or_else(|| {
                sqlx::Error::Protocol(format!("a change of {name}, which the move does not copy"))
            })?;
        let keys = Value::Array(keys.into_iter().cloned().collect()).to_string();
        let key_cols = table.key_list("r");
        sqlx::query(&format!(
            "delete from {tgt} x using (select {key_cols} from jsonb_array_elements($1::jsonb) e,
                    jsonb_populate_record(null::{tgt}, e.value) r) k
              where {matches}",
            tgt = table.target_ident(),
            matches = table.key_match("x", "k"),
        ))
        .bind(&keys)
        .execute(&mut *tx)
        .await?;
        let select = format!(
            "select {cols} from (select distinct {key_cols} from jsonb_array_elements({keys}::jsonb) e,
                    jsonb_populate_record(null::{src}, e.value) r) k
               join {src} x on {matches}
              where {filter}",
            cols = table
                .columns
                .iter()
                .map(|c| format!("x.{}", super::catalog::ident(c)))
                .collect::<Vec<_>>()
                .join(", "),
            keys = literal(&keys),
            src = table.source_ident(),
            matches = table.key_match("x", "k"),
            filter = table.tenant_filter("x", tenant),
        );
        stream(source, &mut tx, table, &select).await?;
    }
    tx.commit().await?;
    let seqs: Vec<i64> = changes.iter().map(|c| c.0).collect();
    sqlx::query("delete from control.tenant_move_changes where move_id = $1 and seq = any($2)")
        .bind(move_id)
        .bind(&seqs)
        .execute(&mut *source)
        .await?;
    Ok(changes.len() as i64)
}

/// Changes recorded and not yet applied.
pub async fn backlog(source: &mut PgConnection, move_id: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("select count(*) from control.tenant_move_changes where move_id = $1")
        .bind(move_id)
        .fetch_one(source)
        .await
}

/// The tables the capture cannot follow (the extension writes them below
/// the executor, where no trigger fires), brought up to the source: the
/// audit entries past the target's last of each chain (a chain's entries
/// commit in order: its lock is held until commit), the chains' heads
/// whole. Rows copied.
pub async fn sync_uncaptured(
    source: &mut PgConnection,
    target: &mut PgConnection,
    tables: &[Table],
    tenant: Uuid,
) -> Result<u64, sqlx::Error> {
    let mut tx = target.begin().await?;
    sqlx::query("set local session_replication_role = replica")
        .execute(&mut *tx)
        .await?;
    let mut copied = 0;
    for t in tables {
        let filter = t.tenant_filter("x", tenant);
        let select = match t.follow {
            Follow::Capture => continue,
            Follow::Tail => {
                // The last entry of each chain in the target, by the
                // key's index (chain by chain, each its newest entry):
                // a tenant of a million rows is not read whole in the
                // freeze.
                let last: Value = sqlx::query_scalar(&format!(
                    "with recursive c (chain) as (
                       select (select min(x.chain) from {tgt} x where {filter})
                       union all
                       select (select min(x.chain) from {tgt} x where {filter} and x.chain > c.chain)
                         from c where c.chain is not null)
                     select coalesce(jsonb_object_agg(c.chain,
                              (select max(x.seq) from {tgt} x where {filter} and x.chain = c.chain)), '{{}}')
                       from c where c.chain is not null",
                    tgt = t.target_ident()
                ))
                .fetch_one(&mut *tx)
                .await?;
                // The source's entries past those, chain by chain, each
                // read by the key's index from its last copied position:
                // a filter on the whole tenant would read every entry of
                // a million-row tenant at every catch-up and in the
                // freeze. OFFSET 0 keeps the per-chain sub-query a nested
                // loop of index range scans: flattened into a join, the
                // planner (guessing 100 chains) hashed the chains against
                // a scan of all the tenant's entries (526,071 rows, 1.3 s
                // a round at a million rows).
                let cols = t
                    .columns
                    .iter()
                    .map(|c| format!("x.{}", super::catalog::ident(c)))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!(
                    "with recursive c (chain) as (
                       select (select min(x.chain) from {src} x where {filter})
                       union all
                       select (select min(x.chain) from {src} x where {filter} and x.chain > c.chain)
                         from c where c.chain is not null)
                     select y.* from c cross join lateral (
                       select {cols} from {src} x
                        where {filter} and x.chain = c.chain
                          and x.seq > coalesce(({last}::jsonb ->> c.chain::text)::bigint, 0)
                       offset 0) y
                      where c.chain is not null",
                    src = t.source_ident(),
                    last = literal(&last.to_string())
                )
            }
            Follow::Whole => {
                sqlx::query(&format!(
                    "delete from {} x where {filter}",
                    t.target_ident()
                ))
                .execute(&mut *tx)
                .await?;
                format!(
                    "select {} from {} x where {filter}",
                    t.column_list(),
                    t.source_ident()
                )
            }
        };
        copied += stream(source, &mut tx, t, &select).await?;
        super::catalog::ensure_job_tenant(&mut tx, t, tenant).await?;
    }
    tx.commit().await?;
    Ok(copied)
}
