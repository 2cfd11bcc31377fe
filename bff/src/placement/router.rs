//! Routing a tenant to its placement: a cache of placements keyed by
//! tenant (each entry holds the placement's `version`), dropped entry by
//! entry on the control database's `bizos_placement` notifications (a
//! trigger on control.tenant_placements, sql/api/placement.sql) and
//! whole when the listening connection was lost; a pool per placement
//! database (schemas of one database share it), their sizes under a cap
//! on the total. A tenant without a placement row is in the shared tier
//! of the control database (version 0).
//!
//! A cached placement may be stale for the moment a notification takes:
//! every request transaction runs control.placement_check() in the
//! database it was routed to, which refuses (ZA020) a version older than
//! the one that database knows, under a lock a switch takes exclusively;
//! [`crate::db::begin_as`] then forgets the entry and routes again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgListener};
use sqlx::PgPool;
use uuid::Uuid;

use super::catalog::{Placement, Tier};
use super::secrets::Secrets;
use crate::error::{ApiError, Result};

/// The channel placement changes are announced on (payload: tenant id).
pub const CHANNEL: &str = "bizos_placement";

/// How a process routes: its pools' sizes and cap, the cache's lifetime.
#[derive(Debug, Clone)]
pub struct RoutingSettings {
    /// Connections of each placement database's pool.
    pub pool_max: u32,
    /// Cap on the connections of all pools together, the control pool's
    /// included: a pool that would pass it closes the least recently used
    /// placement pools first, or the request is 503.
    pub total_max: u32,
    /// An entry older than this is read again even without a notification
    /// (a notification lost with its connection is covered by the
    /// reconnect, which drops every entry; this bounds anything else).
    pub cache_ttl: Duration,
    pub acquire_timeout: Duration,
    /// `application_name` of the placement pools' connections.
    pub application_name: &'static str,
}

/// Where one tenant's transactions run.
#[derive(Debug, Clone)]
pub struct Route {
    pub pool: PgPool,
    /// The tenant's schema (schema tier): `set local search_path` to it.
    pub schema: Option<String>,
    /// The placement's version (0: no placement row, the control
    /// database's shared tier).
    pub version: i64,
    pub placement: Option<Placement>,
    /// A tenant placed elsewhere whose subscription (the control
    /// database's) is soft-locked: its requests carry the lock there
    /// (`request.billing_locked`). False in the control database's shared
    /// tier, where authenticate_request reads the subscription itself.
    pub billing_locked: bool,
    loaded: Instant,
}

/// A process's router (cheap to clone).
#[derive(Clone)]
pub struct Router {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Router")
    }
}

struct Inner {
    control: PgPool,
    control_database: String,
    control_max: u32,
    secrets: Secrets,
    settings: RoutingSettings,
    cache: RwLock<HashMap<Uuid, Arc<Route>>>,
    /// Grows with every invalidation: a load that raced one is not cached.
    epoch: AtomicU64,
    pools: tokio::sync::Mutex<HashMap<(String, String), (PgPool, Instant)>>,
}

impl Router {
    /// A router over the control database's pool (of `control_max`
    /// connections), listening for placement changes.
    pub async fn new(
        control: PgPool,
        control_max: u32,
        secrets: Secrets,
        settings: RoutingSettings,
    ) -> anyhow::Result<Router> {
        let control_database: String = sqlx::query_scalar("select current_database()::text")
            .fetch_one(&control)
            .await?;
        let router = Router {
            inner: Arc::new(Inner {
                control,
                control_database,
                control_max,
                secrets,
                settings,
                cache: RwLock::new(HashMap::new()),
                epoch: AtomicU64::new(0),
                pools: tokio::sync::Mutex::new(HashMap::new()),
            }),
        };
        router.listen().await?;
        Ok(router)
    }

    /// The control database's pool.
    pub fn control(&self) -> &PgPool {
        &self.inner.control
    }

    /// The tenant's route: cached, or read from the catalogue.
    pub async fn resolve(&self, tenant: Uuid) -> Result<Arc<Route>> {
        if let Some(r) = self.cached(tenant) {
            return Ok(r);
        }
        let epoch = self.inner.epoch.load(Ordering::Acquire);
        let placement = super::catalog::placement_of(&self.inner.control, tenant)
            .await
            .map_err(ApiError::Internal)?;
        let route = Arc::new(match placement {
            None => Route {
                pool: self.inner.control.clone(),
                schema: None,
                version: 0,
                placement: None,
                billing_locked: false,
                loaded: Instant::now(),
            },
            Some((p, url_secret, home)) => Route {
                billing_locked: self.billing_locked(tenant).await?,
                pool: if home && p.database_name == self.inner.control_database {
                    self.inner.control.clone()
                } else {
                    self.pool_for(&p.cluster, &url_secret, &p.database_name)
                        .await?
                },
                schema: (p.tier == Tier::Schema)
                    .then(|| p.schema_name.clone())
                    .flatten(),
                version: p.version,
                placement: Some(p),
                loaded: Instant::now(),
            },
        });
        if self.inner.epoch.load(Ordering::Acquire) == epoch {
            self.inner
                .cache
                .write()
                .unwrap()
                .insert(tenant, route.clone());
        }
        Ok(route)
    }

