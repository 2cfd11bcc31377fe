//! `bizos tenant move T --to schema|isolated|shared`: plans the move
//! (`tenant_move_request`), enqueues the worker's job and, with `--wait`,
//! shows its progress until it ends. A schema target in the database the
//! command is connected to is migrated first (`bizos migrate --schema`);
//! another database must be bootstrapped and migrated beforehand
//! (preflight refuses it otherwise).

use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use serde_json::Value;
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

#[derive(Args, Debug)]
pub struct MoveArgs {
    /// The tenant's id.
    pub tenant: Uuid,
    /// The tier to move to.
    #[arg(long, value_parser = ["shared", "schema", "isolated"])]
    pub to: String,
    /// Target cluster [default: the tenant's].
    #[arg(long)]
    pub cluster: Option<String>,
    /// Target database [default: shared: the database of
    /// BIZOS_DATABASE_URL; schema: the tenant's; isolated: tenant_<id>].
    #[arg(long)]
    pub database: Option<String>,
    /// Target schema of the schema tier [default: tenant_<id>].
    #[arg(long)]
    pub schema: Option<String>,
    /// Wait for the move to end, printing each state and its progress;
    /// the exit status is non-zero unless it is done.
    #[arg(long)]
    pub wait: bool,
    /// Ask the tenant's move under way to roll back instead.
    #[arg(long, conflicts_with_all = ["cluster", "database", "schema"])]
    pub abort: bool,
    /// Owner connection string of the control database.
    #[arg(long, env = "BIZOS_DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
}

fn default_name(tenant: Uuid) -> String {
    format!("tenant_{}", &tenant.simple().to_string()[..12])
}

pub async fn run(args: MoveArgs) -> anyhow::Result<()> {
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&args.database_url)
        .await
        .context("cannot connect to the control database")?;
    let move_id: Uuid = if args.abort {
        let under_way: Option<Uuid> = sqlx::query_scalar(
            "select move_id from control.tenant_moves
              where tenant_id = $1 and state not in ('done', 'failed', 'rolled_back')",
        )
        .bind(args.tenant)
        .fetch_optional(&pool)
        .await?;
        let Some(id) = under_way else {
            bail!("tenant {} has no move under way", args.tenant);
        };
        let aborted: Option<bool> = sqlx::query_scalar("select tenant_move_abort($1)")
            .bind(id)
            .fetch_one(&pool)
            .await?;
        if aborted != Some(true) {
            bail!("move {id} is past its switch: it cannot be aborted");
        }
        println!(
            "{}",
            serde_json::json!({"move_id": id, "abort_requested": true})
        );
        id
    } else {
        let (cluster, database): (String, String) = sqlx::query_as(
            "select cluster, database_name from control.tenant_placements where tenant_id = $1",
        )
        .bind(args.tenant)
        .fetch_optional(&pool)
        .await?
        .with_context(|| format!("tenant {} has no placement", args.tenant))?;
        let here: String = sqlx::query_scalar("select current_database()::text")
            .fetch_one(&pool)
            .await?;
        let to_cluster = args.cluster.clone().unwrap_or(cluster.clone());
        let to_database = args
            .database
            .clone()
            .unwrap_or_else(|| match args.to.as_str() {
                "shared" => here.clone(),
                "schema" => database.clone(),
                _ => default_name(args.tenant),
            });
        let to_schema = (args.to == "schema").then(|| {
            args.schema
                .clone()
                .unwrap_or_else(|| default_name(args.tenant))
        });
        if let Some(schema) = &to_schema {
            if to_database == here && to_cluster == cluster {
                bizos_sql::migrate(&args.database_url, Some(schema))
                    .await
                    .with_context(|| format!("cannot prepare schema {schema}"))?;
            }
        }
        let id: Uuid = sqlx::query_scalar("select tenant_move_request($1, $2, $3, $4, $5)")
            .bind(args.tenant)
            .bind(&args.to)
            .bind(&to_cluster)
            .bind(&to_database)
            .bind(&to_schema)
            .fetch_one(&pool)
            .await
            .map_err(|e| match e {
                sqlx::Error::Database(d) => anyhow::anyhow!("{}", d.message()),
                e => e.into(),
            })?;
        println!("{}", serde_json::json!({"move_id": id}));
        id
    };
    if !args.wait {
        return Ok(());
    }
    let mut last = String::new();
    loop {
        let row: Value = sqlx::query_scalar(
            "select to_jsonb(m) from control.tenant_moves m where m.move_id = $1",
        )
        .bind(move_id)
        .fetch_one(&pool)
        .await?;
        let state = row["state"].as_str().unwrap_or_default().to_owned();
        let line = format!("{state} {}", row["progress"]);
        if line != last {
            println!("{line}");
            last = line;
        }
        match state.as_str() {
            "done" => return Ok(()),
            "failed" | "rolled_back" => bail!(
                "move {move_id} {state}: {}",
                row["error"].as_str().unwrap_or("no error recorded")
            ),
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}
