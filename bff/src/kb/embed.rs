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
//! How it is run (issue 49; docs/benchmarks/knowledge-base.md has the
//! profile): texts are sorted by their token count and cut into small
//! batches of neighbours, so a batch pads little; the batches run side by
//! side on the embedder's own threads (`BIZOS_KB_EMBED_THREADS`, default
//! one a core), a lone batch on the caller's thread; [`tune_process`] keeps
//! candle's operations on the thread that runs their batch. The vectors
//! come back in the caller's order.

use std::path::{Path, PathBuf};

use bizos_core::chunk::TokenCount;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use rayon::prelude::*;
use tokenizers::{Encoding, Tokenizer, TruncationParams};

/// The dimension of the vectors (the model's hidden size).
pub const DIMS: usize = 384;
/// Tokens the model reads of a text, `[CLS]` and `[SEP]` included.
pub const MAX_SEQ_TOKENS: usize = 256;
/// The id `[PAD]` has in the model's vocabulary (BERT's 0); padded
/// positions are masked out, so only the mask matters.
const PAD_ID: u32 = 0;

/// How the model is run. [`Settings::default`] is what the BFF uses;
/// [`Settings::before_issue_49`] is the embedder as it ran before, kept so
/// `scripts/bench kb` measures its baseline in the same run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Texts run through the model together. Small batches keep every
    /// temporary small (attention scores are batch × 12 heads × 256² floats:
    /// 12 MB at 4, 50 MB at 16) and let batches run side by side.
    pub batch: usize,
    /// The embedder's threads; `None`: candle's defaults (its global
    /// thread pools, one batch after another).
    pub threads: Option<usize>,
}

impl Default for Settings {
    /// Batches of 4 on `BIZOS_KB_EMBED_THREADS` threads (default: the
    /// cores this process may use).
    fn default() -> Self {
        let threads = std::env::var("BIZOS_KB_EMBED_THREADS")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|&n| n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        Settings {
            batch: 4,
            threads: Some(threads),
        }
    }
}

impl Settings {
    /// Batches of 16, candle's own threads.
    pub fn before_issue_49() -> Self {
        Settings {
            batch: 16,
            threads: None,
        }
    }
}

/// What a process that embeds sets for itself, at the start of `main`
/// before it starts any thread (the `bizos` binary, the benchmarks):
///
/// - glibc's malloc gives a freed block above its mmap threshold (which
///   it adjusts up to 32 MB) back to the kernel at once, and trims a heap
///   whose free top exceeds its trim threshold: each of the model's
///   tensors (megabytes) then came back as fresh pages the kernel had to
///   fault in and zero, 30% of the embedder's cycles (issue 49). Blocks up
///   to 64 MB now come from the heaps, and a heap keeps up to 256 MB free.
/// - candle runs element-wise operations on a global pool of its own whose
///   threads spin between operations and let one caller in at a time, and
///   splits every matrix product over rayon's threads: on 2 busy cores
///   both only added waiting (a thread spinning or asleep while the other
///   waits for a core). `CANDLE_NUM_THREADS=1` and `RAYON_NUM_THREADS=1`
///   (each unless set) make every operation run on the thread that runs
///   its batch: the batches of a call run side by side on the embedder's
///   threads ([`Settings::threads`]), a lone query on its caller's thread.
pub fn tune_process() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets malloc's parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
    for var in ["CANDLE_NUM_THREADS", "RAYON_NUM_THREADS"] {
        if std::env::var_os(var).is_none() {
            std::env::set_var(var, "1");
        }
    }
}

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
    /// Truncates to [`MAX_SEQ_TOKENS`]; batches are padded here.
    encoder: Tokenizer,
    /// Neither truncates nor pads: counts for the chunker.
    counter: Tokenizer,
    device: Device,
    settings: Settings,
    /// The threads of [`Settings::threads`].
    pool: Option<rayon::ThreadPool>,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder").finish_non_exhaustive()
    }
}

impl Embedder {
    /// Loads the model of `dir` to run with [`Settings::default`]; the
    /// weights are memory-mapped.
    pub fn load(dir: &Path) -> Result<Embedder, EmbedError> {
        Embedder::load_with(dir, Settings::default())
    }

