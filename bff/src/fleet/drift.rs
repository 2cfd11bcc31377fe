//! The drift check of a run, after its waves (docs/fleet.md, "The drift
//! check"). A placement's catalogue is read (see [`bizos_sql::fleet`])
//! unless the database's drift watch knows it unchanged: no DDL but the
//! migrator's touched it since a run found it equal to the expected
//! catalogue. Placements verified at the same catalogue, in databases of
//! the same server and extension versions, started this run equal and went
//! through the same migrations, so one of them is read for the group; when
//! it is no longer equal, the others are read too. Catalogues are read [`CATALOGUE_BATCH`] schemas a statement,
//! at most `concurrency` statements at once, and compared in memory with
//! the expected catalogue (built once per run).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use bizos_sql::fleet::{Catalogue, Verdicts, Watch, CATALOGUE_BATCH};
use tokio::sync::Semaphore;

use super::report::{DriftCheck, Outcome, PlacementReport};
use super::runs;
use super::sessions::Sessions;
use super::waves::Work;

/// A placement to check: its line in the report, its database's connection
/// string and its schema (`None`: the database's default one).
pub struct Target {
    pub line: usize,
    pub dsn: String,
    pub schema: Option<String>,
}

/// A placement whose catalogue is read: its schema by name (`None`: the
/// database's default one, when its watch could not be read).
#[derive(Clone)]
struct Read {
    line: usize,
    dsn: String,
    name: Option<String>,
}

impl Read {
    fn name(&self) -> String {
        self.name.clone().unwrap_or_default()
    }
}

/// Placements verified at the same catalogue (`at`) in databases of the
/// same versions: the first is read, the others follow it.
struct Group {
    first: usize,
    at: String,
    others: Vec<Read>,
}

/// Checks the placements of `targets` (those that migrated) and writes
/// their drift into `lines` (recording the drifted ones again). With
/// `read_all`, every catalogue is read whatever the watch knows. A
/// placement whose catalogue cannot be read fails, as its migration would
/// have; the others of its database are read again one by one, so it
/// fails alone.
pub async fn check(
    lines: &mut [PlacementReport],
    targets: Vec<Target>,
    expected: &Arc<Catalogue>,
    read_all: bool,
    concurrency: usize,
    work: &Work,
) -> anyhow::Result<()> {
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut by_db: BTreeMap<String, Vec<Target>> = BTreeMap::new();
    for t in targets {
        by_db.entry(t.dsn.clone()).or_default().push(t);
    }
    let watches = watches(by_db.keys().cloned().collect(), &permits, &work.sessions).await;

    // What to read, and what may follow a read placement.
    let mut reads = Vec::new();
    let mut groups: BTreeMap<(String, String), Group> = BTreeMap::new();
    for (dsn, targets) in by_db {
        let watch = watches.get(&dsn);
        for t in targets {
            let read = Read {
                line: t.line,
                dsn: dsn.clone(),
                name: t.schema.or_else(|| watch.map(|w| w.default_schema.clone())),
            };
            let at = watch
                .filter(|_| !read_all)
                .and_then(|w| Some((&w.environment, w.verified.as_ref()?.get(&read.name())?)));
            match at {
                Some((environment, at)) => match groups.entry((environment.clone(), at.clone())) {
                    std::collections::btree_map::Entry::Occupied(mut g) => {
                        g.get_mut().others.push(read)
                    }
                    std::collections::btree_map::Entry::Vacant(g) => {
                        g.insert(Group {
                            first: read.line,
                            at: at.clone(),
                            others: Vec::new(),
                        });
                        reads.push(read);
                    }
                },
                None => reads.push(read),
            }
        }
    }
    let watched: HashSet<String> = watches
        .iter()
        .filter(|(_, w)| w.verified.is_some())
        .map(|(dsn, _)| dsn.clone())
        .collect();

    let mut tally = Tally {
        expected,
        verdicts: BTreeMap::new(),
        changed: Vec::new(),
    };
    let mut clean_lines = HashSet::new();
    for (r, result) in read(reads, &watched, &permits, &work.sessions).await {
        if tally.judge(lines, &r, result) {
            clean_lines.insert(r.line);
        }
    }
    // A group whose first placement is no longer equal: the others are
    // read as well (a migration that makes something else than the files
    // drifts them all).
    let mut again = Vec::new();
    for g in groups.into_values() {
        if clean_lines.contains(&g.first) {
            for r in g.others {
                lines[r.line].drift_check = Some(DriftCheck::Unchanged);
                tally
                    .verdicts
                    .entry(r.dsn.clone())
                    .or_default()
                    .unchanged
                    .push((r.name(), g.at.clone()));
            }
        } else {
            again.extend(g.others);
        }
    }
    for (r, result) in read(again, &watched, &permits, &work.sessions).await {
        tally.judge(lines, &r, result);
    }

    // A watch not written is no error: the next run reads those again.
    let fingerprint = expected.fingerprint();
    for (dsn, v) in tally.verdicts.iter().filter(|(d, _)| watched.contains(*d)) {
        if let Err(e) = record(&work.sessions, dsn, &fingerprint, v).await {
            // On stderr: `bizos migrate` logs nothing, and its report is
            // the placements'.
            eprintln!(
                "warning: a database's drift watch was not written ({e}); the next run reads its placements again"
            );
        }
    }
    if let Some(r) = &work.recorder {
        for i in tally.changed {
            runs::record(&r.control, r.run_id, &lines[i]).await?;
        }
    }
    Ok(())
}

