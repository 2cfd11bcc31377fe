//! Durable background jobs: the queue of migration V21
//! (sql/api/jobs.sql) worked by a real `bizos worker` process (the test
//! package's own build, tests/src/bin/bizos-under-test.rs).
//!
//! Enqueue is transactional (a rollback leaves no job, a commit always runs
//! it), a worker killed with SIGKILL mid-job leaves a job that runs again
//! with one effect, retryable failures back off with growing delays and end
//! dead with the last error until `bizos jobs retry`, tenants are served
//! round-robin, a dead worker's lease runs out, cancellation stops a job,
//! and GET /api/jobs/{id} shows a job only to those RLS lets read it.

mod registry;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bizos_bff::auth::Caller;
use bizos_tests::{rpc, spawn_app_with, TestDb};
use serde_json::{json, Value};
use sqlx::Row;
use uuid::Uuid;

fn bizos_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_bizos-under-test"))
}

/// A `bizos worker` child process, killed (SIGKILL) when dropped.
pub(crate) struct WorkerProcess {
    child: Child,
}

impl WorkerProcess {
    fn start(db: &TestDb, name: &str) -> WorkerProcess {
        Self::start_with(db, name, &[])
    }

    pub(crate) fn start_with(db: &TestDb, name: &str, env: &[(&str, &str)]) -> WorkerProcess {
        let mut command = Command::new(bizos_bin());
        command
            .arg("worker")
            .env("BIZOS_WORKER_URL", db.url("bizos_worker"))
            .env("BIZOS_WORKER_NAME", name)
            .env("BIZOS_WORKER_HEALTH_LISTEN", "127.0.0.1:0")
            .env("BIZOS_WORKER_POLL_SECS", "30")
            .env("BIZOS_SHUTDOWN_GRACE_SECS", "2")
            .env("BIZOS_LOG_FORMAT", "json")
            .env(
                "RUST_LOG",
                if std::env::var("TEST_LOG").is_ok() {
                    "info"
                } else {
                    "warn"
                },
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command.spawn().expect("start bizos worker");
        WorkerProcess { child }
    }

    /// SIGKILL: no shutdown, no release, the connection just drops.
    pub(crate) fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl WorkerProcess {
    /// SIGTERM, then waits (up to 20 s) for the process to exit.
    fn terminate(&mut self) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the worker did not stop"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn scalar<T>(db: &TestDb, sql: &str) -> T
where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
{
    sqlx::query_scalar(sql).fetch_one(&db.owner).await.unwrap()
}

async fn job_status(db: &TestDb, job: Uuid) -> String {
    sqlx::query_scalar("select status from jobs where job_id = $1")
        .bind(job)
        .fetch_one(&db.owner)
        .await
        .unwrap()
}

/// Waits (up to 60 s) until `sql` (a boolean) holds.
async fn wait_for(db: &TestDb, sql: &str, what: &str) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if scalar::<bool>(db, sql).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what} ({sql})");
}

/// An expired idempotency key of `who`: what an idempotency.purge job of
/// their tenant deletes (the visible effect of a job).
async fn expired_key(db: &TestDb, who: &Caller, key: &str) {
    let mut tx = db.owner.begin().await.unwrap();
    sqlx::query("alter table idempotency_keys disable trigger idempotency_keys_stamp_timestamps")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(
        "insert into idempotency_keys (tenant_id, user_id, idempotency_key, method, path, request_hash,
                                       response_status, response_body, created_at, expires_at)
         values ($1, $2, $3, 'POST', '/api/leads', repeat('ab', 32), 201, '{}',
                 now() - interval '3 days', now() - interval '1 day')",
    )
    .bind(who.tenant_id)
    .bind(who.user_id)
    .bind(key)
    .execute(&mut *tx)
    .await
    .unwrap_or_else(|e| panic!("expired key: {e}"));
    sqlx::query("alter table idempotency_keys enable trigger idempotency_keys_stamp_timestamps")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

async fn keys(db: &TestDb, tenant: Uuid) -> i64 {
    sqlx::query_scalar("select count(*) from idempotency_keys where tenant_id = $1")
        .bind(tenant)
        .fetch_one(&db.owner)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_rolled_back_enqueue_never_runs_and_a_committed_one_always_does() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let admin = db.create_user(tenant, "super_admin").await;
    expired_key(&db, &admin, "k-1").await;
    let _worker = WorkerProcess::start(&db, "w-tx");

    // Rolled back: no job, and nothing happens.
    let mut tx = db.as_user(&admin).await;
    let id: Uuid = sqlx::query_scalar("select job_enqueue('idempotency.purge')")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        scalar::<i64>(&db, "select count(*) from jobs").await,
        0,
        "job {id}"
    );
    assert_eq!(keys(&db, tenant).await, 1, "the rolled-back job never ran");

