//! A stand-in for LLM providers: a real HTTP server on 127.0.0.1 speaking
//! the two wire formats of `bizos_bff::llm::provider`, scriptable per
//! request and recording every request it gets.
//!
//! Paths (point an endpoint's `base_url` at [`StandIn::base_url_openai`] or
//! [`StandIn::base_url_gemini`]):
//! - `POST /openai/v1/chat/completions`, `POST /openai/v1/embeddings`
//! - `POST /gemini/v1beta/models/{model}:generateContent`,
//!   `POST /gemini/v1beta/models/{model}:batchEmbedContents`
//!
//! **Default answers** (no step scripted) are deterministic:
//! - chat: the text is `echo: ` followed by the last user message (so
//!   placeholders of the privacy layer come back); when the request asks
//!   for structured output, a JSON instance of its schema whose strings are
//!   that text ([`instance_of`]);
//! - embeddings: [`vector_of`] each input (8 dimensions);
//! - tokens by [`count_tokens`] (whitespace-separated words): `tokens_in` =
//!   the words of every text of the request (system, messages, inputs),
//!   `tokens_out` = the words of the answer text. Gemini's
//!   `batchEmbedContents` reports no usage (as the real API), unless a step
//!   sets `tokens_in`.
//!
//! **Scripts**: [`StandIn::script`] queues a [`Step`] for the next request
//! on either wire; [`StandIn::script_wire`] for one wire,
//! [`StandIn::script_model`] for one model of one wire. A request takes the
//! first step of the most specific non-empty queue (model, then wire, then
//! any), FIFO; chat and embeddings share the queues.
//!
//! **Records**: [`StandIn::requests`] lists every request in arrival order
//! with its path, wire, model, the key it carried, headers, body JSON, and
//! what the stand-in answered (status, text, token counts).
//!
//! Dropping the [`StandIn`] stops the server and ends hanging requests.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
pub use bizos_bff::llm::provider::Wire;
use serde_json::{json, Value};
use tokio::sync::watch;

/// Chat completion or embeddings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Call {
    Chat,
    Embed,
}

/// What the stand-in does with one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A normal answer. `None` fields take the default (the echo text, the
    /// word counts); set `tokens_in`/`tokens_out` to report counts that
    /// differ from the rule. `delay` is waited before answering.
    Ok {
        text: Option<String>,
        tokens_in: Option<u64>,
        tokens_out: Option<u64>,
        delay: Duration,
    },
    /// An HTTP status with an optional `Retry-After` header (sent as given:
    /// seconds or an HTTP-date) and body (default: the wire's error JSON).
    /// A 3xx carries `Location: <the same path>`.
    Status {
        code: u16,
        retry_after: Option<String>,
        body: Option<String>,
    },
    /// Never answers (until the client gives up or the stand-in drops).
    Hang,
    /// 200 with a body that is not JSON.
    Malformed,
    /// A normal answer whose usage object (`usage` / `usageMetadata`) is
    /// replaced by this JSON (`Value::Null`: left out) — wrong token counts.
    Usage(Value),
}

impl Step {
    pub fn ok() -> Step {
        Step::Ok {
            text: None,
            tokens_in: None,
            tokens_out: None,
            delay: Duration::ZERO,
        }
    }
    pub fn text(text: impl Into<String>) -> Step {
        Step::Ok {
            text: Some(text.into()),
            tokens_in: None,
            tokens_out: None,
            delay: Duration::ZERO,
        }
    }
    pub fn tokens(tokens_in: u64, tokens_out: u64) -> Step {
        Step::Ok {
            text: None,
            tokens_in: Some(tokens_in),
            tokens_out: Some(tokens_out),
            delay: Duration::ZERO,
        }
    }
    pub fn delayed(delay: Duration) -> Step {
        Step::ok().with_delay(delay)
    }
    pub fn status(code: u16) -> Step {
        Step::Status {
            code,
            retry_after: None,
            body: None,
        }
    }
    /// 429 with `Retry-After: <retry_after>`.
    pub fn rate_limited(retry_after: impl Into<String>) -> Step {
        Step::Status {
            code: 429,
            retry_after: Some(retry_after.into()),
            body: None,
        }
    }
    /// Sets the delay of an `Ok` step (other steps are returned unchanged).
    pub fn with_delay(self, d: Duration) -> Step {
        match self {
            Step::Ok {
                text,
                tokens_in,
                tokens_out,
                ..
            } => Step::Ok {
                text,
                tokens_in,
                tokens_out,
                delay: d,
            },
            other => other,
        }
    }
    /// Sets the body of a `Status` step (other steps are returned unchanged).
    pub fn with_body(self, b: impl Into<String>) -> Step {
        match self {
            Step::Status {
                code, retry_after, ..
            } => Step::Status {
                code,
                retry_after,
                body: Some(b.into()),
            },
            other => other,
        }
    }
}

