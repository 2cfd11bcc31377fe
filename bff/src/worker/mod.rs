//! `bizos worker`: runs the durable jobs of the `jobs` table (migration V21,
//! sql/api/jobs.sql).
//!
//! The loop claims up to its free slots with `job_claim` (leases, per-tenant
//! round-robin, priorities: all in the database), runs each job's
//! [`Handler`] in a task of its own, heartbeats while it runs (extending the
//! lease; a `false` means the job was cancelled or the lease lost, and the
//! handler is dropped), then completes or fails it. With free slots and
//! nothing due it lists itself as waiting (`job_listen`, [`listing`]) and
//! sleeps on LISTEN `bizos_jobs` (an enqueue notifies while a worker is
//! listed; the NOTIFY arrives when the enqueuing transaction commits), so
//! an idle worker starts a new job within milliseconds; the poll interval is
//! only a fallback (a lost connection, jobs whose `run_at` arrives).
//!
//! A job a user created runs as that user: [`Job::begin`] opens a
//! transaction with the user's claims, exactly as a request of theirs
//! (`db::begin_as`). System jobs call SECURITY DEFINER functions granted to
//! the worker's login.
//!
//! Shutdown (SIGTERM/SIGINT): no more claims; running jobs get the grace
//! period to finish, the rest are aborted (their transactions roll back)
//! and released (`job_release`: queued again, the attempt not counted).
//!
//! Observability (OPS-18): every run ends in [`record_outcome`] (log line
//! and the `bizos_jobs_*` series); the health port also serves `/metrics`.
//! With `OTEL_EXPORTER_OTLP_ENDPOINT` each run is a `job` span whose parent
//! is the span that enqueued the job (the request's traceparent stored in
//! `jobs.trace_context`), so one trace runs from the request through its
//! database calls to the job and the job's own database calls; the
//! exporter is flushed on shutdown.

mod handlers;
mod health;
mod listing;
mod settings;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgListener};
use sqlx::{PgPool, Postgres, Transaction};
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::auth::Caller;
use crate::metrics::JobOutcome;
use crate::telemetry::{db_call, Tracing};

pub use handlers::{handlers, EmailSend, IdempotencyPurge, ImportProcess, StorageSweep};
pub use settings::{WorkerArgs, WorkerSettings};

/// The NOTIFY channel of sql/api/jobs.sql.
pub const CHANNEL: &str = "bizos_jobs";

/// Why a job failed: a retryable failure is tried again after a backoff
/// (until the kind's max_attempts), a permanent one is dead at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobError {
    Retryable(String),
    Permanent(String),
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobError::Retryable(m) | JobError::Permanent(m) => f.write_str(m),
        }
    }
}

impl JobError {
    /// A database error: connection trouble, serialization failures,
    /// deadlocks, timeouts and lack of resources are worth another try;
    /// anything else (a refused caller, bad data) is not.
    pub fn from_db(e: &sqlx::Error) -> JobError {
        let retryable = match e {
            sqlx::Error::Database(d) => {
                crate::error::transient(&d.code().unwrap_or_default()).is_some()
            }
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_) => true,
            _ => false,
        };
        if retryable {
            JobError::Retryable(e.to_string())
        } else {
            JobError::Permanent(e.to_string())
        }
    }
}

impl From<sqlx::Error> for JobError {
    fn from(e: sqlx::Error) -> Self {
        JobError::from_db(&e)
    }
}

/// What a job kind does. One handler per kind (`job_kinds`); the worker
/// claims only the kinds it has handlers for.
pub trait Handler: Send + Sync + 'static {
    fn kind(&self) -> &'static str;
    fn run<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), JobError>>;
}

/// A claimed job, as handlers see it.
pub struct Job {
    pub job_id: Uuid,
    pub tenant_id: Uuid,
    pub kind: String,
    pub payload: Value,
    /// 1 for the first claim.
    pub attempt: i32,
    pub max_attempts: i32,
    /// The user who enqueued it; None for system jobs.
    pub created_by: Option<Uuid>,
    pub request_id: Option<String>,
    /// W3C traceparent/tracestate of the span that enqueued it.
    pub trace_context: Option<Value>,
    /// Progress recorded by an earlier attempt (a resumed job).
    pub progress_done: Option<i64>,
    pub progress_total: Option<i64>,
    pool: PgPool,
    worker: Arc<str>,
    lost: AtomicBool,
}

