//! Streaming multipart uploads: the file field goes straight to
//! storage in parts while its size is counted against the bucket's limit,
//! its content type is sniffed from the first bytes (the client's claim is
//! not trusted) and its sha256 computed. The object row is registered in
//! the transaction of the row that uses the file (see [`super`]); if that
//! fails, the stored bytes are removed again.
//!
//! Before the first byte is stored, an upload intent is committed
//! (`upload_begin`: the database picks the object id and derives the key);
//! `object_create` consumes it. What a crash leaves in between is swept
//! ([`super::sweep`]). A spooled copy (imports) is an unnamed
//! temporary file, which the kernel removes when the process ends, however
//! it ends.

use std::collections::BTreeMap;

use axum::extract::multipart::{Field, MultipartError};
use axum::http::StatusCode;
use object_store::path::Path;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use super::handle::Files;
use super::sweep::forget_later;
use crate::auth::Caller;
use crate::db::begin_as;
use crate::error::{ApiError, Result};
use crate::extract::Multipart;

/// Bytes looked at to decide the content type.
const SNIFF_BYTES: usize = 8192;
/// Limit of a plain (non-file) form field.
const FIELD_BYTES: usize = 64 * 1024;

/// A bucket's limits, as the database defines them (`storage_buckets`).
#[derive(Debug, Clone)]
pub struct Bucket {
    pub name: String,
    pub max_bytes: u64,
    pub content_types: Vec<String>,
}

impl Bucket {
    /// Reads the bucket under the caller's claims.
    pub async fn load(files: &Files, caller: &Caller, name: &str) -> Result<Bucket> {
        let mut tx = begin_as(&files.pool, caller).await?;
        let row: Option<(i64, Vec<String>)> = sqlx::query_as(
            "select max_bytes, content_types from storage_buckets where bucket = $1",
        )
        .bind(name)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        let (max_bytes, content_types) =
            row.ok_or_else(|| ApiError::invalid("bucket", format!("no bucket {name}")))?;
        Ok(Bucket {
            name: name.to_owned(),
            max_bytes: max_bytes.max(0) as u64,
            content_types,
        })
    }

    /// `content_types` holds SQL LIKE patterns such as `image/%`.
    pub fn accepts(&self, content_type: &str) -> bool {
        self.content_types
            .iter()
            .any(|p| match p.strip_suffix('%') {
                Some(prefix) => content_type.starts_with(prefix),
                None => content_type == p,
            })
    }
}

/// A file stored under `key` but not registered yet.
#[derive(Debug)]
pub struct UploadedFile {
    pub tenant_id: Uuid,
    pub object_id: Uuid,
    pub bucket: String,
    pub key: Path,
    pub file_name: String,
    pub content_type: String,
    pub size_bytes: u64,
    pub sha256: String,
    /// A local copy, when asked for (imports parse it): an unnamed
    /// temporary file (read it from the start).
    pub spool: Option<std::fs::File>,
}

impl UploadedFile {
    /// The payload of `object_create`.
    pub fn object_payload(&self) -> Value {
        json!({
            "object_id": self.object_id,
            "bucket": self.bucket,
            "file_name": self.file_name,
            "content_type": self.content_type,
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
        })
    }

    /// Registers the object row in the request's transaction.
    pub async fn register(&self, conn: &mut sqlx::PgConnection) -> Result<Value> {
        Ok(sqlx::query_scalar("select object_create($1)")
            .bind(self.object_payload())
            .fetch_one(conn)
            .await?)
    }
}

/// A parsed form: its text fields and its one file.
#[derive(Debug)]
pub struct Form {
    pub fields: BTreeMap<String, String>,
    pub file: UploadedFile,
}

impl Form {
    pub fn field(&self, name: &str) -> Result<&str> {
        self.fields
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiError::invalid(name, format!("{name} is required")))
    }

    /// What identifies the request for idempotency: fields and the file.
    pub fn fingerprint_parts(&self) -> Vec<Vec<u8>> {
        let mut parts: Vec<Vec<u8>> = self
            .fields
            .iter()
            .map(|(k, v)| format!("{k}={v}").into_bytes())
            .collect();
        parts.push(self.file.file_name.clone().into_bytes());
        parts.push(self.file.sha256.clone().into_bytes());
        parts
    }
}

fn multipart_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else {
        ApiError::BadRequest {
            message: format!("the multipart body is malformed: {}", e.body_text()),
            field: Some("file".into()),
        }
    }
}

/// The text of the form's first part, which must be the field `name`: a
/// field the rest of the form depends on (the bucket whose limits apply
/// while the file streams, the record the file joins), so it is read
/// before any file. `None` when the part is not text.
pub async fn leading_field(
    multipart: &mut Multipart,
    name: &'static str,
) -> Result<Option<String>> {
    let first = multipart
        .next_field()
        .await
        .map_err(|e| ApiError::BadRequest {
            message: format!("the multipart body is malformed: {}", e.body_text()),
            field: Some(name.into()),
        })?;
    match first {
        Some(field) if field.name() == Some(name) => Ok(field.text().await.ok()),
        _ => Err(ApiError::invalid(
            name,
            format!("send the {name} field first, then the file"),
        )),
    }
}

