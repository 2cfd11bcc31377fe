//! Staged imports (IMP): upload a CSV/XLSX file, process it in batches in the
//! background, read progress and per-row errors.

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}

pub fn upload_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}
