//! The knowledge base's SQL side (V28 and sql/api/kb.sql) below
//! HTTP: documents and their visibility under RLS (documents, chunks,
//! statistics and kb_search), replace and delete, resumable ingestion,
//! BM25 against a hand computation, Reciprocal Rank Fusion, k rows
//! guaranteed, and errors naming their field. Embeddings are built here:
//! 384 numbers, one axis per topic.

use bizos_bff::auth::Caller;
use bizos_tests::{code, field, rpc, TestDb};
use serde_json::{json, Value};
use sqlx::Row;
use uuid::Uuid;

const DIMS: usize = 384;

/// A unit-ish embedding pointing at `axis` (with a little of every other
/// dimension, so no two are orthogonal).
fn emb(axis: usize) -> Vec<f32> {
    (0..DIMS)
        .map(|d| if d == axis { 1.0 } else { 0.01 })
        .collect()
}

/// Uploads a file to bucket knowledge as `who` (intent + object, as the BFF).
async fn upload(db: &TestDb, who: &Caller, file_name: &str, content_type: &str) -> Uuid {
    bizos_tests::upload_record(db, who, "knowledge", file_name, content_type).await
}

/// Uploads and registers a document; returns its id.
async fn register(db: &TestDb, who: &Caller, mut payload: Value) -> Uuid {
    let object = upload(db, who, "doc.txt", "text/plain").await;
    payload["object_id"] = json!(object);
    let doc = rpc(db, who, "select kb_document_register($1)", &[payload])
        .await
        .unwrap();
    assert_eq!(doc["status"], "queued");
    doc["document_id"].as_str().unwrap().parse().unwrap()
}

/// A chunk as the kb.ingest handler sends it.
fn chunk(no: usize, text: &str, axis: usize) -> Value {
    json!({"chunk_no": no, "text": text, "heading_path": "", "page_start": 1, "page_end": 1,
           "token_count": text.split_whitespace().count(), "embedding": emb(axis)})
}

/// start, progress, chunks, finish: one ingestion, each step committed;
/// chunk i is `texts[i]` with an embedding on axis `texts[i].1`.
async fn ingest(db: &TestDb, who: &Caller, doc: Uuid, version: i32, texts: &[(&str, usize)]) {
    let chunks = texts
        .iter()
        .enumerate()
        .map(|(i, (t, a))| chunk(i, t, *a))
        .collect();
    ingest_chunks(db, who, doc, version, chunks).await;
}

async fn ingest_chunks(db: &TestDb, who: &Caller, doc: Uuid, version: i32, chunks: Vec<Value>) {
    let started = call(db, who, "select kb_ingest_start($1, $2)", doc, version)
        .await
        .unwrap();
    assert_eq!(started["status"], "extracting");
    let mut tx = db.as_user(who).await;
    sqlx::query("select kb_ingest_progress($1, $2, 'embedding', $3)")
        .bind(doc)
        .bind(version)
        .bind(chunks.len() as i32)
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("select kb_ingest_chunks($1, $2, $3)")
        .bind(doc)
        .bind(version)
        .bind(Value::Array(chunks))
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let done = call(db, who, "select kb_ingest_finish($1, $2)", doc, version)
        .await
        .unwrap();
    assert_eq!(done["status"], "ready", "{done}");
}

/// A (document, version) call of the ingestion API, committed.
async fn call(
    db: &TestDb,
    who: &Caller,
    sql: &str,
    doc: Uuid,
    version: i32,
) -> Result<Value, sqlx::Error> {
    let mut tx = db.as_user(who).await;
    let out = sqlx::query_scalar::<_, Value>(sql)
        .bind(doc)
        .bind(version)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(out)
}

#[derive(Debug, Clone)]
struct Hit {
    document_id: Uuid,
    chunk_no: i32,
    text: String,
    score: f64,
    lexical_rank: Option<i32>,
    vector_rank: Option<i32>,
    lexical_score: Option<f64>,
}

/// kb_search as `who`; `axis` None: no query embedding.
async fn search(
    db: &TestDb,
    who: &Caller,
    query: &str,
    axis: Option<usize>,
    k: i32,
    weights: (f64, f64),
) -> Result<Vec<Hit>, sqlx::Error> {
    let mut tx = db.as_user(who).await;
    let rows = sqlx::query(
        "select document_id, chunk_no, text, score, lexical_rank, vector_rank, lexical_score
           from kb_search($1, $2::real[]::bizos.vector, $3, $4, $5)",
    )
    .bind(query)
    .bind(axis.map(emb))
    .bind(k)
    .bind(weights.0)
    .bind(weights.1)
    .fetch_all(&mut *tx)
    .await?;
    tx.rollback().await.ok();
    Ok(rows
        .iter()
        .map(|r| Hit {
            document_id: r.get(0),
            chunk_no: r.get(1),
            text: r.get(2),
            score: r.get(3),
            lexical_rank: r.get(4),
            vector_rank: r.get(5),
            lexical_score: r.get(6),
        })
        .collect())
}

/// Rows of `sql` (a count) as `who`, under RLS.
async fn count_as(db: &TestDb, who: &Caller, sql: &str, doc: Uuid) -> i64 {
    let mut tx = db.as_user(who).await;
    let n: i64 = sqlx::query_scalar(sql)
        .bind(doc)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.ok();
    n
}

/// A profile with a given role and department.
async fn user_in(db: &TestDb, tenant: Uuid, role: &str, dept: Option<&str>) -> Caller {
    let who = db.create_user(tenant, role).await;
    sqlx::query("update profiles set dept_code = $1 where user_id = $2")
        .bind(dept)
        .bind(who.user_id)
        .execute(&db.owner)
        .await
        .unwrap();
    who
}

