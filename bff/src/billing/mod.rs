//! Billing (docs/billing.md): the operator's monthly invoice to each
//! tenant. The database closes periods, prorates, numbers and e-mails
//! (sql/api/billing.sql); here are the `billing.month_end` job that drives
//! it per tenant and the invoice's PDF.

pub mod pdf;
mod placed;

use serde::{Deserialize, Serialize};

use crate::job::{Handler, Job, JobArgs, JobError};
use crate::placement::Secrets;
use crate::telemetry::db_call;

/// The payload of `billing.month_end`: nothing; the database knows the
/// tenant's periods and drafts (billing_month_end_enqueue writes `{}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillingMonthEndArgs {}

impl JobArgs for BillingMonthEndArgs {
    const KIND: &'static str = "billing.month_end";
}

/// How many tenants one `billing.month_end` job closes in its transaction:
/// its own and up to this many minus one whose jobs are queued
/// (billing_month_end_batch).
const MONTH_END_BATCH: i32 = 1000;

/// Closes every ended billing period of the job's tenant into a draft
/// invoice and finalizes (numbers and e-mails) the drafts whose grace
/// period is over, in one transaction together with the tenants of up to
/// `MONTH_END_BATCH - 1` other queued month-end jobs, which it marks
/// succeeded in that transaction. If the batch fails (one tenant's error
/// rolls back all of it), the job does its own tenant alone, so one broken
/// tenant costs the others no more than their own jobs. A rerun after a
/// lost lease finds the closed periods closed (billing_close_period
/// returns the period's invoice) and the finalized drafts finalized, so it
/// makes no second invoice and sends no second e-mail.
///
/// A tenant metered in a placement of its own is closed alone, with the
/// usage read there (placed.rs).
pub struct BillingMonthEnd {
    /// Where the URLs of the placements' clusters are.
    secrets: Secrets,
}

impl BillingMonthEnd {
    pub fn new(secrets: Secrets) -> Self {
        BillingMonthEnd { secrets }
    }
}

impl Handler for BillingMonthEnd {
    type Args = BillingMonthEndArgs;

    async fn run(&self, job: &Job, _args: BillingMonthEndArgs) -> Result<(), JobError> {
        let here: bool = db_call(
            "billing_usage_here",
            sqlx::query_scalar("select billing_usage_here($1)")
                .bind(job.tenant_id)
                .fetch_one(job.pool()),
        )
        .await?;
        if !here {
            let done = placed::month_end(job, &self.secrets).await?;
            job.progress(i64::from(done), i64::from(done)).await?;
            return Ok(());
        }
        let batch: Result<(i32, i32), sqlx::Error> = db_call(
            "billing_month_end_batch",
            sqlx::query_as("select done, others from billing_month_end_batch($1, $2)")
                .bind(job.tenant_id)
                .bind(MONTH_END_BATCH)
                .fetch_one(job.pool()),
        )
        .await;
        let done = match batch {
            Ok((done, others)) => {
                tracing::debug!(others, "month-end closed with other tenants' jobs");
                done
            }
            Err(e) => {
                tracing::warn!(error = %e, "the month-end batch failed; this tenant alone");
                db_call(
                    "billing_month_end_of",
                    sqlx::query_scalar("select billing_month_end_of($1)")
                        .bind(job.tenant_id)
                        .fetch_one(job.pool()),
                )
                .await
                .map_err(|e| JobError::from_db(&e))?
            }
        };
        job.progress(i64::from(done), i64::from(done)).await?;
        Ok(())
    }
}
