//! `vector.retrain`: rebuilds a bizos_ivf index whose lists no longer fit
//! its table (issue 49; docs/vector.md "Keeping an index trained").
//!
//! An IVF index trains its lists once, at its build. The worker's upkeep
//! asks `vector_retrain_enqueue` (sql/api/vector_indexes.sql) each period
//! for a job per index that `bizos.ivf_index_state` says needs a rebuild
//! (grown or shrunk 1.5 / 0.5 times the rows it was trained on, lists
//! unbalanced, or trained on nothing), and this handler runs `REINDEX
//! INDEX CONCURRENTLY`: reads and writes of the table go on, the old index
//! serves queries until the new one replaces it. REINDEX must be run by
//! the index's owner and outside any transaction or function, so it runs
//! here, on the maintenance login (BIZOS_INDEX_MAINTENANCE_URL, a member of
//! the schema's owner role), not in SQL of the worker's login.
//!
//! A REINDEX CONCURRENTLY that dies (the worker killed, the session
//! terminated, a crash) leaves the old index valid and in use, and an
//! invalid copy `<index>_ccnew` (or `_ccold`, when it died after the swap)
//! that inserts keep maintaining. The next run drops those first (`DROP
//! INDEX CONCURRENTLY`), then rebuilds.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sqlx::{Connection, PgConnection};

use crate::job::{Handler, Job, JobArgs, JobError, PayloadError};

/// The payload of `vector.retrain`: the index, schema-qualified as
/// `vector_index_states` names it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorRetrainArgs {
    pub index: String,
}

impl JobArgs for VectorRetrainArgs {
    const KIND: &'static str = "vector.retrain";

    fn check(&self) -> Result<(), PayloadError> {
        if self.index.is_empty() || self.index.len() > 200 {
            return Err(PayloadError::field(
                "index",
                "must name an index (schema.name, at most 200 characters)",
            ));
        }
        Ok(())
    }
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retrained {
    /// Invalid copies of killed rebuilds that were dropped.
    pub dropped: Vec<String>,
    /// Whether the index was rebuilt (false: it no longer needed it).
    pub rebuilt: bool,
}

/// Drops the leftovers of killed rebuilds of `index` and rebuilds it with
/// `REINDEX INDEX CONCURRENTLY` when it still needs it (or always, with
/// `force`); nothing while another run holds the index. `conn` is a
/// session of the index's owner, outside any transaction; `index` as
/// `vector_index_states` names it.
pub async fn retrain(
    conn: &mut PgConnection,
    index: &str,
    force: bool,
) -> Result<Retrained, sqlx::Error> {
    // One run per index at a time (several workers, or a job enqueued
    // again while a long rebuild runs): the others find it busy and leave
    // it. The lock is the session's, released when the run ends.
    let mine: bool =
        sqlx::query_scalar("select pg_try_advisory_lock(hashtext('vector.retrain'), hashtext($1))")
            .bind(index)
            .fetch_one(&mut *conn)
            .await?;
    if !mine {
        return Ok(Retrained {
            dropped: Vec::new(),
            rebuilt: false,
        });
    }
    let done = retrain_locked(conn, index, force).await;
    sqlx::query("select pg_advisory_unlock(hashtext('vector.retrain'), hashtext($1))")
        .bind(index)
        .execute(&mut *conn)
        .await?;
    done
}

async fn retrain_locked(
    conn: &mut PgConnection,
    index: &str,
    force: bool,
) -> Result<Retrained, sqlx::Error> {
    let state: Option<(bool, Vec<String>)> = sqlx::query_as(
        "select needs_retrain, leftovers from vector_index_states() where index_name = $1",
    )
    .bind(index)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((needed, leftovers)) = state else {
        return Err(sqlx::Error::RowNotFound);
    };
    // A rebuild may take minutes: no statement timeout of the login's.
    sqlx::query("set statement_timeout = 0")
        .execute(&mut *conn)
        .await?;
    let mut dropped = Vec::new();
    for name in leftovers {
        // The names come from the catalogue, quoted by format('%I.%I').
        sqlx::query(&format!("drop index concurrently if exists {name}"))
            .execute(&mut *conn)
            .await?;
        dropped.push(name);
    }
    let rebuilt = needed || force;
    if rebuilt {
        sqlx::query(&format!("reindex index concurrently {index}"))
            .execute(&mut *conn)
            .await?;
    }
    Ok(Retrained { dropped, rebuilt })
}

/// The handler: a session of the maintenance login per run.
pub struct VectorRetrain {
    url: SecretString,
}

impl VectorRetrain {
    /// None without a maintenance login: the kind is registered but not
    /// run here (its jobs wait for a worker that has one).
    pub fn from_settings(url: Option<&SecretString>) -> Option<Self> {
        url.map(|u| VectorRetrain { url: u.clone() })
    }
}

impl Handler for VectorRetrain {
    type Args = VectorRetrainArgs;

    #[tracing::instrument(skip(self, job), fields(index = %args.index))]
    async fn run(&self, job: &Job, args: VectorRetrainArgs) -> Result<(), JobError> {
        if job.placement() != crate::worker::targets::CONTROL {
            return Err(JobError::Permanent(format!(
                "vector.retrain runs on the control database's maintenance login, not on placement {}",
                job.placement()
            )));
        }
        let mut conn = PgConnection::connect(self.url.expose_secret())
            .await
            .map_err(|e| JobError::from_db(&e))?;
        let done = retrain(&mut conn, &args.index, false).await;
        let _ = conn.close().await;
        match done {
            Ok(r) => {
                tracing::info!(
                    index = %args.index,
                    dropped = r.dropped.len(),
                    rebuilt = r.rebuilt,
                    "vector index retrained"
                );
                Ok(())
            }
            Err(sqlx::Error::RowNotFound) => Err(JobError::Permanent(format!(
                "payload.index: no bizos_ivf index {} in this schema",
                args.index
            ))),
            Err(e) => Err(JobError::from_db(&e)),
        }
    }
}
