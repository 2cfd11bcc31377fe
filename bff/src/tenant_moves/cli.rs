//! `bizos tenant move T --to schema|isolated|shared`: plans the move
//! and enqueues the worker's job ([`super::request`]) and, with `--wait`,
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

use super::request::{self, MoveTo};
use crate::placement::Tier;

#[derive(Args, Debug)]
pub struct MoveArgs {
    /// The tenant's id.
    pub tenant: Uuid,
    /// The tier to move to.
    #[arg(long, value_enum)]
    pub to: Tier,
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

pub async fn run(args: MoveArgs) -> anyhow::Result<()> {
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&args.database_url)
        .await
        .context("cannot connect to the control database")?;
    let move_id = if args.abort {
        let id = request::abort(&pool, args.tenant).await?;
        println!(
            "{}",
            serde_json::json!({"move_id": id, "abort_requested": true})
        );
        id
    } else {
        let to = MoveTo {
            to_tier: args.to,
            to_cluster: args.cluster.clone(),
            to_database: args.database.clone(),
            to_schema: args.schema.clone(),
        };
        let id = request::request(&pool, &args.database_url, args.tenant, &to).await?;
        println!("{}", serde_json::json!({"move_id": id}));
        id
    };
    if !args.wait {
        return Ok(());
    }
    let mut last = String::new();
    loop {
        let row: Value = request::state(&pool, move_id).await?;
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
