//! DOCX (Office Open XML): the paragraphs and tables of
//! `word/document.xml`, read with `zip` and `quick-xml` (both already used
//! by the spreadsheet import). A paragraph is a heading when its style (or
//! the paragraph itself) has an outline level, or its style is a built-in
//! "heading N" (`word/styles.xml` names them so whatever the language of
//! Word); a table row is one block, its cells joined with " | ". DOCX has
//! no pages (they are a matter of layout), so blocks have none.

use std::collections::HashMap;
use std::io::{Cursor, Read};

use bizos_core::chunk::Block;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

use super::blocks::{tidy, ExtractError, Headings};

const FORMAT: &str = "DOCX";
/// The largest XML part read (a guard against zip bombs).
const MAX_PART: u64 = 64 * 1024 * 1024;

fn unreadable(why: impl std::fmt::Display) -> ExtractError {
    ExtractError::Unreadable {
        format: FORMAT,
        why: why.to_string(),
    }
}

/// The blocks of a DOCX file.
pub fn extract(bytes: &[u8]) -> Result<Vec<Block>, ExtractError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(unreadable)?;
    let styles = match part(&mut archive, "word/styles.xml")? {
        Some(xml) => heading_styles(&xml)?,
        None => HashMap::new(),
    };
    let document = part(&mut archive, "word/document.xml")?
        .ok_or_else(|| unreadable("it has no word/document.xml"))?;
    let blocks = body(&document, &styles)?;
    if blocks.is_empty() {
        return Err(ExtractError::NoText);
    }
    Ok(blocks)
}

fn part(
    archive: &mut zip::ZipArchive<Cursor<&[u8]>>,
    name: &str,
) -> Result<Option<String>, ExtractError> {
    let file = match archive.by_name(name) {
        Ok(f) => f,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(unreadable(e)),
    };
    let mut xml = String::new();
    file.take(MAX_PART + 1)
        .read_to_string(&mut xml)
        .map_err(unreadable)?;
    if xml.len() as u64 > MAX_PART {
        return Err(unreadable(format!(
            "{name} is larger than {MAX_PART} bytes"
        )));
    }
    Ok(Some(xml))
}

fn attr(e: &BytesStart, name: &str) -> Option<String> {
    e.try_get_attribute(name).ok().flatten().and_then(|a| {
        a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .ok()
            .map(|v| v.into_owned())
    })
}

