//! The capture and freeze trigger on the source tables (the function is
//! `control.tenant_move_capture`, sql/api/tenant_moves.sql): installed
//! before the copy, removed when the move rolls back or its source rows
//! are purged; and the fence that refuses the tenant's writes in the
//! source once it has moved.

use sqlx::PgConnection;
use uuid::Uuid;

use super::catalog::{ident, literal, Follow, Table};

/// The prefix of the move's trigger names (one per event).
pub fn trigger_prefix(move_id: Uuid) -> String {
    format!("tenant_move_{}", move_id.simple())
}

/// The advisory lock key of the tenant's freeze, in the source database:
/// writers take it shared (the trigger), the mover exclusively.
pub async fn lock_key(conn: &mut PgConnection, tenant: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("select hashtextextended('bizos.tenant_move:' || $1::text, 0)")
        .bind(tenant)
        .fetch_one(conn)
        .await
}

/// Installs the triggers on every table followed by capture, a short transaction
/// per table: creating a trigger takes a lock that waits for the table's
/// writers of every tenant, held only for that table and bounded by
/// `lock_timeout`, so another tenant waits milliseconds, never the move.
pub async fn install(
    conn: &mut PgConnection,
    tables: &[Table],
    move_id: Uuid,
    tenant: Uuid,
) -> Result<(), sqlx::Error> {
    let key = lock_key(conn, tenant).await?;
    let prefix = trigger_prefix(move_id);
    for t in tables.iter().filter(|t| t.follow == Follow::Capture) {
        let mut args = vec![literal(&move_id.to_string()), literal(&key.to_string())];
        args.extend(t.key.iter().map(|k| literal(k)));
        let args = args.join(", ");
        let when = |row: &str| t.tenant_filter(row, tenant);
        let mut sql = String::from("begin; set local lock_timeout = '2s';");
        for (suffix, event, condition) in [
            ("i", "insert", when("new")),
            (
                "u",
                "update",
                format!("({}) or ({})", when("old"), when("new")),
            ),
            ("d", "delete", when("old")),
        ] {
            sql.push_str(&format!(
                "create or replace trigger {} after {event} on {} for each row when ({condition})
                   execute function control.tenant_move_capture({args});",
                ident(&format!("{prefix}_{suffix}")),
                t.source_ident(),
            ));
        }
        sql.push_str("commit;");
        retry_lock(conn, &sql).await?;
    }
    Ok(())
}

/// Runs a batch of DDL, again after a lock timeout (another tenant's long
/// write on the table): up to 30 times.
async fn retry_lock(conn: &mut PgConnection, sql: &str) -> Result<(), sqlx::Error> {
    let mut attempt = 0;
    loop {
        match sqlx::Executor::execute(&mut *conn, sql).await {
            Ok(_) => return Ok(()),
            Err(sqlx::Error::Database(d))
                if d.code().as_deref() == Some("55P03") && attempt < 30 =>
            {
                let _ = sqlx::Executor::execute(&mut *conn, "rollback").await;
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => {
                let _ = sqlx::Executor::execute(&mut *conn, "rollback").await;
                return Err(e);
            }
        }
    }
}

/// Drops every trigger of the move, wherever it is.
pub async fn remove(conn: &mut PgConnection, move_id: Uuid) -> Result<(), sqlx::Error> {
    let prefix = trigger_prefix(move_id);
    let found: Vec<(String, String)> = sqlx::query_as(
        "select format('%I.%I', n.nspname, c.relname), t.tgname::text
           from pg_trigger t join pg_class c on c.oid = t.tgrelid
           join pg_namespace n on n.oid = c.relnamespace
          where t.tgname::text like $1 || '\\_%'",
    )
    .bind(&prefix)
    .fetch_all(&mut *conn)
    .await?;
    for (table, name) in found {
        retry_lock(
            conn,
            &format!(
                "begin; set local lock_timeout = '2s'; drop trigger if exists {} on {table}; commit;",
                ident(&name)
            ),
        )
        .await?;
    }
    Ok(())
}

/// The move's recorded changes in the source, dropped.
pub async fn forget_changes(conn: &mut PgConnection, move_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("delete from control.tenant_move_changes where move_id = $1")
        .bind(move_id)
        .execute(conn)
        .await
        .map(drop)
}

/// The tenant moved: its writes in the source are refused from now on
/// (committed while the freeze lock is held).
pub async fn fence(
    conn: &mut PgConnection,
    move_id: Uuid,
    tenant: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into control.tenant_move_fences (move_id, tenant_id) values ($1, $2)
         on conflict (move_id) do nothing",
    )
    .bind(move_id)
    .bind(tenant)
    .execute(conn)
    .await
    .map(drop)
}

/// The fence gone (a rollback, or the purge once the rows are gone).
pub async fn unfence(conn: &mut PgConnection, move_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("delete from control.tenant_move_fences where move_id = $1")
        .bind(move_id)
        .execute(conn)
        .await
        .map(drop)
}
