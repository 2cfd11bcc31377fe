//! `webhook.deliver` (system job of a tenant): delivers the tenant's due
//! webhook deliveries in batches.
//!
//! One run: claim up to BIZOS_WEBHOOKS_BATCH due deliveries
//! (`webhook_deliveries_claim`: FOR UPDATE SKIP LOCKED, each held for a
//! lease longer than a request may take), open the secrets that sign them
//! (cached: a secret never changes; which secrets sign comes with every
//! claim), send them BIZOS_WEBHOOKS_CONCURRENCY at a time, record every
//! outcome in one call (`webhook_deliveries_record`), report progress
//! (which extends the job's lease), and claim again until nothing is due;
//! then `webhook_deliver_next` queues the job of the earliest retry. Two
//! database round trips per batch, not per delivery.
//!
//! A request: POST of the event's body (its jsonb text, byte for byte what
//! is signed) with `content-type: application/json`, `webhook-id`,
//! `webhook-timestamp` and `webhook-signature`; no redirects followed, no
//! proxy, the SSRF guard's resolver; a 2xx answer is a success, anything
//! else (another status, a refused address, no connection, the timeout)
//! a failure, retried after the schedule's next wait or dead after its
//! last. The log keeps the status, duration, error and the first 1,000
//! characters of the answer. A worker that dies mid-batch loses nothing:
//! the leases run out and the deliveries are claimed again (at least once;
//! receivers deduplicate by webhook-id).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::config::{RetrySchedule, WebhookSettings};
use super::{secrets, signing, ssrf};
use crate::job::{Handler, Job, JobArgs, JobError};
use crate::llm::crypto::{MasterKeys, Sealed};
use crate::telemetry::db_call;
use crate::vars::ConfigError;

/// Characters of an answer kept in the log.
const EXCERPT_CHARS: usize = 1000;

type Key = Arc<Zeroizing<Vec<u8>>>;

/// The handler of `webhook.deliver`.
pub struct WebhookDeliver {
    client: reqwest::Client,
    keys: Arc<MasterKeys>,
    allow_loopback: bool,
    schedule: RetrySchedule,
    batch: u32,
    concurrency: usize,
    lease: Duration,
    /// Opened secrets by id (a secret's bytes never change).
    opened: Mutex<HashMap<Uuid, Key>>,
}

impl std::fmt::Debug for WebhookDeliver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookDeliver")
            .field("batch", &self.batch)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

/// One claimed delivery.
#[derive(Debug, Clone)]
struct Claimed {
    delivery_id: Uuid,
    event_id: Uuid,
    url: String,
    body: String,
    attempt: i32,
    secret_ids: Vec<Uuid>,
}

/// What one attempt gave.
#[derive(Debug)]
struct Outcome {
    status_code: Option<u16>,
    error: Option<String>,
    excerpt: Option<String>,
}

