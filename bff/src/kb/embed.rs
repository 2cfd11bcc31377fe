//! The built-in embedder of the knowledge base: sentence-transformers'
//! all-MiniLM-L6-v2 (BERT, 6 layers, 384 dimensions) run in process on the
//! CPU with candle, tokenised with the model's own WordPiece tokenizer.
//!
//! The model directory (`BIZOS_KB_MODEL_DIR`, installed and hash-checked by
//! `scripts/dev`) holds `config.json`, `tokenizer.json` and
//! `model.safetensors`. A process loads it once ([`Embedder::load`]) and
//! shares it; [`Embedder::embed`] is CPU-bound and blocking, so async code
//! calls it from `spawn_blocking`.
//!
//! What sentence-transformers does, and so what we do:
//! - tokenise with `[CLS]`/`[SEP]`, truncated to the model's
//!   `max_seq_length` of 256 tokens (the shipped `tokenizer.json` says
//!   128 for both padding and truncation, which is the tokenizer's
//!   default, not the model's: both are overridden);
//! - run BERT over the batch, padded to its longest text, with the
//!   attention mask;
//! - mean-pool the last hidden states over the real tokens and L2-normalise.
//!
//! Texts are batched by length (sorted, so a batch pads little) and the
//! vectors come back in the caller's order.

use std::path::{Path, PathBuf};

use bizos_core::chunk::TokenCount;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

/// The dimension of the vectors (the model's hidden size).
pub const DIMS: usize = 384;
/// Tokens the model reads of a text, `[CLS]` and `[SEP]` included.
pub const MAX_SEQ_TOKENS: usize = 256;
/// Texts run through the model together.
const BATCH: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error("embedding model in {dir}: {what}")]
    Load { dir: PathBuf, what: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("embedding model: {0}")]
    Model(#[from] candle_core::Error),
}

pub struct Embedder {
    model: BertModel,
    /// Truncates to [`MAX_SEQ_TOKENS`] and pads a batch to its longest.
    encoder: Tokenizer,
    /// Neither truncates nor pads: counts for the chunker.
    counter: Tokenizer,
    device: Device,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder").finish_non_exhaustive()
    }
}

impl Embedder {
    /// Loads the model of `dir`; the weights are memory-mapped.
    pub fn load(dir: &Path) -> Result<Embedder, EmbedError> {
        let load_err = |what: String| EmbedError::Load {
            dir: dir.to_owned(),
            what,
        };
        let config = std::fs::read_to_string(dir.join("config.json"))
            .map_err(|e| load_err(format!("config.json: {e}")))?;
        let config: Config =
            serde_json::from_str(&config).map_err(|e| load_err(format!("config.json: {e}")))?;
        if config.hidden_size != DIMS {
            return Err(load_err(format!(
                "the model gives {} dimensions, the knowledge base stores {DIMS}",
                config.hidden_size
            )));
        }
        let counter = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| load_err(format!("tokenizer.json: {e}")))?;
        let mut counter = counter;
        counter.with_padding(None);
        counter
            .with_truncation(None)
            .map_err(|e| load_err(format!("tokenizer.json: {e}")))?;
        let mut encoder = counter.clone();
        encoder.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..PaddingParams::default()
        }));
        encoder
            .with_truncation(Some(TruncationParams {
                max_length: MAX_SEQ_TOKENS,
                ..TruncationParams::default()
            }))
            .map_err(|e| load_err(format!("tokenizer.json: {e}")))?;

        let weights = dir.join("model.safetensors");
        if !weights.is_file() {
            return Err(load_err("model.safetensors is missing".into()));
        }
        let device = Device::Cpu;
        // SAFETY: the file is mapped read-only; the install writes it once
        // and nothing of ours changes it while a process runs.
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&[weights], DType::F32, &device) }
            .map_err(|e| load_err(format!("model.safetensors: {e}")))?;
        let model = BertModel::load(vb, &config)
            .map_err(|e| load_err(format!("model.safetensors: {e}")))?;
        Ok(Embedder {
            model,
            encoder,
            counter,
            device,
        })
    }

    /// One unit vector of [`DIMS`] per text, in the order of `texts`.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut order: Vec<usize> = (0..texts.len()).collect();
        // Longest first, so a batch pads to a length close to its own.
        let lengths: Vec<usize> = texts.iter().map(|t| t.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
        let mut out = vec![Vec::new(); texts.len()];
        for batch in order.chunks(BATCH) {
            let inputs: Vec<&str> = batch.iter().map(|&i| texts[i]).collect();
            for (&i, vector) in batch.iter().zip(self.embed_batch(&inputs)?) {
                out[i] = vector;
            }
        }
        Ok(out)
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let encodings = self
            .encoder
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        let rows = |f: fn(&tokenizers::Encoding) -> &[u32]| -> Result<Tensor, EmbedError> {
            let rows = encodings
                .iter()
                .map(|e| Tensor::new(f(e), &self.device))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Tensor::stack(&rows, 0)?)
        };
        let ids = rows(|e| e.get_ids())?;
        let mask = rows(|e| e.get_attention_mask())?;
        let hidden = self.model.forward(&ids, &ids.zeros_like()?, Some(&mask))?;
        // Mean over the real tokens: (batch, seq, dims) · (batch, seq, 1).
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let mean = hidden
            .broadcast_mul(&mask)?
            .sum(1)?
            .broadcast_div(&mask.sum(1)?)?;
        let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?;
        Ok(mean.broadcast_div(&norm)?.to_vec2()?)
    }

    /// Tokens of `text` without the special tokens, untruncated.
    pub fn tokens(&self, text: &str) -> Result<usize, EmbedError> {
        let encoding = self
            .counter
            .encode(text, false)
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        Ok(encoding.len())
    }
}

