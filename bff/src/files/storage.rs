//! File storage behind `object_store`'s `ObjectStore` trait: a
//! directory on this machine by default, any S3-compatible service in
//! production. Keys are `<tenant>/<bucket>/<object_id>`, derived by the
//! database (`upload_begin` returns it; `objects.object_key` is the same
//! expression), so one store holds every tenant and bucket and a key can never
//! be chosen by a client.
//!
//! Bytes may exist before their `objects` row (an upload in progress) or
//! without one (an upload interrupted by a crash): every upload has an
//! intent in the database first (`upload_intents`, V15), and
//! [`super::sweep`] removes the bytes of intents whose upload died
//! with [`Storage::purge`], which also finds what an unfinished upload left:
//! the local backend's staging files (`<key>#<n>`) and S3's multipart parts
//! (aborted by the multipart id the intent recorded).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{MultipartId, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use secrecy::{ExposeSecret, SecretString};
use tokio::task::JoinSet;

use crate::vars::{path, positive_seconds, secret, text, var, ConfigError};

/// Where uploaded files live: the variables `bizos serve` (which stores
/// them) and `bizos worker` (which sweeps the bytes of dead uploads,
/// `storage.sweep`) share.
#[derive(Args, Debug, Clone)]
pub struct StorageArgs {
    /// Where uploaded files go: a directory, or an S3-compatible service.
    #[arg(long, env = "BIZOS_STORAGE", default_value = "local", value_parser = var(storage_kind).choices(&["local", "s3"]))]
    pub storage: StorageKind,
    /// The directory of local storage (created if missing).
    #[arg(long, env = "BIZOS_DATA_DIR", default_value = "/var/lib/bizos/files", value_parser = var(path))]
    pub data_dir: PathBuf,
    /// The S3 bucket (required with --storage s3).
    #[arg(long, env = "BIZOS_S3_BUCKET", value_parser = var(text))]
    pub s3_bucket: Option<String>,
    /// The bucket's region.
    #[arg(long, env = "BIZOS_S3_REGION", default_value = "us-east-1", value_parser = var(text))]
    pub s3_region: String,
    /// Endpoint of an S3-compatible service (MinIO, Ceph, R2 …), path-style
    /// requests; AWS when unset.
    #[arg(long, env = "BIZOS_S3_ENDPOINT", value_parser = var(text))]
    pub s3_endpoint: Option<String>,
    /// S3 access key id (else the AWS_* variables and instance credentials).
    #[arg(long, env = "BIZOS_S3_ACCESS_KEY_ID", value_parser = var(text))]
    pub s3_access_key_id: Option<String>,
    /// S3 secret access key (else the AWS_* variables and instance credentials).
    #[arg(long, env = "BIZOS_S3_SECRET_ACCESS_KEY", hide_env_values = true, value_parser = var(secret))]
    pub s3_secret_access_key: Option<SecretString>,
    /// Time limit of upload requests in seconds; an upload intent older than
    /// this plus 60 s is swept even if its BFF lives (give every BFF and worker
    /// of a database the same value).
    #[arg(long, env = "BIZOS_UPLOAD_TIMEOUT_SECS", default_value = "900", value_parser = var(positive_seconds))]
    pub upload_timeout_secs: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageKind {
    Local,
    S3,
}

fn storage_kind(v: &str) -> Result<StorageKind, String> {
    match v {
        "local" => Ok(StorageKind::Local),
        "s3" => Ok(StorageKind::S3),
        other => Err(format!("{other:?} is not one of local, s3")),
    }
}

/// Where uploaded files live.
#[derive(Debug, Clone)]
pub enum StorageSettings {
    /// A directory on this machine (`BIZOS_STORAGE=local`, the default).
    Local { root: PathBuf },
    /// An S3-compatible service (`BIZOS_STORAGE=s3`).
    S3 {
        bucket: String,
        region: String,
        /// For S3-compatible services (MinIO, Ceph, R2 …); AWS when absent.
        endpoint: Option<String>,
        access_key_id: Option<String>,
        secret_access_key: Option<SecretString>,
    },
}

impl StorageArgs {
    /// The backend, checking the variables that depend on each other.
    pub fn settings(&self) -> Result<StorageSettings, ConfigError> {
        Ok(match self.storage {
            StorageKind::Local => StorageSettings::Local {
                root: self.data_dir.clone(),
            },
            StorageKind::S3 => StorageSettings::S3 {
                bucket: self.s3_bucket.clone().ok_or(ConfigError::Missing {
                    var: "BIZOS_S3_BUCKET",
                    why: "BIZOS_STORAGE=s3 needs the bucket name",
                })?,
                region: self.s3_region.clone(),
                endpoint: self.s3_endpoint.clone(),
                access_key_id: self.s3_access_key_id.clone(),
                secret_access_key: self.s3_secret_access_key.clone(),
            },
        })
    }
}

/// Parts of a streamed upload are sent once this many bytes are buffered
/// (S3's minimum part size is 5 MiB).
const PART_BYTES: usize = 8 * 1024 * 1024;
/// Parts of one upload sent at the same time.
const PARTS_IN_FLIGHT: usize = 4;

#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    /// S3: parts are sent through the explicit multipart API, so an upload
    /// has an id under which its parts can be aborted after a crash.
    multipart: Option<Arc<dyn MultipartStore>>,
    /// The directory of the local backend (unfinished uploads are staging
    /// files `<key>#<n>` in it).
    local_root: Option<PathBuf>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Storage({})", self.store)
    }
}

