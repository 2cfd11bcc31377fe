//! The PII detector without a server, over the benchmark corpus (JSON lines
//! with a `text` field and labelled `spans`, written by the tests'
//! generator): throughput of `pii::detect` and `pii::mask` over every
//! text, best of three passes, and precision/recall per type against the
//! labels (strict: type, start and end equal). Run by `bench/pii/run`
//! (also by its detector-only mode, `scripts/bench pii-detector`):
//!
//! ```text
//! cargo run --release -p bizos-core --example pii_throughput -- /tmp/bizos-bench-pii/corpus.jsonl
//! ```
//!
//! Prints one JSON object: `docs`, `bytes`, `detect_mb_s`, `mask_mb_s` and
//! `counts` (per type: `tp`, `fp`, `fn`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use bizos_core::pii;

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: pii_throughput CORPUS.jsonl");
    let data = std::fs::read_to_string(&path).expect("read the corpus");
    let docs: Vec<serde_json::Value> = data
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let texts: Vec<&str> = docs
        .iter()
        .map(|v| v["text"].as_str().expect("a text field"))
        .collect();
    let bytes: usize = texts.iter().map(|s| s.len()).sum();
    let best = |f: &dyn Fn(&str) -> usize| {
        (0..3)
            .map(|_| {
                let t = Instant::now();
                let n: usize = texts.iter().map(|s| f(s)).sum();
                std::hint::black_box(n);
                t.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    };
    let detect = best(&|s| pii::detect(s).len());
    let mask = best(&|s| pii::mask(s).len());

    let mut counts: BTreeMap<String, [u64; 3]> = pii::Kind::ALL
        .iter()
        .map(|k| (k.name().to_owned(), [0; 3]))
        .collect();
    for (doc, text) in docs.iter().zip(&texts) {
        let truth: BTreeSet<(String, u64, u64)> = doc["spans"]
            .as_array()
            .map(|a| a.as_slice())
            .unwrap_or_default()
            .iter()
            .map(|s| {
                (
                    s["type"].as_str().unwrap_or("?").to_owned(),
                    s["start"].as_u64().unwrap_or(0),
                    s["end"].as_u64().unwrap_or(0),
                )
            })
            .collect();
        let pred: BTreeSet<(String, u64, u64)> = pii::to_char_offsets(text, &pii::detect(text))
            .iter()
            .map(|s| (s.kind.name().to_owned(), s.start as u64, s.end as u64))
            .collect();
        for t in pred.intersection(&truth) {
            counts.entry(t.0.clone()).or_default()[0] += 1;
        }
        for t in pred.difference(&truth) {
            counts.entry(t.0.clone()).or_default()[1] += 1;
        }
        for t in truth.difference(&pred) {
            counts.entry(t.0.clone()).or_default()[2] += 1;
        }
    }
    let counts: serde_json::Map<String, serde_json::Value> = counts
        .into_iter()
        .map(|(k, [tp, fp, fn_])| (k, serde_json::json!({"tp": tp, "fp": fp, "fn": fn_})))
        .collect();
    println!(
        "{}",
        serde_json::json!({
            "docs": texts.len(),
            "bytes": bytes,
            "detect_mb_s": (bytes as f64 / 1e6 / detect * 10.0).round() / 10.0,
            "mask_mb_s": (bytes as f64 / 1e6 / mask * 10.0).round() / 10.0,
            "counts": counts,
        })
    );
}