async fn owner_count(db: &TestDb, sql: &str, doc: Uuid) -> i64 {
    sqlx::query_scalar(sql)
        .bind(doc)
        .fetch_one(&db.owner)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_department_document_is_invisible_to_other_departments_and_tenants() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("kb-a").await;
    let other_tenant = db.create_tenant("kb-b").await;
    let ops = user_in(&db, tenant, "ops", Some("OPS")).await;
    let ops_colleague = user_in(&db, tenant, "ops", Some("OPS")).await;
    let warehouse = user_in(&db, tenant, "ops", Some("WAREHOUSE")).await;
    let sales = user_in(&db, tenant, "salesperson", Some("SALES")).await;
    let director = db.create_user(tenant, "director").await;
    let stranger = db.create_user(other_tenant, "super_admin").await;

    let secret = register(
        &db,
        &ops,
        json!({"title": "Forklift SOP", "visibility": "department", "dept_code": "OPS"}),
    )
    .await;
    ingest(
        &db,
        &ops,
        secret,
        1,
        &[
            ("forklift battery charging procedure", 1),
            ("forklift zebra inspection", 2),
        ],
    )
    .await;
    let public = register(&db, &ops, json!({"title": "Holidays"})).await;
    ingest(&db, &ops, public, 1, &[("public holidays calendar", 3)]).await;
    // The fixtures exist.
    assert_eq!(
        owner_count(
            &db,
            "select count(*) from kb_chunks where document_id = $1",
            secret
        )
        .await,
        2
    );

    let docs = "select count(*) from kb_documents where document_id = $1";
    let chunks = "select count(*) from kb_chunks where document_id = $1";
    let terms = "select count(*) from kb_terms where term = 'zebra' and $1::uuid is not null";
    for (who, sees) in [
        (&ops, true),
        (&ops_colleague, true),
        (&director, true),
        (&warehouse, false),
        (&sales, false),
        (&stranger, false),
    ] {
        let n = if sees { 1 } else { 0 };
        assert_eq!(count_as(&db, who, docs, secret).await, n, "documents");
        assert_eq!(count_as(&db, who, chunks, secret).await, 2 * n, "chunks");
        assert_eq!(
            count_as(&db, who, terms, secret).await,
            n,
            "term statistics"
        );
        let got = rpc(
            &db,
            who,
            "select kb_document_get(($1 #>> '{}')::uuid)",
            &[json!(secret)],
        )
        .await;
        match got {
            Ok(d) => assert!(sees, "{d}"),
            Err(e) => {
                assert!(!sees);
                assert_eq!(
                    (code(&e).as_str(), field(&e).as_deref()),
                    ("P0002", Some("document_id"))
                );
            }
        }
        let list = rpc(&db, who, "select kb_document_list()", &[])
            .await
            .unwrap();
        let listed = list
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["document_id"] == json!(secret));
        assert_eq!(listed, sees, "list");
        // Both branches, the words and the vector of the hidden chunks.
        let hits = search(&db, who, "forklift zebra battery", Some(1), 10, (1.0, 1.0))
            .await
            .unwrap();
        assert_eq!(
            hits.iter().any(|h| h.document_id == secret),
            sees,
            "search: {hits:?}"
        );
        let lexical = search(&db, who, "forklift zebra", None, 10, (1.0, 0.0))
            .await
            .unwrap();
        assert_eq!(lexical.len(), 2 * n as usize, "BM25 alone: {lexical:?}");
        if who.tenant_id == tenant {
            // The tenant-wide document is everyone's.
            assert!(hits.iter().any(|h| h.document_id == public), "{hits:?}");
        } else {
            assert!(hits.is_empty(), "another tenant's chunks: {hits:?}");
        }
    }
}

#[tokio::test]
async fn a_roles_document_is_read_by_those_roles_and_managed_by_its_owner() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("kb-r").await;
    let finance = db.create_user(tenant, "finance").await;
    let finance2 = db.create_user(tenant, "finance").await;
    let manager = db.create_user(tenant, "sales_manager").await;
    let sales = db.create_user(tenant, "salesperson").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let doc = register(
        &db,
        &finance,
        json!({"title": "Price list", "visibility": "roles", "app_roles": ["sales_manager", "Finance"]}),
    )
    .await;
    ingest(&db, &finance, doc, 1, &[("price list 2025 tariff", 4)]).await;
    let roles: Value = rpc(
        &db,
        &finance,
        "select kb_document_get(($1 #>> '{}')::uuid)",
        &[json!(doc)],
    )
    .await
    .unwrap();
    assert_eq!(roles["app_roles"], json!(["finance", "sales_manager"]));
    let chunks = "select count(*) from kb_chunks where document_id = $1";
    assert_eq!(count_as(&db, &finance2, chunks, doc).await, 1);
    assert_eq!(count_as(&db, &manager, chunks, doc).await, 1);
    assert_eq!(count_as(&db, &sales, chunks, doc).await, 0);
    assert!(search(&db, &sales, "tariff", Some(4), 5, (1.0, 1.0))
        .await
        .unwrap()
        .is_empty());

    // Readers who are not its owner do not manage it; salespeople manage nothing.
    let err = rpc(
        &db,
        &finance2,
        "select kb_document_delete(($1 #>> '{}')::uuid)",
        &[json!(doc)],
    )
    .await
    .unwrap_err();
    assert_eq!(code(&err), "42501");
    let err = rpc(
        &db,
        &sales,
        "select kb_document_register($1)",
        &[json!({"title": "x"})],
    )
    .await
    .unwrap_err();
    assert_eq!(code(&err), "42501");
    // A visibility change reaches the chunks (and their statistics).
    rpc(
        &db,
        &admin,
        "select kb_document_update(($1 #>> '{}')::uuid, $2)",
        &[json!(doc), json!({"visibility": "tenant"})],
    )
    .await
    .unwrap();
    assert_eq!(count_as(&db, &sales, chunks, doc).await, 1);
    assert_eq!(
        search(&db, &sales, "tariff", None, 5, (1.0, 0.0))
            .await
            .unwrap()
            .len(),
        1
    );
    let classes: i64 = sqlx::query_scalar("select count(*) from kb_stats where tenant_id = $1")
        .bind(tenant)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(classes, 1, "the statistics moved to the new class");
}

