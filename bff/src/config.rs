//! Typed configuration from the environment. Every variable is documented in
//! README.md; an invalid value is an error that names the variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{var} is required: {why}")]
    Missing {
        var: &'static str,
        why: &'static str,
    },
    #[error("{var} is invalid: {why}")]
    Invalid { var: &'static str, why: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
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
}

pub const MIN_HS256_SECRET_BYTES: usize = 32;

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads settings through `get` (the environment, or a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());

        let listen = parse(&get, "BIZOS_LISTEN", "127.0.0.1:8080".parse().ok())?;
        let app_database_url =
            get("BIZOS_APP_URL")
                .map(SecretString::from)
                .ok_or(ConfigError::Missing {
                    var: "BIZOS_APP_URL",
                    why: "the connection string of the BFF's login role (bizos_app)",
                })?;

        let hs256_secret = get("BIZOS_JWT_SECRET");
        if let Some(s) = &hs256_secret {
            if s.len() < MIN_HS256_SECRET_BYTES {
                return Err(ConfigError::Invalid {
                    var: "BIZOS_JWT_SECRET",
                    why: format!("must be at least {MIN_HS256_SECRET_BYTES} bytes"),
                });
            }
        }
        let jwks_url = get("BIZOS_JWT_JWKS_URL");
        if let Some(u) = &jwks_url {
            if !(u.starts_with("https://") || u.starts_with("http://")) {
                return Err(ConfigError::Invalid {
                    var: "BIZOS_JWT_JWKS_URL",
                    why: "must be an http(s) URL".into(),
                });
            }
        }
        if hs256_secret.is_none() && jwks_url.is_none() {
            return Err(ConfigError::Missing {
                var: "BIZOS_JWT_SECRET",
                why: "set BIZOS_JWT_SECRET (HS256) or BIZOS_JWT_JWKS_URL (RS256), or both",
            });
        }
        let jwt = JwtSettings {
            hs256_secret: hs256_secret.map(SecretString::from),
            jwks_url,
            issuer: get("BIZOS_JWT_ISSUER"),
            audience: get("BIZOS_JWT_AUDIENCE"),
            leeway: Duration::from_secs(parse(&get, "BIZOS_JWT_LEEWAY_SECS", Some(30))?),
        };

        let log_format = match get("BIZOS_LOG_FORMAT").as_deref() {
            None | Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    var: "BIZOS_LOG_FORMAT",
                    why: format!("{other:?} is not one of pretty, json"),
                })
            }
        };

        let storage = match get("BIZOS_STORAGE").as_deref() {
            None | Some("local") => StorageSettings::Local {
                root: PathBuf::from(
                    get("BIZOS_DATA_DIR").unwrap_or_else(|| "/var/lib/bizos/files".into()),
                ),
            },
            Some("s3") => StorageSettings::S3 {
                bucket: get("BIZOS_S3_BUCKET").ok_or(ConfigError::Missing {
                    var: "BIZOS_S3_BUCKET",
                    why: "BIZOS_STORAGE=s3 needs the bucket name",
                })?,
                region: get("BIZOS_S3_REGION").unwrap_or_else(|| "us-east-1".into()),
                endpoint: get("BIZOS_S3_ENDPOINT"),
                access_key_id: get("BIZOS_S3_ACCESS_KEY_ID"),
                secret_access_key: get("BIZOS_S3_SECRET_ACCESS_KEY").map(SecretString::from),
            },
            Some(other) => {
                return Err(ConfigError::Invalid {
                    var: "BIZOS_STORAGE",
                    why: format!("{other:?} is not one of local, s3"),
                })
            }
        };
        let idempotency_hours: u64 = parse(&get, "BIZOS_IDEMPOTENCY_TTL_HOURS", Some(24))?;
        if idempotency_hours < 24 {
            return Err(ConfigError::Invalid {
                var: "BIZOS_IDEMPOTENCY_TTL_HOURS",
                why: "keys are kept at least 24 hours".into(),
            });
        }

        Ok(Settings {
            listen,
            app_database_url,
            db_max_connections: positive(&get, "BIZOS_DB_MAX_CONNECTIONS", 10)?,
            db_acquire_timeout: Duration::from_secs(positive(
                &get,
                "BIZOS_DB_ACQUIRE_TIMEOUT_SECS",
                5,
            )?),
            jwt,
            body_limit_bytes: positive(&get, "BIZOS_BODY_LIMIT_BYTES", 2 * 1024 * 1024)?,
            request_timeout: Duration::from_secs(positive(&get, "BIZOS_REQUEST_TIMEOUT_SECS", 30)?),
            shutdown_grace: Duration::from_secs(parse(
                &get,
                "BIZOS_SHUTDOWN_GRACE_SECS",
                Some(20),
            )?),
            log_format,
            storage,
            upload_max_bytes: positive(&get, "BIZOS_UPLOAD_MAX_BYTES", 512 * 1024 * 1024)?,
            upload_timeout: Duration::from_secs(positive(&get, "BIZOS_UPLOAD_TIMEOUT_SECS", 900)?),
            idempotency_ttl: Duration::from_secs(idempotency_hours * 3600),
            import_batch_rows: positive(&get, "BIZOS_IMPORT_BATCH_ROWS", 2000)?,
        })
    }
}

fn parse<T>(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: Option<T>,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    match get(var) {
        Some(v) => v.trim().parse().map_err(|e: T::Err| ConfigError::Invalid {
            var,
            why: format!("{v:?}: {e}"),
        }),
        None => default.ok_or(ConfigError::Missing {
            var,
            why: "no default",
        }),
    }
}

fn positive<T>(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: T,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + Default + Copy,
    T::Err: std::fmt::Display,
{
    let v = parse(get, var, Some(default))?;
    if v <= T::default() {
        return Err(ConfigError::Invalid {
            var,
            why: "must be greater than zero".into(),
        });
    }
    Ok(v)
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

    #[test]
    fn defaults_apply() {
        let s = settings(&BASE).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.db_max_connections, 10);
        assert_eq!(s.log_format, LogFormat::Pretty);
    }

    #[test]
    fn errors_name_the_variable() {
        let err = settings(&[BASE[1]]).unwrap_err().to_string();
        assert!(err.contains("BIZOS_APP_URL"), "{err}");

        let err = settings(&[BASE[0]]).unwrap_err().to_string();
        assert!(err.contains("BIZOS_JWT_SECRET"), "{err}");

        let err = settings(&[BASE[0], ("BIZOS_JWT_SECRET", "short")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("BIZOS_JWT_SECRET") && err.contains("32"),
            "{err}"
        );

        let mut bad = BASE.to_vec();
        bad.push(("BIZOS_DB_MAX_CONNECTIONS", "lots"));
        let err = settings(&bad).unwrap_err().to_string();
        assert!(err.contains("BIZOS_DB_MAX_CONNECTIONS"), "{err}");

        let mut bad = BASE.to_vec();
        bad.push(("BIZOS_BODY_LIMIT_BYTES", "0"));
        let err = settings(&bad).unwrap_err().to_string();
        assert!(err.contains("BIZOS_BODY_LIMIT_BYTES"), "{err}");

        let mut bad = BASE.to_vec();
        bad.push(("BIZOS_LOG_FORMAT", "xml"));
        assert!(settings(&bad)
            .unwrap_err()
            .to_string()
            .contains("BIZOS_LOG_FORMAT"));
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
}
