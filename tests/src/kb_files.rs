//! Documents of every format the knowledge base reads, written here so the
//! tests know exactly what each page and section holds.

use std::io::{Cursor, Write};

use printpdf::{
    BuiltinFont, Mm, Op, PdfDocument, PdfFontHandle, PdfPage, PdfSaveOptions, Point, Pt, TextItem,
};

/// A PDF with one page per entry, each line on a line of its own; an empty
/// page has no text at all (as a scanned page has none).
pub fn pdf(pages: &[&[&str]]) -> Vec<u8> {
    let pages = pages
        .iter()
        .map(|lines| {
            let mut ops = Vec::new();
            if !lines.is_empty() {
                ops.extend([
                    Op::StartTextSection,
                    Op::SetTextCursor {
                        pos: Point {
                            x: Mm(20.0).into(),
                            y: Mm(270.0).into(),
                        },
                    },
                    Op::SetLineHeight { lh: Pt(16.0) },
                    Op::SetFont {
                        font: PdfFontHandle::Builtin(BuiltinFont::Helvetica),
                        size: Pt(12.0),
                    },
                ]);
                for line in *lines {
                    ops.push(Op::ShowText {
                        items: vec![TextItem::Text((*line).to_owned())],
                    });
                    ops.push(Op::AddLineBreak);
                }
                ops.push(Op::EndTextSection);
            }
            PdfPage::new(Mm(210.0), Mm(297.0), ops)
        })
        .collect();
    let mut warnings = Vec::new();
    PdfDocument::new("fixture")
        .with_pages(pages)
        .save(&PdfSaveOptions::default(), &mut warnings)
}

/// A DOCX of (heading level, text) paragraphs: level 0 is body text,
/// 1.. the built-in "Heading n" styles.
pub fn docx(paragraphs: &[(u8, &str)]) -> Vec<u8> {
    let body: String = paragraphs
        .iter()
        .map(|(level, text)| {
            let style = if *level > 0 {
                format!(r#"<w:pPr><w:pStyle w:val="Heading{level}"/></w:pPr>"#)
            } else {
                String::new()
            };
            format!(r#"<w:p>{style}<w:r><w:t xml:space="preserve">{text}</w:t></w:r></w:p>"#)
        })
        .collect();
    let styles: String = (1..=3)
        .map(|n| {
            format!(
                r#"<w:style w:type="paragraph" w:styleId="Heading{n}"><w:name w:val="heading {n}"/></w:style>"#
            )
        })
        .collect();
    let mut out = Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    let options = zip::write::SimpleFileOptions::default();
    let ns = r#"xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main""#;
    zip.start_file("word/document.xml", options).unwrap();
    write!(
        zip,
        r#"<?xml version="1.0" encoding="UTF-8"?><w:document {ns}><w:body>{body}</w:body></w:document>"#
    )
    .unwrap();
    zip.start_file("word/styles.xml", options).unwrap();
    write!(
        zip,
        r#"<?xml version="1.0" encoding="UTF-8"?><w:styles {ns}>{styles}</w:styles>"#
    )
    .unwrap();
    zip.finish().unwrap();
    out.into_inner()
}
