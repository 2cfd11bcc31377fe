//! The handlers of the job kinds this worker runs (`job_kinds`).

use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use serde_json::Value;
use uuid::Uuid;

use super::{Handler, Job, JobError, WorkerSettings};
use crate::email::{deliver, Mailer};
use crate::files::Storage;
use crate::telemetry::db_call;
use crate::vars::ConfigError;

/// Every handler of this build. `email.send` only with an SMTP server
/// (BIZOS_SMTP_URL), `kb.ingest` only with the embedding model
/// (BIZOS_KB_MODEL_DIR) and `webhook.deliver` only with the webhook master
/// key (BIZOS_WEBHOOKS_MASTER_KEY): without them the worker leaves those
/// jobs queued for a worker that has them.
pub fn handlers(
    settings: &WorkerSettings,
    pool: &sqlx::PgPool,
) -> Result<Vec<Arc<dyn Handler>>, ConfigError> {
    let mut handlers: Vec<Arc<dyn Handler>> = vec![
        Arc::new(ImportProcess {
            batch_rows: settings.import_batch_rows,
        }),
        Arc::new(IdempotencyPurge),
        Arc::new(RfmCompute),
        Arc::new(CustomerLookalikes),
        Arc::new(StorageSweep {
            storage: Storage::from_settings(&settings.storage)
                .map_err(|e| ConfigError::Invalid(format!("{e:#}")))?,
            max_age: crate::files::sweep::max_age(settings.upload_timeout),
        }),
        Arc::new(crate::digest::DigestBuild {
            llm: crate::llm::Gateway::new(pool.clone(), crate::llm::Login::Worker, &settings.llm)
                .map_err(|e| ConfigError::Invalid(format!("{e:#}")))?,
        }),
    ];
    if let Some(dir) = &settings.kb_model_dir {
        handlers.push(Arc::new(crate::kb::ingest::KbIngest {
            storage: Storage::from_settings(&settings.storage)
                .map_err(|e| ConfigError::Invalid(format!("{e:#}")))?,
            embedder: crate::kb::embed::shared(dir)
                .map_err(|e| ConfigError::Invalid(format!("BIZOS_KB_MODEL_DIR: {e}")))?,
        }));
    }
    if let Some(deliver) = crate::webhooks::WebhookDeliver::from_settings(&settings.webhooks)? {
        handlers.push(Arc::new(deliver));
    }
    if let Some(mail) = &settings.mail {
        handlers.push(Arc::new(EmailSend {
            mailer: Mailer::new(mail)?,
        }));
    }
    Ok(handlers)
}

/// `import.process` {import_id, batch_rows?}: processes a staged import
/// batch by batch, one `process_import` transaction each, as the user who
/// enqueued it, reporting progress (processed of total rows). Resumable:
/// each batch commits the rows it settled, so a job killed mid-way (or a
/// lost lease) continues after the last committed batch and no row is
/// processed twice.
pub struct ImportProcess {
    pub batch_rows: u32,
}

impl Handler for ImportProcess {
    fn kind(&self) -> &'static str {
        "import.process"
    }

    fn run<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        async move {
            let import_id: Uuid = job
                .payload
                .get("import_id")
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| JobError::Permanent("payload.import_id: must be a uuid".into()))?;
            let batch = job
                .payload
                .get("batch_rows")
                .and_then(Value::as_i64)
                .map(|n| n.clamp(1, 100_000) as i32)
                .unwrap_or(self.batch_rows as i32);
            loop {
                let mut tx = job.begin().await?;
                let progress: Value = db_call(
                    "process_import",
                    sqlx::query_scalar("select process_import($1, $2)")
                        .bind(import_id)
                        .bind(batch)
                        .fetch_one(&mut *tx),
                )
                .await?;
                tx.commit().await?;
                let total = progress["total_rows"].as_i64().unwrap_or(0);
                let done = progress["processed_rows"].as_i64().unwrap_or(0);
                job.progress(done, total).await?;
                if progress["pending_rows"].as_i64().unwrap_or(0) <= 0 {
                    return Ok(());
                }
            }
        }
        .boxed()
    }
}

/// `idempotency.purge`: deletes the tenant's expired idempotency keys
/// (system job; a SECURITY DEFINER function granted to the worker).
pub struct IdempotencyPurge;

impl Handler for IdempotencyPurge {
    fn kind(&self) -> &'static str {
        "idempotency.purge"
    }

    fn run<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        async move {
            let purged: i64 = db_call(
                "purge_idempotency_keys",
                sqlx::query_scalar("select purge_idempotency_keys($1)")
                    .bind(job.tenant_id)
                    .fetch_one(job.pool()),
            )
            .await?;
            job.progress(purged, purged).await?;
            Ok(())
        }
        .boxed()
    }
}

/// `rfm.compute` {as_of?: "YYYY-MM-DD"}: the tenant's RFM snapshot of the
/// week of `as_of` (default: the tenant's today), enqueued weekly by the
/// tenant's schedule 'rfm weekly' (system job) or on demand by a manager
/// (`POST /api/rfm/runs`). One SECURITY DEFINER call granted to the
/// worker (`rfm_compute`), which replaces that week's snapshot in one
/// transaction: a rerun (a lost lease, a second request) gives the same
/// snapshot, never a second one.
pub struct RfmCompute;

