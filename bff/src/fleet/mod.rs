//! `bizos migrate --fleet`: the pending migrations, api files and
//! `ALTER EXTENSION bizos UPDATE` applied to every placement of the
//! registry (databases and tenant schemas), in waves, with a report per
//! placement and a run history to resume from. See docs/fleet.md.
//!
//! * [`registry`]: the placements, from `control.tenant_placements`;
//! * cluster URLs come from [`crate::placement::secrets`], the secret each row names;
//! * [`waves`]: canary, first placement per database, the rest;
//! * [`runs`]: `control.fleet_runs`, what `--resume` skips;
//! * [`sessions`]: connections kept between a database's placements;
//! * [`drift`]: the drift check, many schemas of a database a statement;
//! * [`report`]: the lines, as text and JSON.

pub mod drift;
pub mod registry;
pub mod report;
pub mod runs;
pub mod sessions;
pub mod waves;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bizos_sql::fleet::Plan;
use clap::Args;
use secrecy::SecretString;
use sqlx::postgres::PgPoolOptions;

use self::registry::Placement;
use self::report::{FleetReport, Outcome, PlacementReport, Summary};
use self::sessions::Sessions;
use self::waves::{Recorder, Work};

/// The schema of the control database in which the expected catalogue is
/// built for the drift check (dropped again).
pub const EXPECTED_SCHEMA: &str = "bizos_fleet_expected";

/// The flags of `bizos migrate` for fleets.
#[derive(Args, Debug, Clone, Default)]
pub struct FleetArgs {
    /// Migrate every placement of the registry (control.tenant_placements)
    /// of the database given by --database-url (the control database),
    /// and that database first.
    #[arg(long, conflicts_with = "schema")]
    pub fleet: bool,
    /// With --fleet: placements migrated at once.
    #[arg(long, default_value_t = 4, requires = "fleet", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// With --fleet: list what would run in each placement; change nothing.
    #[arg(long, requires = "fleet")]
    pub dry_run: bool,
    /// With --fleet: continue the newest unfinished run, skipping the
    /// placements it finished (failed ones are tried again).
    #[arg(long, requires = "fleet", conflicts_with = "dry_run")]
    pub resume: bool,
    /// With --fleet: print the report as JSON instead of text.
    #[arg(long, requires = "fleet")]
    pub json: bool,
    /// With --fleet: do not compare each placement's objects with what the
    /// files make.
    #[arg(long, requires = "fleet")]
    pub no_drift: bool,
    /// With --fleet: read every placement's catalogue for the drift check,
    /// also those the drift watch knows unchanged since a run verified
    /// them.
    #[arg(long, requires = "fleet", conflicts_with = "no_drift")]
    pub drift_read_all: bool,
    /// With --fleet: file of NAME=url lines for the clusters' url_secret
    /// names not set in the environment.
    #[arg(long, env = "BIZOS_SECRETS_FILE")]
    pub secrets_file: Option<PathBuf>,
}

/// Options of a run, as the CLI and the benchmark give them.
#[derive(Debug, Clone)]
pub struct Options {
    pub concurrency: usize,
    pub dry_run: bool,
    pub resume: bool,
    pub drift: bool,
    /// Read every catalogue, trusting no drift watch.
    pub drift_read_all: bool,
    pub secrets_file: Option<PathBuf>,
}

impl From<&FleetArgs> for Options {
    fn from(a: &FleetArgs) -> Self {
        Options {
            concurrency: usize::from(a.concurrency),
            dry_run: a.dry_run,
            resume: a.resume,
            drift: !a.no_drift,
            drift_read_all: a.drift_read_all,
            secrets_file: a.secrets_file.clone(),
        }
    }
}

/// `bizos migrate --fleet`: runs, prints the report; an error (exit status
/// 1) when a placement failed or was not run.
pub async fn run(database_url: &str, args: &FleetArgs) -> anyhow::Result<()> {
    let report = execute(
        &SecretString::from(database_url.to_owned()),
        &Options::from(args),
        Plan::embedded(),
    )
    .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.text());
    }
    let s = &report.summary;
    if s.failed + s.not_run > 0 {
        anyhow::bail!(
            "{} of {} placements failed and {} were not run; fix them and run again with --resume",
            s.failed,
            report.placements.len(),
            s.not_run
        );
    }
    Ok(())
}

