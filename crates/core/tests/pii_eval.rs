//! Precision, recall and F1 per type of the PII detector without a server:
//! `bizos_core::pii::detect` over
//!
//! * the generated corpus of the integration tests (`tests/src/pii_corpus.rs`,
//!   the same seed and size as `tests/tests/suite/pii_corpus.rs`, which measures
//!   the same through SQL), and
//! * the hand-written set of realistic messages
//!   (`tests/fixtures/pii_realworld/*.txt`), written independently of the
//!   generator's assumptions.
//!
//! Strict scoring: a detection counts only when type, start and end all
//! equal a label's. Besides the strict numbers it counts what matters for a
//! leak: labels left without any mask ("missed"), labels only partly
//! covered ("half-masked"; must be none), and labels masked whole but under
//! another type or with a wider span ("masked, other type/extent").
//!
//! `cargo test -p bizos-core --test pii_eval -- --nocapture` prints the
//! tables (and the first misses).

#[allow(dead_code)]
#[path = "../../../tests/src/pii_corpus.rs"]
mod pii_corpus;

use std::collections::{BTreeMap, BTreeSet};

use bizos_core::pii;
use pii_corpus::{corpus, disguised_corpus, realworld, Doc};

const TYPES: [&str; 6] = ["NIK", "NPWP", "PHONE", "EMAIL", "CARD", "BANK_ACCOUNT"];

#[derive(Default, Clone, Copy)]
struct Counts {
    tp: u64,
    fp: u64,
    fn_: u64,
    /// Labels that no detected span touches.
    missed: u64,
    /// Labels that a detected span overlaps without covering them whole.
    half: u64,
}

impl Counts {
    fn precision(self) -> f64 {
        self.tp as f64 / (self.tp + self.fp).max(1) as f64
    }
    fn recall(self) -> f64 {
        self.tp as f64 / (self.tp + self.fn_).max(1) as f64
    }
    fn f1(self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
    /// Share of labels masked whole (any type, any wider span).
    fn masked(self) -> f64 {
        let labels = self.tp + self.fn_;
        (labels - self.missed - self.half) as f64 / labels.max(1) as f64
    }
}

struct Report {
    counts: BTreeMap<&'static str, Counts>,
    notes: Vec<String>,
}

fn evaluate<'a>(docs: impl IntoIterator<Item = &'a Doc>) -> Report {
    let mut counts: BTreeMap<&'static str, Counts> =
        TYPES.iter().map(|t| (*t, Counts::default())).collect();
    let mut notes = Vec::new();
    for doc in docs {
        let spans = pii::to_char_offsets(&doc.text, &pii::detect(&doc.text));
        let pred: BTreeSet<(&str, usize, usize)> = spans
            .iter()
            .map(|s| (s.kind.name(), s.start, s.end))
            .collect();
        let truth: BTreeSet<(&str, usize, usize)> = doc
            .labels
            .iter()
            .map(|l| (l.kind, l.start, l.end))
            .collect();
        let chars: Vec<char> = doc.text.chars().collect();
        let show = |s: usize, e: usize| chars[s..e].iter().collect::<String>();
        for t in truth.difference(&pred) {
            let c = counts.get_mut(t.0).unwrap();
            c.fn_ += 1;
            let overlapping: Vec<_> = spans
                .iter()
                .filter(|s| s.start < t.2 && t.1 < s.end)
                .collect();
            let covered = overlapping.iter().any(|s| s.start <= t.1 && t.2 <= s.end);
            let how = if overlapping.is_empty() {
                c.missed += 1;
                "MISSED"
            } else if !covered {
                c.half += 1;
                "HALF-MASKED"
            } else {
                "masked as other type/extent"
            };
            notes.push(format!("{how} {} {:?}", t.0, show(t.1, t.2)));
        }
        for p in pred.difference(&truth) {
            counts.get_mut(p.0).unwrap().fp += 1;
            let from = p.1.saturating_sub(20);
            notes.push(format!(
                "extra {} {:?} after {:?}",
                p.0,
                show(p.1, p.2),
                show(from, p.1)
            ));
        }
        for p in pred.intersection(&truth) {
            counts.get_mut(p.0).unwrap().tp += 1;
        }
    }
    Report { counts, notes }
}

