//! Reading an uploaded spreadsheet: the header and then the rows, one at a
//! time, with bounded memory.
//!
//! The format is decided by the content, never by the file name: a ZIP
//! archive must be an XLSX workbook (read with `calamine`, first worksheet,
//! streamed cell by cell); anything else must be UTF-8 text and is read as
//! CSV (`csv` crate; a UTF-8 BOM is skipped; the delimiter, `,` `;` or tab,
//! is the one the header line uses most outside quotes).
//!
//! What the database receives is text it parses itself: cells are trimmed;
//! XLSX numbers become plain decimals (no exponent, no thousands
//! separators; a whole number whose number format is all zeros, such as an
//! NPWP typed as a number, keeps its leading zeros), dates `YYYY-MM-DD`
//! (with `THH:MM:SS` when there is a time), booleans `true`/`false` and
//! error cells their Excel text (`#N/A`), which then fails the field's
//! validation as a row error.
//!
//! Decisions:
//! - The first row that is not blank is the header. Column names are
//!   normalised (trimmed, lower case, runs of spaces and dashes as `_`);
//!   blank names at the end are dropped (spreadsheet exports pad rows), a
//!   blank name before a named column or a name used twice is
//!   [`ParseError::BadHeader`]. Whether the names fit the module is the
//!   database's decision (`import_create`).
//! - `row_no` counts the records after the header (1 = the first one), blank
//!   records included, so row N of an error report is spreadsheet row
//!   header + N. Blank rows are skipped, not sent.
//! - Ragged rows: missing cells at the end of a row are empty cells (the
//!   usual export); a non-empty cell beyond the header's last column makes
//!   the whole file [`ParseError::Malformed`]: its data would be lost or
//!   shifted, and a file with misaligned columns is not fit to import row by
//!   row.
//! - Quotes: a quoted field that is never closed would swallow the rest of
//!   the file into one cell (the `csv` crate ends it at the end of the file
//!   without complaint), and a closing quote followed by more text means a
//!   stray `"` closed the field early, after swallowing the lines between.
//!   Both make the whole file [`ParseError::Malformed`] at the line where
//!   the quoted field starts, for the same reason as ragged rows: the rows
//!   cannot be trusted. Spaces after a closing quote are allowed (`"a" ,b`),
//!   and a `"` inside an unquoted field is an ordinary character (`5" pipe`),
//!   as the `csv` crate reads them. [`QuoteCheck`] follows the bytes beside
//!   the parser to find these.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use calamine::{DataRef, ExcelDateTime, Reader, Xlsx};

/// How much of the file is read to decide its format.
const SNIFF_BYTES: usize = 64 * 1024;

/// The formats an import accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Xlsx,
}

impl Format {
    /// The MIME type of the format, for the stored object.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }
}

/// One data row of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// 1 = the first record after the header.
    pub row_no: u32,
    /// Where the row starts in the file: the CSV line, or the worksheet row
    /// (1-based, as Excel shows it).
    pub line: u64,
    /// The cells by header position, trimmed; empty when blank. Never longer
    /// than the header.
    pub cells: Vec<String>,
}

/// Why a file cannot be imported. Every variant is about the field `file`
/// of the upload (415 for [`ParseError::NotASpreadsheet`], 422 otherwise);
/// [`ParseError::Io`] is a server-side failure.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("the file is not a CSV or XLSX spreadsheet: {0}")]
    NotASpreadsheet(String),
    #[error("the file is empty")]
    Empty,
    #[error("the header row is not usable: {message}")]
    BadHeader { message: String },
    #[error("line {line}: {message}")]
    Malformed { line: u64, message: String },
    #[error("reading the file: {0}")]
    Io(#[from] std::io::Error),
}

/// What to do after a header or a row was handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// The receiver is gone; stop reading.
    Stop,
}

/// Receives what [`read_file`] reads, in order: the header once, then rows.
pub trait Visitor {
    fn header(&mut self, format: Format, header: Vec<String>) -> Flow;
    fn row(&mut self, row: Row) -> Flow;
}

/// Reads `path` and hands its header and rows to `visitor`. Returns the
/// number of rows handed over.
pub fn read_file(path: &Path, visitor: &mut impl Visitor) -> Result<u64, ParseError> {
    read_from(File::open(path)?, visitor)
}

