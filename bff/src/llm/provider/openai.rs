//! The OpenAI-compatible wire: `POST {base}/chat/completions` and
//! `POST {base}/embeddings`.
//!
//! Chat: `{model, messages: [{role, content}], temperature?, max_tokens?,
//! response_format?: {type: "json_schema", json_schema: {name, schema,
//! strict: true}}}`; the answer's `choices[0].message.content` (or
//! `.refusal`), `finish_reason`, `usage.prompt_tokens` /
//! `usage.completion_tokens` (which already include reasoning tokens).
//! `max_tokens` rather than OpenAI's newer `max_completion_tokens`: it is
//! the field every compatible server (Ollama, vLLM, LiteLLM, OpenRouter)
//! reads.
//!
//! Embeddings: `{model, input: [..], encoding_format: "float"}`; the
//! answer's `data[{index, embedding}]` and `usage.prompt_tokens`.

use serde_json::{json, Map, Value};

use super::messages::{
    count, estimate_tokens, ChatRequest, EmbedRequest, EmbedResponse, ParsedChat,
};
use super::messages::{ProviderError, Role};
use crate::llm::schema;

pub(super) fn chat_body(req: &ChatRequest) -> Value {
    let messages: Vec<Value> = req
        .messages
        .iter()
        .map(|m| {
            let role = match m.role {
                Role::System => "system",
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            json!({"role": role, "content": m.content})
        })
        .collect();
    let mut body = Map::new();
    body.insert("model".into(), json!(req.model));
    body.insert("messages".into(), Value::Array(messages));
    if let Some(t) = req.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(n) = req.max_output_tokens {
        body.insert("max_tokens".into(), json!(n));
    }
    if let Some(s) = &req.json_schema {
        body.insert(
            "response_format".into(),
            json!({
                "type": "json_schema",
                "json_schema": {"name": schema::schema_name(s), "schema": s, "strict": true}
            }),
        );
    }
    Value::Object(body)
}

pub(super) fn parse_chat(answer: &Value, req: &ChatRequest) -> Result<ParsedChat, ProviderError> {
    let malformed = |what: &str| ProviderError::Malformed(format!("chat completion: {what}"));
    let choice = answer
        .get("choices")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("no choices"))?
        .first()
        .ok_or_else(|| malformed("no choices"))?;
    let message = choice
        .get("message")
        .ok_or_else(|| malformed("choices[0] has no message"))?;
    let text = match message.get("content") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => {
            if let Some(refusal) = message.get("refusal").and_then(Value::as_str) {
                return Err(ProviderError::Rejected {
                    status: 200,
                    message: format!("the model refused: {refusal}"),
                });
            }
            String::new()
        }
        Some(_) => return Err(malformed("choices[0].message.content is not text")),
    };
    let finish_reason = choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let (tokens_in, tokens_out) = match answer.get("usage") {
        Some(usage) if usage.is_object() => (
            count(usage, "prompt_tokens", "usage")?,
            count(usage, "completion_tokens", "usage")?,
        ),
        None | Some(Value::Null) => {
            tracing::warn!(model = %req.model, "the provider reported no usage; tokens estimated");
            let prompt: String = req.messages.iter().map(|m| m.content.as_str()).collect();
            (estimate_tokens(&prompt), estimate_tokens(&text))
        }
        Some(_) => return Err(malformed("usage is not an object")),
    };
    Ok(ParsedChat {
        text,
        tokens_in,
        tokens_out,
        model: answer
            .get("model")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .map(str::to_owned),
        finish_reason,
    })
}

pub(super) fn embed_body(req: &EmbedRequest) -> Value {
    json!({"model": req.model, "input": req.inputs, "encoding_format": "float"})
}

pub(super) fn parse_embed(
    answer: &Value,
    req: &EmbedRequest,
) -> Result<EmbedResponse, ProviderError> {
    let malformed = |what: String| ProviderError::Malformed(format!("embeddings: {what}"));
    let data = answer
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("no data".into()))?;
    if data.len() != req.inputs.len() {
        return Err(malformed(format!(
            "{} vectors for {} inputs",
            data.len(),
            req.inputs.len()
        )));
    }
    let mut vectors: Vec<Option<Vec<f32>>> = vec![None; data.len()];
    for (position, item) in data.iter().enumerate() {
        let index = match item.get("index") {
            None | Some(Value::Null) => position,
            Some(v) => v
                .as_u64()
                .map(|i| i as usize)
                .filter(|i| *i < vectors.len())
                .ok_or_else(|| malformed(format!("data[{position}].index is out of range")))?,
        };
        let vector = floats(item.get("embedding"))
            .ok_or_else(|| malformed(format!("data[{position}].embedding is not numbers")))?;
        if vectors[index].replace(vector).is_some() {
            return Err(malformed(format!("index {index} answered twice")));
        }
    }
    let vectors = vectors.into_iter().map(Option::unwrap_or_default).collect();
    let tokens_in = match answer.get("usage") {
        Some(usage) if usage.is_object() => count(usage, "prompt_tokens", "usage")?,
        None | Some(Value::Null) => req.inputs.iter().map(|t| estimate_tokens(t)).sum(),
        Some(_) => return Err(malformed("usage is not an object".into())),
    };
    Ok(EmbedResponse { vectors, tokens_in })
}

/// A JSON array of numbers as f32s.
pub(super) fn floats(v: Option<&Value>) -> Option<Vec<f32>> {
    v?.as_array()?
        .iter()
        .map(|x| x.as_f64().map(|f| f as f32))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::provider::Message;

    #[test]
    fn body_carries_the_schema_in_response_format() {
        let req = ChatRequest {
            model: "gpt-4o-mini".into(),
            messages: vec![Message::system("be brief"), Message::user("hi")],
            temperature: Some(0.5),
            max_output_tokens: Some(64),
            json_schema: Some(json!({"title": "Reply", "type": "object"})),
        };
        let body = chat_body(&req);
        assert_eq!(
            body["messages"][0],
            json!({"role": "system", "content": "be brief"})
        );
        assert_eq!(body["max_tokens"], 64);
        assert_eq!(body["response_format"]["type"], "json_schema");
        assert_eq!(body["response_format"]["json_schema"]["name"], "Reply");
        assert_eq!(body["response_format"]["json_schema"]["strict"], true);
    }

    #[test]
    fn embeddings_follow_index() {
        let req = EmbedRequest {
            model: "m".into(),
            inputs: vec!["a".into(), "b".into()],
        };
        let answer = json!({"data": [
            {"index": 1, "embedding": [2.0]}, {"index": 0, "embedding": [1.0]}
        ], "usage": {"prompt_tokens": 2}});
        let r = parse_embed(&answer, &req).unwrap();
        assert_eq!(r.vectors, vec![vec![1.0], vec![2.0]]);
        assert_eq!(r.tokens_in, 2);
    }

    #[test]
    fn negative_usage_is_malformed() {
        let req = ChatRequest::default();
        let answer = json!({"choices": [{"message": {"content": "x"}}],
                            "usage": {"prompt_tokens": -1, "completion_tokens": 1}});
        assert!(matches!(
            parse_chat(&answer, &req),
            Err(ProviderError::Malformed(_))
        ));
    }
}
