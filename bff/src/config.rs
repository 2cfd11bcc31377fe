//! Typed configuration of `bizos serve`. [`ServeArgs`] declares every
//! variable once — its flag, its `BIZOS_*` variable, its default and how it
//! is parsed — so `bizos serve --help` documents them all; [`Settings`] is
//! what the server is built from. A bad value is refused at startup with an
//! error that names the variable (`BIZOS_X is invalid: …`); a variable set
//! to blanks counts as unset. Secrets are `secrecy` types: never printed by
//! `--help` (`hide_env_values`) or `Debug`.

use std::ffi::{OsStr, OsString};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{PossibleValue, TypedValueParser};
use clap::error::ErrorKind;
use clap::{Arg, Args, Command, FromArgMatches};
use secrecy::SecretString;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{var} is required: {why}")]
    Missing {
        var: &'static str,
        why: &'static str,
    },
    /// A value refused while parsing: `BIZOS_X is invalid: …`.
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageKind {
    Local,
    S3,
}

#[derive(Debug, Clone)]
pub struct JwtSettings {
    /// HS256 shared secret (at least 32 bytes).
    pub hs256_secret: Option<SecretString>,
    /// JWKS endpoint of an OIDC provider for RS256 tokens.
    pub jwks_url: Option<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub leeway: Duration,
}

/// Where uploaded files live (SPEC STG).
#[derive(Debug, Clone)]
pub enum StorageSettings {
    /// A directory on this machine (`BIZOS_STORAGE=local`, the default).
    Local { root: PathBuf },
    /// An S3-compatible service (`BIZOS_STORAGE=s3`).
    S3 {
        bucket: String,
        region: String,
        /// For S3-compatible services (MinIO, Ceph, R2 …); AWS when absent.
        endpoint: Option<String>,
        access_key_id: Option<String>,
        secret_access_key: Option<SecretString>,
    },
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    /// DSN of the BFF's login role (never a superuser or BYPASSRLS role).
    pub app_database_url: SecretString,
    pub db_max_connections: u32,
    pub db_acquire_timeout: Duration,
    pub jwt: JwtSettings,
    pub body_limit_bytes: usize,
    pub request_timeout: Duration,
    pub shutdown_grace: Duration,
    pub log_format: LogFormat,
    pub storage: StorageSettings,
    /// Upper bound of any upload; each bucket has its own, lower limit.
    pub upload_max_bytes: u64,
    /// Time limit of upload requests (imports of large files).
    pub upload_timeout: Duration,
    /// How long idempotency keys are kept (at least 24 hours).
    pub idempotency_ttl: Duration,
    /// Rows per `process_import` transaction.
    pub import_batch_rows: u32,
    /// The internal listener of `/metrics`; unset, no metrics are served.
    pub metrics_listen: Option<SocketAddr>,
    /// Bearer token `/metrics` requires, when set.
    pub metrics_token: Option<SecretString>,
    pub otel: OtelSettings,
    /// The LLM gateway (issue 15).
    pub llm: crate::llm::LlmSettings,
    /// The knowledge base's embedding model; None: no knowledge-base
    /// search or answers on this server.
    pub kb_model_dir: Option<std::path::PathBuf>,
    /// Reverse proxies whose X-Forwarded-For is believed.
    pub trusted_proxies: crate::api_keys::client_ip::TrustedProxies,
    /// Webhooks: the master key of signing secrets, the SSRF guard.
    pub webhooks: crate::webhooks::WebhookSettings,
}

/// Trace export (the standard OpenTelemetry variables).
#[derive(Debug, Clone)]
pub struct OtelSettings {
    /// Base URL of an OTLP/HTTP receiver; traces are exported when set.
    pub endpoint: Option<String>,
    /// `service.name` of the exported traces.
    pub service_name: String,
    /// How often buffered spans are sent.
    pub schedule_delay: Duration,
}

pub const MIN_HS256_SECRET_BYTES: usize = 32;
/// The largest batch process_import takes (its `batch_size` check,
/// sql/api/imports.sql): a larger BIZOS_IMPORT_BATCH_ROWS is refused at
/// start rather than by every import.
pub const MAX_IMPORT_BATCH_ROWS: u32 = 50_000;

