//! Where the worker claims jobs: the control database and every distinct
//! placement of control.tenant_placements (a database, and the schema for
//! the schema tier), since a tenant's `jobs` table lives in its placement.
//! Each target has a pool of its own, logged in as bizos_worker from the
//! worker's secrets (the URL of a cluster by its `url_secret`, as the
//! BFF's router builds it); a schema target's connections have their
//! search path set to the schema, so the claim functions and the handlers
//! read and write that schema's own tables. The list is read again when
//! `bizos_placement` notifies (a tenant created or moved) and every
//! [`REFRESH`] at the latest.
//!
//! Wake-ups: an enqueue notifies `bizos_jobs` in its own database while a
//! worker is listed in its placement's `job_listeners` (the worker lists
//! itself in every target, see listing.rs). The control database's
//! notifications (its shared tier's and its schemas') reach the worker's
//! own LISTEN connection; every other database gets a listening task of
//! its own, which sends the database's name ([`Target::database`]) on the
//! channel of [`Targets::new`], so a job of any placement starts within
//! moments, not at the next poll.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgListener};
use sqlx::PgPool;
use tokio::sync::mpsc::UnboundedSender;

use crate::placement::Secrets;

/// How long a list of targets is used without a notification at most.
pub const REFRESH: Duration = Duration::from_secs(60);

/// One database (and schema) the worker claims from.
#[derive(Clone)]
pub struct Target {
    /// `control`, `<cluster>/<database>` or `<cluster>/<database>/<schema>`:
    /// the `placement` of the job's span and log lines.
    pub name: Arc<str>,
    /// The database it is in: `control` for the control database (its
    /// shared tier and its schemas), else `<cluster>/<database>`; the
    /// targets of one database share its NOTIFY channel.
    pub database: Arc<str>,
    pub pool: PgPool,
}

/// The name of the control database's targets' [`Target::database`].
pub const CONTROL: &str = "control";

/// A placement the catalogue names: cluster, its URL's secret, whether it
/// is the control database's cluster, database and schema (schema tier).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    cluster: String,
    url_secret: String,
    home: bool,
    database: String,
    schema: Option<String>,
}

impl Key {
    /// [`Target::database`] of the key's target.
    fn database(&self, control_database: &str) -> String {
        if self.home && self.database == control_database {
            CONTROL.to_owned()
        } else {
            format!("{}/{}", self.cluster, self.database)
        }
    }

    fn name(&self) -> String {
        match &self.schema {
            Some(s) => format!("{}/{}/{s}", self.cluster, self.database),
            None => format!("{}/{}", self.cluster, self.database),
        }
    }
}

/// Where a placement is, as the catalogue names it.
pub struct PlacementAt<'a> {
    pub cluster: &'a str,
    /// The secret holding the cluster's URL.
    pub url_secret: &'a str,
    /// Whether the cluster is the control database's.
    pub home: bool,
    pub database: &'a str,
    /// The tenant's schema (schema tier).
    pub schema: Option<&'a str>,
}

/// The worker's connection options for a placement: `control` (the
/// worker's own) for the control database, else its cluster's URL from the
/// secrets with the database replaced; the search path on the schema.
pub fn placement_options(
    secrets: &Secrets,
    control: &PgConnectOptions,
    control_database: &str,
    at: &PlacementAt<'_>,
) -> anyhow::Result<PgConnectOptions> {
    let mut options = if at.home && at.database == control_database {
        control.clone()
    } else {
        let url = secrets
            .database_url(at.url_secret, at.database)
            .map_err(|e| anyhow::anyhow!("cluster {}: {e}", at.cluster))?;
        url.expose_secret()
            .parse::<PgConnectOptions>()
            .map_err(|e| {
                anyhow::anyhow!(
                    "cluster {}: the URL of {} is invalid: {e}",
                    at.cluster,
                    at.url_secret
                )
            })?
    };
    if let Some(s) = at.schema {
        // No space: the startup options are separated by spaces. The
        // name was checked by the catalogue's constraint.
        options = options.options([(
            "search_path",
            format!("{s},{}", bizos_sql::EXTENSIONS_SCHEMA),
        )]);
    }
    Ok(options)
}

/// Connection limits of the placement pools.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections of each target's pool at most.
    pub pool_max: u32,
    /// Cap on all the worker's pools together, the control pool's included.
    pub total_max: u32,
    /// The control pool's size.
    pub control_max: u32,
}

