//! Prospects (CRM-3): moving a prospect through its stages. The history
//! and the sales activity of a stage change are written by the database.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::openapi::ErrorResponse;
use super::responses::ProspectMoved;
use super::write::{body, rpc, Args, Call};
use crate::auth::Caller;
use crate::error::Result;
use crate::extract::{Json, Path};
use crate::idempotency::IdempotencyKey;
use crate::payload::{NonBlank, Text};
use crate::state::AppState;

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

#[utoipa::path(post, path = "/api/prospects/{id}/stage", tag = "prospects", request_body = StageChange,
    params(("id" = Uuid, Path), IdempotencyKey),
    responses((status = 200, description = "the prospect moved (its history and activity are written)", body = ProspectMoved),
              (status = 403, description = "the role may not move prospects (prospect.stage)", body = ErrorResponse),
              (status = 404, description = "no such prospect (or not visible)", body = ErrorResponse),
              (status = 422, description = "not a stage the prospect may move to (field stage)", body = ErrorResponse)))]
async fn change_stage(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<Uuid>,
    Json(change): Json<StageChange>,
) -> Result<Response> {
    let call = Call::post(
        "select prospect_move($1, $2)",
        Args::IdBody(id, body(&change)?),
    );
    rpc(&state, &caller, key, call).await
}
