//! The operator's tenant lifecycle: `bizos cluster add`, `bizos tenant
//! create --region R --tier T | list | show | suspend | resume`, and the
//! same through the operator API ([`super::operator`]). The operator runs
//! as the control database's owner (BIZOS_DATABASE_URL) and reaches the
//! other placements with its own secrets: a cluster's `url_secret` names
//! the owner's URL there, `<url_secret>_ADMIN` a superuser's (only to
//! create the database of an isolated tenant).
//!
//! Residency: a tenant is created on its region's default cluster, never
//! elsewhere, and the catalogue refuses a placement whose cluster is of
//! another region (foreign key on cluster and region).

use clap::{Args, Subcommand};
use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

use super::catalog::{record, Placement, Tier};
use super::secrets::Secrets;
use crate::tenants::{self, NewTenant, TenantError};

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// A bad value, named by its field (the flag without `--`).
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Tenant(#[from] TenantError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<sqlx::Error> for LifecycleError {
    fn from(e: sqlx::Error) -> Self {
        LifecycleError::Other(e.into())
    }
}

type Result<T, E = LifecycleError> = std::result::Result<T, E>;

/// Where and how a new tenant is placed (flags of `bizos tenant create`).
#[derive(Args, Debug, Clone, Default)]
pub struct PlaceArgs {
    /// Region of the tenant: it is created on the region's default
    /// cluster (`bizos cluster add --default`). Without --region and
    /// --tier the tenant goes to this database's shared tier, unplaced.
    #[arg(long)]
    pub region: Option<String>,
    /// Tier: shared (rows in the cluster's shared database), schema (a
    /// schema of its own there) or isolated (a database of its own)
    /// [default: shared].
    #[arg(long, value_enum)]
    pub tier: Option<Tier>,
    /// A file of secrets (`NAME=value` lines) the cluster URLs are read
    /// from when not in the environment.
    #[arg(long, env = "BIZOS_SECRETS_FILE")]
    pub secrets_file: Option<std::path::PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum ClusterCommand {
    /// Register a PostgreSQL cluster of a region.
    Add(ClusterAddArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ClusterAddArgs {
    /// Name of the cluster (lowercase letters, digits, underscores).
    pub cluster: String,
    /// Its region.
    #[arg(long)]
    pub region: String,
    /// Name of the secret (environment variable or key of the secrets
    /// file) holding its connection URL: each process has its own (the
    /// BFF's logs in as bizos_app, the worker's as bizos_worker, the
    /// operator's as the owner). Never the URL itself.
    #[arg(long)]
    pub url_secret: String,
    /// New tenants of the region go to this cluster.
    #[arg(long)]
    pub default: bool,
    /// This control database is on this cluster: its tenants without a
    /// placement row get one (shared tier, this database), placements in
    /// this database use the processes' own pool.
    #[arg(long)]
    pub home: bool,
    #[arg(long, env = "BIZOS_DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
}

#[derive(Args, Debug)]
pub struct OperatorArgs {
    /// Connection string of the control database's owner (bizos_owner).
    #[arg(long, env = "BIZOS_DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    #[arg(long, env = "BIZOS_SECRETS_FILE")]
    pub secrets_file: Option<std::path::PathBuf>,
}

#[derive(Args, Debug)]
pub struct TenantIdArgs {
    /// The tenant's id.
    pub tenant_id: Uuid,
    #[command(flatten)]
    pub operator: OperatorArgs,
}

/// The operator: the control database (as its owner) and its secrets.
#[derive(Clone)]
pub struct Operator {
    pub control: PgPool,
    control_url: String,
    pub secrets: Secrets,
}

impl Operator {
    pub async fn connect(control_url: &str, secrets: Secrets) -> anyhow::Result<Operator> {
        let control = sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect(control_url)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect with BIZOS_DATABASE_URL: {e}"))?;
        Ok(Operator {
            control,
            control_url: control_url.to_owned(),
            secrets,
        })
    }

    /// The owner's URL of the control database.
    pub fn control_url(&self) -> &str {
        &self.control_url
    }

    /// `bizos cluster add`: the cluster's row; with `home`, a placement row
    /// (shared tier, this database) for every tenant of this database of
    /// the cluster's region that has none: how tenants made before the
    /// catalogue get theirs.
    pub async fn cluster_add(&self, a: &ClusterAddArgs) -> Result<Value> {
        let mut tx = self.control.begin().await?;
        sqlx::query(
            "insert into control.clusters (cluster, region, url_secret, is_default, home)
             values ($1, $2, $3, $4, $5)",
        )
        .bind(&a.cluster)
        .bind(&a.region)
        .bind(&a.url_secret)
        .bind(a.default)
        .bind(a.home)
        .execute(&mut *tx)
        .await
        .map_err(cluster_refused)?;
        let mut backfilled = 0;
        if a.home {
            backfilled = sqlx::query(
                "insert into control.tenant_placements (tenant_id, region, tier, cluster, database_name)
                 select t.tenant_id, $2, 'shared', $1, current_database()
                   from tenants t
                  where t.region = $2
                    and not exists (select 1 from control.tenant_placements p where p.tenant_id = t.tenant_id)",
            )
            .bind(&a.cluster)
            .bind(&a.region)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(json!({"cluster": a.cluster, "region": a.region, "backfilled": backfilled}))
    }

    /// The cluster's row: (url_secret, home).
    async fn cluster(&self, cluster: &str) -> Result<(String, bool)> {
        sqlx::query_as("select url_secret, home from control.clusters where cluster = $1")
            .bind(cluster)
            .fetch_optional(&self.control)
            .await?
            .ok_or_else(|| LifecycleError::NotFound(format!("no cluster {cluster:?}")))
    }

    async fn control_database(&self) -> Result<String> {
        Ok(sqlx::query_scalar("select current_database()::text")
            .fetch_one(&self.control)
            .await?)
    }

    /// The owner's URL of `database` on `cluster`: the control URL for the
    /// control database itself.
    async fn owner_url(&self, cluster: &str, database: &str) -> Result<String> {
        let (secret, home) = self.cluster(cluster).await?;
        if home && database == self.control_database().await? {
            return Ok(self.control_url.clone());
        }
        Ok(self
            .secrets
            .database_url(&secret, database)
            .map_err(|e| anyhow::anyhow!("cluster {cluster}: {e}"))?
            .expose_secret()
            .to_owned())
    }

    /// The shared database of a cluster: this one for the home cluster,
    /// else the database its URL names.
    async fn shared_database(&self, cluster: &str) -> Result<String> {
        let (secret, home) = self.cluster(cluster).await?;
        if home {
            return self.control_database().await;
        }
        let url = self
            .secrets
            .get(&secret)
            .map_err(|e| anyhow::anyhow!("cluster {cluster}: {e}"))?;
        let url = url.expose_secret();
        if !url.starts_with("postgres") {
            // A key=value DSN.
            return Ok(url
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix("dbname="))
                .unwrap_or("bizos")
                .to_owned());
        }
        let config: sqlx::postgres::PgConnectOptions = super::secrets::sqlx_url(url)
            .parse()
            .map_err(|e| anyhow::anyhow!("cluster {cluster}: the URL of {secret}: {e}"))?;
        Ok(config.get_database().unwrap_or("bizos").to_owned())
    }

    /// An owner's connection to the tenant's placement (search path set to
    /// its schema in the schema tier).
    async fn connect_to(&self, p: &Placement) -> Result<PgConnection> {
        let url = self.owner_url(&p.cluster, &p.database_name).await?;
        let mut conn = PgConnection::connect(&url).await.map_err(|e| {
            anyhow::anyhow!("cannot connect to {}/{}: {e}", p.cluster, p.database_name)
        })?;
        if let Some(s) = &p.schema_name {
            sqlx::query(&format!(
                "set search_path to {s}, {}",
                bizos_sql::EXTENSIONS_SCHEMA
            ))
            .execute(&mut conn)
            .await?;
        }
        Ok(conn)
    }

    /// `bizos tenant create --region R --tier T`: on the region's default
    /// cluster, the schema (migrated) or database (bootstrapped and
    /// migrated) when the tier wants one, then the tenant, its first
    /// admin and its placement record there in one transaction, then its
    /// row in the catalogue.
    pub async fn create(&self, region: &str, tier: Tier, new: &NewTenant) -> Result<Value> {
        let cluster: Option<String> = sqlx::query_scalar(
            "select cluster from control.clusters where region = $1 and is_default",
        )
        .bind(region)
        .fetch_optional(&self.control)
        .await?;
        let Some(cluster) = cluster else {
            return Err(LifecycleError::Invalid {
                field: "region",
                message: format!(
                    "no default cluster in region {region:?}: register one with `bizos cluster add <name> --region {region} --url-secret <NAME> --default`"
                ),
            });
        };
        let key = Uuid::new_v4().simple().to_string();
        let shared = self.shared_database(&cluster).await?;
        let (database, schema) = match tier {
            Tier::Shared => (shared, None),
            Tier::Schema => (shared, Some(format!("t_{key}"))),
            Tier::Isolated => (format!("t_{key}"), None),
        };
        let url = self.owner_url(&cluster, &database).await?;
        match tier {
            Tier::Shared => {}
            Tier::Schema => {
                bizos_sql::migrate(&url, schema.as_deref())
                    .await
                    .map_err(|e| anyhow::anyhow!("migrating schema {schema:?}: {e}"))?;
            }
            Tier::Isolated => {
                let (secret, _) = self.cluster(&cluster).await?;
                let admin_secret = format!("{secret}_ADMIN");
                let admin = self.secrets.get(&admin_secret).map_err(|e| {
                    anyhow::anyhow!("creating an isolated database on {cluster}: {e}")
                })?;
                let opts = bizos_sql::BootstrapOptions {
                    database: database.clone(),
                    passwords: vec![],
                };
                bizos_sql::bootstrap(admin.expose_secret(), &opts)
                    .await
                    .map_err(|e| anyhow::anyhow!("creating database {database}: {e}"))?;
                bizos_sql::apply_database_settings(admin.expose_secret(), &database)
                    .await
                    .map_err(|e| anyhow::anyhow!("settings of database {database}: {e}"))?;
                bizos_sql::migrate(&url, None)
                    .await
                    .map_err(|e| anyhow::anyhow!("migrating database {database}: {e}"))?;
            }
        }
        let mut placement = Placement {
            tenant_id: Uuid::nil(),
            region: region.to_owned(),
            tier,
            cluster: cluster.clone(),
            database_name: database,
            schema_name: schema,
            version: 1,
        };
        let mut conn = self.connect_to(&placement).await?;
        let mut tx = conn.begin().await?;
        let created = tenants::create_in(&mut tx, new).await?;
        placement.tenant_id = created.tenant_id;
        sqlx::query("update tenants set tier = $2, region = $3 where tenant_id = $1")
            .bind(created.tenant_id)
            .bind(tier.as_str())
            .bind(region)
            .execute(&mut *tx)
            .await?;
        let (secret, _) = self.cluster(&cluster).await?;
        record(&mut tx, &placement, &secret).await?;
        tx.commit().await?;
        // The catalogue's row (in the control database itself, the record
        // above was it).
        let mut control = self.control.acquire().await?;
        record(&mut control, &placement, &secret).await?;
        Ok(json!({
            "tenant_id": created.tenant_id,
            "user_id": created.user_id,
            "placement": placement,
        }))
    }

    /// The catalogue's tenants: placed ones, and this database's tenants
    /// without a row (shared tier, version 0).
    pub async fn list(&self) -> Result<Value> {
        let rows: Value = sqlx::query_scalar(
            "select coalesce(jsonb_agg(t order by t.tenant_id), '[]')
               from (select tenant_id, region, tier, cluster, database_name, schema_name, version
                       from control.tenant_placements
                     union all
                     select t.tenant_id, t.region, 'shared', null, current_database()::text, null, 0
                       from tenants t
                      where not exists (select 1 from control.tenant_placements p
                                         where p.tenant_id = t.tenant_id)) t",
        )
        .fetch_one(&self.control)
        .await?;
        Ok(rows)
    }

    /// The tenant's placement: its row, or the control database's shared
    /// tier when it has none and its tenants row is here.
    pub async fn placement(&self, tenant: Uuid) -> Result<Placement> {
        if let Some((p, _, _)) = super::catalog::placement_of(&self.control, tenant).await? {
            return Ok(p);
        }
        let region: Option<String> =
            sqlx::query_scalar("select region from tenants where tenant_id = $1")
                .bind(tenant)
                .fetch_optional(&self.control)
                .await?;
        let Some(region) = region else {
            return Err(LifecycleError::NotFound(format!("no tenant {tenant}")));
        };
        Ok(Placement {
            tenant_id: tenant,
            region,
            tier: Tier::Shared,
            cluster: String::new(),
            database_name: self.control_database().await?,
            schema_name: None,
            version: 0,
        })
    }

    async fn connect_tenant(&self, p: &Placement) -> Result<PgConnection> {
        if p.version == 0 {
            return Ok(PgConnection::connect(&self.control_url).await?);
        }
        self.connect_to(p).await
    }

    /// The tenant's placement and its row in the placement.
    pub async fn show(&self, tenant: Uuid) -> Result<Value> {
        let p = self.placement(tenant).await?;
        let mut conn = self.connect_tenant(&p).await?;
        let row: Option<Value> = sqlx::query_scalar(
            "select jsonb_build_object('slug', slug, 'name', name, 'status', status,
                                       'time_zone', time_zone, 'locale', locale)
               from tenants where tenant_id = $1",
        )
        .bind(tenant)
        .fetch_optional(&mut conn)
        .await?;
        let Some(row) = row else {
            return Err(LifecycleError::NotFound(format!(
                "tenant {tenant} has a placement but no row in it"
            )));
        };
        Ok(json!({"tenant_id": tenant, "placement": p, "tenant": row}))
    }

    /// Suspends (every request refused, 403 tenant_suspended) or resumes
    /// (active) the tenant, in its placement.
    pub async fn set_status(&self, tenant: Uuid, status: Status) -> Result<Value> {
        let p = self.placement(tenant).await?;
        let mut conn = self.connect_tenant(&p).await?;
        let updated: Option<String> = sqlx::query_scalar(
            "update tenants set status = $2 where tenant_id = $1 returning status",
        )
        .bind(tenant)
        .bind(status.as_str())
        .fetch_optional(&mut conn)
        .await?;
        match updated {
            Some(status) => Ok(json!({"tenant_id": tenant, "status": status})),
            None => Err(LifecycleError::NotFound(format!("no tenant {tenant}"))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Active,
    Suspended,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Suspended => "suspended",
        }
    }
}

/// A refusal of the clusters table, named by its field.
fn cluster_refused(e: sqlx::Error) -> LifecycleError {
    let constraint = e
        .as_database_error()
        .and_then(|d| d.constraint())
        .unwrap_or_default()
        .to_owned();
    let (field, message) = match constraint.as_str() {
        "clusters_pkey" => ("cluster", "a cluster of this name exists"),
        "clusters_cluster_check" => (
            "cluster",
            "lowercase letters, digits and underscores, starting with a letter",
        ),
        "clusters_region_check" => (
            "region",
            "lowercase letters, digits and hyphens, starting with a letter",
        ),
        "clusters_url_secret_check" => (
            "url-secret",
            "the NAME of a secret (uppercase letters, digits, underscores), never the URL",
        ),
        "clusters_region_default_key" => ("default", "the region has a default cluster already"),
        "clusters_home_key" => ("home", "another cluster is the home cluster"),
        _ => return LifecycleError::Other(e.into()),
    };
    LifecycleError::Invalid {
        field,
        message: message.into(),
    }
}

/// `bizos tenant create` with --region or --tier.
pub async fn create_cli(
    database_url: &str,
    place: &PlaceArgs,
    new: &NewTenant,
) -> anyhow::Result<Value> {
    let op = Operator::connect(database_url, Secrets::from_env(place.secrets_file.clone())).await?;
    let region = match &place.region {
        Some(r) => r.clone(),
        None => sqlx::query_scalar("select region from control.clusters where home")
            .fetch_optional(&op.control)
            .await?
            .ok_or_else(|| anyhow::anyhow!("--region: required (no home cluster is registered)"))?,
    };
    op.create(&region, place.tier.unwrap_or(Tier::Shared), new)
        .await
        .map_err(cli_error)
}

fn cli_error(e: LifecycleError) -> anyhow::Error {
    match e {
        LifecycleError::Invalid { field, message } => anyhow::anyhow!("--{field}: {message}"),
        other => anyhow::anyhow!(other.to_string()),
    }
}

/// `bizos tenant list | show | suspend | resume`, `bizos cluster add`.
pub async fn list_cli(a: &OperatorArgs) -> anyhow::Result<Value> {
    let op = Operator::connect(&a.database_url, Secrets::from_env(a.secrets_file.clone())).await?;
    op.list().await.map_err(cli_error)
}

pub async fn show_cli(a: &TenantIdArgs) -> anyhow::Result<Value> {
    let o = &a.operator;
    let op = Operator::connect(&o.database_url, Secrets::from_env(o.secrets_file.clone())).await?;
    op.show(a.tenant_id).await.map_err(cli_error)
}

pub async fn status_cli(a: &TenantIdArgs, status: Status) -> anyhow::Result<Value> {
    let o = &a.operator;
    let op = Operator::connect(&o.database_url, Secrets::from_env(o.secrets_file.clone())).await?;
    op.set_status(a.tenant_id, status).await.map_err(cli_error)
}

pub async fn cluster_cli(command: ClusterCommand) -> anyhow::Result<Value> {
    match command {
        ClusterCommand::Add(a) => {
            let op = Operator::connect(&a.database_url, Secrets::from_env(None)).await?;
            op.cluster_add(&a).await.map_err(cli_error)
        }
    }
}
