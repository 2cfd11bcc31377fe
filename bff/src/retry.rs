//! Running a transaction again when the database rolled it back to break a
//! deadlock (40P01) or a serialization conflict (40001).
//!
//! Such a transaction did nothing, and the other one it met goes on, so the
//! same transaction run again nearly always succeeds. On Citus it is common
//! rather than rare: while a tenant's shards move (or split), Citus's
//! distributed deadlock detector cancels one of the transactions that wait
//! on each other across nodes, often a request of another tenant whose
//! shard shares a node with the moving one; Citus reports it with the same
//! SQLSTATE ("canceling the transaction since it was involved in a
//! distributed deadlock"). The write path ([`crate::idempotency::run`])
//! and the worker's job claim run theirs again after a random pause that
//! grows with each try, up to [`ATTEMPTS`] tries within [`BUDGET`], before
//! they give up: a request then answers 503 with `Retry-After`.
//!
//! The budget is in time rather than tries: a move holds its locks for
//! seconds (the final catch-up, the switch, the cleanup's drops), and
//! Citus looks for distributed deadlocks every 2 s, so four quick tries
//! (about 0.4 s in all) met the same move again and gave up (10 of 383
//! writes of tenants not moving answered 503 during a move).

use std::time::Duration;

pub use crate::error::retryable;
use crate::error::ApiError;

/// Tries in all at most, the first one included.
pub const ATTEMPTS: u32 = 12;

/// No try starts later than this after the first one.
pub const BUDGET: Duration = Duration::from_secs(10);

/// The pause before the second try; it doubles for each further one up to
/// [`MAX_PAUSE`], plus up to as much again at random, so that two victims
/// of the same deadlock do not meet again at once.
const FIRST_PAUSE: Duration = Duration::from_millis(25);

/// The longest pause between two tries (before its random part).
const MAX_PAUSE: Duration = Duration::from_millis(800);

/// Was the transaction rolled back to break a deadlock or a serialization
/// conflict (so running it again is safe)?
pub trait RolledBack {
    fn rolled_back(&self) -> bool;
}

impl RolledBack for sqlx::Error {
    fn rolled_back(&self) -> bool {
        matches!(self, sqlx::Error::Database(db)
            if db.code().is_some_and(|c| retryable(&c) || crate::error::stale_shard(&c, db.message())))
    }
}

impl RolledBack for ApiError {
    fn rolled_back(&self) -> bool {
        matches!(self, ApiError::RolledBack(_))
    }
}

/// The tries of one transaction: after each failed try, [`Tries::again`]
/// says whether to run it once more (and waits a moment first).
///
/// ```ignore
/// let mut tries = Tries::new("write");
/// loop {
///     match one_try().await {
///         Err(e) if tries.again(&e).await => {}
///         done => return done,
///     }
/// }
/// ```
pub struct Tries {
    what: &'static str,
    done: u32,
    started: std::time::Instant,
    /// [`FIRST_PAUSE`], [`MAX_PAUSE`] and [`BUDGET`], shorter in tests.
    first_pause: Duration,
    max_pause: Duration,
    budget: Duration,
}

impl Tries {
    /// `what`: the transaction's name in the log.
    pub fn new(what: &'static str) -> Self {
        Tries {
            what,
            done: 0,
            started: std::time::Instant::now(),
            first_pause: FIRST_PAUSE,
            max_pause: MAX_PAUSE,
            budget: BUDGET,
        }
    }

    /// After a failed try: `true` (after a pause) when the database rolled
    /// the transaction back to break a deadlock and tries and time are
    /// left.
    pub async fn again(&mut self, error: &(impl RolledBack + std::fmt::Display)) -> bool {
        self.done += 1;
        if self.done >= ATTEMPTS || !error.rolled_back() {
            return false;
        }
        let pause = pause(self.done, self.first_pause, self.max_pause);
        if self.started.elapsed() + pause > self.budget {
            return false;
        }
        tracing::info!(what = self.what, tries = self.done, %error, "transaction rolled back; running it again");
        tokio::time::sleep(pause).await;
        true
    }
}

/// The pause after the `tries`-th failed try.
fn pause(tries: u32, first: Duration, max: Duration) -> Duration {
    let base = (first * 2u32.pow(tries.saturating_sub(1).min(8))).min(max);
    base + base.mul_f64(fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tries with pauses of a millisecond or two.
    fn quick(budget: Duration) -> Tries {
        Tries {
            first_pause: Duration::from_millis(1),
            max_pause: Duration::from_millis(1),
            budget,
            ..Tries::new("test")
        }
    }

    /// A loop as the callers write it.
    async fn run(mut one_try: impl FnMut() -> Result<u32, ApiError>) -> Result<u32, ApiError> {
        run_with(quick(BUDGET), &mut one_try).await
    }

    async fn run_with(
        mut tries: Tries,
        one_try: &mut impl FnMut() -> Result<u32, ApiError>,
    ) -> Result<u32, ApiError> {
        loop {
            match one_try() {
                Err(e) if tries.again(&e).await => {}
                done => return done,
            }
        }
    }

    #[tokio::test]
    async fn a_rolled_back_transaction_runs_again_a_bounded_number_of_times() {
        let mut runs = 0;
        let result = run(|| {
            runs += 1;
            Err(ApiError::RolledBack("deadlock".into()))
        })
        .await;
        assert!(matches!(result, Err(ApiError::RolledBack(_))));
        assert_eq!(runs, ATTEMPTS);

        let mut runs = 0;
        let result = run(|| {
            runs += 1;
            if runs < 3 {
                Err(ApiError::RolledBack("deadlock".into()))
            } else {
                Ok(runs)
            }
        })
        .await;
        assert_eq!(result.unwrap(), 3);

        // Any other error is the answer at once.
        let mut runs = 0;
        let result = run(|| {
            runs += 1;
            Err(ApiError::Unavailable("lock timeout".into()))
        })
        .await;
        assert!(result.is_err());
        assert_eq!(runs, 1);

        // Out of time before out of tries.
        let mut runs = 0;
        let result = run_with(quick(Duration::from_millis(30)), &mut || {
            runs += 1;
            std::thread::sleep(Duration::from_millis(10));
            Err(ApiError::RolledBack("deadlock".into()))
        })
        .await;
        assert!(matches!(result, Err(ApiError::RolledBack(_))));
        assert!(runs < ATTEMPTS, "{runs} runs: the budget ends them");
    }

    #[test]
    fn deadlocks_and_serialization_failures_are_retried_lock_timeouts_not() {
        assert!(retryable("40P01") && retryable("40001"));
        assert!(!retryable("55P03") && !retryable("57014") && !retryable("23505"));
        let pause = |tries| pause(tries, FIRST_PAUSE, MAX_PAUSE);
        assert!(pause(1) >= FIRST_PAUSE && pause(1) <= FIRST_PAUSE * 2);
        assert!(pause(3) >= FIRST_PAUSE * 4 && pause(3) <= FIRST_PAUSE * 8);
        assert!(pause(ATTEMPTS) >= MAX_PAUSE && pause(ATTEMPTS) <= MAX_PAUSE * 2);
        // The pauses of all tries fit the budget: the tries end by count.
        let longest: Duration = (1..ATTEMPTS)
            .map(|t| (FIRST_PAUSE * 2u32.pow(t - 1)).min(MAX_PAUSE) * 2)
            .sum();
        assert!(longest > Duration::from_secs(5), "{longest:?}");
    }
}
