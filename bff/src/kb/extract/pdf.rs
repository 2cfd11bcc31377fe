//! PDF (`pdf-extract`, over `lopdf`): the text of each page, a block per
//! paragraph (split at blank lines) with its 1-based page number, so a
//! citation can name the page. A PDF has no reliable heading structure,
//! so blocks carry none. A PDF whose pages hold no text at all is a scan
//! without a text layer: [`ExtractError::NoTextLayer`], never an empty
//! success.

use bizos_core::chunk::Block;

use super::blocks::{tidy, ExtractError};

/// The blocks of a PDF file.
pub fn extract(bytes: &[u8]) -> Result<Vec<Block>, ExtractError> {
    // The parser panics on some malformed files; that is a bad file, not
    // a crash of the caller.
    let pages = std::panic::catch_unwind(|| pdf_extract::extract_text_from_mem_by_pages(bytes))
        .map_err(|_| ExtractError::Unreadable {
            format: "PDF",
            why: "the parser gave up on it".into(),
        })?
        .map_err(|e| ExtractError::Unreadable {
            format: "PDF",
            why: e.to_string(),
        })?;
    let mut blocks = Vec::new();
    for (i, text) in pages.iter().enumerate() {
        let page = u32::try_from(i + 1).unwrap_or(u32::MAX);
        for para in text.replace("\r\n", "\n").split("\n\n") {
            let text = tidy(para);
            if !text.is_empty() {
                blocks.push(Block {
                    text,
                    heading_path: Vec::new(),
                    page: Some(page),
                });
            }
        }
    }
    if blocks.is_empty() {
        return Err(ExtractError::NoTextLayer);
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use bizos_fixtures::pdf;

    use super::*;

    #[test]
    fn text_comes_with_its_page() {
        let file = pdf(&[
            &["Kebijakan Harga 2026", "Diskon maksimal sepuluh persen."],
            &["Retur diterima dalam tujuh hari."],
        ]);
        let blocks = extract(&file).unwrap();
        let on = |page: u32| -> String {
            blocks
                .iter()
                .filter(|b| b.page == Some(page))
                .map(|b| b.text.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert!(
            on(1).contains("Diskon maksimal sepuluh persen."),
            "{blocks:?}"
        );
        assert!(!on(1).contains("Retur"), "{blocks:?}");
        assert!(
            on(2).contains("Retur diterima dalam tujuh hari."),
            "{blocks:?}"
        );
    }

    #[test]
    fn a_scan_without_text_and_a_broken_file_say_so() {
        assert_eq!(extract(&pdf(&[&[], &[]])), Err(ExtractError::NoTextLayer));
        assert!(matches!(
            extract(b"%PDF-1.4 not really"),
            Err(ExtractError::Unreadable { format: "PDF", .. })
        ));
    }
}
