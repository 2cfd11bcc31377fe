//! Files (SPEC STG), their whole life in one place; routes only speak HTTP.
//!
//! 1. **Upload** ([`read_form`], `upload.rs`): a `multipart/form-data` body's
//!    file is checked against its [`Bucket`] (size, sniffed content type),
//!    an upload intent is committed (`upload_begin`: the database picks the
//!    object id and the key) and the bytes stream to [`Storage`]
//!    (`storage.rs`: a local directory or S3) while they are hashed.
//! 2. **Register or discard**: the request registers the object row
//!    ([`UploadedFile::register`], `object_create`) in the transaction of the
//!    row that uses the file ([`attach`], an import, a plain upload); a
//!    request that fails or is replayed discards the bytes again
//!    ([`keep_or_discard`]).
//! 3. **Download** ([`open`]): the object row is read under the caller's
//!    claims, so row-level security decides who may read the bytes.
//! 4. **Sweep** (`sweep.rs`): the bytes of uploads whose process died
//!    between intent and registration are removed by any BFF.

pub mod storage;
pub mod sweep;
mod upload;

use axum::extract::Multipart;
use axum::response::Response;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use serde_json::Value;
use uuid::Uuid;

pub use storage::{Storage, Upload};
pub use upload::{discard, read_form, sniff, Bucket, Form, UploadedFile};

use crate::auth::Caller;
use crate::db::begin_as;
use crate::error::{ApiError, Result};
use crate::idempotency::{self, Done, Fingerprint, IdempotencyKey, REPLAYED};
use crate::state::AppState;

/// Keeps the stored bytes only when the request registered them: a failed
/// request, or a replay (which answers with the first request's file),
/// leaves them unreferenced.
pub fn keep_or_discard(state: &AppState, form: &Form, result: &Result<Response>) {
    let kept =
        matches!(result, Ok(r) if r.status().is_success() && !r.headers().contains_key(REPLAYED));
    if !kept {
        discard(state, &form.file);
    }
}

/// What identifies an upload request for idempotency: its path, its text
/// fields and its file.
pub fn fingerprint(path: String, form: &Form) -> Fingerprint {
    let parts = form.fingerprint_parts();
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    Fingerprint::parts("POST", path, &refs)
}

/// What to attach an uploaded file to.
pub struct Attach {
    pub bucket: &'static str,
    pub path: String,
    /// `select <fn>($1 = the parent's id, $2 = the object id)`, returning jsonb.
    pub sql: &'static str,
    pub parent: Uuid,
}

/// Stores the file, then registers it and attaches it in one transaction
/// (the pattern the ticket and KPI routes share).
pub async fn attach(
    state: &AppState,
    caller: &Caller,
    key: IdempotencyKey,
    multipart: Multipart,
    to: Attach,
) -> Result<Response> {
    let bucket = Bucket::load(state, caller, to.bucket).await?;
    let form = read_form(state, caller, multipart, &bucket, false).await?;
    let result = idempotency::run(
        state,
        caller,
        key,
        fingerprint(to.path, &form),
        async |conn| {
            let object = form.file.register(conn).await?;
            let link: Value = sqlx::query_scalar(to.sql)
                .bind(to.parent)
                .bind(form.file.object_id)
                .fetch_one(&mut *conn)
                .await?;
            let mut body = link;
            body["object"] = object;
            Ok(Done::created(body))
        },
    )
    .await;
    keep_or_discard(state, &form, &result);
    result
}

/// A stored file the caller may read: its row's facts and its bytes.
pub struct StoredFile {
    pub file_name: String,
    pub content_type: String,
    pub size_bytes: u64,
    pub sha256: String,
    pub bytes: BoxStream<'static, std::io::Result<Bytes>>,
}

/// Opens file `id` if the caller may see its object row (404 otherwise, as
/// for a file that does not exist).
pub async fn open(state: &AppState, caller: &Caller, id: Uuid) -> Result<StoredFile> {
    let mut tx = begin_as(&state.pool, caller).await?;
    let row: Option<(String, String, String, i64, String)> = sqlx::query_as(
        "select object_key, file_name, content_type, size_bytes, sha256 from objects where object_id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    let (key, file_name, content_type, size, sha256) =
        row.ok_or_else(|| ApiError::NotFound(format!("no file {id}")))?;
    let Some(bytes) = state
        .storage
        .get(&object_store::path::Path::from(key.as_str()))
        .await?
    else {
        tracing::error!(object_id = %id, %key, "an object row without stored bytes");
        return Err(ApiError::NotFound(format!(
            "the bytes of file {id} are missing"
        )));
    };
    Ok(StoredFile {
        file_name,
        content_type,
        size_bytes: size.max(0) as u64,
        sha256,
        bytes,
    })
}
