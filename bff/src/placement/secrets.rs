//! Secrets by name: a cluster's connection URL is never in a table, only
//! the name of the secret that holds it (`control.clusters.url_secret`).
//! A name is looked up in the process's environment first, then in the
//! secrets file (BIZOS_SECRETS_FILE): one `NAME=value` a line, `#` starts
//! a comment line, blank lines are skipped, the value is taken as it is
//! after the first `=` (no quotes, no escapes). Each process has its own
//! secrets: the BFF's URL of a cluster logs in as bizos_app, the
//! worker's as bizos_worker, the operator's (`bizos tenant`) as the owner.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

/// How a name is looked up in the environment.
type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Where a process finds the secrets the catalogue names.
#[derive(Clone)]
pub struct Secrets {
    env: EnvLookup,
    file: Option<PathBuf>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "no secret {0}: set the environment variable {0} or add `{0}=<url>` to BIZOS_SECRETS_FILE"
    )]
    Missing(String),
    #[error("cannot read the secrets file {path}: {message}")]
    File { path: String, message: String },
    #[error("the secret {name} is not a valid connection URL: {message}")]
    Url { name: String, message: String },
}

impl Secrets {
    /// The process environment, then `file` when given.
    pub fn from_env(file: Option<PathBuf>) -> Secrets {
        Secrets {
            env: Arc::new(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty())),
            file,
        }
    }

    /// Only the secrets file (tests, whose processes share one environment).
    pub fn file_only(file: Option<PathBuf>) -> Secrets {
        Secrets {
            env: Arc::new(|_| None),
            file,
        }
    }

    /// The secret `name`.
    pub fn get(&self, name: &str) -> Result<SecretString, SecretError> {
        if let Some(v) = (self.env)(name) {
            return Ok(SecretString::from(v));
        }
        if let Some(path) = &self.file {
            if let Some(v) = read_file(path)?.remove(name) {
                return Ok(SecretString::from(v));
            }
        }
        Err(SecretError::Missing(name.to_owned()))
    }

    /// The URL of database `database` on the cluster whose URL is the
    /// secret `name` (its database name replaced).
    pub fn database_url(&self, name: &str, database: &str) -> Result<SecretString, SecretError> {
        let url = self.get(name)?;
        bizos_sql::derive_dsn(url.expose_secret(), None, database)
            .map(|u| SecretString::from(sqlx_url(&u)))
            .map_err(|e| SecretError::Url {
                name: name.to_owned(),
                message: e.to_string(),
            })
    }
}

/// A URL sqlx accepts: one whose server is a Unix socket (`?host=/dir`)
/// gets `localhost` as its host, which the `host` parameter overrides
/// (sqlx refuses an empty host).
pub fn sqlx_url(url: &str) -> String {
    let Some(rest) = url.strip_prefix("postgres://") else {
        return url.to_owned();
    };
    let end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..end];
    if authority.is_empty() || authority.ends_with('@') {
        format!("postgres://{authority}localhost{}", &rest[end..])
    } else {
        url.to_owned()
    }
}

/// The `NAME=value` lines of a secrets file.
pub fn parse(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim_end().to_owned()))
        .collect()
}

fn read_file(path: &Path) -> Result<HashMap<String, String>, SecretError> {
    std::fs::read_to_string(path)
        .map(|t| parse(&t))
        .map_err(|e| SecretError::File {
            path: path.display().to_string(),
            message: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secrets_file_is_name_equals_value_lines() {
        let m = parse(
            "# clusters\n\nEU_URL=postgres://a:p=q@h/db\n  US_URL = host=x dbname=y\nbad line\n",
        );
        assert_eq!(m["EU_URL"], "postgres://a:p=q@h/db");
        assert_eq!(m["US_URL"], " host=x dbname=y");
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn the_environment_wins_and_the_database_is_put_into_the_url() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secrets");
        std::fs::write(
            &file,
            "A_URL=postgres://u:pw@h:5433/other\nB_URL=postgres://f@h/x\n",
        )
        .unwrap();
        let s = Secrets {
            env: Arc::new(|k| (k == "B_URL").then(|| "postgres://e@h/x".to_owned())),
            file: Some(file),
        };
        let a = s.database_url("A_URL", "tenant_db").unwrap();
        assert!(
            a.expose_secret().contains("/tenant_db"),
            "{}",
            a.expose_secret()
        );
        assert!(a.expose_secret().contains("u:pw@"), "{}", a.expose_secret());
        assert!(s
            .get("B_URL")
            .unwrap()
            .expose_secret()
            .starts_with("postgres://e@"));
        assert_eq!(
            sqlx_url("postgres://u@/db?host=%2Ftmp%2Fx&port=5432"),
            "postgres://u@localhost/db?host=%2Ftmp%2Fx&port=5432"
        );
        assert_eq!(sqlx_url("postgres://u@h:1/db"), "postgres://u@h:1/db");
        let missing = s.get("C_URL").unwrap_err().to_string();
        assert!(
            missing.contains("C_URL") && missing.contains("BIZOS_SECRETS_FILE"),
            "{missing}"
        );
    }
}
