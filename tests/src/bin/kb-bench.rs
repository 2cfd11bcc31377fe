//! `scripts/bench kb` (bench/kb/run): the knowledge base's retrieval
//! quality and latency.
//!
//! Against databases cloned by the test harness from `BIZOS_TEST_ADMIN_URL`
//! (the benchmark's own cluster), with the built-in embedder
//! (`BIZOS_KB_MODEL_DIR`) and the Cranfield collection
//! (`BIZOS_BENCH_KB_DATA`, default `../shared/data/cranfield` beside the
//! repository):
//!
//! 1. **Retrieval quality.** The 1,400 documents (title + text) go in
//!    through the ingestion functions (`upload_begin`, `object_create`,
//!    `kb_document_register`, `kb_ingest_start/progress/chunks/finish`) as
//!    an ops user, one chunk per document embedded by
//!    `bizos_bff::kb::embed::Embedder` (which reads the first 256 tokens);
//!    then the bizos_ivf index is rebuilt (REINDEX) so its centroids fit
//!    the data. The 225 queries run through `kb_search` as a salesperson
//!    of the tenant (RLS, claims as the BFF sets them), k = 100,
//!    `bizos.ivf_probes` = 100 (every list: exact vector search): BM25
//!    alone, vector alone, hybrid. Baselines from the same tokens
//!    (exported from PostgreSQL) in bench/kb/bm25_baseline.py: rank_bm25's
//!    BM25Okapi and the Lucene-idf formula kb_search documents. nDCG@10
//!    (gain 5 − grade for grades 1–4), MAP and recall@100 (grades 1–4
//!    relevant), computed here for every ranking alike.
//! 2. **Embedder throughput.** Chunks of 240–254 tokens (+ [CLS], [SEP])
//!    packed by `bizos_core::chunk` from the Cranfield sentences: the Rust
//!    embedder against the numpy reference (`scripts/dev kb-reference
//!    throughput`) on the same chunks file, alternating.
//! 3. **`kb_search` latency at 100k chunks.** 100 tenants × 10 documents ×
//!    100 chunks (plain inserts as the owner, the statistics kept by the
//!    triggers, REINDEX); chunk texts recombine Cranfield sentences around a
//!    base document, embeddings are the base document's real embedding plus
//!    Gaussian noise. p50/p99 of `kb_search(query, embedding, 10)` as a user
//!    of one tenant (1% of the chunks), default `bizos.ivf_probes`, against
//!    the two branches as plain SQL run by the owner (no RLS, no BM25
//!    statistics, no fusion) in the same run, the variants alternating.
//!
//! BIZOS_BENCH_KB_PARTS (quality,throughput,latency; latency runs the quality
//! part too, for its vectors), BIZOS_BENCH_KB_TP_N
//! (64 chunks), BIZOS_BENCH_KB_TENANTS (100), BIZOS_BENCH_KB_CHUNKS
//! (100000), BIZOS_BENCH_KB_QUERIES (200), BIZOS_BENCH_KB_PYTHON (python3
//! with rank_bm25); BIZOS_BENCH_KB_KEEP=1 keeps the latency database (and
//! bench/kb/run the cluster) for EXPLAIN. Results (markdown) on stdout,
//! progress on stderr.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bizos_bff::auth::Caller;
use bizos_bff::kb::embed::{vector_text, Embedder, Settings, DIMS};
use bizos_core::chunk::{chunk, Block, Sizes};
use bizos_tests::bench::{env_or, root, say};
use bizos_tests::TestDb;
use serde_json::{json, Value};
use sqlx::Row;
use uuid::Uuid;

// ------------------------------------------------------------- Cranfield --

struct Doc {
    /// The `.I` number (the ids of cranqrel).
    id: u32,
    title: String,
    body: String,
}

impl Doc {
    /// What is indexed: title, then text (as the collection's reference
    /// BM25 does; the text usually repeats the title).
    fn text(&self) -> String {
        format!("{} {}", self.title, self.body).trim().to_owned()
    }
}

