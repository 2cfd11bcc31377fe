//! The BFF through HTTP: routes, the OpenAPI contract, files, idempotency,
//! imports, the responses of writes, exact numbers and a generated client.

mod api;
mod contract;
mod crm;
mod customer_merge;
mod files;
mod files_s3;
mod generated_client;
mod idempotency;
mod import_locks;
mod imports;
mod marketing;
mod numbers;
mod receivables;
mod reports;
mod request_keys;
mod write_responses;