impl Storage {
    pub fn from_settings(settings: &StorageSettings) -> anyhow::Result<Self> {
        match settings {
            StorageSettings::Local { root } => {
                std::fs::create_dir_all(root).map_err(|e| {
                    anyhow::anyhow!("cannot create BIZOS_DATA_DIR {}: {e}", root.display())
                })?;
                let root = std::fs::canonicalize(root).map_err(|e| {
                    anyhow::anyhow!("BIZOS_DATA_DIR {} is unusable: {e}", root.display())
                })?;
                let store = LocalFileSystem::new_with_prefix(&root).map_err(|e| {
                    anyhow::anyhow!("BIZOS_DATA_DIR {} is unusable: {e}", root.display())
                })?;
                Ok(Storage {
                    store: Arc::new(store),
                    multipart: None,
                    local_root: Some(root),
                })
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
                let s3 = Arc::new(
                    b.build()
                        .map_err(|e| anyhow::anyhow!("BIZOS_S3_* settings are unusable: {e}"))?,
                );
                Ok(Storage {
                    store: s3.clone(),
                    multipart: Some(s3),
                    local_root: None,
                })
            }
        }
    }

    /// Starts a streamed write of `key`; nothing is visible under the key
    /// until [`Upload::finish`]. With S3 the multipart upload exists from
    /// here on: [`Upload::multipart_id`] must be recorded before any part
    /// is written.
    pub async fn upload(&self, key: Path) -> anyhow::Result<Upload> {
        let writer = match &self.multipart {
            Some(multipart) => {
                let id = multipart.create_multipart(&key).await?;
                Writer::Parts(PartWriter {
                    store: multipart.clone(),
                    id,
                    buf: Vec::new(),
                    next: 0,
                    running: JoinSet::new(),
                    done: Vec::new(),
                })
            }
            None => Writer::Whole(WriteMultipart::new_with_chunk_size(
                self.store.put_multipart(&key).await?,
                PART_BYTES,
            )),
        };
        Ok(Upload {
            writer: Some(writer),
            key,
            store: self.store.clone(),
        })
    }

