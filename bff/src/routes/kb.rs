//! The internal knowledge base (AI-3): documents, search and answers with
//! citations. The database decides who reads and manages what
//! (sql/api/kb.sql, RLS on documents and chunks); ingestion runs as
//! `kb.ingest` jobs ([`crate::kb::ingest`]).
//!
//! - `POST /api/kb/documents` (multipart: file, title, visibility,
//!   dept_code, app_roles, format) stores the file in bucket `knowledge`,
//!   registers the document and queues its ingestion, in one transaction;
//!   202 with the document (status queued).
//! - `POST /api/kb/documents/{id}/versions` uploads a new version (the old one
//!   stays searchable until the new one is ready); `PATCH` changes title
//!   or visibility; `DELETE` removes the document with its chunks.
//! - `GET /api/kb/documents[/{id}]`: status (queued, extracting,
//!   embedding, ready, failed with the reason) and chunks done of total.
//! - `POST /api/kb/search`: hybrid retrieval (BM25 + vectors, RRF).
//! - `POST /api/kb/ask`: an answer from the documents the caller may read,
//!   every sentence citing its sources, through the LLM gateway (feature
//!   `rag_answer`); extractive without a model; "not in the documents"
//!   when no sentence of the retrieved chunks supports an answer
//!   ([`crate::kb::grounding`]), and then no model is asked.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::openapi::ErrorResponse;
use super::route::{read_route, rpc_route};
use super::shapes::shapes;
use super::write::{registered, upload_fingerprint};
use crate::auth::Caller;
use crate::db::{read_as, read_one};
use crate::error::{ApiError, Result};
use crate::extract::Multipart;
use crate::extract::{Json, Path, Query};
use crate::files::{read_form, Bucket};
use crate::idempotency::{self, Done, IdempotencyKey};
use crate::kb::answer::{self, Checked, Citation, Hit, Sentence};
use crate::kb::answer_type::Expected;
use crate::kb::embed::Embedder;
use crate::kb::grounding::{self, Language, Lexical, Supported};
use crate::llm::{features, CallContext, GatewayRequest, Source};
use crate::payload::{AppRole, KbFormat, KbStatus, KbVisibility, NonBlank, Text};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_documents))
        .routes(routes!(get_document, update_document, delete_document))
        .routes(routes!(search))
        .routes(routes!(ask))
}

pub fn upload_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_document))
        .routes(routes!(replace_file))
}

/// Chunks retrieved for an answer (its sources are among them).
pub const ASK_SOURCES: i32 = 6;

/// A document for the knowledge base.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct DocumentUpload {
    /// At most 200 characters.
    title: String,
    /// [default: tenant]
    visibility: Option<KbVisibility>,
    /// The department that may read it (visibility department).
    dept_code: Option<String>,
    /// The app roles that may read it, comma-separated (visibility roles).
    app_roles: Option<String>,
    /// [default: from the file's type and name]
    format: Option<KbFormat>,
    /// PDF, DOCX, plain text, Markdown or HTML.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

/// A new version of a document's file.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct DocumentFileUpload {
    /// A new title [default: unchanged].
    title: Option<String>,
    format: Option<KbFormat>,
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

shapes! {
    /// A knowledge-base document and the state of its ingestion.
    pub struct KbDocument {
        document_id: Uuid,
        title: String,
        owner_user_id: Uuid,
        visibility: KbVisibility,
        dept_code: Option<String>,
        app_roles: Option<Vec<AppRole>>,
        format: KbFormat,
        /// The file of the current version.
        object_id: Option<Uuid>,
        /// Uploads so far (1 for the first).
        version: i32,
        status: KbStatus,
        /// Why the ingestion failed (status failed).
        failure_reason: Option<String>,
        chunks_total: Option<i32>,
        chunks_done: i32,
        /// The version readers search (it stays while a newer one is ingested).
        ready_version: Option<i32>,
        ready_at: Option<chrono::DateTime<chrono::Utc>>,
        /// The ingestion job (GET /api/jobs/{id}).
        job_id: Option<Uuid>,
        created_at: chrono::DateTime<chrono::Utc>,
        updated_at: chrono::DateTime<chrono::Utc>,
        /// The caller may replace, change and delete it.
        may_manage: bool,
    }

    pub struct KbDocumentList {
        items: Vec<KbDocument>,
    }

    /// A deleted document.
    pub struct KbDocumentDeleted {
        document_id: Uuid,
        deleted: bool,
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DocumentListQuery {
    /// Only documents in this state.
    #[param(value_type = Option<KbStatus>)]
    status: Option<KbStatus>,
    /// 1-500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i32>,
    /// The next page: the last `updated_at` of the previous one.
    updated_before: Option<chrono::DateTime<chrono::Utc>>,
}

/// Title or visibility of a document.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentChange {
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<NonBlank<200>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    visibility: Option<KbVisibility>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dept_code: Option<Text<40>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_roles: Option<Vec<AppRole>>,
}

/// A search of the documents the caller may read.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchBody {
    query: NonBlank<2000>,
    /// Results, 1-100 (default 10).
    #[schema(minimum = 1, maximum = 100)]
    k: Option<i32>,
}

