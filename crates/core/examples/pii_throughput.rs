//! Throughput of the PII detector without a server: reads the benchmark
//! corpus (JSON lines with a `text` field, written by the tests' generator)
//! and times `pii::detect` and `pii::mask` over every text, best of three
//! passes. Run by `bench/pii/run`:
//!
//! ```text
//! cargo run --release -p bizos-core --example pii_throughput -- /tmp/bizos-bench-pii/corpus.jsonl
//! ```

use std::time::Instant;

use bizos_core::pii;

fn main() {
    let path = std::env::args()
        .nth(1)
        .expect("usage: pii_throughput CORPUS.jsonl");
    let data = std::fs::read_to_string(&path).expect("read the corpus");
    let texts: Vec<String> = data
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            v["text"].as_str().expect("a text field").to_owned()
        })
        .collect();
    let bytes: usize = texts.iter().map(String::len).sum();
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
    println!(
        "{{\"docs\": {}, \"bytes\": {bytes}, \"detect_mb_s\": {:.1}, \"mask_mb_s\": {:.1}}}",
        texts.len(),
        bytes as f64 / 1e6 / detect,
        bytes as f64 / 1e6 / mask
    );
}
