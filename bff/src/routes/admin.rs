//! Administration (B2B-9): the users of a tenant and the tenant's overrides
//! of its roles' permissions (`sql/api/admin.sql`, migration V34).
//!
//! Users (permission `profile.manage`): list, read, invite (the profile and
//! an invitation e-mail through the outbox, in one transaction), change the
//! role, manager, department or name, deactivate and reactivate.
//! Deactivation takes effect on the user's next request whatever their
//! token says (`authenticate_request()` refuses an inactive profile: 403
//! `user_inactive`). How an invited person signs in is the identity
//! provider's business: tokens come from the tenant's IdP (RS256 over
//! JWKS) or are HS256 tokens of a first-party login ([`crate::jwt`]); the
//! profile's `user_id` is the `sub` those tokens must carry.
//!
//! Roles (permission `permission.manage`): every role's effective
//! permissions and its differences from the defaults, grant and revoke.
//! A change takes effect on the next request of every user of the role.
//!
//! The database decides everything: the permission checks, the manager
//! (an active user of the tenant, no management cycle), ops needing a
//! department, an active super admin always left, super_admin keeping
//! `profile.manage` and `permission.manage`, and only a super admin
//! touching super admins and the administrative permissions. Every change
//! is audited (profiles and role_permissions carry the audit trigger; see
//! `GET /api/audit`).

use axum::extract::State;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::list::{List, Page, Paged};
use super::openapi::ErrorResponse;
use super::route::{read_route, rpc_route};
use super::shapes::shapes;
use super::write::{Args, Call, Writer};
use crate::auth::Caller;
use crate::db::read_as;
use crate::error::Result;
use crate::extract::{Json, Path, Query};
use crate::idempotency::IdempotencyKey;
use crate::payload::{blank_is_none, AppRole, Change, DeptCode, Id, NonBlank, Patch, Permission};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(invite_user, list_users))
        .routes(routes!(get_user, update_user))
        .routes(routes!(deactivate_user))
        .routes(routes!(reactivate_user))
        .routes(routes!(list_roles))
        .routes(routes!(grant_permission))
        .routes(routes!(revoke_permission))
}

// ------------------------------------------------------------------ requests

/// `user_invite`: the profile and its invitation e-mail (template
/// `user.invite.<tenant locale>`: who invited them, to which organisation,
/// with which address and role; no password or link).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserInvite {
    /// The person's address (stored in lower case; unique in the tenant):
    /// the invitation goes there.
    email: NonBlank<254>,
    full_name: NonBlank<200>,
    /// Only a super admin makes a user super_admin.
    app_role: AppRole,
    /// Required for ops: the department whose tickets they work.
    #[serde(default, deserialize_with = "blank_is_none")]
    dept_code: Option<DeptCode>,
    /// An active user of the tenant.
    #[serde(default, deserialize_with = "blank_is_none")]
    manager_user_id: Option<Id>,
    /// The person's subject (`sub`) at the identity provider, when known;
    /// absent: a new UUID, which the identity provider must then issue as
    /// `sub` in the person's tokens.
    #[serde(default, deserialize_with = "blank_is_none")]
    user_id: Option<Id>,
}

/// `user_update`: only the keys sent change (at least one); null clears
/// `dept_code` (not for ops) and `manager_user_id`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    #[serde(default, skip_serializing_if = "Change::is_absent")]
    #[schema(value_type = NonBlank<200>)]
    full_name: Change<NonBlank<200>>,
    /// Only a super admin makes a user super_admin or changes one; the
    /// tenant keeps an active super admin.
    #[serde(default, skip_serializing_if = "Change::is_absent")]
    #[schema(value_type = AppRole)]
    app_role: Change<AppRole>,
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    #[schema(value_type = Option<DeptCode>)]
    dept_code: Patch<DeptCode>,
    /// An active user of the tenant who is not managed by this user,
    /// directly or not (no cycles).
    #[serde(default, skip_serializing_if = "Patch::is_absent")]
    #[schema(value_type = Option<Id>)]
    manager_user_id: Patch<Id>,
}