/// The variables of `bizos serve`. Each is also a flag: `--x-y` for
/// `BIZOS_X_Y` (a flag wins over its variable).
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "BIZOS_LISTEN", default_value = "127.0.0.1:8080", value_parser = var(number::<SocketAddr>))]
    pub listen: SocketAddr,
    /// Connection string of the BFF's login role (bizos_app). Required.
    #[arg(long, env = "BIZOS_APP_URL", hide_env_values = true, value_parser = var(secret))]
    pub app_url: Option<SecretString>,

    /// HS256 secret, at least 32 bytes; this or --jwt-jwks-url is required.
    #[arg(long, env = "BIZOS_JWT_SECRET", hide_env_values = true, value_parser = var(hs256_secret))]
    pub jwt_secret: Option<SecretString>,
    /// JWKS URL of an OIDC provider for RS256 tokens (cached; refetched on an
    /// unknown key id at most every 30 s).
    #[arg(long, env = "BIZOS_JWT_JWKS_URL", value_parser = var(http_url))]
    pub jwt_jwks_url: Option<String>,
    /// Required `iss` of tokens, when set.
    #[arg(long, env = "BIZOS_JWT_ISSUER", value_parser = var(text))]
    pub jwt_issuer: Option<String>,
    /// Required `aud` of tokens, when set.
    #[arg(long, env = "BIZOS_JWT_AUDIENCE", value_parser = var(text))]
    pub jwt_audience: Option<String>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds.
    #[arg(long, env = "BIZOS_JWT_LEEWAY_SECS", default_value = "30", value_parser = var(seconds))]
    pub jwt_leeway_secs: Duration,

    /// Size of the connection pool.
    #[arg(long, env = "BIZOS_DB_MAX_CONNECTIONS", default_value = "10", value_parser = var(positive::<u32>))]
    pub db_max_connections: u32,
    /// Seconds to wait for a pooled connection before answering 503.
    #[arg(long, env = "BIZOS_DB_ACQUIRE_TIMEOUT_SECS", default_value = "5", value_parser = var(positive_seconds))]
    pub db_acquire_timeout_secs: Duration,

    /// Request body limit of JSON routes (413 beyond).
    #[arg(long, env = "BIZOS_BODY_LIMIT_BYTES", default_value = "2097152", value_parser = var(positive::<usize>))]
    pub body_limit_bytes: usize,
    /// Per-request time limit in seconds (503 beyond).
    #[arg(long, env = "BIZOS_REQUEST_TIMEOUT_SECS", default_value = "30", value_parser = var(positive_seconds))]
    pub request_timeout_secs: Duration,
    /// On SIGTERM/SIGINT, seconds in-flight requests get to finish.
    #[arg(long, env = "BIZOS_SHUTDOWN_GRACE_SECS", default_value = "20", value_parser = var(seconds))]
    pub shutdown_grace_secs: Duration,
    /// Log lines as text, or one JSON object per line (filter: RUST_LOG,
    /// default info,sqlx=warn,tower_http=info).
    #[arg(long, env = "BIZOS_LOG_FORMAT", default_value = "pretty", value_parser = var(log_format).choices(&["pretty", "json"]))]
    pub log_format: LogFormat,

    /// Where uploaded files go (shared with `bizos worker`, which sweeps them).
    #[command(flatten)]
    pub storage: StorageArgs,

    /// Ceiling of any upload in bytes (413 beyond); every bucket has its own,
    /// lower limit.
    #[arg(long, env = "BIZOS_UPLOAD_MAX_BYTES", default_value = "536870912", value_parser = var(positive::<u64>))]
    pub upload_max_bytes: u64,
    /// Hours an Idempotency-Key is kept (at least 24); expired ones are
    /// purged hourly.
    #[arg(long, env = "BIZOS_IDEMPOTENCY_TTL_HOURS", default_value = "24", value_parser = var(ttl_hours))]
    pub idempotency_ttl_hours: Duration,
    /// Rows per process_import transaction (1 to 50000).
    #[arg(long, env = "BIZOS_IMPORT_BATCH_ROWS", default_value = "2000", value_parser = var(import_batch_rows))]
    pub import_batch_rows: u32,

    /// Address of the internal listener serving Prometheus metrics at
    /// /metrics (e.g. 127.0.0.1:9464; never the public API listener: they
    /// tell traffic, error rates and pool sizes, though no tenant data).
    /// Unset, no metrics are served.
    #[arg(long, env = "BIZOS_METRICS_LISTEN", value_parser = var(number::<SocketAddr>))]
    pub metrics_listen: Option<SocketAddr>,
    /// Bearer token the scraper must send to /metrics (at least 16 bytes),
    /// when the metrics listener is reachable by more than the scraper.
    #[arg(long, env = "BIZOS_METRICS_TOKEN", hide_env_values = true, value_parser = var(metrics_token))]
    pub metrics_token: Option<SecretString>,
    /// Base URL of an OTLP/HTTP (protobuf) receiver, e.g.
    /// http://collector:4318; spans go to <url>/v1/traces. Unset, no traces
    /// are exported.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_parser = var(http_url))]
    pub otel_exporter_otlp_endpoint: Option<String>,
    /// `service.name` of the exported traces.
    #[arg(long, env = "OTEL_SERVICE_NAME", default_value = "bizos-bff", value_parser = var(text))]
    pub otel_service_name: String,
    /// Milliseconds between exports of buffered spans (all are sent on
    /// shutdown).
    #[arg(long, env = "OTEL_BSP_SCHEDULE_DELAY", default_value = "5000", value_parser = var(positive_millis))]
    pub otel_bsp_schedule_delay: Duration,

    /// The LLM gateway: keys, timeouts, budget, breaker.
    #[command(flatten)]
    pub llm: crate::llm::LlmArgs,

    /// Directory of the knowledge base's embedding model (config.json,
    /// tokenizer.json, model.safetensors of all-MiniLM-L6-v2; `scripts/dev`
    /// installs it). Unset, /api/kb/search and /api/kb/ask answer 503.
    #[arg(long, env = "BIZOS_KB_MODEL_DIR")]
    pub kb_model_dir: Option<std::path::PathBuf>,

    /// Reverse proxies in front of the BFF (comma-separated addresses or
    /// CIDR blocks). A request from one of them is taken to come from the
    /// right-most untrusted address of X-Forwarded-For (the allowed IPs of
    /// API keys are checked against it). Unset: the connection's peer.
    #[arg(long, env = "BIZOS_TRUSTED_PROXIES", default_value = "", value_parser = var(crate::api_keys::client_ip::parse))]
    pub trusted_proxies: crate::api_keys::client_ip::TrustedProxies,
    /// Webhooks: the master key of signing secrets, the SSRF guard, the
    /// delivery settings (shared with `bizos worker`).
    #[command(flatten)]
    pub webhooks: crate::webhooks::WebhookArgs,
}