#[tokio::test]
async fn replace_keeps_the_old_version_searchable_until_finish_then_swaps() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("kb-x").await;
    let ops = user_in(&db, tenant, "ops", Some("OPS")).await;
    let reader = db.create_user(tenant, "salesperson").await;
    let doc = register(&db, &ops, json!({"title": "Manual"})).await;
    ingest(&db, &ops, doc, 1, &[("alpha one", 5), ("alpha two", 6)]).await;
    let v1_object: Uuid =
        sqlx::query_scalar("select object_id from kb_documents where document_id = $1")
            .bind(doc)
            .fetch_one(&db.owner)
            .await
            .unwrap();

    let object = upload(&db, &ops, "manual-v2.txt", "text/plain").await;
    let replaced = rpc(
        &db,
        &ops,
        "select kb_document_replace(($1 #>> '{}')::uuid, $2)",
        &[json!(doc), json!({"object_id": object})],
    )
    .await
    .unwrap();
    assert_eq!(
        (replaced["version"].as_i64(), replaced["status"].as_str()),
        (Some(2), Some("queued"))
    );
    let jobs: i64 = sqlx::query_scalar(
        "select count(*) from jobs where kind = 'kb.ingest' and payload ->> 'document_id' = $1::text",
    )
    .bind(doc)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(jobs, 2, "one job per version");
    // The old version's job is stale now.
    let err = call(&db, &ops, "select kb_ingest_start($1, $2)", doc, 1)
        .await
        .unwrap_err();
    assert_eq!(
        (code(&err).as_str(), field(&err).as_deref()),
        ("P0002", Some("version"))
    );

    // v2 half-way: stored but not searchable; v1 still is.
    call(&db, &ops, "select kb_ingest_start($1, $2)", doc, 2)
        .await
        .unwrap();
    let mut tx = db.as_user(&ops).await;
    sqlx::query("select kb_ingest_chunks($1, 2, $2)")
        .bind(doc)
        .bind(json!([
            chunk(0, "bravo one", 7),
            chunk(1, "bravo two", 8),
            chunk(2, "bravo three", 9)
        ]))
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let old = search(&db, &reader, "alpha", None, 10, (1.0, 0.0))
        .await
        .unwrap();
    assert_eq!(old.len(), 2, "v1 is searchable until v2 is finished");
    assert!(search(&db, &reader, "bravo", Some(7), 10, (1.0, 1.0))
        .await
        .unwrap()
        .iter()
        .all(|h| h.text.starts_with("alpha")));

    call(&db, &ops, "select kb_ingest_finish($1, $2)", doc, 2)
        .await
        .unwrap();
    assert!(search(&db, &reader, "alpha", None, 10, (1.0, 0.0))
        .await
        .unwrap()
        .is_empty());
    let new = search(&db, &reader, "bravo", Some(7), 10, (1.0, 1.0))
        .await
        .unwrap();
    assert_eq!(new.len(), 3);
    let versions: Vec<i32> =
        sqlx::query_scalar("select distinct version from kb_chunks where document_id = $1")
            .bind(doc)
            .fetch_all(&db.owner)
            .await
            .unwrap();
    assert_eq!(versions, vec![2], "no stale chunk");
    for (sql, want) in [
        (
            "select count(*) from kb_chunk_staging where document_id = $1",
            0,
        ),
        (
            "select count(*) from kb_terms where term = 'alpha' and $1::uuid is not null",
            0,
        ),
        (
            "select coalesce(sum(chunks), 0)::bigint from kb_stats where $1::uuid is not null",
            3,
        ),
        ("select count(*) from objects where object_id = $1", 0),
        (
            "select count(*) from upload_intents where object_id = $1 and owner_lock is null",
            1,
        ),
    ] {
        let arg = if sql.contains("objects") || sql.contains("intents") {
            v1_object
        } else {
            doc
        };
        assert_eq!(owner_count(&db, sql, arg).await, want, "{sql}");
    }
    // A rerun of the finished version's job: nothing to do.
    let again = call(&db, &ops, "select kb_ingest_start($1, $2)", doc, 2)
        .await
        .unwrap();
    assert_eq!(again["status"], "ready");
}

#[tokio::test]
async fn delete_leaves_nothing_behind() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("kb-d").await;
    let admin = db.create_user(tenant, "super_admin").await;
    let ops = user_in(&db, tenant, "ops", Some("OPS")).await;
    let doc = register(&db, &ops, json!({"title": "Old SOP"})).await;
    ingest(
        &db,
        &ops,
        doc,
        1,
        &[("obsolete routing rule", 10), ("obsolete carrier list", 11)],
    )
    .await;
    let object: Uuid =
        sqlx::query_scalar("select object_id from kb_documents where document_id = $1")
            .bind(doc)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(
        owner_count(
            &db,
            "select count(*) from kb_chunks where document_id = $1",
            doc
        )
        .await,
        2
    );
    // A super admin deletes anyone's document.
    let out = rpc(
        &db,
        &admin,
        "select kb_document_delete(($1 #>> '{}')::uuid)",
        &[json!(doc)],
    )
    .await
    .unwrap();
    assert_eq!(out["object_keys"].as_array().unwrap().len(), 1, "{out}");
    for sql in [
        "select count(*) from kb_documents where document_id = $1",
        "select count(*) from kb_chunks where document_id = $1",
        "select count(*) from kb_chunk_staging where document_id = $1",
        "select count(*) from kb_terms where $1::uuid is not null",
        "select count(*) from kb_stats where $1::uuid is not null",
    ] {
        assert_eq!(owner_count(&db, sql, doc).await, 0, "{sql}");
    }
    assert_eq!(
        owner_count(
            &db,
            "select count(*) from objects where object_id = $1",
            object
        )
        .await,
        0
    );
    assert_eq!(
        owner_count(
            &db,
            "select count(*) from upload_intents where object_id = $1",
            object
        )
        .await,
        1,
        "the bytes are left to storage.sweep"
    );
    let err = rpc(
        &db,
        &admin,
        "select kb_document_get(($1 #>> '{}')::uuid)",
        &[json!(doc)],
    )
    .await
    .unwrap_err();
    assert_eq!(code(&err), "P0002");
}

