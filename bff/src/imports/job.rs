//! `import.process`: the worker's half of an import that has rows left
//! after the request's first batch (`import_process_later`,
//! sql/api/imports.sql, queues it in the request's transaction).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::job::{Handler, Job, JobArgs, JobError};
use crate::telemetry::db_call;

/// The payload `import_process_later` writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportProcessArgs {
    pub import_id: Uuid,
    /// Rows per transaction (clamped to 1..=100000); absent or null: the
    /// worker's BIZOS_IMPORT_BATCH_ROWS.
    #[serde(default)]
    pub batch_rows: Option<i64>,
}

impl JobArgs for ImportProcessArgs {
    const KIND: &'static str = "import.process";
}

/// Processes a staged import batch by batch, one `process_import`
/// transaction each, as the user who enqueued it, reporting progress
/// (processed of total rows). Resumable: each batch commits the rows it
/// settled, so a job killed mid-way (or a lost lease) continues after the
/// last committed batch and no row is processed twice.
pub struct ImportProcess {
    pub batch_rows: u32,
}

impl ImportProcess {
    pub fn new(batch_rows: u32) -> Self {
        ImportProcess { batch_rows }
    }
}

impl Handler for ImportProcess {
    type Args = ImportProcessArgs;

    async fn run(&self, job: &Job, args: ImportProcessArgs) -> Result<(), JobError> {
        let batch = args
            .batch_rows
            .map(|n| n.clamp(1, 100_000) as i32)
            .unwrap_or(self.batch_rows as i32);
        loop {
            let mut tx = job.begin().await?;
            let progress: Value = db_call(
                "process_import",
                sqlx::query_scalar("select process_import($1, $2)")
                    .bind(args.import_id)
                    .bind(batch)
                    .fetch_one(&mut *tx),
            )
            .await?;
            tx.commit().await?;
            let total = progress["total_rows"].as_i64().unwrap_or(0);
            let done = progress["processed_rows"].as_i64().unwrap_or(0);
            job.progress(done, total).await?;
            if progress["pending_rows"].as_i64().unwrap_or(0) <= 0 {
                return Ok(());
            }
        }
    }
}
