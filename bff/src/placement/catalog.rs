//! The control catalogue's rows of a tenant: its tier and placement, read
//! to route and written at creation and at a switch (the record a
//! placement database keeps of its tenants, which `control.placement_check`
//! reads).

use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

/// The tiers of tenancy.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    clap::ValueEnum,
    serde::Deserialize,
    utoipa::ToSchema,
)]
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
