//! `bench/fleet/run`, the measured part: fleet migrations of tenant schemas
//! and of databases, on the benchmark's own cluster (`BIZOS_BENCH_FLEET_ADMIN`,
//! a superuser; the script has bootstrapped the databases it names).
//!
//! 1. One tenant schema made by the full migration set: its time.
//! 2. BIZOS_BENCH_FLEET_SCHEMAS (1000) tenant schemas in one database: the
//!    migrated schema is copied (pg_dump of it and its analytics schema,
//!    the name replaced, replayed by 4 connections at once) and its api
//!    history copied, so every copy is exactly a migrated schema. Then,
//!    measured: `bizos migrate --fleet` (the library's run, concurrency
//!    BIZOS_BENCH_FLEET_CONCURRENCY, 8) of a test-only additive migration
//!    (an index: the api files are not re-applied) reading every
//!    catalogue (the first check after the copies), of another without
//!    the drift check, of a third with the default check (the drift
//!    watch), and a run with nothing pending; then the api
//!    runs: a file's history made stale in BIZOS_BENCH_FLEET_API_SCHEMAS
//!    (100) schemas, as a release changing it leaves it (platform.sql: all
//!    28 files run again; tenant_moves.sql: 2), each applied by a run.
//!    BIZOS_BENCH_FLEET_ONLY=schemas|databases runs one of 2 and 3.
//! 3. BIZOS_BENCH_FLEET_DATABASES (100) databases cloned from a migrated
//!    one (`create database .. template ..`) and verified by a first run;
//!    measured: a fleet run of one more added index at concurrency 1, 4
//!    and 8, then of an added column (every database re-applies its api
//!    files) at 8, then of an added index at 1, 4 and 8 reading every
//!    catalogue.
//!
//! Every fleet run also migrates and checks its control database, and
//! builds the expected catalogue once (about 1.5 s): both are in the time.
//! Results (markdown) on stdout, progress on stderr.

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use bizos_bff::fleet::{execute, Options};
use bizos_sql::fleet::Plan;
use secrecy::SecretString;
use tokio::sync::Semaphore;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn say(s: &str) {
    eprintln!("==> {s}");
}

async fn client(dsn: &str) -> tokio_postgres::Client {
    let (c, conn) = tokio_postgres::connect(dsn, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect {dsn}: {e}"));
    tokio::spawn(conn);
    c
}

/// The test-only migrations, after the embedded ones: `extras[from..to]`.
/// A fleet's runs take growing slices, so each run adds one.
fn extras(from: usize, to: usize) -> &'static [(i32, &'static str, &'static str)] {
    let base = bizos_sql::latest_version() + 100;
    let index = |i: i32, table: &str| -> (i32, &'static str, &'static str) {
        (
            base + i,
            Box::leak(format!("bench_index_{i}").into_boxed_str()),
            Box::leak(
                format!("create index if not exists {table}_bench_{i}_idx on {table} (tenant_id, created_at)")
                    .into_boxed_str(),
            ),
        )
    };
    let all = [
        index(1, "customers"),
        index(2, "tickets"),
        index(3, "leads"),
        index(4, "invoices"),
        index(5, "sales_activities"),
        (
            base + 6,
            "bench_column",
            "alter table customers add column if not exists bench_note text",
        ),
        index(7, "tickets"),
        index(8, "leads"),
        index(9, "invoices"),
    ];
    Box::leak(all[from..to].to_vec().into_boxed_slice())
}

/// The machine's busy time so far (all cores, in clock ticks): user, nice,
/// system, irq and softirq of /proc/stat's first line.
fn busy_jiffies() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    [0, 1, 2, 5, 6].iter().filter_map(|&i| fields.get(i)).sum()
}

/// Cores kept busy on average since `from` (busy ticks), over `secs`:
/// what the whole machine did, server and client (USER_HZ is 100 here).
fn cores_busy(from: u64, secs: f64) -> f64 {
    (busy_jiffies() - from) as f64 / 100.0 / secs
}

/// How a run checks drift.
#[derive(Clone, Copy, PartialEq)]
enum Drift {
    Off,
    /// The default: catalogues the drift watch knows unchanged are not read.
    Watched,
    /// `--drift-read-all`.
    ReadAll,
}

/// A measured run: its wall time and the cores it kept busy.
#[derive(Clone, Copy)]
struct Run {
    secs: f64,
    cores: f64,
}

