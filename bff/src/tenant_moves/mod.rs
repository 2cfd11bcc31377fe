//! The live tier move of a tenant (shared, schema, isolated and back): a
//! resumable state machine over one row of `control.tenant_moves`, run by
//! the worker's `tenant.move` job ([`TenantMove`]), one file per step:
//!
//! planned → preflight ([`preflight`]) → copying ([`capture`], [`copy`])
//! → catching_up ([`catch_up`]) → frozen → switched ([`freeze`]) →
//! verified ([`verify`]) → done; or failed / rolled_back ([`rollback`]).
//!
//! Every step is recorded before the next begins and is safe to run again,
//! so a mover killed in any state resumes where it was (the job's lease
//! runs out and a worker claims it again) or rolls back to the untouched
//! source. The engine works on two [`Endpoint`]s the caller resolves (the
//! placement registry's clusters name their URL's secret).

pub mod capture;
pub mod catalog;
pub mod catch_up;
pub mod cli;
pub mod connection;
pub mod copy;
pub mod freeze;
pub mod preflight;
pub mod records;
pub mod request;
pub mod rollback;
pub mod row;
pub mod verify;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

use crate::job::{Handler, Job, JobArgs, JobError};
use crate::placement::secrets::Secrets;
pub use connection::connect;
pub use row::{advance, get, Endpoint, MoveRow};

/// The knobs of a move.
#[derive(Debug, Clone)]
pub struct MoveSettings {
    /// Catch up until fewer changes than this are left, then freeze.
    pub freeze_backlog: i64,
    /// How long the freeze waits for the tenant's writes under way before
    /// it lets them go on and tries again later.
    pub freeze_lock_wait: Duration,
    /// Freezes that found a write under way before the move gives up and
    /// rolls back.
    pub max_freeze_attempts: i64,
    /// After the move, how long the source's rows stay (for a manual check
    /// or a way back) before the purge job removes them.
    pub grace: Duration,
    /// A pause after each step, and with the freeze lock held (tests stop
    /// the mover in a given state); zero outside tests.
    pub step_delay: Duration,
    /// Tables copied at once, each pair of connections a table at a time.
    pub copy_connections: usize,
}

impl Default for MoveSettings {
    fn default() -> Self {
        MoveSettings {
            freeze_backlog: 500,
            freeze_lock_wait: Duration::from_secs(5),
            max_freeze_attempts: 10,
            grace: Duration::from_secs(7 * 86_400),
            step_delay: Duration::ZERO,
            copy_connections: 4,
        }
    }
}

impl MoveSettings {
    /// The defaults with BIZOS_TENANT_MOVE_GRACE_SECS,
    /// BIZOS_TENANT_MOVE_STEP_DELAY_MS and BIZOS_TENANT_MOVE_COPY_CONNECTIONS
    /// when set.
    pub fn from_env() -> Self {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite() && *v >= 0.0)
        };
        let mut s = MoveSettings::default();
        if let Some(secs) = var("BIZOS_TENANT_MOVE_GRACE_SECS") {
            s.grace = Duration::from_secs_f64(secs);
        }
        if let Some(ms) = var("BIZOS_TENANT_MOVE_STEP_DELAY_MS") {
            s.step_delay = Duration::from_secs_f64(ms / 1000.0);
        }
        if let Some(n) = var("BIZOS_TENANT_MOVE_COPY_CONNECTIONS").filter(|n| *n >= 1.0) {
            s.copy_connections = n as usize;
        }
        s
    }
}

/// How a run of the mover ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Done,
    RolledBack,
    Failed(String),
    /// Already ended (done, failed or rolled back) before this run.
    Ended(String),
}

const BEFORE_SWITCH: &[&str] = &["planned", "preflight", "copying", "catching_up", "frozen"];