/// [`read_file`] of an open file, read from its start.
pub fn read_from(mut file: File, visitor: &mut impl Visitor) -> Result<u64, ParseError> {
    file.seek(SeekFrom::Start(0))?;
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    (&mut file)
        .take(SNIFF_BYTES as u64)
        .read_to_end(&mut head)?;
    if head.is_empty() {
        return Err(ParseError::Empty);
    }
    file.seek(SeekFrom::Start(0))?;
    if head.starts_with(b"PK\x03\x04") {
        read_xlsx(file, visitor)
    } else if head.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
        Err(ParseError::NotASpreadsheet(
            "an Excel 97-2003 (.xls) workbook; save it as XLSX or CSV".into(),
        ))
    } else {
        let bom = head.starts_with(b"\xEF\xBB\xBF");
        let text = if bom { &head[3..] } else { &head[..] };
        if !looks_like_text(text, head.len() == SNIFF_BYTES) {
            return Err(ParseError::NotASpreadsheet(
                "neither an XLSX workbook nor UTF-8 text (save a CSV as \"CSV UTF-8\")".into(),
            ));
        }
        let delimiter = sniff_delimiter(text);
        if bom {
            file.seek(SeekFrom::Start(3))?;
        }
        read_csv(file, delimiter, visitor)
    }
}

/// Reads a whole file into memory (tests and small files).
pub fn read_all(path: &Path) -> Result<(Format, Vec<String>, Vec<Row>), ParseError> {
    #[derive(Default)]
    struct Collect {
        format: Option<Format>,
        header: Vec<String>,
        rows: Vec<Row>,
    }
    impl Visitor for Collect {
        fn header(&mut self, format: Format, header: Vec<String>) -> Flow {
            self.format = Some(format);
            self.header = header;
            Flow::Continue
        }
        fn row(&mut self, row: Row) -> Flow {
            self.rows.push(row);
            Flow::Continue
        }
    }
    let mut c = Collect::default();
    read_file(path, &mut c)?;
    let format = c.format.ok_or(ParseError::Empty)?;
    Ok((format, c.header, c.rows))
}

/// UTF-8 without NUL bytes (a sequence cut at the end of a partial read is
/// fine).
fn looks_like_text(bytes: &[u8], truncated: bool) -> bool {
    if bytes.contains(&0) {
        return false;
    }
    match std::str::from_utf8(bytes) {
        Ok(_) => true,
        Err(e) => truncated && e.error_len().is_none(),
    }
}

/// The delimiter the first line uses most outside quotes: `,` (also when
/// there is none: a one-column file), `;` or tab.
fn sniff_delimiter(text: &[u8]) -> u8 {
    let (mut comma, mut semicolon, mut tab) = (0usize, 0usize, 0usize);
    let mut quoted = false;
    for &b in text {
        match b {
            b'"' => quoted = !quoted,
            b'\n' | b'\r' if !quoted => break,
            b',' if !quoted => comma += 1,
            b';' if !quoted => semicolon += 1,
            b'\t' if !quoted => tab += 1,
            _ => {}
        }
    }
    if semicolon > comma && semicolon >= tab {
        b';'
    } else if tab > comma && tab > semicolon {
        b'\t'
    } else {
        b','
    }
}

/// `Company Name` → `company_name`; `E-mail` → `e_mail`.
pub fn normalise_column(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut gap = false;
    for ch in name.trim().chars() {
        if ch.is_whitespace() || ch == '-' {
            gap = true;
            continue;
        }
        if gap && !out.is_empty() {
            out.push('_');
        }
        gap = false;
        out.extend(ch.to_lowercase());
    }
    out
}