impl Job {
    /// The worker's pool (its own login).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Whether the job stopped being this worker's (cancelled, or its
    /// lease lost): a handler then leaves its work alone.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// The user who created the job, as a request of theirs would carry
    /// them (the database takes the app role from the profile).
    pub fn caller(&self) -> Result<Caller, JobError> {
        let user_id = self.created_by.ok_or_else(|| {
            JobError::Permanent(format!(
                "job {} of kind {} has no creator to run as",
                self.job_id, self.kind
            ))
        })?;
        Ok(Caller {
            user_id,
            tenant_id: self.tenant_id,
            claims: serde_json::json!({"sub": user_id, "tenant_id": self.tenant_id}),
            request_id: self.request_id.clone(),
        })
    }

    /// A transaction as the job's creator (their claims, RLS, their
    /// account checks), with the request id of the request that enqueued it.
    pub async fn begin(&self) -> Result<Transaction<'static, Postgres>, JobError> {
        let caller = self.caller()?;
        job_transaction(crate::db::begin_as(&self.pool, &caller).await)
    }

    /// A transaction of a system job, as the worker's login (no user's
    /// claims): the transaction block [`crate::db::begin_as`] opens for a
    /// user's job, without the switch to that user. Call a SECURITY DEFINER
    /// function that sets settings for what it calls (`SET LOCAL`) in one:
    /// on Citus only a transaction block carries them to the workers.
    pub async fn begin_system(&self) -> Result<Transaction<'static, Postgres>, JobError> {
        job_transaction(crate::db::begin(&self.pool).await)
    }

    /// Records progress and extends the lease. An error means the job is
    /// no longer this worker's (cancelled, or its lease ran out and another
    /// worker has it): stop.
    pub async fn progress(&self, done: i64, total: i64) -> Result<(), JobError> {
        match heartbeat(self, Some(done), Some(total)).await {
            Ok(true) => Ok(()),
            Ok(false) => {
                self.lost.store(true, Ordering::SeqCst);
                Err(JobError::Permanent(
                    "the job was cancelled or its lease was lost".into(),
                ))
            }
            Err(e) => Err(JobError::from_db(&e)),
        }
    }
}

/// A job's transaction, or why there is none: an unreachable database is
/// worth a retry, a refusal (the user's account) is not.
fn job_transaction(
    begun: crate::error::Result<Transaction<'static, Postgres>>,
) -> Result<Transaction<'static, Postgres>, JobError> {
    begun.map_err(|e| match e {
        crate::error::ApiError::Unavailable(m) | crate::error::ApiError::Overloaded(m) => {
            JobError::Retryable(m)
        }
        crate::error::ApiError::Internal(e) => JobError::Retryable(format!("{e:#}")),
        other => JobError::Permanent(other.to_string()),
    })
}

/// A job this worker runs: its tenant, kind and start.
type Running = (Uuid, String, Instant);

/// The job's tenant goes with each call of the job's lifecycle: on Citus
/// it routes the statements to the tenant's worker.
async fn heartbeat(job: &Job, done: Option<i64>, total: Option<i64>) -> Result<bool, sqlx::Error> {
    db_call(
        "job_heartbeat",
        sqlx::query_scalar("select job_heartbeat($1, $2, $3, $4, $5)")
            .bind(job.job_id)
            .bind(&*job.worker)
            .bind(done)
            .bind(total)
            .bind(job.tenant_id)
            .fetch_one(&job.pool),
    )
    .await
}

/// Every finished run of a job passes here: a log line and the job
/// metrics (`bizos_jobs_finished_total`, `bizos_job_duration_seconds`,
/// `bizos_jobs_dead_letters_total` by kind and outcome).
pub fn record_outcome(kind: &str, outcome: JobOutcome, run_time: Duration, error: Option<&str>) {
    crate::metrics::job_finished(kind, outcome, run_time.as_secs_f64());
    match outcome {
        JobOutcome::Succeeded | JobOutcome::Released => {
            tracing::info!(
                kind,
                outcome = outcome.as_str(),
                run_ms = run_time.as_millis() as u64,
                "job finished"
            )
        }
        _ => tracing::warn!(
            kind,
            outcome = outcome.as_str(),
            run_ms = run_time.as_millis() as u64,
            error = error.unwrap_or_default(),
            "job finished"
        ),
    }
}

