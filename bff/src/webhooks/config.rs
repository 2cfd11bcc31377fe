//! The settings of webhooks (`bizos serve` and `bizos worker`), from the
//! environment: the master key of signing secrets, the SSRF guard's
//! loopback switch, the delivery's timeout, retries and batches.

use std::time::Duration;

use clap::{ArgAction, Args};
use secrecy::SecretString;

use crate::llm::crypto::MasterKeys;
use crate::vars::{positive, positive_seconds, var, ConfigError};

/// The variables of webhooks (`bizos serve` and `bizos worker`). Each is
/// also a flag.
#[derive(Args, Debug, Clone)]
pub struct WebhookArgs {
    /// Master key of the webhook signing secrets: 32 random bytes in base64
    /// (`openssl rand -base64 32`); the BFF seals new secrets with it and the
    /// worker opens them to sign. Unset: endpoints cannot be registered
    /// (503) and the worker delivers no webhooks.
    #[arg(long, env = "BIZOS_WEBHOOKS_MASTER_KEY", hide_env_values = true, value_parser = var(crate::llm::config::master_key))]
    pub webhooks_master_key: Option<SecretString>,
    /// Id of the master key, stored beside every secret it seals (change it
    /// with the key; see BIZOS_WEBHOOKS_MASTER_KEYS_PREVIOUS).
    #[arg(long, env = "BIZOS_WEBHOOKS_MASTER_KEY_ID", default_value = "k1", value_parser = var(crate::llm::config::key_id))]
    pub webhooks_master_key_id: String,
    /// Earlier master keys that still open stored secrets after a
    /// rotation: `id:base64,id:base64`.
    #[arg(long, env = "BIZOS_WEBHOOKS_MASTER_KEYS_PREVIOUS", hide_env_values = true, value_parser = var(crate::vars::secret))]
    pub webhooks_master_keys_previous: Option<SecretString>,
    /// Development and tests only: endpoints may be on loopback
    /// (127.0.0.0/8, ::1). Private, link-local, unique-local and
    /// unspecified addresses stay refused.
    #[arg(long, env = "BIZOS_WEBHOOKS_ALLOW_LOOPBACK", default_value = "0", value_parser = var(switch), action = ArgAction::Set)]
    pub webhooks_allow_loopback: bool,
    /// Seconds one delivery may take (connecting, sending, the answer).
    #[arg(long, env = "BIZOS_WEBHOOKS_TIMEOUT_SECS", default_value = "15", value_parser = var(positive_seconds))]
    pub webhooks_timeout_secs: Duration,
    /// The waits before the retries of a failed delivery, comma-separated
    /// (ms, s, m, h, d); after the last retry fails the delivery is dead.
    /// The default is Svix's schedule; change it for tests only.
    #[arg(long, env = "BIZOS_WEBHOOKS_RETRY_SCHEDULE", default_value = "5s,5m,30m,2h,5h,10h,10h", value_parser = var(schedule))]
    pub webhooks_retry_schedule: RetrySchedule,
    /// Deliveries a job claims at once.
    #[arg(long, env = "BIZOS_WEBHOOKS_BATCH", default_value = "200", value_parser = var(positive::<u32>))]
    pub webhooks_batch: u32,
    /// Deliveries a job sends at once.
    #[arg(long, env = "BIZOS_WEBHOOKS_CONCURRENCY", default_value = "64", value_parser = var(positive::<usize>))]
    pub webhooks_concurrency: usize,
}

/// The waits before the retries of a failed delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(pub Vec<Duration>);

impl RetrySchedule {
    /// The wait after the failed attempt number `attempt` (1-based), or
    /// None when the schedule is used up (the delivery is dead).
    pub fn after(&self, attempt: i32) -> Option<Duration> {
        usize::try_from(attempt)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| self.0.get(i).copied())
    }
}

/// `1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off`.
pub(crate) fn switch(v: &str) -> Result<bool, String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => Err(format!("{other:?} is not one of 1, 0, true, false")),
    }
}

/// A duration: a number with a unit (ms, s, m, h, d).
fn duration(v: &str) -> Result<Duration, String> {
    let v = v.trim();
    let split = v
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{v:?} needs a unit (ms, s, m, h, d)"))?;
    let (n, unit) = v.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("{v:?} is not a duration"))?;
    let ms = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("{v:?}: the unit must be ms, s, m, h or d")),
    };
    n.checked_mul(ms)
        .filter(|ms| *ms <= 365 * 86_400_000)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{v:?} is longer than a year"))
}

fn schedule(v: &str) -> Result<RetrySchedule, String> {
    let waits = v.split(',').map(duration).collect::<Result<Vec<_>, _>>()?;
    if waits.len() > 50 {
        return Err("at most 50 retries".into());
    }
    Ok(RetrySchedule(waits))
}