async fn fleet(control: &str, concurrency: usize, drift: Drift, (from, to): (usize, usize)) -> Run {
    let options = Options {
        concurrency,
        dry_run: false,
        resume: false,
        drift: drift != Drift::Off,
        drift_read_all: drift == Drift::ReadAll,
        secrets_file: None,
    };
    let plan = Plan {
        api_files: bizos_sql::API_FILES,
        extra_migrations: extras(from, to),
    };
    let t = Instant::now();
    let cpu = busy_jiffies();
    let report = execute(&SecretString::from(control.to_owned()), &options, plan)
        .await
        .expect("fleet run");
    let secs = t.elapsed().as_secs_f64();
    let cores = cores_busy(cpu, secs);
    let s = &report.summary;
    let api: usize = report.placements.iter().map(|p| p.api_files).sum();
    say(&format!(
        "  {} placements: {} applied, {} current, {} failed, {} drifted (catalogues read {}, unchanged {}), {api} api files applied, in {secs:.1} s, {cores:.2} cores busy on average",
        report.placements.len(),
        s.applied,
        s.current,
        s.failed,
        s.drifted,
        s.drift_read,
        s.drift_unchanged
    ));
    if let Some(bad) = report
        .placements
        .iter()
        .find(|p| p.error.is_some() || p.drift.is_some())
    {
        say(&format!(
            "  first failure or drift: {} {:?} {:?}",
            bad.placement, bad.error, bad.drift
        ));
    }
    assert_eq!(s.failed, 0, "a placement failed");
    Run { secs, cores }
}

#[tokio::main]
async fn main() {
    let admin = std::env::var("BIZOS_BENCH_FLEET_ADMIN").expect("BIZOS_BENCH_FLEET_ADMIN");
    let schemas_db =
        std::env::var("BIZOS_BENCH_FLEET_SCHEMAS_DB").unwrap_or("fleet_schemas".into());
    let dbs_db = std::env::var("BIZOS_BENCH_FLEET_DATABASES_DB").unwrap_or("fleet_dbs".into());
    let template_db = std::env::var("BIZOS_BENCH_FLEET_TEMPLATE_DB").unwrap_or("fleet_tpl".into());
    let n_schemas: usize = env_or("BIZOS_BENCH_FLEET_SCHEMAS", 1000);
    let owner = |db: &str| bizos_sql::derive_dsn(&admin, Some("bizos_owner"), db).unwrap();
    // The clusters' URL secret: the bench cluster as the owner.
    std::env::set_var("BIZOS_BENCH_FLEET_URL", owner("postgres"));

    let control = owner(&schemas_db);
    let last = format!("t_{:04}", n_schemas - 1);
    let kept: bool = client(&control)
        .await
        .query_one(
            "select to_regclass($1) is not null",
            &[&format!("{last}.refinery_schema_history")],
        )
        .await
        .unwrap()
        .get(0);
    let (one_schema, copy_secs) = if kept {
        say("reusing the schemas of an earlier run (BIZOS_BENCH_FLEET_KEEP=1)");
        reset(&admin, &control, &dbs_db, &template_db).await;
        (None, None)
    } else {
        let (a, b) = make_schemas(&admin, &control, &schemas_db, n_schemas).await;
        (Some(a), Some(b))
    };
    let c = client(&control).await;
    c.batch_execute(&format!(
        "insert into control.clusters (cluster, region, url_secret, is_default)
         values ('bench', 'local', 'BIZOS_BENCH_FLEET_URL', true) on conflict do nothing;
         delete from control.tenant_placements where cluster = 'bench';
         insert into control.tenant_placements (tenant_id, region, tier, cluster, database_name, schema_name)
         select gen_random_uuid(), 'local', 'schema', 'bench', '{schemas_db}', format('t_%s', lpad(i::text, 4, '0'))
           from generate_series(0, {}) i;",
        n_schemas - 1
    ))
    .await
    .unwrap();
    let load = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let concurrency: usize = env_or("BIZOS_BENCH_FLEET_CONCURRENCY", 8);
    let n_dbs: usize = env_or("BIZOS_BENCH_FLEET_DATABASES", 100);

    let only = std::env::var("BIZOS_BENCH_FLEET_ONLY").unwrap_or_default();
    let load_before = load();
    if only != "databases" {
        say(&format!(
            "fleet run, {n_schemas} schemas, an added index, concurrency {concurrency}"
        ));
        let read_all_secs = fleet(&control, concurrency, Drift::ReadAll, (0, 1))
            .await
            .secs;
        say("another added index, without the drift check");
        let no_drift_secs = fleet(&control, concurrency, Drift::Off, (0, 2)).await.secs;
        say("a third added index, drift checked with the watch");
        let watched_secs = fleet(&control, concurrency, Drift::Watched, (0, 3))
            .await
            .secs;
        say(&format!("fleet run, {n_schemas} schemas, nothing to do"));
        let noop_secs = fleet(&control, concurrency, Drift::Watched, (0, 3))
            .await
            .secs;
        let api = api_runs(&c, &control, concurrency).await;
        schema_results(
            (one_schema, copy_secs),
            (read_all_secs, no_drift_secs, watched_secs, noop_secs),
            &api,
            (n_schemas, concurrency),
        );
        println!("Load average before: {}", load_before.trim());
        println!("Load average after: {}", load().trim());
        println!();
    }
    if only == "schemas" {
        return;
    }
    databases(&admin, &owner(&dbs_db), &template_db, n_dbs, load()).await;
}

