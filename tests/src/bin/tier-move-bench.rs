//! `bench/tier_moves/run`, the measured part: a tenant with
//! BIZOS_BENCH_TIER_ROWS (1,000,000) rows across its tables moves from the
//! shared tier to a database of its own while four clients write leads
//! through HTTP (a real BFF in this process routing by the catalogue),
//! BIZOS_BENCH_TIER_MOVES (10) times; against `pg_dump -Fc` + `pg_restore`
//! of the same rows in the same run.
//!
//! Per move: the write-freeze as the clients saw it (the longest time one
//! write took from its first attempt to its 201, refusals and retries
//! included), the mover's own freeze (`freeze_ms`: its lock held), the
//! total, and where the time went (copy, catch-up, freeze, verification).
//! Between moves the tenant is put back in the shared tier without a move
//! (the catalogue row reset, the move's triggers and fence dropped, the
//! database of its own dropped): its rows there are the ones the next
//! move copies.
//!
//! The baseline: the database of the tenant's own after the first move
//! holds only the tenant's rows; `pg_dump -Fc --data-only` of exactly the
//! tables the mover copies, then `pg_restore --data-only
//! --disable-triggers` of it into a fresh migrated database (the same
//! kind of target the mover copies into), one job each.
//!
//! Input: BIZOS_BENCH_TIER_ADMIN (a superuser DSN of the bench's cluster,
//! whose database `tier_control` is bootstrapped and migrated, and
//! `tier_tpl` a migrated database to clone targets from). Results
//! (markdown) on stdout, progress on stderr.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bizos_bff::tenant_moves::{self, catalog, Endpoint, MoveSettings, Outcome};
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use uuid::Uuid;

const CONTROL: &str = "tier_control";
const TEMPLATE: &str = "tier_tpl";
const SECRET: &str = "BIZOS_BENCH_TIER_URL";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn say(s: &str) {
    eprintln!("==> {s}");
}

fn dsn(admin: &str, user: Option<&str>, db: &str) -> String {
    bizos_sql::derive_dsn(admin, user, db).expect("a valid DSN")
}

async fn pool(url: &str, max: u32) -> PgPool {
    PgPoolOptions::new()
        .max_connections(max)
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"))
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// Per-write latencies of one client (first attempt to 201).
struct Client {
    waits: Vec<Duration>,
    refused: u64,
}

fn clients(
    url: String,
    token: String,
    n: usize,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Client>> {
    (0..n)
        .map(|w| {
            let url = url.clone();
            let token = token.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut out = Client {
                    waits: vec![],
                    refused: 0,
                };
                let mut i = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    i += 1;
                    let first = Instant::now();
                    loop {
                        let res = http
                            .post(&url)
                            .bearer_auth(&token)
                            .json(&json!({"channel": "website",
                                          "company_name": format!("PT Bench {w}-{i}-{}", Uuid::new_v4().simple())}))
                            .send()
                            .await
                            .expect("the BFF answers");
                        match res.status().as_u16() {
                            201 => break,
                            503 => {
                                out.refused += 1;
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                            s => panic!("client {w}: {s} {}", res.text().await.unwrap_or_default()),
                        }
                    }
                    out.waits.push(first.elapsed());
                }
                out
            })
        })
        .collect()
}

fn percentile(sorted: &[u128], p: f64) -> u128 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn clone_db(admin: &PgPool, name: &str) {
    sqlx::query(&format!("drop database if exists {name} with (force)"))
        .execute(admin)
        .await
        .unwrap();
    sqlx::query(&format!(
        "create database {name} template {TEMPLATE} owner bizos_owner"
    ))
    .execute(admin)
    .await
    .unwrap();
}