    /// Whether the tenant's subscription is soft-locked (a change is
    /// announced as a placement change: the entry is read again).
    async fn billing_locked(&self, tenant: Uuid) -> Result<bool> {
        let locked: Option<bool> = sqlx::query_scalar("select billing_soft_locked($1)")
            .bind(tenant)
            .fetch_one(&self.inner.control)
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
        Ok(locked.unwrap_or(false))
    }

    fn cached(&self, tenant: Uuid) -> Option<Arc<Route>> {
        let cache = self.inner.cache.read().unwrap();
        cache
            .get(&tenant)
            .filter(|r| r.loaded.elapsed() < self.inner.settings.cache_ttl)
            .cloned()
    }

    /// Drops the tenant's cached placement.
    pub fn forget(&self, tenant: Uuid) {
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        self.inner.cache.write().unwrap().remove(&tenant);
    }

    /// Drops every cached placement.
    pub fn forget_all(&self) {
        self.inner.epoch.fetch_add(1, Ordering::AcqRel);
        self.inner.cache.write().unwrap().clear();
    }

    /// The pools open now: (cluster, database) and their sizes.
    pub async fn pools(&self) -> Vec<(String, String, u32)> {
        self.inner
            .pools
            .lock()
            .await
            .iter()
            .map(|((c, d), (p, _))| (c.clone(), d.clone(), p.size()))
            .collect()
    }

    /// The pool of a placement database, opened on first use (lazily:
    /// connections come with requests) within the cap on the total.
    async fn pool_for(&self, cluster: &str, url_secret: &str, database: &str) -> Result<PgPool> {
        let s = &self.inner.settings;
        let mut pools = self.inner.pools.lock().await;
        let key = (cluster.to_owned(), database.to_owned());
        if let Some((pool, used)) = pools.get_mut(&key) {
            *used = Instant::now();
            return Ok(pool.clone());
        }
        let mut evicted = false;
        while self.inner.control_max + s.pool_max * (pools.len() as u32 + 1) > s.total_max {
            let Some(lru) = pools
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some((pool, _)) = pools.remove(&lru) {
                tokio::spawn(async move { pool.close().await });
                evicted = true;
            }
        }
        if self.inner.control_max + s.pool_max > s.total_max {
            return Err(ApiError::Unavailable(
                "no connection is left under BIZOS_DB_TOTAL_CONNECTIONS for this organisation's database; retry shortly".into(),
            ));
        }
        if evicted {
            // Routes cached with a closed pool would fail: read them again.
            self.forget_all();
        }
        let url = self
            .inner
            .secrets
            .database_url(url_secret, database)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("cluster {cluster}: {e}")))?;
        let options: PgConnectOptions = url.expose_secret().parse().map_err(|e| {
            ApiError::Internal(anyhow::anyhow!(
                "cluster {cluster}: the URL of {url_secret} is invalid: {e}"
            ))
        })?;
        let pool = crate::pool::pool_options()
            .max_connections(s.pool_max)
            .min_connections(0)
            .idle_timeout(Some(Duration::from_secs(60)))
            .acquire_timeout(s.acquire_timeout)
            .connect_lazy_with(options.application_name(s.application_name));
        pools.insert(key, (pool.clone(), Instant::now()));
        Ok(pool)
    }

    /// Listens on the control database for placement changes, for as long
    /// as the router lives; a lost connection drops the whole cache (what
    /// was announced meanwhile is unknown) and is opened again.
    async fn listen(&self) -> anyhow::Result<()> {
        let mut listener = PgListener::connect_with(&self.inner.control).await?;
        listener.listen(CHANNEL).await?;
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            loop {
                tokio::select! {
                    n = listener.try_recv() => {
                        let Some(inner) = weak.upgrade() else { return };
                        let router = Router { inner };
                        match n {
                            Ok(Some(n)) => match Uuid::parse_str(n.payload()) {
                                Ok(tenant) => router.forget(tenant),
                                Err(_) => router.forget_all(),
                            },
                            // The connection was lost; the next call opens
                            // it again (and listens again).
                            Ok(None) => router.forget_all(),
                            Err(e) => {
                                router.forget_all();
                                tracing::warn!(error = %e, "listening for placement changes failed; retrying");
                                drop(router);
                                tokio::time::sleep(Duration::from_secs(1)).await;
                            }
                        }
                    }
                    _ = tick.tick() => {
                        if weak.strong_count() == 0 {
                            return;
                        }
                    }
                }
            }
        });
        Ok(())
    }
}
