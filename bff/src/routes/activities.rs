//! Sales activities (CRM-3): logging calls, meetings, notes and visits,
//! and listing them. A visit needs its photo (an object of bucket
//! prospect-evidence) and the GPS position; POST /api/visits takes both in
//! one request, POST /api/activities a photo uploaded before.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::files::StoredObject;
use super::openapi::ErrorResponse;
use super::route::{list_route, rpc_route};
use super::shapes::shapes;
use super::shapes::Numeric;
use super::write::{submit, FilePart, Submit};
use crate::auth::Caller;
use crate::error::Result;
use crate::extract::Multipart;
use crate::idempotency::IdempotencyKey;
use crate::payload::{blank_is_none, ActivityType, Degrees, Id, Instant, NonBlank};
use crate::state::AppState;
use chrono::DateTime;
use chrono::Utc;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_activity, list_activities))
}

pub fn upload_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(log_visit))
}

/// `sales_activity_create`: a manual activity of the caller about a
/// customer they may read, named by `customer_id`, `prospect_id` or
/// `lead_id` (which must agree). A visit needs `photo_object_id` (the
/// caller's upload to bucket prospect-evidence, POST /api/objects) and
/// `gps_lat` + `gps_lng`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivityCreate {
    /// A manual kind (visit, call, meeting, email, whatsapp, note); the
    /// database writes the others.
    activity_type: ActivityType,
    summary: NonBlank<2000>,
    /// Now when absent; at most 5 minutes ahead of the server's clock.
    #[serde(default, deserialize_with = "blank_is_none")]
    occurred_at: Option<Instant>,
    #[serde(default, deserialize_with = "blank_is_none")]
    customer_id: Option<Id>,
    #[serde(default, deserialize_with = "blank_is_none")]
    prospect_id: Option<Id>,
    #[serde(default, deserialize_with = "blank_is_none")]
    lead_id: Option<Id>,
    /// Latitude in degrees, -90 to 90 (with gps_lng).
    #[serde(default, deserialize_with = "blank_is_none")]
    gps_lat: Option<Degrees>,
    /// Longitude in degrees, -180 to 180 (with gps_lat).
    #[serde(default, deserialize_with = "blank_is_none")]
    gps_lng: Option<Degrees>,
    /// The photo: the caller's upload to bucket prospect-evidence.
    #[serde(default, deserialize_with = "blank_is_none")]
    photo_object_id: Option<Id>,
}

/// A visit with its photo, as `multipart/form-data`: the text fields and
/// the `file` (an image or a PDF; bucket prospect-evidence). The customer
/// by `customer_id`, `prospect_id` or `lead_id`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VisitUpload {
    summary: NonBlank<2000>,
    /// Now when absent; at most 5 minutes ahead of the server's clock.
    #[serde(default, deserialize_with = "blank_is_none")]
    occurred_at: Option<Instant>,
    #[serde(default, deserialize_with = "blank_is_none")]
    customer_id: Option<Id>,
    #[serde(default, deserialize_with = "blank_is_none")]
    prospect_id: Option<Id>,
    #[serde(default, deserialize_with = "blank_is_none")]
    lead_id: Option<Id>,
    /// Latitude in degrees where the photo was taken, -90 to 90.
    gps_lat: Degrees,
    /// Longitude in degrees where the photo was taken, -180 to 180.
    gps_lng: Degrees,
    /// The photo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, format = Binary, required = true)]
    file: Option<FilePart>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActivityFilter {
    activity_type: Option<ActivityType>,
    owner_user_id: Option<Uuid>,
    customer_id: Option<Uuid>,
    prospect_id: Option<Uuid>,
    lead_id: Option<Uuid>,
    /// manual or derived
    source: Option<String>,
    /// Occurred at or after (RFC 3339).
    occurred_from: Option<chrono::DateTime<chrono::Utc>>,
    /// Occurred before (RFC 3339).
    occurred_to: Option<chrono::DateTime<chrono::Utc>>,
}

