//! Where each tenant's rows live (B2B-6) and the operator's tenant
//! lifecycle: the control catalogue (schema `control` of the control
//! database, migration V45), the [`router::Router`] the BFF routes every
//! request with, the secrets clusters are reached with
//! ([`secrets::Secrets`]), `bizos tenant …` / `bizos cluster add`
//! ([`lifecycle`]) and the operator HTTP API ([`operator`]).
//!
//! A placement is a cluster (its URL from the secret the catalogue names),
//! a database on it and, in the schema tier, a schema. The control
//! catalogue holds only a tenant's id, region and placement; the tenant's
//! row, profiles and every business row are in its placement, so a tenant
//! of region B has no business row in region A's clusters.

pub mod lifecycle;
pub mod operator;
pub mod router;
pub mod secrets;

use std::time::Duration;

use clap::Args;
use secrecy::SecretString;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

pub use router::{Route, Router, RoutingSettings};
pub use secrets::Secrets;

use crate::vars::{positive, positive_seconds, var};

/// The tiers of tenancy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Rows with `tenant_id` in the cluster's shared database.
    Shared,
    /// A schema of its own in the cluster's shared database.
    Schema,
    /// A database of its own on the cluster.
    Isolated,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Shared => "shared",
            Tier::Schema => "schema",
            Tier::Isolated => "isolated",
        }
    }

    fn parse(s: &str) -> anyhow::Result<Tier> {
        Ok(match s {
            "shared" => Tier::Shared,
            "schema" => Tier::Schema,
            "isolated" => Tier::Isolated,
            other => anyhow::bail!("unknown tier {other:?}"),
        })
    }
}

/// One row of control.tenant_placements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Placement {
    pub tenant_id: Uuid,
    pub region: String,
    pub tier: Tier,
    pub cluster: String,
    pub database_name: String,
    pub schema_name: Option<String>,
    pub version: i64,
}

/// The tenant's placement, the secret name of its cluster's URL and
/// whether that cluster is the control database's own; None: no row (the
/// control database's shared tier).
pub async fn placement_of(
    control: &PgPool,
    tenant: Uuid,
) -> anyhow::Result<Option<(Placement, String, bool)>> {
    type Row = (
        String,
        String,
        String,
        String,
        Option<String>,
        i64,
        String,
        bool,
    );
    let row: Option<Row> = sqlx::query_as(
        "select p.region, p.tier, p.cluster, p.database_name, p.schema_name, p.version,
                c.url_secret, c.home
           from control.tenant_placements p join control.clusters c using (cluster)
          where p.tenant_id = $1",
    )
    .bind(tenant)
    .fetch_optional(control)
    .await?;
    row.map(
        |(region, tier, cluster, database_name, schema_name, version, secret, home)| {
            Ok((
                Placement {
                    tenant_id: tenant,
                    region,
                    tier: Tier::parse(&tier)?,
                    cluster,
                    database_name,
                    schema_name,
                    version,
                },
                secret,
                home,
            ))
        },
    )
    .transpose()
}

/// Records `placement` in the database the connection is on (its
/// control.tenant_placements), under the placement lock held exclusively
/// until the transaction ends: the fence of a switch. In the control
/// database this is the catalogue row itself; in another placement
/// database it is the record control.placement_check() reads there. A
/// switch writes it in the source database (so requests routed there with
/// the old version are refused from then on) and in the target. The
/// cluster's row (`url_secret`: the name of its URL's secret) is copied
/// there when missing.
pub async fn record(
    conn: &mut sqlx::PgConnection,
    p: &Placement,
    url_secret: &str,
) -> anyhow::Result<()> {
    sqlx::query("select control.placement_lock($1, true)")
        .bind(p.tenant_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "insert into control.clusters (cluster, region, url_secret) values ($1, $2, $3)
         on conflict (cluster) do nothing",
    )
    .bind(&p.cluster)
    .bind(&p.region)
    .bind(url_secret)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "insert into control.tenant_placements
                (tenant_id, region, tier, cluster, database_name, schema_name, version)
         values ($1, $2, $3, $4, $5, $6, $7)
         on conflict (tenant_id) do update
            set region = excluded.region, tier = excluded.tier, cluster = excluded.cluster,
                database_name = excluded.database_name, schema_name = excluded.schema_name,
                version = greatest(excluded.version, control.tenant_placements.version)",
    )
    .bind(p.tenant_id)
    .bind(&p.region)
    .bind(p.tier.as_str())
    .bind(&p.cluster)
    .bind(&p.database_name)
    .bind(&p.schema_name)
    .bind(p.version)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

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