    // Committed: runs (woken by the NOTIFY of the commit, not the 30 s poll).
    let started = Instant::now();
    let mut tx = db.as_user(&admin).await;
    let id: Uuid = sqlx::query_scalar("select job_enqueue('idempotency.purge')")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let committed: chrono::DateTime<chrono::Utc> = scalar(&db, "select clock_timestamp()").await;
    wait_for(
        &db,
        &format!("select status = 'succeeded' from jobs where job_id = '{id}'"),
        "the committed job",
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // Woken by the NOTIFY, not the 30 s poll: well under the poll, with
    // room for a loaded machine (1.6 s was seen under a full suite beside
    // two benchmarks).
    let job_started: chrono::DateTime<chrono::Utc> = scalar(
        &db,
        &format!("select started_at from jobs where job_id = '{id}'"),
    )
    .await;
    assert!(
        job_started - committed < chrono::TimeDelta::seconds(5),
        "started {:?} after the commit",
        job_started - committed
    );
    assert_eq!(keys(&db, tenant).await, 0, "the committed job ran");
    let row = sqlx::query("select attempts, created_by, locked_by from jobs where job_id = $1")
        .bind(id)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(row.get::<i32, _>(0), 1);
    assert_eq!(row.get::<Option<Uuid>, _>(1), Some(admin.user_id));
    assert_eq!(row.get::<Option<String>, _>(2), None);
}

/// `n` lead rows with distinct external refs.
fn leads_csv(n: usize) -> Vec<u8> {
    let mut out = String::from("external_ref,channel,company_name\n");
    for i in 1..=n {
        out.push_str(&format!("JOB-{i},website,PT Kerja {i}\n"));
    }
    out.into_bytes()
}

#[tokio::test]
async fn an_import_killed_mid_way_completes_after_restart_with_every_row_once() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let marketing = db.create_user(tenant, "marketing_manager").await;
    // The BFF without its in-process worker: the child process works the queue.
    let app = spawn_app_with(
        &db,
        &[("BIZOS_IMPORT_BATCH_ROWS", "20"), ("TEST_WORKER", "off")],
    )
    .await;
    let n = 4000;
    let (status, staged) = app
        .upload(
            &marketing,
            "/api/imports",
            &[("module", "leads")],
            "leads.csv",
            leads_csv(n),
            None,
        )
        .await;
    assert_eq!(status, 201, "{staged}");
    let import = staged["import_id"].as_str().unwrap().to_owned();
    let (status, first) = app
        .post_json(
            &marketing,
            &format!("/api/imports/{import}/process"),
            &json!(null),
            None,
        )
        .await;
    assert_eq!(status, 202, "{first}");
    let job: Uuid = scalar(&db, "select job_id from jobs where kind = 'import.process'").await;
    assert_eq!(
        job_status(&db, job).await,
        "queued",
        "the request enqueued the rest"
    );

    let mut worker = WorkerProcess::start(&db, "w-first");
    wait_for(
        &db,
        &format!("select processed_rows >= 400 from imports where import_id = '{import}'"),
        "some batches",
    )
    .await;
    worker.kill();
    let processed: i32 = scalar(
        &db,
        &format!("select processed_rows from imports where import_id = '{import}'"),
    )
    .await;
    assert!(
        (processed as usize) < n,
        "killed mid-way ({processed} of {n})"
    );
    assert_eq!(
        job_status(&db, job).await,
        "running",
        "the dead worker still holds the lease"
    );

