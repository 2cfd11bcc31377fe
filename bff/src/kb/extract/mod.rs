//! Text out of a document, as [`Block`]s in reading order with their
//! heading path (and page, where the format has pages), ready for
//! [`bizos_core::chunk`].

mod blocks;
pub mod docx;
pub mod html;
pub mod markdown;
pub mod pdf;

pub use bizos_core::chunk::Block;
pub use blocks::ExtractError;

/// The formats the knowledge base reads (`kb_documents.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pdf,
    Docx,
    Txt,
    Md,
    Html,
}

impl Format {
    pub const ALL: [Format; 5] = [
        Format::Pdf,
        Format::Docx,
        Format::Txt,
        Format::Md,
        Format::Html,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Pdf => "pdf",
            Format::Docx => "docx",
            Format::Txt => "txt",
            Format::Md => "md",
            Format::Html => "html",
        }
    }

    pub fn parse(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

/// The blocks of a document of `format`.
pub fn extract(format: Format, bytes: &[u8]) -> Result<Vec<Block>, ExtractError> {
    match format {
        Format::Pdf => pdf::extract(bytes),
        Format::Docx => docx::extract(bytes),
        Format::Txt => markdown::text(&decode(bytes)),
        Format::Md => markdown::extract(&decode(bytes)),
        Format::Html => html::extract(&decode(bytes)),
    }
}

/// Text files as people save them: a byte-order mark decides (UTF-8 or
/// UTF-16); without one, UTF-8 if the bytes are valid UTF-8, else
/// Windows-1252, which every byte sequence is and which older Windows
/// editors in Indonesia and elsewhere write.
fn decode(bytes: &[u8]) -> String {
    let (text, _, _) = match encoding_rs::Encoding::for_bom(bytes) {
        Some((encoding, _)) => encoding.decode(bytes),
        None => match std::str::from_utf8(bytes) {
            Ok(text) => return text.to_owned(),
            Err(_) => encoding_rs::WINDOWS_1252.decode(bytes),
        },
    };
    text.into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_files_decode_by_bom_then_utf8_then_windows_1252() {
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("Harga naik".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(decode(&utf16), "Harga naik");
        assert_eq!(
            decode("caf\u{e9} \u{2013} Rp".as_bytes()),
            "caf\u{e9} \u{2013} Rp"
        );
        // "café – Rp" as Windows-1252.
        assert_eq!(decode(b"caf\xe9 \x96 Rp"), "caf\u{e9} \u{2013} Rp");
        assert_eq!(decode(b"\xEF\xBB\xBFteks"), "teks");
    }

    #[test]
    fn formats_round_trip_their_names() {
        for f in Format::ALL {
            assert_eq!(Format::parse(f.as_str()), Some(f));
        }
        assert_eq!(Format::parse("doc"), None);
    }
}
