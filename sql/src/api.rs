//! The current definition of every function and view of the business schema
//! (`sql/api/*.sql`), applied after the versioned migrations.
//!
//! Versioned migrations (refinery) hold what cannot be replaced: tables,
//! indexes, constraints, policies, trigger attachments, grants on tables and
//! data moves. Functions and views are written once, as `create or replace`,
//! in the api files; the runner applies them, in the order of
//! [`API_FILES`], in one transaction: all of them when a versioned
//! migration of the same run changed the schema's shape (its tables,
//! columns, grants, functions, views, triggers or policies; an index alone
//! does not), else every file from the first one that differs from what
//! was last applied to the schema (Flyway's repeatable migrations,
//! Supabase's declarative schemas). What was applied is recorded in
//! `sql_api.applied`, one row per schema and file, and one row
//! ([`DATABASE_ROW`]) for the statements of the control catalogue, which
//! exist once per database.
//!
//! Why not every file every time: in a database of many tenant schemas
//! replacing a function costs in proportion to the number of schemas.
//! PostgreSQL looks a function up by name through a list of every
//! function of that name in the database (one per schema), and every
//! replaced function invalidates those lists: at 1,000 schemas the 28
//! files took 3.1 s of one core per schema, against 0.45 s in a database
//! of three schemas.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use tokio_postgres::{Client, GenericClient};

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
    api_file!("usage.sql"),
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
    api_file!("vector_indexes.sql"),
    api_file!("digest.sql"),
    api_file!("rfm.sql"),
    api_file!("admin.sql"),
    api_file!("audit.sql"),
    api_file!("webhooks.sql"),
    api_file!("tenants.sql"),
    api_file!("signup.sql"),
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

/// What `schema_name` reads in the history row of the database-wide
/// statements ([`DATABASE_FILE`]): not a valid schema name, so no schema's
/// rows are ever taken for it.
pub const DATABASE_ROW: &str = "*database";
/// The `file` of that row: the checksum of every database-wide statement of
/// the api files, in order.
pub const DATABASE_FILE: &str = "control";

/// Whether a statement of an api file defines, changes, grants or comments
/// an object of schema `control`, which exists once per database (see
/// V45): the schemas of one database must not apply it at the same time
/// (two transactions replacing one function fail with "tuple concurrently
/// updated"). Everything else of an api file is the schema's own (its
/// functions, views, grants and policies, named unqualified) and runs in
/// parallel with the other schemas of the database.
pub(crate) fn database_wide(statement: &str) -> bool {
    // The statement's head, comments left out, lower case, single spaces:
    // enough to read which object it names first.
    let mut head = String::new();
    for line in statement.lines() {
        let line = line.trim();
        if line.starts_with("--") {
            continue;
        }
        if !head.is_empty() {
            head.push(' ');
        }
        head.push_str(line);
        if head.len() > 400 {
            break;
        }
    }
    let head = head
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    let object = |rest: &str| rest.starts_with("control.");
    // `kind control.x`, after a prefix.
    let after = |prefix: &str, kinds: &[&str]| {
        head.strip_prefix(prefix).is_some_and(|rest| {
            kinds
                .iter()
                .any(|k| rest.strip_prefix(k).is_some_and(|r| object(r.trim_start())))
        })
    };
    let kinds = [
        "function ",
        "procedure ",
        "table ",
        "view ",
        "sequence ",
        "type ",
    ];
    if after("create or replace ", &kinds)
        || after("create ", &kinds)
        || after("alter ", &kinds)
        || after("comment on ", &[&kinds[..], &["column "]].concat())
        || head.starts_with("select pin_search_path('control.")
    {
        return true;
    }
    // A trigger of a control table: `create [or replace] trigger name
    // {before|after|instead of} ... on control.table ...`, and its comment.
    if head.starts_with("create trigger ")
        || head.starts_with("create or replace trigger ")
        || head.starts_with("comment on trigger ")
    {
        let until = head.find(" execute ").unwrap_or(head.len());
        return head[..until].contains(" on control.");
    }
    // `grant|revoke ... on [kind] control.x ... to|from ...`
    if head.starts_with("grant ") || head.starts_with("revoke ") {
        let until = [" to ", " from "]
            .iter()
            .filter_map(|w| head.rfind(w))
            .max()
            .unwrap_or(head.len());
        let on = &head[..until];
        return on
            .find(" on ")
            .map(|i| on[i + 4..].trim_start())
            .is_some_and(|rest| {
                object(rest)
                    || rest
                        .split_once(' ')
                        .is_some_and(|(_, r)| object(r.trim_start()))
            });
    }
    false
}