    /// Removes everything stored under `key`, finished or not: the object,
    /// the staging files of an unfinished local upload and, with S3, the
    /// parts of the multipart upload `multipart_id`. What is already gone
    /// is not an error.
    pub async fn purge(&self, key: &Path, multipart_id: Option<&str>) -> anyhow::Result<()> {
        if let (Some(store), Some(id)) = (&self.multipart, multipart_id) {
            match store.abort_multipart(key, &id.to_owned()).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(root) = &self.local_root {
            remove_staged(root, key)?;
        }
        self.delete(key).await
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
}

/// The local backend's staging files of `key` (`<key>#<n>`, left by an
/// upload that never finished).
fn remove_staged(root: &std::path::Path, key: &Path) -> anyhow::Result<()> {
    let Some(name) = key.filename() else {
        return Ok(());
    };
    let prefix = format!("{name}#");
    let mut dir = root.to_path_buf();
    let parts: Vec<_> = key.parts().collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        dir.push(part.as_ref());
    }
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

/// A streamed write in progress. Dropping it unfinished aborts the upload
/// (best effort: what a crash leaves is swept, see the module docs).
pub struct Upload {
    writer: Option<Writer>,
    key: Path,
    store: Arc<dyn ObjectStore>,
}

enum Writer {
    /// `put_multipart` (the local backend: one staging file, renamed when
    /// finished).
    Whole(WriteMultipart),
    /// S3's multipart API driven here, so the upload id is known.
    Parts(PartWriter),
}

struct PartWriter {
    store: Arc<dyn MultipartStore>,
    id: MultipartId,
    buf: Vec<u8>,
    /// Index of the next part.
    next: usize,
    running: JoinSet<(usize, object_store::Result<PartId>)>,
    done: Vec<Option<PartId>>,
}

impl PartWriter {
    fn send(&mut self, key: &Path, bytes: Vec<u8>) {
        let (store, key, id, idx) = (self.store.clone(), key.clone(), self.id.clone(), self.next);
        self.next += 1;
        self.running.spawn(async move {
            let result = store
                .put_part(&key, &id, idx, PutPayload::from(Bytes::from(bytes)))
                .await;
            (idx, result)
        });
    }

    /// Waits for one part in flight.
    async fn reap(&mut self) -> anyhow::Result<()> {
        if let Some(joined) = self.running.join_next().await {
            let (idx, result) = joined?;
            if self.done.len() <= idx {
                self.done.resize(idx + 1, None);
            }
            self.done[idx] = Some(result?);
        }
        Ok(())
    }
}

impl Upload {
    pub fn key(&self) -> &Path {
        &self.key
    }

    /// The S3 multipart upload id (none for the local backend).
    pub fn multipart_id(&self) -> Option<&str> {
        match &self.writer {
            Some(Writer::Parts(p)) => Some(&p.id),
            _ => None,
        }
    }

    /// Buffers a chunk, waiting when too many parts are in flight.
    pub async fn write(&mut self, chunk: &[u8]) -> anyhow::Result<()> {
        match self.writer.as_mut().expect("upload already finished") {
            Writer::Whole(writer) => {
                writer.wait_for_capacity(PARTS_IN_FLIGHT).await?;
                writer.write(chunk);
            }
            Writer::Parts(p) => {
                p.buf.extend_from_slice(chunk);
                while p.buf.len() >= PART_BYTES {
                    while p.running.len() >= PARTS_IN_FLIGHT {
                        p.reap().await?;
                    }
                    let rest = p.buf.split_off(PART_BYTES);
                    let part = std::mem::replace(&mut p.buf, rest);
                    p.send(&self.key, part);
                }
            }
        }
        Ok(())
    }

    pub async fn finish(mut self) -> anyhow::Result<()> {
        match self.writer.take().expect("upload already finished") {
            Writer::Whole(writer) => {
                writer.finish().await?;
            }
            Writer::Parts(mut p) => {
                // The last part may be short; an empty file is one empty part.
                if !p.buf.is_empty() || p.next == 0 {
                    let last = std::mem::take(&mut p.buf);
                    p.send(&self.key, last);
                }
                while !p.running.is_empty() {
                    p.reap().await?;
                }
                let parts: Option<Vec<PartId>> = p.done.iter().cloned().collect();
                let parts =
                    parts.ok_or_else(|| anyhow::anyhow!("a part of the upload is missing"))?;
                p.store.complete_multipart(&self.key, &p.id, parts).await?;
            }
        }
        Ok(())
    }

    pub async fn abort(mut self) {
        match self.writer.take() {
            Some(Writer::Whole(writer)) => {
                if let Err(e) = writer.abort().await {
                    tracing::warn!(error = %e, key = %self.key, "could not abort an upload");
                }
            }
            Some(Writer::Parts(mut p)) => {
                p.running.abort_all();
                if let Err(e) = p.store.abort_multipart(&self.key, &p.id).await {
                    tracing::warn!(error = %e, key = %self.key, "could not abort an upload");
                }
            }
            None => {}
        }
        // Local files of an aborted multipart write are already gone; a
        // finished one is removed here.
        let _ = self.store.delete(&self.key).await;
    }
}
