//! HTML (`scraper`, the html5ever parser of Servo): the document's text in
//! reading order, a block per paragraph-like element (p, li, pre,
//! blockquote, div, dd, dt, caption, ...) and per table row (its cells
//! joined with " | "), each with the h1-h6 headings above it. Scripts,
//! styles, templates and the head are left out.

use bizos_core::chunk::Block;
use scraper::{Html, Node};

use super::blocks::{tidy, ExtractError, Headings};

/// Elements whose start or end ends the text before them.
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "caption",
    "dd",
    "details",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "footer",
    "form",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "tbody",
    "thead",
    "tfoot",
    "ul",
];
/// Elements whose text is not the document's.
const SKIPPED: &[&str] = &["head", "script", "style", "template", "noscript"];

fn heading_level(name: &str) -> Option<u8> {
    match name.as_bytes() {
        [b'h', d @ b'1'..=b'6'] => Some(d - b'0'),
        _ => None,
    }
}

/// The blocks of an HTML document.
pub fn extract(source: &str) -> Result<Vec<Block>, ExtractError> {
    let html = Html::parse_document(source);
    let mut blocks = Vec::new();
    let mut headings = Headings::default();
    let mut buf = String::new();
    let mut cells: Vec<String> = Vec::new();
    let mut skipping = 0usize;
    let flush = |buf: &mut String, headings: &Headings, blocks: &mut Vec<Block>| {
        let text = tidy(&std::mem::take(buf));
        if !text.is_empty() {
            blocks.push(Block {
                text,
                heading_path: headings.path(),
                page: None,
            });
        }
    };
    for edge in html.tree.root().traverse() {
        match edge {
            ego_tree::iter::Edge::Open(node) => match node.value() {
                Node::Element(e) if SKIPPED.contains(&e.name()) => skipping += 1,
                _ if skipping > 0 => {}
                Node::Element(e) => {
                    let name = e.name();
                    if name == "br" {
                        buf.push('\n');
                    } else if name == "tr" {
                        flush(&mut buf, &headings, &mut blocks);
                        cells.clear();
                    } else if BLOCKS.contains(&name) || heading_level(name).is_some() {
                        flush(&mut buf, &headings, &mut blocks);
                    } else if matches!(name, "td" | "th") {
                        buf.clear();
                    }
                }
                Node::Text(t) => buf.push_str(t),
                _ => {}
            },
            ego_tree::iter::Edge::Close(node) => match node.value() {
                Node::Element(e) if SKIPPED.contains(&e.name()) => {
                    skipping = skipping.saturating_sub(1)
                }
                _ if skipping > 0 => {}
                Node::Element(e) => {
                    let name = e.name();
                    if let Some(level) = heading_level(name) {
                        let text = tidy(&std::mem::take(&mut buf));
                        if !text.is_empty() {
                            headings.enter(level, &text);
                        }
                    } else if matches!(name, "td" | "th") {
                        cells.push(tidy(&std::mem::take(&mut buf)).replace('\n', " "));
                    } else if name == "tr" {
                        if cells.iter().any(|c| !c.is_empty()) {
                            buf = cells.join(" | ");
                            flush(&mut buf, &headings, &mut blocks);
                        }
                        cells.clear();
                    } else if BLOCKS.contains(&name) {
                        flush(&mut buf, &headings, &mut blocks);
                    }
                }
                _ => {}
            },
        }
    }
    flush(&mut buf, &headings, &mut blocks);
    if blocks.is_empty() {
        return Err(ExtractError::NoText);
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_carry_the_headings_above_them() {
        let page = r#"<!doctype html><html><head><title>Judul tab</title>
            <style>p { color: red }</style></head><body>
            <p>Pengantar <b>singkat</b>.</p>
            <h1>SOP Penjualan</h1>
            <div>Harga mengikuti daftar&nbsp;2026<br>dan diskon &amp; retur.</div>
            <h2>Diskon</h2>
            <ul><li>Maksimal 10%</li><li>Di atas itu: <em>direktur</em></li></ul>
            <table><tr><th>Barang</th><th>Harga</th></tr><tr><td>Semen</td><td>65.000</td></tr></table>
            <script>var x = "bukan teks";</script>
            <h1>SOP Gudang</h1><p>Stok   dihitung tiap Jumat.</p></body></html>"#;
        let blocks = extract(page).unwrap();
        let got: Vec<(&str, Vec<&str>)> = blocks
            .iter()
            .map(|b| {
                (
                    b.text.as_str(),
                    b.heading_path.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("Pengantar singkat.", vec![]),
                (
                    "Harga mengikuti daftar 2026\ndan diskon & retur.",
                    vec!["SOP Penjualan"]
                ),
                ("Maksimal 10%", vec!["SOP Penjualan", "Diskon"]),
                ("Di atas itu: direktur", vec!["SOP Penjualan", "Diskon"]),
                ("Barang | Harga", vec!["SOP Penjualan", "Diskon"]),
                ("Semen | 65.000", vec!["SOP Penjualan", "Diskon"]),
                ("Stok dihitung tiap Jumat.", vec!["SOP Gudang"]),
            ]
        );
        assert_eq!(
            extract("<html><head><title>x</title></head><body> </body></html>"),
            Err(ExtractError::NoText)
        );
    }
}