/// The normalised header, or why it cannot be used.
fn make_header(raw: &[String]) -> Result<Vec<String>, ParseError> {
    let mut names: Vec<String> = raw.iter().map(|c| normalise_column(c)).collect();
    while names.last().is_some_and(|n| n.is_empty()) {
        names.pop();
    }
    if let Some(pos) = names.iter().position(|n| n.is_empty()) {
        return Err(ParseError::BadHeader {
            message: format!("column {} has no name", pos + 1),
        });
    }
    let mut seen = std::collections::HashSet::new();
    let mut dup: Vec<&str> = names
        .iter()
        .filter(|n| !seen.insert(n.as_str()))
        .map(String::as_str)
        .collect();
    if !dup.is_empty() {
        dup.sort_unstable();
        dup.dedup();
        return Err(ParseError::BadHeader {
            message: format!("duplicate column(s) {}", dup.join(", ")),
        });
    }
    Ok(names)
}

/// Cells of a data row fitted to the header: trimmed, padded with empty
/// cells; `None` for a blank row; an error for a non-empty cell beyond the
/// header.
/// Hands the data row `row_no` at `line`, fitted to the header's `width`
/// ([`fit_row`]), to the visitor and counts it in `rows`; a blank row is
/// passed over (the visitor's answer is then to go on).
fn visit_row<S: AsRef<str>>(
    visitor: &mut impl Visitor,
    cells: impl Iterator<Item = (usize, S)>,
    width: usize,
    row_no: u32,
    line: u64,
    rows: &mut u64,
) -> Result<Flow, ParseError> {
    let Some(cells) = fit_row(cells, width, line)? else {
        return Ok(Flow::Continue);
    };
    *rows += 1;
    Ok(visitor.row(Row {
        row_no,
        line,
        cells,
    }))
}

fn fit_row<S: AsRef<str>>(
    cells: impl Iterator<Item = (usize, S)>,
    width: usize,
    line: u64,
) -> Result<Option<Vec<String>>, ParseError> {
    let mut out = vec![String::new(); width];
    let mut blank = true;
    for (i, cell) in cells {
        let cell = cell.as_ref().trim();
        if cell.is_empty() {
            continue;
        }
        if cell.contains('\0') {
            return Err(ParseError::Malformed {
                line,
                message: format!("column {} contains a NUL character", i + 1),
            });
        }
        if i >= width {
            return Err(ParseError::Malformed {
                line,
                message: format!(
                    "the row has a value in column {} but the header names only {} column(s)",
                    i + 1,
                    width
                ),
            });
        }
        blank = false;
        out[i] = cell.to_owned();
    }
    Ok((!blank).then_some(out))
}

/// Where quoting goes wrong in CSV text, found by following the bytes as
/// the `csv` crate reads them (RFC 4180 quoting: a field that starts with
/// `"` is quoted, `""` inside it is a quote, the next lone `"` closes it).
/// It wraps the file under the parser, so every byte is looked at once.
struct QuoteCheck<R> {
    inner: R,
    delimiter: u8,
    state: QuoteState,
    /// 1-based line of the byte being looked at.
    line: u64,
    /// Line where the current quoted field started.
    opened: u64,
    eof: bool,
    problem: Option<(u64, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QuoteState {
    /// At the start of a field (or a record).
    FieldStart,
    /// In an unquoted field: a quote is an ordinary character.
    Unquoted,
    Quoted,
    /// A quote in a quoted field: an escaped `""` or the closing quote.
    QuoteInQuoted,
    /// Spaces after a closing quote.
    AfterQuoted,
}

impl<R: Read> QuoteCheck<R> {
    fn new(inner: R, delimiter: u8) -> Self {
        QuoteCheck {
            inner,
            delimiter,
            state: QuoteState::FieldStart,
            line: 1,
            opened: 0,
            eof: false,
            problem: None,
        }
    }

    fn look(&mut self, bytes: &[u8]) {
        use QuoteState::*;
        for &b in bytes {
            if self.problem.is_some() {
                return;
            }
            let end = b == self.delimiter || b == b'\n' || b == b'\r';
            self.state = match (self.state, b) {
                (FieldStart, b'"') => {
                    self.opened = self.line;
                    Quoted
                }
                (FieldStart | Unquoted | AfterQuoted, _) if end => FieldStart,
                (FieldStart | Unquoted, _) => Unquoted,
                (Quoted, b'"') => QuoteInQuoted,
                (Quoted, _) => Quoted,
                (QuoteInQuoted, b'"') => Quoted,
                (QuoteInQuoted, _) if end => FieldStart,
                (QuoteInQuoted | AfterQuoted, b' ' | b'\t') => AfterQuoted,
                (QuoteInQuoted | AfterQuoted, _) => {
                    self.problem = Some((
                        self.opened,
                        format!(
                            "the quoted field that starts on this line is closed on line {} \
                             and followed by more text; a quote inside a quoted field is \
                             written \"\" (is there a stray \"?)",
                            self.line
                        ),
                    ));
                    return;
                }
            };
            if b == b'\n' {
                self.line += 1;
            }
        }
    }

    /// The first problem seen so far (an unclosed quote once the whole
    /// file has been read).
    fn problem(&self) -> Option<ParseError> {
        if let Some((line, message)) = &self.problem {
            return Some(ParseError::Malformed {
                line: *line,
                message: message.clone(),
            });
        }
        (self.eof && self.state == QuoteState::Quoted).then(|| ParseError::Malformed {
            line: self.opened,
            message: "a quoted field starts on this line and is never closed, so the rest of \
                      the file would become one cell (is there a stray \"?)"
                .into(),
        })
    }
}

impl<R: Read> Read for QuoteCheck<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.eof = true;
        }
        self.look(&buf[..n]);
        Ok(n)
    }
}

