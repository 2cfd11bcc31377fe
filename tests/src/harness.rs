//! Integration-test harness: a real PostgreSQL 15 with the real extension.
//!
//! `scripts/dev test` starts a throw-away cluster and exports
//! `BIZOS_TEST_ADMIN_URL` (a superuser, trust auth on loopback). The first
//! test of a run bootstraps and migrates a template database (under an
//! advisory lock, so parallel test binaries share it); every test then gets
//! a fresh database cloned from it, dropped when the test ends.
//!
//! Logs of the BFF are printed only with `TEST_LOG=1`.

/// What the benchmark binaries share.
pub mod bench;
/// The tests' Citus cluster and its migrated database.
pub mod citus_cluster;
/// The LLM provider stand-in (OpenAI and Gemini wire formats on loopback).
pub mod llm_standin;
/// A PostgreSQL cluster of a test's own (to crash, or to fill its lock table).
pub mod own_cluster;
/// Signs payment webhooks as Stripe and Midtrans do.
pub mod payment_sender;
/// The tests' SMTP server: its port, directory and messages.
pub mod smtp_sink;
/// Names a hung test and stops the suite (instead of CI's time limit).
pub mod watchdog;
/// The tests' webhook receiver (standardwebhooks from PyPI verifies).
pub mod webhook_receiver;

use std::collections::HashMap;
use std::time::Duration;

use bizos_bff::auth::{caller_from_claims, issue_token, Caller};
use bizos_bff::config::{OtelSettings, Settings};
use bizos_bff::startup::Application;
use bizos_bff::worker::{Worker, WorkerSettings};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Postgres, Transaction};
use tokio::sync::OnceCell;
use uuid::Uuid;

/// Default admin connection of the test cluster started by `scripts/dev test`.
pub const DEFAULT_ADMIN_URL: &str = "host=127.0.0.1 port=54329 user=postgres dbname=postgres";

/// Shared by every test of this process: the name of the migrated template.
static TEMPLATE: OnceCell<String> = OnceCell::const_new();

pub fn admin_url() -> String {
    std::env::var("BIZOS_TEST_ADMIN_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned())
}

/// The test cluster's address with another user and database.
pub fn url_for(user: &str, database: &str) -> String {
    bizos_sql::derive_dsn(&admin_url(), Some(user), database)
        .expect("BIZOS_TEST_ADMIN_URL is a valid DSN")
}

async fn admin() -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&admin_url(), tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot reach the test cluster at {:?}: {e}. Run the tests with `scripts/dev test`, \
                 or start a cluster and set BIZOS_TEST_ADMIN_URL.",
                admin_url()
            )
        });
    tokio::spawn(conn);
    client
}

async fn template() -> &'static str {
    TEMPLATE
        .get_or_init(|| async {
            let name = format!("bizos_tpl_{:016x}", bizos_sql::fingerprint());
            let admin = admin().await;
            admin
                .execute(
                    "select pg_advisory_lock(hashtext('bizos.test-template'))",
                    &[],
                )
                .await
                .unwrap();
            let exists = admin
                .query_opt("select 1 from pg_database where datname = $1", &[&name])
                .await
                .unwrap()
                .is_some();
            if !exists {
                // Build under another name and rename when complete, so a
                // failed build never leaves a half-migrated template.
                let building = format!("{name}_building");
                admin
                    .batch_execute(&format!("drop database if exists {building} with (force)"))
                    .await
                    .unwrap();
                let opts = bizos_sql::BootstrapOptions {
                    database: building.clone(),
                    passwords: vec![],
                };
                bizos_sql::bootstrap(&admin_url(), &opts)
                    .await
                    .expect("bootstrap the template");
                bizos_sql::migrate(&url_for("bizos_owner", &building), None)
                    .await
                    .expect("migrate the template");
                admin
                    .batch_execute(&format!("alter database {building} rename to {name}"))
                    .await
                    .unwrap();
            }
            admin
                .execute(
                    "select pg_advisory_unlock(hashtext('bizos.test-template'))",
                    &[],
                )
                .await
                .unwrap();
            name
        })
        .await
}

