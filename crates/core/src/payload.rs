//! The shape check of an RPC's JSON payload (`payload_check` in
//! sql/api/payloads.sql): every RPC that takes a JSON object declares its
//! fields with their JSON types once; unknown keys and wrong types are
//! refused before anything else, naming the field as the caller wrote it
//! (`rfq.origin`, `lines[0].quantity`).
//!
//! A spec is a JSON object: field → `"text"` | `"uuid"` | `"date"` |
//! `"number"` | `"integer"` | `"boolean"` | `"text[]"` | `"uuid[]"` | a
//! nested spec (an object) | `[spec]` (a list of objects, each checked
//! against the spec). JSON null is always allowed (required fields are the
//! RPC's to check); numbers may come as JSON numbers or strings, text,
//! uuid and date as strings (their form is checked by the RPC).
//!
//! Keys are checked in byte order, so of several wrong fields the first in
//! that order is named, and the list of allowed fields is in that order.

use serde_json::{Map, Value};

/// What is wrong with a payload: the field, as the caller named it, and
/// the problem (`"must be a string"`); the house error is
/// `"<field>: <problem>"` with the field as its COLUMN.
#[derive(Debug, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub problem: String,
}

/// A spec that cannot be checked against: a bug of the RPC, not of its
/// caller. `kind` is the spec's value for `field`.
#[derive(Debug, PartialEq, Eq)]
pub struct BadSpec {
    pub field: String,
    pub kind: String,
}

/// The first problem of `payload` (None: a JSON object that fits `spec`).
/// `prefix` is put before every field name (`"rfq."` for the fields of a
/// nested object); a missing payload is named by the prefix or `payload`.
pub fn problem(
    payload: Option<&Value>,
    spec: &Value,
    prefix: &str,
) -> Result<Option<Problem>, BadSpec> {
    let Some(Value::Object(fields)) = payload else {
        let name = prefix.trim_end_matches('.');
        return found(
            if name.is_empty() { "payload" } else { name },
            "must be a JSON object",
        );
    };
    let Value::Object(spec) = spec else {
        return Err(BadSpec {
            field: prefix.trim_end_matches('.').to_owned(),
            kind: spec.to_string(),
        });
    };
    let mut keys: Vec<&String> = fields.keys().collect();
    keys.sort_unstable();
    for key in keys {
        let field = format!("{prefix}{key}");
        let Some(kind) = spec.get(key) else {
            return found(
                field,
                format!("unknown field (allowed: {})", allowed(spec, prefix)),
            );
        };
        let value = &fields[key];
        if value.is_null() {
            continue;
        }
        let problem = match kind {
            Value::Object(_) if !value.is_object() => found(field, "must be an object"),
            Value::Object(_) => problem(Some(value), kind, &format!("{field}.")),
            Value::Array(of) => list_of_objects(&field, value, of.first()),
            Value::String(kind) => scalar(field, value, kind),
            other => Err(BadSpec {
                field,
                kind: other.to_string(),
            }),
        }?;
        if problem.is_some() {
            return Ok(problem);
        }
    }
    Ok(None)
}

fn found(field: impl Into<String>, problem: impl Into<String>) -> Result<Option<Problem>, BadSpec> {
    Ok(Some(Problem {
        field: field.into(),
        problem: problem.into(),
    }))
}

