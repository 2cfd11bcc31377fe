//! The run history of fleet migrations (`control.fleet_runs`,
//! `control.fleet_run_placements`): a row per run and one per placement
//! once its work finished, so `--resume` skips what a crashed or failed run
//! finished.

use std::collections::BTreeMap;

use sqlx::PgPool;
use uuid::Uuid;

use super::report::{Outcome, PlacementReport};

/// What the binary migrates to: its latest version and the fingerprint of
/// its migrations and api files (a resumed run must have the same).
pub fn target(extra: &str) -> String {
    format!(
        "V{}:{:016x}{extra}",
        bizos_sql::latest_version(),
        bizos_sql::fingerprint()
    )
}

/// Starts a new run.
pub async fn start(control: &PgPool, target: &str, concurrency: usize) -> anyhow::Result<Uuid> {
    sqlx::query_scalar(
        "insert into control.fleet_runs (target, concurrency) values ($1, $2) returning run_id",
    )
    .bind(target)
    .bind(i32::try_from(concurrency)?)
    .fetch_one(control)
    .await
    .map_err(|e| anyhow::anyhow!("cannot record the run in control.fleet_runs: {e}"))
}

/// The newest unfinished run, and the placements it finished (applied or
/// current) with their outcome; failed placements are tried again.
pub async fn resume(
    control: &PgPool,
    target: &str,
) -> anyhow::Result<(Uuid, BTreeMap<String, Outcome>)> {
    let run: Option<(Uuid, String)> = sqlx::query_as(
        "select run_id, target from control.fleet_runs
          where state <> 'done' order by started_at desc limit 1",
    )
    .fetch_optional(control)
    .await?;
    let Some((run_id, was)) = run else {
        anyhow::bail!("--resume: no unfinished fleet run to resume");
    };
    if was != target {
        anyhow::bail!(
            "--resume: run {run_id} migrated to {was}, this binary to {target}; start a new run (without --resume)"
        );
    }
    let rows: Vec<(String, String)> = sqlx::query_as(
        "select placement, outcome from control.fleet_run_placements
          where run_id = $1 and outcome in ('applied', 'current')",
    )
    .bind(run_id)
    .fetch_all(control)
    .await?;
    sqlx::query(
        "update control.fleet_runs set state = 'running', finished_at = null where run_id = $1",
    )
    .bind(run_id)
    .execute(control)
    .await?;
    let finished = rows
        .into_iter()
        .map(|(p, o)| {
            let outcome = if o == "applied" {
                Outcome::Applied
            } else {
                Outcome::Current
            };
            (p, outcome)
        })
        .collect();
    Ok((run_id, finished))
}

/// Records a placement's outcome (again, when a resumed run retried it).
pub async fn record(control: &PgPool, run_id: Uuid, p: &PlacementReport) -> anyhow::Result<()> {
    let outcome = match p.outcome {
        Outcome::Applied | Outcome::Current | Outcome::Failed => p.outcome.as_str(),
        _ => return Ok(()),
    };
    sqlx::query(
        "insert into control.fleet_run_placements
           (run_id, placement, outcome, migrations, api_files, extension, error, drift, elapsed_ms)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         on conflict (run_id, placement) do update set
           outcome = excluded.outcome, migrations = excluded.migrations,
           api_files = excluded.api_files, extension = excluded.extension,
           error = excluded.error, drift = excluded.drift,
           elapsed_ms = excluded.elapsed_ms, finished_at = now()",
    )
    .bind(run_id)
    .bind(&p.placement)
    .bind(outcome)
    .bind(&p.migrations)
    .bind(i32::try_from(p.api_files)?)
    .bind(
        p.extension
            .as_ref()
            .map(|e| format!("{} -> {}", e.from, e.to)),
    )
    .bind(&p.error)
    .bind(p.drift.as_ref().map(sqlx::types::Json))
    .bind(i64::try_from(p.elapsed_ms)?)
    .execute(control)
    .await
    .map_err(|e| {
        anyhow::anyhow!(
            "cannot record {} in control.fleet_run_placements: {e}",
            p.placement
        )
    })?;
    Ok(())
}

/// Ends the run: done when nothing failed or was left unrun.
pub async fn finish(control: &PgPool, run_id: Uuid, complete: bool) -> anyhow::Result<()> {
    sqlx::query("update control.fleet_runs set state = $2, finished_at = now() where run_id = $1")
        .bind(run_id)
        .bind(if complete { "done" } else { "failed" })
        .execute(control)
        .await?;
    Ok(())
}