    // Its lease runs out (moved instead of waited for); another worker resumes.
    sqlx::query("update jobs set locked_until = now() - interval '1 second' where job_id = $1")
        .bind(job)
        .execute(&db.owner)
        .await
        .unwrap();
    let _worker = WorkerProcess::start(&db, "w-second");
    wait_for(
        &db,
        &format!("select status = 'succeeded' from jobs where job_id = '{job}'"),
        "the resumed import job",
    )
    .await;
    let row = sqlx::query(
        "select i.status, i.ok_rows, i.processed_rows,
                (select count(*) from leads l where l.tenant_id = i.tenant_id),
                (select count(distinct l.external_ref) from leads l where l.tenant_id = i.tenant_id),
                j.attempts, j.progress_done, j.progress_total, j.last_error
           from imports i, jobs j
          where i.import_id = $1 and j.job_id = $2",
    )
    .bind(Uuid::parse_str(&import).unwrap())
    .bind(job)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(row.get::<String, _>(0), "done");
    assert_eq!(row.get::<i32, _>(1) as usize, n, "every row ok");
    assert_eq!(row.get::<i32, _>(2) as usize, n);
    assert_eq!(
        row.get::<i64, _>(3) as usize,
        n,
        "one lead per row: none twice, none lost"
    );
    assert_eq!(row.get::<i64, _>(4) as usize, n);
    assert_eq!(row.get::<i32, _>(5), 2, "claimed twice");
    assert_eq!(
        (row.get::<Option<i64>, _>(6), row.get::<Option<i64>, _>(7)),
        (Some(n as i64), Some(n as i64)),
        "progress"
    );
    assert!(
        row.get::<Option<String>, _>(8)
            .unwrap_or_default()
            .contains("w-first"),
        "the lost lease is recorded"
    );

    // The API shows the job to its creator.
    let (status, body) = app.get_json(&marketing, &format!("/api/jobs/{job}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["status"].as_str(),
            body["attempts"].as_i64(),
            body["progress_done"].as_i64()
        ),
        (Some("succeeded"), Some(2), Some(n as i64)),
        "{body}"
    );
}

