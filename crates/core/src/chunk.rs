//! Chunking of extracted documents for retrieval (AI-3): pieces small
//! enough for the embedding model, cut where a reader would cut, each
//! knowing the section and pages it comes from.
//!
//! The input is what extraction produces: [`Block`]s (a paragraph, a list
//! item, a table row) in reading order, each with its heading path and
//! page. [`chunk`] then
//!
//! - keeps a chunk inside one section (one heading path), so a citation
//!   can name the section;
//! - splits a section's text into sentences, and a sentence longer than a
//!   chunk into runs of whole words: a cut never falls inside a word (a
//!   single word longer than a chunk becomes a chunk of its own, which
//!   the embedder truncates);
//! - packs sentences greedily up to `max_tokens`, counted with the
//!   embedding model's tokenizer ([`TokenCount`]);
//! - starts the next chunk of a section with the last sentences of the
//!   previous one, up to `overlap_tokens`, so a statement that straddles a
//!   cut is whole in at least one chunk;
//! - records the first and last page a chunk's text comes from.
//!
//! Token counts of pieces are added up: for WordPiece and BPE tokenizers
//! the count of a joined text is the sum of its words' counts, without
//! the special tokens the caller budgets for.

use std::ops::Range;

/// Counts tokens as the embedding model's tokenizer does (without special
/// tokens).
pub trait TokenCount {
    fn count(&self, text: &str) -> usize;
}

impl<F: Fn(&str) -> usize> TokenCount for F {
    fn count(&self, text: &str) -> usize {
        self(text)
    }
}

/// A piece of extracted text in reading order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub text: String,
    /// The headings above the block, outermost first (empty: none).
    pub heading_path: Vec<String>,
    /// The 1-based page (PDF), if the format has pages.
    pub page: Option<u32>,
}

/// One chunk of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub text: String,
    pub heading_path: Vec<String>,
    /// The first and last page its text comes from.
    pub pages: Option<(u32, u32)>,
    /// Tokens of `text` (the sum of its pieces' counts).
    pub tokens: usize,
}

/// How big chunks are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    pub max_tokens: usize,
    pub overlap_tokens: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SizeError {
    #[error("max_tokens must be at least 8")]
    TooSmall,
    #[error("overlap_tokens must be less than half of max_tokens")]
    OverlapTooLarge,
}

impl Sizes {
    pub fn new(max_tokens: usize, overlap_tokens: usize) -> Result<Sizes, SizeError> {
        if max_tokens < 8 {
            return Err(SizeError::TooSmall);
        }
        if overlap_tokens * 2 >= max_tokens {
            return Err(SizeError::OverlapTooLarge);
        }
        Ok(Sizes {
            max_tokens,
            overlap_tokens,
        })
    }
}

/// A unit of packing: a sentence, or a run of words of a long one.
#[derive(Debug)]
struct Piece {
    text: String,
    tokens: usize,
    page: Option<u32>,
}

/// Chunks `blocks`; see the module documentation.
pub fn chunk(blocks: &[Block], sizes: Sizes, tokens: &impl TokenCount) -> Vec<Chunk> {
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < blocks.len() {
        let path = &blocks[start].heading_path;
        let end = blocks[start..]
            .iter()
            .position(|b| &b.heading_path != path)
            .map_or(blocks.len(), |n| start + n);
        let pieces: Vec<Piece> = blocks[start..end]
            .iter()
            .flat_map(|b| pieces_of(b, sizes.max_tokens, tokens))
            .collect();
        pack(&pieces, path, sizes, &mut chunks);
        start = end;
    }
    chunks
}

