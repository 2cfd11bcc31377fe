//! File storage (SPEC STG) behind `object_store`'s `ObjectStore` trait: a
//! directory on this machine by default, any S3-compatible service in
//! production. Keys are `<tenant>/<bucket>/<object_id>` (the database derives
//! the same key in `objects.object_key`), so one store holds every tenant and
//! bucket and a key can never be chosen by a client.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use secrecy::ExposeSecret;
use uuid::Uuid;

use crate::config::StorageSettings;

/// Parts of a streamed upload are sent once this many bytes are buffered
/// (S3's minimum part size is 5 MiB).
const PART_BYTES: usize = 8 * 1024 * 1024;

#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Storage({})", self.store)
    }
}

/// The key of an object: the same string as `objects.object_key`.
pub fn object_key(tenant_id: Uuid, bucket: &str, object_id: Uuid) -> Path {
    Path::from(format!("{tenant_id}/{bucket}/{object_id}"))
}

impl Storage {
    pub fn from_settings(settings: &StorageSettings) -> anyhow::Result<Self> {
        let store: Arc<dyn ObjectStore> = match settings {
            StorageSettings::Local { root } => {
                std::fs::create_dir_all(root).map_err(|e| {
                    anyhow::anyhow!("cannot create BIZOS_DATA_DIR {}: {e}", root.display())
                })?;
                Arc::new(LocalFileSystem::new_with_prefix(root).map_err(|e| {
                    anyhow::anyhow!("BIZOS_DATA_DIR {} is unusable: {e}", root.display())
                })?)
            }
            StorageSettings::S3 {
                bucket,
                region,
                endpoint,
                access_key_id,
                secret_access_key,
            } => {
                let mut b = AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_region(region);
                if let Some(endpoint) = endpoint {
                    b = b
                        .with_endpoint(endpoint)
                        .with_allow_http(endpoint.starts_with("http://"))
                        .with_virtual_hosted_style_request(false);
                }
                if let Some(id) = access_key_id {
                    b = b.with_access_key_id(id);
                }
                if let Some(secret) = secret_access_key {
                    b = b.with_secret_access_key(secret.expose_secret());
                }
                Arc::new(
                    b.build()
                        .map_err(|e| anyhow::anyhow!("BIZOS_S3_* settings are unusable: {e}"))?,
                )
            }
        };
        Ok(Storage { store })
    }

    /// Starts a streamed write of `key`; nothing is visible under the key
    /// until [`Upload::finish`].
    pub async fn upload(&self, key: Path) -> anyhow::Result<Upload> {
        let multipart = self.store.put_multipart(&key).await?;
        Ok(Upload {
            writer: Some(WriteMultipart::new_with_chunk_size(multipart, PART_BYTES)),
            key,
            store: self.store.clone(),
        })
    }

    /// Writes a whole small object at once.
    pub async fn put(&self, key: &Path, bytes: Bytes) -> anyhow::Result<()> {
        self.store.put(key, PutPayload::from(bytes)).await?;
        Ok(())
    }

    /// The object's bytes as a stream, or `None` when it does not exist.
    pub async fn get(
        &self,
        key: &Path,
    ) -> anyhow::Result<Option<BoxStream<'static, std::io::Result<Bytes>>>> {
        match self.store.get(key).await {
            Ok(result) => Ok(Some(
                result
                    .into_stream()
                    .map(|chunk| chunk.map_err(std::io::Error::other))
                    .boxed(),
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes an object; a missing one is not an error.
    pub async fn delete(&self, key: &Path) -> anyhow::Result<()> {
        match self.store.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes in the background: used when the transaction that was to
    /// register a file failed, so the bytes do not linger.
    pub fn delete_later(&self, key: Path) {
        let storage = self.clone();
        tokio::spawn(async move {
            if let Err(e) = storage.delete(&key).await {
                tracing::warn!(error = %e, %key, "could not remove an unregistered upload");
            }
        });
    }
}

/// A streamed write in progress. Dropping it unfinished aborts the upload.
pub struct Upload {
    writer: Option<WriteMultipart>,
    key: Path,
    store: Arc<dyn ObjectStore>,
}

impl Upload {
    pub fn key(&self) -> &Path {
        &self.key
    }

    /// Buffers a chunk, waiting when too many parts are in flight.
    pub async fn write(&mut self, chunk: &[u8]) -> anyhow::Result<()> {
        let writer = self.writer.as_mut().expect("upload already finished");
        writer.wait_for_capacity(4).await?;
        writer.write(chunk);
        Ok(())
    }

    pub async fn finish(mut self) -> anyhow::Result<()> {
        let writer = self.writer.take().expect("upload already finished");
        writer.finish().await?;
        Ok(())
    }

    pub async fn abort(mut self) {
        if let Some(writer) = self.writer.take() {
            if let Err(e) = writer.abort().await {
                tracing::warn!(error = %e, key = %self.key, "could not abort an upload");
            }
        }
        // Local files of an aborted multipart write are already gone; a
        // finished one is removed here.
        let _ = self.store.delete(&self.key).await;
    }
}
