//! `bizos migrate --fleet`, run as the real command against a control
//! database whose placement registry lists tenant schemas (in the control
//! database) and databases (clones of the migrated template) on the test
//! cluster: every placement migrated or reported, a failure stopping no
//! other, the run resumable, a dry run changing nothing, drift reported and
//! left alone.

mod drift;

use std::process::{Command, Output};

use crate::schema_api::migration_files;
use bizos_tests::{url_for, TestDb};
use serde_json::Value;
use uuid::Uuid;

/// The secret the test cluster's row names: the cluster's URL as the owner.
const SECRET: &str = "BIZOS_FLEET_TEST_URL";

/// A control database with a registry of placements on the test cluster.
struct Fleet {
    control: TestDb,
    /// Placement databases (dropped with them).
    databases: Vec<TestDb>,
}

impl Fleet {
    async fn new() -> Fleet {
        let control = TestDb::new().await;
        sqlx::query(
            "insert into control.clusters (cluster, region, url_secret, is_default)
             values ('local', 'id', $1, true)",
        )
        .bind(SECRET)
        .execute(&control.owner)
        .await
        .unwrap();
        Fleet {
            control,
            databases: Vec::new(),
        }
    }

    /// Registers a tenant schema in the control database (not created: the
    /// fleet creates and migrates it).
    async fn add_schema(&self, schema: &str) -> String {
        sqlx::query(
            "insert into control.tenant_placements
               (tenant_id, region, tier, cluster, database_name, schema_name)
             values ($1, 'id', 'schema', 'local', $2, $3)",
        )
        .bind(Uuid::new_v4())
        .bind(&self.control.name)
        .bind(schema)
        .execute(&self.control.owner)
        .await
        .unwrap();
        format!("local/{}/{schema}", self.control.name)
    }

    /// Registers a database of its own (a clone of the migrated template)
    /// whose api files are pending: its api history is emptied.
    async fn add_database(&mut self) -> String {
        let db = TestDb::new().await;
        sqlx::query("delete from sql_api.applied")
            .execute(&db.owner)
            .await
            .unwrap();
        sqlx::query(
            "insert into control.tenant_placements
               (tenant_id, region, tier, cluster, database_name, schema_name)
             values ($1, 'id', 'isolated', 'local', $2, null)",
        )
        .bind(Uuid::new_v4())
        .bind(&db.name)
        .execute(&self.control.owner)
        .await
        .unwrap();
        let key = format!("local/{}", db.name);
        self.databases.push(db);
        key
    }

    /// `bizos migrate --fleet <args>` with only the control database's URL
    /// and the cluster's secret in its environment.
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_bizos-under-test"))
            .args(["migrate", "--fleet", "--json"])
            .args(args)
            .env_clear()
            .env("BIZOS_DATABASE_URL", self.control.url("bizos_owner"))
            .env(SECRET, url_for("bizos_owner", "postgres"))
            .output()
            .expect("run bizos")
    }
}

fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "a JSON report on stdout ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn line<'a>(report: &'a Value, placement: &str) -> &'a Value {
    report["placements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["placement"] == placement)
        .unwrap_or_else(|| panic!("no line for {placement} in {report:#}"))
}

async fn api_files_recorded(db: &TestDb, schema: &str) -> i64 {
    sqlx::query_scalar("select count(*) from sql_api.applied where schema_name = $1")
        .bind(schema)
        .fetch_one(&db.owner)
        .await
        .unwrap()
}

async fn latest_migration_in(db: &TestDb, schema: &str) -> Option<i32> {
    sqlx::query_scalar(&format!(
        "select max(version) from {schema}.refinery_schema_history"
    ))
    .fetch_one(&db.owner)
    .await
    .ok()
    .flatten()
}