rpc_route! {
    post "/api/activities", tag = "activities",
    fn create_activity(ActivityCreate) = "select sales_activity_create($1)",
    responses((status = 201, description = "the activity", body = Activity),
              (status = 403, description = "the role may not log activities (activity.create), or the photo is someone else's", body = ErrorResponse),
              (status = 404, description = "no such customer, prospect, lead or photo (or not visible)", body = ErrorResponse),
              (status = 409, description = "the photo already proves another activity", body = ErrorResponse),
              (status = 422, description = "a field is invalid (a visit without photo or GPS, a derived kind)", body = ErrorResponse))
}

#[utoipa::path(post, path = "/api/visits", tag = "activities",
    request_body(content = VisitUpload, content_type = "multipart/form-data"),
    params(IdempotencyKey),
    responses((status = 201, description = "the visit with its stored photo", body = VisitLogged),
              (status = 403, description = "the role may not log activities (activity.create)", body = ErrorResponse),
              (status = 404, description = "no such customer, prospect or lead (or not visible)", body = ErrorResponse),
              (status = 413, description = "over the bucket's size limit", body = ErrorResponse),
              (status = 415, description = "a file type the bucket does not take", body = ErrorResponse),
              (status = 422, description = "a field is invalid or missing (field: its name)", body = ErrorResponse)))]
async fn log_visit(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    multipart: Multipart,
) -> Result<Response> {
    let to = Submit {
        bucket: "prospect-evidence",
        sql: "select sales_activity_create($1)",
        object_field: "photo_object_id",
        fixed: json!({"activity_type": "visit"}),
    };
    submit::<VisitUpload>(&state, &caller, key, multipart, to).await
}

list_route! {
    get "/api/activities", tag = "activities",
    fn list_activities("sales_activities" by "activity_id") |list, f: ActivityFilter| {
        list.filter(
            "activity_type",
            "=",
            f.activity_type.map(ActivityType::into_string),
        )
        .filter("owner_user_id", "=", f.owner_user_id)
        .filter("customer_id", "=", f.customer_id)
        .filter("prospect_id", "=", f.prospect_id)
        .filter("lead_id", "=", f.lead_id)
        .filter("source", "=", f.source.map(|s| s.to_lowercase()))
        .filter("occurred_at", ">=", f.occurred_from)
        .filter("occurred_at", "<", f.occurred_to);
    },
    responses((status = 200, description = "activities the caller may see (their own; managers their team's), newest first", body = ActivityPage))
}

// ------------------------------------------------------------------ responses
// The documented shapes of what the database returns (see shapes.rs).

shapes! {
    columns {
        tenant_id: Uuid,
        activity_id: Uuid,
        /// Whose activity it is (counts in their KPIs).
        owner_user_id: Uuid,
        activity_type: crate::payload::ActivityType,
        /// manual (logged by a user) or derived (written by the database)
        source: String,
        customer_id: Option<Uuid>,
        prospect_id: Option<Uuid>,
        lead_id: Option<Uuid>,
        occurred_at: DateTime<Utc>,
        summary: String,
        /// prospect-evidence when there is a photo.
        photo_bucket: Option<String>,
        photo_object_key: Option<String>,
        gps_lat: Option<Numeric>,
        gps_lng: Option<Numeric>,
        created_by: Option<Uuid>,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
        /// The photo (download with GET /api/objects/{id}).
        photo_object_id: Option<Uuid>,
    }

    /// A sales activity (a row of `sales_activities`).
    pub struct Activity {}

    /// A visit logged with its photo (`sales_activity_create`), and the
    /// stored photo.
    pub struct VisitLogged {
        object: StoredObject,
    }
}

shapes! {
    /// One page of sales activities.
    pub struct ActivityPage {
        items: Vec<Activity>,
        next_cursor: Option<String>,
    }
}
