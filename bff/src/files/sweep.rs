//! Nothing of an upload stays in storage without its `objects` row, even
//! when a BFF process dies in the middle of it.
//!
//! Every upload first commits an intent (`upload_begin`, V15) that names
//! the key and this process's *owner lock*: a session-level advisory lock
//! `(OWNER_LOCK_CLASS, key)` held on a connection of its own for as long as
//! the process runs ([`hold_owner_lock`]). When the process dies, its
//! connection closes and PostgreSQL releases the lock, so any BFF can tell
//! that the intents of that owner belong to uploads that will never finish.
//! [`sweep`] — the `storage.sweep` job of `bizos worker`, one per tenant
//! with dead intents, enqueued by `upload_sweep_enqueue` when a BFF starts
//! and every sweep period by the worker — claims the tenant's
//! dead intents (`upload_sweep_claim`: owner gone, or older than the
//! longest possible upload), removes their bytes ([`Storage::purge`]) and
//! then the intents, in one transaction that holds their row locks: a sweep
//! that dies halfway leaves the intents for the next one, and an upload
//! that reaches `object_create` at the same moment waits and then finds its
//! intent gone (the request fails; nothing points at missing bytes).

use std::time::Duration;

use object_store::path::Path;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

use super::storage::Storage;
use crate::job::{Handler, Job, JobArgs, JobError, PayloadError};

/// First key of the owner locks (`b"bizo"`); the same constant is in
/// `upload_owner_locks_held` (sql/api/files.sql).
pub const OWNER_LOCK_CLASS: i32 = 1_651_079_791;
/// Intents claimed per transaction.
const SWEEP_BATCH: i64 = 100;
/// An upload intent older than the upload timeout plus this is dead even if
/// its process lives.
pub const SWEEP_MARGIN: Duration = Duration::from_secs(60);
/// How often a connection holding the owner lock is checked.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// Takes an owner lock no other session holds, on a connection of its own
/// that a background task keeps open (and re-locks after a reconnect) for
/// the life of the process. Returns the lock's key for `upload_begin`.
pub async fn hold_owner_lock(options: PgConnectOptions) -> anyhow::Result<i32> {
    let options = options.application_name("bizos-bff-upload-owner");
    let mut conn = PgConnection::connect_with(&options)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the upload owner connection: {e}"))?;
    for _ in 0..100 {
        let key = random_key();
        if try_lock(&mut conn, key).await? {
            tokio::spawn(keep_owner_lock(options, conn, key));
            return Ok(key);
        }
    }
    anyhow::bail!("no free upload owner lock after 100 tries")
}

fn random_key() -> i32 {
    let bytes = Uuid::new_v4().into_bytes();
    let n = i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) & i32::MAX;
    n.max(1)
}

async fn try_lock(conn: &mut PgConnection, key: i32) -> sqlx::Result<bool> {
    sqlx::query_scalar("select pg_try_advisory_lock($1, $2)")
        .bind(OWNER_LOCK_CLASS)
        .bind(key)
        .fetch_one(conn)
        .await
}

async fn keep_owner_lock(options: PgConnectOptions, mut conn: PgConnection, key: i32) {
    let mut tick = tokio::time::interval(KEEPALIVE);
    loop {
        tick.tick().await;
        if sqlx::query("select 1").execute(&mut conn).await.is_ok() {
            continue;
        }
        // Without the lock, other BFFs may take this process's uploads in
        // progress for dead ones: they then fail at object_create (their
        // intent is gone), but nothing is left behind.
        tracing::error!(
            key,
            "lost the connection holding the upload owner lock; reconnecting"
        );
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let Ok(mut fresh) = PgConnection::connect_with(&options).await else {
                continue;
            };
            match try_lock(&mut fresh, key).await {
                Ok(true) => {
                    conn = fresh;
                    tracing::info!(key, "upload owner lock held again");
                    break;
                }
                Ok(false) => {
                    tracing::error!(key, "the upload owner lock is held by another session");
                    conn = fresh;
                    break;
                }
                Err(_) => continue,
            }
        }
    }
}

/// The age beyond which an upload intent is dead even if its owner lives
/// (a request cannot run that long: its cleanup failed).
pub fn max_age(upload_timeout: Duration) -> Duration {
    upload_timeout + SWEEP_MARGIN
}

/// Enqueues a `storage.sweep` job for every tenant with a dead upload and
/// no sweep waiting (`upload_sweep_enqueue`); returns how many.
pub async fn enqueue(pool: &PgPool, max_age: Duration) -> sqlx::Result<i32> {
    sqlx::query_scalar("select upload_sweep_enqueue($1)")
        .bind(max_age.as_secs_f64())
        .fetch_one(pool)
        .await
}

