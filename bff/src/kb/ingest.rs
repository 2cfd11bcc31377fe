//! `kb.ingest` {document_id, version}: the job that turns an uploaded
//! document into searchable chunks, as the user who registered or replaced
//! it (sql/api/kb.sql, "ingestion").
//!
//! 1. `kb_ingest_start`: status extracting; the file and where to resume
//!    (chunks an earlier attempt already stored).
//! 2. Read the file, extract its blocks ([`super::extract`]) and chunk them
//!    ([`bizos_core::chunk`], counted with the model's tokenizer). Both are
//!    deterministic, so a rerun numbers the chunks as the first run did.
//! 3. `kb_ingest_progress`: status embedding, chunks_total.
//! 4. Embed and store the chunks batch by batch from the resume point
//!    (`kb_ingest_chunks`, one transaction each), reporting progress on
//!    the job and the document.
//! 5. `kb_ingest_finish`: the version's chunks replace the previous
//!    version's in one transaction; status ready.
//!
//! A file that cannot be read (not a PDF, a scan without a text layer, no
//! text at all) fails the document with a reason the user can act on
//! (`kb_ingest_fail`) and completes the job: retrying would not help. A
//! version superseded meanwhile (a replace or delete) ends the job
//! quietly. Database and storage trouble is retried; after the last
//! attempt the document fails with the error.

use std::sync::Arc;

use bizos_core::chunk::{chunk, Chunk, Sizes};
use futures_util::TryStreamExt;
use serde_json::{json, Value};
use uuid::Uuid;

use super::embed::{Embedder, MAX_SEQ_TOKENS};
use super::extract::{self, Format};
use crate::files::Storage;
use crate::job::{Handler, Job, JobArgs, JobError};
use crate::telemetry::db_call;
use crate::vars::ConfigError;

/// Text tokens of a chunk: with its heading path in front and `[CLS]` and
/// `[SEP]` it stays within the model's 256 tokens unless the headings are
/// unusually long (then the end of the chunk is cut from its vector, not
/// from its text).
pub const CHUNK_TOKENS: usize = MAX_SEQ_TOKENS - 32;
/// Tokens a chunk repeats of the previous one.
pub const OVERLAP_TOKENS: usize = 32;
/// Chunks embedded and stored per transaction.
const BATCH: usize = 32;

/// The payload `kb_document_register` and `kb_document_replace` write.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KbIngestArgs {
    pub document_id: Uuid,
    /// The document version to ingest.
    pub version: i32,
}

impl JobArgs for KbIngestArgs {
    const KIND: &'static str = "kb.ingest";
}

pub struct KbIngest {
    pub storage: Storage,
    pub embedder: Arc<Embedder>,
}

impl KbIngest {
    /// None without the embedding model (BIZOS_KB_MODEL_DIR): this worker
    /// leaves knowledge-base documents to a worker that has one.
    pub fn from_settings(
        model_dir: Option<&std::path::Path>,
        storage: Storage,
    ) -> Result<Option<Self>, ConfigError> {
        let Some(dir) = model_dir else {
            return Ok(None);
        };
        let embedder = super::embed::shared(dir)
            .map_err(|e| ConfigError::Invalid(format!("BIZOS_KB_MODEL_DIR: {e}")))?;
        Ok(Some(KbIngest { storage, embedder }))
    }
}

/// A document's chunks, from its file.
pub fn chunks_of(
    format: Format,
    bytes: &[u8],
    embedder: &Embedder,
) -> Result<Vec<Chunk>, extract::ExtractError> {
    let blocks = extract::extract(format, bytes)?;
    let sizes = Sizes::new(CHUNK_TOKENS, OVERLAP_TOKENS).expect("valid chunk sizes");
    Ok(chunk(&blocks, sizes, embedder))
}

/// What the embedder reads of a chunk: its section, then its text.
pub fn embedding_input(chunk: &Chunk) -> String {
    if chunk.heading_path.is_empty() {
        chunk.text.clone()
    } else {
        format!("{}\n{}", heading_path(chunk), chunk.text)
    }
}

/// The heading path as stored (`kb_chunks.heading_path`) and cited.
pub fn heading_path(chunk: &Chunk) -> String {
    chunk.heading_path.join(" > ")
}

impl Handler for KbIngest {
    type Args = KbIngestArgs;

    async fn run(&self, job: &Job, args: KbIngestArgs) -> Result<(), JobError> {
        let KbIngestArgs {
            document_id,
            version,
        } = args;
        let run = Run {
            job,
            document_id,
            version,
        };
        match self.ingest(&run).await {
            Ok(()) => Ok(()),
            Err(Stop::Superseded) => {
                tracing::info!(%document_id, version, "version superseded; nothing to ingest");
                Ok(())
            }
            Err(Stop::Unusable(reason)) => {
                run.fail(&reason).await?;
                Ok(())
            }
            Err(Stop::Job(e)) => {
                let last = matches!(e, JobError::Permanent(_)) || job.attempt >= job.max_attempts;
                if last && !job.is_lost() {
                    // Best effort: the job's own error is what matters.
                    let _ = run.fail(&format!("ingestion gave up: {e}")).await;
                }
                Err(e)
            }
        }
    }
}

/// Why an ingestion stopped before its end.
enum Stop {
    /// A newer version or a delete took the document over.
    Superseded,
    /// The file cannot give chunks: the document fails with this reason.
    Unusable(String),
    Job(JobError),
}

