//! The move's row of `control.tenant_moves` as the mover reads it, the
//! two ends it names, and the one way its state advances.

use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::placement::secrets::Secrets;

/// Where one side of a move is: a connection URL (a role that may create
/// triggers and set `session_replication_role`: the cluster's operator)
/// and the schema (None: the database's default schema, `public`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub url: String,
    pub schema: Option<String>,
}

impl Endpoint {
    pub fn schema(&self) -> &str {
        self.schema.as_deref().unwrap_or("public")
    }
}

/// A move as the mover reads it (`tenant_move_get`).
#[derive(Debug, Clone, Deserialize)]
pub struct MoveRow {
    pub move_id: Uuid,
    pub tenant_id: Uuid,
    pub state: String,
    pub from_tier: String,
    pub from_cluster: String,
    pub from_database: String,
    pub from_schema: Option<String>,
    pub to_tier: String,
    pub to_cluster: String,
    pub to_database: String,
    pub to_schema: Option<String>,
    pub progress: Value,
    pub abort_requested: bool,
    pub error: Option<String>,
    pub from_url_secret: Option<String>,
    pub to_url_secret: Option<String>,
}

impl MoveRow {
    /// Source and target in one database (the extension's tables are
    /// shared by both and stay).
    pub fn same_database(&self) -> bool {
        self.from_cluster == self.to_cluster && self.from_database == self.to_database
    }

    /// The two endpoints, the clusters' URLs from their secrets (the
    /// process's environment, then BIZOS_SECRETS_FILE).
    pub fn endpoints(&self, secrets: &Secrets) -> Result<(Endpoint, Endpoint), String> {
        let url = |secret: &Option<String>, cluster: &str, database: &str| {
            let secret = secret
                .as_deref()
                .ok_or_else(|| format!("cluster {cluster} is not in control.clusters"))?;
            let base = secrets
                .get(secret)
                .map_err(|e| format!("cluster {cluster}: {e}"))?;
            bizos_sql::derive_dsn(base.expose_secret(), None, database)
                .map_err(|e| format!("the URL in {secret} is not valid: {e}"))
        };
        Ok((
            Endpoint {
                url: url(
                    &self.from_url_secret,
                    &self.from_cluster,
                    &self.from_database,
                )?,
                schema: self.from_schema.clone(),
            },
            Endpoint {
                url: url(&self.to_url_secret, &self.to_cluster, &self.to_database)?,
                schema: self.to_schema.clone(),
            },
        ))
    }
}

/// The move's row (None: no such move).
pub async fn get(control: &PgPool, move_id: Uuid) -> Result<Option<MoveRow>, sqlx::Error> {
    let row: Option<Value> = sqlx::query_scalar("select tenant_move_get($1)")
        .bind(move_id)
        .fetch_one(control)
        .await?;
    row.map(|v| serde_json::from_value(v).map_err(|e| sqlx::Error::Decode(Box::new(e))))
        .transpose()
}

/// One step of the state machine (`tenant_move_advance`): false when the
/// move was in none of `from`.
pub async fn advance(
    control: &PgPool,
    move_id: Uuid,
    from: &[&str],
    to: &str,
    progress: Value,
    error: Option<&str>,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("select tenant_move_advance($1, $2, $3, $4, $5)")
        .bind(move_id)
        .bind(from)
        .bind(to)
        .bind(progress)
        .bind(error)
        .fetch_one(control)
        .await
}
