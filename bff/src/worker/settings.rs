//! The variables of `bizos worker` (each also a flag, as for `bizos
//! serve`, whose variables of storage, the LLM gateway, webhooks and
//! imports it shares) and the [`WorkerSettings`] they make.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use secrecy::SecretString;

use crate::files::StorageSettings;
use crate::telemetry::{LogFormat, OtelSettings};
use crate::vars::{
    http_url, number, positive, positive_millis, positive_seconds, seconds, secret, text, var,
    ConfigError,
};

/// The settings of `bizos worker`.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub database_url: SecretString,
    /// Jobs run at once.
    pub concurrency: usize,
    /// Fallback poll when no NOTIFY arrives.
    pub poll_interval: Duration,
    /// On SIGTERM/SIGINT, how long running jobs get to finish.
    pub shutdown_grace: Duration,
    /// `/healthz` and `/readyz`.
    pub health_listen: SocketAddr,
    /// Name recorded in `jobs.locked_by`.
    pub name: String,
    /// Rows per process_import transaction.
    pub import_batch_rows: u32,
    /// How often the worker enqueues the idempotency purge of every tenant
    /// (one job per tenant and period, deduplicated by the period).
    pub purge_every: Duration,
    /// How often the worker fires the due schedules (`schedules_fire_due`).
    pub schedules_every: Duration,
    /// SMTP for `email.send`; None: this worker sends no e-mail.
    pub mail: Option<crate::email::MailSettings>,
    /// The embedding model for `kb.ingest`; None: this worker leaves
    /// knowledge-base documents to a worker that has one.
    pub kb_model_dir: Option<std::path::PathBuf>,
    /// The stored files `storage.sweep` removes the bytes of dead uploads
    /// from (the BFF's BIZOS_STORAGE settings).
    pub storage: StorageSettings,
    /// The BFF's upload time limit: an intent older than this plus a
    /// margin is dead even if its process lives.
    pub upload_timeout: Duration,
    /// How often the worker enqueues `storage.sweep` for the tenants with
    /// dead uploads.
    pub sweep_every: Duration,
    /// The LLM gateway of system work (the daily digest).
    pub llm: crate::llm::LlmSettings,
    /// Webhook delivery; without a master key this worker delivers none.
    pub webhooks: crate::webhooks::WebhookSettings,
    /// Bearer token of the health port's `/metrics`, when set.
    pub metrics_token: Option<SecretString>,
    /// The maintenance login of `vector.retrain` (an owner of the schema's
    /// tables: REINDEX needs the index's owner); None: this worker leaves
    /// those jobs to one that has it.
    pub index_maintenance_url: Option<SecretString>,
    /// Trace export (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME).
    pub otel: OtelSettings,
    /// The secrets file of the clusters' URLs (BIZOS_SECRETS_FILE; the
    /// worker's log in as bizos_worker).
    pub secrets_file: Option<std::path::PathBuf>,
    /// Connections of each placement's pool at most.
    pub placement_pool_max: u32,
    /// Cap on the connections of all the worker's pools together.
    pub db_total_connections: u32,
}

