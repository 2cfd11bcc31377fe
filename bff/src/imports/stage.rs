//! Streaming the parsed rows of an upload into the database's staging table.
//!
//! The parser runs on a blocking thread ([`open_rows`]) and feeds a bounded
//! channel; [`stage_rows`] turns each row into one line of COPY text format
//! (`row_no`, then the row as a JSON object of header name → cell, empty
//! cells left out) and sends them in chunks of about 1 MB, so neither side
//! holds more than a channel's worth of rows and one chunk, whatever the
//! size of the file.
//!
//! The caller's transaction (already under the user's claims) then runs:
//! `import_create` (with [`RowStream::header`]), [`stage_rows`],
//! `import_stage_finish(import_id)`; a [`StageError`] means roll back.

use std::path::PathBuf;

use sqlx::PgConnection;
use tokio::sync::{mpsc, oneshot};

use super::parse::{self, Flow, Format, ParseError, Row, Visitor};

/// Rows buffered between the parser thread and the COPY.
pub const ROW_BUFFER: usize = 1024;
/// A COPY message is sent when the buffer reaches this size.
pub const CHUNK_BYTES: usize = 1 << 20;

/// An opened upload: its format and header, and its rows as they are read.
/// A parse error after the header arrives in `rows` and ends it.
pub struct RowStream {
    pub format: Format,
    pub header: Vec<String>,
    pub rows: mpsc::Receiver<Result<Row, ParseError>>,
}

/// Why staging stopped. Either way the transaction must be rolled back.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// The file (field `file`): see [`ParseError`].
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Starts reading `path` on a blocking thread; returns once the header is
/// known (or the file turned out unusable before it: not a spreadsheet,
/// empty, bad header).
pub async fn open_rows(path: PathBuf) -> Result<RowStream, ParseError> {
    open_rows_from(std::fs::File::open(path)?).await
}

/// [`open_rows`] of an open file (read from its start).
pub async fn open_rows_from(file: std::fs::File) -> Result<RowStream, ParseError> {
    let (header_tx, header_rx) = oneshot::channel();
    let (row_tx, rows) = mpsc::channel(ROW_BUFFER);
    tokio::task::spawn_blocking(move || {
        let mut sink = ChannelSink {
            header: Some(header_tx),
            rows: row_tx,
        };
        if let Err(e) = parse::read_from(file, &mut sink) {
            match sink.header.take() {
                Some(header_tx) => {
                    let _ = header_tx.send(Err(e));
                }
                None => {
                    let _ = sink.rows.blocking_send(Err(e));
                }
            }
        }
    });
    let (format, header) = header_rx.await.map_err(|_| {
        ParseError::Io(std::io::Error::other(
            "the file reader stopped unexpectedly",
        ))
    })??;
    Ok(RowStream {
        format,
        header,
        rows,
    })
}

/// The format and header, or why the file has none.
type HeaderResult = Result<(Format, Vec<String>), ParseError>;

struct ChannelSink {
    header: Option<oneshot::Sender<HeaderResult>>,
    rows: mpsc::Sender<Result<Row, ParseError>>,
}

impl Visitor for ChannelSink {
    fn header(&mut self, format: Format, header: Vec<String>) -> Flow {
        match self.header.take().map(|tx| tx.send(Ok((format, header)))) {
            Some(Ok(())) => Flow::Continue,
            _ => Flow::Stop,
        }
    }

    fn row(&mut self, row: Row) -> Flow {
        match self.rows.blocking_send(Ok(row)) {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Stop,
        }
    }
}

/// Creates the caller's `pg_temp.import_stage` (through
/// `import_stage_open()`, dropped at commit) and COPYs `rows` into it.
/// Returns the number of rows staged. A parse error ends the COPY and is
/// returned as [`StageError::Parse`].
pub async fn stage_rows(
    conn: &mut PgConnection,
    rows: &mut mpsc::Receiver<Result<Row, ParseError>>,
    header: &[String],
) -> Result<u64, StageError> {
    sqlx::query("select import_stage_open()")
        .execute(&mut *conn)
        .await?;
    let keys: Vec<String> = header.iter().map(|h| json_string(h)).collect();
    let mut copy = conn
        .copy_in_raw("copy pg_temp.import_stage (row_no, data) from stdin (format text)")
        .await?;
    let mut buf = Vec::with_capacity(CHUNK_BYTES + 64 * 1024);
    let mut json = String::new();
    let mut staged = 0u64;
    while let Some(item) = rows.recv().await {
        let row = match item {
            Ok(row) => row,
            Err(e) => {
                copy.abort("the file could not be read").await.ok();
                return Err(StageError::Parse(e));
            }
        };
        row_json(&keys, &row.cells, &mut json);
        copy_line(&mut buf, row.row_no, &json);
        staged += 1;
        if buf.len() >= CHUNK_BYTES {
            copy.send(buf.as_slice()).await?;
            buf.clear();
        }
    }
    if !buf.is_empty() {
        copy.send(buf.as_slice()).await?;
    }
    copy.finish().await?;
    Ok(staged)
}

/// A string as a JSON string literal.
fn json_string(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// `{"col": "cell", ...}` of the non-empty cells, into `out`.
fn row_json(keys: &[String], cells: &[String], out: &mut String) {
    out.clear();
    out.push('{');
    let mut first = true;
    for (key, cell) in keys.iter().zip(cells) {
        if cell.is_empty() {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(key);
        out.push(':');
        out.push_str(&json_string(cell));
    }
    out.push('}');
}

/// One line of COPY text format: `row_no<TAB>json<LF>`, with the characters
/// COPY treats specially escaped (serialized JSON has no raw control
/// characters, but it has backslashes).
fn copy_line(buf: &mut Vec<u8>, row_no: u32, json: &str) {
    buf.extend_from_slice(row_no.to_string().as_bytes());
    buf.push(b'\t');
    for &b in json.as_bytes() {
        match b {
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\r' => buf.extend_from_slice(b"\\r"),
            _ => buf.push(b),
        }
    }
    buf.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_become_json_objects_without_empty_cells() {
        let keys: Vec<String> = ["company_name", "npwp", "notes"]
            .iter()
            .map(|k| json_string(k))
            .collect();
        let mut out = String::new();
        row_json(
            &keys,
            &["PT \"Satu\"".into(), String::new(), "a\\b\tc\nd".into()],
            &mut out,
        );
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"company_name": "PT \"Satu\"", "notes": "a\\b\tc\nd"})
        );
    }

    #[test]
    fn copy_text_escapes_backslashes_and_control_characters() {
        let mut buf = Vec::new();
        copy_line(&mut buf, 7, r#"{"a":"x\\y\n"}"#);
        assert_eq!(buf, b"7\t{\"a\":\"x\\\\\\\\y\\\\n\"}\n".to_vec());
        let mut buf = Vec::new();
        copy_line(&mut buf, 1, "a\tb\r\n");
        assert_eq!(buf, b"1\ta\\tb\\r\\n\n".to_vec());
    }
}
