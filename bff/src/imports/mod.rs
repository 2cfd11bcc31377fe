//! Staged imports (feature IMP): parse an uploaded CSV/XLSX file and stream
//! its rows into the database's staging table; `process_import` does the rest.