/// Reads a `multipart/form-data` body with one `file` field into `bucket`.
/// With `spool`, a local copy of the file is kept for parsing.
pub async fn read_form(
    files: &Files,
    caller: &Caller,
    mut multipart: Multipart,
    bucket: &Bucket,
    spool: bool,
) -> Result<Form> {
    let mut fields = BTreeMap::new();
    let mut file: Option<UploadedFile> = None;
    let read: Result<()> = async {
        while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
            let name = field.name().unwrap_or_default().to_owned();
            if name == "file" {
                if file.is_some() {
                    return Err(ApiError::invalid("file", "send exactly one file"));
                }
                file = Some(store_file(files, caller, field, bucket, spool).await?);
            } else {
                let value = read_text_field(field, &name).await?;
                fields.insert(name, value);
            }
        }
        Ok(())
    }
    .await;
    match (read, file) {
        (Ok(()), Some(file)) => Ok(Form { fields, file }),
        (Ok(()), None) => Err(ApiError::invalid(
            "file",
            "a file field named file is required",
        )),
        (Err(e), stored) => {
            if let Some(f) = stored {
                discard(files, &f);
            }
            Err(e)
        }
    }
}

impl Files {
    /// Keeps the stored bytes of `form` only when the request `registered`
    /// them; a failed request or a replay (which answers with the first
    /// request's file) leaves them unreferenced, so they are removed.
    pub fn keep_or_discard(&self, form: &Form, registered: bool) {
        if !registered {
            discard(self, &form.file);
        }
    }
}

/// Removes a stored but unregistered file and its upload intent (in the
/// background).
pub fn discard(files: &Files, file: &UploadedFile) {
    forget_later(
        files.pool.clone(),
        files.storage.clone(),
        file.tenant_id,
        file.object_id,
        file.key.clone(),
        None,
    );
}

async fn read_text_field(mut field: Field<'_>, name: &str) -> Result<String> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        if bytes.len() + chunk.len() > FIELD_BYTES {
            return Err(ApiError::invalid(name, "is too long"));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(|_| ApiError::invalid(name, "must be UTF-8 text"))
}

fn clean_file_name(raw: Option<&str>) -> Result<String> {
    // Browsers may send a path; keep its last component.
    let name = raw
        .unwrap_or_default()
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .trim();
    if name.is_empty() || name.chars().any(char::is_control) || name.chars().count() > 255 {
        return Err(ApiError::invalid(
            "file",
            "the file needs a name of 1 to 255 characters (the filename of the form field)",
        ));
    }
    Ok(name.to_owned())
}

async fn store_file(
    files: &Files,
    caller: &Caller,
    mut field: Field<'_>,
    bucket: &Bucket,
    spool: bool,
) -> Result<UploadedFile> {
    let file_name = clean_file_name(field.file_name())?;
    let declared = field.content_type().map(str::to_owned);
    let limit = bucket.max_bytes.min(files.max_bytes);

    // Decide the content type from the first bytes before storing anything.
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    let mut pending = None;
    while head.len() < SNIFF_BYTES {
        match field.chunk().await.map_err(multipart_error)? {
            Some(chunk) => {
                let take = (SNIFF_BYTES - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..take]);
                if take < chunk.len() {
                    pending = Some(chunk.slice(take..));
                    break;
                }
            }
            None => break,
        }
    }
    if head.is_empty() {
        return Err(ApiError::invalid("file", "the file is empty"));
    }
    let content_type = sniff(&head, &file_name, declared.as_deref());
    if !bucket.accepts(&content_type) {
        return Err(ApiError::UnsupportedMediaType {
            message: format!(
                "{file_name} is {content_type}; bucket {} accepts {}",
                bucket.name,
                bucket.content_types.join(", ").replace('%', "*")
            ),
            field: Some("file".into()),
        });
    }

    // The intent is committed before any byte is stored.
    let intent: Value = {
        let mut tx = begin_as(&files.pool, caller).await?;
        let intent = sqlx::query_scalar("select upload_begin($1, $2)")
            .bind(&bucket.name)
            .bind(files.owner_lock)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        intent
    };
    let (object_id, key) = match (
        intent["object_id"]
            .as_str()
            .and_then(|s| s.parse::<Uuid>().ok()),
        intent["object_key"].as_str(),
    ) {
        (Some(id), Some(key)) => (id, Path::from(key)),
        _ => return Err(anyhow::anyhow!("upload_begin returned {intent}").into()),
    };
    let forget = |multipart_id: Option<String>| {
        forget_later(
            files.pool.clone(),
            files.storage.clone(),
            caller.tenant_id,
            object_id,
            key.clone(),
            multipart_id,
        )
    };
    let mut upload = match files.storage.upload(key.clone()).await {
        Ok(upload) => upload,
        Err(e) => {
            forget(None);
            return Err(e.into());
        }
    };
    let multipart_id = upload.multipart_id().map(str::to_owned);
    if let Some(id) = &multipart_id {
        // Recorded before the first part, so a sweep can abort the parts.
        let started: Result<()> = async {
            let mut tx = begin_as(&files.pool, caller).await?;
            sqlx::query("select upload_started($1, $2)")
                .bind(object_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        }
        .await;
        if let Err(e) = started {
            upload.abort().await;
            forget(multipart_id);
            return Err(e);
        }
    }
    let mut spool_file = if spool {
        let opened: std::io::Result<_> = (|| {
            let file = tempfile::tempfile()?;
            let writer = tokio::fs::File::from_std(file.try_clone()?);
            Ok((file, writer))
        })();
        match opened {
            Ok(pair) => Some(pair),
            Err(e) => {
                upload.abort().await;
                forget(multipart_id);
                return Err(anyhow::Error::from(e).into());
            }
        }
    } else {
        None
    };
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;

    let outcome: Result<()> = async {
        let mut next = Some(bytes::Bytes::from(head));
        loop {
            let chunk = match next.take() {
                Some(c) => c,
                None => match pending.take() {
                    Some(c) => c,
                    None => match field.chunk().await.map_err(multipart_error)? {
                        Some(c) => c,
                        None => break,
                    },
                },
            };
            size += chunk.len() as u64;
            if size > limit {
                return Err(ApiError::TooLarge {
                    message: format!(
                        "{file_name} is larger than the {limit}-byte limit of bucket {}",
                        bucket.name
                    ),
                    field: Some("file".into()),
                });
            }
            hasher.update(&chunk);
            if let Some((_, f)) = spool_file.as_mut() {
                f.write_all(&chunk).await.map_err(anyhow::Error::from)?;
            }
            upload.write(&chunk).await?;
        }
        if let Some((_, f)) = spool_file.as_mut() {
            f.flush().await.map_err(anyhow::Error::from)?;
        }
        Ok(())
    }
    .await;
    if let Err(e) = outcome {
        upload.abort().await;
        forget(multipart_id);
        return Err(e);
    }
    if let Err(e) = upload.finish().await {
        forget(multipart_id);
        return Err(e.into());
    }
    Ok(UploadedFile {
        tenant_id: caller.tenant_id,
        object_id,
        bucket: bucket.name.clone(),
        key,
        file_name,
        content_type,
        size_bytes: size,
        sha256: hex::encode(hasher.finalize()),
        spool: spool_file.map(|(file, _)| file),
    })
}