/// One chunk found, best first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchHit {
    chunk_id: Uuid,
    document_id: Uuid,
    title: String,
    heading_path: String,
    page_start: Option<i32>,
    page_end: Option<i32>,
    text: String,
    /// The fused (RRF) score.
    score: f64,
    /// Rank in the BM25 branch (none: no query word in the chunk).
    lexical_rank: Option<i32>,
    /// Rank in the vector branch.
    vector_rank: Option<i32>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchResult {
    items: Vec<SearchHit>,
}

/// A question to the documents.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AskBody {
    question: NonBlank<2000>,
}

/// Where an answer came from.
#[derive(Debug, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum KbAnswerSource {
    /// A model wrote it from the sources.
    Model,
    /// The tenant's cache of an identical question over the same sources.
    Cache,
    /// No model: the sentences of the sources closest to the question.
    Extractive,
    /// Nothing relevant was found; no model was asked.
    NotInDocuments,
}

/// An answer from the documents.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KbAnswer {
    /// The sentences, each followed by its citation marks ([1], [2]).
    text: String,
    /// The documents do not answer the question.
    not_in_documents: bool,
    source: KbAnswerSource,
    sentences: Vec<Sentence>,
    /// The sources the sentences cite by `n`.
    citations: Vec<Citation>,
    /// Sentences of the model dropped for citing nothing or a chunk that
    /// was not retrieved.
    rejected_sentences: usize,
    /// The LLM ledger rows of this answer.
    call_ids: Vec<Uuid>,
}

fn embedder(state: &AppState) -> Result<Arc<Embedder>> {
    state.kb_embedder.clone().ok_or_else(|| {
        ApiError::Unavailable(
            "the knowledge base is not configured on this server (BIZOS_KB_MODEL_DIR)".into(),
        )
    })
}

/// The query's vector, computed off the async threads.
async fn embed_query(state: &AppState, query: &str) -> Result<Vec<f32>> {
    let embedder = embedder(state)?;
    let query = query.to_owned();
    let vector = tokio::task::spawn_blocking(move || embedder.embed(&[&query]))
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .map_err(|e| ApiError::Internal(e.into()))?
        .remove(0);
    Ok(vector)
}

/// The payload of a register or replace: the form's text fields (only the
/// known ones) and the stored file's id.
fn upload_payload(
    fields: &std::collections::BTreeMap<String, String>,
    allowed: &[&str],
    object: Value,
) -> Result<Value> {
    // The RPC registers the file itself (object_of_upload).
    let mut payload = json!({ "object": object });
    for (name, value) in fields {
        if !allowed.contains(&name.as_str()) {
            return Err(ApiError::invalid(
                name.clone(),
                format!(
                    "{name}: unknown field (allowed: {}, file)",
                    allowed.join(", ")
                ),
            ));
        }
        payload[name] = if name == "app_roles" {
            Value::from(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(Value::from)
                    .collect::<Vec<_>>(),
            )
        } else {
            Value::from(value.as_str())
        };
    }
    Ok(payload)
}

/// What an upload registers: `sql` takes $1 = the payload (the form's
/// `allowed` fields and the file's id) and, when replacing, $2 = the
/// document's id.
struct Register {
    sql: &'static str,
    allowed: &'static [&'static str],
    document_id: Option<Uuid>,
}

