//! Preflight: everything that would make a move fail half-way is refused
//! before a row moves. Every table of the tenant has a key (the catch-up
//! copies rows by key); the target runs the same schema (refinery history,
//! api files) and extension version, and has every table with the same
//! columns and types (the copy is binary; a type is compared by name, as a
//! schema of the schema tier has its own copy of the business types).
//!
//! Free disk is not checked: PostgreSQL has no SQL function for a
//! filesystem's free space. The move's size is the tenant's rows, which
//! the copy's progress shows table by table; the operator keeps the
//! target's disk above that.

use serde_json::{json, Value};
use sqlx::PgConnection;

use super::catalog::Table;

/// Why the move cannot start (the move fails with it, nothing copied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub Vec<String>);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "preflight refused the move: {}", self.0.join("; "))
    }
}

/// The checks; Ok with what was checked (for the move's progress).
pub async fn check(
    source: &mut PgConnection,
    target: &mut PgConnection,
    source_schema: &str,
    target_schema: &str,
    tables: &[Table],
) -> Result<Result<Value, Refusal>, sqlx::Error> {
    let mut problems = Vec::new();
    let keyless: Vec<String> = tables
        .iter()
        .filter(|t| t.key.is_empty())
        .map(|t| t.qualified())
        .collect();
    if !keyless.is_empty() {
        problems.push(format!(
            "tables without a primary key, replica identity or unique key: {}",
            keyless.join(", ")
        ));
    }

    let (src_ext, dst_ext) = (extension(source).await?, extension(target).await?);
    if src_ext != dst_ext {
        problems.push(format!(
            "the target's bizos extension is {} and the source's {}",
            dst_ext.as_deref().unwrap_or("missing"),
            src_ext.as_deref().unwrap_or("missing")
        ));
    }
    let (src_v, dst_v) = (
        history(source, source_schema).await?,
        history(target, target_schema).await?,
    );
    if src_v != dst_v {
        problems.push(format!(
            "the target schema {target_schema} is at migration {} and the source at {}",
            last(&dst_v),
            last(&src_v)
        ));
    }
    let (src_api, dst_api) = (
        api(source, source_schema).await?,
        api(target, target_schema).await?,
    );
    if src_api != dst_api {
        let differ: Vec<String> = src_api
            .iter()
            .filter(|f| !dst_api.contains(f))
            .map(|f| f.0.clone())
            .collect();
        problems.push(format!(
            "the target's api files differ from the source's: {}",
            if differ.is_empty() {
                "the target has others".to_owned()
            } else {
                differ.join(", ")
            }
        ));
    }
    if src_v == dst_v && !dst_v.is_empty() {
        for t in tables {
            let (a, b) = (
                shape(source, &t.schema, &t.name).await?,
                shape(target, &t.target_schema, &t.name).await?,
            );
            if a != b {
                problems.push(format!(
                    "table {}.{} differs in the target",
                    t.target_schema, t.name
                ));
            }
        }
    }
    if !problems.is_empty() {
        return Ok(Err(Refusal(problems)));
    }
    Ok(Ok(json!({
        "tables": tables.len(),
        "extension": src_ext,
        "migration": last(&src_v),
    })))
}

async fn extension(conn: &mut PgConnection) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("select extversion::text from pg_extension where extname = 'bizos'")
        .fetch_optional(conn)
        .await
}

/// The schema's refinery history (version, checksum), empty without one.
async fn history(conn: &mut PgConnection, schema: &str) -> Result<Vec<(i32, String)>, sqlx::Error> {
    let exists: bool = sqlx::query_scalar(
        "select exists (select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace
                         where n.nspname = $1 and c.relname = 'refinery_schema_history')",
    )
    .bind(schema)
    .fetch_one(&mut *conn)
    .await?;
    if !exists {
        return Ok(vec![]);
    }
    sqlx::query_as(&format!(
        "select version, checksum::text from {}.refinery_schema_history order by version",
        super::catalog::ident(schema)
    ))
    .fetch_all(conn)
    .await
}

fn last(history: &[(i32, String)]) -> String {
    history
        .last()
        .map_or_else(|| "none (not migrated)".to_owned(), |v| format!("V{}", v.0))
}

async fn api(conn: &mut PgConnection, schema: &str) -> Result<Vec<(String, String)>, sqlx::Error> {
    let exists: bool = sqlx::query_scalar("select to_regclass('sql_api.applied') is not null")
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        return Ok(vec![]);
    }
    sqlx::query_as(
        "select file, checksum from sql_api.applied where schema_name = $1 order by file",
    )
    .bind(schema)
    .fetch_all(conn)
    .await
}

async fn shape(
    conn: &mut PgConnection,
    schema: &str,
    table: &str,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "select a.attname::text, (select t.typname::text from pg_type t where t.oid = a.atttypid) || ':' || a.atttypmod
           from pg_attribute a join pg_class c on c.oid = a.attrelid
           join pg_namespace n on n.oid = c.relnamespace
          where n.nspname = $1 and c.relname = $2 and a.attnum > 0 and not a.attisdropped
          order by a.attnum",
    )
    .bind(schema)
    .bind(table)
    .fetch_all(conn)
    .await
}