/// A worker: its pool, handlers and the jobs it runs.
pub struct Worker {
    pool: PgPool,
    listener: PgListener,
    settings: WorkerSettings,
    handlers: HashMap<&'static str, Arc<dyn Handler>>,
    health: health::Health,
    health_listener: Option<tokio::net::TcpListener>,
    /// The trace exporter jobs run under, when configured.
    tracing: Option<Tracing>,
}

impl Worker {
    /// Connects (refusing a privileged login), listens for NOTIFY and binds
    /// the health port (0 picks a free one: [`Worker::health_port`]).
    pub async fn build(settings: WorkerSettings) -> anyhow::Result<Self> {
        use secrecy::ExposeSecret;
        let options: PgConnectOptions = settings
            .database_url
            .expose_secret()
            .parse()
            .map_err(|e| anyhow::anyhow!("BIZOS_WORKER_URL is invalid: {e}"))?;
        let pool = crate::db::pool_options()
            .max_connections(settings.concurrency as u32 * 2 + 2)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.application_name("bizos-worker"))
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect with BIZOS_WORKER_URL: {e}"))?;
        crate::db::ensure_unprivileged(&pool).await?;
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CHANNEL).await?;
        let handlers = handlers(&settings, &pool)?
            .into_iter()
            .map(|h| (h.kind(), h))
            .collect();
        // The process's metrics recorder (before the first job records).
        crate::metrics::handle();
        let tracing = Tracing::from_settings(&settings.otel)?;
        let health_listener = tokio::net::TcpListener::bind(settings.health_listen)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot listen on {} (BIZOS_WORKER_HEALTH_LISTEN): {e}",
                    settings.health_listen
                )
            })?;
        Ok(Worker {
            health: health::Health::new(pool.clone(), settings.metrics_token.clone()),
            pool,
            listener,
            settings,
            handlers,
            health_listener: Some(health_listener),
            tracing,
        })
    }

    pub fn health_port(&self) -> u16 {
        self.health_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .map_or(0, |a| a.port())
    }

    /// Runs until SIGTERM/SIGINT.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(crate::shutdown::signal()).await
    }

    /// Runs until `signal` completes.
    pub async fn run_until(
        mut self,
        signal: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let worker: Arc<str> = Arc::from(self.settings.name.as_str());
        let kinds: Vec<String> = self.handlers.keys().map(|k| k.to_string()).collect();
        tracing::info!(worker = %worker, concurrency = self.settings.concurrency, ?kinds,
                       health_port = self.health_port(), "bizos worker started");
        let mut health_server = {
            let router = health::router(self.health.clone());
            let listener = self
                .health_listener
                .take()
                .ok_or_else(|| anyhow::anyhow!("the worker runs once"))?;
            let mut tasks = JoinSet::new();
            tasks.spawn(async move { axum::serve(listener, router).await });
            tasks
        };
        tokio::pin!(signal);
        // The running jobs: kind and start, for the ones released at shutdown.
        let running: Arc<Mutex<HashMap<Uuid, Running>>> = Arc::default();
        let mut tasks: JoinSet<()> = JoinSet::new();
        // The first upkeep after one period (a worker restarted often still
        // enqueues once per period: the dedup key is the period).
        let mut upkeep = tokio::time::interval_at(
            tokio::time::Instant::now() + self.settings.purge_every,
            self.settings.purge_every,
        );
        upkeep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Sweeps at once (a crashed BFF's uploads), then every period.
        let mut sweeps = tokio::time::interval(self.settings.sweep_every);
        sweeps.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Schedules: at start (catch-up after an outage), then every period.
        let mut schedules = tokio::time::interval(self.settings.schedules_every);
        schedules.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.health.set_ready(true);
        let mut listing =
            listing::Listing::new(worker.clone(), kinds.clone(), self.settings.poll_interval);

        loop {
            let free = self.settings.concurrency.saturating_sub(tasks.len());
            let mut claimed = 0;
            if free > 0 {
                match self.claim(&worker, free, &kinds).await {
                    Ok(jobs) => {
                        claimed = jobs.len();
                        for job in jobs {
                            running.lock().expect("running jobs").insert(
                                job.job_id,
                                (job.tenant_id, job.kind.clone(), Instant::now()),
                            );
                            let handler = self.handlers.get(job.kind.as_str()).cloned();
                            let running = running.clone();
                            let run = async move {
                                let id = job.job_id;
                                run_job(job, handler).await;
                                running.lock().expect("running jobs").remove(&id);
                            };
                            match &self.tracing {
                                Some(t) => tasks.spawn(t.traced(run)),
                                None => tasks.spawn(run),
                            };
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "claiming jobs failed; retrying shortly");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                }
            }
            // All slots filled by due jobs: look again at once when one frees.
            let full = free == 0 || claimed == free;
            if full {
                listing.busy(&self.pool).await;
            }
            if claimed > 0 && claimed == free {
                tokio::select! {
                    _ = &mut signal => break,
                    _ = tasks.join_next(), if !tasks.is_empty() => {}
                    _ = schedules.tick() => self.fire_schedules().await,
                }
                continue;
            }
            // Free slots and nothing due: wait for a NOTIFY. Newly listed,
            // claim once more first (see listing.rs).
            if !full && listing.waiting(&self.pool).await {
                continue;
            }
            tokio::select! {
                _ = &mut signal => break,
                n = self.listener.recv() => {
                    listing.woken();
                    if let Err(e) = n {
                        tracing::warn!(error = %e, "LISTEN connection lost; reconnecting");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
                _ = tasks.join_next(), if !tasks.is_empty() => {}
                _ = tokio::time::sleep(self.settings.poll_interval) => {}
                _ = upkeep.tick() => self.upkeep().await,
                _ = sweeps.tick() => self.enqueue_sweeps().await,
                _ = schedules.tick() => self.fire_schedules().await,
            }
        }

        self.health.set_ready(false);
        listing.busy(&self.pool).await;
        tracing::info!(running = tasks.len(), grace = ?self.settings.shutdown_grace,
                       "stopping: no more claims; waiting for running jobs");
        let drained = tokio::time::timeout(self.settings.shutdown_grace, async {
            while tasks.join_next().await.is_some() {}
        })
        .await
        .is_ok();
        if !drained {
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
            let left: Vec<(Uuid, Running)> =
                running.lock().expect("running jobs").drain().collect();
            for (job_id, (tenant_id, kind, started)) in left {
                let released: Result<bool, _> =
                    sqlx::query_scalar("select job_release($1, $2, $3)")
                        .bind(job_id)
                        .bind(&*worker)
                        .bind(tenant_id)
                        .fetch_one(&self.pool)
                        .await;
                match released {
                    Ok(_) => record_outcome(&kind, JobOutcome::Released, started.elapsed(), None),
                    Err(e) => tracing::warn!(%job_id, error = %e,
                        "could not release a job; it is claimable again when its lease runs out"),
                }
            }
        }
        health_server.abort_all();
        self.pool.close().await;
        if let Some(t) = self.tracing.take() {
            // Exports the spans still buffered (blocks: off the async threads).
            let _ = tokio::task::spawn_blocking(move || t.shutdown()).await;
        }
        Ok(())
    }

    async fn claim(
        &self,
        worker: &Arc<str>,
        max: usize,
        kinds: &[String],
    ) -> Result<Vec<Job>, sqlx::Error> {
        type Row = (
            Uuid,
            Uuid,
            String,
            Value,
            i32,
            i32,
            Option<Uuid>,
            Option<String>,
            Option<Value>,
            Option<i64>,
            Option<i64>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "select job_id, tenant_id, kind, payload, attempt, max_attempts, created_by, request_id,
                    trace_context, progress_done, progress_total
               from job_claim($1, $2, $3)",
        )
        .bind(&**worker)
        .bind(max as i32)
        .bind(kinds)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| Job {
                job_id: r.0,
                tenant_id: r.1,
                kind: r.2,
                payload: r.3,
                attempt: r.4,
                max_attempts: r.5,
                created_by: r.6,
                request_id: r.7,
                trace_context: r.8,
                progress_done: r.9,
                progress_total: r.10,
                pool: self.pool.clone(),
                worker: worker.clone(),
                lost: AtomicBool::new(false),
            })
            .collect())
    }

    /// Enqueues the jobs of the schedules that are due (`schedules_fire_due`,
    /// sql/api/schedules.sql), for databases pg_cron does not reach; beside
    /// pg_cron it is harmless (a period has one job). A failure only logs.
    async fn fire_schedules(&self) {
        let fired: Result<i32, _> = sqlx::query_scalar("select schedules_fire_due()")
            .fetch_one(&self.pool)
            .await;
        match fired {
            Ok(n) if n > 0 => tracing::info!(jobs = n, "due schedules fired"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "firing the due schedules failed"),
        }
        // Webhook deliveries overdue without a job to deliver them (one was
        // dead-lettered): a job for their tenant.
        let overdue: Result<i32, _> = sqlx::query_scalar("select webhook_deliver_overdue()")
            .fetch_one(&self.pool)
            .await;
        match overdue {
            Ok(n) if n > 0 => tracing::info!(jobs = n, "overdue webhook deliveries requeued"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "requeueing overdue webhook deliveries failed"),
        }
    }

    /// Periodic system work, enqueued as jobs (one per tenant and period:
    /// several workers enqueue it once).
    async fn upkeep(&self) {
        let period = self.settings.purge_every.as_secs().max(1);
        let result: Result<i32, _> = sqlx::query_scalar(
            "select job_enqueue_every_tenant('idempotency.purge', '{}',
                      'idempotency.purge:' || (floor(extract(epoch from now()) / $1)::bigint)::text)",
        )
        .bind(period as f64)
        .fetch_one(&self.pool)
        .await;
        match result {
            Ok(n) if n > 0 => tracing::info!(jobs = n, "idempotency purges enqueued"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "enqueueing the idempotency purges failed"),
        }
        // The LLM gateway's upkeep (every tenant, idempotent; several
        // workers doing it at once is harmless): expired cache entries go,
        // and generations whose llm_finish never came (a BFF killed
        // mid-call) are given back after an hour.
        let llm: Result<(i32, i32), _> =
            sqlx::query_as("select llm_cache_purge(), llm_reservations_expire(3600)")
                .fetch_one(&self.pool)
                .await;
        match llm {
            Ok((0, 0)) => {}
            Ok((purged, expired)) => {
                tracing::info!(
                    purged,
                    expired,
                    "LLM cache purged, stale reservations given back"
                )
            }
            Err(e) => tracing::warn!(error = %e, "the LLM upkeep failed"),
        }
    }
}

