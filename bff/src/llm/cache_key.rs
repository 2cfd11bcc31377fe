//! The key of the response cache: SHA-256 of the canonical JSON of what
//! decides an answer — the feature, the route's chain of (provider, model),
//! the **masked** messages and the parameters. Canonical: object keys
//! sorted (serde_json's map), no whitespace, numbers as serde_json writes
//! them. The key never holds PII (the messages are masked first), and the
//! database scopes it by tenant (`llm_cache` is keyed by tenant and key), so
//! identical masked input hits within a tenant and never across tenants.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::provider::{Message, Role};

/// A stable name of a role in the key.
pub fn role_name(role: &Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

/// What the key is computed from.
pub struct KeyInput<'a> {
    pub feature: &'a str,
    /// The route's chain as `(provider, model)`, in order.
    pub chain: &'a [(String, String)],
    /// The masked messages.
    pub messages: &'a [Message],
    pub temperature: Option<f32>,
    pub max_output_tokens: Option<u32>,
    pub json_schema: Option<&'a Value>,
}

/// The canonical JSON the key hashes (exposed for tests and debugging; it
/// holds masked text only).
pub fn canonical(input: &KeyInput<'_>) -> String {
    let value = json!({
        "v": 1,
        "feature": input.feature,
        "chain": input.chain.iter().map(|(p, m)| json!([p, m])).collect::<Vec<_>>(),
        "messages": input.messages.iter()
            .map(|m| json!([role_name(&m.role), m.content]))
            .collect::<Vec<_>>(),
        "params": {
            // f32 → f64 through its shortest decimal, so 0.2 stays 0.2.
            "temperature": input.temperature.map(|t| t.to_string().parse::<f64>().unwrap_or(f64::from(t))),
            "max_output_tokens": input.max_output_tokens,
            "json_schema": input.json_schema,
        },
    });
    value.to_string()
}

/// The 32-byte cache key.
pub fn cache_key(input: &KeyInput<'_>) -> [u8; 32] {
    Sha256::digest(canonical(input).as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: Role, content: &str) -> Message {
        Message {
            role,
            content: content.into(),
        }
    }

    fn chain() -> Vec<(String, String)> {
        vec![
            ("gemini".into(), "gemini-2.0-flash".into()),
            ("openai".into(), "gpt-4o-mini".into()),
        ]
    }

    fn key(messages: &[Message], temperature: Option<f32>, schema: Option<&Value>) -> [u8; 32] {
        cache_key(&KeyInput {
            feature: "chat",
            chain: &chain(),
            messages,
            temperature,
            max_output_tokens: Some(256),
            json_schema: schema,
        })
    }

    #[test]
    fn equal_input_equal_key_and_every_part_counts() {
        let m = vec![
            msg(Role::System, "be brief"),
            msg(Role::User, "call [PHONE_1]"),
        ];
        let base = key(&m, Some(0.2), None);
        assert_eq!(base, key(&m, Some(0.2), None));
        assert_ne!(base, key(&m, Some(0.3), None));
        assert_ne!(base, key(&m, None, None));
        assert_ne!(base, key(&m[1..], Some(0.2), None));
        let swapped = vec![
            msg(Role::User, "be brief"),
            msg(Role::User, "call [PHONE_1]"),
        ];
        assert_ne!(base, key(&swapped, Some(0.2), None));
        let schema = json!({"type": "object"});
        assert_ne!(base, key(&m, Some(0.2), Some(&schema)));
        // Key order of the schema does not matter.
        let a = json!({"type": "object", "required": ["x"]});
        let b: Value = serde_json::from_str(r#"{"required": ["x"], "type": "object"}"#).unwrap();
        assert_eq!(key(&m, None, Some(&a)), key(&m, None, Some(&b)));
        // Another chain or feature is another key.
        let other = cache_key(&KeyInput {
            feature: "digest",
            chain: &chain(),
            messages: &m,
            temperature: Some(0.2),
            max_output_tokens: Some(256),
            json_schema: None,
        });
        assert_ne!(base, other);
        let text = canonical(&KeyInput {
            feature: "chat",
            chain: &chain()[..1],
            messages: &m,
            temperature: Some(0.2),
            max_output_tokens: None,
            json_schema: None,
        });
        assert!(text.contains(r#""temperature":0.2"#), "{text}");
        assert!(!text.contains(": "), "{text}");
    }

    #[test]
    fn message_boundaries_count() {
        let a = vec![msg(Role::User, "ab"), msg(Role::User, "c")];
        let b = vec![msg(Role::User, "a"), msg(Role::User, "bc")];
        assert_ne!(key(&a, None, None), key(&b, None, None));
    }
}