/// The variables of `bizos worker` (each also a flag, as for `bizos serve`).
#[derive(Args, Debug, Clone)]
pub struct WorkerArgs {
    /// Connection string of the worker's login role (bizos_worker). Required.
    #[arg(long, env = "BIZOS_WORKER_URL", hide_env_values = true, value_parser = var(secret))]
    pub worker_url: Option<SecretString>,
    /// A file of secrets, one `NAME=value` a line: the URLs (as
    /// bizos_worker) of the clusters control.clusters names by url_secret,
    /// when not in the environment.
    #[arg(long, env = "BIZOS_SECRETS_FILE")]
    pub secrets_file: Option<std::path::PathBuf>,
    /// Connections of each placement's pool (schema and isolated tenants,
    /// other clusters).
    #[arg(long, env = "BIZOS_PLACEMENT_POOL_MAX", default_value = "4", value_parser = var(positive::<u32>))]
    pub placement_pool_max: u32,
    /// Cap on the connections of all the worker's pools together; the
    /// placement pools shrink (to one connection each at least) under it.
    #[arg(long, env = "BIZOS_DB_TOTAL_CONNECTIONS", default_value = "64", value_parser = var(positive::<u32>))]
    pub db_total_connections: u32,
    /// Jobs run at once.
    #[arg(long, env = "BIZOS_WORKER_CONCURRENCY", default_value = "4", value_parser = var(positive::<usize>))]
    pub concurrency: usize,
    /// Seconds between looks at the queue when no NOTIFY arrives (a
    /// fallback: enqueued jobs wake the worker at once).
    #[arg(long, env = "BIZOS_WORKER_POLL_SECS", default_value = "5", value_parser = var(positive_seconds))]
    pub poll_secs: Duration,
    /// Address of `/healthz` and `/readyz`.
    #[arg(long, env = "BIZOS_WORKER_HEALTH_LISTEN", default_value = "127.0.0.1:8081", value_parser = var(number::<SocketAddr>))]
    pub health_listen: SocketAddr,
    /// On SIGTERM/SIGINT, seconds running jobs get to finish before they
    /// are released to another worker.
    #[arg(long, env = "BIZOS_SHUTDOWN_GRACE_SECS", default_value = "20", value_parser = var(seconds))]
    pub shutdown_grace_secs: Duration,
    /// Name of this worker in jobs.locked_by [default: host:pid].
    #[arg(long, env = "BIZOS_WORKER_NAME", value_parser = var(text))]
    pub name: Option<String>,
    /// Rows per process_import transaction.
    #[command(flatten)]
    pub imports: crate::imports::ImportArgs,
    /// Seconds between the idempotency purges of every tenant (one job per
    /// tenant and period).
    #[arg(long, env = "BIZOS_WORKER_PURGE_EVERY_SECS", default_value = "3600", value_parser = var(positive_seconds))]
    pub purge_every_secs: Duration,
    /// Seconds between the worker's calls of schedules_fire_due(), which
    /// enqueues the jobs of due schedules where pg_cron does not reach the
    /// database (beside pg_cron harmless: a period has one job).
    #[arg(long, env = "BIZOS_WORKER_SCHEDULES_EVERY_SECS", default_value = "60", value_parser = var(positive_seconds))]
    pub schedules_every_secs: Duration,
    /// E-mail delivery (`email.send`).
    #[command(flatten)]
    pub mail: crate::email::MailArgs,
    /// Directory of the knowledge base's embedding model (config.json,
    /// tokenizer.json, model.safetensors of all-MiniLM-L6-v2; `scripts/dev`
    /// installs it). Unset, this worker runs no `kb.ingest` jobs.
    #[arg(long, env = "BIZOS_KB_MODEL_DIR")]
    pub kb_model_dir: Option<std::path::PathBuf>,
    /// The stored files whose dead uploads `storage.sweep` removes (the
    /// same variables as `bizos serve`).
    #[command(flatten)]
    pub storage: crate::files::StorageArgs,
    /// The LLM gateway of system work (`digest.build`; the same variables
    /// as `bizos serve`).
    #[command(flatten)]
    pub llm: crate::llm::LlmArgs,
    /// Webhook delivery (`webhook.deliver`; the same variables as `bizos
    /// serve`).
    #[command(flatten)]
    pub webhooks: crate::webhooks::WebhookArgs,
    /// Seconds between sweeps for the bytes of dead uploads (a
    /// `storage.sweep` job for each tenant that has any).
    #[arg(long, env = "BIZOS_WORKER_SWEEP_EVERY_SECS", default_value = "300", value_parser = var(positive_seconds))]
    pub sweep_every_secs: Duration,
    /// Bearer token the scraper must send to the health port's /metrics (at
    /// least 16 bytes), when that port is reachable by more than the scraper.
    #[arg(long, env = "BIZOS_METRICS_TOKEN", hide_env_values = true, value_parser = var(crate::metrics::token))]
    pub metrics_token: Option<SecretString>,
    /// Connection string of the maintenance login of `vector.retrain`
    /// (REINDEX INDEX CONCURRENTLY of bizos_ivf indexes that need it: a
    /// member of the role that owns the schema's tables, e.g. bizos_owner).
    /// Unset: this worker does not run those jobs.
    #[arg(long, env = "BIZOS_INDEX_MAINTENANCE_URL", hide_env_values = true, value_parser = var(secret))]
    pub index_maintenance_url: Option<SecretString>,
    /// Base URL of an OTLP/HTTP (protobuf) receiver, e.g.
    /// http://collector:4318; spans go to <url>/v1/traces. Unset, no traces
    /// are exported.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_parser = var(http_url))]
    pub otel_exporter_otlp_endpoint: Option<String>,
    /// `service.name` of the exported traces.
    #[arg(long, env = "OTEL_SERVICE_NAME", default_value = "bizos-worker", value_parser = var(text))]
    pub otel_service_name: String,
    /// Milliseconds between exports of buffered spans (all are sent on
    /// shutdown).
    #[arg(long, env = "OTEL_BSP_SCHEDULE_DELAY", default_value = "5000", value_parser = var(positive_millis))]
    pub otel_bsp_schedule_delay: Duration,
    /// Log lines as text or JSON.
    #[arg(long, env = "BIZOS_LOG_FORMAT", default_value = "pretty", value_parser = var(crate::telemetry::log_format).choices(&["pretty", "json"]))]
    pub log_format: LogFormat,
}

impl TryFrom<WorkerArgs> for WorkerSettings {
    type Error = ConfigError;