/// Runs the move to its end from whatever state it is in.
pub async fn run(
    control: &PgPool,
    move_id: Uuid,
    source: &Endpoint,
    target: &Endpoint,
    settings: &MoveSettings,
) -> Result<Outcome, JobError> {
    // One mover per move: a session lock on the control database, gone
    // with the mover's connection.
    let mut guard = PgConnection::connect_with(&control.connect_options()).await?;
    let mine: bool = sqlx::query_scalar(
        "select pg_try_advisory_lock(hashtextextended('bizos.mover:' || $1::text, 0))",
    )
    .bind(move_id)
    .fetch_one(&mut guard)
    .await?;
    if !mine {
        return Err(JobError::Retryable(format!(
            "another mover is running move {move_id}"
        )));
    }
    let m = get(control, move_id)
        .await?
        .ok_or_else(|| JobError::Permanent(format!("move_id: no move {move_id}")))?;
    if matches!(m.state.as_str(), "done" | "failed" | "rolled_back") {
        return Ok(Outcome::Ended(m.state));
    }
    let mut source_conn = connect(&source.url).await?;
    let mut target_conn = connect(&target.url).await?;
    let here = records::identity(control).await?;
    let source_is_control = records::identity(&mut source_conn).await? == here;
    let target_is_control = records::identity(&mut target_conn).await? == here;
    let mut mover = Mover {
        control,
        move_id,
        tenant: m.tenant_id,
        same_database: m.same_database(),
        source: source_conn,
        target: target_conn,
        lock: connect(&source.url).await?,
        source_url: source.url.clone(),
        target_url: target.url.clone(),
        tables: vec![],
        settings,
        source_is_control,
        target_is_control,
        row: m,
    };
    mover.tables = catalog::tables(
        &mut mover.source,
        source.schema(),
        target.schema(),
        !mover.same_database,
    )
    .await?;
    match mover.drive(source, target).await {
        Ok(outcome) => Ok(outcome),
        Err(e) => {
            let e = JobError::from_db(&e);
            if let JobError::Permanent(message) = &e {
                // A failure that a retry would meet again: roll back (before
                // the switch) and end the move with it.
                let state = get(control, move_id).await?.map(|m| m.state);
                if state.as_deref().is_some_and(|s| BEFORE_SWITCH.contains(&s)) {
                    mover.roll_back().await?;
                }
                advance(
                    control,
                    move_id,
                    &[
                        "planned",
                        "preflight",
                        "copying",
                        "catching_up",
                        "frozen",
                        "switched",
                        "verified",
                    ],
                    "failed",
                    json!({}),
                    Some(message),
                )
                .await?;
                return Ok(Outcome::Failed(message.clone()));
            }
            Err(e)
        }
    }
}

struct Mover<'a> {
    control: &'a PgPool,
    move_id: Uuid,
    tenant: Uuid,
    same_database: bool,
    source: PgConnection,
    target: PgConnection,
    /// The source connection that holds the freeze lock.
    lock: PgConnection,
    source_url: String,
    target_url: String,
    tables: Vec<catalog::Table>,
    settings: &'a MoveSettings,
    /// Whether the source (target) is the control database, whose
    /// placement record is the catalogue row the switch updates.
    source_is_control: bool,
    target_is_control: bool,
    row: MoveRow,
}

