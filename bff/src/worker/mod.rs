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

mod health;

mod listing;
pub mod registry;
mod settings;
pub mod targets;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use sqlx::postgres::{PgConnectOptions, PgListener};
use sqlx::PgPool;
use tokio::task::JoinSet;
use tokio::time::{Interval, MissedTickBehavior};
use uuid::Uuid;

use crate::metrics::JobOutcome;
use crate::telemetry::Tracing;

pub use crate::job::{
    enqueue, enqueue_every_tenant, parse_args, EnqueueError, EnqueueOptions, Handler, Job, JobArgs,
    JobError, PayloadError,
};
use registry::Runner;
pub use registry::{registry, Registry};
pub use settings::{WorkerArgs, WorkerSettings};

pub use crate::job::CHANNEL;

/// A job this worker runs: its tenant, kind, start and the pool of its
/// placement (where it is released at shutdown).
type Running = (Uuid, String, Instant, PgPool);

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
    /// The control database and the placements jobs are claimed from.
    targets: targets::Targets,
    listener: PgListener,
    /// The databases of placements whose jobs notified
    /// ([`targets::Targets`] listens there).
    wakes: tokio::sync::mpsc::UnboundedReceiver<Arc<str>>,
    settings: WorkerSettings,
    registry: Registry,
    health: health::Health,
    health_listener: Option<tokio::net::TcpListener>,
    /// The trace exporter jobs run under, when configured.
    tracing: Option<Tracing>,
}

/// The state of the worker's loop while it runs.
struct Loop {
    /// Recorded in `jobs.locked_by`.
    worker: Arc<str>,
    /// The kinds it claims: those whose handlers it has.
    kinds: Vec<String>,
    tasks: JoinSet<()>,
    /// The running jobs: kind and start, for the ones released at shutdown.
    running: Arc<Mutex<HashMap<Uuid, Running>>>,
    /// The target claimed from first in the next round (turns go round,
    /// so no placement waits behind another's backlog).
    turn: usize,
    /// Idempotency purges and the LLM upkeep.
    upkeep: Interval,
    /// `storage.sweep` of dead uploads.
    sweeps: Interval,
    /// Due schedules and overdue webhook deliveries.
    schedules: Interval,
    listing: listing::Listings,
}

