//! Verification: per table, the count of the tenant's rows and an
//! order-independent checksum of every row (the sum of a 64-bit hash of
//! each row: `hash_record_extended`, each column by its type's own hash
//! function, or by its text where the type has none) in the source and in
//! the target, and the tenant's audit chains checked in the target
//! (`bizos.audit_verify`), at the same time as the tables, on a connection
//! that shares the snapshot. The target is read in the snapshot taken at
//! the switch, so the tenant's writes after it do not count; the source no
//! longer changes (its writes are refused since the switch).

use std::time::Instant;

use serde_json::{json, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use super::catalog::{self, ident, Table};

/// Count and checksum of one table's rows of the tenant.
pub async fn checksum(
    conn: &mut PgConnection,
    table: &Table,
    target: bool,
    tenant: Uuid,
) -> Result<(i64, String), sqlx::Error> {
    let cols = table
        .columns
        .iter()
        .map(|c| {
            if table.hashed_as_text.contains(c) {
                format!("x.{}::text", ident(c))
            } else {
                format!("x.{}", ident(c))
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    sqlx::query_as(&format!(
        "select count(*), coalesce(sum(hash_record_extended(row({cols}), 0)::numeric), 0)::text
           from {} x where {}",
        if target {
            table.target_ident()
        } else {
            table.source_ident()
        },
        table.tenant_filter("x", tenant)
    ))
    .fetch_one(conn)
    .await
}

/// The comparison of every table and the target's audit chains: the
/// report, and the problems (none: verified). `target` is in a
/// transaction whose snapshot is the one verified; the chains are checked
/// at the same time as the tables, on a connection of their own
/// (`target_url`) that imports that snapshot (`pg_export_snapshot`), so
/// the two scans of the tables and the chains' hashing share the time.
pub async fn compare(
    source: &mut PgConnection,
    target: &mut PgConnection,
    target_url: &str,
    tables: &[Table],
    tenant: Uuid,
) -> Result<(Value, Vec<String>), sqlx::Error> {
    // The same text of a row on both sides: times in one zone.
    sqlx::query("set timezone = 'UTC'")
        .execute(&mut *source)
        .await?;
    sqlx::query("set timezone = 'UTC'")
        .execute(&mut *target)
        .await?;
    let snapshot: String = sqlx::query_scalar("select pg_export_snapshot()")
        .fetch_one(&mut *target)
        .await?;
    let mut chains = super::connection::connect(target_url).await?;
    sqlx::query("begin isolation level repeatable read read only")
        .execute(&mut chains)
        .await?;
    sqlx::query(&format!(
        "set transaction snapshot {}",
        catalog::literal(&snapshot)
    ))
    .execute(&mut chains)
    .await?;
    let (checked, broken) = tokio::try_join!(
        checksums(source, target, tables, tenant),
        audit_breaks(&mut chains, tenant)
    )?;
    let _ = sqlx::Connection::close(chains).await;
    let (report, mut problems, rows, checksum_ms) = checked;
    let (breaks, audit_ms) = broken;
    for (chain, seq, problem) in &breaks {
        problems.push(format!(
            "audit chain {chain} breaks at {seq} in the target: {problem}"
        ));
    }
    Ok((
        json!({"tables": report, "rows": rows, "audit_breaks": breaks.len(),
               "checksum_ms": checksum_ms, "audit_ms": audit_ms}),
        problems,
    ))
}

/// Every table's count and checksum on both sides: the report by table,
/// the differences, the tenant's rows and the milliseconds it took.
async fn checksums(
    source: &mut PgConnection,
    target: &mut PgConnection,
    tables: &[Table],
    tenant: Uuid,
) -> Result<(serde_json::Map<String, Value>, Vec<String>, i64, u64), sqlx::Error> {
    let started = Instant::now();
    let mut report = serde_json::Map::new();
    let mut problems = Vec::new();
    let mut rows = 0i64;
    for t in tables {
        if t.name == catalog::JOB_TENANTS {
            // The queue's round-robin order: each database's own (its
            // claims stamp it), not the tenant's data.
            continue;
        }
        // Both sides at once: each is a scan of the tenant's rows.
        let (a, b) = tokio::try_join!(
            checksum(source, t, false, tenant),
            checksum(target, t, true, tenant)
        )?;
        rows += a.0;
        if a != b {
            problems.push(format!(
                "{}: source {} rows (checksum {}), target {} rows (checksum {})",
                t.qualified(),
                a.0,
                a.1,
                b.0,
                b.1
            ));
        }
        report.insert(t.qualified(), json!({"rows": a.0, "checksum": a.1}));
    }
    Ok((report, problems, rows, started.elapsed().as_millis() as u64))
}

/// The first break of each of the tenant's audit chains
/// (`bizos.audit_verify`: none when intact) and the milliseconds it took.
async fn audit_breaks(
    conn: &mut PgConnection,
    tenant: Uuid,
) -> Result<(Vec<(i16, i64, String)>, u64), sqlx::Error> {
    let started = Instant::now();
    let breaks: Vec<(i16, i64, String)> =
        sqlx::query_as("select chain, seq, coalesce(problem, '') from bizos.audit_verify($1)")
            .bind(tenant)
            .fetch_all(&mut *conn)
            .await?;
    Ok((breaks, started.elapsed().as_millis() as u64))
}