/// A file of the api cut into what the schema applies (`schema`: runs of
/// consecutive statements, each a slice of the file with its offset) and
/// what the database does once (`database`: statements with their
/// offsets). A file that names no `control.` object is one slice.
pub(crate) struct Parts<'a> {
    pub schema: Vec<(usize, &'a str)>,
    pub database: Vec<(usize, &'a str)>,
}

pub(crate) fn parts<'a>(file: &ApiFile<'a>) -> Result<Parts<'a>, Error> {
    let sql = file.sql;
    if !sql.contains("control.") {
        return Ok(Parts {
            schema: vec![(0, sql)],
            database: Vec::new(),
        });
    }
    let statements = crate::statements::split(sql).map_err(|e| Error::ApiSplit {
        file: file.name.to_owned(),
        message: e.to_string(),
    })?;
    let offset = |s: &str| s.as_ptr() as usize - sql.as_ptr() as usize;
    let mut parts = Parts {
        schema: Vec::new(),
        database: Vec::new(),
    };
    // The current run of schema statements: (start, end) in the file.
    let mut run: Option<(usize, usize)> = None;
    for s in statements {
        let (from, to) = (offset(s), offset(s) + s.len());
        if database_wide(s) {
            if let Some((a, b)) = run.take() {
                parts.schema.push((a, &sql[a..b]));
            }
            parts.database.push((from, s));
        } else {
            run = Some(run.map_or((from, to), |(a, _)| (a, to)));
        }
    }
    if let Some((a, b)) = run {
        parts.schema.push((a, &sql[a..b]));
    }
    Ok(parts)
}

/// The checksum of the database-wide statements of `files`, in order.
fn database_checksum(all: &[(&ApiFile<'_>, Parts<'_>)]) -> Option<String> {
    let mut hash = Sha256::new();
    let mut any = false;
    for (file, parts) in all {
        for (_, s) in &parts.database {
            hash.update(file.name.as_bytes());
            hash.update(b"\n");
            hash.update(s.as_bytes());
            hash.update(b";\n");
            any = true;
        }
    }
    any.then(|| format!("{:x}", hash.finalize()))
}