impl Limits {
    /// The size of each of `n` placement pools: `pool_max`, less when the
    /// cap would be passed, never below one (pools connect lazily and let
    /// idle connections go, so an idle target holds none).
    pub fn per_target(&self, n: usize) -> u32 {
        if n == 0 {
            return self.pool_max;
        }
        let left = self.total_max.saturating_sub(self.control_max);
        self.pool_max.min(left / n as u32).max(1)
    }
}

/// The worker's targets: control first, then the placements.
pub struct Targets {
    control: Target,
    control_url: PgConnectOptions,
    control_database: String,
    secrets: Secrets,
    limits: Limits,
    placements: HashMap<Key, Target>,
    loaded: Option<Instant>,
    stale: Arc<AtomicBool>,
    /// Where the listening tasks send the name of a database whose jobs
    /// notified.
    wakes: UnboundedSender<Arc<str>>,
    /// The listening task of each database other than control's (aborted
    /// when it is dropped).
    listeners: HashMap<Arc<str>, Listening>,
}

/// A listening task, aborted when dropped.
struct Listening(tokio::task::JoinHandle<()>);

impl Drop for Listening {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Targets {
    /// The control database's target (`control_url` is the worker's own
    /// login there), listening for placement changes; the job
    /// notifications of other databases are sent on `wakes`.
    pub async fn new(
        control: PgPool,
        control_url: PgConnectOptions,
        secrets: Secrets,
        limits: Limits,
        wakes: UnboundedSender<Arc<str>>,
    ) -> anyhow::Result<Targets> {
        let control_database: String = sqlx::query_scalar("select current_database()::text")
            .fetch_one(&control)
            .await?;
        let stale = Arc::new(AtomicBool::new(true));
        listen(&control, Arc::downgrade(&stale)).await?;
        Ok(Targets {
            control: Target {
                name: Arc::from(CONTROL),
                database: Arc::from(CONTROL),
                pool: control,
            },
            control_url,
            control_database,
            secrets,
            limits,
            placements: HashMap::new(),
            loaded: None,
            stale,
            wakes,
            listeners: HashMap::new(),
        })
    }

    /// Every target, control first.
    pub fn all(&self) -> Vec<Target> {
        let mut all = vec![self.control.clone()];
        let mut rest: Vec<&Target> = self.placements.values().collect();
        rest.sort_by(|a, b| a.name.cmp(&b.name));
        all.extend(rest.into_iter().cloned());
        all
    }

    /// Reads the catalogue again when a placement changed or the list is
    /// older than [`REFRESH`]; a failed read keeps the list it had.
    pub async fn refresh(&mut self) {
        let due = self.loaded.is_none_or(|at| at.elapsed() >= REFRESH);
        if !self.stale.swap(false, Ordering::AcqRel) && !due {
            return;
        }
        match self.read().await {
            Ok(keys) => self.replace(keys),
            Err(e) => {
                self.stale.store(true, Ordering::Release);
                tracing::warn!(error = %e, "reading the placements to claim jobs from failed; keeping the last list");
            }
        }
        self.loaded = Some(Instant::now());
    }

    /// The distinct placements other than the control database's shared
    /// tier (the control target).
    async fn read(&self) -> anyhow::Result<Vec<Key>> {
        let rows: Vec<(String, String, bool, String, Option<String>)> = sqlx::query_as(
            "select distinct p.cluster, c.url_secret, c.home, p.database_name,
                    case when p.tier = 'schema' then p.schema_name end
               from control.tenant_placements p join control.clusters c using (cluster)",
        )
        .fetch_all(&self.control.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(cluster, url_secret, home, database, schema)| Key {
                cluster,
                url_secret,
                home,
                database,
                schema,
            })
            .filter(|k| !(k.home && k.database == self.control_database && k.schema.is_none()))
            .collect())
    }

    /// Keeps the pools of placements still named, opens the new ones and
    /// closes the others (their running jobs keep their pool's clone).
    fn replace(&mut self, keys: Vec<Key>) {
        let size = self.limits.per_target(keys.len());
        let mut old = std::mem::take(&mut self.placements);
        for key in keys {
            if let Some(t) = old.remove(&key) {
                self.placements.insert(key, t);
                continue;
            }
            match self.open(&key, size) {
                Ok(t) => {
                    tracing::info!(placement = %t.name, "claiming jobs from a placement");
                    self.placements.insert(key, t);
                }
                Err(e) => {
                    tracing::warn!(placement = %key.name(), error = %e, "cannot claim jobs from a placement")
                }
            }
        }
        for (_, t) in old {
            tracing::info!(placement = %t.name, "no longer claiming jobs from a placement");
            tokio::spawn(async move { t.pool.close().await });
        }
        // One listening task per database other than control's.
        let mut listeners = std::mem::take(&mut self.listeners);
        for t in self.placements.values() {
            if &*t.database == CONTROL || self.listeners.contains_key(&t.database) {
                continue;
            }
            let task = listeners.remove(&t.database).unwrap_or_else(|| {
                Listening(tokio::spawn(listen_for_jobs(
                    t.database.clone(),
                    t.pool.clone(),
                    self.wakes.clone(),
                )))
            });
            self.listeners.insert(t.database.clone(), task);
        }
    }

