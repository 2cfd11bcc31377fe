//! The settings of the LLM gateway (`bizos serve`, `bizos worker`), from the environment:
//! the master key of tenant keys, platform keys, timeouts, the budget of a
//! call, the bound on calls in flight, retries, the breaker and the caches.

use std::collections::HashMap;
use std::time::Duration;

use clap::Args;
use secrecy::{ExposeSecret, SecretString};

use super::breaker::BreakerSettings;
use super::keys::KeySettings;
use super::retry::RetrySettings;
use crate::vars::{positive, positive_millis, positive_seconds, var, ConfigError};

/// The master keys of tenant keys (the gateway's, and `bizos llm keys
/// rewrap`'s). Each is also a flag.
#[derive(Args, Debug, Clone)]
pub struct MasterKeyArgs {
    /// Master key of tenant-supplied API keys: 32 random bytes in base64
    /// (`openssl rand -base64 32`). Unset: tenants cannot add keys, and
    /// stored tenant keys are not used.
    #[arg(long, env = "BIZOS_LLM_MASTER_KEY", hide_env_values = true, value_parser = var(master_key))]
    pub llm_master_key: Option<SecretString>,
    /// Id of the master key, stored beside every key it seals (change it
    /// with the key; see BIZOS_LLM_MASTER_KEYS_PREVIOUS).
    #[arg(long, env = "BIZOS_LLM_MASTER_KEY_ID", default_value = "k1", value_parser = var(key_id))]
    pub llm_master_key_id: String,
    /// Earlier master keys that still open stored keys after a rotation:
    /// `id:base64,id:base64`.
    #[arg(long, env = "BIZOS_LLM_MASTER_KEYS_PREVIOUS", hide_env_values = true, value_parser = var(crate::vars::secret))]
    pub llm_master_keys_previous: Option<SecretString>,
}

impl MasterKeyArgs {
    /// The master keys (None without BIZOS_LLM_MASTER_KEY); previous keys
    /// without a current one are refused.
    pub fn keys(&self) -> Result<Option<super::crypto::MasterKeys>, ConfigError> {
        match (&self.llm_master_key, &self.llm_master_keys_previous) {
            (Some(key), previous) => {
                super::crypto::MasterKeys::new(&self.llm_master_key_id, key, previous.as_ref())
                    .map(Some)
                    .map_err(|e| {
                        ConfigError::Invalid(format!(
                    "BIZOS_LLM_MASTER_KEY_ID or BIZOS_LLM_MASTER_KEYS_PREVIOUS is invalid: {e}"
                ))
                    })
            }
            (None, Some(_)) => Err(ConfigError::Missing {
                var: "BIZOS_LLM_MASTER_KEY",
                why: "BIZOS_LLM_MASTER_KEYS_PREVIOUS is set",
            }),
            (None, None) => Ok(None),
        }
    }
}

