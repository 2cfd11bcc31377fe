//! Self-service sign-up, the first-party login, invitations by link and the
//! organisation (docs/signup.md). The rules are the database's
//! (`sql/api/signup.sql`): throttling, single-use expiring links, the
//! tenant and its first super admin, the invitation's role. Here: the
//! client address, the password hashes, the OIDC subject of a caller who
//! already has a token, and the minting of the login's tokens.
//!
//! Public routes (no token): `POST /api/signup`, `POST /api/signup/verify`,
//! `POST /api/login`, `POST /api/invitations/accept`. They run the
//! database's SECURITY DEFINER functions on the BFF's own pool, in the
//! control database.

use std::net::IpAddr;

use axum::extract::State;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::openapi::ErrorResponse;
use super::route::{read_route, rpc_route};
use super::shapes::shapes;
use super::write::{Args, Call, Writer};
use crate::error::{ApiError, Result};
use crate::extract::Json;
use crate::payload::{blank_is_none, AppRole, Change, DeptCode, Id, NonBlank, Patch};
use crate::signup::{bearer_subject, check_password, hash_password, login_off, verify_password};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sign_up))
        .routes(routes!(verify_sign_up))
        .routes(routes!(log_in))
        .routes(routes!(invite))
        .routes(routes!(accept_invitation))
        .routes(routes!(get_organisation, update_organisation))
}

// ------------------------------------------------------------------ requests

/// A company signs up.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignUp {
    /// The address the confirmation link goes to; it becomes the login of
    /// the organisation's first super admin.
    email: NonBlank<254>,
    /// The organisation's name.
    company_name: NonBlank<200>,
    /// The person's name.
    full_name: NonBlank<200>,
}

/// The link's token, and the password of a new login.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkUse {
    /// The `token` of the link's query.
    token: NonBlank<200>,
    /// 10 to 200 characters: required when the address has no login yet
    /// and the request carries no token of an identity provider; ignored
    /// when the login has a password already.
    #[serde(default)]
    password: Option<String>,
}

/// E-mail and password of the first-party login.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogIn {
    email: NonBlank<254>,
    password: String,
    /// The organisation to sign in to, when the login belongs to several.
    #[serde(default)]
    tenant_id: Option<Uuid>,
}

/// An invitation by link (`profile.manage`).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvitationCreate {
    /// Where the link goes; no user of the tenant may have it already.
    email: NonBlank<254>,
    full_name: NonBlank<200>,
    /// The role the person gets; only a super admin invites a super_admin.
    app_role: AppRole,
    /// Required for ops.
    #[serde(
        default,
        deserialize_with = "blank_is_none",
        skip_serializing_if = "Option::is_none"
    )]
    dept_code: Option<DeptCode>,
    /// An active user of the tenant.
    #[serde(
        default,
        deserialize_with = "blank_is_none",
        skip_serializing_if = "Option::is_none"
    )]
    manager_user_id: Option<Id>,
}

/// The organisation's settings: only the keys sent change (at least one).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganisationPatch {
    #[serde(default, skip_serializing_if = "Change::is_absent")]
    #[schema(value_type = NonBlank<200>)]
    name: Change<NonBlank<200>>,
    /// An IANA time zone: the tenant's days, ages and periods are cut in
    /// it from now on; schedules keep their wall time.
    #[serde(default, skip_serializing_if = "Change::is_absent")]
    #[schema(value_type = NonBlank<100>)]
    time_zone: Change<NonBlank<100>>,
    /// id or en: the language of the texts bizos writes for the tenant.
    #[serde(default, skip_serializing_if = "Change::is_absent")]
    #[schema(value_type = NonBlank<10>)]
    locale: Change<NonBlank<10>>,
    /// An https URL; null removes the logo.
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    #[schema(value_type = Option<NonBlank<2000>>)]
    logo_url: Patch<NonBlank<2000>>,
    /// ISO 4217 (IDR, USD, …).
    #[serde(default, skip_serializing_if = "Change::is_absent")]
    #[schema(value_type = NonBlank<3>)]
    default_currency: Change<NonBlank<3>>,
}