impl From<JobError> for Stop {
    fn from(e: JobError) -> Self {
        Stop::Job(e)
    }
}

/// P0002: the version is no longer the document's current one, or the
/// document is gone (kb_require_version).
fn superseded(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some("P0002"))
}

impl From<sqlx::Error> for Stop {
    fn from(e: sqlx::Error) -> Self {
        if superseded(&e) {
            Stop::Superseded
        } else {
            Stop::Job(JobError::from_db(&e))
        }
    }
}

struct Run<'a> {
    job: &'a Job,
    document_id: Uuid,
    version: i32,
}

impl Run<'_> {
    /// `select <function>(document_id, version, <extra>)` in one
    /// transaction as the job's user.
    async fn call(&self, function: &'static str, extra: Option<Value>) -> Result<Value, Stop> {
        let mut tx = self.job.begin().await?;
        let sql = match &extra {
            None => format!("select {function}($1, $2)"),
            Some(_) => format!("select {function}($1, $2, $3)"),
        };
        let mut query = sqlx::query_scalar::<_, Value>(&sql)
            .bind(self.document_id)
            .bind(self.version);
        if let Some(extra) = extra {
            query = query.bind(extra);
        }
        let out = db_call(function, query.fetch_one(&mut *tx)).await?;
        tx.commit().await?;
        Ok(out)
    }

    async fn fail(&self, reason: &str) -> Result<(), JobError> {
        let mut tx = self.job.begin().await?;
        let failed = sqlx::query("select kb_ingest_fail($1, $2, $3)")
            .bind(self.document_id)
            .bind(self.version)
            .bind(reason)
            .execute(&mut *tx)
            .await;
        match failed {
            Ok(_) => Ok(tx.commit().await?),
            Err(e) if superseded(&e) => Ok(()),
            Err(e) => Err(JobError::from_db(&e)),
        }
    }
}

impl KbIngest {
    async fn ingest(&self, run: &Run<'_>) -> Result<(), Stop> {
        let start = run.call("kb_ingest_start", None).await?;
        if start["status"] == "ready" {
            return Ok(());
        }
        let format = start["format"]
            .as_str()
            .and_then(Format::parse)
            .ok_or_else(|| {
                Stop::Job(JobError::Permanent(format!(
                    "unknown format {}",
                    start["format"]
                )))
            })?;
        let key = start["object_key"]
            .as_str()
            .ok_or_else(|| Stop::Job(JobError::Permanent("the document has no file".into())))?;
        let bytes = self.read(key).await?;

        let embedder = self.embedder.clone();
        let chunks = tokio::task::spawn_blocking(move || chunks_of(format, &bytes, &embedder))
            .await
            .map_err(|e| Stop::Job(JobError::Retryable(format!("chunking stopped: {e}"))))?
            .map_err(|e| Stop::Unusable(e.to_string()))?;
        let total = chunks.len();
        self.set_total(run, total).await?;

        let resume_from = start["resume_from"].as_u64().unwrap_or(0) as usize;
        let chunks = Arc::new(chunks);
        let mut done = resume_from.min(total);
        run.job.progress(done as i64, total as i64).await?;
        while done < total {
            let end = (done + BATCH).min(total);
            let batch = {
                let chunks = chunks.clone();
                let embedder = self.embedder.clone();
                tokio::task::spawn_blocking(move || {
                    let inputs: Vec<String> =
                        chunks[done..end].iter().map(embedding_input).collect();
                    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
                    embedder.embed(&refs).map(|vectors| {
                        chunks[done..end]
                            .iter()
                            .zip(vectors)
                            .enumerate()
                            .map(|(i, (c, v))| {
                                json!({
                                    "chunk_no": done + i,
                                    "text": c.text,
                                    "heading_path": heading_path(c),
                                    "page_start": c.pages.map(|p| p.0),
                                    "page_end": c.pages.map(|p| p.1),
                                    "token_count": c.tokens,
                                    "embedding": v,
                                })
                            })
                            .collect::<Vec<Value>>()
                    })
                })
                .await
                .map_err(|e| Stop::Job(JobError::Retryable(format!("embedding stopped: {e}"))))?
                .map_err(|e| Stop::Job(JobError::Permanent(e.to_string())))?
            };
            run.call("kb_ingest_chunks", Some(Value::Array(batch)))
                .await?;
            done = end;
            run.job.progress(done as i64, total as i64).await?;
        }
        run.call("kb_ingest_finish", None).await?;
        Ok(())
    }

    async fn set_total(&self, run: &Run<'_>, total: usize) -> Result<(), Stop> {
        let mut tx = run.job.begin().await?;
        db_call(
            "kb_ingest_progress",
            sqlx::query("select kb_ingest_progress($1, $2, 'embedding', $3)")
                .bind(run.document_id)
                .bind(run.version)
                .bind(total as i32)
                .execute(&mut *tx),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The whole file; a file missing from storage is unusable.
    async fn read(&self, key: &str) -> Result<Vec<u8>, Stop> {
        let path = object_store::path::Path::from(key);
        let stream = self
            .storage
            .get(&path)
            .await
            .map_err(|e| Stop::Job(JobError::Retryable(format!("storage: {e:#}"))))?
            .ok_or_else(|| Stop::Unusable("the uploaded file is missing from storage".into()))?;
        let parts: Vec<bytes::Bytes> = stream
            .try_collect()
            .await
            .map_err(|e| Stop::Job(JobError::Retryable(format!("storage: {e}"))))?;
        Ok(parts.concat())
    }
}