fn read_csv(file: File, delimiter: u8, visitor: &mut impl Visitor) -> Result<u64, ParseError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(BufReader::with_capacity(
            256 * 1024,
            QuoteCheck::new(file, delimiter),
        ));
    let mut record = csv::StringRecord::new();
    let mut header: Option<usize> = None;
    let mut row_no: u32 = 0;
    let mut rows = 0u64;
    loop {
        let more = reader.read_record(&mut record).map_err(csv_error)?;
        // The checker reads ahead of the parser: a problem it found fails
        // the file before the record that holds it is handed over.
        if let Some(problem) = reader.get_ref().get_ref().problem() {
            return Err(problem);
        }
        if !more {
            break;
        }
        let line = record.position().map_or(0, |p| p.line());
        match header {
            None => {
                if record.iter().all(|c| c.trim().is_empty()) {
                    continue;
                }
                let raw: Vec<String> = record.iter().map(str::to_owned).collect();
                let names = make_header(&raw)?;
                header = Some(names.len());
                if visitor.header(Format::Csv, names) == Flow::Stop {
                    return Ok(rows);
                }
            }
            Some(width) => {
                row_no = row_no.checked_add(1).ok_or_else(|| ParseError::Malformed {
                    line,
                    message: "too many rows".into(),
                })?;
                let cells = record.iter().enumerate();
                if visit_row(visitor, cells, width, row_no, line, &mut rows)? == Flow::Stop {
                    return Ok(rows);
                }
            }
        }
    }
    if header.is_none() {
        return Err(ParseError::Empty);
    }
    Ok(rows)
}

fn csv_error(e: csv::Error) -> ParseError {
    let line = e.position().map_or(0, |p| p.line());
    match e.into_kind() {
        csv::ErrorKind::Io(io) => ParseError::Io(io),
        csv::ErrorKind::Utf8 { err, .. } => ParseError::Malformed {
            line,
            message: format!("field {} is not valid UTF-8 text", err.field() + 1),
        },
        other => ParseError::Malformed {
            line,
            message: format!("{other:?}"),
        },
    }
}

