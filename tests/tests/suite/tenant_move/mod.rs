//! The live tier move (bff/src/tenant_moves): a tenant moved from the
//! shared tier to a schema of its own and to a database of its own while
//! writers keep writing, preflight's refusals, aborts from each state and
//! a mover killed in each state.
//!
//! The writers route themselves as the BFF does: each write reads the
//! tenant's placement (control.tenant_placements) and writes there, and a
//! write refused with the move's BZ503 is tried again (a client's retry
//! after the 503). Every write is a customer and an invoice of it (a
//! gapless business number) in one transaction.

mod abort;
mod back;
mod billing;
mod crash;
mod created;
mod http;
mod live;
mod preflight;
mod purge;
mod verify;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bizos_bff::tenant_moves::{self, Endpoint, MoveSettings, Outcome};
use bizos_tests::{url_for, TestDb};
use sqlx::PgPool;
use uuid::Uuid;

/// The tenant that moves, another tenant of the shared tier, and the
/// control database they start in.
pub struct Fixture {
    pub db: TestDb,
    pub tenant: Uuid,
    pub other: Uuid,
}

/// The secret naming the test cluster's URL in control.clusters (set only
/// in the environment of a `bizos` child process).
pub const SECRET: &str = "BIZOS_TEST_MOVE_CLUSTER_URL";

/// A superuser's URL of a database of the test cluster: the mover's.
pub fn operator_url(database: &str) -> String {
    url_for("postgres", database)
}

/// Two tenants in the shared tier of a fresh database, the moving one
/// with `customers` customers and an invoice each (and their audit
/// entries, counters and the defaults every tenant has).
pub async fn fixture(customers: i64) -> Fixture {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("mover").await;
    let other = db.create_tenant("other").await;
    sqlx::query(
        "insert into control.clusters (cluster, region, url_secret, is_default)
         values ('local', 'id', $1, true)",
    )
    .bind(SECRET)
    .execute(&db.owner)
    .await
    .unwrap();
    for t in [tenant, other] {
        sqlx::query(
            "insert into control.tenant_placements (tenant_id, region, tier, cluster, database_name)
             values ($1, 'id', 'shared', 'local', $2)",
        )
        .bind(t)
        .bind(&db.name)
        .execute(&db.owner)
        .await
        .unwrap();
    }
    seed(&db.owner, tenant, customers).await;
    seed(&db.owner, other, 50).await;
    Fixture { db, tenant, other }
}

async fn seed(pool: &PgPool, tenant: Uuid, customers: i64) {
    sqlx::query(
        "insert into customers (tenant_id, company_name, email, city)
         select $1, 'PT Seed ' || g, 'seed' || g || '@example.test', 'Jakarta'
           from generate_series(1, $2) g",
    )
    .bind(tenant)
    .bind(customers)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "insert into invoices (tenant_id, customer_id, issue_date, due_date, subtotal, tax)
         select c.tenant_id, c.customer_id, current_date, current_date + 30, 1000, 110
           from customers c where c.tenant_id = $1",
    )
    .bind(tenant)
    .execute(pool)
    .await
    .unwrap();
}

/// Plans a move (as the operator: `tenant_move_request`).
pub async fn plan(
    db: &TestDb,
    tenant: Uuid,
    tier: &str,
    database: &str,
    schema: Option<&str>,
) -> Uuid {
    sqlx::query_scalar("select tenant_move_request($1, $2, 'local', $3, $4)")
        .bind(tenant)
        .bind(tier)
        .bind(database)
        .bind(schema)
        .fetch_one(&db.owner)
        .await
        .expect("tenant_move_request")
}

/// A schema of the control database migrated for the schema tier.
pub async fn schema_target(db: &TestDb, schema: &str) {
    bizos_sql::migrate(&db.url("bizos_owner"), Some(schema))
        .await
        .expect("migrate the target schema");
}

pub fn endpoint(database: &str, schema: Option<&str>) -> Endpoint {
    Endpoint {
        url: operator_url(database),
        schema: schema.map(str::to_owned),
    }
}

/// Runs the mover in this process (as the worker's job would).
pub async fn run_mover(db: &TestDb, move_id: Uuid, from: &Endpoint, to: &Endpoint) -> Outcome {
    tenant_moves::run(
        &db.pool_as("bizos_worker"),
        move_id,
        from,
        to,
        &MoveSettings::default(),
    )
    .await
    .expect("the mover")
}

/// The move's state, error and progress.
pub async fn state(db: &TestDb, move_id: Uuid) -> (String, Option<String>, serde_json::Value) {
    sqlx::query_as("select state, error, progress from control.tenant_moves where move_id = $1")
        .bind(move_id)
        .fetch_one(&db.owner)
        .await
        .unwrap()
}

