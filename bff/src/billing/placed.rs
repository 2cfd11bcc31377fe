//! The month-end of a tenant metered in a placement of its own (a schema or
//! a database; `billing_usage_here` false): its subscription and invoices
//! are in the control database, its usage where its rows are. Each ended
//! period's quantities are read there (`usage_quantities`, as the worker's
//! login of that placement) and priced and closed here (`usage_price`,
//! `billing_close_period`), one period at a time; its users who pay are
//! read there too and recorded in control (`billing_contacts`), where the
//! finalization's and the dunning's mail goes.

use chrono::NaiveDate;
use serde_json::Value;
use sqlx::{Connection, PgConnection};

use crate::job::{Job, JobError};
use crate::placement::{placement_of, Secrets, Tier};
use crate::telemetry::db_call;
use crate::worker::targets::{placement_options, PlacementAt};

/// Closes every ended period of the job's tenant with its placement's
/// usage, then finalizes its drafts past their grace period; how many
/// periods and drafts it did.
pub(super) async fn month_end(job: &Job, secrets: &Secrets) -> Result<i32, JobError> {
    let tenant = job.tenant_id;
    let (placement, url_secret, home) = placement_of(job.pool(), tenant)
        .await
        .map_err(|e| JobError::Retryable(format!("reading the tenant's placement: {e:#}")))?
        .ok_or_else(|| {
            JobError::Permanent(format!("tenant {tenant} has no placement to read usage in"))
        })?;
    let control = job.pool().connect_options();
    let control_database = control.get_database().unwrap_or_default().to_owned();
    let options = placement_options(
        secrets,
        &control,
        &control_database,
        &PlacementAt {
            cluster: &placement.cluster,
            url_secret: &url_secret,
            home,
            database: &placement.database_name,
            schema: match placement.tier {
                Tier::Schema => placement.schema_name.as_deref(),
                _ => None,
            },
        },
    )
    .map_err(|e| JobError::Permanent(format!("{e:#}")))?;
    let mut there = PgConnection::connect_with(&options.application_name("bizos-worker"))
        .await
        .map_err(|e| JobError::from_db(&e))?;
    let mut closed = 0;
    // At most one period a month; the bound only guards against a loop.
    for _ in 0..1200 {
        let due: Option<(NaiveDate, NaiveDate)> = db_call(
            "billing_period_due",
            sqlx::query_as("select period_start, period_end from billing_period_due($1)")
                .bind(tenant)
                .fetch_optional(job.pool()),
        )
        .await?;
        let Some((from, to)) = due else { break };
        let used: Value = db_call(
            "usage_quantities",
            sqlx::query_scalar(
                "select coalesce(jsonb_agg(jsonb_build_object('metric_code', q.metric_code,
                                                              'quantity', q.quantity)), '[]')
                   from usage_quantities($1, $2, $3) q",
            )
            .bind(tenant)
            .bind(from)
            .bind(to)
            .fetch_one(&mut there),
        )
        .await?;
        db_call(
            "billing_close_period",
            sqlx::query(
                "select billing_close_period($1, $2,
                          (select coalesce(jsonb_agg(to_jsonb(u)), '[]') from usage_price($1, $3) u))",
            )
            .bind(tenant)
            .bind(from)
            .bind(&used)
            .execute(job.pool()),
        )
        .await?;
        closed += 1;
    }
    // Where the operator's mail goes: its users who pay, read there.
    let contacts: Vec<String> = db_call(
        "billing_payers",
        sqlx::query_scalar("select billing_payers($1)")
            .bind(tenant)
            .fetch_one(&mut there),
    )
    .await?;
    db_call(
        "billing_contacts_set",
        sqlx::query("select billing_contacts_set($1, $2)")
            .bind(tenant)
            .bind(&contacts)
            .execute(job.pool()),
    )
    .await?;
    let _ = there.close().await;
    // No period is due now: the drafts past their grace period, mailed to
    // those contacts.
    let finalized: i32 = db_call(
        "billing_month_end_of",
        sqlx::query_scalar("select billing_month_end_of($1)")
            .bind(tenant)
            .fetch_one(job.pool()),
    )
    .await?;
    Ok(closed + finalized)
}
