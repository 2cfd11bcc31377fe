//! The snapshot copy while the tenant keeps writing: each table's rows of
//! the tenant streamed from the source with COPY (binary: the two sides run
//! the same schema, checked by preflight) into the target, which first
//! loses whatever a crashed copy of the table left. The target session
//! runs with `session_replication_role = replica`: the rows arrive as they
//! are (no audit entry, no new business number, no foreign-key check by
//! row; the source checked them).

use futures_util::StreamExt;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use super::catalog::Table;

/// Copies the tenant's rows of `table` (replacing the target's); how many.
pub async fn table(
    source: &mut PgConnection,
    target: &mut PgConnection,
    table: &Table,
    tenant: Uuid,
) -> Result<u64, sqlx::Error> {
    let select = format!(
        "select {} from {} x where {}",
        table.column_list(),
        table.source_ident(),
        table.tenant_filter("x", tenant)
    );
    let mut tx = target.begin().await?;
    sqlx::query("set local session_replication_role = replica")
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!(
        "delete from {} x where {}",
        table.target_ident(),
        table.tenant_filter("x", tenant)
    ))
    .execute(&mut *tx)
    .await?;
    let copied = stream(source, &mut tx, table, &select).await?;
    super::catalog::ensure_job_tenant(&mut tx, table, tenant).await?;
    tx.commit().await?;
    Ok(copied)
}

/// The rows of `select` (in the source) appended to the table in the
/// target, in the caller's transaction.
pub async fn stream(
    source: &mut PgConnection,
    target: &mut PgConnection,
    table: &Table,
    select: &str,
) -> Result<u64, sqlx::Error> {
    let mut out = source
        .copy_out_raw(&format!("copy ({select}) to stdout (format binary)"))
        .await?;
    let mut sink = target
        .copy_in_raw(&format!(
            "copy {} ({}) from stdin (format binary)",
            table.target_ident(),
            table.column_list()
        ))
        .await?;
    while let Some(chunk) = out.next().await {
        match chunk {
            Ok(bytes) => sink.send(bytes).await?,
            Err(e) => {
                let _ = sink.abort("the source's copy failed").await;
                return Err(e);
            }
        };
    }
    sink.finish().await
}