#[tokio::test]
async fn twenty_placements_one_failing_nineteen_migrated_the_failure_reported_and_resumed() {
    let mut fleet = Fleet::new().await;
    let mut schemas = Vec::new();
    for i in 0..9 {
        schemas.push(fleet.add_schema(&format!("fleet_s{i}")).await);
    }
    // A conflicting object planted where the first migration creates its
    // table; the name sorts last, so it is never the canary.
    let broken = fleet.add_schema("zz_conflict").await;
    sqlx::raw_sql("create schema zz_conflict; create table zz_conflict.tenants (x int)")
        .execute(&fleet.control.owner)
        .await
        .unwrap();
    let mut databases = Vec::new();
    for _ in 0..10 {
        databases.push(fleet.add_database().await);
    }

    let out = fleet.run(&["--concurrency", "4"]);
    assert!(
        !out.status.success(),
        "a failed placement fails the command"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = report(&out);
    assert!(
        stderr.contains("1 of 21 placements failed"),
        "{stderr}\n{first:#}"
    );
    let control = format!("control/{}", fleet.control.name);
    assert_eq!(line(&first, &control)["outcome"], "current", "{first:#}");
    for p in schemas.iter().chain(&databases) {
        assert_eq!(line(&first, p)["outcome"], "applied", "{p}: {first:#}");
    }
    for p in &schemas {
        assert_eq!(
            line(&first, p)["migrations"].as_array().unwrap().len(),
            migration_files(),
            "{p}"
        );
    }
    let failed = line(&first, &broken);
    assert_eq!(failed["outcome"], "failed");
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("V1__tenants_and_profiles") && error.contains("\"tenants\" already exists"),
        "{error}"
    );
    assert_eq!(first["summary"]["applied"], 19, "{first:#}");
    assert_eq!(first["summary"]["failed"], 1);

    // What the report says is what the placements hold.
    let latest = bizos_sql::latest_version();
    for i in 0..9 {
        let s = format!("fleet_s{i}");
        assert_eq!(latest_migration_in(&fleet.control, &s).await, Some(latest));
        assert_eq!(
            api_files_recorded(&fleet.control, &s).await,
            bizos_sql::API_FILES.len() as i64
        );
    }
    for db in &fleet.databases {
        assert_eq!(
            api_files_recorded(db, "public").await,
            bizos_sql::API_FILES.len() as i64
        );
    }
    let recorded: Vec<(String, String)> = sqlx::query_as(
        "select outcome, placement from control.fleet_run_placements
          where run_id = $1::text::uuid order by placement",
    )
    .bind(first["run_id"].as_str().unwrap())
    .fetch_all(&fleet.control.owner)
    .await
    .unwrap();
    assert_eq!(recorded.len(), 21);
    assert_eq!(
        recorded.iter().filter(|(o, _)| o == "failed").count(),
        1,
        "{recorded:?}"
    );

    // The conflict removed, --resume runs the failed placement only: a
    // finished one whose api history is emptied meanwhile is not redone.
    sqlx::raw_sql("drop table zz_conflict.tenants")
        .execute(&fleet.control.owner)
        .await
        .unwrap();
    sqlx::query("delete from sql_api.applied")
        .execute(&fleet.databases[0].owner)
        .await
        .unwrap();
    let out = fleet.run(&["--resume"]);
    let second = report(&out);
    assert!(out.status.success(), "{second:#}");
    assert_eq!(second["run_id"], first["run_id"]);
    assert_eq!(line(&second, &broken)["outcome"], "applied");
    for p in schemas.iter().chain(&databases) {
        assert_eq!(line(&second, p)["outcome"], "skipped", "{p}");
    }
    assert_eq!(api_files_recorded(&fleet.databases[0], "public").await, 0);
    assert_eq!(
        latest_migration_in(&fleet.control, "zz_conflict").await,
        Some(latest)
    );
    let state: String =
        sqlx::query_scalar("select state from control.fleet_runs where run_id = $1::text::uuid")
            .bind(first["run_id"].as_str().unwrap())
            .fetch_one(&fleet.control.owner)
            .await
            .unwrap();
    assert_eq!(state, "done");
}

#[tokio::test]
async fn a_dry_run_lists_what_would_run_and_changes_nothing() {
    let mut fleet = Fleet::new().await;
    let schema = fleet.add_schema("fleet_dry").await;
    let database = fleet.add_database().await;

    let out = fleet.run(&["--dry-run"]);
    let dry = report(&out);
    assert!(out.status.success(), "{dry:#}");
    assert_eq!(dry["run_id"], Value::Null);
    let s = line(&dry, &schema);
    assert_eq!(s["outcome"], "pending");
    assert_eq!(s["migrations"].as_array().unwrap().len(), migration_files());
    assert_eq!(s["api_files"], 1);
    let d = line(&dry, &database);
    assert_eq!(d["outcome"], "pending");
    assert_eq!(d["migrations"].as_array().unwrap().len(), 0);
    assert_eq!(d["api_files"], 1);

    let schema_exists: bool = sqlx::query_scalar(
        "select exists (select 1 from pg_namespace where nspname = 'fleet_dry')",
    )
    .fetch_one(&fleet.control.owner)
    .await
    .unwrap();
    assert!(!schema_exists, "a dry run creates no schema");
    assert_eq!(api_files_recorded(&fleet.databases[0], "public").await, 0);
    let runs: i64 = sqlx::query_scalar("select count(*) from control.fleet_runs")
        .fetch_one(&fleet.control.owner)
        .await
        .unwrap();
    assert_eq!(runs, 0, "a dry run records no run");
}