#[tokio::test]
async fn retryable_failures_back_off_then_die_and_jobs_retry_revives() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let admin = db.create_user(tenant, "super_admin").await;
    expired_key(&db, &admin, "k-1").await;
    // The purge times out while the table is locked: a retryable error.
    let admin_pool = sqlx::PgPool::connect(&bizos_tests::url_for("postgres", &db.name))
        .await
        .unwrap();
    sqlx::query(&format!(
        "alter role bizos_worker in database {} set statement_timeout = '100ms'",
        db.name
    ))
    .execute(&admin_pool)
    .await
    .unwrap();
    let mut lock = admin_pool.begin().await.unwrap();
    sqlx::query("lock table idempotency_keys in access exclusive mode")
        .execute(&mut *lock)
        .await
        .unwrap();

    let job: Uuid = sqlx::query_scalar("select job_enqueue_for($1, 'idempotency.purge')")
        .bind(tenant)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    let max: i32 = scalar(
        &db,
        "select max_attempts from job_kinds where kind = 'idempotency.purge'",
    )
    .await;
    let _worker = WorkerProcess::start(&db, "w-retry");
    let mut delays = Vec::new();
    for attempt in 1..=max {
        wait_for(
            &db,
            &format!("select attempts = {attempt} and status in ('queued', 'dead') from jobs where job_id = '{job}'"),
            "a failed attempt",
        )
        .await;
        if attempt < max {
            let delay: f64 = scalar(
                &db,
                &format!("select extract(epoch from run_at - updated_at)::float8 from jobs where job_id = '{job}'"),
            )
            .await;
            delays.push(delay);
            // Instead of sleeping through the backoff: due now, and a wake-up.
            sqlx::query("update jobs set run_at = now() where job_id = $1; ")
                .bind(job)
                .execute(&db.owner)
                .await
                .unwrap();
            sqlx::query("select pg_notify('bizos_jobs', 'test')")
                .execute(&db.owner)
                .await
                .unwrap();
        }
    }
    assert_eq!(job_status(&db, job).await, "dead");
    let last_error: String = scalar(
        &db,
        &format!("select last_error from jobs where job_id = '{job}'"),
    )
    .await;
    assert!(last_error.contains("statement timeout"), "{last_error}");
    assert_eq!(delays.len() as i32, max - 1);
    for pair in delays.windows(2) {
        assert!(pair[1] >= pair[0], "growing delays: {delays:?}");
    }
    let base: f64 = scalar(
        &db,
        "select backoff_secs from job_kinds where kind = 'idempotency.purge'",
    )
    .await;
    for (i, d) in delays.iter().enumerate() {
        let low = base * 2f64.powi(i as i32);
        assert!(
            *d >= low - 0.5 && *d <= 2.0 * low + 0.5,
            "delay {i}: {d} (base {base}): {delays:?}"
        );
    }

    // The lock goes away; the dead job stays dead (nothing was purged)
    // until `bizos jobs retry` queues it again with fresh attempts.
    lock.rollback().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(keys(&db, tenant).await, 1, "nothing was purged");
    let out = Command::new(bizos_bin())
        .args(["jobs", "retry", &job.to_string()])
        .env("BIZOS_DATABASE_URL", db.url("bizos_owner"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (printed["status"].as_str(), printed["attempts"].as_i64()),
        (Some("queued"), Some(0))
    );
    wait_for(
        &db,
        &format!("select status = 'succeeded' from jobs where job_id = '{job}'"),
        "the revived job",
    )
    .await;
    assert_eq!(keys(&db, tenant).await, 0, "the revived job purged");

    // `bizos jobs list --status succeeded` shows it; a retry of a live job is refused.
    let out = Command::new(bizos_bin())
        .args([
            "jobs",
            "list",
            "--status",
            "succeeded",
            "--tenant",
            &tenant.to_string(),
        ])
        .env("BIZOS_DATABASE_URL", db.url("bizos_owner"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&job.to_string()));
    let out = Command::new(bizos_bin())
        .args(["jobs", "retry", &job.to_string()])
        .env("BIZOS_DATABASE_URL", db.url("bizos_owner"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("only a dead or cancelled job"));
}

/// Claims as the worker's login, one call of `job_claim`.
async fn claim(db: &TestDb, worker: &str, max: i32) -> Vec<(Uuid, Uuid)> {
    sqlx::query_as("select tenant_id, job_id from job_claim($1, $2)")
        .bind(worker)
        .bind(max)
        .fetch_all(&db.pool_as("bizos_worker"))
        .await
        .unwrap()
}

#[tokio::test]
async fn tenants_are_served_round_robin_and_priorities_hold_within_a_tenant() {
    let db = TestDb::new().await;
    let a = db.create_tenant("busy").await;
    let b = db.create_tenant("quiet").await;
    sqlx::query(
        "select job_enqueue_for($1, 'idempotency.purge', jsonb_build_object('n', g))
           from generate_series(1, 10000) g",
    )
    .bind(a)
    .execute(&db.owner)
    .await
    .unwrap();
    // A has been served before: its backlog is older than B's one job.
    let first = claim(&db, "w", 3).await;
    assert!(first.iter().all(|(t, _)| *t == a), "only A has jobs yet");
    let b_job: Uuid = sqlx::query_scalar("select job_enqueue_for($1, 'idempotency.purge')")
        .bind(b)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    let order: Vec<(Uuid, Uuid)> = {
        let mut out = Vec::new();
        for _ in 0..3 {
            out.extend(claim(&db, "w", 1).await);
        }
        out
    };
    let at = order.iter().position(|(_, j)| *j == b_job);
    assert!(
        matches!(at, Some(0 | 1)),
        "B's job among the first claims: {order:?}"
    );

    // One claim of several jobs: one per tenant per round.
    let b2: Uuid = sqlx::query_scalar("select job_enqueue_for($1, 'idempotency.purge')")
        .bind(b)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    let batch = claim(&db, "w", 2).await;
    assert!(batch.iter().any(|(_, j)| *j == b2), "{batch:?}");
    assert!(batch.iter().any(|(t, _)| *t == a), "{batch:?}");

    // Priority first within a tenant, and a job not due yet waits.
    let low: Uuid =
        sqlx::query_scalar("select job_enqueue_for($1, 'idempotency.purge', '{}', null, -5)")
            .bind(b)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    let later: Uuid = sqlx::query_scalar(
        "select job_enqueue_for($1, 'idempotency.purge', '{}', now() + interval '1 hour', 50)",
    )
    .bind(b)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    let high: Uuid =
        sqlx::query_scalar("select job_enqueue_for($1, 'idempotency.purge', '{}', null, 5)")
            .bind(b)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    let mut of_b = Vec::new();
    for _ in 0..6 {
        for (t, j) in claim(&db, "w", 1).await {
            if t == b {
                of_b.push(j);
            }
        }
    }
    assert_eq!(
        of_b,
        vec![high, low],
        "priority order, the later job not yet"
    );
    assert!(!of_b.contains(&later));
}

#[tokio::test]
async fn a_dead_workers_job_reappears_after_its_lease() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let admin = db.create_user(tenant, "super_admin").await;
    expired_key(&db, &admin, "k-1").await;
    let job: Uuid = sqlx::query_scalar("select job_enqueue_for($1, 'idempotency.purge')")
        .bind(tenant)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    // A worker claims it and dies: nothing but its lease is left.
    assert_eq!(claim(&db, "gone", 1).await, vec![(tenant, job)]);
    assert!(
        claim(&db, "other", 1).await.is_empty(),
        "leased: not claimable"
    );
    let worker = db.pool_as("bizos_worker");
    let beat: bool = sqlx::query_scalar("select job_heartbeat($1, 'other', 1, 2)")
        .bind(job)
        .fetch_one(&worker)
        .await
        .unwrap();
    assert!(!beat, "only the lease holder heartbeats");
    sqlx::query("update jobs set locked_until = now() - interval '1 second' where job_id = $1")
        .bind(job)
        .execute(&db.owner)
        .await
        .unwrap();
    let _worker = WorkerProcess::start(&db, "w-live");
    wait_for(
        &db,
        &format!("select status = 'succeeded' from jobs where job_id = '{job}'"),
        "the job",
    )
    .await;
    assert_eq!(keys(&db, tenant).await, 0);
    assert_eq!(
        scalar::<i32>(
            &db,
            &format!("select attempts from jobs where job_id = '{job}'")
        )
        .await,
        2
    );
    // The dead worker's late answers change nothing.
    let completed: bool = sqlx::query_scalar("select job_complete($1, 'gone')")
        .bind(job)
        .fetch_one(&worker)
        .await
        .unwrap();
    assert!(!completed);
}