/// Where uploaded files live: the variables `bizos serve` (which stores
/// them) and `bizos worker` (which sweeps the bytes of dead uploads,
/// `storage.sweep`) share.
#[derive(Args, Debug, Clone)]
pub struct StorageArgs {
    /// Where uploaded files go: a directory, or an S3-compatible service.
    #[arg(long, env = "BIZOS_STORAGE", default_value = "local", value_parser = var(storage_kind).choices(&["local", "s3"]))]
    pub storage: StorageKind,
    /// The directory of local storage (created if missing).
    #[arg(long, env = "BIZOS_DATA_DIR", default_value = "/var/lib/bizos/files", value_parser = var(path))]
    pub data_dir: PathBuf,
    /// The S3 bucket (required with --storage s3).
    #[arg(long, env = "BIZOS_S3_BUCKET", value_parser = var(text))]
    pub s3_bucket: Option<String>,
    /// The bucket's region.
    #[arg(long, env = "BIZOS_S3_REGION", default_value = "us-east-1", value_parser = var(text))]
    pub s3_region: String,
    /// Endpoint of an S3-compatible service (MinIO, Ceph, R2 …), path-style
    /// requests; AWS when unset.
    #[arg(long, env = "BIZOS_S3_ENDPOINT", value_parser = var(text))]
    pub s3_endpoint: Option<String>,
    /// S3 access key id (else the AWS_* variables and instance credentials).
    #[arg(long, env = "BIZOS_S3_ACCESS_KEY_ID", value_parser = var(text))]
    pub s3_access_key_id: Option<String>,
    /// S3 secret access key (else the AWS_* variables and instance credentials).
    #[arg(long, env = "BIZOS_S3_SECRET_ACCESS_KEY", hide_env_values = true, value_parser = var(secret))]
    pub s3_secret_access_key: Option<SecretString>,
    /// Time limit of upload requests in seconds; an upload intent older than
    /// this plus 60 s is swept even if its BFF lives (give every BFF and worker
    /// of a database the same value).
    #[arg(long, env = "BIZOS_UPLOAD_TIMEOUT_SECS", default_value = "900", value_parser = var(positive_seconds))]
    pub upload_timeout_secs: Duration,
}

