//! Bearer tokens: verifying them — HS256 (a shared secret, used by `bizos
//! token` and first-party logins) or RS256 (keys from an OIDC provider's
//! JWKS URL, cached) — and issuing development tokens. What a verified
//! token's claims mean is [`crate::auth`]'s business.

use std::time::{Duration, Instant};

use clap::Args;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use tokio::sync::RwLock;
use uuid::Uuid;

use crate::vars::{http_url, seconds, text, var, ConfigError};

pub const MIN_HS256_SECRET_BYTES: usize = 32;

/// The variables of token verification (`bizos serve`). Each is also a
/// flag.
#[derive(Args, Debug, Clone)]
pub struct JwtArgs {
    /// HS256 secret, at least 32 bytes; this or --jwt-jwks-url is required.
    #[arg(long, env = "BIZOS_JWT_SECRET", hide_env_values = true, value_parser = var(hs256_secret))]
    pub jwt_secret: Option<SecretString>,
    /// JWKS URL of an OIDC provider for RS256 tokens (cached; refetched on an
    /// unknown key id at most every 30 s).
    #[arg(long, env = "BIZOS_JWT_JWKS_URL", value_parser = var(http_url))]
    pub jwt_jwks_url: Option<String>,
    /// Required `iss` of tokens, when set.
    #[arg(long, env = "BIZOS_JWT_ISSUER", value_parser = var(text))]
    pub jwt_issuer: Option<String>,
    /// Required `aud` of tokens, when set.
    #[arg(long, env = "BIZOS_JWT_AUDIENCE", value_parser = var(text))]
    pub jwt_audience: Option<String>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds.
    #[arg(long, env = "BIZOS_JWT_LEEWAY_SECS", default_value = "30", value_parser = var(seconds))]
    pub jwt_leeway_secs: Duration,
}

#[derive(Debug, Clone)]
pub struct JwtSettings {
    /// HS256 shared secret (at least 32 bytes).
    pub hs256_secret: Option<SecretString>,
    /// JWKS endpoint of an OIDC provider for RS256 tokens.
    pub jwks_url: Option<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub leeway: Duration,
}

impl JwtArgs {
    /// The settings; one of the two kinds of key is required.
    pub fn settings(self) -> Result<JwtSettings, ConfigError> {
        if self.jwt_secret.is_none() && self.jwt_jwks_url.is_none() {
            return Err(ConfigError::Missing {
                var: "BIZOS_JWT_SECRET",
                why: "set BIZOS_JWT_SECRET (HS256) or BIZOS_JWT_JWKS_URL (RS256), or both",
            });
        }
        Ok(JwtSettings {
            hs256_secret: self.jwt_secret,
            jwks_url: self.jwt_jwks_url,
            issuer: self.jwt_issuer,
            audience: self.jwt_audience,
            leeway: self.jwt_leeway_secs,
        })
    }
}

/// The value is never repeated in the message.
fn hs256_secret(v: &str) -> Result<SecretString, String> {
    if v.len() < MIN_HS256_SECRET_BYTES {
        return Err(format!("must be at least {MIN_HS256_SECRET_BYTES} bytes"));
    }
    Ok(SecretString::from(v))
}

/// A verified token's claim set.
pub type Claims = Map<String, Value>;

/// Why a request's bearer token was refused (401; 503 when the signing
/// keys cannot be fetched).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("malformed token")]
    Malformed,
    #[error("token signed with an algorithm this server does not accept")]
    Algorithm,
    #[error("unknown signing key")]
    UnknownKey,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("token lacks claim {0}")]
    Claim(&'static str),
    #[error("signing keys are unavailable")]
    KeysUnavailable,
}

/// `iat` is optional, but a token issued later than now (beyond the leeway)
/// is refused, as is an `iat` that is not a number of seconds.
fn check_issued_at(claims: &Map<String, Value>, leeway: u64) -> Result<(), AuthError> {
    let Some(iat) = claims.get("iat") else {
        return Ok(());
    };
    let iat = iat
        .as_f64()
        .ok_or_else(|| AuthError::Invalid("iat is not a number".into()))?;
    let now = chrono::Utc::now().timestamp() as f64;
    if iat > now + leeway as f64 {
        return Err(AuthError::Invalid("issued in the future".into()));
    }
    Ok(())
}

/// Keys of an OIDC provider, fetched lazily and refreshed when a token names
/// a key id we do not know (key rotation), at most once per `min_refresh`.
struct JwksCache {
    url: String,
    http: reqwest::Client,
    keys: RwLock<Option<(JwkSet, Instant)>>,
    min_refresh: Duration,
    max_age: Duration,
}

