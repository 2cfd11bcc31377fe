//! [`Files`], the handle routes and jobs work with files through, and a
//! downloaded [`StoredFile`]; uploading is `upload.rs`'s.

use bytes::Bytes;
use futures_util::stream::BoxStream;
use sqlx::PgPool;
use uuid::Uuid;

use super::storage::Storage;
use crate::auth::Caller;
use crate::db::begin_as;
use crate::error::{ApiError, Result};

/// What file handling works with: the pool of the BFF's login (requests
/// switch to the caller's claims), the store, this process's upload owner
/// lock ([`super::sweep`]) and the ceiling of any upload. The application state
/// hands one out (`AppState::files`).
#[derive(Clone)]
pub struct Files {
    pub(super) pool: PgPool,
    pub(super) storage: Storage,
    /// Second key of this process's upload owner lock, recorded in every
    /// upload intent.
    pub(super) owner_lock: i32,
    /// Upper bound of any upload (buckets have their own, lower limits).
    pub(super) max_bytes: u64,
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