fn read_xlsx(file: File, visitor: &mut impl Visitor) -> Result<u64, ParseError> {
    let mut workbook: Xlsx<_> = Xlsx::new(BufReader::new(file)).map_err(|e| {
        ParseError::NotASpreadsheet(format!("a ZIP archive that is not an XLSX workbook ({e})"))
    })?;
    let Some(sheet) = workbook.sheet_names().first().cloned() else {
        return Err(ParseError::Empty);
    };
    let mut cells = workbook.worksheet_cells_reader(&sheet).map_err(|e| {
        ParseError::NotASpreadsheet(format!("unreadable worksheet {sheet:?} ({e})"))
    })?;

    // Cells arrive row by row, left to right; a row is complete when the
    // next row starts.
    let mut header: Option<(u32, usize)> = None;
    let mut current: Option<u32> = None;
    let mut pending: Vec<(usize, String)> = Vec::new();
    let mut rows = 0u64;
    loop {
        let next = cells
            .next_cell_with_style_id()
            .map_err(|e| ParseError::Malformed {
                line: current.map_or(0, |r| u64::from(r) + 1),
                message: format!("unreadable cell ({e})"),
            })?;
        let next_row = next.as_ref().map(|(c, _)| c.get_position().0);
        if current.is_some() && next_row != current {
            let row = current.unwrap_or_default();
            let line = u64::from(row) + 1;
            let row_cells = std::mem::take(&mut pending);
            match header {
                None => {
                    if row_cells.iter().any(|(_, c)| !c.trim().is_empty()) {
                        let width = row_cells.iter().map(|(i, _)| i + 1).max().unwrap_or(0);
                        let mut raw = vec![String::new(); width];
                        for (i, c) in row_cells {
                            raw[i] = c;
                        }
                        let names = make_header(&raw)?;
                        header = Some((row, names.len()));
                        if visitor.header(Format::Xlsx, names) == Flow::Stop {
                            return Ok(rows);
                        }
                    }
                }
                Some((header_row, width)) => {
                    let (cells, row_no) = (row_cells.into_iter(), row - header_row);
                    if visit_row(visitor, cells, width, row_no, line, &mut rows)? == Flow::Stop {
                        return Ok(rows);
                    }
                }
            }
        }
        let Some((cell, style)) = next else { break };
        let (row, col) = cell.get_position();
        current = Some(row);
        let format = cells
            .styles()
            .get(style)
            .and_then(|s| s.number_format.as_ref())
            .map(|f| f.format_code.as_str());
        let text = zero_pad(render(cell.get_value()), format);
        if !text.is_empty() {
            pending.push((col as usize, text));
        }
    }
    if header.is_none() {
        return Err(ParseError::Empty);
    }
    Ok(rows)
}

/// A cell as text the database parses (see the module documentation).
fn render(value: &DataRef<'_>) -> String {
    match value {
        DataRef::Empty => String::new(),
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => {
            s.trim().to_owned()
        }
        DataRef::SharedString(s) => s.trim().to_owned(),
        DataRef::Int(i) => i.to_string(),
        DataRef::Float(f) => render_float(*f),
        DataRef::Bool(b) => b.to_string(),
        DataRef::DateTime(dt) => render_datetime(dt),
        DataRef::Error(e) => e.to_string(),
    }
}

/// A whole number shown with a number format of zeros only (`000000000000000`,
/// how NPWPs and phone numbers typed as numbers keep their leading zeros in
/// Excel) is padded to the format's width, as the user sees it.
fn zero_pad(text: String, format: Option<&str>) -> String {
    match format {
        Some(f)
            if !f.is_empty()
                && f.bytes().all(|b| b == b'0')
                && !text.is_empty()
                && text.len() < f.len()
                && text.bytes().all(|b| b.is_ascii_digit()) =>
        {
            format!("{text:0>width$}", width = f.len())
        }
        _ => text,
    }
}