/// Stores the upload, then registers it in one transaction.
async fn store_and_register(
    state: &AppState,
    caller: &Caller,
    key: IdempotencyKey,
    multipart: Multipart,
    to: Register,
) -> Result<Response> {
    let Register {
        sql,
        allowed,
        document_id,
    } = to;
    let files = state.files();
    let bucket = Bucket::load(&files, caller, "knowledge").await?;
    let form = read_form(&files, caller, multipart, &bucket, false).await?;
    let payload = match upload_payload(&form.fields, allowed, form.file.object_payload()) {
        Ok(p) => p,
        Err(e) => {
            crate::files::discard(&files, &form.file);
            return Err(e);
        }
    };
    let result = idempotency::run(
        state,
        caller,
        upload_fingerprint(key, &form),
        async |conn| {
            let query = sqlx::query_scalar::<_, Value>(sql).bind(&payload);
            let query = match document_id {
                Some(id) => query.bind(id),
                None => query,
            };
            let document = crate::telemetry::db_call(
                crate::telemetry::statement_function(sql),
                query.fetch_one(&mut *conn),
            )
            .await?;
            Ok(Done::accepted(document))
        },
    )
    .await;
    files.keep_or_discard(&form, registered(&result));
    result
}

#[utoipa::path(post, path = "/api/kb/documents", tag = "kb",
    request_body(content = DocumentUpload, content_type = "multipart/form-data"),
    params(IdempotencyKey),
    responses((status = 202, description = "stored and queued for ingestion (status queued)", body = KbDocument),
              (status = 403, description = "the kb.manage permission is missing", body = ErrorResponse),
              (status = 413, description = "over the knowledge bucket's limit", body = ErrorResponse),
              (status = 415, description = "not a PDF, DOCX, text, Markdown or HTML file", body = ErrorResponse)))]
async fn create_document(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    multipart: Multipart,
) -> Result<Response> {
    store_and_register(
        &state,
        &caller,
        key,
        multipart,
        Register {
            sql: "select kb_document_register($1)",
            allowed: &["title", "visibility", "dept_code", "app_roles", "format"],
            document_id: None,
        },
    )
    .await
}

#[utoipa::path(post, path = "/api/kb/documents/{id}/versions", tag = "kb",
    request_body(content = DocumentFileUpload, content_type = "multipart/form-data"),
    params(("id" = Uuid, Path), IdempotencyKey),
    responses((status = 202, description = "the new version is queued; the ready one stays searchable until it is replaced", body = KbDocument),
              (status = 403, description = "not the document's owner or a super admin", body = ErrorResponse),
              (status = 404, description = "no such document (or not visible)", body = ErrorResponse)))]
async fn replace_file(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<Uuid>,
    multipart: Multipart,
) -> Result<Response> {
    store_and_register(
        &state,
        &caller,
        key,
        multipart,
        Register {
            sql: "select kb_document_replace($2, $1)",
            allowed: &["title", "format"],
            document_id: Some(id),
        },
    )
    .await
}

#[utoipa::path(get, path = "/api/kb/documents", tag = "kb", params(DocumentListQuery),
    responses((status = 200, description = "the documents the caller may read, most recently changed first", body = KbDocumentList)))]
async fn list_documents(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<DocumentListQuery>,
) -> Result<Json<Value>> {
    let items: Value = read_one(
        &state.pool,
        &caller,
        sqlx::query_scalar("select kb_document_list($1, $2, $3)")
            .bind(q.status.map(KbStatus::into_string))
            .bind(q.limit.unwrap_or(100))
            .bind(q.updated_before),
    )
    .await?;
    Ok(Json(json!({ "items": items })))
}

read_route! {
    get "/api/kb/documents/{id}", tag = "kb",
    fn get_document(id) = "select kb_document_get($1)",
    responses((status = 200, description = "the document with the state of its ingestion", body = KbDocument),
              (status = 404, description = "no such document (or not visible)", body = ErrorResponse))
}

rpc_route! {
    patch "/api/kb/documents/{id}", tag = "kb",
    fn update_document(id, DocumentChange) = "select kb_document_update($1, $2)",
    responses((status = 200, description = "the changed document (its chunks follow the new visibility at once)", body = KbDocument),
              (status = 403, description = "not the document's owner or a super admin", body = ErrorResponse),
              (status = 404, description = "no such document (or not visible)", body = ErrorResponse))
}

#[utoipa::path(delete, path = "/api/kb/documents/{id}", tag = "kb",
    params(("id" = Uuid, Path), IdempotencyKey),
    responses((status = 200, description = "the document, its chunks and vectors are gone; its files are removed", body = KbDocumentDeleted),
              (status = 403, description = "not the document's owner or a super admin", body = ErrorResponse),
              (status = 404, description = "no such document (or not visible)", body = ErrorResponse)))]