/// One request as the stand-in received it, and what it answered.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: String,
    pub query: Option<String>,
    pub wire: Wire,
    pub call: Call,
    /// From the body (OpenAI) or the path (Gemini).
    pub model: String,
    /// The key it was given: `Authorization: Bearer <key>`,
    /// `x-goog-api-key: <key>` or `?key=<key>`.
    pub api_key: Option<String>,
    /// Where the key was: `authorization`, `x-goog-api-key` or `query`.
    pub key_header: Option<&'static str>,
    /// Every header, lower-case names.
    pub headers: Vec<(String, String)>,
    /// The body as JSON (a JSON string of the raw text when it was not JSON).
    pub body: Value,
    /// What it answered: 200, the scripted status, or 0 for a hang.
    pub status: u16,
    /// The answer's text (chat answered 200).
    pub text: Option<String>,
    /// The token counts it reported (0 when it reported none).
    pub tokens_in: u64,
    pub tokens_out: u64,
}

type QueueKey = (Option<Wire>, Option<String>);

struct State {
    queues: Mutex<HashMap<QueueKey, VecDeque<Step>>>,
    recorded: Mutex<Vec<Recorded>>,
    recording: Mutex<bool>,
    default_delay: Mutex<Duration>,
    stop: watch::Receiver<()>,
}