/// A plain decimal: no exponent, no grouping, no trailing `.0`. Excel keeps
/// 15 significant digits, so binary noise beyond them is rounded away.
fn render_float(f: f64) -> String {
    if !f.is_finite() {
        return f.to_string();
    }
    if f.fract() == 0.0 && f.abs() < 1e15 {
        return format!("{f:.0}");
    }
    let magnitude = f.abs().log10().floor() as i32;
    let decimals = (14 - magnitude).clamp(0, 30) as usize;
    let s = format!("{f:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

fn render_datetime(dt: &ExcelDateTime) -> String {
    if dt.is_duration() {
        let total = (dt.as_f64() * 86_400.0).round() as i64;
        let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60);
        return format!("{h:02}:{m:02}:{s:02}");
    }
    let (y, mo, d, h, mi, s, ms) = dt.to_ymd_hms_milli();
    if (h, mi, s, ms) == (0, 0, 0, 0) {
        format!("{y:04}-{mo:02}-{d:02}")
    } else {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::path::PathBuf;

    /// A visitor that counts the rows it is handed, and stops at the
    /// `stop_at`th when set.
    #[derive(Default)]
    struct Count {
        rows: u32,
        stop_at: Option<u32>,
    }

    impl Visitor for Count {
        fn header(&mut self, _: Format, _: Vec<String>) -> Flow {
            Flow::Continue
        }
        fn row(&mut self, _: Row) -> Flow {
            self.rows += 1;
            if self.stop_at == Some(self.rows) {
                Flow::Stop
            } else {
                Flow::Continue
            }
        }
    }

    /// A file of its own in the system temp directory, removed on drop.
    struct TempFile(PathBuf);
    impl TempFile {
        fn with(bytes: &[u8]) -> TempFile {
            let path = std::env::temp_dir().join(format!(
                "bizos-imports-{}-{}",
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            ));
            let mut f = File::create(&path).unwrap();
            f.write_all(bytes).unwrap();
            TempFile(path)
        }
    }
    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn parse(bytes: &[u8]) -> Result<(Format, Vec<String>, Vec<Row>), ParseError> {
        let f = TempFile::with(bytes);
        read_all(&f.0)
    }

    /// Asserts that the file fails as a whole at `line`, its message
    /// saying `says`.
    fn assert_malformed(bytes: &[u8], line: u64, says: &str) {
        match parse(bytes) {
            Err(ParseError::Malformed { line: at, message }) if at == line => {
                assert!(message.contains(says), "{message}")
            }
            other => panic!("expected line {line} to be malformed ({says}), got {other:?}"),
        }
    }

    fn cells(rows: &[Row]) -> Vec<Vec<&str>> {
        rows.iter()
            .map(|r| r.cells.iter().map(String::as_str).collect())
            .collect()
    }

    #[test]
    fn csv_with_comma_header_normalised_and_cells_trimmed() {
        let (format, header, rows) = parse(
            b"Company Name, NPWP ,E-mail\n PT Satu ,01.234,a@b.id\n\"PT \"\"Dua\"\", Tbk\",,\n",
        )
        .unwrap();
        assert_eq!(format, Format::Csv);
        assert_eq!(header, vec!["company_name", "npwp", "e_mail"]);
        assert_eq!(
            cells(&rows),
            vec![
                vec!["PT Satu", "01.234", "a@b.id"],
                vec!["PT \"Dua\", Tbk", "", ""]
            ]
        );
        assert_eq!((rows[0].row_no, rows[0].line), (1, 2));
        assert_eq!((rows[1].row_no, rows[1].line), (2, 3));
    }

    #[test]
    fn csv_semicolon_bom_crlf_and_blank_rows() {
        let (_, header, rows) =
            parse(b"\xEF\xBB\xBFcompany_name;city\r\nPT Satu;Bandung\r\n;\r\n\r\nPT Dua;\"Jakarta; Pusat\"\r\n")
                .unwrap();
        assert_eq!(header, vec!["company_name", "city"]);
        assert_eq!(
            cells(&rows),
            vec![vec!["PT Satu", "Bandung"], vec!["PT Dua", "Jakarta; Pusat"]]
        );
        // Blank records still count, so row numbers match the file.
        assert_eq!(rows[1].row_no, 3);
    }

    #[test]
    fn csv_tab_delimited_and_quoted_newline() {
        let (_, header, rows) = parse(b"a\tb\n1\t\"two\nlines\"\n3\t4\n").unwrap();
        assert_eq!(header, vec!["a", "b"]);
        assert_eq!(cells(&rows), vec![vec!["1", "two\nlines"], vec!["3", "4"]]);
        assert_eq!(rows[1].line, 4);
    }

    #[test]
    fn csv_short_rows_padded_long_rows_refused() {
        let (_, _, rows) = parse(b"a,b,c\n1\n1,2,3,,\n").unwrap();
        assert_eq!(cells(&rows), vec![vec!["1", "", ""], vec!["1", "2", "3"]]);
        assert_malformed(b"a,b\n1,2\n1,2,3\n", 3, "column 3");
    }

    #[test]
    fn csv_unterminated_quote_fails_the_file_at_its_line() {
        // Without the check, row 2 would swallow the rest of the file.
        let bytes =
            b"company_name,city\nPT Satu,Bandung\n\"PT Dua,Jakarta\nPT Tiga,Medan\nPT Empat,Solo\n";
        assert_malformed(bytes, 3, "never closed");
        // Also when the stray quote is in the last field and the file has
        // no final newline, and in a semicolon file.
        assert!(matches!(
            parse(b"a;b\n1;2\n3;\"4"),
            Err(ParseError::Malformed { line: 3, .. })
        ));
        // The merged row is never handed over (rows before it may be: the
        // file fails as a whole and its transaction is rolled back).
        let f = TempFile::with(bytes);
        let mut c = Count::default();
        assert!(read_file(&f.0, &mut c).is_err());
        assert_eq!(c.rows, 1);
    }

    #[test]
    fn csv_stray_quote_closing_early_fails_the_file() {
        // Two stray quotes: the field opened on line 2 is closed on line 4,
        // merging lines 2-4, and text follows the closing quote.
        assert_malformed(
            b"a,b\n1,\"abc\n2,def\n3,\"ghi\"\n4,jkl\n",
            2,
            "closed on line 4",
        );
    }

    #[test]
    fn csv_valid_quoting_still_reads() {
        // Escaped quotes, a quoted delimiter and newline, spaces after a
        // closing quote, a quote inside an unquoted field, an empty quoted
        // field at the end of the file without a newline.
        let (_, _, rows) =
            parse(b"a,b\n\"say \"\"hi\"\"\" ,\"x,\ny\"\n5\" pipe,\"\"\n\"z\",\"\"").unwrap();
        assert_eq!(
            cells(&rows),
            vec![
                vec!["say \"hi\"", "x,\ny"],
                vec!["5\" pipe", ""],
                vec!["z", ""]
            ]
        );
    }

    #[test]
    fn header_errors() {
        assert!(matches!(parse(b""), Err(ParseError::Empty)));
        assert!(matches!(parse(b"\n\n , ,\n"), Err(ParseError::Empty)));
        match parse(b"a,,b\n1,2,3\n") {
            Err(ParseError::BadHeader { message }) => {
                assert!(message.contains("column 2"), "{message}")
            }
            other => panic!("expected a blank column name, got {other:?}"),
        }
        match parse(b"Email,E-mail,email\n") {
            Err(ParseError::BadHeader { message }) => {
                assert!(message.contains("email"), "{message}")
            }
            other => panic!("expected duplicates, got {other:?}"),
        }
        // Trailing blank names are padding.
        let (_, header, rows) = parse(b"a,b,,\n1,2,,\n").unwrap();
        assert_eq!(header, vec!["a", "b"]);
        assert_eq!(rows.len(), 1);
        // A header alone is a file without rows (the database refuses it).
        let (_, header, rows) = parse(b"a,b\n").unwrap();
        assert_eq!(header, vec!["a", "b"]);
        assert!(rows.is_empty());
    }

    #[test]
    fn not_a_spreadsheet() {
        let files: [&[u8]; 4] = [
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
            b"caf\xe9,1\n",
            b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1rest",
            // A ZIP that is not a workbook.
            b"PK\x03\x04 not really a zip",
        ];
        for bytes in files {
            assert!(
                matches!(parse(bytes), Err(ParseError::NotASpreadsheet(_))),
                "{bytes:?}"
            );
        }
    }

    #[test]
    fn invalid_utf8_after_the_sniffed_part_is_malformed() {
        let mut bytes = b"a,b\n".to_vec();
        while bytes.len() < SNIFF_BYTES + 10 {
            bytes.extend_from_slice(b"x,y\n");
        }
        bytes.extend_from_slice(b"\xff,z\n");
        assert!(matches!(parse(&bytes), Err(ParseError::Malformed { .. })));
    }

    #[test]
    fn column_names() {
        assert_eq!(normalise_column("  Company   Name "), "company_name");
        assert_eq!(normalise_column("Sales-Owner E-mail"), "sales_owner_e_mail");
        assert_eq!(normalise_column("external_ref"), "external_ref");
        assert_eq!(normalise_column("NPWP"), "npwp");
    }

    #[test]
    fn floats_render_as_plain_decimals() {
        assert_eq!(render_float(1_000_000.0), "1000000");
        assert_eq!(render_float(0.1 + 0.2), "0.3");
        assert_eq!(render_float(1234.5), "1234.5");
        assert_eq!(render_float(-0.000_001_5), "-0.0000015");
        assert_eq!(render_float(1e20), "100000000000000000000");
    }

    fn xlsx(build: impl FnOnce(&mut rust_xlsxwriter::Worksheet)) -> Vec<u8> {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        build(sheet);
        book.add_worksheet()
            .write_string(0, 0, "second sheet is ignored")
            .unwrap();
        book.save_to_buffer().unwrap()
    }

    #[test]
    fn xlsx_first_sheet_with_numbers_dates_and_gaps() {
        let bytes = xlsx(|s| {
            let date = rust_xlsxwriter::Format::new().set_num_format("dd/mm/yyyy");
            let stamp = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd hh:mm");
            s.write_string(0, 0, "External Ref").unwrap();
            s.write_string(0, 1, "Subtotal").unwrap();
            s.write_string(0, 2, "Issue Date").unwrap();
            s.write_string(0, 3, "Notes").unwrap();
            s.write_string(1, 0, " X-1 ").unwrap();
            s.write_number(1, 1, 1_500_000.0).unwrap();
            s.write_datetime_with_format(
                1,
                2,
                rust_xlsxwriter::ExcelDateTime::from_ymd(2026, 3, 31).unwrap(),
                &date,
            )
            .unwrap();
            s.write_boolean(1, 3, true).unwrap();
            // Row 3 (index 2) is blank; row 4 has a gap and a time.
            s.write_string(3, 0, "X-2").unwrap();
            s.write_number(3, 1, 1234.56).unwrap();
            s.write_datetime_with_format(
                3,
                2,
                rust_xlsxwriter::ExcelDateTime::parse_from_str("2026-01-02 13:45:00").unwrap(),
                &stamp,
            )
            .unwrap();
        });
        let (format, header, rows) = parse(&bytes).unwrap();
        assert_eq!(format, Format::Xlsx);
        assert_eq!(
            header,
            vec!["external_ref", "subtotal", "issue_date", "notes"]
        );
        assert_eq!(
            cells(&rows),
            vec![
                vec!["X-1", "1500000", "2026-03-31", "true"],
                vec!["X-2", "1234.56", "2026-01-02T13:45:00", ""],
            ]
        );
        assert_eq!((rows[0].row_no, rows[0].line), (1, 2));
        assert_eq!((rows[1].row_no, rows[1].line), (3, 4));
    }

    #[test]
    fn xlsx_numbers_formatted_with_zeros_keep_leading_zeros() {
        let bytes = xlsx(|s| {
            let npwp = rust_xlsxwriter::Format::new().set_num_format("000000000000000");
            s.write_string(0, 0, "NPWP").unwrap();
            s.write_string(0, 1, "Amount").unwrap();
            s.write_number_with_format(1, 0, 12_345_678_901_000.0, &npwp)
                .unwrap();
            s.write_number(1, 1, 42.0).unwrap();
        });
        let (_, _, rows) = parse(&bytes).unwrap();
        assert_eq!(cells(&rows), vec![vec!["012345678901000", "42"]]);
        assert_eq!(zero_pad("12".into(), Some("0000")), "0012");
        assert_eq!(zero_pad("12.5".into(), Some("0000")), "12.5");
        assert_eq!(zero_pad("12".into(), Some("0.00")), "12");
        assert_eq!(zero_pad("12".into(), None), "12");
    }

    #[test]
    fn xlsx_ragged_and_empty() {
        let bytes = xlsx(|s| {
            s.write_string(0, 0, "a").unwrap();
            s.write_string(1, 0, "1").unwrap();
            s.write_string(1, 2, "oops").unwrap();
        });
        assert_malformed(&bytes, 2, "column 3");
        let bytes = xlsx(|_| {});
        assert!(matches!(parse(&bytes), Err(ParseError::Empty)));
    }

    #[test]
    fn visitor_can_stop_early() {
        let f = TempFile::with(b"a\n1\n2\n3\n4\n");
        let mut v = Count {
            stop_at: Some(2),
            ..Count::default()
        };
        assert_eq!(read_file(&f.0, &mut v).unwrap(), 2);
    }
}
