//! The current definition of every function and view of the business schema
//! (`sql/api/*.sql`), applied after the versioned migrations.
//!
//! Versioned migrations (refinery) hold what cannot be replaced: tables,
//! indexes, constraints, policies, trigger attachments, grants on tables and
//! data moves. Functions and views are written once, as `create or replace`,
//! in the api files; the runner applies all of them, in the order of
//! [`API_FILES`], in one transaction whenever a versioned migration of the
//! same run changed the schema's shape (its tables, columns, grants,
//! functions, views, triggers or policies; an index alone does not) or a
//! file differs from what was last applied to the schema (Flyway's repeatable migrations, Supabase's declarative
//! schemas). What was applied is recorded in `sql_api.applied`, one row per
//! schema and file.

use sha2::{Digest, Sha256};
use tokio_postgres::Client;

use crate::Error;

/// Schema of the runner's history table. It is kept out of the business
/// schemas (whose tables the analytics views and the tier tools enumerate)
/// and holds one row per business schema and file.
pub const HISTORY_SCHEMA: &str = "sql_api";

/// One api file: its name under `sql/api/` and its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiFile<'a> {
    pub name: &'a str,
    pub sql: &'a str,
}

impl ApiFile<'_> {
    /// The SHA-256 of the file's text, in hex: what the history records.
    pub fn checksum(&self) -> String {
        format!("{:x}", Sha256::digest(self.sql.as_bytes()))
    }
}

macro_rules! api_file {
    ($name:literal) => {
        ApiFile {
            name: $name,
            sql: include_str!(concat!("../api/", $name)),
        }
    };
}

/// The api files in the order they run: a file may use what an earlier one
/// defines (a view over a view, an SQL function over a view), never what a
/// later one does.
pub const API_FILES: &[ApiFile<'static>] = &[
    api_file!("platform.sql"),
    api_file!("payloads.sql"),
    api_file!("vocabulary.sql"),
    api_file!("api_keys.sql"),
    api_file!("calendar.sql"),
    api_file!("crm.sql"),
    api_file!("files.sql"),
    api_file!("ticketing.sql"),
    api_file!("precheck.sql"),
    api_file!("receivables.sql"),
    api_file!("customers.sql"),
    api_file!("kpi.sql"),
    api_file!("marketing.sql"),
    api_file!("imports.sql"),
    api_file!("jobs.sql"),
    api_file!("schedules.sql"),
    api_file!("email.sql"),
    api_file!("llm.sql"),
    api_file!("kb.sql"),
    api_file!("digest.sql"),
    api_file!("rfm.sql"),
    api_file!("admin.sql"),
    api_file!("audit.sql"),
    api_file!("webhooks.sql"),
    api_file!("tenants.sql"),
    api_file!("placement.sql"),
    api_file!("tenant_moves.sql"),
    api_file!("billing.sql"),
    api_file!("payments.sql"),
    api_file!("analytics.sql"),
];

/// One api file applied by a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiApplied {
    pub file: String,
    pub checksum: String,
}

/// The 1-based line of `sql` that a PostgreSQL error position points at.
/// The line of `sql` an error points at; `offset` is where the failing
/// statement starts in `sql` (0 when the whole text was sent at once).
fn line_of(sql: &str, offset: usize, err: &tokio_postgres::Error) -> Option<usize> {
    use tokio_postgres::error::ErrorPosition;
    match err.as_db_error()?.position()? {
        ErrorPosition::Original(pos) => {
            let chars = (*pos as usize).saturating_sub(1);
            let before = sql[..offset].matches('\n').count();
            Some(
                sql[offset..]
                    .chars()
                    .take(chars)
                    .filter(|&c| c == '\n')
                    .count()
                    + before
                    + 1,
            )
        }
        ErrorPosition::Internal { .. } => None,
    }
}

