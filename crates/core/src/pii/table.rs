//! Tables pasted as text — CSV and TSV exports, `;`-separated spreadsheet
//! cells, `|` tables of tickets and chats: the header names the column of a
//! cell (`no_hp`, `NIK`, `No. Rek`, `npwp`), and that name is the keyword of
//! a number in the cell when the cell has no keyword of its own. Keywords of
//! other cells or of the header line never reach across into a cell (a
//! `No. Rek` column does not make the NIK beside it a bank account).
//!
//! A table is a header line without digits followed by rows with the same
//! number of delimiters (tab, `|`, `;` or `,`, whichever the row has, in that
//! order of preference; delimiters inside double quotes do not count). The
//! scanner keeps the table it found last, so the rows of a long export are
//! each checked once.

use super::{context, Kind};

const DELIMITERS: [u8; 4] = [b'\t', b'|', b';', b','];
/// How many lines above a row are searched for its header when the row is
/// not in the table found last.
const MAX_LINES_UP: usize = 200;

/// The table the scanner is in, if any, and the last line looked at (a
/// line holds several numbers; it is analysed once).
#[derive(Default)]
pub(super) struct Tables {
    block: Option<Block>,
    line: Option<(Line, Option<(u8, Block)>)>,
}

/// Start and end of a line (end exclusive, before its `\n`).
type Line = (usize, usize);

#[derive(Clone, Copy)]
struct Block {
    delim: u8,
    count: usize,
    header: (usize, usize),
    /// From the start of the first row to the end of the last row verified.
    rows: (usize, usize),
}

/// Start and end (exclusive, before `\n`) of the line holding `pos`.
fn line_at(text: &[u8], pos: usize) -> (usize, usize) {
    let start = memchr::memrchr(b'\n', &text[..pos]).map_or(0, |p| p + 1);
    let end = memchr::memchr(b'\n', &text[pos..]).map_or(text.len(), |p| pos + p);
    (start, end)
}

/// The first of [`DELIMITERS`] that `line` holds outside double quotes,
/// and how many times.
fn delimiter(line: &[u8]) -> Option<(u8, usize)> {
    if memchr::memchr(b'"', line).is_none() {
        return DELIMITERS
            .into_iter()
            .map(|d| (d, memchr::memchr_iter(d, line).count()))
            .find(|&(_, c)| c > 0);
    }
    let mut quoted = false;
    let mut n = [0usize; 4];
    for &b in line {
        match b {
            b'"' => quoted = !quoted,
            b'\t' if !quoted => n[0] += 1,
            b'|' if !quoted => n[1] += 1,
            b';' if !quoted => n[2] += 1,
            b',' if !quoted => n[3] += 1,
            _ => {}
        }
    }
    DELIMITERS.into_iter().zip(n).find(|&(_, c)| c > 0)
}

/// Delimiters `d` in `line` outside double quotes.
fn count(line: &[u8], d: u8) -> usize {
    if memchr::memchr(b'"', line).is_none() {
        return memchr::memchr_iter(d, line).count();
    }
    let mut quoted = false;
    let mut n = 0;
    for &b in line {
        if b == b'"' {
            quoted = !quoted;
        } else if b == d && !quoted {
            n += 1;
        }
    }
    n
}

/// Byte range of cell `index` of the line `line_start..line_end`.
fn cell(
    text: &[u8],
    (line_start, line_end): (usize, usize),
    d: u8,
    index: usize,
) -> (usize, usize) {
    let mut quoted = false;
    let mut seen = 0;
    let mut start = line_start;
    for (i, &b) in text[line_start..line_end].iter().enumerate() {
        if b == b'"' {
            quoted = !quoted;
        } else if b == d && !quoted {
            if seen == index {
                return (start, line_start + i);
            }
            seen += 1;
            start = line_start + i + 1;
        }
    }
    (start, line_end)
}

impl Tables {
    /// `None` when `start` is not in a table row; otherwise the keyword
    /// type for a number at `start`: the cell's own keyword (after
    /// `floor`), else its column's header, else none.
    pub(super) fn context(
        &mut self,
        text: &[u8],
        floor: usize,
        start: usize,
    ) -> Option<Option<Kind>> {
        let (line, (delim, block)) = match self.line {
            Some((l, table)) if l.0 <= start && start <= l.1 => (l, table?),
            _ => {
                let line = line_at(text, start);
                if line.0 == 0 {
                    self.line = Some((line, None));
                    return None;
                }
                let table = delimiter(&text[line.0..line.1])
                    .and_then(|(d, n)| Some((d, self.block_for(text, line, d, n)?)));
                self.line = Some((line, table));
                (line, table?)
            }
        };
        let index = count(&text[line.0..start], delim);
        let own = cell(text, line, delim, index);
        if let Some(kind) = context::nearest(text, floor.max(own.0), start) {
            return Some(Some(kind));
        }
        let head = cell(text, block.header, delim, index);
        Some(context::nearest(text, head.0, head.1))
    }

