//! Structured output: the JSON schema of an answer, validated on our side
//! whatever the provider promised, and translated for the wires that take
//! one.
//!
//! Validation uses the `jsonschema` crate (JSON Schema drafts 4 to 2020-12,
//! draft from `$schema`, 2020-12 by default); built without its HTTP and
//! file resolvers, so a `$ref` to anything outside the schema does not
//! compile instead of fetching.

use jsonschema::Validator;
use serde_json::{Map, Value};

/// How many schema violations an error names.
const MAX_ERRORS: usize = 3;
/// How long one violation's text may be (it quotes the answer).
const MAX_ERROR_CHARS: usize = 200;

/// Compiles a schema; the error says why it does not compile.
pub fn compile(schema: &Value) -> Result<Validator, String> {
    jsonschema::validator_for(schema).map_err(|e| cut(&e.to_string()))
}

/// The answer as JSON, then checked against the compiled schema.
pub fn check_answer(validator: &Validator, text: &str) -> Result<Value, String> {
    let value = parse_answer(text)?;
    validate(validator, &value)?;
    Ok(value)
}

/// [`compile`] + [`check_answer`] in one call.
pub fn check(schema: &Value, text: &str) -> Result<Value, String> {
    let validator = compile(schema).map_err(|e| format!("the schema does not compile: {e}"))?;
    check_answer(&validator, text)
}

/// Every violation (the first [`MAX_ERRORS`]) as `path: message`.
pub fn validate(validator: &Validator, value: &Value) -> Result<(), String> {
    let mut errors = validator.iter_errors(value).peekable();
    if errors.peek().is_none() {
        return Ok(());
    }
    let mut named: Vec<String> = Vec::new();
    let mut more = 0usize;
    for e in errors {
        if named.len() < MAX_ERRORS {
            let path = e.instance_path().to_string();
            let path = if path.is_empty() { "/".into() } else { path };
            named.push(cut(&format!("{path}: {e}")));
        } else {
            more += 1;
        }
    }
    let mut message = named.join("; ");
    if more > 0 {
        message.push_str(&format!(" (and {more} more)"));
    }
    Err(message)
}

/// The answer text as JSON. Tolerates what models wrap JSON in when no
/// wire-level structured output held them: surrounding whitespace and a
/// Markdown code fence (```` ```json ... ``` ````).
pub fn parse_answer(text: &str) -> Result<Value, String> {
    let mut body = text.trim();
    if let Some(rest) = body.strip_prefix("```") {
        // Drop the fence line (``` or ```json) and the closing fence.
        let rest = rest.split_once('\n').map_or("", |(_, r)| r);
        body = rest.trim_end().strip_suffix("```").unwrap_or(rest).trim();
    }
    serde_json::from_str(body).map_err(|e| {
        format!(
            "the answer is not JSON (line {}, column {}: {})",
            e.line(),
            e.column(),
            match e.classify() {
                serde_json::error::Category::Eof => "it ends too early",
                serde_json::error::Category::Syntax => "syntax error",
                serde_json::error::Category::Data => "wrong data",
                serde_json::error::Category::Io => "read error",
            }
        )
    })
}