/// A fresh, migrated database of its own for one test.
pub struct TestDb {
    pub name: String,
    /// bizos_owner: owns the tables (not subject to RLS), runs migrations.
    pub owner: PgPool,
    /// bizos_app: the BFF's login role.
    pub app: PgPool,
    /// On the tests' Citus cluster ([`TestDb::on_citus`]).
    citus: bool,
}

impl TestDb {
    pub async fn new() -> TestDb {
        watchdog::watch();
        let template = template().await;
        let name = format!("t_{}", Uuid::new_v4().simple());
        let admin = admin().await;
        admin
            .batch_execute(&format!(
                "create database {name} template {template} owner bizos_owner"
            ))
            .await
            .expect("clone the template database");
        bizos_sql::apply_database_settings(&admin_url(), &name)
            .await
            .unwrap();
        TestDb {
            owner: pool(&url_for("bizos_owner", &name)),
            app: pool(&url_for("bizos_app", &name)),
            name,
            citus: false,
        }
    }

    /// A database of its own on the tests' Citus cluster, bootstrapped and
    /// migrated there (about 15 s), for tests that run on both. It is left
    /// to the throw-away cluster when the test ends.
    pub async fn on_citus() -> TestDb {
        watchdog::watch();
        let name = crate::citus_cluster::own_database(&format!(
            "t{}",
            &Uuid::new_v4().simple().to_string()[..8]
        ))
        .await;
        let url = |user: &str| {
            // Citus turns TLS on with a self-signed certificate.
            format!(
                "{}?sslmode=disable",
                crate::citus_cluster::url_for(user, &name)
            )
        };
        TestDb {
            owner: pool(&url("bizos_owner")),
            app: pool(&url("bizos_app")),
            name,
            citus: true,
        }
    }

    /// Whether the database is on the tests' Citus cluster.
    pub fn is_citus(&self) -> bool {
        self.citus
    }

    pub fn url(&self, user: &str) -> String {
        if self.citus {
            format!(
                "{}?sslmode=disable",
                crate::citus_cluster::url_for(user, &self.name)
            )
        } else {
            url_for(user, &self.name)
        }
    }

    /// A pool for any role of the cluster, connected to this database.
    pub fn pool_as(&self, user: &str) -> PgPool {
        pool(&self.url(user))
    }

    /// Creates a tenant (as the owner) and returns its id.
    pub async fn create_tenant(&self, slug: &str) -> Uuid {
        sqlx::query_scalar("select tenant_create($1, $2)")
            .bind(slug)
            .bind(format!("Tenant {slug}"))
            .fetch_one(&self.owner)
            .await
            .expect("create tenant")
    }

    /// Two demo tenants, tenant-a and tenant-b, seeded at small scale by
    /// sql/demo/demo.sql through the real RPCs; returns their ids.
    pub async fn seed_demo_tenants(&self) -> (Uuid, Uuid) {
        sqlx::raw_sql(include_str!("../../sql/demo/demo.sql"))
            .execute(&self.owner)
            .await
            .expect("demo functions");
        let mut ids = Vec::new();
        for (slug, name) in [("tenant-a", "Tenant A"), ("tenant-b", "Tenant B")] {
            sqlx::query("select demo.seed($1, $2, 0.02)")
                .bind(slug)
                .bind(name)
                .execute(&self.owner)
                .await
                .expect("seed");
            ids.push(
                sqlx::query_scalar::<_, Uuid>("select tenant_id from tenants where slug = $1")
                    .bind(slug)
                    .fetch_one(&self.owner)
                    .await
                    .expect("seeded tenant"),
            );
        }
        (ids[0], ids[1])
    }

    /// Creates a user profile (as the owner) and returns the user as a caller.
    pub async fn create_user(&self, tenant: Uuid, role: &str) -> Caller {
        let user = Uuid::new_v4();
        sqlx::query(
            "insert into profiles (tenant_id, user_id, email, full_name, app_role, dept_code)
             values ($1, $2, $3, $4, $5, case when $5 = 'ops' then 'OPS' end)",
        )
        .bind(tenant)
        .bind(user)
        .bind(format!("{}@example.test", user.simple()))
        .bind(format!("User {role}"))
        .bind(role)
        .execute(&self.owner)
        .await
        .expect("create profile");
        caller(tenant, user, role)
    }

