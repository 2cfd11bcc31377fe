//! Files, their whole life in one place; routes only speak HTTP
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

mod handle;
pub mod storage;
pub mod sweep;
mod upload;

pub use handle::{Files, StoredFile};
pub use storage::{Storage, StorageArgs, StorageSettings, Upload};
pub use upload::{discard, leading_field, read_form, sniff, Bucket, Form, UploadedFile};