/// Per table, the count of the tenant's rows in `schema` of `pool`'s
/// database (the tables of the source's catalogue).
pub async fn counts(pool: &PgPool, schema: &str, tenant: Uuid) -> BTreeMap<String, i64> {
    let tables: Vec<String> = sqlx::query_scalar(
        "select c.relname::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
          where n.nspname = $1 and c.relkind = 'r'
            and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id')
          order by 1",
    )
    .bind(schema)
    .fetch_all(pool)
    .await
    .unwrap();
    let mut out = BTreeMap::new();
    for t in tables {
        let filter = if t == "jobs" {
            " and kind <> 'tenant.move'"
        } else {
            ""
        };
        let n: i64 = sqlx::query_scalar(&format!(
            "select count(*) from \"{schema}\".\"{t}\" where tenant_id = $1{filter}"
        ))
        .bind(tenant)
        .fetch_one(pool)
        .await
        .unwrap();
        out.insert(t, n);
    }
    out
}

/// Triggers of the move left anywhere in a database.
pub async fn triggers_left(pool: &PgPool, move_id: Uuid) -> i64 {
    sqlx::query_scalar("select count(*) from pg_trigger where tgname::text like $1")
        .bind(format!("tenant_move_{}%", move_id.simple()))
        .fetch_one(pool)
        .await
        .unwrap()
}

/// What the writers did.
#[derive(Default, Debug)]
pub struct Writes {
    /// Names of the customers whose write committed, in order.
    pub committed: Vec<String>,
    /// Writes refused with the move's retryable error (then retried).
    pub refused: u64,
    /// The longest run of refusals of one write (how long it waited).
    pub longest_refusal: Duration,
}

/// Writers of `tenant` until `stop`: each routes every write by the
/// placement and retries a write refused with BZ503 until it commits.
pub fn start_writers(
    fx: &Fixture,
    tenant: Uuid,
    writers: usize,
    targets: Arc<BTreeMap<String, PgPool>>,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Writes>> {
    (0..writers)
        .map(|w| {
            let control = fx.db.owner.clone();
            let targets = targets.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut out = Writes::default();
                let mut i = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    i += 1;
                    let name = format!("PT Writer {tenant} {w}-{i}");
                    let first = std::time::Instant::now();
                    loop {
                        match write_once(&control, &targets, tenant, &name).await {
                            Ok(()) => break,
                            Err(e) if bizos_tests::code(&e) == "BZ503" => {
                                out.refused += 1;
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                            Err(e) => panic!("writer {w}: write {name} failed: {e}"),
                        }
                    }
                    out.longest_refusal = out.longest_refusal.max(first.elapsed());
                    out.committed.push(name);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                out
            })
        })
        .collect()
}

async fn write_once(
    control: &PgPool,
    targets: &BTreeMap<String, PgPool>,
    tenant: Uuid,
    name: &str,
) -> Result<(), sqlx::Error> {
    let (database, schema): (String, Option<String>) = sqlx::query_as(
        "select database_name, schema_name from control.tenant_placements where tenant_id = $1",
    )
    .bind(tenant)
    .fetch_one(control)
    .await?;
    let pool = targets
        .get(&database)
        .expect("a pool for the placement's database");
    let mut tx = pool.begin().await?;
    if let Some(s) = &schema {
        sqlx::query(&format!("set local search_path = {s}, extensions, bizos"))
            .execute(&mut *tx)
            .await?;
    }
    let customer: Uuid = sqlx::query_scalar(
        "insert into customers (tenant_id, company_name) values ($1, $2) returning customer_id",
    )
    .bind(tenant)
    .bind(name)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "insert into invoices (tenant_id, customer_id, issue_date, due_date, subtotal, tax)
         values ($1, $2, current_date, current_date + 30, 500, 55)",
    )
    .bind(tenant)
    .bind(customer)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Every committed write of `writes` is among `names` exactly once, and