impl StorageArgs {
    /// The backend, checking the variables that depend on each other.
    pub fn settings(&self) -> Result<StorageSettings, ConfigError> {
        Ok(match self.storage {
            StorageKind::Local => StorageSettings::Local {
                root: self.data_dir.clone(),
            },
            StorageKind::S3 => StorageSettings::S3 {
                bucket: self.s3_bucket.clone().ok_or(ConfigError::Missing {
                    var: "BIZOS_S3_BUCKET",
                    why: "BIZOS_STORAGE=s3 needs the bucket name",
                })?,
                region: self.s3_region.clone(),
                endpoint: self.s3_endpoint.clone(),
                access_key_id: self.s3_access_key_id.clone(),
                secret_access_key: self.s3_secret_access_key.clone(),
            },
        })
    }
}

impl TryFrom<ServeArgs> for Settings {
    type Error = ConfigError;

    /// The checks that span variables.
    fn try_from(a: ServeArgs) -> Result<Self, ConfigError> {
        let app_database_url = a.app_url.ok_or(ConfigError::Missing {
            var: "BIZOS_APP_URL",
            why: "the connection string of the BFF's login role (bizos_app)",
        })?;
        if a.jwt_secret.is_none() && a.jwt_jwks_url.is_none() {
            return Err(ConfigError::Missing {
                var: "BIZOS_JWT_SECRET",
                why: "set BIZOS_JWT_SECRET (HS256) or BIZOS_JWT_JWKS_URL (RS256), or both",
            });
        }
        let upload_timeout = a.storage.upload_timeout_secs;
        let storage = a.storage.settings()?;
        if a.llm.llm_budget_ms >= a.request_timeout_secs {
            return Err(ConfigError::Invalid(format!(
                "BIZOS_LLM_BUDGET_MS is invalid: must be below BIZOS_REQUEST_TIMEOUT_SECS ({} ms), \
                 so that the fallback answers before the request times out",
                a.request_timeout_secs.as_millis()
            )));
        }
        let llm = a.llm.settings()?;
        let webhooks = a.webhooks.settings()?;
        Ok(Settings {
            listen: a.listen,
            app_database_url,
            db_max_connections: a.db_max_connections,
            db_acquire_timeout: a.db_acquire_timeout_secs,
            jwt: JwtSettings {
                hs256_secret: a.jwt_secret,
                jwks_url: a.jwt_jwks_url,
                issuer: a.jwt_issuer,
                audience: a.jwt_audience,
                leeway: a.jwt_leeway_secs,
            },
            body_limit_bytes: a.body_limit_bytes,
            request_timeout: a.request_timeout_secs,
            shutdown_grace: a.shutdown_grace_secs,
            log_format: a.log_format,
            storage,
            upload_max_bytes: a.upload_max_bytes,
            upload_timeout,
            idempotency_ttl: a.idempotency_ttl_hours,
            import_batch_rows: a.import_batch_rows,
            metrics_listen: a.metrics_listen,
            metrics_token: a.metrics_token,
            otel: OtelSettings {
                endpoint: a.otel_exporter_otlp_endpoint,
                service_name: a.otel_service_name,
                schedule_delay: a.otel_bsp_schedule_delay,
            },
            llm,
            kb_model_dir: a.kb_model_dir,
            trusted_proxies: a.trusted_proxies,
            webhooks,
        })
    }
}

impl Settings {
    /// Reads settings through `get` instead of the process environment
    /// (tests): the same variables, defaults and checks as `bizos serve`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut argv: Vec<OsString> = vec!["serve".into()];
        let cmd = ServeArgs::augment_args(Command::new("serve")).mut_args(|arg| {
            let value = arg
                .get_env()
                .and_then(|var| get(&var.to_string_lossy()))
                .filter(|v| !v.trim().is_empty());
            if let (Some(value), Some(long)) = (value, arg.get_long()) {
                argv.push(format!("--{long}={value}").into());
            }
            // Only `get` is read, never the process environment.
            arg.env(None)
        });
        let parsed = cmd
            .try_get_matches_from(argv)
            .and_then(|m| ServeArgs::from_arg_matches(&m))
            .map_err(|e| ConfigError::Invalid(first_line(&e)))?;
        Settings::try_from(parsed)
    }
}

/// A clap error's message without clap's `error: ` prefix and usage lines.
fn first_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let line = text.lines().next().unwrap_or_default();
    line.strip_prefix("error: ").unwrap_or(line).to_owned()
}