    /// Puts `member` in `boss`'s team (profiles.manager_user_id).
    pub async fn set_manager(&self, member: &Caller, boss: &Caller) {
        sqlx::query("update profiles set manager_user_id = $1 where user_id = $2")
            .bind(boss.user_id)
            .bind(member.user_id)
            .execute(&self.owner)
            .await
            .expect("set manager");
    }

    /// A transaction exactly as the BFF opens one for `caller`: the path
    /// users take, so `authenticate_request()` checks the caller's profile
    /// and tenant and the profile's app role replaces the claim's. Panics
    /// when the database refuses the caller (see [`TestDb::try_as_user`]).
    pub async fn as_user(&self, caller: &Caller) -> Transaction<'static, Postgres> {
        self.try_as_user(caller).await.expect("begin as user")
    }

    /// [`TestDb::as_user`], with the BFF's error when the database refuses
    /// the caller (no profile, deactivated, tenant suspended).
    pub async fn try_as_user(
        &self,
        caller: &Caller,
    ) -> Result<Transaction<'static, Postgres>, bizos_bff::error::ApiError> {
        bizos_bff::db::begin_as(&self.app, caller).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.citus {
            return;
        }
        let name = self.name.clone();
        // Drop runs outside any runtime we may block; use a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let (client, conn) = tokio_postgres::connect(&admin_url(), tokio_postgres::NoTls)
                    .await
                    .ok()?;
                tokio::spawn(conn);
                client
                    .batch_execute(&format!("drop database if exists {name} with (force)"))
                    .await
                    .ok()
            })
        })
        .join();
    }
}

fn pool(url: &str) -> PgPool {
    let options: PgConnectOptions = url.parse().expect("valid test DSN");
    PgPoolOptions::new()
        .max_connections(5)
        .acquire_timeout(Duration::from_secs(30))
        .connect_lazy_with(options)
}

/// Today for the tenants tests create: their time zone is the default,
/// Asia/Jakarta (UTC+7 all year), and "today" in the database is the
/// tenant's, which is already tomorrow for UTC from 17:00.
pub fn tenant_today() -> chrono::NaiveDate {
    (chrono::Utc::now() + chrono::Duration::hours(7)).date_naive()
}

/// A caller as the BFF would build it from a verified token whose
/// `app_role` claim is `role` (the database uses the profile's role).
/// For role `integration` the caller is an API key's principal, with the
/// claim only the BFF gives a verified key.
pub fn caller(tenant: Uuid, user: Uuid, role: &str) -> Caller {
    let claims = serde_json::json!({"sub": user, "tenant_id": tenant, "app_role": role, "exp": 4_102_444_800_i64});
    let mut caller = match claims {
        serde_json::Value::Object(map) => caller_from_claims(map).expect("valid test claims"),
        _ => unreachable!(),
    };
    if role == "integration" {
        caller.claims["principal"] = serde_json::json!("api_key");
    }
    caller
}

pub const TEST_JWT_SECRET: &str = "test-secret-test-secret-test-secret!";

/// The webhook master key of the tests' BFF and worker (BIZOS_WEBHOOKS_MASTER_KEY).
pub const TEST_WEBHOOKS_MASTER_KEY: &str = "HxwdHhscGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=";

/// The webhook settings of the tests (the master key above, loopback
/// endpoints allowed: the tests' receivers listen on 127.0.0.1) with
/// `overrides` (BIZOS_WEBHOOKS_* variables; an empty value unsets one).
pub fn test_webhook_settings(
    overrides: &HashMap<String, String>,
) -> bizos_bff::webhooks::WebhookSettings {
    let mut env: HashMap<String, String> = HashMap::from([
        (
            "BIZOS_WEBHOOKS_MASTER_KEY".into(),
            TEST_WEBHOOKS_MASTER_KEY.into(),
        ),
        ("BIZOS_WEBHOOKS_ALLOW_LOOPBACK".into(), "1".into()),
    ]);
    for (k, v) in overrides {
        if k.starts_with("BIZOS_WEBHOOKS_") {
            env.insert(k.clone(), v.clone());
        }
    }
    bizos_bff::webhooks::WebhookSettings::from_lookup(|k| env.get(k).cloned())
        .expect("test webhook settings")
}