/// The sentences of a block, long ones split into runs of whole words.
fn pieces_of(block: &Block, max: usize, tokens: &impl TokenCount) -> Vec<Piece> {
    let mut out = Vec::new();
    for range in sentences(&block.text) {
        let sentence = block.text[range].trim();
        if sentence.is_empty() {
            continue;
        }
        let n = tokens.count(sentence);
        if n <= max {
            out.push(Piece {
                text: sentence.to_owned(),
                tokens: n,
                page: block.page,
            });
            continue;
        }
        let mut run = String::new();
        let mut run_tokens = 0;
        for word in sentence.split_whitespace() {
            let w = tokens.count(word);
            if run_tokens + w > max && !run.is_empty() {
                out.push(Piece {
                    text: std::mem::take(&mut run),
                    tokens: run_tokens,
                    page: block.page,
                });
                run_tokens = 0;
            }
            if !run.is_empty() {
                run.push(' ');
            }
            run.push_str(word);
            run_tokens += w;
        }
        if !run.is_empty() {
            out.push(Piece {
                text: run,
                tokens: run_tokens,
                page: block.page,
            });
        }
    }
    out
}

/// Packs one section's pieces into chunks with overlap.
fn pack(pieces: &[Piece], path: &[String], sizes: Sizes, out: &mut Vec<Chunk>) {
    let mut first = 0;
    while first < pieces.len() {
        let mut last = first;
        let mut total = pieces[first].tokens;
        while last + 1 < pieces.len() && total + pieces[last + 1].tokens <= sizes.max_tokens {
            last += 1;
            total += pieces[last].tokens;
        }
        out.push(make_chunk(&pieces[first..=last], path, total));
        if last + 1 == pieces.len() {
            break;
        }
        // The next chunk repeats the tail of this one, up to the overlap,
        // and always moves on by at least one piece.
        let mut next = last + 1;
        let mut carried = 0;
        while next - 1 > first && carried + pieces[next - 1].tokens <= sizes.overlap_tokens {
            next -= 1;
            carried += pieces[next].tokens;
        }
        // Room for at least the next new piece beside the carried ones.
        while next <= last && carried + pieces[last + 1].tokens > sizes.max_tokens {
            carried -= pieces[next].tokens;
            next += 1;
        }
        first = next;
    }
}

fn make_chunk(pieces: &[Piece], path: &[String], tokens: usize) -> Chunk {
    let text = pieces
        .iter()
        .map(|p| p.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let mut numbers = pieces.iter().filter_map(|p| p.page);
    let pages = numbers
        .next()
        .map(|p| numbers.fold((p, p), |(lo, hi), p| (lo.min(p), hi.max(p))));
    Chunk {
        text,
        heading_path: path.to_vec(),
        pages,
        tokens,
    }
}

/// Abbreviations a period does not end a sentence after, whatever follows
/// (English and Indonesian business and technical text), compared
/// lower-case without the period. Titles before a name ("Dr.", "Bpk.",
/// "PT."), references before a number or a name ("Fig.", "Eq.", "Jl.",
/// "Rp."), and words that never end a sentence ("approx.", "cf.", "vs.").
/// Abbreviations that often end one ("etc.", "dll.", "dsb.", "dst.") are
/// not listed: after them a capital starts a sentence as after any word.
const ABBREVIATIONS: &[&str] = &[
    "al", "approx", "bpk", "ca", "cf", "dept", "dr", "dra", "drs", "eq", "eqs", "esp", "fig",
    "figs", "hal", "hlm", "ibu", "incl", "ir", "jl", "jln", "kab", "kec", "kel", "mr", "mrs", "ms",
    "pp", "prof", "prov", "pt", "ref", "refs", "resp", "rp", "sdr", "st", "tbk", "tel", "telp",
    "tgl", "vol", "vs", "yth",
];

/// Abbreviations that are also words ("no." ends "The answer is no."):
/// abbreviations only before a number ("No. 8", "Nos. 3-5").
const NUMBER_ABBREVIATIONS: &[&str] = &["no", "nos"];

/// Byte ranges of the sentences of `text`: a sentence ends at `.`, `!`,
/// `?` or `…` (with any closing quotes or brackets) followed by white
/// space and the start of a sentence: an upper-case letter, a digit, or an
/// opening quote or bracket before one ("(Including" starts a sentence,
/// "(including" does not); and at a line break. A period does not end a
/// sentence after an abbreviation ([`ABBREVIATIONS`], "No." before a
/// number), a single letter (an initial: "J. Smith") or a word with
/// periods inside ("e.g.", "i.e.", "sq.ft.", "U.S.", "s.d.").
pub fn sentences(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        if c == '\n' {
            out.push(start..at);
            start = at + c.len_utf8();
            i += 1;
            continue;
        }
        if matches!(c, '.' | '!' | '?' | '…') {
            let mut j = i + 1;
            while j < chars.len() && matches!(chars[j].1, '"' | '\'' | ')' | ']' | '”' | '’') {
                j += 1;
            }
            let end = chars.get(j).map_or(text.len(), |&(b, _)| b);
            let mut k = j;
            while k < chars.len() && chars[k].1.is_whitespace() && chars[k].1 != '\n' {
                k += 1;
            }
            // The first letter or digit after any opening quotes or brackets.
            let mut first = k;
            while first < chars.len()
                && matches!(chars[first].1, '"' | '“' | '(' | '[' | '\'' | '‘')
            {
                first += 1;
            }
            let next = chars.get(first).map(|&(_, n)| n);
            let starts_sentence = k == chars.len()
                || chars[k].1 == '\n'
                || next.is_some_and(|n| n.is_uppercase() || n.is_ascii_digit());
            if k > j && starts_sentence && !(c == '.' && abbreviation_before(text, at, next)) {
                out.push(start..end);
                start = end;
                i = k;
                continue;
            }
        }
        i += 1;
    }
    if start < text.len() {
        out.push(start..text.len());
    }
    out
}