/// A permission to grant to a role.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PermissionGrant {
    permission: Permission,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserFilter {
    app_role: Option<AppRole>,
    active: Option<bool>,
    dept_code: Option<String>,
    manager_user_id: Option<Uuid>,
    /// Substring of the e-mail address or name.
    q: Option<String>,
}

// ------------------------------------------------------------------ responses

// The columns of `profiles`.
shapes! {
    columns {
        tenant_id: Uuid,
        /// The `sub` of the user's tokens.
        user_id: Uuid,
        email: String,
        full_name: String,
        app_role: AppRole,
        dept_code: Option<String>,
        manager_user_id: Option<Uuid>,
        /// false: every request of the user is refused (user_inactive).
        active: bool,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
    }

    /// A user of the tenant (a row of `profiles`).
    pub struct User {}

    /// The invited user and its queued invitation e-mail.
    pub struct UserInvited {
        /// The e-mail in the outbox (sent by the worker).
        invitation_email_id: Uuid,
    }

    /// A user with what their role may do, their manager and how many
    /// active users report to them.
    pub struct UserDetail {
        /// The permissions of the user's role in this tenant.
        permissions: Vec<Permission>,
        manager: Option<UserRef>,
        reports: i64,
    }
}

shapes! {
    /// Another user, named.
    pub struct UserRef {
        user_id: Uuid,
        full_name: String,
        email: String,
        active: bool,
    }

    /// One page of users.
    pub struct UserPage {
        items: Vec<User>,
        /// Pass as `after` for the next page; null on the last page.
        next_cursor: Option<String>,
    }
}

// A role's permissions.
shapes! {
    columns {
        app_role: AppRole,
        description: Option<String>,
        /// What the role may do in this tenant (in the vocabulary's order).
        permissions: Vec<Permission>,
        /// Granted on top of the defaults every tenant starts with.
        added: Vec<Permission>,
        /// Defaults this tenant revoked.
        removed: Vec<Permission>,
    }

    /// A role's effective permissions in the tenant.
    pub struct RolePermissions {}

    /// A role after a grant or revoke.
    pub struct RoleChanged {
        /// false: the role already had (or lacked) the permission.
        changed: bool,
    }
}

shapes! {
    /// Every app role of the tenant, in list order.
    pub struct RoleList {
        items: Vec<RolePermissions>,
    }
}

// ------------------------------------------------------------------ users

rpc_route! {
    post "/api/users", tag = "admin",
    fn invite_user(UserInvite) = "select user_invite($1)",
    responses((status = 201, description = "the user, and the invitation e-mail queued in the same transaction", body = UserInvited),
              (status = 403, description = "the profile.manage permission is missing (or super_admin by someone who is not one)", body = ErrorResponse),
              (status = 409, description = "a user with this email or user_id exists in the tenant", body = ErrorResponse),
              (status = 422, description = "a field is invalid: the manager, a department for ops, the address", body = ErrorResponse))
}

#[utoipa::path(get, path = "/api/users", tag = "admin", params(UserFilter, Page),
    responses((status = 200, description = "the users of the tenant, newest first", body = UserPage),
              (status = 403, description = "the profile.manage permission is missing", body = ErrorResponse)))]
async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    Query(f): Query<UserFilter>,
    Query(page): Query<Page>,
) -> Result<Json<Paged>> {
    let mut list = List::new("profiles", "user_id", caller.tenant_id);
    // API keys' principals are listed at /api/api-keys.
    list.filter("app_role", "<>", Some("integration"))
        .filter("app_role", "=", f.app_role.map(AppRole::into_string))
        .filter("active", "=", f.active)
        .filter(
            "dept_code",
            "=",
            f.dept_code.map(|d| d.trim().to_uppercase()),
        )
        .filter("manager_user_id", "=", f.manager_user_id)
        .search(&["email", "full_name"], f.q);
    let page = read_as(&state.pool, &caller, async |tx| {
        sqlx::query("select require_permission('profile.manage')")
            .execute(&mut *tx)
            .await?;
        list.fetch(tx, page).await
    })
    .await?;
    Ok(Json(page))
}

