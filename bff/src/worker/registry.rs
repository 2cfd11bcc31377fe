//! The worker's registry: each job kind paired with its typed handler
//! (the handlers live in their domains' modules). One line per kind.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use serde_json::Value;

use super::settings::WorkerSettings;
use crate::job::{parse_args, Handler, Job, JobArgs, JobError, PayloadError};
use crate::vars::ConfigError;

/// Every kind of this build with its handler. `email.send` runs only with
/// an SMTP server (BIZOS_SMTP_URL), `kb.ingest` only with the embedding
/// model (BIZOS_KB_MODEL_DIR) and `webhook.deliver` only with the webhook
/// master key (BIZOS_WEBHOOKS_MASTER_KEY) and `vector.retrain` only with
/// the maintenance login (BIZOS_INDEX_MAINTENANCE_URL): without them the kind is
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
    r.add(crate::billing::BillingMonthEnd::new(
        crate::placement::Secrets::from_env(settings.secrets_file.clone()),
    ));
    r.add(crate::payments::dunning::BillingDunning);
    r.add(crate::crm::lookalikes::CustomerLookalikes);
    r.add(crate::tenant_moves::TenantMove::from_env());
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
    r.add_if(crate::vector_index::VectorRetrain::from_settings(
        settings.index_maintenance_url.as_ref(),
    ));
    r.add_if(crate::email::job::EmailSend::from_settings(
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::crm::lookalikes::CustomerLookalikesArgs;
    use crate::files::sweep::StorageSweepArgs;
    use crate::imports::job::ImportProcessArgs;

    fn error<A: JobArgs + std::fmt::Debug>(payload: Value) -> String {
        parse_args::<A>(&payload).unwrap_err().to_string()
    }

    #[test]
    fn a_payload_that_is_not_its_kinds_names_the_field() {
        let id = uuid::Uuid::new_v4();
        assert_eq!(
            parse_args::<ImportProcessArgs>(&json!({"import_id": id, "batch_rows": 2000})),
            Ok(ImportProcessArgs {
                import_id: id,
                batch_rows: Some(2000)
            })
        );
        assert_eq!(
            error::<ImportProcessArgs>(json!({"batch_rows": 5})),
            "payload.import_id: is required"
        );
        let wrong = error::<ImportProcessArgs>(json!({"import_id": "x"}));
        assert!(wrong.starts_with("payload.import_id: "), "{wrong}");
        let wrong = error::<ImportProcessArgs>(json!({"import_id": id, "batch_rows": "many"}));
        assert!(wrong.starts_with("payload.batch_rows: "), "{wrong}");
        let unknown = error::<ImportProcessArgs>(json!({"import_id": id, "rows": 5}));
        assert!(unknown.contains("unknown field `rows`"), "{unknown}");
        // What the types do not say: the kind's check.
        assert_eq!(
            error::<CustomerLookalikesArgs>(json!({"customer_ids": []})),
            "payload.customer_ids: must be a list of 1 to 1000 uuids"
        );
        assert_eq!(
            error::<StorageSweepArgs>(json!({"max_age_secs": -1})),
            "payload.max_age_secs: must be a positive number of seconds"
        );
        // A schedule's free-form keys are no reason to fail a sweep.
        assert_eq!(
            parse_args::<StorageSweepArgs>(&json!({"report": "ceo", "max_age_secs": 960.0})),
            Ok(StorageSweepArgs {
                max_age_secs: Some(960.0)
            })
        );
    }

    #[test]
    fn a_payload_that_does_not_parse_fails_the_job_for_good() {
        let e: JobError = parse_args::<ImportProcessArgs>(&json!({}))
            .unwrap_err()
            .into();
        assert_eq!(
            e,
            JobError::Permanent("payload.import_id: is required".into())
        );
    }

    #[test]
    fn the_registry_checks_a_payload_by_its_kind() {
        let mut r = Registry::default();
        r.add(crate::idempotency::IdempotencyPurge);
        r.add_if(None::<crate::email::job::EmailSend>);
        assert_eq!(r.kinds(), ["idempotency.purge", "email.send"]);
        assert_eq!(r.runnable(), ["idempotency.purge"]);
        assert!(r.knows("email.send") && !r.knows("no.such.kind"));
        assert!(r.runner("email.send").is_none());
        assert_eq!(r.check("idempotency.purge", &json!({})), Ok(()));
        assert_eq!(
            r.check("email.send", &json!({"email_id": 5}))
                .unwrap_err()
                .field,
            "payload.email_id"
        );
        assert_eq!(
            r.check("no.such.kind", &json!({})).unwrap_err().to_string(),
            "kind: no handler for kind no.such.kind"
        );
    }
}