#[tokio::test]
async fn drift_is_reported_and_left_alone() {
    let mut fleet = Fleet::new().await;
    let clean = fleet.add_database().await;
    let drifted = fleet.add_database().await;
    sqlx::raw_sql(
        "alter table customers add column rogue text;
         create function rogue() returns int language sql as 'select 1';",
    )
    .execute(&fleet.databases[1].owner)
    .await
    .unwrap();

    let out = fleet.run(&[]);
    let run = report(&out);
    assert!(out.status.success(), "drift alone is no failure: {run:#}");
    assert_eq!(line(&run, &clean)["drift"], Value::Null, "{run:#}");
    let drift = &line(&run, &drifted)["drift"];
    assert_eq!(
        drift["changed"],
        serde_json::json!(["relation customers"]),
        "{drift:#}"
    );
    assert_eq!(
        drift["unexpected"],
        serde_json::json!(["function rogue()"]),
        "{drift:#}"
    );
    assert_eq!(run["summary"]["drifted"], 1);
    let text = Command::new(env!("CARGO_BIN_EXE_bizos-under-test"))
        .args(["migrate", "--fleet", "--no-drift"])
        .env_clear()
        .env("BIZOS_DATABASE_URL", fleet.control.url("bizos_owner"))
        .env(SECRET, url_for("bizos_owner", "postgres"))
        .output()
        .unwrap();
    assert!(text.status.success());
    assert!(
        !String::from_utf8_lossy(&text.stdout).contains("DRIFT"),
        "--no-drift checks nothing"
    );

    // Reported, not repaired.
    let rogue: bool = sqlx::query_scalar(
        "select exists (select 1 from information_schema.columns
                         where table_name = 'customers' and column_name = 'rogue')",
    )
    .fetch_one(&fleet.databases[1].owner)
    .await
    .unwrap();
    assert!(rogue);
}

#[tokio::test]
async fn an_added_index_leaves_the_api_alone_an_added_column_reapplies_it() {
    // What makes a fleet of schemas fast: a migration that changes nothing
    // the api files are made of does not re-apply them in every schema.
    let db = TestDb::new().await;
    let owner = db.url("bizos_owner");
    let v = bizos_sql::latest_version() + 100;
    let index: &'static [(i32, &str, &str)] = Box::leak(Box::new([(
        v + 1,
        "test_index",
        "create index customers_test_idx on customers (tenant_id, created_at)",
    )]));
    let plan = bizos_sql::fleet::Plan {
        api_files: bizos_sql::API_FILES,
        extra_migrations: index,
    };
    let done = bizos_sql::fleet::migrate_placement(&owner, None, &plan, None)
        .await
        .unwrap();
    assert_eq!(done.report.migrations.len(), 1);
    assert!(done.report.api.is_empty(), "{:?}", done.report.api);

    let column: &'static [(i32, &str, &str)] = Box::leak(Box::new([
        index[0],
        (
            v + 2,
            "test_column",
            "alter table customers add column test_note text",
        ),
    ]));
    let plan = bizos_sql::fleet::Plan {
        api_files: bizos_sql::API_FILES,
        extra_migrations: column,
    };
    let done = bizos_sql::fleet::migrate_placement(&owner, None, &plan, None)
        .await
        .unwrap();
    assert_eq!(done.report.migrations.len(), 1);
    assert_eq!(done.report.api.len(), bizos_sql::API_FILES.len());
    // The analytics views follow the new column.
    let shown: bool = sqlx::query_scalar(
        "select exists (select 1 from information_schema.columns
                         where table_schema = 'analytics' and column_name = 'test_note')",
    )
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert!(shown, "the analytics views were rebuilt");
}