// ------------------------------------------------------------------ responses

/// The same answer for every accepted sign-up, whether the address has a
/// login or not.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignUpAccepted {
    /// Always `check_your_email`.
    status: &'static str,
    message: &'static str,
}

shapes! {
    /// The organisation made by a confirmed sign-up.
    pub struct SignUpVerified {
        tenant_id: Uuid,
        /// The login's id: the `sub` of its tokens, the user_id of its
        /// profiles.
        user_id: Uuid,
        email: String,
        plan_code: String,
    }

    /// An accepted invitation: the person's profile in the tenant.
    pub struct InvitationAccepted {
        tenant_id: Uuid,
        user_id: Uuid,
        email: String,
        app_role: AppRole,
    }

    /// A pending invitation (its link is only in the e-mail).
    pub struct Invitation {
        invitation_id: Uuid,
        tenant_id: Uuid,
        email: String,
        full_name: String,
        app_role: AppRole,
        dept_code: Option<String>,
        manager_user_id: Option<Uuid>,
        expires_at: DateTime<Utc>,
        accepted_at: Option<DateTime<Utc>>,
        accepted_user_id: Option<Uuid>,
        revoked_at: Option<DateTime<Utc>>,
        created_by: Option<Uuid>,
        created_at: DateTime<Utc>,
        /// The invitation e-mail in the outbox.
        invitation_email_id: Uuid,
    }

    /// The caller's organisation.
    pub struct Organisation {
        tenant_id: Uuid,
        slug: String,
        name: String,
        time_zone: String,
        locale: String,
        logo_url: Option<String>,
        default_currency: String,
        plan_code: Option<String>,
        status: String,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
    }
}

/// An organisation the login belongs to.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Membership {
    tenant_id: Uuid,
    name: String,
    app_role: String,
}

/// A token of the first-party login (HS256), or, when the login belongs to
/// several organisations and none was named, the list to choose from.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoggedIn {
    /// Bearer token for `tenant_id`; null when a tenant_id must be chosen.
    token: Option<String>,
    token_type: &'static str,
    /// Seconds the token is valid.
    expires_in: u64,
    tenant_id: Option<Uuid>,
    user_id: Uuid,
    tenants: Vec<Membership>,
}

// ------------------------------------------------------------------ helpers

/// The client address the throttle counts (behind trusted proxies, the
/// one they saw).
fn client(state: &AppState, parts: &Parts) -> Option<IpAddr> {
    state.trusted_proxies.client(parts)
}

/// The password's hash when one was given (checked first).
async fn password_hash(password: Option<String>) -> Result<Option<String>> {
    match password {
        Some(p) => {
            check_password(&p)?;
            Ok(Some(hash_password(p).await?))
        }
        None => Ok(None),
    }
}

// ------------------------------------------------------------------ sign-up

#[utoipa::path(post, path = "/api/signup", tag = "signup", request_body = SignUp,
    responses((status = 202, description = "a confirmation link is on its way (the same answer whether the address has a login or not)", body = SignUpAccepted),
              (status = 404, description = "sign-up is not enabled (BIZOS_PUBLIC_URL)", body = ErrorResponse),
              (status = 422, description = "a field is invalid", body = ErrorResponse),
              (status = 429, description = "too many attempts from this address or for this e-mail address (Retry-After)", body = ErrorResponse)))]
#[tracing::instrument(skip_all)]
async fn sign_up(
    State(state): State<AppState>,
    parts: Parts,
    Json(body): Json<SignUp>,
) -> Result<Response> {
    let link = state.signup.link_base("/signup/verify")?;
    let addr = client(&state, &parts).map(|a| a.to_string());
    sqlx::query("select signup_request($1, $2, $3, $4::inet, $5, $6, interval '24 hours', $7, $8)")
        .bind(body.email.0.trim())
        .bind(&body.company_name.0)
        .bind(&body.full_name.0)
        .bind(addr)
        .bind(&link)
        .bind(&state.signup.plan)
        .bind(state.signup.per_address)
        .bind(state.signup.per_email)
        .execute(&state.pool)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(SignUpAccepted {
            status: "check_your_email",
            message: "If this address can receive e-mail, a confirmation link is on its way.",
        }),
    )
        .into_response())
}