#[tokio::test]
async fn cancelled_jobs_do_not_run_and_a_running_one_loses_its_lease() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let sales = db.create_user(tenant, "salesperson").await;
    expired_key(&db, &admin, "k-1").await;

    let mut tx = db.as_user(&sales).await;
    let job: Uuid = sqlx::query_scalar(
        "select job_enqueue('idempotency.purge', '{}', now() + interval '2 seconds')",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    // Not theirs: another member may not cancel it; its creator may.
    let other = db.create_user(tenant, "salesperson").await;
    let refused = rpc(
        &db,
        &other,
        "select job_cancel(($1 #>> '{}')::uuid)",
        &[json!(job)],
    )
    .await;
    assert!(refused.is_err(), "{refused:?}");
    let cancelled = rpc(
        &db,
        &sales,
        "select job_cancel(($1 #>> '{}')::uuid)",
        &[json!(job)],
    )
    .await
    .unwrap();
    assert_eq!(cancelled["status"], "cancelled");

    let worker_process = WorkerProcess::start(&db, "w-cancel");
    tokio::time::sleep(Duration::from_secs(3)).await;
    sqlx::query("select pg_notify('bizos_jobs', 'test')")
        .execute(&db.owner)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(job_status(&db, job).await, "cancelled");
    assert_eq!(keys(&db, tenant).await, 1, "the cancelled job never ran");

    // A running job that is cancelled: its worker's heartbeat says stop,
    // and its completion is refused. This part claims by hand, so the
    // worker process (which handles storage.sweep) must not race it.
    drop(worker_process);
    let worker = db.pool_as("bizos_worker");
    let running: Uuid = sqlx::query_scalar(
        "select job_enqueue_for($1, 'storage.sweep', '{}', now() + interval '1 hour')",
    )
    .bind(tenant)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    sqlx::query("update jobs set run_at = now() where job_id = $1")
        .bind(running)
        .execute(&db.owner)
        .await
        .unwrap();
    let claimed: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "select tenant_id, job_id from job_claim('manual', 1, array['storage.sweep'])",
    )
    .fetch_all(&worker)
    .await
    .unwrap();
    assert_eq!(claimed, vec![(tenant, running)]);
    let cancelled = rpc(
        &db,
        &admin,
        "select job_cancel(($1 #>> '{}')::uuid)",
        &[json!(running)],
    )
    .await
    .unwrap();
    assert_eq!(
        cancelled["status"], "cancelled",
        "a super_admin cancels any job of the tenant"
    );
    let beat: bool = sqlx::query_scalar("select job_heartbeat($1, 'manual')")
        .bind(running)
        .fetch_one(&worker)
        .await
        .unwrap();
    assert!(!beat);
    let completed: bool = sqlx::query_scalar("select job_complete($1, 'manual')")
        .bind(running)
        .fetch_one(&worker)
        .await
        .unwrap();
    assert!(!completed);
    assert_eq!(job_status(&db, running).await, "cancelled");
}

