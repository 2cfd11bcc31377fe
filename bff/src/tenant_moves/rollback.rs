//! Rolling back and purging. A rollback (abort, or a failure before the
//! switch) leaves the source as it was: its triggers and recorded changes
//! go, and the target loses the tenant's rows it received. It never
//! deletes anything of the source. The purge, after the grace period of a
//! finished move, deletes the tenant's rows from the source, then drops
//! the triggers and the fence. Either way a `tenants` row stays where the tenant's
//! move jobs are (the control database's queue): it anchors them.

use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use super::capture;
use super::catalog::Table;

/// Deletes the tenant's rows of `tables` on `conn` (children first), but
/// not a `tenants` row that the tenant's move jobs there refer to.
pub async fn delete_rows(
    conn: &mut PgConnection,
    tables: &[Table],
    tenant: Uuid,
    target_side: bool,
) -> Result<u64, sqlx::Error> {
    let mut tx = conn.begin().await?;
    sqlx::query("set local session_replication_role = replica")
        .execute(&mut *tx)
        .await?;
    let mut deleted = 0;
    for t in tables.iter().rev() {
        let (table, schema) = if target_side {
            (t.target_ident(), &t.target_schema)
        } else {
            (t.source_ident(), &t.schema)
        };
        // The tenants row anchors the move jobs there, and the queue's
        // round-robin row keeps them claimable (a later move's purge).
        let anchor = if t.name == "tenants" || t.name == "job_tenants" {
            format!(
                " and not exists (select 1 from {}.jobs j where j.tenant_id = x.tenant_id and j.kind = 'tenant.move')",
                super::catalog::ident(schema)
            )
        } else {
            String::new()
        };
        deleted += sqlx::query(&format!(
            "delete from {table} x where {}{anchor}",
            t.tenant_filter("x", tenant)
        ))
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    tx.commit().await?;
    Ok(deleted)
}

/// Undoes a move before its switch: the source untouched and writable.
pub async fn rollback(
    source: &mut PgConnection,
    target: &mut PgConnection,
    tables: &[Table],
    move_id: Uuid,
    tenant: Uuid,
    same_database: bool,
) -> Result<(), sqlx::Error> {
    capture::remove(source, move_id).await?;
    capture::unfence(source, move_id).await?;
    delete_rows(target, tables, tenant, true).await?;
    if !same_database {
        super::freeze::drop_sequences(target, tenant).await?;
    }
    capture::forget_changes(source, move_id).await
}

/// Removes a finished move's source rows; how many.
pub async fn purge(
    source: &mut PgConnection,
    tables: &[Table],
    move_id: Uuid,
    tenant: Uuid,
    same_database: bool,
) -> Result<u64, sqlx::Error> {
    let deleted = delete_rows(source, tables, tenant, false).await?;
    if !same_database {
        super::freeze::drop_sequences(source, tenant).await?;
    }
    capture::remove(source, move_id).await?;
    capture::unfence(source, move_id).await?;
    capture::forget_changes(source, move_id).await?;
    Ok(deleted)
}