impl Mover<'_> {
    async fn step(&self, from: &str, to: &str, progress: Value) -> Result<(), sqlx::Error> {
        advance(self.control, self.move_id, &[from], to, progress, None).await?;
        if !self.settings.step_delay.is_zero() {
            tokio::time::sleep(self.settings.step_delay).await;
        }
        Ok(())
    }

    /// The tables not in `copied` yet, over `copy_connections` pairs of
    /// connections at once, the largest first (the replica role of the
    /// target checks no foreign key, so the order is free); each table's
    /// count recorded in the progress as it ends. Stops early when an
    /// abort is requested.
    async fn copy_tables(
        &self,
        copied: BTreeMap<String, Value>,
    ) -> Result<BTreeMap<String, Value>, sqlx::Error> {
        let mut todo: Vec<catalog::Table> = self
            .tables
            .iter()
            .filter(|t| !copied.contains_key(&t.qualified()))
            .cloned()
            .collect();
        let mut sizing = connect(&self.source_url).await?;
        let mut pages: BTreeMap<String, i64> = BTreeMap::new();
        for (name, n) in sqlx::query_as::<_, (String, i64)>(
            "select n.nspname || '.' || c.relname, c.relpages::bigint
               from pg_class c join pg_namespace n on n.oid = c.relnamespace
              where c.relkind in ('r', 'p')",
        )
        .fetch_all(&mut sizing)
        .await?
        {
            pages.insert(name, n);
        }
        drop(sizing);
        todo.sort_by_key(|t| std::cmp::Reverse(pages.get(&t.qualified()).copied().unwrap_or(0)));
        let queue = std::sync::Mutex::new(std::collections::VecDeque::from(todo));
        let copied = tokio::sync::Mutex::new(copied);
        let lanes = self.settings.copy_connections.max(1);
        let (queue, copied_ref) = (&queue, &copied);
        let lane = move || async move {
            let mut source = connect(&self.source_url).await?;
            let mut target = connect(&self.target_url).await?;
            loop {
                let next = queue
                    .lock()
                    .map_err(|_| sqlx::Error::PoolClosed)?
                    .pop_front();
                let Some(t) = next else { break };
                if self.abort_requested().await? {
                    break;
                }
                let n = copy::table(&mut source, &mut target, &t, self.tenant).await?;
                let mut done = copied_ref.lock().await;
                done.insert(t.qualified(), json!(n));
                advance(
                    self.control,
                    self.move_id,
                    &["copying"],
                    "copying",
                    json!({"copied": *done, "tables": self.tables.len()}),
                    None,
                )
                .await?;
            }
            Ok::<_, sqlx::Error>(())
        };
        futures_util::future::try_join_all((0..lanes).map(|_| lane())).await?;
        Ok(copied.into_inner())
    }

    async fn abort_requested(&self) -> Result<bool, sqlx::Error> {
        Ok(get(self.control, self.move_id)
            .await?
            .is_some_and(|m| m.abort_requested))
    }

    async fn roll_back(&mut self) -> Result<(), sqlx::Error> {
        rollback::rollback(
            &mut self.source,
            &mut self.target,
            &self.tables,
            self.move_id,
            self.tenant,
            self.same_database,
        )
        .await?;
        self.restore_records().await
    }

    /// Before the freeze: the placement records the switch writes outside
    /// the control database, as they are now ([`records::snapshot`]), kept
    /// in the progress (`records_before`). Only the first is kept: a mover
    /// that died after writing them and before the catalogue switched left
    /// them changed, and a rollback must put back the originals.
    async fn save_records(&mut self, progress: &Value) -> Result<(), sqlx::Error> {
        if (self.source_is_control && self.target_is_control)
            || progress.get("records_before").is_some()
        {
            return Ok(());
        }
        let mut before = serde_json::Map::new();
        if !self.source_is_control {
            let s = records::snapshot(&mut self.source, self.tenant, &self.row.to_cluster).await?;
            before.insert("source".into(), s);
        }
        if !self.target_is_control {
            let t = records::snapshot(&mut self.target, self.tenant, &self.row.to_cluster).await?;
            before.insert("target".into(), t);
        }
        advance(
            self.control,
            self.move_id,
            &["frozen"],
            "frozen",
            json!({"records_before": before}),
            None,
        )
        .await?;
        Ok(())
    }

    /// The placement records of the source and of the target as
    /// [`Self::save_records`] found them (a rollback after a switch that
    /// wrote them and died before the catalogue named the target).
    async fn restore_records(&mut self) -> Result<(), sqlx::Error> {
        let Some(m) = get(self.control, self.move_id).await? else {
            return Ok(());
        };
        let Some(before) = m.progress.get("records_before") else {
            return Ok(());
        };
        if let (Some(t), false) = (before.get("target"), self.target_is_control) {
            records::restore(&mut self.target, self.tenant, t).await?;
        }
        if let (Some(s), false) = (before.get("source"), self.source_is_control) {
            records::restore(&mut self.source, self.tenant, s).await?;
        }
        Ok(())
    }

    async fn drive(
        &mut self,
        source: &Endpoint,
        target: &Endpoint,
    ) -> Result<Outcome, sqlx::Error> {
        let mut freeze_attempts = 0i64;
        loop {
            let m = get(self.control, self.move_id)
                .await?
                .ok_or_else(|| sqlx::Error::RowNotFound)?;
            let state = m.state.as_str();
            if m.abort_requested && BEFORE_SWITCH.contains(&state) {
                self.roll_back().await?;
                advance(
                    self.control,
                    self.move_id,
                    &[state],
                    "rolled_back",
                    json!({}),
                    Some("aborted by the operator"),
                )
                .await?;
                return Ok(Outcome::RolledBack);
            }
            match state {
                "planned" => self.step("planned", "preflight", json!({})).await?,
                "preflight" => {
                    match preflight::check(
                        &mut self.source,
                        &mut self.target,
                        source.schema(),
                        target.schema(),
                        &self.tables,
                    )
                    .await?
                    {
                        Ok(report) => {
                            self.step("preflight", "copying", json!({"preflight": report}))
                                .await?
                        }
                        Err(refusal) => {
                            let message = refusal.to_string();
                            advance(
                                self.control,
                                self.move_id,
                                &["preflight"],
                                "failed",
                                json!({}),
                                Some(&message),
                            )
                            .await?;
                            return Ok(Outcome::Failed(message));
                        }
                    }
                }
                "copying" => {
                    // A move back onto the rows an earlier move left for
                    // its purge: that move's triggers and fence go first.
                    records::retire_superseded(self.control, &mut self.target, &self.row).await?;
                    capture::install(&mut self.source, &self.tables, self.move_id, self.tenant)
                        .await?;
                    let copied: BTreeMap<String, Value> = m
                        .progress
                        .get("copied")
                        .and_then(|c| serde_json::from_value(c.clone()).ok())
                        .unwrap_or_default();
                    let started = std::time::Instant::now();
                    let copied = self.copy_tables(copied).await?;
                    if copied.len() == self.tables.len() {
                        let rows: u64 = copied.values().filter_map(Value::as_u64).sum();
                        self.step(
                            "copying",
                            "catching_up",
                            json!({"copied_rows": rows, "copy_ms": started.elapsed().as_millis() as u64}),
                        )
                        .await?;
                    }
                }
                "catching_up" | "frozen" => {
                    // Resumed after a crash in the freeze, the fence may be
                    // up already (the switch did not commit): down again.
                    capture::unfence(&mut self.source, self.move_id).await?;
                    capture::install(&mut self.source, &self.tables, self.move_id, self.tenant)
                        .await?;
                    let mut applied = m
                        .progress
                        .get("changes_applied")
                        .and_then(Value::as_i64)
                        .unwrap_or(0);
                    loop {
                        let n = catch_up::round(
                            &mut self.source,
                            &mut self.target,
                            &self.tables,
                            self.move_id,
                            self.tenant,
                            10_000,
                        )
                        .await?;
                        applied += n;
                        catch_up::sync_uncaptured(
                            &mut self.source,
                            &mut self.target,
                            &self.tables,
                            self.tenant,
                        )
                        .await?;
                        if n < self.settings.freeze_backlog || self.abort_requested().await? {
                            break;
                        }
                    }
                    if state == "catching_up" {
                        self.step("catching_up", "frozen", json!({"changes_applied": applied}))
                            .await?;
                    }
                    if self.abort_requested().await? {
                        continue;
                    }
                    self.save_records(&m.progress).await?;
                    let serials =
                        freeze::serial_sequences(&mut self.source, &mut self.target, &self.tables)
                            .await?;
                    match freeze::freeze_and_switch(
                        self.control,
                        &mut self.lock,
                        &mut self.source,
                        &mut self.target,
                        &self.target_url,
                        &self.tables,
                        &serials,
                        self.move_id,
                        self.tenant,
                        self.same_database,
                        &freeze::Records {
                            the_move: &self.row,
                            write_source: !self.source_is_control,
                            write_target: !self.target_is_control,
                        },
                        self.settings.freeze_lock_wait,
                        self.settings.step_delay,
                    )
                    .await?
                    {
                        freeze::Frozen::NotNow(waited) => {
                            freeze_attempts += 1;
                            let progress = json!({
                                "freeze_attempts": freeze_attempts,
                                "last_freeze_wait_ms": waited.as_millis() as u64,
                            });
                            if freeze_attempts >= self.settings.max_freeze_attempts {
                                self.roll_back().await?;
                                let message = format!(
                                    "the tenant's writes under way kept the freeze from starting {freeze_attempts} times; rolled back"
                                );
                                advance(
                                    self.control,
                                    self.move_id,
                                    &["frozen"],
                                    "rolled_back",
                                    progress,
                                    Some(&message),
                                )
                                .await?;
                                return Ok(Outcome::RolledBack);
                            }
                            self.step("frozen", "catching_up", progress).await?;
                        }
                        freeze::Frozen::Switched {
                            mut snapshot,
                            freeze,
                            phases,
                        } => {
                            advance(
                                self.control,
                                self.move_id,
                                &["switched"],
                                "switched",
                                json!({"freeze_ms": freeze.as_millis() as u64, "freeze_phases": phases}),
                                None,
                            )
                            .await?;
                            if !self.settings.step_delay.is_zero() {
                                tokio::time::sleep(self.settings.step_delay).await;
                            }
                            let (report, problems) = verify::compare(
                                &mut self.source,
                                &mut snapshot,
                                &self.target_url,
                                &self.tables,
                                self.tenant,
                            )
                            .await?;
                            let _ = sqlx::Executor::execute(&mut snapshot, "rollback").await;
                            if let Some(o) = self.verified(report, problems, false).await? {
                                return Ok(o);
                            }
                        }
                    }
                }
                "switched" => {
                    // Resumed after the switch: the snapshot of the target
                    // at the switch is gone, so the target is compared as it
                    // is now (with the tenant's writes since the switch), in
                    // one snapshot (the audit chains are read consistently).
                    sqlx::Executor::execute(
                        &mut self.target,
                        "begin isolation level repeatable read",
                    )
                    .await?;
                    let compared = verify::compare(
                        &mut self.source,
                        &mut self.target,
                        &self.target_url,
                        &self.tables,
                        self.tenant,
                    )
                    .await;
                    let _ = sqlx::Executor::execute(&mut self.target, "rollback").await;
                    let (report, problems) = compared?;
                    if let Some(o) = self.verified(report, problems, true).await? {
                        return Ok(o);
                    }
                }
                "verified" => {
                    capture::forget_changes(&mut self.source, self.move_id).await?;
                    let run_at = chrono::Utc::now()
                        + chrono::Duration::from_std(self.settings.grace)
                            .unwrap_or(chrono::Duration::days(7));
                    sqlx::query("select job_enqueue_for($1, 'tenant.move', $2, $3, 0, $4)")
                        .bind(self.tenant)
                        .bind(json!({"move_id": self.move_id, "purge": true}))
                        .bind(run_at)
                        .bind(format!("tenant.move.purge:{}", self.move_id))
                        .execute(self.control)
                        .await?;
                    self.step("verified", "done", json!({"purge_at": run_at}))
                        .await?;
                    return Ok(Outcome::Done);
                }
                other => return Ok(Outcome::Ended(other.to_owned())),
            }
        }
    }

    /// Records the verification: verified, or failed with the problems.
    /// A resumed verification compares the target as it is now: its
    /// differences are recorded, not failed on, unless an audit chain
    /// breaks.
    async fn verified(
        &self,
        report: Value,
        problems: Vec<String>,
        resumed: bool,
    ) -> Result<Option<Outcome>, sqlx::Error> {
        let audit_broken = report
            .get("audit_breaks")
            .and_then(Value::as_u64)
            .unwrap_or(0)
            > 0;
        if problems.is_empty() || (resumed && !audit_broken) {
            self.step(
                "switched",
                "verified",
                json!({"verify": report, "verify_resumed": resumed, "verify_differences": problems}),
            )
            .await?;
            return Ok(None);
        }
        let message = format!("verification failed: {}", problems.join("; "));
        advance(
            self.control,
            self.move_id,
            &["switched"],
            "failed",
            json!({"verify": report}),
            Some(&message),
        )
        .await?;
        Ok(Some(Outcome::Failed(message)))
    }
}