    /// A lazy pool of the placement as the worker's login: its cluster's
    /// URL from the secrets (the control database's own URL for a schema
    /// of the control database), the search path on the schema.
    fn open(&self, key: &Key, size: u32) -> anyhow::Result<Target> {
        let options = placement_options(
            &self.secrets,
            &self.control_url,
            &self.control_database,
            &PlacementAt {
                cluster: &key.cluster,
                url_secret: &key.url_secret,
                home: key.home,
                database: &key.database,
                schema: key.schema.as_deref(),
            },
        )?;
        let pool = crate::pool::pool_options()
            .max_connections(size)
            .min_connections(0)
            .idle_timeout(Some(Duration::from_secs(60)))
            .acquire_timeout(Duration::from_secs(10))
            .connect_lazy_with(options.application_name("bizos-worker"));
        Ok(Target {
            name: Arc::from(key.name()),
            database: Arc::from(key.database(&self.control_database)),
            pool,
        })
    }

    /// Closes every placement pool.
    pub async fn close(&mut self) {
        self.listeners.clear();
        for (_, t) in self.placements.drain() {
            t.pool.close().await;
        }
    }
}

/// Listens on `bizos_jobs` in `database` (through one of its targets'
/// pools) and sends its name on `wakes` for every notification, and when
/// the connection was lost (a notification may have been missed: the
/// worker claims once more). Ends with the worker (`wakes` closed) or when
/// aborted.
async fn listen_for_jobs(database: Arc<str>, pool: PgPool, wakes: UnboundedSender<Arc<str>>) {
    let mut listener: Option<PgListener> = None;
    loop {
        let l = match &mut listener {
            Some(l) => l,
            None => {
                let connected = async {
                    let mut l = PgListener::connect_with(&pool).await?;
                    l.listen(crate::job::CHANNEL).await?;
                    Ok::<_, sqlx::Error>(l)
                }
                .await;
                match connected {
                    Ok(l) => {
                        // Jobs enqueued before it listened notified nobody.
                        if wakes.send(database.clone()).is_err() {
                            return;
                        }
                        listener.insert(l)
                    }
                    Err(e) => {
                        tracing::warn!(%database, error = %e, "cannot listen for the jobs of a placement database; retrying");
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        continue;
                    }
                }
            }
        };
        let received = l.try_recv().await;
        if let Err(e) = &received {
            tracing::warn!(%database, error = %e, "listening for the jobs of a placement database failed; retrying");
            listener = None;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        if wakes.send(database.clone()).is_err() {
            return;
        }
    }
}

/// Marks the list stale on every `bizos_placement` notification and when
/// the listening connection was lost, for as long as the targets live.
async fn listen(control: &PgPool, stale: Weak<AtomicBool>) -> anyhow::Result<()> {
    let mut listener = PgListener::connect_with(control).await?;
    listener.listen(crate::placement::router::CHANNEL).await?;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(2));
        loop {
            tokio::select! {
                n = listener.try_recv() => {
                    let Some(stale) = stale.upgrade() else { return };
                    stale.store(true, Ordering::Release);
                    if let Err(e) = n {
                        tracing::warn!(error = %e, "listening for placement changes failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
                _ = tick.tick() => {
                    if stale.strong_count() == 0 {
                        return;
                    }
                }
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_pools_share_what_the_cap_leaves_and_keep_one_connection_each() {
        let l = Limits {
            pool_max: 4,
            total_max: 20,
            control_max: 10,
        };
        assert_eq!(l.per_target(0), 4);
        assert_eq!(l.per_target(2), 4);
        assert_eq!(l.per_target(5), 2);
        assert_eq!(l.per_target(50), 1);
    }

    #[test]
    fn a_target_is_named_by_its_cluster_database_and_schema() {
        let key = Key {
            cluster: "eu1".into(),
            url_secret: "EU1_URL".into(),
            home: false,
            database: "bizos_t1".into(),
            schema: None,
        };
        assert_eq!(key.name(), "eu1/bizos_t1");
        let key = Key {
            schema: Some("t_acme".into()),
            ..key
        };
        assert_eq!(key.name(), "eu1/bizos_t1/t_acme");
    }
}
