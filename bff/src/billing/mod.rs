//! Billing (docs/billing.md): the operator's monthly invoice to each
//! tenant. The database closes periods, prorates, numbers and e-mails
//! (sql/api/billing.sql); here are the `billing.month_end` job that drives
//! it per tenant and the invoice's PDF.

pub mod pdf;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::job::{Handler, Job, JobArgs, JobError};
use crate::telemetry::db_call;

/// The payload of `billing.month_end`: nothing; the database knows the
/// tenant's periods and drafts (billing_month_end_enqueue writes `{}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillingMonthEndArgs {}

impl JobArgs for BillingMonthEndArgs {
    const KIND: &'static str = "billing.month_end";
}

/// Closes every ended billing period of the job's tenant into a draft
/// invoice, then finalizes (numbers and e-mails) the drafts whose grace
/// period is over, each in a transaction of its own: a rerun after a lost
/// lease finds the closed periods closed (billing_close_period returns the
/// period's invoice) and the finalized drafts finalized, so it makes no
/// second invoice and sends no second e-mail.
pub struct BillingMonthEnd;

impl Handler for BillingMonthEnd {
    type Args = BillingMonthEndArgs;

    async fn run(&self, job: &Job, _args: BillingMonthEndArgs) -> Result<(), JobError> {
        let mut closed = 0i64;
        // At most one period a month: a tenant that missed runs catches up
        // month by month; the bound only guards against a loop.
        for _ in 0..1200 {
            let due: Option<chrono::NaiveDate> = db_call(
                "billing_period_due",
                sqlx::query_scalar("select period_start from billing_period_due($1)")
                    .bind(job.tenant_id)
                    .fetch_optional(job.pool()),
            )
            .await
            .map_err(|e| JobError::from_db(&e))?;
            let Some(start) = due else { break };
            let _: Option<Uuid> = db_call(
                "billing_close_period",
                sqlx::query_scalar("select billing_close_period($1, $2, null)")
                    .bind(job.tenant_id)
                    .bind(start)
                    .fetch_one(job.pool()),
            )
            .await
            .map_err(|e| JobError::from_db(&e))?;
            closed += 1;
        }
        let drafts: Vec<Uuid> = db_call(
            "billing_drafts_due",
            sqlx::query_scalar("select billing_drafts_due($1)")
                .bind(job.tenant_id)
                .fetch_all(job.pool()),
        )
        .await
        .map_err(|e| JobError::from_db(&e))?;
        for invoice in &drafts {
            db_call(
                "billing_finalize",
                sqlx::query("select billing_finalize($1, $2)")
                    .bind(job.tenant_id)
                    .bind(invoice)
                    .execute(job.pool()),
            )
            .await
            .map_err(|e| JobError::from_db(&e))?;
        }
        let done = closed + drafts.len() as i64;
        job.progress(done, done).await?;
        Ok(())
    }
}