/// A running BFF on a free port, talking to `db` as bizos_app.
pub struct TestApp {
    pub address: String,
    pub http: reqwest::Client,
    /// The storage directory of the app's files (removed on drop).
    pub files: tempfile::TempDir,
    _shutdown: tokio::sync::oneshot::Sender<()>,
    _worker_shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// A bearer token for `caller` (with its `app_role` claim, if any),
    /// signed with the app's HS256 secret.
    pub fn token(&self, caller: &Caller) -> String {
        issue_token(
            TEST_JWT_SECRET.as_bytes(),
            caller.tenant_id,
            caller.user_id,
            caller.claims["app_role"].as_str(),
            Duration::from_secs(600),
        )
        .unwrap()
    }

    pub async fn get_as(&self, caller: &Caller, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(self.token(caller))
            .send()
            .await
            .expect("request")
    }

    /// A request as `caller`, with an Idempotency-Key when given.
    pub fn request_as(
        &self,
        caller: &Caller,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let mut req = self
            .http
            .request(method, self.url(path))
            .bearer_auth(self.token(caller));
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        req
    }

    /// POSTs JSON as `caller`; returns the status and the JSON body.
    pub async fn post_json(
        &self,
        caller: &Caller,
        path: &str,
        body: &serde_json::Value,
        key: Option<&str>,
    ) -> (u16, serde_json::Value) {
        let res = self
            .request_as(caller, reqwest::Method::POST, path, key)
            .json(body)
            .send()
            .await
            .expect("request");
        status_and_json(res).await
    }

    /// PATCHes JSON as `caller`; returns the status and the JSON body.
    pub async fn patch_json(
        &self,
        caller: &Caller,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let res = self
            .request_as(caller, reqwest::Method::PATCH, path, None)
            .json(body)
            .send()
            .await
            .expect("request");
        status_and_json(res).await
    }

    /// GETs as `caller`; returns the status and the JSON body.
    pub async fn get_json(&self, caller: &Caller, path: &str) -> (u16, serde_json::Value) {
        status_and_json(self.get_as(caller, path).await).await
    }

    /// POSTs a multipart form (text fields, then `file`) as `caller`.
    pub async fn upload(
        &self,
        caller: &Caller,
        path: &str,
        fields: &[(&str, &str)],
        file_name: &str,
        bytes: Vec<u8>,
        key: Option<&str>,
    ) -> (u16, serde_json::Value) {
        let mut form = reqwest::multipart::Form::new();
        for (k, v) in fields {
            form = form.text(k.to_string(), v.to_string());
        }
        form = form.part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(file_name.to_string()),
        );
        let res = self
            .request_as(caller, reqwest::Method::POST, path, key)
            .multipart(form)
            .send()
            .await
            .expect("request");
        status_and_json(res).await
    }
}

/// The status and JSON body of a response (Null when the body is not JSON).
pub async fn status_and_json(res: reqwest::Response) -> (u16, serde_json::Value) {
    let status = res.status().as_u16();
    let body = res.json().await.unwrap_or(serde_json::Value::Null);
    (status, body)
}

/// Starts the BFF against `db` with the default test settings.
pub async fn spawn_app(db: &TestDb) -> TestApp {
    spawn_app_with(db, &[]).await
}

/// Starts the BFF with extra or overriding `BIZOS_*` settings (an empty
/// value unsets a default).
pub async fn spawn_app_with(db: &TestDb, overrides: &[(&str, &str)]) -> TestApp {
    spawn_app_at(db.url("bizos_app"), Some(db), overrides).await
}

