//! Staged imports (IMP): upload a CSV/XLSX file (stored in bucket
//! import-files, its rows COPYed into import_rows in the same transaction),
//! process it batch by batch — one transaction per `process_import` call,
//! so progress is visible while it runs — and read progress and per-row
//! errors.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::openapi::ErrorResponse;
use super::shapes::shapes;
use super::write::{registered, upload_fingerprint};
use crate::auth::Caller;
use crate::db::read_as;
use crate::error::{ApiError, Result};
use crate::extract::Multipart;
use crate::extract::{Json, Path, Query};
use crate::files::{discard, read_form, Bucket};
use crate::idempotency::{self, Done, IdempotencyKey, REPLAYED};
use crate::imports::parse::ParseError;
use crate::imports::stage::{open_rows_from, stage_rows, StageError};
use crate::state::AppState;
use chrono::DateTime;
use chrono::Utc;
use std::collections::BTreeMap;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(process))
        .routes(routes!(get_import))
}

pub fn upload_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_import))
        .routes(routes!(import_kpi_entries))
}

/// `module` (leads, customers, invoices, payments, kpi_entries) and the file.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct ImportUpload {
    module: String,
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// A KPI entries file.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct KpiImportUpload {
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ErrorPage {
    /// Error rows after this row number (the previous page's `next_errors_after`).
    errors_after: Option<i32>,
    /// Error rows per page, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
}

fn file_error(e: ParseError) -> ApiError {
    match e {
        ParseError::NotASpreadsheet(_) => ApiError::UnsupportedMediaType {
            message: e.to_string(),
            field: Some("file".into()),
        },
        ParseError::Io(io) => ApiError::Internal(io.into()),
        other => ApiError::invalid("file", other.to_string()),
    }
}

/// Stores the file, checks its header with the database, stages its rows;
/// all or nothing. Also returns the import's id when this request staged it
/// (not for errors or replays).
async fn stage(
    state: &AppState,
    caller: &Caller,
    key: IdempotencyKey,
    multipart: Multipart,
    fixed_module: Option<&'static str>,
) -> Result<(Response, Option<Uuid>)> {
    let files = state.files();
    let bucket = Bucket::load(&files, caller, "import-files").await?;
    let mut form = read_form(&files, caller, multipart, &bucket, true).await?;
    let module = match fixed_module {
        Some(m) => m.to_owned(),
        None => match form.field("module") {
            Ok(m) => m.to_lowercase(),
            Err(e) => {
                discard(&files, &form.file);
                return Err(e);
            }
        },
    };
    form.fields.insert("module".into(), module.clone());
    let spool = form
        .file
        .spool
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("the import upload was not spooled"))?
        .try_clone()
        .map_err(anyhow::Error::from)?;

    let mut staged_id = None;
    let result = async {
        let mut stream = open_rows_from(spool).await.map_err(file_error)?;
        idempotency::run_once(
            state,
            caller,
            upload_fingerprint(key, &form),
            async |conn| {
                // COPY and the move into import_rows of a large file take longer
                // than the login role's statement timeout allows a JSON request.
                sqlx::query("select set_config('statement_timeout', $1, true)")
                    .bind(format!("{}ms", state.upload_timeout.as_millis()))
                    .execute(&mut *conn)
                    .await?;
                // import_create registers the file itself (object_of_upload).
                let created: Value = sqlx::query_scalar("select import_create($1)")
                    .bind(json!({
                        "module": module,
                        "object": form.file.object_payload(),
                        "file_name": form.file.file_name,
                        "columns": stream.header,
                    }))
                    .fetch_one(&mut *conn)
                    .await?;
                let import_id = created["import_id"].clone();
                stage_rows(&mut *conn, &mut stream.rows, &stream.header)
                    .await
                    .map_err(|e| match e {
                        StageError::Parse(p) => file_error(p),
                        StageError::Db(d) => d.into(),
                    })?;
                let staged: Value =
                    sqlx::query_scalar("select import_stage_finish(($1 #>> '{}')::uuid)")
                        .bind(&import_id)
                        .fetch_one(&mut *conn)
                        .await?;
                staged_id = import_id.as_str().and_then(|s| s.parse().ok());
                if fixed_module.is_some() {
                    // KPI files are processed at once, by the worker, in
                    // a job that exists only if this transaction commits.
                    enqueue_processing(&mut *conn, &import_id, state.import_batch_rows).await?;
                }
                Ok(Done::created(staged))
            },
        )
        .await
    }
    .await;
    files.keep_or_discard(&form, registered(&result));
    let response = result?;
    let fresh = response.status().is_success() && !response.headers().contains_key(REPLAYED);
    Ok((response, staged_id.filter(|_| fresh)))
}

#[utoipa::path(post, path = "/api/imports", tag = "imports",
    request_body(content = ImportUpload, content_type = "multipart/form-data"),
    params(IdempotencyKey),
    responses((status = 201, description = "file stored and its rows staged (status staged)", body = ImportState),
              (status = 413, description = "over the import-files limit", body = ErrorResponse),
              (status = 415, description = "not a CSV or XLSX file", body = ErrorResponse),
              (status = 422, description = "empty file, bad header (field columns) or malformed line", body = ErrorResponse),
              (status = 501, description = "not on a Citus cluster yet (docs/citus.md)", body = ErrorResponse)))]
async fn create_import(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    multipart: Multipart,
) -> Result<Response> {
    let (response, _) = stage(&state, &caller, key, multipart, None).await?;
    Ok(response)
}

