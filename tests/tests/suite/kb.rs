//! The knowledge base end to end: documents uploaded over HTTP,
//! ingested by the worker's `kb.ingest` jobs with the real embedder, found
//! by `/api/kb/search` and answered by `/api/kb/ask` under the caller's
//! RLS. The SQL functions alone are tested in `kb_sql.rs`, the extraction
//! and chunking by the unit tests of `bff/src/kb` and `crates/core`.

use std::time::{Duration, Instant};

use bizos_bff::auth::Caller;
use bizos_fixtures::{docx, pdf};
use bizos_tests::llm_standin::{StandIn, Step};
use bizos_tests::{spawn_app_with, TestApp, TestDb};
use serde_json::{json, Value};
use uuid::Uuid;

/// The BFF and the worker embed with the installed model; without it
/// documents would wait in the queue for a worker that has one.
fn model_installed() {
    assert!(
        std::env::var_os("BIZOS_KB_MODEL_DIR").is_some(),
        "BIZOS_KB_MODEL_DIR is not set: run the tests with scripts/dev test, which installs the model"
    );
}

/// Waits until the document's ingestion ends; returns the document.
async fn settled(app: &TestApp, who: &Caller, id: &str) -> Value {
    let start = Instant::now();
    loop {
        let (status, doc) = app.get_json(who, &format!("/api/kb/documents/{id}")).await;
        assert_eq!(status, 200, "{doc}");
        if doc["status"] == "ready" || doc["status"] == "failed" {
            return doc;
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "ingestion did not end: {doc}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Uploads a document; returns its id.
async fn upload(
    app: &TestApp,
    who: &Caller,
    file: &str,
    bytes: Vec<u8>,
    fields: &[(&str, &str)],
) -> String {
    let (status, doc) = app
        .upload(who, "/api/kb/documents", fields, file, bytes, None)
        .await;
    assert_eq!(status, 202, "{doc}");
    assert_eq!(doc["status"], "queued", "{doc}");
    doc["document_id"].as_str().unwrap().to_owned()
}

/// Uploads and waits for the document to be ready.
async fn ingested(
    app: &TestApp,
    who: &Caller,
    file: &str,
    bytes: Vec<u8>,
    fields: &[(&str, &str)],
) -> String {
    let id = upload(app, who, file, bytes, fields).await;
    let doc = settled(app, who, &id).await;
    assert_eq!(doc["status"], "ready", "{doc}");
    id
}

async fn search(app: &TestApp, who: &Caller, query: &str, k: i32) -> Vec<Value> {
    let (status, found) = app
        .post_json(
            who,
            "/api/kb/search",
            &json!({"query": query, "k": k}),
            None,
        )
        .await;
    assert_eq!(status, 200, "{found}");
    found["items"].as_array().unwrap().clone()
}

async fn ask(app: &TestApp, who: &Caller, question: &str) -> Value {
    let (status, answer) = app
        .post_json(who, "/api/kb/ask", &json!({"question": question}), None)
        .await;
    assert_eq!(status, 200, "{answer}");
    answer
}

fn documents_of(hits: &[Value]) -> Vec<String> {
    hits.iter()
        .map(|h| h["document_id"].as_str().unwrap().to_owned())
        .collect()
}

/// (heading_path, page_start, page_end, text) of a document's chunks.
async fn chunks(db: &TestDb, id: &str) -> Vec<(String, Option<i32>, Option<i32>, String)> {
    sqlx::query_as(
        "select heading_path, page_start, page_end, text from kb_chunks
          where document_id = $1 order by chunk_no",
    )
    .bind(Uuid::parse_str(id).unwrap())
    .fetch_all(&db.owner)
    .await
    .unwrap()
}

async fn count(db: &TestDb, sql: &str, id: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(Uuid::parse_str(id).unwrap())
        .fetch_one(&db.owner)
        .await
        .unwrap()
}

/// A department's user (ops users of `create_user` are in department OPS).
async fn in_department(db: &TestDb, tenant: Uuid, role: &str, dept: &str) -> Caller {
    let user = db.create_user(tenant, role).await;
    sqlx::query("update profiles set dept_code = $3 where tenant_id = $1 and user_id = $2")
        .bind(tenant)
        .bind(user.user_id)
        .bind(dept)
        .execute(&db.owner)
        .await
        .unwrap();
    user
}

#[tokio::test]
async fn every_format_becomes_chunks_that_know_their_page_and_section() {
    model_installed();
    let db = TestDb::new().await;
    let tenant = db.create_tenant("kb-formats").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let app = spawn_app_with(&db, &[]).await;

    let file = pdf(&[
        &[
            "Kebijakan Harga 2026",
            "Diskon maksimal sepuluh persen untuk pelanggan baru.",
        ],
        &["Retur barang diterima dalam tujuh hari kalender."],
    ]);
    let pdf_id = ingested(
        &app,
        &admin,
        "harga.pdf",
        file,
        &[("title", "Kebijakan Harga")],
    )
    .await;
    let got = chunks(&db, &pdf_id).await;
    assert!(!got.is_empty());
    let retur = got
        .iter()
        .find(|c| c.3.contains("Retur barang"))
        .expect("page 2's text");
    assert_eq!(retur.2, Some(2), "the chunk ends on page 2: {got:?}");
    let diskon = got
        .iter()
        .find(|c| c.3.contains("Diskon maksimal"))
        .expect("page 1's text");
    assert_eq!(diskon.1, Some(1), "the chunk starts on page 1: {got:?}");

    let file = docx(&[
        (1, "SOP Penjualan"),
        (0, "Semua penawaran dibuat dalam sistem."),
        (2, "Persetujuan Diskon"),
        (
            0,
            "Diskon di atas lima persen disetujui oleh sales manager.",
        ),
    ]);
    let docx_id = ingested(
        &app,
        &admin,
        "sop.docx",
        file,
        &[("title", "SOP Penjualan")],
    )
    .await;
    let got = chunks(&db, &docx_id).await;
    let approval = got
        .iter()
        .find(|c| c.3.contains("lima persen"))
        .expect("the approval rule");
    assert_eq!(approval.0, "SOP Penjualan > Persetujuan Diskon", "{got:?}");
    assert_eq!(approval.1, None, "no pages in a DOCX");

    let md = "# Onboarding\n\nWelcome.\n\n## Laptops\n\nIT hands out laptops on the first day.\n";
    let md_id = ingested(
        &app,
        &admin,
        "onboarding.md",
        md.into(),
        &[("title", "Onboarding")],
    )
    .await;
    let got = chunks(&db, &md_id).await;
    let laptops = got
        .iter()
        .find(|c| c.3.contains("laptops"))
        .expect("the laptop rule");
    assert_eq!(laptops.0, "Onboarding > Laptops", "{got:?}");

    let html = "<html><head><title>x</title><script>var secret = 1;</script></head><body>\
                <h1>Travel</h1><p>Hotel budget is Rp 900.000 per night.</p>\
                <h2>Claims</h2><p>Claims are filed within 14 days.</p></body></html>";
    let html_id = ingested(
        &app,
        &admin,
        "travel.html",
        html.into(),
        &[("title", "Travel")],
    )
    .await;
    let got = chunks(&db, &html_id).await;
    let claims = got
        .iter()
        .find(|c| c.3.contains("14 days"))
        .expect("the claims rule");
    assert_eq!(claims.0, "Travel > Claims", "{got:?}");
    assert!(
        got.iter().all(|c| !c.3.contains("secret")),
        "scripts are not text: {got:?}"
    );

    let txt = "Jam kerja kantor pukul 08.00 sampai 17.00.\n\nLembur dicatat di sistem HR.\n";
    let txt_id = ingested(
        &app,
        &admin,
        "jam.txt",
        txt.into(),
        &[("title", "Jam Kerja")],
    )
    .await;
    assert!(chunks(&db, &txt_id)
        .await
        .iter()
        .any(|c| c.3.contains("Lembur")));

    // Every chunk has its vector, and the document counts them.
    let (status, doc) = app
        .get_json(&admin, &format!("/api/kb/documents/{txt_id}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(doc["chunks_done"], doc["chunks_total"], "{doc}");
    assert!(doc["chunks_total"].as_i64().unwrap() >= 1, "{doc}");

    // Search finds the page and the section.
    let hits = search(&app, &admin, "berapa hari retur barang diterima", 3).await;
    assert_eq!(hits[0]["document_id"], pdf_id.as_str(), "{hits:?}");
    assert_eq!(hits[0]["page_end"], 2, "{hits:?}");

    // A PDF of scanned pages: failed, with the reason, not an empty success.
    let scan_id = upload(
        &app,
        &admin,
        "scan.pdf",
        pdf(&[&[], &[]]),
        &[("title", "Scan")],
    )
    .await;
    let doc = settled(&app, &admin, &scan_id).await;
    assert_eq!(doc["status"], "failed", "{doc}");
    assert!(
        doc["failure_reason"]
            .as_str()
            .unwrap()
            .contains("no text layer"),
        "{doc}"
    );
    // A DOCX whose XML is broken: failed, with the reason.
    let broken = docx(&[(0, "</w:r></w:body>")]);
    let bad_id = upload(&app, &admin, "broken.docx", broken, &[("title", "Broken")]).await;
    let doc = settled(&app, &admin, &bad_id).await;
    assert_eq!(doc["status"], "failed", "{doc}");
    assert!(
        doc["failure_reason"]
            .as_str()
            .unwrap()
            .contains("cannot be read as"),
        "{doc}"
    );
}

#[tokio::test]
async fn a_department_document_never_reaches_another_department_or_tenant() {
    model_installed();
    let db = TestDb::new().await;
    let tenant = db.create_tenant("kb-dept").await;
    let other_tenant = db.create_tenant("kb-other").await;
    let jakarta = in_department(&db, tenant, "ops", "OPS-JKT").await;
    let jakarta_colleague = in_department(&db, tenant, "ops", "OPS-JKT").await;
    let surabaya = in_department(&db, tenant, "ops", "OPS-SBY").await;
    let finance = db.create_user(tenant, "finance").await;
    let stranger = db.create_user(other_tenant, "super_admin").await;
    let app = spawn_app_with(&db, &[]).await;

    let secret = "Kode brankas gudang Jakarta diganti setiap hari Senin oleh kepala gudang.";
    let dept_id = ingested(
        &app,
        &jakarta,
        "brankas.md",
        format!("# Gudang Jakarta\n\n{secret}\n").into(),
        &[
            ("title", "Prosedur Brankas"),
            ("visibility", "department"),
            ("dept_code", "OPS-JKT"),
        ],
    )
    .await;
    // A document everyone reads, so searches of the others return something.
    let open_id = ingested(
        &app,
        &jakarta,
        "umum.md",
        "# Umum\n\nKantor tutup pada hari libur nasional.\n".into(),
        &[("title", "Umum")],
    )
    .await;
    assert!(
        !chunks(&db, &dept_id).await.is_empty(),
        "the fixture has chunks"
    );

    let question = "Kapan kode brankas gudang diganti?";
    let seen = search(&app, &jakarta_colleague, question, 5).await;
    assert_eq!(
        seen[0]["document_id"],
        dept_id.as_str(),
        "the department reads it: {seen:?}"
    );
    let answer = ask(&app, &jakarta_colleague, question).await;
    assert!(
        answer["citations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["document_id"] == dept_id.as_str()),
        "{answer}"
    );

    for who in [&surabaya, &finance] {
        let hits = search(&app, who, question, 10).await;
        assert!(!hits.is_empty(), "the open document is found");
        assert!(
            documents_of(&hits).iter().all(|d| d == &open_id),
            "{hits:?}"
        );
        let answer = ask(&app, who, question).await;
        assert!(!answer.to_string().contains(&dept_id), "{answer}");
        assert!(
            !answer
                .to_string()
                .contains("brankas gudang Jakarta diganti"),
            "{answer}"
        );
        let (status, _) = app
            .get_json(who, &format!("/api/kb/documents/{dept_id}"))
            .await;
        assert_eq!(status, 404);
        let (_, list) = app.get_json(who, "/api/kb/documents").await;
        assert!(!list.to_string().contains(&dept_id), "{list}");
    }
    let hits = search(&app, &stranger, question, 10).await;
    assert!(hits.is_empty(), "another tenant sees nothing: {hits:?}");
    let answer = ask(&app, &stranger, question).await;
    assert_eq!(answer["not_in_documents"], true, "{answer}");
}

#[tokio::test]
async fn replace_and_delete_leave_no_stale_chunk() {
    model_installed();
    let db = TestDb::new().await;
    let tenant = db.create_tenant("kb-replace").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let app = spawn_app_with(&db, &[]).await;

    let id = ingested(
        &app,
        &admin,
        "tarif.md",
        "# Tarif\n\nTarif pengiriman zona merapi adalah Rp 15.000.\n".into(),
        &[("title", "Tarif")],
    )
    .await;
    assert_eq!(search(&app, &admin, "zona merapi", 5).await.len(), 1);

    let (status, doc) = app
        .upload(
            &admin,
            &format!("/api/kb/documents/{id}/versions"),
            &[],
            "tarif-v2.md",
            "# Tarif\n\nTarif pengiriman zona bromo adalah Rp 20.000.\n".into(),
            None,
        )
        .await;
    assert_eq!(status, 202, "{doc}");
    assert_eq!(doc["version"], 2, "{doc}");
    let doc = settled(&app, &admin, &id).await;
    assert_eq!(
        (doc["status"].as_str(), doc["ready_version"].as_i64()),
        (Some("ready"), Some(2)),
        "{doc}"
    );
    let hits = search(&app, &admin, "zona merapi bromo", 10).await;
    assert!(
        hits.iter()
            .all(|h| !h["text"].as_str().unwrap().contains("merapi")),
        "{hits:?}"
    );
    assert!(
        hits.iter()
            .any(|h| h["text"].as_str().unwrap().contains("bromo")),
        "{hits:?}"
    );
    assert_eq!(
        count(
            &db,
            "select count(*) from kb_chunks where document_id = $1 and version <> 2",
            &id
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &db,
            "select count(*) from kb_chunk_staging where document_id = $1",
            &id
        )
        .await,
        0
    );
    assert_eq!(
        count(&db, "select count(*) from kb_terms where tenant_id = (select tenant_id from kb_documents where document_id = $1) and term = 'merapi'", &id).await,
        0,
        "the old version's words left the statistics"
    );

    let response = app
        .request_as(
            &admin,
            reqwest::Method::DELETE,
            &format!("/api/kb/documents/{id}"),
            None,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(search(&app, &admin, "zona bromo", 10).await.is_empty());
    for table in ["kb_documents", "kb_chunks", "kb_chunk_staging"] {
        assert_eq!(
            count(
                &db,
                &format!("select count(*) from {table} where document_id = $1"),
                &id
            )
            .await,
            0,
            "{table}"
        );
    }
    let (status, _) = app
        .get_json(&admin, &format!("/api/kb/documents/{id}"))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn answers_cite_only_retrieved_chunks_else_extract_or_say_not_in_the_documents() {
    model_installed();
    let db = TestDb::new().await;
    let standin = StandIn::start().await;
    sqlx::query("select llm_provider_set('gemini', 'gemini', $1, 'gemini')")
        .bind(&standin.base_url_gemini)
        .execute(&db.owner)
        .await
        .unwrap();
    sqlx::query("select llm_route_set('rag_answer', $1)")
        .bind(json!([{"provider": "gemini", "model": "g-1"}]))
        .execute(&db.owner)
        .await
        .unwrap();
    let tenant = db.create_tenant("kb-ask").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let app = spawn_app_with(
        &db,
        &[
            ("BIZOS_LLM_KEYS_GEMINI", "gk-1"),
            ("BIZOS_LLM_RETRIES", "0"),
            ("BIZOS_LLM_BUDGET_MS", "15000"),
        ],
    )
    .await;
    let id = ingested(
        &app,
        &admin,
        "refund.md",
        "# Refund\n\nRefunds are approved by the finance manager within five working days.\n\n\
         # Parking\n\nStaff parking is on the second basement floor.\n"
            .into(),
        &[("title", "Refund SOP")],
    )
    .await;

    // A model answer: the sentence citing a source that was not retrieved
    // is dropped; the rest cites the refund chunk.
    standin.script(Step::text(
        json!({"not_in_documents": false, "sentences": [
            {"text": "The finance manager approves refunds.", "sources": [1]},
            {"text": "Refunds take one day.", "sources": [9]}
        ]})
        .to_string(),
    ));
    let answer = ask(&app, &admin, "Who approves refunds?").await;
    assert_eq!(answer["source"], "model", "{answer}");
    assert_eq!(answer["rejected_sentences"], 1, "{answer}");
    assert_eq!(answer["sentences"].as_array().unwrap().len(), 1, "{answer}");
    let cited = &answer["citations"][0];
    assert_eq!(cited["document_id"], id.as_str(), "{answer}");
    assert_eq!(cited["heading_path"], "Refund", "{answer}");
    assert!(
        answer["text"].as_str().unwrap().ends_with("[1]"),
        "{answer}"
    );
    let sent = standin.requests();
    assert!(!sent.is_empty(), "the model was asked");

    // No usable model (the provider fails): the extractive answer. (Another
    // wording: the same question would be answered from the cache.)
    standin.script(Step::status(500));
    let answer = ask(&app, &admin, "Which manager approves a refund?").await;
    assert_eq!(answer["source"], "extractive", "{answer}");
    assert!(
        answer["text"].as_str().unwrap().contains("finance manager"),
        "{answer}"
    );
    assert_eq!(
        answer["citations"][0]["document_id"],
        id.as_str(),
        "{answer}"
    );

    // Nothing relevant: "not in the documents", and no model is asked.
    standin.clear_requests();
    let answer = ask(&app, &admin, "Resep rendang daging sapi yang empuk").await;
    assert_eq!(answer["not_in_documents"], true, "{answer}");
    assert_eq!(answer["source"], "not_in_documents", "{answer}");
    assert!(
        answer["citations"].as_array().unwrap().is_empty(),
        "{answer}"
    );
    assert!(standin.requests().is_empty(), "no model call for nothing");
}

#[tokio::test]
async fn an_ingestion_killed_mid_way_resumes_where_it_stopped() {
    model_installed();
    let db = TestDb::new().await;
    let tenant = db.create_tenant("kb-crash").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let files = tempfile::tempdir().unwrap();
    let dir = files.path().display().to_string();
    let app = spawn_app_with(&db, &[("BIZOS_DATA_DIR", &dir), ("TEST_WORKER", "off")]).await;

    // About 150 chunks: 150 sections of a few sentences each.
    let mut md = String::new();
    for n in 0..150 {
        md.push_str(&format!(
            "# Bagian {n}\n\nProsedur nomor {n} mengatur pengiriman barang ke gudang {n}. \
             Petugas mencatat setiap paket pada formulir {n}.\n\n"
        ));
    }
    let id = upload(
        &app,
        &admin,
        "prosedur.md",
        md.into(),
        &[("title", "Prosedur")],
    )
    .await;
    let job: Uuid = sqlx::query_scalar("select job_id from kb_documents where document_id = $1")
        .bind(Uuid::parse_str(&id).unwrap())
        .fetch_one(&db.owner)
        .await
        .unwrap();

    // Every chunk the handlers send to the database, skipped or not (a
    // BEFORE trigger sees rows that ON CONFLICT then skips).
    for statement in [
        "create table kb_test_sent (chunk_no integer not null)",
        "create function kb_test_log() returns trigger language plpgsql security definer as
           $$ begin insert into kb_test_sent values (new.chunk_no); return new; end $$",
        "create trigger kb_test_log before insert on kb_chunk_staging
           for each row execute function kb_test_log()",
    ] {
        sqlx::query(statement).execute(&db.owner).await.unwrap();
    }

    let env = [("BIZOS_DATA_DIR", dir.as_str())];
    let mut worker = crate::jobs::WorkerProcess::start_with(&db, "kb-first", &env);
    let start = Instant::now();
    loop {
        let done = count(
            &db,
            "select count(*) from kb_chunk_staging where document_id = $1",
            &id,
        )
        .await;
        if done >= 32 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no chunk stored"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.kill();
    let stored_before = count(
        &db,
        "select count(*) from kb_chunk_staging where document_id = $1",
        &id,
    )
    .await;
    let (status, doc) = app
        .get_json(&admin, &format!("/api/kb/documents/{id}"))
        .await;
    assert_eq!(status, 200);
    let total = doc["chunks_total"].as_i64().unwrap();
    assert!(
        stored_before < total,
        "killed mid-way: {stored_before} of {total}"
    );
    assert_eq!(doc["status"], "embedding", "{doc}");
    assert_eq!(doc["chunks_done"].as_i64(), Some(stored_before), "{doc}");

    // The lease runs out (moved instead of waited for); another worker resumes.
    sqlx::query("update jobs set locked_until = now() - interval '1 second' where job_id = $1")
        .bind(job)
        .execute(&db.owner)
        .await
        .unwrap();
    let _worker = crate::jobs::WorkerProcess::start_with(&db, "kb-second", &env);
    let doc = settled(&app, &admin, &id).await;
    assert_eq!(doc["status"], "ready", "{doc}");
    assert_eq!(doc["chunks_done"].as_i64(), Some(total), "{doc}");
    let stored: Vec<i32> = sqlx::query_scalar(
        "select chunk_no from kb_chunks where document_id = $1 order by chunk_no",
    )
    .bind(Uuid::parse_str(&id).unwrap())
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert_eq!(
        stored,
        (0..total as i32).collect::<Vec<_>>(),
        "every chunk once, numbered without gaps"
    );
    // The second worker continued after what the first had stored: no
    // chunk was embedded and sent twice.
    let (sent, distinct): (i64, i64) =
        sqlx::query_as("select count(*), count(distinct chunk_no) from kb_test_sent")
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!((sent, distinct), (total, total), "each chunk sent once");
    let attempts: i32 = sqlx::query_scalar("select attempts from jobs where job_id = $1")
        .bind(job)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(attempts, 2, "claimed twice");
    let log: Option<String> = sqlx::query_scalar("select last_error from jobs where job_id = $1")
        .bind(job)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert!(
        log.unwrap_or_default().contains("kb-first"),
        "the lost lease is recorded"
    );
}

#[tokio::test]
async fn without_a_model_answers_quote_sentences_holding_the_questions_words_else_refuse() {
    model_installed();
    let db = TestDb::new().await;
    let tenant = db.create_tenant("kb-ground").await;
    let admin = db.create_user(tenant, "super_admin").await;
    // No model configured: the gateway falls back, the answer is extractive.
    let app = spawn_app_with(&db, &[]).await;
    let refunds = ingested(
        &app,
        &admin,
        "refund.md",
        "# Refunds\n\nRefunds are approved by the finance manager within five working days. \
         The history of the refund form goes back to 2019.\n\n\
         # Parking\n\nStaff parking is on the second basement floor.\n"
            .into(),
        &[("title", "Refund SOP")],
    )
    .await;
    let cuti = ingested(
        &app,
        &admin,
        "cuti.md",
        "# Cuti\n\nSetiap karyawan tetap berhak atas cuti tahunan selama 12 hari kerja. \
         Permohonan cuti diajukan melalui aplikasi HR paling lambat tujuh hari sebelumnya.\n\n\
         # Lembur\n\nUpah lembur jam pertama dibayar satu setengah kali upah per jam.\n"
            .into(),
        &[("title", "Peraturan Karyawan")],
    )
    .await;

    let cited = |answer: &Value| -> Vec<String> {
        answer["citations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["document_id"].as_str().unwrap().to_owned())
            .collect()
    };

    let answer = ask(&app, &admin, "Who approves refunds?").await;
    assert_eq!(answer["source"], "extractive", "{answer}");
    let text = answer["text"].as_str().unwrap();
    assert!(text.contains("finance manager"), "{answer}");
    assert!(!text.contains("basement"), "{answer}");
    assert_eq!(cited(&answer), [refunds.as_str()], "{answer}");

    // The refund sentence shares "approve" and the function words "who",
    // "the", "of" with the question, and nothing it asks for: refused, and
    // the gateway is not called.
    for question in [
        "Who approves the purchase of new laptops?",
        "What is the boiling point of mercury?",
    ] {
        let answer = ask(&app, &admin, question).await;
        assert_eq!(answer["not_in_documents"], true, "{question}: {answer}");
        assert_eq!(answer["source"], "not_in_documents", "{answer}");
        assert!(cited(&answer).is_empty(), "{answer}");
        assert!(
            answer["call_ids"].as_array().unwrap().is_empty(),
            "no model call for nothing: {answer}"
        );
    }

    // Indonesian: stop words and stems of Indonesian ("mengajukan" meets
    // "diajukan", "permohonan" is read as "mohon").
    let answer = ask(
        &app,
        &admin,
        "Berapa hari cuti tahunan yang didapat karyawan?",
    )
    .await;
    assert_eq!(answer["source"], "extractive", "{answer}");
    assert!(
        answer["sentences"][0]["text"]
            .as_str()
            .unwrap()
            .contains("12 hari kerja"),
        "{answer}"
    );
    assert_eq!(cited(&answer), [cuti.as_str()], "{answer}");
    let answer = ask(&app, &admin, "Bagaimana cara mengajukan permohonan cuti?").await;
    assert!(
        answer["text"]
            .as_str()
            .unwrap()
            .contains("diajukan melalui aplikasi HR"),
        "{answer}"
    );
    assert_eq!(cited(&answer), [cuti.as_str()], "{answer}");
    let answer = ask(
        &app,
        &admin,
        "Berapa tunjangan kesehatan untuk keluarga karyawan?",
    )
    .await;
    assert_eq!(answer["not_in_documents"], true, "{answer}");
}