/// Fields of a Cranfield file: (`.I` value, field letter -> lines joined).
fn records(text: &str) -> Vec<(String, HashMap<char, String>)> {
    let mut out: Vec<(String, HashMap<char, String>)> = Vec::new();
    let mut field = ' ';
    for line in text.lines() {
        if let Some(id) = line.strip_prefix(".I") {
            out.push((id.trim().to_owned(), HashMap::new()));
            field = ' ';
        } else if line.len() == 2 && line.starts_with('.') {
            field = line.chars().nth(1).unwrap_or(' ');
        } else if let Some((_, fields)) = out.last_mut() {
            let v = fields.entry(field).or_default();
            if !v.is_empty() {
                v.push(' ');
            }
            v.push_str(line.trim());
        }
    }
    out
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

struct Cranfield {
    docs: Vec<Doc>,
    /// Query texts; query `i + 1` of cranqrel is `queries[i]`.
    queries: Vec<String>,
    /// query -> document -> grade (1..4; other grades are not kept).
    qrels: HashMap<u32, HashMap<u32, i32>>,
}

fn load_cranfield(dir: &Path) -> anyhow::Result<Cranfield> {
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name))
            .with_context(|| format!("{}", dir.join(name).display()))
    };
    let docs = records(&read("cran.all.1400")?)
        .into_iter()
        .map(|(id, f)| {
            Ok(Doc {
                id: id.parse()?,
                title: squash(f.get(&'T').map_or("", String::as_str)),
                body: squash(f.get(&'W').map_or("", String::as_str)),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let queries = records(&read("cran.qry")?)
        .into_iter()
        .map(|(_, f)| squash(f.get(&'W').map_or("", String::as_str)))
        .collect();
    let mut qrels: HashMap<u32, HashMap<u32, i32>> = HashMap::new();
    for line in read("cranqrel")?.lines() {
        let v: Vec<&str> = line.split_whitespace().collect();
        if v.len() < 3 {
            continue;
        }
        let grade: i32 = v[2].parse()?;
        if (1..=4).contains(&grade) {
            qrels
                .entry(v[0].parse()?)
                .or_default()
                .insert(v[1].parse()?, grade);
        }
    }
    Ok(Cranfield {
        docs,
        queries,
        qrels,
    })
}

// --------------------------------------------------------------- metrics --

/// A ranking per query (1-based query number): document ids, best first.
type Run = HashMap<u32, Vec<u32>>;

#[derive(Clone, Copy, Default)]
struct Scores {
    ndcg10: f64,
    map: f64,
    recall100: f64,
}

/// nDCG@10 with gain 5 − grade (grade 1 = 4 ... grade 4 = 1), linear gain,
/// log2(rank + 1) discount, ideal from all judged documents.
fn ndcg10(ranking: &[u32], rel: &HashMap<u32, i32>) -> f64 {
    let gain = |d: &u32| rel.get(d).map_or(0.0, |g| f64::from(5 - g));
    let dcg: f64 = ranking
        .iter()
        .take(10)
        .enumerate()
        .map(|(i, d)| gain(d) / ((i + 2) as f64).log2())
        .sum();
    let mut ideal: Vec<f64> = rel.values().map(|g| f64::from(5 - g)).collect();
    ideal.sort_by(|a, b| b.total_cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(10)
        .enumerate()
        .map(|(i, g)| g / ((i + 2) as f64).log2())
        .sum();
    if idcg > 0.0 {
        dcg / idcg
    } else {
        0.0
    }
}

/// Average precision over the first 100 (relevant = any grade 1–4).
fn average_precision(ranking: &[u32], rel: &HashMap<u32, i32>) -> f64 {
    let mut hits = 0.0;
    let mut sum = 0.0;
    for (i, d) in ranking.iter().take(100).enumerate() {
        if rel.contains_key(d) {
            hits += 1.0;
            sum += hits / (i + 1) as f64;
        }
    }
    sum / rel.len() as f64
}

fn recall100(ranking: &[u32], rel: &HashMap<u32, i32>) -> f64 {
    let found = ranking
        .iter()
        .take(100)
        .filter(|d| rel.contains_key(d))
        .count();
    found as f64 / rel.len() as f64
}

/// Per-query scores, for the queries with at least one relevant document.
fn per_query(run: &Run, qrels: &HashMap<u32, HashMap<u32, i32>>) -> HashMap<u32, Scores> {
    let empty = Vec::new();
    qrels
        .iter()
        .filter(|(_, rel)| !rel.is_empty())
        .map(|(q, rel)| {
            let r = run.get(q).unwrap_or(&empty);
            (
                *q,
                Scores {
                    ndcg10: ndcg10(r, rel),
                    map: average_precision(r, rel),
                    recall100: recall100(r, rel),
                },
            )
        })
        .collect()
}

fn mean(scores: &HashMap<u32, Scores>) -> Scores {
    let n = scores.len().max(1) as f64;
    Scores {
        ndcg10: scores.values().map(|s| s.ndcg10).sum::<f64>() / n,
        map: scores.values().map(|s| s.map).sum::<f64>() / n,
        recall100: scores.values().map(|s| s.recall100).sum::<f64>() / n,
    }
}

// ------------------------------------------------------------ quality --

struct Quality {
    rows: Vec<(String, Scores, HashMap<u32, Scores>)>,
    docs_loaded: usize,
    docs_skipped: Vec<u32>,
    queries_judged: usize,
    truncated_docs: usize,
    load_secs: f64,
    embed_secs: f64,
    parity_max_rel: f64,
    parity_pairs: usize,
    parity_same_top10: usize,
    rank_bm25_version: String,
    /// Query embeddings (text form), in query order: reused by the latency part.
    query_vectors: Vec<String>,
    /// Document embeddings by document id: the bases of the latency part.
    doc_vectors: HashMap<u32, Vec<f32>>,
}

/// Uploads, registers and ingests one document (one chunk) as `who`,
/// all in one transaction; returns the document id.
async fn ingest_one(
    db: &TestDb,
    who: &Caller,
    doc: &Doc,
    text: &str,
    tokens: usize,
    vector: &[f32],
) -> anyhow::Result<Uuid> {
    let mut tx = db.as_user(who).await;
    let object = knowledge_file(&mut tx, doc, text.len()).await?;
    let mut title: String = format!("Cranfield {}: {}", doc.id, doc.title)
        .chars()
        .take(200)
        .collect();
    title = title.trim().to_owned();
    let registered: Value = sqlx::query_scalar("select kb_document_register($1)")
        .bind(json!({"object_id": object, "title": title, "format": "txt"}))
        .fetch_one(&mut *tx)
        .await?;
    let id: Uuid = registered["document_id"]
        .as_str()
        .context("kb_document_register: document_id")?
        .parse()?;
    sqlx::query("select kb_ingest_start($1, 1)")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("select kb_ingest_progress($1, 1, 'embedding', 1)")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("select kb_ingest_chunks($1, 1, $2)")
        .bind(id)
        .bind(
            json!([{"chunk_no": 0, "text": text, "heading_path": "", "token_count": tokens,
                      "embedding": vector}]),
        )
        .execute(&mut *tx)
        .await?;
    let done: Value = sqlx::query_scalar("select kb_ingest_finish($1, 1)")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    anyhow::ensure!(done["status"] == "ready", "not ready: {done}");
    tx.commit().await?;
    Ok(id)
}

/// Lexemes of a tsvector, each repeated as often as it has positions (the
/// tokens BM25 counts), in SQL.
const TOKENS_OF: &str = "array(select u.lexeme from unnest(%) u
                             cross join generate_series(1, coalesce(array_length(u.positions, 1), 1))
                          order by u.lexeme)";

async fn quality(
    data: &Cranfield,
    embedder: &Arc<Embedder>,
    python: &str,
) -> anyhow::Result<Quality> {
    say("quality: database (harness template)");
    let db = TestDb::new().await;
    let tenant = db.create_tenant("cranfield").await;
    let ops = db.create_user(tenant, "ops").await;
    let reader = db.create_user(tenant, "salesperson").await;

    let (mut docs, mut skipped) = (Vec::new(), Vec::new());
    for d in &data.docs {
        if d.text().is_empty() {
            skipped.push(d.id);
        } else {
            docs.push(d);
        }
    }
    say(format!(
        "quality: embedding {} documents and {} queries (Rust embedder)",
        docs.len(),
        data.queries.len()
    ));
    let texts: Vec<String> = docs.iter().map(|d| d.text()).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let t0 = Instant::now();
    let vectors = embedder.embed(&refs)?;
    let embed_secs = t0.elapsed().as_secs_f64();
    let qrefs: Vec<&str> = data.queries.iter().map(String::as_str).collect();
    let qvectors = embedder.embed(&qrefs)?;
    let mut truncated = 0;
    let mut token_counts = Vec::with_capacity(texts.len());
    for t in &texts {
        let n = embedder.tokens(t)?;
        if n + 2 > bizos_bff::kb::embed::MAX_SEQ_TOKENS {
            truncated += 1;
        }
        token_counts.push(n);
    }

    say("quality: ingesting through kb_document_register + kb_ingest_*");
    let t0 = Instant::now();
    let mut cran_of: HashMap<Uuid, u32> = HashMap::new();
    for (i, d) in docs.iter().enumerate() {
        let id = ingest_one(&db, &ops, d, &texts[i], token_counts[i], &vectors[i]).await?;
        cran_of.insert(id, d.id);
    }
    let load_secs = t0.elapsed().as_secs_f64();
    sqlx::query("reindex index kb_chunks_embedding_idx")
        .execute(&db.owner)
        .await?;
    sqlx::query("vacuum analyze kb_chunks, kb_terms, kb_stats, kb_documents")
        .execute(&db.owner)
        .await?;

    say("quality: 225 queries × 3 through kb_search (k 100, ivf_probes 100)");
    let variants: [(&str, f64, f64); 3] = [
        ("bm25", 1.0, 0.0),
        ("vector", 0.0, 1.0),
        ("hybrid", 1.0, 1.0),
    ];
    let mut runs: HashMap<&str, Run> = HashMap::new();
    // (query, document) -> kb_search's BM25 score
    let mut lexical: HashMap<(u32, u32), f64> = HashMap::new();
    for (qi, q) in data.queries.iter().enumerate() {
        let qid = qi as u32 + 1;
        let qv = vector_text(&qvectors[qi]);
        for (name, lw, vw) in variants {
            let mut tx = db.as_user(&reader).await;
            sqlx::query("set local bizos.ivf_probes = 100")
                .execute(&mut *tx)
                .await?;
            let rows = sqlx::query(
                "select document_id, lexical_score from kb_search($1, $2::text::bizos.vector, 100, $3, $4)",
            )
            .bind(q)
            .bind(if vw > 0.0 { Some(qv.clone()) } else { None })
            .bind(lw)
            .bind(vw)
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            let mut ranking = Vec::with_capacity(rows.len());
            for r in rows {
                let doc = cran_of[&r.get::<Uuid, _>(0)];
                if name == "bm25" {
                    lexical.insert((qid, doc), r.get::<Option<f64>, _>(1).unwrap_or(f64::NAN));
                }
                ranking.push(doc);
            }
            runs.entry(name).or_default().insert(qid, ranking);
        }
    }

    say("quality: the same tokens out of PostgreSQL, BM25 baselines in Python");
    let chunk_rows = sqlx::query(&format!(
        "select document_id, {} from kb_chunks where tenant_id = $1 order by document_id",
        TOKENS_OF.replace('%', "tsv")
    ))
    .bind(tenant)
    .fetch_all(&db.owner)
    .await?;
    let mut chunks: Vec<(u32, Vec<String>)> = chunk_rows
        .into_iter()
        .map(|r| (cran_of[&r.get::<Uuid, _>(0)], r.get(1)))
        .collect();
    chunks.sort_by_key(|c| c.0);
    let query_tokens: Vec<Vec<String>> = sqlx::query_scalar(&format!(
        "select {} from unnest($1::text[]) with ordinality q(text, n)
          order by q.n",
        TOKENS_OF.replace('%', "to_tsvector('simple'::regconfig, q.text)")
    ))
    .bind(&data.queries)
    .fetch_all(&db.owner)
    .await?;
    let input = json!({
        "chunks": chunks,
        "queries": query_tokens.iter().enumerate().map(|(i, t)| json!([i + 1, t])).collect::<Vec<_>>(),
        "depth": 100,
    });
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), serde_json::to_vec(&input)?)?;
    let out = Command::new(python)
        .arg(root().join("bench/kb/bm25_baseline.py"))
        .arg(file.path())
        .output()
        .with_context(|| format!("running {python} bench/kb/bm25_baseline.py"))?;
    if !out.status.success() {
        bail!(
            "bm25_baseline.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let baseline: Value = serde_json::from_slice(&out.stdout)?;
    let python_run = |name: &str| -> Run {
        baseline[name]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(q, list)| {
                        let ids = list
                            .as_array()
                            .map(|l| {
                                l.iter()
                                    .filter_map(|e| e[0].as_u64())
                                    .map(|d| d as u32)
                                    .collect()
                            })
                            .unwrap_or_default();
                        (q.parse().unwrap_or(0), ids)
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let rank_bm25 = python_run("rank_bm25");
    let lucene = python_run("lucene");

    // Parity: kb_search's BM25 scores against the formula in Python.
    let (mut max_rel, mut pairs, mut same_top10) = (0.0f64, 0usize, 0usize);
    if let Some(m) = baseline["lucene"].as_object() {
        for (q, list) in m {
            let qid: u32 = q.parse().unwrap_or(0);
            for e in list.as_array().into_iter().flatten() {
                let (d, s) = (
                    e[0].as_u64().unwrap_or(0) as u32,
                    e[1].as_f64().unwrap_or(0.0),
                );
                if let Some(ours) = lexical.get(&(qid, d)) {
                    max_rel = max_rel.max(((ours - s) / s).abs());
                    pairs += 1;
                }
            }
        }
    }
    for (q, ours) in &runs["bm25"] {
        let theirs = lucene.get(q).map(Vec::as_slice).unwrap_or(&[]);
        let a: HashSet<_> = ours.iter().take(10).collect();
        let b: HashSet<_> = theirs.iter().take(10).collect();
        if a == b {
            same_top10 += 1;
        }
    }

    let mut rows = Vec::new();
    for (label, run) in [
        ("`kb_search` BM25 alone (vector_weight 0)", &runs["bm25"]),
        (
            "rank_bm25 `BM25Okapi` (k1 1.2, b 0.75), same tokens — **baseline**",
            &rank_bm25,
        ),
        (
            "BM25 with Lucene idf written out in Python, same tokens (check of `kb_search`)",
            &lucene,
        ),
        (
            "`kb_search` vector alone (lexical_weight 0)",
            &runs["vector"],
        ),
        (
            "`kb_search` hybrid (weights 1, 1; rrf_k 60)",
            &runs["hybrid"],
        ),
    ] {
        let pq = per_query(run, &data.qrels);
        rows.push((label.to_owned(), mean(&pq), pq));
    }
    let doc_vectors = docs
        .iter()
        .zip(&vectors)
        .map(|(d, v)| (d.id, v.clone()))
        .collect();
    Ok(Quality {
        rows,
        docs_loaded: docs.len(),
        docs_skipped: skipped,
        queries_judged: data.qrels.values().filter(|r| !r.is_empty()).count(),
        truncated_docs: truncated,
        load_secs,
        embed_secs,
        parity_max_rel: max_rel,
        parity_pairs: pairs,
        parity_same_top10: same_top10,
        rank_bm25_version: baseline["rank_bm25_version"]
            .as_str()
            .unwrap_or("?")
            .to_owned(),
        query_vectors: qvectors.iter().map(|v| vector_text(v)).collect(),
        doc_vectors,
    })
}

fn print_quality(q: &Quality) {
    println!("#### Retrieval quality (Cranfield)\n");
    println!(
        "{} documents loaded through the ingestion functions, one chunk each (title + text; \
         {} of them are longer than the model's 256 tokens, so their vector reads only the \
         beginning, BM25 reads all); {} without any text skipped ({:?}); {} judged queries \
         (grades 1–4 relevant; nDCG gain 5 − grade). Embedding the documents took {:.1} s, \
         ingesting them {:.1} s. `bizos.ivf_probes` = 100 (every list: exact vector search). \
         rank_bm25 {}.\n",
        q.docs_loaded,
        q.truncated_docs,
        q.docs_skipped.len(),
        q.docs_skipped,
        q.queries_judged,
        q.embed_secs,
        q.load_secs,
        q.rank_bm25_version
    );
    println!("| ranking | nDCG@10 | MAP | recall@100 |");
    println!("|---|---|---|---|");
    for (label, s, _) in &q.rows {
        println!(
            "| {label} | {:.4} | {:.4} | {:.4} |",
            s.ndcg10, s.map, s.recall100
        );
    }
    let get = |i: usize| q.rows[i].1;
    let (bm25, okapi, vector, hybrid) = (get(0), get(1), get(3), get(4));
    println!();
    println!(
        "- Goal BM25 MAP ≥ rank_bm25 MAP: {:.4} vs {:.4} ({:.3}×): {}.",
        bm25.map,
        okapi.map,
        bm25.map / okapi.map,
        if bm25.map >= okapi.map {
            "met"
        } else {
            "**not met**"
        }
    );
    println!(
        "- Goal hybrid nDCG@10 above both parts: {:.4} vs BM25 {:.4} and vector {:.4}: {}.",
        hybrid.ndcg10,
        bm25.ndcg10,
        vector.ndcg10,
        if hybrid.ndcg10 > bm25.ndcg10 && hybrid.ndcg10 > vector.ndcg10 {
            "met"
        } else {
            "**not met**"
        }
    );
    println!(
        "- `kb_search`'s BM25 scores against the formula computed in Python on the same tokens: \
         largest relative difference {:.1e} over {} (query, document) pairs; the same top-10 set \
         for {} of {} queries.",
        q.parity_max_rel,
        q.parity_pairs,
        q.parity_same_top10,
        q.rows[0].2.len()
    );
    // Per query: where the hybrid stands against its parts.
    let (b, v, h) = (&q.rows[0].2, &q.rows[3].2, &q.rows[4].2);
    let (mut above_both, mut below_best, mut best_lex, mut best_vec) = (0, 0, 0, 0);
    for (qid, hs) in h {
        let (bs, vs) = (b[qid].ndcg10, v[qid].ndcg10);
        if hs.ndcg10 > bs.max(vs) {
            above_both += 1;
        }
        if hs.ndcg10 < bs.max(vs) {
            below_best += 1;
        }
        if bs > vs {
            best_lex += 1;
        } else if vs > bs {
            best_vec += 1;
        }
    }
    println!(
        "- Per query (nDCG@10): BM25 beats vector on {best_lex}, vector beats BM25 on {best_vec}; \
         the hybrid beats both on {above_both} and falls below the better part on {below_best} of {} queries.",
        h.len()
    );
    println!();
}

// ---------------------------------------------------------- throughput --

struct Throughput {
    chunks: usize,
    tokens: (usize, usize),
    query_words: usize,
    query_tokens: (usize, usize),
    /// One child run per round, per variant (tuned, as before).
    rust: [Vec<EmbedRun>; 2],
    reference: Vec<(usize, f64, Value)>,
}

/// What a child process (`embed_child`) measured.
#[derive(Clone)]
struct EmbedRun {
    settings: String,
    chunks_per_s: f64,
    /// Process CPU time (user + system) of the timed chunks.
    cpu_s: f64,
    query_p50_ms: f64,
    query_p99_ms: f64,
}

/// The two embedders a run compares, each in a process of its own: this
/// one, and the embedder as before issue 49 (batches of 16, candle's own
/// threads, glibc's malloc defaults) as the baseline.
const VARIANTS: [&str; 2] = ["tuned", "before-issue-49"];

fn settings_of(variant: &str) -> anyhow::Result<Settings> {
    match variant {
        "tuned" => Ok(Settings::default()),
        "before-issue-49" => Ok(Settings::before_issue_49()),
        _ => bail!("unknown embedder variant {variant}"),
    }
}

/// CPU time of this process so far (user + system), from /proc.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime, in clock ticks of 1/100 s on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

/// A child process: the embedder of `variant` over the chunks file, then
/// each query of the queries file embedded alone (as `/api/kb/search`
/// does), five rounds; one JSON line on stdout.
fn embed_child(variant: &str, chunks_file: &Path, queries_file: &Path) -> anyhow::Result<()> {
    let model = std::env::var_os("BIZOS_KB_MODEL_DIR").context("BIZOS_KB_MODEL_DIR")?;
    let settings = settings_of(variant)?;
    let embedder = Embedder::load_with(Path::new(&model), settings)?;
    let chunks = std::fs::read_to_string(chunks_file)?;
    let chunks: Vec<&str> = chunks.lines().collect();
    let queries = std::fs::read_to_string(queries_file)?;
    let queries: Vec<&str> = queries.lines().collect();
    embedder.embed(&chunks[..chunks.len().min(8)])?; // warm-up, not timed
    let (c0, t0) = (cpu_secs(), Instant::now());
    let v = embedder.embed(&chunks)?;
    let secs = t0.elapsed().as_secs_f64();
    let cpu_s = cpu_secs() - c0;
    anyhow::ensure!(v.len() == chunks.len() && v[0].len() == DIMS);
    let mut times = Vec::new();
    for _ in 0..5 {
        for q in &queries {
            let t0 = Instant::now();
            let v = embedder.embed(&[q])?;
            times.push(t0.elapsed());
            anyhow::ensure!(v[0].len() == DIMS);
        }
    }
    times.sort();
    let run = json!({
        "settings": format!("{settings:?}"),
        "chunks_per_s": chunks.len() as f64 / secs,
        "cpu_s": cpu_s,
        "query_p50_ms": pct(&times, 0.5).as_secs_f64() * 1000.0,
        "query_p99_ms": pct(&times, 0.99).as_secs_f64() * 1000.0,
    });
    println!("{run}");
    Ok(())
}

/// Runs this binary as a child (`BIZOS_BENCH_KB_CHILD=<what>`) and reads
/// the JSON of its last line.
fn child(what: &str, args: &[&Path]) -> anyhow::Result<Value> {
    let out = Command::new(std::env::current_exe()?)
        .env("BIZOS_BENCH_KB_CHILD", what)
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("child {what}"))?;
    anyhow::ensure!(out.status.success(), "child {what} failed");
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or("");
    serde_json::from_str(last).with_context(|| format!("child {what}: {last}"))
}

/// Words of a query for the latency of query embedding.
const QUERY_WORDS: usize = 50;

async fn throughput(data: &Cranfield, embedder: &Arc<Embedder>) -> anyhow::Result<Throughput> {
    let n: usize = env_or("BIZOS_BENCH_KB_TP_N", 64);
    say(format!(
        "throughput: {n} chunks of ~256 tokens from the Cranfield sentences"
    ));
    // One sentence a line (Cranfield is lower case, so the chunker's
    // sentence rule would not see its full stops), one section: the
    // chunker packs sentences up to 254 tokens, [CLS] and [SEP] make 256.
    let blocks: Vec<Block> = data
        .docs
        .iter()
        .map(|d| Block {
            text: d.body.replace(" . ", " .\n"),
            heading_path: vec![],
            page: None,
        })
        .collect();
    let sizes = Sizes::new(254, 0).map_err(|e| anyhow::anyhow!("{e}"))?;
    let chunks: Vec<String> = chunk(&blocks, sizes, embedder.as_ref())
        .into_iter()
        .filter(|c| c.tokens >= 240)
        .map(|c| squash(&c.text))
        .take(n)
        .collect();
    anyhow::ensure!(
        chunks.len() == n,
        "only {} chunks of 240+ tokens",
        chunks.len()
    );
    let counts: Vec<usize> = chunks
        .iter()
        .map(|c| embedder.tokens(c).map(|t| t + 2))
        .collect::<Result<_, _>>()?;
    let tokens = (
        counts.iter().copied().min().unwrap_or(0),
        counts.iter().copied().max().unwrap_or(0),
    );
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), chunks.join("\n") + "\n")?;
    // 50-word queries: the Cranfield queries' words, 50 at a time.
    let words: Vec<&str> = data
        .queries
        .iter()
        .flat_map(|q| q.split_whitespace())
        .collect();
    let queries: Vec<String> = words
        .chunks_exact(QUERY_WORDS)
        .take(40)
        .map(|w| w.join(" "))
        .collect();
    let query_counts: Vec<usize> = queries
        .iter()
        .map(|q| embedder.tokens(q).map(|t| t + 2))
        .collect::<Result<_, _>>()?;
    let query_tokens = (
        query_counts.iter().copied().min().unwrap_or(0),
        query_counts.iter().copied().max().unwrap_or(0),
    );
    let queries_file = tempfile::NamedTempFile::new()?;
    std::fs::write(queries_file.path(), queries.join("\n") + "\n")?;

    let rust_once = |variant: &str| -> anyhow::Result<EmbedRun> {
        let v = child(
            &format!("embed:{variant}"),
            &[file.path(), queries_file.path()],
        )?;
        let num = |k: &str| v[k].as_f64().with_context(|| format!("embed child: {k}"));
        let run = EmbedRun {
            settings: v["settings"].as_str().unwrap_or("?").to_owned(),
            chunks_per_s: num("chunks_per_s")?,
            cpu_s: num("cpu_s")?,
            query_p50_ms: num("query_p50_ms")?,
            query_p99_ms: num("query_p99_ms")?,
        };
        say(format!(
            "  Rust {variant}: {:.2} chunks/s ({:.1} CPU s), query p50 {:.1} ms",
            run.chunks_per_s, run.cpu_s, run.query_p50_ms
        ));
        Ok(run)
    };
    let reference_once = |batch: usize| -> anyhow::Result<(usize, f64, Value)> {
        let out = Command::new(root().join("scripts/dev"))
            .args(["kb-reference", "throughput", "-n"])
            .arg(n.to_string())
            .arg("--batch-size")
            .arg(batch.to_string())
            .arg("--chunks-file")
            .arg(file.path())
            .stderr(std::process::Stdio::inherit())
            .output()
            .context("scripts/dev kb-reference throughput")?;
        anyhow::ensure!(
            out.status.success(),
            "scripts/dev kb-reference throughput failed"
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let last = text.lines().last().unwrap_or("");
        let v: Value =
            serde_json::from_str(last).with_context(|| format!("reference output: {last}"))?;
        let per_s = v["chunks_per_s"].as_f64().context("chunks_per_s")?;
        Ok((batch, per_s, v))
    };
    // Rounds: tuned, as before, reference 16, reference 32; the third
    // round without the (slow) reference.
    let mut rust: [Vec<EmbedRun>; 2] = [Vec::new(), Vec::new()];
    let mut reference = Vec::new();
    for round in 0..3 {
        for (i, variant) in VARIANTS.iter().enumerate() {
            rust[i].push(rust_once(variant)?);
        }
        if round < 2 {
            reference.push(reference_once(16)?);
            reference.push(reference_once(32)?);
        }
    }
    Ok(Throughput {
        chunks: n,
        tokens,
        query_words: QUERY_WORDS,
        query_tokens,
        rust,
        reference,
    })
}

fn print_throughput(t: &Throughput) {
    println!("#### Embedder throughput and query embedding\n");
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let runs = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.1}"))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let tp = |i: usize| -> Vec<f64> { t.rust[i].iter().map(|r| r.chunks_per_s).collect() };
    let before = mean(&tp(1));
    println!(
        "{} chunks of {}–{} tokens ([CLS] and [SEP] included) packed by `bizos_core::chunk` \
         from the Cranfield sentences, the same file for all; tokenisation included, model \
         loading and one warm-up batch not. Each Rust run is a process of its own (the \
         benchmark binary as a child): the embedder as it runs now, and as it ran before \
         issue 49 (batches of 16, candle's own threads, glibc's malloc defaults). Rounds: \
         tuned, before, reference 16, reference 32 (twice), then tuned and before once more. \
         All use every core.\n",
        t.chunks, t.tokens.0, t.tokens.1
    );
    println!("| embedder | settings | runs (chunks/s) | mean chunks/s | chunks per CPU-second | ÷ before issue 49 |");
    println!("|---|---|---|---|---|---|");
    for (i, label) in [
        "Rust, `Embedder::embed` (candle, f32), tuned",
        "**baseline**: Rust, as before issue 49",
    ]
    .iter()
    .enumerate()
    {
        let v = tp(i);
        let cpu: f64 = t.rust[i].iter().map(|r| r.cpu_s).sum();
        let per_cpu = (v.len() * t.chunks) as f64 / cpu.max(1e-9);
        println!(
            "| {label} | `{}` | {} | **{:.1}** | {per_cpu:.1} | **{:.2}×** |",
            t.rust[i].first().map_or("?", |r| r.settings.as_str()),
            runs(&v),
            mean(&v),
            mean(&v) / before
        );
    }
    for batch in [16, 32] {
        let v: Vec<f64> = t
            .reference
            .iter()
            .filter(|r| r.0 == batch)
            .map(|r| r.1)
            .collect();
        let dtype = t
            .reference
            .first()
            .and_then(|r| r.2["dtype"].as_str())
            .unwrap_or("?");
        println!(
            "| numpy reference (`scripts/dev kb-reference throughput`, {dtype}) | batch {batch} | {} | {:.1} | — | {:.2}× |",
            runs(&v),
            mean(&v),
            mean(&v) / before
        );
    }
    if let Some(r) = t.reference.first() {
        println!(
            "\nReference: numpy {}.",
            r.2["numpy"].as_str().unwrap_or("?")
        );
    }
    println!(
        "\nQuery embedding: 40 queries of {} words ({}–{} tokens) made of the Cranfield queries' \
         words, each embedded alone as `/api/kb/search` does, 5 times, in each run above.\n",
        t.query_words, t.query_tokens.0, t.query_tokens.1
    );
    println!("| embedder | p50 per run (ms) | p50 (median of runs) | p99 (median of runs) | p50 ÷ before |");
    println!("|---|---|---|---|---|");
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let p50 = |i: usize| median(t.rust[i].iter().map(|r| r.query_p50_ms).collect());
    for (i, label) in ["tuned", "**baseline**: as before issue 49"]
        .iter()
        .enumerate()
    {
        let v: Vec<f64> = t.rust[i].iter().map(|r| r.query_p50_ms).collect();
        println!(
            "| {label} | {} | **{:.1} ms** | {:.1} ms | {:.2}× |",
            runs(&v),
            p50(i),
            median(t.rust[i].iter().map(|r| r.query_p99_ms).collect()),
            p50(i) / p50(1)
        );
    }
    println!();
}

// ---------------------------------------------------------------- ingest --

/// What an ingestion child measured.
struct IngestRun {
    docs: usize,
    chunks: usize,
    secs: f64,
    embed_secs: f64,
}

/// Chunks embedded and stored per call, as the worker's `kb.ingest` job.
const INGEST_BATCH: usize = 32;

/// Jobs the worker runs at once (`BIZOS_WORKER_CONCURRENCY`'s default).
const INGEST_JOBS: usize = 4;

/// A child process: `n` Cranfield documents from upload to ready with the
/// embedder of `variant`, [`INGEST_JOBS`] at a time as the worker's
/// `kb.ingest` jobs take them (embedding in `spawn_blocking`, as the job
/// does): `upload_begin` + `object_create` + `kb_document_register` as an
/// ops user (the upload), then `kb_ingest_start`, the chunks of the text by
/// `kb::ingest::chunks_of`, `kb_ingest_progress`, `kb_ingest_chunks` per 32
/// embedded chunks and `kb_ingest_finish`, each its own transaction. One
/// JSON line on stdout.
async fn ingest_child(variant: &str, data: &Cranfield, n: usize) -> anyhow::Result<()> {
    let model = std::env::var_os("BIZOS_KB_MODEL_DIR").context("BIZOS_KB_MODEL_DIR")?;
    let embedder = Arc::new(Embedder::load_with(
        Path::new(&model),
        settings_of(variant)?,
    )?);
    let db = TestDb::new().await;
    let tenant = db.create_tenant("ingest").await;
    let ops = db.create_user(tenant, "ops").await;
    let docs: Vec<&Doc> = data
        .docs
        .iter()
        .filter(|d| !d.text().is_empty())
        .take(n)
        .collect();
    embedder.embed(&["warm-up"])?;
    let t0 = Instant::now();
    // Job j takes documents j, j + INGEST_JOBS, ...
    let jobs = (0..INGEST_JOBS).map(|j| {
        let (db, ops, embedder) = (&db, &ops, &embedder);
        let mine: Vec<&Doc> = docs.iter().skip(j).step_by(INGEST_JOBS).copied().collect();
        async move {
            let (mut chunks, mut embed_secs) = (0, 0.0);
            for d in mine {
                let (c, e) = ingest_doc(db, ops, embedder, d).await?;
                chunks += c;
                embed_secs += e;
            }
            anyhow::Ok((chunks, embed_secs))
        }
    });
    let (mut chunks_total, mut embed_secs) = (0, 0.0);
    for r in futures_util::future::join_all(jobs).await {
        let (c, e) = r?;
        chunks_total += c;
        embed_secs += e;
    }
    let run = json!({
        "docs": docs.len(),
        "chunks": chunks_total,
        "secs": t0.elapsed().as_secs_f64(),
        "embed_secs": embed_secs,
    });
    println!("{run}");
    Ok(())
}

/// One document from upload to ready; (chunks, seconds of embedding).
async fn ingest_doc(
    db: &TestDb,
    ops: &Caller,
    embedder: &Arc<Embedder>,
    d: &Doc,
) -> anyhow::Result<(usize, f64)> {
    use bizos_bff::kb::extract::Format;
    use bizos_bff::kb::ingest::{chunks_of, embedding_input, heading_path};
    let text = d.text();
    let mut tx = db.as_user(ops).await;
    let object = knowledge_file(&mut tx, d, text.len()).await?;
    let registered: Value = sqlx::query_scalar("select kb_document_register($1)")
        .bind(json!({"object_id": object, "title": format!("Cranfield {}", d.id), "format": "txt"}))
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    let id: Uuid = registered["document_id"]
        .as_str()
        .context("kb_document_register: document_id")?
        .parse()?;
    let step = |sql: &'static str, extra: Option<Value>| async move {
        let mut tx = db.as_user(ops).await;
        let mut q = sqlx::query_scalar::<_, Value>(sql).bind(id).bind(1);
        if let Some(extra) = extra {
            q = q.bind(extra);
        }
        let out = q.fetch_one(&mut *tx).await?;
        tx.commit().await?;
        anyhow::Ok(out)
    };
    step("select kb_ingest_start($1, $2)", None).await?;
    let e = embedder.clone();
    let chunks = Arc::new(
        tokio::task::spawn_blocking(move || chunks_of(Format::Txt, text.as_bytes(), &e))
            .await?
            .map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    step(
        "select kb_ingest_progress($1, $2, 'embedding', ($3::jsonb)::text::int)",
        Some(json!(chunks.len())),
    )
    .await?;
    let mut embed_secs = 0.0;
    let mut done = 0;
    while done < chunks.len() {
        let end = (done + INGEST_BATCH).min(chunks.len());
        let (e, c) = (embedder.clone(), chunks.clone());
        let (vectors, secs) = tokio::task::spawn_blocking(move || {
            let inputs: Vec<String> = c[done..end].iter().map(embedding_input).collect();
            let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
            let t0 = Instant::now();
            e.embed(&refs).map(|v| (v, t0.elapsed().as_secs_f64()))
        })
        .await??;
        embed_secs += secs;
        let rows: Vec<Value> = chunks[done..end]
            .iter()
            .zip(vectors)
            .enumerate()
            .map(|(i, (c, v))| {
                json!({"chunk_no": done + i, "text": c.text,
                       "heading_path": heading_path(c), "token_count": c.tokens, "embedding": v})
            })
            .collect();
        step(
            "select kb_ingest_chunks($1, $2, $3)",
            Some(Value::Array(rows)),
        )
        .await?;
        done = end;
    }
    let finished = step("select kb_ingest_finish($1, $2)", None).await?;
    anyhow::ensure!(finished["status"] == "ready", "not ready: {finished}");
    Ok((chunks.len(), embed_secs))
}

struct Ingest {
    n: usize,
    runs: [Vec<IngestRun>; 2],
}

fn ingest(n: usize) -> anyhow::Result<Ingest> {
    say(format!(
        "ingest: {n} Cranfield documents from upload to ready, {INGEST_JOBS} at a time, tuned and as before, alternating"
    ));
    let mut runs: [Vec<IngestRun>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..2 {
        for (i, variant) in VARIANTS.iter().enumerate() {
            let v = child(&format!("ingest:{variant}"), &[])?;
            let num = |k: &str| v[k].as_f64().with_context(|| format!("ingest child: {k}"));
            let run = IngestRun {
                docs: num("docs")? as usize,
                chunks: num("chunks")? as usize,
                secs: num("secs")?,
                embed_secs: num("embed_secs")?,
            };
            say(format!(
                "  {variant}: {:.2} docs/s ({} chunks, {:.1} s, embedding {:.1} s)",
                run.docs as f64 / run.secs,
                run.chunks,
                run.secs,
                run.embed_secs
            ));
            runs[i].push(run);
        }
    }
    Ok(Ingest { n, runs })
}

fn print_ingest(t: &Ingest) {
    println!("#### Ingestion throughput (upload to ready)\n");
    println!(
        "The first {} Cranfield documents, {INGEST_JOBS} at a time as the worker's jobs run \
         (`BIZOS_WORKER_CONCURRENCY`'s default), each variant in its own process (a fresh \
         database each): the upload's SQL (`upload_begin`, `object_create`, \
         `kb_document_register`) as an ops user, then what the worker's `kb.ingest` job does \
         (`kb_ingest_start`, chunking by `kb::ingest::chunks_of`, `kb_ingest_progress`, \
         embedding and `kb_ingest_chunks` per 32 chunks, `kb_ingest_finish`), each call its \
         own transaction. Not included: the HTTP upload, object storage and the job queue's \
         pickup. Variants alternate, twice.\n",
        t.n
    );
    println!("| embedder | runs (docs/s) | mean docs/s | chunks | embedding time ÷ wall time | ÷ before |");
    println!("|---|---|---|---|---|---|");
    let docs_per_s =
        |i: usize| -> Vec<f64> { t.runs[i].iter().map(|r| r.docs as f64 / r.secs).collect() };
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let before = mean(&docs_per_s(1));
    for (i, label) in ["tuned", "**baseline**: as before issue 49"]
        .iter()
        .enumerate()
    {
        let v = docs_per_s(i);
        let share = t.runs[i].iter().map(|r| r.embed_secs).sum::<f64>()
            / t.runs[i].iter().map(|r| r.secs).sum::<f64>().max(1e-9);
        println!(
            "| {label} | {} | **{:.2}** | {} | {:.0}% | **{:.2}×** |",
            v.iter()
                .map(|x| format!("{x:.2}"))
                .collect::<Vec<_>>()
                .join(" / "),
            mean(&v),
            t.runs[i].first().map_or(0, |r| r.chunks),
            share * 100.0,
            mean(&v) / before
        );
    }
    println!();
}

// ------------------------------------------------------------- latency --

/// splitmix64: a small deterministic generator (no dependency).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    /// Standard normal (Box–Muller).
    fn gauss(&mut self) -> f64 {
        (-2.0 * self.unit().ln()).sqrt() * (std::f64::consts::TAU * self.unit()).cos()
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

struct Latency {
    tenants: usize,
    chunks: usize,
    tenant_chunks: i64,
    load_secs: f64,
    reindex_secs: f64,
    noise: f64,
    mean_cos: f64,
    queries: usize,
    probes: String,
    rows: Vec<(String, Vec<Duration>, f64)>,
}

/// Noise per dimension added to a base vector (norm of the noise ≈ 0.5).
const NOISE: f64 = 0.025;

async fn latency(data: &Cranfield, q: &Quality) -> anyhow::Result<Latency> {
    let n_tenants: usize = env_or("BIZOS_BENCH_KB_TENANTS", 100);
    let n_chunks: usize = env_or("BIZOS_BENCH_KB_CHUNKS", 100_000);
    let n_queries: usize = env_or("BIZOS_BENCH_KB_QUERIES", 200).min(q.query_vectors.len());
    let per_tenant = n_chunks / n_tenants;
    let docs_per_tenant = 10usize;
    let per_doc = per_tenant / docs_per_tenant;
    say(format!(
        "latency: database, {n_tenants} tenants × {docs_per_tenant} documents × {per_doc} chunks"
    ));
    let db = TestDb::new().await;
    let mut tenants = Vec::new();
    for i in 0..n_tenants {
        tenants.push(db.create_tenant(&format!("kb-{i:03}")).await);
    }
    let reader = db.create_user(tenants[0], "salesperson").await;

    // Sentences of each document (Cranfield marks them " . ").
    let bases: Vec<&Doc> = data
        .docs
        .iter()
        .filter(|d| q.doc_vectors.contains_key(&d.id))
        .collect();
    let sentences: Vec<Vec<String>> = bases
        .iter()
        .map(|d| {
            d.text()
                .split(" . ")
                .map(|s| format!("{} .", s.trim_end_matches(" .").trim()))
                .filter(|s| s.len() > 2)
                .collect()
        })
        .collect();
    let mut rng = Rng(16);
    let mut cos_sum = 0.0;
    let t0 = Instant::now();
    for (ti, tenant) in tenants.iter().enumerate() {
        let docs: Vec<Uuid> = sqlx::query_scalar(
            "with o as (
               insert into objects (tenant_id, bucket, file_name, content_type, size_bytes, sha256)
               select $1, 'knowledge', 'doc-' || g || '.txt', 'text/plain', 10000, repeat('ab', 32)
                 from generate_series(1, $2) g
               returning tenant_id, object_id, file_name)
             insert into kb_documents (tenant_id, title, format, object_id, status, chunks_total, chunks_done,
                                       ready_version, ready_object_id, ready_at)
             select tenant_id, file_name, 'txt', object_id, 'ready', $3, $3, 1, object_id, now() from o
             returning document_id",
        )
        .bind(tenant)
        .bind(docs_per_tenant as i32)
        .bind(per_doc as i32)
        .fetch_all(&db.owner)
        .await?;
        let (mut doc_ids, mut nos, mut texts, mut counts, mut vecs) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for doc in &docs {
            for no in 0..per_doc {
                // A base document: its sentences from a random one on,
                // every third sentence taken from another document.
                let b = rng.below(bases.len());
                let own = &sentences[b];
                let mut words = 0;
                let mut parts = Vec::new();
                let mut at = rng.below(own.len().max(1));
                let mut i = 0;
                while words < 150 && i < 60 {
                    let s = if i % 3 == 2 || own.is_empty() {
                        let o = &sentences[rng.below(sentences.len())];
                        if o.is_empty() {
                            i += 1;
                            continue;
                        }
                        o[rng.below(o.len())].clone()
                    } else {
                        at = (at + 1) % own.len();
                        own[at].clone()
                    };
                    words += s.split_whitespace().count();
                    parts.push(s);
                    i += 1;
                }
                let text = parts.join(" ");
                let base = &q.doc_vectors[&bases[b].id];
                let mut v: Vec<f64> = base
                    .iter()
                    .map(|x| f64::from(*x) + NOISE * rng.gauss())
                    .collect();
                let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
                v.iter_mut().for_each(|x| *x /= norm);
                cos_sum += v
                    .iter()
                    .zip(base)
                    .map(|(a, b)| a * f64::from(*b))
                    .sum::<f64>();
                let v32: Vec<f32> = v.iter().map(|x| *x as f32).collect();
                doc_ids.push(*doc);
                nos.push(no as i32);
                counts.push(words as i32);
                texts.push(text);
                vecs.push(vector_text(&v32));
            }
        }
        sqlx::query(
            "insert into kb_chunks (tenant_id, document_id, version, chunk_no, owner_user_id, visibility,
                                    text, token_count, tsv, lex_len, embedding)
             select $1, u.document_id, 1, u.chunk_no, null, 'tenant', u.text, u.token_count, v.tsv,
                    (select coalesce(sum(coalesce(array_length(x.positions, 1), 1)), 0) from unnest(v.tsv) x)::integer,
                    u.embedding::bizos.vector
               from unnest($2::uuid[], $3::int[], $4::text[], $5::int[], $6::text[])
                      as u (document_id, chunk_no, text, token_count, embedding)
              cross join lateral (select to_tsvector('simple'::regconfig, '' || ' ' || u.text) as tsv) v",
        )
        .bind(tenant)
        .bind(&doc_ids)
        .bind(&nos)
        .bind(&texts)
        .bind(&counts)
        .bind(&vecs)
        .execute(&db.owner)
        .await?;
        if (ti + 1) % 20 == 0 {
            say(format!(
                "  {} chunks ({:.0} s)",
                (ti + 1) * per_tenant,
                t0.elapsed().as_secs_f64()
            ));
        }
    }
    let load_secs = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    sqlx::query("reindex index kb_chunks_embedding_idx")
        .execute(&db.owner)
        .await?;
    let reindex_secs = t0.elapsed().as_secs_f64();
    sqlx::query("vacuum analyze kb_chunks, kb_terms, kb_stats, kb_documents")
        .execute(&db.owner)
        .await?;
    let (admin, conn) =
        tokio_postgres::connect(&bizos_tests::admin_url(), tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    admin.batch_execute("checkpoint").await?;
    let total: i64 = sqlx::query_scalar("select count(*) from kb_chunks")
        .fetch_one(&db.owner)
        .await?;
    let tenant_chunks: i64 =
        sqlx::query_scalar("select count(*) from kb_chunks where tenant_id = $1")
            .bind(tenants[0])
            .fetch_one(&db.owner)
            .await?;
    let probes: String = sqlx::query_scalar("select current_setting('bizos.ivf_probes', true)")
        .fetch_one(&db.owner)
        .await
        .unwrap_or_else(|_| "?".into());

    // The variants, each one statement; the user's run in a transaction
    // opened as the BFF opens one (not timed), the owner's outside RLS.
    const HYBRID: &str = "select chunk_id from kb_search($1, $2::text::bizos.vector, 10)";
    const LEXICAL: &str = "select chunk_id from kb_search($1, $2::text::bizos.vector, 10, 1, 0)";
    const VECTOR: &str = "select chunk_id from kb_search($1, $2::text::bizos.vector, 10, 0, 1)";
    // The two branches as plain SQL: the same candidates (50) per branch,
    // PostgreSQL's ts_rank instead of BM25 (no statistics), no fusion.
    const PLAIN: &str = "with tsq as (
           select string_agg('''' || replace(replace(u.lexeme, '\\', '\\\\'), '''', '''''') || '''', ' | ')::tsquery as q
             from unnest(to_tsvector('simple'::regconfig, $1)) u),
         v as (select c.chunk_id from kb_chunks c where c.tenant_id = $3
                order by c.embedding operator(bizos.<=>) $2::text::bizos.vector limit 50),
         l as (select c.chunk_id from kb_chunks c, tsq where c.tenant_id = $3 and c.tsv @@ tsq.q
                order by ts_rank(c.tsv, tsq.q) desc limit 50)
         select chunk_id from v union all select chunk_id from l";
    const PLAIN_VECTOR: &str =
        "select c.chunk_id from kb_chunks c where c.tenant_id = $3 and $1::text is not null
          order by c.embedding operator(bizos.<=>) $2::text::bizos.vector limit 50";
    let variants: [(&str, &str, bool); 5] = [
        (
            "`kb_search(q, e, 10)` hybrid, as the tenant's user (RLS)",
            HYBRID,
            true,
        ),
        ("`kb_search` BM25 alone (weights 1, 0)", LEXICAL, true),
        ("`kb_search` vector alone (weights 0, 1)", VECTOR, true),
        (
            "**baseline**: both branches as plain SQL by the owner (no RLS; ts_rank, 50 each; no fusion)",
            PLAIN,
            false,
        ),
        (
            "plain SQL vector branch alone by the owner (bizos_ivf, 50 nearest)",
            PLAIN_VECTOR,
            false,
        ),
    ];
    let run = |sql: &'static str, user: bool, qi: usize| {
        let (db, reader) = (&db, &reader);
        let text = data.queries[qi].clone();
        let vector = q.query_vectors[qi].clone();
        let tenant = tenants[0];
        async move {
            let (rows, took) = if user {
                let mut tx = db.as_user(reader).await;
                let t0 = Instant::now();
                let rows = sqlx::query(sql)
                    .bind(&text)
                    .bind(&vector)
                    .fetch_all(&mut *tx)
                    .await?;
                let took = t0.elapsed();
                tx.commit().await?;
                (rows.len(), took)
            } else {
                let t0 = Instant::now();
                let rows = sqlx::query(sql)
                    .bind(&text)
                    .bind(&vector)
                    .bind(tenant)
                    .fetch_all(&db.owner)
                    .await?;
                (rows.len(), t0.elapsed())
            };
            anyhow::Ok((rows, took))
        }
    };
    say(format!(
        "latency: warm-up, then {n_queries} queries × {} variants, alternating",
        variants.len()
    ));
    for qi in 0..20.min(n_queries) {
        for (_, sql, user) in variants {
            run(sql, user, qi).await?;
        }
    }
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); variants.len()];
    let mut rows_sum = vec![0usize; variants.len()];
    for qi in 0..n_queries {
        for j in 0..variants.len() {
            let vi = (qi + j) % variants.len();
            let (_, sql, user) = variants[vi];
            let (rows, took) = run(sql, user, qi).await?;
            times[vi].push(took);
            rows_sum[vi] += rows;
        }
    }
    let rows = variants
        .iter()
        .zip(times)
        .zip(rows_sum)
        .map(|(((label, _, _), mut t), r)| {
            t.sort();
            (label.to_string(), t, r as f64 / n_queries as f64)
        })
        .collect();
    if env_or("BIZOS_BENCH_KB_KEEP", 0) == 1 {
        say(format!(
            "latency: keeping database {} (tenant {}, user {})",
            db.name, tenants[0], reader.user_id
        ));
        std::mem::forget(db);
    }
    Ok(Latency {
        tenants: n_tenants,
        chunks: usize::try_from(total).unwrap_or(0),
        tenant_chunks,
        load_secs,
        reindex_secs,
        noise: NOISE,
        mean_cos: cos_sum / (n_tenants * per_tenant) as f64,
        queries: n_queries,
        probes,
        rows,
    })
}

