//! Who is calling: the [`Caller`] extractor reads the bearer token, has the
//! application's [`JwtVerifier`] (reached through `FromRef`, so this module
//! knows nothing of the application state) check it, and builds the caller
//! from its claims. The verified claim set is what the database sees.
//!
//! A token identifies a user (`sub`) of a tenant (`tenant_id`); the database
//! decides the rest from the user's profile (`authenticate_request()`,
//! migration V13): an `app_role` claim is optional and, when present,
//! replaced by the profile's role.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::api_keys::KeyAuth;
use crate::error::ApiError;
pub use crate::jwt::{issue_token, AuthError, JwtVerifier};

/// A verified caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    /// The whole verified claim set, handed to the database as JSON (which
    /// replaces `app_role` with the profile's).
    pub claims: Value,
    /// The `x-request-id` of the request this caller came with; the
    /// database gets it as `request.id` (also in background work the
    /// request started).
    pub request_id: Option<String>,
    /// The router to the tenant's placement (the BFF's callers); None:
    /// the transaction runs on the pool it is given (jobs, tests).
    pub placement: Option<crate::placement::Router>,
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::KeysUnavailable => {
                ApiError::Unavailable("cannot verify tokens right now; retry shortly".into())
            }
            other => ApiError::Unauthorized(other.to_string()),
        }
    }
}

/// Builds a caller from verified claims: `sub` and `tenant_id` are UUIDs.
/// Any `app_role` claim is left to the database, which ignores it. A
/// `principal` claim is dropped: only the BFF says a caller is an API key
/// (and the database refuses a key's principal without it).
pub fn caller_from_claims(mut claims: Map<String, Value>) -> Result<Caller, AuthError> {
    claims.remove("principal");
    let uuid = |k: &'static str| {
        claims
            .get(k)
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or(AuthError::Claim(k))
    };
    let user_id = uuid("sub")?;
    let tenant_id = uuid("tenant_id")?;
    Ok(Caller {
        user_id,
        tenant_id,
        claims: Value::Object(claims),
        request_id: None,
        placement: None,
    })
}

impl Caller {
    /// The caller a bearer token identifies.
    pub async fn from_token(verifier: &JwtVerifier, token: &str) -> Result<Caller, AuthError> {
        caller_from_claims(verifier.verify(token).await?)
    }
}

fn bearer(parts: &Parts) -> Result<&str, AuthError> {
    let value = parts.headers.get(AUTHORIZATION).ok_or(AuthError::Missing)?;
    let value = value.to_str().map_err(|_| AuthError::Malformed)?;
    let (scheme, token) = value.split_once(' ').ok_or(AuthError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AuthError::Malformed);
    }
    Ok(token.trim())
}

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    Verifier: FromRef<S>,
    KeyAuth: FromRef<S>,
    crate::placement::Router: FromRef<S>,
{
    type Rejection = ApiError;

    /// A user's token (a JWT), or on /api/v1 an API key (`bz_live_…`),
    /// whose caller is the key's principal (see [`crate::api_keys`]).
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        let mut caller = if crate::api_keys::is_api_key(token) {
            let (tenant_id, user_id, claims) =
                KeyAuth::from_ref(state).claims(parts, token).await?;
            Caller {
                user_id,
                tenant_id,
                claims,
                request_id: None,
                placement: None,
            }
        } else {
            let verifier = Verifier::from_ref(state);
            Caller::from_token(&verifier, token).await?
        };
        caller.placement = Some(crate::placement::Router::from_ref(state));
        caller.request_id = parts
            .extensions
            .get::<tower_http::request_id::RequestId>()
            .and_then(|id| id.header_value().to_str().ok())
            .map(str::to_owned);
        tracing::Span::current().record("user_id", tracing::field::display(caller.user_id));
        tracing::Span::current().record("tenant_id", tracing::field::display(caller.tenant_id));
        Ok(caller)
    }
}

/// Shared verifier handle.
pub type Verifier = Arc<JwtVerifier>;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn verifier() -> JwtVerifier {
        crate::jwt::hs256_verifier(SECRET)
    }

    #[tokio::test]
    async fn a_token_identifies_a_caller() {
        let (t, u) = (Uuid::new_v4(), Uuid::new_v4());
        let token = issue_token(
            SECRET.as_bytes(),
            t,
            u,
            Some("ops"),
            Duration::from_secs(60),
        )
        .unwrap();
        let caller = Caller::from_token(&verifier(), &token).await.unwrap();
        assert_eq!((caller.tenant_id, caller.user_id), (t, u));
        assert_eq!(caller.claims["app_role"], "ops");
        // No app_role claim (an OIDC token), or one the schema does not
        // know: the token still identifies the user; the database decides
        // the role from the profile.
        for role in [None, Some("root")] {
            let token =
                issue_token(SECRET.as_bytes(), t, u, role, Duration::from_secs(60)).unwrap();
            let caller = Caller::from_token(&verifier(), &token).await.unwrap();
            assert_eq!((caller.tenant_id, caller.user_id), (t, u));
        }
    }

    #[test]
    fn claims_must_name_a_user_and_a_tenant() {
        let claims = |v: Value| match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        let u = Uuid::new_v4();
        assert_eq!(
            caller_from_claims(claims(serde_json::json!({"sub": u}))).unwrap_err(),
            AuthError::Claim("tenant_id")
        );
        assert_eq!(
            caller_from_claims(claims(serde_json::json!({"sub": "me", "tenant_id": u})))
                .unwrap_err(),
            AuthError::Claim("sub")
        );
    }
}
