//! Files (SPEC STG), their whole life in one place; routes only speak HTTP
//! (idempotency, headers) and call this module through [`Files`], which
//! the application state hands out — so this module does not know the
//! application state.
//!
//! 1. **Upload** ([`read_form`], `upload.rs`): a `multipart/form-data` body's
//!    file is checked against its [`Bucket`] (size, sniffed content type),
//!    an upload intent is committed (`upload_begin`: the database picks the
//!    object id and the key) and the bytes stream to [`Storage`]
//!    (`storage.rs`: a local directory or S3) while they are hashed.
//! 2. **Register or discard**: the request registers the object row
//!    ([`UploadedFile::register`], `object_create`) in the transaction of the
//!    row that uses the file (an attachment, an import, a plain upload); a
//!    request that fails or is replayed leaves the bytes unreferenced and
//!    they are removed again ([`Files::keep_or_discard`], [`discard`]).
//! 3. **Download** ([`Files::open`]): the object row is read under the
//!    caller's claims, so row-level security decides who may read the bytes.
//! 4. **Sweep** (`sweep.rs`): the bytes of uploads whose process died
//!    between intent and registration are removed by `storage.sweep` jobs
//!    of `bizos worker` (one per tenant with dead uploads).

pub mod storage;
pub mod sweep;
mod upload;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use sqlx::PgPool;
use uuid::Uuid;

pub use storage::{Storage, StorageArgs, StorageSettings, Upload};
pub use upload::{discard, read_form, sniff, Bucket, Form, UploadedFile};

use crate::auth::Caller;
use crate::db::begin_as;
use crate::error::{ApiError, Result};

/// What file handling works with: the pool of the BFF's login (requests
/// switch to the caller's claims), the store, this process's upload owner
/// lock ([`sweep`]) and the ceiling of any upload. The application state
/// hands one out (`AppState::files`).
#[derive(Clone)]
pub struct Files {
    pool: PgPool,
    storage: Storage,
    /// Second key of this process's upload owner lock, recorded in every
    /// upload intent.
    owner_lock: i32,
    /// Upper bound of any upload (buckets have their own, lower limits).
    max_bytes: u64,
}

impl Files {
    pub fn new(pool: PgPool, storage: Storage, owner_lock: i32, max_bytes: u64) -> Self {
        Files {
            pool,
            storage,
            owner_lock,
            max_bytes,
        }
    }

    /// Keeps the stored bytes of `form` only when the request `registered`
    /// them; a failed request or a replay (which answers with the first
    /// request's file) leaves them unreferenced, so they are removed.
    pub fn keep_or_discard(&self, form: &Form, registered: bool) {
        if !registered {
            discard(self, &form.file);
        }
    }

    /// Opens file `id` if the caller may see its object row (404
    /// otherwise, as for a file that does not exist).
    pub async fn open(&self, caller: &Caller, id: Uuid) -> Result<StoredFile> {
        let mut tx = begin_as(&self.pool, caller).await?;
        let row: Option<(String, String, String, i64, String)> = sqlx::query_as(
            "select object_key, file_name, content_type, size_bytes, sha256
               from objects where object_id = $1",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        let (key, file_name, content_type, size, sha256) =
            row.ok_or_else(|| ApiError::NotFound(format!("no file {id}")))?;
        let Some(bytes) = self
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
}

/// A stored file the caller may read: its row's facts and its bytes.
pub struct StoredFile {
    pub file_name: String,
    pub content_type: String,
    pub size_bytes: u64,
    pub sha256: String,
    pub bytes: BoxStream<'static, std::io::Result<Bytes>>,
}