impl Worker {
    /// `storage.sweep` for every tenant with dead uploads and no sweep
    /// waiting (`upload_sweep_enqueue`: no job for tenants with nothing to
    /// sweep, and none beside a waiting one; two callers at the same
    /// instant may both enqueue one: the second finds nothing left).
    async fn enqueue_sweeps(&self) {
        let max_age = crate::files::sweep::max_age(self.settings.upload_timeout);
        match crate::files::sweep::enqueue(&self.pool, max_age).await {
            Ok(n) if n > 0 => tracing::info!(jobs = n, "sweeps of dead uploads enqueued"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "enqueueing the sweeps of dead uploads failed"),
        }
    }
}

/// The span of one run of `job`, named `job <kind>`: a child of the span
/// that enqueued the job (the traceparent in `jobs.trace_context`) when
/// there is one, else the root of a trace of its own. Its database calls
/// ([`db_call`], [`Job::begin`]) are its children; `outcome` (and the
/// error status) is recorded when the run ends.
pub fn job_span(job: &Job) -> tracing::Span {
    let traceparent = job
        .trace_context
        .as_ref()
        .and_then(|t| t["traceparent"].as_str());
    let span = tracing::info_span!(
        "job",
        otel.name = %format_args!("job {}", job.kind),
        otel.kind = "consumer",
        otel.status_code = tracing::field::Empty,
        job_id = %job.job_id,
        kind = %job.kind,
        tenant_id = %job.tenant_id,
        attempt = job.attempt,
        request_id = job.request_id.as_deref().unwrap_or_default(),
        traceparent = traceparent.unwrap_or_default(),
        outcome = tracing::field::Empty,
    );
    if let Some(tp) = traceparent {
        crate::telemetry::link_to_traceparent(&span, tp, true);
    }
    span
}