/// `names` holds nothing else (`what` names them).
pub fn assert_each_once(names: &[String], writes: &[Writes], what: &str) {
    let mut found: BTreeMap<&str, usize> = BTreeMap::new();
    for n in names {
        *found.entry(n.as_str()).or_default() += 1;
    }
    let committed: Vec<&String> = writes.iter().flat_map(|w| &w.committed).collect();
    let lost: Vec<&&String> = committed
        .iter()
        .filter(|n| !found.contains_key(n.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "{} committed writes lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    let twice: Vec<(&&str, &usize)> = found.iter().filter(|(_, c)| **c > 1).collect();
    assert!(twice.is_empty(), "written twice: {twice:?}");
    assert_eq!(names.len(), committed.len(), "{what}");
}

/// Every committed write is in `schema` of `pool` exactly once, and the
/// tenant's invoice numbers there run 1..n without a gap.
pub async fn assert_writes_landed(pool: &PgPool, schema: &str, tenant: Uuid, writes: &[Writes]) {
    let names: Vec<String> = sqlx::query_scalar(&format!(
        "select company_name from {schema}.customers where tenant_id = $1 and company_name like 'PT Writer %'"
    ))
    .bind(tenant)
    .fetch_all(pool)
    .await
    .unwrap();
    assert_each_once(&names, writes, "rows of the writers in the target");
    let (count, max): (i64, Option<i64>) = sqlx::query_as(&format!(
        "select count(*), max(substring(invoice_no from '(\\d+)$')::bigint) from {schema}.invoices where tenant_id = $1"
    ))
    .bind(tenant)
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(
        Some(count),
        max,
        "invoice numbers are 1..{count} without a gap"
    );
}

/// A `bizos worker` child process (tests/src/bin/bizos-under-test.rs) that
/// runs the moves of `fx`'s database, pausing `step_delay_ms` after each
/// step (and with the freeze lock held) so a test can stop it there.
pub struct WorkerProcess {
    child: std::process::Child,
    _data: tempfile::TempDir,
}

impl WorkerProcess {
    pub fn start(fx: &Fixture, step_delay_ms: u64) -> WorkerProcess {
        let data = tempfile::tempdir().unwrap();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_bizos-under-test"));
        cmd.arg("worker")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("BIZOS_WORKER_URL", fx.db.url("bizos_worker"))
            .env("BIZOS_WORKER_HEALTH_LISTEN", "127.0.0.1:0")
            .env("BIZOS_WORKER_POLL_SECS", "1")
            .env("BIZOS_STORAGE", "local")
            .env("BIZOS_DATA_DIR", data.path())
            .env(SECRET, bizos_tests::admin_url())
            .env("BIZOS_TENANT_MOVE_STEP_DELAY_MS", step_delay_ms.to_string())
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null());
        if std::env::var("TEST_LOG").is_err() {
            cmd.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
        }
        WorkerProcess {
            child: cmd.spawn().expect("start bizos worker"),
            _data: data,
        }
    }

    /// SIGKILL: no destructor, no rollback of its own; its connections
    /// drop with it.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (up to 120 s) until the move is in `state`; panics when it ended
/// elsewhere.
pub async fn wait_for(db: &TestDb, move_id: Uuid, wanted: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (state, error, progress) = state(db, move_id).await;
        if state == wanted {
            return;
        }
        assert!(
            !matches!(state.as_str(), "done" | "failed" | "rolled_back"),
            "the move ended {state} waiting for {wanted}: {error:?} {progress}"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "still {state}, waiting for {wanted}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The lease of the killed mover's job runs out now (instead of in a
/// minute), so the next worker claims it at once.
pub async fn expire_leases(db: &TestDb) {
    sqlx::query(
        "update jobs set locked_until = now() - interval '1 second'
          where kind = 'tenant.move' and status = 'running'",
    )
    .execute(&db.owner)
    .await
    .unwrap();
}

/// A write of the tenant straight to the source succeeds within 30 s.
pub async fn source_writable(fx: &Fixture) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match sqlx::query("insert into public.customers (tenant_id, company_name) values ($1, 'PT Probe ' || gen_random_uuid())")
            .bind(fx.tenant)
            .execute(&fx.db.owner)
            .await
        {
            Ok(_) => return,
            Err(e) if bizos_tests::code(&e) == "BZ503" && std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("the source is not writable: {e}"),
        }
    }
}

/// Starts writers of the tenant routed between the source and `target`.
pub fn writers_to(
    fx: &Fixture,
    target: &TestDb,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Writes>> {
    let mut pools = BTreeMap::new();
    pools.insert(fx.db.name.clone(), fx.db.owner.clone());
    pools.insert(target.name.clone(), target.owner.clone());
    start_writers(fx, fx.tenant, 2, Arc::new(pools), stop)
}

pub async fn stop_writers(
    stop: &AtomicBool,
    writers: Vec<tokio::task::JoinHandle<Writes>>,
) -> Vec<Writes> {
    stop.store(true, Ordering::SeqCst);
    let mut out = Vec::new();
    for w in writers {
        out.push(w.await.unwrap());
    }
    out
}
