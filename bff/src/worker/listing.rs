//! Whether this worker is listed as waiting for jobs (`job_listeners`,
//! `job_listen` in sql/api/jobs.sql). An enqueue sends its NOTIFY only
//! while some worker is listed: a NOTIFY serialises the commits of every
//! notifying transaction in the cluster, and a worker whose slots are full
//! needs no wake-up (it claims again as soon as a slot frees).
//!
//! The enqueue that wakes a worker takes it off the list (`job_wake`), so a
//! burst of enqueues sends one NOTIFY per waiting worker, not one each; a
//! woken worker ([`Listing::woken`]) lists itself again before it next
//! waits.
//!
//! The race this closes: a job committed after the worker's last claim but
//! before its listing became visible sent no NOTIFY. So after listing
//! itself anew the worker claims once more before it waits
//! ([`Listing::waiting`] returns `true`).
//!
//! Each placement has its own `job_listeners` (and enqueues there look
//! only at it): [`Listings`] keeps one listing per target.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::PgPool;

use super::targets::Target;

/// The worker's listings in its targets, by target name: the listing, the
/// target's pool and database (whose notifications wake it).
pub(super) struct Listings {
    worker: Arc<str>,
    kinds: Vec<String>,
    poll_interval: Duration,
    of: HashMap<Arc<str>, (Listing, PgPool, Arc<str>)>,
}

impl Listings {
    pub(super) fn new(worker: Arc<str>, kinds: Vec<String>, poll_interval: Duration) -> Self {
        Listings {
            worker,
            kinds,
            poll_interval,
            of: HashMap::new(),
        }
    }

    /// [`Listing::waiting`] in every target (a target no longer claimed
    /// from is forgotten: its listing runs out by itself). True when the
    /// worker was newly listed in one of them: claim once more.
    pub(super) async fn waiting(&mut self, targets: &[Target]) -> bool {
        self.of
            .retain(|name, _| targets.iter().any(|t| &t.name == name));
        let mut fresh = false;
        for t in targets {
            let (listing, pool, _) = self.of.entry(t.name.clone()).or_insert_with(|| {
                (
                    Listing::new(self.worker.clone(), self.kinds.clone(), self.poll_interval),
                    t.pool.clone(),
                    t.database.clone(),
                )
            });
            fresh |= listing.waiting(pool).await;
        }
        fresh
    }

    /// A NOTIFY of `database` arrived: the worker lists itself again in
    /// that database's targets (one of their enqueues took it off).
    pub(super) fn woken(&mut self, database: &str) {
        for (listing, _, db) in self.of.values_mut() {
            if &**db == database {
                listing.woken();
            }
        }
    }

    /// [`Listing::busy`] in every target.
    pub(super) async fn busy(&mut self) {
        for (listing, pool, _) in self.of.values_mut() {
            listing.busy(pool).await;
        }
    }
}

/// The shortest time a listing holds; a waiting worker renews it halfway.
const MIN_TTL: Duration = Duration::from_secs(60);

pub(super) struct Listing {
    worker: Arc<str>,
    /// The kinds it has handlers for: a job of another kind does not wake it.
    kinds: Vec<String>,
    ttl: Duration,
    /// When the listing needs renewing; None: list (again) before waiting.
    renew_at: Option<Instant>,
    /// Whether a listing of this worker may exist.
    listed: bool,
}

impl Listing {
    /// A worker not yet listed. The listing lasts at least three poll
    /// intervals, so a waiting worker (which wakes every poll interval)
    /// renews it in time, and one that died drops off soon after.
    pub(super) fn new(worker: Arc<str>, kinds: Vec<String>, poll_interval: Duration) -> Self {
        Listing {
            worker,
            kinds,
            ttl: MIN_TTL.max(poll_interval * 3),
            renew_at: None,
            listed: false,
        }
    }

    /// The worker is about to wait with free slots: lists it (or renews a
    /// listing past half its time). True when it was not listed before:
    /// claim once more before waiting.
    pub(super) async fn waiting(&mut self, pool: &PgPool) -> bool {
        if self.renew_at.is_some_and(|at| Instant::now() < at) {
            return false;
        }
        let listed: Result<bool, sqlx::Error> = sqlx::query_scalar("select job_listen($1, $2, $3)")
            .bind(&*self.worker)
            .bind(self.ttl.as_secs_f64())
            .bind(&self.kinds)
            .fetch_one(pool)
            .await;
        match listed {
            Ok(was_listed) => {
                self.renew_at = Some(Instant::now() + self.ttl / 2);
                self.listed = true;
                !was_listed
            }
            Err(e) => {
                // Not listed: enqueues may not wake it; the poll still does.
                tracing::warn!(error = %e, "could not list the worker as waiting for jobs");
                self.renew_at = None;
                false
            }
        }
    }

    /// A NOTIFY arrived: the enqueue that sent it took the worker off the
    /// list (or another worker's did, and this one was woken too); list
    /// it again before it next waits.
    pub(super) fn woken(&mut self) {
        self.renew_at = None;
    }

    /// The worker's slots are full, or it stops: off the list, so enqueues
    /// stop notifying for it.
    pub(super) async fn busy(&mut self, pool: &PgPool) {
        self.renew_at = None;
        if !std::mem::take(&mut self.listed) {
            return;
        }
        if let Err(e) = sqlx::query("select job_listen($1, null)")
            .bind(&*self.worker)
            .execute(pool)
            .await
        {
            // The listing runs out by itself; until then enqueues notify.
            tracing::warn!(error = %e, "could not take the worker off the waiting list");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listing_outlives_three_poll_intervals_and_at_least_a_minute() {
        let short = Listing::new(Arc::from("w"), vec![], Duration::from_secs(5));
        assert_eq!(short.ttl, Duration::from_secs(60));
        let long = Listing::new(Arc::from("w"), vec![], Duration::from_secs(40));
        assert_eq!(long.ttl, Duration::from_secs(120));
    }
}
