//! Prometheus metrics (OPS-18) through the `metrics` facade. One recorder
//! per process ([`handle`]), rendered by our own `/metrics` ([`serve`] on
//! the internal listener `BIZOS_METRICS_LISTEN`, or [`scrape`] from another
//! server such as the worker's health listener; the exporter's own listener
//! is not used). Not on the API listener: the series tell traffic, error
//! rates and pool sizes, which the public has no business reading; a
//! bearer token (`BIZOS_METRICS_TOKEN`) can guard them further. The series and their labels are
//! bounded and carry no tenant data: routes by their template, never the
//! raw path; job kinds; no tenant or user ids.
//!
//! Series:
//! - `bizos_http_requests_total{method,route,status}` (counter) and
//!   `bizos_http_request_duration_seconds{method,route,status}` (histogram);
//!   `route` is axum's matched path (`/api/leads/{id}`), `unmatched` for a
//!   request no route matched.
//! - `bizos_db_pool_connections{state="idle|in_use"}` and
//!   `bizos_db_pool_max_connections` (gauges, sampled at scrape).
//! - `bizos_jobs_queue_depth{kind,status}` (gauge; [`queue_depth`]).
//! - `bizos_jobs_finished_total{kind,outcome}` and
//!   `bizos_job_duration_seconds{kind,outcome}` (histogram), outcome
//!   `succeeded|retry|dead|lost|released` ([`job_finished`]);
//!   `bizos_jobs_dead_letters_total{kind}` counts jobs that went dead.
//! - `bizos_emails_total{outcome="sent|failed"}` ([`email_sent`]).
//! - `bizos_webhook_attempts_total{outcome="succeeded|failed"}`
//!   ([`webhook_delivered`]).

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::response::Response;
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;

/// BIZOS_METRICS_TOKEN (`bizos serve` and `bizos worker`).
pub fn token(v: &str) -> Result<SecretString, String> {
    if v.len() < 16 {
        return Err("must be at least 16 bytes".into());
    }
    Ok(SecretString::from(v))
}

pub const HTTP_REQUESTS: &str = "bizos_http_requests_total";
pub const HTTP_DURATION: &str = "bizos_http_request_duration_seconds";
pub const DB_POOL_CONNECTIONS: &str = "bizos_db_pool_connections";
pub const DB_POOL_MAX: &str = "bizos_db_pool_max_connections";
pub const JOBS_QUEUE_DEPTH: &str = "bizos_jobs_queue_depth";
pub const JOBS_FINISHED: &str = "bizos_jobs_finished_total";
pub const JOB_DURATION: &str = "bizos_job_duration_seconds";
pub const JOBS_DEAD: &str = "bizos_jobs_dead_letters_total";
pub const EMAILS: &str = "bizos_emails_total";
pub const WEBHOOK_ATTEMPTS: &str = "bizos_webhook_attempts_total";

/// The `route` label of a request that matched no route.
pub const UNMATCHED: &str = "unmatched";

/// Request latency buckets, in seconds.
const HTTP_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Job latency buckets, in seconds (jobs run from milliseconds to minutes).
const JOB_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use (the BFF and
/// the worker both call this; later calls return the same handle). When
/// another recorder is already installed, a detached one renders nothing
/// recorded through the facade; that is logged.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), HTTP_BUCKETS)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(JOB_DURATION.into()), JOB_BUCKETS))
            .expect("the bucket lists are not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics stays empty");
        }
        describe();
        handle
    })
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests by matched route, method and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "HTTP request latency by matched route, method and status"
    );
    describe_gauge!(
        DB_POOL_CONNECTIONS,
        "Connections of the database pool by state (idle, in_use)"
    );
    describe_gauge!(DB_POOL_MAX, "Size limit of the database pool");
    describe_gauge!(JOBS_QUEUE_DEPTH, "Jobs by kind and status");
    describe_counter!(JOBS_FINISHED, "Job runs by kind and outcome");
    describe_histogram!(
        JOB_DURATION,
        Unit::Seconds,
        "Job run time by kind and outcome"
    );
    describe_counter!(JOBS_DEAD, "Jobs dead-lettered, by kind");
    describe_counter!(EMAILS, "E-mails delivered (sent) or given up on (failed)");
    describe_counter!(
        WEBHOOK_ATTEMPTS,
        "Webhook delivery attempts: a 2xx answer (succeeded) or not (failed)"
    );
}

/// Axum middleware counting and timing requests by matched route; added
/// with `Router::layer`, so it runs after routing and sees `MatchedPath`.
/// Also names the request span by its route and records the status.
pub async fn track_http(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    let method = req.method().as_str().to_owned();
    let span = tracing::Span::current();
    span.record("http.route", route.as_str());
    span.record("otel.name", format!("{method} {route}"));
    let start = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    if response.status().is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    let labels = [
        ("method", method),
        ("route", route),
        ("status", status.to_string()),
    ];
    counter!(HTTP_REQUESTS, &labels).increment(1);
    histogram!(HTTP_DURATION, &labels).record(start.elapsed().as_secs_f64());
    response
}