#[tokio::test]
async fn get_job_shows_a_job_only_to_those_who_may_read_it() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let owner = db.create_user(tenant, "salesperson").await;
    let colleague = db.create_user(tenant, "salesperson").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let outsider = db
        .create_user(db.create_tenant("globex").await, "super_admin")
        .await;
    let app = spawn_app_with(&db, &[("TEST_WORKER", "off")]).await;

    let mut tx = db.as_user(&owner).await;
    sqlx::query("select set_config('request.id', 'req-42', true)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let job: Uuid = sqlx::query_scalar("select job_enqueue('idempotency.purge')")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let (status, body) = app.get_json(&owner, &format!("/api/jobs/{job}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (
            body["status"].as_str(),
            body["kind"].as_str(),
            body["attempts"].as_i64(),
            body["request_id"].as_str()
        ),
        (
            Some("queued"),
            Some("idempotency.purge"),
            Some(0),
            Some("req-42")
        ),
        "{body}"
    );
    let (status, _) = app.get_json(&admin, &format!("/api/jobs/{job}")).await;
    assert_eq!(status, 200, "a super_admin reads the tenant's jobs");
    for who in [&colleague, &outsider] {
        let (status, body) = app.get_json(who, &format!("/api/jobs/{job}")).await;
        assert_eq!(status, 404, "{body}");
    }
    let (status, _) = app
        .get_json(&owner, &format!("/api/jobs/{}", Uuid::new_v4()))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn enqueue_checks_its_fields_and_dedups_by_key() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let user = db.create_user(tenant, "salesperson").await;
    let director = db.create_user(tenant, "director").await;
    for (sql, field) in [
        ("select to_jsonb(job_enqueue('no.such.kind'))", "kind"),
        (
            "select to_jsonb(job_enqueue('idempotency.purge', '[]'))",
            "payload",
        ),
        (
            "select to_jsonb(job_enqueue('idempotency.purge', '{}', null, 1000))",
            "priority",
        ),
    ] {
        let err = rpc(&db, &user, sql, &[]).await.unwrap_err();
        assert_eq!(
            bizos_tests::field(&err).as_deref(),
            Some(field),
            "{sql}: {err}"
        );
    }
    let first = rpc(
        &db,
        &user,
        "select to_jsonb(job_enqueue('idempotency.purge', '{}', null, 0, 'once'))",
        &[],
    )
    .await
    .unwrap();
    let again = rpc(
        &db,
        &user,
        "select to_jsonb(job_enqueue('idempotency.purge', '{}', null, 0, 'once'))",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(first, again);
    assert_eq!(scalar::<i64>(&db, "select count(*) from jobs").await, 1);
    // Directors write nothing; users may not enqueue system work.
    assert!(rpc(
        &db,
        &director,
        "select to_jsonb(job_enqueue('idempotency.purge'))",
        &[]
    )
    .await
    .is_err());
    let err = rpc(
        &db,
        &user,
        "select to_jsonb(job_enqueue_for(($1 #>> '{}')::uuid, 'idempotency.purge'))",
        &[json!(tenant)],
    )
    .await
    .unwrap_err();
    assert_eq!(bizos_tests::code(&err), "42501");
    // The operator's view counts them.
    let queued: i64 = scalar(
        &db,
        "select queued from job_queue where kind = 'idempotency.purge'",
    )
    .await;
    assert_eq!(queued, 1);
}

