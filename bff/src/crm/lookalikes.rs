//! `customer.lookalikes`: the customers with names similar to a new one,
//! kept for review (sql/api/crm.sql, V36).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::job::{Handler, Job, JobArgs, JobError, PayloadError};
use crate::telemetry::db_call;

/// The payload the dedup of `find_or_create_customer` writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerLookalikesArgs {
    /// 1 to 1000 customers.
    pub customer_ids: Vec<Uuid>,
}

impl JobArgs for CustomerLookalikesArgs {
    const KIND: &'static str = "customer.lookalikes";

    fn check(&self) -> Result<(), PayloadError> {
        if self.customer_ids.is_empty() || self.customer_ids.len() > 1000 {
            return Err(PayloadError::field(
                "customer_ids",
                "must be a list of 1 to 1000 uuids",
            ));
        }
        Ok(())
    }
}

/// Finds the customers with names similar to each listed (new) customer
/// and keeps them for review (system job, enqueued by the dedup of
/// find_or_create_customer in the transaction that created the customer).
/// One SECURITY DEFINER call granted to the worker
/// (`customer_lookalikes_find`), which replaces what an earlier run
/// stored: a rerun gives the same rows.
pub struct CustomerLookalikes;

impl Handler for CustomerLookalikes {
    type Args = CustomerLookalikesArgs;

    async fn run(&self, job: &Job, args: CustomerLookalikesArgs) -> Result<(), JobError> {
        let ids = args.customer_ids;
        let found: i32 = db_call(
            "customer_lookalikes_find",
            sqlx::query_scalar("select customer_lookalikes_find($1, $2)")
                .bind(job.tenant_id)
                .bind(&ids)
                .fetch_one(job.pool()),
        )
        .await?;
        tracing::debug!(customers = ids.len(), found, "look-alikes stored");
        job.progress(ids.len() as i64, ids.len() as i64).await?;
        Ok(())
    }
}
