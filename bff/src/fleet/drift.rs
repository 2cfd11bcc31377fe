//! The drift check of a run, after its waves: the catalogues of the
//! placements of a database are read [`CATALOGUE_BATCH`] schemas a
//! statement, at most `concurrency` statements at once, and compared in
//! memory with the expected catalogue (built once per run). One statement
//! per placement on a new connection cost a tenant schema about five times
//! its migration.

use std::collections::BTreeMap;
use std::sync::Arc;

use bizos_sql::fleet::{Catalogue, CATALOGUE_BATCH};
use tokio::sync::Semaphore;

use super::report::{Outcome, PlacementReport};
use super::runs;
use super::waves::Work;

/// A placement to check: its line in the report, its database's connection
/// string and its schema (`None`: the database's default one).
pub struct Target {
    pub line: usize,
    pub dsn: String,
    pub schema: Option<String>,
}

/// Checks the placements of `targets` (those that migrated) and writes
/// their drift into `lines` (recording the drifted ones again). A
/// placement whose catalogue cannot be read fails, as its migration would
/// have; the others of its database are read again one by one, so it
/// fails alone.
pub async fn check(
    lines: &mut [PlacementReport],
    targets: Vec<Target>,
    expected: &Arc<Catalogue>,
    concurrency: usize,
    work: &Work,
) -> anyhow::Result<()> {
    let mut by_db: BTreeMap<String, Vec<Target>> = BTreeMap::new();
    for t in targets {
        by_db.entry(t.dsn.clone()).or_default().push(t);
    }
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (dsn, targets) in by_db {
        let mut targets = targets.into_iter().peekable();
        while targets.peek().is_some() {
            let chunk: Vec<Target> = targets.by_ref().take(CATALOGUE_BATCH).collect();
            let (permits, sessions, dsn) = (permits.clone(), work.sessions.clone(), dsn.clone());
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let schemas: Vec<Option<String>> = chunk.iter().map(|t| t.schema.clone()).collect();
                let results = match read(&sessions, &dsn, &schemas).await {
                    Ok(catalogues) => catalogues.into_iter().map(Ok).collect(),
                    // One by one: which of them cannot be read.
                    Err(_) if schemas.len() > 1 => {
                        let mut each = Vec::with_capacity(schemas.len());
                        for s in &schemas {
                            each.push(
                                read(&sessions, &dsn, std::slice::from_ref(s))
                                    .await
                                    .map(|mut c| c.pop().unwrap_or_default()),
                            );
                        }
                        each
                    }
                    Err(e) => vec![Err(e)],
                };
                (chunk, results)
            });
        }
    }
    let mut changed = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (chunk, results) = done?;
        for (t, result) in chunk.iter().zip(results) {
            let line = &mut lines[t.line];
            match result {
                Ok(actual) => {
                    let drift = expected.drift(&actual);
                    if drift.is_empty() {
                        continue;
                    }
                    line.drift = Some(drift.into());
                }
                Err(e) => {
                    line.outcome = Outcome::Failed;
                    line.error = Some(format!("drift check: {e}"));
                }
            }
            changed.push(t.line);
        }
    }
    if let Some(r) = &work.recorder {
        for i in changed {
            runs::record(&r.control, r.run_id, &lines[i]).await?;
        }
    }
    Ok(())
}

async fn read(
    sessions: &super::sessions::Sessions,
    dsn: &str,
    schemas: &[Option<String>],
) -> Result<Vec<Catalogue>, String> {
    let session = sessions
        .take(dsn)
        .await
        .map_err(|e| bizos_sql::fleet::describe(&e))?;
    match session.catalogues(schemas).await {
        Ok(c) => {
            sessions.put(dsn, session).await;
            Ok(c)
        }
        Err(e) => {
            session.close().await;
            Err(bizos_sql::fleet::describe(&e))
        }
    }
}