/// Whether the word ending at byte `dot` (a period) is an abbreviation, a
/// single letter (an initial) or a word with periods inside; `next`: the
/// first letter or digit after the period.
fn abbreviation_before(text: &str, dot: usize, next: Option<char>) -> bool {
    let word = text[..dot]
        .rsplit(|c: char| c.is_whitespace() || matches!(c, '(' | '[' | '/' | '"' | '“'))
        .next()
        .unwrap_or("");
    if word.chars().count() == 1 && word.chars().all(char::is_alphabetic) {
        return true;
    }
    // "e.g", "sq.ft", "n.a.c.a": short runs of letters joined by periods
    // (a domain name such as "example.com" has longer parts).
    if word.contains('.')
        && word.split('.').all(|part| {
            (1..=3).contains(&part.chars().count()) && part.chars().all(char::is_alphabetic)
        })
    {
        return true;
    }
    let lower = word.to_lowercase();
    ABBREVIATIONS.contains(&lower.as_str())
        || (NUMBER_ABBREVIATIONS.contains(&lower.as_str())
            && next.is_some_and(|n| n.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One token per word, plus one per 6 characters beyond the first 6
    /// of a word (long words cost more, as with WordPiece).
    fn words(text: &str) -> usize {
        text.split_whitespace()
            .map(|w| 1 + w.chars().count().saturating_sub(1) / 6)
            .sum()
    }

    fn block(text: &str, path: &[&str], page: Option<u32>) -> Block {
        Block {
            text: text.into(),
            heading_path: path.iter().map(|s| s.to_string()).collect(),
            page,
        }
    }

    fn sentence_texts(text: &str) -> Vec<&str> {
        sentences(text)
            .into_iter()
            .map(|r| text[r].trim())
            .collect()
    }

    #[test]
    fn sentences_end_where_a_reader_ends_them() {
        assert_eq!(
            sentence_texts(
                "Harga naik 5%. Pembayaran ke PT. Maju Jaya Tbk. paling lambat tgl. 5 Mei. \
                 Hubungi Bpk. Budi (No. 12)! Sudah? \"Ya.\" Versi 2.1 berlaku. J. Smith setuju"
            ),
            [
                "Harga naik 5%.",
                "Pembayaran ke PT. Maju Jaya Tbk. paling lambat tgl. 5 Mei.",
                "Hubungi Bpk. Budi (No. 12)!",
                "Sudah?",
                "\"Ya.\"",
                "Versi 2.1 berlaku.",
                "J. Smith setuju",
            ]
        );
        assert_eq!(sentence_texts("satu\ndua. tiga"), ["satu", "dua. tiga"]);
        assert_eq!(
            sentence_texts("Rp. 5.000 per unit."),
            ["Rp. 5.000 per unit."]
        );
        assert!(sentence_texts("").is_empty());
    }

    #[test]
    fn abbreviations_and_lower_case_after_a_bracket_do_not_end_a_sentence() {
        // Cranfield 253: the answer was cut off after "sq.ft." (issue 49).
        assert_eq!(
            sentence_texts(
                "A bow wave of 2 lb sq.ft. (including a factor of 2 for ground reflection) \
                 is taken as an upper limit. It ended. (See the notes.)"
            ),
            [
                "A bow wave of 2 lb sq.ft. (including a factor of 2 for ground reflection) \
                 is taken as an upper limit.",
                "It ended.",
                "(See the notes.)",
            ]
        );
        assert_eq!(
            sentence_texts(
                "Use a probe, e.g. Pitot tubes, i.e. Prandtl's design. Approx. 40 were made. \
                 See Fig. 3 and Eq. 7 of Smith et al. (1958). Tests of the U.S. Army and the \
                 N.A.C.A. 4412 airfoil. Visit example.com. Then log in."
            ),
            [
                "Use a probe, e.g. Pitot tubes, i.e. Prandtl's design.",
                "Approx. 40 were made.",
                "See Fig. 3 and Eq. 7 of Smith et al. (1958).",
                "Tests of the U.S. Army and the N.A.C.A. 4412 airfoil.",
                "Visit example.com.",
                "Then log in.",
            ]
        );
        // "No." is an abbreviation before a number only.
        assert_eq!(
            sentence_texts("The answer is no. Then we left. Room No. 4 and Nos. 5-6 are free."),
            [
                "The answer is no.",
                "Then we left.",
                "Room No. 4 and Nos. 5-6 are free."
            ]
        );
    }

    #[test]
    fn indonesian_abbreviations_and_a_capital_after_dll_or_dsb() {
        assert_eq!(
            sentence_texts(
                "Bawa kertas, tinta, dll. untuk rapat. Syaratnya akta, NPWP, dsb. Kinerja \
                 dinilai tiap bulan. Kirim ke Jl. Industri Raya No. 8, Cikarang. Harga Rp. 5.000 \
                 s.d. Rp. 9.000. Yth. Ibu Sari."
            ),
            [
                "Bawa kertas, tinta, dll. untuk rapat.",
                "Syaratnya akta, NPWP, dsb.",
                "Kinerja dinilai tiap bulan.",
                "Kirim ke Jl. Industri Raya No. 8, Cikarang.",
                "Harga Rp. 5.000 s.d. Rp. 9.000.",
                "Yth. Ibu Sari.",
            ]
        );
    }

    #[test]
    fn chunks_stay_within_their_size_and_section_and_never_cut_a_word() {
        let para =
            "Pelanggan membayar dalam tiga puluh hari. Denda keterlambatan dua persen sebulan. \
                    Barang dikirim dari gudang Surabaya. Retur diterima dalam tujuh hari kerja.";
        let blocks = vec![
            block(para, &["SOP", "Pembayaran"], Some(1)),
            block(para, &["SOP", "Pembayaran"], Some(2)),
            block("Gudang buka pukul delapan.", &["SOP", "Gudang"], Some(2)),
        ];
        let sizes = Sizes::new(32, 8).unwrap();
        let chunks = chunk(&blocks, sizes, &words);
        assert!(chunks.len() >= 3, "{chunks:#?}");
        let all_words: Vec<&str> = blocks
            .iter()
            .flat_map(|b| b.text.split_whitespace())
            .collect();
        for c in &chunks {
            assert!(c.tokens <= sizes.max_tokens, "{c:?}");
            assert_eq!(c.tokens, words(&c.text), "{c:?}");
            for w in c.text.split_whitespace() {
                assert!(
                    all_words.contains(&w),
                    "{w:?} is not a whole word of the input"
                );
            }
        }
        let last = chunks.last().unwrap();
        assert_eq!(last.text, "Gudang buka pukul delapan.");
        assert_eq!(last.heading_path, ["SOP", "Gudang"]);
        assert_eq!(last.pages, Some((2, 2)));
        assert!(chunks[..chunks.len() - 1]
            .iter()
            .all(|c| c.heading_path == ["SOP", "Pembayaran"]));
        // Pages follow the text: the first chunk is on page 1, one spans both.
        assert_eq!(chunks[0].pages, Some((1, 1)));
        assert!(
            chunks.iter().any(|c| c.pages == Some((1, 2))),
            "{chunks:#?}"
        );
    }

    #[test]
    fn every_sentence_is_in_a_chunk_and_neighbours_overlap() {
        let text: String = (1..=30)
            .map(|i| format!("Kalimat nomor {i} tentang kebijakan harga. "))
            .collect();
        let blocks = vec![block(&text, &[], None)];
        let sizes = Sizes::new(40, 10).unwrap();
        let chunks = chunk(&blocks, sizes, &words);
        for i in 1..=30 {
            let s = format!("Kalimat nomor {i} tentang kebijakan harga.");
            assert!(
                chunks.iter().any(|c| c.text.contains(&s)),
                "sentence {i} is lost"
            );
        }
        for pair in chunks.windows(2) {
            let tail = pair[0].text.rsplit(". ").next().unwrap();
            assert!(
                pair[1].text.starts_with(tail.trim_end_matches('.')),
                "no overlap between {:?} and {:?}",
                pair[0].text,
                pair[1].text
            );
        }
        assert!(chunks.iter().all(|c| c.pages.is_none()));
    }

    #[test]
    fn a_sentence_longer_than_a_chunk_is_cut_between_words() {
        let long: String = (0..100).map(|i| format!("kata{i} ")).collect();
        let blocks = vec![block(&long, &["Lampiran"], Some(7))];
        let sizes = Sizes::new(16, 4).unwrap();
        let chunks = chunk(&blocks, sizes, &words);
        let rejoined: Vec<&str> = chunks
            .iter()
            .flat_map(|c| c.text.split_whitespace())
            .collect();
        // Every word once at least, in order, none broken.
        let mut expected = (0..100).map(|i| format!("kata{i}")).peekable();
        for w in rejoined {
            if expected.peek().map(String::as_str) == Some(w) {
                expected.next();
            }
        }
        assert!(expected.next().is_none());
        assert!(chunks
            .iter()
            .all(|c| c.tokens <= 16 && c.pages == Some((7, 7))));

        // A single word longer than a chunk is a chunk of its own.
        let url = format!("https://contoh.co.id/{}", "x".repeat(200));
        let chunks = chunk(
            &[block(&format!("Lihat {url} untuk rincian."), &[], None)],
            sizes,
            &words,
        );
        assert!(chunks.iter().any(|c| c.text == url), "{chunks:#?}");
    }

    #[test]
    fn sizes_are_checked() {
        assert_eq!(Sizes::new(4, 0), Err(SizeError::TooSmall));
        assert_eq!(Sizes::new(64, 32), Err(SizeError::OverlapTooLarge));
        assert!(Sizes::new(256, 32).is_ok());
        assert!(chunk(&[], Sizes::new(64, 8).unwrap(), &words).is_empty());
        assert!(chunk(
            &[block("  ", &[], None)],
            Sizes::new(64, 8).unwrap(),
            &words
        )
        .is_empty());
    }
}
