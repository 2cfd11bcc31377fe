//! The document itself: it lists exactly the routes served, and its
//! schemas are typed.

use std::collections::BTreeSet;

use bizos_tests::{spawn_app, TestApp, TestDb};
use serde_json::{json, Value};
use uuid::Uuid;

/// Every `.route(` of axum bypasses the document: routes are registered
/// with utoipa-axum's `routes!` only, which documents them.
#[tokio::test]
async fn the_document_lists_exactly_the_routes_served() {
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/../bff/src");
    let mut stack = vec![std::path::PathBuf::from(src)];
    let mut files = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                // The worker's health server is not the API (its own port).
                if !path.ends_with("worker") {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "rs") {
                files += 1;
                let text = std::fs::read_to_string(&path).unwrap();
                for (i, line) in text.lines().enumerate() {
                    assert!(
                        !line.contains(".route(") && !line.contains(".route_service("),
                        "{}:{}: a route outside utoipa-axum's routes! is not documented",
                        path.display(),
                        i + 1
                    );
                }
            }
        }
    }
    assert!(files > 10, "read the BFF's sources");

    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let doc = document(&app).await;
    assert_eq!(
        doc,
        serde_json::to_value(bizos_bff::routes::document(
            &bizos_bff::vocabulary::Vocabulary::load(&db.pool_as("bizos_app"))
                .await
                .unwrap()
        ))
        .unwrap(),
        "the served document is the generated one"
    );
    // Every documented operation is routed (a route the router does not
    // serve answers the fallback's "no such route" or 405).
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 25, "{}", paths.len());
    for (path, item) in paths {
        let concrete = path.replace("{id}", &Uuid::new_v4().to_string());
        for method in ["get", "post", "patch", "put", "delete"] {
            let documented = item.get(method).is_some();
            let res = app
                .http
                .request(method.to_uppercase().parse().unwrap(), app.url(&concrete))
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            let fallback =
                status == 405 || (status == 404 && body["error"]["message"] == "no such route");
            assert_eq!(
                !fallback, documented,
                "{method} {path}: served = {}, documented = {documented} ({status} {body})",
                !fallback
            );
        }
    }
}

/// The schemas are typed: no response is a bare object, request bodies
/// carry enums and limits, PATCH fields are optional, errors documented.
/// The OpenAPI documents themselves (untyped objects in the document).
const DOCUMENTS: [&str; 2] = ["/openapi.json", "/api/v1/openapi.json"];

