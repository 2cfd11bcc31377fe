//! Staged imports (feature IMP): parse an uploaded CSV/XLSX file and stream
//! its rows into the database's staging table; `process_import` does the rest.
//!
//! A route uses it as: spool the upload to a file, [`open_rows`] (format and
//! header, or a [`ParseError`] for the field `file`), `import_create` with the
//! header, [`stage_rows`], `import_stage_finish`, commit; then
//! `process_import` once per transaction until nothing is pending.

pub mod job;
pub mod parse;
pub mod stage;

pub use parse::{Format, ParseError, Row};
pub use stage::{open_rows, open_rows_from, stage_rows, RowStream, StageError};

use clap::Args;

use crate::vars::{positive, var};

/// The largest batch process_import takes (its `batch_size` check,
/// sql/api/imports.sql): a larger BIZOS_IMPORT_BATCH_ROWS is refused at
/// start rather than by every import.
pub const MAX_IMPORT_BATCH_ROWS: u32 = 50_000;

/// The variables of imports (`bizos serve`, which processes small imports
/// at once, and `bizos worker`). Each is also a flag.
#[derive(Args, Debug, Clone)]
pub struct ImportArgs {
    /// Rows per process_import transaction (1 to 50000).
    #[arg(long, env = "BIZOS_IMPORT_BATCH_ROWS", default_value = "2000", value_parser = var(batch_rows))]
    pub import_batch_rows: u32,
}

fn batch_rows(v: &str) -> Result<u32, String> {
    let n: u32 = positive(v)?;
    if n > MAX_IMPORT_BATCH_ROWS {
        return Err(format!("must be between 1 and {MAX_IMPORT_BATCH_ROWS}"));
    }
    Ok(n)
}
