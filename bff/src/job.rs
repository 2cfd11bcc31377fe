//! The job contract: what a job kind is ([`JobArgs`], its typed payload),
//! what runs it ([`Handler`]), what a handler sees ([`Job`]) and how it
//! fails ([`JobError`]); enqueueing a typed payload ([`enqueue`]) and the
//! database calls of a job's lifecycle (claim, heartbeat, complete, fail,
//! release; sql/api/jobs.sql). Nothing here knows a domain: each kind's
//! payload and handler live in the kind's own module, and the worker's
//! [`crate::worker::registry`] pairs them.
//!
//! A new kind is a payload struct implementing [`JobArgs`], a handler
//! implementing [`Handler`] for it, and one line in the registry.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use sqlx::postgres::PgArguments;
use sqlx::query::QueryScalar;
use sqlx::{PgPool, Postgres, Transaction};
use std::future::Future;
use uuid::Uuid;

use crate::auth::Caller;
use crate::telemetry::db_call;

/// The NOTIFY channel of sql/api/jobs.sql: an enqueue wakes the workers
/// listed in its database.
pub const CHANNEL: &str = "bizos_jobs";

/// The payload of a job kind: `KIND` names it in the `job_kinds`
/// vocabulary. It is checked when it is enqueued from Rust and again when
/// a worker claims the job (SQL writes payloads too), so a handler gets
/// only payloads that parse and pass [`JobArgs::check`].
pub trait JobArgs: Serialize + DeserializeOwned + Send + 'static {
    const KIND: &'static str;

    /// What the types do not say (ranges, lengths); the error names the
    /// field (`payload.<field>`).
    fn check(&self) -> Result<(), PayloadError> {
        Ok(())
    }
}

/// What runs the jobs of one kind: the kind is its payload's.
pub trait Handler: Send + Sync + 'static {
    type Args: JobArgs;
    /// Implemented as `async fn run(&self, job: &Job, args: Self::Args)`.
    fn run(&self, job: &Job, args: Self::Args)
        -> impl Future<Output = Result<(), JobError>> + Send;
}

/// A payload that is not its kind's: the field (`payload`,
/// `payload.<field>`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadError {
    pub field: String,
    pub message: String,
}

impl PayloadError {
    /// A problem with `payload.<field>`.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        PayloadError {
            field: format!("payload.{field}"),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for PayloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for PayloadError {}

impl From<PayloadError> for crate::error::ApiError {
    fn from(e: PayloadError) -> Self {
        crate::error::ApiError::Unprocessable {
            message: e.to_string(),
            field: Some(e.field),
        }
    }
}

/// A job's payload as its kind's [`JobArgs`], checked.
pub fn parse_args<A: JobArgs>(payload: &Value) -> Result<A, PayloadError> {
    let args: A = serde_path_to_error::deserialize(payload).map_err(|e| {
        let (field, message) = crate::extract::Located::from(e).field_and_message();
        PayloadError {
            field: field.map_or_else(|| "payload".to_owned(), |f| format!("payload.{f}")),
            message,
        }
    })?;
    args.check()?;
    Ok(args)
}

/// When and how a job is enqueued (`job_enqueue`'s optional arguments).
#[derive(Debug, Clone, Default)]
pub struct EnqueueOptions {
    /// Not before (default: now).
    pub run_at: Option<chrono::DateTime<chrono::Utc>>,
    /// -100..100, higher first within a tenant.
    pub priority: i32,
    /// Per tenant: enqueueing the same key again returns the first job.
    pub dedup_key: Option<String>,
}

/// Why a job was not enqueued.
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    #[error(transparent)]
    Payload(#[from] PayloadError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<EnqueueError> for crate::error::ApiError {
    fn from(e: EnqueueError) -> Self {
        match e {
            EnqueueError::Payload(p) => p.into(),
            EnqueueError::Database(d) => d.into(),
        }
    }
}

/// `sql` with the kind as $1 and the payload (checked as a claim checks
/// it) as $2.
fn with_payload<'q, A: JobArgs, O>(
    sql: &'q str,
    args: &A,
) -> Result<QueryScalar<'q, Postgres, O, PgArguments>, PayloadError>
where
    (O,): for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
{
    args.check()?;
    let payload = serde_json::to_value(args).map_err(|e| PayloadError {
        field: "payload".into(),
        message: e.to_string(),
    })?;
    Ok(sqlx::query_scalar(sql).bind(A::KIND).bind(payload))
}

/// Enqueues a job of the caller in their transaction (`job_enqueue`: the
/// tenant, creator, request id and trace context from the transaction's
/// claims); the job's id.
pub async fn enqueue<A: JobArgs>(
    conn: &mut sqlx::PgConnection,
    args: &A,
    options: EnqueueOptions,
) -> Result<Uuid, EnqueueError> {
    let query = with_payload("select job_enqueue($1, $2, $3, $4, $5)", args)?
        .bind(options.run_at)
        .bind(options.priority)
        .bind(options.dedup_key);
    Ok(db_call("job_enqueue", query.fetch_one(conn)).await?)
}

/// Enqueues a system job for every active tenant that has none with
/// `dedup_key` (`job_enqueue_every_tenant`, the worker's login); how many.
pub async fn enqueue_every_tenant<A: JobArgs>(
    pool: &PgPool,
    args: &A,
    dedup_key: &str,
) -> Result<i32, EnqueueError> {
    let query = with_payload("select job_enqueue_every_tenant($1, $2, $3)", args)?.bind(dedup_key);
    Ok(db_call("job_enqueue_every_tenant", query.fetch_one(pool)).await?)
}

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

