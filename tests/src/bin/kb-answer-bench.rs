//! `scripts/bench kb-answers` (bench/kb_answers/run): the answer of
//! `/api/kb/ask` without a model, against the test set of
//! bench/kb_answers (README there; questions.json, the original set,
//! heldout.json and heldout2.json, reported apart and together): how many answerable questions are
//! answered with a sentence that holds the answer, how many unanswerable
//! ones are refused ("not in the documents").
//!
//! Against a database cloned by the test harness from
//! `BIZOS_TEST_ADMIN_URL` (the benchmark's own cluster), with the built-in
//! embedder (`BIZOS_KB_MODEL_DIR`):
//!
//! 1. The first `BIZOS_BENCH_KB_ANSWERS_DOCS` (800) Cranfield documents
//!    (`BIZOS_BENCH_KB_DATA`, default `../shared/data/cranfield` beside the
//!    repository) and the Indonesian documents of bench/kb_answers/id are
//!    uploaded over HTTP by a user of one tenant and ingested by the
//!    in-process worker (chunking, embedding), as any document is. The
//!    collection is lower case with a space before every full stop
//!    ("... was 0.1875 . jet stagnation ..."); each document is uploaded as
//!    plain text with its sentences restored ("... was 0.1875. Jet
//!    stagnation ..."), so that sentences can be told apart.
//! 2. Each question is asked over `POST /api/kb/ask` by that user. No model
//!    is configured, so the gateway falls back and the answer is the
//!    extractive one, or "not in the documents".
//! 3. **Baseline**, in the same run on the same documents: the answer
//!    before issue 49, as `bff/src/kb/answer.rs` computed it (commit
//!    8dd3868): `kb_search` with the question's embedding and
//!    k = `ASK_SOURCES` as the user; the chunks within cosine distance 0.72
//!    are the sources, none of them means "not in the documents"; else the
//!    three sentences of the sources sharing the most words with the
//!    question (lower-case runs of letters and digits, two characters or
//!    more; no stop list).
//!
//! Results (markdown) on stdout, progress on stderr.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bizos_bff::auth::Caller;
use bizos_bff::kb::embed::{shared, vector_text};
use bizos_bff::routes::kb::ASK_SOURCES;
use bizos_tests::bench::{env_or, root, say};
use bizos_tests::{spawn_app_with, TestApp, TestDb};
use serde_json::{json, Value};
use sqlx::Row;

// ------------------------------------------------------------- the set --

/// The sets of questions: name and file of bench/kb_answers.
const SETS: [(&str, &str); 3] = [
    ("original", "questions.json"),
    ("held-out", "heldout.json"),
    ("held-out 2", "heldout2.json"),
];

struct Question {
    /// `original` (questions.json), `held-out` (heldout.json) or
    /// `held-out 2` (heldout2.json).
    set: &'static str,
    lang: String,
    question: String,
    answer: Option<String>,
    source: Option<String>,
}

/// The questions of a set's file (questions.json, heldout.json: an array
/// of objects: lang, question, answer or null, source or null).
fn questions(set: &'static str, file: &str, text: &str) -> anyhow::Result<Vec<Question>> {
    let all: Value = serde_json::from_str(text).context(file.to_owned())?;
    let items = all
        .as_array()
        .with_context(|| format!("{file}: must be an array"))?;
    let mut out = Vec::new();
    for (i, q) in items.iter().enumerate() {
        let text = |field: &str| -> anyhow::Result<Option<String>> {
            match &q[field] {
                Value::Null => Ok(None),
                Value::String(s) => Ok(Some(s.clone())),
                other => {
                    bail!("{file}[{i}].{field}: must be a string or null, not {other}")
                }
            }
        };
        let lang = text("lang")?.with_context(|| format!("{file}[{i}].lang: is required"))?;
        if lang != "en" && lang != "id" {
            bail!("{file}[{i}].lang: must be en or id, not {lang}");
        }
        let question =
            text("question")?.with_context(|| format!("{file}[{i}].question: is required"))?;
        let answer = text("answer")?;
        let source = text("source")?;
        if answer.is_some() != source.is_some() {
            bail!("{file}[{i}]: answer and source go together");
        }
        out.push(Question {
            set,
            lang,
            question,
            answer,
            source,
        });
    }
    Ok(out)
}

/// A document to upload: (file name, title, text).
type Upload = (String, String, String);