/// One sweep of a tenant: removes the bytes and intents of every dead
/// upload of it. Returns how many were removed; stops at the first batch
/// with bytes it could not remove (their intents stay for the next sweep,
/// and the error is returned). An intent older than `max_age` is dead even
/// if its owner lives.
pub async fn sweep(
    pool: &PgPool,
    storage: &Storage,
    tenant_id: Uuid,
    max_age: Duration,
) -> anyhow::Result<u64> {
    let mut swept = 0u64;
    loop {
        let mut tx = pool.begin().await?;
        let claimed: Vec<(Uuid, Uuid, String, Option<String>, bool)> = sqlx::query_as(
            "select tenant_id, object_id, object_key, multipart_id, registered
               from upload_sweep_claim($1, $2, $3)",
        )
        .bind(tenant_id)
        .bind(max_age.as_secs_f64())
        .bind(SWEEP_BATCH as i32)
        .fetch_all(&mut *tx)
        .await?;
        let full = claimed.len() as i64 == SWEEP_BATCH;
        let mut failed = None;
        for (tenant_id, object_id, key, multipart_id, registered) in claimed {
            // Bytes first, then the intent: if this process dies between the
            // two, the intent (uncommitted delete) is still there next time.
            if !registered {
                let key = Path::from(key.as_str());
                if let Err(e) = storage.purge(&key, multipart_id.as_deref()).await {
                    tracing::warn!(error = %e, %key, "could not remove the bytes of an interrupted upload");
                    failed = Some(format!("could not remove the bytes at {key}: {e}"));
                    continue;
                }
            }
            sqlx::query("select upload_intent_forget($1, $2)")
                .bind(tenant_id)
                .bind(object_id)
                .execute(&mut *tx)
                .await?;
            swept += 1;
        }
        tx.commit().await?;
        if let Some(e) = failed {
            anyhow::bail!("{e} ({swept} other dead uploads removed)");
        }
        if !full {
            return Ok(swept);
        }
    }
}

/// Removes the bytes of an upload that will not be registered (a failed or
/// replayed request), then its intent, in the background. If that fails,
/// the sweep removes both once the intent is older than the longest upload.
pub fn forget_later(
    pool: PgPool,
    storage: Storage,
    tenant_id: Uuid,
    object_id: Uuid,
    key: Path,
    multipart_id: Option<String>,
) {
    tokio::spawn(async move {
        if let Err(e) = storage.purge(&key, multipart_id.as_deref()).await {
            tracing::warn!(error = %e, %key, "could not remove an unregistered upload");
            return;
        }
        if let Err(e) = sqlx::query("select upload_intent_forget($1, $2)")
            .bind(tenant_id)
            .bind(object_id)
            .execute(&pool)
            .await
        {
            tracing::warn!(error = %e, %key, "could not remove the intent of an unregistered upload");
        }
    });
}

/// The payload of `storage.sweep`: `upload_sweep_enqueue` writes
/// `{max_age_secs}`, the enqueuing process's age limit. Keys it does not
/// know are ignored: a schedule's job payload is its user's, free-form.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StorageSweepArgs {
    #[serde(default)]
    pub max_age_secs: Option<f64>,
}

impl JobArgs for StorageSweepArgs {
    const KIND: &'static str = "storage.sweep";

    fn check(&self) -> Result<(), PayloadError> {
        match self.max_age_secs {
            Some(s) if !(s.is_finite() && s > 0.0 && s < 1e9) => Err(PayloadError::field(
                "max_age_secs",
                "must be a positive number of seconds",
            )),
            _ => Ok(()),
        }
    }
}

/// `storage.sweep`: removes the bytes and intents of the tenant's dead
/// uploads ([`sweep`]: process gone, or older than the longest upload).
/// Idempotent: a claimed intent is deleted only after its bytes, in the
/// transaction holding its row lock, so a run killed midway leaves the
/// rest for the next. The age limit is the larger of this worker's
/// (BIZOS_UPLOAD_TIMEOUT_SECS + 60 s) and the payload's (the enqueuing
/// BFF's): a live upload is never taken for an old one. Storage failures
/// are retried.
pub struct StorageSweep {
    pub storage: Storage,
    pub max_age: Duration,
}

impl StorageSweep {
    /// The sweep of a worker whose BFFs time uploads out after
    /// `upload_timeout`.
    pub fn new(storage: Storage, upload_timeout: Duration) -> Self {
        StorageSweep {
            storage,
            max_age: max_age(upload_timeout),
        }
    }
}

impl Handler for StorageSweep {
    type Args = StorageSweepArgs;

    async fn run(&self, job: &Job, args: StorageSweepArgs) -> Result<(), JobError> {
        let asked = args.max_age_secs.map(Duration::from_secs_f64);
        let max_age = asked.map_or(self.max_age, |a| a.max(self.max_age));
        let swept = sweep(job.pool(), &self.storage, job.tenant_id, max_age)
            .await
            .map_err(|e| match e.downcast_ref::<sqlx::Error>() {
                Some(db) => JobError::from_db(db),
                None => JobError::Retryable(format!("{e:#}")),
            })?;
        if swept > 0 {
            tracing::info!(swept, "bytes of interrupted uploads removed");
        }
        job.progress(swept as i64, swept as i64).await?;
        Ok(())
    }
}