/// Starts the BFF on the database at `app_url` (its bizos_app login), with
/// a worker beside it when `worker_db` is given (the test cluster's
/// databases); other clusters (Citus) get the BFF alone.
pub async fn spawn_app_at(
    app_url: String,
    worker_db: Option<&TestDb>,
    overrides: &[(&str, &str)],
) -> TestApp {
    watchdog::watch();
    if std::env::var("TEST_LOG").is_ok() {
        bizos_bff::telemetry::init(bizos_bff::config::LogFormat::Pretty, "debug,sqlx=info");
    }
    let files = tempfile::tempdir().expect("a storage directory");
    let mut env: HashMap<String, String> = HashMap::from([
        ("BIZOS_LISTEN".into(), "127.0.0.1:0".into()),
        ("BIZOS_DATA_DIR".into(), files.path().display().to_string()),
        ("BIZOS_APP_URL".into(), app_url),
        ("BIZOS_JWT_SECRET".into(), TEST_JWT_SECRET.into()),
        ("BIZOS_DB_MAX_CONNECTIONS".into(), "5".into()),
        ("BIZOS_SHUTDOWN_GRACE_SECS".into(), "1".into()),
        (
            "BIZOS_WEBHOOKS_MASTER_KEY".into(),
            TEST_WEBHOOKS_MASTER_KEY.into(),
        ),
        ("BIZOS_WEBHOOKS_ALLOW_LOOPBACK".into(), "1".into()),
    ]);
    if let Ok(dir) = std::env::var("BIZOS_KB_MODEL_DIR") {
        env.insert("BIZOS_KB_MODEL_DIR".into(), dir);
    }
    for (k, v) in overrides {
        env.insert((*k).into(), (*v).into());
    }
    let settings = Settings::from_lookup(|k| env.get(k).cloned()).expect("test settings");
    // The worker sweeps the app's storage (storage.sweep).
    let storage = settings.storage.clone();
    let app = Application::build(settings).await.expect("build the app");
    let port = app.port();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    // Background work (import processing) runs in a worker beside the app,
    // as `scripts/dev up` runs one beside the BFF.
    let batch_rows = env
        .get("BIZOS_IMPORT_BATCH_ROWS")
        .map_or(2000, |v| v.parse().expect("BIZOS_IMPORT_BATCH_ROWS"));
    // TEST_WORKER=off: no worker (tests that run their own `bizos worker`).
    let worker_tx = match worker_db {
        Some(db) if env.get("TEST_WORKER").map(String::as_str) != Some("off") => Some(
            spawn_worker_settings(WorkerSettings {
                webhooks: test_webhook_settings(&env),
                ..worker_settings(db, batch_rows, storage)
            })
            .await,
        ),
        _ => None,
    };
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        // A request that never ends fails the test naming it, well before
        // the watchdog stops the suite.
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(300))
            .build()
            .expect("an HTTP client"),
        files,
        _shutdown: tx,
        _worker_shutdown: worker_tx,
    }
}

/// The settings of an in-process test worker for `db` (as bizos_worker):
/// no e-mail, no trace export, a free health port; `storage` is where
/// `storage.sweep` removes the bytes of dead uploads. Tests change fields
/// with struct update syntax (`WorkerSettings { mail, ..worker_settings(..) }`).
pub fn worker_settings(
    db: &TestDb,
    import_batch_rows: u32,
    storage: bizos_bff::config::StorageSettings,
) -> WorkerSettings {
    WorkerSettings {
        database_url: db.url("bizos_worker").into(),
        concurrency: 4,
        poll_interval: Duration::from_secs(1),
        shutdown_grace: Duration::from_secs(1),
        health_listen: "127.0.0.1:0".parse().unwrap(),
        name: format!("test-worker-{}", Uuid::new_v4().simple()),
        import_batch_rows,
        purge_every: Duration::from_secs(3600),
        schedules_every: Duration::from_secs(60),
        mail: None,
        kb_model_dir: std::env::var_os("BIZOS_KB_MODEL_DIR").map(Into::into),
        metrics_token: None,
        index_maintenance_url: Some(db.url("bizos_owner").into()),
        otel: OtelSettings {
            endpoint: None,
            service_name: "bizos-worker".into(),
            schedule_delay: Duration::from_secs(5),
        },
        storage,
        upload_timeout: Duration::from_secs(900),
        sweep_every: Duration::from_secs(300),
        llm: bizos_bff::llm::LlmSettings::from_lookup(|_| None).expect("default LLM settings"),
        webhooks: test_webhook_settings(&HashMap::new()),
        secrets_file: None,
        placement_pool_max: 4,
        db_total_connections: 64,
    }
}