pub struct StandIn {
    pub addr: SocketAddr,
    /// `http://127.0.0.1:P/openai/v1`
    pub base_url_openai: String,
    /// `http://127.0.0.1:P/gemini/v1beta`
    pub base_url_gemini: String,
    state: Arc<State>,
    server: tokio::task::JoinHandle<()>,
    _stop: watch::Sender<()>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl StandIn {
    /// Binds 127.0.0.1:0 and serves until dropped.
    pub async fn start() -> StandIn {
        StandIn::start_on(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("the LLM stand-in binds 127.0.0.1:0")
    }

    /// Binds `addr` (the benchmark binary's fixed port).
    pub async fn start_on(addr: SocketAddr) -> std::io::Result<StandIn> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop_tx, stop_rx) = watch::channel(());
        let state = Arc::new(State {
            queues: Mutex::new(HashMap::new()),
            recorded: Mutex::new(Vec::new()),
            recording: Mutex::new(true),
            default_delay: Mutex::new(Duration::ZERO),
            stop: stop_rx,
        });
        let app = axum::Router::new().fallback({
            let state = state.clone();
            move |uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = state.clone();
                async move { handle(state, uri, headers, body).await }
            }
        });
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(StandIn {
            addr,
            base_url_openai: format!("http://{addr}/openai/v1"),
            base_url_gemini: format!("http://{addr}/gemini/v1beta"),
            state,
            server,
            _stop: stop_tx,
        })
    }

    pub fn base_url(&self, wire: Wire) -> &str {
        match wire {
            Wire::OpenAi => &self.base_url_openai,
            Wire::Gemini => &self.base_url_gemini,
        }
    }

    /// Queues a step for the next request on either wire.
    pub fn script(&self, step: Step) {
        self.push((None, None), step);
    }

    /// Queues a step for the next request on `wire`.
    pub fn script_wire(&self, wire: Wire, step: Step) {
        self.push((Some(wire), None), step);
    }

    /// Queues a step for the next request for `model` on `wire`.
    pub fn script_model(&self, wire: Wire, model: &str, step: Step) {
        self.push((Some(wire), Some(model.to_string())), step);
    }

    fn push(&self, key: QueueKey, step: Step) {
        lock(&self.state.queues)
            .entry(key)
            .or_default()
            .push_back(step);
    }

    /// Steps scripted and not yet taken.
    pub fn pending(&self) -> usize {
        lock(&self.state.queues).values().map(VecDeque::len).sum()
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.state.recorded).clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.state.recorded).clear();
    }

    /// Recording on (default) or off (benchmarks: no growing memory).
    pub fn set_recording(&self, on: bool) {
        *lock(&self.state.recording) = on;
    }

    /// A delay before every default (unscripted) answer.
    pub fn set_default_delay(&self, delay: Duration) {
        *lock(&self.state.default_delay) = delay;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The stand-in's token rule: whitespace-separated words.
pub fn count_tokens(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// The stand-in's embedding of a text: 8 numbers in [0, 1] from an FNV-1a
/// hash of it (equal texts, equal vectors).
pub fn vector_of(text: &str) -> Vec<f32> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (0..8u32)
        .map(|i| ((h.rotate_left(i * 8) & 0xffff) as f32) / 65535.0)
        .collect()
}

/// The default chat text for a prompt: `echo: <last user message>`.
pub fn echo_of(last_user: &str) -> String {
    format!("echo: {last_user}")
}

async fn handle(state: Arc<State>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_string();
    let (wire, call, path_model) = match route(&path) {
        Some(r) => r,
        None => return (StatusCode::NOT_FOUND, "no such stand-in path").into_response(),
    };
    let (body_json, body_ok) = match serde_json::from_slice::<Value>(&body) {
        Ok(v) => (v, true),
        Err(_) => (
            Value::String(String::from_utf8_lossy(&body).into_owned()),
            false,
        ),
    };
    let model = path_model.unwrap_or_else(|| {
        body_json
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    });
    let (api_key, key_header) = key_of(&headers, uri.query());
    let recording = *lock(&state.recording);
    let index = if recording {
        let mut rec = lock(&state.recorded);
        rec.push(Recorded {
            path: path.clone(),
            query: uri.query().map(str::to_owned),
            wire,
            call,
            model: model.clone(),
            api_key,
            key_header,
            headers: headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body_json.clone(),
            status: 0,
            text: None,
            tokens_in: 0,
            tokens_out: 0,
        });
        Some(rec.len() - 1)
    } else {
        None
    };
    let note = |status: u16, text: Option<String>, tokens_in: u64, tokens_out: u64| {
        if let Some(i) = index {
            let mut rec = lock(&state.recorded);
            let r = &mut rec[i];
            r.status = status;
            r.text = text;
            r.tokens_in = tokens_in;
            r.tokens_out = tokens_out;
        }
    };
    if !body_ok {
        note(400, None, 0, 0);
        return error_response(wire, 400, None, None);
    }
    let step = next_step(&state, wire, &model);
    match step {
        Some(Step::Hang) => {
            let mut stop = state.stop.clone();
            // Returns only when the StandIn drops (the sender goes away).
            while stop.changed().await.is_ok() {}
            error_response(wire, 503, None, None)
        }
        Some(Step::Status {
            code,
            retry_after,
            body,
        }) => {
            note(code, None, 0, 0);
            let mut resp = error_response(wire, code, retry_after, body);
            if (300..400).contains(&code) {
                // A redirect back to the same path: a client that follows
                // redirects sends the request (and its key) again.
                if let Ok(v) = header::HeaderValue::from_str(&path) {
                    resp.headers_mut().insert(header::LOCATION, v);
                }
            }
            resp
        }
        Some(Step::Malformed) => {
            note(200, None, 0, 0);
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                "{\"choices\": [{\"message\": ",
            )
                .into_response()
        }
        Some(Step::Usage(usage)) => {
            let a = answer(wire, call, &model, &body_json, None, None, None);
            note(200, a.text.clone(), 0, 0);
            json_response(a.with_usage(wire, call, usage))
        }
        Some(Step::Ok {
            text,
            tokens_in,
            tokens_out,
            delay,
        }) => {
            let a = answer(wire, call, &model, &body_json, text, tokens_in, tokens_out);
            note(200, a.text.clone(), a.tokens_in, a.tokens_out);
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            json_response(a.body)
        }
        None => {
            let a = answer(wire, call, &model, &body_json, None, None, None);
            note(200, a.text.clone(), a.tokens_in, a.tokens_out);
            let delay = *lock(&state.default_delay);
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            json_response(a.body)
        }
    }
}

fn route(path: &str) -> Option<(Wire, Call, Option<String>)> {
    match path {
        "/openai/v1/chat/completions" => return Some((Wire::OpenAi, Call::Chat, None)),
        "/openai/v1/embeddings" => return Some((Wire::OpenAi, Call::Embed, None)),
        _ => {}
    }
    let rest = path.strip_prefix("/gemini/v1beta/models/")?;
    let (model, action) = rest.rsplit_once(':')?;
    let call = match action {
        "generateContent" => Call::Chat,
        "batchEmbedContents" => Call::Embed,
        _ => return None,
    };
    Some((Wire::Gemini, call, Some(percent_decode(model))))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn key_of(headers: &HeaderMap, query: Option<&str>) -> (Option<String>, Option<&'static str>) {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let key = v.strip_prefix("Bearer ").unwrap_or(v);
        return (Some(key.to_string()), Some("authorization"));
    }
    if let Some(v) = headers.get("x-goog-api-key").and_then(|v| v.to_str().ok()) {
        return (Some(v.to_string()), Some("x-goog-api-key"));
    }
    if let Some(k) = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|kv| kv.strip_prefix("key="))
    {
        return (Some(percent_decode(k)), Some("query"));
    }
    (None, None)
}

