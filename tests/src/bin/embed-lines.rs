//! `embed-lines MODEL_DIR IN OUT`: one embedding per line of IN, by the
//! knowledge base's built-in embedder (`bizos_bff::kb::embed::Embedder`,
//! all-MiniLM-L6-v2), written to OUT as one vector per line in the text
//! form that both `bizos.vector` and pgvector's `vector` read
//! (`[0.1,-0.2,...]`).
//!
//! For the index benchmark (`scripts/bench vector-index`), which embeds
//! about 100,000 WordNet glosses once and keeps the file. Resumable: when
//! OUT already holds n lines, the first n lines of IN are skipped, and OUT
//! grows by whole batches (each written and flushed before the next), so an
//! interrupted run continues where it stopped. Progress on stderr.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use bizos_bff::kb::embed::{vector_text, Embedder};

/// Lines embedded and written per step.
const STEP: usize = 512;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, input, output] = args.as_slice() else {
        bail!("usage: embed-lines MODEL_DIR IN OUT");
    };
    let embedder = Embedder::load(&PathBuf::from(model)).context("loading the model")?;
    let lines: Vec<String> =
        BufReader::new(std::fs::File::open(input).with_context(|| format!("opening {input}"))?)
            .lines()
            .collect::<Result<_, _>>()
            .with_context(|| format!("reading {input}"))?;
    let done = match std::fs::File::open(output) {
        Ok(f) => BufReader::new(f).lines().count(),
        Err(_) => 0,
    };
    if done > lines.len() {
        bail!(
            "{output} has more lines ({done}) than {input} ({})",
            lines.len()
        );
    }
    let mut out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(output)
        .with_context(|| format!("opening {output}"))?;
    let started = Instant::now();
    let mut written = 0usize;
    for step in lines[done..].chunks(STEP) {
        let texts: Vec<&str> = step.iter().map(String::as_str).collect();
        let vectors = embedder.embed(&texts).context("embedding")?;
        let mut text = String::new();
        for v in &vectors {
            text.push_str(&vector_text(v));
            text.push('\n');
        }
        out.write_all(text.as_bytes())?;
        out.flush()?;
        written += step.len();
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "embed-lines: {} of {} lines, {:.0} lines/s",
            done + written,
            lines.len(),
            written as f64 / secs.max(1e-9)
        );
    }
    Ok(())
}
