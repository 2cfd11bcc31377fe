//! The HTTP side of files: generic upload into a bucket and
//! download through RLS on the object's row. What happens to a file is
//! [`crate::files`]'s business.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::list::{List, Page, Paged};
use super::openapi::ErrorResponse;
use super::shapes::shapes;
use super::write::{registered, upload_fingerprint};
use crate::auth::Caller;
use crate::db::read_as;
use crate::error::{ApiError, Result};
use crate::extract::Multipart;
use crate::extract::{Json, Path, Query};
use crate::files::{leading_field, read_form, Bucket};
use crate::idempotency::{self, Done, IdempotencyKey};
use crate::state::AppState;
use chrono::DateTime;
use chrono::Utc;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(download))
        .routes(routes!(list_objects))
}

pub fn upload_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(upload))
}

/// A `multipart/form-data` body with one file.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct FileUpload {
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// A file for a bucket: `bucket` (e.g. customer-documents, prospect-evidence,
/// media, knowledge, kpi-evidence) and the file.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct BucketUpload {
    bucket: String,
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

#[utoipa::path(post, path = "/api/objects", tag = "files",
    request_body(content = BucketUpload, content_type = "multipart/form-data"),
    params(IdempotencyKey),
    responses((status = 201, description = "the stored file's object row", body = StoredObject),
              (status = 413, description = "over the bucket's size limit", body = ErrorResponse),
              (status = 415, description = "a file type the bucket does not take", body = ErrorResponse)))]
async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    mut multipart: Multipart,
) -> Result<Response> {
    // The bucket field must come before the file: its limits apply while
    // the file streams.
    let name = leading_field(&mut multipart, "bucket")
        .await?
        .ok_or_else(|| ApiError::invalid("bucket", "must be text"))?;
    let files = state.files();
    let bucket = Bucket::load(&files, &caller, name.trim()).await?;
    let mut form = read_form(&files, &caller, multipart, &bucket, false).await?;
    form.fields.insert("bucket".into(), bucket.name.clone());
    let result = idempotency::run(
        &state,
        &caller,
        upload_fingerprint(key, &form),
        async |conn| Ok(Done::created(form.file.register(conn).await?)),
    )
    .await;
    files.keep_or_discard(&form, registered(&result));
    result
}

#[utoipa::path(get, path = "/api/objects/{id}", tag = "files", params(("id" = Uuid, Path)),
    responses((status = 200, description = "the file's bytes", content_type = "application/octet-stream"),
              (status = 404, description = "no such file, or not visible to the caller", body = ErrorResponse)))]
async fn download(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<Response> {
    let file = state.files().open(&caller, id).await?;
    let mut response = (StatusCode::OK, Body::from_stream(file.bytes)).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&file.content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(file.size_bytes));
    h.insert(
        header::ETAG,
        HeaderValue::from_str(&format!("\"{}\"", file.sha256)).map_err(anyhow::Error::from)?,
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&content_disposition(&file.file_name))
            .map_err(anyhow::Error::from)?,
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ObjectFilter {
    /// The bucket, e.g. media or knowledge.
    bucket: String,
    /// Substring of the file name.
    q: Option<String>,
}

/// The files of a bucket the caller may read: their own uploads, files of
/// rows they may read (knowledge-base documents, tickets, KPI entries,
/// visits, customers), every file for super admins.
#[utoipa::path(get, path = "/api/objects", tag = "files", params(ObjectFilter, Page),
    responses((status = 200, description = "files of the bucket the caller may read, newest first", body = ObjectPage),
              (status = 422, description = "no such bucket", body = ErrorResponse)))]
async fn list_objects(
    State(state): State<AppState>,
    caller: Caller,
    Query(f): Query<ObjectFilter>,
    Query(page): Query<Page>,
) -> Result<Json<Paged>> {
    let bucket = f.bucket.trim().to_owned();
    let first = page.after.is_none();
    let mut list = List::new("objects", "object_id", caller.tenant_id);
    list.filter("bucket", "=", Some(bucket.clone()))
        .search(&["file_name"], f.q);
    let page = read_as(&state.pool, &caller, async |tx| {
        let page = list.fetch(tx, page).await?;
        // An empty first page: say so when the bucket does not exist.
        if first && page.items.is_empty() {
            let known: bool = sqlx::query_scalar(
                "select exists (select 1 from storage_buckets where bucket = $1)",
            )
            .bind(&bucket)
            .fetch_one(tx)
            .await?;
            if !known {
                return Err(ApiError::invalid("bucket", format!("no bucket {bucket}")));
            }
        }
        Ok(page)
    })
    .await?;
    Ok(Json(page))
}

/// `attachment; filename*=UTF-8''<percent-encoded>` (RFC 6266 / 5987), with
/// an ASCII fallback name for old clients.
fn content_disposition(file_name: &str) -> String {
    let mut encoded = String::new();
    for b in file_name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    let fallback: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn content_disposition_encodes_names() {
        assert_eq!(
            super::content_disposition("Faktur Mei 2026.pdf"),
            "attachment; filename=\"Faktur_Mei_2026.pdf\"; filename*=UTF-8''Faktur%20Mei%202026.pdf"
        );
        assert_eq!(
            super::content_disposition("café\".pdf"),
            "attachment; filename=\"caf__.pdf\"; filename*=UTF-8''caf%C3%A9%22.pdf"
        );
    }
}

// ------------------------------------------------------------------ responses
// The documented shapes of what the database returns (see shapes.rs).

shapes! {
    /// A stored file (a row of `objects`).
    pub struct StoredObject {
        tenant_id: Uuid,
        object_id: Uuid,
        bucket: String,
        /// Where the bytes are: `<tenant>/<bucket>/<object_id>`.
        object_key: String,
        file_name: String,
        content_type: String,
        size_bytes: i64,
        /// Hex SHA-256 of the bytes.
        sha256: String,
        created_by: Option<Uuid>,
        created_at: DateTime<Utc>,
        updated_at: DateTime<Utc>,
    }

    /// One page of stored files the caller may read.
    pub struct ObjectPage {
        items: Vec<StoredObject>,
        next_cursor: Option<String>,
    }
}