async fn delete_document(
    State(state): State<AppState>,
    caller: Caller,
    key: IdempotencyKey,
    Path(id): Path<Uuid>,
) -> Result<Response> {
    let mut keys: Vec<String> = Vec::new();
    let response = idempotency::run_once(&state, &caller, key.json(&Value::Null), async |conn| {
        let mut deleted: Value = sqlx::query_scalar("select kb_document_delete($1)")
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
        if let Some(Value::Array(k)) = deleted
            .as_object_mut()
            .and_then(|o| o.remove("object_keys"))
        {
            keys = k
                .into_iter()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect();
        }
        Ok(Done::ok(deleted))
    })
    .await?;
    // The rows are gone (committed); the bytes go now. A failure leaves
    // them to storage.sweep, which the retired files are listed for.
    for key in keys {
        if let Err(e) = state
            .storage
            .delete(&object_store::path::Path::from(key.as_str()))
            .await
        {
            tracing::warn!(error = %e, "a deleted document's file stays for storage.sweep");
        }
    }
    Ok(response)
}

/// `kb_search` as the caller: the chunks they may read, best first.
async fn retrieve(
    state: &AppState,
    caller: &Caller,
    query: &str,
    vector: &[f32],
    k: i32,
) -> Result<Vec<Value>> {
    let vector = crate::kb::embed::vector_text(vector);
    read_as(&state.pool, caller, async |tx| {
        Ok(sqlx::query_scalar(
        "select jsonb_build_object('chunk_id', s.chunk_id, 'document_id', s.document_id, 'title', s.title,
                'heading_path', s.heading_path, 'page_start', s.page_start, 'page_end', s.page_end,
                'text', s.text, 'score', s.score, 'lexical_rank', s.lexical_rank,
                'vector_rank', s.vector_rank, 'vector_distance', s.vector_distance)
           from kb_search($1, $2::text::bizos.vector, $3) s",
    )
    .bind(query)
    .bind(vector)
        .bind(k)
        .fetch_all(tx)
        .await?)
    })
    .await
}

#[utoipa::path(post, path = "/api/kb/search", tag = "kb", request_body = SearchBody,
    responses((status = 200, description = "the best chunks of the documents the caller may read (BM25 and vector ranks fused)", body = SearchResult),
              (status = 503, description = "the server has no embedding model", body = ErrorResponse)))]
async fn search(
    State(state): State<AppState>,
    caller: Caller,
    Json(q): Json<SearchBody>,
) -> Result<Json<Value>> {
    let k = q.k.unwrap_or(10);
    if !(1..=100).contains(&k) {
        return Err(ApiError::invalid("k", "k: must be between 1 and 100"));
    }
    let vector = embed_query(&state, &q.query.0).await?;
    let items: Vec<Value> = retrieve(&state, &caller, &q.query.0, &vector, k)
        .await?
        .into_iter()
        .map(|mut row| {
            if let Some(o) = row.as_object_mut() {
                o.remove("vector_distance");
            }
            row
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}

/// The sentences of the hits that support an answer to the question,
/// best first; none: the documents do not answer it
/// ([`crate::kb::grounding`]). `vector`: the question's embedding.
async fn ground(
    state: &AppState,
    caller: &Caller,
    question: &str,
    vector: &[f32],
    hits: &[Hit],
) -> Result<Vec<Supported>> {
    let candidates = grounding::candidates(hits);
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let texts: Vec<String> = candidates.iter().map(|c| c.text.clone()).collect();
    let contexts: Vec<String> = candidates.iter().map(|c| c.context.clone()).collect();
    let mut scores: Vec<Lexical> = read_as(&state.pool, caller, async |tx| {
        Ok(sqlx::query_as(
            "select sentence_no, language, terms, matched, lexical \
               from kb_sentence_scores($1, $2, $3, $4)",
        )
        .bind(question)
        .bind(&texts)
        .bind(&contexts)
        .bind(grounding::CONTEXT_WEIGHT)
        .fetch_all(tx)
        .await?)
    })
    .await?;
    let Some(first) = scores.first() else {
        return Ok(Vec::new());
    };
    let language = Language::of_config(&first.language).ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!(
            "kb_sentence_scores read the question as {:?}, which grounding does not know",
            first.language
        ))
    })?;
    // A sentence without the kind of fact asked (a mass, a count, a name)
    // answers nothing, however many of the question's words it holds.
    let expected = Expected::of(question, language);
    scores.retain(|s| {
        s.index()
            .and_then(|i| candidates.get(i))
            .is_some_and(|c| expected.held_by(&c.text, question))
    });
    let mut cosines = Vec::new();
    if language.embedded() {
        let picked: Vec<(usize, String)> = grounding::to_embed(&scores)
            .into_iter()
            .filter_map(|i| candidates.get(i).map(|c| (i, c.text.clone())))
            .collect();
        if !picked.is_empty() {
            let embedder = embedder(state)?;
            let texts: Vec<String> = picked.iter().map(|(_, t)| t.clone()).collect();
            let vectors = tokio::task::spawn_blocking(move || {
                let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
                embedder.embed(&texts)
            })
            .await
            .map_err(|e| ApiError::Internal(e.into()))?
            .map_err(|e| ApiError::Internal(e.into()))?;
            cosines = picked
                .iter()
                .zip(&vectors)
                .map(|((i, _), v)| (*i, grounding::cosine(vector, v)))
                .collect();
        }
    }
    Ok(grounding::supported(
        &candidates,
        &scores,
        language,
        &cosines,
    ))
}

