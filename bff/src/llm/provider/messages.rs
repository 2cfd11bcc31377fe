//! What goes to and comes back from a provider, whatever its wire: the
//! requests and answers, the classified errors, the token counts. The wire
//! modules ([`super::openai`], [`super::gemini`]) translate these; the
//! [`super::Client`] sends them.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn system(content: impl Into<String>) -> Self {
        Message {
            role: Role::System,
            content: content.into(),
        }
    }
    pub fn user(content: impl Into<String>) -> Self {
        Message {
            role: Role::User,
            content: content.into(),
        }
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Message {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    pub temperature: Option<f32>,
    pub max_output_tokens: Option<u32>,
    /// JSON schema of the answer (structured output); validated on our side
    /// either way. On the OpenAI wire it is sent with `strict: true`, so a
    /// schema meant for OpenAI itself must follow its strict-mode rules
    /// (every property required, `additionalProperties: false`); on the
    /// Gemini wire it is translated to Gemini's OpenAPI subset
    /// ([`crate::llm::schema::to_gemini`]).
    pub json_schema: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    pub text: String,
    /// The parsed and validated answer when the request had a `json_schema`.
    pub json: Option<Value>,
    /// Tokens as the provider reported them (see [`estimate_tokens`] for
    /// the rare provider that reports none).
    pub tokens_in: u64,
    /// Output tokens as billed: Gemini's `candidatesTokenCount` plus its
    /// `thoughtsTokenCount`; OpenAI's `completion_tokens`.
    pub tokens_out: u64,
    /// The model that answered, as the provider named it (else the model
    /// asked for).
    pub model: String,
    /// As the wire says it: `stop`, `length` (OpenAI); `STOP`, `MAX_TOKENS`
    /// (Gemini).
    pub finish_reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmbedRequest {
    pub model: String,
    pub inputs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbedResponse {
    /// One vector per input, in the order of the inputs.
    pub vectors: Vec<Vec<f32>>,
    /// As reported (OpenAI `usage.prompt_tokens`, Gemini
    /// `usageMetadata.promptTokenCount` where sent). Gemini's public
    /// `batchEmbedContents` reports no usage: then the sum of
    /// [`estimate_tokens`] over the inputs.
    pub tokens_in: u64,
}

/// What went wrong with one provider call. No variant ever holds the key.
///
/// `status: 0` in `Unauthorized`/`Rejected` means we refused before sending
/// (a key that is not a valid header value; a base URL that is not a URL; a
/// `json_schema` that does not compile).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// HTTP 429.
    #[error("rate limited (HTTP 429){}", after(.retry_after))]
    RateLimited { retry_after: Option<Duration> },
    /// HTTP 401/403: the key is wrong, revoked or lacks access.
    #[error("the key was refused (HTTP {status})")]
    Unauthorized { status: u16 },
    /// HTTP 5xx.
    #[error("provider error (HTTP {status}){}", after(.retry_after))]
    Server {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// The connect or total timeout passed (also HTTP 408).
    #[error("timed out")]
    Timeout,
    /// No connection (refused, DNS, TLS, reset before an answer).
    #[error("could not reach the provider: {0}")]
    Connect(String),
    /// A 2xx answer that is not the JSON the wire promises.
    #[error("malformed answer: {0}")]
    Malformed(String),
    /// Any other refusal (other 4xx, a 3xx, a blocked prompt, a model's
    /// refusal): retrying the same request will not help.
    #[error("rejected (HTTP {status}): {message}")]
    Rejected { status: u16, message: String },
    /// The answer is not JSON matching the request's `json_schema`.
    #[error("the answer does not match the schema: {0}")]
    InvalidOutput(String),
}

fn after(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!(", retry after {} s", d.as_secs_f64()),
        None => String::new(),
    }
}

impl ProviderError {
    /// Worth trying again (same model, after a backoff): 429, 5xx, timeouts
    /// and connection failures.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            ProviderError::RateLimited { .. }
                | ProviderError::Server { .. }
                | ProviderError::Timeout
                | ProviderError::Connect(_)
        )
    }

    /// The key should rest (429) or is bad (401/403): the gateway moves to
    /// the next key.
    pub fn cools_key(&self) -> bool {
        matches!(
            self,
            ProviderError::RateLimited { .. } | ProviderError::Unauthorized { .. }
        )
    }

    /// How long the provider asked us to wait (Retry-After, or Gemini's
    /// `RetryInfo.retryDelay`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderError::RateLimited { retry_after }
            | ProviderError::Server { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A short stable name for ledgers and metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            ProviderError::RateLimited { .. } => "rate_limited",
            ProviderError::Unauthorized { .. } => "unauthorized",
            ProviderError::Server { .. } => "server",
            ProviderError::Timeout => "timeout",
            ProviderError::Connect(_) => "connect",
            ProviderError::Malformed(_) => "malformed",
            ProviderError::Rejected { .. } => "rejected",
            ProviderError::InvalidOutput(_) => "invalid_output",
        }
    }
}

/// The token estimate used where a provider reports no usage: one token per
/// four characters, rounded up (the providers' own rule of thumb).
pub fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// The parts of a chat answer the wire modules read.
pub(super) struct ParsedChat {
    pub(super) text: String,
    pub(super) tokens_in: u64,
    pub(super) tokens_out: u64,
    pub(super) model: Option<String>,
    pub(super) finish_reason: Option<String>,
}

/// A token count from a usage object: absent or null is 0 (proto3 JSON
/// leaves zeros out), anything but a non-negative integer is malformed.
pub(super) fn count(usage: &Value, field: &str, prefix: &str) -> Result<u64, ProviderError> {
    match usage.get(field) {
        None | Some(Value::Null) => Ok(0),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| ProviderError::Malformed(format!("{prefix}.{field} is not a count"))),
    }
}
