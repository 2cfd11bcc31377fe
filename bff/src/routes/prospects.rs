//! Prospects (CRM-3): moving a prospect through its stages. The history
//! and the sales activity of a stage change are written by the database.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::openapi::ErrorResponse;
use super::route::rpc_route;
use super::shapes::shapes;
use super::shapes::Numeric;
use crate::payload::{NonBlank, Text};
use crate::state::AppState;
use chrono::DateTime;
use chrono::Utc;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(change_stage))
}

/// `prospect_move`: the stage to move to; the prospect lifecycle decides
/// which stage may follow which (NEW → CONTACTED → QUALIFIED → PROPOSAL →
/// NEGOTIATION → WON, LOST from any open stage, LOST → NEW).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StageChange {
    /// NEW, CONTACTED, QUALIFIED, PROPOSAL, NEGOTIATION, WON or LOST
    /// (case-insensitive).
    stage: NonBlank<20>,
    /// Replaces the prospect's notes when given.
    note: Option<Text<2000>>,
}

rpc_route! {
    post "/api/prospects/{id}/stage", tag = "prospects",
    fn change_stage(id, StageChange) = "select prospect_move($1, $2)",
    responses((status = 200, description = "the prospect moved (its history and activity are written)", body = ProspectMoved),
              (status = 403, description = "the role may not move prospects (prospect.stage)", body = ErrorResponse),
              (status = 404, description = "no such prospect (or not visible)", body = ErrorResponse),
              (status = 422, description = "not a stage the prospect may move to (field stage)", body = ErrorResponse))
}

// ------------------------------------------------------------------ responses
// The documented shapes of what the database returns (see shapes.rs).

shapes! {
    /// A customer in the pipeline of one owner (a row of `prospects`).
    pub struct Prospect {
        tenant_id: Uuid,
        prospect_id: Uuid,
        customer_id: Uuid,
        /// Null: not handed to a salesperson yet.
        owner_user_id: Option<Uuid>,
        /// NEW, CONTACTED, QUALIFIED, PROPOSAL, NEGOTIATION, WON or LOST
        stage: String,
        expected_value: Option<Numeric>,
        notes: Option<String>,
        won_at: Option<DateTime<Utc>>,
        lost_at: Option<DateTime<Utc>>,
        created_by: Option<Uuid>,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
    }

    /// `prospect_move`.
    pub struct ProspectMoved {
        prospect_id: Uuid,
        /// The stage before.
        from: String,
        /// The stage now.
        to: String,
    }
}
