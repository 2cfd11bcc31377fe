//! How the api files are applied to the schemas of one database: a changed
//! file re-applies itself and the files after it, not the ones before;
//! schemas apply in parallel, and only the statements of the control
//! catalogue (schema `control`, once per database) wait for the lock of
//! the database.

use std::time::Duration;

use bizos_sql::{ApiFile, API_FILES, HISTORY_SCHEMA};
use bizos_tests::TestDb;
use sqlx::PgPool;

/// The api files with `extra` appended to each file named in `changes`.
fn with_appended(changes: &[(&str, &str)]) -> Vec<(String, String)> {
    API_FILES
        .iter()
        .map(|f| {
            let mut sql = f.sql.to_owned();
            for (name, extra) in changes {
                if f.name == *name {
                    sql = format!("{sql}\n{extra}\n");
                }
            }
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

fn names(report: &bizos_sql::Report) -> Vec<String> {
    report.api.iter().map(|a| a.file.clone()).collect()
}

/// The api files from `first` on, in the order they apply.
fn from(first: &str) -> Vec<String> {
    let at = bizos_sql::API_FILES
        .iter()
        .position(|f| f.name == first)
        .expect("an api file");
    bizos_sql::API_FILES[at..]
        .iter()
        .map(|f| f.name.to_owned())
        .collect()
}

async fn comment(pool: &PgPool, sig: &str) -> Option<String> {
    sqlx::query_scalar(&format!(
        "select obj_description('{sig}'::regprocedure, 'pg_proc')"
    ))
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn history(pool: &PgPool, schema: &str) -> Vec<(String, String)> {
    sqlx::query_as(&format!(
        "select file, checksum from {HISTORY_SCHEMA}.applied where schema_name = $1 order by file"
    ))
    .bind(schema)
    .fetch_all(pool)
    .await
    .unwrap()
}

fn expected_history(files: &[ApiFile<'_>]) -> Vec<(String, String)> {
    let mut all: Vec<_> = files
        .iter()
        .map(|f| (f.name.to_owned(), f.checksum()))
        .collect();
    all.sort();
    all
}

#[tokio::test]
async fn a_changed_file_reapplies_itself_and_the_files_after_it_only() {
    let db = TestDb::new().await;
    let owner = db.url("bizos_owner");
    let sig = "tenant_move_request(uuid, text, text, text, text)";
    let original = comment(&db.owner, sig).await;
    assert!(original.is_some());

    let changed = with_appended(&[(
        "tenant_moves.sql",
        "comment on function tenant_move_request(uuid, text, text, text, text) is 'changed by the test';",
    )]);
    let changed = as_files(&changed);
    let report = bizos_sql::migrate_with_api(&owner, None, &changed)
        .await
        .unwrap();
    assert!(report.migrations.is_empty());
    // The files before tenant_moves.sql stay as recorded; it and the files
    // after it run again.
    assert_eq!(names(&report), from("tenant_moves.sql"));
    assert!(names(&report).len() < bizos_sql::API_FILES.len() / 2);
    assert_eq!(
        comment(&db.owner, sig).await.as_deref(),
        Some("changed by the test")
    );
    assert_eq!(
        history(&db.owner, "public").await,
        expected_history(&changed)
    );

    // Back to the embedded files: the same two files, the comment back.
    let back = bizos_sql::migrate_report(&owner, None).await.unwrap();
    assert_eq!(names(&back), from("tenant_moves.sql"));
    assert_eq!(comment(&db.owner, sig).await, original);
    assert_eq!(
        history(&db.owner, "public").await,
        expected_history(API_FILES)
    );
    let again = bizos_sql::migrate_report(&owner, None).await.unwrap();
    assert!(again.is_empty(), "{again:?}");
}

/// Session-level advisory lock of the database's api apply, as another
/// schema's transaction would hold it.
async fn hold_database_lock(db: &TestDb) -> sqlx::pool::PoolConnection<sqlx::Postgres> {
    let mut conn = db.owner.acquire().await.unwrap();
    sqlx::query("select pg_advisory_lock(hashtext('bizos.sql_api'))")
        .execute(&mut *conn)
        .await
        .unwrap();
    conn
}

#[tokio::test]
async fn a_schema_applies_its_files_while_another_holds_the_database_lock() {
    let db = TestDb::new().await;
    let owner = db.url("bizos_owner");
    bizos_sql::migrate_report(&owner, Some("api_apply_a"))
        .await
        .unwrap();

    // The database's lock is taken (another schema applying the control
    // catalogue): a file of the schema's own still applies.
    let mut lock = hold_database_lock(&db).await;
    let own = with_appended(&[(
        "crm.sql",
        "comment on function tenant_today(uuid) is 'changed by the test';",
    )]);
    let report = tokio::time::timeout(
        Duration::from_secs(120),
        bizos_sql::migrate_with_api(&owner, Some("api_apply_a"), &as_files(&own)),
    )
    .await
    .expect("the schema's own files waited for the lock of the database")
    .unwrap();
    assert_eq!(names(&report).first().map(String::as_str), Some("crm.sql"));
    assert_eq!(
        comment(&db.owner, "api_apply_a.tenant_today(uuid)")
            .await
            .as_deref(),
        Some("changed by the test")
    );

    // A changed statement of the control catalogue waits for it.
    let control = with_appended(&[
        (
            "crm.sql",
            "comment on function tenant_today(uuid) is 'changed by the test';",
        ),
        (
            "placement.sql",
            "comment on function control.placement_check() is 'changed by the test';",
        ),
    ]);
    let task = {
        let owner = owner.clone();
        tokio::spawn(async move {
            bizos_sql::migrate_with_api(&owner, Some("api_apply_a"), &as_files(&control)).await
        })
    };
    let mut waited = false;
    for _ in 0..600 {
        waited = sqlx::query_scalar(
            "select exists (select 1 from pg_locks where locktype = 'advisory' and not granted
                             and database = (select oid from pg_database where datname = current_database()))",
        )
        .fetch_one(&db.owner)
        .await
        .unwrap();
        if waited || task.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        waited,
        "the control catalogue's statements did not wait for the lock"
    );
    assert!(!task.is_finished());
    sqlx::query("select pg_advisory_unlock(hashtext('bizos.sql_api'))")
        .execute(&mut *lock)
        .await
        .unwrap();
    let report = task.await.unwrap().unwrap();
    assert_eq!(names(&report), from("placement.sql"));
    assert_eq!(
        comment(&db.owner, "control.placement_check()")
            .await
            .as_deref(),
        Some("changed by the test")
    );
}

#[tokio::test]
async fn schemas_of_one_database_apply_every_file_at_once_without_colliding() {
    let db = TestDb::new().await;
    let owner = db.url("bizos_owner");
    let schemas: Vec<String> = (0..4).map(|i| format!("api_apply_{i}")).collect();
    for s in &schemas {
        bizos_sql::migrate_report(&owner, Some(s)).await.unwrap();
    }
    // Every file changed, the control catalogue's statements too: each
    // schema replaces all its functions, and the database's once.
    let changed = with_appended(&[
        ("platform.sql", "select 1;"),
        (
            "placement.sql",
            "comment on function control.placement_check() is 'changed by the test';",
        ),
    ]);
    let mut tasks = tokio::task::JoinSet::new();
    for s in &schemas {
        let (owner, s, changed) = (owner.clone(), s.clone(), changed.clone());
        tasks.spawn(async move {
            let report = bizos_sql::migrate_with_api(&owner, Some(&s), &as_files(&changed)).await;
            (s, report)
        });
    }
    while let Some(done) = tasks.join_next().await {
        let (s, report) = done.unwrap();
        let report = report.unwrap_or_else(|e| panic!("{s}: {}", bizos_sql::fleet::describe(&e)));
        assert_eq!(report.api.len(), API_FILES.len(), "{s}");
        assert_eq!(
            history(&db.owner, &s).await,
            expected_history(&as_files(&changed)),
            "{s}"
        );
    }
    assert_eq!(
        comment(&db.owner, "control.placement_check()")
            .await
            .as_deref(),
        Some("changed by the test")
    );
}