fn print_latency(l: &Latency) {
    println!("#### `kb_search` latency at {} chunks\n", l.chunks);
    println!(
        "{} tenants × 10 documents × {} chunks, inserted by the owner ({:.0} s, the BM25 statistics \
         kept by the triggers), `REINDEX` of the bizos_ivf index (lists 100) {:.1} s. Texts: \
         Cranfield sentences recombined around a base document (about 150 words); embeddings: the \
         base document's real embedding plus Gaussian noise (σ = {} per dimension), normalised \
         (mean cosine to the base {:.3}). The searching user's tenant holds {} chunks (1%). \
         {} Cranfield queries with their real embeddings, each variant once per query, the order \
         rotating; time of the statement alone (the user's transaction is opened as the BFF opens \
         one, untimed). `bizos.ivf_probes` at its default ({}).\n",
        l.tenants,
        l.tenant_chunks / 10,
        l.load_secs,
        l.reindex_secs,
        l.noise,
        l.mean_cos,
        l.tenant_chunks,
        l.queries,
        l.probes,
    );
    println!("| statement | rows | p50 | p99 | mean | p50 ÷ baseline p50 |");
    println!("|---|---|---|---|---|---|");
    let base = pct(&l.rows[3].1, 0.5).as_secs_f64();
    for (label, t, rows) in &l.rows {
        let m = t.iter().map(Duration::as_secs_f64).sum::<f64>() / t.len().max(1) as f64;
        println!(
            "| {label} | {rows:.1} | {} | {} | {:.2} ms | {:.2}× |",
            ms(pct(t, 0.5)),
            ms(pct(t, 0.99)),
            m * 1000.0,
            pct(t, 0.5).as_secs_f64() / base
        );
    }
    println!();
}