#[utoipa::path(post, path = "/api/kpi/import", tag = "kpi",
    request_body(content = KpiImportUpload, content_type = "multipart/form-data"),
    params(IdempotencyKey),
    responses((status = 202, description = "staged; processing runs in the background (GET /api/imports/{id})", body = ImportState),
              (status = 415, description = "not a CSV or XLSX file", body = ErrorResponse),
              (status = 422, description = "empty file, bad header (field columns) or malformed line", body = ErrorResponse),
              (status = 501, description = "not on a Citus cluster yet (docs/citus.md)", body = ErrorResponse)))]
async fn import_kpi_entries(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    multipart: Multipart,
) -> Result<Response> {
    let (mut response, _) = stage(&state, &caller, key, multipart, Some("kpi_entries")).await?;
    if response.status() == StatusCode::CREATED {
        *response.status_mut() = StatusCode::ACCEPTED;
    }
    Ok(response)
}

fn pending(progress: &Value) -> i64 {
    progress["pending_rows"].as_i64().unwrap_or(0)
}

/// Enqueues the `import.process` job of an import in the caller's
/// transaction: the worker processes the remaining batches as the caller
/// (`imports::job::ImportProcess`), resumably, reporting progress in
/// GET /api/jobs/{id} and GET /api/imports/{id}.
async fn enqueue_processing(
    conn: &mut sqlx::PgConnection,
    import_id: &Value,
    batch_rows: u32,
) -> Result<Uuid> {
    Ok(
        sqlx::query_scalar("select import_process_later(($1::jsonb #>> '{}')::uuid, $2)")
            .bind(import_id)
            .bind(batch_rows as i32)
            .fetch_one(conn)
            .await?,
    )
}

#[utoipa::path(post, path = "/api/imports/{id}/process", tag = "imports",
    params(("id" = Uuid, Path), IdempotencyKey),
    responses((status = 200, description = "nothing (more) to process: the final state", body = ImportState),
              (status = 202, description = "first batch done, the rest runs in the background", body = ImportState),
              (status = 403, description = "the module's permission is missing", body = ErrorResponse),
              (status = 404, description = "no such import (or not visible)", body = ErrorResponse)))]
async fn process(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<Uuid>,
) -> Result<Response> {
    // The first batch runs in the request, so permission and visibility
    // errors reach the client; the rest is a job of the worker, enqueued in
    // the same transaction.
    let fp = key.json(&Value::Null);
    let batch = state.import_batch_rows as i32;
    let response = idempotency::run(&state, &caller, fp, async |conn| {
        let progress: Value = sqlx::query_scalar("select process_import($1, $2)")
            .bind(id)
            .bind(batch)
            .fetch_one(&mut *conn)
            .await?;
        Ok(if pending(&progress) > 0 {
            enqueue_processing(conn, &progress["import_id"], state.import_batch_rows).await?;
            Done::accepted(progress)
        } else {
            Done::ok(progress)
        })
    })
    .await?;
    Ok(response)
}

#[utoipa::path(get, path = "/api/imports/{id}", tag = "imports", params(("id" = Uuid, Path), ErrorPage),
    responses((status = 200, description = "progress and counts, and a page of row errors", body = ImportDetail),
              (status = 404, description = "no such import (or not visible)", body = ErrorResponse)))]
async fn get_import(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(page): Query<ErrorPage>,
) -> Result<Json<Value>> {
    let limit = page.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest {
            message: "must be between 1 and 1000".into(),
            field: Some("limit".into()),
        });
    }
    let (import, errors) = read_as(&state.pool, &caller, async |tx| {
        let import: Option<Value> =
            sqlx::query_scalar("select import_state(i) from imports i where i.import_id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let import = import.ok_or_else(|| ApiError::NotFound(format!("no import {id}")))?;
        let errors: Vec<Value> = sqlx::query_scalar(
            "select jsonb_build_object('row_no', r.row_no, 'field', r.error_field,
                                   'message', r.error_message, 'data', r.data)
           from import_rows r
          where r.tenant_id = bizos.tenant_id() and r.import_id = $1
            and r.status = 'error' and r.row_no > $2
          order by r.row_no
          limit $3",
        )
        .bind(id)
        .bind(page.errors_after.unwrap_or(0))
        .bind(limit)
        .fetch_all(tx)
        .await?;
        Ok((import, errors))
    })
    .await?;
    let next = (errors.len() as i64 == limit)
        .then(|| errors.last().map(|e| e["row_no"].clone()))
        .flatten();
    Ok(Json(
        json!({"import": import, "errors": errors, "next_errors_after": next}),
    ))
}

// ------------------------------------------------------------------ responses
// The documented shapes of what the database returns (see shapes.rs).

shapes! {
    /// An import's progress and counts (`import_state`).
    pub struct ImportState {
        import_id: Uuid,
        /// leads, customers, invoices, payments or kpi_entries
        module: String,
        object_id: Uuid,
        file_name: String,
        columns: Vec<String>,
        /// staged, processing, done or failed
        status: String,
        total_rows: i64,
        processed_rows: i64,
        ok_rows: i64,
        error_rows: i64,
        pending_rows: i64,
        created_by: Option<Uuid>,
        created_at: DateTime<Utc>,
        started_at: Option<DateTime<Utc>>,
        finished_at: Option<DateTime<Utc>>,
    }

    /// An import with a page of its row errors.
    pub struct ImportDetail {
        import: ImportState,
        errors: Vec<ImportRowError>,
        /// Pass as `errors_after` for the next page of errors; null on the last.
        next_errors_after: Option<i64>,
    }

    /// A row the import refused, with the reason.
    pub struct ImportRowError {
        /// The line of the file (1 = the first data row).
        row_no: i64,
        field: Option<String>,
        message: Option<String>,
        /// The row's cells by column name (empty cells absent).
        data: BTreeMap<String, String>,
    }
}