/// Treats variables set to blanks as unset, for every argument of `cmd`
/// and its subcommands (clap would hand `""` to the value parser).
pub fn blank_env_is_unset(cmd: Command) -> Command {
    cmd.mut_args(|arg| {
        let blank = arg
            .get_env()
            .and_then(std::env::var_os)
            .is_some_and(|v| v.to_string_lossy().trim().is_empty());
        if blank {
            arg.env(None)
        } else {
            arg
        }
    })
    .mut_subcommands(blank_env_is_unset)
}

/// A value parser whose refusals name the argument's variable:
/// `BIZOS_X is invalid: <why>`.
#[derive(Clone)]
pub struct Var<T> {
    parse: fn(&str) -> Result<T, String>,
    choices: &'static [&'static str],
}

pub(crate) fn var<T>(parse: fn(&str) -> Result<T, String>) -> Var<T> {
    Var {
        parse,
        choices: &[],
    }
}

impl<T> Var<T> {
    /// The values to list in `--help`.
    fn choices(self, choices: &'static [&'static str]) -> Self {
        Var { choices, ..self }
    }
}

impl<T: Clone + Send + Sync + 'static> TypedValueParser for Var<T> {
    type Value = T;

    fn parse_ref(&self, cmd: &Command, arg: Option<&Arg>, value: &OsStr) -> Result<T, clap::Error> {
        let refuse = |why: String| {
            // The variable; `--x-y` stands for BIZOS_X_Y (also when
            // `Settings::from_lookup` has taken the variables off).
            let name = arg.map_or_else(String::new, |a| match a.get_env() {
                Some(var) => var.to_string_lossy().into_owned(),
                None => env_name(a.get_long().unwrap_or_default()),
            });
            clap::Error::raw(
                ErrorKind::ValueValidation,
                format!("{name} is invalid: {why}\n"),
            )
            .with_cmd(cmd)
        };
        let text = value
            .to_str()
            .ok_or_else(|| refuse("is not UTF-8".into()))?;
        (self.parse)(text).map_err(refuse)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        if self.choices.is_empty() {
            return None;
        }
        Some(Box::new(self.choices.iter().map(PossibleValue::new)))
    }
}

/// The variable of flag `--x-y`: `BIZOS_X_Y`, or `OTEL_X_Y` for the
/// standard OpenTelemetry variables (`--otel-…`).
pub fn env_name(long: &str) -> String {
    let name = long.replace('-', "_").to_uppercase();
    if name.starts_with("OTEL_") {
        name
    } else {
        format!("BIZOS_{name}")
    }
}

fn metrics_token(v: &str) -> Result<SecretString, String> {
    if v.len() < 16 {
        return Err("must be at least 16 bytes".into());
    }
    Ok(SecretString::from(v))
}

pub(crate) fn text(v: &str) -> Result<String, String> {
    Ok(v.to_owned())
}

fn path(v: &str) -> Result<PathBuf, String> {
    Ok(PathBuf::from(v))
}

pub(crate) fn secret(v: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(v))
}

pub(crate) fn number<T>(v: &str) -> Result<T, String>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    v.trim().parse().map_err(|e| format!("{v:?}: {e}"))
}

pub(crate) fn positive<T>(v: &str) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + Default,
    T::Err: std::fmt::Display,
{
    let n: T = number(v)?;
    if n <= T::default() {
        return Err("must be greater than zero".into());
    }
    Ok(n)
}

fn import_batch_rows(v: &str) -> Result<u32, String> {
    let n: u32 = positive(v)?;
    if n > MAX_IMPORT_BATCH_ROWS {
        return Err(format!("must be between 1 and {MAX_IMPORT_BATCH_ROWS}"));
    }
    Ok(n)
}

fn seconds(v: &str) -> Result<Duration, String> {
    number(v).map(Duration::from_secs)
}

pub(crate) fn positive_millis(v: &str) -> Result<Duration, String> {
    positive(v).map(Duration::from_millis)
}

pub(crate) fn positive_seconds(v: &str) -> Result<Duration, String> {
    positive(v).map(Duration::from_secs)
}

fn ttl_hours(v: &str) -> Result<Duration, String> {
    let hours: u64 = number(v)?;
    if hours < 24 {
        return Err("keys are kept at least 24 hours".into());
    }
    Ok(Duration::from_secs(hours * 3600))
}

