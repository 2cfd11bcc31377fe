//! Where each tenant's rows live (B2B-6) and the operator's tenant
//! lifecycle: the control catalogue (schema `control` of the control
//! database, migration V45), the [`router::Router`] the BFF routes every
//! request with, the secrets clusters are reached with
//! ([`secrets::Secrets`]), `bizos tenant …` / `bizos cluster add`
//! ([`lifecycle`]) and the operator's credential ([`operator`]); the
//! catalogue's rows are read and written by [`catalog`].
//!
//! A placement is a cluster (its URL from the secret the catalogue names),
//! a database on it and, in the schema tier, a schema. The control
//! catalogue holds only a tenant's id, region and placement; the tenant's
//! row, profiles and every business row are in its placement, so a tenant
//! of region B has no business row in region A's clusters.

pub mod catalog;
pub mod lifecycle;
pub mod operator;
pub mod router;
pub mod secrets;

use std::time::Duration;

use clap::Args;
use secrecy::SecretString;

pub use catalog::{placement_of, record, Placement, Tier};
pub use router::{Route, Router, RoutingSettings};
pub use secrets::Secrets;

use crate::vars::{positive, positive_seconds, var};

/// The routing variables of `bizos serve` (and the worker's).
#[derive(Args, Debug, Clone)]
pub struct PlacementArgs {
    /// A file of secrets, one `NAME=value` a line (`#` comments): the
    /// cluster URLs control.clusters names by url_secret, when not in the
    /// environment.
    #[arg(long, env = "BIZOS_SECRETS_FILE")]
    pub secrets_file: Option<std::path::PathBuf>,
    /// Connections of each placement database's pool (schema and isolated
    /// tenants, other clusters).
    #[arg(long, env = "BIZOS_PLACEMENT_POOL_MAX", default_value = "4", value_parser = var(positive::<u32>))]
    pub placement_pool_max: u32,
    /// Cap on the connections of all pools of the process together
    /// (BIZOS_DB_MAX_CONNECTIONS of the control database included); the
    /// least recently used placement pools are closed to stay under it.
    #[arg(long, env = "BIZOS_DB_TOTAL_CONNECTIONS", default_value = "64", value_parser = var(positive::<u32>))]
    pub db_total_connections: u32,
    /// Seconds a cached placement is used without a notification at most.
    #[arg(long, env = "BIZOS_PLACEMENT_CACHE_SECS", default_value = "60", value_parser = var(positive_seconds))]
    pub placement_cache_secs: Duration,
    /// The operator API's token (/api/operator, at least 32 bytes); unset,
    /// the operator API answers 404.
    #[arg(long, env = "BIZOS_OPERATOR_TOKEN", hide_env_values = true, value_parser = var(operator::token))]
    pub operator_token: Option<SecretString>,
    /// The control database's owner (bizos_owner), as whom the operator
    /// API acts; required with BIZOS_OPERATOR_TOKEN.
    #[arg(long, env = "BIZOS_OPERATOR_DATABASE_URL", hide_env_values = true, value_parser = var(crate::vars::secret))]
    pub operator_database_url: Option<SecretString>,
    /// The operator API's secrets file: the owners' URLs of the clusters
    /// by their url_secret, `<NAME>_ADMIN` a superuser's (the BFF's own
    /// secrets log in as bizos_app).
    #[arg(long, env = "BIZOS_OPERATOR_SECRETS_FILE")]
    pub operator_secrets_file: Option<std::path::PathBuf>,
}

/// The routing settings of a process.
#[derive(Debug, Clone)]
pub struct PlacementSettings {
    pub secrets_file: Option<std::path::PathBuf>,
    pub pool_max: u32,
    pub total_max: u32,
    pub cache_ttl: Duration,
    pub operator_token: Option<SecretString>,
    pub operator_database_url: Option<SecretString>,
    pub operator_secrets_file: Option<std::path::PathBuf>,
}

impl TryFrom<PlacementArgs> for PlacementSettings {
    type Error = crate::vars::ConfigError;

    fn try_from(a: PlacementArgs) -> Result<Self, Self::Error> {
        if a.operator_token.is_some() && a.operator_database_url.is_none() {
            return Err(crate::vars::ConfigError::Missing {
                var: "BIZOS_OPERATOR_DATABASE_URL",
                why: "the control database's owner, as whom the operator API (BIZOS_OPERATOR_TOKEN) acts",
            });
        }
        Ok(PlacementSettings {
            secrets_file: a.secrets_file,
            pool_max: a.placement_pool_max,
            total_max: a.db_total_connections,
            cache_ttl: a.placement_cache_secs,
            operator_token: a.operator_token,
            operator_database_url: a.operator_database_url,
            operator_secrets_file: a.operator_secrets_file,
        })
    }
}
