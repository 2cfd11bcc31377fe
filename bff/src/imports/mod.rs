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