fn next_step(state: &State, wire: Wire, model: &str) -> Option<Step> {
    let mut queues = lock(&state.queues);
    for key in [
        (Some(wire), Some(model.to_string())),
        (Some(wire), None),
        (None, None),
    ] {
        if let Some(step) = queues.get_mut(&key).and_then(VecDeque::pop_front) {
            return Some(step);
        }
    }
    None
}

fn json_response(body: Value) -> Response {
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn error_response(
    wire: Wire,
    code: u16,
    retry_after: Option<String>,
    body: Option<String>,
) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = body.unwrap_or_else(|| {
        let message = format!("stand-in: HTTP {code}");
        match wire {
            Wire::OpenAi => {
                json!({"error": {"message": message, "type": "standin", "code": code}})
            }
            Wire::Gemini => {
                json!({"error": {"code": code, "message": message, "status": "STANDIN"}})
            }
        }
        .to_string()
    });
    let mut resp = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    if let Some(ra) = retry_after.and_then(|v| header::HeaderValue::from_str(&v).ok()) {
        resp.headers_mut().insert(header::RETRY_AFTER, ra);
    }
    resp
}

/// A successful answer before it is sent.
struct Answer {
    body: Value,
    text: Option<String>,
    tokens_in: u64,
    tokens_out: u64,
}

impl Answer {
    fn with_usage(mut self, wire: Wire, _call: Call, usage: Value) -> Value {
        let field = match wire {
            Wire::OpenAi => "usage",
            Wire::Gemini => "usageMetadata",
        };
        if let Some(obj) = self.body.as_object_mut() {
            if usage.is_null() {
                obj.remove(field);
            } else {
                obj.insert(field.into(), usage);
            }
        }
        self.body
    }
}

fn answer(
    wire: Wire,
    call: Call,
    model: &str,
    body: &Value,
    text: Option<String>,
    tokens_in: Option<u64>,
    tokens_out: Option<u64>,
) -> Answer {
    match call {
        Call::Chat => {
            let (texts, last_user, schema) = chat_parts(wire, body);
            let text = text.unwrap_or_else(|| {
                let echo = echo_of(&last_user);
                match schema {
                    Some(s) => instance_of(&s, &echo).to_string(),
                    None => echo,
                }
            });
            let t_in = tokens_in.unwrap_or_else(|| texts.iter().map(|t| count_tokens(t)).sum());
            let t_out = tokens_out.unwrap_or_else(|| count_tokens(&text));
            let body = match wire {
                Wire::OpenAi => json!({
                    "id": "chatcmpl-standin",
                    "object": "chat.completion",
                    "created": 0,
                    "model": model,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": t_in, "completion_tokens": t_out,
                              "total_tokens": t_in + t_out}
                }),
                Wire::Gemini => json!({
                    "candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                                    "finishReason": "STOP", "index": 0}],
                    "usageMetadata": {"promptTokenCount": t_in, "candidatesTokenCount": t_out,
                                      "totalTokenCount": t_in + t_out},
                    "modelVersion": model
                }),
            };
            Answer {
                body,
                text: Some(text),
                tokens_in: t_in,
                tokens_out: t_out,
            }
        }
        Call::Embed => {
            let inputs = embed_inputs(wire, body);
            let counted: u64 = inputs.iter().map(|t| count_tokens(t)).sum();
            let vectors: Vec<Vec<f32>> = inputs.iter().map(|t| vector_of(t)).collect();
            match wire {
                Wire::OpenAi => {
                    let t_in = tokens_in.unwrap_or(counted);
                    let data: Vec<Value> = vectors
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| json!({"object": "embedding", "index": i, "embedding": v}))
                        .collect();
                    Answer {
                        body: json!({"object": "list", "data": data, "model": model,
                                     "usage": {"prompt_tokens": t_in, "total_tokens": t_in}}),
                        text: None,
                        tokens_in: t_in,
                        tokens_out: 0,
                    }
                }
                Wire::Gemini => {
                    let embeddings: Vec<Value> =
                        vectors.into_iter().map(|v| json!({"values": v})).collect();
                    let mut body = json!({ "embeddings": embeddings });
                    if let Some(t) = tokens_in {
                        body["usageMetadata"] =
                            json!({"promptTokenCount": t, "totalTokenCount": t});
                    }
                    Answer {
                        body,
                        text: None,
                        tokens_in: tokens_in.unwrap_or(0),
                        tokens_out: 0,
                    }
                }
            }
        }
    }
}

