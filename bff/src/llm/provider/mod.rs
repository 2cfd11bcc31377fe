//! The one Rust interface to language models: a [`Client`] that makes ONE
//! HTTP call to a provider and classifies what came back.
//!
//! Two wire formats cover the providers bizos talks to ([`Wire`]):
//! - [`Wire::OpenAi`] — OpenAI-compatible `POST {base}/chat/completions` and
//!   `POST {base}/embeddings` with `Authorization: Bearer <key>` (OpenAI,
//!   Ollama, vLLM, LiteLLM, OpenRouter and most others);
//! - [`Wire::Gemini`] — Google Gemini's native `POST
//!   {base}/models/{model}:generateContent` and `:batchEmbedContents` with
//!   `x-goog-api-key: <key>`.
//!
//! Structured output: a [`ChatRequest::json_schema`] is sent where the wire
//! takes one (OpenAI `response_format`, Gemini `responseSchema`) and the
//! answer is validated on our side either way ([`super::schema`]); an answer
//! that does not match is [`ProviderError::InvalidOutput`].
//!
//! What this layer does NOT do: retries, backoff, circuit breaking, key
//! rotation, caching, masking — the gateway does those, driven by
//! [`ProviderError::retryable`], [`ProviderError::cools_key`] and
//! [`ProviderError::retry_after`].
//!
//! Keys: the key is passed per call, goes only into a header marked
//! sensitive, never into a URL, an error, a log line or a `Debug` output;
//! text that comes back from a provider (error messages, bodies) is scrubbed
//! of the key before it is kept in an error. Redirects are not followed (a
//! redirect to another host would carry `x-goog-api-key` along).

mod gemini;
mod messages;
mod openai;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use messages::{
    estimate_tokens, ChatRequest, ChatResponse, EmbedRequest, EmbedResponse, Message,
    ProviderError, Role,
};

use super::schema;

/// The largest answer body read from a provider; a larger one is
/// [`ProviderError::Malformed`]. (1,000 embeddings of 3,072 floats are about
/// 40 MB of JSON.)
pub const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// How much of a provider's error message is kept in [`ProviderError::Rejected`].
const MAX_MESSAGE_CHARS: usize = 300;

/// The wire format of a provider; spelled `openai` / `gemini` as in
/// `llm_providers.wire`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Wire {
    OpenAi,
    Gemini,
}

impl Wire {
    pub fn as_str(self) -> &'static str {
        match self {
            Wire::OpenAi => "openai",
            Wire::Gemini => "gemini",
        }
    }
}

impl fmt::Display for Wire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Wire {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "openai" => Ok(Wire::OpenAi),
            "gemini" => Ok(Wire::Gemini),
            other => Err(format!(
                "wire: unknown wire format {other:?} (openai, gemini)"
            )),
        }
    }
}

/// Where a provider is: a row of `llm_providers`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Endpoint {
    pub provider: String,
    pub wire: Wire,
    /// e.g. `https://api.openai.com/v1`,
    /// `https://generativelanguage.googleapis.com/v1beta`; a trailing `/` is
    /// ignored.
    pub base_url: String,
}

/// One HTTP client for every provider call: a connection pool, a connect
/// timeout and a total timeout (connect + request + the whole answer), and
/// the compiled answer schemas. Clones share all three.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    total_timeout: Duration,
    schemas: Arc<schema::Compiled>,
}

/// How the key travels on a wire.
#[derive(Debug, Clone, Copy)]
enum Auth {
    Bearer,
    GoogApiKey,
}

impl Client {
    pub fn new(connect_timeout: Duration, total_timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .timeout(total_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("bizos/", env!("CARGO_PKG_VERSION")))
            .build()
            // Only fails when the TLS backend cannot start: a broken build,
            // not a condition to handle at run time.
            .expect("the HTTP client for LLM providers builds");
        Client {
            http,
            total_timeout,
            schemas: Arc::default(),
        }
    }

    pub fn total_timeout(&self) -> Duration {
        self.total_timeout
    }