    /// The table whose row is `line`, from the cache or by looking up.
    fn block_for(
        &mut self,
        text: &[u8],
        line: (usize, usize),
        delim: u8,
        n: usize,
    ) -> Option<Block> {
        if let Some(b) = self.block.as_mut() {
            if b.delim == delim && b.count == n && b.rows.0 <= line.0 {
                // Extend the verified rows down to this line.
                while b.rows.1 < line.0 {
                    let next = line_at(text, b.rows.1 + 1);
                    if count(&text[next.0..next.1], delim) != n {
                        break;
                    }
                    b.rows.1 = next.1;
                }
                if line.1 <= b.rows.1 || b.rows.1 + 1 == line.0 {
                    b.rows.1 = b.rows.1.max(line.1);
                    return Some(*b);
                }
            }
        }
        self.block = None;
        // Up from the line before: lines with as many delimiters.
        let mut top = line;
        for _ in 0..MAX_LINES_UP {
            if top.0 == 0 {
                break;
            }
            let above = line_at(text, top.0 - 1);
            if count(&text[above.0..above.1], delim) != n {
                break;
            }
            top = above;
        }
        let header = &text[top.0..top.1];
        if top == line
            || header.iter().any(u8::is_ascii_digit)
            || !header.iter().any(u8::is_ascii_alphabetic)
        {
            return None;
        }
        let next_line = line_at(text, top.1 + 1);
        let block = Block {
            delim,
            count: n,
            header: top,
            rows: (next_line.0, line.1),
        };
        self.block = Some(block);
        Some(block)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(text: &str, number: &str) -> Option<Option<Kind>> {
        let at = text.find(number).unwrap();
        Tables::default().context(text.as_bytes(), 0, at)
    }

    #[test]
    fn the_header_names_the_column() {
        let csv = "nama,no_hp,nik\nBudi,812345678901,3174011203900001\n";
        assert_eq!(ctx(csv, "8123"), Some(Some(Kind::Phone)));
        assert_eq!(ctx(csv, "3174"), Some(Some(Kind::Nik)));
        let md = "No | Nama | NIK | No. Rek\n1 | Hendra | 1271 | 1122334455\n";
        assert_eq!(ctx(md, "1271"), Some(Some(Kind::Nik)));
        assert_eq!(ctx(md, "1122"), Some(Some(Kind::BankAccount)));
        assert_eq!(ctx(md, "Hendra"), Some(None));
        let quoted = "\"nama\";\"npwp, kantor\";\"total\"\n\"PT A\";\"01.000.013.1-093.000\";\"5\"";
        assert_eq!(ctx(quoted, "01."), Some(Some(Kind::Npwp)));
    }

    #[test]
    fn a_cell_keyword_wins_over_the_header() {
        let tsv = "nama\tkontak\nBudi\tNIK 3174011203900001\n";
        assert_eq!(ctx(tsv, "3174"), Some(Some(Kind::Nik)));
    }

    #[test]
    fn long_tables_use_the_header_found_first() {
        let mut csv = String::from("id,nama,no_rekening\n");
        for i in 0..1000 {
            csv.push_str(&format!("{i},Budi,{}\n", 1_000_000_000 + i));
        }
        let text = csv.as_bytes();
        let mut tables = Tables::default();
        let mut found = 0;
        let mut from = 0;
        while let Some(at) = csv[from..].find(",10000") {
            let at = from + at + 1;
            assert_eq!(tables.context(text, 0, at), Some(Some(Kind::BankAccount)));
            found += 1;
            from = at;
        }
        assert_eq!(found, 1000);
    }

    #[test]
    fn not_tables() {
        // No line above, a header with digits, a different count above.
        assert_eq!(ctx("nama,hp 0812", "0812"), None);
        assert_eq!(ctx("Q1,2026\nx,0812", "0812"), None);
        assert_eq!(ctx("Halo kak\nsaya Budi, HP 0812", "0812"), None);
        assert_eq!(ctx("no pipes here\n0812 3456", "0812"), None);
    }
}
