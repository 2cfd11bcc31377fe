//! The order of a fleet run: a canary alone, then the first placement of
//! every other database, then the rest, each wave with at most
//! `concurrency` placements at once. A failure is recorded and the others
//! go on; only a failed canary stops the run.
//!
//! Why a wave of "firsts": what a migration creates outside the placement's
//! schema (the qualified `control` tables, `ALTER EXTENSION`) exists once
//! per database, and two schemas of one database creating it at the same
//! moment collide on the catalogue's unique keys. Once one placement of a
//! database has run, its schemas go in parallel.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use bizos_sql::fleet::Plan;
use secrecy::ExposeSecret;
use sqlx::PgPool;
use tokio::sync::Semaphore;
use uuid::Uuid;

use super::registry::Placement;
use super::report::{Extension, Outcome, PlacementReport};
use super::runs;
use super::sessions::Sessions;

/// Tries of a placement whose migration collided with another placement's
/// in the same database ([`bizos_sql::fleet::is_collision`]).
const COLLISION_ATTEMPTS: u64 = 5;

/// The waves of a run, in order: (name, placements).
pub fn waves(
    placements: Vec<Placement>,
    started: &HashSet<(String, String)>,
) -> Vec<(&'static str, Vec<Placement>)> {
    let mut seen = started.clone();
    let mut canary = Vec::new();
    let mut first = Vec::new();
    let mut rest = Vec::new();
    for p in placements {
        let db = (p.cluster.clone(), p.database.clone());
        if canary.is_empty() {
            seen.insert(db);
            canary.push(p);
        } else if seen.insert(db) {
            first.push(p);
        } else {
            rest.push(p);
        }
    }
    vec![("canary", canary), ("first", first), ("rest", rest)]
}

/// Where a run records its outcomes (none in a dry run).
#[derive(Clone)]
pub struct Recorder {
    pub control: PgPool,
    pub run_id: Uuid,
}

/// What the run does at each placement.
#[derive(Clone)]
pub struct Work {
    pub plan: Plan<'static>,
    pub dry_run: bool,
    pub recorder: Option<Recorder>,
    /// Connections kept between the placements of a database.
    pub sessions: Arc<Sessions>,
}

/// Runs one wave, at most `concurrency` at once; every placement gets its
/// line, whatever the others do. The lines come back in the wave's order.
pub async fn run_wave(
    name: &'static str,
    placements: Vec<Placement>,
    concurrency: usize,
    work: &Work,
) -> anyhow::Result<Vec<PlacementReport>> {
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, p) in placements.into_iter().enumerate() {
        let permits = permits.clone();
        let work = work.clone();
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let line = one(name, &p, &work).await;
            let recorded = match &work.recorder {
                Some(r) => runs::record(&r.control, r.run_id, &line).await,
                None => Ok(()),
            };
            (i, line, recorded)
        });
    }
    let mut lines = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (i, line, recorded) = done?;
        // Not knowing what finished would make a resume redo or skip
        // wrongly: an unrecordable outcome stops the run.
        recorded?;
        lines.push((i, line));
    }
    lines.sort_by_key(|(i, _)| *i);
    Ok(lines.into_iter().map(|(_, l)| l).collect())
}

/// The line of a placement that is not run.
pub fn untouched(wave: &'static str, p: &Placement, outcome: Outcome) -> PlacementReport {
    PlacementReport {
        placement: p.key(),
        cluster: p.cluster.clone(),
        database: p.database.clone(),
        schema: p.schema.clone(),
        wave,
        outcome,
        migrations: Vec::new(),
        api_files: 0,
        extension: None,
        error: None,
        drift: None,
        drift_check: None,
        elapsed_ms: 0,
    }
}

