//! Markdown (CommonMark with tables, `pulldown-cmark`): a block per
//! paragraph, list item, code block and table row (its cells joined with
//! " | "), each with the `#` headings above it. Plain text is Markdown's
//! simplest case for this purpose: [`text`] splits it at blank lines.

use bizos_core::chunk::Block;
use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

use super::blocks::{tidy, ExtractError, Headings};

/// The blocks of a Markdown document.
pub fn extract(source: &str) -> Result<Vec<Block>, ExtractError> {
    let mut out = Out::default();
    let mut cells: Vec<String> = Vec::new();
    for event in Parser::new_ext(
        source,
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH,
    ) {
        match event {
            Event::Start(Tag::Heading { .. }) => out.flush(),
            Event::End(TagEnd::Heading(level)) => {
                let text = tidy(&std::mem::take(&mut out.buf));
                if !text.is_empty() {
                    out.headings.enter(level as u8, &text);
                }
            }
            Event::Start(
                Tag::Paragraph | Tag::Item | Tag::List(_) | Tag::CodeBlock(_) | Tag::BlockQuote(_),
            ) => out.flush(),
            Event::End(
                TagEnd::Paragraph
                | TagEnd::Item
                | TagEnd::List(_)
                | TagEnd::CodeBlock
                | TagEnd::BlockQuote(_),
            ) => out.flush(),
            Event::Start(Tag::TableHead | Tag::TableRow) => cells.clear(),
            Event::End(TagEnd::TableCell) => cells.push(tidy(&std::mem::take(&mut out.buf))),
            Event::End(TagEnd::TableHead | TagEnd::TableRow) => {
                if cells.iter().any(|c| !c.is_empty()) {
                    out.buf = cells.join(" | ");
                    out.flush();
                }
                cells.clear();
            }
            Event::Text(t) | Event::Code(t) => out.buf.push_str(&t),
            Event::SoftBreak => out.buf.push(' '),
            Event::HardBreak => out.buf.push('\n'),
            _ => {}
        }
    }
    out.flush();
    if out.blocks.is_empty() {
        return Err(ExtractError::NoText);
    }
    Ok(out.blocks)
}

/// The blocks of a plain text: paragraphs separated by blank lines.
pub fn text(source: &str) -> Result<Vec<Block>, ExtractError> {
    let blocks: Vec<Block> = source
        .replace("\r\n", "\n")
        .split("\n\n")
        .map(tidy)
        .filter(|t| !t.is_empty())
        .map(|text| Block {
            text,
            heading_path: Vec::new(),
            page: None,
        })
        .collect();
    if blocks.is_empty() {
        return Err(ExtractError::NoText);
    }
    Ok(blocks)
}

#[derive(Default)]
struct Out {
    blocks: Vec<Block>,
    headings: Headings,
    buf: String,
}

impl Out {
    /// The text gathered so far as a block under the current headings.
    fn flush(&mut self) {
        let text = tidy(&std::mem::take(&mut self.buf));
        if !text.is_empty() {
            self.blocks.push(Block {
                text,
                heading_path: self.headings.path(),
                page: None,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(blocks: &[Block]) -> Vec<(&str, Vec<&str>)> {
        blocks
            .iter()
            .map(|b| {
                (
                    b.text.as_str(),
                    b.heading_path.iter().map(String::as_str).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn blocks_carry_the_headings_above_them() {
        let md = "Pengantar **singkat**.\n\n# SOP Penjualan\n\nHarga mengikuti `daftar 2026`\ndan diskon.\n\n\
                  ## Diskon\n\n- Maksimal 10%\n- Di atas itu:\n  - persetujuan direktur\n\n\
                  | Barang | Harga |\n|---|---|\n| Semen | 65.000 |\n\n# SOP Gudang\n\n```\nstok -- jumat\n```\n";
        let blocks = extract(md).unwrap();
        assert_eq!(
            texts(&blocks),
            [
                ("Pengantar singkat.", vec![]),
                (
                    "Harga mengikuti daftar 2026 dan diskon.",
                    vec!["SOP Penjualan"]
                ),
                ("Maksimal 10%", vec!["SOP Penjualan", "Diskon"]),
                ("Di atas itu:", vec!["SOP Penjualan", "Diskon"]),
                ("persetujuan direktur", vec!["SOP Penjualan", "Diskon"]),
                ("Barang | Harga", vec!["SOP Penjualan", "Diskon"]),
                ("Semen | 65.000", vec!["SOP Penjualan", "Diskon"]),
                ("stok -- jumat", vec!["SOP Gudang"]),
            ]
        );
        assert_eq!(extract("#  \n\n   \n"), Err(ExtractError::NoText));
    }

    #[test]
    fn plain_text_is_split_at_blank_lines() {
        let blocks = text("Baris satu\r\nmasih satu.\r\n\r\n\r\n  Dua.  \n\n").unwrap();
        assert_eq!(
            texts(&blocks),
            [("Baris satu\nmasih satu.", vec![]), ("Dua.", vec![])]
        );
        assert_eq!(text(" \n\n "), Err(ExtractError::NoText));
    }
}
