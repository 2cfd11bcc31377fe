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
//! and the worker's job claim run theirs up to
//! [`ATTEMPTS`] times, after a short random pause, before they give up: a
//! request then answers 503 with `Retry-After`.

use std::time::Duration;

pub use crate::error::retryable;
use crate::error::ApiError;

/// Tries in all, the first one included.
pub const ATTEMPTS: u32 = 4;

/// The pause before the second try; it doubles for each further one, plus
/// up to as much again at random, so that two victims of the same deadlock
/// do not meet again at once (about 0.4 s at most over all tries).
const FIRST_PAUSE: Duration = Duration::from_millis(25);

/// Was the transaction rolled back to break a deadlock or a serialization
/// conflict (so running it again is safe)?
pub trait RolledBack {
    fn rolled_back(&self) -> bool;
}

impl RolledBack for sqlx::Error {
    fn rolled_back(&self) -> bool {
        matches!(self, sqlx::Error::Database(db) if db.code().is_some_and(|c| retryable(&c)))
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
}

impl Tries {
    /// `what`: the transaction's name in the log.
    pub fn new(what: &'static str) -> Self {
        Tries { what, done: 0 }
    }

    /// After a failed try: `true` (after a short pause) when the database
    /// rolled the transaction back to break a deadlock and tries are left.
    pub async fn again(&mut self, error: &(impl RolledBack + std::fmt::Display)) -> bool {
        self.done += 1;
        if self.done >= ATTEMPTS || !error.rolled_back() {
            return false;
        }
        tracing::info!(what = self.what, tries = self.done, %error, "transaction rolled back; running it again");
        tokio::time::sleep(pause(self.done)).await;
        true
    }
}

/// The pause after the `tries`-th failed try.
fn pause(tries: u32) -> Duration {
    let base = FIRST_PAUSE * 2u32.pow(tries.saturating_sub(1).min(8));
    base + base.mul_f64(fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loop as the callers write it.
    async fn run(mut one_try: impl FnMut() -> Result<u32, ApiError>) -> Result<u32, ApiError> {
        let mut tries = Tries::new("test");
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
    }

    #[test]
    fn deadlocks_and_serialization_failures_are_retried_lock_timeouts_not() {
        assert!(retryable("40P01") && retryable("40001"));
        assert!(!retryable("55P03") && !retryable("57014") && !retryable("23505"));
        assert!(pause(1) >= FIRST_PAUSE && pause(1) <= FIRST_PAUSE * 2);
        assert!(pause(3) >= FIRST_PAUSE * 4 && pause(3) <= FIRST_PAUSE * 8);
    }
}
