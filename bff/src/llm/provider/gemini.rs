//! Google Gemini's native wire: `POST {base}/models/{model}:generateContent`
//! and `POST {base}/models/{model}:batchEmbedContents`.
//!
//! Chat: system messages become `systemInstruction`, the others `contents`
//! with roles `user` / `model`; `generationConfig` carries `temperature`,
//! `maxOutputTokens` and, for structured output, `responseMimeType:
//! application/json` + `responseSchema` (the request's JSON schema
//! translated to Gemini's OpenAPI subset). The answer:
//! `candidates[0].content.parts[].text` (thought parts skipped),
//! `finishReason`, `usageMetadata.promptTokenCount` /
//! `candidatesTokenCount` (+ `thoughtsTokenCount`, billed as output). No
//! candidates with `promptFeedback.blockReason` is a refusal.
//!
//! Embeddings: `{requests: [{model: "models/{model}", content: {parts:
//! [{text}]}}]}`; the answer's `embeddings[].values`. The public API sends
//! no usage for embeddings; `usageMetadata.promptTokenCount` is read where
//! a server sends it (Vertex does), else tokens are estimated.

use serde_json::{json, Map, Value};

use super::messages::{
    count, estimate_tokens, ChatRequest, EmbedRequest, EmbedResponse, ParsedChat,
};
use super::messages::{ProviderError, Role};
use super::openai::floats;
use crate::llm::schema;

/// `models/{model}:{action}`, the model percent-encoded as one path
/// segment (a leading `models/` in the model name is accepted).
pub(super) fn action_path(model: &str, action: &str) -> String {
    let model = model.strip_prefix("models/").unwrap_or(model);
    let mut encoded = String::with_capacity(model.len());
    for b in model.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("models/{encoded}:{action}")
}

pub(super) fn chat_body(req: &ChatRequest) -> Value {
    let mut system = Vec::new();
    let mut contents = Vec::new();
    for m in &req.messages {
        match m.role {
            Role::System => system.push(json!({"text": m.content})),
            Role::User => contents.push(json!({"role": "user", "parts": [{"text": m.content}]})),
            Role::Assistant => {
                contents.push(json!({"role": "model", "parts": [{"text": m.content}]}))
            }
        }
    }
    let mut body = Map::new();
    body.insert("contents".into(), Value::Array(contents));
    if !system.is_empty() {
        body.insert("systemInstruction".into(), json!({"parts": system}));
    }
    let mut config = Map::new();
    if let Some(t) = req.temperature {
        config.insert("temperature".into(), json!(t));
    }
    if let Some(n) = req.max_output_tokens {
        config.insert("maxOutputTokens".into(), json!(n));
    }
    if let Some(s) = &req.json_schema {
        config.insert("responseMimeType".into(), json!("application/json"));
        config.insert("responseSchema".into(), schema::to_gemini(s));
    }
    if !config.is_empty() {
        body.insert("generationConfig".into(), Value::Object(config));
    }
    Value::Object(body)
}

pub(super) fn parse_chat(answer: &Value, req: &ChatRequest) -> Result<ParsedChat, ProviderError> {
    let malformed = |what: &str| ProviderError::Malformed(format!("generateContent: {what}"));
    let candidate = match answer.get("candidates") {
        Some(Value::Array(c)) if !c.is_empty() => &c[0],
        None | Some(Value::Null) | Some(Value::Array(_)) => {
            return Err(
                match answer
                    .pointer("/promptFeedback/blockReason")
                    .and_then(Value::as_str)
                {
                    Some(reason) => ProviderError::Rejected {
                        status: 200,
                        message: format!("the prompt was blocked: {reason}"),
                    },
                    None => malformed("no candidates"),
                },
            );
        }
        Some(_) => return Err(malformed("candidates is not a list")),
    };
    let finish_reason = candidate
        .get("finishReason")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let parts = match candidate.pointer("/content/parts") {
        Some(Value::Array(p)) => p.as_slice(),
        None | Some(Value::Null) => &[],
        Some(_) => return Err(malformed("content.parts is not a list")),
    };
    let mut text = String::new();
    let mut any_text = false;
    for part in parts {
        if part.get("thought").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        if let Some(t) = part.get("text") {
            let t = t
                .as_str()
                .ok_or_else(|| malformed("a part's text is not text"))?;
            text.push_str(t);
            any_text = true;
        }
    }
    if !any_text {
        if let Some(reason) = finish_reason
            .as_deref()
            .filter(|r| !matches!(*r, "STOP" | "MAX_TOKENS"))
        {
            return Err(ProviderError::Rejected {
                status: 200,
                message: format!("no answer, finish reason {reason}"),
            });
        }
    }
    let (tokens_in, tokens_out) = match answer.get("usageMetadata") {
        Some(usage) if usage.is_object() => (
            count(usage, "promptTokenCount", "usageMetadata")?,
            count(usage, "candidatesTokenCount", "usageMetadata")?
                + count(usage, "thoughtsTokenCount", "usageMetadata")?,
        ),
        None | Some(Value::Null) => {
            tracing::warn!(model = %req.model, "the provider reported no usage; tokens estimated");
            let prompt: String = req.messages.iter().map(|m| m.content.as_str()).collect();
            (estimate_tokens(&prompt), estimate_tokens(&text))
        }
        Some(_) => return Err(malformed("usageMetadata is not an object")),
    };
    Ok(ParsedChat {
        text,
        tokens_in,
        tokens_out,
        model: answer
            .get("modelVersion")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .map(str::to_owned),
        finish_reason,
    })
}