    /// One chat completion: one HTTP call, no retry.
    #[tracing::instrument(name = "llm.provider.chat", skip_all,
        fields(provider = %ep.provider, wire = %ep.wire, model = %req.model))]
    pub async fn chat(
        &self,
        ep: &Endpoint,
        api_key: &str,
        req: &ChatRequest,
    ) -> Result<ChatResponse, ProviderError> {
        let validator = match &req.json_schema {
            Some(s) => Some(self.schemas.get(s).map_err(|e| ProviderError::Rejected {
                status: 0,
                message: format!("json_schema: {e}"),
            })?),
            None => None,
        };
        let (url, body, auth) = match ep.wire {
            Wire::OpenAi => (
                join(&ep.base_url, "chat/completions")?,
                openai::chat_body(req),
                Auth::Bearer,
            ),
            Wire::Gemini => (
                join(
                    &ep.base_url,
                    &gemini::action_path(&req.model, "generateContent"),
                )?,
                gemini::chat_body(req),
                Auth::GoogApiKey,
            ),
        };
        let answer = self.post(url, auth, api_key, &body).await?;
        let parsed = match ep.wire {
            Wire::OpenAi => openai::parse_chat(&answer, req),
            Wire::Gemini => gemini::parse_chat(&answer, req),
        }
        .map_err(|e| scrub_error(e, api_key))?;
        let json = match validator {
            Some(v) => Some(
                schema::check_answer(&v, &parsed.text)
                    .map_err(|e| ProviderError::InvalidOutput(scrub(&e, api_key)))?,
            ),
            None => None,
        };
        Ok(ChatResponse {
            text: parsed.text,
            json,
            tokens_in: parsed.tokens_in,
            tokens_out: parsed.tokens_out,
            model: parsed.model.unwrap_or_else(|| req.model.clone()),
            finish_reason: parsed.finish_reason,
        })
    }

    /// Embeddings of every input: one HTTP call, no retry.
    #[tracing::instrument(name = "llm.provider.embed", skip_all,
        fields(provider = %ep.provider, wire = %ep.wire, model = %req.model, inputs = req.inputs.len()))]
    pub async fn embed(
        &self,
        ep: &Endpoint,
        api_key: &str,
        req: &EmbedRequest,
    ) -> Result<EmbedResponse, ProviderError> {
        let (url, body, auth) = match ep.wire {
            Wire::OpenAi => (
                join(&ep.base_url, "embeddings")?,
                openai::embed_body(req),
                Auth::Bearer,
            ),
            Wire::Gemini => (
                join(
                    &ep.base_url,
                    &gemini::action_path(&req.model, "batchEmbedContents"),
                )?,
                gemini::embed_body(req),
                Auth::GoogApiKey,
            ),
        };
        let answer = self.post(url, auth, api_key, &body).await?;
        match ep.wire {
            Wire::OpenAi => openai::parse_embed(&answer, req),
            Wire::Gemini => gemini::parse_embed(&answer, req),
        }
        .map_err(|e| scrub_error(e, api_key))
    }

    /// POST the body, classify the status, read at most
    /// [`MAX_ANSWER_BYTES`] and parse JSON.
    async fn post(
        &self,
        url: reqwest::Url,
        auth: Auth,
        api_key: &str,
        body: &Value,
    ) -> Result<Value, ProviderError> {
        let started = Instant::now();
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if !api_key.is_empty() {
            // Keyless local servers (Ollama, vLLM) get no header at all.
            let (name, value) = match auth {
                Auth::Bearer => (AUTHORIZATION, format!("Bearer {api_key}")),
                Auth::GoogApiKey => (HeaderName::from_static("x-goog-api-key"), api_key.into()),
            };
            let mut value = HeaderValue::from_str(&value)
                .map_err(|_| ProviderError::Unauthorized { status: 0 })?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let body = serde_json::to_vec(body).map_err(|e| ProviderError::Rejected {
            status: 0,
            message: format!("request body: {e}"),
        })?;
        let result = self.exchange(url, headers, body, api_key).await;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match &result {
            Ok(_) => tracing::debug!(elapsed_ms, "llm provider answered"),
            Err(e) => tracing::debug!(elapsed_ms, error = %e, "llm provider call failed"),
        }
        result
    }

    async fn exchange(
        &self,
        url: reqwest::Url,
        headers: HeaderMap,
        body: Vec<u8>,
        api_key: &str,
    ) -> Result<Value, ProviderError> {
        let mut resp = self
            .http
            .post(url)
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|e| from_reqwest(e, api_key))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let mut bytes = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| from_reqwest(e, api_key))? {
            if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(ProviderError::Malformed(format!(
                    "the answer is larger than {MAX_ANSWER_BYTES} bytes"
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        if (200..300).contains(&status) {
            return serde_json::from_slice(&bytes).map_err(|e| {
                ProviderError::Malformed(format!(
                    "HTTP {status} with a body that is not JSON (line {}, column {}, {} bytes)",
                    e.line(),
                    e.column(),
                    bytes.len()
                ))
            });
        }
        let error_body: Option<Value> = serde_json::from_slice(&bytes).ok();
        Err(match status {
            429 => ProviderError::RateLimited {
                retry_after: retry_after.or_else(|| error_body.as_ref().and_then(retry_info)),
            },
            401 | 403 => ProviderError::Unauthorized { status },
            408 => ProviderError::Timeout,
            500..=599 => ProviderError::Server {
                status,
                retry_after: retry_after.or_else(|| error_body.as_ref().and_then(retry_info)),
            },
            _ => ProviderError::Rejected {
                status,
                message: scrub(&error_message(error_body.as_ref(), &bytes), api_key),
            },
        })
    }
}

/// `{base}/{path}` as a URL; a base that is not an http(s) URL is refused
/// before sending.
fn join(base: &str, path: &str) -> Result<reqwest::Url, ProviderError> {
    let refused = || ProviderError::Rejected {
        status: 0,
        message: "base_url is not an http(s) URL".into(),
    };
    let url = reqwest::Url::parse(&format!("{}/{path}", base.trim_end_matches('/')))
        .map_err(|_| refused())?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        _ => Err(refused()),
    }
}

fn from_reqwest(e: reqwest::Error, api_key: &str) -> ProviderError {
    if e.is_timeout() {
        return ProviderError::Timeout;
    }
    // The URL holds no key (keys travel in headers) but may hold
    // credentials in a base_url: leave it out.
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    ProviderError::Connect(scrub(&text, api_key))
}

/// Retry-After: delay-seconds (fractions tolerated) or an HTTP-date, as a
/// duration from `now` (a date in the past is zero).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Gemini puts the delay of a 429 in the body:
/// `error.details[{"@type": "type.googleapis.com/google.rpc.RetryInfo",
/// "retryDelay": "13s"}]`.
fn retry_info(body: &Value) -> Option<Duration> {
    body.pointer("/error/details")?
        .as_array()?
        .iter()
        .filter(|d| {
            d.get("@type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with("google.rpc.RetryInfo"))
        })
        .find_map(|d| {
            let delay = d.get("retryDelay")?.as_str()?.strip_suffix('s')?;
            let secs: f64 = delay.parse().ok()?;
            (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
        })
}

/// The provider's own words for a refusal: `error.message` (both wires),
/// else the start of the body.
fn error_message(body: Option<&Value>, raw: &[u8]) -> String {
    let message = body
        .and_then(|b| {
            b.pointer("/error/message")
                .or_else(|| b.get("message"))
                .or_else(|| b.get("error"))
        })
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(raw).into_owned());
    let message = message.trim();
    if message.chars().count() > MAX_MESSAGE_CHARS {
        let cut: String = message.chars().take(MAX_MESSAGE_CHARS).collect();
        format!("{cut}…")
    } else {
        message.to_string()
    }
}

/// Removes the key (and any long piece of it a provider may echo, like
/// OpenAI's `sk-abc…xyz` hint) from text kept in an error.
pub(crate) fn scrub(text: &str, api_key: &str) -> String {
    let key = api_key.trim();
    if key.len() < 4 {
        return text.to_string();
    }
    let mut out = text.replace(key, "[key]");
    // A provider may echo a prefix or suffix of the key: remove any run of
    // 8 or more characters of the key.
    if key.len() >= 8 {
        let chars: Vec<char> = key.chars().collect();
        for window in (8..chars.len()).rev() {
            for start in 0..=chars.len() - window {
                let piece: String = chars[start..start + window].iter().collect();
                if out.contains(&piece) {
                    out = out.replace(&piece, "[key]");
                }
            }
        }
    }
    out
}

fn scrub_error(e: ProviderError, api_key: &str) -> ProviderError {
    match e {
        ProviderError::Connect(m) => ProviderError::Connect(scrub(&m, api_key)),
        ProviderError::Malformed(m) => ProviderError::Malformed(scrub(&m, api_key)),
        ProviderError::Rejected { status, message } => ProviderError::Rejected {
            status,
            message: scrub(&message, api_key),
        },
        ProviderError::InvalidOutput(m) => ProviderError::InvalidOutput(scrub(&m, api_key)),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("30", now), Some(Duration::from_secs(30)));
        assert_eq!(
            parse_retry_after(" 1.5 ", now),
            Some(Duration::from_millis(1500))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(120));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(120))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(120));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }

    #[test]
    fn gemini_retry_info() {
        let body = serde_json::json!({"error": {"code": 429, "details": [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure"},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "13s"}
        ]}});
        assert_eq!(retry_info(&body), Some(Duration::from_secs(13)));
    }

    #[test]
    fn scrub_removes_the_key_and_long_pieces_of_it() {
        let key = "sk-proj-ABCDEFGHIJKLMNOP";
        let text =
            format!("Incorrect API key provided: {key}. Also sk-proj-ABC***MNOP and IJKLMNOP.");
        let out = scrub(&text, key);
        assert!(!out.contains(key));
        assert!(!out.contains("IJKLMNOP"), "{out}");
        assert!(!out.contains("sk-proj-ABC"), "{out}");
    }

    #[test]
    fn classification() {
        let rl = ProviderError::RateLimited {
            retry_after: Some(Duration::from_secs(2)),
        };
        assert!(rl.retryable() && rl.cools_key());
        assert_eq!(rl.retry_after(), Some(Duration::from_secs(2)));
        let un = ProviderError::Unauthorized { status: 401 };
        assert!(!un.retryable() && un.cools_key());
        let sv = ProviderError::Server {
            status: 503,
            retry_after: None,
        };
        assert!(sv.retryable() && !sv.cools_key());
        assert!(ProviderError::Timeout.retryable());
        assert!(ProviderError::Connect("refused".into()).retryable());
        for e in [
            ProviderError::Malformed("x".into()),
            ProviderError::InvalidOutput("x".into()),
            ProviderError::Rejected {
                status: 400,
                message: "x".into(),
            },
        ] {
            assert!(!e.retryable() && !e.cools_key() && e.retry_after().is_none());
        }
    }

    #[test]
    fn estimate() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcd"), 1);
        assert_eq!(estimate_tokens("abcde"), 2);
    }
}
