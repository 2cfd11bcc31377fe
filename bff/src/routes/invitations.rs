//! The tenant's invitations for its user managers (tag `signup`;
//! docs/signup.md): the list of every invitation with its status, and the
//! revocation of one. Who reads them is the invitations' row-level
//! security (holders of `profile.manage`, directors), through the view
//! `v_invitations` that never shows the link's secret; revoking is
//! `invitation_revoke` (`profile.manage`, sql/api/signup.sql).
//!
//! - `GET /api/invitations?status=`: newest first, keyset-paginated.
//! - `POST /api/invitations/{id}/revoke`: the link stops working.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::openapi::ErrorResponse;
use super::route::{list_route, rpc_route};
use super::shapes::shapes;
use crate::payload::AppRole;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_invitations))
        .routes(routes!(revoke_invitation))
}

/// Where an invitation stands.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InvitationStatus {
    /// Its link works until `expires_at`.
    Pending,
    /// The person is a user now.
    Accepted,
    /// Not accepted in time.
    Expired,
    /// Withdrawn (revoked, or replaced by a newer invitation of the
    /// address).
    Revoked,
}

impl InvitationStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Accepted => "accepted",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InvitationFilter {
    /// Only invitations in this status.
    status: Option<InvitationStatus>,
}

shapes! {
    /// An invitation as the list shows it (never its link).
    pub struct InvitationItem {
        tenant_id: Uuid,
        invitation_id: Uuid,
        email: String,
        full_name: String,
        app_role: AppRole,
        dept_code: Option<String>,
        manager_user_id: Option<Uuid>,
        status: InvitationStatus,
        /// Who invited (null once that user is deleted).
        invited_by: Option<Uuid>,
        invited_by_name: Option<String>,
        created_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        accepted_at: Option<DateTime<Utc>>,
        accepted_user_id: Option<Uuid>,
        revoked_at: Option<DateTime<Utc>>,
    }

    /// A page of invitations, newest first.
    pub struct InvitationPage {
        items: Vec<InvitationItem>,
        next_cursor: Option<String>,
    }
}

list_route! {
    get "/api/invitations", tag = "signup",
    fn list_invitations("v_invitations" by "invitation_id") |list, f: InvitationFilter| {
        list.filter("status", "=", f.status.map(|s| s.as_str()));
    },
    responses((status = 200, description = "the tenant's invitations (pending, accepted, expired, revoked), newest first; none without profile.manage (row-level security)", body = InvitationPage))
}

rpc_route! {
    post "/api/invitations/{id}/revoke", tag = "signup",
    fn revoke_invitation(id) = "select invitation_revoke($1)",
    responses((status = 200, description = "the invitation, revoked: its link answers as an unknown one (revoking again changes nothing)", body = InvitationItem),
              (status = 403, description = "the profile.manage permission is missing", body = ErrorResponse),
              (status = 404, description = "no such invitation in the tenant", body = ErrorResponse),
              (status = 422, description = "the invitation was accepted (field invitation_id)", body = ErrorResponse))
}