fn print(title: &str, r: &Report) {
    println!("\n{title}\n");
    println!("| type | labels | precision | recall | F1 | masked whole | missed | half-masked |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut all = Counts::default();
    for (t, c) in &r.counts {
        all.tp += c.tp;
        all.fp += c.fp;
        all.fn_ += c.fn_;
        all.missed += c.missed;
        all.half += c.half;
        println!(
            "| {t} | {} | {:.4} | {:.4} | {:.4} | {:.4} | {} | {} |",
            c.tp + c.fn_,
            c.precision(),
            c.recall(),
            c.f1(),
            c.masked(),
            c.missed,
            c.half
        );
    }
    println!(
        "| all | {} | {:.4} | {:.4} | {:.4} | {:.4} | {} | {} |",
        all.tp + all.fn_,
        all.precision(),
        all.recall(),
        all.f1(),
        all.masked(),
        all.missed,
        all.half
    );
    // `PII_EVAL_NOTES=n` prints more of them.
    let notes = std::env::var("PII_EVAL_NOTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    for n in r.notes.iter().take(notes) {
        println!("  {n}");
    }
}

/// Same floor as the SQL test: F1 ≥ 0.95 for every type, and no label left
/// half-masked.
#[test]
fn generated_corpus_per_type() {
    let docs = corpus(20_261_122, 3_000);
    let r = evaluate(&docs);
    print("generated corpus (seed 20261122, 3,000 documents)", &r);
    for (t, c) in &r.counts {
        assert!(c.tp + c.fn_ >= 100, "{t}: too few labels");
        assert!(c.f1() >= 0.95, "{t}: F1 {:.4}", c.f1());
        assert_eq!(c.half, 0, "{t}: half-masked labels");
    }
}

/// The generated corpus with its PII in the forms people type to get past
/// a filter or that their keyboards produce (`disguised_corpus`: other
/// scripts' digits, digits spaced one by one, line breaks and zero-width
/// spaces inside numbers, keywords glued to them; a fifth of the documents
/// wholly in another script, amounts and dates too): F1 ≥ 0.97 per type and
/// nothing half-masked.
#[test]
fn disguised_corpus_per_type() {
    let docs = disguised_corpus(20_261_206, 3_000);
    let r = evaluate(&docs);
    print("disguised corpus (seed 20261206, 3,000 documents)", &r);
    for (t, c) in &r.counts {
        assert!(c.tp + c.fn_ >= 100, "{t}: too few labels");
        assert!(c.f1() >= 0.97, "{t}: F1 {:.4}", c.f1());
        assert_eq!(c.half, 0, "{t}: half-masked labels");
    }
}

/// The hand-written set: every type recalled at ≥ 0.85 strictly and with
/// precision ≥ 0.9, no label half-masked (0.85: the held-out batch has a
/// plain 15-digit NPWP whose keyword stands beyond the 40-byte window). Printed in two parts: the files
/// written before the detector changes (which were then measured against
/// them) and `holdout.txt`, written afterwards and not tuned on.
#[test]
fn hand_written_set_per_type() {
    let docs = realworld();
    let tuned = evaluate(
        docs.iter()
            .filter(|(f, _)| *f != "holdout" && *f != "forms")
            .map(|(_, d)| d),
    );
    print(
        "hand-written set (tests/fixtures/pii_realworld, without holdout.txt and forms.txt)",
        &tuned,
    );
    let holdout = evaluate(docs.iter().filter(|(f, _)| *f == "holdout").map(|(_, d)| d));
    print(
        "hand-written holdout (tests/fixtures/pii_realworld/holdout.txt)",
        &holdout,
    );
    let forms = evaluate(docs.iter().filter(|(f, _)| *f == "forms").map(|(_, d)| d));
    print(
        "hand-written forms (tests/fixtures/pii_realworld/forms.txt: other scripts, spaced, wrapped, glued)",
        &forms,
    );
    let mut all = Counts::default();
    for c in forms.counts.values() {
        all.tp += c.tp;
        all.fp += c.fp;
        all.fn_ += c.fn_;
        all.half += c.half;
    }
    assert_eq!(all.half, 0, "forms.txt: half-masked labels");
    assert!(all.f1() >= 0.97, "forms.txt: F1 {:.4}", all.f1());
    let r = evaluate(docs.iter().map(|(_, d)| d));
    print("hand-written set, all files", &r);
    for (t, c) in &r.counts {
        assert!(c.tp + c.fn_ >= 5, "{t}: too few labels");
        assert_eq!(c.half, 0, "{t}: half-masked labels");
        assert!(c.recall() >= 0.85, "{t}: recall {:.4}", c.recall());
        assert!(c.precision() >= 0.9, "{t}: precision {:.4}", c.precision());
    }
}

/// Writes the benchmark corpus as JSON lines: `PII_CORPUS_OUT` (path,
/// required), `PII_CORPUS_BYTES` (text bytes, default 50 MB),
/// `PII_CORPUS_SEED` (42). Run by `bench/pii/run`; the same documents as
/// `write_corpus` of `tests/tests/suite/pii_corpus.rs`, without building the
/// integration tests.
#[test]
#[ignore = "writes the benchmark corpus; run by bench/pii/run"]
fn write_corpus() {
    use std::io::Write;
    let path = std::env::var("PII_CORPUS_OUT").expect("PII_CORPUS_OUT");
    let bytes: usize = std::env::var("PII_CORPUS_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000_000);
    let seed: u64 = std::env::var("PII_CORPUS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(42);
    let mut out =
        std::io::BufWriter::new(std::fs::File::create(&path).expect("create corpus file"));
    let mut r = pii_corpus::Rng::new(seed);
    let (mut written, mut docs) = (0, 0);
    while written < bytes {
        let d = pii_corpus::document(&mut r);
        written += d.text.len();
        docs += 1;
        writeln!(out, "{}", d.to_json_line()).unwrap();
    }
    out.flush().unwrap();
    println!("wrote {docs} documents, {written} bytes of text, to {path}");
}