/// Removes the source rows of a finished move (the purge job, after the
/// grace period).
pub async fn purge(
    control: &PgPool,
    m: &MoveRow,
    source: &Endpoint,
    target: &Endpoint,
) -> Result<u64, JobError> {
    if m.state != "done" {
        return Err(JobError::Permanent(format!(
            "move {} is {}, not done: its source stays",
            m.move_id, m.state
        )));
    }
    if m.progress.get("purged_rows").is_some() {
        return Ok(0);
    }
    // Never the rows the tenant lives on: a later move brought it back
    // onto them (that move dropped this one's triggers and fence), or the
    // catalogue names this source again.
    let placed: Option<(String, String, Option<String>)> = sqlx::query_as(
        "select cluster, database_name, schema_name from control.tenant_placements
          where tenant_id = $1",
    )
    .bind(m.tenant_id)
    .fetch_optional(control)
    .await?;
    let here = (
        m.from_cluster.clone(),
        m.from_database.clone(),
        m.from_schema.clone(),
    );
    if m.progress.get("superseded_by").is_some() || placed.as_ref() == Some(&here) {
        let mut conn = connect(&source.url).await?;
        capture::remove(&mut conn, m.move_id).await?;
        capture::unfence(&mut conn, m.move_id).await?;
        capture::forget_changes(&mut conn, m.move_id).await?;
        advance(
            control,
            m.move_id,
            &["done"],
            "done",
            json!({"purged_rows": 0, "purge_skipped": "the tenant is placed on these rows again"}),
            None,
        )
        .await?;
        return Ok(0);
    }
    let mut conn = connect(&source.url).await?;
    let tables = catalog::tables(
        &mut conn,
        source.schema(),
        target.schema(),
        !m.same_database(),
    )
    .await?;
    let deleted = rollback::purge(
        &mut conn,
        &tables,
        m.move_id,
        m.tenant_id,
        m.same_database(),
    )
    .await?;
    advance(
        control,
        m.move_id,
        &["done"],
        "done",
        json!({"purged_rows": deleted}),
        None,
    )
    .await?;
    Ok(deleted)
}