#[utoipa::path(post, path = "/api/signup/verify", tag = "signup", request_body = LinkUse,
    security((), ("bearer" = [])),
    responses((status = 201, description = "the organisation (trial plan, shared tier) and its first super admin; with a bearer token of an identity provider its `sub` is the login", body = SignUpVerified),
              (status = 401, description = "the bearer token given is not valid", body = ErrorResponse),
              (status = 409, description = "the address belongs to another identity", body = ErrorResponse),
              (status = 422, description = "the link is unknown, used or expired (field token), or a password is needed (field password)", body = ErrorResponse)))]
#[tracing::instrument(skip_all)]
async fn verify_sign_up(
    State(state): State<AppState>,
    parts: Parts,
    Json(body): Json<LinkUse>,
) -> Result<Response> {
    let subject = bearer_subject(&state.verifier, &parts.headers).await?;
    let hash = password_hash(body.password).await?;
    let made: Value = sqlx::query_scalar("select signup_verify($1, $2, $3, $4)")
        .bind(&body.token.0)
        .bind(subject)
        .bind(hash)
        .bind(&state.signup.plan)
        .fetch_one(&state.pool)
        .await?;
    Ok((StatusCode::CREATED, Json(made)).into_response())
}

// ------------------------------------------------------------------ login

#[utoipa::path(post, path = "/api/login", tag = "signup", request_body = LogIn,
    responses((status = 200, description = "a bearer token (HS256) for the organisation, or the organisations to choose from", body = LoggedIn),
              (status = 401, description = "wrong e-mail or password (the same answer for an unknown address)", body = ErrorResponse),
              (status = 403, description = "the login belongs to no active organisation, or not to tenant_id", body = ErrorResponse),
              (status = 404, description = "no first-party login on this server (BIZOS_JWT_SECRET unset)", body = ErrorResponse),
              (status = 429, description = "too many attempts from this address (Retry-After)", body = ErrorResponse)))]
#[tracing::instrument(skip_all)]
async fn log_in(
    State(state): State<AppState>,
    parts: Parts,
    Json(body): Json<LogIn>,
) -> Result<Json<LoggedIn>> {
    if state.signup.hs256_secret.is_none() {
        return Err(login_off());
    }
    let addr = client(&state, &parts)
        .map(|a| a.to_string())
        .unwrap_or_else(|| "unknown".into());
    sqlx::query("select signup_throttle_take($1, $2)")
        .bind(format!("login:{addr}"))
        .bind(state.signup.login_per_address)
        .execute(&state.pool)
        .await?;
    let found: Option<Value> = sqlx::query_scalar("select login_lookup($1)")
        .bind(body.email.0.trim())
        .fetch_one(&state.pool)
        .await?;
    let hash = found
        .as_ref()
        .and_then(|f| f["password_hash"].as_str())
        .map(str::to_owned);
    // An unknown address is checked against a decoy hash: the same work,
    // the same answer.
    if !verify_password(body.password, hash).await? {
        return Err(ApiError::Unauthorized("wrong e-mail or password".into()));
    }
    let found = found.unwrap_or_default();
    let user_id: Uuid = serde_json::from_value(found["identity_id"].clone())
        .map_err(|e| ApiError::Internal(e.into()))?;
    let tenants: Vec<Membership> = serde_json::from_value(found["tenants"].clone())
        .map_err(|e| ApiError::Internal(e.into()))?;
    let chosen = match (body.tenant_id, tenants.as_slice()) {
        (Some(t), _) if tenants.iter().any(|m| m.tenant_id == t) => Some(t),
        (Some(_), _) => {
            return Err(ApiError::Refused {
                code: "no_profile",
                message: "tenant_id: this login has no active profile in that organisation".into(),
            })
        }
        (None, []) => {
            return Err(ApiError::Refused {
                code: "no_profile",
                message: "this login belongs to no active organisation".into(),
            })
        }
        (None, [only]) => Some(only.tenant_id),
        (None, _) => None,
    };
    let token = match chosen {
        Some(t) => Some(state.signup.mint(t, user_id)?),
        None => None,
    };
    Ok(Json(LoggedIn {
        token,
        token_type: "Bearer",
        expires_in: state.signup.token_ttl.as_secs(),
        tenant_id: chosen,
        user_id,
        tenants,
    }))
}

