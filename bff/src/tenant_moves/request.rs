//! Asking for a tier move, for its abort and for its state: the one path
//! of `bizos tenant move` and of the operator API's move routes. The
//! database plans the move (`tenant_move_request`: one move of a tenant at
//! a time, a target other than where it is) and enqueues the worker's
//! `tenant.move` job; this prepares a schema target in the control
//! database first, since preflight refuses a target that is not migrated.

use serde::Deserialize;
use serde_json::Value;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::ApiError;
use crate::placement::Tier;

/// Where a tenant moves to (`tenant_move_request`'s arguments); each part
/// left out takes its default.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveTo {
    /// The tier to move to.
    pub to_tier: Tier,
    /// Target cluster [default: the tenant's].
    pub to_cluster: Option<String>,
    /// Target database [default: shared: the control database; schema:
    /// the tenant's; isolated: tenant_<first 12 hex digits of its id>].
    pub to_database: Option<String>,
    /// Target schema, of the schema tier only [default: tenant_<first 12
    /// hex digits of its id>].
    pub to_schema: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MoveRequestError {
    /// The database refused the request (its message names the field).
    #[error("{}", refusal(.0))]
    Refused(#[from] sqlx::Error),
    #[error("tenant {0} has no move under way")]
    NoMove(Uuid),
    #[error("move {0} is past its switch: it cannot be aborted")]
    PastSwitch(Uuid),
    #[error("move {0}: no such move")]
    NoSuchMove(Uuid),
    #[error("cannot prepare schema {schema}: {error}")]
    Prepare {
        schema: String,
        error: bizos_sql::Error,
    },
}

fn refusal(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => d.message().to_owned(),
        e => e.to_string(),
    }
}

impl From<MoveRequestError> for ApiError {
    fn from(e: MoveRequestError) -> Self {
        match e {
            MoveRequestError::Refused(e) => e.into(),
            e @ (MoveRequestError::NoMove(_) | MoveRequestError::NoSuchMove(_)) => {
                ApiError::NotFound(e.to_string())
            }
            e @ MoveRequestError::PastSwitch(_) => ApiError::Conflict {
                message: e.to_string(),
                field: None,
            },
            e @ MoveRequestError::Prepare { .. } => {
                ApiError::Internal(anyhow::anyhow!(e.to_string()))
            }
        }
    }
}

type Result<T, E = MoveRequestError> = std::result::Result<T, E>;

fn default_name(tenant: Uuid) -> String {
    format!("tenant_{}", &tenant.simple().to_string()[..12])
}

/// Plans the tenant's move to `to` and enqueues its job: the move's id.
/// `control_url` is the owner's URL of the control database `control`
/// is connected to (a schema target there is migrated first).
pub async fn request(
    control: &PgPool,
    control_url: &str,
    tenant: Uuid,
    to: &MoveTo,
) -> Result<Uuid> {
    let placed: Option<(String, String)> = sqlx::query_as(
        "select cluster, database_name from control.tenant_placements where tenant_id = $1",
    )
    .bind(tenant)
    .fetch_optional(control)
    .await?;
    let here: String = sqlx::query_scalar("select current_database()::text")
        .fetch_one(control)
        .await?;
    // Without a placement the database refuses the request (404, naming the
    // tenant); the defaults below then do not matter.
    let (cluster, database) = placed.unwrap_or_default();
    let to_cluster = to.to_cluster.clone().unwrap_or_else(|| cluster.clone());
    let to_database = to.to_database.clone().unwrap_or_else(|| match to.to_tier {
        Tier::Shared => here.clone(),
        Tier::Schema => database.clone(),
        Tier::Isolated => default_name(tenant),
    });
    // A schema given for another tier goes on, for the database to refuse.
    let to_schema = match to.to_tier {
        Tier::Schema => Some(to.to_schema.clone().unwrap_or_else(|| default_name(tenant))),
        _ => to.to_schema.clone(),
    };
    if let (Tier::Schema, Some(schema)) = (to.to_tier, &to_schema) {
        if !cluster.is_empty() && to_database == here && to_cluster == cluster {
            bizos_sql::migrate(control_url, Some(schema))
                .await
                .map_err(|error| MoveRequestError::Prepare {
                    schema: schema.clone(),
                    error,
                })?;
        }
    }
    Ok(
        sqlx::query_scalar("select tenant_move_request($1, $2, $3, $4, $5)")
            .bind(tenant)
            .bind(to.to_tier.as_str())
            .bind(&to_cluster)
            .bind(&to_database)
            .bind(&to_schema)
            .fetch_one(control)
            .await?,
    )
}

/// Asks the tenant's move under way to roll back at its next step: the
/// move's id.
pub async fn abort(control: &PgPool, tenant: Uuid) -> Result<Uuid> {
    let under_way: Option<Uuid> = sqlx::query_scalar(
        "select move_id from control.tenant_moves
          where tenant_id = $1 and state not in ('done', 'failed', 'rolled_back')",
    )
    .bind(tenant)
    .fetch_optional(control)
    .await?;
    let id = under_way.ok_or(MoveRequestError::NoMove(tenant))?;
    let aborted: Option<bool> = sqlx::query_scalar("select tenant_move_abort($1)")
        .bind(id)
        .fetch_one(control)
        .await?;
    if aborted != Some(true) {
        return Err(MoveRequestError::PastSwitch(id));
    }
    Ok(id)
}

/// The move's row: its state, progress and error.
pub async fn state(control: &PgPool, move_id: Uuid) -> Result<Value> {
    sqlx::query_scalar(
        "select jsonb_build_object(
                  'move_id', m.move_id, 'tenant_id', m.tenant_id,
                  'from_tier', m.from_tier, 'to_tier', m.to_tier,
                  'to_cluster', m.to_cluster, 'to_database', m.to_database,
                  'to_schema', m.to_schema, 'state', m.state,
                  'progress', m.progress, 'error', m.error,
                  'abort_requested', m.abort_requested,
                  'frozen_at', m.frozen_at, 'switched_at', m.switched_at,
                  'finished_at', m.finished_at,
                  'created_at', m.created_at, 'updated_at', m.updated_at)
           from control.tenant_moves m where m.move_id = $1",
    )
    .bind(move_id)
    .fetch_optional(control)
    .await?
    .ok_or(MoveRequestError::NoSuchMove(move_id))
}
