//! API keys (B2B-8): the secret a machine sends instead of a
//! user's token, on `/api/v1` only.
//!
//! A key is `bz_live_` + 43 characters of base64url (32 random bytes from
//! the operating system's generator, through ring). The database stores
//! only its SHA-256 (a 256-bit random token needs no slow password hash:
//! there is nothing to guess) and the first 16 characters to tell keys
//! apart; the secret is in the response that creates the key and nowhere
//! else, neither in the database nor in logs nor in the stored response of
//! an idempotent replay.
//!
//! A key of a tenant made since placements exist ends in `.` and the
//! tenant's id (32 hex digits): the BFF finds the tenant's placement
//! before it looks the key up there (the tenant's rows, its keys among
//! them, may be in another schema or database than the control one; the
//! id is covered by the hash, so it cannot be changed). A key without it
//! is looked up in the control database.
//!
//! On a request the BFF hashes the token and asks the database
//! (`api_key_authenticate`, migration V35) for its tenant, key id and
//! scopes, refusing unknown, revoked and expired keys and client addresses
//! outside its allowed IPs. The caller is then the key's principal (a
//! profile with app role `integration`), whose permissions the database
//! takes from the scopes ([`scopes`] refuses, earlier and with a clearer
//! message, a route outside them).

pub mod client_ip;
pub mod scopes;

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::MatchedPath;
use axum::http::request::Parts;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::{ApiError, Result};
use client_ip::TrustedProxies;
use scopes::{Access, RouteScopes};

/// What every key starts with.
pub const PREFIX: &str = "bz_live_";
/// Random bytes of a key.
const SECRET_BYTES: usize = 32;
/// Characters of a key shown in lists: the prefix and 8 of the random ones.
const DISPLAY_CHARS: usize = PREFIX.len() + 8;

/// A new key's token, to be shown once.
pub struct NewKey {
    pub token: String,
}

impl NewKey {
    pub fn generate() -> Result<NewKey> {
        let mut bytes = [0u8; SECRET_BYTES];
        SystemRandom::new().fill(&mut bytes).map_err(|_| {
            ApiError::Internal(anyhow::anyhow!("the system random generator failed"))
        })?;
        Ok(NewKey {
            token: format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)),
        })
    }

    /// A key of `tenant`: [`NewKey::generate`] with the tenant's id after
    /// a dot, so a request finds the tenant's placement first.
    pub fn generate_for(tenant: Uuid) -> Result<NewKey> {
        let mut key = NewKey::generate()?;
        key.token = format!("{}.{}", key.token, tenant.simple());
        Ok(key)
    }

    /// The part of the token lists show.
    pub fn display_prefix(&self) -> &str {
        &self.token[..DISPLAY_CHARS]
    }

    pub fn hash(&self) -> [u8; 32] {
        hash(&self.token)
    }
}