fn api_error(file: &ApiFile<'_>, e: crate::citus::StepError) -> Error {
    match e {
        crate::citus::StepError::Db { offset, source } => Error::Api {
            file: file.name.to_owned(),
            line: line_of(file.sql, offset, &source),
            message: message(&source),
            source,
        },
        split @ crate::citus::StepError::Split(_) => Error::ApiSplit {
            file: file.name.to_owned(),
            message: split.to_string(),
        },
    }
}

/// Whether the api must be applied: after a versioned migration of the run
/// that changed the schema's shape (it may have dropped a view or changed
/// what a function or an analytics view reads), or
/// when the recorded files and checksums are not exactly `wanted`.
fn needs_apply(migrated: bool, recorded: &[(String, String)], wanted: &[(String, String)]) -> bool {
    migrated || recorded != wanted
}

/// PostgreSQL's own message when there is one (tokio-postgres shows only
/// "db error").
fn message(source: &tokio_postgres::Error) -> String {
    source
        .as_db_error()
        .map_or_else(|| source.to_string(), ToString::to_string)
}

fn history_step(source: tokio_postgres::Error) -> Error {
    Error::ApiHistory {
        message: message(&source),
        source,
    }
}

/// Whether the history already records exactly `files` for the client's
/// current schema, read without the lock: in a fleet run most schemas have
/// nothing to apply, and taking the database's lock to learn that made
/// the schemas of one database wait for each other.
async fn recorded_unlocked(client: &Client, files: &[ApiFile<'_>]) -> Result<bool, Error> {
    let rows = client
        .query(
            &format!(
                "select file, checksum from {HISTORY_SCHEMA}.applied
                  where schema_name = pg_catalog.current_schema()
                  order by file"
            ),
            &[],
        )
        .await;
    let recorded: Vec<(String, String)> = match rows {
        Ok(rows) => rows.iter().map(|r| (r.get(0), r.get(1))).collect(),
        // No history table yet: the locked path makes it.
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => {
            return Ok(false)
        }
        Err(e) => return Err(history_step(e)),
    };
    let mut wanted: Vec<(String, String)> = files
        .iter()
        .map(|f| (f.name.to_owned(), f.checksum()))
        .collect();
    wanted.sort();
    Ok(!needs_apply(false, &recorded, &wanted))
}

/// Applies `files` to the schema the client's search path leads to (the
/// schema the versioned migrations just ran in), when `migrated` (a
/// versioned migration of this run changed the schema's shape) or when a file's checksum
/// differs from the recorded one. Everything happens in one transaction
/// under an advisory lock: either every file is applied and recorded, or
/// nothing is (the lock is the database's: the api files also define
/// objects of the whole database, the control catalogue's functions, which
/// two schemas applying at once would update concurrently). Returns the files applied (all of them, or none). On Citus
/// (`on_citus`) each file goes one statement at a time, and the triggers
/// Citus cannot run are dropped in the same transaction.
pub(crate) async fn apply(
    client: &mut Client,
    files: &[ApiFile<'_>],
    migrated: bool,
    on_citus: bool,
) -> Result<Vec<ApiApplied>, Error> {
    if !migrated && recorded_unlocked(client, files).await? {
        return Ok(Vec::new());
    }
    let tx = client.transaction().await.map_err(history_step)?;
    // One apply per database at a time (the schemas of a database share
    // the control catalogue's functions), which also guards the history
    // table, made once per database.
    let has_history: bool = tx
        .query_one(
            &format!(
                "select pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('bizos.sql_api')),
                        pg_catalog.to_regclass('{HISTORY_SCHEMA}.applied') is not null"
            ),
            &[],
        )
        .await
        .map_err(history_step)?
        .get(1);
    if !has_history {
        tx.batch_execute(&format!(
            "create schema if not exists {HISTORY_SCHEMA};
             create table if not exists {HISTORY_SCHEMA}.applied (
               schema_name text        not null,
               file        text        not null,
               checksum    text        not null,
               applied_at  timestamptz not null default pg_catalog.now(),
               constraint applied_pkey primary key (schema_name, file)
             );"
        ))
        .await
        .map_err(history_step)?;
    }
    let home: String = tx
        .query_one("select pg_catalog.current_schema()::text", &[])
        .await
        .map_err(history_step)?
        .try_get(0)
        .map_err(history_step)?;

    let recorded: Vec<(String, String)> = tx
        .query(
            &format!(
                "select file, checksum from {HISTORY_SCHEMA}.applied
                  where schema_name = $1 order by file"
            ),
            &[&home],
        )
        .await
        .map_err(history_step)?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut wanted: Vec<(String, String)> = files
        .iter()
        .map(|f| (f.name.to_owned(), f.checksum()))
        .collect();
    wanted.sort();
    if !needs_apply(migrated, &recorded, &wanted) {
        tx.commit().await.map_err(history_step)?;
        return Ok(Vec::new());
    }

    for file in files {
        let applied = if on_citus {
            crate::citus::execute_each(&tx, file.sql).await
        } else {
            tx.batch_execute(file.sql)
                .await
                .map_err(|source| crate::citus::StepError::Db { offset: 0, source })
        };
        applied.map_err(|e| api_error(file, e))?;
    }
    if on_citus {
        // In the same transaction: no moment where the triggers the files
        // just made exist on Citus, nor any where their functions and
        // grants are not yet the forms Citus needs.
        for (name, sql) in [
            ("../citus/triggers.sql", crate::citus::TRIGGERS_SQL),
            ("../citus/functions.sql", crate::citus::FUNCTIONS_SQL),
            ("../citus/grants.sql", crate::citus::GRANTS_SQL),
        ] {
            crate::citus::execute_each(&tx, sql)
                .await
                .map_err(|e| api_error(&ApiFile { name, sql }, e))?;
        }
    }
    tx.execute(
        &format!("delete from {HISTORY_SCHEMA}.applied where schema_name = $1"),
        &[&home],
    )
    .await
    .map_err(history_step)?;
    let mut applied = Vec::with_capacity(files.len());
    for file in files {
        let checksum = file.checksum();
        tx.execute(
            &format!(
                "insert into {HISTORY_SCHEMA}.applied (schema_name, file, checksum)
                 values ($1, $2, $3)"
            ),
            &[&home, &file.name, &checksum],
        )
        .await
        .map_err(history_step)?;
        applied.push(ApiApplied {
            file: file.name.to_owned(),
            checksum,
        });
    }
    tx.commit().await.map_err(history_step)?;
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_of_the_directory_is_listed_once() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/api");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = API_FILES.iter().map(|f| f.name.to_owned()).collect();
        listed.sort();
        assert_eq!(listed, on_disk);
    }

    #[test]
    fn applies_after_a_migration_or_when_a_file_differs() {
        let files = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let wanted = files(&[("a.sql", "1"), ("b.sql", "2")]);
        assert!(!needs_apply(false, &wanted, &wanted));
        assert!(needs_apply(true, &wanted, &wanted));
        assert!(needs_apply(false, &files(&[]), &wanted));
        assert!(needs_apply(
            false,
            &files(&[("a.sql", "1"), ("b.sql", "3")]),
            &wanted
        ));
        assert!(needs_apply(false, &files(&[("a.sql", "1")]), &wanted));
        assert!(needs_apply(
            false,
            &files(&[("a.sql", "1"), ("b.sql", "2"), ("c.sql", "4")]),
            &wanted
        ));
    }

    #[test]
    fn checksums_follow_the_text() {
        let a = ApiFile {
            name: "a.sql",
            sql: "select 1;",
        };
        let b = ApiFile {
            name: "a.sql",
            sql: "select 1; ",
        };
        assert_eq!(a.checksum().len(), 64);
        assert_eq!(a.checksum(), a.checksum());
        assert_ne!(a.checksum(), b.checksum());
    }
}