    /// Loads the model of `dir` to run with `settings`.
    pub fn load_with(dir: &Path, settings: Settings) -> Result<Embedder, EmbedError> {
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
        let pool = match settings.threads {
            None => None,
            Some(n) => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .thread_name(|i| format!("bizos-embed-{i}"))
                    .build()
                    .map_err(|e| load_err(format!("{n} embedder threads: {e}")))?,
            ),
        };
        Ok(Embedder {
            model,
            encoder,
            counter,
            device,
            settings: Settings {
                batch: settings.batch.max(1),
                ..settings
            },
            pool,
        })
    }

    /// How this embedder runs the model.
    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// One unit vector of [`DIMS`] per text, in the order of `texts`.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let encodings = self
            .encoder
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        // Longest first, so a batch pads to a length close to its own.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(encodings[i].len()));
        let batches: Vec<&[usize]> = order.chunks(self.batch_size(texts.len())).collect();
        let run = |batch: &&[usize]| {
            let batch: Vec<&Encoding> = batch.iter().map(|&i| &encodings[i]).collect();
            self.embed_batch(&batch)
        };
        // A lone batch (a query) runs on the caller's thread: handing it to
        // the pool only adds a wake-up.
        let vectors: Vec<Vec<Vec<f32>>> = match &self.pool {
            Some(pool) if batches.len() > 1 => {
                pool.install(|| batches.par_iter().map(run).collect::<Result<_, _>>())?
            }
            _ => batches.iter().map(run).collect::<Result<_, _>>()?,
        };
        let mut out = vec![Vec::new(); texts.len()];
        for (batch, vectors) in batches.iter().zip(vectors) {
            for (&i, vector) in batch.iter().zip(vectors) {
                out[i] = vector;
            }
        }
        Ok(out)
    }

    /// [`Settings::batch`], or smaller when that leaves threads idle (two
    /// texts on two threads: a batch each).
    fn batch_size(&self, texts: usize) -> usize {
        match self.settings.threads {
            Some(threads) if threads > 1 => self.settings.batch.min(texts.div_ceil(threads)).max(1),
            _ => self.settings.batch,
        }
    }

    /// The vectors of one batch: padded to its longest, masked.
    fn embed_batch(&self, batch: &[&Encoding]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let len = batch.iter().map(|e| e.len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(batch.len() * len);
        let mut mask = Vec::with_capacity(batch.len() * len);
        for e in batch {
            let pad = len - e.len();
            ids.extend_from_slice(e.get_ids());
            ids.extend(std::iter::repeat_n(PAD_ID, pad));
            mask.extend(std::iter::repeat_n(1u32, e.len()));
            mask.extend(std::iter::repeat_n(0u32, pad));
        }
        let ids = Tensor::from_vec(ids, (batch.len(), len), &self.device)?;
        let mask = Tensor::from_vec(mask, (batch.len(), len), &self.device)?;
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

    /// The embedder as it runs now (small batches side by side on its own
    /// threads) gives the vectors it gave before issue 49 (batches of 16,
    /// candle's threads), texts of mixed lengths in one call.
    #[test]
    fn threads_and_small_batches_change_no_vector() {
        let dir = std::env::var_os("BIZOS_KB_MODEL_DIR").expect("BIZOS_KB_MODEL_DIR");
        let dir = Path::new(&dir);
        let tuned = Embedder::load_with(
            dir,
            Settings {
                batch: 3,
                threads: Some(2),
            },
        )
        .unwrap();
        let before = Embedder::load_with(dir, Settings::before_issue_49()).unwrap();
        let long = "invoice approval refund policy ".repeat(80);
        let texts: Vec<String> = (0..11)
            .map(|i| match i % 3 {
                0 => format!("SOP {i}"),
                1 => format!("Refunds over Rp {i}.000.000 need the finance manager's approval."),
                _ => format!("{i} {long}"),
            })
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let a = tuned.embed(&refs).unwrap();
        let b = before.embed(&refs).unwrap();
        assert_eq!(a.len(), texts.len());
        for ((text, x), y) in texts.iter().zip(&a).zip(&b) {
            let c = cosine(x, y);
            assert!(c > 0.99999, "{text:.40}: cosine {c}");
        }
        assert!(tuned.embed(&[]).unwrap().is_empty());
    }

    #[test]
    fn batches_leave_no_thread_idle() {
        let dir = std::env::var_os("BIZOS_KB_MODEL_DIR").expect("BIZOS_KB_MODEL_DIR");
        let two = Embedder::load_with(
            Path::new(&dir),
            Settings {
                batch: 4,
                threads: Some(2),
            },
        )
        .unwrap();
        assert_eq!(two.batch_size(1), 1);
        assert_eq!(two.batch_size(2), 1, "a text on each thread");
        assert_eq!(two.batch_size(5), 3);
        assert_eq!(two.batch_size(64), 4);
        let before = Embedder::load_with(Path::new(&dir), Settings::before_issue_49()).unwrap();
        assert_eq!(before.batch_size(2), 16);
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
