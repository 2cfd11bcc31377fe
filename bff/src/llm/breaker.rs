//! A circuit breaker per provider: after `failures` consecutive failures of
//! a provider (server errors, timeouts, refused connections, unreadable
//! answers) the breaker opens and the gateway skips that provider without
//! calling it; after `cool_off` one call is let through as a probe
//! (half-open): its success closes the breaker, its failure opens it for
//! another `cool_off`. While a probe is out no other call passes; a probe
//! that never reports (its caller was cancelled) is replaced after another
//! `cool_off`.
//!
//! Key problems (429, 401) are the key ring's business, not the breaker's;
//! a request the provider refuses (other 4xx) says nothing about its health.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probe_since: Instant },
}

/// What [`Breakers::allow`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The breaker is closed.
    Pass,
    /// The one probe of a half-open breaker.
    Probe,
    /// Open: do not call.
    Refuse,
}

#[derive(Debug, Clone, Copy)]
pub struct BreakerSettings {
    /// Consecutive failures that open the breaker.
    pub failures: u32,
    /// How long it stays open before a probe.
    pub cool_off: Duration,
}

/// The breakers of every provider, by provider code.
#[derive(Debug)]
pub struct Breakers {
    settings: BreakerSettings,
    states: Mutex<HashMap<String, State>>,
}

impl Breakers {
    pub fn new(settings: BreakerSettings) -> Breakers {
        Breakers {
            settings: BreakerSettings {
                failures: settings.failures.max(1),
                ..settings
            },
            states: Mutex::new(HashMap::new()),
        }
    }

    fn states(&self) -> std::sync::MutexGuard<'_, HashMap<String, State>> {
        // A panic while holding the lock leaves a consistent map.
        self.states.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state of `provider` (closed when never seen).
    pub fn state(&self, provider: &str) -> State {
        self.states()
            .get(provider)
            .copied()
            .unwrap_or(State::Closed { failures: 0 })
    }

    /// Would [`Breakers::allow`] let a call of `provider` through now
    /// (pass or probe)? Only looks: a status read must not take the one
    /// probe of a half-open breaker.
    pub fn admits(&self, provider: &str) -> bool {
        self.admits_at(provider, Instant::now())
    }

    pub fn admits_at(&self, provider: &str, now: Instant) -> bool {
        match self.state(provider) {
            State::Closed { .. } => true,
            State::Open { until } => now >= until,
            State::HalfOpen { probe_since } => now >= probe_since + self.settings.cool_off,
        }
    }

    /// May `provider` be called now?
    pub fn allow(&self, provider: &str) -> Admission {
        self.allow_at(provider, Instant::now())
    }

    pub fn allow_at(&self, provider: &str, now: Instant) -> Admission {
        let mut states = self.states();
        let state = states
            .entry(provider.to_owned())
            .or_insert(State::Closed { failures: 0 });
        match *state {
            State::Closed { .. } => Admission::Pass,
            State::Open { until } if now < until => Admission::Refuse,
            State::HalfOpen { probe_since } if now < probe_since + self.settings.cool_off => {
                Admission::Refuse
            }
            State::Open { .. } | State::HalfOpen { .. } => {
                *state = State::HalfOpen { probe_since: now };
                Admission::Probe
            }
        }
    }

    /// A call of `provider` succeeded: the breaker closes.
    pub fn success(&self, provider: &str) {
        self.states()
            .insert(provider.to_owned(), State::Closed { failures: 0 });
    }

    /// A call of `provider` failed in a way that tells of its health.
    pub fn failure(&self, provider: &str) {
        self.failure_at(provider, Instant::now())
    }

    pub fn failure_at(&self, provider: &str, now: Instant) {
        let mut states = self.states();
        let state = states
            .entry(provider.to_owned())
            .or_insert(State::Closed { failures: 0 });
        let open = State::Open {
            until: now + self.settings.cool_off,
        };
        *state = match *state {
            State::Closed { failures } if failures + 1 < self.settings.failures => State::Closed {
                failures: failures + 1,
            },
            State::Closed { .. } | State::HalfOpen { .. } => {
                tracing::warn!(provider, cool_off = ?self.settings.cool_off, "LLM provider breaker opens");
                open
            }
            // A call that started before the breaker opened: keep the time.
            State::Open { until } => State::Open { until },
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breakers() -> Breakers {
        Breakers::new(BreakerSettings {
            failures: 3,
            cool_off: Duration::from_secs(10),
        })
    }

    #[test]
    fn opens_after_consecutive_failures_and_probes_after_the_cool_off() {
        let b = breakers();
        let t0 = Instant::now();
        for _ in 0..2 {
            assert_eq!(b.allow_at("gemini", t0), Admission::Pass);
            b.failure_at("gemini", t0);
        }
        // A success in between resets the count.
        b.success("gemini");
        for _ in 0..2 {
            b.failure_at("gemini", t0);
        }
        assert_eq!(b.allow_at("gemini", t0), Admission::Pass);
        b.failure_at("gemini", t0);
        assert_eq!(b.allow_at("gemini", t0), Admission::Refuse);
        assert_eq!(b.allow_at("openai", t0), Admission::Pass);
        let later = t0 + Duration::from_secs(10);
        assert_eq!(b.allow_at("gemini", later), Admission::Probe);
        // One probe at a time.
        assert_eq!(b.allow_at("gemini", later), Admission::Refuse);
        b.success("gemini");
        assert_eq!(b.allow_at("gemini", later), Admission::Pass);
    }

    #[test]
    fn admits_looks_without_taking_the_probe() {
        let b = breakers();
        let t0 = Instant::now();
        assert!(b.admits_at("gemini", t0));
        for _ in 0..3 {
            b.failure_at("gemini", t0);
        }
        assert!(!b.admits_at("gemini", t0));
        let later = t0 + Duration::from_secs(10);
        assert!(b.admits_at("gemini", later));
        assert!(b.admits_at("gemini", later), "still: nothing was taken");
        assert_eq!(b.allow_at("gemini", later), Admission::Probe);
        assert!(!b.admits_at("gemini", later), "the probe is out");
        b.success("gemini");
        assert!(b.admits_at("gemini", later));
    }

    #[test]
    fn a_failed_probe_opens_again_and_a_lost_probe_is_replaced() {
        let b = breakers();
        let t0 = Instant::now();
        for _ in 0..3 {
            b.failure_at("openai", t0);
        }
        let t1 = t0 + Duration::from_secs(11);
        assert_eq!(b.allow_at("openai", t1), Admission::Probe);
        b.failure_at("openai", t1);
        assert_eq!(
            b.state("openai"),
            State::Open {
                until: t1 + Duration::from_secs(10)
            }
        );
        assert_eq!(
            b.allow_at("openai", t1 + Duration::from_secs(5)),
            Admission::Refuse
        );
        let t2 = t1 + Duration::from_secs(10);
        assert_eq!(b.allow_at("openai", t2), Admission::Probe);
        // The probe never reports: another one after a cool-off.
        assert_eq!(
            b.allow_at("openai", t2 + Duration::from_secs(9)),
            Admission::Refuse
        );
        assert_eq!(
            b.allow_at("openai", t2 + Duration::from_secs(10)),
            Admission::Probe
        );
    }
}