/// Every text of a chat request, the last user text, and the schema asked
/// for (JSON schema on OpenAI, Gemini's `responseSchema`).
fn chat_parts(wire: Wire, body: &Value) -> (Vec<String>, String, Option<Value>) {
    let mut texts = Vec::new();
    let mut last_user = String::new();
    match wire {
        Wire::OpenAi => {
            for m in body
                .get("messages")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let text = match m.get("content") {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Array(parts)) => parts
                        .iter()
                        .filter_map(|p| p.get("text").and_then(Value::as_str))
                        .collect::<Vec<_>>()
                        .join(" "),
                    _ => String::new(),
                };
                if m.get("role").and_then(Value::as_str) == Some("user") {
                    last_user = text.clone();
                }
                texts.push(text);
            }
            let schema = body.pointer("/response_format/json_schema/schema").cloned();
            (texts, last_user, schema)
        }
        Wire::Gemini => {
            let parts_text = |content: &Value| -> String {
                content
                    .get("parts")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            if let Some(system) = body.get("systemInstruction") {
                texts.push(parts_text(system));
            }
            for c in body
                .get("contents")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let text = parts_text(c);
                if c.get("role").and_then(Value::as_str).unwrap_or("user") == "user" {
                    last_user = text.clone();
                }
                texts.push(text);
            }
            let schema = body.pointer("/generationConfig/responseSchema").cloned();
            (texts, last_user, schema)
        }
    }
}

fn embed_inputs(wire: Wire, body: &Value) -> Vec<String> {
    match wire {
        Wire::OpenAi => match body.get("input") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().unwrap_or_default().to_string())
                .collect(),
            _ => Vec::new(),
        },
        Wire::Gemini => body
            .get("requests")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|r| {
                r.pointer("/content/parts")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect(),
    }
}

/// A JSON value that matches `schema` (JSON Schema or Gemini's OpenAPI
/// subset, types in any case): the first `enum`/`const` value or `anyOf`
/// branch, every property of an object, one item of an array, `text` for
/// strings, the minimum (or 0) for numbers, `false`, `null`.
pub fn instance_of(schema: &Value, text: &str) -> Value {
    instance(schema, schema, text, 0)
}

fn instance(node: &Value, root: &Value, text: &str, depth: usize) -> Value {
    if depth > 16 {
        return Value::Null;
    }
    let Some(obj) = node.as_object() else {
        return json!(text);
    };
    if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
        return match r.strip_prefix('#').and_then(|p| root.pointer(p)) {
            Some(t) => instance(t, root, text, depth + 1),
            None => Value::Null,
        };
    }
    if let Some(v) = obj.get("const") {
        return v.clone();
    }
    if let Some(v) = obj
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return v.clone();
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(first) = obj
            .get(key)
            .and_then(Value::as_array)
            .and_then(|a| a.first())
        {
            return instance(first, root, text, depth + 1);
        }
    }
    let ty = match obj.get("type") {
        Some(Value::String(t)) => t.to_lowercase(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null")
            .to_lowercase(),
        _ if obj.contains_key("properties") => "object".into(),
        _ => "string".into(),
    };
    match ty.as_str() {
        "object" => {
            let mut out = serde_json::Map::new();
            if let Some(props) = obj.get("properties").and_then(Value::as_object) {
                for (k, v) in props {
                    out.insert(k.clone(), instance(v, root, text, depth + 1));
                }
            }
            Value::Object(out)
        }
        "array" => {
            let min = obj.get("minItems").and_then(Value::as_u64).unwrap_or(1);
            let max = obj
                .get("maxItems")
                .and_then(Value::as_u64)
                .unwrap_or(u64::MAX);
            let n = min.max(1).min(max);
            let item = obj.get("items").cloned().unwrap_or(json!({}));
            (0..n)
                .map(|_| instance(&item, root, text, depth + 1))
                .collect()
        }
        "integer" => json!(obj.get("minimum").and_then(Value::as_i64).unwrap_or(0)),
        "number" => json!(obj.get("minimum").and_then(Value::as_f64).unwrap_or(0.0)),
        "boolean" => json!(false),
        "null" => Value::Null,
        _ => json!(text),
    }
}
