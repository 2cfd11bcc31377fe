//! RFM segmentation (AI-3): the `rfm.compute` job. The database computes
//! the snapshot (`rfm_compute`, sql/api/rfm.sql); the routes are in
//! `routes/rfm.rs`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::job::{Handler, Job, JobArgs, JobError};
use crate::telemetry::db_call;

/// The payload of `rfm.compute`: the schedule 'rfm weekly' writes `{}`,
/// `rfm_request` `{as_of}`. Keys it does not know are ignored: a
/// schedule's job payload is its user's, free-form.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RfmComputeArgs {
    /// The week's day (YYYY-MM-DD); absent or null: the tenant's today.
    #[serde(default)]
    pub as_of: Option<chrono::NaiveDate>,
}

impl JobArgs for RfmComputeArgs {
    const KIND: &'static str = "rfm.compute";
}

/// The tenant's RFM snapshot of the week of `as_of`, enqueued weekly by
/// the tenant's schedule 'rfm weekly' (system job) or on demand by a
/// manager (`POST /api/rfm/runs`). One SECURITY DEFINER call granted to
/// the worker (`rfm_compute`), which replaces that week's snapshot in one
/// transaction: a rerun (a lost lease, a second request) gives the same
/// snapshot, never a second one.
pub struct RfmCompute;

impl Handler for RfmCompute {
    type Args = RfmComputeArgs;

    async fn run(&self, job: &Job, args: RfmComputeArgs) -> Result<(), JobError> {
        let done: Value = db_call(
            "rfm_compute",
            sqlx::query_scalar("select rfm_compute($1, $2)")
                .bind(job.tenant_id)
                .bind(args.as_of)
                .fetch_one(job.pool()),
        )
        .await?;
        let customers = done["customers"].as_i64().unwrap_or(0);
        job.progress(customers, customers).await?;
        Ok(())
    }
}
