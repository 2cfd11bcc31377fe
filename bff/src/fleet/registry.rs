//! The placements of the fleet, read from the placement registry of the
//! control database: every distinct (cluster, database, schema) of
//! `control.tenant_placements`, with its cluster's URL resolved.

use std::path::Path;

use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;

use crate::placement::secrets::Secrets;

/// A database, or a tenant schema in one, that the fleet migrates.
#[derive(Debug, Clone)]
pub struct Placement {
    pub cluster: String,
    pub database: String,
    /// `None`: the database's default schema (shared and isolated tiers).
    pub schema: Option<String>,
    /// Connection string of the database (the cluster's URL with the
    /// database name put in), or why there is none: a cluster whose secret
    /// is missing fails its placements, not the run.
    pub dsn: Result<SecretString, String>,
}

impl Placement {
    /// `cluster/database` or `cluster/database/schema`: how reports and the
    /// run history name it.
    pub fn key(&self) -> String {
        match &self.schema {
            Some(s) => format!("{}/{}/{s}", self.cluster, self.database),
            None => format!("{}/{}", self.cluster, self.database),
        }
    }
}

/// The placements of the registry, ordered by cluster, database and schema
/// (the database's default schema first).
pub async fn placements(
    control: &PgPool,
    secrets_file: Option<&Path>,
) -> anyhow::Result<Vec<Placement>> {
    let rows: Vec<(String, String, Option<String>, String)> = sqlx::query_as(
        "select distinct p.cluster, p.database_name, p.schema_name, c.url_secret
           from control.tenant_placements p
           join control.clusters c using (cluster)
          order by 1, 2, 3 nulls first",
    )
    .fetch_all(control)
    .await
    .map_err(|e| {
        anyhow::anyhow!("cannot read the placement registry (control.tenant_placements): {e}")
    })?;
    let secrets = Secrets::from_env(secrets_file.map(Path::to_path_buf));
    let mut placements = Vec::with_capacity(rows.len());
    for (cluster, database, schema, secret) in rows {
        let dsn = secrets
            .get(&secret)
            .map_err(|e| format!("cluster {cluster}: {e}"))
            .and_then(|url| {
                bizos_sql::derive_dsn(url.expose_secret(), None, &database)
                    .map(SecretString::from)
                    .map_err(|e| {
                        format!("cluster {cluster}: the URL in {secret} is not valid: {e}")
                    })
            });
        placements.push(Placement {
            cluster,
            database,
            schema,
            dsn,
        });
    }
    Ok(placements)
}