#[tokio::test]
async fn an_interrupted_ingestion_resumes_after_the_chunks_already_stored() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("kb-c").await;
    let ops = user_in(&db, tenant, "ops", Some("OPS")).await;
    let doc = register(&db, &ops, json!({"title": "Long"})).await;
    call(&db, &ops, "select kb_ingest_start($1, $2)", doc, 1)
        .await
        .unwrap();
    let mut tx = db.as_user(&ops).await;
    sqlx::query("select kb_ingest_progress($1, 1, 'embedding', 4)")
        .bind(doc)
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("select kb_ingest_chunks($1, 1, $2)")
        .bind(doc)
        .bind(json!([chunk(0, "c zero", 1), chunk(1, "c one", 2)]))
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // Unfinished: finish refuses, naming what is missing.
    let err = call(&db, &ops, "select kb_ingest_finish($1, $2)", doc, 1)
        .await
        .unwrap_err();
    assert_eq!(
        (code(&err).as_str(), field(&err).as_deref()),
        ("P0001", Some("chunks"))
    );
    // The worker died; the job runs again.
    let again = call(&db, &ops, "select kb_ingest_start($1, $2)", doc, 1)
        .await
        .unwrap();
    assert_eq!(
        (again["resume_from"].as_i64(), again["chunks_done"].as_i64()),
        (Some(2), Some(2))
    );
    let mut tx = db.as_user(&ops).await;
    let out: Value = sqlx::query_scalar("select kb_ingest_chunks($1, 1, $2)")
        .bind(doc)
        .bind(json!([
            chunk(1, "c one", 2),
            chunk(2, "c two", 3),
            chunk(3, "c three", 4)
        ]))
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        (
            out["written"].as_i64(),
            out["skipped"].as_i64(),
            out["chunks_done"].as_i64()
        ),
        (Some(2), Some(1), Some(4))
    );
    let done = call(&db, &ops, "select kb_ingest_finish($1, $2)", doc, 1)
        .await
        .unwrap();
    assert_eq!(
        (done["status"].as_str(), done["chunks_done"].as_i64()),
        (Some("ready"), Some(4))
    );
    assert_eq!(
        owner_count(
            &db,
            "select count(*) from kb_chunks where document_id = $1",
            doc
        )
        .await,
        4
    );

    // A failure removes what the version stored and says why.
    let object = upload(&db, &ops, "scan.pdf", "application/pdf").await;
    rpc(
        &db,
        &ops,
        "select kb_document_replace(($1 #>> '{}')::uuid, $2)",
        &[json!(doc), json!({"object_id": object})],
    )
    .await
    .unwrap();
    call(&db, &ops, "select kb_ingest_start($1, $2)", doc, 2)
        .await
        .unwrap();
    let mut tx = db.as_user(&ops).await;
    sqlx::query("select kb_ingest_chunks($1, 2, $2)")
        .bind(doc)
        .bind(json!([chunk(0, "partial", 1)]))
        .execute(&mut *tx)
        .await
        .unwrap();
    let failed: Value =
        sqlx::query_scalar("select kb_ingest_fail($1, 2, 'the PDF has no text layer')")
            .bind(doc)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        (failed["status"].as_str(), failed["failure_reason"].as_str()),
        (Some("failed"), Some("the PDF has no text layer"))
    );
    assert_eq!(
        owner_count(
            &db,
            "select count(*) from kb_chunk_staging where document_id = $1",
            doc
        )
        .await,
        0
    );
    assert_eq!(
        owner_count(
            &db,
            "select count(*) from kb_chunks where document_id = $1 and version = 1",
            doc
        )
        .await,
        4,
        "the ready version stays searchable"
    );
}