/// Runs one claimed job: its handler beside a heartbeat, then records the
/// outcome in the database, all in the job's span ([`job_span`]).
async fn run_job(job: Job, handler: Option<Arc<dyn Handler>>) {
    use tracing::Instrument;
    let span = job_span(&job);
    async move {
        let started = Instant::now();
        let result = match &handler {
            None => Err(JobError::Permanent(format!(
                "this worker has no handler for kind {}",
                job.kind
            ))),
            Some(handler) => run_with_heartbeat(&job, handler.as_ref()).await,
        };
        let elapsed = started.elapsed();
        let Some(result) = result_unless_lost(&job, result) else {
            tracing::Span::current().record("outcome", JobOutcome::Lost.as_str());
            record_outcome(&job.kind, JobOutcome::Lost, elapsed, None);
            return;
        };
        let pool = &job.pool;
        let outcome = match &result {
            Ok(()) => db_call("job_complete", sqlx::query_scalar::<_, bool>("select job_complete($1, $2, $3)")
                .bind(job.job_id)
                .bind(&*job.worker)
                .bind(job.tenant_id)
                .fetch_one(pool))
                .await
                .map(|ours| if ours { JobOutcome::Succeeded } else { JobOutcome::Lost }),
            Err(e) => db_call("job_fail", sqlx::query_scalar::<_, Option<String>>("select job_fail($1, $2, $3, $4, $5)")
                .bind(job.job_id)
                .bind(&*job.worker)
                .bind(e.to_string())
                .bind(matches!(e, JobError::Retryable(_)))
                .bind(job.tenant_id)
                .fetch_one(pool))
                .await
                .map(|status| match status.as_deref() {
                    Some("queued") => JobOutcome::Retry,
                    Some(_) => JobOutcome::Dead,
                    None => JobOutcome::Lost,
                }),
        };
        let span = tracing::Span::current();
        if let Ok(o) = &outcome {
            span.record("outcome", o.as_str());
        }
        if result.is_err() {
            span.record("otel.status_code", "ERROR");
        }
        match outcome {
            Ok(o) => record_outcome(&job.kind, o, elapsed, result.as_ref().err().map(|e| e.to_string()).as_deref()),
            Err(e) => tracing::warn!(error = %e,
                "could not record the job's outcome; it is claimable again when its lease runs out"),
        }
    }
    .instrument(span)
    .await
}