read_route! {
    get "/api/users/{id}", tag = "admin",
    fn get_user(id) = "select user_detail($1)",
    responses((status = 200, description = "the user with their role's permissions, manager and reports", body = UserDetail),
              (status = 403, description = "the profile.manage permission is missing", body = ErrorResponse),
              (status = 404, description = "no such user in the tenant", body = ErrorResponse))
}

rpc_route! {
    patch "/api/users/{id}", tag = "admin",
    fn update_user(id, UserPatch) = "select user_update($1, $2)",
    responses((status = 200, description = "the changed user (in effect from their next request)", body = User),
              (status = 403, description = "the profile.manage permission is missing (or a super admin's change by someone who is not one)", body = ErrorResponse),
              (status = 404, description = "no such user in the tenant", body = ErrorResponse),
              (status = 422, description = "a field is invalid, nothing to change, a management cycle, ops without a department, or no active super admin would be left", body = ErrorResponse))
}

rpc_route! {
    post "/api/users/{id}/deactivate", tag = "admin",
    fn deactivate_user(id) = "select user_set_active($1, false)",
    responses((status = 200, description = "the user, inactive: their next request is refused (403 user_inactive), whatever their token", body = User),
              (status = 403, description = "the profile.manage permission is missing (or a super admin deactivated by someone who is not one)", body = ErrorResponse),
              (status = 404, description = "no such user in the tenant", body = ErrorResponse),
              (status = 422, description = "the last active super admin", body = ErrorResponse))
}

rpc_route! {
    post "/api/users/{id}/reactivate", tag = "admin",
    fn reactivate_user(id) = "select user_set_active($1, true)",
    responses((status = 200, description = "the user, active again", body = User),
              (status = 403, description = "the profile.manage permission is missing", body = ErrorResponse),
              (status = 404, description = "no such user in the tenant", body = ErrorResponse))
}

// ------------------------------------------------------------------ roles

read_route! {
    get "/api/roles", tag = "admin",
    fn list_roles() = "select roles_list()",
    responses((status = 200, description = "every app role with its effective permissions and the tenant's overrides of the defaults", body = RoleList),
              (status = 403, description = "the permission.manage permission is missing", body = ErrorResponse))
}

#[utoipa::path(post, path = "/api/roles/{role}/permissions", tag = "admin", request_body = PermissionGrant,
    params(("role" = AppRole, Path, description = "the app role"), IdempotencyKey),
    responses((status = 200, description = "the role with the permission (in effect from the next request of its users)", body = RoleChanged),
              (status = 403, description = "the permission.manage permission is missing (super_admin's permissions and profile.manage/permission.manage: super admins only)", body = ErrorResponse),
              (status = 422, description = "not an app role (field role) or not a permission", body = ErrorResponse)))]
async fn grant_permission(
    write: Writer,
    Path(role): Path<String>,
    Json(grant): Json<PermissionGrant>,
) -> Result<Response> {
    let call = Call::post(
        "select role_permission_grant($1 ->> 'role', $1 ->> 'permission')",
        Args::Body(json!({"role": role, "permission": grant.permission.as_str()})),
    );
    write.rpc(call).await
}

#[utoipa::path(delete, path = "/api/roles/{role}/permissions/{permission}", tag = "admin",
    params(("role" = AppRole, Path, description = "the app role"),
           ("permission" = Permission, Path, description = "the permission to revoke"),
           IdempotencyKey),
    responses((status = 200, description = "the role without the permission (in effect from the next request of its users)", body = RoleChanged),
              (status = 403, description = "the permission.manage permission is missing (super_admin's permissions and profile.manage/permission.manage: super admins only)", body = ErrorResponse),
              (status = 422, description = "not an app role (field role) or a permission (field permission), or super_admin's profile.manage or permission.manage (the lock-out guard)", body = ErrorResponse)))]
async fn revoke_permission(
    write: Writer,
    Path((role, permission)): Path<(String, String)>,
) -> Result<Response> {
    let call = Call::delete(
        "select role_permission_revoke($1 ->> 'role', $1 ->> 'permission')",
        Args::Body(json!({"role": role, "permission": permission})),
    );
    write.rpc(call).await
}