/// Samples the pool's gauges (at scrape time).
pub fn sample_pool(pool: &PgPool) {
    let size = f64::from(pool.size());
    let idle = pool.num_idle() as f64;
    gauge!(DB_POOL_CONNECTIONS, "state" => "idle").set(idle);
    gauge!(DB_POOL_CONNECTIONS, "state" => "in_use").set((size - idle).max(0.0));
    gauge!(DB_POOL_MAX).set(f64::from(pool.options().get_max_connections()));
}

/// The number of jobs of `kind` in `status` (queued, running, dead …), as
/// counted by whoever samples the queue (the worker, or the BFF's scrape
/// once the operator view of the queue exists).
pub fn queue_depth(kind: &str, status: &str, depth: u64) {
    gauge!(JOBS_QUEUE_DEPTH, "kind" => kind.to_owned(), "status" => status.to_owned())
        .set(depth as f64);
}

/// Samples `bizos_jobs_queue_depth` from the operator view `job_queue`
/// (sql/api/jobs.sql: one row per kind, all tenants; selectable by the
/// worker's login and the owner, not by the BFF's), at scrape time. The
/// statuses: queued, due (queued and runnable now), running,
/// expired_leases, dead.
pub async fn sample_queue(pool: &PgPool) -> Result<(), sqlx::Error> {
    let rows: Vec<(String, i64, i64, i64, i64, i64)> =
        sqlx::query_as("select kind, queued, due, running, expired_leases, dead from job_queue")
            .fetch_all(pool)
            .await?;
    for (kind, queued, due, running, expired, dead) in rows {
        for (status, n) in [
            ("queued", queued),
            ("due", due),
            ("running", running),
            ("expired_leases", expired),
            ("dead", dead),
        ] {
            queue_depth(&kind, status, u64::try_from(n).unwrap_or(0));
        }
    }
    Ok(())
}

/// How a job run ended in a worker: the one outcome type of the worker
/// (`crate::worker::record_outcome`) and of the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    Succeeded,
    /// Failed and will be retried after a backoff.
    Retry,
    /// Failed for the last time (or permanently): dead-lettered.
    Dead,
    /// Cancelled while it ran, or its lease ran out (another worker may
    /// have it): the result was dropped.
    Lost,
    /// Handed back unfinished (shutdown), the attempt not counted.
    Released,
}

impl JobOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            JobOutcome::Succeeded => "succeeded",
            JobOutcome::Retry => "retry",
            JobOutcome::Dead => "dead",
            JobOutcome::Lost => "lost",
            JobOutcome::Released => "released",
        }
    }
}

/// Records one job run of `kind` that took `seconds` (the worker calls it
/// after `job_complete`/`job_fail`/`job_release`).
pub fn job_finished(kind: &str, outcome: JobOutcome, seconds: f64) {
    let labels = [
        ("kind", kind.to_owned()),
        ("outcome", outcome.as_str().to_owned()),
    ];
    counter!(JOBS_FINISHED, &labels).increment(1);
    histogram!(JOB_DURATION, &labels).record(seconds);
    if outcome == JobOutcome::Dead {
        counter!(JOBS_DEAD, "kind" => kind.to_owned()).increment(1);
    }
}

/// Records one e-mail delivered (`ok`) or given up on.
pub fn email_sent(ok: bool) {
    counter!(EMAILS, "outcome" => if ok { "sent" } else { "failed" }).increment(1);
}

/// Records one webhook delivery attempt.
pub fn webhook_delivered(ok: bool) {
    counter!(WEBHOOK_ATTEMPTS, "outcome" => if ok { "succeeded" } else { "failed" }).increment(1);
}

/// The text exposition of every series (the body of `/metrics`).
pub fn render() -> String {
    handle().render()
}

/// The answer to a scrape: 401 without the bearer `token` (when one is
/// configured), else every series, the pool's gauges sampled now.
pub fn scrape(pool: &PgPool, token: Option<&SecretString>, headers: &HeaderMap) -> Response {
    if let Some(refused) = refuse(token, headers) {
        return refused;
    }
    sample_pool(pool);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(),
    )
        .into_response()
}

/// The 401 for a scrape without the bearer `token` (when one is
/// configured); None when the scrape may proceed. For a scraper that does
/// work (queries) before [`scrape`].
pub fn refuse(token: Option<&SecretString>, headers: &HeaderMap) -> Option<Response> {
    let token = token?;
    let sent = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    (!constant_time_eq(sent.as_bytes(), token.expose_secret().as_bytes())).then(|| {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "/metrics needs the bearer token BIZOS_METRICS_TOKEN\n",
        )
            .into_response()
    })
}

/// Compares secrets without stopping at the first difference.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// Serves `GET /metrics` (and nothing else: 404, 405) on the internal
/// listener until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, pool: PgPool, token: Option<SecretString>) {
    use axum::handler::HandlerWithoutStateExt;
    let token = std::sync::Arc::new(token);
    let answer = move |req: Request| {
        let (pool, token) = (pool.clone(), token.clone());
        async move {
            if req.uri().path() != "/metrics" {
                return (StatusCode::NOT_FOUND, "only /metrics is served here\n").into_response();
            }
            if req.method() != axum::http::Method::GET {
                return StatusCode::METHOD_NOT_ALLOWED.into_response();
            }
            scrape(&pool, token.as_ref().as_ref(), req.headers())
        }
    };
    if let Err(e) = axum::serve(listener, answer.into_make_service()).await {
        tracing::error!(error = %e, "the metrics listener stopped");
    }
}