/// The value is never repeated in the message.
fn hs256_secret(v: &str) -> Result<SecretString, String> {
    if v.len() < MIN_HS256_SECRET_BYTES {
        return Err(format!("must be at least {MIN_HS256_SECRET_BYTES} bytes"));
    }
    Ok(SecretString::from(v))
}

fn http_url(v: &str) -> Result<String, String> {
    if !(v.starts_with("https://") || v.starts_with("http://")) {
        return Err("must be an http(s) URL".into());
    }
    Ok(v.to_owned())
}

fn log_format(v: &str) -> Result<LogFormat, String> {
    match v {
        "pretty" => Ok(LogFormat::Pretty),
        "json" => Ok(LogFormat::Json),
        other => Err(format!("{other:?} is not one of pretty, json")),
    }
}

fn storage_kind(v: &str) -> Result<StorageKind, String> {
    match v {
        "local" => Ok(StorageKind::Local),
        "s3" => Ok(StorageKind::S3),
        other => Err(format!("{other:?} is not one of local, s3")),
    }
}

/// The variables of `bizos worker` (each also a flag, as for `bizos serve`).
#[derive(Args, Debug, Clone)]
pub struct WorkerArgs {
    /// Connection string of the worker's login role (bizos_worker). Required.
    #[arg(long, env = "BIZOS_WORKER_URL", hide_env_values = true, value_parser = var(secret))]
    pub worker_url: Option<SecretString>,
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
    /// Rows per process_import transaction (1 to 50000).
    #[arg(long, env = "BIZOS_IMPORT_BATCH_ROWS", default_value = "2000", value_parser = var(import_batch_rows))]
    pub import_batch_rows: u32,
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
    pub storage: StorageArgs,
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
    #[arg(long, env = "BIZOS_METRICS_TOKEN", hide_env_values = true, value_parser = var(metrics_token))]
    pub metrics_token: Option<SecretString>,
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
    #[arg(long, env = "BIZOS_LOG_FORMAT", default_value = "pretty", value_parser = var(log_format).choices(&["pretty", "json"]))]
    pub log_format: LogFormat,
}