/// What webhooks are built from.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub master_key: Option<SecretString>,
    pub master_key_id: String,
    pub master_keys_previous: Option<SecretString>,
    pub allow_loopback: bool,
    pub timeout: Duration,
    pub retry_schedule: RetrySchedule,
    pub batch: u32,
    pub concurrency: usize,
}

impl WebhookArgs {
    pub fn settings(self) -> Result<WebhookSettings, ConfigError> {
        let settings = WebhookSettings {
            master_key: self.webhooks_master_key,
            master_key_id: self.webhooks_master_key_id,
            master_keys_previous: self.webhooks_master_keys_previous,
            allow_loopback: self.webhooks_allow_loopback,
            timeout: self.webhooks_timeout_secs,
            retry_schedule: self.webhooks_retry_schedule,
            batch: self.webhooks_batch,
            concurrency: self.webhooks_concurrency,
        };
        settings.master_keys()?;
        Ok(settings)
    }
}

impl WebhookSettings {
    /// The master keys (None without BIZOS_WEBHOOKS_MASTER_KEY); previous
    /// keys without a current one are refused.
    pub fn master_keys(&self) -> Result<Option<MasterKeys>, ConfigError> {
        match (&self.master_key, &self.master_keys_previous) {
            (Some(key), previous) => MasterKeys::new(&self.master_key_id, key, previous.as_ref())
                .map(Some)
                .map_err(|e| {
                    ConfigError::Invalid(format!(
                        "BIZOS_WEBHOOKS_MASTER_KEY_ID or BIZOS_WEBHOOKS_MASTER_KEYS_PREVIOUS is invalid: {e}"
                    ))
                }),
            (None, Some(_)) => Err(ConfigError::Missing {
                var: "BIZOS_WEBHOOKS_MASTER_KEY",
                why: "BIZOS_WEBHOOKS_MASTER_KEYS_PREVIOUS is set",
            }),
            (None, None) => Ok(None),
        }
    }

    /// The settings from the variables `get` returns (BIZOS_WEBHOOKS_*;
    /// never the process environment), the defaults for the rest: for
    /// tests and tools that build a worker in process.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        crate::vars::from_lookup::<WebhookArgs>(get)?.settings()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<WebhookSettings, ConfigError> {
        let map: std::collections::HashMap<&str, &str> = pairs.iter().copied().collect();
        WebhookSettings::from_lookup(|k| map.get(k).map(|v| v.to_string()))
    }

    #[test]
    fn the_default_schedule_is_svixs() {
        let s = settings(&[]).unwrap();
        let secs: Vec<u64> = s.retry_schedule.0.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [5, 300, 1800, 7200, 18000, 36000, 36000]);
        assert_eq!(s.retry_schedule.after(1), Some(Duration::from_secs(5)));
        assert_eq!(s.retry_schedule.after(7), Some(Duration::from_secs(36000)));
        assert_eq!(s.retry_schedule.after(8), None, "8 attempts, then dead");
        assert_eq!(s.retry_schedule.after(0), None);
        assert!(!s.allow_loopback);
        assert!(s.master_keys().unwrap().is_none());
        assert_eq!(s.timeout, Duration::from_secs(15));
    }

    #[test]
    fn settings_are_read_and_refused_by_name() {
        let s = settings(&[
            ("BIZOS_WEBHOOKS_RETRY_SCHEDULE", "200ms, 1s"),
            ("BIZOS_WEBHOOKS_ALLOW_LOOPBACK", "1"),
            (
                "BIZOS_WEBHOOKS_MASTER_KEY",
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            ),
        ])
        .unwrap();
        assert_eq!(
            s.retry_schedule,
            RetrySchedule(vec![Duration::from_millis(200), Duration::from_secs(1)])
        );
        assert!(s.allow_loopback);
        assert_eq!(s.master_keys().unwrap().unwrap().current_id(), "k1");
        for (var, value, why) in [
            ("BIZOS_WEBHOOKS_RETRY_SCHEDULE", "5", "unit"),
            ("BIZOS_WEBHOOKS_RETRY_SCHEDULE", "5s,2w", "unit"),
            ("BIZOS_WEBHOOKS_ALLOW_LOOPBACK", "maybe", "not one of"),
            ("BIZOS_WEBHOOKS_MASTER_KEY", "c2hvcnQ=", "32 bytes"),
            ("BIZOS_WEBHOOKS_TIMEOUT_SECS", "0", "greater than zero"),
        ] {
            let err = settings(&[(var, value)]).unwrap_err().to_string();
            assert!(err.contains(var) && err.contains(why), "{var}: {err}");
        }
        let err = settings(&[("BIZOS_WEBHOOKS_MASTER_KEYS_PREVIOUS", "k0:x")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("BIZOS_WEBHOOKS_MASTER_KEY"), "{err}");
    }
}