/// What the loop does after a wait.
enum Next {
    Claim,
    Stop,
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
        let control_max = settings.concurrency as u32 * 2 + 2;
        let pool = crate::pool::pool_options()
            .max_connections(control_max)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options.clone().application_name("bizos-worker"))
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect with BIZOS_WORKER_URL: {e}"))?;
        crate::db::ensure_unprivileged(&pool).await?;
        let (wake, wakes) = tokio::sync::mpsc::unbounded_channel();
        let targets = targets::Targets::new(
            pool.clone(),
            options,
            crate::placement::Secrets::from_env(settings.secrets_file.clone()),
            targets::Limits {
                pool_max: settings.placement_pool_max,
                total_max: settings.db_total_connections,
                control_max,
            },
            wake,
        )
        .await?;
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CHANNEL).await?;
        let registry = registry(&settings, &pool)?;
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
            targets,
            listener,
            wakes,
            settings,
            registry,
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

    /// Runs until `signal` completes: claims into its free slots, waits
    /// for a slot or for work, and on the signal lets the running jobs
    /// finish within the grace period and releases the rest.
    pub async fn run_until(
        mut self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let mut health_server = self.serve_health()?;
        let mut run = self.start();
        tokio::pin!(signal);
        loop {
            let free = self.settings.concurrency.saturating_sub(run.tasks.len());
            let claimed = if free > 0 {
                self.claim_and_spawn(&mut run, free).await
            } else {
                0
            };
            let next = if claimed > 0 && claimed == free {
                self.wait_for_a_slot(&mut run, &mut signal).await
            } else {
                self.wait_for_work(&mut run, &mut signal, free == 0).await
            };
            if let Next::Stop = next {
                break;
            }
        }
        self.drain(run).await;
        health_server.abort_all();
        // The listener's connection is the pool's: Pool::close waits for
        // every connection to come back, which a live PgListener's never does.
        drop(self.listener);
        self.targets.close().await;
        self.pool.close().await;
        if let Some(t) = self.tracing.take() {
            // Exports the spans still buffered (blocks: off the async threads).
            let _ = tokio::task::spawn_blocking(move || t.shutdown()).await;
        }
        Ok(())
    }

    /// Serves `/healthz`, `/readyz` and `/metrics` on the health port.
    fn serve_health(&mut self) -> anyhow::Result<JoinSet<std::io::Result<()>>> {
        let router = health::router(self.health.clone());
        let listener = self
            .health_listener
            .take()
            .ok_or_else(|| anyhow::anyhow!("the worker runs once"))?;
        let mut tasks = JoinSet::new();
        tasks.spawn(async move { axum::serve(listener, router).await });
        Ok(tasks)
    }

    /// The loop's state at the start: its timers and no listing yet; the
    /// worker is ready.
    fn start(&self) -> Loop {
        let worker: Arc<str> = Arc::from(self.settings.name.as_str());
        let kinds = self.registry.runnable();
        tracing::info!(worker = %worker, concurrency = self.settings.concurrency, ?kinds,
                       health_port = self.health_port(), "bizos worker started");
        let every = |period: Duration, first: tokio::time::Instant| {
            let mut timer = tokio::time::interval_at(first, period);
            timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
            timer
        };
        let now = tokio::time::Instant::now();
        let run = Loop {
            listing: listing::Listings::new(
                worker.clone(),
                kinds.clone(),
                self.settings.poll_interval,
            ),
            worker,
            kinds,
            tasks: JoinSet::new(),
            running: Arc::default(),
            turn: 0,
            // The first upkeep after one period (a worker restarted often
            // still enqueues once per period: the dedup key is the period).
            upkeep: every(self.settings.purge_every, now + self.settings.purge_every),
            // Sweeps at once (a crashed BFF's uploads), then every period.
            sweeps: every(self.settings.sweep_every, now),
            // Schedules: at start (catch-up after an outage), then every period.
            schedules: every(self.settings.schedules_every, now),
        };
        self.health.set_ready(true);
        run
    }

    /// Claims up to `free` due jobs from the targets in turn (the control
    /// database and every placement: the slots are shared by all) and runs
    /// each in a task of its own; how many. A failed claim is retried
    /// shortly.
    async fn claim_and_spawn(&mut self, run: &mut Loop, free: usize) -> usize {
        self.targets.refresh().await;
        let targets = self.targets.all();
        let first = run.turn % targets.len();
        run.turn = run.turn.wrapping_add(1);
        let mut claimed = 0;
        let mut failed = false;
        for i in 0..targets.len() {
            if claimed == free {
                break;
            }
            let target = &targets[(first + i) % targets.len()];
            let jobs = crate::job::claim(
                &target.pool,
                &target.name,
                &run.worker,
                free - claimed,
                &run.kinds,
            )
            .await;
            match jobs {
                Ok(jobs) => {
                    claimed += jobs.len();
                    self.spawn_jobs(run, jobs);
                }
                Err(e) => {
                    tracing::warn!(placement = %target.name, error = %e, "claiming jobs failed; retrying shortly");
                    failed = true;
                }
            }
        }
        if failed && claimed == 0 {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        claimed
    }

    /// Runs each claimed job in a task of its own.
    fn spawn_jobs(&self, run: &mut Loop, jobs: Vec<Job>) {
        for job in jobs {
            run.running.lock().expect("running jobs").insert(
                job.job_id,
                (
                    job.tenant_id,
                    job.kind.clone(),
                    Instant::now(),
                    job.pool().clone(),
                ),
            );
            let runner = self.registry.runner(&job.kind);
            let running = run.running.clone();
            let task = async move {
                let id = job.job_id;
                run_job(job, runner).await;
                running.lock().expect("running jobs").remove(&id);
            };
            match &self.tracing {
                Some(t) => run.tasks.spawn(t.traced(task)),
                None => run.tasks.spawn(task),
            };
        }
    }

    /// Every slot was filled by due jobs: off the waiting list, and claim
    /// again as soon as one frees (or the signal comes).
    async fn wait_for_a_slot<S: Future<Output = ()>>(
        &self,
        run: &mut Loop,
        signal: &mut Pin<&mut S>,
    ) -> Next {
        run.listing.busy().await;
        tokio::select! {
            _ = signal.as_mut() => return Next::Stop,
            _ = run.tasks.join_next(), if !run.tasks.is_empty() => {}
            _ = run.schedules.tick() => self.fire_schedules().await,
        }
        Next::Claim
    }

    /// Free slots and nothing due (or no slot at all: `full`): wait for a
    /// NOTIFY, a finished job, the poll or a timer's periodic work. Newly
    /// listed as waiting, claim once more first (see listing.rs).
    async fn wait_for_work<S: Future<Output = ()>>(
        &mut self,
        run: &mut Loop,
        signal: &mut Pin<&mut S>,
        full: bool,
    ) -> Next {
        if full {
            run.listing.busy().await;
        } else if run.listing.waiting(&self.targets.all()).await {
            return Next::Claim;
        }
        tokio::select! {
            _ = signal.as_mut() => return Next::Stop,
            n = self.listener.recv() => {
                run.listing.woken(targets::CONTROL);
                if let Err(e) = n {
                    tracing::warn!(error = %e, "LISTEN connection lost; reconnecting");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            Some(database) = self.wakes.recv() => run.listing.woken(&database),
            _ = run.tasks.join_next(), if !run.tasks.is_empty() => {}
            _ = tokio::time::sleep(self.settings.poll_interval) => {}
            _ = run.upkeep.tick() => self.upkeep().await,
            _ = run.sweeps.tick() => self.enqueue_sweeps().await,
            _ = run.schedules.tick() => self.fire_schedules().await,
        }
        Next::Claim
    }

    /// Shutdown: not ready, off the waiting list, no more claims; the
    /// running jobs get the grace period, then the rest are aborted (their
    /// transactions roll back) and released.
    async fn drain(&self, mut run: Loop) {
        self.health.set_ready(false);
        run.listing.busy().await;
        tracing::info!(running = run.tasks.len(), grace = ?self.settings.shutdown_grace,
                       "stopping: no more claims; waiting for running jobs");
        let drained = tokio::time::timeout(self.settings.shutdown_grace, async {
            while run.tasks.join_next().await.is_some() {}
        })
        .await
        .is_ok();
        if drained {
            return;
        }
        run.tasks.abort_all();
        while run.tasks.join_next().await.is_some() {}
        let left: Vec<(Uuid, Running)> =
            run.running.lock().expect("running jobs").drain().collect();
        for (job_id, (tenant_id, kind, started, pool)) in left {
            match crate::job::release(&pool, &run.worker, job_id, tenant_id).await {
                Ok(_) => record_outcome(&kind, JobOutcome::Released, started.elapsed(), None),
                Err(e) => tracing::warn!(%job_id, error = %e,
                    "could not release a job; it is claimable again when its lease runs out"),
            }
        }
    }

    /// Enqueues the jobs of the schedules that are due (`schedules_fire_due`,
    /// sql/api/schedules.sql), for databases pg_cron does not reach; beside
    /// pg_cron it is harmless (a period has one job). A failure only logs.
    async fn fire_schedules(&self) {
        let steps = [
            (
                "select schedules_fire_due()",
                "due schedules fired",
                "firing the due schedules failed",
            ),
            // Webhook deliveries overdue without a job to deliver them (one
            // was dead-lettered): a job for their tenant.
            (
                "select webhook_deliver_overdue()",
                "overdue webhook deliveries requeued",
                "requeueing overdue webhook deliveries failed",
            ),
            // The operator's month-end: a billing.month_end job per tenant
            // with an ended period or a draft past its grace period, per
            // billing day (sql/api/billing.sql).
            (
                "select billing_month_end_enqueue(true)",
                "month-end jobs enqueued",
                "enqueueing the month-end jobs failed",
            ),
            // Dunning of the operator's unpaid invoices: a billing.dunning
            // job per tenant and billing day (sql/api/payments.sql).
            (
                "select billing_dunning_enqueue()",
                "dunning jobs enqueued",
                "enqueueing the dunning jobs failed",
            ),
        ];
        for target in self.targets.all() {
            for (sql, done, failed) in steps {
                log_jobs(
                    &target,
                    sqlx::query_scalar(sql).fetch_one(&target.pool).await,
                    done,
                    failed,
                );
            }
        }
    }

    /// Periodic system work, enqueued as jobs (one per tenant and period:
    /// several workers enqueue it once), in every target.
    async fn upkeep(&self) {
        for target in self.targets.all() {
            self.upkeep_of(&target).await;
        }
    }

    async fn upkeep_of(&self, target: &targets::Target) {
        let period = self.settings.purge_every.as_secs().max(1);
        log_jobs(
            target,
            enqueue_purges(&target.pool, period).await,
            "idempotency purges enqueued",
            "enqueueing the idempotency purges failed",
        );
        // bizos_ivf indexes whose lists no longer fit their table: a
        // vector.retrain job each (sql/api/vector_indexes.sql), one per
        // index and period; the control database's only (its maintenance
        // login is the one the handler has).
        if &*target.name == targets::CONTROL {
            self.enqueue_retrains(target, period).await;
        }
        // The LLM gateway's upkeep (every tenant, idempotent; several
        // workers doing it at once is harmless): expired cache entries go,
        // and generations whose llm_finish never came (a BFF killed
        // mid-call) are given back after an hour.
        let llm: Result<(i32, i32), _> =
            sqlx::query_as("select llm_cache_purge(), llm_reservations_expire(3600)")
                .fetch_one(&target.pool)
                .await;
        match llm {
            Ok((0, 0)) => {}
            Ok((purged, expired)) => {
                tracing::info!(
                    placement = %target.name,
                    purged,
                    expired,
                    "LLM cache purged, stale reservations given back"
                )
            }
            Err(e) => {
                tracing::warn!(placement = %target.name, error = %e, "the LLM upkeep failed")
            }
        }
    }

    /// `vector_retrain_enqueue` of the period of `period` seconds.
    async fn enqueue_retrains(&self, target: &targets::Target, period: u64) {
        let period_no: Result<i64, sqlx::Error> =
            sqlx::query_scalar("select floor(extract(epoch from now()) / $1)::bigint")
                .bind(period as f64)
                .fetch_one(&target.pool)
                .await;
        let retrains = match period_no {
            Ok(p) => {
                sqlx::query_scalar::<_, i32>("select vector_retrain_enqueue($1)")
                    .bind(p)
                    .fetch_one(&target.pool)
                    .await
            }
            Err(e) => Err(e),
        };
        log_jobs(
            target,
            retrains,
            "vector index rebuilds enqueued",
            "enqueueing the vector index rebuilds failed",
        );
    }

    /// `storage.sweep` for every tenant with dead uploads and no sweep
    /// waiting (`upload_sweep_enqueue`: no job for tenants with nothing to
    /// sweep, and none beside a waiting one; two callers at the same
    /// instant may both enqueue one: the second finds nothing left).
    async fn enqueue_sweeps(&self) {
        let max_age = crate::files::sweep::max_age(self.settings.upload_timeout);
        for target in self.targets.all() {
            log_jobs(
                &target,
                crate::files::sweep::enqueue(&target.pool, max_age).await,
                "sweeps of dead uploads enqueued",
                "enqueueing the sweeps of dead uploads failed",
            );
        }
    }
}

/// `idempotency.purge` for every tenant of the database (or schema) of
/// `pool`, deduplicated by the period of `period` seconds the database's
/// clock is in (several workers agree on it).
async fn enqueue_purges(pool: &PgPool, period: u64) -> Result<i32, EnqueueError> {
    let period: i64 = sqlx::query_scalar("select floor(extract(epoch from now()) / $1)::bigint")
        .bind(period as f64)
        .fetch_one(pool)
        .await?;
    enqueue_every_tenant(
        pool,
        &crate::idempotency::IdempotencyPurgeArgs::default(),
        &format!("idempotency.purge:{period}"),
    )
    .await
}

/// The outcome of periodic work that enqueued `jobs`: a line when it did
/// any, a warning when it failed (it only logs: the next period tries
/// again).
fn log_jobs<E: std::fmt::Display>(
    target: &targets::Target,
    jobs: Result<i32, E>,
    done: &str,
    failed: &str,
) {
    let placement = &*target.name;
    match jobs {
        Ok(n) if n > 0 => tracing::info!(placement, jobs = n, "{done}"),
        Ok(_) => {}
        Err(e) => tracing::warn!(placement, error = %e, "{failed}"),
    }
}

/// The span of one run of `job`, named `job <kind>`: a child of the span
/// that enqueued the job (the traceparent in `jobs.trace_context`) when
/// there is one, else the root of a trace of its own. Its database calls
/// ([`crate::telemetry::db_call`], [`Job::begin`]) are its children;
/// `outcome` (and the error status) is recorded when the run ends.
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
        placement = job.placement(),
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
async fn run_job(job: Job, runner: Option<Arc<dyn Runner>>) {
    use tracing::Instrument;
    let span = job_span(&job);
    async move {
        let started = Instant::now();
        let result = match &runner {
            None => Err(JobError::Permanent(format!(
                "this worker has no handler for kind {}",
                job.kind
            ))),
            Some(runner) => run_with_heartbeat(&job, runner.as_ref()).await,
        };
        let elapsed = started.elapsed();
        if job.is_lost() {
            tracing::Span::current().record("outcome", JobOutcome::Lost.as_str());
            record_outcome(&job.kind, JobOutcome::Lost, elapsed, None);
            return;
        }
        let outcome = match &result {
            Ok(()) => job
                .complete()
                .await
                .map(|ours| if ours { JobOutcome::Succeeded } else { JobOutcome::Lost }),
            Err(e) => job.fail(e).await.map(|status| match status.as_deref() {
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

/// The handler's future, with a heartbeat every third of the lease; a
/// heartbeat that finds the job gone (cancelled, lease lost) drops it. A
/// panicking handler is a permanent failure.
async fn run_with_heartbeat(job: &Job, runner: &dyn Runner) -> Result<(), JobError> {
    let every = Duration::from_secs_f64((job.lease().await.as_secs_f64() / 3.0).max(1.0));
    let run = std::panic::AssertUnwindSafe(runner.run(job)).catch_unwind();
    tokio::pin!(run);
    let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            result = &mut run => {
                return result.unwrap_or_else(|_| Err(JobError::Permanent("the handler panicked".into())));
            }
            _ = beat.tick() => {
                match job.heartbeat(None, None).await {
                    Ok(true) => {}
                    Ok(false) => return Err(job.lose()),
                    Err(e) => tracing::warn!(error = %e, "heartbeat failed; trying again"),
                }
            }
        }
    }
}