#[tokio::test]
async fn the_document_is_typed() {
    let db = TestDb::new().await;
    let app = spawn_app(&db).await;
    let doc = document(&app).await;
    let schemas = &doc["components"]["schemas"];
    let resolve = |s: &Value| -> Value {
        match s["$ref"].as_str() {
            Some(r) => schemas[r.trim_start_matches("#/components/schemas/")].clone(),
            None => s.clone(),
        }
    };
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().unwrap() {
                let Some(schema) = response["content"]["application/json"]["schema"].as_object()
                else {
                    continue;
                };
                let schema = resolve(&Value::Object(schema.clone()));
                if DOCUMENTS.contains(&path.as_str()) {
                    continue;
                }
                assert!(
                    schema["properties"].is_object(),
                    "{method} {path} {status}: an untyped response {schema}"
                );
                assert_eq!(
                    schema["additionalProperties"],
                    json!(false),
                    "{method} {path} {status}: the keys are not closed"
                );
            }
            // A public operation (no credentials: a provider's signed
            // webhook) has no caller to refuse: 503 only.
            let public = op["security"] == json!([{}]);
            if !["/healthz", "/readyz"].contains(&path.as_str())
                && !DOCUMENTS.contains(&path.as_str())
            {
                let statuses: &[&str] = if public {
                    &["503"]
                } else {
                    &["401", "403", "503"]
                };
                for status in statuses {
                    assert!(
                        op["responses"][status].is_object(),
                        "{method} {path}: {status} undocumented"
                    );
                }
            }
            if op["requestBody"]["content"]["application/json"].is_object() {
                for status in ["400", "415", "422"] {
                    assert!(
                        op["responses"][status].is_object(),
                        "{method} {path}: {status}"
                    );
                }
            }
        }
    }
    // No untyped object anywhere in a response (the metric-specific
    // `breakdown` of KPI actuals excepted).
    fn walk(
        schema: &Value,
        schemas: &Value,
        at: &str,
        seen: &mut BTreeSet<String>,
        bad: &mut Vec<String>,
    ) {
        if let Some(r) = schema["$ref"].as_str() {
            let name = r.trim_start_matches("#/components/schemas/");
            if seen.insert(name.to_owned()) {
                walk(&schemas[name], schemas, name, seen, bad);
            }
            return;
        }
        let is_object = schema["type"] == "object"
            || schema["type"]
                .as_array()
                .is_some_and(|t| t.contains(&json!("object")));
        if is_object
            && !schema["properties"].is_object()
            && !schema["additionalProperties"].is_object()
            && !at.ends_with(".breakdown")
        {
            bad.push(format!("{at}: {schema}"));
        }
        for (k, v) in schema["properties"].as_object().into_iter().flatten() {
            walk(v, schemas, &format!("{at}.{k}"), seen, bad);
        }
        for key in ["oneOf", "anyOf", "allOf"] {
            for v in schema[key].as_array().into_iter().flatten() {
                walk(v, schemas, at, seen, bad);
            }
        }
        for key in ["items", "additionalProperties"] {
            if schema[key].is_object() {
                walk(&schema[key], schemas, &format!("{at}[]"), seen, bad);
            }
        }
    }
    let mut seen = BTreeSet::new();
    let mut bad = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        if DOCUMENTS.contains(&path.as_str()) {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().unwrap() {
                let schema = &response["content"]["application/json"]["schema"];
                if schema.is_object() {
                    walk(
                        schema,
                        schemas,
                        &format!("{method} {path} {status}"),
                        &mut seen,
                        &mut bad,
                    );
                }
            }
        }
    }
    assert!(seen.len() > 30, "{seen:?}");
    assert!(
        bad.is_empty(),
        "untyped objects in responses:\n{}",
        bad.join("\n")
    );

    let lead = &schemas["LeadCreate"];
    assert_eq!(lead["additionalProperties"], json!(false), "{lead}");
    let channel = resolve(&lead["properties"]["channel"]);
    assert!(
        channel["enum"]
            .as_array()
            .is_some_and(|e| e.contains(&json!("walk_in"))),
        "{channel}"
    );
    let company = resolve(&lead["properties"]["company_name"]);
    assert_eq!(company["maxLength"], 200, "{company}");
    assert!(lead["required"]
        .as_array()
        .unwrap()
        .contains(&json!("company_name")));
    let rfq = &schemas["Rfq"];
    assert!(
        rfq["required"]
            .as_array()
            .unwrap()
            .contains(&json!("dept_target")),
        "{rfq}"
    );
    let patch = &schemas["TicketPatch"];
    assert!(
        patch["required"].is_null() || patch["required"] == json!([]),
        "{patch}"
    );
    assert!(
        patch["properties"]["assignee_user_id"]
            .to_string()
            .contains("null"),
        "null unassigns: {patch}"
    );
    assert!(
        !patch["properties"]["status"].to_string().contains("null"),
        "status cannot be null: {patch}"
    );
    let codes = &schemas["ErrorCode"]["enum"];
    for code in ["invalid", "no_profile", "tenant_read_only"] {
        assert!(codes.as_array().unwrap().contains(&json!(code)), "{codes}");
    }
    assert!(doc["paths"]["/api/me"]["get"].is_object());
}

/// The served OpenAPI document.
pub(super) async fn document(app: &TestApp) -> Value {
    app.http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