/// What the reads found, by database, and the lines that changed.
struct Tally<'a> {
    expected: &'a Catalogue,
    verdicts: BTreeMap<String, Verdicts>,
    changed: Vec<usize>,
}

impl Tally<'_> {
    /// Writes a read's result into its line; whether it is clean.
    fn judge(
        &mut self,
        lines: &mut [PlacementReport],
        r: &Read,
        result: Result<Catalogue, String>,
    ) -> bool {
        let line = &mut lines[r.line];
        let v = self.verdicts.entry(r.dsn.clone()).or_default();
        match result {
            Ok(actual) => {
                line.drift_check = Some(DriftCheck::Read);
                let drift = self.expected.drift(&actual);
                if drift.is_empty() {
                    v.read_clean.push(r.name());
                    return true;
                }
                line.drift = Some(drift.into());
            }
            Err(e) => {
                line.outcome = Outcome::Failed;
                line.error = Some(format!("drift check: {e}"));
            }
        }
        v.drifted.push(r.name());
        self.changed.push(r.line);
        false
    }
}

/// The drift watch of each database; a database whose watch cannot be
/// read is left out (its placements are read, and fail there if the
/// database cannot be reached).
async fn watches(
    dsns: Vec<String>,
    permits: &Arc<Semaphore>,
    sessions: &Arc<Sessions>,
) -> BTreeMap<String, Watch> {
    let mut tasks = tokio::task::JoinSet::new();
    for dsn in dsns {
        let (permits, sessions) = (permits.clone(), sessions.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let session = sessions.take(&dsn).await.ok()?;
            match session.watch().await {
                Ok(w) => {
                    sessions.put(&dsn, session).await;
                    Some((dsn, w))
                }
                Err(_) => {
                    session.close().await;
                    None
                }
            }
        });
    }
    let mut out = BTreeMap::new();
    while let Some(done) = tasks.join_next().await {
        if let Ok(Some((dsn, w))) = done {
            out.insert(dsn, w);
        }
    }
    out
}

/// Reads the catalogues of `reads`, [`CATALOGUE_BATCH`] schemas of a
/// database a statement, marking them first in a watched database.
async fn read(
    reads: Vec<Read>,
    watched: &HashSet<String>,
    permits: &Arc<Semaphore>,
    sessions: &Arc<Sessions>,
) -> Vec<(Read, Result<Catalogue, String>)> {
    let mut by_db: BTreeMap<String, Vec<Read>> = BTreeMap::new();
    for r in reads {
        by_db.entry(r.dsn.clone()).or_default().push(r);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (dsn, reads) in by_db {
        let mark = watched.contains(&dsn);
        let mut reads = reads.into_iter().peekable();
        while reads.peek().is_some() {
            let chunk: Vec<Read> = reads.by_ref().take(CATALOGUE_BATCH).collect();
            let (permits, sessions, dsn) = (permits.clone(), sessions.clone(), dsn.clone());
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let names: Vec<Option<String>> = chunk.iter().map(|r| r.name.clone()).collect();
                let results = match read_chunk(&sessions, &dsn, &names, mark).await {
                    Ok(catalogues) => catalogues.into_iter().map(Ok).collect(),
                    // One by one: which of them cannot be read.
                    Err(_) if names.len() > 1 => {
                        let mut each = Vec::with_capacity(names.len());
                        for n in &names {
                            each.push(
                                read_chunk(&sessions, &dsn, std::slice::from_ref(n), mark)
                                    .await
                                    .map(|mut c| c.pop().unwrap_or_default()),
                            );
                        }
                        each
                    }
                    Err(e) => vec![Err(e)],
                };
                chunk.into_iter().zip(results).collect::<Vec<_>>()
            });
        }
    }
    let mut out = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(results) => out.extend(results),
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    out
}

async fn read_chunk(
    sessions: &Sessions,
    dsn: &str,
    names: &[Option<String>],
    mark: bool,
) -> Result<Vec<Catalogue>, String> {
    let session = sessions
        .take(dsn)
        .await
        .map_err(|e| bizos_sql::fleet::describe(&e))?;
    let result = async {
        if mark {
            let named: Vec<String> = names.iter().flatten().cloned().collect();
            session.mark_reading(&named).await?;
        }
        session.catalogues(names).await
    }
    .await;
    match result {
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

/// Writes what was found into the database's watch.
async fn record(
    sessions: &Sessions,
    dsn: &str,
    fingerprint: &str,
    v: &Verdicts,
) -> Result<(), String> {
    let session = sessions
        .take(dsn)
        .await
        .map_err(|e| bizos_sql::fleet::describe(&e))?;
    match session.record_verified(fingerprint, v).await {
        Ok(()) => {
            sessions.put(dsn, session).await;
            Ok(())
        }
        Err(e) => {
            session.close().await;
            Err(bizos_sql::fleet::describe(&e))
        }
    }
}
