//! The key ring: which API keys a call may use, in which order.
//!
//! - **Platform keys** come from the environment (`BIZOS_LLM_KEYS_OPENAI`,
//!   `BIZOS_LLM_KEYS_GEMINI`, comma-separated, then `BIZOS_LLM_KEYS` =
//!   `provider:key,…` for any provider; an empty key is a provider that
//!   takes none), recorded in the ledger as `platform:<n>` (n = the key's
//!   place in the provider's list, from 1). A provider with no key at all
//!   is skipped.
//! - **Tenant keys** are the tenant's own, stored sealed (see
//!   [`super::crypto`]) and read with `llm_key_material(tenant, provider)` on
//!   the BFF's pool, outside any user transaction (the function is granted
//!   to the BFF's and the worker's logins only, never to users); they are
//!   opened in memory and cached for a short while. Recorded as
//!   `tenant:<key_id>`. A tenant's keys come before the platform's.
//! - **Rotation**: each call starts one key further along the list, so the
//!   load spreads round-robin.
//! - **Cooling**: a 429 or a 401/403 on a key takes it out of the ring for
//!   a while (Retry-After, else the configured cool-down); the call moves on
//!   to the next key.
//!
//! Keys are `SecretString`s: never logged, never in an error, never sent
//! anywhere but the provider's auth header.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use secrecy::SecretString;
use uuid::Uuid;

use super::crypto::{MasterKeys, Sealed};
use super::provider::ProviderError;
use super::tenant_db::TenantDb;

#[derive(Debug, Clone)]
pub struct KeySettings {
    /// How long a tenant's opened keys are reused before they are read again.
    pub tenant_keys_ttl: Duration,
    /// Cool-down of a key after a 429 without Retry-After.
    pub rate_limited_cooldown: Duration,
    /// Cool-down of a key the provider refused (401/403).
    pub unauthorized_cooldown: Duration,
}

/// One key a call may use.
#[derive(Clone)]
pub struct KeyChoice {
    /// What the ledger records: `platform:<n>` or `tenant:<key_id>`.
    pub key_ref: String,
    pub secret: SecretString,
}

impl std::fmt::Debug for KeyChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyChoice")
            .field("key_ref", &self.key_ref)
            .finish_non_exhaustive()
    }
}

type TenantKeys = Arc<Vec<KeyChoice>>;

/// What [`KeyRing::usable`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyStatus {
    /// The tenant or the platform has a key for the provider.
    pub configured: bool,
    /// One of them is not cooling down after a 429 or 401.
    pub usable: bool,
}