/// The payload of a `tenant.move` job: the move to run; `purge`: remove
/// its source rows (enqueued by the move for after the grace period).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantMoveArgs {
    pub move_id: Uuid,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub purge: bool,
}

impl JobArgs for TenantMoveArgs {
    const KIND: &'static str = "tenant.move";
}

/// The worker's handler of `tenant.move`.
pub struct TenantMove {
    pub settings: MoveSettings,
}

impl TenantMove {
    pub fn from_env() -> Self {
        TenantMove {
            settings: MoveSettings::from_env(),
        }
    }
}

impl Handler for TenantMove {
    type Args = TenantMoveArgs;

    async fn run(&self, job: &Job, args: TenantMoveArgs) -> Result<(), JobError> {
        let m = get(job.pool(), args.move_id).await?.ok_or_else(|| {
            JobError::Permanent(format!("payload.move_id: no move {}", args.move_id))
        })?;
        let secrets = Secrets::from_env(std::env::var_os("BIZOS_SECRETS_FILE").map(Into::into));
        let (source, target) = m.endpoints(&secrets).map_err(JobError::Permanent)?;
        if args.purge {
            let deleted = purge(job.pool(), &m, &source, &target).await?;
            tracing::info!(move_id = %m.move_id, deleted, "purged the source rows of a tier move");
            return Ok(());
        }
        let outcome = run(job.pool(), args.move_id, &source, &target, &self.settings).await?;
        tracing::info!(move_id = %m.move_id, ?outcome, "tier move ended");
        Ok(())
    }
}