fn run(cmd: &mut Command) -> Duration {
    let started = Instant::now();
    let out = cmd.output().expect("run a command");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    started.elapsed()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> anyhow::Result<()> {
    let admin_url = std::env::var("BIZOS_BENCH_TIER_ADMIN")?;
    let rows: i64 = env_or("BIZOS_BENCH_TIER_ROWS", 1_000_000);
    let moves: usize = env_or("BIZOS_BENCH_TIER_MOVES", 10);
    let admin = pool(&dsn(&admin_url, None, "postgres"), 2).await;
    let owner = pool(&dsn(&admin_url, Some("bizos_owner"), CONTROL), 4).await;
    let worker = pool(&dsn(&admin_url, Some("bizos_worker"), CONTROL), 4).await;

    // The tenants, their placements, the cluster (the control database's own).
    let tenant: Uuid = sqlx::query_scalar("select tenant_create('mover', 'Mover')")
        .fetch_one(&owner)
        .await?;
    let other: Uuid = sqlx::query_scalar("select tenant_create('other', 'Other')")
        .fetch_one(&owner)
        .await?;
    sqlx::query(
        "insert into control.clusters (cluster, region, url_secret, is_default, home)
         values ('bench', 'id', $1, true, true)",
    )
    .bind(SECRET)
    .execute(&owner)
    .await?;
    for t in [tenant, other] {
        sqlx::query(
            "insert into control.tenant_placements (tenant_id, region, tier, cluster, database_name)
             values ($1, 'id', 'shared', 'bench', $2)",
        )
        .bind(t)
        .bind(CONTROL)
        .execute(&owner)
        .await?;
    }
    let (mover_user, other_user) = (Uuid::new_v4(), Uuid::new_v4());
    for (t, u) in [(tenant, mover_user), (other, other_user)] {
        sqlx::query(
            "insert into profiles (tenant_id, user_id, email, full_name, app_role)
             values ($1, $2, $2::text || '@bench.test', 'Bench', 'super_admin')",
        )
        .bind(t)
        .bind(u)
        .execute(&owner)
        .await?;
    }

    // The rows: customers with an invoice each, plus their audit entries
    // and business numbers (about 4.3 rows a customer across the tables),
    // by bulk SQL in batches.
    say(&format!("loading about {rows} rows of the tenant"));
    let started = Instant::now();
    let customers = rows * 10 / 43;
    let batch = 20_000i64;
    let mut done = 0i64;
    while done < customers {
        let n = batch.min(customers - done);
        sqlx::query(
            "with c as (
               insert into customers (tenant_id, company_name, email, city)
               select $1, 'PT Seed ' || ($3 + g), 'seed' || ($3 + g) || '@example.test', 'Jakarta'
                 from generate_series(1, $2) g
               returning tenant_id, customer_id)
             insert into invoices (tenant_id, customer_id, issue_date, due_date, subtotal, tax)
             select tenant_id, customer_id, current_date, current_date + 30, 1000, 110 from c",
        )
        .bind(tenant)
        .bind(n)
        .bind(done)
        .execute(&owner)
        .await?;
        done += n;
    }
    sqlx::query("vacuum analyze").execute(&admin).await.ok();
    let mut control_conn = tenant_moves::connect(&dsn(&admin_url, None, CONTROL)).await?;
    let tables = catalog::tables(&mut control_conn, "public", "public", true).await?;
    let mut loaded = 0i64;
    for t in &tables {
        let n: i64 = sqlx::query_scalar(&format!(
            "select count(*) from {} x where {}",
            t.source_ident(),
            t.tenant_filter("x", tenant)
        ))
        .fetch_one(&mut control_conn)
        .await?;
        loaded += n;
    }
    say(&format!(
        "loaded {loaded} rows in {} tables in {:.0} s",
        tables.len(),
        started.elapsed().as_secs_f64()
    ));

    // The BFF: routes by the catalogue; the database of the tenant's own
    // through the secret (as bizos_app).
    let dir = tempfile::tempdir()?;
    let secrets = dir.path().join("secrets");
    std::fs::write(
        &secrets,
        format!(
            "{SECRET}={}\n",
            dsn(&admin_url, Some("bizos_app"), "postgres")
        ),
    )?;
    let secrets_path = secrets.display().to_string();
    let app = bizos_tests::spawn_app_at(
        dsn(&admin_url, Some("bizos_app"), CONTROL),
        None,
        &[
            ("BIZOS_SECRETS_FILE", secrets_path.as_str()),
            ("BIZOS_DB_MAX_CONNECTIONS", "8"),
        ],
    )
    .await;
    let token = |t: Uuid, u: Uuid| {
        bizos_bff::auth::issue_token(
            bizos_tests::TEST_JWT_SECRET.as_bytes(),
            t,
            u,
            Some("super_admin"),
            Duration::from_secs(7200),
        )
        .unwrap()
    };
    let leads = app.url("/api/leads");

    let mut results: Vec<Value> = Vec::new();
    let mut baseline: Option<(Duration, Duration, u64, i64)> = None;
    for i in 1..=moves {
        let target = format!("tier_own_{i}");
        clone_db(&admin, &target).await;
        let stop = Arc::new(AtomicBool::new(false));
        let writers = clients(leads.clone(), token(tenant, mover_user), 4, stop.clone());
        let others = clients(leads.clone(), token(other, other_user), 1, stop.clone());
        tokio::time::sleep(Duration::from_millis(500)).await;
        let move_id: Uuid =
            sqlx::query_scalar("select tenant_move_request($1, 'isolated', 'bench', $2, null)")
                .bind(tenant)
                .bind(&target)
                .fetch_one(&owner)
                .await?;
        let started = Instant::now();
        let outcome = tenant_moves::run(
            &worker,
            move_id,
            &Endpoint {
                url: dsn(&admin_url, None, CONTROL),
                schema: None,
            },
            &Endpoint {
                url: dsn(&admin_url, None, &target),
                schema: None,
            },
            &MoveSettings::default(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("the mover: {e:?}"))?;
        let total = started.elapsed();
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.store(true, Ordering::SeqCst);
        let mut waits: Vec<u128> = vec![];
        let mut refused = 0;
        for w in writers {
            let c = w.await?;
            refused += c.refused;
            waits.extend(c.waits.iter().map(|d| d.as_millis()));
        }
        let mut other_refused = 0;
        for w in others {
            other_refused += w.await?.refused;
        }
        waits.sort_unstable();
        let row: Value = sqlx::query_scalar(
            "select jsonb_build_object('state', state, 'error', error, 'progress', progress,
                    'catch_up_ms', (extract(epoch from frozen_at - created_at) * 1000)::bigint,
                    'switch_ms', (extract(epoch from switched_at - frozen_at) * 1000)::bigint,
                    'verify_ms', (extract(epoch from finished_at - switched_at) * 1000)::bigint)
               from control.tenant_moves where move_id = $1",
        )
        .bind(move_id)
        .fetch_one(&owner)
        .await?;
        if outcome != Outcome::Done {
            anyhow::bail!("move {i} ended {outcome:?}: {row}");
        }
        let p = &row["progress"];
        let r = json!({
            "move": i,
            "rows": p["copied_rows"],
            "copy_ms": p["copy_ms"],
            "until_frozen_ms": row["catch_up_ms"],
            "frozen_to_switched_ms": row["switch_ms"],
            "verify_ms": row["verify_ms"],
            "verify_checksum_ms": p["verify"]["checksum_ms"],
            "verify_audit_ms": p["verify"]["audit_ms"],
            "mover_freeze_ms": p["freeze_ms"],
            "freeze_phases": p["freeze_phases"],
            "changes_applied": p["changes_applied"],
            "write_freeze_ms": waits.last().copied().unwrap_or(0),
            "write_p99_ms": percentile(&waits, 99.0),
            "writes": waits.len(),
            "refusals": refused,
            "other_tenant_refusals": other_refused,
            "total_ms": ms(total),
        });
        say(&r.to_string());
        results.push(r);

        if baseline.is_none() {
            // The same rows with pg_dump -Fc and pg_restore: the database
            // of its own holds only the tenant's rows.
            let dump = dir.path().join("tenant.dump");
            let mut conn = tenant_moves::connect(&dsn(&admin_url, None, &target)).await?;
            let moved_tables = catalog::tables(&mut conn, "public", "public", true).await?;
            let mut cmd = Command::new("/usr/lib/postgresql/15/bin/pg_dump");
            cmd.args(["-Fc", "--data-only", "-f"])
                .arg(&dump)
                .arg("-d")
                .arg(dsn(&admin_url, None, &target));
            for t in &moved_tables {
                cmd.arg("-t").arg(format!("{}.{}", t.schema, t.name));
            }
            let dumped = run(&mut cmd);
            let restore_db = "tier_restore";
            clone_db(&admin, restore_db).await;
            // The fresh database already holds the rows its migrations seed
            // (analytics_grants' default grants, tenant_id null), which the
            // dump of the moved tables carries too: out first, untimed, so
            // the restore brings them back instead of failing on them.
            let mut seeded = tenant_moves::connect(&dsn(&admin_url, None, restore_db)).await?;
            sqlx::query("set session_replication_role = replica")
                .execute(&mut seeded)
                .await?;
            for t in &moved_tables {
                sqlx::query(&format!(
                    "delete from {} x where ({}) is not true",
                    t.target_ident(),
                    t.tenant_filter("x", tenant)
                ))
                .execute(&mut seeded)
                .await?;
            }
            drop(seeded);
            let restored = run(Command::new("/usr/lib/postgresql/15/bin/pg_restore")
                .args(["--data-only", "--disable-triggers", "-d"])
                .arg(dsn(&admin_url, None, restore_db))
                .arg(&dump));
            let size = std::fs::metadata(&dump)?.len();
            // What the baseline carried: the rows restored.
            let mut rc = tenant_moves::connect(&dsn(&admin_url, None, restore_db)).await?;
            let mut restored_rows = 0i64;
            for t in &moved_tables {
                let n: i64 = sqlx::query_scalar(&format!(
                    "select count(*) from {} x where {}",
                    t.target_ident(),
                    t.tenant_filter("x", tenant)
                ))
                .fetch_one(&mut rc)
                .await?;
                restored_rows += n;
            }
            say(&format!("rows restored by pg_restore: {restored_rows}"));
            say(&format!(
                "pg_dump -Fc {} ms ({} MB), pg_restore {} ms",
                ms(dumped),
                size / 1_000_000,
                ms(restored)
            ));
            baseline = Some((dumped, restored, size, restored_rows));
            drop(rc);
            sqlx::query(&format!(
                "drop database if exists {restore_db} with (force)"
            ))
            .execute(&admin)
            .await?;
        }

        // Back to the shared tier without a move: the rows there are as
        // at the switch.
        let mut c = tenant_moves::connect(&dsn(&admin_url, None, CONTROL)).await?;
        tenant_moves::capture::remove(&mut c, move_id).await?;
        tenant_moves::capture::unfence(&mut c, move_id).await?;
        sqlx::query(
            "update control.tenant_placements set tier = 'shared', database_name = $2, schema_name = null
              where tenant_id = $1",
        )
        .bind(tenant)
        .bind(CONTROL)
        .execute(&owner)
        .await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        sqlx::query(&format!("drop database if exists {target} with (force)"))
            .execute(&admin)
            .await?;
    }

    let (dumped, restored, size, restored_rows) = baseline.expect("at least one move");
    let base = dumped + restored;
    let mut freezes: Vec<u128> = results
        .iter()
        .map(|r| r["write_freeze_ms"].as_u64().unwrap_or(0) as u128)
        .collect();
    freezes.sort_unstable();
    let mut totals: Vec<u128> = results
        .iter()
        .map(|r| r["total_ms"].as_u64().unwrap_or(0) as u128)
        .collect();
    totals.sort_unstable();
    let median_total = totals[totals.len() / 2];
    println!("| move | rows | copy | until frozen | frozen → switched | verify | mover's freeze | write-freeze (longest wait of a write) | write p99 | writes | refusals | other tenant refused | total |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &results {
        println!(
            "| {} | {} | {} ms | {} ms | {} ms | {} ms | {} ms | {} ms | {} ms | {} | {} | {} | {} ms |",
            r["move"], r["rows"], r["copy_ms"], r["until_frozen_ms"], r["frozen_to_switched_ms"],
            r["verify_ms"], r["mover_freeze_ms"], r["write_freeze_ms"], r["write_p99_ms"],
            r["writes"], r["refusals"], r["other_tenant_refusals"], r["total_ms"]
        );
    }
    println!();
    println!(
        "Rows of the tenant: {loaded} in {} tables. Moves: {moves}.",
        tables.len()
    );
    println!(
        "Write-freeze, p99 of the {moves} moves: {} ms (goal ≤ 1000 ms); max {} ms.",
        percentile(&freezes, 99.0),
        freezes.last().unwrap()
    );
    println!(
        "pg_dump -Fc --data-only of the moved tables: {} ms ({} MB, {restored_rows} rows); pg_restore --data-only --disable-triggers into a migrated database: {} ms; together {} ms.",
        ms(dumped),
        size / 1_000_000,
        ms(restored),
        ms(base)
    );
    println!(
        "Move total, median of {moves}: {median_total} ms = {:.2}× dump+restore (goal ≤ 1.5×).",
        median_total as f64 / base.as_millis().max(1) as f64
    );
    Ok(())
}
