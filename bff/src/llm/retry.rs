//! Backoff between retries of a provider call: exponential with full
//! jitter (a random wait between zero and `base·2ⁿ`, at most `max`), never
//! shorter than the provider's `Retry-After`, and only when the wait still
//! fits in what is left of the call's total budget.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct RetrySettings {
    /// Retries of one key on one model after a retryable error.
    pub retries: u32,
    /// The first backoff's upper bound.
    pub base: Duration,
    /// The longest backoff (and the longest Retry-After honoured by waiting).
    pub max: Duration,
}

/// The deadline of one gateway call: every retry, key and model of the
/// chain together.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    deadline: Instant,
}

impl Budget {
    pub fn new(total: Duration) -> Budget {
        Budget {
            deadline: Instant::now() + total,
        }
    }

    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    pub fn is_spent(&self) -> bool {
        self.remaining().is_zero()
    }
}

impl RetrySettings {
    /// The wait before retry number `attempt` (0 for the first retry), or
    /// None when no retry should be made: the retries are used up, or the
    /// wait (at least `retry_after`) would not leave time for the call in
    /// `remaining`, or the provider asks for a longer wait than `max`.
    pub fn delay(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        remaining: Duration,
    ) -> Option<Duration> {
        self.delay_with(attempt, retry_after, remaining, fastrand::f64())
    }

    /// [`RetrySettings::delay`] with the random draw given (`0.0..1.0`).
    pub fn delay_with(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        remaining: Duration,
        draw: f64,
    ) -> Option<Duration> {
        if attempt >= self.retries {
            return None;
        }
        if retry_after.is_some_and(|r| r > self.max) {
            return None;
        }
        let ceiling = self
            .base
            .saturating_mul(1u32.checked_shl(attempt).unwrap_or(u32::MAX))
            .min(self.max);
        let jittered = ceiling.mul_f64(draw.clamp(0.0, 1.0));
        let wait = jittered.max(retry_after.unwrap_or_default());
        // Keep at least as much again for the call itself.
        (wait.saturating_mul(2) < remaining).then_some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: RetrySettings = RetrySettings {
        retries: 3,
        base: Duration::from_millis(100),
        max: Duration::from_secs(2),
    };
    const PLENTY: Duration = Duration::from_secs(60);

    #[test]
    fn exponential_with_full_jitter() {
        assert_eq!(
            S.delay_with(0, None, PLENTY, 1.0),
            Some(Duration::from_millis(100))
        );
        assert_eq!(
            S.delay_with(1, None, PLENTY, 1.0),
            Some(Duration::from_millis(200))
        );
        assert_eq!(
            S.delay_with(2, None, PLENTY, 0.5),
            Some(Duration::from_millis(200))
        );
        assert_eq!(S.delay_with(2, None, PLENTY, 0.0), Some(Duration::ZERO));
        assert_eq!(S.delay_with(3, None, PLENTY, 1.0), None, "retries used up");
        let many = RetrySettings { retries: 40, ..S };
        assert_eq!(
            many.delay_with(39, None, PLENTY, 1.0),
            Some(Duration::from_secs(2))
        );
        for _ in 0..100 {
            let d = S.delay(1, None, PLENTY).unwrap();
            assert!(d <= Duration::from_millis(200), "{d:?}");
        }
    }

    #[test]
    fn retry_after_is_honoured_and_the_budget_bounds_it() {
        let after = Some(Duration::from_secs(1));
        assert_eq!(
            S.delay_with(0, after, PLENTY, 0.3),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            S.delay_with(0, Some(Duration::from_secs(5)), PLENTY, 0.3),
            None
        );
        assert_eq!(
            S.delay_with(0, after, Duration::from_millis(1500), 0.3),
            None
        );
        assert_eq!(
            S.delay_with(0, None, Duration::from_millis(150), 1.0),
            None,
            "no time left for the call after the wait"
        );
    }

    #[test]
    fn a_budget_runs_out() {
        let b = Budget::new(Duration::from_millis(20));
        assert!(!b.is_spent());
        std::thread::sleep(Duration::from_millis(25));
        assert!(b.is_spent());
        assert_eq!(b.remaining(), Duration::ZERO);
    }
}