/// The first of `wanted` (the files in their order, with their checksums)
/// to apply: every file from the first whose recorded checksum differs
/// (a file may use what an earlier one defines, so the later ones run
/// again; the earlier ones stay as recorded), all of them after a versioned
/// migration of the run that changed the schema's shape (it may have
/// dropped a view or changed what a function or an analytics view reads)
/// or when the history records a file that is no longer listed;
/// `wanted.len()` when nothing is to be applied.
fn first_stale(
    migrated: bool,
    recorded: &BTreeMap<String, String>,
    wanted: &[(String, String)],
) -> usize {
    if migrated || recorded.keys().any(|f| !wanted.iter().any(|(w, _)| w == f)) {
        return 0;
    }
    wanted
        .iter()
        .position(|(f, c)| recorded.get(f) != Some(c))
        .unwrap_or(wanted.len())
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

/// What the history records for the client's current schema, and the
/// checksum of the database-wide statements; `None` when there is no
/// history table yet.
type Recorded = (BTreeMap<String, String>, Option<String>);

async fn recorded(client: &impl GenericClient) -> Result<Option<Recorded>, Error> {
    // Looked for first: an error would abort the transaction it runs in.
    let exists: bool = client
        .query_one(
            &format!("select pg_catalog.to_regclass('{HISTORY_SCHEMA}.applied') is not null"),
            &[],
        )
        .await
        .map_err(history_step)?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let rows = client
        .query(
            &format!(
                "select schema_name = pg_catalog.current_schema(), file, checksum
                   from {HISTORY_SCHEMA}.applied
                  where schema_name = pg_catalog.current_schema()
                     or (schema_name, file) = ($1, $2)"
            ),
            &[&DATABASE_ROW, &DATABASE_FILE],
        )
        .await;
    let rows = rows.map_err(history_step)?;
    let mut files = BTreeMap::new();
    let mut database = None;
    for r in rows {
        if r.get::<_, bool>(0) {
            files.insert(r.get(1), r.get(2));
        } else {
            database = Some(r.get(2));
        }
    }
    Ok(Some((files, database)))
}

/// Applies `files` to the schema the client's search path leads to (the
/// schema the versioned migrations just ran in): every file from the first
/// whose checksum differs from the recorded one ([`first_stale`]), all of
/// them when `migrated` (a versioned migration of this run changed the
/// schema's shape). Everything happens in one transaction: either every
/// file due is applied and recorded, or nothing is. Returns the files
/// applied.
///
/// Schemas of one database apply in parallel: the transaction holds an
/// advisory lock of its schema only. The statements that define objects
/// of the whole database ([`database_wide`]: the control catalogue's
/// functions and triggers) are left out of the schema's run and applied at
/// its end, under the lock of the database, and only when they changed
/// (their checksum is recorded in the row [`DATABASE_ROW`]) or after a
/// shape-changing migration: two schemas replacing one function at once
/// would fail. On Citus (`on_citus`) the whole apply stays under the lock
/// of the database, each file one statement at a time, and the triggers
/// Citus cannot run are dropped in the same transaction.
pub(crate) async fn apply(
    client: &mut Client,
    files: &[ApiFile<'_>],
    migrated: bool,
    on_citus: bool,
) -> Result<Vec<ApiApplied>, Error> {
    let wanted: Vec<(String, String)> = files
        .iter()
        .map(|f| (f.name.to_owned(), f.checksum()))
        .collect();
    let cut: Vec<(&ApiFile<'_>, Parts<'_>)> = files
        .iter()
        .map(|f| parts(f).map(|p| (f, p)))
        .collect::<Result<_, _>>()?;
    let database_sum = database_checksum(&cut);
    let due = |state: &Option<Recorded>| -> (usize, bool) {
        match state {
            None => (0, database_sum.is_some()),
            Some((files, database)) => (
                first_stale(migrated, files, &wanted),
                database_sum.is_some() && (migrated || *database != database_sum),
            ),
        }
    };
    // Read first without any lock: in a fleet run most schemas have nothing
    // to apply.
    let (start, database_due) = due(&recorded(client).await?);
    if start == files.len() && !database_due {
        return Ok(Vec::new());
    }

    let tx = client.transaction().await.map_err(history_step)?;
    let whole_database = on_citus || recorded(&tx).await?.is_none();
    if whole_database {
        tx.batch_execute(&format!(
            "select pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('bizos.sql_api'));
             create schema if not exists {HISTORY_SCHEMA};
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
    } else {
        // Two runs applying the same schema wait for each other.
        tx.batch_execute(
            "select pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('bizos.sql_api'),
                                                     pg_catalog.hashtext(pg_catalog.current_schema()))",
        )
        .await
        .map_err(history_step)?;
    }
    // Under the lock: what another run committed meanwhile counts.
    let (start, database_due) = due(&recorded(&tx).await?);
    // Citus: every file, each statement alone, the database's statements in
    // place (under the lock of the database taken above).
    let start = if on_citus && start < files.len() {
        0
    } else {
        start
    };
    let home: String = tx
        .query_one("select pg_catalog.current_schema()::text", &[])
        .await
        .map_err(history_step)?
        .try_get(0)
        .map_err(history_step)?;

    for (file, parts) in &cut[start..] {
        if on_citus {
            crate::citus::execute_each(&tx, file.sql)
                .await
                .map_err(|e| api_error(file, e))?;
            continue;
        }
        for (offset, sql) in &parts.schema {
            tx.batch_execute(sql).await.map_err(|source| {
                api_error(
                    file,
                    crate::citus::StepError::Db {
                        offset: *offset,
                        source,
                    },
                )
            })?;
        }
    }
    if on_citus && start < files.len() {
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
    if let Some(sum) = &database_sum {
        // Last and short: the lock of the database is held from here to the
        // commit. Read again under it: another schema may just have applied
        // the same statements.
        let applied_on_citus = on_citus && start < files.len();
        let mut due_now = false;
        if database_due && !applied_on_citus {
            if !whole_database {
                tx.batch_execute(
                    "select pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('bizos.sql_api'))",
                )
                .await
                .map_err(history_step)?;
            }
            let recorded_sum = recorded(&tx).await?.and_then(|(_, d)| d);
            due_now = migrated || recorded_sum.as_ref() != Some(sum);
            if due_now {
                for (file, parts) in &cut {
                    for (offset, sql) in &parts.database {
                        tx.batch_execute(sql).await.map_err(|source| {
                            api_error(
                                file,
                                crate::citus::StepError::Db {
                                    offset: *offset,
                                    source,
                                },
                            )
                        })?;
                    }
                }
            }
        }
        if due_now || applied_on_citus {
            tx.execute(
                &format!(
                    "insert into {HISTORY_SCHEMA}.applied (schema_name, file, checksum)
                     values ($1, $2, $3)
                     on conflict (schema_name, file)
                     do update set checksum = excluded.checksum, applied_at = pg_catalog.now()"
                ),
                &[&DATABASE_ROW, &DATABASE_FILE, sum],
            )
            .await
            .map_err(history_step)?;
        }
    }

    let applied: Vec<ApiApplied> = wanted[start..]
        .iter()
        .map(|(file, checksum)| ApiApplied {
            file: file.clone(),
            checksum: checksum.clone(),
        })
        .collect();
    let names: Vec<&str> = applied.iter().map(|a| a.file.as_str()).collect();
    let sums: Vec<&str> = applied.iter().map(|a| a.checksum.as_str()).collect();
    let listed: Vec<&str> = files.iter().map(|f| f.name).collect();
    tx.execute(
        &format!(
            "with gone as (
               delete from {HISTORY_SCHEMA}.applied
                where schema_name = $1 and file <> all ($4::text[]))
             insert into {HISTORY_SCHEMA}.applied (schema_name, file, checksum)
             select $1, f, c
               from rows from (pg_catalog.unnest($2::text[]), pg_catalog.unnest($3::text[])) as x (f, c)
             on conflict (schema_name, file)
             do update set checksum = excluded.checksum, applied_at = pg_catalog.now()"
        ),
        &[&home, &names, &sums, &listed],
    )
    .await
    .map_err(history_step)?;
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
    fn applies_from_the_first_changed_file_or_all_after_a_migration() {
        let files = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let recorded =
            |v: &[(&str, &str)]| -> BTreeMap<String, String> { files(v).into_iter().collect() };
        let wanted = files(&[("a.sql", "1"), ("b.sql", "2"), ("c.sql", "3")]);
        let same = recorded(&[("a.sql", "1"), ("b.sql", "2"), ("c.sql", "3")]);
        assert_eq!(first_stale(false, &same, &wanted), 3);
        assert_eq!(first_stale(true, &same, &wanted), 0);
        assert_eq!(first_stale(false, &recorded(&[]), &wanted), 0);
        let b_changed = recorded(&[("a.sql", "1"), ("b.sql", "9"), ("c.sql", "3")]);
        assert_eq!(first_stale(false, &b_changed, &wanted), 1);
        let c_missing = recorded(&[("a.sql", "1"), ("b.sql", "2")]);
        assert_eq!(first_stale(false, &c_missing, &wanted), 2);
        let d_gone = recorded(&[
            ("a.sql", "1"),
            ("b.sql", "2"),
            ("c.sql", "3"),
            ("d.sql", "4"),
        ]);
        assert_eq!(first_stale(false, &d_gone, &wanted), 0);
    }

    #[test]
    fn the_control_catalogue_statements_are_the_database_wide_ones() {
        for yes in [
            "create or replace function control.f() returns int language sql as $$ select 1 $$",
            "-- why\ncreate function control.f() returns int",
            "select pin_search_path('control.f()')",
            "revoke execute on function control.f() from public",
            "grant execute on function control.f(uuid) to bizos_app, bizos_worker",
            "comment on function control.f(uuid) is 'x'",
            "create or replace trigger t before update on control.tenant_placements\n  for each row execute function control.f()",
            "alter function control.f() owner to bizos_owner",
        ] {
            assert!(database_wide(yes), "{yes}");
        }
        for no in [
            "create or replace function f() returns setof control.tenant_placements language sql as $$ select * from control.tenant_placements $$",
            "create or replace function f(p control.tenant_placements) returns int",
            "grant execute on function f(uuid) to bizos_app",
            "comment on function f() is 'reads control.tenant_placements'",
            "create or replace trigger t after insert on customers for each row execute function control.tenant_move_capture()",
            "select pin_search_path('f()')",
            "create or replace view v as select * from control.tenant_placements",
            "do $$ begin perform 1; end $$",
        ] {
            assert!(!database_wide(no), "{no}");
        }
        // In the files: only `control.` objects, and every statement whose
        // first lines name one in a create, alter, grant, revoke or comment.
        for file in API_FILES {
            let cut = parts(file).unwrap();
            for (_, s) in &cut.database {
                assert!(s.contains("control."), "{}: {s}", file.name);
            }
            for (_, run) in &cut.schema {
                for s in crate::statements::split(run).unwrap() {
                    let head: String = s
                        .lines()
                        .filter(|l| !l.trim_start().starts_with("--"))
                        .take(2)
                        .collect::<Vec<_>>()
                        .join(" ")
                        .to_lowercase();
                    let names_control = ["function control.", "table control.", " on control."]
                        .iter()
                        .any(|k| head.split(" execute ").next().unwrap_or("").contains(k));
                    assert!(
                        !names_control
                            || head.starts_with("create or replace function ")
                                && !head.contains(" function control."),
                        "{} applies per schema but names a control object: {s}",
                        file.name
                    );
                }
            }
        }
        let database: usize = API_FILES
            .iter()
            .map(|f| parts(f).unwrap().database.len())
            .sum();
        assert!(database > 0);
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