/// The content type by the file's magic bytes; text by being UTF-8, then by
/// its extension (or the client's claim of CSV).
pub fn sniff(head: &[u8], file_name: &str, declared: Option<&str>) -> String {
    if let Some(kind) = infer::get(head) {
        return kind.mime_type().to_owned();
    }
    let text = !head.contains(&0)
        && match std::str::from_utf8(head) {
            Ok(_) => true,
            // A multi-byte character cut at the end of the sniffed bytes.
            Err(e) => e.error_len().is_none(),
        };
    if !text {
        return "application/octet-stream".into();
    }
    let ext = file_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "csv" => "text/csv".into(),
        "md" | "markdown" => "text/markdown".into(),
        "html" | "htm" => "text/html".into(),
        _ if declared.is_some_and(|d| d.starts_with("text/csv")) => "text/csv".into(),
        _ => "text/plain".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing_ignores_what_the_client_claims() {
        let png = [
            0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d,
        ];
        assert_eq!(
            sniff(&png, "photo.pdf", Some("application/pdf")),
            "image/png"
        );
        assert_eq!(sniff(b"%PDF-1.7\n", "x.png", None), "application/pdf");
        assert_eq!(
            sniff(b"name;npwp\nPT A;01\n", "leads.csv", None),
            "text/csv"
        );
        assert_eq!(sniff(b"a,b\n1,2\n", "upload", Some("text/csv")), "text/csv");
        assert_eq!(sniff(b"hello", "notes.txt", None), "text/plain");
        assert_eq!(
            sniff(&[0, 1, 2, 3, 0xff, 0xfe], "leads.csv", Some("text/csv")),
            "application/octet-stream"
        );
        // "é" cut in half at the end of the sniffed bytes is still text.
        assert_eq!(sniff(&[b'a', 0xc3], "a.txt", None), "text/plain");
    }

    #[test]
    fn bucket_patterns() {
        let b = Bucket {
            name: "media".into(),
            max_bytes: 10,
            content_types: vec!["image/%".into(), "video/mp4".into()],
        };
        assert!(b.accepts("image/png"));
        assert!(b.accepts("video/mp4"));
        assert!(!b.accepts("video/webm"));
        assert!(!b.accepts("application/pdf"));
    }

    #[test]
    fn file_names_lose_their_paths() {
        assert_eq!(clean_file_name(Some("C:\\docs\\a.pdf")).unwrap(), "a.pdf");
        assert_eq!(clean_file_name(Some("../../etc/passwd")).unwrap(), "passwd");
        assert!(clean_file_name(Some("")).is_err());
        assert!(clean_file_name(None).is_err());
        assert!(clean_file_name(Some("a\nb")).is_err());
    }
}