/// A vector in the text form of `bizos.vector` (`[0.1,-0.2,...]`); Rust
/// prints the shortest digits that read back as the same f32.
pub fn vector_text(vector: &[f32]) -> String {
    let parts: Vec<String> = vector.iter().map(f32::to_string).collect();
    format!("[{}]", parts.join(","))
}

/// The embedder of `dir`, loaded once per process and shared by everyone
/// who asks for it (the BFF's routes, the worker's jobs, the tests'
/// in-process servers).
pub fn shared(dir: &Path) -> Result<std::sync::Arc<Embedder>, EmbedError> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    static LOADED: OnceLock<Mutex<HashMap<PathBuf, Arc<Embedder>>>> = OnceLock::new();
    let mut loaded = LOADED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(embedder) = loaded.get(dir) {
        return Ok(embedder.clone());
    }
    let embedder = Arc::new(Embedder::load(dir)?);
    loaded.insert(dir.to_owned(), embedder.clone());
    Ok(embedder)
}

impl TokenCount for Embedder {
    /// A text the tokenizer refuses (it does not refuse text it has no
    /// pieces for: those become `[UNK]`) counts as one token per byte, so
    /// the chunker stays on the safe side.
    fn count(&self, text: &str) -> usize {
        self.tokens(text).unwrap_or(text.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The installed model: `scripts/dev test` puts it in place and
    /// exports `BIZOS_KB_MODEL_DIR`.
    fn installed() -> Embedder {
        let dir = std::env::var_os("BIZOS_KB_MODEL_DIR")
            .expect("BIZOS_KB_MODEL_DIR is not set: run the tests with scripts/dev test, which installs the model");
        Embedder::load(Path::new(&dir)).expect("BIZOS_KB_MODEL_DIR holds a loadable model")
    }

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn a_batch_gives_each_text_what_it_gets_alone() {
        let embedder = installed();
        let texts = [
            "Harga per unit Rp 12.500, belum termasuk PPN.",
            "Refunds are approved by the finance manager within five working days of the request.",
            "SOP",
        ];
        let batch = embedder.embed(&texts).unwrap();
        assert_eq!(batch.len(), 3);
        for (text, vector) in texts.iter().zip(&batch) {
            assert_eq!(vector.len(), DIMS);
            let norm = cosine(vector, vector).sqrt();
            assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
            let alone = embedder.embed(&[text]).unwrap().remove(0);
            let c = cosine(vector, &alone);
            assert!(c > 0.99999, "{text}: cosine {c} between batched and alone");
        }
        assert!(
            cosine(&batch[0], &batch[1]) < 0.9,
            "different texts, different vectors"
        );
    }

    /// Parity with the reference implementation of the same model
    /// (tests/fixtures/kb/README.md): every sentence's vector within a
    /// cosine of 0.999 (in practice 1 - 1e-7), and the same token ids.
    #[test]
    fn vectors_equal_the_reference_implementation() {
        let embedder = installed();
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/kb/minilm_parity.json"
        );
        let fixture: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let sentences = fixture["sentences"].as_array().unwrap();
        assert!(
            sentences.len() >= 50,
            "the fixture holds {} sentences",
            sentences.len()
        );
        assert!(
            sentences.iter().any(|s| s["truncated"] == true),
            "a sentence over 256 tokens"
        );
        let texts: Vec<&str> = sentences
            .iter()
            .map(|s| s["text"].as_str().unwrap())
            .collect();
        let vectors = embedder.embed(&texts).unwrap();
        let mut worst = f32::MAX;
        for ((s, text), got) in sentences.iter().zip(&texts).zip(&vectors) {
            let ids: Vec<u32> = embedder
                .encoder
                .encode(*text, true)
                .unwrap()
                .get_ids()
                .to_vec();
            let want_ids: Vec<u32> = serde_json::from_value(s["token_ids"].clone()).unwrap();
            assert_eq!(ids, want_ids, "token ids of {text:?}");
            let want: Vec<f32> = serde_json::from_value(s["embedding"].clone()).unwrap();
            assert_eq!(want.len(), DIMS);
            let c = cosine(got, &want) / cosine(&want, &want).sqrt();
            assert!(c >= 0.999, "{text:?}: cosine {c}");
            worst = worst.min(c);
        }
        eprintln!("{} sentences, lowest cosine {worst}", texts.len());
    }

    #[test]
    fn counting_neither_truncates_nor_adds_special_tokens() {
        let embedder = installed();
        assert_eq!(embedder.count("hello world"), 2);
        let word = embedder.count("invoice");
        assert!(word >= 1);
        let long = "invoice ".repeat(600);
        assert_eq!(embedder.count(&long), 600 * word, "no truncation at 256");
    }

    #[test]
    fn a_model_directory_without_the_model_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = Embedder::load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("config.json"), "{err}");
    }
}
