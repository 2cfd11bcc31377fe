//! Self-service sign-up, the first-party login and invitations by link
//! (docs/signup.md; the rules are `sql/api/signup.sql`'s, the routes
//! [`crate::routes::signup`]). This module holds what the database cannot:
//! the settings, the password hashes (argon2id, which PostgreSQL does not
//! have) and the subject of an OIDC caller.

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;
use clap::Args;
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::error::ApiError;
use crate::jwt::JwtVerifier;
use crate::vars::{http_url, positive, positive_seconds, text, var, ConfigError};

/// The variables of sign-up and the login (`bizos serve`).
#[derive(Args, Debug, Clone)]
pub struct SignupArgs {
    /// The web app's address the e-mailed links open
    /// (`<url>/signup/verify?token=…`, `<url>/invitations/accept?token=…`;
    /// the page posts the token to the API). Unset: sign-up and
    /// invitations by link answer 404.
    #[arg(long, env = "BIZOS_PUBLIC_URL", value_parser = var(http_url))]
    pub public_url: Option<String>,
    /// The plan a signed-up tenant starts on (a row of `plans`).
    #[arg(long, env = "BIZOS_SIGNUP_PLAN", default_value = "trial", value_parser = var(text))]
    pub signup_plan: String,
    /// Sign-up attempts per client address per hour (shared by every BFF
    /// process: counted in the database).
    #[arg(long, env = "BIZOS_SIGNUP_PER_ADDRESS_PER_HOUR", default_value = "20", value_parser = var(positive::<i32>))]
    pub signup_per_address_per_hour: i32,
    /// Sign-up attempts per e-mail address per hour.
    #[arg(long, env = "BIZOS_SIGNUP_PER_EMAIL_PER_HOUR", default_value = "5", value_parser = var(positive::<i32>))]
    pub signup_per_email_per_hour: i32,
    /// Login attempts per client address per hour.
    #[arg(long, env = "BIZOS_LOGIN_PER_ADDRESS_PER_HOUR", default_value = "300", value_parser = var(positive::<i32>))]
    pub login_per_address_per_hour: i32,
    /// Lifetime of a token of the first-party login, in seconds.
    #[arg(long, env = "BIZOS_LOGIN_TOKEN_SECS", default_value = "3600", value_parser = var(positive_seconds))]
    pub login_token_secs: Duration,
}

/// Sign-up and login settings; the HS256 secret is the one tokens are
/// verified with (the login mints only when it is set).
#[derive(Clone)]
pub struct SignupSettings {
    pub public_url: Option<String>,
    pub plan: String,
    pub per_address: i32,
    pub per_email: i32,
    pub login_per_address: i32,
    pub token_ttl: Duration,
    pub hs256_secret: Option<SecretString>,
}

impl std::fmt::Debug for SignupSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignupSettings")
            .field("public_url", &self.public_url)
            .field("plan", &self.plan)
            .finish_non_exhaustive()
    }
}

impl SignupArgs {
    pub fn settings(
        self,
        hs256_secret: Option<SecretString>,
    ) -> Result<SignupSettings, ConfigError> {
        let plan = self.signup_plan.trim().to_owned();
        if plan.is_empty() {
            return Err(ConfigError::Invalid(
                "BIZOS_SIGNUP_PLAN is invalid: must name a plan".into(),
            ));
        }
        Ok(SignupSettings {
            public_url: self.public_url.map(|u| u.trim_end_matches('/').to_owned()),
            plan,
            per_address: self.signup_per_address_per_hour,
            per_email: self.signup_per_email_per_hour,
            login_per_address: self.login_per_address_per_hour,
            token_ttl: self.login_token_secs,
            hs256_secret,
        })
    }
}

pub type Signup = Arc<SignupSettings>;

impl SignupSettings {
    /// The page a link of `path` opens, or 404 when sign-up is off.
    pub fn link_base(&self, path: &str) -> Result<String, ApiError> {
        match &self.public_url {
            Some(url) => Ok(format!("{url}{path}")),
            None => Err(ApiError::NotFound(
                "sign-up and invitations by link are not enabled on this server (BIZOS_PUBLIC_URL)"
                    .into(),
            )),
        }
    }

    /// A token of the first-party login for a user of a tenant: the HS256
    /// tokens the BFF verifies.
    pub fn mint(&self, tenant: Uuid, user: Uuid) -> Result<String, ApiError> {
        let secret = self.hs256_secret.as_ref().ok_or_else(login_off)?;
        crate::jwt::issue_token(
            secret.expose_secret().as_bytes(),
            tenant,
            user,
            None,
            self.token_ttl,
        )
        .map_err(ApiError::Internal)
    }
}

/// The login is the HS256 issuer: without BIZOS_JWT_SECRET there is none.
pub fn login_off() -> ApiError {
    ApiError::NotFound(
        "the first-party login is not enabled on this server (it needs BIZOS_JWT_SECRET); sign in with your identity provider".into(),
    )
}

/// Passwords: 10 to 200 characters.
pub fn check_password(password: &str) -> Result<(), ApiError> {
    let n = password.chars().count();
    if !(10..=200).contains(&n) {
        return Err(ApiError::Unprocessable {
            message: "password: must be 10 to 200 characters".into(),
            field: Some("password".into()),
        });
    }
    Ok(())
}

/// The argon2id hash (PHC string) of a password, off the async threads.
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("password hash: {e}")))
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?
}

/// A hash of no password anyone knows: an unknown address is checked
/// against it, so that it costs the same time as a known one.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(Uuid::new_v4().as_bytes(), &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// Whether `password` matches `hash` (None: the decoy, always false),
/// off the async threads.
pub async fn verify_password(password: String, hash: Option<String>) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| decoy_hash().to_owned());
        let ok = PasswordHash::new(&hash)
            .map(|h| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false);
        known && ok
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))
}

/// The subject of the request's bearer token, if it has one: how an OIDC
/// identity is linked at verification and acceptance (its `sub` becomes
/// the login's id, so the user id of the profile). Any token the server
/// accepts will do; it need not carry a `tenant_id` yet.
pub async fn bearer_subject(
    verifier: &JwtVerifier,
    headers: &HeaderMap,
) -> Result<Option<Uuid>, ApiError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, t)| scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty())
        .map(|(_, t)| t.trim())
        .ok_or_else(|| ApiError::Unauthorized("malformed token".into()))?;
    let claims = verifier.verify(token).await?;
    claims
        .get("sub")
        .and_then(|s| s.as_str())
        .and_then(|s| Uuid::parse_str(s).ok())
        .map(Some)
        .ok_or_else(|| ApiError::Unauthorized("token lacks claim sub (a UUID)".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_password_verifies_against_its_hash_only() {
        let hash = hash_password("correct horse battery".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(
            verify_password("correct horse battery".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(!verify_password("wrong horse battery".into(), Some(hash))
            .await
            .unwrap());
        // No login: the decoy is checked, and nothing matches.
        assert!(!verify_password("correct horse battery".into(), None)
            .await
            .unwrap());
    }

    #[test]
    fn passwords_have_a_length() {
        assert!(check_password("short").is_err());
        assert!(check_password("long enough now").is_ok());
        assert!(check_password(&"x".repeat(201)).is_err());
    }
}