/// The variables of the LLM gateway. Each is also a flag.
#[derive(Args, Debug, Clone)]
pub struct LlmArgs {
    #[command(flatten)]
    pub master: MasterKeyArgs,
    /// The platform's OpenAI(-compatible) API keys, comma-separated; used in
    /// turn.
    #[arg(long, env = "BIZOS_LLM_KEYS_OPENAI", hide_env_values = true, value_parser = var(crate::vars::secret))]
    pub llm_keys_openai: Option<SecretString>,
    /// The platform's Gemini API keys, comma-separated; used in turn.
    #[arg(long, env = "BIZOS_LLM_KEYS_GEMINI", hide_env_values = true, value_parser = var(crate::vars::secret))]
    pub llm_keys_gemini: Option<SecretString>,
    /// Keys of any provider of the catalogue (`bizos llm provider`), as
    /// `provider:key,provider:key`; `provider:` with nothing after it is a
    /// provider that takes no key (a local Ollama or vLLM).
    #[arg(long, env = "BIZOS_LLM_KEYS", hide_env_values = true, value_parser = var(provider_keys))]
    pub llm_keys: Option<SecretString>,
    /// Milliseconds to connect to a provider.
    #[arg(long, env = "BIZOS_LLM_CONNECT_TIMEOUT_MS", default_value = "3000", value_parser = var(positive_millis))]
    pub llm_connect_timeout_ms: Duration,
    /// Milliseconds one provider call may take in all.
    #[arg(long, env = "BIZOS_LLM_TIMEOUT_MS", default_value = "20000", value_parser = var(positive_millis))]
    pub llm_timeout_ms: Duration,
    /// Milliseconds one gateway call may take with every retry, key and
    /// model of its chain; then the feature's fallback answers. Keep it
    /// below BIZOS_REQUEST_TIMEOUT_SECS.
    #[arg(long, env = "BIZOS_LLM_BUDGET_MS", default_value = "25000", value_parser = var(positive_millis))]
    pub llm_budget_ms: Duration,
    /// Provider calls in flight at once (a call waits for a slot within its
    /// budget, else the fallback answers).
    #[arg(long, env = "BIZOS_LLM_MAX_IN_FLIGHT", default_value = "64", value_parser = var(positive::<usize>))]
    pub llm_max_in_flight: usize,
    /// Retries of a key after a retryable error (5xx, timeout, refused connection).
    #[arg(long, env = "BIZOS_LLM_RETRIES", default_value = "2", value_parser = var(crate::vars::number::<u32>))]
    pub llm_retries: u32,
    /// Upper bound of the first backoff in milliseconds (doubling, with full jitter).
    #[arg(long, env = "BIZOS_LLM_BACKOFF_MS", default_value = "250", value_parser = var(positive_millis))]
    pub llm_backoff_ms: Duration,
    /// Longest backoff in milliseconds; a provider asking (Retry-After) for a
    /// longer wait is not waited for: the next key or model is tried.
    #[arg(long, env = "BIZOS_LLM_BACKOFF_MAX_MS", default_value = "4000", value_parser = var(positive_millis))]
    pub llm_backoff_max_ms: Duration,
    /// Consecutive failures of a provider that open its circuit breaker.
    #[arg(long, env = "BIZOS_LLM_BREAKER_FAILURES", default_value = "5", value_parser = var(positive::<u32>))]
    pub llm_breaker_failures: u32,
    /// Seconds an open breaker waits before a probe call.
    #[arg(long, env = "BIZOS_LLM_BREAKER_COOL_OFF_SECS", default_value = "30", value_parser = var(positive_seconds))]
    pub llm_breaker_cool_off_secs: Duration,
    /// Seconds a key rests after a 429 without Retry-After.
    #[arg(long, env = "BIZOS_LLM_KEY_COOLDOWN_SECS", default_value = "30", value_parser = var(positive_seconds))]
    pub llm_key_cooldown_secs: Duration,
    /// Seconds a key rests after the provider refused it (401/403).
    #[arg(long, env = "BIZOS_LLM_KEY_UNAUTHORIZED_COOLDOWN_SECS", default_value = "600", value_parser = var(positive_seconds))]
    pub llm_key_unauthorized_cooldown_secs: Duration,
    /// Seconds a tenant's opened keys are reused before they are read again.
    #[arg(long, env = "BIZOS_LLM_TENANT_KEYS_TTL_SECS", default_value = "60", value_parser = var(positive_seconds))]
    pub llm_tenant_keys_ttl_secs: Duration,
    /// Seconds the routes and feature settings are reused before they are
    /// read again.
    #[arg(long, env = "BIZOS_LLM_CATALOG_TTL_SECS", default_value = "30", value_parser = var(positive_seconds))]
    pub llm_catalog_ttl_secs: Duration,
}

/// What the [`super::Gateway`] is built from.
#[derive(Debug, Clone)]
pub struct LlmSettings {
    pub master_key: Option<SecretString>,
    pub master_key_id: String,
    pub master_keys_previous: Option<SecretString>,
    /// Provider → its platform keys, in order.
    pub platform_keys: HashMap<String, Vec<SecretString>>,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub budget: Duration,
    pub max_in_flight: usize,
    pub retry: RetrySettings,
    pub breaker: BreakerSettings,
    pub keys: KeySettings,
    pub catalog_ttl: Duration,
}