#[utoipa::path(post, path = "/api/kb/ask", tag = "kb", request_body = AskBody,
    responses((status = 200, description = "an answer whose every sentence cites the documents it comes from; extractive when no model answers; not_in_documents when no sentence of the documents supports an answer", body = KbAnswer),
              (status = 429, description = "a limit of the tenant or the user is used up (Retry-After)", body = ErrorResponse),
              (status = 503, description = "the server has no embedding model", body = ErrorResponse)))]
async fn ask(
    State(state): State<AppState>,
    caller: Caller,
    Json(q): Json<AskBody>,
) -> Result<Json<KbAnswer>> {
    let question = q.question.0;
    let vector = embed_query(&state, &question).await?;
    let hits: Vec<Hit> = retrieve(&state, &caller, &question, &vector, ASK_SOURCES)
        .await?
        .into_iter()
        .map(serde_json::from_value)
        .collect::<std::result::Result<_, _>>()
        .map_err(anyhow::Error::from)?;
    let mut support = ground(&state, &caller, &question, &vector, &hits).await?;
    if support.is_empty() {
        return Ok(Json(KbAnswer {
            text: answer::NOT_IN_DOCUMENTS.into(),
            not_in_documents: true,
            source: KbAnswerSource::NotInDocuments,
            sentences: Vec::new(),
            citations: Vec::new(),
            rejected_sentences: 0,
            call_ids: Vec::new(),
        }));
    }
    let sources = answer::sources(hits, &mut support);
    let request = GatewayRequest {
        messages: answer::prompt(&question, &sources),
        json_schema: Some(answer::schema()),
        temperature: Some(0.0),
        ..GatewayRequest::default()
    };
    // The sources are chunks the caller may read: the originals of masked
    // values may come back to them.
    let ctx = CallContext::for_caller(&caller, true);
    let reply = state
        .llm
        .chat(&ctx, features::RAG_ANSWER, request)
        .await
        .map_err(ApiError::from)?;
    let from_model = match reply.source {
        Source::Model { .. } => Some(KbAnswerSource::Model),
        Source::Cache => Some(KbAnswerSource::Cache),
        Source::Fallback => None,
    };
    let checked = from_model
        .as_ref()
        .and(reply.json.as_ref())
        .and_then(|json| answer::checked(json, sources.len()));
    let citations = answer::citations(&sources);
    let (source, sentences, rejected, not_in_documents) = match (from_model, checked) {
        (Some(_), Some(Checked::NotInDocuments)) => {
            (KbAnswerSource::NotInDocuments, Vec::new(), 0, true)
        }
        (Some(from), Some(Checked::Sentences { kept, rejected })) if !kept.is_empty() => {
            (from, kept, rejected, false)
        }
        (_, checked) => {
            let rejected = match checked {
                Some(Checked::Sentences { rejected, .. }) => rejected,
                _ => 0,
            };
            (
                KbAnswerSource::Extractive,
                answer::extractive(&support),
                rejected,
                false,
            )
        }
    };
    let text = if not_in_documents {
        answer::NOT_IN_DOCUMENTS.to_owned()
    } else {
        answer::text_of(&sentences)
    };
    // Only the sources a sentence cites.
    let cited: std::collections::BTreeSet<usize> = sentences
        .iter()
        .flat_map(|s| s.cites.iter().copied())
        .collect();
    Ok(Json(KbAnswer {
        text,
        not_in_documents,
        source,
        sentences,
        citations: citations
            .into_iter()
            .filter(|c| cited.contains(&c.n))
            .collect(),
        rejected_sentences: rejected,
        call_ids: reply.call_ids,
    }))
}