pub struct KeyRing {
    platform: HashMap<String, Vec<KeyChoice>>,
    master: Option<Arc<MasterKeys>>,
    /// Whether tenant keys are read (in the tenant's placement).
    tenant_keys: bool,
    settings: KeySettings,
    tenant_cache: Mutex<HashMap<(Uuid, String), (Instant, TenantKeys)>>,
    cooling: Mutex<HashMap<(String, String), Instant>>,
    cursors: Mutex<HashMap<String, usize>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field(
                "platform_keys",
                &self
                    .platform
                    .iter()
                    .map(|(p, k)| (p.as_str(), k.len()))
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl KeyRing {
    /// `platform`: provider → its keys in order. Tenant keys are read when
    /// `tenant_keys` (none without master keys).
    pub fn new(
        platform: HashMap<String, Vec<SecretString>>,
        master: Option<Arc<MasterKeys>>,
        tenant_keys: bool,
        settings: KeySettings,
    ) -> KeyRing {
        let platform = platform
            .into_iter()
            .map(|(provider, keys)| {
                let keys = keys
                    .into_iter()
                    .enumerate()
                    .map(|(i, secret)| KeyChoice {
                        key_ref: format!("platform:{}", i + 1),
                        secret,
                    })
                    .collect();
                (provider, keys)
            })
            .collect();
        KeyRing {
            platform,
            master,
            tenant_keys,
            settings,
            tenant_cache: Mutex::new(HashMap::new()),
            cooling: Mutex::new(HashMap::new()),
            cursors: Mutex::new(HashMap::new()),
        }
    }

    /// The keys a call of `tenant` may use with `provider` now, in the order
    /// to try them: the tenant's (rotated), then the platform's (rotated),
    /// without the cooling ones.
    /// `db` is the tenant's placement, where its keys are.
    pub async fn keys(&self, tenant: Uuid, provider: &str, db: &TenantDb) -> Vec<KeyChoice> {
        let tenant_keys = self.tenant_keys(tenant, provider, db).await;
        let mut out = self.rotated(&format!("{tenant}/{provider}"), &tenant_keys);
        if let Some(platform) = self.platform.get(provider) {
            out.extend(self.rotated(provider, platform));
        }
        let now = Instant::now();
        let mut cooling = lock(&self.cooling);
        cooling.retain(|_, until| *until > now);
        out.retain(|k| !cooling.contains_key(&(provider.to_owned(), k.key_ref.clone())));
        out
    }

    /// Whether `tenant` has keys for `provider` (its own or the
    /// platform's), and whether any of them is not cooling now. Only looks:
    /// no rotation.
    pub async fn usable(&self, tenant: Uuid, provider: &str, db: &TenantDb) -> KeyStatus {
        let tenant_keys = self.tenant_keys(tenant, provider, db).await;
        let platform = self.platform.get(provider).map_or(&[][..], Vec::as_slice);
        let now = Instant::now();
        let cooling = lock(&self.cooling);
        let warm = |k: &KeyChoice| {
            cooling
                .get(&(provider.to_owned(), k.key_ref.clone()))
                .is_none_or(|until| *until <= now)
        };
        KeyStatus {
            configured: !tenant_keys.is_empty() || !platform.is_empty(),
            usable: tenant_keys.iter().chain(platform).any(warm),
        }
    }

    /// `keys` starting at the next place of `scope`'s cursor.
    fn rotated(&self, scope: &str, keys: &[KeyChoice]) -> Vec<KeyChoice> {
        if keys.is_empty() {
            return Vec::new();
        }
        let start = {
            let mut cursors = lock(&self.cursors);
            let cursor = cursors.entry(scope.to_owned()).or_insert(0);
            let start = *cursor % keys.len();
            *cursor = cursor.wrapping_add(1);
            start
        };
        keys[start..]
            .iter()
            .chain(&keys[..start])
            .cloned()
            .collect()
    }

    /// Takes a key out of the ring after `error` (when the error cools keys).
    pub fn cool(&self, provider: &str, key_ref: &str, error: &ProviderError) {
        if !error.cools_key() {
            return;
        }
        let pause = match error {
            ProviderError::Unauthorized { .. } => self.settings.unauthorized_cooldown,
            other => other
                .retry_after()
                .unwrap_or(self.settings.rate_limited_cooldown),
        };
        tracing::info!(provider, key_ref, ?pause, error = %error, "LLM key cools down");
        lock(&self.cooling).insert(
            (provider.to_owned(), key_ref.to_owned()),
            Instant::now() + pause,
        );
    }

    /// Drops the cached keys of `tenant` (after a key was added or revoked).
    pub fn forget_tenant(&self, tenant: Uuid) {
        lock(&self.tenant_cache).retain(|(t, _), _| *t != tenant);
    }

    async fn tenant_keys(&self, tenant: Uuid, provider: &str, db: &TenantDb) -> TenantKeys {
        let (true, Some(master)) = (self.tenant_keys, &self.master) else {
            return Arc::default();
        };
        let cache_key = (tenant, provider.to_owned());
        if let Some((at, keys)) = lock(&self.tenant_cache).get(&cache_key) {
            if at.elapsed() < self.settings.tenant_keys_ttl {
                return keys.clone();
            }
        }
        let keys = match read_tenant_keys(db, master, tenant, provider).await {
            Ok(keys) => Arc::new(keys),
            Err(e) => {
                // Degrade to the platform's keys; try again next time.
                tracing::warn!(%tenant, provider, error = %e, "cannot read the tenant's LLM keys");
                return Arc::default();
            }
        };
        lock(&self.tenant_cache).insert(cache_key, (Instant::now(), keys.clone()));
        keys
    }
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    key_id: Uuid,
    #[sqlx(flatten)]
    sealed: Sealed,
}

/// The tenant's active keys for `provider`, opened. A key that does not
/// open (unknown master key, altered row) is skipped with a warning naming
/// its id only.
async fn read_tenant_keys(
    db: &TenantDb,
    master: &MasterKeys,
    tenant: Uuid,
    provider: &str,
) -> Result<Vec<KeyChoice>, sqlx::Error> {
    let mut tx = db.begin().await?;
    let rows: Vec<KeyRow> = sqlx::query_as(
        "select key_id, ciphertext, nonce, wrapped_dek, dek_nonce, master_key_id
           from llm_key_material($1, $2)
          order by key_id",
    )
    .bind(tenant)
    .bind(provider)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .filter_map(
            |KeyRow { key_id, sealed }| {
                match master.open(tenant, provider, &sealed) {
                    Ok(secret) => Some(KeyChoice {
                        key_ref: format!("tenant:{key_id}"),
                        secret,
                    }),
                    Err(e) => {
                        tracing::warn!(%tenant, provider, %key_id, error = %e, "a tenant LLM key does not open");
                        None
                    }
                }
            },
        )
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    /// A placement never connected to (no tenant keys are read).
    fn nowhere() -> TenantDb {
        TenantDb {
            name: Arc::from("control"),
            pool: sqlx::PgPool::connect_lazy("postgres://nowhere.invalid/none").unwrap(),
            schema: None,
        }
    }

    fn ring(keys: &[&str]) -> KeyRing {
        KeyRing::new(
            HashMap::from([(
                "openai".to_owned(),
                keys.iter().map(|k| SecretString::from(*k)).collect(),
            )]),
            None,
            false,
            KeySettings {
                tenant_keys_ttl: Duration::from_secs(60),
                rate_limited_cooldown: Duration::from_secs(30),
                unauthorized_cooldown: Duration::from_secs(600),
            },
        )
    }

    fn refs(keys: &[KeyChoice]) -> Vec<&str> {
        keys.iter().map(|k| k.key_ref.as_str()).collect()
    }

    #[tokio::test]
    async fn keys_rotate_round_robin() {
        let r = ring(&["a", "b", "c"]);
        let t = Uuid::new_v4();
        let first = r.keys(t, "openai", &nowhere()).await;
        assert_eq!(refs(&first), ["platform:1", "platform:2", "platform:3"]);
        assert_eq!(first[0].secret.expose_secret(), "a");
        assert_eq!(
            refs(&r.keys(t, "openai", &nowhere()).await),
            ["platform:2", "platform:3", "platform:1"]
        );
        assert_eq!(
            refs(&r.keys(t, "openai", &nowhere()).await),
            ["platform:3", "platform:1", "platform:2"]
        );
        assert!(r.keys(t, "gemini", &nowhere()).await.is_empty());
    }

    #[tokio::test]
    async fn a_429_or_401_cools_the_key() {
        let r = ring(&["a", "b"]);
        let t = Uuid::new_v4();
        r.cool(
            "openai",
            "platform:1",
            &ProviderError::RateLimited {
                retry_after: Some(Duration::from_millis(50)),
            },
        );
        r.cool("openai", "platform:2", &ProviderError::Timeout);
        assert_eq!(refs(&r.keys(t, "openai", &nowhere()).await), ["platform:2"]);
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(r.keys(t, "openai", &nowhere()).await.len(), 2);
        r.cool(
            "openai",
            "platform:2",
            &ProviderError::Unauthorized { status: 401 },
        );
        for _ in 0..3 {
            assert_eq!(refs(&r.keys(t, "openai", &nowhere()).await), ["platform:1"]);
        }
    }

    #[test]
    fn debug_shows_no_key() {
        let r = ring(&["sk-secret-1"]);
        assert!(!format!("{r:?}").contains("sk-secret"));
        let k = KeyChoice {
            key_ref: "platform:1".into(),
            secret: SecretString::from("sk-secret-1"),
        };
        assert!(!format!("{k:?}").contains("sk-secret"));
    }
}