/// Takes the benchmark's own migrations out of a kept cluster: their
/// history rows and indexes in every schema of the schemas' database, and
/// the databases' control database made again from the template.
async fn reset(admin: &str, control: &str, dbs_db: &str, template_db: &str) {
    let base = bizos_sql::latest_version();
    let c = client(control).await;
    let schemas: Vec<String> = c
        .query(
            "select n.nspname::text from pg_namespace n
              where n.nspname !~ '^pg_' and n.nspname <> 'information_schema'
                and to_regclass(quote_ident(n.nspname) || '.refinery_schema_history') is not null",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let permits = Arc::new(Semaphore::new(4));
    let mut tasks = tokio::task::JoinSet::new();
    for s in schemas {
        let (permits, control) = (permits.clone(), control.to_owned());
        tasks.spawn(async move {
            let _p = permits.acquire_owned().await;
            let drops: String = (1..=5)
                .zip([
                    "customers",
                    "tickets",
                    "leads",
                    "invoices",
                    "sales_activities",
                ])
                .map(|(i, t)| format!("drop index if exists {s}.{t}_bench_{i}_idx;"))
                .collect();
            client(&control)
                .await
                .batch_execute(&format!(
                    "delete from {s}.refinery_schema_history where version > {base}; {drops}"
                ))
                .await
                .unwrap_or_else(|e| panic!("reset {s}: {e:?}"));
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let a = client(admin).await;
    a.batch_execute(&format!("drop database if exists {dbs_db} with (force)"))
        .await
        .unwrap();
    clone_database(&a, dbs_db, template_db).await;
}

/// Creates database `name` from `template` with the template's settings
/// (a clone has its objects but not the search path bootstrap set on it).
async fn clone_database(a: &tokio_postgres::Client, name: &str, template: &str) {
    let settings: Vec<String> = a
        .query(
            "select s from pg_db_role_setting d, unnest(d.setconfig) s
              where d.setrole = 0 and d.setdatabase = (select oid from pg_database where datname = $1)",
            &[&template],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    a.batch_execute(&format!(
        "create database {name} template {template} owner bizos_owner"
    ))
    .await
    .unwrap();
    for s in settings {
        a.batch_execute(&format!("alter database {name} set {s}"))
            .await
            .unwrap();
    }
}

/// Steps 1 and 2: one schema by the full migration set, and its copies.
async fn make_schemas(
    admin: &str,
    control: &str,
    schemas_db: &str,
    n_schemas: usize,
) -> (f64, f64) {
    // 1. One schema by the full migration set.
    say("one tenant schema by the full migration set");
    let t = Instant::now();
    bizos_sql::migrate_report(control, Some("t_0000"))
        .await
        .expect("migrate t_0000");
    let one_schema = t.elapsed().as_secs_f64();

    // 2. Copies of it.
    say(&format!("copying it to {} schemas", n_schemas - 1));
    let t = Instant::now();
    let out = Command::new("/usr/lib/postgresql/15/bin/pg_dump")
        .args([
            "--inserts",
            "-n",
            "t_0000",
            "-n",
            "t_0000_analytics",
            "-d",
            control,
        ])
        .output()
        .expect("pg_dump");
    assert!(
        out.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Without psql's meta-commands (pg_dump writes \restrict lines).
    let dump: String = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('\\'))
        .map(|l| format!("{l}\n"))
        .collect();
    let dump = Arc::new(dump);
    let permits = Arc::new(Semaphore::new(4));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 1..n_schemas {
        // As the superuser, as pg_restore would be: the dump sets the
        // owner of everything back to bizos_owner.
        let superuser = bizos_sql::derive_dsn(admin, None, schemas_db).unwrap();
        let (dump, permits, control) = (dump.clone(), permits.clone(), superuser);
        tasks.spawn(async move {
            let _p = permits.acquire_owned().await;
            let name = format!("t_{i:04}");
            let c = client(&control).await;
            // A copy an interrupted run made is kept.
            let made: bool = c
                .query_one(
                    "select to_regclass($1) is not null",
                    &[&format!("{name}.refinery_schema_history")],
                )
                .await
                .unwrap()
                .get(0);
            if !made {
                c.batch_execute(&format!(
                    "begin;\n{}\ncommit;",
                    dump.replace("t_0000", &name)
                ))
                .await
                .unwrap_or_else(|e| panic!("copy {name}: {e:?}"));
            }
            c.execute(
                "insert into sql_api.applied (schema_name, file, checksum)
                 select $1, file, checksum from sql_api.applied where schema_name = 't_0000'
                 on conflict do nothing",
                &[&name],
            )
            .await
            .unwrap();
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    (one_schema, t.elapsed().as_secs_f64())
}

/// Step 3, and the results.
async fn databases(
    admin: &str,
    dbs_control: &str,
    template_db: &str,
    n_dbs: usize,
    load_before: String,
) {
    let load = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    // A kept cluster's template may be of an older release: brought up to
    // date first, so that the first measured run does no more than the others.
    bizos_sql::migrate_report(
        &bizos_sql::derive_dsn(admin, Some("bizos_owner"), template_db).unwrap(),
        None,
    )
    .await
    .expect("migrate the template");
    say(&format!("{n_dbs} databases from template {template_db}"));
    let a = client(admin).await;
    let t = Instant::now();
    for i in 0..n_dbs {
        let name = format!("fleet_db_{i:03}");
        a.batch_execute(&format!("drop database if exists {name}"))
            .await
            .unwrap();
        clone_database(&a, &name, template_db).await;
    }
    let clone_dbs = t.elapsed().as_secs_f64();
    client(dbs_control)
        .await
        .batch_execute(&format!(
            "insert into control.clusters (cluster, region, url_secret, is_default)
             values ('bench', 'local', 'BIZOS_BENCH_FLEET_URL', true);
             insert into control.tenant_placements (tenant_id, region, tier, cluster, database_name)
             select gen_random_uuid(), 'local', 'isolated', 'bench', format('fleet_db_%s', lpad(i::text, 3, '0'))
               from generate_series(0, {}) i;",
            n_dbs - 1
        ))
        .await
        .unwrap();
    // Every database verified once, as a fleet run leaves them.
    say(&format!(
        "fleet run, {n_dbs} databases, nothing pending (verifies them)"
    ));
    fleet(dbs_control, 8, Drift::Watched, (2, 2)).await;
    let mut by_concurrency = Vec::new();
    for (k, c) in [1usize, 4, 8].into_iter().enumerate() {
        say(&format!(
            "fleet run, {n_dbs} databases, an added index, concurrency {c}"
        ));
        by_concurrency.push((c, fleet(dbs_control, c, Drift::Watched, (2, 3 + k)).await));
    }
    say(&format!(
        "fleet run, {n_dbs} databases, an added column, concurrency 8"
    ));
    let column_secs = fleet(dbs_control, 8, Drift::Watched, (2, 6)).await.secs;
    let mut read_all = Vec::new();
    for (k, c) in [1usize, 4, 8].into_iter().enumerate() {
        say(&format!(
            "fleet run, {n_dbs} databases, an added index, every catalogue read, concurrency {c}"
        ));
        read_all.push((c, fleet(dbs_control, c, Drift::ReadAll, (2, 7 + k)).await));
    }
    let load_after = load();
    for i in 0..n_dbs {
        let _ = a
            .batch_execute(&format!("drop database if exists fleet_db_{i:03}"))
            .await;
    }

    println!("| what | time |");
    println!("|---|---|");
    println!(
        "| {n_dbs} databases cloned from a template (setup, not measured) | {clone_dbs:.0} s |"
    );
    for (how, runs) in [
        ("drift checked (the watch)", &by_concurrency),
        ("every catalogue read (`--drift-read-all`)", &read_all),
    ] {
        let base = runs[0].1.secs;
        for (c, run) in runs {
            println!(
                "| {n_dbs} databases, an added index, {how}, concurrency {c} | {:.1} s ({:.2}x of concurrency 1; {:.2} of {} cores busy) |",
                run.secs,
                base / run.secs,
                run.cores,
                std::thread::available_parallelism().map_or(0, usize::from)
            );
        }
    }
    println!("| {n_dbs} databases, an added column (api re-applied in each), concurrency 8 | {column_secs:.1} s |");
    println!();
    println!(
        "Load average before the database runs: {}",
        load_before.trim()
    );
    println!("Load average after: {}", load_after.trim());
}

/// The api runs: in the first BIZOS_BENCH_FLEET_API_SCHEMAS (100) schemas
/// the history of one file is made stale, as a release that changed it
/// would leave it, and a fleet run (no drift check, no migration) applies
/// it: platform.sql, the first file (all 28 files run again), then
/// tenant_moves.sql, the last but one (2 files). The other schemas are
/// current. Returns (file, schemas, api files applied, seconds).
async fn api_runs(
    c: &tokio_postgres::Client,
    control: &str,
    concurrency: usize,
) -> Vec<(&'static str, usize, usize, f64)> {
    let n: usize = env_or("BIZOS_BENCH_FLEET_API_SCHEMAS", 100);
    let mut out = Vec::new();
    for file in ["platform.sql", "tenant_moves.sql"] {
        c.execute(
            "update sql_api.applied set checksum = 'stale'
              where file = $1
                and schema_name in (select format('t_%s', lpad(i::text, 4, '0'))
                                      from generate_series(0, $2::int - 1) i)",
            &[&file, &i32::try_from(n).unwrap()],
        )
        .await
        .unwrap();
        say(&format!(
            "fleet run, {file} changed in {n} schemas, no drift check, concurrency {concurrency}"
        ));
        let (secs, api) = fleet_api(control, concurrency).await;
        out.push((file, n, api, secs));
    }
    out
}

/// A fleet run without the drift check and without a new migration; its
/// time and the api files it applied.
async fn fleet_api(control: &str, concurrency: usize) -> (f64, usize) {
    let options = Options {
        concurrency,
        dry_run: false,
        resume: false,
        drift: false,
        drift_read_all: false,
        secrets_file: None,
    };
    let plan = Plan {
        api_files: bizos_sql::API_FILES,
        extra_migrations: extras(0, 3),
    };
    let t = Instant::now();
    let report = execute(&SecretString::from(control.to_owned()), &options, plan)
        .await
        .expect("fleet run");
    let secs = t.elapsed().as_secs_f64();
    let api: usize = report.placements.iter().map(|p| p.api_files).sum();
    let per: Vec<u64> = report
        .placements
        .iter()
        .filter(|p| p.api_files > 0)
        .map(|p| p.elapsed_ms)
        .collect();
    say(&format!(
        "  {} placements, {} failed, {api} api files applied, in {secs:.1} s; per placement applying: mean {} ms",
        report.placements.len(),
        report.summary.failed,
        per.iter().sum::<u64>() / u64::try_from(per.len().max(1)).unwrap()
    ));
    assert_eq!(report.summary.failed, 0, "a placement failed");
    (secs, api)
}

fn schema_results(
    (one_schema, copy_secs): (Option<f64>, Option<f64>),
    (read_all_secs, no_drift_secs, watched_secs, noop_secs): (f64, f64, f64, f64),
    api: &[(&'static str, usize, usize, f64)],
    (n_schemas, concurrency): (usize, usize),
) {
    let secs = |s: Option<f64>| {
        s.map_or("(kept from an earlier run)".to_owned(), |s| {
            format!("{s:.2} s")
        })
    };
    println!("| what | time |");
    println!("|---|---|");
    println!(
        "| one tenant schema by the full migration set | {} |",
        secs(one_schema)
    );
    println!(
        "| {} copies of it (pg_dump, replayed by 4 connections; setup, not measured) | {} |",
        n_schemas - 1,
        secs(copy_secs)
    );
    println!("| {n_schemas} schemas, an added index (api not re-applied), every catalogue read (`--drift-read-all`; the first check after the copies), concurrency {concurrency} | {read_all_secs:.1} s |");
    println!("| {n_schemas} schemas, another added index, no drift check, concurrency {concurrency} | {no_drift_secs:.1} s |");
    println!("| **{n_schemas} schemas, a third added index, drift checked (the default: the watch)**, concurrency {concurrency} | **{watched_secs:.1} s** |");
    println!("| {n_schemas} schemas, nothing pending, drift checked (the watch), concurrency {concurrency} | {noop_secs:.1} s |");
    for (file, n, files, secs) in api {
        println!(
            "| {file} changed in {n} of the {n_schemas} schemas ({files} api files applied), no drift check, concurrency {concurrency} | {secs:.1} s |"
        );
    }
}