#[tokio::test]
async fn sigterm_releases_an_unfinished_job_without_counting_the_attempt() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let marketing = db.create_user(tenant, "marketing_manager").await;
    let app = spawn_app_with(
        &db,
        &[("BIZOS_IMPORT_BATCH_ROWS", "20"), ("TEST_WORKER", "off")],
    )
    .await;
    let n = 4000;
    let (status, staged) = app
        .upload(
            &marketing,
            "/api/imports",
            &[("module", "leads")],
            "leads.csv",
            leads_csv(n),
            None,
        )
        .await;
    assert_eq!(status, 201, "{staged}");
    let import = staged["import_id"].as_str().unwrap().to_owned();
    let (status, _) = app
        .post_json(
            &marketing,
            &format!("/api/imports/{import}/process"),
            &json!(null),
            None,
        )
        .await;
    assert_eq!(status, 202);
    let job: Uuid = scalar(&db, "select job_id from jobs where kind = 'import.process'").await;

    // No grace: running jobs are given back at once.
    let mut worker =
        WorkerProcess::start_with(&db, "w-term", &[("BIZOS_SHUTDOWN_GRACE_SECS", "0")]);
    wait_for(
        &db,
        &format!("select processed_rows >= 200 from imports where import_id = '{import}'"),
        "some batches",
    )
    .await;
    let exit = worker.terminate();
    assert!(exit.success(), "{exit:?}");
    let row = sqlx::query("select status, attempts, locked_by from jobs where job_id = $1")
        .bind(job)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(
        (
            row.get::<String, _>(0),
            row.get::<i32, _>(1),
            row.get::<Option<String>, _>(2)
        ),
        ("queued".to_owned(), 0, None),
        "released, the attempt not counted"
    );
    let processed: i32 = scalar(
        &db,
        &format!("select processed_rows from imports where import_id = '{import}'"),
    )
    .await;
    assert!(
        (processed as usize) < n,
        "stopped mid-way ({processed} of {n})"
    );

    // Another worker picks it up at once (no lease to wait for).
    let _worker = WorkerProcess::start(&db, "w-next");
    wait_for(
        &db,
        &format!("select status = 'succeeded' from jobs where job_id = '{job}'"),
        "the released job",
    )
    .await;
    let leads: i64 = scalar(&db, "select count(distinct external_ref) from leads").await;
    let all: i64 = scalar(&db, "select count(*) from leads").await;
    assert_eq!((leads as usize, all as usize), (n, n), "every row once");
    assert_eq!(
        scalar::<i32>(
            &db,
            &format!("select attempts from jobs where job_id = '{job}'")
        )
        .await,
        1
    );
}

/// Whether a NOTIFY on bizos_jobs reaches `listener` within half a second.
async fn notified(listener: &mut sqlx::postgres::PgListener) -> bool {
    tokio::time::timeout(Duration::from_millis(500), listener.recv())
        .await
        .is_ok()
}