fn result_unless_lost(job: &Job, result: Result<(), JobError>) -> Option<Result<(), JobError>> {
    (!job.lost.load(Ordering::SeqCst)).then_some(result)
}

/// The handler's future, with a heartbeat every third of the lease; a
/// heartbeat that finds the job gone (cancelled, lease lost) drops it. A
/// panicking handler is a permanent failure.
async fn run_with_heartbeat(job: &Job, handler: &dyn Handler) -> Result<(), JobError> {
    let lease: i32 = db_call(
        "job_kinds",
        sqlx::query_scalar("select lease_secs from job_kinds where kind = $1")
            .bind(&job.kind)
            .fetch_one(&job.pool),
    )
    .await
    .unwrap_or(60);
    let every = Duration::from_secs_f64((lease as f64 / 3.0).max(1.0));
    let run = std::panic::AssertUnwindSafe(handler.run(job)).catch_unwind();
    tokio::pin!(run);
    let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            result = &mut run => {
                return result.unwrap_or_else(|_| Err(JobError::Permanent("the handler panicked".into())));
            }
            _ = beat.tick() => {
                match heartbeat(job, None, None).await {
                    Ok(true) => {}
                    Ok(false) => {
                        job.lost.store(true, Ordering::SeqCst);
                        return Err(JobError::Permanent("the job was cancelled or its lease was lost".into()));
                    }
                    Err(e) => tracing::warn!(error = %e, "heartbeat failed; trying again"),
                }
            }
        }
    }
}