/// Lower case, runs of white space as one space.
fn normal(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// "a . b" -> "a. B": Cranfield's sentences as they were written.
fn sentences_restored(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut out = String::with_capacity(text.len());
    let mut capital = true;
    for w in words {
        if w == "." || w == ".." {
            out.push('.');
            capital = true;
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        if capital {
            let mut chars = w.chars();
            if let Some(first) = chars.next() {
                out.extend(first.to_uppercase());
                out.push_str(chars.as_str());
            }
            capital = false;
        } else {
            out.push_str(w);
        }
    }
    out
}

/// The first `n` Cranfield documents: (`.I` number, title, text).
fn cranfield(dir: &Path, n: usize) -> anyhow::Result<Vec<(u32, String, String)>> {
    let path = dir.join("cran.all.1400");
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let mut out = Vec::new();
    let mut field = ' ';
    let mut current: Option<(u32, String, String)> = None;
    for line in text.lines() {
        if let Some(id) = line.strip_prefix(".I") {
            if let Some(doc) = current.take() {
                out.push(doc);
            }
            current = Some((id.trim().parse()?, String::new(), String::new()));
            field = ' ';
        } else if line.len() == 2 && line.starts_with('.') {
            field = line.chars().nth(1).unwrap_or(' ');
        } else if let Some((_, title, body)) = current.as_mut() {
            let target = match field {
                'T' => title,
                'W' => body,
                _ => continue,
            };
            target.push(' ');
            target.push_str(line.trim());
        }
    }
    out.extend(current);
    out.truncate(n);
    Ok(out)
}

// ------------------------------------------------------------ baseline --

/// The answer before issue 49 (see the module's doc): `None` is "not in
/// the documents", else the sentences.
fn baseline(question: &str, hits: &[(String, Option<f64>)]) -> Option<Vec<String>> {
    fn words(text: &str) -> Vec<String> {
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.chars().count() >= 2)
            .map(str::to_lowercase)
            .collect()
    }
    let sources: Vec<&str> = hits
        .iter()
        .filter(|(_, d)| d.is_some_and(|d| d <= 0.72))
        .map(|(t, _)| t.as_str())
        .collect();
    if sources.is_empty() {
        return None;
    }
    let asked: HashSet<String> = words(question).into_iter().collect();
    let mut scored: Vec<(usize, usize, usize, String)> = Vec::new();
    for (i, text) in sources.iter().enumerate() {
        for (p, range) in bizos_core::chunk::sentences(text).into_iter().enumerate() {
            let sentence = text[range].trim();
            if sentence.is_empty() {
                continue;
            }
            let shared: HashSet<String> = words(sentence)
                .into_iter()
                .filter(|w| asked.contains(w))
                .collect();
            scored.push((shared.len(), i, p, sentence.to_owned()));
        }
    }
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    Some(scored.into_iter().take(3).map(|(_, _, _, s)| s).collect())
}

// ------------------------------------------------------------- scoring --

#[derive(Default, Clone, Copy)]
struct Tally {
    answerable: usize,
    answered: usize,
    unanswerable: usize,
    refused: usize,
}

impl Tally {
    fn add(&mut self, expected: Option<&str>, got: Option<&[String]>) -> bool {
        match expected {
            Some(answer) => {
                self.answerable += 1;
                let ok = got.is_some_and(|s| s.iter().any(|t| normal(t).contains(&normal(answer))));
                self.answered += usize::from(ok);
                ok
            }
            None => {
                self.unanswerable += 1;
                let ok = got.is_none();
                self.refused += usize::from(ok);
                ok
            }
        }
    }
}

fn pct(n: usize, of: usize) -> String {
    if of == 0 {
        "—".into()
    } else {
        format!("{:.1}% ({n}/{of})", 100.0 * n as f64 / of as f64)
    }
}

// ---------------------------------------------------------------- main --

async fn settled(app: &TestApp, who: &Caller, id: &str) -> anyhow::Result<Value> {
    let start = Instant::now();
    loop {
        let (status, doc) = app.get_json(who, &format!("/api/kb/documents/{id}")).await;
        if status != 200 {
            bail!("document {id}: HTTP {status}: {doc}");
        }
        if doc["status"] == "ready" || doc["status"] == "failed" {
            return Ok(doc);
        }
        if start.elapsed() > Duration::from_secs(3600) {
            bail!("document {id} not ingested within an hour: {doc}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let root = root();
    let set_dir = root.join("bench/kb_answers");
    let data = std::env::var_os("BIZOS_BENCH_KB_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/data/cranfield"));
    let n_docs: usize = env_or("BIZOS_BENCH_KB_ANSWERS_DOCS", 800);
    let model_dir = std::env::var_os("BIZOS_KB_MODEL_DIR")
        .map(PathBuf::from)
        .context("BIZOS_KB_MODEL_DIR is not set")?;
    let mut questions = Vec::new();
    for (set, file) in SETS {
        let text = std::fs::read_to_string(set_dir.join(file)).context(file)?;
        questions.extend(self::questions(set, file, &text)?);
    }

    let mut uploads: Vec<Upload> = cranfield(&data, n_docs)?
        .into_iter()
        .filter(|(_, _, body)| !body.trim().is_empty())
        .map(|(id, title, body)| {
            let title = title.split_whitespace().collect::<Vec<_>>().join(" ");
            let title: String = title
                .trim_end_matches([' ', '.'])
                .chars()
                // ("Cranfield NNN: " and the title: at most 200 characters.)
                .take(180)
                .collect();
            (
                format!("cranfield-{id}.txt"),
                format!("Cranfield {id}: {title}"),
                sentences_restored(&body),
            )
        })
        .collect();
    let mut id_files: Vec<PathBuf> = std::fs::read_dir(set_dir.join("id"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    id_files.sort();
    for path in &id_files {
        let text = std::fs::read_to_string(path)?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .context("a file name")?
            .to_owned();
        let title = text
            .lines()
            .next()
            .unwrap_or(&name)
            .trim_start_matches('#')
            .trim()
            .to_owned();
        uploads.push((name, title, text));
    }
    // Every answer is in what is uploaded.
    for q in &questions {
        if let (Some(answer), Some(source)) = (&q.answer, &q.source) {
            let file = match source.split_once(':') {
                Some(("cranfield", n)) => format!("cranfield-{n}.txt"),
                Some(("id", f)) => f.to_owned(),
                _ => bail!("{}: unknown source {source}", q.question),
            };
            let Some((_, _, text)) = uploads.iter().find(|(f, _, _)| *f == file) else {
                bail!("{}: {source} is not among the documents uploaded (BIZOS_BENCH_KB_ANSWERS_DOCS = {n_docs})", q.question);
            };
            if !normal(text).contains(&normal(answer)) {
                bail!("{}: the answer {answer:?} is not in {source}", q.question);
            }
        }
    }

    let db = TestDb::new().await;
    let tenant = db.create_tenant("kb-answers").await;
    let user = db.create_user(tenant, "super_admin").await;
    let app = spawn_app_with(&db, &[]).await;
    let embedder = shared(&model_dir)?;

    let started = Instant::now();
    say(format!(
        "uploading {} documents ({} Cranfield, {} Indonesian)",
        uploads.len(),
        uploads.len() - id_files.len(),
        id_files.len()
    ));
    let mut ids = Vec::new();
    for (file, title, text) in &uploads {
        let (status, doc) = app
            .upload(
                &user,
                "/api/kb/documents",
                &[("title", title.as_str())],
                file,
                text.clone().into_bytes(),
                None,
            )
            .await;
        if status != 202 {
            bail!("upload of {file}: HTTP {status}: {doc}");
        }
        ids.push(
            doc["document_id"]
                .as_str()
                .context("document_id")?
                .to_owned(),
        );
    }
    for (i, id) in ids.iter().enumerate() {
        let doc = settled(&app, &user, id).await?;
        if doc["status"] != "ready" {
            bail!("{}: {doc}", uploads[i].0);
        }
        if (i + 1) % 50 == 0 {
            say(format!("{} of {} ingested", i + 1, ids.len()));
        }
    }
    let ingest_secs = started.elapsed().as_secs_f64();
    let chunks: i64 = sqlx::query_scalar("select count(*) from kb_chunks where tenant_id = $1")
        .bind(tenant)
        .fetch_one(&db.owner)
        .await?;

    say(format!("asking {} questions", questions.len()));
    // Keyed by (set or "total", language or "all").
    let mut new: BTreeMap<(&str, &str), Tally> = BTreeMap::new();
    let mut old: BTreeMap<(&str, &str), Tally> = BTreeMap::new();
    let mut misses: Vec<String> = Vec::new();
    let ask_started = Instant::now();
    for q in &questions {
        let (status, answer) = app
            .post_json(&user, "/api/kb/ask", &json!({"question": q.question}), None)
            .await;
        if status != 200 {
            bail!("{}: HTTP {status}: {answer}", q.question);
        }
        let got: Option<Vec<String>> = if answer["not_in_documents"] == true {
            None
        } else {
            Some(
                answer["sentences"]
                    .as_array()
                    .context("sentences")?
                    .iter()
                    .filter_map(|s| s["text"].as_str().map(str::to_owned))
                    .collect(),
            )
        };
        if answer["source"] != "extractive" && answer["source"] != "not_in_documents" {
            bail!(
                "{}: an answer from {} (no model is configured)",
                q.question,
                answer["source"]
            );
        }
        let lang = q.lang.as_str();
        let keys = [
            (q.set, lang),
            (q.set, "all"),
            ("total", lang),
            ("total", "all"),
        ];
        let mut ok = true;
        for key in keys {
            ok = new
                .entry(key)
                .or_default()
                .add(q.answer.as_deref(), got.as_deref());
        }

        let question = q.question.clone();
        let emb = embedder.clone();
        let vector = tokio::task::spawn_blocking(move || emb.embed(&[&question])).await??;
        let mut tx = db.as_user(&user).await;
        let rows = sqlx::query(
            "select text, vector_distance from kb_search($1, $2::text::bizos.vector, $3)",
        )
        .bind(&q.question)
        .bind(vector_text(&vector[0]))
        .bind(ASK_SOURCES)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let hits: Vec<(String, Option<f64>)> = rows
            .iter()
            .map(|r| (r.get::<String, _>(0), r.get::<Option<f64>, _>(1)))
            .collect();
        let before = baseline(&q.question, &hits);
        for key in keys {
            old.entry(key)
                .or_default()
                .add(q.answer.as_deref(), before.as_deref());
        }
        if !ok {
            let what = match (&q.answer, &got) {
                (Some(a), None) => format!("refused (answer: {a:?})"),
                (Some(a), Some(s)) => format!("answered without {a:?}: {:?}", s.join(" | ")),
                (None, Some(s)) => format!("answered: {:?}", s.join(" | ")),
                (None, None) => unreachable!("a refused unanswerable question counts as right"),
            };
            misses.push(format!("- [{}, {lang}] {} — {what}", q.set, q.question));
        }
    }
    let ask_secs = ask_started.elapsed().as_secs_f64();

    println!(
        "{} documents uploaded over HTTP and ingested by the worker ({} Cranfield, the first {n_docs} with text, and {} Indonesian), {chunks} chunks, in {ingest_secs:.0} s; {} questions asked in {ask_secs:.0} s (each also run through the baseline). No model configured: every answer is extractive or \"not in the documents\".",
        uploads.len(),
        uploads.len() - id_files.len(),
        id_files.len(),
        questions.len(),
    );
    println!();
    println!(
        "| answer | set | questions | answerable: answered with the answer | unanswerable: refused |"
    );
    println!("|---|---|---|---|---|");
    for (label, tallies) in [
        (
            "**baseline**: cosine gate 0.72 + word overlap (before issue 49)",
            &old,
        ),
        (
            "`/api/kb/ask` without a model: sentence BM25 + embedding, refusal gate",
            &new,
        ),
    ] {
        for (set, file) in SETS.into_iter().chain([("total", "")]) {
            let set_label = if file.is_empty() {
                "**total**".to_owned()
            } else {
                format!("{set} ({file})")
            };
            for lang in ["en", "id", "all"] {
                let lang_label = match lang {
                    "en" => "English (Cranfield)",
                    "id" => "Indonesian (bench/kb_answers/id)",
                    _ => "all",
                };
                if let Some(t) = tallies.get(&(set, lang)) {
                    println!(
                        "| {label} | {set_label} | {lang_label} | {} | {} |",
                        pct(t.answered, t.answerable),
                        pct(t.refused, t.unanswerable)
                    );
                }
            }
        }
    }
    println!();
    let goal = |a: usize, of: usize| of > 0 && a * 10 >= of * 9;
    let met = |a: usize, of: usize| if goal(a, of) { "met" } else { "not met" };
    for (set, _) in SETS.into_iter().chain([("total", "")]) {
        if let Some(n) = new.get(&(set, "all")) {
            println!(
                "- {set}: goal ≥ 90% of unanswerable questions refused: {} — {}; goal ≥ 90% of answerable questions answered with a citation holding the answer: {} — {}.",
                pct(n.refused, n.unanswerable),
                met(n.refused, n.unanswerable),
                pct(n.answered, n.answerable),
                met(n.answered, n.answerable),
            );
        }
    }
    println!();
    println!("Questions `/api/kb/ask` got wrong ({}):", misses.len());
    println!();
    for m in &misses {
        println!("{m}");
    }
    Ok(())
}