/// Style id -> heading level (1-9) of the paragraph styles that are
/// headings.
fn heading_styles(xml: &str) -> Result<HashMap<String, u8>, ExtractError> {
    let mut reader = Reader::from_str(xml);
    let mut out = HashMap::new();
    let mut current: Option<(String, Option<u8>)> = None;
    loop {
        match reader.read_event().map_err(unreadable)? {
            Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                "style" => {
                    current = (attr(&e, "w:type").as_deref() == Some("paragraph"))
                        .then(|| attr(&e, "w:styleId"))
                        .flatten()
                        .map(|id| (id, None));
                }
                "name" => {
                    if let (Some((_, level)), Some(name)) = (&mut current, attr(&e, "w:val")) {
                        let lower = name.to_lowercase();
                        if let Some(n) = lower.strip_prefix("heading ") {
                            *level = level.or(n.trim().parse().ok());
                        } else if lower == "title" {
                            *level = level.or(Some(1));
                        }
                    }
                }
                "outlineLvl" => {
                    if let (Some((_, level)), Some(v)) = (&mut current, attr(&e, "w:val")) {
                        *level = v.parse::<u8>().ok().filter(|l| *l < 9).map(|l| l + 1);
                    }
                }
                _ => {}
            },
            Event::End(e) if e.local_name().as_ref() == "style" => {
                if let Some((id, Some(level))) = current.take() {
                    out.insert(id, level);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

/// The paragraphs and table rows of the document body.
fn body(xml: &str, styles: &HashMap<String, u8>) -> Result<Vec<Block>, ExtractError> {
    let mut reader = Reader::from_str(xml);
    let mut blocks = Vec::new();
    let mut headings = Headings::default();
    let mut para = String::new();
    let mut level: Option<u8> = None;
    let mut in_text = false;
    let mut table_depth = 0usize;
    let mut cells: Vec<String> = Vec::new();
    let mut cell = String::new();
    loop {
        match reader.read_event().map_err(unreadable)? {
            Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                "p" => {
                    para.clear();
                    level = None;
                }
                "pStyle" => {
                    if let Some(l) = attr(&e, "w:val").and_then(|id| styles.get(&id).copied()) {
                        level = level.or(Some(l));
                    }
                }
                "outlineLvl" => {
                    level = attr(&e, "w:val")
                        .and_then(|v| v.parse::<u8>().ok())
                        .filter(|l| *l < 9)
                        .map(|l| l + 1);
                }
                "t" => in_text = true,
                "tab" => para.push('\t'),
                "br" | "cr" => para.push('\n'),
                "noBreakHyphen" => para.push('-'),
                "tbl" => table_depth += 1,
                "tr" if table_depth == 1 => cells.clear(),
                "tc" if table_depth == 1 => cell.clear(),
                _ => {}
            },
            Event::Text(t) if in_text => para.push_str(&t.xml10_content()),
            Event::GeneralRef(r) if in_text => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    para.push(c);
                } else if let Some(s) = quick_xml::escape::resolve_predefined_entity(&r) {
                    para.push_str(s);
                }
            }
            Event::End(e) => match e.local_name().as_ref() {
                "t" => in_text = false,
                "p" => {
                    let text = tidy(&para);
                    if text.is_empty() {
                        continue;
                    }
                    if table_depth > 0 {
                        if !cell.is_empty() {
                            cell.push(' ');
                        }
                        cell.push_str(&text);
                    } else if let Some(l) = level {
                        headings.enter(l, &text);
                    } else {
                        blocks.push(Block {
                            text,
                            heading_path: headings.path(),
                            page: None,
                        });
                    }
                }
                "tc" if table_depth == 1 && !cell.is_empty() => {
                    cells.push(std::mem::take(&mut cell));
                }
                "tr" if table_depth == 1 => {
                    if !cells.is_empty() {
                        blocks.push(Block {
                            text: cells.join(" | "),
                            heading_path: headings.path(),
                            page: None,
                        });
                    }
                    cells.clear();
                }
                "tbl" => table_depth = table_depth.saturating_sub(1),
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const STYLES: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<w:styles xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">
  <w:style w:type="paragraph" w:styleId="Normal"><w:name w:val="Normal"/></w:style>
  <w:style w:type="paragraph" w:styleId="Judul1"><w:name w:val="heading 1"/></w:style>
  <w:style w:type="paragraph" w:styleId="Judul2"><w:name w:val="heading 2"/></w:style>
  <w:style w:type="paragraph" w:styleId="Bab"><w:name w:val="Bab"/><w:pPr><w:outlineLvl w:val="0"/></w:pPr></w:style>
</w:styles>"#;

    fn para(style: Option<&str>, runs: &[&str]) -> String {
        let style = style
            .map(|s| format!(r#"<w:pPr><w:pStyle w:val="{s}"/></w:pPr>"#))
            .unwrap_or_default();
        let runs: String = runs
            .iter()
            .map(|r| format!(r#"<w:r><w:t xml:space="preserve">{r}</w:t></w:r>"#))
            .collect();
        format!("<w:p>{style}{runs}</w:p>")
    }

    fn docx(body: &str, styles: Option<&str>) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default();
        let document = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>"#
        );
        zip.start_file("word/document.xml", options).unwrap();
        zip.write_all(document.as_bytes()).unwrap();
        if let Some(styles) = styles {
            zip.start_file("word/styles.xml", options).unwrap();
            zip.write_all(styles.as_bytes()).unwrap();
        }
        zip.finish().unwrap();
        out.into_inner()
    }

    fn texts(blocks: &[Block]) -> Vec<(String, Vec<String>)> {
        blocks
            .iter()
            .map(|b| (b.text.clone(), b.heading_path.clone()))
            .collect()
    }

    #[test]
    fn paragraphs_carry_the_headings_above_them() {
        let body = [
            para(None, &["Pengantar tanpa judul."]),
            para(Some("Judul1"), &["SOP ", "Penjualan"]),
            para(None, &["Harga &amp; diskon mengikuti daftar &#8220;2026&#8221;."]),
            para(Some("Judul2"), &["Diskon"]),
            para(None, &["Maksimal", " 10%."]),
            para(Some("Judul1"), &["SOP Gudang"]),
            para(None, &["   "]),
            para(None, &["Stok dihitung  tiap\tJumat."]),
            para(Some("Bab"), &["Lampiran"]),
            r#"<w:tbl><w:tr><w:tc><w:p><w:r><w:t>Barang</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>Harga</w:t></w:r></w:p><w:p><w:r><w:t>(Rp)</w:t></w:r></w:p></w:tc></w:tr><w:tr><w:tc><w:p><w:r><w:t>Semen</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>65.000</w:t></w:r></w:p></w:tc></w:tr></w:tbl>"#.to_owned(),
        ]
        .concat();
        let blocks = extract(&docx(&body, Some(STYLES))).unwrap();
        let path = |p: &[&str]| p.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            texts(&blocks),
            [
                ("Pengantar tanpa judul.".into(), path(&[])),
                (
                    "Harga & diskon mengikuti daftar \u{201c}2026\u{201d}.".into(),
                    path(&["SOP Penjualan"])
                ),
                ("Maksimal 10%.".into(), path(&["SOP Penjualan", "Diskon"])),
                ("Stok dihitung tiap Jumat.".into(), path(&["SOP Gudang"])),
                ("Barang | Harga (Rp)".into(), path(&["Lampiran"])),
                ("Semen | 65.000".into(), path(&["Lampiran"])),
            ]
        );
        assert!(blocks.iter().all(|b| b.page.is_none()));
    }

    #[test]
    fn broken_and_empty_files_say_so() {
        assert!(matches!(
            extract(b"not a zip"),
            Err(ExtractError::Unreadable { format: "DOCX", .. })
        ));
        assert_eq!(
            extract(&docx(&para(None, &[" "]), None)),
            Err(ExtractError::NoText)
        );
        let broken = docx("<w:p><w:r><w:t>unclosed</w:r></w:p>", None);
        assert!(matches!(
            extract(&broken),
            Err(ExtractError::Unreadable { .. })
        ));
    }
}
