//! TEMPORARY stub of llm-prov's provider interface (LLM-INTERFACE.md), so
//! the gateway compiles before h-llm-prov is merged. Replaced whole by the
//! real module at the merge.
#![allow(dead_code)]

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq)]
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
}

#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    pub temperature: Option<f32>,
    pub max_output_tokens: Option<u32>,
    pub json_schema: Option<serde_json::Value>,
}

#[derive(Debug, Clone)]
pub struct ChatResponse {
    pub text: String,
    pub json: Option<serde_json::Value>,
    pub tokens_in: u64,
    pub tokens_out: u64,
    pub model: String,
    pub finish_reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    OpenAi,
    Gemini,
}

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub provider: String,
    pub wire: Wire,
    pub base_url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("rate limited")]
    RateLimited { retry_after: Option<Duration> },
    #[error("unauthorized ({status})")]
    Unauthorized { status: u16 },
    #[error("server error {status}")]
    Server {
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("timeout")]
    Timeout,
    #[error("connect: {0}")]
    Connect(String),
    #[error("malformed: {0}")]
    Malformed(String),
    #[error("rejected {status}: {message}")]
    Rejected { status: u16, message: String },
    #[error("invalid output: {0}")]
    InvalidOutput(String),
}

impl ProviderError {
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            ProviderError::RateLimited { .. }
                | ProviderError::Server { .. }
                | ProviderError::Timeout
                | ProviderError::Connect(_)
        )
    }
    pub fn cools_key(&self) -> bool {
        matches!(
            self,
            ProviderError::RateLimited { .. } | ProviderError::Unauthorized { .. }
        )
    }
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderError::RateLimited { retry_after }
            | ProviderError::Server { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Client {}

impl Client {
    pub fn new(_connect_timeout: Duration, _total_timeout: Duration) -> Self {
        Client {}
    }
    pub async fn chat(
        &self,
        _ep: &Endpoint,
        _api_key: &str,
        _req: &ChatRequest,
    ) -> Result<ChatResponse, ProviderError> {
        Err(ProviderError::Connect("stub".into()))
    }
}