/// The fields of `spec`, with the prefix, in byte order.
fn allowed(spec: &Map<String, Value>, prefix: &str) -> String {
    let mut names: Vec<&String> = spec.keys().collect();
    names.sort_unstable();
    names
        .iter()
        .map(|n| format!("{prefix}{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `[spec]`: a list whose every element is an object fitting `spec`
/// (elements named by index: `lines[0].quantity`).
fn list_of_objects(
    field: &str,
    value: &Value,
    spec: Option<&Value>,
) -> Result<Option<Problem>, BadSpec> {
    let Value::Array(items) = value else {
        return found(field, "must be a list of objects");
    };
    let spec = spec.ok_or_else(|| BadSpec {
        field: field.to_owned(),
        kind: "[]".to_owned(),
    })?;
    for (i, item) in items.iter().enumerate() {
        let name = format!("{field}[{i}]");
        if !item.is_object() {
            return found(name, "must be an object");
        }
        let problem = problem(Some(item), spec, &format!("{name}."))?;
        if problem.is_some() {
            return Ok(problem);
        }
    }
    Ok(None)
}

/// A value of one of the named JSON types.
fn scalar(field: String, value: &Value, kind: &str) -> Result<Option<Problem>, BadSpec> {
    let (fits, otherwise) = match kind {
        "text" | "uuid" | "date" => (value.is_string(), "must be a string"),
        "number" | "integer" => (value.is_number() || value.is_string(), "must be a number"),
        "boolean" => (value.is_boolean(), "must be true or false"),
        "text[]" | "uuid[]" => match value {
            Value::Array(items) => {
                // The first element that is not a string, by its index.
                if let Some(i) = items.iter().position(|e| !e.is_string()) {
                    return found(format!("{field}[{i}]"), "must be a string");
                }
                (true, "")
            }
            _ => (false, "must be a list of strings"),
        },
        other => {
            return Err(BadSpec {
                field,
                kind: other.to_owned(),
            })
        }
    };
    if fits {
        Ok(None)
    } else {
        found(field, otherwise)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> Value {
        json!({"channel": "text", "owner": "uuid", "weight_kg": "number", "urgent": "boolean",
               "tags": "text[]", "rfq": {"origin": "text", "volume": "number"},
               "lines": [{"sku": "text", "qty": "integer"}]})
    }

    fn check(payload: Value) -> Option<(String, String)> {
        problem(Some(&payload), &spec(), "")
            .unwrap()
            .map(|p| (p.field, p.problem))
    }

    fn named(field: &str, problem: &str) -> Option<(String, String)> {
        Some((field.to_owned(), problem.to_owned()))
    }

    #[test]
    fn a_fitting_payload_has_no_problem() {
        assert_eq!(check(json!({})), None);
        assert_eq!(
            check(
                json!({"channel": "web", "weight_kg": "12.5", "urgent": false, "tags": ["a"],
                         "rfq": {"origin": "JKT", "volume": 3}, "lines": [{"sku": "x", "qty": 2}],
                         "owner": null})
            ),
            None
        );
        // JSON null is allowed for every kind, nested specs included.
        assert_eq!(
            check(json!({"rfq": null, "lines": null, "tags": null})),
            None
        );
    }

    #[test]
    fn not_an_object_is_named_by_the_prefix_or_payload() {
        assert_eq!(
            problem(None, &spec(), "").unwrap().map(|p| p.field),
            Some("payload".to_owned())
        );
        let p = problem(Some(&json!([1])), &spec(), "rfq.")
            .unwrap()
            .unwrap();
        assert_eq!(
            (p.field.as_str(), p.problem.as_str()),
            ("rfq", "must be a JSON object")
        );
    }

    #[test]
    fn the_first_unknown_field_in_byte_order_is_named_with_the_allowed_ones() {
        assert_eq!(
            check(json!({"zeta": 1, "due": "2026-01-01", "channel": "web"})),
            named(
                "due",
                "unknown field (allowed: channel, lines, owner, rfq, tags, urgent, weight_kg)"
            )
        );
        assert_eq!(
            check(json!({"rfq": {"origin": "JKT", "dest": "SUB"}})),
            named(
                "rfq.dest",
                "unknown field (allowed: rfq.origin, rfq.volume)"
            )
        );
        // An unknown key is refused even when its value is null.
        assert_eq!(check(json!({"x": null})).map(|p| p.0), Some("x".to_owned()));
    }

    #[test]
    fn wrong_types_are_named_down_to_the_element() {
        assert_eq!(
            check(json!({"channel": 5})),
            named("channel", "must be a string")
        );
        assert_eq!(
            check(json!({"weight_kg": true})),
            named("weight_kg", "must be a number")
        );
        assert_eq!(
            check(json!({"urgent": "yes"})),
            named("urgent", "must be true or false")
        );
        assert_eq!(
            check(json!({"tags": "a"})),
            named("tags", "must be a list of strings")
        );
        assert_eq!(
            check(json!({"tags": ["a", 2, 3]})),
            named("tags[1]", "must be a string")
        );
        assert_eq!(
            check(json!({"rfq": "JKT"})),
            named("rfq", "must be an object")
        );
        assert_eq!(
            check(json!({"rfq": {"volume": []}})),
            named("rfq.volume", "must be a number")
        );
        assert_eq!(
            check(json!({"lines": {}})),
            named("lines", "must be a list of objects")
        );
        assert_eq!(
            check(json!({"lines": [{"sku": "a"}, 3]})),
            named("lines[1]", "must be an object")
        );
        assert_eq!(
            check(json!({"lines": [{"sku": "a"}, {"qty": "x", "sku": 1}]})),
            named("lines[1].sku", "must be a string")
        );
    }

    #[test]
    fn a_spec_naming_no_known_type_is_a_bug_of_the_spec() {
        let bad = json!({"when": "datetime", "n": 3});
        assert_eq!(
            problem(Some(&json!({"when": "x"})), &bad, ""),
            Err(BadSpec {
                field: "when".to_owned(),
                kind: "datetime".to_owned()
            })
        );
        assert_eq!(
            problem(Some(&json!({"n": 1})), &bad, "").map_err(|e| e.kind),
            Err("3".to_owned())
        );
        // A null value is never checked, whatever its spec.
        assert_eq!(problem(Some(&json!({"when": null})), &bad, ""), Ok(None));
    }
}