#[tokio::test]
async fn an_enqueue_notifies_only_while_a_worker_waits() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let mut listener = sqlx::postgres::PgListener::connect(&db.url("bizos_owner"))
        .await
        .unwrap();
    listener.listen("bizos_jobs").await.unwrap();
    let worker = db.pool_as("bizos_worker");
    let enqueue = |key: &'static str| {
        let worker = worker.clone();
        async move {
            sqlx::query("select job_enqueue_for($1, 'idempotency.purge', dedup_key => $2)")
                .bind(tenant)
                .bind(key)
                .execute(&worker)
                .await
                .unwrap();
        }
    };
    let listen = |ttl: Option<f64>| {
        let worker = worker.clone();
        async move {
            sqlx::query_scalar::<_, bool>("select job_listen('w-1', $1)")
                .bind(ttl)
                .fetch_one(&worker)
                .await
                .unwrap()
        }
    };

    // Nobody waits: no NOTIFY (the job is there all the same).
    enqueue("k-1").await;
    assert!(
        !notified(&mut listener).await,
        "a NOTIFY with no worker waiting"
    );
    assert_eq!(scalar::<i64>(&db, "select count(*) from jobs").await, 1);

    // A worker waits: the next enqueue wakes it at commit and takes it off
    // the list, so the enqueues after it send nothing until it lists
    // itself again.
    let listed = || async {
        scalar::<i64>(
            &db,
            "select count(*) from job_listeners where worker = 'w-1'",
        )
        .await
    };
    assert!(!listen(Some(60.0)).await, "not listed before");
    assert!(listen(Some(60.0)).await, "a renewal finds the listing");
    enqueue("k-2").await;
    assert!(
        notified(&mut listener).await,
        "no NOTIFY while a worker waits"
    );
    assert_eq!(listed().await, 0, "the woken worker is still listed");
    enqueue("k-3").await;
    assert!(
        !notified(&mut listener).await,
        "a second NOTIFY for one waiting worker"
    );
    assert!(!listen(Some(60.0)).await, "woken, it lists itself anew");
    // A rollback sends nothing and leaves the worker waiting.
    let mut tx = worker.begin().await.unwrap();
    sqlx::query("select job_enqueue_for($1, 'idempotency.purge', dedup_key => 'k-rolled-back')")
        .bind(tenant)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert!(!notified(&mut listener).await, "a NOTIFY for a rollback");
    assert_eq!(listed().await, 1, "a rollback took the worker off the list");
    // A job for later wakes nobody (the poll finds it when it is due).
    sqlx::query("select job_enqueue_for($1, 'idempotency.purge', run_at => now() + interval '1 hour', dedup_key => 'k-later')")
        .bind(tenant)
        .execute(&worker)
        .await
        .unwrap();
    assert!(
        !notified(&mut listener).await,
        "a NOTIFY for a job not yet due"
    );
    assert_eq!(listed().await, 1);

    // A worker waiting for other kinds only is not woken by this one.
    sqlx::query("select job_listen('w-1', 60, array['email.send'])")
        .execute(&worker)
        .await
        .unwrap();
    enqueue("k-other-kind").await;
    assert!(
        !notified(&mut listener).await,
        "a NOTIFY for a worker without a handler of the kind"
    );
    assert_eq!(listed().await, 1, "woken for a kind it does not run");

    // Its slots full, the worker leaves the list: no NOTIFY again.
    assert!(listen(None).await, "taken off the list");
    enqueue("k-4").await;
    assert!(
        !notified(&mut listener).await,
        "a NOTIFY after the worker left"
    );

    // A listing that ran out (its worker died) wakes nobody.
    listen(Some(60.0)).await;
    sqlx::query("update job_listeners set listening_until = now() - interval '1 second'")
        .execute(&db.owner)
        .await
        .unwrap();
    enqueue("k-5").await;
    assert!(
        !notified(&mut listener).await,
        "a NOTIFY for an expired listing"
    );

    // Checks name their field; users cannot list a worker.
    let err = sqlx::query("select job_listen('w-1', 0)")
        .execute(&worker)
        .await
        .unwrap_err();
    assert_eq!(
        bizos_tests::field(&err).as_deref(),
        Some("ttl_secs"),
        "{err}"
    );
    let user = db.create_user(tenant, "super_admin").await;
    let mut tx = db.as_user(&user).await;
    let err = sqlx::query("select job_listen('w-2', 60)")
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert_eq!(bizos_tests::code(&err), "42501", "{err}");
}

#[tokio::test]
async fn a_waiting_worker_is_listed_and_leaves_the_list_when_it_stops() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("acme").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let mut worker = WorkerProcess::start(&db, "w-listed");
    wait_for(
        &db,
        "select exists (select 1 from job_listeners where worker = 'w-listed' and listening_until > now())",
        "the idle worker's listing",
    )
    .await;
    // Woken by the NOTIFY its listing brings (the poll is 30 s).
    expired_key(&db, &admin, "k-1").await;
    let id: Uuid = sqlx::query_scalar("select job_enqueue_for($1, 'idempotency.purge')")
        .bind(tenant)
        .fetch_one(&db.pool_as("bizos_worker"))
        .await
        .unwrap();
    let started = Instant::now();
    wait_for(
        &db,
        &format!("select status = 'succeeded' from jobs where job_id = '{id}'"),
        "the job",
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(worker.terminate().success());
    assert_eq!(
        scalar::<i64>(&db, "select count(*) from job_listeners").await,
        0,
        "a stopped worker is still listed"
    );
}
