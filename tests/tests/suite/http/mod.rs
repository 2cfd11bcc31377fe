//! The BFF through HTTP: routes, the OpenAPI contract, files, idempotency,
//! imports and the responses of writes.

mod api;
mod contract;
mod crm;
mod files;
mod files_s3;
mod idempotency;
mod import_locks;
mod imports;
mod receivables;
mod reports;
mod request_keys;
mod write_responses;