/// The `name` OpenAI's `response_format.json_schema` requires
/// (`^[a-zA-Z0-9_-]{1,64}$`): the schema's `title` when it fits, else
/// `answer`.
pub fn schema_name(schema: &Value) -> String {
    schema
        .get("title")
        .and_then(Value::as_str)
        .filter(|t| {
            !t.is_empty()
                && t.len() <= 64
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
        .unwrap_or("answer")
        .to_string()
}

/// Gemini's `responseSchema` is a subset of OpenAPI 3.0's Schema object,
/// not JSON Schema: upper-case `type`, `nullable` instead of a `"null"`
/// type, no `additionalProperties`, `$schema`, `$ref`, `const`... This
/// keeps what it takes, turns `["x", "null"]` into `nullable`, `const` into
/// a one-value `enum`, inlines local `$ref`s (`#/$defs/..`,
/// `#/definitions/..`) and drops the rest. The answer is still validated
/// against the original schema.
pub fn to_gemini(schema: &Value) -> Value {
    convert(schema, schema, 0)
}

const GEMINI_KEEP: &[&str] = &[
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "required",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "propertyOrdering",
];

/// `$ref` chains deeper than this are dropped (recursive schemas).
const MAX_REF_DEPTH: usize = 16;

fn convert(node: &Value, root: &Value, depth: usize) -> Value {
    let Some(obj) = node.as_object() else {
        return node.clone();
    };
    if let Some(target) = obj.get("$ref").and_then(Value::as_str) {
        let found = target
            .strip_prefix('#')
            .and_then(|pointer| root.pointer(pointer));
        return match found {
            Some(t) if depth < MAX_REF_DEPTH => convert(t, root, depth + 1),
            _ => Value::Object(Map::new()),
        };
    }
    let mut out = Map::new();
    match obj.get("type") {
        Some(Value::String(t)) => {
            out.insert("type".into(), Value::String(t.to_uppercase()));
        }
        Some(Value::Array(types)) => {
            let named: Vec<&str> = types.iter().filter_map(Value::as_str).collect();
            if named.contains(&"null") {
                out.insert("nullable".into(), Value::Bool(true));
            }
            if let Some(t) = named.iter().find(|t| **t != "null") {
                out.insert("type".into(), Value::String(t.to_uppercase()));
            }
        }
        _ => {}
    }
    for (key, value) in obj {
        match key.as_str() {
            "properties" => {
                if let Some(props) = value.as_object() {
                    let props = props
                        .iter()
                        .map(|(k, v)| (k.clone(), convert(v, root, depth)))
                        .collect();
                    out.insert("properties".into(), Value::Object(props));
                }
            }
            "items" => {
                out.insert("items".into(), convert(value, root, depth));
            }
            "anyOf" | "oneOf" => {
                if let Some(list) = value.as_array() {
                    let list = list.iter().map(|v| convert(v, root, depth)).collect();
                    out.insert("anyOf".into(), Value::Array(list));
                }
            }
            "const" => {
                out.insert("enum".into(), Value::Array(vec![value.clone()]));
            }
            k if GEMINI_KEEP.contains(&k) => {
                out.insert(key.clone(), value.clone());
            }
            _ => {}
        }
    }
    Value::Object(out)
}

fn cut(text: &str) -> String {
    if text.chars().count() > MAX_ERROR_CHARS {
        let head: String = text.chars().take(MAX_ERROR_CHARS).collect();
        format!("{head}…")
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {"summary": {"type": "string"}, "score": {"type": "integer", "minimum": 0}},
            "required": ["summary", "score"],
            "additionalProperties": false
        })
    }

    #[test]
    fn valid_answers_pass_fenced_or_not() {
        let v = compile(&schema()).unwrap();
        assert_eq!(
            check_answer(&v, r#"{"summary": "ok", "score": 3}"#).unwrap()["score"],
            3
        );
        let fenced = "```json\n{\"summary\": \"ok\", \"score\": 1}\n```";
        assert_eq!(check_answer(&v, fenced).unwrap()["summary"], "ok");
    }

    #[test]
    fn invalid_answers_name_the_path() {
        let v = compile(&schema()).unwrap();
        let e = check_answer(&v, r#"{"summary": "ok", "score": -1}"#).unwrap_err();
        assert!(e.contains("/score"), "{e}");
        let e = check_answer(&v, r#"{"summary": "ok"}"#).unwrap_err();
        assert!(e.contains("score"), "{e}");
        let e = check_answer(&v, "Sure! Here it is").unwrap_err();
        assert!(e.contains("not JSON"), "{e}");
    }

    #[test]
    fn remote_refs_do_not_compile() {
        assert!(compile(&json!({"$ref": "https://example.com/schema.json"})).is_err());
    }

    #[test]
    fn gemini_translation() {
        let s = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "x",
            "type": "object",
            "$defs": {"tag": {"type": "string", "enum": ["a", "b"]}},
            "properties": {
                "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}},
                "kind": {"const": "k"},
                "note": {"type": ["string", "null"], "default": "n"}
            },
            "required": ["tags"],
            "additionalProperties": false
        });
        assert_eq!(
            to_gemini(&s),
            json!({
                "title": "x",
                "type": "OBJECT",
                "properties": {
                    "tags": {"type": "ARRAY", "items": {"type": "STRING", "enum": ["a", "b"]}},
                    "kind": {"enum": ["k"]},
                    "note": {"type": "STRING", "nullable": true}
                },
                "required": ["tags"]
            })
        );
    }

    #[test]
    fn names() {
        assert_eq!(schema_name(&json!({"title": "Digest_v1"})), "Digest_v1");
        assert_eq!(schema_name(&json!({"title": "a digest"})), "answer");
        assert_eq!(schema_name(&json!({})), "answer");
    }
}