impl JwksCache {
    async fn key(&self, kid: Option<&str>) -> Result<DecodingKey, AuthError> {
        {
            let guard = self.keys.read().await;
            if let Some((set, fetched)) = guard.as_ref() {
                if fetched.elapsed() < self.max_age {
                    if let Some(k) = find_key(set, kid) {
                        return k;
                    }
                    if fetched.elapsed() < self.min_refresh {
                        return Err(AuthError::UnknownKey);
                    }
                }
            }
        }
        let mut guard = self.keys.write().await;
        // Another request may have refreshed while we waited for the lock.
        let fresh = guard
            .as_ref()
            .is_some_and(|(_, t)| t.elapsed() < self.min_refresh);
        if !fresh {
            let set = self.fetch().await?;
            *guard = Some((set, Instant::now()));
        }
        let (set, _) = guard.as_ref().ok_or(AuthError::KeysUnavailable)?;
        find_key(set, kid).unwrap_or(Err(AuthError::UnknownKey))
    }

    async fn fetch(&self) -> Result<JwkSet, AuthError> {
        let response = self.http.get(&self.url).send().await.map_err(|e| {
            tracing::warn!(error = %e, "cannot fetch JWKS");
            AuthError::KeysUnavailable
        })?;
        if !response.status().is_success() {
            tracing::warn!(status = %response.status(), "JWKS endpoint failed");
            return Err(AuthError::KeysUnavailable);
        }
        response.json::<JwkSet>().await.map_err(|e| {
            tracing::warn!(error = %e, "JWKS is not a key set");
            AuthError::KeysUnavailable
        })
    }
}

fn find_key(set: &JwkSet, kid: Option<&str>) -> Option<Result<DecodingKey, AuthError>> {
    let jwk = match kid {
        Some(kid) => set.find(kid)?,
        None if set.keys.len() == 1 => &set.keys[0],
        None => return None,
    };
    Some(DecodingKey::from_jwk(jwk).map_err(|_| AuthError::UnknownKey))
}

pub struct JwtVerifier {
    hs256: Option<DecodingKey>,
    jwks: Option<JwksCache>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway: u64,
}

impl JwtVerifier {
    pub fn new(settings: &JwtSettings) -> anyhow::Result<Self> {
        let jwks = match &settings.jwks_url {
            Some(url) => Some(JwksCache {
                url: url.clone(),
                http: reqwest::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .build()?,
                keys: RwLock::new(None),
                min_refresh: Duration::from_secs(30),
                max_age: Duration::from_secs(3600),
            }),
            None => None,
        };
        Ok(JwtVerifier {
            hs256: settings
                .hs256_secret
                .as_ref()
                .map(|s| DecodingKey::from_secret(s.expose_secret().as_bytes())),
            jwks,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            leeway: settings.leeway.as_secs(),
        })
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = self.leeway;
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp", "sub"]);
        match &self.issuer {
            Some(iss) => v.set_issuer(&[iss]),
            None => v.iss = None,
        }
        match &self.audience {
            Some(aud) => v.set_audience(&[aud]),
            None => v.validate_aud = false,
        }
        v
    }

    /// Checks the token's signature and registered claims; returns its
    /// claim set.
    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        let key = match header.alg {
            Algorithm::HS256 => self.hs256.clone().ok_or(AuthError::Algorithm)?,
            Algorithm::RS256 => match &self.jwks {
                Some(jwks) => jwks.key(header.kid.as_deref()).await?,
                None => return Err(AuthError::Algorithm),
            },
            _ => return Err(AuthError::Algorithm),
        };
        let data = jsonwebtoken::decode::<Claims>(token, &key, &self.validation(header.alg))
            .map_err(|e| AuthError::Invalid(describe(&e)))?;
        check_issued_at(&data.claims, self.leeway)?;
        Ok(data.claims)
    }
}

fn describe(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::ExpiredSignature => "expired".into(),
        K::ImmatureSignature => "not valid yet".into(),
        K::InvalidSignature => "bad signature".into(),
        K::InvalidIssuer => "wrong issuer".into(),
        K::InvalidAudience => "wrong audience".into(),
        K::MissingRequiredClaim(c) => format!("missing claim {c}"),
        K::InvalidClaimFormat(c) => format!("{c} is not a number"),
        _ => "cannot be decoded".into(),
    }
}

/// Signs an HS256 token for a user of a tenant (`bizos token`, tests). The
/// `app_role` claim is informational: the database uses the profile's.
pub fn issue_token(
    secret: &[u8],
    tenant_id: Uuid,
    user_id: Uuid,
    app_role: Option<&str>,
    ttl: Duration,
) -> anyhow::Result<String> {
    let now = chrono::Utc::now().timestamp();
    let mut claims = serde_json::json!({
        "sub": user_id,
        "tenant_id": tenant_id,
        "iat": now,
        "exp": now + i64::try_from(ttl.as_secs())?,
    });
    if let Some(role) = app_role {
        claims["app_role"] = role.into();
    }
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )?)
}