/// A payload that does not parse will not parse on a retry either.
impl From<PayloadError> for JobError {
    fn from(e: PayloadError) -> Self {
        JobError::Permanent(e.to_string())
    }
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
    /// Where it was claimed (worker::targets): `control`,
    /// `<cluster>/<database>` or `<cluster>/<database>/<schema>`.
    placement: Arc<str>,
    worker: Arc<str>,
    lost: AtomicBool,
}

impl Job {
    /// The worker's pool (its own login) of the job's placement: the
    /// database (and, for the schema tier, the search path on the schema)
    /// its `jobs` row and its tenant's rows are in.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The name of the job's placement (the `placement` of its span).
    pub fn placement(&self) -> &str {
        &self.placement
    }

    /// Whether the job stopped being this worker's (cancelled, or its
    /// lease lost): a handler then leaves its work alone.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// The job is no longer this worker's; the error a handler stops with.
    pub(super) fn lose(&self) -> JobError {
        self.lost.store(true, Ordering::SeqCst);
        JobError::Permanent("the job was cancelled or its lease was lost".into())
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
            placement: None,
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
        match self.heartbeat(Some(done), Some(total)).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(self.lose()),
            Err(e) => Err(JobError::from_db(&e)),
        }
    }

    /// `job_heartbeat`: extends the lease (and records progress); false
    /// when the job is no longer this worker's. The job's tenant goes with
    /// each call of the job's lifecycle: on Citus it routes the statements
    /// to the tenant's worker.
    pub(super) async fn heartbeat(
        &self,
        done: Option<i64>,
        total: Option<i64>,
    ) -> Result<bool, sqlx::Error> {
        db_call(
            "job_heartbeat",
            sqlx::query_scalar("select job_heartbeat($1, $2, $3, $4, $5)")
                .bind(self.job_id)
                .bind(&*self.worker)
                .bind(done)
                .bind(total)
                .bind(self.tenant_id)
                .fetch_one(&self.pool),
        )
        .await
    }

    /// `job_complete`: false when the job was no longer this worker's.
    pub(super) async fn complete(&self) -> Result<bool, sqlx::Error> {
        db_call(
            "job_complete",
            sqlx::query_scalar("select job_complete($1, $2, $3)")
                .bind(self.job_id)
                .bind(&*self.worker)
                .bind(self.tenant_id)
                .fetch_one(&self.pool),
        )
        .await
    }

    /// `job_fail`: the job's status after it (`queued` for a retry, else
    /// dead); None when it was no longer this worker's.
    pub(super) async fn fail(&self, error: &JobError) -> Result<Option<String>, sqlx::Error> {
        db_call(
            "job_fail",
            sqlx::query_scalar("select job_fail($1, $2, $3, $4, $5)")
                .bind(self.job_id)
                .bind(&*self.worker)
                .bind(error.to_string())
                .bind(matches!(error, JobError::Retryable(_)))
                .bind(self.tenant_id)
                .fetch_one(&self.pool),
        )
        .await
    }

    /// The lease of the job's kind (`job_kinds.lease_secs`), 60 s when it
    /// cannot be read.
    pub(super) async fn lease(&self) -> std::time::Duration {
        let secs: i32 = db_call(
            "job_kinds",
            sqlx::query_scalar("select lease_secs from job_kinds where kind = $1")
                .bind(&self.kind)
                .fetch_one(&self.pool),
        )
        .await
        .unwrap_or(60);
        std::time::Duration::from_secs(secs.max(0) as u64)
    }
}

/// `job_claim` in the placement `placement` (its pool): up to `max` due
/// jobs of `kinds` for `worker`. A claim the
/// database rolls back to break a deadlock (on Citus, claims of several
/// workers and tenants' writes meet across nodes) is tried again a few
/// times ([`crate::retry`]).
pub(super) async fn claim(
    pool: &PgPool,
    placement: &Arc<str>,
    worker: &Arc<str>,
    max: usize,
    kinds: &[String],
) -> Result<Vec<Job>, sqlx::Error> {
    let mut tries = crate::retry::Tries::new("job claim");
    loop {
        match claim_once(pool, placement, worker, max, kinds).await {
            Err(e) if tries.again(&e).await => {}
            done => return done,
        }
    }
}

async fn claim_once(
    pool: &PgPool,
    placement: &Arc<str>,
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
    .fetch_all(pool)
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
            pool: pool.clone(),
            placement: placement.clone(),
            worker: worker.clone(),
            lost: AtomicBool::new(false),
        })
        .collect())
}

/// `job_release` (shutdown): queued again, the attempt not counted.
pub(super) async fn release(
    pool: &PgPool,
    worker: &str,
    job_id: Uuid,
    tenant_id: Uuid,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("select job_release($1, $2, $3)")
        .bind(job_id)
        .bind(worker)
        .bind(tenant_id)
        .fetch_one(pool)
        .await
}

/// A job's transaction, or why there is none: an unreachable database is
/// worth a retry, a refusal (the user's account) is not.
fn job_transaction(
    begun: crate::error::Result<Transaction<'static, Postgres>>,
) -> Result<Transaction<'static, Postgres>, JobError> {
    begun.map_err(|e| match e {
        crate::error::ApiError::Unavailable(m)
        | crate::error::ApiError::RolledBack(m)
        | crate::error::ApiError::Overloaded(m) => JobError::Retryable(m),
        crate::error::ApiError::Internal(e) => JobError::Retryable(format!("{e:#}")),
        other => JobError::Permanent(other.to_string()),
    })
}