/// Migrates (or, in a dry run, inspects) one placement; its drift is
/// checked after the waves, with the other placements of its database
/// ([`super::drift`]).
pub async fn one(wave: &'static str, p: &Placement, work: &Work) -> PlacementReport {
    let started = Instant::now();
    let mut line = untouched(wave, p, Outcome::Failed);
    match &p.dsn {
        Err(e) => line.error = Some(e.clone()),
        Ok(dsn) => {
            let dsn = dsn.expose_secret();
            let schema = p.schema.as_deref();
            if work.dry_run {
                match bizos_sql::fleet::pending(dsn, schema, &work.plan).await {
                    Ok(pending) => {
                        line.outcome = if pending.is_empty() {
                            Outcome::Current
                        } else {
                            Outcome::Pending
                        };
                        line.migrations = pending.migrations.iter().map(name).collect();
                        line.api_files = usize::from(pending.api);
                        line.extension = pending.extension.map(extension);
                    }
                    Err(e) => line.error = Some(bizos_sql::fleet::describe(&e)),
                }
            } else {
                // A collision rolls back only the migration it hit; the
                // ones before it stay applied, and the line names them too.
                let mut earlier: Vec<String> = Vec::new();
                let mut attempt = 1;
                let result = loop {
                    let result = match work.sessions.take(dsn).await {
                        Ok(mut session) => {
                            let result = session.migrate(schema, &work.plan).await;
                            if result.is_ok() {
                                work.sessions.put(dsn, session).await;
                            } else {
                                session.close().await;
                            }
                            result
                        }
                        Err(e) => Err(e),
                    };
                    match result {
                        Err(e)
                            if attempt < COLLISION_ATTEMPTS
                                && bizos_sql::fleet::is_collision(&e) =>
                        {
                            if let bizos_sql::Error::Migrate(m) = &e {
                                if let Some(report) = m.report() {
                                    earlier.extend(
                                        report
                                            .applied_migrations()
                                            .iter()
                                            .map(|m| format!("V{}__{}", m.version(), m.name())),
                                    );
                                }
                            }
                            attempt += 1;
                            tokio::time::sleep(std::time::Duration::from_millis(100 * attempt))
                                .await;
                        }
                        other => break other,
                    }
                };
                match result {
                    Ok(done) => {
                        line.outcome = if done.extension.is_none()
                            && done.report.is_empty()
                            && earlier.is_empty()
                        {
                            Outcome::Current
                        } else {
                            Outcome::Applied
                        };
                        line.migrations = earlier;
                        line.migrations
                            .extend(done.report.migrations.iter().map(name));
                        line.api_files = done.report.api.len();
                        line.extension = done.extension.map(extension);
                    }
                    Err(e) => line.error = Some(bizos_sql::fleet::describe(&e)),
                }
            }
        }
    }
    line.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    line
}

fn name(m: &bizos_sql::Applied) -> String {
    format!("V{}__{}", m.version, m.name)
}

fn extension(e: bizos_sql::fleet::ExtensionUpdate) -> Extension {
    Extension {
        from: e.from,
        to: e.to,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn p(cluster: &str, db: &str, schema: Option<&str>) -> Placement {
        Placement {
            cluster: cluster.into(),
            database: db.into(),
            schema: schema.map(Into::into),
            dsn: Ok(SecretString::from("host=x".to_owned())),
        }
    }

    #[test]
    fn one_canary_then_a_first_placement_per_database_then_the_rest() {
        let all = vec![
            p("a", "d1", None),
            p("a", "d1", Some("s1")),
            p("a", "d2", Some("s1")),
            p("a", "d2", Some("s2")),
            p("a", "d3", None),
            p("b", "d1", None),
        ];
        let started: HashSet<_> = [("a".to_owned(), "d3".to_owned())].into();
        let w = waves(all, &started);
        let keys = |i: usize| w[i].1.iter().map(Placement::key).collect::<Vec<_>>();
        assert_eq!(keys(0), ["a/d1"]);
        assert_eq!(keys(1), ["a/d2/s1", "b/d1"]);
        assert_eq!(keys(2), ["a/d1/s1", "a/d2/s2", "a/d3"]);
    }
}