impl TryFrom<WorkerArgs> for crate::worker::WorkerSettings {
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
        Ok(crate::worker::WorkerSettings {
            database_url,
            concurrency: a.concurrency,
            poll_interval: a.poll_secs,
            shutdown_grace: a.shutdown_grace_secs,
            health_listen: a.health_listen,
            name: a
                .name
                .unwrap_or_else(|| format!("{host}:{}", std::process::id())),
            import_batch_rows: a.import_batch_rows,
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
            otel: OtelSettings {
                endpoint: a.otel_exporter_otlp_endpoint,
                service_name: a.otel_service_name,
                schedule_delay: a.otel_bsp_schedule_delay,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    const BASE: [(&str, &str); 2] = [
        ("BIZOS_APP_URL", "postgres://bizos_app@127.0.0.1/bizos"),
        ("BIZOS_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
    ];

    fn serve_command() -> Command {
        ServeArgs::augment_args(Command::new("serve"))
    }

    /// `bizos worker` settings from flags only (no process environment).
    fn worker(flags: &[&str]) -> Result<crate::worker::WorkerSettings, ConfigError> {
        let cmd = WorkerArgs::augment_args(Command::new("worker")).mut_args(|a| a.env(None));
        let matches = cmd
            .try_get_matches_from(std::iter::once("worker").chain(flags.iter().copied()))
            .map_err(|e| ConfigError::Invalid(first_line(&e)))?;
        let args = WorkerArgs::from_arg_matches(&matches)
            .map_err(|e| ConfigError::Invalid(first_line(&e)))?;
        crate::worker::WorkerSettings::try_from(args)
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

    #[test]
    fn defaults_apply() {
        let s = settings(&BASE).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.db_max_connections, 10);
        assert_eq!(s.db_acquire_timeout, Duration::from_secs(5));
        assert_eq!(s.body_limit_bytes, 2 * 1024 * 1024);
        assert_eq!(s.request_timeout, Duration::from_secs(30));
        assert_eq!(s.shutdown_grace, Duration::from_secs(20));
        assert_eq!(s.log_format, LogFormat::Pretty);
        assert_eq!(s.jwt.leeway, Duration::from_secs(30));
        assert_eq!(s.upload_max_bytes, 512 * 1024 * 1024);
        assert_eq!(s.upload_timeout, Duration::from_secs(900));
        assert_eq!(s.idempotency_ttl, Duration::from_secs(24 * 3600));
        assert_eq!(s.import_batch_rows, 2000);
        assert!(s.metrics_listen.is_none() && s.metrics_token.is_none());
        assert!(s.otel.endpoint.is_none());
        assert_eq!(s.otel.service_name, "bizos-bff");
        assert_eq!(s.otel.schedule_delay, Duration::from_secs(5));
        assert!(
            matches!(&s.storage, StorageSettings::Local { root } if root == &PathBuf::from("/var/lib/bizos/files"))
        );
    }

    #[test]
    fn values_are_read_and_blanks_are_unset() {
        let mut pairs = BASE.to_vec();
        pairs.extend([
            ("BIZOS_DB_MAX_CONNECTIONS", " 32 "),
            ("BIZOS_LOG_FORMAT", "json"),
            ("BIZOS_IDEMPOTENCY_TTL_HOURS", "48"),
            ("BIZOS_BODY_LIMIT_BYTES", "  "),
            ("BIZOS_STORAGE", "s3"),
            ("BIZOS_S3_BUCKET", "files"),
            ("BIZOS_S3_ENDPOINT", "http://127.0.0.1:9000"),
        ]);
        let s = settings(&pairs).unwrap();
        assert_eq!(s.db_max_connections, 32);
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.idempotency_ttl, Duration::from_secs(48 * 3600));
        assert_eq!(s.body_limit_bytes, 2 * 1024 * 1024);
        match s.storage {
            StorageSettings::S3 {
                bucket,
                region,
                endpoint,
                ..
            } => {
                assert_eq!(bucket, "files");
                assert_eq!(region, "us-east-1");
                assert_eq!(endpoint.as_deref(), Some("http://127.0.0.1:9000"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_name_the_variable() {
        let err = settings(&[BASE[1]]).unwrap_err().to_string();
        assert!(err.contains("BIZOS_APP_URL"), "{err}");

        let err = settings(&[BASE[0]]).unwrap_err().to_string();
        assert!(err.contains("BIZOS_JWT_SECRET"), "{err}");

        let err = settings(&[BASE[0], ("BIZOS_JWT_SECRET", "short-secret")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("BIZOS_JWT_SECRET") && err.contains("32"),
            "{err}"
        );
        assert!(!err.contains("short-secret"), "{err}");

        for (var, value, why) in [
            ("BIZOS_DB_MAX_CONNECTIONS", "lots", "invalid digit"),
            ("BIZOS_BODY_LIMIT_BYTES", "0", "greater than zero"),
            ("BIZOS_LOG_FORMAT", "xml", "pretty, json"),
            ("BIZOS_STORAGE", "ftp", "local, s3"),
            ("BIZOS_LISTEN", "localhost", "invalid socket address"),
            ("BIZOS_JWT_JWKS_URL", "ftp://x/jwks", "http(s)"),
            ("BIZOS_IDEMPOTENCY_TTL_HOURS", "12", "24 hours"),
            ("BIZOS_METRICS_TOKEN", "short", "16 bytes"),
            ("BIZOS_METRICS_LISTEN", "9464", "invalid socket address"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318", "http(s)"),
            ("OTEL_BSP_SCHEDULE_DELAY", "0", "greater than zero"),
            ("BIZOS_UPLOAD_TIMEOUT_SECS", "-1", "invalid digit"),
            ("BIZOS_LLM_MASTER_KEY", "c2hvcnQ=", "32 bytes"),
            ("BIZOS_LLM_MASTER_KEY_ID", "a/b", "letters, digits"),
            (
                "BIZOS_LLM_BUDGET_MS",
                "30000",
                "below BIZOS_REQUEST_TIMEOUT_SECS",
            ),
            ("BIZOS_LLM_MAX_IN_FLIGHT", "0", "greater than zero"),
            ("BIZOS_IMPORT_BATCH_ROWS", "0", "greater than zero"),
            ("BIZOS_IMPORT_BATCH_ROWS", "50001", "between 1 and 50000"),
            (
                "BIZOS_LLM_KEYS",
                "sk-no-provider",
                "item 1 is not provider:key",
            ),
        ] {
            let mut bad = BASE.to_vec();
            bad.push((var, value));
            let err = settings(&bad).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("{var} is invalid: ")) && err.contains(why),
                "{var}: {err}"
            );
        }

        let err = settings(&[BASE[0], BASE[1], ("BIZOS_STORAGE", "s3")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("BIZOS_S3_BUCKET"), "{err}");
    }

    #[test]
    fn jwks_alone_is_enough() {
        let s = settings(&[
            BASE[0],
            ("BIZOS_JWT_JWKS_URL", "http://127.0.0.1:9/jwks.json"),
        ])
        .unwrap();
        assert!(s.jwt.hs256_secret.is_none());
        assert!(s.jwt.jwks_url.is_some());
    }

    #[test]
    fn every_variable_is_a_flag_of_the_same_name() {
        for arg in serve_command().get_arguments() {
            if arg.get_id() == "help" {
                continue;
            }
            let var = arg.get_env().expect("every setting has a variable");
            let long = arg.get_long().expect("every setting has a flag");
            assert_eq!(var.to_string_lossy(), env_name(long));
        }
    }

    #[test]
    fn secrets_never_show() {
        // In --help, even when set in the environment (this test's own
        // process: nothing else here reads these variables from it).
        let secrets = [
            ("BIZOS_JWT_SECRET", "jwt-secret-jwt-secret-jwt-secret-0001"),
            ("BIZOS_APP_URL", "postgres://bizos_app:pw-0002@db/bizos"),
            ("BIZOS_S3_SECRET_ACCESS_KEY", "s3-secret-0003"),
            ("BIZOS_METRICS_TOKEN", "metrics-token-0004"),
            (
                "BIZOS_LLM_MASTER_KEY",
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            ),
            ("BIZOS_LLM_KEYS_OPENAI", "sk-llm-secret-0005"),
            ("BIZOS_LLM_KEYS_GEMINI", "AIza-llm-secret-0006"),
            (
                "BIZOS_WEBHOOKS_MASTER_KEY",
                "HxwdHhscGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=",
            ),
        ];
        for (var, value) in secrets {
            std::env::set_var(var, value);
        }
        let help = serve_command().render_long_help().to_string();
        for (var, value) in secrets {
            std::env::remove_var(var);
            assert!(help.contains(var), "{help}");
            assert!(!help.contains(value), "{var} shows in --help:\n{help}");
        }
        // Nor in Debug output.
        let mut pairs = BASE.to_vec();
        pairs.extend([
            ("BIZOS_STORAGE", "s3"),
            ("BIZOS_S3_BUCKET", "b"),
            ("BIZOS_S3_SECRET_ACCESS_KEY", "s3-secret-0003"),
            (
                "BIZOS_LLM_KEYS_OPENAI",
                "sk-llm-secret-0005,sk-llm-secret-0007",
            ),
            ("BIZOS_LLM_KEYS", "openai:sk-llm-secret-0008, ollama:"),
            (
                "BIZOS_WEBHOOKS_MASTER_KEY",
                "HxwdHhscGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=",
            ),
        ]);
        let s = settings(&pairs).unwrap();
        assert_eq!(s.llm.platform_keys["openai"].len(), 3);
        assert_eq!(s.llm.platform_keys["ollama"].len(), 1, "a keyless provider");
        let debug = format!("{s:?}");
        for secret in [
            BASE[0].1,
            BASE[1].1,
            "s3-secret-0003",
            "sk-llm-secret",
            "HxwdHhscGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE",
        ] {
            assert!(!debug.contains(secret), "{debug}");
        }
    }

    #[test]
    fn help_documents_variables_and_defaults() {
        let help = serve_command().render_long_help().to_string();
        for needle in [
            "BIZOS_DB_MAX_CONNECTIONS",
            "[default: 10]",
            "BIZOS_LOG_FORMAT",
            "[default: pretty]",
            "BIZOS_DATA_DIR",
            "[default: /var/lib/bizos/files]",
            "BIZOS_IDEMPOTENCY_TTL_HOURS",
        ] {
            assert!(help.contains(needle), "{needle} missing from:\n{help}");
        }
    }

    #[test]
    fn blank_variables_are_unset() {
        std::env::set_var("BIZOS_CONFIG_TEST_BLANK", "   ");
        let cmd = blank_env_is_unset(
            Command::new("t").subcommand(
                Command::new("sub").arg(
                    Arg::new("x")
                        .long("x")
                        .env("BIZOS_CONFIG_TEST_BLANK")
                        .default_value("fallback"),
                ),
            ),
        );
        let m = cmd.try_get_matches_from(["t", "sub"]).unwrap();
        std::env::remove_var("BIZOS_CONFIG_TEST_BLANK");
        let sub = m.subcommand_matches("sub").unwrap();
        assert_eq!(sub.get_one::<String>("x").unwrap(), "fallback");
    }
}