/// BM25 by hand on three chunks (no heading, so the tokens are the words):
///   c0 "apple banana apple"         len 3, tf(apple) = 2
///   c1 "banana cherry"              len 2, tf(cherry) = 1
///   c2 "cherry cherry cherry date"  len 4, tf(cherry) = 3
/// N = 3, avglen = 9 / 3 = 3; df(apple) = 1, df(cherry) = 2.
/// idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5)):
///   idf(apple)  = ln(1 + 2.5 / 1.5) = ln(8/3)
///   idf(cherry) = ln(1 + 1.5 / 2.5) = ln(1.6)
/// score = idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avglen)), k1 = 1.2, b = 0.75:
///   c0 = ln(8/3) * 2 * 2.2 / (2 + 1.2 * (0.25 + 0.75 * 3/3)) = ln(8/3) * 4.4 / 3.2
///   c1 = ln(1.6) * 1 * 2.2 / (1 + 1.2 * (0.25 + 0.75 * 2/3)) = ln(1.6) * 2.2 / 1.9
///   c2 = ln(1.6) * 3 * 2.2 / (3 + 1.2 * (0.25 + 0.75 * 4/3)) = ln(1.6) * 6.6 / 4.5
#[tokio::test]
async fn bm25_scores_equal_the_hand_computation_and_rrf_fuses_the_ranks() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("kb-m").await;
    let ops = user_in(&db, tenant, "ops", Some("OPS")).await;
    let doc = register(&db, &ops, json!({"title": "Fruit"})).await;
    // Embeddings: c1 on axis 21, c0 on axis 20 with half of 21, c2 on axis
    // 22 with a fifth of 21: a query on axis 21 ranks c1, c0, c2.
    let mix = |main: usize, part: f32| {
        let mut v = emb(main);
        v[21] = part;
        v
    };
    let mut chunks = vec![
        chunk(0, "apple banana apple", 20),
        chunk(1, "banana cherry", 21),
        chunk(2, "cherry cherry cherry date", 22),
    ];
    chunks[0]["embedding"] = json!(mix(20, 0.5));
    chunks[2]["embedding"] = json!(mix(22, 0.2));
    ingest_chunks(&db, &ops, doc, 1, chunks).await;
    let c0 = (8.0f64 / 3.0).ln() * 4.4 / 3.2;
    let c1 = 1.6f64.ln() * 2.2 / 1.9;
    let c2 = 1.6f64.ln() * 6.6 / 4.5;
    let hits = search(&db, &ops, "apple cherry", None, 10, (1.0, 0.0))
        .await
        .unwrap();
    let got: Vec<(i32, f64)> = hits
        .iter()
        .map(|h| (h.chunk_no, h.lexical_score.unwrap()))
        .collect();
    assert_eq!(got.len(), 3, "{got:?}");
    // c0 (1.349) > c2 (0.689) > c1 (0.544): ranked by score.
    let want = [(0, c0), (2, c2), (1, c1)];
    for ((no, score), (want_no, want_score)) in got.iter().zip(&want) {
        assert_eq!(no, want_no, "{got:?} vs {want:?}");
        assert!(
            (score - want_score).abs() < 1e-9,
            "chunk {no}: {score} vs {want_score}"
        );
    }
    // A query word twice counts twice (qtf), as in Lucene's and rank_bm25's sums.
    let twice = search(&db, &ops, "apple apple", None, 10, (1.0, 0.0))
        .await
        .unwrap();
    assert!((twice[0].lexical_score.unwrap() - 2.0 * c0).abs() < 1e-9);

    // RRF: 1/(60 + lexical rank) + 1/(60 + vector rank), best first.
    // Lexical ranks c0, c2, c1; vector ranks c1, c0, c2:
    //   c0 = 1/61 + 1/62 > c1 = 1/63 + 1/61 > c2 = 1/62 + 1/63.
    let fused = search(&db, &ops, "apple cherry", Some(21), 10, (1.0, 1.0))
        .await
        .unwrap();
    let ranks: Vec<(i32, Option<i32>, Option<i32>)> = fused
        .iter()
        .map(|h| (h.chunk_no, h.lexical_rank, h.vector_rank))
        .collect();
    assert_eq!(
        ranks,
        vec![
            (0, Some(1), Some(2)),
            (1, Some(3), Some(1)),
            (2, Some(2), Some(3))
        ]
    );
    for h in &fused {
        let want = h.lexical_rank.map_or(0.0, |r| 1.0 / (60.0 + r as f64))
            + h.vector_rank.map_or(0.0, |r| 1.0 / (60.0 + r as f64));
        assert!((h.score - want).abs() < 1e-12, "{h:?}");
    }
    // Weights: the vector branch alone, and a heavier vector weight.
    let vector_only = search(&db, &ops, "apple cherry", Some(21), 10, (0.0, 1.0))
        .await
        .unwrap();
    assert!(vector_only.iter().all(|h| h.lexical_rank.is_none()));
    assert_eq!(vector_only[0].chunk_no, 1);
    // c1 = 1/63 + 5/61 beats c0 = 1/61 + 5/62 when the vector weighs 5.
    let heavy = search(&db, &ops, "apple cherry", Some(21), 10, (1.0, 5.0))
        .await
        .unwrap();
    assert_eq!(heavy[0].chunk_no, 1, "{heavy:?}");
}