    fn try_from(a: WorkerArgs) -> Result<Self, ConfigError> {
        let database_url = a.worker_url.ok_or(ConfigError::Missing {
            var: "BIZOS_WORKER_URL",
            why: "the connection string of the worker's login role (bizos_worker)",
        })?;
        let host = std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "worker".into());
        Ok(WorkerSettings {
            database_url,
            concurrency: a.concurrency,
            poll_interval: a.poll_secs,
            shutdown_grace: a.shutdown_grace_secs,
            health_listen: a.health_listen,
            name: a
                .name
                .unwrap_or_else(|| format!("{host}:{}", std::process::id())),
            import_batch_rows: a.imports.import_batch_rows,
            purge_every: a.purge_every_secs,
            schedules_every: a.schedules_every_secs,
            mail: a.mail.settings()?,
            kb_model_dir: a.kb_model_dir,
            storage: a.storage.settings()?,
            upload_timeout: a.storage.upload_timeout_secs,
            llm: a.llm.settings()?,
            webhooks: a.webhooks.settings()?,
            sweep_every: a.sweep_every_secs,
            metrics_token: a.metrics_token,
            index_maintenance_url: a.index_maintenance_url,
            otel: OtelSettings {
                endpoint: a.otel_exporter_otlp_endpoint,
                service_name: a.otel_service_name,
                schedule_delay: a.otel_bsp_schedule_delay,
            },
            secrets_file: a.secrets_file,
            placement_pool_max: a.placement_pool_max,
            db_total_connections: a.db_total_connections,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// `bizos worker` settings from flags only (no process environment).
    fn worker(flags: &[&str]) -> Result<WorkerSettings, ConfigError> {
        WorkerSettings::try_from(crate::vars::from_flags::<WorkerArgs>(flags)?)
    }

    #[test]
    fn the_worker_has_its_own_service_name_metrics_token_and_schedule_period() {
        let url = "--worker-url=postgres://bizos_worker@127.0.0.1/bizos";
        let w = worker(&[url]).unwrap();
        assert!(w.otel.endpoint.is_none() && w.metrics_token.is_none());
        assert_eq!(w.otel.service_name, "bizos-worker");
        assert_eq!(w.otel.schedule_delay, Duration::from_secs(5));
        assert_eq!(w.schedules_every, Duration::from_secs(60));
        let w = worker(&[
            url,
            "--otel-exporter-otlp-endpoint=http://collector:4318",
            "--otel-service-name=worker-a",
            "--metrics-token=0123456789abcdef",
            "--schedules-every-secs=5",
        ])
        .unwrap();
        assert_eq!(w.otel.endpoint.as_deref(), Some("http://collector:4318"));
        assert_eq!(w.otel.service_name, "worker-a");
        assert!(w.metrics_token.is_some());
        assert_eq!(w.schedules_every, Duration::from_secs(5));
        for (flag, var) in [
            ("--metrics-token=short", "BIZOS_METRICS_TOKEN"),
            (
                "--otel-exporter-otlp-endpoint=collector:4318",
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ),
        ] {
            let err = worker(&[url, flag]).expect_err(flag).to_string();
            assert!(
                err.starts_with(&format!("{var} is invalid")),
                "{flag}: {err}"
            );
        }
        let err = worker(&[url, "--schedules-every-secs=0"]).unwrap_err();
        assert!(
            err.to_string().contains("must be greater than zero"),
            "{err}"
        );
    }

    #[test]
    fn the_worker_reads_the_storage_settings_of_serve() {
        let url = "--worker-url=postgres://bizos_worker@127.0.0.1/bizos";
        let w = worker(&[url]).unwrap();
        assert!(
            matches!(&w.storage, StorageSettings::Local { root } if root == &PathBuf::from("/var/lib/bizos/files"))
        );
        assert_eq!(w.upload_timeout, Duration::from_secs(900));
        assert_eq!(w.sweep_every, Duration::from_secs(300));
        let w = worker(&[
            url,
            "--storage=s3",
            "--s3-bucket=files",
            "--s3-endpoint=http://127.0.0.1:9000",
            "--upload-timeout-secs=120",
            "--sweep-every-secs=30",
        ])
        .unwrap();
        assert!(
            matches!(&w.storage, StorageSettings::S3 { bucket, endpoint: Some(e), .. }
                     if bucket == "files" && e == "http://127.0.0.1:9000"),
            "{:?}",
            w.storage
        );
        assert_eq!(w.upload_timeout, Duration::from_secs(120));
        assert_eq!(w.sweep_every, Duration::from_secs(30));
        let err = worker(&[url, "--storage=s3"]).unwrap_err().to_string();
        assert!(err.contains("BIZOS_S3_BUCKET"), "{err}");
        let err = worker(&[url, "--sweep-every-secs=0"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("SWEEP_EVERY_SECS"), "{err}");
    }
}