// ----------------------------------------------------------------- main --

fn main() -> anyhow::Result<()> {
    // A child runs one embedder variant; the embedder as before issue 49
    // runs without the process tuning that came with it.
    let child = std::env::var("BIZOS_BENCH_KB_CHILD").ok();
    if child
        .as_deref()
        .is_none_or(|c| !c.ends_with("before-issue-49"))
    {
        bizos_bff::kb::embed::tune_process();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(child))
}

async fn run(child: Option<String>) -> anyhow::Result<()> {
    if let Some(what) = child.as_deref().and_then(|c| c.strip_prefix("embed:")) {
        let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
        anyhow::ensure!(args.len() == 2, "embed child: chunks file, queries file");
        return embed_child(what, &args[0], &args[1]);
    }
    let parts = std::env::var("BIZOS_BENCH_KB_PARTS")
        .unwrap_or_else(|_| "quality,throughput,latency".into());
    let data_dir = std::env::var_os("BIZOS_BENCH_KB_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("../shared/data/cranfield"));
    let python = std::env::var("BIZOS_BENCH_KB_PYTHON").unwrap_or_else(|_| "python3".into());
    let model = std::env::var_os("BIZOS_KB_MODEL_DIR")
        .context("BIZOS_KB_MODEL_DIR is not set (bench/kb/run sets it)")?;
    let data = load_cranfield(&data_dir)?;
    say(format!(
        "Cranfield: {} documents, {} queries, {} judged",
        data.docs.len(),
        data.queries.len(),
        data.qrels.len()
    ));
    if let Some(what) = child.as_deref().and_then(|c| c.strip_prefix("ingest:")) {
        return ingest_child(what, &data, env_or("BIZOS_BENCH_KB_INGEST_N", 100)).await;
    }
    let embedder = bizos_bff::kb::embed::shared(Path::new(&model))?;

    println!("### Knowledge base (issue 16)\n");
    // The latency part takes its query and base vectors from the quality part.
    let quality = if parts.contains("quality") || parts.contains("latency") {
        Some(quality(&data, &embedder, &python).await?)
    } else {
        None
    };
    if let (true, Some(q)) = (parts.contains("quality"), &quality) {
        print_quality(q);
    }
    if parts.contains("throughput") {
        let t = throughput(&data, &embedder).await?;
        print_throughput(&t);
    }
    if parts.contains("ingest") {
        let t = ingest(env_or("BIZOS_BENCH_KB_INGEST_N", 100))?;
        print_ingest(&t);
    }
    if let (true, Some(q)) = (parts.contains("latency"), &quality) {
        let l = latency(&data, q).await?;
        print_latency(&l);
    }
    Ok(())
}

/// The document's file registered in the caller's transaction, as an
/// upload does (upload_begin, then object_create): its object id.
async fn knowledge_file(
    tx: &mut sqlx::PgConnection,
    doc: &Doc,
    size: usize,
) -> anyhow::Result<Uuid> {
    let intent: Value = sqlx::query_scalar("select upload_begin('knowledge')")
        .fetch_one(&mut *tx)
        .await?;
    let object: Uuid = intent["object_id"]
        .as_str()
        .context("upload_begin: object_id")?
        .parse()?;
    sqlx::query("select object_create($1)")
        .bind(json!({"object_id": object, "bucket": "knowledge",
                     "file_name": format!("cranfield-{}.txt", doc.id), "content_type": "text/plain",
                     "size_bytes": size, "sha256": "ab".repeat(32)}))
        .execute(&mut *tx)
        .await?;
    Ok(object)
}
