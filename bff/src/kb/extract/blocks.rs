//! What the readers of the formats build their blocks with: the error of
//! an unreadable document, the heading path, white space tidied.

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExtractError {
    /// The file is not what its format says (a broken archive, bad XML).
    #[error("the file cannot be read as {format}: {why}")]
    Unreadable { format: &'static str, why: String },
    /// Readable, but without any text (an empty document).
    #[error("the document has no text")]
    NoText,
    /// A PDF whose pages hold no text: a scan without a text layer.
    #[error("no text layer: the PDF holds only images (a scan?); run OCR on it first")]
    NoTextLayer,
}

/// Keeps track of the headings above the current block.
#[derive(Debug, Default)]
pub(crate) struct Headings {
    /// (level, text), outermost first.
    open: Vec<(u8, String)>,
}

impl Headings {
    /// A heading of `level` (1 = outermost) closes those at its level and
    /// below.
    pub(crate) fn enter(&mut self, level: u8, text: &str) {
        self.open.retain(|(l, _)| *l < level);
        self.open.push((level, text.to_owned()));
    }

    pub(crate) fn path(&self) -> Vec<String> {
        self.open.iter().map(|(_, t)| t.clone()).collect()
    }
}

/// Collapses runs of white space (not line breaks) and trims.
pub(crate) fn tidy(text: &str) -> String {
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}