/// A fleet run against the control database `control_url` with `plan`.
pub async fn execute(
    control_url: &SecretString,
    options: &Options,
    plan: Plan<'static>,
) -> anyhow::Result<FleetReport> {
    use secrecy::ExposeSecret;
    let started = Instant::now();
    let url = control_url.expose_secret();
    let control = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(30))
        .connect(&bizos_sql::fleet::as_url(url)?)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to the control database: {e}"))?;
    let control_db: String = sqlx::query_scalar("select current_database()::text")
        .fetch_one(&control)
        .await?;
    let control_place = Placement {
        cluster: "control".to_owned(),
        database: control_db.clone(),
        schema: None,
        dsn: Ok(control_url.clone()),
    };

    // One run at a time: the lock lives as long as this connection.
    let mut lock = control.acquire().await?;
    if !options.dry_run {
        let got: bool = sqlx::query_scalar("select pg_try_advisory_lock(hashtext('bizos.fleet'))")
            .fetch_one(&mut *lock)
            .await?;
        anyhow::ensure!(
            got,
            "another fleet run holds the lock on the control database; wait for it to end"
        );
    }

    // The control database first: its migrations create the run history.
    let mut work = Work {
        plan,
        dry_run: options.dry_run,
        recorder: None,
        sessions: Arc::new(Sessions::new(options.concurrency)),
    };
    let mut expected = None;
    if options.drift && !options.dry_run {
        let catalogue = bizos_sql::fleet::expected_catalogue(url, EXPECTED_SCHEMA, &plan)
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot build the expected catalogue: {}",
                    bizos_sql::fleet::describe(&e)
                )
            })?;
        expected = Some(Arc::new(catalogue));
    }
    let control_line = waves::one("control", &control_place, &work).await;
    if control_line.outcome == Outcome::Failed {
        anyhow::bail!(
            "the control database {control_db} failed, nothing else was run: {}",
            control_line.error.as_deref().unwrap_or("")
        );
    }

    let target = runs::target(
        &plan
            .extra_migrations
            .iter()
            .map(|(v, n, _)| format!("+V{v}__{n}"))
            .collect::<String>(),
    );
    let (run_id, finished) = if options.dry_run {
        (None, BTreeMap::new())
    } else if options.resume {
        let (id, finished) = runs::resume(&control, &target).await?;
        (Some(id), finished)
    } else {
        (
            Some(runs::start(&control, &target, options.concurrency).await?),
            BTreeMap::new(),
        )
    };
    if let Some(run_id) = run_id {
        work.recorder = Some(Recorder {
            control: control.clone(),
            run_id,
        });
        runs::record(&control, run_id, &control_line).await?;
    }

    // Where each placement's drift is read, by its key.
    let mut dsns: HashMap<String, (String, Option<String>)> = HashMap::new();
    dsns.insert(control_place.key(), (url.to_owned(), None));
    let mut lines = vec![control_line];
    let mut todo = Vec::new();
    for p in registry::placements(&control, options.secrets_file.as_deref()).await? {
        let is_control = p.schema.is_none()
            && p.dsn
                .as_ref()
                .is_ok_and(|d| bizos_sql::fleet::same_database(d.expose_secret(), url));
        if is_control {
            continue;
        }
        match finished.get(&p.key()) {
            Some(_) => lines.push(waves::untouched("resume", &p, Outcome::Skipped)),
            None => {
                if let Ok(dsn) = &p.dsn {
                    dsns.insert(p.key(), (dsn.expose_secret().to_owned(), p.schema.clone()));
                }
                todo.push(p);
            }
        }
    }

    // The control database is a database already started on; so is every
    // database a resumed run finished a placement of.
    let mut started_dbs: HashSet<(String, String)> = HashSet::new();
    for l in &lines {
        if l.outcome != Outcome::Failed {
            started_dbs.insert((l.cluster.clone(), l.database.clone()));
        }
    }
    let mut stopped = false;
    for (name, placements) in waves::waves(todo, &started_dbs) {
        if stopped {
            lines.extend(
                placements
                    .iter()
                    .map(|p| waves::untouched(name, p, Outcome::NotRun)),
            );
            continue;
        }
        let done = waves::run_wave(name, placements, options.concurrency, &work).await?;
        // A failed canary stops the run: what broke one placement would
        // most likely break them all.
        stopped = name == "canary" && done.iter().any(|l| l.outcome == Outcome::Failed);
        lines.extend(done);
    }

    if let Some(expected) = &expected {
        let targets = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| matches!(l.outcome, Outcome::Applied | Outcome::Current))
            .filter_map(|(i, l)| {
                dsns.get(&l.placement).map(|(dsn, schema)| drift::Target {
                    line: i,
                    dsn: dsn.clone(),
                    schema: schema.clone(),
                })
            })
            .collect();
        drift::check(
            &mut lines,
            targets,
            expected,
            options.drift_read_all,
            options.concurrency,
            &work,
        )
        .await?;
    }
    work.sessions.close().await;

    let summary = Summary::of(&lines);
    if let Some(run_id) = run_id {
        runs::finish(&control, run_id, summary.failed + summary.not_run == 0).await?;
        sqlx::query("select pg_advisory_unlock(hashtext('bizos.fleet'))")
            .execute(&mut *lock)
            .await?;
    }
    Ok(FleetReport {
        run_id,
        dry_run: options.dry_run,
        concurrency: options.concurrency,
        placements: lines,
        summary,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

/// For tests: the report line of a placement.
pub fn line<'a>(report: &'a FleetReport, placement: &str) -> Option<&'a PlacementReport> {
    report.placements.iter().find(|l| l.placement == placement)
}