/// The keys of a comma-separated list (blanks dropped).
fn key_list(list: Option<SecretString>) -> Vec<SecretString> {
    list.map(|l| {
        l.expose_secret()
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(SecretString::from)
            .collect()
    })
    .unwrap_or_default()
}

impl LlmArgs {
    pub fn settings(self) -> Result<LlmSettings, ConfigError> {
        self.master.keys()?;
        let mut platform_keys: HashMap<String, Vec<SecretString>> = HashMap::new();
        for (provider, keys) in [
            ("openai", key_list(self.llm_keys_openai)),
            ("gemini", key_list(self.llm_keys_gemini)),
        ] {
            if !keys.is_empty() {
                platform_keys.insert(provider.to_owned(), keys);
            }
        }
        if let Some(list) = &self.llm_keys {
            for item in list.expose_secret().split(',').map(str::trim) {
                if let Some((provider, key)) = item.split_once(':') {
                    platform_keys
                        .entry(provider.trim().to_owned())
                        .or_default()
                        .push(SecretString::from(key.trim()));
                }
            }
        }
        Ok(LlmSettings {
            master_key: self.master.llm_master_key,
            master_key_id: self.master.llm_master_key_id,
            master_keys_previous: self.master.llm_master_keys_previous,
            platform_keys,
            connect_timeout: self.llm_connect_timeout_ms,
            timeout: self.llm_timeout_ms,
            budget: self.llm_budget_ms,
            max_in_flight: self.llm_max_in_flight,
            retry: RetrySettings {
                retries: self.llm_retries,
                base: self.llm_backoff_ms,
                max: self.llm_backoff_max_ms.max(self.llm_backoff_ms),
            },
            breaker: BreakerSettings {
                failures: self.llm_breaker_failures,
                cool_off: self.llm_breaker_cool_off_secs,
            },
            keys: KeySettings {
                tenant_keys_ttl: self.llm_tenant_keys_ttl_secs,
                rate_limited_cooldown: self.llm_key_cooldown_secs,
                unauthorized_cooldown: self.llm_key_unauthorized_cooldown_secs,
            },
            catalog_ttl: self.llm_catalog_ttl_secs,
        })
    }
}

impl LlmSettings {
    /// The settings from the variables `get` returns (BIZOS_LLM_*; never
    /// the process environment), the defaults for the rest: for tests and
    /// tools that build a gateway in process.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        crate::vars::from_lookup::<LlmArgs>(get)?.settings()
    }
}

/// A master key: 32 bytes in base64; the value is never repeated.
pub(crate) fn master_key(v: &str) -> Result<SecretString, String> {
    super::crypto::decode_key(v).map_err(|e| e.to_string())?;
    Ok(SecretString::from(v.trim()))
}

/// A master key id: stored beside every sealed key.
pub(crate) fn key_id(v: &str) -> Result<String, String> {
    let v = v.trim();
    let ok = (1..=64).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok {
        return Err("must be 1-64 letters, digits, '.', '_' or '-'".into());
    }
    Ok(v.to_owned())
}

/// `provider:key,…`: checks the shape only; the value is never repeated.
fn provider_keys(v: &str) -> Result<SecretString, String> {
    for (i, item) in v.split(',').map(str::trim).enumerate() {
        if item.is_empty() {
            continue;
        }
        let provider = item.split_once(':').map(|(p, _)| p.trim());
        let ok = provider.is_some_and(|p| {
            p.starts_with(|c: char| c.is_ascii_lowercase())
                && p.len() <= 40
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        });
        if !ok {
            return Err(format!(
                "item {} is not provider:key (a provider of the catalogue, e.g. openai:sk-…)",
                i + 1
            ));
        }
    }
    Ok(SecretString::from(v))
}
