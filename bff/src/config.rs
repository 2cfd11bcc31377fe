//! Typed configuration of `bizos serve`: the aggregate of the parts'
//! settings. Each part declares its own variables beside its settings type
//! (`JwtArgs` in [`crate::jwt`], `StorageArgs` in [`crate::files`],
//! `LlmArgs`, `WebhookArgs`, `ImportArgs`, the worker's `WorkerArgs` …) with
//! the kit of [`crate::vars`]; [`ServeArgs`] flattens them with the
//! server's own variables into one command, so `bizos serve --help`
//! documents them all, and [`Settings`] is what the server is built from.
//! A bad value is refused at startup with an error that names the variable
//! (`BIZOS_X is invalid: …`); a variable set to blanks counts as unset.
//! Secrets are `secrecy` types: never printed by `--help`
//! (`hide_env_values`) or `Debug`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use secrecy::SecretString;

use crate::api_keys::client_ip::{self, TrustedProxies};
use crate::imports::ImportArgs;
use crate::jwt::{JwtArgs, JwtSettings};
use crate::llm::{LlmArgs, LlmSettings};
use crate::vars::{
    http_url, number, positive, positive_millis, positive_seconds, seconds, secret, text, var,
    ConfigError,
};
use crate::webhooks::{WebhookArgs, WebhookSettings};

// The parts' settings under the paths tools and tests have always used.
pub use crate::files::{StorageArgs, StorageSettings};
pub use crate::telemetry::{LogFormat, OtelSettings};

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
    /// The LLM gateway.
    pub llm: LlmSettings,
    /// The knowledge base's embedding model; None: no knowledge-base
    /// search or answers on this server.
    pub kb_model_dir: Option<std::path::PathBuf>,
    /// Reverse proxies whose X-Forwarded-For is believed.
    pub trusted_proxies: TrustedProxies,
    /// Webhooks: the master key of signing secrets, the SSRF guard.
    pub webhooks: WebhookSettings,
    /// Routing to placements, the operator API.
    pub placement: crate::placement::PlacementSettings,
    /// Self-service sign-up, invitations by link, the first-party login.
    pub signup: crate::signup::SignupSettings,
    /// The payment providers' webhook secrets.
    pub payments: crate::payments::PaymentSettings,
}

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

    /// Token verification: an HS256 secret, an OIDC provider's JWKS, or both.
    #[command(flatten)]
    pub jwt: JwtArgs,

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
    #[arg(long, env = "BIZOS_LOG_FORMAT", default_value = "pretty", value_parser = var(crate::telemetry::log_format).choices(&["pretty", "json"]))]
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
    #[arg(long, env = "BIZOS_IDEMPOTENCY_TTL_HOURS", default_value = "24", value_parser = var(crate::idempotency::ttl_hours))]
    pub idempotency_ttl_hours: Duration,
    /// Rows per process_import transaction.
    #[command(flatten)]
    pub imports: ImportArgs,

    /// Address of the internal listener serving Prometheus metrics at
    /// /metrics (e.g. 127.0.0.1:9464; never the public API listener: they
    /// tell traffic, error rates and pool sizes, though no tenant data).
    /// Unset, no metrics are served.
    #[arg(long, env = "BIZOS_METRICS_LISTEN", value_parser = var(number::<SocketAddr>))]
    pub metrics_listen: Option<SocketAddr>,
    /// Bearer token the scraper must send to /metrics (at least 16 bytes),
    /// when the metrics listener is reachable by more than the scraper.
    #[arg(long, env = "BIZOS_METRICS_TOKEN", hide_env_values = true, value_parser = var(crate::metrics::token))]
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
    pub llm: LlmArgs,

    /// Directory of the knowledge base's embedding model (config.json,
    /// tokenizer.json, model.safetensors of all-MiniLM-L6-v2; `scripts/dev`
    /// installs it). Unset, /api/kb/search and /api/kb/ask answer 503.
    #[arg(long, env = "BIZOS_KB_MODEL_DIR")]
    pub kb_model_dir: Option<std::path::PathBuf>,

    /// Reverse proxies in front of the BFF (comma-separated addresses or
    /// CIDR blocks). A request from one of them is taken to come from the
    /// right-most untrusted address of X-Forwarded-For (the allowed IPs of
    /// API keys are checked against it). Unset: the connection's peer.
    #[arg(long, env = "BIZOS_TRUSTED_PROXIES", default_value = "", value_parser = var(client_ip::parse))]
    pub trusted_proxies: TrustedProxies,
    /// Webhooks: the master key of signing secrets, the SSRF guard, the
    /// delivery settings (shared with `bizos worker`).
    #[command(flatten)]
    pub webhooks: WebhookArgs,
    /// Tenant placements: secrets, pools, the operator API.
    #[command(flatten)]
    pub placement: crate::placement::PlacementArgs,
    /// Self-service sign-up, invitations by link, the first-party login.
    #[command(flatten)]
    pub signup: crate::signup::SignupArgs,
    /// Payment providers: the webhook secrets of Stripe and Midtrans.
    #[command(flatten)]
    pub payments: crate::payments::PaymentArgs,
}

impl TryFrom<ServeArgs> for Settings {
    type Error = ConfigError;

    /// The checks that span variables.
    fn try_from(a: ServeArgs) -> Result<Self, ConfigError> {
        let app_database_url = a.app_url.ok_or(ConfigError::Missing {
            var: "BIZOS_APP_URL",
            why: "the connection string of the BFF's login role (bizos_app)",
        })?;
        let jwt = a.jwt.settings()?;
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
        let signup = a.signup.settings(jwt.hs256_secret.clone())?;
        Ok(Settings {
            listen: a.listen,
            app_database_url,
            db_max_connections: a.db_max_connections,
            db_acquire_timeout: a.db_acquire_timeout_secs,
            jwt,
            body_limit_bytes: a.body_limit_bytes,
            request_timeout: a.request_timeout_secs,
            shutdown_grace: a.shutdown_grace_secs,
            log_format: a.log_format,
            storage,
            upload_max_bytes: a.upload_max_bytes,
            upload_timeout,
            idempotency_ttl: a.idempotency_ttl_hours,
            import_batch_rows: a.imports.import_batch_rows,
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
            placement: a.placement.try_into()?,
            signup,
            payments: a.payments.settings()?,
        })
    }
}

impl Settings {
    /// Reads settings through `get` instead of the process environment
    /// (tests): the same variables, defaults and checks as `bizos serve`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Settings::try_from(crate::vars::from_lookup::<ServeArgs>(get)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::path::PathBuf;

    use clap::{Args, Command};

    use crate::vars::env_name;

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
}