/// The lexical candidates of kb_search (n of them) are the best n by BM25
/// of all matching chunks, whether kb_lexical_scores leaves its lightest
/// terms out of the match (MaxScore) or scores every matching chunk: on
/// 200 chunks of a Zipf-like vocabulary (a few words in nearly every
/// chunk, as "the" and "of" are), every query's best n at candidates = n
/// equal the first n of a search with candidates = 1000, which can only
/// score every matching chunk (fewer than 1000 hold a heavy term).
#[tokio::test]
async fn leaving_the_lightest_terms_out_of_the_match_changes_no_ranking() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("kb-maxscore").await;
    let ops = user_in(&db, tenant, "ops", Some("OPS")).await;
    let doc = register(&db, &ops, json!({"title": "Zipf"})).await;
    // A deterministic generator (LCG) and word j drawn with weight 1/(j+1).
    let mut seed: u64 = 0x5eed;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as f64 / (1u64 << 31) as f64
    };
    let vocab: Vec<String> = (0..30).map(|j| format!("w{j}")).collect();
    let total: f64 = (0..30).map(|j| 1.0 / (j as f64 + 1.0)).sum();
    let draw = move |u: f64| {
        let mut acc = 0.0;
        for j in 0..30 {
            acc += 1.0 / (j as f64 + 1.0) / total;
            if u < acc {
                return j;
            }
        }
        29
    };
    let mut chunks = Vec::new();
    for no in 0..200 {
        let len = 3 + (next() * 10.0) as usize;
        let words: Vec<&str> = (0..len).map(|_| vocab[draw(next())].as_str()).collect();
        chunks.push(chunk(no, &words.join(" "), no % 50));
    }
    ingest_chunks(&db, &ops, doc, 1, chunks).await;

    let lexical = async |query: &str, n: i32| -> Vec<(i32, f64)> {
        let mut tx = db.as_user(&ops).await;
        let rows: Vec<(i32, f64)> = sqlx::query_as(
            "select chunk_no, lexical_score from kb_search($1, null, $2, 1, 0, 60, $2)
              order by lexical_rank",
        )
        .bind(query)
        .bind(n)
        .fetch_all(&mut *tx)
        .await
        .unwrap();
        tx.rollback().await.ok();
        rows
    };
    let mut compared = 0;
    for q in 0..40 {
        // A frequent word or two and one or two rarer ones.
        let words: Vec<&str> = (0..2 + q % 3)
            .map(|i| vocab[if i == 0 { q % 3 } else { draw(next()) }].as_str())
            .collect();
        let query = words.join(" ");
        let all = lexical(&query, 1000).await;
        assert!(!all.is_empty(), "{query}: no chunk matches");
        for n in [1, 2, 3, 5, 10] {
            let best = lexical(&query, n).await;
            let want = &all[..all.len().min(n as usize)];
            assert_eq!(
                best.len(),
                want.len(),
                "{query}, n = {n}: {best:?} vs {want:?}"
            );
            for (got, want) in best.iter().zip(want) {
                assert_eq!(got.0, want.0, "{query}, n = {n}: {best:?} vs {want:?}");
                assert!(
                    (got.1 - want.1).abs() < 1e-12,
                    "{query}, n = {n}: {got:?} vs {want:?}"
                );
            }
            compared += 1;
        }
    }
    assert_eq!(compared, 200);

    // The bound decides: 12 chunks, "rare" in chunk 0 only (idf 2.16),
    // "b" and "c" in 11 each (idf 0.123; b, the first by name, is left out
    // of the match: 2.2 * 0.123 <= 0.2 * 2.16). Chunk 1 is "b b b b" (b
    // alone, short: 0.243); chunks 2-11 hold b and c once in 30 words
    // (0.229 each). The best 2 holding "rare" or "c" are chunk 0 and a
    // chunk of 0.229, under the bound of b (0.27): chunk 1, which only b
    // matches, must still come second.
    let tenant = db.create_tenant("kb-maxscore-bound").await;
    let ops = user_in(&db, tenant, "ops", Some("OPS")).await;
    let doc = register(&db, &ops, json!({"title": "Bound"})).await;
    let filler = |i: usize| {
        (0..28)
            .map(|j| format!("f{i}x{j}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut chunks = vec![chunk(0, "rare c x", 0), chunk(1, "b b b b", 1)];
    for no in 2..12 {
        chunks.push(chunk(no, &format!("b c {}", filler(no)), no));
    }
    ingest_chunks(&db, &ops, doc, 1, chunks).await;
    let mut tx = db.as_user(&ops).await;
    let best: Vec<i32> = sqlx::query_scalar(
        "select chunk_no from kb_search('b c rare', null, 2, 1, 0, 60, 2) order by lexical_rank",
    )
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    tx.rollback().await.ok();
    assert_eq!(
        best,
        [0, 1],
        "chunk 1 (b alone) outscores every chunk of b and c"
    );
}

#[tokio::test]
async fn k_results_whenever_k_chunks_are_visible_even_through_the_index_and_rls() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("kb-k").await;
    let ops = user_in(&db, tenant, "ops", Some("OPS")).await;
    let sales = user_in(&db, tenant, "salesperson", Some("SALES")).await;
    let hidden = register(
        &db,
        &ops,
        json!({"title": "Ops only", "visibility": "department", "dept_code": "OPS"}),
    )
    .await;
    let texts: Vec<String> = (0..40).map(|i| format!("hidden note {i}")).collect();
    let chunks: Vec<(&str, usize)> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| (t.as_str(), i))
        .collect();
    ingest(&db, &ops, hidden, 1, &chunks).await;
    let open = register(&db, &ops, json!({"title": "Everyone"})).await;
    let texts: Vec<String> = (0..12).map(|i| format!("open note {i}")).collect();
    let chunks: Vec<(&str, usize)> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| (t.as_str(), 100 + i))
        .collect();
    ingest(&db, &ops, open, 1, &chunks).await;
    sqlx::query("reindex index kb_chunks_embedding_idx")
        .execute(&db.owner)
        .await
        .unwrap();
    sqlx::query("analyze kb_chunks")
        .execute(&db.owner)
        .await
        .unwrap();

    for index in [false, true] {
        let mut tx = db.as_user(&sales).await;
        if index {
            // The ivf scan, one list at a time, under RLS that drops the
            // 40 hidden chunks nearest to the query.
            sqlx::query("select set_config('enable_seqscan', 'off', true), set_config('enable_sort', 'off', true),
                                set_config('bizos.ivf_probes', '1', true)")
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        let rows: Vec<(Uuid, Option<i32>)> = sqlx::query_as(
            "select document_id, vector_rank from kb_search('nothing matches this', $1::real[]::bizos.vector, 12)",
        )
        .bind(emb(3))
        .fetch_all(&mut *tx)
        .await
        .unwrap();
        tx.rollback().await.ok();
        assert_eq!(rows.len(), 12, "index {index}: {rows:?}");
        assert!(rows.iter().all(|(d, r)| *d == open && r.is_some()));
    }
    // The owner's department sees all 52 and gets k of them.
    let hits = search(&db, &ops, "note", Some(3), 50, (1.0, 1.0))
        .await
        .unwrap();
    assert_eq!(hits.len(), 50);
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("kb-e").await;
    let ops = user_in(&db, tenant, "ops", Some("OPS")).await;
    let object = upload(&db, &ops, "a.txt", "text/plain").await;
    let other_bucket = {
        let mut tx = db.as_user(&ops).await;
        let intent: Value = sqlx::query_scalar("select upload_begin('ticket-attachments')")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        let id: Uuid = intent["object_id"].as_str().unwrap().parse().unwrap();
        sqlx::query("select object_create($1)")
            .bind(
                json!({"object_id": id, "bucket": "ticket-attachments", "file_name": "b.txt",
                         "content_type": "text/plain", "size_bytes": 1, "sha256": "ab".repeat(32)}),
            )
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        id
    };
    for (payload, want) in [
        (json!({"object_id": object}), "title"),
        (
            json!({"object_id": object, "title": "T", "visibility": "public"}),
            "visibility",
        ),
        (
            json!({"object_id": object, "title": "T", "visibility": "department"}),
            "dept_code",
        ),
        (
            json!({"object_id": object, "title": "T", "dept_code": "OPS"}),
            "dept_code",
        ),
        (
            json!({"object_id": object, "title": "T", "visibility": "roles", "app_roles": ["ops", "pilot"]}),
            "app_roles[1]",
        ),
        (
            json!({"object_id": object, "title": "T", "visibility": "roles"}),
            "app_roles",
        ),
        (
            json!({"object_id": object, "title": "T", "format": "pdf"}),
            "format",
        ),
        (
            json!({"object_id": other_bucket, "title": "T"}),
            "object_id",
        ),
        (json!({"title": "T"}), "object_id"),
        (
            json!({"object_id": object, "title": "T", "colour": "red"}),
            "colour",
        ),
    ] {
        let err = rpc(
            &db,
            &ops,
            "select kb_document_register($1)",
            std::slice::from_ref(&payload),
        )
        .await
        .unwrap_err();
        assert_eq!(field(&err).as_deref(), Some(want), "{payload}: {err}");
    }
    let doc = register(&db, &ops, json!({"title": "Fine"})).await;
    call(&db, &ops, "select kb_ingest_start($1, $2)", doc, 1)
        .await
        .unwrap();
    let mut bad_dims = chunk(0, "x", 1);
    bad_dims["embedding"] = json!([1.0, 2.0]);
    let mut zero = chunk(0, "x", 1);
    zero["embedding"] = json!(vec![0.0; DIMS]);
    let mut extra = chunk(0, "x", 1);
    extra["colour"] = json!("red");
    for (chunks, want) in [
        (json!([chunk(0, "ok", 1), bad_dims]), "chunks[1].embedding"),
        (json!([zero]), "chunks[0].embedding"),
        (json!([extra]), "chunks[0].colour"),
        (
            json!([{"chunk_no": -1, "text": "x", "token_count": 1, "embedding": emb(1)}]),
            "chunks[0].chunk_no",
        ),
        (
            json!([{"chunk_no": 0, "text": " ", "token_count": 1, "embedding": emb(1)}]),
            "chunks[0].text",
        ),
        (
            json!([{"chunk_no": 0, "text": "x", "token_count": 1, "page_start": 3, "page_end": 2, "embedding": emb(1)}]),
            "chunks[0].page_end",
        ),
        (json!({"chunk_no": 0}), "chunks"),
    ] {
        let mut tx = db.as_user(&ops).await;
        let err = sqlx::query("select kb_ingest_chunks($1, 1, $2)")
            .bind(doc)
            .bind(&chunks)
            .execute(&mut *tx)
            .await
            .unwrap_err();
        assert_eq!(field(&err).as_deref(), Some(want), "{chunks}: {err}");
    }
    for (sql, want) in [
        (
            "select * from kb_search('x', null, 10, 1, 0, 60, null) where $1::real[] is not null",
            None,
        ),
        (
            "select * from kb_search('x', $1::real[]::bizos.vector, 0)",
            Some("k"),
        ),
        (
            "select * from kb_search('x', $1::real[]::bizos.vector, 5, -1)",
            Some("lexical_weight"),
        ),
        (
            "select * from kb_search('x', $1::real[]::bizos.vector, 5, 0, 0)",
            Some("lexical_weight"),
        ),
        (
            "select * from kb_search('x', null, 5, 1, 1)",
            Some("query_embedding"),
        ),
        (
            "select * from kb_search('x', '[1,2,3]'::bizos.vector, 5)",
            Some("query_embedding"),
        ),
        (
            "select * from kb_search('x', $1::real[]::bizos.vector, 5, 1, 1, -1)",
            Some("rrf_k"),
        ),
    ] {
        let mut tx = db.as_user(&ops).await;
        let mut q = sqlx::query(sql);
        if sql.contains("$1") {
            q = q.bind(emb(1));
        }
        let res = q.fetch_all(&mut *tx).await;
        match want {
            None => {
                res.unwrap_or_else(|e| panic!("{sql}: {e}"));
            }
            Some(f) => {
                let err = res.unwrap_err();
                assert_eq!(field(&err).as_deref(), Some(f), "{sql}: {err}");
            }
        }
    }
}

/// kb_sentence_scores as a user: (sentence_no, language, terms, matched,
/// lexical) per sentence.
async fn sentence_scores(
    db: &TestDb,
    who: &Caller,
    question: &str,
    sentences: &[&str],
) -> Result<Vec<(i32, String, i32, i32, f64)>, sqlx::Error> {
    let mut tx = db.as_user(who).await;
    let rows = sqlx::query_as(
        "select sentence_no, language, terms, matched, lexical from kb_sentence_scores($1, $2)",
    )
    .bind(question)
    .bind(sentences)
    .fetch_all(&mut *tx)
    .await;
    tx.rollback().await.unwrap();
    rows
}

#[tokio::test]
async fn sentences_are_scored_by_the_questions_content_words_in_its_language() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("kb-sent").await;
    let ops = user_in(&db, tenant, "ops", Some("OPS")).await;

    // English: "what", "is", "the", "of" are no terms; "approves" and
    // "refunds" meet "approved" and "refund" through the stemmer.
    let got = sentence_scores(
        &db,
        &ops,
        "What is the approval rule of the refunds?",
        &[
            "The history of the company is long.",
            "Refunds are approved by the finance manager.",
            "A refund needs an approval rule of finance.",
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        got.iter()
            .map(|r| (r.0, r.1.as_str(), r.2, r.3))
            .collect::<Vec<_>>(),
        [
            (1, "english", 3, 0),
            (2, "english", 3, 2),
            (3, "english", 3, 3)
        ],
        "{got:?}"
    );
    assert_eq!(got[0].4, 0.0, "only function words shared: {got:?}");
    assert!(got[2].4 > got[1].4 && got[1].4 > 0.0, "{got:?}");

    // BM25 over the sentences given, divided by the question's total idf:
    // N = 3, each term in one sentence of length 2 (mean 2): every term
    // present once gives idf * 2.2 / 2.2, so 1.
    let got = sentence_scores(
        &db,
        &ops,
        "refund approval",
        &["Refund approval.", "Parking garage.", "Canteen menu."],
    )
    .await
    .unwrap();
    assert!((got[0].4 - 1.0).abs() < 1e-9, "{got:?}");
    // One of the two terms, each with the same idf: half.
    let got = sentence_scores(
        &db,
        &ops,
        "refund approval",
        &["Refund policy.", "Parking garage.", "Approval flow."],
    )
    .await
    .unwrap();
    assert!((got[0].4 - 0.5).abs() < 1e-9, "{got:?}");

    // Indonesian: function words ("berapa", "lama", "setelah") are no
    // terms, and the stemmer meets "terkunci" with "dikunci".
    let got = sentence_scores(
        &db,
        &ops,
        "Berapa lama akun terkunci setelah lima kali salah kata sandi?",
        &[
            "Kata sandi wajib diganti setiap 90 hari.",
            "Setelah lima kali salah memasukkan kata sandi, akun dikunci selama 30 menit.",
            "Yang lama dan setelah itu.",
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        got.iter()
            .map(|r| (r.1.as_str(), r.2, r.3))
            .collect::<Vec<_>>(),
        [
            ("indonesian", 7, 2),
            ("indonesian", 7, 7),
            ("indonesian", 7, 0)
        ],
        "{got:?}"
    );
    assert_eq!(got[2].4, 0.0, "{got:?}");

    // A question of function words alone has no terms: nothing scores.
    let got = sentence_scores(&db, &ops, "What is it?", &["It is what it is."])
        .await
        .unwrap();
    assert_eq!((got[0].2, got[0].3, got[0].4), (0, 0, 0.0), "{got:?}");
    assert!(sentence_scores(&db, &ops, "refund", &[])
        .await
        .unwrap()
        .is_empty());

    for (question, sentences, want) in [
        (" ", vec![Some("x")], "question"),
        ("refund", vec![Some("x"), None], "sentences[2]"),
    ] {
        let mut tx = db.as_user(&ops).await;
        let err = sqlx::query("select * from kb_sentence_scores($1, $2)")
            .bind(question)
            .bind(&sentences)
            .fetch_all(&mut *tx)
            .await
            .unwrap_err();
        assert_eq!(field(&err).as_deref(), Some(want), "{question:?}: {err}");
    }
    let mut tx = db.as_user(&ops).await;
    let err = sqlx::query("select * from kb_sentence_scores('refund', null)")
        .fetch_all(&mut *tx)
        .await
        .unwrap_err();
    assert_eq!(field(&err).as_deref(), Some("sentences"), "{err}");
}

/// kb_sentence_scores with contexts: (sentence_no, matched, lexical).
async fn scores_in_context(
    db: &TestDb,
    who: &Caller,
    question: &str,
    sentences: &[&str],
    contexts: &[&str],
    weight: f64,
) -> Result<Vec<(i32, i32, f64)>, sqlx::Error> {
    let mut tx = db.as_user(who).await;
    let rows = sqlx::query_as(
        "select sentence_no, matched, lexical from kb_sentence_scores($1, $2, $3, $4)",
    )
    .bind(question)
    .bind(sentences)
    .bind(contexts)
    .bind(weight)
    .fetch_all(&mut *tx)
    .await;
    tx.rollback().await.unwrap();
    rows
}

#[tokio::test]
async fn a_sentence_is_read_with_its_title_at_a_lower_weight() {
    let db = TestDb::new().await;
    let tenant = db.create_tenant("kb-ctx").await;
    let ops = user_in(&db, tenant, "ops", Some("OPS")).await;
    let sentences = ["Approval.", "Parking.", "Canteen."];
    let contexts = ["Refund.", "Garage.", "Menu."];

    // BM25F: every field of length 1 (its mean), so "approval" in the
    // sentence counts 2.2 / 2.2 = 1 of its idf and "refund" in the title
    // 0.5 * 2.2 / (0.5 + 1.2) of the same idf (each term is in one
    // sentence or its context); the sentence holds one term itself.
    let got = scores_in_context(&db, &ops, "refund approval", &sentences, &contexts, 0.5)
        .await
        .unwrap();
    let half = 0.5 * 2.2 / 1.7;
    assert_eq!((got[0].0, got[0].1), (1, 1), "{got:?}");
    assert!((got[0].2 - (1.0 + half) / 2.0).abs() < 1e-9, "{got:?}");
    assert_eq!((got[1].2, got[2].2), (0.0, 0.0), "{got:?}");
    // The same word in the sentence itself counts more.
    let own = scores_in_context(
        &db,
        &ops,
        "refund approval",
        &["Refund approval.", "Parking garage.", "Canteen menu."],
        &["", "", ""],
        0.5,
    )
    .await
    .unwrap();
    assert!(own[0].2 > got[0].2, "{own:?} {got:?}");
    // A title alone, with none of the words in the sentence: matched 0.
    let title_only = scores_in_context(&db, &ops, "refund", &sentences, &contexts, 0.5)
        .await
        .unwrap();
    assert_eq!(title_only[0].1, 0, "{title_only:?}");
    assert!(title_only[0].2 > 0.0, "{title_only:?}");

    // Weight 0 is BM25 of the sentences alone, as the two-argument form.
    let alone = scores_in_context(&db, &ops, "refund approval", &sentences, &contexts, 0.0)
        .await
        .unwrap();
    let two = sentence_scores(&db, &ops, "refund approval", &sentences)
        .await
        .unwrap();
    for (a, b) in alone.iter().zip(&two) {
        assert_eq!((a.0, a.1), (b.0, b.3), "{alone:?} {two:?}");
        assert!((a.2 - b.4).abs() < 1e-12, "{alone:?} {two:?}");
    }
    assert!(alone[0].2 < got[0].2, "{alone:?} {got:?}");

    for (contexts, weight, want) in [
        (vec![Some("a")], 0.5, "contexts"),
        (vec![Some("a"), Some("b"), None], 0.5, "contexts[3]"),
        (vec![Some("a"), Some("b"), Some("c")], 1.5, "context_weight"),
    ] {
        let mut tx = db.as_user(&ops).await;
        let err = sqlx::query("select * from kb_sentence_scores($1, $2, $3, $4)")
            .bind("refund")
            .bind(sentences)
            .bind(&contexts)
            .bind(weight)
            .fetch_all(&mut *tx)
            .await
            .unwrap_err();
        assert_eq!(field(&err).as_deref(), Some(want), "{contexts:?}: {err}");
    }
}