impl WebhookDeliver {
    /// The handler, or None without a master key (the worker then leaves
    /// webhook.deliver jobs to a worker that has one).
    pub fn from_settings(settings: &WebhookSettings) -> Result<Option<Self>, ConfigError> {
        let Some(keys) = settings.master_keys()? else {
            return Ok(None);
        };
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(ssrf::GuardedResolver {
                allow_loopback: settings.allow_loopback,
            }))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            .timeout(settings.timeout)
            .pool_max_idle_per_host(settings.concurrency)
            .user_agent(concat!("bizos-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError::Invalid(format!("the webhook HTTP client: {e}")))?;
        Ok(Some(WebhookDeliver {
            client,
            keys: Arc::new(keys),
            allow_loopback: settings.allow_loopback,
            schedule: settings.retry_schedule.clone(),
            batch: settings.batch,
            concurrency: settings.concurrency,
            // Longer than a request may take, with room for recording.
            lease: settings.timeout + Duration::from_secs(30),
            opened: Mutex::new(HashMap::new()),
        }))
    }

    fn opened(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Key>> {
        self.opened.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens the secrets of `claimed` this worker has not opened yet.
    async fn load_secrets(&self, job: &Job, claimed: &[Claimed]) -> Result<(), JobError> {
        let missing: Vec<Uuid> = {
            let opened = self.opened();
            let mut ids: Vec<Uuid> = claimed
                .iter()
                .flat_map(|c| c.secret_ids.iter().copied())
                .filter(|id| !opened.contains_key(id))
                .collect();
            ids.sort();
            ids.dedup();
            ids
        };
        if missing.is_empty() {
            return Ok(());
        }
        #[derive(sqlx::FromRow)]
        struct Row {
            secret_id: Uuid,
            endpoint_id: Uuid,
            #[sqlx(flatten)]
            sealed: Sealed,
        }
        let rows: Vec<Row> = db_call(
            "webhook_secret_material",
            sqlx::query_as(
                "select secret_id, endpoint_id, ciphertext, nonce, wrapped_dek, dek_nonce, master_key_id
                   from webhook_secret_material($1, $2)",
            )
            .bind(job.tenant_id)
            .bind(&missing)
            .fetch_all(job.pool()),
        )
        .await?;
        let mut opened = self.opened();
        for Row {
            secret_id,
            endpoint_id,
            sealed,
        } in rows
        {
            match secrets::open(&self.keys, job.tenant_id, endpoint_id, secret_id, &sealed) {
                Ok(key) => {
                    opened.insert(secret_id, Arc::new(key));
                }
                // Signed with the others; with none, the attempt fails.
                Err(e) => tracing::warn!(%secret_id, %endpoint_id, error = %e,
                                         "a webhook signing secret does not open"),
            }
        }
        Ok(())
    }

    async fn claim(&self, job: &Job) -> Result<(Uuid, Vec<Claimed>), JobError> {
        type Row = (Uuid, Uuid, Uuid, Uuid, String, String, i32, Vec<Uuid>);
        let rows: Vec<Row> = db_call(
            "webhook_deliveries_claim",
            sqlx::query_as(
                "select delivery_id, claim_id, event_id, endpoint_id, url, body, attempt, secret_ids
                   from webhook_deliveries_claim($1, $2, $3)",
            )
            .bind(job.tenant_id)
            .bind(self.batch as i32)
            .bind(self.lease.as_secs().clamp(1, 3600) as i32)
            .fetch_all(job.pool()),
        )
        .await?;
        let claim_id = rows.first().map(|r| r.1).unwrap_or_default();
        Ok((
            claim_id,
            rows.into_iter()
                .map(
                    |(delivery_id, _, event_id, _, url, body, attempt, secret_ids)| Claimed {
                        delivery_id,
                        event_id,
                        url,
                        body,
                        attempt,
                        secret_ids,
                    },
                )
                .collect(),
        ))
    }

    /// One attempt of one delivery.
    async fn attempt(&self, d: &Claimed) -> Outcome {
        let failed = |error: String| Outcome {
            status_code: None,
            error: Some(error),
            excerpt: None,
        };
        let url = match ssrf::parse(&d.url)
            .and_then(|u| ssrf::check_literal(&u, self.allow_loopback).map(|()| u))
        {
            Ok(u) => u,
            Err(e) => return failed(format!("url: {e}: refused")),
        };
        let keys: Vec<Key> = {
            let opened = self.opened();
            d.secret_ids
                .iter()
                .filter_map(|id| opened.get(id).cloned())
                .collect()
        };
        if keys.is_empty() {
            return failed(
                "no signing secret of the endpoint opens (BIZOS_WEBHOOKS_MASTER_KEY or \
                 BIZOS_WEBHOOKS_MASTER_KEYS_PREVIOUS lacks its master key)"
                    .into(),
            );
        }
        let msg_id = signing::message_id(d.event_id);
        let timestamp = chrono::Utc::now().timestamp();
        let signature = signing::signature_header(
            keys.iter().map(|k| k.as_slice()),
            &msg_id,
            timestamp,
            &d.body,
        );
        let sent = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &msg_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(d.body.clone())
            .send()
            .await;
        let mut response = match sent {
            Ok(r) => r,
            Err(e) => return failed(describe(&e)),
        };
        let status = response.status();
        // The start of the answer, read no further than needed.
        let mut bytes: Vec<u8> = Vec::new();
        let mut read_error = None;
        while bytes.len() < EXCERPT_CHARS * 4 {
            match response.chunk().await {
                Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(e) => {
                    read_error = Some(describe(&e));
                    break;
                }
            }
        }
        let text: String = String::from_utf8_lossy(&bytes)
            .chars()
            .filter(|c| *c != '\0')
            .take(EXCERPT_CHARS)
            .collect();
        let excerpt = (!text.is_empty()).then_some(text);
        let error = if status.is_success() {
            None
        } else if status.is_redirection() {
            Some(format!("HTTP {status}: redirects are not followed"))
        } else {
            Some(format!("HTTP {status}"))
        };
        Outcome {
            status_code: Some(status.as_u16()),
            error: error.or(if status.is_success() {
                None
            } else {
                read_error
            }),
            excerpt,
        }
    }

    /// The outcome as webhook_deliveries_record takes it.
    fn result(
        &self,
        d: &Claimed,
        at: chrono::DateTime<chrono::Utc>,
        ms: u128,
        o: Outcome,
    ) -> Value {
        let ok = o.error.is_none() && o.status_code.is_some_and(|s| (200..300).contains(&s));
        let retry = if ok {
            None
        } else {
            self.schedule.after(d.attempt).map(|w| w.as_secs_f64())
        };
        json!({
            "delivery_id": d.delivery_id,
            "attempted_at": at,
            "duration_ms": ms.min(i32::MAX as u128) as i64,
            "status_code": o.status_code,
            "succeeded": ok,
            "error": o.error,
            "response_excerpt": o.excerpt,
            "retry_in_secs": retry,
        })
    }

    /// One attempt, timed, as webhook_deliveries_record takes it.
    async fn deliver_one(&self, d: Claimed) -> Value {
        let at = chrono::Utc::now();
        let started = Instant::now();
        let outcome = self.attempt(&d).await;
        let ms = started.elapsed().as_millis();
        crate::metrics::webhook_delivered(outcome.error.is_none());
        self.result(&d, at, ms, outcome)
    }

    async fn run_batches(&self, job: &Job) -> Result<u64, JobError> {
        let mut done: u64 = 0;
        loop {
            if job.is_lost() {
                break;
            }
            let (claim_id, claimed) = self.claim(job).await?;
            if claimed.is_empty() {
                break;
            }
            self.load_secrets(job, &claimed).await?;
            let results: Vec<Value> = futures_util::stream::iter(claimed)
                .map(|d| self.deliver_one(d))
                .buffer_unordered(self.concurrency)
                .collect()
                .await;
            let n = results.len() as u64;
            let recorded: Value = db_call(
                "webhook_deliveries_record",
                sqlx::query_scalar("select webhook_deliveries_record($1, $2, $3)")
                    .bind(job.tenant_id)
                    .bind(claim_id)
                    .bind(Value::Array(results))
                    .fetch_one(job.pool()),
            )
            .await?;
            if recorded["disabled"].as_i64().unwrap_or(0) > 0 {
                tracing::warn!(tenant_id = %job.tenant_id, disabled = %recorded["disabled"],
                               "webhook endpoints failing for 5 days were disabled");
            }
            done += n;
            job.progress(done as i64, done as i64).await?;
        }
        Ok(done)
    }
}

/// An HTTP client error for the log: what failed, with its causes (the
/// SSRF guard's refusal is one), never a secret (none is in a URL).
fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the answer broke off"
    } else {
        "the request failed"
    };
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        causes.push(s.to_string());
        source = s.source();
    }
    let text = if causes.is_empty() {
        what.to_owned()
    } else {
        format!("{what}: {}", causes.join(": "))
    };
    text.chars().take(2000).collect()
}

/// The payload of `webhook.deliver` (the outbox trigger and
/// `webhook_deliver_next` write `{}`): the job stands for the tenant's
/// due deliveries.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookDeliverArgs {}

impl JobArgs for WebhookDeliverArgs {
    const KIND: &'static str = "webhook.deliver";
}

impl Handler for WebhookDeliver {
    type Args = WebhookDeliverArgs;

    async fn run(&self, job: &Job, _: WebhookDeliverArgs) -> Result<(), JobError> {
        let done = self.run_batches(job).await?;
        if done > 0 {
            tracing::info!(tenant_id = %job.tenant_id, deliveries = done, "webhooks delivered");
        }
        // The next run at the earliest retry (a job of its own, so this
        // one finishes now).
        let _next: Option<chrono::DateTime<chrono::Utc>> = db_call(
            "webhook_deliver_next",
            sqlx::query_scalar("select webhook_deliver_next($1)")
                .bind(job.tenant_id)
                .fetch_one(job.pool()),
        )
        .await?;
        Ok(())
    }
}