/// A verifier of HS256 tokens signed with `secret`, with no issuer,
/// audience or leeway: what the unit tests of tokens and callers check
/// against.
#[cfg(test)]
pub(crate) fn hs256_verifier(secret: &str) -> JwtVerifier {
    JwtVerifier::new(&JwtSettings {
        hs256_secret: Some(SecretString::from(secret)),
        jwks_url: None,
        issuer: None,
        audience: None,
        leeway: Duration::from_secs(0),
    })
    .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier() -> JwtVerifier {
        hs256_verifier("0123456789abcdef0123456789abcdef")
    }

    #[tokio::test]
    async fn round_trip() {
        let (t, u) = (Uuid::new_v4(), Uuid::new_v4());
        let token = issue_token(SECRET, t, u, Some("ops"), Duration::from_secs(60)).unwrap();
        let claims = verifier().verify(&token).await.unwrap();
        assert_eq!(claims["sub"], u.to_string());
        assert_eq!(claims["tenant_id"], t.to_string());
        assert_eq!(claims["app_role"], "ops");
        let token = issue_token(SECRET, t, u, None, Duration::from_secs(60)).unwrap();
        let claims = verifier().verify(&token).await.unwrap();
        assert!(!claims.contains_key("app_role"));
    }

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn sign(claims: Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn not_before_and_issued_at_are_checked() {
        let now = chrono::Utc::now().timestamp();
        let claims = |extra: Value| {
            let mut c = serde_json::json!({"sub": Uuid::new_v4(), "tenant_id": Uuid::new_v4(), "exp": now + 600});
            c.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            c
        };
        let v = verifier();
        assert_eq!(
            v.verify(&sign(claims(serde_json::json!({"nbf": now + 120}))))
                .await
                .unwrap_err(),
            AuthError::Invalid("not valid yet".into())
        );
        assert_eq!(
            v.verify(&sign(claims(serde_json::json!({"iat": now + 120}))))
                .await
                .unwrap_err(),
            AuthError::Invalid("issued in the future".into())
        );
        assert_eq!(
            v.verify(&sign(claims(serde_json::json!({"iat": "yesterday"}))))
                .await
                .unwrap_err(),
            AuthError::Invalid("iat is not a number".into())
        );
        assert_eq!(
            v.verify(&sign(claims(serde_json::json!({"nbf": "now"}))))
                .await
                .unwrap_err(),
            AuthError::Invalid("nbf is not a number".into())
        );
        v.verify(&sign(claims(
            serde_json::json!({"nbf": now - 5, "iat": now - 5}),
        )))
        .await
        .unwrap();
        // Within the leeway, a clock a little ahead is tolerated.
        let lenient = JwtVerifier::new(&JwtSettings {
            hs256_secret: Some(SecretString::from("0123456789abcdef0123456789abcdef")),
            jwks_url: None,
            issuer: None,
            audience: None,
            leeway: Duration::from_secs(30),
        })
        .unwrap();
        lenient
            .verify(&sign(claims(
                serde_json::json!({"nbf": now + 10, "iat": now + 10}),
            )))
            .await
            .unwrap();
        assert_eq!(
            lenient
                .verify(&sign(claims(serde_json::json!({"iat": now + 60}))))
                .await
                .unwrap_err(),
            AuthError::Invalid("issued in the future".into())
        );
    }

    #[tokio::test]
    async fn rejects_bad_tokens() {
        let v = verifier();
        let (t, u) = (Uuid::new_v4(), Uuid::new_v4());
        let other = issue_token(
            b"another-secret-another-secret-!!",
            t,
            u,
            Some("ops"),
            Duration::from_secs(60),
        )
        .unwrap();
        assert_eq!(
            v.verify(&other).await.unwrap_err(),
            AuthError::Invalid("bad signature".into())
        );
        assert_eq!(v.verify("garbage").await.unwrap_err(), AuthError::Malformed);
        let no_sub =
            sign(serde_json::json!({"tenant_id": t, "exp": chrono::Utc::now().timestamp() + 60}));
        assert_eq!(
            v.verify(&no_sub).await.unwrap_err(),
            AuthError::Invalid("missing claim sub".into())
        );
        // RS256 is refused when no JWKS is configured. The header segment
        // is base64url of {"alg":"RS256","typ":"JWT"}.
        let forged = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.e30.c2ln";
        assert_eq!(v.verify(forged).await.unwrap_err(), AuthError::Algorithm);
    }

    #[tokio::test]
    async fn expired_tokens_are_refused() {
        let now = chrono::Utc::now().timestamp();
        let claims = serde_json::json!({"sub": Uuid::new_v4(), "tenant_id": Uuid::new_v4(), "app_role": "ops", "exp": now - 10});
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
        )
        .unwrap();
        assert_eq!(
            verifier().verify(&token).await.unwrap_err(),
            AuthError::Invalid("expired".into())
        );
    }
}
