//! The per-placement report of a fleet run, as text for the operator and
//! as JSON for tools.

use serde::Serialize;

/// What happened to one placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Something was applied (extension update, migrations or api files).
    Applied,
    /// Nothing to do: already current.
    Current,
    /// The work failed (and was rolled back as far as its transactions go).
    Failed,
    /// Finished by the run being resumed; not touched again.
    Skipped,
    /// Not started: the canary failed, so the run stopped before it.
    NotRun,
    /// A dry run: something would be applied.
    Pending,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Current => "current",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
            Outcome::NotRun => "not_run",
            Outcome::Pending => "pending",
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Extension {
    pub from: String,
    pub to: String,
}

/// How a placement's objects differ from what the files make.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Drift {
    pub missing: Vec<String>,
    pub unexpected: Vec<String>,
    pub changed: Vec<String>,
}

impl From<bizos_sql::fleet::Drift> for Drift {
    fn from(d: bizos_sql::fleet::Drift) -> Self {
        Drift {
            missing: d.missing,
            unexpected: d.unexpected,
            changed: d.changed,
        }
    }
}

/// How a placement's drift was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftCheck {
    /// Its catalogue was read and compared.
    Read,
    /// Not read: no DDL but the migrator's touched it since a run found it
    /// equal to the expected catalogue, and a placement of its database
    /// verified at the same catalogue was read and found equal now
    /// (docs/fleet.md, "The drift check").
    Unchanged,
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct PlacementReport {
    pub placement: String,
    pub cluster: String,
    pub database: String,
    pub schema: Option<String>,
    /// canary, first (the first placement of each other database), rest.
    pub wave: &'static str,
    pub outcome: Outcome,
    /// Versioned migrations applied (or pending, in a dry run).
    pub migrations: Vec<String>,
    /// Api files applied (a dry run: 1 when they differ).
    pub api_files: usize,
    pub extension: Option<Extension>,
    pub error: Option<String>,
    /// `None`: none found, or not checked (see `drift_check`).
    pub drift: Option<Drift>,
    /// `None`: not checked (a dry run, `--no-drift`, a failure).
    pub drift_check: Option<DriftCheck>,
    pub elapsed_ms: u64,
}

impl PlacementReport {
    pub fn drifted(&self) -> bool {
        self.drift.is_some()
    }
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct FleetReport {
    pub run_id: Option<uuid::Uuid>,
    pub dry_run: bool,
    pub concurrency: usize,
    pub placements: Vec<PlacementReport>,
    pub summary: Summary,
    pub elapsed_ms: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub applied: usize,
    pub current: usize,
    pub failed: usize,
    pub skipped: usize,
    pub not_run: usize,
    pub pending: usize,
    pub drifted: usize,
    /// Drift checked by reading the catalogue.
    pub drift_read: usize,
    /// Drift checked as unchanged since verified.
    pub drift_unchanged: usize,
}

impl Summary {
    pub fn of(placements: &[PlacementReport]) -> Summary {
        let mut s = Summary::default();
        for p in placements {
            match p.outcome {
                Outcome::Applied => s.applied += 1,
                Outcome::Current => s.current += 1,
                Outcome::Failed => s.failed += 1,
                Outcome::Skipped => s.skipped += 1,
                Outcome::NotRun => s.not_run += 1,
                Outcome::Pending => s.pending += 1,
            }
            if p.drifted() {
                s.drifted += 1;
            }
            match p.drift_check {
                Some(DriftCheck::Read) => s.drift_read += 1,
                Some(DriftCheck::Unchanged) => s.drift_unchanged += 1,
                None => {}
            }
        }
        s
    }
}

impl FleetReport {
    /// The report as text: a line per placement, then the summary.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let width = self
            .placements
            .iter()
            .map(|p| p.placement.len())
            .max()
            .unwrap_or(9)
            .max(9);
        match self.run_id {
            Some(id) => out.push_str(&format!(
                "fleet run {id}, concurrency {}\n",
                self.concurrency
            )),
            None => out.push_str("dry run: nothing is changed\n"),
        }
        for p in &self.placements {
            out.push_str(&format!(
                "{:<width$}  {:<7}  {:<8}  {:>7.1}s  {}\n",
                p.placement,
                p.wave,
                p.outcome.as_str(),
                p.elapsed_ms as f64 / 1000.0,
                detail(p)
            ));
        }
        let s = &self.summary;
        out.push_str(&format!(
            "{} placements: {} applied, {} current, {} failed, {} skipped, {} not run{}, {} drifted{}, in {:.1}s\n",
            self.placements.len(),
            s.applied,
            s.current,
            s.failed,
            s.skipped,
            s.not_run,
            if self.dry_run {
                format!(", {} pending", s.pending)
            } else {
                String::new()
            },
            s.drifted,
            if s.drift_read + s.drift_unchanged > 0 {
                format!(
                    " (catalogues read {}, unchanged since verified {})",
                    s.drift_read, s.drift_unchanged
                )
            } else {
                String::new()
            },
            self.elapsed_ms as f64 / 1000.0,
        ));
        out
    }
}

fn detail(p: &PlacementReport) -> String {
    let mut parts = Vec::new();
    if let Some(e) = &p.extension {
        parts.push(format!("extension bizos {} -> {}", e.from, e.to));
    }
    if !p.migrations.is_empty() {
        parts.push(if p.migrations.len() > 3 {
            format!(
                "{} migrations ({} .. {})",
                p.migrations.len(),
                p.migrations[0],
                p.migrations[p.migrations.len() - 1]
            )
        } else {
            p.migrations.join(", ")
        });
    }
    if p.api_files > 0 {
        parts.push(if p.outcome == Outcome::Pending {
            "api files".to_owned()
        } else {
            format!("{} api files", p.api_files)
        });
    }
    if let Some(e) = &p.error {
        parts.push(format!("error: {e}"));
    }
    if let Some(d) = &p.drift {
        let mut names: Vec<String> = Vec::new();
        names.extend(d.missing.iter().map(|n| format!("missing {n}")));
        names.extend(d.unexpected.iter().map(|n| format!("unexpected {n}")));
        names.extend(d.changed.iter().map(|n| format!("changed {n}")));
        let shown = names.len().min(5);
        parts.push(format!(
            "DRIFT: {}{}",
            names[..shown].join("; "),
            if names.len() > shown {
                format!("; and {} more", names.len() - shown)
            } else {
                String::new()
            }
        ));
    }
    parts.join("; ")
}