// ------------------------------------------------------------------ invitations

#[utoipa::path(post, path = "/api/invitations", tag = "signup", request_body = InvitationCreate,
    params(crate::idempotency::IdempotencyKey),
    responses((status = 201, description = "the invitation, and its e-mail with the single-use link queued in the same transaction", body = Invitation),
              (status = 403, description = "the profile.manage permission is missing (or a super_admin invited by someone who is not one)", body = ErrorResponse),
              (status = 404, description = "invitations by link are not enabled (BIZOS_PUBLIC_URL)", body = ErrorResponse),
              (status = 409, description = "a user with this address exists in the tenant", body = ErrorResponse),
              (status = 422, description = "a field is invalid: the address, the manager, a department for ops", body = ErrorResponse)))]
async fn invite(
    State(state): State<AppState>,
    write: Writer,
    Json(body): Json<InvitationCreate>,
) -> Result<Response> {
    let link = state.signup.link_base("/invitations/accept")?;
    let mut args = super::write::body(&body)?;
    args["link_base"] = json!(link);
    let call = Call::post(
        "select invitation_create($1 - 'link_base', $1 ->> 'link_base')",
        Args::Body(args),
    )
    .created();
    write.rpc(call).await
}

#[utoipa::path(post, path = "/api/invitations/accept", tag = "signup", request_body = LinkUse,
    security((), ("bearer" = [])),
    responses((status = 201, description = "the person's profile in the tenant with the invitation's role; with a bearer token of an identity provider its `sub` is the login", body = InvitationAccepted),
              (status = 401, description = "the bearer token given is not valid", body = ErrorResponse),
              (status = 402, description = "every active user the tenant's plan includes is taken (field included_seats; code plan_limit_reached)", body = ErrorResponse),
              (status = 403, description = "the organisation is suspended", body = ErrorResponse),
              (status = 409, description = "the address belongs to another identity, or is a user of the tenant already", body = ErrorResponse),
              (status = 422, description = "the link is unknown, withdrawn, used or expired (field token), or a password is needed (field password)", body = ErrorResponse)))]
#[tracing::instrument(skip_all)]
async fn accept_invitation(
    State(state): State<AppState>,
    parts: Parts,
    Json(body): Json<LinkUse>,
) -> Result<Response> {
    let subject = bearer_subject(&state.verifier, &parts.headers).await?;
    let hash = password_hash(body.password).await?;
    let accepted: Value = sqlx::query_scalar("select invitation_accept($1, $2, $3)")
        .bind(&body.token.0)
        .bind(subject)
        .bind(hash)
        .fetch_one(&state.pool)
        .await?;
    Ok((StatusCode::CREATED, Json(accepted)).into_response())
}

// ------------------------------------------------------------------ organisation

read_route! {
    get "/api/organisation", tag = "signup",
    fn get_organisation() = "select organisation_get()",
    responses((status = 200, description = "the caller's organisation", body = Organisation))
}

rpc_route! {
    patch "/api/organisation", tag = "signup",
    fn update_organisation(OrganisationPatch) = "select organisation_update($1)",
    responses((status = 200, description = "the organisation changed (audited); a new time zone cuts days from now on and moves the schedules", body = Organisation),
              (status = 403, description = "only a super admin changes the organisation", body = ErrorResponse),
              (status = 422, description = "a field is invalid, or nothing to change", body = ErrorResponse))
}
