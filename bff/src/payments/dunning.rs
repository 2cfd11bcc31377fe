//! The `billing.dunning` job: a tenant's dunning at the billing clock
//! (`billing_dunning_run`, sql/api/payments.sql): reminders through the
//! e-mail outbox on the configured days, then the soft lock. The worker
//! enqueues one per tenant with something unpaid and billing day
//! (`billing_dunning_enqueue`, beside the due schedules), so a rerun the
//! same day finds its job and does nothing more; the function itself is
//! idempotent too (a job run again after a lost lease sends nothing twice).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::job::{Handler, Job, JobArgs, JobError};
use crate::telemetry::db_call;

/// The payload of `billing.dunning`: `{}` (everything comes from the
/// billing settings and the clock).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillingDunningArgs {}

impl JobArgs for BillingDunningArgs {
    const KIND: &'static str = "billing.dunning";
}

/// Runs a tenant's dunning (system job; a SECURITY DEFINER function
/// granted to the worker).
pub struct BillingDunning;

impl Handler for BillingDunning {
    type Args = BillingDunningArgs;

    #[tracing::instrument(skip_all, fields(tenant_id = %job.tenant_id))]
    async fn run(&self, job: &Job, _: BillingDunningArgs) -> Result<(), JobError> {
        let done: Value = db_call(
            "billing_dunning_run",
            sqlx::query_scalar("select billing_dunning_run($1)")
                .bind(job.tenant_id)
                .fetch_one(job.pool()),
        )
        .await?;
        let reminders = done["reminders"].as_i64().unwrap_or(0);
        tracing::info!(
            reminders,
            locked = done["locked"].as_i64().unwrap_or(0),
            "dunning ran"
        );
        job.progress(reminders, reminders).await?;
        Ok(())
    }
}
