//! The worker's registry: each job kind paired with its typed handler
//! (the handlers live in their domains' modules). One line per kind.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use serde_json::Value;

use super::job::{parse_args, Handler, Job, JobArgs, JobError, PayloadError};
use super::WorkerSettings;
use crate::config::ConfigError;

/// Every kind of this build with its handler. `email.send` runs only with
/// an SMTP server (BIZOS_SMTP_URL), `kb.ingest` only with the embedding
/// model (BIZOS_KB_MODEL_DIR) and `webhook.deliver` only with the webhook
/// master key (BIZOS_WEBHOOKS_MASTER_KEY): without them the kind is
/// registered but not run, and the worker leaves those jobs queued for a
/// worker that has them.
pub fn registry(settings: &WorkerSettings, pool: &sqlx::PgPool) -> Result<Registry, ConfigError> {
    let storage = crate::files::Storage::from_settings(&settings.storage)
        .map_err(|e| ConfigError::Invalid(format!("{e:#}")))?;
    let mut r = Registry::default();
    r.add(crate::imports::job::ImportProcess::new(
        settings.import_batch_rows,
    ));
    r.add(crate::idempotency::IdempotencyPurge);
    r.add(crate::rfm::RfmCompute);
    r.add(crate::crm::lookalikes::CustomerLookalikes);
    r.add(crate::files::sweep::StorageSweep::new(
        storage.clone(),
        settings.upload_timeout,
    ));
    r.add(crate::digest::DigestBuild::from_settings(
        &settings.llm,
        pool,
    )?);
    r.add_if(crate::kb::ingest::KbIngest::from_settings(
        settings.kb_model_dir.as_deref(),
        storage,
    )?);
    r.add_if(crate::webhooks::WebhookDeliver::from_settings(
        &settings.webhooks,
    )?);
    r.add_if(crate::email::EmailSend::from_settings(
        settings.mail.as_ref(),
    )?);
    Ok(r)
}

/// A handler with its payload's type erased: parses the payload (a
/// payload that is not its kind's fails the job for good, naming the
/// field), then runs the typed handler.
pub(crate) trait Runner: Send + Sync + 'static {
    fn run<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), JobError>>;
}

struct Typed<H>(H);

impl<H: Handler> Runner for Typed<H> {
    fn run<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        async move {
            let args = parse_args::<H::Args>(&job.payload)?;
            self.0.run(job, args).await
        }
        .boxed()
    }
}

/// One registered kind.
struct Entry {
    kind: &'static str,
    /// Parses and checks a payload of the kind.
    check: fn(&Value) -> Result<(), PayloadError>,
    /// None: the kind's handler is not configured on this worker.
    runner: Option<Arc<dyn Runner>>,
}

fn check<A: JobArgs>(payload: &Value) -> Result<(), PayloadError> {
    parse_args::<A>(payload).map(drop)
}

/// The kinds a worker knows, each with its typed handler.
#[derive(Default)]
pub struct Registry {
    entries: Vec<Entry>,
}

impl Registry {
    /// Registers `handler` for its payload's kind.
    pub fn add<H: Handler>(&mut self, handler: H) {
        self.add_if(Some(handler));
    }

    /// Registers the kind of `H`; it runs only when `handler` is there
    /// (configured on this worker).
    pub fn add_if<H: Handler>(&mut self, handler: Option<H>) {
        self.entries.push(Entry {
            kind: <H::Args as JobArgs>::KIND,
            check: check::<H::Args>,
            runner: handler.map(|h| Arc::new(Typed(h)) as Arc<dyn Runner>),
        });
    }

    /// Every registered kind, once per registration (a kind registered
    /// twice is listed twice).
    pub fn kinds(&self) -> Vec<&'static str> {
        self.entries.iter().map(|e| e.kind).collect()
    }

    /// The kinds this worker runs (their handlers configured): the ones
    /// it claims.
    pub fn runnable(&self) -> Vec<String> {
        self.entries
            .iter()
            .filter(|e| e.runner.is_some())
            .map(|e| e.kind.to_owned())
            .collect()
    }

    /// Whether `kind` has a handler here (configured or not).
    pub fn knows(&self, kind: &str) -> bool {
        self.entries.iter().any(|e| e.kind == kind)
    }

    /// Whether `payload` is one of `kind`'s, as a claim would parse it.
    pub fn check(&self, kind: &str, payload: &Value) -> Result<(), PayloadError> {
        let entry = self
            .entries
            .iter()
            .find(|e| e.kind == kind)
            .ok_or_else(|| PayloadError {
                field: "kind".into(),
                message: format!("no handler for kind {kind}"),
            })?;
        (entry.check)(payload)
    }

    /// The handler that runs `kind` here.
    pub(crate) fn runner(&self, kind: &str) -> Option<Arc<dyn Runner>> {
        self.entries
            .iter()
            .find(|e| e.kind == kind)
            .and_then(|e| e.runner.clone())
    }
}
