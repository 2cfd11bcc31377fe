//! The api files (`sql/api/*.sql`): every function and view of
//! the business schema has one current definition, in one file, applied
//! after the versioned migrations by the runner of `bizos_sql`, in one
//! transaction, when a migration was applied or a file changed.

use std::collections::{BTreeMap, BTreeSet};

use bizos_sql::{ApiFile, Error, API_FILES, HISTORY_SCHEMA};
use bizos_tests::TestDb;
use sqlx::PgPool;

/// The functions of a schema (identity signature without the schema) and
/// its views, leaving out extension members.
async fn objects(pool: &PgPool, schema: &str) -> BTreeSet<String> {
    sqlx::query_scalar(
        "select 'function ' || p.proname || '('
                || replace(pg_get_function_identity_arguments(p.oid), $1 || '.', '') || ')'
           from pg_proc p
          where p.pronamespace = $1::regnamespace
            and not exists (select 1 from pg_depend d where d.classid = 'pg_proc'::regclass
                             and d.objid = p.oid and d.deptype = 'e')
         union all
         select 'view ' || c.relname from pg_class c
          where c.relnamespace = $1::regnamespace and c.relkind = 'v'",
    )
    .bind(schema)
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

/// Names of the functions and views an api file text defines, with how
/// often (`create or replace function|view <name>`, comments left out).
/// A `do $citus$ ... $citus$` block holds the Citus form of an object the
/// file defines just before it (receivables.sql: `v_invoices`): the same
/// object, not a second definition.
fn defined_names(sql: &str) -> Vec<(String, String)> {
    let mut text: String = sql
        .lines()
        .map(|l| l.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    while let Some(start) = text.find("do $citus$") {
        let body = start + "do $citus$".len();
        let end = text[body..]
            .find("$citus$")
            .map(|e| body + e + "$citus$".len())
            .expect("a do $citus$ block without its end");
        text.replace_range(start..end, " ");
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut out = Vec::new();
    for w in words.windows(5) {
        if w[0..3] == ["create", "or", "replace"] && (w[3] == "function" || w[3] == "view") {
            let name: String = w[4]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '.')
                .collect();
            out.push((w[3].to_owned(), name));
        }
    }
    out
}

/// `create [or replace] function|procedure|view` anywhere in a migration's
/// SQL outside comments (also inside a DO block or a string).
fn defines_function_or_view(sql: &str) -> Option<String> {
    let text: String = sql
        .lines()
        .map(|l| l.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
        .replace(['(', ')', '\'', '$', ';'], " ");
    let words: Vec<&str> = text.split_whitespace().collect();
    for (i, w) in words.iter().enumerate() {
        if *w != "create" {
            continue;
        }
        let mut rest = words[i + 1..].iter().copied();
        let mut next = rest.next();
        if next == Some("or") {
            rest.next(); // replace
            next = rest.next();
        }
        while matches!(
            next,
            Some("temp" | "temporary" | "recursive" | "materialized")
        ) {
            next = rest.next();
        }
        if let Some(kind @ ("function" | "procedure" | "view")) = next {
            return Some(format!("create {kind} {}", rest.next().unwrap_or("")));
        }
    }
    None
}

/// The recorded api history of a schema: file -> checksum.
async fn history(pool: &PgPool, schema: &str) -> BTreeMap<String, String> {
    sqlx::query_as::<_, (String, String)>(&format!(
        "select file, checksum from {HISTORY_SCHEMA}.applied where schema_name = $1"
    ))
    .bind(schema)
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

fn expected_history(files: &[ApiFile<'_>]) -> BTreeMap<String, String> {
    files
        .iter()
        .map(|f| (f.name.to_owned(), f.checksum()))
        .collect()
}

fn all_names(files: &[ApiFile<'_>]) -> Vec<String> {
    files.iter().map(|f| f.name.to_owned()).collect()
}

/// The api files with `extra` appended to the file `name`.
fn with_appended(name: &str, extra: &str) -> Vec<(String, String)> {
    API_FILES
        .iter()
        .map(|f| {
            let sql = if f.name == name {
                format!("{}\n{extra}\n", f.sql)
            } else {
                f.sql.to_owned()
            };
            (f.name.to_owned(), sql)
        })
        .collect()
}

fn as_files(owned: &[(String, String)]) -> Vec<ApiFile<'_>> {
    owned
        .iter()
        .map(|(name, sql)| ApiFile { name, sql })
        .collect()
}

async fn function_comment(pool: &PgPool, sig: &str) -> Option<String> {
    sqlx::query_scalar(&format!(
        "select obj_description('{sig}'::regprocedure, 'pg_proc')"
    ))
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn every_function_and_view_is_defined_in_exactly_one_api_file() {
    let db = TestDb::new().await;
    let mut catalogue = objects(&db.owner, "public").await;
    assert!(catalogue.len() > 100, "{catalogue:?}");
    // The control catalogue's functions are written qualified (`control.f`).
    for obj in objects(&db.owner, "control").await {
        let (kind, rest) = obj.split_once(' ').unwrap();
        catalogue.insert(format!("{kind} control.{rest}"));
    }

    // By name: each object of the catalogue in one file, as many times as
    // it has overloads there.
    let mut by_name: BTreeMap<(String, String), BTreeMap<&str, usize>> = BTreeMap::new();
    for file in API_FILES {
        for key in defined_names(file.sql) {
            *by_name
                .entry(key)
                .or_default()
                .entry(file.name)
                .or_default() += 1;
        }
    }
    let mut in_catalogue: BTreeMap<(String, String), usize> = BTreeMap::new();
    for obj in &catalogue {
        let (kind, rest) = obj.split_once(' ').unwrap();
        let name = rest.split('(').next().unwrap();
        *in_catalogue
            .entry((kind.to_owned(), name.to_owned()))
            .or_default() += 1;
    }
    let mut problems = Vec::new();
    for (key, overloads) in &in_catalogue {
        match by_name.get(key) {
            None => problems.push(format!("{key:?} is defined in no api file")),
            Some(files) if files.len() > 1 => {
                problems.push(format!("{key:?} is defined in several files: {files:?}"))
            }
            Some(files) => {
                let times = files.values().sum::<usize>();
                if times != *overloads {
                    problems.push(format!(
                        "{key:?}: {times} definitions in {files:?} for {overloads} object(s)"
                    ));
                }
            }
        }
    }
    for key in by_name.keys() {
        if !in_catalogue.contains_key(key) {
            problems.push(format!("{key:?} is in an api file but not in the schema"));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

/// Everything a definition carries, per function and view of a schema (and
/// the analytics views built over it).
const PROPERTIES: &str = r"
    select 'function ' || p.oid::regprocedure::text,
           concat_ws(E'\n', pg_get_functiondef(p.oid), 'acl ' || p.proacl::text,
                     'config ' || p.proconfig::text, 'comment ' || obj_description(p.oid, 'pg_proc'))
      from pg_proc p
     where p.pronamespace = $1::regnamespace
       and not exists (select 1 from pg_depend d where d.classid = 'pg_proc'::regclass
                        and d.objid = p.oid and d.deptype = 'e')
    union all
    select 'view ' || c.oid::regclass::text,
           concat_ws(E'\n', pg_get_viewdef(c.oid), 'options ' || c.reloptions::text,
                     'acl ' || c.relacl::text, 'comment ' || obj_description(c.oid, 'pg_class'))
      from pg_class c
     where c.relnamespace in ($1::regnamespace, 'analytics'::regnamespace)
       and c.relkind = 'v'
     order by 1";

#[tokio::test]
async fn the_api_files_alone_rebuild_every_function_and_view() {
    // Drop every function and view of the schema (and with them the
    // triggers, policies and analytics views that use them), apply the
    // files in their order, and compare: the files restate every grant,
    // pinned search path, setting and comment, and no file uses what a
    // later one defines (views over views, SQL functions). Rolled back.
    let db = TestDb::new().await;
    let mut tx = db.owner.begin().await.unwrap();
    let before: Vec<(String, String)> = sqlx::query_as(PROPERTIES)
        .bind("public")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert!(before.len() > 150, "{}", before.len());
    let drop_functions: String = sqlx::query_scalar(
        "select 'drop function ' || string_agg(p.oid::regprocedure::text, ', ') || ' cascade'
           from pg_proc p
          where p.pronamespace = 'public'::regnamespace
            and not exists (select 1 from pg_depend d where d.classid = 'pg_proc'::regclass
                             and d.objid = p.oid and d.deptype = 'e')",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    sqlx::raw_sql(&drop_functions)
        .execute(&mut *tx)
        .await
        .unwrap();
    let drop_views: Option<String> = sqlx::query_scalar(
        "select 'drop view ' || string_agg(c.oid::regclass::text, ', ') || ' cascade'
           from pg_class c where c.relnamespace = 'public'::regnamespace and c.relkind = 'v'",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    if let Some(sql) = drop_views {
        sqlx::raw_sql(&sql).execute(&mut *tx).await.unwrap();
    }
    let left: Vec<(String, String)> = sqlx::query_as(PROPERTIES)
        .bind("public")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    let left: Vec<&String> = left
        .iter()
        .map(|(k, _)| k)
        .filter(|k| !k.starts_with("view analytics."))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    for file in API_FILES {
        sqlx::raw_sql(file.sql)
            .execute(&mut *tx)
            .await
            .unwrap_or_else(|e| panic!("{} from scratch: {e}", file.name));
    }
    let after: Vec<(String, String)> = sqlx::query_as(PROPERTIES)
        .bind("public")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    let before: BTreeMap<_, _> = before.into_iter().collect();
    let after: BTreeMap<_, _> = after.into_iter().collect();
    let differ: Vec<&String> = before
        .keys()
        .chain(after.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|k| before.get(*k) != after.get(*k))
        .collect();
    assert!(
        differ.is_empty(),
        "rebuilt from the api files, these differ: {differ:#?}\n{:#?}",
        differ
            .iter()
            .take(3)
            .map(|k| (before.get(*k), after.get(*k)))
            .collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn versioned_migrations_after_v19_define_no_function_or_view() {
    // The check is not vacuous: it finds what V18 and V17 define.
    assert_eq!(
        defines_function_or_view("-- create function x()\ncreate or replace function kpi_x(a int)"),
        Some("create function kpi_x".to_owned())
    );
    assert_eq!(
        defines_function_or_view("do $$ begin execute 'create view v_x as select 1'; end $$;"),
        Some("create view v_x".to_owned())
    );
    assert_eq!(
        defines_function_or_view("create table t (a int); create trigger t_x before insert on t for each row execute function f();"),
        None
    );

    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../sql/migrations");
    let mut checked = 0;
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let Some(version) = name
            .strip_prefix('V')
            .and_then(|r| r.split("__").next())
            .and_then(|v| v.parse::<u32>().ok())
        else {
            continue;
        };
        let sql = std::fs::read_to_string(format!("{dir}/{name}")).unwrap();
        let found = defines_function_or_view(&sql);
        if version <= 19 {
            // Landed before sql/api existed (their objects are in sql/api now).
            checked += usize::from(found.is_some());
            continue;
        }
        if let Some(what) = found {
            problems.push(format!(
                "{name}: `{what}` — functions and views live in sql/api (sql/CONVENTIONS.md)"
            ));
        }
    }
    assert!(
        checked >= 15,
        "the scan finds the definitions of V1-V19: {checked}"
    );
    assert!(problems.is_empty(), "{problems:#?}");
}

/// How many versioned migrations there are (versions may have gaps while
/// branches hold numbers of their own).
pub(crate) fn migration_files() -> usize {
    std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../sql/migrations"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".sql")
        })
        .count()
}

#[tokio::test]
async fn migrating_twice_applies_nothing_the_second_time() {
    let db = TestDb::new().await;
    let owner = db.url("bizos_owner");
    // The template was migrated by the runner: the history is current.
    assert_eq!(
        history(&db.owner, "public").await,
        expected_history(API_FILES)
    );
    let again = bizos_sql::migrate_report(&owner, None).await.unwrap();
    assert!(again.is_empty(), "{again:?}");

    // A new schema tier: every migration and every api file, then nothing.
    let first = bizos_sql::migrate_report(&owner, Some("tenant_twice"))
        .await
        .unwrap();
    assert_eq!(first.migrations.len(), migration_files());
    assert_eq!(
        first.api.iter().map(|a| a.file.clone()).collect::<Vec<_>>(),
        all_names(API_FILES)
    );
    let second = bizos_sql::migrate_report(&owner, Some("tenant_twice"))
        .await
        .unwrap();
    assert!(second.is_empty(), "{second:?}");
    assert_eq!(
        history(&db.owner, "tenant_twice").await,
        expected_history(API_FILES)
    );
    // A migration applied in the run re-applies the api even when the
    // recorded checksums match (here: the schema was dropped and is built
    // again; its history rows stayed).
    sqlx::raw_sql("drop schema tenant_twice, tenant_twice_analytics cascade")
        .execute(&db.owner)
        .await
        .unwrap();
    let rebuilt = bizos_sql::migrate_report(&owner, Some("tenant_twice"))
        .await
        .unwrap();
    assert_eq!(rebuilt.migrations.len(), migration_files());
    assert_eq!(rebuilt.api.len(), API_FILES.len());

    let reserved = bizos_sql::migrate_report(&owner, Some(HISTORY_SCHEMA))
        .await
        .unwrap_err();
    assert!(matches!(reserved, Error::ReservedSchema(_)), "{reserved}");
}

#[tokio::test]
async fn a_changed_file_is_reapplied_and_recorded() {
    let db = TestDb::new().await;
    let owner = db.url("bizos_owner");
    let sig = "tenant_today(uuid)";
    let original = function_comment(&db.owner, sig).await;
    assert!(original.is_some());

    let changed = with_appended(
        "platform.sql",
        "comment on function tenant_today(uuid) is 'changed by the test';",
    );
    let changed = as_files(&changed);
    let report = bizos_sql::migrate_with_api(&owner, None, &changed)
        .await
        .unwrap();
    assert!(report.migrations.is_empty());
    assert_eq!(
        report
            .api
            .iter()
            .map(|a| a.file.clone())
            .collect::<Vec<_>>(),
        all_names(&changed),
        "every file runs again, in order"
    );
    assert_eq!(
        function_comment(&db.owner, sig).await.as_deref(),
        Some("changed by the test")
    );
    let recorded = history(&db.owner, "public").await;
    assert_eq!(recorded, expected_history(&changed));
    assert_ne!(recorded, expected_history(API_FILES));

    // Unchanged since: nothing to do.
    let again = bizos_sql::migrate_with_api(&owner, None, &changed)
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");

    // The embedded files differ from the recorded ones again: re-applied.
    let back = bizos_sql::migrate_report(&owner, None).await.unwrap();
    assert_eq!(back.api.len(), API_FILES.len());
    assert_eq!(function_comment(&db.owner, sig).await, original);
    assert_eq!(
        history(&db.owner, "public").await,
        expected_history(API_FILES)
    );
}

#[tokio::test]
async fn a_broken_file_rolls_back_the_whole_apply_and_is_named() {
    let db = TestDb::new().await;
    let owner = db.url("bizos_owner");
    let sig = "tenant_today(uuid)";
    let original = function_comment(&db.owner, sig).await;

    // The first file changes a comment, the last one creates a view and
    // then fails on its last line.
    let mut files = with_appended(
        "platform.sql",
        "comment on function tenant_today(uuid) is 'half-written';",
    );
    let last = files.last_mut().unwrap();
    last.1 = format!(
        "{}\ncreate view v_half_written as select 1 as one;\nselect no_such_function();\n",
        last.1
    );
    let broken_line = last.1.lines().count();
    let broken_name = last.0.clone();
    let err = bizos_sql::migrate_with_api(&owner, None, &as_files(&files))
        .await
        .unwrap_err();
    match &err {
        Error::Api { file, line, .. } => {
            assert_eq!(file, &broken_name);
            assert_eq!(*line, Some(broken_line));
        }
        other => panic!("expected an api file error, got {other}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(&format!("sql/api/{broken_name} (line {broken_line})"))
            && message.contains("no_such_function"),
        "{message}"
    );

    // Nothing of it is left: not the earlier file's change, not the view,
    // not a history row.
    assert_eq!(function_comment(&db.owner, sig).await, original);
    let view: Option<String> = sqlx::query_scalar("select to_regclass('v_half_written')::text")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(view, None);
    assert_eq!(
        history(&db.owner, "public").await,
        expected_history(API_FILES)
    );
}

#[tokio::test]
async fn the_schema_tier_gets_the_api_too() {
    let db = TestDb::new().await;
    let owner = db.url("bizos_owner");
    let report = bizos_sql::migrate_report(&owner, Some("tenant_api"))
        .await
        .unwrap();
    assert_eq!(report.api.len(), API_FILES.len());
    assert_eq!(
        history(&db.owner, "tenant_api").await,
        expected_history(API_FILES)
    );
    assert_eq!(
        objects(&db.owner, "tenant_api").await,
        objects(&db.owner, "public").await
    );
    // Same definitions, their names resolved in the tenant's schema.
    let defs = |schema: &'static str| {
        let pool = db.owner.clone();
        async move {
            sqlx::query_as::<_, (String, String)>(
                "select p.proname || '(' || replace(pg_get_function_identity_arguments(p.oid), $1 || '.', '') || ')',
                        replace(replace(pg_get_functiondef(p.oid), $1 || '.', ''),
                                format('%L, %L', 'pg_catalog', $1), format('%L, %L', 'pg_catalog', 'S'))
                   from pg_proc p where p.pronamespace = $1::regnamespace
                  union all
                 select c.relname::text, replace(pg_get_viewdef(c.oid), $1 || '.', '')
                   from pg_class c where c.relnamespace = $1::regnamespace and c.relkind = 'v'
                  order by 1",
            )
            .bind(schema)
            .fetch_all(&pool)
            .await
            .unwrap()
        }
    };
    let (in_tenant, in_public) = (defs("tenant_api").await, defs("public").await);
    assert_eq!(in_tenant.len(), in_public.len());
    for (t, p) in in_tenant.iter().zip(&in_public) {
        assert_eq!(t, p);
    }

    // A change reaches the tier it is applied to, and only that one.
    let changed = with_appended(
        "platform.sql",
        "comment on function tenant_today(uuid) is 'tenant tier';",
    );
    let report = bizos_sql::migrate_with_api(&owner, Some("tenant_api"), &as_files(&changed))
        .await
        .unwrap();
    assert_eq!(report.api.len(), API_FILES.len());
    assert_eq!(
        function_comment(&db.owner, "tenant_api.tenant_today(uuid)")
            .await
            .as_deref(),
        Some("tenant tier")
    );
    assert_ne!(
        function_comment(&db.owner, "public.tenant_today(uuid)")
            .await
            .as_deref(),
        Some("tenant tier")
    );
    assert_eq!(
        history(&db.owner, "public").await,
        expected_history(API_FILES)
    );
}

#[tokio::test]
async fn views_a_migration_dropped_come_back_with_their_grants_and_analytics() {
    // How an incompatible change works: a versioned migration drops the view
    // (and whatever depends on it), the api recreates all of it.
    let db = TestDb::new().await;
    let owner = db.url("bizos_owner");
    let snapshot = |pool: PgPool| async move {
        sqlx::query_as::<
            _,
            (
                String,
                String,
                Option<String>,
                Option<String>,
                Option<String>,
            ),
        >(
            "select n.nspname || '.' || c.relname, pg_get_viewdef(c.oid), c.relacl::text,
                    c.reloptions::text, obj_description(c.oid, 'pg_class')
               from pg_class c join pg_namespace n on n.oid = c.relnamespace
              where n.nspname in ('public', 'analytics') and c.relkind = 'v'
              order by 1",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    let before = snapshot(db.owner.clone()).await;
    sqlx::query("drop view v_ar_ledger cascade")
        .execute(&db.owner)
        .await
        .unwrap();
    let dropped = snapshot(db.owner.clone()).await;
    for gone in [
        "public.v_invoice_outstanding",
        "public.v_ar_aging",
        "analytics.v_ar_aging",
    ] {
        assert!(dropped.iter().all(|v| v.0 != gone), "{gone} was dropped");
    }
    // What a migration in the run makes the runner do (here: a forgotten
    // history, since no migration is pending).
    sqlx::query(&format!("delete from {HISTORY_SCHEMA}.applied"))
        .execute(&db.owner)
        .await
        .unwrap();
    let report = bizos_sql::migrate_report(&owner, None).await.unwrap();
    assert_eq!(report.api.len(), API_FILES.len());
    assert_eq!(snapshot(db.owner.clone()).await, before);
}