/// Starts an in-process `bizos worker` against `db` (as bizos_worker); it
/// stops when the returned sender is dropped.
pub async fn spawn_worker(
    db: &TestDb,
    import_batch_rows: u32,
    storage: bizos_bff::config::StorageSettings,
) -> tokio::sync::oneshot::Sender<()> {
    spawn_worker_settings(worker_settings(db, import_batch_rows, storage)).await
}

/// A worker as [`spawn_worker`] that enqueues the sweeps of dead uploads
/// every `sweep_every`.
pub async fn spawn_worker_with(
    db: &TestDb,
    storage: bizos_bff::config::StorageSettings,
    sweep_every: Duration,
) -> tokio::sync::oneshot::Sender<()> {
    spawn_worker_settings(WorkerSettings {
        sweep_every,
        ..worker_settings(db, 2000, storage)
    })
    .await
}

async fn spawn_worker_settings(settings: WorkerSettings) -> tokio::sync::oneshot::Sender<()> {
    start_worker(settings).await.stop
}

/// A running in-process worker.
pub struct TestWorker {
    /// Dropping (or firing) it shuts the worker down: running jobs get the
    /// grace period, then its trace exporter is flushed.
    pub stop: tokio::sync::oneshot::Sender<()>,
    /// Its health port (`/healthz`, `/readyz`, `/metrics` on 127.0.0.1).
    pub health_port: u16,
    /// Ends when the worker has stopped (and flushed).
    pub stopped: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Starts an in-process worker with `settings`.
pub async fn start_worker(settings: WorkerSettings) -> TestWorker {
    watchdog::watch();
    let worker = Worker::build(settings).await.expect("build the worker");
    let health_port = worker.health_port();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let stopped = tokio::spawn(worker.run_until(async {
        let _ = rx.await;
    }));
    TestWorker {
        stop,
        health_port,
        stopped,
    }
}

/// Runs one SQL call returning a JSON value (an RPC) as `who`, binding
/// `args` as jsonb, in a transaction of its own that is committed.
pub async fn rpc(
    db: &TestDb,
    who: &Caller,
    sql: &str,
    args: &[serde_json::Value],
) -> Result<serde_json::Value, sqlx::Error> {
    let mut tx = db.as_user(who).await;
    let mut q = sqlx::query_scalar::<_, serde_json::Value>(sql);
    for a in args {
        q = q.bind(a.clone());
    }
    let out = q.fetch_one(&mut *tx).await?;
    tx.commit().await?;
    Ok(out)
}

/// Records an upload to `bucket` as `who` (the intent and the object row,
/// as the BFF writes them; no bytes); the object's id.
pub async fn upload_record(
    db: &TestDb,
    who: &Caller,
    bucket: &str,
    file_name: &str,
    content_type: &str,
) -> Uuid {
    let mut tx = db.as_user(who).await;
    let intent: serde_json::Value = sqlx::query_scalar("select upload_begin($1)")
        .bind(bucket)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    let object: Uuid = intent["object_id"].as_str().unwrap().parse().unwrap();
    sqlx::query("select object_create($1)")
        .bind(
            serde_json::json!({"object_id": object, "bucket": bucket, "file_name": file_name,
                                 "content_type": content_type, "size_bytes": 100,
                                 "sha256": "cd".repeat(32)}),
        )
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    object
}

/// The SQLSTATE of a database error ("" for other errors).
pub fn code(err: &sqlx::Error) -> String {
    err.as_database_error()
        .and_then(|e| e.code())
        .unwrap_or_default()
        .to_string()
}

/// The field a database error names (its COLUMN), as the BFF reports it.
pub fn field(err: &sqlx::Error) -> Option<String> {
    err.as_database_error()
        .and_then(|e| e.try_downcast_ref::<sqlx::postgres::PgDatabaseError>())
        .and_then(|e| e.column())
        .map(str::to_owned)
}

/// A JSON number, or a number sent as a string (numeric values in jsonb).
pub fn num(v: &serde_json::Value) -> f64 {
    match v {
        serde_json::Value::Number(n) => n.as_f64().expect("a finite number"),
        serde_json::Value::String(s) => s.parse().expect("a numeric string"),
        other => panic!("not a number: {other}"),
    }
}