pub(super) fn embed_body(req: &EmbedRequest) -> Value {
    let model = req.model.strip_prefix("models/").unwrap_or(&req.model);
    let requests: Vec<Value> = req
        .inputs
        .iter()
        .map(|t| json!({"model": format!("models/{model}"), "content": {"parts": [{"text": t}]}}))
        .collect();
    json!({ "requests": requests })
}

pub(super) fn parse_embed(
    answer: &Value,
    req: &EmbedRequest,
) -> Result<EmbedResponse, ProviderError> {
    let malformed = |what: String| ProviderError::Malformed(format!("batchEmbedContents: {what}"));
    let embeddings = answer
        .get("embeddings")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("no embeddings".into()))?;
    if embeddings.len() != req.inputs.len() {
        return Err(malformed(format!(
            "{} vectors for {} inputs",
            embeddings.len(),
            req.inputs.len()
        )));
    }
    let vectors = embeddings
        .iter()
        .enumerate()
        .map(|(i, e)| {
            floats(e.get("values"))
                .ok_or_else(|| malformed(format!("embeddings[{i}].values is not numbers")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let tokens_in = match answer.get("usageMetadata") {
        Some(usage) if usage.is_object() => count(usage, "promptTokenCount", "usageMetadata")?,
        None | Some(Value::Null) => req.inputs.iter().map(|t| estimate_tokens(t)).sum(),
        Some(_) => return Err(malformed("usageMetadata is not an object".into())),
    };
    Ok(EmbedResponse { vectors, tokens_in })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::provider::Message;

    #[test]
    fn system_goes_to_system_instruction() {
        let req = ChatRequest {
            model: "gemini-2.0-flash".into(),
            messages: vec![
                Message::system("be brief"),
                Message::user("hi"),
                Message::assistant("hello"),
            ],
            json_schema: Some(json!({"type": "object", "additionalProperties": false,
                                     "properties": {"a": {"type": ["string", "null"]}}})),
            ..Default::default()
        };
        let body = chat_body(&req);
        assert_eq!(body["systemInstruction"]["parts"][0]["text"], "be brief");
        assert_eq!(body["contents"][1]["role"], "model");
        let config = &body["generationConfig"];
        assert_eq!(config["responseMimeType"], "application/json");
        assert_eq!(config["responseSchema"]["type"], "OBJECT");
        assert!(config["responseSchema"]
            .get("additionalProperties")
            .is_none());
        assert_eq!(
            config["responseSchema"]["properties"]["a"]["nullable"],
            true
        );
    }

    #[test]
    fn model_is_one_segment() {
        assert_eq!(
            action_path("models/gemini-2.0-flash", "generateContent"),
            "models/gemini-2.0-flash:generateContent"
        );
        assert_eq!(action_path("a/b?c", "x"), "models/a%2Fb%3Fc:x");
    }

    #[test]
    fn thoughts_are_skipped_and_billed() {
        let answer = json!({"candidates": [{"content": {"parts": [
            {"text": "pondering", "thought": true}, {"text": "42"}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 1, "thoughtsTokenCount": 7}});
        let p = parse_chat(&answer, &ChatRequest::default()).unwrap();
        assert_eq!(p.text, "42");
        assert_eq!((p.tokens_in, p.tokens_out), (5, 8));
    }

    #[test]
    fn blocked_prompt_is_rejected() {
        let answer = json!({"promptFeedback": {"blockReason": "SAFETY"}});
        assert!(matches!(
            parse_chat(&answer, &ChatRequest::default()),
            Err(ProviderError::Rejected { status: 200, .. })
        ));
    }
}