/// SHA-256 of a token, as the database stores it.
pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether a bearer credential is an API key rather than a JWT (a JWT is
/// three base64url parts joined by dots and starts with `ey`).
pub fn is_api_key(credential: &str) -> bool {
    credential.starts_with("bz_")
}

/// The tenant a key names after its dot, if any.
pub fn key_tenant(token: &str) -> Option<Uuid> {
    let (_, tenant) = token.strip_prefix(PREFIX)?.rsplit_once('.')?;
    (tenant.len() == 32).then(|| Uuid::try_parse(tenant).ok())?
}

/// The key a request presents, as the database knows it.
#[derive(Debug, Clone)]
pub struct Key {
    pub tenant_id: Uuid,
    pub key_id: Uuid,
    pub scopes: Vec<String>,
}

/// Looks the key up by its hash (the BFF's login: the request has no
/// tenant yet). Refusals come back as [`ApiError::Refused`] (401, or 403
/// for an address outside the allowed IPs).
pub async fn authenticate(pool: &PgPool, token: &str, client: Option<IpAddr>) -> Result<Key> {
    authenticate_routed(pool, None, token, client).await
}

/// [`authenticate`] in the placement of the tenant the key names (the
/// control database's pool for a key that names none).
pub async fn authenticate_routed(
    pool: &PgPool,
    placements: Option<&crate::placement::Router>,
    token: &str,
    client: Option<IpAddr>,
) -> Result<Key> {
    const SQL: &str = "select tenant_id, key_id, scopes from api_key_authenticate($1, $2::inet)";
    let route = match (placements, key_tenant(token)) {
        (Some(router), Some(tenant)) => Some(router.resolve(tenant).await?),
        _ => None,
    };
    let digest = hash(token);
    let row: (Uuid, Uuid, Vec<String>) = crate::telemetry::db_call("api_key_authenticate", async {
        let query = sqlx::query_as(SQL)
            .bind(digest.as_slice())
            .bind(client.map(|ip| ip.to_string()));
        match route.as_ref().filter(|r| r.schema.is_some()) {
            None => query
                .fetch_one(route.as_ref().map_or(pool, |r| &r.pool))
                .await
                .map_err(ApiError::from),
            Some(r) => {
                let mut tx = r.pool.begin().await?;
                sqlx::query(&format!(
                    "set local search_path to {}, {}",
                    r.schema.as_deref().unwrap_or_default(),
                    bizos_sql::EXTENSIONS_SCHEMA
                ))
                .execute(&mut *tx)
                .await?;
                let row = query.fetch_one(&mut *tx).await?;
                tx.commit().await?;
                Ok(row)
            }
        }
    })
    .await?;
    if key_tenant(token).is_some_and(|t| t != row.0) {
        return Err(ApiError::Unauthorized("unknown API key".into()));
    }
    Ok(Key {
        tenant_id: row.0,
        key_id: row.1,
        scopes: row.2,
    })
}

/// A request under `/api/v1` (the rewrite in [`crate::startup`] marks it):
/// the surface that accepts API keys.
#[derive(Debug, Clone, Copy)]
pub struct ApiV1;

/// What the [`crate::auth::Caller`] extractor needs to accept a key.
#[derive(Clone)]
pub struct KeyAuth {
    pub pool: PgPool,
    pub proxies: Arc<TrustedProxies>,
    /// Routes a key that names its tenant to the tenant's placement.
    pub placements: Option<crate::placement::Router>,
}

impl KeyAuth {
    /// The key of a request and the claims its principal acts with: on
    /// /api/v1 only, on a route its scopes allow.
    pub async fn claims(
        &self,
        parts: &Parts,
        token: &str,
    ) -> Result<(Uuid, Uuid, serde_json::Value)> {
        if parts.extensions.get::<ApiV1>().is_none() {
            return Err(ApiError::Unauthorized(
                "API keys are accepted on /api/v1 only (this is the web client's /api)".into(),
            ));
        }
        let key = authenticate_routed(
            &self.pool,
            self.placements.as_ref(),
            token,
            self.proxies.client(parts),
        )
        .await?;
        let template = parts
            .extensions
            .get::<MatchedPath>()
            .map(MatchedPath::as_str)
            .unwrap_or_default();
        let routes = parts.extensions.get::<Arc<RouteScopes>>();
        match routes.map(|r| r.access(parts.method.as_str(), template)) {
            Some(Access::Needs(scope)) if scopes::grants(&key.scopes, scope) => {}
            Some(Access::Needs(scope)) => {
                return Err(ApiError::Refused {
                    code: "insufficient_scope",
                    message: format!(
                        "this API key lacks the scope {scope} (it has: {})",
                        key.scopes.join(", ")
                    ),
                })
            }
            _ => {
                return Err(ApiError::Refused {
                    code: "insufficient_scope",
                    message: "this route is not available to API keys".into(),
                })
            }
        }
        let claims = serde_json::json!({
            "sub": key.key_id,
            "tenant_id": key.tenant_id,
            "principal": "api_key",
        });
        Ok((key.tenant_id, key.key_id, claims))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_the_prefix_and_43_base64url_characters() {
        let a = NewKey::generate().unwrap();
        let b = NewKey::generate().unwrap();
        assert_ne!(a.token, b.token);
        assert!(a.token.starts_with(PREFIX));
        let random = &a.token[PREFIX.len()..];
        assert_eq!(random.len(), 43);
        assert!(random
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_eq!(a.display_prefix(), &a.token[..16]);
        assert!(is_api_key(&a.token));
        assert!(!is_api_key("eyJhbGciOiJIUzI1NiJ9.e30.x"));
        assert_eq!(key_tenant(&a.token), None);
        let t = Uuid::new_v4();
        let c = NewKey::generate_for(t).unwrap();
        assert_eq!(key_tenant(&c.token), Some(t));
        assert!(c.display_prefix().starts_with(PREFIX) && c.display_prefix().len() == 16);
    }

    #[test]
    fn the_hash_is_sha256_of_the_whole_token() {
        // echo -n bz_live_x | sha256sum
        assert_eq!(
            hex::encode(hash("bz_live_x")),
            "3d55c5b2d409377f26cfc6620c6492d9f016c45068b6c6b34019e4f16c6c43c1"
        );
    }
}