impl Handler for RfmCompute {
    fn kind(&self) -> &'static str {
        "rfm.compute"
    }

    fn run<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        async move {
            let as_of = match job.payload.get("as_of") {
                None | Some(Value::Null) => None,
                Some(v) => Some(
                    v.as_str()
                        .and_then(|s| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
                        .ok_or_else(|| {
                            JobError::Permanent("payload.as_of: must be a date YYYY-MM-DD".into())
                        })?,
                ),
            };
            let done: Value = db_call(
                "rfm_compute",
                sqlx::query_scalar("select rfm_compute($1, $2)")
                    .bind(job.tenant_id)
                    .bind(as_of)
                    .fetch_one(job.pool()),
            )
            .await?;
            let customers = done["customers"].as_i64().unwrap_or(0);
            job.progress(customers, customers).await?;
            Ok(())
        }
        .boxed()
    }
}

/// `customer.lookalikes` {customer_ids: [uuid, ...]}: finds the customers
/// with names similar to each listed (new) customer and keeps them for
/// review (system job, enqueued by the dedup of find_or_create_customer in
/// the transaction that created the customer). One SECURITY DEFINER call
/// granted to the worker (`customer_lookalikes_find`), which replaces what
/// an earlier run stored: a rerun gives the same rows.
pub struct CustomerLookalikes;

impl Handler for CustomerLookalikes {
    fn kind(&self) -> &'static str {
        "customer.lookalikes"
    }

    fn run<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        async move {
            let ids: Vec<Uuid> = job
                .payload
                .get("customer_ids")
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .filter(|ids: &Vec<Uuid>| !ids.is_empty() && ids.len() <= 1000)
                .ok_or_else(|| {
                    JobError::Permanent(
                        "payload.customer_ids: must be a list of 1 to 1000 uuids".into(),
                    )
                })?;
            let found: i32 = db_call(
                "customer_lookalikes_find",
                sqlx::query_scalar("select customer_lookalikes_find($1, $2)")
                    .bind(job.tenant_id)
                    .bind(&ids)
                    .fetch_one(job.pool()),
            )
            .await?;
            tracing::debug!(customers = ids.len(), found, "look-alikes stored");
            job.progress(ids.len() as i64, ids.len() as i64).await?;
            Ok(())
        }
        .boxed()
    }
}

/// `storage.sweep` {max_age_secs?}: removes the bytes and intents of the
/// tenant's dead uploads ([`crate::files::sweep::sweep`]: process gone, or
/// older than the longest upload). Idempotent: a claimed intent is deleted
/// only after its bytes, in the transaction holding its row lock, so a run
/// killed midway leaves the rest for the next. The age limit is the larger
/// of this worker's (BIZOS_UPLOAD_TIMEOUT_SECS + 60 s) and the payload's
/// (the enqueuing BFF's): a live upload is never taken for an old one.
/// Storage failures are retried.
pub struct StorageSweep {
    pub storage: Storage,
    pub max_age: std::time::Duration,
}

impl Handler for StorageSweep {
    fn kind(&self) -> &'static str {
        "storage.sweep"
    }

    fn run<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        async move {
            let asked = match job.payload.get("max_age_secs") {
                None | Some(Value::Null) => None,
                Some(v) => Some(
                    v.as_f64()
                        .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e9)
                        .map(std::time::Duration::from_secs_f64)
                        .ok_or_else(|| {
                            JobError::Permanent(
                                "payload.max_age_secs: must be a positive number of seconds".into(),
                            )
                        })?,
                ),
            };
            let max_age = asked.map_or(self.max_age, |a| a.max(self.max_age));
            let swept =
                crate::files::sweep::sweep(job.pool(), &self.storage, job.tenant_id, max_age)
                    .await
                    .map_err(|e| match e.downcast_ref::<sqlx::Error>() {
                        Some(db) => JobError::from_db(db),
                        None => JobError::Retryable(format!("{e:#}")),
                    })?;
            if swept > 0 {
                tracing::info!(swept, "bytes of interrupted uploads removed");
            }
            job.progress(swept as i64, swept as i64).await?;
            Ok(())
        }
        .boxed()
    }
}

/// `email.send` {email_id}: delivers one e-mail of the outbox
/// ([`crate::email::deliver`]: idempotent, records the outcome on the
/// e-mail). Connection failures, timeouts and 4xx replies are retried; a
/// 5xx rejection or unusable stored data is dead at once; after the last
/// retryable failure the e-mail is marked failed with its job.
pub struct EmailSend {
    pub mailer: Mailer,
}

impl Handler for EmailSend {
    fn kind(&self) -> &'static str {
        "email.send"
    }

    fn run<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        async move {
            let email_id: Uuid = job
                .payload
                .get("email_id")
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| JobError::Permanent("payload.email_id: must be a uuid".into()))?;
            // bizos_emails_total: sent, or failed once given up on.
            match deliver(job.pool(), &self.mailer, job.tenant_id, email_id).await {
                Ok(()) => {
                    crate::metrics::email_sent(true);
                    Ok(())
                }
                Err(e) if e.retryable() => {
                    if job.attempt >= job.max_attempts {
                        crate::metrics::email_sent(false);
                        sqlx::query("select email_mark_dead($1, $2)")
                            .bind(job.tenant_id)
                            .bind(email_id)
                            .execute(job.pool())
                            .await?;
                    }
                    Err(JobError::Retryable(e.to_string()))
                }
                Err(e) => {
                    crate::metrics::email_sent(false);
                    Err(JobError::Permanent(e.to_string()))
                }
            }
        }
        .boxed()
    }
}
